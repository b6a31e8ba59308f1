//! The store, against SQLite always and against PostgreSQL when `DRBOT_TEST_DATABASE_URL` is
//! set. Every check runs on every backend; on PostgreSQL each test gets a database of its own
//! so that parallel tests never see each other's rows.

use chrono::{DateTime, Duration, Utc};
use drbot::incident::{
    Actor, Event, EventKind, IncidentId, OperationKind, OperationSpec, Outcome, Plan,
    RecoveryWindow,
};
use drbot::store::{
    Backend, Chain, Commit, GiveUp, NewEvent, NewPost, OperationChange, OperationRow, OutboxRow,
    Projection, Store, StoreError, Target,
};
use futures_util::StreamExt;
use sqlx::Connection;

#[path = "../support/pg.rs"]
mod pg;

use pg::{PG_ENV, PgDatabase};

mod commits;
mod fixtures;
mod incidents;
mod operations;
mod outbox;

use fixtures::*;

/// A store on a database that exists for one test only.
struct TestDb {
    url: String,
    store: Store,
    // Held for their Drop: the SQLite directory and the PostgreSQL database go with the test.
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgDatabase>,
}

impl TestDb {
    /// SQLite, then PostgreSQL if configured. A configured but unreachable server is a
    /// failure, never a skip: a green run must mean both backends were exercised.
    async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite().await];
        if let Ok(admin) = std::env::var(PG_ENV) {
            dbs.push(TestDb::postgres(&admin).await);
        }
        dbs
    }

    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("drbot.db").display());
        let store = Store::connect(&url).await.expect("connect to SQLite");
        assert_eq!(store.backend(), Backend::Sqlite);
        TestDb {
            url,
            store,
            _dir: Some(dir),
            _pg: None,
        }
    }

    async fn postgres(admin: &str) -> TestDb {
        let db = PgDatabase::create(admin).await;
        let store = Store::connect(&db.url)
            .await
            .unwrap_or_else(|e| panic!("connect to the test database {}: {e}", db.name));
        assert_eq!(store.backend(), Backend::Postgres);
        TestDb {
            url: db.url.clone(),
            store,
            _dir: None,
            _pg: Some(db),
        }
    }

    /// A process restart: drop every connection, connect again (migrations run again).
    async fn reopen(&mut self) {
        self.store.close().await;
        self.store = Store::connect(&self.url).await.expect("reconnect");
    }

    async fn finish(self) {
        self.store.close().await;
    }

    fn name(&self) -> &'static str {
        match self.store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// One `#[tokio::test]` per check, running it on every backend.
macro_rules! on_every_backend {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                for mut db in TestDb::all().await {
                    eprintln!("{} on {}", stringify!($check), db.name());
                    checks::$check(&mut db).await;
                    db.finish().await;
                }
            }
        )*
    };
}

on_every_backend!(
    new_incident_gets_an_id_and_seqs_from_one,
    next_incident_id_and_a_taken_id,
    events_round_trip_exactly,
    stale_expected_seq_conflicts_and_writes_nothing,
    concurrent_appends_one_wins,
    unknown_incident_is_not_a_conflict,
    duplicate_dedupe_key_rolls_back_the_whole_commit,
    one_open_incident_per_channel,
    active_incidents_include_owed_summaries,
    outbox_claims_follow_commit_order,
    a_claim_is_taken_over_only_after_its_lease,
    status_posts_coalesce_in_a_lane_of_their_own,
    a_given_up_post_leaves_the_queue_with_its_event,
    operations_are_watched_by_one_replica,
    nul_is_refused_before_anything_is_written,
    status_message_is_recorded_with_its_delivery,
    request_keys_make_a_commit_happen_once,
    operations_queue_launch_finish,
    operation_changes_are_checked,
    stream_events_matches_events,
    reopening_keeps_everything,
    corrupt_payload_is_reported,
    queued_commits_land_in_order_and_a_refused_one_writes_nothing,
    a_commit_built_on_a_refused_one_is_refused_where_another_writer_filled_its_place,
    a_notice_key_posts_once_outside_any_incident,
    drill_incidents_are_listed,
    a_sole_process_sees_every_append_after_a_sequence_number,
);

