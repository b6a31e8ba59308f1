//! Durable storage, SQLite or PostgreSQL: the append-only timeline, the outbox of messages
//! to deliver, the queue of operations to launch and watch, and a small projection of each
//! incident for lookups. Everything one decision causes is committed in one transaction.
//!
//! Each backend has one writer that commits whatever is queued in one transaction (group
//! commit), each commit in its own savepoint so a refused one writes nothing and the others
//! still land; a caller is answered only once the transaction holding its commit is durable.
//! SQLite goes through rusqlite (the writer is a thread, reads run in place on their own
//! connections); PostgreSQL through sqlx's native driver. The SQL text is shared (`sql.rs`).

mod linger;
mod migrations;
mod plan;
mod postgres;
mod rows;
mod sql;
mod sqlite;

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::incident::{Actor, Event, EventKind, IncidentId};
use linger::{LINGER, Linger};
use migrations::{MIGRATIONS, migrator, unapplied};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else appended to the incident first; reload and decide again.
    #[error("the incident changed concurrently; retry")]
    Conflict,
    /// A row with this dedupe key exists: the work was already done (cadence slot, reminder…).
    #[error("already recorded: {0}")]
    Duplicate(String),
    /// Another incident is already open in this channel.
    #[error("an incident is already open in channel {0}")]
    OpenIncidentExists(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The transaction that held this change could not be committed: nothing of it is kept.
    #[error("database error: the commit failed: {0}")]
    Batch(String),
    #[error("the database was closed")]
    Closed,
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("unsupported database URL {0}: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    /// Text the database cannot hold (PostgreSQL refuses NUL); refused on both backends.
    #[error("{0} contains a NUL character, which cannot be stored")]
    Unstorable(&'static str),
    /// This worker's claim on a row expired and another worker took it over.
    #[error("the claim on {0} was taken over by another worker")]
    LeaseLost(String),
    /// Another drbot process holds this SQLite file.
    #[error(
        "another drbot process is already using the SQLite database {0}; SQLite serves one \
         process only: stop the other one, or run several replicas on PostgreSQL \
         (database.url = \"postgres://…\")"
    )]
    SqliteInUse(String),
    #[error("cannot lock the SQLite database {0}: {1}")]
    Lock(String, std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An event to append; the store assigns the incident and the sequence number.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub recorded_at: DateTime<Utc>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub actor: Actor,
    pub kind: EventKind,
    /// Unique per incident when set: a second append with the same key fails with
    /// [`StoreError::Duplicate`] (one post per cadence slot, one reminder, one summary).
    pub dedupe_key: Option<String>,
}

/// A message to post to a channel, delivered later by the outbox worker.
#[derive(Debug, Clone)]
pub struct NewPost {
    pub channel: String,
    /// JSON of the neutral message.
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// The pinned status message: its own lane, coalesced (only the newest pending one is
    /// sent) and never holding back the channel's other posts.
    pub status: bool,
}

/// How an outbox row this worker claimed ended without being delivered.
#[derive(Debug, Clone)]
pub struct GiveUp {
    pub outbox: i64,
    pub claim_token: String,
    pub error: String,
}

#[derive(Debug, Clone)]
pub enum OperationChange {
    /// A confirmed launch: queued for the worker.
    Queue {
        operation: String,
        kind: String,
        object_name: String,
        backend: String,
        spec: String,
    },
    Launched {
        operation: String,
        at: DateTime<Utc>,
    },
    Finished {
        operation: String,
        at: DateTime<Utc>,
    },
}

/// The incident row kept in step with the events (for lookups without a fold).
#[derive(Debug, Clone)]
pub struct Projection {
    pub severity: String,
    pub incident_type: Option<String>,
    pub title: String,
    pub drill: bool,
    pub declared_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub final_summary_posted: bool,
}

#[derive(Debug, Clone)]
pub enum Target {
    /// Append to an incident whose last seen sequence number is `expected_seq`.
    Existing { id: IncidentId, expected_seq: i64 },
    /// Create the incident (its first event is the declaration).
    /// Create the incident (its first event is the declaration) with the id from
    /// [`Store::next_incident_id`]; a concurrent declaration that took the id first makes
    /// this a [`StoreError::Conflict`], so the caller retries with a fresh id.
    New {
        id: IncidentId,
        channel: String,
        platform: String,
    },
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub target: Target,
    pub events: Vec<NewEvent>,
    pub posts: Vec<NewPost>,
    pub operations: Vec<OperationChange>,
    pub projection: Projection,
    /// The chat platform's id for the request that caused this commit: a second commit with
    /// the same key fails with [`StoreError::Duplicate`] and writes nothing.
    pub request_key: Option<String>,
    /// An outbox row given up in the same transaction as the events that say so; fails with
    /// [`StoreError::LeaseLost`] when this worker no longer holds its claim.
    pub gave_up: Option<GiveUp>,
    pub chain: Chain,
}

/// A commit's place among this process's commits: its own token, and the commit, possibly
/// still in flight, whose outcome it was decided on ([`Chains`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    pub token: u64,
    pub builds_on: Option<u64>,
}

