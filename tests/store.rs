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

#[path = "support/pg.rs"]
mod pg;

use pg::{PG_ENV, PgDatabase};

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
// Fixtures

const T0: &str = "2026-03-01T10:00:00.123Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time literal")
        .with_timezone(&Utc)
}

fn after(base: &str, secs: i64) -> DateTime<Utc> {
    t(base) + Duration::seconds(secs)
}

fn alice() -> Actor {
    Actor::new("slack", "U1", "alice")
}

fn declared(channel: &str, at: &str) -> NewEvent {
    NewEvent {
        recorded_at: t(at),
        occurred_at: None,
        actor: alice(),
        kind: EventKind::Declared {
            channel: channel.into(),
            severity: "sev1".into(),
            incident_type: Some("data".into()),
            title: "orders database lost".into(),
            drill: false,
        },
        dedupe_key: None,
    }
}

fn note(text: &str, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        recorded_at: at,
        occurred_at: None,
        actor: alice(),
        kind: EventKind::NoteAdded { text: text.into() },
        dedupe_key: None,
    }
}

fn keyed(mut ev: NewEvent, key: &str) -> NewEvent {
    ev.dedupe_key = Some(key.into());
    ev
}

fn projection() -> Projection {
    Projection {
        severity: "sev1".into(),
        incident_type: Some("data".into()),
        title: "orders database lost".into(),
        drill: false,
        declared_at: t(T0),
        resolved_at: None,
        final_summary_posted: false,
    }
}

fn resolved(at: DateTime<Utc>) -> Projection {
    Projection {
        resolved_at: Some(at),
        ..projection()
    }
}

/// Incident ids are chosen by the caller; a process-wide counter keeps them unique.
static NEXT_ID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);

fn new_incident(channel: &str, events: Vec<NewEvent>) -> Commit {
    Commit {
        target: Target::New {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            channel: channel.into(),
            platform: "slack".into(),
        },
        events,
        posts: vec![],
        operations: vec![],
        projection: projection(),
        request_key: None,
        gave_up: None,
        chain: Chain::root(),
    }
}

fn append(id: IncidentId, expected_seq: i64, events: Vec<NewEvent>) -> Commit {
    Commit {
        target: Target::Existing { id, expected_seq },
        events,
        posts: vec![],
        operations: vec![],
        projection: projection(),
        request_key: None,
        gave_up: None,
        chain: Chain::root(),
    }
}

fn post(channel: &str, body: &str, at: DateTime<Utc>) -> NewPost {
    NewPost {
        channel: channel.into(),
        body: body.into(),
        created_at: at,
        status: false,
    }
}

fn status_post(channel: &str, body: &str, at: DateTime<Utc>) -> NewPost {
    NewPost {
        status: true,
        ..post(channel, body, at)
    }
}

/// Claim what is due at `now` as worker `token`, with a 60-second lease.
async fn claim(s: &Store, token: &str, now: DateTime<Utc>) -> Vec<OutboxRow> {
    s.claim_posts(token, now, now + Duration::seconds(60), 10, None)
        .await
        .expect("claim")
}

