//! A throwaway PostgreSQL database per test, on the server `DRBOT_TEST_DATABASE_URL` names.
#![allow(dead_code)]

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::Utc;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

pub const PG_ENV: &str = "DRBOT_TEST_DATABASE_URL";

/// A throwaway PostgreSQL database, dropped when the test ends (even by a panic).
pub struct PgDatabase {
    admin: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin: &str) -> PgDatabase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = Utc::now().timestamp_subsec_nanos();
        let name = format!(
            "drbot_t_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect(admin)
            .await
            .unwrap_or_else(|e| panic!("{PG_ENV}={admin} is set but unreachable: {e}"));
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        let _ = conn.close().await;
        let url = PgConnectOptions::from_str(admin)
            .expect("parse the PostgreSQL URL")
            .database(&name)
            .to_url_lossy()
            .to_string();
        PgDatabase {
            admin: admin.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await, and the test's runtime may be gone: use a runtime of our own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin).await?;
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
                conn.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}
