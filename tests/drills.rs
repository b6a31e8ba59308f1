//! SOP §10.1 drills and the SRE guide's tabletop exercises, through `drbot console` (a child
//! process on the sandbox and SQLite, driven by its simulated clock) and the engine.

mod support;

use std::collections::BTreeMap;

use drbot::app::App;
use drbot::clock::ManualClock;
use drbot::store::Store;
use support::engine::sqlite_app;
use support::{Drbot, command};

async fn store_of(dir: &std::path::Path) -> Store {
    Store::open(&format!("sqlite://{}", dir.join("drbot.db").display()))
        .await
        .unwrap()
}

/// Acceptance: a fresh database shows both quarterly drills as never done; after a full
/// restore drill and a PITR drill completed in the sandbox, both show as met, with their
/// time to restore, in the console and from `drbot drills`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_never_done_then_met() {
    let dir = tempfile::tempdir().unwrap();
    let mut bot = Drbot::console(dir.path(), "2026-11-20T10:00:00Z", "alice");
    let fresh = bot.say("/dr drills");
    assert!(fresh.contains("orders:"), "{fresh}");
    assert!(
        fresh.contains("Full restore drill: never done. 2026Q4: due, 42 days left."),
        "{fresh}"
    );
    assert!(
        fresh.contains("PITR drill: never done. 2026Q4: due, 42 days left."),
        "{fresh}"
    );
    assert!(!fresh.contains("RTO"), "no catalog, no RTO: {fresh}");
    // A query: nothing was written.
    assert!(
        store_of(dir.path())
            .await
            .drill_incidents()
            .await
            .unwrap()
            .is_empty()
    );

    bot.ask("/dr drill latest", "Confirm with `/dr confirm P1`");
    bot.ask("/dr confirm P1", "op1 launched");
    let done = bot.say(":advance 30m");
    assert!(done.contains("op1 succeeded"), "{done}");
    let half = bot.say("/dr drills");
    assert!(
        half.contains("Full restore drill: last 2026-11-20"),
        "{half}"
    );
    assert!(half.contains("2026Q4: met (2026-11-20)"), "{half}");
    assert!(half.contains("PITR drill: never done"), "{half}");

    bot.ask(
        "/dr drill pitr 2026-11-20T09:30Z",
        "Confirm with `/dr confirm P2`",
    );
    bot.ask("/dr confirm P2", "op2 launched");
    let done = bot.say(":advance 30m");
    assert!(done.contains("op2 succeeded"), "{done}");
    let met = bot.say("/dr drills");
    assert_eq!(met.matches("2026Q4: met (2026-11-20)").count(), 2, "{met}");
    assert_eq!(met.matches("time to restore").count(), 2, "{met}");
    assert!(met.contains("(INC-1)"), "{met}");
    assert!(
        met.contains("Every required drill is done this quarter."),
        "{met}"
    );
    // Any channel answers the same.
    bot.finish();

    let out = command(dir.path())
        .args(["drills", "--clock", "2026-11-21T08:00:00Z"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let cli = String::from_utf8(out.stdout).unwrap();
    assert_eq!(cli.matches("2026Q4: met (2026-11-20)").count(), 2, "{cli}");
    // Next quarter the same drills are history and the requirement is due again.
    let out = command(dir.path())
        .args(["drills", "--clock", "2027-01-05T08:00:00Z"])
        .output()
        .unwrap();
    let cli = String::from_utf8(out.stdout).unwrap();
    assert_eq!(cli.matches("2027Q1: due, 86 days left").count(), 2, "{cli}");
    assert_eq!(cli.matches("last 2026-11-20").count(), 2, "{cli}");
}

/// With the catalog loaded and the sandbox's `orders` cluster mapped to the service whose
/// data it holds, a drill's time to restore is held against that service's RTO target, in
/// `/dr drills` and in the drill's export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drills_time_to_restore_is_compared_with_the_services_rto() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/continuity/business-impact-analysis.yaml");
    let env = BTreeMap::from([
        (
            "DRBOT__CONTINUITY__CATALOG".to_string(),
            catalog.display().to_string(),
        ),
        (
            "DRBOT__CONTINUITY__CLUSTERS__ORDERS".to_string(),
            "user-api".to_string(),
        ),
    ]);
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-11-20T10:00:00Z", "alice");
    bot.ask("/dr drill latest", "Confirm with `/dr confirm P1`");
    bot.ask("/dr confirm P1", "op1 launched");
    bot.ask(":advance 30m", "op1 succeeded");
    let view = bot.say("/dr drills");
    assert!(
        view.contains("within the RTO target of 30 m 00 s"),
        "{view}"
    );
    bot.ask("/dr timeline export md", "Wrote");
    bot.finish();
    let md = std::fs::read_to_string(dir.path().join("INC-1-timeline.md")).unwrap();
    assert!(
        md.contains("- op1 (orders, service user-api): within the RTO target of 30 m 00 s"),
        "{md}"
    );

    // A map entry naming no catalog service stops the start with the entry and the choices.
    let out = command(dir.path())
        .envs(&env)
        .env("DRBOT__CONTINUITY__CLUSTERS__ORDERS", "users-api")
        .args(["drills"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("orders = \"users-api\": the catalog has no service \"users-api\""),
        "{err}"
    );
}

fn reminder_env(dir: &std::path::Path) -> BTreeMap<String, String> {
    let _ = dir;
    [("DRBOT__DRILLS__CHANNEL".to_string(), "ops".to_string())]
        .into_iter()
        .collect()
}

/// The "drill due" reminder: posted to the configured channel when the quarter has 14 days
/// left without the drills, once per cluster, kind and quarter, across restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_reminder_two_weeks_before_the_quarter_ends_once() {
    let dir = tempfile::tempdir().unwrap();
    let env = reminder_env(dir.path());
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-12-17T22:00:00Z", "alice");
    let before = bot.say(":tick");
    assert!(!before.contains("Drill due"), "15 days left: {before}");
    let due = bot.say(":advance 3h");
    assert_eq!(due.matches("Drill due (SOP §10.1)").count(), 2, "{due}");
    assert!(due.contains("Full restore drill of orders not done in 2026Q4 (never done)"));
    assert!(due.contains("PITR drill of orders"), "{due}");
    assert!(
        due.contains("the quarter ends in 14 days (2026-12-31)"),
        "{due}"
    );
    let later = bot.say(":advance 2h");
    assert!(!later.contains("Drill due"), "{later}");
    bot.kill();
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-12-20T09:00:00Z", "alice");
    let restarted = bot.say(":tick");
    assert!(!restarted.contains("Drill due"), "{restarted}");
    bot.finish();
}

