//! The schema's history: every migration with its SQLite and PostgreSQL text. The files
//! under `migrations/` are applied to databases already: never edit one, add a new one.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::Backend;

/// Migrations by version: (version, name, SQLite text, PostgreSQL text).
pub(super) const MIGRATIONS: [(i64, &str, &str, &str); 7] = [
    (
        20260101000000,
        "init",
        include_str!("../../migrations/sqlite/20260101000000_init.sql"),
        include_str!("../../migrations/postgres/20260101000000_init.sql"),
    ),
    (
        20261121000000,
        "chat",
        include_str!("../../migrations/sqlite/20261121000000_chat.sql"),
        include_str!("../../migrations/postgres/20261121000000_chat.sql"),
    ),
    (
        20261201000000,
        "replicas",
        include_str!("../../migrations/sqlite/20261201000000_replicas.sql"),
        include_str!("../../migrations/postgres/20261201000000_replicas.sql"),
    ),
    (
        20261202000000,
        "drills",
        include_str!("../../migrations/sqlite/20261202000000_drills.sql"),
        include_str!("../../migrations/postgres/20261202000000_drills.sql"),
    ),
    (
        20261202000100,
        "comms",
        include_str!("../../migrations/sqlite/20261202000100_comms.sql"),
        include_str!("../../migrations/postgres/20261202000100_comms.sql"),
    ),
    (
        20261203000000,
        "pages",
        include_str!("../../migrations/sqlite/20261203000000_pages.sql"),
        include_str!("../../migrations/postgres/20261203000000_pages.sql"),
    ),
    (
        20261203000100,
        "requests",
        include_str!("../../migrations/sqlite/20261203000100_requests.sql"),
        include_str!("../../migrations/postgres/20261203000100_requests.sql"),
    ),
];

pub(super) fn migrator(backend: Backend) -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, name, sqlite, postgres)| {
                let text = match backend {
                    Backend::Sqlite => sqlite,
                    Backend::Postgres => postgres,
                };
                Migration::new(
                    version,
                    name.to_owned().into(),
                    MigrationType::Simple,
                    text.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// The migrations of [`MIGRATIONS`] not in `applied`, by version.
pub(super) fn unapplied(applied: &[i64]) -> Vec<i64> {
    MIGRATIONS
        .iter()
        .map(|m| m.0)
        .filter(|v| !applied.contains(v))
        .collect()
}
