//! The SOP's rules, tested on the pure core: decide + fold, no I/O.

use chrono::{DateTime, Duration, Utc};

use super::decide;
use crate::command::{Command, parse};
use crate::incident::event::{Actor, Event, EventKind, Outcome, Plan, RecoveryWindow};
use crate::incident::state::Incident;
use crate::incident::{Caller, Ctx, Decision, Facts, Policy};
use crate::sop::Runbook;

fn t(hm: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-02-08T{hm}:00Z"))
        .unwrap()
        .with_timezone(&Utc)
}

fn caller(id: &str, operator: bool) -> Caller {
    Caller {
        actor: Actor::new("console", id, id),
        operator,
    }
}

/// Drives decide + fold the way the app does, without a store.
struct World {
    runbook: Runbook,
    policy: Policy,
    events: Vec<Event>,
    now: DateTime<Utc>,
}

impl World {
    fn new() -> World {
        World {
            runbook: Runbook::embedded(),
            policy: Policy {
                default_cluster: Some("orders".into()),
                ..Policy::default()
            },
            events: vec![],
            now: t("10:00"),
        }
    }

    fn state(&self) -> Option<Incident> {
        Incident::fold(&self.events)
    }

    fn facts(&self, cmd: &Command) -> Facts {
        let window = RecoveryWindow {
            start: t("03:41") - Duration::days(7),
            end: self.now - Duration::minutes(1),
        };
        let plan = match cmd {
            Command::Pitr { .. }
            | Command::DrillPitr { .. }
            | Command::RestoreLatest { .. }
            | Command::Freeze { .. }
            | Command::Unfreeze
            | Command::InfraRestore { .. } => Some(Plan {
                summary: vec![],
                manifest: "kind: X".into(),
                backup: Some("b1".into()),
                window: Some(window),
            }),
            _ => None,
        };
        Facts {
            backend: "sandbox".into(),
            plan,
            probes: vec![],
            backups: Some((true, vec![])),
            exercise: None,
        }
    }

    fn run(&mut self, who: &Caller, line: &str) -> Result<Decision, String> {
        let cmd = parse(line).map_err(|e| e.to_string())?;
        let state = self.state();
        let ctx = Ctx {
            channel: "ops",
            runbook: &self.runbook,
            policy: &self.policy,
            now: self.now,
            continuity: &crate::catalog::Continuity::default(),
        };
        let decision =
            decide(state.as_ref(), &cmd, who, &ctx, &self.facts(&cmd)).map_err(|r| r.0)?;
        for draft in &decision.events {
            let seq = self.events.len() as i64 + 1;
            self.events.push(Event {
                incident: 1,
                seq,
                recorded_at: self.now,
                occurred_at: draft.occurred_at,
                actor: who.actor.clone(),
                kind: draft.kind.clone(),
            });
        }
        Ok(decision)
    }

    fn ok(&mut self, who: &Caller, line: &str) {
        self.run(who, line)
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }

    /// A refused command must leave the timeline as it was.
    fn refused(&mut self, who: &Caller, line: &str) -> String {
        let before = self.events.len();
        let why = self.run(who, line).expect_err(line);
        assert_eq!(self.events.len(), before, "{line} wrote events");
        why
    }

    fn system(&mut self, kind: EventKind) {
        let seq = self.events.len() as i64 + 1;
        self.events.push(Event {
            incident: 1,
            seq,
            recorded_at: self.now,
            occurred_at: None,
            actor: Actor::drbot(),
            kind,
        });
    }
}

#[test]
fn one_open_incident_per_channel() {
    let mut w = World::new();
    let alice = caller("alice", true);
    w.ok(&alice, "/dr declare sev1 data orders wiped");
    let why = w.refused(&alice, "/dr declare sev2 infra other");
    assert!(why.contains("INC-1 is already open"), "{why}");
    let s = w.state().unwrap();
    assert_eq!(s.role("ic"), Some("alice"));
    assert_eq!(s.channel, "ops");
}

