use chrono::{DateTime, Utc};

use super::*;
use crate::incident::Caller;
use crate::incident::event::{Actor, Event, EventKind, OperationSpec, Outcome, Plan};

fn t(hm: &str) -> DateTime<Utc> {
    format!("2026-02-08T{hm}:00Z").parse().unwrap()
}

struct World {
    events: Vec<Event>,
}

impl World {
    fn declared(incident_type: Option<&str>) -> World {
        let mut w = World { events: vec![] };
        w.push(
            "alice",
            t("10:00"),
            EventKind::Declared {
                channel: "ops".into(),
                severity: "sev1".into(),
                incident_type: incident_type.map(str::to_string),
                title: "orders SGCluster wiped, WAL gap".into(),
                drill: false,
            },
        );
        w
    }

    fn push(&mut self, who: &str, at: DateTime<Utc>, kind: EventKind) {
        self.events.push(Event {
            incident: 1,
            seq: self.events.len() as i64 + 1,
            recorded_at: at,
            occurred_at: None,
            actor: if who == "drbot" {
                Actor::drbot()
            } else {
                Actor::new("console", who, who)
            },
            kind,
        });
    }

    fn state(&self) -> Incident {
        Incident::fold(&self.events).unwrap()
    }

    /// A confirmed operation of `kind`, finished with `outcome` when given.
    fn operation(&mut self, kind: OperationKind, at: DateTime<Utc>, outcome: Option<Outcome>) {
        let n = self.state().previews.len() + 1;
        let mut spec = OperationSpec::new(&format!("op{n}"), kind, &format!("orders-i1-op{n}"));
        spec.cluster = Some("orders".into());
        spec.backup = Some("orders-nightly-20260208".into());
        if kind == OperationKind::Pitr {
            spec.target = Some(t("09:55"));
        }
        self.push(
            "alice",
            at,
            EventKind::LaunchPreviewed {
                preview: format!("P{n}"),
                operation: spec,
                plan: Plan {
                    summary: vec![],
                    manifest: String::new(),
                    backup: None,
                    window: None,
                },
                backend: "sandbox".into(),
                expires_at: at + Duration::minutes(10),
                warnings: vec![],
            },
        );
        self.push(
            "bob",
            at,
            EventKind::LaunchConfirmed {
                preview: format!("P{n}"),
                operation: format!("op{n}"),
            },
        );
        if let Some(outcome) = outcome {
            self.push(
                "drbot",
                at + Duration::minutes(12),
                EventKind::OperationFinished {
                    operation: format!("op{n}"),
                    outcome,
                    phase: "Completed".into(),
                    detail: String::new(),
                    result: None,
                },
            );
        }
    }
}

fn services() -> Vec<String> {
    vec!["user-api".into(), "checkout".into()]
}

/// Every internal word the incident knows plus the fixed denylist.
fn assert_plain(c: &Composed, s: &Incident) {
    let text = format!("{}\n{}", c.title, c.body);
    let found = internal_terms_in(&text, &internal_words(s, Some("orders")));
    assert!(found.is_empty(), "internal terms {found:?} in:\n{text}");
    assert!(
        !text.contains(&s.title),
        "the internal title leaked:\n{text}"
    );
}

#[test]
fn initial_says_investigating_names_the_services_and_the_next_update() {
    let w = World::declared(Some("data"));
    let s = w.state();
    let c = compose(&s, Stage::Initial, &services(), t("10:05"));
    assert_eq!(c.status, CustomerStatus::Investigating);
    assert_eq!(c.statuspage_status, "investigating");
    assert_eq!(c.title, "Service Disruption - user-api, checkout");
    assert!(
        c.body
            .contains("experiencing a disruption affecting user-api and checkout"),
        "{}",
        c.body
    );
    assert!(c.body.contains("- user-api: Major outage"), "{}", c.body);
    assert!(
        c.body.contains("update within 30 minutes, by 10:35 UTC"),
        "{}",
        c.body
    );
    assert_eq!(c.next_update_at, Some(t("10:35")));
    assert_plain(&c, &s);
}

