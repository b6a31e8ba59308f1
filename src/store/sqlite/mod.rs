//! SQLite through rusqlite: one writer thread owns the write connection and commits whatever
//! is queued in one transaction (group commit: one fsync for a batch, each job in its own
//! savepoint so a refused one writes nothing), and reads run on their own connections on the
//! calling thread, which for the small reads of a command costs microseconds and no thread
//! hand-off.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, Row, params};
use sha2::{Digest, Sha384};

use super::{
    ActiveIncident, Commit, Committed, GiveUp, IncidentRow, NewEvent, OperationChange,
    OperationRow, OutboxRow, PendingPost, StoreError, Target, fmt_time, parse_time, refuse_nul,
    sql,
};
use crate::incident::{Actor, Event, EventKind, IncidentId};

/// Reader connections besides the writer's (file databases).
const READERS: usize = 4;
/// Jobs one transaction takes at most; the rest wait for the next.
const MAX_BATCH: usize = 512;
/// Commits between two checkpoints asked of the checkpointer: see [`write_batches`].
const CHECKPOINT_EVERY: u32 = 128;
/// A writer's checkpoint this long is logged: every commit queued meanwhile waited for it.
const SLOW_CHECKPOINT: std::time::Duration = std::time::Duration::from_millis(20);
/// Events one read of a long timeline brings at a time.
const STREAM_CHUNK: i64 = 2_000;

const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
     PRAGMA journal_size_limit = 16777216;";

/// What a job hands back when it succeeded inside its savepoint: told whether the batch's
/// commit made it durable.
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;

trait Job: Send {
    /// Runs inside the batch; `None` when it failed (it has reported why, and its savepoint
    /// is rolled back).
    fn run(self: Box<Self>, conn: &Connection) -> Option<Finish>;
    /// The batch could not start.
    fn abandon(self: Box<Self>, why: String);
}

struct Work<F, T> {
    work: F,
    done: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Job for Work<F, T>
where
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Option<Finish> {
        let Work { work, done } = *self;
        match work(conn) {
            Ok(value) => Some(Box::new(move |committed: Result<(), String>| {
                let _ = done.send(committed.map(|()| value).map_err(StoreError::Batch));
            })),
            Err(e) => {
                let _ = done.send(Err(e));
                None
            }
        }
    }

    fn abandon(self: Box<Self>, why: String) {
        let _ = self.done.send(Err(StoreError::Batch(why)));
    }
}

#[derive(Clone)]
pub(super) struct Lite {
    jobs: mpsc::Sender<Box<dyn Job>>,
    readers: Arc<Readers>,
    closed: Arc<AtomicBool>,
    appended: Arc<Appended>,
    /// Used on the writer thread only; shared with its loop, which starts every chain over
    /// when a batch's transaction fails.
    chains: Arc<Mutex<super::Chains>>,
}

/// Each incident's last sequence number as this process's writer left it, once the process
/// holds the database alone ([`Lite::trust_own_writes`]): then nobody else appends, and
/// "anything after seq N?" (asked before every command, to catch another writer's events) is
/// answered without a read transaction, which cost a command more CPU than its own commit.
/// A number is recorded when its commit runs, before the commit is visible to any reader, so
/// the map is never behind what a reader could see; if that commit then fails, the map is
/// ahead, which only costs a read.
#[derive(Default)]
struct Appended {
    trusted: AtomicBool,
    last: Mutex<HashMap<IncidentId, i64>>,
}

impl Appended {
    fn record(&self, id: IncidentId, seq: i64) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let known = last.entry(id).or_insert(seq);
        *known = (*known).max(seq);
    }

    /// True when the store certainly holds no event of `id` after `after`.
    fn nothing_after(&self, id: IncidentId, after: i64) -> bool {
        self.trusted.load(Ordering::Acquire)
            && self
                .last
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&id)
                .is_some_and(|last| *last <= after)
    }
}

impl std::fmt::Debug for Lite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lite")
            .field("readers", &self.readers.conns.len())
            .finish()
    }
}

struct Readers {
    conns: Vec<Arc<Mutex<Connection>>>,
    next: AtomicUsize,
}

impl Readers {
    /// A free connection if there is one, else wait for the next in turn.
    fn get(&self) -> MutexGuard<'_, Connection> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.conns.len();
        for i in 0..n {
            if let Ok(conn) = self.conns[(start + i) % n].try_lock() {
                return conn;
            }
        }
        self.conns[start % n]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a `sqlite:` URL points and how to open it.
#[derive(Debug, PartialEq, Eq, Clone)]
pub(super) enum Location {
    Memory,
    File { path: PathBuf, flags: OpenFlags },
}

pub(super) fn location(url: &str) -> Result<Location, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mode = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("mode="))
        .unwrap_or("rwc");
    if path == ":memory:" || path.is_empty() || mode == "memory" {
        return Ok(Location::Memory);
    }
    let base = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let flags = match mode {
        "ro" => base | OpenFlags::SQLITE_OPEN_READ_ONLY,
        "rw" => base | OpenFlags::SQLITE_OPEN_READ_WRITE,
        _ => base | OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    };
    Ok(Location::File {
        path: path.into(),
        flags,
    })
}

