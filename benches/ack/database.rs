//! A fresh database per server under test, and dropping it.

use std::path::Path;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

use super::*;

/// A fresh, empty database for one server, and how to drop it.
pub(super) struct Database {
    pub(super) name: &'static str,
    pub(super) url: String,
    /// PostgreSQL: (the admin URL, the database created through it).
    pub(super) created: Option<(String, String)>,
}

/// `admin` with its database replaced by `name`.
pub(super) fn with_database(admin: &str, name: &str) -> String {
    PgConnectOptions::from_str(admin)
        .unwrap_or_else(|e| panic!("DRBOT_BENCH_DATABASE_URL {admin:?}: {e}"))
        .database(name)
        .to_url_lossy()
        .to_string()
}

pub(super) async fn admin_execute(admin: &str, sql: &str) -> Result<(), String> {
    let mut conn = PgConnection::connect(admin)
        .await
        .map_err(|e| format!("connect to {admin}: {e}"))?;
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("{sql}: {e}"))?;
    let _ = conn.close().await;
    Ok(())
}

pub(super) async fn create_database(kind: &str, dir: &Path, admin: &str) -> Database {
    if kind == "sqlite" {
        return Database {
            name: "sqlite",
            url: format!("sqlite://{}", dir.join("bench.db").display()),
            created: None,
        };
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!("drbot_bench_{}_{}_{nanos}", std::process::id(), unix_now());
    admin_execute(admin, &format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("create the bench database: {e}"));
    let url = with_database(admin, &name);
    println!("[postgres] database {url}");
    Database {
        name: "postgres",
        url,
        created: Some((admin.to_string(), name)),
    }
}

pub(super) async fn drop_database(db: &Database, keep: bool) {
    if let Some((admin, name)) = &db.created {
        if keep {
            println!("kept: database {name}");
        } else if let Err(e) =
            admin_execute(admin, &format!("DROP DATABASE {name} WITH (FORCE)")).await
        {
            eprintln!("could not drop {name}: {e}");
        }
    }
}
