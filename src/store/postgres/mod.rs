//! PostgreSQL through sqlx's native driver. Commits go to one writer task that owns a
//! connection and commits whatever is queued in one transaction (group commit: one WAL flush
//! for a batch, each commit in its own savepoint so a refused one writes nothing); reads and
//! the outbox's and scheduler's short transactions use the pool, side by side.
//!
//! By concern: the writer (`writer`) and its one-round-trip batch script (`script`), the
//! event log and incidents (`events`), the outbox and its claims (`outbox`), operations and
//! leases (`leases`), and row helpers (`rows`); connection set-up and migrations here.

mod events;
mod leases;
mod outbox;
mod rows;
mod script;
mod writer;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};
use tokio::sync::{mpsc, oneshot};

use crate::store::StoreError;
use rows::get;
use writer::ToWriter;

const POOL_SIZE: u32 = 8;
/// A pooled connection idle this long is pinged before it is used again.
const PING_IDLE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Clone, Debug)]
pub(in crate::store) struct Pg {
    pool: PgPool,
    commits: mpsc::UnboundedSender<ToWriter>,
}

impl Pg {
    pub(in crate::store) async fn open(url: &str, migrate: bool) -> Result<Pg, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            // sqlx pings every connection it hands out, one more round trip per read. Under
            // load connections come back within milliseconds; only one that sat idle long
            // enough to have been dropped (a database restart, a failover) is checked, and
            // replaced when the ping fails.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(
                    async move { Ok(meta.idle_for < PING_IDLE_AFTER || conn.ping().await.is_ok()) },
                )
            })
            .connect(url)
            .await?;
        if migrate {
            // Each migration commits on its own, and a commit waits for PostgreSQL's WAL
            // flush: on a fresh database that was most of the time to ready. Not waiting loses
            // nothing: a migration commits with its bookkeeping row or not at all, and the
            // first commit anything waits for flushes them before it.
            let mut conn = pool.acquire().await?;
            sqlx::raw_sql("SET synchronous_commit = off")
                .execute(&mut *conn)
                .await?;
            let migrated = crate::store::migrator(crate::store::Backend::Postgres)
                .run(&mut *conn)
                .await;
            sqlx::raw_sql("RESET synchronous_commit")
                .execute(&mut *conn)
                .await?;
            migrated?;
        }
        let (commits, queue) = mpsc::unbounded_channel();
        tokio::spawn(writer::group_commits(pool.clone(), queue));
        Ok(Pg { pool, commits })
    }

    pub(in crate::store) async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
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
        Ok(crate::store::unapplied(&applied))
    }

    pub(in crate::store) async fn close(&self) {
        let (closed, writer_done) = oneshot::channel();
        if self.commits.send(ToWriter::Close(closed)).is_ok() {
            let _ = writer_done.await;
        }
        self.pool.close().await;
    }

    pub(in crate::store) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }
}