fn open_conn(at: &Location) -> Result<Connection, StoreError> {
    let conn = match at {
        Location::Memory => Connection::open_in_memory()?,
        Location::File { path, flags } => Connection::open_with_flags(path, *flags)?,
    };
    conn.execute_batch(PRAGMAS)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl Lite {
    /// Open the database; `migrate` applies the schema first (doctor only reports it).
    pub(super) fn open(at: &Location, migrate: bool) -> Result<Lite, StoreError> {
        let writer = open_conn(at)?;
        if migrate {
            run_migrations(&writer)?;
        }
        let checkpoints = match at {
            Location::Memory => None,
            Location::File { .. } => {
                writer.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
                let conn = open_conn(at)?;
                let (ask, asked) = mpsc::sync_channel::<()>(1);
                let copied = Arc::<AtomicBool>::default();
                let tell = copied.clone();
                std::thread::Builder::new()
                    .name("drbot-sqlite-checkpoint".into())
                    .spawn(move || checkpoint_when_asked(&conn, &asked, &tell))
                    .map_err(|e| {
                        StoreError::Corrupt(format!("cannot start the SQLite checkpointer: {e}"))
                    })?;
                Some(Checkpoints { ask, copied })
            }
        };
        let writer = Arc::new(Mutex::new(writer));
        let conns = match at {
            // Each connection to `:memory:` is its own database: the writer's is the only one.
            Location::Memory => vec![writer.clone()],
            Location::File { .. } => (0..READERS)
                .map(|_| open_conn(at).map(|c| Arc::new(Mutex::new(c))))
                .collect::<Result<_, _>>()?,
        };
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let closed = Arc::<AtomicBool>::default();
        let writer_sees = closed.clone();
        let chains = Arc::<Mutex<super::Chains>>::default();
        let writer_chains = chains.clone();
        std::thread::Builder::new()
            .name("drbot-sqlite-writer".into())
            .spawn(move || {
                let batches = Batches {
                    queue: &queue,
                    checkpoints: checkpoints.as_ref(),
                    closed: &writer_sees,
                    chains: &writer_chains,
                };
                write_batches(&writer, batches)
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Lite {
            jobs,
            readers: Arc::new(Readers {
                conns,
                next: AtomicUsize::new(0),
            }),
            closed,
            appended: Arc::default(),
            chains,
        })
    }

    /// This process now holds the database alone: load every incident's last sequence number
    /// (on the writer, so no commit slips between the load and the first one it records) and
    /// answer "anything newer?" from them from now on.
    pub(super) async fn trust_own_writes(&self) -> Result<(), StoreError> {
        let appended = self.appended.clone();
        self.write(move |c| {
            let known = all(c, sql::LAST_SEQS, [], |r| {
                Ok((col::<IncidentId>(r, "id")?, col::<i64>(r, "last_seq")?))
            })?;
            for (id, seq) in known {
                appended.record(id, seq);
            }
            appended.trusted.store(true, Ordering::Release);
            Ok(())
        })
        .await
    }

    /// Queue `work` for the writer now; the future says how it ended once its batch is durable.
    pub(super) fn write<T, F>(
        &self,
        work: F,
    ) -> impl Future<Output = Result<T, StoreError>> + use<T, F>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let queued = if self.closed.load(Ordering::Acquire) {
            Err(StoreError::Closed)
        } else {
            Ok(self.queue(work))
        };
        async move { queued?.await }
    }

    /// Hand `work` to the writer, closed or not.
    fn queue<T, F>(&self, work: F) -> impl Future<Output = Result<T, StoreError>> + use<T, F>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (done, answer) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send(Box::new(Work { work, done }));
        async move {
            sent.map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// A small read, on the calling thread.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        f(&self.readers.get())
    }

    /// A read that may be long (a whole timeline): off the async threads.
    pub(super) async fn read_long<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || f(&readers.get()))
            .await
            .map_err(|e| StoreError::Corrupt(format!("read task failed: {e}")))?
    }

    /// Later calls fail; what was queued before is committed first (the queue is in order,
    /// so a last no-op job lands after all of it).
    ///
    /// The writer, seeing `closed`, empties the WAL after that last commit, so that the next
    /// start has no log to read back.
    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _ = self.queue(|_: &Connection| Ok(())).await;
    }
}

/// The checkpointer's side of the writer: asking for a checkpoint, and hearing that one ended.
struct Checkpoints {
    ask: mpsc::SyncSender<()>,
    copied: Arc<AtomicBool>,
}

/// What the writer thread works from, besides its connection.
struct Batches<'w> {
    queue: &'w mpsc::Receiver<Box<dyn Job>>,
    checkpoints: Option<&'w Checkpoints>,
    closed: &'w AtomicBool,
    chains: &'w Mutex<super::Chains>,
}