#[test]
fn actions_need_an_open_classified_incident_an_operator_and_the_right_path() {
    let mut w = World::new();
    let alice = caller("alice", true);
    let guest = caller("guest", false);
    assert!(w.refused(&alice, "/dr freeze").contains("no open incident"));
    w.ok(&alice, "/dr declare sev2 orders wiped");
    assert!(
        w.refused(&alice, "/dr pitr 2026-02-08T09:55Z")
            .contains("not classified")
    );
    w.ok(&alice, "/dr type infra");
    assert!(w.refused(&guest, "/dr freeze").contains("operator role"));
    let why = w.refused(&alice, "/dr pitr 2026-02-08T09:55Z");
    assert!(
        why.contains("not on the recovery path") && why.contains("escalate"),
        "{why}"
    );
    w.ok(&alice, "/dr infra restore");
    w.ok(&alice, "/dr type data");
    let why = w.refused(&alice, "/dr infra restore");
    assert!(why.contains("not on the recovery path"), "{why}");
    // The infra preview no longer fits the path and cannot be confirmed.
    assert!(w.refused(&alice, "/dr confirm P1").contains("reclassified"));
}

#[test]
fn pitr_target_rules() {
    let mut w = World::new();
    let alice = caller("alice", true);
    w.ok(&alice, "/dr declare sev2 data orders wiped");
    assert!(
        w.refused(&alice, "/dr pitr 2026-02-08T10:05Z")
            .contains("in the future")
    );
    assert!(
        w.refused(&alice, "/dr pitr 2026-02-08 09:55")
            .contains("no time zone")
    );
    assert!(
        w.refused(&alice, "/dr pitr 2026-01-01T00:00Z")
            .contains("outside the recoverable window")
    );
    w.policy.default_zone = crate::command::timestamp::parse_zone("+01:00");
    w.ok(&alice, "/dr pitr 2026-02-08 10:55");
    let s = w.state().unwrap();
    let p = s.preview("P1").unwrap();
    assert_eq!(p.spec.target, Some(t("09:55")));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("2026-02-08T09:55:00Z")),
        "{:?}",
        p.warnings
    );
    assert!(p.spec.object_name.len() <= 44);
}

#[test]
fn pitr_after_declaration_is_allowed_with_a_warning() {
    let mut w = World::new();
    let alice = caller("alice", true);
    w.ok(&alice, "/dr declare sev2 data orders wiped");
    w.now = t("10:30");
    w.ok(&alice, "/dr pitr 2026-02-08T10:10Z");
    let s = w.state().unwrap();
    assert!(
        s.preview("P1")
            .unwrap()
            .warnings
            .iter()
            .any(|w| w.contains("after the incident was declared"))
    );
}

#[test]
fn sev1_launch_needs_a_second_operator_and_launches_once() {
    let mut w = World::new();
    let alice = caller("alice", true);
    let bob = caller("bob", true);
    let guest = caller("guest", false);
    w.ok(&alice, "/dr declare sev1 data orders wiped");
    w.ok(&alice, "/dr pitr 2026-02-08T09:55Z");
    assert!(
        w.refused(&alice, "/dr confirm P1")
            .contains("second operator")
    );
    assert!(
        w.refused(&guest, "/dr confirm P1")
            .contains("Only an operator")
    );
    assert!(w.refused(&bob, "/dr confirm P9").contains("Pending: P1"));
    w.ok(&bob, "/dr confirm p1");
    assert!(
        w.refused(&bob, "/dr confirm P1")
            .contains("already confirmed")
    );
    let s = w.state().unwrap();
    assert_eq!(s.operations.len(), 1);
    assert_eq!(s.pitr_target, Some(t("09:55")));
    assert_eq!(s.operations[0].spec.object_name, "orders-i1-op1");
    assert!(
        w.refused(&alice, "/dr pitr 2026-02-08T09:50Z")
            .contains("still running")
    );
}

