//! Durable storage (sqlx, SQLite or PostgreSQL): the append-only timeline, the outbox of
//! messages to deliver, the queue of operations to launch and watch, and a small projection
//! of each incident for lookups. Everything one decision causes is committed in one transaction.

use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::StreamExt;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Row, SqlSafeStr, Transaction};

use crate::incident::{Actor, Event, EventKind, IncidentId};

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

/// A connection pool over either backend. Queries go through `sqlx::Any` with `$n`
/// placeholders so there is one SQL text per operation; only bool, i64 and text cross it,
/// hence times as fixed-width RFC 3339 text.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    pool: AnyPool,
    /// The SQLite file, when it is one (for the one-process lock).
    sqlite_path: Option<std::path::PathBuf>,
    /// Held while this process serves a SQLite file: a second process is refused.
    sole_process: std::sync::Arc<std::sync::Mutex<Option<std::fs::File>>>,
}

const SQLITE_INIT: &str = include_str!("../../migrations/sqlite/20260101000000_init.sql");
const POSTGRES_INIT: &str = include_str!("../../migrations/postgres/20260101000000_init.sql");
const INIT_VERSION: i64 = 20260101000000;
const SQLITE_CHAT: &str = include_str!("../../migrations/sqlite/20261121000000_chat.sql");
const POSTGRES_CHAT: &str = include_str!("../../migrations/postgres/20261121000000_chat.sql");
const CHAT_VERSION: i64 = 20261121000000;
const SQLITE_REPLICAS: &str = include_str!("../../migrations/sqlite/20261201000000_replicas.sql");
const POSTGRES_REPLICAS: &str =
    include_str!("../../migrations/postgres/20261201000000_replicas.sql");
const REPLICAS_VERSION: i64 = 20261201000000;

/// Applied to every pooled SQLite connection: `synchronous`, `busy_timeout` and
/// `foreign_keys` last only as long as the connection. WAL is recorded in the file, so
/// repeating it is free and no connection depends on which one happened to open first.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;";

const POOL_SIZE: u32 = 8;

fn migrator(backend: Backend) -> Migrator {
    let (init, chat, replicas) = match backend {
        Backend::Sqlite => (SQLITE_INIT, SQLITE_CHAT, SQLITE_REPLICAS),
        Backend::Postgres => (POSTGRES_INIT, POSTGRES_CHAT, POSTGRES_REPLICAS),
    };
    let migration = |version, name: &str, sql: &'static str| {
        Migration::new(
            version,
            name.to_owned().into(),
            MigrationType::Simple,
            sql.into_sql_str(),
            false,
        )
    };
    Migrator::with_migrations(vec![
        migration(INIT_VERSION, "init", init),
        migration(CHAT_VERSION, "chat", chat),
        migration(REPLICAS_VERSION, "replicas", replicas),
    ])
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get::<T, _>(col)
        .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

fn get_time(row: &AnyRow, col: &str) -> Result<DateTime<Utc>, StoreError> {
    parse_time(&get::<String>(row, col)?)
}

fn get_opt_time(row: &AnyRow, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    get::<Option<String>>(row, col)?
        .map(|s| parse_time(&s))
        .transpose()
}

/// SQLite hands booleans back as integers (its values carry no boolean type), PostgreSQL as
/// booleans.
fn get_bool(row: &AnyRow, col: &str) -> Result<bool, StoreError> {
    match row.try_get::<bool, _>(col) {
        Ok(b) => Ok(b),
        Err(_) => get::<i64>(row, col).map(|i| i != 0),
    }
}

/// The name (PostgreSQL) or the message (SQLite, which names the columns instead) of the
/// unique constraint a failed statement violated.
fn unique_violation(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(e) if e.is_unique_violation() => Some(
            e.constraint()
                .map(str::to_owned)
                .unwrap_or_else(|| e.message().to_owned()),
        ),
        _ => None,
    }
}

fn decode_event(row: &AnyRow) -> Result<Event, StoreError> {
    let data: String = get(row, "data")?;
    let kind: EventKind = serde_json::from_str(&data)
        .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
    Ok(Event {
        incident: get(row, "incident_id")?,
        seq: get(row, "seq")?,
        recorded_at: get_time(row, "recorded_at")?,
        occurred_at: get_opt_time(row, "occurred_at")?,
        actor: Actor {
            platform: get(row, "actor_platform")?,
            id: get(row, "actor_id")?,
            name: get(row, "actor_name")?,
        },
        kind,
    })
}

