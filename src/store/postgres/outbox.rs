//! The outbox: notices, the claims of due posts, and what each delivery attempt recorded.

use chrono::{DateTime, Utc};

use super::Pg;
use super::rows::get;
use crate::incident::IncidentId;
use crate::store::rows::Columns;
use crate::store::{Lease, OutboxRow, PendingPost, StoreError, fmt_time, rows, sql};

impl Pg {
    pub(in crate::store) async fn post_notice(
        &self,
        key: &str,
        post: crate::store::NewPost,
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

    pub(in crate::store) async fn claim_posts(
        &self,
        lease: Lease,
        limit: i64,
        channel: Option<&str>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Lease { token, now, until } = &lease;
        let mut claimed = Vec::new();
        for text in &sql::CLAIMS[1] {
            let rows = sqlx::query(text.as_str())
                .bind(token)
                .bind(until)
                .bind(now)
                .bind(limit)
                .bind(channel)
                .fetch_all(&mut *tx)
                .await?;
            for row in &rows {
                claimed.push(rows::outbox(row)?);
            }
        }
        // Incident rows are locked lowest id first, as a batch of the writer locks them.
        claimed.sort_by_key(|r| (r.incident, r.id));
        for row in claimed.iter_mut().filter(|r| r.status) {
            let Some(incident) = row.incident else {
                continue;
            };
            let carried = sqlx::query(sql::CARRIED_ATTEMPTS)
                .bind(now)
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
                .bind(now)
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

    pub(in crate::store) async fn record_delivery(
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

    pub(in crate::store) async fn record_failure(
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

    pub(in crate::store) async fn pending_rows(&self) -> Result<Vec<PendingPost>, StoreError> {
        sqlx::query(sql::PENDING_ROWS)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rows::pending_post)
            .collect()
    }

    pub(in crate::store) async fn given_up(&self) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query(sql::GIVEN_UP)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rows::given_up)
            .collect()
    }

    /// The text in `column` of the row `sql_text` finds for the incident, if any.
    pub(in crate::store) async fn incident_text(
        &self,
        sql_text: &'static str,
        incident: IncidentId,
        column: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(sql_text)
            .bind(incident)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => get(&row, column),
            None => Ok(None),
        }
    }

    pub(in crate::store) async fn outbox_backlog(
        &self,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        let row = sqlx::query(sql::OUTBOX_BACKLOG)
            .fetch_one(&self.pool)
            .await?;
        Ok((get(&row, "n")?, row.opt_time("oldest")?))
    }

    pub(in crate::store) async fn pending_posts(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(sql::PENDING_POSTS)
            .fetch_one(&self.pool)
            .await?;
        get(&row, "n")
    }
}