#[test]
fn previews_expire() {
    let mut w = World::new();
    let alice = caller("alice", true);
    w.ok(&alice, "/dr declare sev2 data orders wiped");
    w.ok(&alice, "/dr freeze");
    w.now = t("10:11");
    assert!(w.refused(&alice, "/dr confirm P1").contains("expired"));
    w.ok(&alice, "/dr cancel P1");
    assert!(w.refused(&alice, "/dr confirm P1").contains("cancelled"));
}

#[test]
fn a_halt_refuses_actions_until_the_ic_resumes() {
    let mut w = World::new();
    let alice = caller("alice", true);
    let bob = caller("bob", true);
    w.ok(&alice, "/dr declare sev2 data orders wiped");
    w.ok(&alice, "/dr freeze");
    w.ok(&bob, "/dr escalate backups look wrong");
    for line in [
        "/dr confirm P1",
        "/dr pitr 2026-02-08T09:55Z",
        "/dr unfreeze",
        "/dr resolve",
        "/dr backups",
    ] {
        assert!(w.refused(&alice, line).contains("HALTED"), "{line}");
    }
    w.ok(&alice, "/dr note still allowed");
    assert!(
        w.refused(&bob, "/dr resume")
            .contains("Only the incident commander")
    );
    w.ok(&alice, "/dr resume");
    w.ok(&bob, "/dr confirm P1");
}

#[test]
fn freeze_records_prior_state_and_unfreeze_carries_it_back() {
    let mut w = World::new();
    let alice = caller("alice", true);
    w.ok(&alice, "/dr declare sev2 data orders wiped");
    assert!(w.refused(&alice, "/dr unfreeze").contains("not frozen"));
    w.ok(&alice, "/dr freeze");
    w.ok(&alice, "/dr confirm P1");
    let prior = serde_json::json!({"flux_kustomization/flux-system/apps": {"suspend": false}});
    w.system(EventKind::OperationFinished {
        operation: "op1".into(),
        outcome: Outcome::Succeeded,
        phase: "Applied".into(),
        detail: String::new(),
        result: Some(prior.clone()),
    });
    assert!(w.refused(&alice, "/dr freeze").contains("already frozen"));
    w.ok(&alice, "/dr unfreeze");
    let s = w.state().unwrap();
    assert_eq!(s.preview("P2").unwrap().spec.prior, Some(prior));
}

#[test]
fn checklist_rules_and_resolve() {
    let mut w = World::new();
    let alice = caller("alice", true);
    let guest = caller("guest", false);
    w.ok(&alice, "/dr declare sev3 infra node loss");
    assert!(
        w.refused(&guest, "/dr check 9.9.9")
            .contains("Unknown item")
    );
    w.ok(&guest, "/dr check 9.1.1 3/3 nodes Ready");
    assert!(
        w.refused(&guest, "/dr check 9.1.1")
            .contains("already checked by guest")
    );
    assert!(
        w.refused(&guest, "/dr na 9.1.2 not needed")
            .contains("required by the SOP")
    );
    w.ok(&guest, "/dr na 9.5 no observability stack in this cluster");
    w.ok(&guest, "/dr na 9.3.2 restored latest, no PITR");
    assert!(
        w.refused(&guest, "/dr resolve")
            .contains("Only the incident commander or an operator")
    );
    let why = w.refused(&alice, "/dr resolve");
    assert!(
        why.contains("9.1.2")
            && !why.contains("9.1.1 ")
            && !why.contains("9.5.1")
            && !why.contains("9.3.2"),
        "{why}"
    );
    assert!(
        !why.contains("9.8.1"),
        "satisfied by resolving itself: {why}"
    );
    w.ok(&guest, "/dr uncheck 9.1.1");
    assert!(w.refused(&guest, "/dr uncheck 9.1.1").contains("no tick"));
    let runbook = Runbook::embedded();
    for (section, item) in runbook.checklist_items() {
        let s = w.state().unwrap();
        if section.required
            && crate::features::checklist::checklist_item_state(&s, section, item).is_open()
            && item.auto.as_deref() != Some("resolve")
        {
            w.ok(&guest, &format!("/dr check {}", item.id));
        }
    }
    w.ok(&alice, "/dr resolve");
    assert!(
        w.refused(&alice, "/dr note late")
            .contains("no open incident")
    );
    assert!(w.state().unwrap().resolved_at.is_some());
}