fn decode_incident(row: &AnyRow) -> Result<IncidentRow, StoreError> {
    Ok(IncidentRow {
        id: get(row, "id")?,
        channel: get(row, "channel")?,
        platform: get(row, "platform")?,
        severity: get(row, "severity")?,
        incident_type: get(row, "incident_type")?,
        title: get(row, "title")?,
        drill: get_bool(row, "drill")?,
        declared_at: get_time(row, "declared_at")?,
        resolved_at: get_opt_time(row, "resolved_at")?,
        final_summary_posted: get_bool(row, "final_summary_posted")?,
        last_seq: get(row, "last_seq")?,
    })
}

fn decode_operation(row: &AnyRow) -> Result<OperationRow, StoreError> {
    let taken_over = match row.try_get::<Option<String>, _>("previous_claim") {
        Ok(previous) => {
            let mine: Option<String> = get(row, "claim_token")?;
            previous.is_some_and(|p| Some(p) != mine)
        }
        Err(_) => false,
    };
    Ok(OperationRow {
        incident: get(row, "incident_id")?,
        operation: get(row, "operation")?,
        kind: get(row, "kind")?,
        object_name: get(row, "object_name")?,
        backend: get(row, "backend")?,
        spec: get(row, "spec")?,
        status: get(row, "status")?,
        launched_at: get_opt_time(row, "launched_at")?,
        taken_over,
    })
}

fn decode_outbox(row: &AnyRow) -> Result<OutboxRow, StoreError> {
    let sends: i64 = get(row, "sends")?;
    Ok(OutboxRow {
        id: get(row, "id")?,
        incident: get(row, "incident_id")?,
        channel: get(row, "channel")?,
        body: get(row, "body")?,
        attempts: get(row, "attempts")?,
        earlier_sends: sends - 1,
        created_at: get_time(row, "created_at")?,
        status: get::<String>(row, "lane")? == "status",
        claim_token: get::<Option<String>>(row, "claim_token")?.unwrap_or_default(),
        status_in_doubt: false,
    })
}

/// Undelivered and not given up, for rows of `alias`.
fn pending(alias: &str) -> String {
    format!("{alias}.delivered_at IS NULL AND {alias}.gave_up_at IS NULL")
}

/// The head of each channel's post lane: nothing older of the channel is pending, so posts
/// leave in commit order however many workers claim.
fn claim_posts_sql(backend: Backend) -> String {
    format!(
        "UPDATE outbox SET claim_token = $1, lease_until = $2, sends = sends + 1 \
         WHERE id IN (SELECT o.id FROM outbox o WHERE o.lane = 'post' AND {o} \
             AND o.next_attempt_at <= $3 AND (o.lease_until IS NULL OR o.lease_until < $3) \
             AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.channel = o.channel \
                 AND e.lane = 'post' AND {e} AND e.id < o.id) \
             AND o.channel = COALESCE($5, o.channel) \
             ORDER BY o.id LIMIT $4{}) \
         RETURNING id, incident_id, channel, body, attempts, sends, created_at, lane, claim_token",
        skip_locked(backend),
        o = pending("o"),
        e = pending("e"),
    )
}

/// The newest pending status post of each incident, unless one of its status posts is in
/// flight (one edit at a time per incident, always the latest content) or a post committed
/// before it is still pending (the status follows what it reports). Posts never wait for a
/// status post.
fn claim_status_sql(backend: Backend) -> String {
    format!(
        "UPDATE outbox SET claim_token = $1, lease_until = $2, sends = sends + 1 \
         WHERE id IN (SELECT o.id FROM outbox o WHERE o.lane = 'status' AND {o} \
             AND o.next_attempt_at <= $3 AND (o.lease_until IS NULL OR o.lease_until < $3) \
             AND NOT EXISTS (SELECT 1 FROM outbox n WHERE n.incident_id = o.incident_id \
                 AND n.lane = 'status' AND {n} \
                 AND (n.id > o.id OR n.lease_until >= $3)) \
             AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.channel = o.channel \
                 AND p.lane = 'post' AND {p} AND p.id < o.id) \
             AND o.channel = COALESCE($5, o.channel) \
             ORDER BY o.id LIMIT $4{}) \
         RETURNING id, incident_id, channel, body, attempts, sends, created_at, lane, claim_token",
        skip_locked(backend),
        o = pending("o"),
        n = pending("n"),
        p = pending("p"),
    )
}

