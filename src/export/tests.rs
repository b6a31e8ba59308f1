use super::format::{Ts, human};
use super::*;
use crate::incident::{
    Actor, EventKind, Incident, OperationKind, OperationSpec, Outcome, Plan, RecoveryWindow,
};
use chrono::TimeZone;
use chrono::{SecondsFormat, TimeDelta};

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn alice() -> Actor {
    Actor::new("slack", "U1", "Alice")
}
fn bob() -> Actor {
    Actor::new("slack", "U2", "Bob")
}
fn carol() -> Actor {
    Actor::new("discord", "D3", "Carol")
}

const NOTE: &str = "customer \"ACME\" reports, again:\nline two | pipe\\";

struct Timeline {
    incident: IncidentId,
    events: Vec<Event>,
}

impl Timeline {
    fn new(incident: IncidentId) -> Self {
        Timeline {
            incident,
            events: Vec::new(),
        }
    }
    fn push(&mut self, at: DateTime<Utc>, actor: Actor, kind: EventKind) -> &mut Self {
        let seq = self.events.len() as i64 + 1;
        self.events.push(Event {
            incident: self.incident,
            seq,
            recorded_at: at,
            occurred_at: None,
            actor,
            kind,
        });
        self
    }
    fn backdate(&mut self, occurred_at: DateTime<Utc>) -> &mut Self {
        self.events.last_mut().unwrap().occurred_at = Some(occurred_at);
        self
    }
}

fn pitr_spec() -> OperationSpec {
    OperationSpec {
        id: "op1".into(),
        kind: OperationKind::Pitr,
        object_name: "drbot-inc7-op1-pitr".into(),
        reason: Some("bad migration at 08:31".into()),
        backup: None,
        cluster: Some("orders-db".into()),
        namespace: None,
        target: Some(t(-30)),
        include_namespaces: Vec::new(),
        exclude_database_namespaces: false,
        prior: None,
    }
}

/// A data incident restored by PITR, checked and resolved.
fn incident() -> Vec<Event> {
    let mut tl = Timeline::new(7);
    tl.push(
        t(0),
        alice(),
        EventKind::Declared {
            channel: "#inc-orders".into(),
            severity: "sev1".into(),
            incident_type: None,
            title: "Orders DB corrupted".into(),
            drill: false,
        },
    )
    .push(
        t(2),
        alice(),
        EventKind::Classified {
            from: None,
            to: "data".into(),
        },
    )
    .push(
        t(3),
        alice(),
        EventKind::RoleAssigned {
            role: "dr-lead".into(),
            user: "U2".into(),
        },
    )
    .push(
        t(8),
        bob(),
        EventKind::LaunchPreviewed {
            preview: "P1".into(),
            operation: pitr_spec(),
            plan: Plan {
                summary: vec!["restore orders-db to 08:30:00Z".into()],
                manifest: "kind: SGCluster\n".into(),
                backup: Some("orders-db-20250314-0600".into()),
                window: Some(RecoveryWindow {
                    start: t(-180),
                    end: t(-1),
                }),
            },
            backend: "sandbox".into(),
            expires_at: t(18),
            warnings: Vec::new(),
        },
    )
    .push(
        t(10) + TimeDelta::milliseconds(250),
        carol(),
        EventKind::LaunchConfirmed {
            preview: "P1".into(),
            operation: "op1".into(),
        },
    )
    .push(
        t(11),
        Actor::drbot(),
        EventKind::OperationLaunched {
            operation: "op1".into(),
            object: "drbot-inc7-op1-pitr".into(),
        },
    )
    .push(
        t(20),
        Actor::drbot(),
        EventKind::OperationProgressed {
            operation: "op1".into(),
            phase: "Restoring".into(),
            percent: 40,
            detail: String::new(),
        },
    )
    .push(t(31), alice(), EventKind::NoteAdded { text: NOTE.into() })
    .backdate(t(25))
    .push(
        t(47) + TimeDelta::milliseconds(250),
        Actor::drbot(),
        EventKind::OperationFinished {
            operation: "op1".into(),
            outcome: Outcome::Succeeded,
            phase: "Completed".into(),
            detail: String::new(),
            result: None,
        },
    )
    .push(
        t(50),
        bob(),
        EventKind::Checked {
            item: "9.1.1".into(),
            note: Some("all 12 nodes Ready".into()),
        },
    )
    .push(
        t(51),
        bob(),
        EventKind::MarkedNotApplicable {
            item: "9.5.1".into(),
            reason: "metrics never went down".into(),
        },
    )
    .push(t(60), alice(), EventKind::Resolved);
    tl.events
}

