//! Rows read back the same way from either backend: each backend says how to read one
//! column ([`Columns`]), and the records are put together here once.

use chrono::{DateTime, Utc};

use super::parse_time;
use super::{ActiveIncident, IncidentRow, OperationRow, OutboxRow, PendingPost, StoreError};

/// A row of either backend, read by column name; a column that does not read as asked is
/// [`StoreError::Corrupt`].
pub(super) trait Columns {
    fn int(&self, name: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError>;
    fn text(&self, name: &str) -> Result<String, StoreError>;
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn flag(&self, name: &str) -> Result<bool, StoreError>;

    fn time(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        parse_time(&self.text(name)?)
    }

    fn opt_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.opt_text(name)?.map(|s| parse_time(&s)).transpose()
    }
}

pub(super) fn corrupt(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("column {col}: {e}"))
}

pub(super) fn incident(row: &impl Columns) -> Result<IncidentRow, StoreError> {
    Ok(IncidentRow {
        id: row.int("id")?,
        channel: row.text("channel")?,
        platform: row.text("platform")?,
        severity: row.text("severity")?,
        incident_type: row.opt_text("incident_type")?,
        title: row.text("title")?,
        drill: row.flag("drill")?,
        declared_at: row.time("declared_at")?,
        resolved_at: row.opt_time("resolved_at")?,
        final_summary_posted: row.flag("final_summary_posted")?,
        last_seq: row.int("last_seq")?,
    })
}

pub(super) fn active_incident(row: &impl Columns) -> Result<ActiveIncident, StoreError> {
    Ok(ActiveIncident {
        id: row.int("id")?,
        seq: row.int("last_seq")?,
    })
}

/// `claimed`: read from a claim, whose row tells whether another replica held it before.
pub(super) fn operation(row: &impl Columns, claimed: bool) -> Result<OperationRow, StoreError> {
    let taken_over = claimed && {
        let previous = row.opt_text("previous_claim")?;
        let mine = row.opt_text("claim_token")?;
        previous.is_some_and(|p| Some(p) != mine)
    };
    Ok(OperationRow {
        incident: row.int("incident_id")?,
        operation: row.text("operation")?,
        kind: row.text("kind")?,
        object_name: row.text("object_name")?,
        backend: row.text("backend")?,
        spec: row.text("spec")?,
        status: row.text("status")?,
        launched_at: row.opt_time("launched_at")?,
        taken_over,
    })
}

pub(super) fn outbox(row: &impl Columns) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: row.int("id")?,
        incident: row.opt_int("incident_id")?,
        channel: row.text("channel")?,
        body: row.text("body")?,
        attempts: row.int("attempts")?,
        earlier_sends: row.int("sends")? - 1,
        created_at: row.time("created_at")?,
        status: row.text("lane")? == "status",
        claim_token: row.opt_text("claim_token")?.unwrap_or_default(),
        status_in_doubt: false,
    })
}

pub(super) fn pending_post(row: &impl Columns) -> Result<PendingPost, StoreError> {
    Ok(PendingPost {
        id: row.int("id")?,
        channel: row.text("channel")?,
        status: row.text("lane")? == "status",
        attempts: row.int("attempts")?,
        next_attempt_at: row.time("next_attempt_at")?,
    })
}

/// A post given up: (channel, last error).
pub(super) fn given_up(row: &impl Columns) -> Result<(String, String), StoreError> {
    Ok((
        row.text("channel")?,
        row.opt_text("last_error")?.unwrap_or_default(),
    ))
}