/// The writer thread: take everything queued, run each job in a savepoint of one
/// transaction, commit once, then tell every job; under load, sleep a moment for company
/// before the next batch ([`super::Linger`]).
///
/// Checkpoints come in two steps. The checkpointer copies the WAL back into the database on
/// a connection of its own while commits go on (on the writer, that copy and its fsync once
/// stalled every queued commit by 100–400 ms). Alone it never caught up with a writer that
/// kept committing, so the WAL never started over: it grew by every commit's pages (47 MB
/// for 1 750 notes), and each commit extended the file. So once it has copied, the writer,
/// between two batches, copies the few frames committed meanwhile; the WAL is then all in
/// the database, and the next commit writes it from its start again.
fn write_batches(conn: &Mutex<Connection>, batches: Batches<'_>) {
    let Batches {
        queue,
        checkpoints,
        closed,
        chains,
    } = batches;
    let mut since_checkpoint = 0;
    let mut linger = super::Linger::default();
    let mut lingering = false;
    loop {
        if lingering {
            // A sleep rather than a wait on the queue, which each arrival would wake.
            std::thread::sleep(super::LINGER);
        }
        let mut batch: Vec<Box<dyn Job>> = queue.try_iter().take(MAX_BATCH).collect();
        if batch.is_empty() {
            let Ok(first) = queue.recv() else {
                return;
            };
            batch.push(first);
            batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        }
        linger.learn(lingering, batch.len());
        lingering = linger.after_commit();
        let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = control(&conn, "BEGIN IMMEDIATE") {
            let why = e.to_string();
            for job in batch {
                job.abandon(why.clone());
            }
            continue;
        }
        let mut finished = Vec::with_capacity(batch.len());
        for job in batch {
            if let Err(e) = control(&conn, "SAVEPOINT job") {
                job.abandon(e.to_string());
                continue;
            }
            match job.run(&conn) {
                Some(finish) => {
                    let _ = control(&conn, "RELEASE job");
                    finished.push(finish);
                }
                None => {
                    let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                }
            }
        }
        let outcome = control(&conn, "COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            chains.lock().unwrap_or_else(|e| e.into_inner()).reset();
            e.to_string()
        });
        if closed.load(Ordering::Acquire) {
            // A reader still in a long read gives way to the stop rather than hold it up.
            let _ = conn.busy_timeout(std::time::Duration::from_millis(200));
            checkpoint(&conn, "TRUNCATE");
        }
        for finish in finished {
            finish(outcome.clone());
        }
        let Some(checkpoints) = checkpoints else {
            continue;
        };
        if checkpoints.copied.swap(false, Ordering::AcqRel) {
            let started = std::time::Instant::now();
            checkpoint(&conn, "PASSIVE");
            let held = started.elapsed();
            if held >= SLOW_CHECKPOINT {
                tracing::warn!(
                    held_ms = held.as_millis() as u64,
                    "an SQLite checkpoint held the writer; commits waited behind it"
                );
            }
        }
        since_checkpoint += 1;
        if since_checkpoint >= CHECKPOINT_EVERY {
            // Already asked and not done yet is as good as asked now.
            let _ = checkpoints.ask.try_send(());
            since_checkpoint = 0;
        }
    }
}

/// A transaction statement, prepared once: it runs several times per batch, and preparing
/// it each time was a fifth of the writer's instructions (callgrind).
fn control(conn: &Connection, statement: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(statement)?.execute([]).map(|_| ())
}

/// The checkpointer thread: a passive checkpoint when the writer asks, and each second; it
/// ends with the writer.
fn checkpoint_when_asked(conn: &Connection, asked: &mpsc::Receiver<()>, copied: &AtomicBool) {
    loop {
        match asked.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(()) => {
                checkpoint(conn, "PASSIVE");
                copied.store(true, Ordering::Release);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => checkpoint(conn, "PASSIVE"),
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// A checkpoint that failed leaves the WAL as it was; the next one copies what this one
/// did not.
fn checkpoint(conn: &Connection, mode: &str) {
    if let Err(e) = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(())) {
        tracing::warn!(error = %e, mode, "SQLite checkpoint failed; the next one retries");
    }
}

// ---------------------------------------------------------------------------------------------
// Migrations: the same bookkeeping table sqlx keeps, so databases made by earlier versions
// carry on where they were.

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (\
     version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
     installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
     checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)";

fn applied(conn: &Connection) -> Result<Vec<i64>, StoreError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
         AND name = '_sqlx_migrations')",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare("SELECT version FROM _sqlx_migrations WHERE success = TRUE")?;
    let versions = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(versions)
}

fn run_migrations(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(MIGRATIONS_TABLE)?;
    let done = applied(conn)?;
    for (version, name, text) in super::MIGRATIONS.iter().map(|m| (m.0, m.1, m.2)) {
        if done.contains(&version) {
            continue;
        }
        let started = std::time::Instant::now();
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(text)
            .map_err(|e| StoreError::Migration(format!("{version} {name}: {e}")))?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (?1, ?2, TRUE, ?3, ?4)",
            params![
                version,
                name,
                Sha384::digest(text.as_bytes()).to_vec(),
                i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX)
            ],
        )?;
        tx.commit()?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Queries. The SQL text is shared with PostgreSQL; `$n` becomes `?n` here.

/// `$1` → `?1`: SQLite numbers `$name` parameters by first appearance, `?NNN` by its number.
fn lite(sql: &str) -> String {
    sql.replace('$', "?")
}