async fn engine(dir: &std::path::Path, clock: &ManualClock) -> App {
    let extra = [
        ("DRBOT__DRILLS__CHANNEL", "slack:C0DRILLS"),
        ("DRBOT__DRILLS__DAYS_BEFORE_QUARTER_END", "10"),
    ];
    sqlite_app(dir, clock, &extra).await
}

/// Two schedulers on one database, both passing at the same moments: one post per cluster,
/// kind and quarter; the configured days before the quarter end are honoured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_one_reminder() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new("2026-12-21T00:00:00Z".parse().unwrap());
    let first = engine(dir.path(), &clock).await;
    let second = engine(dir.path(), &clock).await;
    let (a, b) = tokio::join!(first.tick(), second.tick());
    a.unwrap();
    b.unwrap();
    assert!(
        first.store.pending_rows().await.unwrap().is_empty(),
        "11 days left"
    );
    clock.advance(chrono::Duration::days(1));
    for _ in 0..3 {
        let (a, b) = tokio::join!(first.tick(), second.tick());
        a.unwrap();
        b.unwrap();
    }
    let pending = first.store.pending_rows().await.unwrap();
    assert_eq!(pending.len(), 2, "full and PITR, once each: {pending:?}");
    assert!(pending.iter().all(|p| p.channel == "slack:C0DRILLS"));
    clock.advance(chrono::Duration::days(20));
    let (a, b) = tokio::join!(first.tick(), second.tick());
    a.unwrap();
    b.unwrap();
    assert_eq!(
        first.store.pending_rows().await.unwrap().len(),
        2,
        "2027Q1 is far from its end"
    );
}

