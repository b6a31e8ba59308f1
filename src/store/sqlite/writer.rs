//! The writer thread: group commit in savepoints, and the WAL checkpoints between batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::Connection;

use super::Lite;
use super::rows::{lite, optional, unique_violation};
use crate::store::plan::{EventInserts, Plan, Step};
use crate::store::{Commit, Committed, StoreError, sql};

/// Jobs one transaction takes at most; the rest wait for the next.
const MAX_BATCH: usize = 512;
/// Commits between two checkpoints asked of the checkpointer: see [`write_batches`].
const CHECKPOINT_EVERY: u32 = 128;
/// A writer's checkpoint this long is logged: every commit queued meanwhile waited for it.
const SLOW_CHECKPOINT: std::time::Duration = std::time::Duration::from_millis(20);

/// What a job hands back when it succeeded inside its savepoint: told whether the batch's
/// commit made it durable.
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;

pub(in crate::store) trait Job: Send {
    /// Runs inside the batch; `None` when it failed (it has reported why, and its savepoint
    /// is rolled back).
    fn run(self: Box<Self>, conn: &Connection) -> Option<Finish>;
    /// The batch could not start.
    fn abandon(self: Box<Self>, why: String);
}

pub(in crate::store) struct Work<F, T> {
    pub(in crate::store) work: F,
    pub(in crate::store) done: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
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

/// The checkpointer's side of the writer: asking for a checkpoint, and hearing that one ended.
pub(in crate::store) struct Checkpoints {
    pub(in crate::store) ask: mpsc::SyncSender<()>,
    pub(in crate::store) copied: Arc<AtomicBool>,
}

/// What the writer thread works from, besides its connection.
pub(in crate::store) struct Batches<'w> {
    pub(in crate::store) queue: &'w mpsc::Receiver<Box<dyn Job>>,
    pub(in crate::store) checkpoints: Option<&'w Checkpoints>,
    pub(in crate::store) closed: &'w AtomicBool,
    pub(in crate::store) chains: &'w Mutex<crate::store::Chains>,
}

/// The writer thread: take everything queued, run each job in a savepoint of one
/// transaction, commit once, then tell every job; under load, sleep a moment for company
/// before the next batch ([`crate::store::Linger`]).
///
/// Checkpoints come in two steps. The checkpointer copies the WAL back into the database on
/// a connection of its own while commits go on (on the writer, that copy and its fsync once
/// stalled every queued commit by 100–400 ms). Alone it never caught up with a writer that
/// kept committing, so the WAL never started over: it grew by every commit's pages (47 MB
/// for 1 750 notes), and each commit extended the file. So once it has copied, the writer,
/// between two batches, copies the few frames committed meanwhile; the WAL is then all in
/// the database, and the next commit writes it from its start again.
pub(in crate::store) fn write_batches(conn: &Mutex<Connection>, batches: Batches<'_>) {
    let Batches {
        queue,
        checkpoints,
        closed,
        chains,
    } = batches;
    let mut since_checkpoint = 0;
    let mut linger = crate::store::Linger::default();
    let mut lingering = false;
    loop {
        if lingering {
            // A sleep rather than a wait on the queue, which each arrival would wake.
            std::thread::sleep(crate::store::LINGER);
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
pub(in crate::store) fn checkpoint_when_asked(
    conn: &Connection,
    asked: &mpsc::Receiver<()>,
    copied: &AtomicBool,
) {
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

impl Lite {
    pub(in crate::store) fn submit(
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
}

/// Everything a commit writes ([`Plan`]), inside the writer's savepoint for it.
fn apply(c: &Connection, commit: Commit) -> Result<Committed, StoreError> {
    let plan = Plan::of(&commit, EventInserts::Chunked)?;
    let mut claimed: Option<String> = None;
    for step in &plan.steps {
        let changed = run_step(c, step, &mut claimed).map_err(|e| {
            match (&step.unique, unique_violation(&e)) {
                (Some(on), Some(which)) => on.error(&which, claimed.as_deref()),
                _ => StoreError::Sqlite(e),
            }
        })?;
        if let (0, Some(must)) = (changed, &step.must_change) {
            let exists = match must.incident_to_look_up() {
                Some(id) => optional(c, sql::INCIDENT_EXISTS, [id], |_| Ok(()))?.is_some(),
                None => true,
            };
            return Err(must.error(exists));
        }
    }
    Ok(plan.committed)
}

/// Rows the statement changed; the sequence claim keeps the channel it returns in `claimed`.
fn run_step(
    c: &Connection,
    step: &Step<'_>,
    claimed: &mut Option<String>,
) -> rusqlite::Result<usize> {
    let mut stmt = c.prepare_cached(&lite(&step.text))?;
    let args = rusqlite::params_from_iter(&step.args);
    if !step.returns_channel() {
        return stmt.execute(args);
    }
    let mut rows = stmt.query(args)?;
    let Some(row) = rows.next()? else {
        return Ok(0);
    };
    *claimed = Some(row.get("channel")?);
    Ok(1)
}