fn unique_violation(err: &rusqlite::Error) -> Option<String> {
    match err {
        rusqlite::Error::SqliteFailure(e, msg)
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            let ext = e.extended_code;
            (ext == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || ext == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
                .then(|| msg.clone().unwrap_or_default())
        }
        _ => None,
    }
}

fn corrupt(col: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Corrupt(format!("column {col}: {e}"))
}

fn col<T: rusqlite::types::FromSql>(row: &Row<'_>, name: &str) -> Result<T, StoreError> {
    row.get(name).map_err(|e| corrupt(name, e))
}

fn col_time(row: &Row<'_>, name: &str) -> Result<DateTime<Utc>, StoreError> {
    parse_time(&col::<String>(row, name)?)
}

fn col_opt_time(row: &Row<'_>, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    col::<Option<String>>(row, name)?
        .map(|s| parse_time(&s))
        .transpose()
}

/// Columns by position (see `sql::EVENT_SELECT`): a timeline export decodes every row, and
/// looking columns up by name cost more than the rest of the read.
fn decode_event(row: &Row<'_>) -> Result<Event, StoreError> {
    let text = |i: usize| -> Result<&str, StoreError> {
        row.get_ref(i)
            .and_then(|v| v.as_str().map_err(Into::into))
            .map_err(|e| corrupt(sql::EVENT_COLUMN_NAMES[i], e))
    };
    let kind: EventKind = serde_json::from_str(text(7)?)
        .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
    let occurred_at = match row.get_ref(3).map_err(|e| corrupt("occurred_at", e))? {
        rusqlite::types::ValueRef::Null => None,
        _ => Some(parse_time(text(3)?)?),
    };
    Ok(Event {
        incident: row.get(0).map_err(|e| corrupt("incident_id", e))?,
        seq: row.get(1).map_err(|e| corrupt("seq", e))?,
        recorded_at: parse_time(text(2)?)?,
        occurred_at,
        actor: Actor {
            platform: text(4)?.to_owned(),
            id: text(5)?.to_owned(),
            name: text(6)?.to_owned(),
        },
        kind,
    })
}

fn decode_incident(row: &Row<'_>) -> Result<IncidentRow, StoreError> {
    Ok(IncidentRow {
        id: col(row, "id")?,
        channel: col(row, "channel")?,
        platform: col(row, "platform")?,
        severity: col(row, "severity")?,
        incident_type: col(row, "incident_type")?,
        title: col(row, "title")?,
        drill: col(row, "drill")?,
        declared_at: col_time(row, "declared_at")?,
        resolved_at: col_opt_time(row, "resolved_at")?,
        final_summary_posted: col(row, "final_summary_posted")?,
        last_seq: col(row, "last_seq")?,
    })
}

fn decode_operation(row: &Row<'_>, claimed: bool) -> Result<OperationRow, StoreError> {
    let taken_over = claimed && {
        let previous: Option<String> = col(row, "previous_claim")?;
        let mine: Option<String> = col(row, "claim_token")?;
        previous.is_some_and(|p| Some(p) != mine)
    };
    Ok(OperationRow {
        incident: col(row, "incident_id")?,
        operation: col(row, "operation")?,
        kind: col(row, "kind")?,
        object_name: col(row, "object_name")?,
        backend: col(row, "backend")?,
        spec: col(row, "spec")?,
        status: col(row, "status")?,
        launched_at: col_opt_time(row, "launched_at")?,
        taken_over,
    })
}

fn decode_outbox(row: &Row<'_>) -> Result<OutboxRow, StoreError> {
    let sends: i64 = col(row, "sends")?;
    Ok(OutboxRow {
        id: col(row, "id")?,
        incident: col(row, "incident_id")?,
        channel: col(row, "channel")?,
        body: col(row, "body")?,
        attempts: col(row, "attempts")?,
        earlier_sends: sends - 1,
        created_at: col_time(row, "created_at")?,
        status: col::<String>(row, "lane")? == "status",
        claim_token: col::<Option<String>>(row, "claim_token")?.unwrap_or_default(),
        status_in_doubt: false,
    })
}

