//! Issue 11 §1–3 through the console binary: the guide's catalog and plan loaded from the
//! settings, impact on the incident, RTO threshold posts once each, RTO/RPO in the export.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drbot::incident::EventKind;
use drbot::store::Store;
use support::{Drbot, command};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/continuity")
        .join(name)
}

fn guide_env() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "DRBOT__CONTINUITY__CATALOG".to_string(),
            fixture("business-impact-analysis.yaml")
                .display()
                .to_string(),
        ),
        (
            "DRBOT__CONTINUITY__PLAN".to_string(),
            fixture("disaster-recovery-plan.yaml").display().to_string(),
        ),
    ])
}

async fn events_of(dir: &Path, incident: i64) -> Vec<drbot::incident::Event> {
    let store = Store::connect(&format!("sqlite://{}", dir.join("drbot.db").display()))
        .await
        .unwrap();
    store.events(incident).await.unwrap()
}

fn thresholds(events: &[drbot::incident::Event]) -> Vec<(String, u8)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RtoThreshold {
                service, percent, ..
            } => Some((service.clone(), *percent)),
            _ => None,
        })
        .collect()
}

/// The issue's first acceptance point.
#[tokio::test]
async fn declared_service_shows_its_rto_and_the_breach_is_posted_once() {
    let dir = tempfile::tempdir().unwrap();
    let env = guide_env();
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-02-08T10:00:00Z", "alice");
    bot.ask(
        r#"/dr declare sev1 data "orders wiped" services=user-api"#,
        "INC-1 declared",
    );
    bot.ask("/dr role comms @carol", "Communications lead");
    let status = bot.ask("/dr status", "Next update due");
    assert!(
        status.contains("user-api: tier high, RTO 30 min: 30 min left (by 10:30Z)"),
        "{status}"
    );
    assert!(
        status.contains("Revenue at risk so far: $0 ($10,000/h"),
        "{status}"
    );

    let half = bot.say(":advance 16m");
    assert_eq!(
        half.matches("has used 50% of its 30 min RTO").count(),
        1,
        "{half}"
    );
    assert!(
        half.contains("@alice @carol INC-1: user-api (tier high)"),
        "{half}"
    );
    assert!(!half.contains("RTO BREACHED"), "{half}");
    let status = bot.ask("/dr status", "Next update due");
    assert!(
        status.contains("user-api: tier high, RTO 30 min: 14 min left (by 10:30Z)"),
        "{status}"
    );

    let breach = bot.say(":advance 20m");
    assert_eq!(
        breach.matches("RTO BREACHED for user-api").count(),
        1,
        "{breach}"
    );
    assert!(breach.contains("@alice @carol INC-1"), "{breach}");
    assert!(!breach.contains("has used 50%"), "{breach}");
    let status = bot.ask("/dr status", "Next update due");
    assert!(
        status.contains("BREACHED 6 min ago (at 10:30Z)"),
        "{status}"
    );
    assert!(
        status.contains("Revenue at risk so far: $6,000 ($10,000/h for 36 min)"),
        "{status}"
    );
    let more = bot.say(":advance 30m");
    assert!(!more.contains("RTO BREACHED"), "{more}");
    assert!(!more.contains("has used 50%"), "{more}");
    bot.finish();

    // A restart over the same database neither repeats nor skips one.
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-02-08T11:10:00Z", "alice");
    let again = bot.say(":tick");
    assert!(
        !again.contains("RTO BREACHED") && !again.contains("has used 50%"),
        "{again}"
    );
    bot.finish();
    let events = events_of(dir.path(), 1).await;
    assert_eq!(
        thresholds(&events),
        [("user-api".to_string(), 50), ("user-api".to_string(), 100)]
    );
}

#[tokio::test]
async fn a_restart_owes_the_thresholds_missed_while_down_once() {
    let dir = tempfile::tempdir().unwrap();
    let env = guide_env();
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-02-08T10:00:00Z", "alice");
    bot.ask(
        r#"/dr declare sev1 data "orders wiped" services=user-api"#,
        "INC-1 declared",
    );
    bot.finish();
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-02-08T10:45:00Z", "alice");
    let late = bot.say(":tick");
    assert_eq!(late.matches("has used 50%").count(), 1, "{late}");
    assert_eq!(
        late.matches("RTO BREACHED for user-api").count(),
        1,
        "{late}"
    );
    bot.finish();
    assert_eq!(thresholds(&events_of(dir.path(), 1).await).len(), 2);
}

