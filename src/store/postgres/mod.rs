//! PostgreSQL through sqlx's native driver. Commits go to one writer task that owns a
//! connection and commits whatever is queued in one transaction (group commit: one WAL flush
//! for a batch, each commit in its own savepoint so a refused one writes nothing); reads and
//! the outbox's and scheduler's short transactions use the pool, side by side.

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool, Postgres, Row};
use tokio::sync::{mpsc, oneshot};

use super::pg_script::Script;
use super::{
    ActiveIncident, Commit, Committed, GiveUp, IncidentRow, NewEvent, OperationChange,
    OperationRow, OutboxRow, PendingPost, StoreError, Target, fmt_time, parse_time, refuse_nul,
    sql,
};
use crate::incident::{Actor, Event, EventKind, IncidentId};

const POOL_SIZE: u32 = 8;
/// A pooled connection idle this long is pinged before it is used again.
const PING_IDLE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
/// Commits one transaction takes at most; the rest wait for the next.
const MAX_BATCH: usize = 256;

type Queued = (Commit, oneshot::Sender<Result<Committed, StoreError>>);

enum ToWriter {
    Commit(Box<Queued>),
    /// Finish what is queued, give the connection back and stop.
    Close(oneshot::Sender<()>),
}

#[derive(Clone, Debug)]
pub(super) struct Pg {
    pool: PgPool,
    commits: mpsc::UnboundedSender<ToWriter>,
}

fn get<'r, T>(row: &'r PgRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get::<T, _>(col)
        .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

fn get_time(row: &PgRow, col: &str) -> Result<DateTime<Utc>, StoreError> {
    parse_time(&get::<String>(row, col)?)
}

fn get_opt_time(row: &PgRow, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    get::<Option<String>>(row, col)?
        .map(|s| parse_time(&s))
        .transpose()
}

/// The name of the unique constraint a failed statement violated.
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

/// A deadlock between two replicas' batches: PostgreSQL aborts one statement; deciding
/// again on fresh state is the answer, as for any concurrent change.
fn db_error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(e) if matches!(e.code().as_deref(), Some("40P01" | "40001")) => {
            StoreError::Conflict
        }
        _ => StoreError::Db(err),
    }
}