fn render(events: &[Event], format: ExportFormat) -> String {
    let mut out = Vec::new();
    write_timeline(events, format, &Runbook::embedded(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn assert_utc_millis(v: &serde_json::Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    assert_eq!(s.len(), 24, "{s}");
    assert!(s.ends_with('Z') && s.as_bytes()[19] == b'.', "{s}");
    DateTime::parse_from_rfc3339(s).unwrap();
}

#[test]
fn times_have_milliseconds_and_z() {
    let t = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
    assert_eq!(Ts(t).to_string(), "2025-01-02T03:04:05.000Z");
    let t = t + TimeDelta::microseconds(123_999);
    assert_eq!(Ts(t).to_string(), "2025-01-02T03:04:05.123Z");
    assert_eq!(
        serde_json::to_string(&Ts(t)).unwrap(),
        "\"2025-01-02T03:04:05.123Z\""
    );
    let far = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(
        Ts(far).to_string(),
        far.to_rfc3339_opts(SecondsFormat::Millis, true)
    );
    let early = Utc.with_ymd_and_hms(7, 8, 9, 1, 2, 3).unwrap();
    assert_eq!(Ts(early).to_string(), "0007-08-09T01:02:03.000Z");
    let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
        .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 1_500))
        .unwrap()
        .and_utc();
    assert_eq!(Ts(leap).to_string(), "2016-12-31T23:59:60.500Z");
    assert_eq!(human(TimeDelta::seconds(3723)), "1h 02m 03s");
    assert_eq!(human(TimeDelta::seconds(62)), "1m 02s");
    assert_eq!(human(TimeDelta::milliseconds(9_900)), "9s");
}

#[test]
fn json_has_schema_incident_and_every_event_in_order() {
    let events = incident();
    let doc: serde_json::Value =
        serde_json::from_str(&render(&events, ExportFormat::Json)).unwrap();
    assert_eq!(doc["schema"], "drbot.timeline/v1");

    let inc = &doc["incident"];
    assert_eq!(inc["id"], 7);
    assert_eq!(inc["ref"], "INC-7");
    assert_eq!(inc["channel"], "#inc-orders");
    assert_eq!(inc["type"], "data");
    assert_eq!(inc["drill"], false);
    assert_eq!(inc["pitr_target"], "2025-03-14T08:30:00.000Z");
    assert_eq!(inc["resolved_at"], "2025-03-14T10:00:00.000Z");
    assert_eq!(inc["rto_seconds"], 47.0 * 60.0 + 0.25);
    let op = &inc["operations"][0];
    assert_eq!(inc["operations"].as_array().unwrap().len(), 1);
    assert_eq!(op["id"], "op1");
    assert_eq!(op["kind"], "pitr");
    assert_eq!(op["backup"], "orders-db-20250314-0600");
    assert_eq!(op["target"], "2025-03-14T08:30:00.000Z");
    assert_eq!(op["requested_by"]["name"], "Bob");
    assert_eq!(op["confirmed_by"]["platform"], "discord");
    assert_eq!(op["confirmed_at"], "2025-03-14T09:10:00.250Z");
    assert_eq!(op["outcome"], "succeeded");
    assert_eq!(op["phase"], "Completed");
    assert_eq!(op["time_to_restore_seconds"], 37.0 * 60.0);
    for key in ["declared_at", "resolved_at", "pitr_target"] {
        assert_utc_millis(&inc[key]);
    }
    for key in ["confirmed_at", "launched_at", "finished_at"] {
        assert_utc_millis(&op[key]);
    }

    let rows = doc["events"].as_array().unwrap();
    assert_eq!(rows.len(), events.len());
    for (row, event) in rows.iter().zip(&events) {
        assert_eq!(row["seq"], event.seq);
        assert_eq!(row["kind"], event.kind.name());
        assert_eq!(row["summary"], event.kind.describe());
        assert_eq!(row["actor"]["platform"], event.actor.platform);
        assert_eq!(row["actor"]["id"], event.actor.id);
        assert_eq!(row["actor"]["name"], event.actor.name);
        assert_utc_millis(&row["recorded_at"]);
        assert!(row["data"].is_object());
        assert!(row["data"].get("kind").is_none());
    }
    assert_eq!(rows[7]["occurred_at"], "2025-03-14T09:25:00.000Z");
    assert_eq!(rows[7]["data"]["text"], NOTE);
    assert!(rows[6]["occurred_at"].is_null());
    let preview = &rows[3]["data"];
    assert_eq!(preview["operation"]["target"], "2025-03-14T08:30:00.000Z");
    assert_eq!(preview["plan"]["window"]["end"], "2025-03-14T08:59:00.000Z");
    assert_eq!(preview["expires_at"], "2025-03-14T09:18:00.000Z");
    assert_eq!(rows[8]["data"]["outcome"], "succeeded");
}

/// RFC 4180, just enough to read our own output back.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "records end with CRLF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\n') => panic!("bare LF outside quotes"),
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "unterminated record"
    );
    rows
}