impl Chain {
    /// A commit decided on what the store holds.
    pub fn root() -> Chain {
        Chain::on(None)
    }

    /// A commit decided on the outcome of `builds_on` (when it is `Some`).
    pub fn on(builds_on: Option<u64>) -> Chain {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Chain {
            token: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            builds_on,
        }
    }
}

/// The commit of this process that last landed on each incident, kept by the writer: a
/// commit decided on another one lands only if that one did. The sequence check alone is
/// not enough. When the first failed because another replica appended to the incident, the
/// sequence number may have come out just where the second expects it, and the second would
/// land on events it was not decided on.
#[derive(Default)]
struct Chains {
    landed: std::collections::HashMap<IncidentId, u64>,
}

impl Chains {
    fn admits(&self, commit: &Commit) -> bool {
        match (commit.chain.builds_on, &commit.target) {
            (Some(on), Target::Existing { id, .. }) => self.landed.get(id) == Some(&on),
            _ => true,
        }
    }

    /// The commit with `token` landed on incident `id` (in a transaction still open: a
    /// failed one is followed by [`Chains::reset`]).
    fn land(&mut self, (id, token): (IncidentId, u64)) {
        self.landed.insert(id, token);
    }

    /// Admit and land every commit in order, as if each will land; `None`, changing nothing,
    /// when one would not be admitted. The undo log puts back what was there before.
    fn land_all<'c>(
        &mut self,
        commits: impl Iterator<Item = &'c Commit>,
    ) -> Option<Vec<(IncidentId, Option<u64>)>> {
        let mut undo = Vec::new();
        for commit in commits {
            if !self.admits(commit) {
                self.undo(undo);
                return None;
            }
            let id = commit.target.id();
            undo.push((id, self.landed.insert(id, commit.chain.token)));
        }
        Some(undo)
    }

    fn undo(&mut self, undo: Vec<(IncidentId, Option<u64>)>) {
        for (id, was) in undo.into_iter().rev() {
            match was {
                Some(token) => self.landed.insert(id, token),
                None => self.landed.remove(&id),
            };
        }
    }

    /// A transaction failed after its commits were applied: every chain starts over, so a
    /// commit decided on one of them is refused and decided again.
    fn reset(&mut self) {
        self.landed.clear();
    }
}

impl Target {
    pub fn id(&self) -> IncidentId {
        match self {
            Target::Existing { id, .. } | Target::New { id, .. } => *id,
        }
    }
}

