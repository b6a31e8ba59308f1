//! End-to-end: `drbot console` as a child process against the sandbox cluster and SQLite.

mod support;

use std::io::Write;
use std::process::Stdio;

use drbot::store::Store;
use serde_json::Value;
use support::{Drbot, command, export};

async fn events_of(dir: &std::path::Path, incident: i64) -> Vec<drbot::incident::Event> {
    let store = Store::connect(&format!("sqlite://{}", dir.join("drbot.db").display()))
        .await
        .unwrap();
    store.events(incident).await.unwrap()
}

#[test]
fn piped_declare_then_resolve_is_refused_naming_open_items() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(dir.path())
        .args(["console", "--user", "alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"/dr declare sev1 data \"orders wiped\"\n/dr resolve\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("INC-1 declared: SEV1 data \"orders wiped\""),
        "{text}"
    );
    assert!(text.contains("DISASTER DECLARED"), "{text}");
    assert!(text.contains("Cannot resolve INC-1"), "{text}");
    assert!(text.contains("9.1.1 Kubernetes cluster healthy"), "{text}");
}

#[tokio::test]
async fn pitr_refusals_say_why_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut bot = Drbot::console(dir.path(), "2026-02-08T10:00:00Z", "alice");
    let reply = bot.ask("/dr pitr 2026-02-08T09:55Z", "no open incident");
    assert!(reply.contains("/dr declare"), "{reply}");
    bot.ask("/dr declare sev2 data orders wiped", "next by");
    let before = bot.ask("/dr status", "Next update due");
    let future = bot.ask("/dr pitr 2026-02-08T10:30Z", "in the future");
    assert!(future.contains("2026-02-08T10:30:00Z"), "{future}");
    let naive = bot.ask("/dr pitr 2026-02-08 09:55", "has no time zone");
    assert!(naive.contains("2026-02-08T09:55Z"), "{naive}");
    let window = bot.ask(
        "/dr pitr 2025-12-01T00:00Z",
        "outside the recoverable window",
    );
    assert!(window.contains('…'), "{window}");
    let malformed = bot.ask("/dr pitr yesterday", "Usage: /dr pitr");
    assert!(malformed.contains("not a timestamp"), "{malformed}");
    assert_eq!(bot.ask("/dr status", "Next update due"), before);
    bot.finish();
    let events = events_of(dir.path(), 1).await;
    assert_eq!(events.len(), 1, "only the declaration: {events:?}");
}

/// The whole SEV1 data incident of the SOP, through the console, then its JSON export.
#[tokio::test]
async fn whole_sandbox_incident_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let mut bot = Drbot::console(dir.path(), "2026-02-08T10:00:00Z", "alice");
    bot.ask(
        "/dr declare sev1 data \"orders table wiped\"",
        "DISASTER DECLARED",
    );
    bot.ask("/dr role comms @carol", "Communications lead");
    bot.ask("/dr freeze bad migration", "Confirm with `/dr confirm P1`");
    let refused = bot.ask("/dr confirm P1", "second operator");
    assert!(refused.contains("alice requested P1"), "{refused}");
    bot.ask(":as bob", "now typing as bob");
    bot.ask("/dr confirm P1", "op1 succeeded");
    bot.ask(":as alice", "now typing as alice");
    let preview = bot.ask(
        "/dr pitr 2026-02-08T09:55Z",
        "Confirm with `/dr confirm P2`",
    );
    assert!(preview.contains("[SANDBOX]"), "{preview}");
    assert!(preview.contains("restoreToTimestamp"), "{preview}");
    bot.ask(":as bob", "now typing as bob");
    bot.ask("/dr confirm P2", "op2 launched");
    bot.ask(":advance 20m", "op2 succeeded");
    bot.ask(":advance 15m", "(clock");
    let verify = bot.ask("/dr verify", "9.6.4");
    assert!(verify.contains("✓ 9.1.1"), "{verify}");
    let refused = bot.ask("/dr resolve", "Cannot resolve");
    let refused = refused + &bot.until("9.8.4").join("\n");
    assert!(
        refused.contains("9.1.4") && refused.contains("9.6.2"),
        "{refused}"
    );
    for item in [
        "9.1.4", "9.2.1", "9.2.2", "9.3.4", "9.3.5", "9.4.1", "9.4.2", "9.4.3", "9.4.4", "9.4.5",
        "9.6.1", "9.8.3", "9.8.4",
    ] {
        bot.ask(
            &format!("/dr check {item} done"),
            &format!("checked {item}"),
        );
    }
    bot.ask("/dr unfreeze", "Confirm with `/dr confirm P3`");
    bot.ask(":as carol", "now typing as carol");
    bot.ask("/dr update restore verified, unfreezing", "Next update by");
    bot.ask(":as alice", "now typing as alice");
    bot.ask("/dr confirm P3", "op3 succeeded");
    bot.ask("/dr resolve", "RESOLVED: INC-1");
    bot.ask(":advance 31m", "Final summary for INC-1");
    let after = bot.ask("/dr status", "no incident");
    assert!(after.contains("declare"), "{after}");
    bot.ask("/dr timeline export json", "Wrote");
    bot.finish();

    let json: Value = serde_json::from_str(&export(dir.path(), "INC-1", "json")).unwrap();
    assert_eq!(json["schema"], "drbot.timeline/v1");
    assert_eq!(json["incident"]["pitr_target"], "2026-02-08T09:55:00.000Z");
    let events = json["events"].as_array().unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "every event, in order"
    );
    for e in events {
        let at = e["recorded_at"].as_str().unwrap();
        assert!(at.ends_with('Z'), "UTC time: {at}");
        assert!(!e["actor"]["name"].as_str().unwrap().is_empty());
    }
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in [
        "declared",
        "launch_previewed",
        "launch_confirmed",
        "operation_launched",
        "operation_finished",
        "probe_recorded",
        "resolved",
        "final_summary_posted",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let confirmers: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "launch_confirmed")
        .map(|e| e["actor"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(confirmers, ["bob", "bob", "alice"]);
    let ops = json["incident"]["operations"].as_array().unwrap();
    let outcomes: Vec<(&str, &str)> = ops
        .iter()
        .map(|o| (o["kind"].as_str().unwrap(), o["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("freeze", "succeeded"),
            ("pitr", "succeeded"),
            ("unfreeze", "succeeded")
        ]
    );
    assert!(dir.path().join("INC-1-timeline.json").exists());

    let md = export(dir.path(), "1", "md");
    assert!(md.contains("RTO"), "{md}");
}

/// Crash right after the restore object was created; restart later: the watch resumes,
/// nothing is launched twice, and missed update slots are posted once.
#[tokio::test]
async fn kill_and_restart_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut bot = Drbot::console(dir.path(), "2026-02-08T10:00:00Z", "alice");
    bot.ask("/dr declare sev2 data orders wiped", "DISASTER DECLARED");
    bot.ask(
        "/dr pitr 2026-02-08T09:55Z",
        "Confirm with `/dr confirm P1`",
    );
    bot.ask("/dr confirm P1", "op1 launched");
    bot.kill();

    let sandbox: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("sandbox.json")).unwrap())
            .unwrap();
    let before = sandbox.to_string();

    let mut bot = Drbot::console(dir.path(), "2026-02-08T10:40:00Z", "alice");
    bot.until("op1 succeeded");
    bot.ask("/dr status", "Next update due");
    bot.finish();
    let mut bot = Drbot::console(dir.path(), "2026-02-08T10:40:00Z", "alice");
    bot.ask("/dr status", "Next update due");
    bot.finish();

    let events = events_of(dir.path(), 1).await;
    let count = |name: &str| events.iter().filter(|e| e.kind.name() == name).count();
    assert_eq!(count("operation_launched"), 1);
    assert_eq!(count("operation_finished"), 1);
    let mut slots: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            drbot::incident::EventKind::UpdatePosted { slots, .. } => Some(slots.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let total = slots.len();
    slots.dedup();
    assert_eq!(slots.len(), total, "a slot posted twice: {slots:?}");
    let times: Vec<String> = slots
        .iter()
        .map(|t| t.format("%H:%M").to_string())
        .collect();
    assert_eq!(times, ["10:15", "10:30"]);
    let after: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("sandbox.json")).unwrap())
            .unwrap();
    assert_eq!(
        after.to_string(),
        before,
        "the sandbox cluster saw no second create"
    );
}

