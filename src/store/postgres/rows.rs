//! Row helpers: columns read through [`Columns`], values bound from [`Arg`], and how a
//! refused statement reads.

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row};

use crate::incident::{Actor, Event, EventKind};
use crate::store::StoreError;
use crate::store::plan::Arg;
use crate::store::rows::{Columns, corrupt};

pub(super) fn get<'r, T>(row: &'r PgRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get::<T, _>(col).map_err(|e| corrupt(col, e))
}

impl Columns for PgRow {
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        get(self, name)
    }

    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        get(self, name)
    }

    fn text(&self, name: &str) -> Result<String, StoreError> {
        get(self, name)
    }

    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        get(self, name)
    }

    fn flag(&self, name: &str) -> Result<bool, StoreError> {
        get(self, name)
    }
}

/// `query` with `args` bound in order.
pub(super) fn bind_all<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    args: &'q [Arg<'_>],
) -> Query<'q, Postgres, PgArguments> {
    for arg in args {
        query = match arg {
            Arg::Int(n) => query.bind(*n),
            Arg::Text(s) => query.bind(s.as_ref()),
            Arg::Null => query.bind(Option::<&str>::None),
            Arg::Bool(b) => query.bind(*b),
        };
    }
    query
}

/// The name of the unique constraint a failed statement violated.
pub(super) fn unique_violation(err: &sqlx::Error) -> Option<String> {
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
pub(super) fn db_error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(e) if matches!(e.code().as_deref(), Some("40P01" | "40001")) => {
            StoreError::Conflict
        }
        _ => StoreError::Db(err),
    }
}

pub(super) fn decode_event(row: &PgRow) -> Result<Event, StoreError> {
    let kind: EventKind = serde_json::from_str(&row.text("data")?)
        .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
    Ok(Event {
        incident: row.int("incident_id")?,
        seq: row.int("seq")?,
        recorded_at: row.time("recorded_at")?,
        occurred_at: row.opt_time("occurred_at")?,
        actor: Actor {
            platform: row.text("actor_platform")?,
            id: row.text("actor_id")?,
            name: row.text("actor_name")?,
        },
        kind,
    })
}