/// The existing incidents a batch changes, lowest id first, when there are several: the
/// rows a PostgreSQL batch locks before anything else ([`sql::LOCK_INCIDENTS`]).
fn incidents_to_lock<'c>(commits: impl Iterator<Item = &'c Commit>) -> Vec<IncidentId> {
    let mut ids: Vec<IncidentId> = commits
        .filter_map(|c| match c.target {
            Target::Existing { id, .. } => Some(id),
            Target::New { .. } => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() < 2 {
        ids.clear();
    }
    ids
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub incident: IncidentId,
    /// Sequence numbers given to the events, in order.
    pub seqs: Vec<i64>,
}

/// A queued or running operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRow {
    pub incident: IncidentId,
    pub operation: String,
    pub kind: String,
    pub object_name: String,
    pub backend: String,
    /// JSON of the `OperationSpec`.
    pub spec: String,
    /// `queued`, `launched` or `finished`.
    pub status: String,
    pub launched_at: Option<DateTime<Utc>>,
    /// Set by [`Store::claim_operations`]: another replica held this operation before and
    /// its lease ran out (a takeover).
    pub taken_over: bool,
}

/// An outbox row claimed by this worker: only `claim_token` may record its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub incident: Option<IncidentId>,
    pub channel: String,
    pub body: String,
    /// Failed attempts recorded so far.
    pub attempts: i64,
    /// Claims before this one. Each was recorded before its send started, so a non-zero
    /// count means the post may already be in the channel: look before posting again.
    pub earlier_sends: i64,
    pub created_at: DateTime<Utc>,
    pub status: bool,
    pub claim_token: String,
    /// A status post for an incident whose status message is not known yet, after an
    /// earlier status post of the incident was claimed: that one may have created it.
    pub status_in_doubt: bool,
}

impl OutboxRow {
    /// An earlier claim ended with neither a delivery nor a failure recorded: the process
    /// died or lost its lease mid-send.
    pub fn taken_over(&self) -> bool {
        self.earlier_sends > self.attempts
    }
}

/// An undelivered outbox row, for inspection (metrics, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPost {
    pub id: i64,
    pub channel: String,
    pub status: bool,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    pub id: IncidentId,
    pub channel: String,
    pub platform: String,
    pub severity: String,
    pub incident_type: Option<String>,
    pub title: String,
    pub drill: bool,
    pub declared_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub final_summary_posted: bool,
    pub last_seq: i64,
}

/// An incident the scheduler still looks after (open, or resolved with its final summary
/// owed), with the sequence number of its last event: a remembered fold that far along needs
/// no read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveIncident {
    pub id: IncidentId,
    pub seq: i64,
}

/// A claim's holder and its term, as both backends write them.
struct Lease {
    token: String,
    now: String,
    until: String,
}

impl Lease {
    fn new(token: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> Lease {
        Lease {
            token: token.to_owned(),
            now: fmt_time(now),
            until: fmt_time(until),
        }
    }
}

/// The store: a handle to one backend, cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Inner,
    /// The SQLite file, when it is one (for the one-process lock).
    sqlite_path: Option<std::path::PathBuf>,
    /// Held while this process serves a SQLite file: a second process is refused.
    sole_process: std::sync::Arc<std::sync::Mutex<Option<std::fs::File>>>,
}

#[derive(Clone, Debug)]
enum Inner {
    Sqlite(sqlite::Lite),
    Postgres(postgres::Pg),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish()
    }
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    if let Some(t) = parse_stored_time(s) {
        return Ok(t);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

/// The one shape [`fmt_time`] writes, `2026-01-01T10:00:00.000Z`, read without the general
/// RFC 3339 parser (an export reads two per event); anything else goes to that parser.
fn parse_stored_time(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let date =
        chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(5, 7)?, num(8, 10)?)?;
    let time = chrono::NaiveTime::from_hms_milli_opt(
        num(11, 13)?,
        num(14, 16)?,
        num(17, 19)?,
        num(20, 23)?,
    )?;
    Some(date.and_time(time).and_utc())
}

/// The same call on whichever backend this is; SQLite's reads are not futures.
macro_rules! on_backend {
    ($self:ident, $b:ident => $call:expr) => {
        match &$self.inner {
            Inner::Sqlite($b) => $call,
            Inner::Postgres($b) => $call.await,
        }
    };
    (async $self:ident, $b:ident => $call:expr) => {
        match &$self.inner {
            Inner::Sqlite($b) => $call.await,
            Inner::Postgres($b) => $call.await,
        }
    };
}