#[tokio::test]
async fn sqlite_memory_works() {
    let store = Store::connect("sqlite::memory:").await.expect("connect");
    assert_eq!(store.backend(), Backend::Sqlite);
    let done = store
        .commit(new_incident("#mem", vec![declared("#mem", T0)]))
        .await
        .expect("commit");
    assert_eq!(done.seqs, vec![1]);
    // Reads go through the pool again: they must see the same in-memory database.
    assert_eq!(store.events(done.incident).await.expect("events").len(), 1);
    assert_eq!(
        store.open_incident_in("#mem").await.expect("open"),
        Some(done.incident)
    );
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for url in [
        "mysql://localhost/drbot",
        "drbot.db",
        "",
        "http://example.com",
    ] {
        match Store::connect(url).await {
            Err(StoreError::UnsupportedUrl(u)) => assert_eq!(u, url),
            Err(e) => panic!("{url}: unexpected error {e}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("fresh.db");
    assert!(!path.exists());
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connect");
    store
        .commit(new_incident("#wal", vec![declared("#wal", T0)]))
        .await
        .expect("commit");
    assert!(path.exists());
    let conn = rusqlite::Connection::open(&path).expect("open the file directly");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    store.close().await;
}

/// A stop leaves no log for the next start to read back: every commit is in the database
/// file, and the WAL is empty.
#[tokio::test]
async fn a_clean_close_leaves_the_sqlite_wal_empty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("closed.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url).await.expect("connect");
    let first = store
        .commit(new_incident("#close", vec![declared("#close", T0)]))
        .await
        .expect("declare");
    for i in 0..300 {
        store
            .commit(append(
                first.incident,
                i + 1,
                vec![note(&format!("note {i}"), after(T0, i + 1))],
            ))
            .await
            .expect("append");
    }
    let wal = dir.path().join("closed.db-wal");
    assert!(
        std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
        "the commits went through the WAL"
    );
    store.close().await;
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
    let again = Store::connect(&url).await.expect("reopen");
    assert_eq!(again.events(first.incident).await.unwrap().len(), 301);
    again.close().await;
}

/// PostgreSQL: a batch that changes several incidents takes their row locks lowest id first,
/// as the outbox's claim does, so the two wait for each other instead of deadlocking. Here a
/// claim holds incident `a` while a batch of (`b`, then `a`) starts; the claim must then get
/// `b` at once. Taken in the batch's order, `b` was the writer's, and the claim waited until
/// PostgreSQL broke the deadlock a second later.
#[tokio::test]
async fn a_batch_across_incidents_queues_behind_an_outbox_claim_instead_of_deadlocking() {
    let Ok(admin) = std::env::var(PG_ENV) else {
        eprintln!("{PG_ENV} unset: PostgreSQL only");
        return;
    };
    let db = TestDb::postgres(&admin).await;
    let s = &db.store;
    let a = s
        .commit(new_incident("#a", vec![declared("#a", T0)]))
        .await
        .expect("declare a")
        .incident;
    let b = s
        .commit(new_incident("#b", vec![declared("#b", T0)]))
        .await
        .expect("declare b")
        .incident;
    assert!(a < b);
    let mut claim = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    sqlx::raw_sql("BEGIN; SET LOCAL lock_timeout = '500ms'")
        .execute(&mut claim)
        .await
        .expect("begin");
    sqlx::query(COUNT_CLAIM)
        .bind(a)
        .execute(&mut claim)
        .await
        .expect("the claim takes a");
    // Queued back to back, so that the writer takes both in one batch.
    let on_b = s.submit(append(b, 1, vec![note("on b", after(T0, 1))]));
    let on_a = s.submit(append(a, 1, vec![note("on a", after(T0, 1))]));
    let writer = tokio::spawn(async move { (on_b.await, on_a.await) });
    let mut watch = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let waiting_since = std::time::Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watch)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            break;
        }
        assert!(
            waiting_since.elapsed() < std::time::Duration::from_secs(10),
            "the batch never waited for the claim's lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    sqlx::query(COUNT_CLAIM)
        .bind(b)
        .execute(&mut claim)
        .await
        .expect("the claim takes b while the batch waits for a, holding nothing");
    sqlx::raw_sql("COMMIT")
        .execute(&mut claim)
        .await
        .expect("commit");
    let (on_b, on_a) = writer.await.expect("writer task");
    assert_eq!(on_b.expect("b's note lands").seqs, vec![2]);
    assert_eq!(on_a.expect("a's note lands").seqs, vec![2]);
    db.finish().await;
}

/// What the outbox's claim of a status post does to its incident's row.
const COUNT_CLAIM: &str = "UPDATE incidents SET status_claims = status_claims + 1 WHERE id = $1";

// ---------------------------------------------------------------------------------------
// Checks, each run on every backend: one file per concern in this folder, gathered
// here so that `on_every_backend!` finds each as `checks::name`.

mod checks {
    pub use super::commits::*;
    pub use super::incidents::*;
    pub use super::operations::*;
    pub use super::outbox::*;
}
