//! The writer task: group commit, by one batch script when it can, in savepoints when a
//! commit is refused.

use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres};
use tokio::sync::{mpsc, oneshot};

use super::Pg;
use super::rows::{bind_all, db_error, unique_violation};
use super::script::Script;
use crate::store::plan::{EventInserts, Plan};
use crate::store::{Chains, Commit, Committed, StoreError, sql};

/// Commits one transaction takes at most; the rest wait for the next.
const MAX_BATCH: usize = 256;

pub(in crate::store) type Queued = (Commit, oneshot::Sender<Result<Committed, StoreError>>);

pub(in crate::store) enum ToWriter {
    Commit(Box<Queued>),
    /// Finish what is queued, give the connection back and stop.
    Close(oneshot::Sender<()>),
}

impl Pg {
    pub(in crate::store) fn submit(
        &self,
        commit: Commit,
    ) -> impl Future<Output = Result<Committed, StoreError>> + use<> {
        let (done, answer) = oneshot::channel();
        let queued = self
            .commits
            .send(ToWriter::Commit(Box::new((commit, done))))
            .map_err(|_| StoreError::Closed);
        async move {
            queued?;
            answer.await.map_err(|_| StoreError::Closed)?
        }
    }
}

/// The writer task: take every queued commit, apply each in a savepoint of one transaction,
/// commit once, then answer each. It does not linger for company as the SQLite writer does
/// ([`crate::store::Linger`]): the commit's fsync is PostgreSQL's CPU, not ours, and lingering
/// measured no saving here at 500 commands/s.
pub(in crate::store) async fn group_commits(
    pool: PgPool,
    mut queue: mpsc::UnboundedReceiver<ToWriter>,
) {
    let mut conn: Option<PoolConnection<Postgres>> = None;
    let mut chains = Chains::default();
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = queue.recv().await else {
            break;
        };
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                ToWriter::Commit(queued) => batch.push(*queued),
                ToWriter::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        let c = match &mut conn {
            Some(c) => c,
            None => match writer_connection(&pool).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    let why = e.to_string();
                    for (_, answer) in batch {
                        let _ = answer.send(Err(StoreError::Batch(why.clone())));
                    }
                    continue;
                }
            },
        };
        if !run_batch(c, batch, &mut chains).await {
            // The connection may be broken: the next batch takes a fresh one.
            conn = None;
        }
    }
    // Later submissions find the queue gone and are told the store is closed.
    queue.close();
    drop(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// The writer's connection, set up for [`Script`]'s literals.
async fn writer_connection(pool: &PgPool) -> Result<PoolConnection<Postgres>, sqlx::Error> {
    let mut c = pool.acquire().await?;
    sqlx::raw_sql("SET standard_conforming_strings = on")
        .execute(&mut *c)
        .await?;
    Ok(c)
}

/// `false` when the connection itself failed.
async fn run_batch(c: &mut PgConnection, batch: Vec<Queued>, chains: &mut Chains) -> bool {
    // One round trip for the whole batch, when each commit's chain admits it; on any error,
    // the savepoint path below finds out which commit it was and answers each with its own
    // outcome.
    if let Some((script, results)) = Script::batch(batch.iter().map(|(commit, _)| commit))
        && let Some(undo) = chains.land_all(batch.iter().map(|(commit, _)| commit))
    {
        match sqlx::raw_sql(AssertSqlSafe(script)).execute(&mut *c).await {
            Ok(_) => {
                for ((_, answer), done) in batch.into_iter().zip(results) {
                    let _ = answer.send(Ok(done));
                }
                return true;
            }
            Err(e) => {
                tracing::debug!(error = %e, "batch script refused; running it commit by commit");
                chains.undo(undo);
                // The script's transaction is aborted (or was never begun): end it.
                let rollback = sqlx::raw_sql("ROLLBACK").execute(&mut *c).await;
                if rollback.is_err() || is_connection_error(&e) {
                    let why = e.to_string();
                    for (_, answer) in batch {
                        let _ = answer.send(Err(StoreError::Batch(why.clone())));
                    }
                    return false;
                }
            }
        }
    }
    run_batch_in_savepoints(c, batch, chains).await
}

/// Whether `e` leaves the connection itself in doubt (as opposed to a refused statement).
fn is_connection_error(e: &sqlx::Error) -> bool {
    !matches!(e, sqlx::Error::Database(_))
}

/// Each commit in its own savepoint of one transaction, so a refused one writes nothing and
/// gets its own error while the others land.
async fn run_batch_in_savepoints(
    c: &mut PgConnection,
    batch: Vec<Queued>,
    chains: &mut Chains,
) -> bool {
    let fail_all = |batch: Vec<Queued>, why: String| {
        for (_, answer) in batch {
            let _ = answer.send(Err(StoreError::Batch(why.clone())));
        }
    };
    if let Err(e) = sqlx::raw_sql("BEGIN").execute(&mut *c).await {
        fail_all(batch, e.to_string());
        return false;
    }
    let locked = crate::store::incidents_to_lock(batch.iter().map(|(commit, _)| commit));
    if !locked.is_empty()
        && let Err(e) = sqlx::query(sql::LOCK_INCIDENTS)
            .bind(&locked)
            .fetch_all(&mut *c)
            .await
    {
        let rollback = sqlx::raw_sql("ROLLBACK").execute(&mut *c).await;
        let healthy = rollback.is_ok() && !is_connection_error(&e);
        // A deadlock or serialization failure is decided again, as for any concurrent change.
        let why = e.to_string();
        let conflict = matches!(db_error(e), StoreError::Conflict);
        for (_, answer) in batch {
            let _ = answer.send(Err(match conflict {
                true => StoreError::Conflict,
                false => StoreError::Batch(why.clone()),
            }));
        }
        return healthy;
    }
    let mut applied: Vec<(oneshot::Sender<_>, Committed)> = Vec::with_capacity(batch.len());
    let mut rest = batch.into_iter();
    while let Some((commit, answer)) = rest.next() {
        if !chains.admits(&commit) {
            let _ = answer.send(Err(StoreError::Conflict));
            continue;
        }
        if let Err(e) = sqlx::raw_sql("SAVEPOINT one").execute(&mut *c).await {
            // The transaction is unusable: nothing of this batch is kept.
            let why = e.to_string();
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *c).await;
            chains.reset();
            let _ = answer.send(Err(StoreError::Batch(why.clone())));
            for (answer, _) in applied {
                let _ = answer.send(Err(StoreError::Batch(why.clone())));
            }
            fail_all(rest.collect(), why);
            return false;
        }
        let chain = (commit.target.id(), commit.chain.token);
        match apply(c, commit).await {
            Ok(done) => {
                let _ = sqlx::raw_sql("RELEASE SAVEPOINT one")
                    .execute(&mut *c)
                    .await;
                chains.land(chain);
                applied.push((answer, done));
            }
            Err(e) => {
                let _ = sqlx::raw_sql("ROLLBACK TO SAVEPOINT one; RELEASE SAVEPOINT one")
                    .execute(&mut *c)
                    .await;
                let _ = answer.send(Err(e));
            }
        }
    }
    let outcome = sqlx::raw_sql("COMMIT").execute(&mut *c).await;
    let ok = outcome.is_ok();
    if !ok {
        chains.reset();
    }
    let why = outcome.err().map(|e| e.to_string());
    for (answer, done) in applied {
        let _ = answer.send(match &why {
            None => Ok(done),
            Some(why) => Err(StoreError::Batch(why.clone())),
        });
    }
    ok
}