/// The claim statements, post lane then status lane: SQLite's, then PostgreSQL's.
static CLAIM_SQL: LazyLock<[[String; 2]; 2]> = LazyLock::new(|| {
    [Backend::Sqlite, Backend::Postgres].map(|b| [claim_posts_sql(b), claim_status_sql(b)])
});

/// Rows another worker has locked are skipped, not waited for; SQLite has one writer, so
/// its UPDATE is atomic without it.
fn skip_locked(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    }
}

const EVENT_COLUMNS_SQL: &str = "SELECT incident_id, seq, recorded_at, occurred_at, \
     actor_platform, actor_id, actor_name, data FROM events WHERE incident_id = $1 ORDER BY seq";

const EVENTS_AFTER_SQL: &str = "SELECT incident_id, seq, recorded_at, occurred_at, \
     actor_platform, actor_id, actor_name, data FROM events WHERE incident_id = $1 AND seq > $2 \
     ORDER BY seq";

const INCIDENT_SQL: &str = "SELECT id, channel, platform, severity, incident_type, title, drill, \
     declared_at, resolved_at, final_summary_posted, last_seq FROM incidents WHERE id = $1";

impl Store {
    /// Connect, create the SQLite file if needed (WAL, synchronous=FULL), run migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let store = Store::open(url).await?;
        migrator(store.backend).run(&store.pool).await?;
        Ok(store)
    }

    /// Connect without touching the schema (`drbot doctor` reports what is pending).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else if url.starts_with("sqlite:") {
            (Backend::Sqlite, sqlite_url(url))
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let pool = match backend {
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(POOL_SIZE)
                    .connect(&url)
                    .await?
            }
            Backend::Sqlite => {
                let memory = is_sqlite_memory(&url);
                let options = AnyPoolOptions::new().after_connect(|conn, _meta| {
                    Box::pin(async move {
                        sqlx::raw_sql(SQLITE_PRAGMAS).execute(conn).await?;
                        Ok(())
                    })
                });
                let options = if memory {
                    // Each connection to `:memory:` is its own database, and the database
                    // vanishes with its last connection: keep exactly one, forever.
                    options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    options.max_connections(POOL_SIZE)
                };
                options.connect(&url).await?
            }
        };
        let sqlite_path = (backend == Backend::Sqlite)
            .then(|| sqlite_file(&url))
            .flatten();
        Ok(Store {
            backend,
            pool,
            sqlite_path,
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE outbox SET lease_until = NULL WHERE lease_until IS NOT NULL")
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE operations SET lease_until = NULL WHERE lease_until IS NOT NULL")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Migrations this drbot has that the database has not applied, by version.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let applied: Vec<i64> =
            match sqlx::query("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await
            {
                Ok(rows) => rows
                    .iter()
                    .map(|r| get::<i64>(r, "version"))
                    .collect::<Result<_, _>>()?,
                // No bookkeeping table: nothing was ever applied.
                Err(sqlx::Error::Database(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
        Ok(migrator(self.backend)
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    /// Close every connection (after in-flight queries finish); later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn commit(&self, commit: Commit) -> Result<Committed, StoreError> {
        let mut tx = self.pool.begin().await?;
        match apply(&mut tx, commit).await {
            Ok(done) => {
                tx.commit().await?;
                Ok(done)
            }
            Err(e) => {
                // The rollback error, if any, matters less than what made the commit fail.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// The id a new incident should take; see [`Target::New`].
    pub async fn next_incident_id(&self) -> Result<IncidentId, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 AS next FROM incidents")
            .fetch_one(&self.pool)
            .await?;
        get(&row, "next")
    }

    pub async fn incident(&self, id: IncidentId) -> Result<Option<IncidentRow>, StoreError> {
        sqlx::query(INCIDENT_SQL)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| decode_incident(&row))
            .transpose()
    }

    /// The open incident in a channel, if any.
    pub async fn open_incident_in(&self, channel: &str) -> Result<Option<IncidentId>, StoreError> {
        self.id_query(
            "SELECT id FROM incidents WHERE channel = $1 AND resolved_at IS NULL",
            channel,
        )
        .await
    }

    /// The newest incident of a channel, open or resolved.
    pub async fn latest_incident_in(
        &self,
        channel: &str,
    ) -> Result<Option<IncidentId>, StoreError> {
        self.id_query(
            "SELECT id FROM incidents WHERE channel = $1 ORDER BY id DESC LIMIT 1",
            channel,
        )
        .await
    }

    async fn id_query(
        &self,
        sql: &'static str,
        channel: &str,
    ) -> Result<Option<IncidentId>, StoreError> {
        // No stored channel holds NUL (see `refuse_nul`), and PostgreSQL would fail the query.
        if channel.contains('\0') {
            return Ok(None);
        }
        sqlx::query(sql)
            .bind(channel.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| get(&row, "id"))
            .transpose()
    }

    /// Incidents the scheduler must look at: open, or resolved with the final summary owed.
    pub async fn active_incidents(&self) -> Result<Vec<IncidentId>, StoreError> {
        sqlx::query(
            "SELECT id FROM incidents WHERE resolved_at IS NULL OR NOT final_summary_posted \
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| get(row, "id"))
        .collect()
    }

    pub async fn events(&self, incident: IncidentId) -> Result<Vec<Event>, StoreError> {
        sqlx::query(EVENT_COLUMNS_SQL)
            .bind(incident)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(decode_event)
            .collect()
    }

    /// Events after sequence number `after`, in order (bringing a remembered fold up to date).
    pub async fn events_after(
        &self,
        incident: IncidentId,
        after: i64,
    ) -> Result<Vec<Event>, StoreError> {
        sqlx::query(EVENTS_AFTER_SQL)
            .bind(incident)
            .bind(after)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(decode_event)
            .collect()
    }

    /// Events in order without loading them all (exports of very long timelines).
    pub fn stream_events(
        &self,
        incident: IncidentId,
    ) -> impl futures_util::Stream<Item = Result<Event, StoreError>> + Send + '_ {
        sqlx::query(EVENT_COLUMNS_SQL)
            .bind(incident)
            .fetch(&self.pool)
            .map(|row| decode_event(&row?))
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
        // Assignments read the row as it was, so previous_claim gets the earlier holder.
        let mut rows = sqlx::query(
            "UPDATE operations SET previous_claim = claim_token, claim_token = $1, \
             lease_until = $2 WHERE status IN ('queued', 'launched') \
             AND (claim_token = $1 OR lease_until IS NULL OR lease_until < $3) \
             RETURNING incident_id, operation, kind, object_name, backend, spec, status, \
             launched_at, claim_token, previous_claim",
        )
        .bind(token.to_owned())
        .bind(fmt_time(lease_until))
        .bind(fmt_time(now))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(decode_operation)
        .collect::<Result<Vec<_>, _>>()?;
        rows.sort_by(|a, b| (a.incident, &a.operation).cmp(&(b.incident, &b.operation)));
        Ok(rows)
    }

    /// Let go of this replica's operations (a clean stop): another replica takes them at once.
    pub async fn release_operations(&self, token: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE operations SET lease_until = NULL WHERE claim_token = $1 \
             AND status <> 'finished'",
        )
        .bind(token.to_owned())
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Operations with status `queued` or `launched`, claimed or not (inspection).
    pub async fn unfinished_operations(&self) -> Result<Vec<OperationRow>, StoreError> {
        sqlx::query(
            "SELECT incident_id, operation, kind, object_name, backend, spec, status, launched_at \
             FROM operations WHERE status IN ('queued', 'launched') \
             ORDER BY incident_id, operation",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(decode_operation)
        .collect()
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
        let mut tx = self.pool.begin().await?;
        let mut claimed = Vec::new();
        let lanes = match self.backend {
            Backend::Sqlite => &CLAIM_SQL[0],
            Backend::Postgres => &CLAIM_SQL[1],
        };
        for sql in lanes {
            let rows = sqlx::query(sql.as_str())
                .bind(token.to_owned())
                .bind(fmt_time(lease_until))
                .bind(fmt_time(now))
                .bind(limit)
                .bind(channel.map(str::to_owned))
                .fetch_all(&mut *tx)
                .await?;
            for row in &rows {
                claimed.push(decode_outbox(row)?);
            }
        }
        for row in claimed.iter_mut().filter(|r| r.status) {
            let Some(incident) = row.incident else {
                continue;
            };
            // The lane's failures carry over to the post that replaces them, so an edit that
            // keeps failing reaches the delivery bound however often the status changes.
            let carried = sqlx::query(
                "SELECT COALESCE(MAX(attempts), 0) AS carried FROM outbox \
                 WHERE lane = 'status' AND incident_id = $2 AND id < $3 \
                 AND delivered_at IS NULL AND gave_up_at IS NULL \
                 AND (lease_until IS NULL OR lease_until < $1)",
            )
            .bind(fmt_time(now))
            .bind(incident)
            .bind(row.id)
            .fetch_one(&mut *tx)
            .await?;
            let carried: i64 = get(&carried, "carried")?;
            if carried > 0 {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + $1, sends = sends + $1 WHERE id = $2",
                )
                .bind(carried)
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
                row.attempts += carried;
                row.earlier_sends += carried;
            }
            sqlx::query(
                "UPDATE outbox SET delivered_at = $1, receipt = 'superseded', lease_until = NULL \
                 WHERE lane = 'status' AND incident_id = $2 AND id < $3 \
                 AND delivered_at IS NULL AND gave_up_at IS NULL \
                 AND (lease_until IS NULL OR lease_until < $1)",
            )
            .bind(fmt_time(now))
            .bind(incident)
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
            let claims = sqlx::query(
                "UPDATE incidents SET status_claims = status_claims + 1 \
                 WHERE id = $1 AND status_message IS NULL RETURNING status_claims",
            )
            .bind(incident)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(claims) = claims {
                row.status_in_doubt = get::<i64>(&claims, "status_claims")? > 1;
            }
        }
        tx.commit().await?;
        claimed.sort_by_key(|r| r.id);
        Ok(claimed)
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
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE outbox SET delivered_at = $1, receipt = $2, lease_until = NULL \
             WHERE id = $3 AND claim_token = $4 AND delivered_at IS NULL AND gave_up_at IS NULL",
        )
        .bind(fmt_time(at))
        .bind(receipt.to_owned())
        .bind(row.id)
        .bind(row.claim_token.clone())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Ok(false);
        }
        if let Some(incident) = row.incident.filter(|_| row.status) {
            sqlx::query("UPDATE incidents SET status_message = $1 WHERE id = $2")
                .bind(receipt.to_owned())
                .bind(incident)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Record a failed attempt under the claim and when to try again; `false` when the claim
    /// was lost.
    pub async fn record_failure(
        &self,
        row: &OutboxRow,
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, \
             lease_until = NULL \
             WHERE id = $3 AND claim_token = $4 AND delivered_at IS NULL AND gave_up_at IS NULL",
        )
        .bind(fmt_time(next_attempt))
        .bind(error.to_owned())
        .bind(row.id)
        .bind(row.claim_token.clone())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Undelivered rows not given up, oldest first (inspection: metrics, tests).
    pub async fn pending_rows(&self) -> Result<Vec<PendingPost>, StoreError> {
        sqlx::query(
            "SELECT id, channel, lane, attempts, next_attempt_at FROM outbox \
             WHERE delivered_at IS NULL AND gave_up_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(PendingPost {
                id: get(row, "id")?,
                channel: get(row, "channel")?,
                status: get::<String>(row, "lane")? == "status",
                attempts: get(row, "attempts")?,
                next_attempt_at: get_time(row, "next_attempt_at")?,
            })
        })
        .collect()
    }

    /// Posts given up, oldest first: (channel, last error).
    pub async fn given_up(&self) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query(
            "SELECT channel, last_error FROM outbox WHERE gave_up_at IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok((
                get(row, "channel")?,
                get::<Option<String>>(row, "last_error")?.unwrap_or_default(),
            ))
        })
        .collect()
    }

    /// Whether a chat request with this key already changed something.
    pub async fn request_seen(&self, key: &str) -> Result<bool, StoreError> {
        if key.contains('\0') {
            return Ok(false);
        }
        Ok(
            sqlx::query("SELECT request_key FROM requests WHERE request_key = $1")
                .bind(key.to_owned())
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Forget request keys older than `before`: platforms stop redelivering within minutes.
    pub async fn forget_requests(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM requests WHERE received_at < $1")
            .bind(fmt_time(before))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// The platform id of the incident's pinned status message, once posted.
    pub async fn status_message(&self, incident: IncidentId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT status_message FROM incidents WHERE id = $1")
            .bind(incident)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => get(&row, "status_message"),
            None => Ok(None),
        }
    }

    /// Undelivered posts and the age of the oldest: outbox depth for metrics.
    pub async fn outbox_backlog(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox \
             WHERE delivered_at IS NULL AND gave_up_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((get(&row, "n")?, get_opt_time(&row, "oldest")?))
    }

    /// A cheap round trip for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 AS one").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// Undelivered posts (all channels): depth for metrics and for draining before exit.
    pub async fn pending_posts(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        get(&row, "n")
    }
}

/// `sqlite://file` opens read-write without creating; a store must come up on a fresh disk.
fn sqlite_url(url: &str) -> String {
    if is_sqlite_memory(url) || url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// The file behind a SQLite URL (`None` for an in-memory database).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if is_sqlite_memory(url) {
        return None;
    }
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty()).then(|| path.into())
}