#[tokio::test]
async fn impact_follows_dependencies_path_lists_the_plan_and_export_shows_the_targets() {
    let dir = tempfile::tempdir().unwrap();
    let env = guide_env();
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-02-08T10:00:00Z", "alice");
    bot.ask(
        r#"/dr declare sev2 data "orders wiped" since=2026-02-08T09:50Z"#,
        "INC-1 declared",
    );
    let refused = bot.ask("/dr impact billing", "Unknown service");
    assert!(
        refused.contains("Known: services payment-api, user-api, blog, internal-tools"),
        "{refused}"
    );
    let reply = bot.ask("/dr impact postgresql-primary", "/dr path");
    assert!(
        reply.contains("Infrastructure: postgresql-primary."),
        "{reply}"
    );
    assert!(
        reply.contains("user-api depends on postgresql-primary: added."),
        "{reply}"
    );
    assert!(
        reply.contains("payment-api depends on postgresql-primary: added."),
        "{reply}"
    );
    let path = bot.ask("/dr path", "tier 3:");
    let order: Vec<&str> = path.lines().filter(|l| l.contains(". tier ")).collect();
    assert_eq!(order.len(), 3, "{path}");
    assert!(
        order[0].contains("tier 1: payment-api (target RTO 5 min)"),
        "{path}"
    );
    assert!(order[1].contains("tier 2: user-api"), "{path}");
    assert!(
        order[2].contains("tier 3: blog, internal-tools (target RTO 4 h)"),
        "{path}"
    );
    let status = bot.ask("/dr status", "Next update due");
    assert!(
        status.contains("Affected services (impact since 2026-02-08T09:50:00Z):"),
        "{status}"
    );
    assert!(
        status.contains(
            "payment-api (via postgresql-primary): tier critical, RTO 5 min: BREACHED 5 min ago"
        ),
        "{status}"
    );
    // Recover with a PITR to 09:45, then resolve the checklist away.
    bot.ask("/dr pitr 2026-02-08T09:45Z", "Confirm with");
    bot.ask("/dr confirm P1", "op1 launched");
    bot.ask(":advance 20m", "op1 succeeded");
    for file in ["md", "json", "csv"] {
        bot.ask(&format!("/dr timeline export {file}"), "Wrote");
    }
    bot.finish();
    let md = std::fs::read_to_string(dir.path().join("INC-1-timeline.md")).unwrap();
    assert!(md.contains("## Business impact"), "{md}");
    assert!(
        md.contains("- **Impact began:** 2026-02-08T09:50:00Z"),
        "{md}"
    );
    assert!(md.contains("PITR op1 to 2026-02-08T09:45:00Z"), "{md}");
    assert!(md.contains("| user-api (via postgresql-primary) | high | 30 min | — | open | 15 min | 5 min | met |"), "{md}");
    assert!(md.contains("| payment-api (via postgresql-primary) | critical | 5 min | — | open | 0 min | 5 min | missed |"), "{md}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("INC-1-timeline.json")).unwrap())
            .unwrap();
    let bi = &json["incident"]["business_impact"];
    assert_eq!(bi["onset"], "2026-02-08T09:50:00Z");
    assert_eq!(bi["data_lost_seconds"], 300);
    let user = bi["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "user-api")
        .unwrap();
    assert_eq!(user["rpo"], "met");
    assert_eq!(user["rto_target_seconds"], 1800);
    assert!(bi["revenue_at_risk_cents"].as_u64().unwrap() > 0);
    let csv = std::fs::read_to_string(dir.path().join("INC-1-timeline.csv")).unwrap();
    assert!(
        csv.contains(",,,drbot,drbot,drbot,revenue_at_risk,\"revenue at risk $30,250 until 2026-02-08T10:20:00Z\""),
        "{csv}"
    );
    assert!(
        csv.contains(
            "user-api: RTO achieved — vs 30 min (open); RPO achieved 5 min vs 15 min (met)"
        ),
        "{csv}"
    );
}

#[test]
fn a_bad_catalog_stops_start_up_naming_the_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("business-impact-analysis.yaml"))
        .unwrap()
        .replace("rto: \"4 hours\"", "rto: \"four hours\"");
    let bad = dir.path().join("bia.yaml");
    std::fs::write(&bad, text).unwrap();
    let out = command(dir.path())
        .env("DRBOT__CONTINUITY__CATALOG", &bad)
        .args(["console", "--user", "alice"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bia.yaml: services[2].rto: `four hours` is not a duration"),
        "{err}"
    );
    assert!(err.contains("line 29"), "{err}");
}

#[tokio::test]
async fn without_a_catalog_nothing_changes_and_impact_says_how_to_configure() {
    let dir = tempfile::tempdir().unwrap();
    let mut bot = Drbot::console(dir.path(), "2026-02-08T10:00:00Z", "alice");
    bot.ask(r#"/dr declare sev1 data "orders wiped""#, "INC-1 declared");
    let status = bot.ask("/dr status", "Next update due");
    assert!(!status.contains("Affected"), "{status}");
    let no = bot.ask("/dr impact user-api", "no service catalog configured");
    assert!(no.contains("set [continuity] catalog"), "{no}");
    let no = bot.ask(
        "/dr declare sev1 data x services=user-api",
        "INC-1 is already open",
    );
    assert!(!no.is_empty());
    bot.finish();
    assert_eq!(events_of(dir.path(), 1).await.len(), 1);
}