/// Everything a commit writes ([`Plan`]), inside the writer's savepoint for it.
async fn apply(c: &mut PgConnection, commit: Commit) -> Result<Committed, StoreError> {
    let plan = Plan::of(&commit, EventInserts::Chunked)?;
    let mut claimed: Option<String> = None;
    for step in &plan.steps {
        let query = bind_all(sqlx::query(AssertSqlSafe(&*step.text)), &step.args);
        let ran = if step.returns_channel() {
            match query.fetch_optional(&mut *c).await {
                Ok(row) => {
                    claimed = row.map(|r| super::rows::get(&r, "channel")).transpose()?;
                    Ok(u64::from(claimed.is_some()))
                }
                Err(e) => Err(e),
            }
        } else {
            query
                .execute(&mut *c)
                .await
                .map(|done| done.rows_affected())
        };
        let changed = ran.map_err(|e| match (&step.unique, unique_violation(&e)) {
            (Some(on), Some(which)) => on.error(&which, claimed.as_deref()),
            _ => db_error(e),
        })?;
        if let (0, Some(must)) = (changed, &step.must_change) {
            let exists = match must.incident_to_look_up() {
                Some(id) => sqlx::query(sql::INCIDENT_EXISTS)
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await?
                    .is_some(),
                None => true,
            };
            return Err(must.error(exists));
        }
    }
    Ok(plan.committed)
}