fn is_sqlite_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Everything a commit writes, inside the caller's transaction.
async fn apply(
    tx: &mut Transaction<'static, Any>,
    commit: Commit,
) -> Result<Committed, StoreError> {
    let Commit {
        target,
        events,
        posts,
        operations,
        projection: p,
        request_key,
        gave_up,
    } = commit;
    refuse_nul(&target, &events, &posts, &p, request_key.as_deref())?;
    let count = i64::try_from(events.len())
        .map_err(|_| StoreError::Corrupt("too many events in one commit".into()))?;

    let (id, first_seq) = match &target {
        Target::New {
            id,
            channel,
            platform,
        } => {
            sqlx::query(
                "INSERT INTO incidents (id, channel, platform, severity, incident_type, title, drill, \
                 declared_at, resolved_at, final_summary_posted, last_seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(*id)
            .bind(channel.clone())
            .bind(platform.clone())
            .bind(p.severity.clone())
            .bind(p.incident_type.clone())
            .bind(p.title.clone())
            .bind(p.drill)
            .bind(fmt_time(p.declared_at))
            .bind(p.resolved_at.map(fmt_time))
            .bind(p.final_summary_posted)
            .bind(count)
            .execute(&mut **tx)
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(which) if which.contains("open_channel") || which.contains("channel") => {
                    StoreError::OpenIncidentExists(channel.clone())
                }
                Some(_) => StoreError::Conflict,
                None => e.into(),
            })?;
            (*id, 1)
        }
        Target::Existing { id, expected_seq } => {
            // Claiming the new sequence numbers first both detects a concurrent writer and,
            // on PostgreSQL, takes the row lock that makes the next writer wait for us and
            // then find `last_seq` moved.
            let claimed = sqlx::query(
                "UPDATE incidents SET last_seq = $1 WHERE id = $2 AND last_seq = $3 \
                 RETURNING channel",
            )
            .bind(expected_seq + count)
            .bind(*id)
            .bind(*expected_seq)
            .fetch_optional(&mut **tx)
            .await?;
            let Some(row) = claimed else {
                let exists = sqlx::query("SELECT id FROM incidents WHERE id = $1")
                    .bind(*id)
                    .fetch_optional(&mut **tx)
                    .await?;
                return Err(match exists {
                    // Retrying could never help: say so rather than report a conflict.
                    None => StoreError::Corrupt(format!("incident {id} does not exist")),
                    Some(_) => StoreError::Conflict,
                });
            };
            let channel: String = get(&row, "channel")?;
            sqlx::query(
                "UPDATE incidents SET severity = $1, incident_type = $2, title = $3, drill = $4, \
                 declared_at = $5, resolved_at = $6, final_summary_posted = $7 WHERE id = $8",
            )
            .bind(p.severity.clone())
            .bind(p.incident_type.clone())
            .bind(p.title.clone())
            .bind(p.drill)
            .bind(fmt_time(p.declared_at))
            .bind(p.resolved_at.map(fmt_time))
            .bind(p.final_summary_posted)
            .bind(*id)
            .execute(&mut **tx)
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(_) => StoreError::OpenIncidentExists(channel),
                None => e.into(),
            })?;
            (*id, expected_seq + 1)
        }
    };

    if let Some(key) = request_key {
        sqlx::query(
            "INSERT INTO requests (request_key, incident_id, received_at) VALUES ($1, $2, $3)",
        )
        .bind(key.clone())
        .bind(id)
        .bind(fmt_time(
            events.first().map_or(p.declared_at, |e| e.recorded_at),
        ))
        .execute(&mut **tx)
        .await
        .map_err(|e| match unique_violation(&e) {
            Some(_) => StoreError::Duplicate(format!("request {key}")),
            None => e.into(),
        })?;
    }

    if let Some(g) = gave_up {
        let at = events.first().map_or(p.declared_at, |e| e.recorded_at);
        let done = sqlx::query(
            "UPDATE outbox SET gave_up_at = $1, last_error = $2, attempts = attempts + 1, \
             lease_until = NULL \
             WHERE id = $3 AND claim_token = $4 AND delivered_at IS NULL AND gave_up_at IS NULL",
        )
        .bind(fmt_time(at))
        .bind(g.error)
        .bind(g.outbox)
        .bind(g.claim_token)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(format!("outbox row {}", g.outbox)));
        }
    }

    let seqs: Vec<i64> = (first_seq..).take(events.len()).collect();
    insert_events(tx, id, seqs.iter().copied().zip(events)).await?;

    for post in posts {
        let created = fmt_time(post.created_at);
        sqlx::query(
            "INSERT INTO outbox (incident_id, channel, body, created_at, next_attempt_at, \
             attempts, lane) VALUES ($1, $2, $3, $4, $5, 0, $6)",
        )
        .bind(id)
        .bind(post.channel)
        .bind(post.body)
        .bind(created.clone())
        .bind(created)
        .bind(if post.status { "status" } else { "post" })
        .execute(&mut **tx)
        .await?;
    }

    for change in operations {
        apply_operation(tx, id, change).await?;
    }

    Ok(Committed { incident: id, seqs })
}