#[test]
fn replaying_events_rebuilds_the_served_state() {
    let mut w = World::new();
    let alice = caller("alice", true);
    let bob = caller("bob", true);
    w.ok(&alice, "/dr declare sev1 combined cluster and data lost");
    w.ok(&alice, "/dr role comms @carol");
    w.ok(&alice, "/dr infra restore namespaces=apps,web");
    w.ok(&bob, "/dr confirm P1");
    w.ok(&alice, "/dr note at=2026-02-08T09:41Z first alert");
    w.ok(&bob, "/dr check 9.1.4 verified policies");
    w.ok(&alice, "/dr update restoring");
    let mut incremental = Incident::fold(&w.events[..1]).unwrap();
    for e in &w.events[1..] {
        incremental.apply(e);
    }
    assert_eq!(Some(incremental.clone()), w.state());
    let json = serde_json::to_string(&w.events).unwrap();
    let decoded: Vec<Event> = serde_json::from_str(&json).unwrap();
    assert_eq!(Incident::fold(&decoded), Some(incremental.clone()));
    let op = &incremental.operations[0];
    assert!(
        op.spec.exclude_database_namespaces,
        "combined incidents leave the databases to §8"
    );
    assert_eq!(op.spec.include_namespaces, ["apps", "web"]);
    assert_eq!(w.events[4].occurred_at, Some(t("09:41")));
}

#[test]
fn drill_without_an_incident_opens_a_drill_incident_first() {
    let mut w = World::new();
    let alice = caller("alice", true);
    let d = w.run(&alice, "/dr drill pitr 2026-02-08T09:00Z").unwrap();
    assert!(d.then_retry);
    let d = w.run(&alice, "/dr drill pitr 2026-02-08T09:00Z").unwrap();
    assert!(!d.then_retry);
    let s = w.state().unwrap();
    assert!(s.drill);
    assert_eq!(s.previews[0].spec.namespace.as_deref(), Some("dr-drill"));
    assert!(
        w.refused(&alice, "/dr pitr 2026-02-08T09:00Z")
            .contains("drill incident")
    );
}

#[test]
fn checking_a_section_ticks_each_open_item_or_refuses() {
    let mut w = World::new();
    let alice = caller("alice", true);
    w.ok(&alice, "/dr declare sev2 data orders wiped");
    w.ok(&alice, "/dr check 9.4.2 no crash loops");
    let d = w.run(&alice, "/dr check 9.4 smoke tests green").unwrap();
    let ticked: Vec<(String, Option<String>)> = d
        .events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Checked { item, note } => (item.clone(), note.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let note = Some("smoke tests green".to_string());
    assert_eq!(
        ticked,
        ["9.4.1", "9.4.3", "9.4.4", "9.4.5"].map(|i| (i.to_string(), note.clone()))
    );
    let why = w.refused(&alice, "/dr resolve");
    assert!(!why.contains("9.4."), "{why}");
    assert!(
        w.refused(&alice, "/dr check 9.4")
            .contains("Every item of §9.4 is already done")
    );
    // A section marked n/a has nothing left to tick.
    w.ok(&alice, "/dr na 9.5 no observability stack");
    assert!(
        w.refused(&alice, "/dr check 9.5")
            .contains("already done or n/a")
    );
    // Recovery-path sections work the same way.
    let ticked = w.run(&alice, "/dr check 7.2").map(|d| d.events.len());
    assert!(matches!(ticked, Ok(n) if n > 0), "{ticked:?}");
}