#[test]
fn without_services_the_text_says_some_of_our_services() {
    let s = World::declared(None).state();
    let c = compose(&s, Stage::Initial, &[], t("10:05"));
    assert_eq!(c.title, "Service Disruption");
    assert!(
        c.body.contains("affecting some of our services"),
        "{}",
        c.body
    );
    assert!(!c.body.contains("Affected services:"), "{}", c.body);
    assert_plain(&c, &s);
}

#[test]
fn update_follows_the_state_identified_then_recovering() {
    let mut w = World::declared(None);
    let c = compose(&w.state(), Stage::Update, &services(), t("10:10"));
    assert_eq!(c.status, CustomerStatus::Investigating);
    assert!(c.body.contains("still investigating"), "{}", c.body);
    assert_plain(&c, &w.state());

    w.push(
        "alice",
        t("10:12"),
        EventKind::Classified {
            from: None,
            to: "data".into(),
        },
    );
    let c = compose(&w.state(), Stage::Update, &services(), t("10:15"));
    assert_eq!(c.status, CustomerStatus::Identified);
    assert_eq!(c.statuspage_status, "identified");
    assert!(
        c.body
            .contains("identified the issue as a problem with stored data"),
        "{}",
        c.body
    );
    assert!(
        c.body.contains("- Critical services: In progress"),
        "{}",
        c.body
    );
    assert!(c.body.contains("Next update: 10:45 UTC"), "{}", c.body);
    assert_plain(&c, &w.state());

    w.operation(OperationKind::Pitr, t("10:20"), None);
    let c = compose(&w.state(), Stage::Update, &services(), t("10:25"));
    assert_eq!(c.status, CustomerStatus::Recovering);
    assert_eq!(c.component_status, "major_outage");
    assert_plain(&c, &w.state());

    w.push(
        "drbot",
        t("10:32"),
        EventKind::OperationFinished {
            operation: "op1".into(),
            outcome: Outcome::Succeeded,
            phase: "Completed".into(),
            detail: String::new(),
            result: None,
        },
    );
    let c = compose(&w.state(), Stage::Update, &services(), t("10:40"));
    assert_eq!(c.status, CustomerStatus::Recovering);
    assert_eq!(c.statuspage_status, "monitoring");
    assert_eq!(c.component_status, "degraded_performance");
    assert!(
        c.body.contains("- Critical services: Restored"),
        "{}",
        c.body
    );
    assert!(
        c.body.contains("- user-api: Degraded performance"),
        "{}",
        c.body
    );
    assert_plain(&c, &w.state());
}

#[test]
fn resolved_gives_start_end_duration_and_data_impact() {
    let mut w = World::declared(Some("data"));
    w.operation(OperationKind::Pitr, t("10:20"), Some(Outcome::Succeeded));
    w.push("alice", t("11:25"), EventKind::Resolved);
    let s = w.state();
    let c = compose(&s, Stage::Resolved, &services(), t("11:30"));
    assert_eq!(c.status, CustomerStatus::Resolved);
    assert_eq!(c.statuspage_status, "resolved");
    assert_eq!(c.component_status, "operational");
    assert_eq!(c.next_update_at, None);
    assert!(
        c.body.contains(
            "began at 2026-02-08 10:00 UTC has been fully resolved as of 2026-02-08 11:25 UTC"
        ),
        "{}",
        c.body
    );
    assert!(c.body.contains("Duration: 1 hour 25 minutes"), "{}", c.body);
    assert!(
        c.body.contains(
            "Data impact: Changes made between 2026-02-08 09:55 UTC and 2026-02-08 10:00 UTC may need review."
        ),
        "{}",
        c.body
    );
    assert!(
        c.body
            .contains("post-incident report within 5 business days"),
        "{}",
        c.body
    );
    assert_plain(&c, &s);
}

