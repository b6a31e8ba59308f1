//! The outbox: notices, the claims of due posts, and what each delivery attempt recorded.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::Lite;
use super::rows::{all, col, exec, lite, optional};
use crate::incident::IncidentId;
use crate::store::{Lease, OutboxRow, PendingPost, StoreError, fmt_time, parse_time, rows, sql};

impl Lite {
    pub(in crate::store) async fn post_notice(
        &self,
        key: &str,
        post: crate::store::NewPost,
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

    pub(in crate::store) async fn claim_posts(
        &self,
        lease: Lease,
        limit: i64,
        channel: Option<&str>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let channel = channel.map(str::to_owned);
        self.write(move |c| {
            let Lease { token, now, until } = lease;
            let mut claimed = Vec::new();
            for text in &sql::CLAIMS[0] {
                claimed.extend(all(
                    c,
                    text,
                    params![token, until, now, limit, channel],
                    |r| rows::outbox(r),
                )?);
            }
            for row in claimed.iter_mut().filter(|r| r.status) {
                let Some(incident) = row.incident else {
                    continue;
                };
                let carried: i64 = c
                    .prepare_cached(&lite(sql::CARRIED_ATTEMPTS))?
                    .query_row(params![now, incident, row.id], |r| r.get(0))?;
                if carried > 0 {
                    exec(c, sql::CARRY_ATTEMPTS, params![carried, row.id])?;
                    row.attempts += carried;
                    row.earlier_sends += carried;
                }
                exec(c, sql::SUPERSEDE_STATUS, params![now, incident, row.id])?;
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

    pub(in crate::store) async fn record_delivery(
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

    pub(in crate::store) async fn record_failure(
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

    pub(in crate::store) fn pending_rows(&self) -> Result<Vec<PendingPost>, StoreError> {
        self.read(|c| all(c, sql::PENDING_ROWS, [], |r| rows::pending_post(r)))
    }

    pub(in crate::store) fn given_up(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|c| all(c, sql::GIVEN_UP, [], |r| rows::given_up(r)))
    }

    /// The text in `column` of the row `sql_text` finds for the incident, if any.
    pub(in crate::store) fn incident_text(
        &self,
        sql_text: &str,
        incident: IncidentId,
        column: &str,
    ) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            Ok(optional(c, sql_text, [incident], |r| {
                col::<Option<String>>(r, column)
            })?
            .flatten())
        })
    }

    pub(in crate::store) fn outbox_backlog(
        &self,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        self.read(|c| {
            c.prepare_cached(sql::OUTBOX_BACKLOG)?
                .query_row([], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
                })
                .map_err(StoreError::from)
                .and_then(|(n, oldest)| Ok((n, oldest.map(|t| parse_time(&t)).transpose()?)))
        })
    }

    pub(in crate::store) fn pending_posts(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.prepare_cached(sql::PENDING_POSTS)?
                .query_row([], |r| r.get(0))?)
        })
    }
}