/// The README's "Trying it", run as printed: the console started with the README's own
/// `--clock`, every line of its example typed in turn. Each command that changes the incident
/// must add events (none is refused or accepted with no effect), each query must answer
/// without a usage error, and `/dr resolve` is refused exactly as the README says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_works_as_printed() {
    let readme = include_str!("../README.md");
    let section = &readme[readme.find("## Trying it").expect("Trying it section")..];
    let clock = section
        .lines()
        .find_map(|l| l.split_once("console --clock ").map(|(_, c)| c.trim()))
        .expect("the console command line with --clock");
    let block = section
        .split("```text\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the example block");
    let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 10, "{block}");

    let dir = tempfile::tempdir().unwrap();
    let mut bot = Drbot::console(dir.path(), clock, "operator");
    bot.say(":tick");
    // Read beside the running console (WAL), without migrating: it did that at start.
    let url = format!("sqlite://{}", dir.path().join("drbot.db").display());
    let store = Store::open(&url).await.unwrap();
    let mut seen = 0;
    for line in lines {
        let typed = drbot::server::console::strip_comment(line).trim();
        let out = bot.say(line);
        if typed.starts_with(':') {
            // (`say` ends at the answer to an unknown control, so only that one may appear.)
            assert_eq!(out.matches("(console controls").count(), 1, "{line}: {out}");
            assert!(!out.contains("needs a simulated clock"), "{line}: {out}");
            continue;
        }
        let cmd = drbot::command::parse(typed).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(!out.contains("Usage:"), "{line}: {out}");
        let events = match store.latest_incident_in("ops").await.unwrap() {
            Some(id) => store.events(id).await.unwrap().len(),
            None => 0,
        };
        match cmd {
            drbot::command::Command::Resolve => {
                assert!(line.contains("refused"), "the README says so: {line}");
                assert!(out.contains("Cannot resolve"), "{line}: {out}");
                assert_eq!(events, seen, "a refusal writes nothing");
            }
            drbot::command::Command::TimelineExport(_) => {
                assert!(out.contains("Wrote"), "{line}: {out}")
            }
            cmd if cmd.is_query() || matches!(cmd, drbot::command::Command::Help { .. }) => {
                assert!(!out.contains("There is no"), "{line}: {out}")
            }
            _ => assert!(events > seen, "{line} changed nothing: {out}"),
        }
        seen = events;
    }
    let status = bot.say("/dr status");
    assert!(
        status.contains("PITR target: 2026-02-08T09:55:00Z"),
        "{status}"
    );
    assert!(
        status.contains("pitr `orders-i1-op2`: succeeded"),
        "{status}"
    );
    bot.finish();
}