/// The update's recovery estimate comes from the running restore's progress: 25 % after
/// 10 minutes leaves about 30 minutes; no progress yet, no number.
#[test]
fn the_update_estimates_recovery_from_the_restores_progress() {
    let mut w = World::declared(Some("data"));
    w.operation(OperationKind::RestoreLatest, t("10:30"), None);
    let c = compose(&w.state(), Stage::Update, &services(), t("10:40"));
    assert!(
        c.body
            .contains("we will share an estimate as soon as we have one"),
        "{}",
        c.body
    );
    w.push(
        "drbot",
        t("10:40"),
        EventKind::OperationProgressed {
            operation: "op1".into(),
            phase: "Running".into(),
            percent: 25,
            detail: String::new(),
        },
    );
    let c = compose(&w.state(), Stage::Update, &services(), t("10:40"));
    assert!(
        c.body
            .contains("Estimated time to full recovery: about 30 minutes (by 11:10 UTC)."),
        "{}",
        c.body
    );
    assert_plain(&c, &w.state());
}

/// Every template, for every incident type and progress, keeps internal words out.
#[test]
fn no_template_contains_an_internal_term() {
    for incident_type in [None, Some("infra"), Some("data"), Some("combined")] {
        let mut w = World::declared(incident_type);
        let mut states = vec![w.state()];
        w.operation(
            OperationKind::InfraRestore,
            t("10:10"),
            Some(Outcome::Succeeded),
        );
        states.push(w.state());
        w.operation(OperationKind::RestoreLatest, t("10:30"), None);
        states.push(w.state());
        w.push(
            "drbot",
            t("10:50"),
            EventKind::OperationFinished {
                operation: "op2".into(),
                outcome: Outcome::Succeeded,
                phase: "Completed".into(),
                detail: String::new(),
                result: None,
            },
        );
        states.push(w.state());
        w.push("alice", t("11:00"), EventKind::Resolved);
        states.push(w.state());
        for s in &states {
            for stage in [Stage::Initial, Stage::Update, Stage::Resolved] {
                for names in [services(), vec![]] {
                    assert_plain(&compose(s, stage, &names, t("11:05")), s);
                }
            }
        }
    }
}

#[test]
fn the_denylist_matches_whole_words_in_any_case() {
    let none: Vec<String> = vec![];
    assert_eq!(
        internal_terms_in("Restoring the SGCluster from WAL via Velero", &none),
        vec!["sgcluster", "wal", "velero"]
    );
    assert_eq!(internal_terms_in("we walk the pods", &none), vec!["pods"]);
    assert!(internal_terms_in("Walter's podcast is swallowed", &none).is_empty());
    assert_eq!(
        internal_terms_in("the orders-i1-op2 copy", &["orders-i1-op2".into()]),
        vec!["orders-i1-op2"]
    );
    assert_eq!(internal_terms_in("see INC-3", &none), vec!["INC-…"]);
}

fn caller(who: &str) -> Caller {
    Caller {
        actor: Actor::new("console", who, who),
        operator: true,
    }
}

fn ctx(now: DateTime<Utc>) -> CommsCtx<'static> {
    CommsCtx {
        now,
        status_page: true,
        default_cluster: Some("orders"),
    }
}

fn apply(w: &mut World, who: &str, at: DateTime<Utc>, cmd: CommsCommand) -> Result<(), Refusal> {
    for kind in decide(&w.state(), &cmd, &caller(who), &ctx(at))? {
        w.push(who, at, kind);
    }
    Ok(())
}