fn tabletop_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tabletop")
}

/// The guide's example exercise, unchanged, played on the console clock: each inject posted
/// at its T+N, answers recorded as notes, the summary with the time to each first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_tabletop_exercise_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let env: BTreeMap<String, String> = [(
        "DRBOT__TABLETOP__DIR".to_string(),
        tabletop_dir().display().to_string(),
    )]
    .into_iter()
    .collect();
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-03-20T09:00:00Z", "alice");

    // Bad paths and bad files open nothing.
    let escape = bot.say("/dr tabletop start ../../Cargo.toml");
    assert!(
        escape.contains("outside the tabletop directory"),
        "{escape}"
    );
    let missing = bot.say("/dr tabletop start nope.yaml");
    assert!(missing.contains("cannot read nope.yaml"), "{missing}");
    let end = bot.say("/dr tabletop end");
    assert!(end.contains("No tabletop exercise is running"), "{end}");
    assert_eq!(
        store_of(dir.path())
            .await
            .latest_incident_in("ops")
            .await
            .unwrap(),
        None
    );

    let start = bot.say("/dr tabletop start tabletop-exercise.yaml");
    assert!(
        start.contains("TABLETOP EXERCISE (DRILL, INC-1): Q1 2026 DR Tabletop Exercise"),
        "{start}"
    );
    assert!(start.contains("us-east-1"), "{start}");
    assert!(
        start.contains("INJECT 1/7 at T+0: PagerDuty fires alerts"),
        "{start}"
    );
    assert!(start.contains("Who gets paged?"), "{start}");
    let again = bot.say("/dr tabletop start tabletop-exercise.yaml");
    assert!(again.contains("INC-1 is open here"), "{again}");

    bot.say(":advance 2m");
    bot.say("/dr note the on-call SRE, then the IC via PagerDuty escalation");
    let second = bot.say(":advance 3m");
    assert!(second.contains("INJECT 2/7 at T+5min"), "{second}");
    assert!(!second.contains("INJECT 3/7"), "{second}");
    bot.say(":as bob");
    bot.say(":advance 1m");
    bot.say("/dr note IC decides; failover per the DR plan");
    bot.say("/dr note a second answer does not move the first");
    let third = bot.say(":advance 4m");
    assert!(third.contains("INJECT 3/7 at T+10min"), "{third}");
    // Nobody answers inject 3; the next ones come on the clock.
    let rest = bot.say(":advance 20m");
    assert!(rest.contains("INJECT 4/7 at T+15min"), "{rest}");
    assert!(rest.contains("INJECT 5/7 at T+30min"), "{rest}");
    bot.say(":advance 10m");
    bot.say("/dr note dashboards and synthetic checks in the DR region");
    let status = bot.say("/dr status");
    assert!(status.contains("INC-1"), "{status}");

    let end = bot.say("/dr tabletop end");
    assert!(
        end.contains("TABLETOP SUMMARY: Q1 2026 DR Tabletop Exercise"),
        "{end}"
    );
    assert!(
        end.contains("1. T+0 (posted 09:00Z): first answer after 2 m 00 s by alice"),
        "{end}"
    );
    assert!(
        end.contains("2. T+5min (posted 09:05Z): first answer after 1 m 00 s by bob"),
        "{end}"
    );
    assert!(
        end.contains("3. T+10min (posted 09:10Z): NO ANSWER"),
        "{end}"
    );
    assert!(
        end.contains("5. T+30min (posted 09:30Z): first answer after 10 m 00 s by bob"),
        "{end}"
    );
    assert!(end.contains("6. T+1hr: not reached"), "{end}");
    assert!(end.contains("3 of 7 injects answered"), "{end}");
    assert!(
        end.contains("Are our backups actually restorable?"),
        "{end}"
    );
    let after = bot.say(":advance 90m");
    assert!(!after.contains("INJECT 6/7"), "ended: {after}");
    bot.finish();

    let store = store_of(dir.path()).await;
    let events = store.events(1).await.unwrap();
    let count = |name: &str| events.iter().filter(|e| e.kind.name() == name).count();
    assert_eq!(count("inject_posted"), 5);
    assert_eq!(count("tabletop_started"), 1);
    assert_eq!(count("tabletop_ended"), 1);
    assert_eq!(count("resolved"), 1);
    assert_eq!(count("note_added"), 4);
    let row = store.incident(1).await.unwrap().unwrap();
    assert!(row.drill, "a DRILL incident");
}