fn decode_event(row: &PgRow) -> Result<Event, StoreError> {
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

fn decode_incident(row: &PgRow) -> Result<IncidentRow, StoreError> {
    Ok(IncidentRow {
        id: get(row, "id")?,
        channel: get(row, "channel")?,
        platform: get(row, "platform")?,
        severity: get(row, "severity")?,
        incident_type: get(row, "incident_type")?,
        title: get(row, "title")?,
        drill: get(row, "drill")?,
        declared_at: get_time(row, "declared_at")?,
        resolved_at: get_opt_time(row, "resolved_at")?,
        final_summary_posted: get(row, "final_summary_posted")?,
        last_seq: get(row, "last_seq")?,
    })
}

fn decode_operation(row: &PgRow, claimed: bool) -> Result<OperationRow, StoreError> {
    let taken_over = claimed && {
        let previous: Option<String> = get(row, "previous_claim")?;
        let mine: Option<String> = get(row, "claim_token")?;
        previous.is_some_and(|p| Some(p) != mine)
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

fn decode_outbox(row: &PgRow) -> Result<OutboxRow, StoreError> {
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

impl Pg {
    pub(super) async fn open(url: &str, migrate: bool) -> Result<Pg, StoreError> {
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
            let migrated = super::migrator(super::Backend::Postgres)
                .run(&mut *conn)
                .await;
            sqlx::raw_sql("RESET synchronous_commit")
                .execute(&mut *conn)
                .await?;
            migrated?;
        }
        let (commits, queue) = mpsc::unbounded_channel();
        tokio::spawn(group_commits(pool.clone(), queue));
        Ok(Pg { pool, commits })
    }

    pub(super) async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
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
        Ok(super::MIGRATIONS
            .iter()
            .map(|m| m.0)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    pub(super) async fn close(&self) {
        let (closed, writer_done) = oneshot::channel();
        if self.commits.send(ToWriter::Close(closed)).is_ok() {
            let _ = writer_done.await;
        }
        self.pool.close().await;
    }

    pub(super) async fn release_all_leases(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(sql::RELEASE_OUTBOX_LEASES)
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql::RELEASE_OPERATION_LEASES)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) fn submit(
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

    pub(super) async fn next_incident_id(&self) -> Result<IncidentId, StoreError> {
        let row = sqlx::query(sql::NEXT_INCIDENT_ID)
            .fetch_one(&self.pool)
            .await?;
        get(&row, "next")
    }

    pub(super) async fn incident(&self, id: IncidentId) -> Result<Option<IncidentRow>, StoreError> {
        sqlx::query(sql::INCIDENT)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| decode_incident(&row))
            .transpose()
    }

    pub(super) async fn id_query(
        &self,
        sql_text: &'static str,
        channel: &str,
    ) -> Result<Option<IncidentId>, StoreError> {
        sqlx::query(sql_text)
            .bind(channel)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| get(&row, "id"))
            .transpose()
    }

    pub(super) async fn ids(&self, sql_text: &'static str) -> Result<Vec<IncidentId>, StoreError> {
        sqlx::query(sql_text)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| get(row, "id"))
            .collect()
    }

    pub(super) async fn post_notice(
        &self,
        key: &str,
        post: super::NewPost,
    ) -> Result<bool, StoreError> {
        let created = fmt_time(post.created_at);
        let mut tx = self.pool.begin().await?;
        let taken = sqlx::query(sql::INSERT_NOTICE)
            .bind(key)
            .bind(&created)
            .execute(&mut *tx)
            .await?;
        if taken.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Ok(false);
        }
        sqlx::query(sql::INSERT_POST)
            .bind(Option::<IncidentId>::None)
            .bind(&post.channel)
            .bind(&post.body)
            .bind(&created)
            .bind(&created)
            .bind("post")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn active_incidents(&self) -> Result<Vec<ActiveIncident>, StoreError> {
        sqlx::query(sql::ACTIVE_INCIDENTS)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(ActiveIncident {
                    id: get(row, "id")?,
                    seq: get(row, "last_seq")?,
                })
            })
            .collect()
    }

    pub(super) async fn events(&self, incident: IncidentId) -> Result<Vec<Event>, StoreError> {
        sqlx::query(sql::EVENTS.as_str())
            .bind(incident)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(decode_event)
            .collect()
    }

    pub(super) async fn events_after(
        &self,
        incident: IncidentId,
        after: i64,
    ) -> Result<Vec<Event>, StoreError> {
        sqlx::query(sql::EVENTS_AFTER.as_str())
            .bind(incident)
            .bind(after)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(decode_event)
            .collect()
    }

    pub(super) fn stream_events(
        &self,
        incident: IncidentId,
    ) -> impl futures_util::Stream<Item = Result<Event, StoreError>> + Send + '_ {
        sqlx::query(sql::EVENTS.as_str())
            .bind(incident)
            .fetch(&self.pool)
            .map(|row| decode_event(&row?))
    }

    pub(super) async fn claim_operations(
        &self,
        token: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<OperationRow>, StoreError> {
        sqlx::query(sql::CLAIM_OPERATIONS)
            .bind(token)
            .bind(fmt_time(lease_until))
            .bind(fmt_time(now))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| decode_operation(r, true))
            .collect()
    }

    pub(super) async fn release_operations(&self, token: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql::RELEASE_OPERATIONS)
            .bind(token)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    pub(super) async fn unfinished_operations(&self) -> Result<Vec<OperationRow>, StoreError> {
        sqlx::query(sql::UNFINISHED_OPERATIONS)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| decode_operation(r, false))
            .collect()
    }

    pub(super) async fn claim_posts(
        &self,
        token: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        channel: Option<&str>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (lease, now_text) = (fmt_time(lease_until), fmt_time(now));
        let mut claimed = Vec::new();
        for text in &sql::CLAIMS[1] {
            let rows = sqlx::query(text.as_str())
                .bind(token)
                .bind(&lease)
                .bind(&now_text)
                .bind(limit)
                .bind(channel)
                .fetch_all(&mut *tx)
                .await?;
            for row in &rows {
                claimed.push(decode_outbox(row)?);
            }
        }
        // Incident rows are locked lowest id first, as a batch of the writer locks them.
        claimed.sort_by_key(|r| (r.incident, r.id));
        for row in claimed.iter_mut().filter(|r| r.status) {
            let Some(incident) = row.incident else {
                continue;
            };
            let carried = sqlx::query(sql::CARRIED_ATTEMPTS)
                .bind(&now_text)
                .bind(incident)
                .bind(row.id)
                .fetch_one(&mut *tx)
                .await?;
            let carried: i64 = get(&carried, "carried")?;
            if carried > 0 {
                sqlx::query(sql::CARRY_ATTEMPTS)
                    .bind(carried)
                    .bind(row.id)
                    .execute(&mut *tx)
                    .await?;
                row.attempts += carried;
                row.earlier_sends += carried;
            }
            sqlx::query(sql::SUPERSEDE_STATUS)
                .bind(&now_text)
                .bind(incident)
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
            let claims = sqlx::query(sql::COUNT_STATUS_CLAIM)
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

    pub(super) async fn record_delivery(
        &self,
        row: &OutboxRow,
        at: DateTime<Utc>,
        receipt: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(sql::RECORD_DELIVERY)
            .bind(fmt_time(at))
            .bind(receipt)
            .bind(row.id)
            .bind(&row.claim_token)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Ok(false);
        }
        if let Some(incident) = row.incident.filter(|_| row.status) {
            sqlx::query(sql::REMEMBER_STATUS_MESSAGE)
                .bind(receipt)
                .bind(incident)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn record_failure(
        &self,
        row: &OutboxRow,
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::RECORD_FAILURE)
            .bind(fmt_time(next_attempt))
            .bind(error)
            .bind(row.id)
            .bind(&row.claim_token)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn pending_rows(&self) -> Result<Vec<PendingPost>, StoreError> {
        sqlx::query(sql::PENDING_ROWS)
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

    pub(super) async fn given_up(&self) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query(sql::GIVEN_UP)
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

    pub(super) async fn request_seen(&self, key: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query(sql::REQUEST_SEEN)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    pub(super) async fn forget_requests(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql::FORGET_REQUESTS)
            .bind(fmt_time(before))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    pub(super) async fn status_message(
        &self,
        incident: IncidentId,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(sql::STATUS_MESSAGE)
            .bind(incident)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => get(&row, "status_message"),
            None => Ok(None),
        }
    }

    pub(super) async fn statuspage_incident(
        &self,
        incident: IncidentId,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(sql::STATUSPAGE_INCIDENT)
            .bind(incident)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => get(&row, "receipt"),
            None => Ok(None),
        }
    }

    pub(super) async fn outbox_backlog(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        let row = sqlx::query(sql::OUTBOX_BACKLOG)
            .fetch_one(&self.pool)
            .await?;
        Ok((get(&row, "n")?, get_opt_time(&row, "oldest")?))
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    pub(super) async fn pending_posts(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(sql::PENDING_POSTS)
            .fetch_one(&self.pool)
            .await?;
        get(&row, "n")
    }
}

/// The writer task: take every queued commit, apply each in a savepoint of one transaction,
/// commit once, then answer each. It does not linger for company as the SQLite writer does
/// ([`super::Linger`]): the commit's fsync is PostgreSQL's CPU, not ours, and lingering
/// measured no saving here at 500 commands/s.
async fn group_commits(pool: PgPool, mut queue: mpsc::UnboundedReceiver<ToWriter>) {
    let mut conn: Option<PoolConnection<Postgres>> = None;
    let mut chains = super::Chains::default();
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
async fn run_batch(c: &mut PgConnection, batch: Vec<Queued>, chains: &mut super::Chains) -> bool {
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
    chains: &mut super::Chains,
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
    let locked = super::incidents_to_lock(batch.iter().map(|(commit, _)| commit));
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

/// Everything a commit writes, inside the writer's savepoint for it.
async fn apply(c: &mut PgConnection, commit: Commit) -> Result<Committed, StoreError> {
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
            sqlx::query(sql::INSERT_INCIDENT)
                .bind(*id)
                .bind(channel)
                .bind(platform)
                .bind(&p.severity)
                .bind(&p.incident_type)
                .bind(&p.title)
                .bind(p.drill)
                .bind(&declared)
                .bind(&resolved)
                .bind(p.final_summary_posted)
                .bind(count)
                .execute(&mut *c)
                .await
                .map_err(|e| match unique_violation(&e) {
                    Some(which) if which.contains("channel") => {
                        StoreError::OpenIncidentExists(channel.clone())
                    }
                    Some(_) => StoreError::Conflict,
                    None => db_error(e),
                })?;
            (*id, 1)
        }
        Target::Existing { id, expected_seq } => {
            let claimed = sqlx::query(sql::CLAIM_SEQUENCE)
                .bind(expected_seq + count)
                .bind(*id)
                .bind(*expected_seq)
                .fetch_optional(&mut *c)
                .await
                .map_err(db_error)?;
            let Some(row) = claimed else {
                let exists = sqlx::query(sql::INCIDENT_EXISTS)
                    .bind(*id)
                    .fetch_optional(&mut *c)
                    .await?;
                return Err(match exists {
                    // Retrying could never help: say so rather than report a conflict.
                    None => StoreError::Corrupt(format!("incident {id} does not exist")),
                    Some(_) => StoreError::Conflict,
                });
            };
            let channel: String = get(&row, "channel")?;
            sqlx::query(sql::UPDATE_PROJECTION)
                .bind(&p.severity)
                .bind(&p.incident_type)
                .bind(&p.title)
                .bind(p.drill)
                .bind(&declared)
                .bind(&resolved)
                .bind(p.final_summary_posted)
                .bind(*id)
                .execute(&mut *c)
                .await
                .map_err(|e| match unique_violation(&e) {
                    Some(_) => StoreError::OpenIncidentExists(channel),
                    None => db_error(e),
                })?;
            (*id, expected_seq + 1)
        }
    };
    let at = fmt_time(events.first().map_or(p.declared_at, |e| e.recorded_at));

    if let Some(key) = request_key {
        sqlx::query(sql::INSERT_REQUEST)
            .bind(&key)
            .bind(id)
            .bind(&at)
            .execute(&mut *c)
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(_) => StoreError::Duplicate(format!("request {key}")),
                None => db_error(e),
            })?;
    }

    if let Some(GiveUp {
        outbox,
        claim_token,
        error,
    }) = gave_up
    {
        let done = sqlx::query(sql::GIVE_UP)
            .bind(&at)
            .bind(error)
            .bind(outbox)
            .bind(claim_token)
            .execute(&mut *c)
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(format!("outbox row {outbox}")));
        }
    }

    let seqs: Vec<i64> = (first_seq..).take(events.len()).collect();
    insert_events(c, id, seqs.iter().copied().zip(events)).await?;

    for post in posts {
        let created = fmt_time(post.created_at);
        sqlx::query(sql::INSERT_POST)
            .bind(id)
            .bind(post.channel)
            .bind(post.body)
            .bind(&created)
            .bind(&created)
            .bind(if post.status { "status" } else { "post" })
            .execute(&mut *c)
            .await
            .map_err(db_error)?;
    }

    for change in operations {
        apply_operation(c, id, change).await?;
    }
    Ok(Committed { incident: id, seqs })
}