/// Every row of a query, decoded.
fn all<T>(
    conn: &Connection,
    sql_text: &str,
    args: impl rusqlite::Params,
    decode: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(&lite(sql_text))?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

fn optional<T>(
    conn: &Connection,
    sql_text: &str,
    args: impl rusqlite::Params,
    decode: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut stmt = conn.prepare_cached(&lite(sql_text))?;
    let mut rows = stmt.query(args)?;
    rows.next()?.map(decode).transpose()
}

fn exec(
    conn: &Connection,
    sql_text: &str,
    args: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    Ok(conn.prepare_cached(&lite(sql_text))?.execute(args)?)
}

impl Lite {
    pub(super) fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let done = self.read(applied)?;
        Ok(super::MIGRATIONS
            .iter()
            .map(|m| m.0)
            .filter(|v| !done.contains(v))
            .collect())
    }

    /// Pragmas of every connection (tests).
    #[cfg(test)]
    pub(super) fn pragmas(&self) -> Vec<(String, i64, i64, i64)> {
        let read = |c: &Connection| {
            let q = |p: &str| c.query_row(p, [], |r| r.get::<_, i64>(0)).unwrap_or(-1);
            let mode: String = c
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap_or_default();
            (
                mode,
                q("PRAGMA synchronous"),
                q("PRAGMA foreign_keys"),
                q("PRAGMA busy_timeout"),
            )
        };
        self.readers
            .conns
            .iter()
            .map(|c| read(&c.lock().unwrap_or_else(|e| e.into_inner())))
            .collect()
    }

    pub(super) async fn release_all_leases(&self) -> Result<(), StoreError> {
        self.write(|c| {
            exec(c, sql::RELEASE_OUTBOX_LEASES, [])?;
            exec(c, sql::RELEASE_OPERATION_LEASES, [])?;
            Ok(())
        })
        .await
    }

    pub(super) fn submit(
        &self,
        commit: Commit,
    ) -> impl Future<Output = Result<Committed, StoreError>> + use<> {
        let appended = self.appended.clone();
        let chains = self.chains.clone();
        self.write(move |c| {
            let mut chains = chains.lock().unwrap_or_else(|e| e.into_inner());
            if !chains.admits(&commit) {
                return Err(StoreError::Conflict);
            }
            let chain = (commit.target.id(), commit.chain.token);
            let done = apply(c, commit)?;
            chains.land(chain);
            if let Some(last) = done.seqs.last() {
                appended.record(done.incident, *last);
            }
            Ok(done)
        })
    }

    pub(super) fn next_incident_id(&self) -> Result<IncidentId, StoreError> {
        self.read(|c| {
            Ok(c.prepare_cached(sql::NEXT_INCIDENT_ID)?
                .query_row([], |r| r.get(0))?)
        })
    }

    pub(super) fn incident(&self, id: IncidentId) -> Result<Option<IncidentRow>, StoreError> {
        self.read(|c| optional(c, sql::INCIDENT, [id], decode_incident))
    }

    pub(super) fn id_query(
        &self,
        sql_text: &str,
        channel: &str,
    ) -> Result<Option<IncidentId>, StoreError> {
        self.read(|c| optional(c, sql_text, [channel], |r| col(r, "id")))
    }

    pub(super) fn ids(&self, sql_text: &str) -> Result<Vec<IncidentId>, StoreError> {
        self.read(|c| all(c, sql_text, [], |r| col(r, "id")))
    }

    pub(super) async fn post_notice(
        &self,
        key: &str,
        post: super::NewPost,
    ) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.write(move |c| {
            let created = fmt_time(post.created_at);
            if exec(c, sql::INSERT_NOTICE, params![key, created])? == 0 {
                return Ok(false);
            }
            exec(
                c,
                sql::INSERT_POST,
                params![
                    Option::<IncidentId>::None,
                    post.channel,
                    post.body,
                    created,
                    created,
                    "post"
                ],
            )?;
            Ok(true)
        })
        .await
    }

    pub(super) fn active_incidents(&self) -> Result<Vec<ActiveIncident>, StoreError> {
        self.read(|c| {
            all(c, sql::ACTIVE_INCIDENTS, [], |r| {
                Ok(ActiveIncident {
                    id: col(r, "id")?,
                    seq: col(r, "last_seq")?,
                })
            })
        })
    }

    pub(super) async fn events(&self, incident: IncidentId) -> Result<Vec<Event>, StoreError> {
        self.read_long(move |c| all(c, &sql::EVENTS, [incident], decode_event))
            .await
    }

    pub(super) fn events_after(
        &self,
        incident: IncidentId,
        after: i64,
    ) -> Result<Vec<Event>, StoreError> {
        if self.appended.nothing_after(incident, after) {
            return Ok(Vec::new());
        }
        self.read(|c| {
            all(
                c,
                &sql::EVENTS_AFTER,
                params![incident, after],
                decode_event,
            )
        })
    }

    /// A long timeline in chunks of [`STREAM_CHUNK`] events, read ahead on a blocking thread
    /// while the receiver works through the previous chunk (an export formats one chunk
    /// while the next is read and decoded: on two cores that halves its time). Each chunk is
    /// its own read, so no snapshot is held for the whole export; a bad row is reported and
    /// the rest still come; dropping the receiver stops the reading.
    pub(super) fn events_ahead(
        &self,
        incident: IncidentId,
    ) -> tokio::sync::mpsc::Receiver<Result<Vec<Result<Event, StoreError>>, StoreError>> {
        let (chunks, ahead) = tokio::sync::mpsc::channel(1);
        if self.closed.load(Ordering::Acquire) {
            let _ = chunks.try_send(Err(StoreError::Closed));
            return ahead;
        }
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let mut after = 0;
            loop {
                let chunk = all(
                    &readers.get(),
                    &sql::EVENTS_CHUNK,
                    params![incident, after, STREAM_CHUNK],
                    |r| Ok((r.get(1).map_err(|e| corrupt("seq", e))?, decode_event(r))),
                );
                // A short chunk is the last one.
                let (rows, next) = match chunk {
                    Ok(chunk) => {
                        let full = chunk.len() as i64 == STREAM_CHUNK;
                        let last = chunk.last().map(|(seq, _): &(i64, _)| *seq);
                        let rows = chunk.into_iter().map(|(_, ev)| ev).collect();
                        (Ok(rows), last.filter(|_| full))
                    }
                    Err(e) => (Err(e), None),
                };
                if chunks.blocking_send(rows).is_err() {
                    return;
                }
                match next {
                    Some(seq) => after = seq,
                    None => return,
                }
            }
        });
        ahead
    }

    pub(super) async fn claim_operations(
        &self,
        token: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<OperationRow>, StoreError> {
        let token = token.to_owned();
        self.write(move |c| {
            all(
                c,
                sql::CLAIM_OPERATIONS,
                params![token, fmt_time(lease_until), fmt_time(now)],
                |r| decode_operation(r, true),
            )
        })
        .await
    }

    pub(super) async fn release_operations(&self, token: &str) -> Result<u64, StoreError> {
        let token = token.to_owned();
        self.write(move |c| Ok(exec(c, sql::RELEASE_OPERATIONS, [token])? as u64))
            .await
    }

    pub(super) fn unfinished_operations(&self) -> Result<Vec<OperationRow>, StoreError> {
        self.read(|c| {
            all(c, sql::UNFINISHED_OPERATIONS, [], |r| {
                decode_operation(r, false)
            })
        })
    }

    pub(super) async fn claim_posts(
        &self,
        token: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        channel: Option<&str>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let (token, channel) = (token.to_owned(), channel.map(str::to_owned));
        self.write(move |c| {
            let (lease, now_text) = (fmt_time(lease_until), fmt_time(now));
            let mut claimed = Vec::new();
            for text in &sql::CLAIMS[0] {
                claimed.extend(all(
                    c,
                    text,
                    params![token, lease, now_text, limit, channel],
                    decode_outbox,
                )?);
            }
            for row in claimed.iter_mut().filter(|r| r.status) {
                let Some(incident) = row.incident else {
                    continue;
                };
                let carried: i64 = c
                    .prepare_cached(&lite(sql::CARRIED_ATTEMPTS))?
                    .query_row(params![now_text, incident, row.id], |r| r.get(0))?;
                if carried > 0 {
                    exec(c, sql::CARRY_ATTEMPTS, params![carried, row.id])?;
                    row.attempts += carried;
                    row.earlier_sends += carried;
                }
                exec(
                    c,
                    sql::SUPERSEDE_STATUS,
                    params![now_text, incident, row.id],
                )?;
                let claims: Option<i64> = optional(c, sql::COUNT_STATUS_CLAIM, [incident], |r| {
                    col(r, "status_claims")
                })?;
                if let Some(claims) = claims {
                    row.status_in_doubt = claims > 1;
                }
            }
            claimed.sort_by_key(|r| r.id);
            Ok(claimed)
        })
        .await
    }

    pub(super) async fn record_delivery(
        &self,
        row: &OutboxRow,
        at: DateTime<Utc>,
        receipt: &str,
    ) -> Result<bool, StoreError> {
        let (id, token, receipt) = (row.id, row.claim_token.clone(), receipt.to_owned());
        let status_of = row.incident.filter(|_| row.status);
        self.write(move |c| {
            if exec(
                c,
                sql::RECORD_DELIVERY,
                params![fmt_time(at), receipt, id, token],
            )? == 0
            {
                return Ok(false);
            }
            if let Some(incident) = status_of {
                exec(c, sql::REMEMBER_STATUS_MESSAGE, params![receipt, incident])?;
            }
            Ok(true)
        })
        .await
    }

    pub(super) async fn record_failure(
        &self,
        row: &OutboxRow,
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let (id, token, error) = (row.id, row.claim_token.clone(), error.to_owned());
        self.write(move |c| {
            Ok(exec(
                c,
                sql::RECORD_FAILURE,
                params![fmt_time(next_attempt), error, id, token],
            )? > 0)
        })
        .await
    }

    pub(super) fn pending_rows(&self) -> Result<Vec<PendingPost>, StoreError> {
        self.read(|c| {
            all(c, sql::PENDING_ROWS, [], |r| {
                Ok(PendingPost {
                    id: col(r, "id")?,
                    channel: col(r, "channel")?,
                    status: col::<String>(r, "lane")? == "status",
                    attempts: col(r, "attempts")?,
                    next_attempt_at: col_time(r, "next_attempt_at")?,
                })
            })
        })
    }

    pub(super) fn given_up(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|c| {
            all(c, sql::GIVEN_UP, [], |r| {
                Ok((
                    col(r, "channel")?,
                    col::<Option<String>>(r, "last_error")?.unwrap_or_default(),
                ))
            })
        })
    }

    pub(super) fn request_seen(&self, key: &str) -> Result<bool, StoreError> {
        self.read(|c| Ok(optional(c, sql::REQUEST_SEEN, [key], |_| Ok(()))?.is_some()))
    }

    pub(super) async fn forget_requests(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.write(move |c| Ok(exec(c, sql::FORGET_REQUESTS, [fmt_time(before)])? as u64))
            .await
    }

    pub(super) fn status_message(
        &self,
        incident: IncidentId,
    ) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            Ok(optional(c, sql::STATUS_MESSAGE, [incident], |r| {
                col::<Option<String>>(r, "status_message")
            })?
            .flatten())
        })
    }

    pub(super) fn statuspage_incident(
        &self,
        incident: IncidentId,
    ) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            Ok(optional(c, sql::STATUSPAGE_INCIDENT, [incident], |r| {
                col::<Option<String>>(r, "receipt")
            })?
            .flatten())
        })
    }

    pub(super) fn outbox_backlog(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        self.read(|c| {
            c.prepare_cached(sql::OUTBOX_BACKLOG)?
                .query_row([], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
                })
                .map_err(StoreError::from)
                .and_then(|(n, oldest)| Ok((n, oldest.map(|t| parse_time(&t)).transpose()?)))
        })
    }

    pub(super) fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Ok(c.prepare_cached("SELECT 1")?.query_row([], |_| Ok(()))?))
    }

    pub(super) fn pending_posts(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.prepare_cached(sql::PENDING_POSTS)?
                .query_row([], |r| r.get(0))?)
        })
    }
}