/// Left alone, the exercise posts every inject, the last at T+4hr, and ends by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tabletop_ends_by_itself_after_the_last_inject() {
    let dir = tempfile::tempdir().unwrap();
    let env: BTreeMap<String, String> = [(
        "DRBOT__TABLETOP__DIR".to_string(),
        tabletop_dir().display().to_string(),
    )]
    .into_iter()
    .collect();
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-03-20T09:00:00Z", "alice");
    bot.say("/dr tabletop start ./tabletop-exercise.yaml");
    let run = bot.say(":advance 239m");
    assert!(run.contains("INJECT 6/7 at T+1hr"), "{run}");
    assert!(!run.contains("INJECT 7/7"), "{run}");
    bot.kill();
    // A restart neither skips nor repeats an inject.
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-03-20T13:00:00Z", "alice");
    let last = bot.say(":tick");
    assert_eq!(last.matches("INJECT 7/7 at T+4hr").count(), 1, "{last}");
    let end = bot.say(":advance 30m");
    assert!(end.contains("TABLETOP SUMMARY"), "{end}");
    assert!(end.contains("0 of 7 injects answered"), "{end}");
    bot.finish();
    let events = store_of(dir.path()).await.events(1).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind.name() == "inject_posted")
            .count(),
        7
    );
}

/// A broken exercise file is refused naming the line and the field, and nothing is opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_exercise_file_names_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(tabletop_dir().join("tabletop-exercise.yaml")).unwrap();
    let bad = good.replacen(
        "    timeline:\n      - time: \"T+0\"",
        "    timeline:\n      - time: \"soon\"",
        1,
    );
    assert_ne!(bad, good);
    std::fs::write(dir.path().join("bad.yaml"), bad).unwrap();
    let typo = good.replacen(
        "        question: \"What is the first",
        "        questoin: \"What is the first",
        1,
    );
    std::fs::write(dir.path().join("typo.yaml"), typo).unwrap();
    let env: BTreeMap<String, String> = [(
        "DRBOT__TABLETOP__DIR".to_string(),
        dir.path().display().to_string(),
    )]
    .into_iter()
    .collect();
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-03-20T09:00:00Z", "alice");
    let out = bot.say("/dr tabletop start bad.yaml");
    assert!(out.contains("bad.yaml"), "{out}");
    assert!(out.contains("line 19"), "{out}");
    assert!(out.contains("\"soon\""), "{out}");
    assert!(out.contains("Nothing was opened"), "{out}");
    let out = bot.say("/dr tabletop start typo.yaml");
    assert!(out.contains("questoin") && out.contains("line 24"), "{out}");
    bot.finish();
    assert_eq!(
        store_of(dir.path())
            .await
            .latest_incident_in("ops")
            .await
            .unwrap(),
        None
    );
}