impl Store {
    /// Connect, create the SQLite file if needed (WAL, synchronous=FULL), run migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::start(url, true).await
    }

    /// Connect without touching the schema (`drbot doctor` reports what is pending).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::start(url, false).await
    }

    async fn start(url: &str, migrate: bool) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Store {
                inner: Inner::Postgres(postgres::Pg::open(url, migrate).await?),
                sqlite_path: None,
                sole_process: Default::default(),
            });
        }
        if !url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        let at = sqlite::location(url)?;
        let lite = {
            let at = sqlite::Location::clone(&at);
            tokio::task::spawn_blocking(move || sqlite::Lite::open(&at, migrate))
                .await
                .map_err(|e| StoreError::Corrupt(format!("opening SQLite failed: {e}")))??
        };
        Ok(Store {
            inner: Inner::Sqlite(lite),
            sqlite_path: sqlite::file_of(&at).map(Into::into),
            sole_process: Default::default(),
        })
    }

    /// For a process that runs the workers (serve, console): on SQLite, take the file for
    /// this process alone, so a second process on it is refused at start instead of both
    /// delivering every post. PostgreSQL needs no lock: its claims make replicas safe.
    ///
    /// Holding the file also means every claim in it belongs to a process that is gone: they
    /// are released, so a post that was in flight when that process died is looked up and
    /// finished now rather than when its lease runs out.
    pub async fn hold_sole_process(&self) -> Result<(), StoreError> {
        let Some(path) = &self.sqlite_path else {
            return Ok(());
        };
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let shown = path.display().to_string();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::Lock(shown.clone(), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::SqliteInUse(shown)),
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::Lock(shown, e)),
        }
        *self.sole_process.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
        if let Inner::Sqlite(lite) = &self.inner {
            lite.trust_own_writes().await?;
        }
        on_backend!(async self, b => b.release_all_leases())
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Migrations this drbot has that the database has not applied, by version.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        on_backend!(self, b => b.pending_migrations())
    }

    /// Close the store (after queued writes are committed); later calls fail.
    pub async fn close(&self) {
        on_backend!(async self, b => b.close())
    }

    /// Commit and wait until it is durable.
    pub async fn commit(&self, commit: Commit) -> Result<Committed, StoreError> {
        self.submit(commit).await
    }

    /// Queue a commit now, behind every commit queued before it by anyone in this process;
    /// the future tells how it ended once the transaction holding it is durable. Commits
    /// queued one after another are applied in that order, so a caller may queue the next
    /// decision on top of one still in flight (its `expected_seq` check fails if the first
    /// did not land).
    pub fn submit(
        &self,
        commit: Commit,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send + use<> {
        match &self.inner {
            Inner::Sqlite(b) => futures_util::future::Either::Left(b.submit(commit)),
            Inner::Postgres(b) => futures_util::future::Either::Right(b.submit(commit)),
        }
    }

    /// The id a new incident should take; see [`Target::New`].
    pub async fn next_incident_id(&self) -> Result<IncidentId, StoreError> {
        on_backend!(self, b => b.next_incident_id())
    }

    pub async fn incident(&self, id: IncidentId) -> Result<Option<IncidentRow>, StoreError> {
        on_backend!(self, b => b.incident(id))
    }

    /// The open incident in a channel, if any.
    pub async fn open_incident_in(&self, channel: &str) -> Result<Option<IncidentId>, StoreError> {
        self.id_query(sql::OPEN_INCIDENT_IN, channel).await
    }

    /// The newest incident of a channel, open or resolved.
    pub async fn latest_incident_in(
        &self,
        channel: &str,
    ) -> Result<Option<IncidentId>, StoreError> {
        self.id_query(sql::LATEST_INCIDENT_IN, channel).await
    }

    async fn id_query(
        &self,
        sql_text: &'static str,
        channel: &str,
    ) -> Result<Option<IncidentId>, StoreError> {
        // No stored channel holds NUL (see `refuse_nul`), and PostgreSQL would fail the query.
        if channel.contains('\0') {
            return Ok(None);
        }
        on_backend!(self, b => b.id_query(sql_text, channel))
    }

    /// Drill incidents, oldest first: their timelines hold the drill results (`/dr drills`).
    pub async fn drill_incidents(&self) -> Result<Vec<IncidentId>, StoreError> {
        on_backend!(self, b => b.ids(sql::DRILL_INCIDENTS))
    }

    /// Queue `post` (outside any incident) unless a notice with `key` was made before: the
    /// key and the post commit in one transaction. `true` if this call queued it.
    pub async fn post_notice(&self, key: &str, post: NewPost) -> Result<bool, StoreError> {
        if key.contains('\0') {
            return Err(StoreError::Unstorable("the notice key"));
        }
        if post.channel.contains('\0') || post.body.contains('\0') {
            return Err(StoreError::Unstorable("the notice"));
        }
        on_backend!(async self, b => b.post_notice(key, post))
    }

    /// Incidents the scheduler must look at: open, or resolved with the final summary owed.
    pub async fn active_incidents(&self) -> Result<Vec<ActiveIncident>, StoreError> {
        on_backend!(self, b => b.incident_seqs(sql::ACTIVE_INCIDENTS))
    }

    /// Every incident with its last sequence number, newest first.
    pub async fn all_incidents(&self) -> Result<Vec<ActiveIncident>, StoreError> {
        on_backend!(self, b => b.incident_seqs(sql::ALL_INCIDENTS))
    }

    /// Up to `limit` events before sequence number `before` (all the latest when `None`),
    /// oldest first: one page of a long timeline without reading the rest.
    pub async fn events_before(
        &self,
        incident: IncidentId,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut events = on_backend!(self, b => b.events_before(incident, before, limit))?;
        events.reverse();
        Ok(events)
    }

    pub async fn events(&self, incident: IncidentId) -> Result<Vec<Event>, StoreError> {
        on_backend!(async self, b => b.events(incident))
    }

    /// Events after sequence number `after`, in order (bringing a remembered fold up to date).
    pub async fn events_after(
        &self,
        incident: IncidentId,
        after: i64,
    ) -> Result<Vec<Event>, StoreError> {
        on_backend!(self, b => b.events_after(incident, after))
    }

    /// Events in order without loading them all (exports of very long timelines).
    pub fn stream_events(&self, incident: IncidentId) -> BoxStream<'_, Result<Event, StoreError>> {
        match &self.inner {
            Inner::Sqlite(lite) => {
                let chunks = futures_util::stream::unfold(
                    lite.events_ahead(incident),
                    |mut ahead| async move { ahead.recv().await.map(|chunk| (chunk, ahead)) },
                );
                chunks
                    .map(|chunk| match chunk {
                        Ok(rows) => futures_util::stream::iter(rows).left_stream(),
                        Err(e) => futures_util::stream::iter(vec![Err(e)]).right_stream(),
                    })
                    .flatten()
                    .boxed()
            }
            Inner::Postgres(pg) => pg.stream_events(incident).boxed(),
        }
    }

    /// Claim the unfinished operations no other replica holds (or whose holder's lease ran
    /// out) and renew this replica's own: one replica launches and watches each at a time.
    /// `token` names the replica and stays the same across its passes.
    pub async fn claim_operations(
        &self,
        token: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<OperationRow>, StoreError> {
        let lease = Lease::new(token, now, lease_until);
        let mut rows = on_backend!(async self, b => b.claim_operations(lease))?;
        rows.sort_by(|a, b| (a.incident, &a.operation).cmp(&(b.incident, &b.operation)));
        Ok(rows)
    }

    /// Let go of this replica's operations (a clean stop): another replica takes them at once.
    pub async fn release_operations(&self, token: &str) -> Result<u64, StoreError> {
        on_backend!(async self, b => b.release_operations(token))
    }

    /// Operations with status `queued` or `launched`, claimed or not (inspection).
    pub async fn unfinished_operations(&self) -> Result<Vec<OperationRow>, StoreError> {
        on_backend!(self, b => b.unfinished_operations())
    }

    /// Claim the posts that are due, in one short transaction that is committed before any
    /// send: the head of each channel's post lane and the newest status post of each incident
    /// (older pending status posts of that incident are retired as superseded). The claim is
    /// also the durable record that a send is about to start. Only `token` may record the
    /// result, until `lease_until`; after that another worker may take the row over.
    pub async fn claim_posts(
        &self,
        token: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        channel: Option<&str>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let lease = Lease::new(token, now, lease_until);
        on_backend!(async self, b => b.claim_posts(lease, limit, channel))
    }

    /// Record a delivery under the claim; for a status post, also remember the status message
    /// it created or edited, in the same transaction so a restart neither loses nor re-posts
    /// it. `false` when the claim was lost: another worker owns the row now (and will look
    /// before posting, since this claim counts as a send).
    pub async fn record_delivery(
        &self,
        row: &OutboxRow,
        at: DateTime<Utc>,
        receipt: &str,
    ) -> Result<bool, StoreError> {
        on_backend!(async self, b => b.record_delivery(row, at, receipt))
    }

    /// Record a failed attempt under the claim and when to try again; `false` when the claim
    /// was lost.
    pub async fn record_failure(
        &self,
        row: &OutboxRow,
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        on_backend!(async self, b => b.record_failure(row, next_attempt, error))
    }

    /// Undelivered rows not given up, oldest first (inspection: metrics, tests).
    pub async fn pending_rows(&self) -> Result<Vec<PendingPost>, StoreError> {
        on_backend!(self, b => b.pending_rows())
    }

    /// Posts given up, oldest first: (channel, last error).
    pub async fn given_up(&self) -> Result<Vec<(String, String)>, StoreError> {
        on_backend!(self, b => b.given_up())
    }

    /// Whether a chat request with this key already changed something.
    pub async fn request_seen(&self, key: &str) -> Result<bool, StoreError> {
        if key.contains('\0') {
            return Ok(false);
        }
        on_backend!(self, b => b.request_seen(key))
    }

    /// Forget request keys older than `before`: platforms stop redelivering within minutes.
    pub async fn forget_requests(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        on_backend!(async self, b => b.forget_requests(before))
    }

    /// The platform id of the incident's pinned status message, once posted.
    pub async fn status_message(&self, incident: IncidentId) -> Result<Option<String>, StoreError> {
        on_backend!(self, b => b.incident_text(sql::STATUS_MESSAGE, incident, "status_message"))
    }

    /// The Statuspage incident of an incident: the receipt of its first delivered
    /// publication (`crate::chat::statuspage`), once there is one.
    pub async fn statuspage_incident(
        &self,
        incident: IncidentId,
    ) -> Result<Option<String>, StoreError> {
        on_backend!(self, b => b.incident_text(sql::STATUSPAGE_INCIDENT, incident, "receipt"))
    }

    /// Undelivered posts and the age of the oldest: outbox depth for metrics.
    pub async fn outbox_backlog(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        on_backend!(self, b => b.outbox_backlog())
    }

    /// A cheap round trip for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, b => b.ping())
    }

    /// Undelivered posts (all channels): depth for metrics and for draining before exit.
    pub async fn pending_posts(&self) -> Result<i64, StoreError> {
        on_backend!(self, b => b.pending_posts())
    }
}