/// Everything a commit writes, inside the writer's savepoint for it.
fn apply(c: &Connection, commit: Commit) -> Result<Committed, StoreError> {
    let Commit {
        target,
        events,
        posts,
        operations,
        projection: p,
        request_key,
        gave_up,
        chain: _,
    } = commit;
    refuse_nul(&target, &events, &posts, &p, request_key.as_deref())?;
    let count = i64::try_from(events.len())
        .map_err(|_| StoreError::Corrupt("too many events in one commit".into()))?;
    let resolved = p.resolved_at.map(fmt_time);
    let declared = fmt_time(p.declared_at);

    let (id, first_seq) = match &target {
        Target::New {
            id,
            channel,
            platform,
        } => {
            exec(
                c,
                sql::INSERT_INCIDENT,
                params![
                    id,
                    channel,
                    platform,
                    p.severity,
                    p.incident_type,
                    p.title,
                    p.drill,
                    declared,
                    resolved,
                    p.final_summary_posted,
                    count
                ],
            )
            .map_err(|e| match &e {
                StoreError::Sqlite(inner) => match unique_violation(inner) {
                    Some(which) if which.contains("channel") => {
                        StoreError::OpenIncidentExists(channel.clone())
                    }
                    Some(_) => StoreError::Conflict,
                    None => e,
                },
                _ => e,
            })?;
            (*id, 1)
        }
        Target::Existing { id, expected_seq } => {
            let channel: Option<String> = optional(
                c,
                sql::CLAIM_SEQUENCE,
                params![expected_seq + count, id, expected_seq],
                |r| col(r, "channel"),
            )?;
            let Some(channel) = channel else {
                let exists = optional(c, sql::INCIDENT_EXISTS, [id], |_| Ok(()))?;
                return Err(match exists {
                    None => StoreError::Corrupt(format!("incident {id} does not exist")),
                    Some(()) => StoreError::Conflict,
                });
            };
            exec(
                c,
                sql::UPDATE_PROJECTION,
                params![
                    p.severity,
                    p.incident_type,
                    p.title,
                    p.drill,
                    declared,
                    resolved,
                    p.final_summary_posted,
                    id
                ],
            )
            .map_err(|e| match &e {
                StoreError::Sqlite(inner) if unique_violation(inner).is_some() => {
                    StoreError::OpenIncidentExists(channel.clone())
                }
                _ => e,
            })?;
            (*id, expected_seq + 1)
        }
    };
    let at = events.first().map_or(p.declared_at, |e| e.recorded_at);

    if let Some(key) = request_key {
        exec(c, sql::INSERT_REQUEST, params![key, id, fmt_time(at)]).map_err(|e| match &e {
            StoreError::Sqlite(inner) if unique_violation(inner).is_some() => {
                StoreError::Duplicate(format!("request {key}"))
            }
            _ => e,
        })?;
    }

    if let Some(GiveUp {
        outbox,
        claim_token,
        error,
    }) = gave_up
        && exec(
            c,
            sql::GIVE_UP,
            params![fmt_time(at), error, outbox, claim_token],
        )? == 0
    {
        return Err(StoreError::LeaseLost(format!("outbox row {outbox}")));
    }

    let seqs: Vec<i64> = (first_seq..).take(events.len()).collect();
    insert_events(c, id, seqs.iter().copied().zip(events))?;

    for post in posts {
        let created = fmt_time(post.created_at);
        exec(
            c,
            sql::INSERT_POST,
            params![
                id,
                post.channel,
                post.body,
                created,
                created,
                if post.status { "status" } else { "post" }
            ],
        )?;
    }

    for change in operations {
        apply_operation(c, id, change)?;
    }
    Ok(Committed { incident: id, seqs })
}