/// PostgreSQL cannot store NUL in text; SQLite could, but then one database would keep what
/// the other refuses. Event payloads are JSON, where NUL is escaped; plain columns are not.
fn refuse_nul(
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

/// Multi-row insert sizes: any count is a sum of a few of them, so a long commit costs few
/// round trips while the set of distinct statements (and prepared-statement cache entries)
/// stays small. 64 rows × 10 parameters is far below either backend's parameter limit.
const EVENT_CHUNKS: [usize; 4] = [64, 16, 4, 1];
const EVENT_COLUMNS: usize = 10;

static EVENT_INSERTS: LazyLock<[String; 4]> = LazyLock::new(|| EVENT_CHUNKS.map(event_insert_sql));

fn event_insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events (incident_id, seq, recorded_at, occurred_at, actor_platform, \
         actor_id, actor_name, kind, data, dedupe_key) VALUES ",
    );
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..EVENT_COLUMNS {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * EVENT_COLUMNS + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

fn bind_event<'q>(
    q: Query<'q, Any, AnyArguments>,
    id: IncidentId,
    seq: i64,
    ev: NewEvent,
) -> Result<Query<'q, Any, AnyArguments>, StoreError> {
    let data = serde_json::to_string(&ev.kind)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode event: {e}")))?;
    Ok(q.bind(id)
        .bind(seq)
        .bind(fmt_time(ev.recorded_at))
        .bind(ev.occurred_at.map(fmt_time))
        .bind(ev.actor.platform)
        .bind(ev.actor.id)
        .bind(ev.actor.name)
        .bind(ev.kind.name())
        .bind(data)
        .bind(ev.dedupe_key))
}