/// PostgreSQL cannot store NUL in text; SQLite could, but then one database would keep what
/// the other refuses. Event payloads are JSON, where NUL is escaped; plain columns are not.
pub(super) fn refuse_nul(
    target: &Target,
    events: &[NewEvent],
    posts: &[NewPost],
    p: &Projection,
    request_key: Option<&str>,
) -> Result<(), StoreError> {
    let has = |s: &str| s.contains('\0');
    if let Target::New {
        channel, platform, ..
    } = target
        && (has(channel) || has(platform))
    {
        return Err(StoreError::Unstorable("the channel"));
    }
    if posts.iter().any(|post| has(&post.channel)) {
        return Err(StoreError::Unstorable("the channel"));
    }
    if has(&p.title) || has(&p.severity) || p.incident_type.as_deref().is_some_and(has) {
        return Err(StoreError::Unstorable("the incident title"));
    }
    for ev in events {
        let a = &ev.actor;
        if has(&a.platform) || has(&a.id) || has(&a.name) {
            return Err(StoreError::Unstorable("the user"));
        }
        if ev.dedupe_key.as_deref().is_some_and(has) {
            return Err(StoreError::Unstorable("an event key"));
        }
    }
    if request_key.is_some_and(has) {
        return Err(StoreError::Unstorable("the request id"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_sqlite_connection_gets_the_pragmas() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let store = Store::connect(&url).await.expect("connect");
        let Inner::Sqlite(lite) = &store.inner else {
            panic!("a SQLite store")
        };
        let pragmas = lite.pragmas();
        assert!(pragmas.len() > 1, "separate reader connections");
        for (journal, synchronous, fk, busy) in pragmas {
            assert_eq!(journal, "wal");
            assert_eq!(synchronous, 2, "FULL");
            assert_eq!(fk, 1);
            assert_eq!(busy, 5000);
        }
    }

    #[test]
    fn sqlite_urls_create_the_file_unless_told_otherwise() {
        use rusqlite::OpenFlags as F;
        let file = |url: &str| match sqlite::location(url) {
            Ok(sqlite::Location::File { path, flags }) => (path, flags),
            other => panic!("{url}: {other:?}"),
        };
        let (path, flags) = file("sqlite://a.db");
        assert_eq!(path, std::path::PathBuf::from("a.db"));
        assert!(flags.contains(F::SQLITE_OPEN_CREATE));
        assert!(
            file("sqlite://a.db?cache=shared")
                .1
                .contains(F::SQLITE_OPEN_CREATE)
        );
        assert!(
            file("sqlite:a.db?mode=ro")
                .1
                .contains(F::SQLITE_OPEN_READ_ONLY)
        );
        assert!(
            !file("sqlite://a.db?mode=rw")
                .1
                .contains(F::SQLITE_OPEN_CREATE)
        );
        assert_eq!(
            sqlite::location("sqlite::memory:").ok(),
            Some(sqlite::Location::Memory)
        );
    }

    #[test]
    fn times_sort_as_text() {
        let a = DateTime::parse_from_rfc3339("2026-01-01T09:59:59.999Z").map(|t| t.to_utc());
        let b = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z").map(|t| t.to_utc());
        let (Ok(a), Ok(b)) = (a, b) else {
            panic!("bad literal")
        };
        assert_eq!(fmt_time(b), "2026-01-01T10:00:00.000Z");
        assert!(fmt_time(a) < fmt_time(b));
    }

    #[test]
    fn stored_times_read_back_exactly_and_odd_ones_still_parse() {
        for text in [
            "2026-01-01T10:00:00.000Z",
            "2026-02-28T23:59:59.999Z",
            "1999-12-31T00:00:00.001Z",
        ] {
            let t = parse_time(text).expect(text);
            assert_eq!(fmt_time(t), text);
            assert_eq!(
                parse_stored_time(text),
                DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc())
            );
        }
        // Written by hand or by an older version: still read, by the general parser.
        assert!(parse_stored_time("2026-01-01T10:00:00Z").is_none());
        assert_eq!(
            parse_time("2026-01-01T11:00:00+01:00")
                .map(fmt_time)
                .ok()
                .as_deref(),
            Some("2026-01-01T10:00:00.000Z")
        );
        assert!(parse_time("2026-02-30T10:00:00.000Z").is_err());
        assert!(parse_time("2026-01-01T1x:00:00.000Z").is_err());
    }
}