fn insert_events(
    c: &Connection,
    id: IncidentId,
    events: impl Iterator<Item = (i64, NewEvent)>,
) -> Result<(), StoreError> {
    let (keyed, plain): (Vec<_>, Vec<_>) = events.partition(|(_, ev)| ev.dedupe_key.is_some());
    // Keyed events go one by one so that a violation names the key that was already used.
    for (seq, ev) in keyed {
        let key = ev.dedupe_key.clone().unwrap_or_default();
        insert_chunk(c, 1, id, vec![(seq, ev)]).map_err(|e| match &e {
            StoreError::Sqlite(inner) => match unique_violation(inner) {
                Some(which) if which.contains("dedupe_key") => StoreError::Duplicate(key),
                Some(_) => StoreError::Conflict,
                None => e,
            },
            _ => e,
        })?;
    }
    let mut rest = plain.into_iter();
    for size in sql::EVENT_CHUNKS {
        while rest.len() >= size {
            let chunk: Vec<_> = rest.by_ref().take(size).collect();
            insert_chunk(c, size, id, chunk).map_err(|e| match &e {
                // Only the sequence key is left to collide: someone else appended.
                StoreError::Sqlite(inner) if unique_violation(inner).is_some() => {
                    StoreError::Conflict
                }
                _ => e,
            })?;
        }
    }
    Ok(())
}