async fn insert_events(
    tx: &mut Transaction<'static, Any>,
    id: IncidentId,
    events: impl Iterator<Item = (i64, NewEvent)>,
) -> Result<(), StoreError> {
    let (keyed, plain): (Vec<_>, Vec<_>) = events.partition(|(_, ev)| ev.dedupe_key.is_some());

    // Keyed events go one by one so that a violation names the key that was already used.
    for (seq, ev) in keyed {
        let key = ev.dedupe_key.clone().unwrap_or_default();
        bind_event(sqlx::query(EVENT_INSERTS[3].as_str()), id, seq, ev)?
            .execute(&mut **tx)
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(which) if which.contains("dedupe_key") => StoreError::Duplicate(key),
                Some(_) => StoreError::Conflict,
                None => e.into(),
            })?;
    }

    let mut rest = plain.into_iter();
    for (size, sql) in EVENT_CHUNKS.iter().zip(EVENT_INSERTS.iter()) {
        while rest.len() >= *size {
            let mut q = sqlx::query(sql.as_str());
            for (seq, ev) in rest.by_ref().take(*size) {
                q = bind_event(q, id, seq, ev)?;
            }
            q.execute(&mut **tx)
                .await
                .map_err(|e| match unique_violation(&e) {
                    // Only the sequence key is left to collide: someone else appended.
                    Some(_) => StoreError::Conflict,
                    None => e.into(),
                })?;
        }
    }
    Ok(())
}