fn queue(op: &str, object: &str) -> OperationChange {
    OperationChange::Queue {
        operation: op.into(),
        kind: "restore_latest".into(),
        object_name: object.into(),
        backend: "sandbox".into(),
        spec: format!(r#"{{"id":"{op}"}}"#),
    }
}

/// What reading back `events` appended as `seqs` of `incident` must give.
fn expected(incident: IncidentId, seqs: &[i64], events: &[NewEvent]) -> Vec<Event> {
    seqs.iter()
        .zip(events)
        .map(|(seq, ev)| Event {
            incident,
            seq: *seq,
            recorded_at: ev.recorded_at,
            occurred_at: ev.occurred_at,
            actor: ev.actor.clone(),
            kind: ev.kind.clone(),
        })
        .collect()
}

/// A representative spread of payloads: nested structs, options, lists, raw JSON, times.
fn varied_events() -> Vec<NewEvent> {
    let spec = OperationSpec {
        id: "op1".into(),
        kind: OperationKind::Pitr,
        object_name: "drbot-7-op1-pitr".into(),
        reason: Some("bad migration at 09:58".into()),
        backup: None,
        cluster: Some("orders-db".into()),
        namespace: None,
        target: Some(t("2026-03-01T09:57:00.500Z")),
        include_namespaces: vec!["orders".into(), "payments".into()],
        exclude_database_namespaces: true,
        prior: None,
    };
    let plan = Plan {
        summary: vec!["restore orders-db to 09:57:00.500Z".into()],
        manifest: "apiVersion: v1\nkind: Restore\n".into(),
        backup: Some("backup-0300".into()),
        window: Some(RecoveryWindow {
            start: t("2026-02-28T00:00:00.000Z"),
            end: t("2026-03-01T09:59:59.999Z"),
        }),
    };
    let at = |s| after(T0, s);
    vec![
        declared("#inc", T0),
        NewEvent {
            // Back-dated: it happened before it was written down.
            occurred_at: Some(t("2026-03-01T09:58:00.007Z")),
            ..note("first alert fired — ünïcødé, \"quotes\", 'single'", at(5))
        },
        NewEvent {
            recorded_at: at(60),
            occurred_at: None,
            actor: Actor::drbot(),
            kind: EventKind::UpdatePosted {
                text: "line one\nline two".into(),
                automatic: true,
                slots: vec![at(30), at(60)],
            },
            dedupe_key: Some("update:10:01".into()),
        },
        NewEvent {
            recorded_at: at(61),
            occurred_at: None,
            actor: Actor::drbot(),
            kind: EventKind::ReminderSent { slot: at(90) },
            dedupe_key: None,
        },
        NewEvent {
            recorded_at: at(62),
            occurred_at: None,
            actor: alice(),
            kind: EventKind::LaunchPreviewed {
                preview: "p1".into(),
                operation: spec,
                plan,
                backend: "sandbox".into(),
                expires_at: at(362),
                warnings: vec!["drill namespace is shared".into()],
            },
            dedupe_key: None,
        },
        NewEvent {
            recorded_at: at(70),
            occurred_at: None,
            actor: Actor::drbot(),
            kind: EventKind::OperationFinished {
                operation: "op1".into(),
                outcome: Outcome::Succeeded,
                phase: "Completed".into(),
                detail: String::new(),
                result: Some(serde_json::json!({"replicas": {"api": 3}, "ok": [true, null, 1.5]})),
            },
            dedupe_key: None,
        },
        NewEvent {
            recorded_at: at(80),
            occurred_at: None,
            actor: alice(),
            kind: EventKind::Resumed,
            dedupe_key: None,
        },
    ]
}

async fn ops_of(store: &Store) -> Vec<OperationRow> {
    store.unfinished_operations().await.expect("operations")
}

// ---------------------------------------------------------------------------------------
// Checks, each run on every backend.

mod checks {
    use super::*;

    pub async fn new_incident_gets_an_id_and_seqs_from_one(db: &mut TestDb) {
        let s = &db.store;
        let events = vec![
            declared("#a", T0),
            note("one", after(T0, 1)),
            note("two", after(T0, 2)),
        ];
        let a = s
            .commit(new_incident("#a", events.clone()))
            .await
            .expect("commit");
        assert_eq!(a.seqs, vec![1, 2, 3]);

        let row = s.incident(a.incident).await.expect("read").expect("exists");
        assert_eq!(row.id, a.incident);
        assert_eq!(row.channel, "#a");
        assert_eq!(row.platform, "slack");
        assert_eq!(row.severity, "sev1");
        assert_eq!(row.incident_type.as_deref(), Some("data"));
        assert_eq!(row.title, "orders database lost");
        assert!(!row.drill);
        assert_eq!(row.declared_at, t(T0));
        assert_eq!(row.resolved_at, None);
        assert!(!row.final_summary_posted);
        assert_eq!(row.last_seq, 3);

        let b = s
            .commit(new_incident("#b", vec![declared("#b", T0)]))
            .await
            .expect("second channel");
        assert_ne!(a.incident, b.incident);
        assert_eq!(b.seqs, vec![1]);

        let more = s
            .commit(append(a.incident, 3, vec![note("three", after(T0, 3))]))
            .await
            .expect("append");
        assert_eq!(
            more,
            drbot::store::Committed {
                incident: a.incident,
                seqs: vec![4]
            }
        );
        assert_eq!(
            s.open_incident_in("#a").await.expect("open"),
            Some(a.incident)
        );
        assert_eq!(s.open_incident_in("#c").await.expect("open"), None);
        assert_eq!(
            s.latest_incident_in("#b").await.expect("latest"),
            Some(b.incident)
        );
        assert_eq!(s.latest_incident_in("#c").await.expect("latest"), None);
        assert_eq!(
            s.incident(b.incident + 1_000_000).await.expect("read"),
            None
        );
        let active: Vec<_> = s
            .active_incidents()
            .await
            .expect("active")
            .iter()
            .map(|a| (a.id, a.seq))
            .collect();
        assert_eq!(active, vec![(a.incident, 4), (b.incident, 1)]);
    }

    pub async fn next_incident_id_and_a_taken_id(db: &mut TestDb) {
        let s = &db.store;
        assert_eq!(s.next_incident_id().await.expect("next"), 1);
        let a = s
            .commit(new_incident("#a", vec![declared("#a", T0)]))
            .await
            .expect("a");
        assert_eq!(s.next_incident_id().await.expect("next"), a.incident + 1);

        // Two declarations that read the same next id: the loser must retry, whatever channel.
        let mut taken = new_incident("#b", vec![declared("#b", T0)]);
        taken.target = Target::New {
            id: a.incident,
            channel: "#b".into(),
            platform: "slack".into(),
        };
        taken.posts = vec![post("#b", "declared", t(T0))];
        match s.commit(taken).await {
            Err(StoreError::Conflict) => {}
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(s.open_incident_in("#b").await.expect("open"), None);
        assert_eq!(s.pending_posts().await.expect("pending"), 0);
        assert_eq!(s.events(a.incident).await.expect("events").len(), 1);

        let b = s
            .commit(Commit {
                target: Target::New {
                    id: s.next_incident_id().await.expect("next"),
                    channel: "#b".into(),
                    platform: "slack".into(),
                },
                ..new_incident("#b", vec![declared("#b", T0)])
            })
            .await
            .expect("retry with a fresh id");
        assert_eq!(b.incident, a.incident + 1);
        assert_eq!(
            s.latest_incident_in("#b").await.expect("latest"),
            Some(b.incident)
        );
    }

    /// A process that holds the database alone answers "anything after N?" from what its
    /// own writer appended: it must still see every append, to incidents made before it took
    /// the file and after, and a refused commit must not make it skip a read it needs.
    pub async fn a_sole_process_sees_every_append_after_a_sequence_number(db: &mut TestDb) {
        let before = db
            .store
            .commit(new_incident("#before", vec![declared("#before", T0)]))
            .await
            .expect("an incident before the restart");
        db.reopen().await;
        let s = &db.store;
        s.hold_sole_process().await.expect("hold the database");
        assert_eq!(s.events_after(before.incident, 1).await.unwrap(), vec![]);
        s.commit(append(before.incident, 1, vec![note("one", after(T0, 1))]))
            .await
            .expect("append to the older incident");
        let newer = s.events_after(before.incident, 1).await.unwrap();
        assert_eq!(newer.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2]);

        let fresh = s
            .commit(new_incident("#fresh", vec![declared("#fresh", T0)]))
            .await
            .expect("a new incident");
        assert_eq!(s.events_after(fresh.incident, 1).await.unwrap(), vec![]);
        let stale = s
            .commit(append(fresh.incident, 0, vec![note("stale", after(T0, 2))]))
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
        s.commit(append(
            fresh.incident,
            1,
            vec![note("two", after(T0, 3)), note("three", after(T0, 4))],
        ))
        .await
        .expect("append to the new incident");
        let newer = s.events_after(fresh.incident, 1).await.unwrap();
        assert_eq!(newer.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        let newer = s.events_after(fresh.incident, 2).await.unwrap();
        assert_eq!(newer.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
        assert_eq!(s.events_after(fresh.incident, 3).await.unwrap(), vec![]);
    }

    pub async fn events_round_trip_exactly(db: &mut TestDb) {
        let s = &db.store;
        let events = varied_events();
        let (first, rest) = events.split_at(3);
        let a = s
            .commit(new_incident("#inc", first.to_vec()))
            .await
            .expect("commit");
        let b = s
            .commit(append(a.incident, 3, rest.to_vec()))
            .await
            .expect("append");
        assert_eq!(b.seqs, vec![4, 5, 6, 7]);
        let want = expected(a.incident, &[1, 2, 3, 4, 5, 6, 7], &events);
        assert_eq!(s.events(a.incident).await.expect("events"), want);
        assert_eq!(
            s.events(a.incident + 1_000_000).await.expect("events"),
            vec![]
        );
    }

    /// Group commit: commits queued back to back (the writer may take them in one
    /// transaction) each build on the one before; one that is refused writes nothing and the
    /// others still land; one built on the refused one fails its sequence check.
    pub async fn queued_commits_land_in_order_and_a_refused_one_writes_nothing(db: &mut TestDb) {
        let s = &db.store;
        let a = s
            .commit(new_incident("#g", vec![declared("#g", T0)]))
            .await
            .expect("commit");
        let id = a.incident;
        // All queued before any is awaited.
        let first = s.submit(append(id, 1, vec![note("one", after(T0, 1))]));
        let second = s.submit(append(id, 2, vec![note("two", after(T0, 2))]));
        let mut refused = append(id, 3, vec![note("bad", after(T0, 3))]);
        refused.posts = vec![post("#g", "bad", after(T0, 3))];
        refused.request_key = Some("dup-key".into());
        let mut keyed = append(id, 3, vec![note("three", after(T0, 3))]);
        keyed.request_key = Some("dup-key".into());
        let third = s.submit(keyed);
        let fourth = s.submit(refused);
        let on_refused = s.submit(append(id, 5, vec![note("on bad", after(T0, 4))]));
        let fifth = s.submit(append(id, 4, vec![note("four", after(T0, 5))]));
        assert_eq!(first.await.expect("first").seqs, vec![2]);
        assert_eq!(second.await.expect("second").seqs, vec![3]);
        assert_eq!(third.await.expect("third").seqs, vec![4]);
        match fourth.await {
            Err(StoreError::Conflict | StoreError::Duplicate(_)) => {}
            other => panic!("the stale, duplicate commit must be refused: {other:?}"),
        }
        match on_refused.await {
            Err(StoreError::Conflict) => {}
            other => panic!("built on a refused commit: {other:?}"),
        }
        assert_eq!(fifth.await.expect("fifth").seqs, vec![5]);
        let texts: Vec<String> = s
            .events(id)
            .await
            .expect("events")
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::NoteAdded { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["one", "two", "three", "four"]);
        assert_eq!(
            s.pending_posts().await.expect("pending"),
            0,
            "nothing of the refused one"
        );
    }

    /// A decision made on a commit still in flight is refused when that commit is, even
    /// though another writer's events took the commit's place and the sequence number the
    /// decision expects is there.
    pub async fn a_commit_built_on_a_refused_one_is_refused_where_another_writer_filled_its_place(
        db: &mut TestDb,
    ) {
        let s = &db.store;
        let id = s
            .commit(new_incident("#c", vec![declared("#c", T0)]))
            .await
            .expect("commit")
            .incident;
        // Another replica's note lands at seq 2 first; ours, expecting seq 1, is refused.
        let theirs = s.submit(append(id, 1, vec![note("theirs", after(T0, 1))]));
        let mine = append(id, 1, vec![note("mine", after(T0, 2))]);
        let mine_chain = mine.chain;
        let refused = s.submit(mine);
        let mut on_mine = append(id, 2, vec![note("on mine", after(T0, 3))]);
        on_mine.chain = Chain::on(Some(mine_chain.token));
        let built_on_refused = s.submit(on_mine);
        assert_eq!(theirs.await.expect("theirs").seqs, vec![2]);
        assert!(matches!(refused.await, Err(StoreError::Conflict)));
        match built_on_refused.await {
            Err(StoreError::Conflict) => {}
            other => panic!("landed on events it was not decided on: {other:?}"),
        }
        // Decided again on what the store holds, it lands.
        let again = s.commit(append(id, 2, vec![note("on theirs", after(T0, 3))]));
        assert_eq!(again.await.expect("again").seqs, vec![3]);
        assert_eq!(s.events(id).await.expect("events").len(), 3);
    }

    pub async fn stale_expected_seq_conflicts_and_writes_nothing(db: &mut TestDb) {
        let s = &db.store;
        let a = s
            .commit(new_incident(
                "#a",
                vec![declared("#a", T0), note("x", after(T0, 1))],
            ))
            .await
            .expect("commit");
        let mut ok = append(a.incident, 2, vec![note("y", after(T0, 2))]);
        ok.posts = vec![post("#a", "y", after(T0, 2))];
        ok.operations = vec![queue("op1", "obj-1")];
        s.commit(ok).await.expect("append");

        let before_events = s.events(a.incident).await.expect("events");
        let before_row = s.incident(a.incident).await.expect("read");
        let before_ops = ops_of(s).await;
        assert_eq!(before_events.len(), 3);
        assert_eq!(s.pending_posts().await.expect("pending"), 1);

        // Decided on the state at seq 2, but seq 3 has been written since.
        let mut stale = append(a.incident, 2, vec![note("late", after(T0, 9))]);
        stale.posts = vec![post("#a", "late", after(T0, 9))];
        stale.operations = vec![
            queue("op2", "obj-2"),
            OperationChange::Launched {
                operation: "op1".into(),
                at: after(T0, 9),
            },
        ];
        stale.projection = Projection {
            title: "changed".into(),
            ..resolved(after(T0, 9))
        };
        match s.commit(stale).await {
            Err(StoreError::Conflict) => {}
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(s.events(a.incident).await.expect("events"), before_events);
        assert_eq!(s.incident(a.incident).await.expect("read"), before_row);
        assert_eq!(ops_of(s).await, before_ops);
        assert_eq!(s.pending_posts().await.expect("pending"), 1);

        // Ahead of the store is a conflict too.
        match s
            .commit(append(a.incident, 7, vec![note("z", after(T0, 9))]))
            .await
        {
            Err(StoreError::Conflict) => {}
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(s.events(a.incident).await.expect("events"), before_events);
    }

    pub async fn concurrent_appends_one_wins(db: &mut TestDb) {
        let s = &db.store;
        let a = s
            .commit(new_incident("#race", vec![declared("#race", T0)]))
            .await
            .expect("commit");
        for round in 0..5_i64 {
            let seq = 1 + round;
            let mk = |who: &str| {
                let mut c = append(a.incident, seq, vec![note(who, after(T0, seq))]);
                c.posts = vec![post("#race", who, after(T0, seq))];
                c
            };
            let (x, y) = tokio::join!(s.commit(mk("x")), s.commit(mk("y")));
            let wins = [&x, &y].iter().filter(|r| r.is_ok()).count();
            assert_eq!(wins, 1, "round {round}: {x:?} / {y:?}");
            for r in [x, y] {
                match r {
                    Ok(c) => assert_eq!(c.seqs, vec![seq + 1]),
                    Err(StoreError::Conflict) => {}
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
        }
        let events = s.events(a.incident).await.expect("events");
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
        assert_eq!(s.pending_posts().await.expect("pending"), 5);
    }

    pub async fn unknown_incident_is_not_a_conflict(db: &mut TestDb) {
        // A retry loop on Conflict would spin forever on an incident that does not exist.
        match db
            .store
            .commit(append(4242, 0, vec![note("x", t(T0))]))
            .await
        {
            Err(StoreError::Conflict) | Ok(_) => panic!("unknown incident accepted or retryable"),
            Err(_) => {}
        }
        assert_eq!(db.store.pending_posts().await.expect("pending"), 0);
    }

    pub async fn duplicate_dedupe_key_rolls_back_the_whole_commit(db: &mut TestDb) {
        let s = &db.store;
        let a = s
            .commit(new_incident("#a", vec![declared("#a", T0)]))
            .await
            .expect("commit");
        let mut first = append(
            a.incident,
            1,
            vec![
                keyed(note("10:15 update", after(T0, 900)), "slot:10:15"),
                // Events without a key never collide with each other.
                note("plain", after(T0, 901)),
                note("plain", after(T0, 901)),
            ],
        );
        first.posts = vec![post("#a", "update", after(T0, 900))];
        s.commit(first).await.expect("first slot");
        let before = s.events(a.incident).await.expect("events");

        let mut again = append(
            a.incident,
            4,
            vec![
                note("before the duplicate", after(T0, 905)),
                keyed(note("10:15 update again", after(T0, 905)), "slot:10:15"),
            ],
        );
        again.posts = vec![post("#a", "update again", after(T0, 905))];
        again.operations = vec![queue("op1", "obj-1")];
        match s.commit(again).await {
            Err(StoreError::Duplicate(key)) => assert_eq!(key, "slot:10:15"),
            other => panic!("expected a duplicate, got {other:?}"),
        }
        assert_eq!(s.events(a.incident).await.expect("events"), before);
        assert_eq!(s.pending_posts().await.expect("pending"), 1);
        assert_eq!(ops_of(s).await, vec![]);
        assert_eq!(
            s.incident(a.incident)
                .await
                .expect("read")
                .expect("row")
                .last_seq,
            4
        );

        // The same key twice within one commit is a duplicate as well.
        match s
            .commit(append(
                a.incident,
                4,
                vec![
                    keyed(note("r", after(T0, 906)), "reminder:10:30"),
                    keyed(note("r", after(T0, 906)), "reminder:10:30"),
                ],
            ))
            .await
        {
            Err(StoreError::Duplicate(key)) => assert_eq!(key, "reminder:10:30"),
            other => panic!("expected a duplicate, got {other:?}"),
        }

        // Keys are per incident.
        let b = s
            .commit(new_incident("#b", vec![declared("#b", T0)]))
            .await
            .expect("other incident");
        s.commit(append(
            b.incident,
            1,
            vec![keyed(note("10:15 update", after(T0, 900)), "slot:10:15")],
        ))
        .await
        .expect("same key, other incident");
    }

    pub async fn one_open_incident_per_channel(db: &mut TestDb) {
        let s = &db.store;
        let a = s
            .commit(new_incident("#a", vec![declared("#a", T0)]))
            .await
            .expect("first");
        let mut second = new_incident("#a", vec![declared("#a", T0)]);
        second.posts = vec![post("#a", "declared", t(T0))];
        match s.commit(second).await {
            Err(StoreError::OpenIncidentExists(ch)) => assert_eq!(ch, "#a"),
            other => panic!("expected OpenIncidentExists, got {other:?}"),
        }
        assert_eq!(s.pending_posts().await.expect("pending"), 0);
        assert_eq!(
            s.latest_incident_in("#a").await.expect("latest"),
            Some(a.incident)
        );

        let mut resolve = append(a.incident, 1, vec![note("resolved", after(T0, 60))]);
        resolve.projection = resolved(after(T0, 60));
        s.commit(resolve).await.expect("resolve");
        assert_eq!(s.open_incident_in("#a").await.expect("open"), None);
        assert_eq!(
            s.incident(a.incident)
                .await
                .expect("read")
                .expect("row")
                .resolved_at,
            Some(after(T0, 60))
        );

        let b = s
            .commit(new_incident("#a", vec![declared("#a", T0)]))
            .await
            .expect("new incident after the first was resolved");
        assert!(b.incident > a.incident);
        assert_eq!(
            s.open_incident_in("#a").await.expect("open"),
            Some(b.incident)
        );
        assert_eq!(
            s.latest_incident_in("#a").await.expect("latest"),
            Some(b.incident)
        );

        // Reopening the first while the second is open is refused by the database too.
        let reopen = append(a.incident, 2, vec![note("reopen", after(T0, 120))]);
        match s.commit(reopen).await {
            Err(StoreError::OpenIncidentExists(ch)) => assert_eq!(ch, "#a"),
            other => panic!("expected OpenIncidentExists, got {other:?}"),
        }
        assert_eq!(s.events(a.incident).await.expect("events").len(), 2);
    }

    pub async fn active_incidents_include_owed_summaries(db: &mut TestDb) {
        let s = &db.store;
        let open = s
            .commit(new_incident("#open", vec![declared("#open", T0)]))
            .await
            .expect("open");
        let owed = s
            .commit(Commit {
                projection: resolved(after(T0, 10)),
                request_key: None,
                gave_up: None,
                ..new_incident("#owed", vec![declared("#owed", T0)])
            })
            .await
            .expect("owed");
        let done = s
            .commit(Commit {
                projection: Projection {
                    final_summary_posted: true,
                    ..resolved(after(T0, 10))
                },
                ..new_incident("#done", vec![declared("#done", T0)])
            })
            .await
            .expect("done");
        let active: Vec<_> = s
            .active_incidents()
            .await
            .expect("active")
            .iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(active, vec![open.incident, owed.incident]);
        assert!(!active.contains(&done.incident));

        let mut summary = append(owed.incident, 1, vec![note("summary", after(T0, 20))]);
        summary.projection = Projection {
            final_summary_posted: true,
            ..resolved(after(T0, 10))
        };
        s.commit(summary).await.expect("summary");
        assert_eq!(
            s.active_incidents().await.expect("active"),
            vec![drbot::store::ActiveIncident {
                id: open.incident,
                seq: 1
            }]
        );
        let row = s.incident(owed.incident).await.expect("read").expect("row");
        assert!(row.final_summary_posted);
    }

    pub async fn outbox_claims_follow_commit_order(db: &mut TestDb) {
        let s = &db.store;
        let mut c = new_incident("#a", vec![declared("#a", T0)]);
        c.posts = vec![
            post("#a", r#"{"text":"one"}"#, after(T0, 0)),
            post("#a", r#"{"text":"two"}"#, after(T0, 10)),
            post("#ops", r#"{"text":"three"}"#, after(T0, 20)),
        ];
        let a = s.commit(c).await.expect("commit");
        assert_eq!(s.pending_posts().await.expect("pending"), 3);

        assert_eq!(claim(s, "w1", after(T0, -1)).await, vec![]);
        // One post per channel at a time: the head of #a, and #ops once it is due.
        let first = claim(s, "w1", after(T0, 10)).await;
        assert_eq!(first.len(), 1);
        let one = first[0].clone();
        assert_eq!(one.incident, Some(a.incident));
        assert_eq!(one.channel, "#a");
        assert_eq!(one.body, r#"{"text":"one"}"#);
        assert_eq!((one.attempts, one.earlier_sends), (0, 0));
        assert_eq!(one.created_at, t(T0));
        assert!(!one.taken_over());
        let ops = claim(s, "w1", after(T0, 20)).await;
        assert_eq!(
            ops.iter().map(|r| r.channel.as_str()).collect::<Vec<_>>(),
            vec!["#ops"]
        );
        assert!(
            s.record_delivery(&ops[0], after(T0, 21), "ts-3")
                .await
                .expect("delivered")
        );

        // The head fails: nothing of #a overtakes it while it backs off.
        assert!(
            s.record_failure(&one, after(T0, 300), "rate limited")
                .await
                .expect("failed")
        );
        assert_eq!(claim(s, "w1", after(T0, 299)).await, vec![]);
        let again = claim(s, "w1", after(T0, 300)).await;
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].id, again[0].attempts, again[0].earlier_sends),
            (one.id, 1, 1)
        );
        assert!(!again[0].taken_over(), "the failure was recorded");
        assert!(
            s.record_delivery(&again[0], after(T0, 301), "ts-1")
                .await
                .expect("delivered")
        );
        // A late report under the old claim changes nothing.
        assert!(
            !s.record_failure(&one, after(T0, 302), "late")
                .await
                .expect("late")
        );
        assert!(
            !s.record_delivery(&one, after(T0, 302), "ts-x")
                .await
                .expect("late")
        );

        let two = claim(s, "w1", after(T0, 301)).await;
        assert_eq!(
            two.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
            vec![r#"{"text":"two"}"#]
        );
        assert!(
            s.record_delivery(&two[0], after(T0, 302), "ts-2")
                .await
                .expect("delivered")
        );
        assert_eq!(s.pending_posts().await.expect("pending"), 0);
        assert_eq!(claim(s, "w1", after(T0, 10_000)).await, vec![]);
    }

    pub async fn a_claim_is_taken_over_only_after_its_lease(db: &mut TestDb) {
        let s = &db.store;
        // A second handle on the same database: another replica.
        let other = Store::connect(&db.url).await.expect("second replica");
        let mut c = new_incident("#a", vec![declared("#a", T0)]);
        c.posts = vec![post("#a", r#"{"text":"one"}"#, t(T0))];
        s.commit(c).await.expect("commit");

        let mine = claim(s, "w1", t(T0)).await;
        assert_eq!(mine.len(), 1);
        // Leased for 60 s: the other replica gets nothing, however often it asks.
        assert_eq!(claim(&other, "w2", after(T0, 59)).await, vec![]);
        // w1 died mid-send. After the lease the row is taken over, marked as maybe sent.
        let theirs = claim(&other, "w2", after(T0, 61)).await;
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].id, mine[0].id);
        assert_eq!(theirs[0].earlier_sends, 1);
        assert!(theirs[0].taken_over());
        // The old holder cannot record anything any more; the new one can.
        assert!(
            !s.record_delivery(&mine[0], after(T0, 62), "ts-old")
                .await
                .expect("old")
        );
        assert!(
            other
                .record_delivery(&theirs[0], after(T0, 62), "ts-new")
                .await
                .expect("new")
        );
        assert_eq!(s.pending_posts().await.expect("pending"), 0);
        other.close().await;
    }

    pub async fn status_posts_coalesce_in_a_lane_of_their_own(db: &mut TestDb) {
        let s = &db.store;
        let mut c = new_incident("#a", vec![declared("#a", T0)]);
        c.posts = vec![
            status_post("#a", "s1", t(T0)),
            post("#a", r#"{"text":"p1"}"#, t(T0)),
            status_post("#a", "s2", t(T0)),
        ];
        let a = s.commit(c).await.expect("commit");
        // The status waits for the post committed before it.
        let first = claim(s, "w1", t(T0)).await;
        assert_eq!(
            first
                .iter()
                .map(|r| (r.status, r.body.as_str()))
                .collect::<Vec<_>>(),
            vec![(false, r#"{"text":"p1"}"#)]
        );
        assert!(
            s.record_delivery(&first[0], t(T0), "ts-p1")
                .await
                .expect("p1")
        );
        // Then only the newest status; the older one is retired.
        let status = claim(s, "w1", t(T0)).await;
        assert_eq!(
            status
                .iter()
                .map(|r| (r.status, r.body.as_str()))
                .collect::<Vec<_>>(),
            vec![(true, "s2")]
        );
        assert!(!status[0].status_in_doubt);
        assert_eq!(s.pending_posts().await.expect("pending"), 1);
        // The status edit fails; later posts still go out.
        assert!(
            s.record_failure(&status[0], after(T0, 600), "edit failed")
                .await
                .expect("failed")
        );
        let mut more = append(a.incident, 1, vec![note("n", after(T0, 1))]);
        more.posts = vec![post("#a", r#"{"text":"p2"}"#, after(T0, 1))];
        s.commit(more).await.expect("p2");
        let next = claim(s, "w1", after(T0, 1)).await;
        assert_eq!(
            next.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
            vec![r#"{"text":"p2"}"#]
        );
        assert!(
            s.record_delivery(&next[0], after(T0, 1), "ts-p2")
                .await
                .expect("p2")
        );
        // A newer status replaces the failing one at once; it knows an earlier status post
        // of the incident went out without a recorded message, so it looks first.
        let mut newer = append(a.incident, 2, vec![note("m", after(T0, 2))]);
        newer.posts = vec![status_post("#a", "s3", after(T0, 2))];
        s.commit(newer).await.expect("s3");
        let s3 = claim(s, "w1", after(T0, 2)).await;
        assert_eq!(
            s3.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
            vec!["s3"]
        );
        assert!(s3[0].status_in_doubt);
        assert!(
            s.record_delivery(&s3[0], after(T0, 2), "ts-status")
                .await
                .expect("s3")
        );
        assert_eq!(
            s.status_message(a.incident).await.expect("read").as_deref(),
            Some("ts-status")
        );
        assert_eq!(s.pending_posts().await.expect("pending"), 0);
    }

    pub async fn a_given_up_post_leaves_the_queue_with_its_event(db: &mut TestDb) {
        let s = &db.store;
        let mut c = new_incident("#a", vec![declared("#a", T0)]);
        c.posts = vec![
            post("#a", r#"{"text":"one"}"#, t(T0)),
            post("#a", r#"{"text":"two"}"#, t(T0)),
        ];
        let a = s.commit(c).await.expect("commit");
        let one = claim(s, "w1", t(T0)).await.remove(0);
        let mut stale = append(a.incident, 1, vec![note("gave up", after(T0, 1))]);
        stale.gave_up = Some(GiveUp {
            outbox: one.id,
            claim_token: "someone else".into(),
            error: "x".into(),
        });
        assert!(matches!(
            s.commit(stale).await,
            Err(StoreError::LeaseLost(_))
        ));
        assert_eq!(
            s.events(a.incident).await.expect("events").len(),
            1,
            "nothing written"
        );
        let mut give_up = append(a.incident, 1, vec![note("gave up", after(T0, 1))]);
        give_up.gave_up = Some(GiveUp {
            outbox: one.id,
            claim_token: one.claim_token.clone(),
            error: "Slack API error: not_in_channel".into(),
        });
        s.commit(give_up).await.expect("give up");
        assert_eq!(
            s.given_up().await.expect("given up"),
            vec![(
                "#a".to_string(),
                "Slack API error: not_in_channel".to_string()
            )]
        );
        let next = claim(s, "w1", after(T0, 1)).await;
        assert_eq!(
            next.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
            vec![r#"{"text":"two"}"#]
        );
    }

    pub async fn operations_are_watched_by_one_replica(db: &mut TestDb) {
        let s = &db.store;
        let other = Store::connect(&db.url).await.expect("second replica");
        let a = s
            .commit(new_incident("#a", vec![declared("#a", T0)]))
            .await
            .expect("a");
        let mut q = append(a.incident, 1, vec![note("confirmed", after(T0, 1))]);
        q.operations = vec![queue("op1", "a-op1")];
        s.commit(q).await.expect("queue");

        let lease = |secs: i64| after(T0, secs + 10);
        let mine = s
            .claim_operations("r1", t(T0), lease(0))
            .await
            .expect("claim");
        assert_eq!(mine.len(), 1);
        assert!(!mine[0].taken_over);
        assert_eq!(
            other
                .claim_operations("r2", after(T0, 5), lease(5))
                .await
                .expect("claim"),
            vec![]
        );
        // r1 renews on each pass and keeps it.
        assert_eq!(
            s.claim_operations("r1", after(T0, 9), lease(9))
                .await
                .expect("renew")
                .len(),
            1
        );
        assert_eq!(
            other
                .claim_operations("r2", after(T0, 15), lease(15))
                .await
                .expect("claim"),
            vec![]
        );
        // r1 stops renewing: r2 takes over once the lease has run out.
        let theirs = other
            .claim_operations("r2", after(T0, 20), lease(20))
            .await
            .expect("claim");
        assert_eq!(theirs.len(), 1);
        assert!(theirs[0].taken_over);
        assert_eq!(
            s.claim_operations("r1", after(T0, 21), lease(21))
                .await
                .expect("claim"),
            vec![]
        );
        // A clean stop lets go at once.
        assert_eq!(other.release_operations("r2").await.expect("release"), 1);
        assert_eq!(
            s.claim_operations("r1", after(T0, 22), lease(22))
                .await
                .expect("claim")
                .len(),
            1
        );
        other.close().await;
    }

    pub async fn nul_is_refused_before_anything_is_written(db: &mut TestDb) {
        let s = &db.store;
        let mut title = new_incident("#n", vec![declared("#n", T0)]);
        title.projection.title = "orders\0wiped".into();
        assert!(matches!(
            s.commit(title).await,
            Err(StoreError::Unstorable(_))
        ));
        let mut actor = new_incident("#n", vec![declared("#n", T0)]);
        actor.events[0].actor.name = "al\0ice".into();
        assert!(matches!(
            s.commit(actor).await,
            Err(StoreError::Unstorable(_))
        ));
        let mut key = new_incident("#n", vec![declared("#n", T0)]);
        key.request_key = Some("slack:\0".into());
        assert!(matches!(
            s.commit(key).await,
            Err(StoreError::Unstorable(_))
        ));
        assert!(matches!(
            s.commit(new_incident("#\0", vec![declared("#\0", T0)]))
                .await,
            Err(StoreError::Unstorable(_))
        ));
        // Lookups with NUL find nothing rather than fail.
        assert_eq!(s.open_incident_in("#\0").await.expect("lookup"), None);
        assert!(!s.request_seen("k\0").await.expect("lookup"));
        // NUL inside an event's text is stored (JSON escapes it) and comes back intact.
        let a = s
            .commit(new_incident("#n", vec![declared("#n", T0)]))
            .await
            .expect("declare");
        s.commit(append(a.incident, 1, vec![note("a\0b", after(T0, 1))]))
            .await
            .expect("note");
        let events = s.events(a.incident).await.expect("events");
        assert!(matches!(&events[1].kind, EventKind::NoteAdded { text } if text == "a\0b"));
    }

    pub async fn status_message_is_recorded_with_its_delivery(db: &mut TestDb) {
        let s = &db.store;
        let mut c = new_incident("slack:C1", vec![declared("slack:C1", T0)]);
        c.posts = vec![status_post("slack:C1", r#"{"text":"status"}"#, t(T0))];
        let a = s.commit(c).await.expect("commit");
        assert_eq!(s.status_message(a.incident).await.expect("read"), None);
        let due = claim(s, "w1", t(T0)).await;
        assert!(
            s.record_delivery(&due[0], t(T0), "1700000000.000100")
                .await
                .expect("delivered")
        );
        assert_eq!(
            s.status_message(a.incident).await.expect("read").as_deref(),
            Some("1700000000.000100")
        );
        assert_eq!(s.outbox_backlog().await.expect("backlog"), (0, None));
    }

    pub async fn a_notice_key_posts_once_outside_any_incident(db: &mut TestDb) {
        let key = "drill-due:orders:pitr:2026Q4";
        let notice = |body: &str| post("#drills", body, t(T0));
        // Two writers at once: one key, one post.
        let (a, b) = tokio::join!(
            db.store.post_notice(key, notice(r#"{"text":"first"}"#)),
            db.store.post_notice(key, notice(r#"{"text":"second"}"#)),
        );
        assert_eq!(
            [a.expect("first"), b.expect("second")]
                .iter()
                .filter(|x| **x)
                .count(),
            1
        );
        // A restart does not forget it.
        db.reopen().await;
        let s = &db.store;
        assert!(!s.post_notice(key, notice("{}")).await.expect("again"));
        assert!(
            s.post_notice("drill-due:orders:pitr:2027Q1", notice("{}"))
                .await
                .expect("next quarter")
        );
        let due = claim(s, "w1", t(T0)).await;
        assert_eq!(due.len(), 1, "one post per lane head: {due:?}");
        assert_eq!(due[0].incident, None);
        assert_eq!(due[0].channel, "#drills");
        assert!(
            s.record_delivery(&due[0], t(T0), "ok")
                .await
                .expect("delivered")
        );
        assert_eq!(claim(s, "w1", t(T0)).await.len(), 1);
        assert!(matches!(
            s.post_notice("k\0", notice("{}")).await,
            Err(StoreError::Unstorable(_))
        ));
    }

    pub async fn drill_incidents_are_listed(db: &mut TestDb) {
        let s = &db.store;
        let real = s
            .commit(new_incident("#a", vec![declared("#a", T0)]))
            .await
            .expect("real");
        let mut drill = new_incident("#b", vec![declared("#b", T0)]);
        if let EventKind::Declared { drill: d, .. } = &mut drill.events[0].kind {
            *d = true;
        }
        drill.projection.drill = true;
        let drill = s.commit(drill).await.expect("drill");
        assert_ne!(real.incident, drill.incident);
        assert_eq!(
            s.drill_incidents().await.expect("drills"),
            vec![drill.incident]
        );
    }

    pub async fn request_keys_make_a_commit_happen_once(db: &mut TestDb) {
        let s = &db.store;
        let mut c = new_incident("#k", vec![declared("#k", T0)]);
        c.request_key = Some("slack:trigger:1".into());
        c.posts = vec![post("#k", r#"{"text":"declared"}"#, t(T0))];
        let a = s.commit(c).await.expect("first");
        assert!(s.request_seen("slack:trigger:1").await.expect("seen"));
        assert!(!s.request_seen("slack:trigger:2").await.expect("seen"));

        let mut again = append(a.incident, 1, vec![note("twice", after(T0, 1))]);
        again.request_key = Some("slack:trigger:1".into());
        again.posts = vec![post("#k", r#"{"text":"twice"}"#, after(T0, 1))];
        match s.commit(again).await {
            Err(StoreError::Duplicate(what)) => assert!(what.contains("slack:trigger:1"), "{what}"),
            other => panic!("expected a duplicate, got {other:?}"),
        }
        // The refused commit wrote nothing: one event, one post.
        assert_eq!(s.events(a.incident).await.expect("events").len(), 1);
        assert_eq!(s.outbox_backlog().await.expect("backlog").0, 1);

        assert_eq!(s.forget_requests(t(T0)).await.expect("keep"), 0);
        assert_eq!(s.forget_requests(after(T0, 1)).await.expect("forget"), 1);
        assert!(!s.request_seen("slack:trigger:1").await.expect("seen"));
    }

    pub async fn operations_queue_launch_finish(db: &mut TestDb) {
        let s = &db.store;
        let a = s
            .commit(new_incident("#a", vec![declared("#a", T0)]))
            .await
            .expect("a");
        let b = s
            .commit(new_incident("#b", vec![declared("#b", T0)]))
            .await
            .expect("b");

        let mut qb = append(b.incident, 1, vec![note("confirmed", after(T0, 1))]);
        qb.operations = vec![queue("op1", "b-op1")];
        s.commit(qb).await.expect("queue b");
        let mut qa = append(a.incident, 1, vec![note("confirmed", after(T0, 2))]);
        qa.operations = vec![queue("op2", "a-op2"), queue("op1", "a-op1")];
        s.commit(qa).await.expect("queue a");

        let ops = ops_of(s).await;
        let keys: Vec<_> = ops
            .iter()
            .map(|o| (o.incident, o.operation.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (a.incident, "op1"),
                (a.incident, "op2"),
                (b.incident, "op1")
            ]
        );
        assert_eq!(
            ops[0],
            OperationRow {
                incident: a.incident,
                operation: "op1".into(),
                kind: "restore_latest".into(),
                object_name: "a-op1".into(),
                backend: "sandbox".into(),
                spec: r#"{"id":"op1"}"#.into(),
                status: "queued".into(),
                launched_at: None,
                taken_over: false,
            }
        );

        let mut launch = append(a.incident, 2, vec![note("launched", after(T0, 3))]);
        launch.operations = vec![OperationChange::Launched {
            operation: "op1".into(),
            at: after(T0, 3),
        }];
        s.commit(launch).await.expect("launch");
        let ops = ops_of(s).await;
        assert_eq!(ops[0].status, "launched");
        assert_eq!(ops[0].launched_at, Some(after(T0, 3)));
        assert_eq!(ops[1].status, "queued");

        let mut finish = append(a.incident, 3, vec![note("finished", after(T0, 4))]);
        finish.operations = vec![
            OperationChange::Finished {
                operation: "op1".into(),
                at: after(T0, 4),
            },
            // Finished without having been seen running (failed to launch).
            OperationChange::Finished {
                operation: "op2".into(),
                at: after(T0, 4),
            },
        ];
        s.commit(finish).await.expect("finish");
        let keys: Vec<_> = ops_of(s)
            .await
            .into_iter()
            .map(|o| (o.incident, o.operation))
            .collect();
        assert_eq!(keys, vec![(b.incident, "op1".to_string())]);
    }

    pub async fn operation_changes_are_checked(db: &mut TestDb) {
        let s = &db.store;
        let a = s
            .commit(new_incident("#a", vec![declared("#a", T0)]))
            .await
            .expect("a");
        let mut q = append(a.incident, 1, vec![note("q", after(T0, 1))]);
        q.operations = vec![queue("op1", "obj-1")];
        s.commit(q).await.expect("queue");

        let mut twice = append(a.incident, 2, vec![note("q again", after(T0, 2))]);
        twice.operations = vec![queue("op1", "obj-other")];
        twice.posts = vec![post("#a", "x", after(T0, 2))];
        assert!(matches!(
            s.commit(twice).await,
            Err(StoreError::Duplicate(_))
        ));

        // The deterministic object name is what stops a second restore being created.
        let b = s
            .commit(new_incident("#b", vec![declared("#b", T0)]))
            .await
            .expect("b");
        let mut same_object = append(b.incident, 1, vec![note("q", after(T0, 2))]);
        same_object.operations = vec![queue("op1", "obj-1")];
        assert!(matches!(
            s.commit(same_object).await,
            Err(StoreError::Duplicate(_))
        ));

        let mut unknown = append(a.incident, 2, vec![note("launch", after(T0, 3))]);
        unknown.operations = vec![OperationChange::Launched {
            operation: "op9".into(),
            at: after(T0, 3),
        }];
        assert!(s.commit(unknown).await.is_err());

        assert_eq!(s.events(a.incident).await.expect("events").len(), 2);
        assert_eq!(s.events(b.incident).await.expect("events").len(), 1);
        assert_eq!(s.pending_posts().await.expect("pending"), 0);
        let ops = ops_of(s).await;
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].object_name, "obj-1");
        assert_eq!(ops[0].status, "queued");
    }

    pub async fn stream_events_matches_events(db: &mut TestDb) {
        let s = &db.store;
        let a = s
            .commit(new_incident("#a", varied_events()))
            .await
            .expect("commit");
        let mut seq = 7;
        for batch in 0..4 {
            let events = (0..250)
                .map(|i| note(&format!("note {batch}/{i}"), after(T0, seq + i)))
                .collect();
            let done = s
                .commit(append(a.incident, seq, events))
                .await
                .expect("batch");
            seq = *done.seqs.last().expect("seqs");
        }
        assert_eq!(seq, 1007);
        let listed = s.events(a.incident).await.expect("events");
        let streamed: Vec<Event> = s
            .stream_events(a.incident)
            .map(|e| e.expect("streamed event"))
            .collect()
            .await;
        assert_eq!(listed.len(), 1007);
        assert_eq!(streamed, listed);
        assert_eq!(
            streamed.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=1007).collect::<Vec<_>>()
        );
        assert_eq!(s.stream_events(a.incident + 1).count().await, 0);
    }

    pub async fn reopening_keeps_everything(db: &mut TestDb) {
        let events = varied_events();
        let mut c = new_incident("#a", events.clone());
        c.posts = vec![post("#a", "one", t(T0)), post("#a", "two", t(T0))];
        c.operations = vec![queue("op1", "obj-1")];
        let a = db.store.commit(c).await.expect("commit");
        let due = claim(&db.store, "w1", t(T0)).await;
        assert!(
            db.store
                .record_delivery(&due[0], t(T0), "r")
                .await
                .expect("delivered")
        );
        let row = db.store.incident(a.incident).await.expect("read");
        let ops = ops_of(&db.store).await;

        db.reopen().await;
        let s = &db.store;
        assert_eq!(
            s.events(a.incident).await.expect("events"),
            expected(a.incident, &a.seqs, &events)
        );
        assert_eq!(s.incident(a.incident).await.expect("read"), row);
        assert_eq!(ops_of(s).await, ops);
        assert_eq!(s.pending_posts().await.expect("pending"), 1);
        // The second post comes next, to a new claim after the restart.
        let next = claim(s, "w2", t(T0)).await;
        assert_eq!(
            next.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
            vec!["two"]
        );
        assert_eq!(
            s.open_incident_in("#a").await.expect("open"),
            Some(a.incident)
        );

        // And it goes on from where it was.
        let more = s
            .commit(append(
                a.incident,
                7,
                vec![note("after restart", after(T0, 999))],
            ))
            .await
            .expect("append after restart");
        assert_eq!(more.seqs, vec![8]);
        let b = s
            .commit(new_incident("#b", vec![declared("#b", T0)]))
            .await
            .expect("new after restart");
        assert!(b.incident > a.incident);
    }

    pub async fn corrupt_payload_is_reported(db: &mut TestDb) {
        let s = &db.store;
        let a = s
            .commit(new_incident(
                "#a",
                vec![declared("#a", T0), note("x", t(T0))],
            ))
            .await
            .expect("commit");
        let damage = "UPDATE events SET data = '{not json' WHERE incident_id = $1 AND seq = 2";
        match db.url.strip_prefix("sqlite://") {
            Some(path) => {
                let conn = rusqlite::Connection::open(path).expect("raw connection");
                conn.execute(&damage.replace('$', "?"), [a.incident])
                    .expect("damage a row");
            }
            None => {
                let mut conn = sqlx::PgConnection::connect(&db.url)
                    .await
                    .expect("raw connection");
                sqlx::query(damage)
                    .bind(a.incident)
                    .execute(&mut conn)
                    .await
                    .expect("damage a row");
                let _ = conn.close().await;
            }
        }
        assert!(matches!(
            s.events(a.incident).await,
            Err(StoreError::Corrupt(_))
        ));
        let streamed: Vec<_> = s.stream_events(a.incident).collect().await;
        assert!(streamed[0].is_ok());
        assert!(matches!(streamed[1], Err(StoreError::Corrupt(_))));
    }
}