#[test]
fn csv_quotes_commas_quotes_and_newlines_and_round_trips() {
    let events = incident();
    let text = render(&events, ExportFormat::Csv);
    assert!(text.starts_with(&format!("{CSV_HEADER}\r\n")));
    assert!(text.contains("\"note: customer \"\"ACME\"\" reports, again:\nline two | pipe\\\""));

    let rows = parse_csv(&text);
    assert_eq!(rows.len(), events.len() + 1);
    assert_eq!(rows[0].join(","), CSV_HEADER);
    for (row, event) in rows[1..].iter().zip(&events) {
        assert_eq!(row.len(), 9, "{row:?}");
        assert_eq!(row[0], event.seq.to_string());
        assert_eq!(row[1], Ts(event.recorded_at).to_string());
        assert_eq!(row[3], event.actor.platform);
        assert_eq!(row[4], event.actor.id);
        assert_eq!(row[5], event.actor.name);
        assert_eq!(row[6], event.kind.name());
        assert_eq!(row[7], event.kind.describe());
        let data: serde_json::Value = serde_json::from_str(&row[8]).unwrap();
        assert!(data.is_object());
    }
    let note = &rows[8];
    assert_eq!(note[2], "2025-03-14T09:25:00.000Z");
    assert_eq!(note[7], format!("note: {NOTE}"));
    let data: serde_json::Value = serde_json::from_str(&note[8]).unwrap();
    assert_eq!(data["text"], NOTE);
    assert_eq!(rows[1][2], "", "not back-dated: empty occurred_at");
}