async fn apply_operation(
    tx: &mut Transaction<'static, Any>,
    id: IncidentId,
    change: OperationChange,
) -> Result<(), StoreError> {
    let (operation, status, sql, at): (String, &str, &'static str, DateTime<Utc>) = match change {
        OperationChange::Queue {
            operation,
            kind,
            object_name,
            backend,
            spec,
        } => {
            sqlx::query(
                "INSERT INTO operations (incident_id, operation, kind, object_name, backend, spec, \
                 status) VALUES ($1, $2, $3, $4, $5, $6, 'queued')",
            )
            .bind(id)
            .bind(operation.clone())
            .bind(kind)
            .bind(object_name.clone())
            .bind(backend.clone())
            .bind(spec)
            .execute(&mut **tx)
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(which) if which.contains("object_name") => {
                    StoreError::Duplicate(format!("{backend} object {object_name}"))
                }
                Some(_) => StoreError::Duplicate(format!("operation {operation}")),
                None => e.into(),
            })?;
            return Ok(());
        }
        OperationChange::Launched { operation, at } => (
            operation,
            "launched",
            "UPDATE operations SET status = $1, launched_at = $2 \
             WHERE incident_id = $3 AND operation = $4",
            at,
        ),
        OperationChange::Finished { operation, at } => (
            operation,
            "finished",
            "UPDATE operations SET status = $1, finished_at = $2 \
             WHERE incident_id = $3 AND operation = $4",
            at,
        ),
    };
    let done = sqlx::query(sql)
        .bind(status)
        .bind(fmt_time(at))
        .bind(id)
        .bind(operation.clone())
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Corrupt(format!(
            "operation {operation} of incident {id} was never queued"
        )));
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
        // Hold several connections at once so the pool must open new ones.
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut conn = store.pool.acquire().await.expect("acquire");
            let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .expect("journal_mode");
            let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .expect("synchronous");
            let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(&mut *conn)
                .await
                .expect("foreign_keys");
            let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                .fetch_one(&mut *conn)
                .await
                .expect("busy_timeout");
            assert_eq!(journal, "wal");
            assert_eq!(synchronous, 2, "FULL");
            assert_eq!(fk, 1);
            assert_eq!(busy, 5000);
            held.push(conn);
        }
    }

    #[test]
    fn sqlite_urls_create_the_file_unless_told_otherwise() {
        assert_eq!(sqlite_url("sqlite://a.db"), "sqlite://a.db?mode=rwc");
        assert_eq!(
            sqlite_url("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        assert_eq!(sqlite_url("sqlite://a.db?mode=ro"), "sqlite://a.db?mode=ro");
        assert_eq!(sqlite_url("sqlite::memory:"), "sqlite::memory:");
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
}
