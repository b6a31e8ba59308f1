//! The schema: the same bookkeeping table sqlx keeps, so databases made by earlier versions
//! carry on where they were.

use rusqlite::{Connection, params};
use sha2::{Digest, Sha384};

use super::Lite;
use crate::store::StoreError;

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (\
     version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
     installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
     checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)";

fn applied(conn: &Connection) -> Result<Vec<i64>, StoreError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
         AND name = '_sqlx_migrations')",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare("SELECT version FROM _sqlx_migrations WHERE success = TRUE")?;
    let versions = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(versions)
}

pub(in crate::store) fn run_migrations(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(MIGRATIONS_TABLE)?;
    let done = applied(conn)?;
    for (version, name, text) in crate::store::MIGRATIONS.iter().map(|m| (m.0, m.1, m.2)) {
        if done.contains(&version) {
            continue;
        }
        let started = std::time::Instant::now();
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(text)
            .map_err(|e| StoreError::Migration(format!("{version} {name}: {e}")))?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (?1, ?2, TRUE, ?3, ?4)",
            params![
                version,
                name,
                Sha384::digest(text.as_bytes()).to_vec(),
                i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX)
            ],
        )?;
        tx.commit()?;
    }
    Ok(())
}

impl Lite {
    pub(in crate::store) fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let done = self.read(applied)?;
        Ok(crate::store::unapplied(&done))
    }
}
