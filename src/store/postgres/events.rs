//! The event log and the incidents: reads of timelines and incident rows, and the chat
//! requests already seen.

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::Pg;
use super::rows::{decode_event, get};
use crate::incident::{Event, IncidentId};
use crate::store::{ActiveIncident, IncidentRow, StoreError, fmt_time, rows, sql};

impl Pg {
    pub(in crate::store) async fn next_incident_id(&self) -> Result<IncidentId, StoreError> {
        let row = sqlx::query(sql::NEXT_INCIDENT_ID)
            .fetch_one(&self.pool)
            .await?;
        get(&row, "next")
    }

    pub(in crate::store) async fn incident(
        &self,
        id: IncidentId,
    ) -> Result<Option<IncidentRow>, StoreError> {
        sqlx::query(sql::INCIDENT)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| rows::incident(&row))
            .transpose()
    }

    pub(in crate::store) async fn id_query(
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

    pub(in crate::store) async fn ids(
        &self,
        sql_text: &'static str,
    ) -> Result<Vec<IncidentId>, StoreError> {
        sqlx::query(sql_text)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| get(row, "id"))
            .collect()
    }

    pub(in crate::store) async fn events_before(
        &self,
        incident: IncidentId,
        before: i64,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        sqlx::query(sql::EVENTS_BEFORE.as_str())
            .bind(incident)
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(decode_event)
            .collect()
    }

    pub(in crate::store) async fn incident_seqs(
        &self,
        sql_text: &'static str,
    ) -> Result<Vec<ActiveIncident>, StoreError> {
        sqlx::query(sql_text)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(rows::active_incident)
            .collect()
    }

    pub(in crate::store) async fn events(
        &self,
        incident: IncidentId,
    ) -> Result<Vec<Event>, StoreError> {
        sqlx::query(sql::EVENTS.as_str())
            .bind(incident)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(decode_event)
            .collect()
    }

    pub(in crate::store) async fn events_after(
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

    pub(in crate::store) fn stream_events(
        &self,
        incident: IncidentId,
    ) -> impl futures_util::Stream<Item = Result<Event, StoreError>> + Send + '_ {
        sqlx::query(sql::EVENTS.as_str())
            .bind(incident)
            .fetch(&self.pool)
            .map(|row| decode_event(&row?))
    }

    pub(in crate::store) async fn request_seen(&self, key: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query(sql::REQUEST_SEEN)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    pub(in crate::store) async fn forget_requests(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql::FORGET_REQUESTS)
            .bind(fmt_time(before))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