#[test]
fn the_comms_lead_drafts_edits_and_publishes_once() {
    let mut w = World::declared(Some("data"));
    w.push(
        "alice",
        t("10:01"),
        EventKind::RoleAssigned {
            role: "comms".into(),
            user: "carol".into(),
        },
    );
    let refused = apply(
        &mut w,
        "bob",
        t("10:02"),
        CommsCommand::Draft(Stage::Initial),
    );
    assert!(
        refused
            .unwrap_err()
            .0
            .contains("communications lead <@carol>")
    );
    apply(
        &mut w,
        "carol",
        t("10:02"),
        CommsCommand::Draft(Stage::Initial),
    )
    .unwrap();
    let d = w.state().comms.draft("c1").cloned().unwrap();
    assert!(d.text().contains("Status: Investigating"), "{}", d.text());

    // The IC may draft, but edits and publications are the comms lead's.
    apply(
        &mut w,
        "alice",
        t("10:03"),
        CommsCommand::Draft(Stage::Update),
    )
    .unwrap();
    let edit = CommsCommand::Edit {
        id: "C1".into(),
        text: "We are restoring the Velero backup in the db namespace.".into(),
    };
    assert!(apply(&mut w, "alice", t("10:04"), edit.clone()).is_err());
    apply(&mut w, "carol", t("10:04"), edit).unwrap();
    match &w.events.last().unwrap().kind {
        EventKind::CommsEdited { warnings, .. } => {
            assert_eq!(
                warnings,
                &vec!["namespace".to_string(), "velero".to_string()]
            )
        }
        other => panic!("{other:?}"),
    }
    let publish = CommsCommand::Publish { id: "C1".into() };
    apply(&mut w, "carol", t("10:05"), publish.clone()).unwrap();
    let again = apply(&mut w, "carol", t("10:06"), publish).unwrap_err();
    assert!(again.0.contains("already published"), "{}", again.0);
    let edit_after = apply(
        &mut w,
        "carol",
        t("10:06"),
        CommsCommand::Edit {
            id: "C1".into(),
            text: "x".into(),
        },
    )
    .unwrap_err();
    assert!(
        edit_after.0.contains("already published"),
        "{}",
        edit_after.0
    );
    let unknown = apply(
        &mut w,
        "carol",
        t("10:06"),
        CommsCommand::Publish { id: "C9".into() },
    )
    .unwrap_err();
    assert!(unknown.0.contains("Drafts: C1, C2"), "{}", unknown.0);

    // The promise of C1 (10:32) falls due once.
    let s = w.state();
    assert!(s.comms.due(t("10:31")).is_none());
    let (draft, due) = s.comms.due(t("10:32")).unwrap();
    assert_eq!((draft.id.as_str(), due), ("C1", t("10:32")));
    w.push(
        "drbot",
        t("10:32"),
        EventKind::CommsReminderSent {
            draft: "C1".into(),
            due,
        },
    );
    assert!(w.state().comms.due(t("11:00")).is_none());
}

#[test]
fn without_a_comms_lead_the_ic_speaks_and_a_stale_promise_is_refused() {
    let mut w = World::declared(None);
    apply(
        &mut w,
        "alice",
        t("10:02"),
        CommsCommand::Draft(Stage::Initial),
    )
    .unwrap();
    let late = apply(
        &mut w,
        "alice",
        t("10:40"),
        CommsCommand::Publish { id: "C1".into() },
    )
    .unwrap_err();
    assert!(late.0.contains("which has passed"), "{}", late.0);
    let nobody = apply(
        &mut w,
        "bob",
        t("10:03"),
        CommsCommand::Publish { id: "C1".into() },
    )
    .unwrap_err();
    assert!(nobody.0.contains("none is assigned"), "{}", nobody.0);
    let no_page = decide(
        &w.state(),
        &CommsCommand::Publish { id: "C1".into() },
        &caller("alice"),
        &CommsCtx {
            now: t("10:03"),
            status_page: false,
            default_cluster: None,
        },
    )
    .unwrap_err();
    assert!(
        no_page.0.contains("No status page is configured"),
        "{}",
        no_page.0
    );
}
