//! Statement helpers: the shared `$n` texts run here as `?n`, rows read by name through
//! [`Columns`], and the timeline's rows by position.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row};

use crate::incident::{Actor, Event, EventKind};
use crate::store::plan::Arg;
use crate::store::rows::{Columns, corrupt};
use crate::store::{StoreError, parse_time, sql};

/// `$1` → `?1`: SQLite numbers `$name` parameters by first appearance, `?NNN` by its number.
pub(super) fn lite(sql: &str) -> String {
    sql.replace('$', "?")
}

pub(super) fn unique_violation(err: &rusqlite::Error) -> Option<String> {
    match err {
        rusqlite::Error::SqliteFailure(e, msg)
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            let ext = e.extended_code;
            (ext == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || ext == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
                .then(|| msg.clone().unwrap_or_default())
        }
        _ => None,
    }
}

pub(super) fn col<T: rusqlite::types::FromSql>(row: &Row<'_>, name: &str) -> Result<T, StoreError> {
    row.get(name).map_err(|e| corrupt(name, e))
}

impl Columns for Row<'_> {
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        col(self, name)
    }

    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        col(self, name)
    }

    fn text(&self, name: &str) -> Result<String, StoreError> {
        col(self, name)
    }

    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        col(self, name)
    }

    fn flag(&self, name: &str) -> Result<bool, StoreError> {
        col(self, name)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Int(n) => ToSqlOutput::from(*n),
            Arg::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::Null => ToSqlOutput::from(rusqlite::types::Null),
            Arg::Bool(b) => ToSqlOutput::from(*b),
        })
    }
}

/// Columns by position (see `sql::EVENT_SELECT`): a timeline export decodes every row, and
/// looking columns up by name cost more than the rest of the read.
pub(super) fn decode_event(row: &Row<'_>) -> Result<Event, StoreError> {
    let text = |i: usize| -> Result<&str, StoreError> {
        row.get_ref(i)
            .and_then(|v| v.as_str().map_err(Into::into))
            .map_err(|e| corrupt(sql::EVENT_COLUMN_NAMES[i], e))
    };
    let kind: EventKind = serde_json::from_str(text(7)?)
        .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
    let occurred_at = match row.get_ref(3).map_err(|e| corrupt("occurred_at", e))? {
        rusqlite::types::ValueRef::Null => None,
        _ => Some(parse_time(text(3)?)?),
    };
    Ok(Event {
        incident: row.get(0).map_err(|e| corrupt("incident_id", e))?,
        seq: row.get(1).map_err(|e| corrupt("seq", e))?,
        recorded_at: parse_time(text(2)?)?,
        occurred_at,
        actor: Actor {
            platform: text(4)?.to_owned(),
            id: text(5)?.to_owned(),
            name: text(6)?.to_owned(),
        },
        kind,
    })
}

/// Every row of a query, decoded.
pub(super) fn all<T>(
    conn: &Connection,
    sql_text: &str,
    args: impl rusqlite::Params,
    decode: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(&lite(sql_text))?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

pub(super) fn optional<T>(
    conn: &Connection,
    sql_text: &str,
    args: impl rusqlite::Params,
    decode: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut stmt = conn.prepare_cached(&lite(sql_text))?;
    let mut rows = stmt.query(args)?;
    rows.next()?.map(decode).transpose()
}

pub(super) fn exec(
    conn: &Connection,
    sql_text: &str,
    args: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    Ok(conn.prepare_cached(&lite(sql_text))?.execute(args)?)
}
