//! SQLite through rusqlite: one writer thread owns the write connection and commits whatever
//! is queued in one transaction (group commit: one fsync for a batch, each job in its own
//! savepoint so a refused one writes nothing), and reads run on their own connections on the
//! calling thread, which for the small reads of a command costs microseconds and no thread
//! hand-off.
//!
//! By concern: the writer and its checkpoints (`writer`), the schema (`migrate`), the event
//! log and incidents (`events`), the outbox and its claims (`outbox`), operations and leases
//! (`leases`), and the statement helpers (`rows`).

mod events;
mod leases;
mod migrate;
mod outbox;
mod rows;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

use crate::incident::IncidentId;
use crate::store::StoreError;
use rows::{all, col};
use writer::{Batches, Checkpoints, Job, Work};

/// Reader connections besides the writer's (file databases).
const READERS: usize = 4;

const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
     PRAGMA journal_size_limit = 16777216;";

#[derive(Clone)]
pub(in crate::store) struct Lite {
    jobs: mpsc::Sender<Box<dyn Job>>,
    readers: Arc<Readers>,
    closed: Arc<AtomicBool>,
    appended: Arc<Appended>,
    /// Used on the writer thread only; shared with its loop, which starts every chain over
    /// when a batch's transaction fails.
    chains: Arc<Mutex<crate::store::Chains>>,
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
pub(in crate::store) enum Location {
    Memory,
    File { path: PathBuf, flags: OpenFlags },
}

pub(in crate::store) fn location(url: &str) -> Result<Location, StoreError> {
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
    pub(in crate::store) fn open(at: &Location, migrate: bool) -> Result<Lite, StoreError> {
        let writer = open_conn(at)?;
        if migrate {
            migrate::run_migrations(&writer)?;
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
                    .spawn(move || writer::checkpoint_when_asked(&conn, &asked, &tell))
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
        let chains = Arc::<Mutex<crate::store::Chains>>::default();
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
                writer::write_batches(&writer, batches)
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
    pub(in crate::store) async fn trust_own_writes(&self) -> Result<(), StoreError> {
        let appended = self.appended.clone();
        self.write(move |c| {
            let known = all(c, crate::store::sql::LAST_SEQS, [], |r| {
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
    pub(in crate::store) fn write<T, F>(
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
    pub(in crate::store) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        f(&self.readers.get())
    }

    /// A read that may be long (a whole timeline): off the async threads.
    pub(in crate::store) async fn read_long<T, F>(&self, f: F) -> Result<T, StoreError>
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
    pub(in crate::store) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _ = self.queue(|_: &Connection| Ok(())).await;
    }
}

/// The file's path, for the one-process lock.
pub(in crate::store) fn file_of(at: &Location) -> Option<&Path> {
    match at {
        Location::Memory => None,
        Location::File { path, .. } => Some(path),
    }
}

impl Lite {
    /// Pragmas of every connection (tests).
    #[cfg(test)]
    pub(in crate::store) fn pragmas(&self) -> Vec<(String, i64, i64, i64)> {
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

    pub(in crate::store) fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Ok(c.prepare_cached("SELECT 1")?.query_row([], |_| Ok(()))?))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, params};

    use super::migrate::run_migrations;
    use super::rows::lite;
    use crate::store::sql;

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