#[test]
fn markdown_is_a_postmortem_with_every_event() {
    let events = incident();
    let md = render(&events, ExportFormat::Markdown);
    assert!(md.starts_with("# INC-7: Orders DB corrupted\n"), "{md}");
    assert!(!md.contains("DRILL"));
    for line in [
        "- **Severity:** SEV1",
        "- **Type:** data (classified 2025-03-14T09:02:00.000Z)",
        "- **Channel:** #inc-orders",
        "- **Declared by:** Alice (slack) at 2025-03-14T09:00:00.000Z",
        "- **Status:** resolved at 2025-03-14T10:00:00.000Z by Alice (slack)",
        "- **Roles:** Incident commander: Alice (U1); DR lead: Bob (U2)",
        "- **Events:** 12 (seq 1–12)",
        "## Key times",
        "| Declared | 2025-03-14T09:00:00.000Z | Alice (slack) |",
        "| Classified | 2025-03-14T09:02:00.000Z | as data |",
        "| op1 pitr confirmed | 2025-03-14T09:10:00.250Z | Carol (discord) |",
        "| op1 pitr launched | 2025-03-14T09:11:00.000Z | drbot-inc7-op1-pitr |",
        "| op1 pitr finished | 2025-03-14T09:47:00.250Z | succeeded |",
        "| Resolved | 2025-03-14T10:00:00.000Z | Alice (slack) |",
        "## Time to restore per operation",
        "| op1 | pitr | drbot-inc7-op1-pitr | 2025-03-14T09:10:00.250Z | \
             2025-03-14T09:47:00.250Z | 37m 00s | succeeded |",
        "**RTO achieved:** 47m 00s (declared 2025-03-14T09:00:00.000Z → op1 pitr finished \
             2025-03-14T09:47:00.250Z)",
        "**PITR target:** 2025-03-14T08:30:00.000Z (op1, confirmed by Carol (discord))",
        "### 9.1 Platform & infrastructure",
        "### 9.5 Observability & alerting (if applicable)",
        "- [x] **9.1.1** Kubernetes cluster healthy (all nodes Ready) — Bob (slack), \
             2025-03-14T09:50:00.000Z: all 12 nodes Ready",
        "- [ ] **9.1.4** Network policies enforced and functioning",
        "- [-] **9.5.1** Metrics ingestion restored — n/a, Bob (slack), \
             2025-03-14T09:51:00.000Z: metrics never went down",
        "- [x] **9.3.1** Database restored using the correct method (latest backup or PITR) \
             — automatic, 2025-03-14T09:47:00.250Z: op1 pitr (drbot-inc7-op1-pitr)",
        "- [x] **9.3.2** PITR restore timestamp recorded — automatic: PITR target \
             2025-03-14T08:30:00Z",
        "- [x] **9.8.1** Incident resolved notification sent — Alice (slack), \
             2025-03-14T10:00:00.000Z: satisfied by resolving",
        "## Timeline\n\n| # | time (UTC) | actor | event |\n|---:|---|---|---|\n",
        "| 1 | 2025-03-14T09:00:00.000Z | Alice (slack) | declared SEV1 unclassified: \
             Orders DB corrupted |",
        "| 6 | 2025-03-14T09:11:00.000Z | drbot | op1 launched: drbot-inc7-op1-pitr |",
        "| 8 | 2025-03-14T09:25:00.000Z (recorded 2025-03-14T09:31:00.000Z) | Alice (slack) \
             | note: customer \"ACME\" reports, again:<br>line two \\| pipe\\\\ |",
        "| 12 | 2025-03-14T10:00:00.000Z | Alice (slack) | resolved |",
    ] {
        assert!(md.contains(line), "missing {line:?} in\n{md}");
    }
    let checklist_lines = md.lines().filter(|l| l.starts_with("- [")).count();
    assert_eq!(
        checklist_lines,
        Runbook::embedded().checklist_items().count()
    );
    let table = md.split("## Timeline").nth(1).unwrap();
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| #"))
        .collect();
    assert_eq!(rows.len(), events.len());
    for (row, event) in rows.iter().zip(&events) {
        assert!(row.starts_with(&format!("| {} | ", event.seq)), "{row}");
        // Every row has exactly the table's four cells.
        let unescaped = row.replace("\\\\", "").replace("\\|", "");
        assert_eq!(unescaped.matches('|').count(), 5, "{row}");
    }
}

#[test]
fn markdown_without_successful_restore_and_for_drills() {
    let mut events = incident();
    events.truncate(8);
    let md = render(&events, ExportFormat::Markdown);
    assert!(md.contains("**RTO achieved:** not achieved: no successful restore\n"));
    assert!(md.contains("| op1 | pitr | drbot-inc7-op1-pitr | 2025-03-14T09:10:00.250Z | — | — | running (Restoring, 40%) |"));
    assert!(md.contains("- **Status:** open"));
    assert!(
        md.contains("- [ ] **9.8.1**"),
        "resolve items stay open until resolved"
    );

    let mut drill = incident();
    if let EventKind::Declared { drill, .. } = &mut drill[0].kind {
        *drill = true;
    }
    let md = render(&drill, ExportFormat::Markdown);
    assert!(md.starts_with("# INC-7: Orders DB corrupted (DRILL)\n"));
    assert!(md.contains("excluded from RTO statistics"));
    let json: serde_json::Value =
        serde_json::from_str(&render(&drill, ExportFormat::Json)).unwrap();
    assert_eq!(json["incident"]["drill"], true);
}