fn insert_chunk(
    c: &Connection,
    size: usize,
    id: IncidentId,
    chunk: Vec<(i64, NewEvent)>,
) -> Result<(), StoreError> {
    let mut stmt = c.prepare_cached(&lite(sql::event_insert(size)))?;
    let mut i = 1;
    for (seq, ev) in chunk {
        let data = serde_json::to_string(&ev.kind)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode event: {e}")))?;
        stmt.raw_bind_parameter(i, id)?;
        stmt.raw_bind_parameter(i + 1, seq)?;
        stmt.raw_bind_parameter(i + 2, fmt_time(ev.recorded_at))?;
        stmt.raw_bind_parameter(i + 3, ev.occurred_at.map(fmt_time))?;
        stmt.raw_bind_parameter(i + 4, &ev.actor.platform)?;
        stmt.raw_bind_parameter(i + 5, &ev.actor.id)?;
        stmt.raw_bind_parameter(i + 6, &ev.actor.name)?;
        stmt.raw_bind_parameter(i + 7, ev.kind.name())?;
        stmt.raw_bind_parameter(i + 8, data)?;
        stmt.raw_bind_parameter(i + 9, &ev.dedupe_key)?;
        i += sql::EVENT_COLUMNS;
    }
    stmt.raw_execute()?;
    Ok(())
}

fn apply_operation(
    c: &Connection,
    id: IncidentId,
    change: OperationChange,
) -> Result<(), StoreError> {
    let (operation, status, sql_text, at) = match change {
        OperationChange::Queue {
            operation,
            kind,
            object_name,
            backend,
            spec,
        } => {
            return exec(
                c,
                sql::QUEUE_OPERATION,
                params![id, operation, kind, object_name, backend, spec],
            )
            .map(|_| ())
            .map_err(|e| match &e {
                StoreError::Sqlite(inner) => match unique_violation(inner) {
                    Some(which) if which.contains("object_name") => {
                        StoreError::Duplicate(format!("{backend} object {object_name}"))
                    }
                    Some(_) => StoreError::Duplicate(format!("operation {operation}")),
                    None => e,
                },
                _ => e,
            });
        }
        OperationChange::Launched { operation, at } => {
            (operation, "launched", sql::OPERATION_LAUNCHED, at)
        }
        OperationChange::Finished { operation, at } => {
            (operation, "finished", sql::OPERATION_FINISHED, at)
        }
    };
    if exec(c, sql_text, params![status, fmt_time(at), id, operation])? == 0 {
        return Err(StoreError::Corrupt(format!(
            "operation {operation} of incident {id} was never queued"
        )));
    }
    Ok(())
}

/// The file's path, for the one-process lock.
pub(super) fn file_of(at: &Location) -> Option<&Path> {
    match at {
        Location::Memory => None,
        Location::File { path, .. } => Some(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statement whose plan depends on a bound value (a bare `LIMIT $n`) is prepared again
    /// each time one is bound: the outbox claims were, at about 350 000 instructions a time.
    #[test]
    fn the_outbox_claims_and_the_chunked_read_are_prepared_once() {
        let conn = Connection::open_in_memory().unwrap();
        run_migrations(&conn).unwrap();
        let reprepared =
            |stmt: &rusqlite::Statement<'_>| stmt.get_status(rusqlite::StatementStatus::RePrepare);
        for text in &sql::CLAIMS[0] {
            let mut stmt = conn.prepare_cached(&lite(text)).unwrap();
            for (n, channel) in [None, Some("slack:C1"), None, Some("statuspage")]
                .into_iter()
                .enumerate()
            {
                let now = format!("2026-02-08T10:00:0{n}.000000Z");
                let args = params!["t", now, now, 10 + n as i64, channel];
                assert_eq!(stmt.query_map(args, |_| Ok(())).unwrap().count(), 0);
            }
            assert_eq!(reprepared(&stmt), 0, "{text}");
        }
        let mut stmt = conn.prepare_cached(&lite(&sql::EVENTS_CHUNK)).unwrap();
        for n in 0..4 {
            let args = params![1, n, 2_000 + n];
            assert_eq!(stmt.query_map(args, |_| Ok(())).unwrap().count(), 0);
        }
        assert_eq!(reprepared(&stmt), 0);
    }
}