fn bind_event<'q>(
    q: Query<'q, Postgres, PgArguments>,
    id: IncidentId,
    seq: i64,
    ev: NewEvent,
) -> Result<Query<'q, Postgres, PgArguments>, StoreError> {
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
    c: &mut PgConnection,
    id: IncidentId,
    events: impl Iterator<Item = (i64, NewEvent)>,
) -> Result<(), StoreError> {
    let (keyed, plain): (Vec<_>, Vec<_>) = events.partition(|(_, ev)| ev.dedupe_key.is_some());

    // Keyed events go one by one so that a violation names the key that was already used.
    for (seq, ev) in keyed {
        let key = ev.dedupe_key.clone().unwrap_or_default();
        bind_event(sqlx::query(sql::event_insert(1)), id, seq, ev)?
            .execute(&mut *c)
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(which) if which.contains("dedupe_key") => StoreError::Duplicate(key),
                Some(_) => StoreError::Conflict,
                None => db_error(e),
            })?;
    }

    let mut rest = plain.into_iter();
    for size in sql::EVENT_CHUNKS {
        while rest.len() >= size {
            let mut q = sqlx::query(sql::event_insert(size));
            for (seq, ev) in rest.by_ref().take(size) {
                q = bind_event(q, id, seq, ev)?;
            }
            q.execute(&mut *c)
                .await
                .map_err(|e| match unique_violation(&e) {
                    // Only the sequence key is left to collide: someone else appended.
                    Some(_) => StoreError::Conflict,
                    None => db_error(e),
                })?;
        }
    }
    Ok(())
}

async fn apply_operation(
    c: &mut PgConnection,
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
            sqlx::query(sql::QUEUE_OPERATION)
                .bind(id)
                .bind(&operation)
                .bind(kind)
                .bind(&object_name)
                .bind(&backend)
                .bind(spec)
                .execute(&mut *c)
                .await
                .map_err(|e| match unique_violation(&e) {
                    Some(which) if which.contains("object_name") => {
                        StoreError::Duplicate(format!("{backend} object {object_name}"))
                    }
                    Some(_) => StoreError::Duplicate(format!("operation {operation}")),
                    None => db_error(e),
                })?;
            return Ok(());
        }
        OperationChange::Launched { operation, at } => {
            (operation, "launched", sql::OPERATION_LAUNCHED, at)
        }
        OperationChange::Finished { operation, at } => {
            (operation, "finished", sql::OPERATION_FINISHED, at)
        }
    };
    let done = sqlx::query(sql_text)
        .bind(status)
        .bind(fmt_time(at))
        .bind(id)
        .bind(&operation)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Corrupt(format!(
            "operation {operation} of incident {id} was never queued"
        )));
    }
    Ok(())
}