#[test]
fn a_timeline_must_start_with_its_declaration() {
    let events = incident();
    let mut out = Vec::new();
    let err = write_timeline(
        &events[1..],
        ExportFormat::Json,
        &Runbook::embedded(),
        &mut out,
    );
    assert!(matches!(err, Err(ExportError::NotDeclared)));
}

async fn store_with(events: &[Event]) -> (tempfile::TempDir, Store, IncidentId) {
    use crate::store::{Chain, Commit, NewEvent, Projection, Target};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("export.db").display());
    let store = Store::connect(&url).await.unwrap();
    let state = Incident::fold(events).unwrap();
    let projection = Projection {
        severity: state.severity.clone(),
        incident_type: state.incident_type.clone(),
        title: state.title.clone(),
        drill: state.drill,
        declared_at: state.declared_at,
        resolved_at: state.resolved_at,
        final_summary_posted: state.final_summary_posted,
    };
    let new = |e: &Event| NewEvent {
        recorded_at: e.recorded_at,
        occurred_at: e.occurred_at,
        actor: e.actor.clone(),
        kind: e.kind.clone(),
        dedupe_key: None,
    };
    let mut target = Target::New {
        id: store.next_incident_id().await.expect("next id"),
        channel: state.channel.clone(),
        platform: "slack".into(),
    };
    // Several commits, as in production: one per decision.
    for chunk in events.chunks(5) {
        let done = store
            .commit(Commit {
                target,
                events: chunk.iter().map(new).collect(),
                posts: Vec::new(),
                operations: Vec::new(),
                projection: projection.clone(),
                request_key: None,
                gave_up: None,
                chain: Chain::root(),
            })
            .await
            .unwrap();
        target = Target::Existing {
            id: done.incident,
            expected_seq: *done.seqs.last().unwrap(),
        };
    }
    let Target::Existing { id, .. } = target else {
        unreachable!("at least one commit")
    };
    (dir, store, id)
}

/// The app runs exports on a multi-threaded runtime: the future must stay `Send`.
#[test]
fn export_can_be_spawned() {
    fn send<T: Send>(_: &T) {}
    fn check(store: &Store, runbook: &Runbook) {
        send(&export(store, 1, ExportFormat::Json, runbook, Vec::new()));
    }
    let _ = check;
}

#[tokio::test]
async fn export_from_the_store_streams_the_same_document() {
    let events = incident();
    let (_dir, store, id) = store_with(&events).await;
    let stored = store.events(id).await.unwrap();
    assert_eq!(stored.len(), events.len());
    let runbook = Runbook::embedded();
    for format in [
        ExportFormat::Markdown,
        ExportFormat::Json,
        ExportFormat::Csv,
    ] {
        let mut streamed = Vec::new();
        export(&store, id, format, &runbook, &mut streamed)
            .await
            .unwrap();
        let mut expected = Vec::new();
        write_timeline(&stored, format, &runbook, &mut expected).unwrap();
        assert_eq!(
            String::from_utf8(streamed).unwrap(),
            String::from_utf8(expected).unwrap(),
            "{format:?}"
        );
    }
    let mut out = Vec::new();
    export(&store, id, ExportFormat::Json, &runbook, &mut out)
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["incident"]["ref"], format!("INC-{id}"));
    assert_eq!(doc["incident"]["pitr_target"], "2025-03-14T08:30:00.000Z");
    assert_eq!(doc["events"].as_array().unwrap().len(), events.len());

    for format in [
        ExportFormat::Markdown,
        ExportFormat::Json,
        ExportFormat::Csv,
    ] {
        let mut out = Vec::new();
        let err = export(&store, id + 1000, format, &runbook, &mut out).await;
        assert!(
            matches!(err, Err(ExportError::NoSuchIncident(n)) if n == id + 1000),
            "{format:?}: {err:?}"
        );
        assert!(out.is_empty(), "{format:?} wrote for an unknown incident");
    }
    store.close().await;
}
