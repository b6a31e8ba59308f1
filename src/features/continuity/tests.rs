//! The catalog and plan loaders on the guide's own examples, and the impact rules on the
//! pure core (decide + fold, no I/O).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::impact::{self, onset};
use crate::catalog::{Catalog, Continuity, ContinuityError, DrPlan};
use crate::command::parse;
use crate::decide::decide;
use crate::incident::event::{Actor, Event, EventKind};
use crate::incident::impact::ContinuityState;
use crate::incident::state::Incident;
use crate::incident::{Caller, Ctx, Facts, Policy};
use crate::sop::Runbook;

const CATALOG: &str =
    include_str!("../../../tests/fixtures/continuity/business-impact-analysis.yaml");
const PLAN: &str = include_str!("../../../tests/fixtures/continuity/disaster-recovery-plan.yaml");

fn t(hm: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-02-08T{hm}:00Z"))
        .unwrap()
        .with_timezone(&Utc)
}

fn guide() -> Continuity {
    Continuity {
        catalog: Some(Catalog::parse(CATALOG, "bia.yaml").unwrap()),
        plan: Some(DrPlan::parse(PLAN, "plan.yaml").unwrap()),
        clusters: BTreeMap::new(),
    }
}

fn invalid(e: ContinuityError) -> String {
    match e {
        ContinuityError::Invalid { file, message } => format!("{file}: {message}"),
        other => panic!("not a content error: {other}"),
    }
}

#[test]
fn the_guides_catalog_loads_as_it_is() {
    let c = Catalog::parse(CATALOG, "bia.yaml").unwrap();
    let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["payment-api", "user-api", "blog", "internal-tools"]);
    let user = c.service("user-api").unwrap();
    assert_eq!(user.tier, "high");
    assert_eq!(user.rto, Duration::minutes(30));
    assert_eq!(user.rpo, Duration::minutes(15));
    assert_eq!(user.revenue_per_hour, 1_000_000);
    assert_eq!(user.dependencies, ["postgresql-primary", "redis-cache"]);
    assert_eq!(user.data_classification.as_deref(), Some("pii"));
    assert_eq!(user.failover_strategy.as_deref(), Some("active-passive"));
    let pay = c.service("payment-api").unwrap();
    assert_eq!(pay.rpo, Duration::zero());
    assert_eq!(pay.rto, Duration::minutes(5));
    assert_eq!(pay.revenue_per_hour, 5_000_000);
    assert_eq!(c.service("blog").unwrap().revenue_per_hour, 0);
    assert_eq!(c.service("blog").unwrap().rpo, Duration::hours(24));
    assert_eq!(
        c.infrastructure(),
        [
            "postgresql-primary",
            "redis-sessions",
            "stripe-api",
            "redis-cache"
        ]
    );
}

#[test]
fn the_guides_plan_loads_as_it_is() {
    let p = DrPlan::parse(PLAN, "plan.yaml").unwrap();
    assert_eq!(p.version.as_deref(), Some("2.1"));
    assert_eq!(p.owner.as_deref(), Some("platform-team"));
    assert_eq!(p.next_review.unwrap().to_string(), "2026-06-15");
    assert_eq!(p.last_updated.unwrap().to_string(), "2026-03-15");
    assert_eq!(p.roles.len(), 4);
    let comms = p
        .roles
        .iter()
        .find(|r| r.key == "communications_lead")
        .unwrap();
    assert_eq!(comms.name.as_deref(), Some("Engineering manager on-call"));
    assert!(
        comms
            .responsibilities
            .contains(&"Update status page".to_string())
    );
    let tiers: Vec<u32> = p.recovery_priority.iter().map(|t| t.tier).collect();
    assert_eq!(tiers, [1, 2, 3]);
    let two = p.tier_of("user-api").unwrap();
    assert_eq!(two.target_rto, Duration::minutes(30));
    assert_eq!(two.action, "Restore from replica in secondary region");
    assert_eq!(p.tier_of("docs").unwrap().tier, 3);
}

#[test]
fn a_plan_out_of_order_is_kept_in_tier_order_and_numbers_load_as_versions() {
    let text = "metadata:\n  version: 3\nrecovery_priority:\n  - tier: 2\n    services: [b]\n    target_rto: \"1 hour\"\n    action: later\n  - tier: 1\n    services: [a]\n    target_rto: \"2 days\"\n    action: first\n";
    let p = DrPlan::parse(text, "p.yaml").unwrap();
    assert_eq!(p.version.as_deref(), Some("3"));
    assert_eq!(p.recovery_priority[0].action, "first");
    assert_eq!(p.recovery_priority[0].target_rto, Duration::days(2));
}

#[test]
fn bad_catalogs_name_the_file_the_line_and_the_field() {
    let bad_rto = CATALOG.replace("rto: \"30 minutes\"", "rto: \"30 minuts\"");
    let e = invalid(Catalog::parse(&bad_rto, "bia.yaml").unwrap_err());
    assert!(e.starts_with("bia.yaml: services[1].rto:"), "{e}");
    assert!(e.contains("`30 minuts` is not a duration"), "{e}");
    assert!(e.contains("\"15 minutes\""), "{e}");
    assert!(e.contains("line 18"), "{e}");

    let bad_money = CATALOG.replace("\"$10,000\"", "\"ten grand\"");
    let e = invalid(Catalog::parse(&bad_money, "bia.yaml").unwrap_err());
    assert!(e.contains("services[1].revenue_impact_per_hour"), "{e}");
    assert!(e.contains("line 20"), "{e}");

    let no_tier = CATALOG.replace("    tier: medium\n", "");
    let e = invalid(Catalog::parse(&no_tier, "bia.yaml").unwrap_err());
    assert!(
        e.contains("services[2]") && e.contains("missing field `tier`"),
        "{e}"
    );
    assert!(e.contains("line"), "{e}");

    let twice = CATALOG.replace("name: blog", "name: user-api");
    let e = invalid(Catalog::parse(&twice, "bia.yaml").unwrap_err());
    assert!(
        e.contains("services[2].name: `user-api` is listed twice at line 26"),
        "{e}"
    );

    let e =
        invalid(Catalog::parse("services:\n  - name: a\n    tier: [x\n", "bia.yaml").unwrap_err());
    assert!(e.starts_with("bia.yaml: ") && e.contains("line 3"), "{e}");

    let e = invalid(Catalog::parse("services: []\n", "bia.yaml").unwrap_err());
    assert!(e.contains("services: the list is empty"), "{e}");
}

#[test]
fn bad_plans_name_the_line_and_the_field() {
    let bad = PLAN.replace("target_rto: \"4 hours\"", "target_rto: \"soon\"");
    let e = invalid(DrPlan::parse(&bad, "plan.yaml").unwrap_err());
    assert!(
        e.starts_with("plan.yaml: recovery_priority[2].target_rto:"),
        "{e}"
    );
    assert!(e.contains("`soon` is not a duration"), "{e}");
    assert!(e.contains("line 69"), "{e}");
    let bad = PLAN.replace("next_review: \"2026-06-15\"", "next_review: \"June\"");
    let e = invalid(DrPlan::parse(&bad, "plan.yaml").unwrap_err());
    assert!(
        e.contains("metadata.next_review") && e.contains("line 5"),
        "{e}"
    );
}

#[test]
fn unknown_dependencies_are_infrastructure_not_errors() {
    // postgresql-primary, stripe-api… are nowhere in `services`; the catalog still loads.
    let c = Catalog::parse(CATALOG, "bia.yaml").unwrap();
    assert!(c.service("postgresql-primary").is_none());
    assert_eq!(
        c.dependency("POSTGRESQL-PRIMARY"),
        Some("postgresql-primary")
    );
}

#[test]
fn missing_files_say_which() {
    let e = Continuity::load(Some("/nonexistent/bia.yaml"), None, &BTreeMap::new()).unwrap_err();
    assert!(
        e.to_string().contains("cannot read /nonexistent/bia.yaml"),
        "{e}"
    );
    assert_eq!(
        Continuity::load(None, None, &BTreeMap::new()).unwrap(),
        Continuity::default()
    );
}

#[test]
fn a_cluster_takes_the_rto_of_the_service_it_is_mapped_to_or_named_like() {
    let dir = std::env::temp_dir().join(format!("drbot-clusters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bia = dir.join("bia.yaml");
    std::fs::write(&bia, CATALOG).unwrap();
    let bia = bia.to_str().unwrap();
    let map = BTreeMap::from([("orders".to_string(), "User-API".to_string())]);
    let c = Continuity::load(Some(bia), None, &map).unwrap();
    // Mapped (and spelled as the catalog spells it), named like a service, or unknown.
    assert_eq!(c.clusters["orders"], "user-api");
    assert_eq!(c.cluster_rto("orders"), Some(Duration::minutes(30)));
    assert_eq!(c.cluster_rto("payment-api"), Some(Duration::minutes(5)));
    assert_eq!(c.cluster_rto("ledger"), None);

    let typo = BTreeMap::from([("orders".to_string(), "users-api".to_string())]);
    let e = Continuity::load(Some(bia), None, &typo)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("orders = \"users-api\"") && e.contains("user-api"),
        "{e}"
    );
    let e = Continuity::load(None, None, &map).unwrap_err().to_string();
    assert!(e.contains("no service catalog configured"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Impact on the incident

fn caller(id: &str) -> Caller {
    Caller {
        actor: Actor::new("console", id, id),
        operator: true,
    }
}

struct World {
    runbook: Runbook,
    policy: Policy,
    continuity: Continuity,
    events: Vec<Event>,
    now: DateTime<Utc>,
}

impl World {
    fn new(continuity: Continuity) -> World {
        World {
            runbook: Runbook::embedded(),
            policy: Policy::default(),
            continuity,
            events: vec![],
            now: t("10:00"),
        }
    }

    fn state(&self) -> Incident {
        Incident::fold(&self.events).unwrap()
    }

    fn run(&mut self, line: &str) -> Result<Vec<EventKind>, String> {
        let cmd = parse(line).map_err(|e| e.to_string())?;
        let state = Incident::fold(&self.events);
        let ctx = Ctx {
            channel: "ops",
            runbook: &self.runbook,
            policy: &self.policy,
            now: self.now,
            continuity: &self.continuity,
        };
        let d = decide(
            state.as_ref(),
            &cmd,
            &caller("alice"),
            &ctx,
            &Facts::default(),
        )
        .map_err(|r| r.0)?;
        let mut kinds = Vec::new();
        for draft in d.events {
            let seq = self.events.len() as i64 + 1;
            kinds.push(draft.kind.clone());
            self.events.push(Event {
                incident: 1,
                seq,
                recorded_at: self.now,
                occurred_at: draft.occurred_at,
                actor: caller("alice").actor,
                kind: draft.kind,
            });
        }
        Ok(kinds)
    }

    fn push(&mut self, kind: EventKind) {
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
fn declare_with_services_records_them_and_follows_dependencies() {
    let mut w = World::new(guide());
    let kinds = w
        .run(r#"/dr declare sev1 data "orders wiped" services=user-api"#)
        .unwrap();
    assert_eq!(kinds.len(), 2);
    assert_eq!(
        kinds[1],
        EventKind::ServicesAffected {
            services: vec!["user-api".into()],
            infrastructure: vec![],
            pulled_in: vec![],
        }
    );
    let s = w.state();
    assert!(s.continuity.is_affected("user-api"));
    // Naming infrastructure pulls in every service that depends on it.
    let kinds = w.run("/dr impact postgresql-primary").unwrap();
    let EventKind::ServicesAffected {
        services,
        infrastructure,
        pulled_in,
    } = &kinds[0]
    else {
        panic!("{kinds:?}")
    };
    assert!(services.is_empty());
    assert_eq!(infrastructure, &["postgresql-primary".to_string()]);
    let added: Vec<(&str, &str)> = pulled_in
        .iter()
        .map(|p| (p.service.as_str(), p.via.as_str()))
        .collect();
    assert_eq!(
        added,
        [
            ("payment-api", "postgresql-primary"),
            ("blog", "postgresql-primary"),
            ("internal-tools", "postgresql-primary")
        ]
    );
    let text = crate::decide::posts::reply_for(&w.state(), &w.events[2..]);
    assert!(
        text.contains("blog depends on postgresql-primary: added."),
        "{text}"
    );
    // Again: nothing new, refused, nothing written.
    let before = w.events.len();
    let e = w.run("/dr impact blog").unwrap_err();
    assert!(e.contains("already recorded as affected"), "{e}");
    assert_eq!(w.events.len(), before);
}

#[test]
fn a_service_depending_on_an_affected_service_is_pulled_in_transitively() {
    let text = "services:\n  - name: db-api\n    tier: high\n    rpo: \"5 minutes\"\n    rto: \"10 minutes\"\n  - name: web\n    tier: medium\n    rpo: \"1 hour\"\n    rto: \"1 hour\"\n    dependencies: [db-api]\n  - name: edge\n    tier: low\n    rpo: \"1 day\"\n    rto: \"1 day\"\n    dependencies: [web]\n";
    let c = Catalog::parse(text, "c.yaml").unwrap();
    let new = impact::resolve(&c, &ContinuityState::default(), &["db-api".into()]).unwrap();
    assert_eq!(new.services, ["db-api"]);
    let pulled: Vec<(&str, &str)> = new
        .pulled_in
        .iter()
        .map(|p| (p.service.as_str(), p.via.as_str()))
        .collect();
    assert_eq!(pulled, [("web", "db-api"), ("edge", "web")]);
}

#[test]
fn unknown_services_are_refused_with_the_known_ones_and_write_nothing() {
    let mut w = World::new(guide());
    let e = w
        .run(r#"/dr declare sev1 data "x" services=user-api,billing"#)
        .unwrap_err();
    assert!(e.contains("Unknown service or dependency: billing"), "{e}");
    assert!(
        e.contains("payment-api, user-api, blog, internal-tools"),
        "{e}"
    );
    assert!(e.contains("postgresql-primary"), "{e}");
    assert!(w.events.is_empty());
    w.run("/dr declare sev1 data x").unwrap();
    let e = w.run("/dr impact nope").unwrap_err();
    assert!(e.contains("Unknown service or dependency: nope"), "{e}");
    assert_eq!(w.events.len(), 1);
}

#[test]
fn without_a_catalog_the_features_say_how_to_configure_it() {
    let mut w = World::new(Continuity::default());
    let e = w
        .run("/dr declare sev1 data x services=user-api")
        .unwrap_err();
    assert!(
        e.contains("no service catalog configured; set [continuity] catalog"),
        "{e}"
    );
    assert!(w.events.is_empty());
    w.run("/dr declare sev1 data x").unwrap();
    let e = w.run("/dr impact user-api").unwrap_err();
    assert!(e.contains("no service catalog configured"), "{e}");
    assert_eq!(w.events.len(), 1);
}

#[test]
fn thresholds_fall_due_once_each_and_stop_after_resolve() {
    let mut w = World::new(guide());
    w.run("/dr declare sev1 data x services=user-api").unwrap();
    let c = guide();
    let cat = c.catalog.as_ref().unwrap();
    assert!(impact::due_thresholds(&w.state(), cat, t("10:14")).is_empty());
    assert_eq!(
        impact::due_thresholds(&w.state(), cat, t("10:15")),
        vec![("user-api".to_string(), 50, t("10:15"))]
    );
    w.now = t("10:15");
    w.push(EventKind::RtoThreshold {
        service: "user-api".into(),
        percent: 50,
        rto_seconds: 1800,
    });
    assert!(impact::due_thresholds(&w.state(), cat, t("10:29")).is_empty());
    assert_eq!(
        impact::due_thresholds(&w.state(), cat, t("10:45")),
        vec![("user-api".to_string(), 100, t("10:30"))]
    );
    w.push(EventKind::Resolved);
    assert!(impact::due_thresholds(&w.state(), cat, t("11:00")).is_empty());
}

#[test]
fn a_zero_rto_has_only_its_breach_and_late_passes_owe_both() {
    let mut w = World::new(guide());
    w.run("/dr declare sev1 data x services=payment-api,user-api")
        .unwrap();
    let c = guide();
    let cat = c.catalog.as_ref().unwrap();
    let due = impact::due_thresholds(&w.state(), cat, t("11:00"));
    let keys: Vec<(&str, u8)> = due.iter().map(|(s, p, _)| (s.as_str(), *p)).collect();
    assert_eq!(
        keys,
        [
            ("payment-api", 50),
            ("payment-api", 100),
            ("user-api", 50),
            ("user-api", 100)
        ]
    );
    let zero = "services:\n  - name: a\n    tier: critical\n    rpo: \"0 minutes\"\n    rto: \"0 minutes\"\n";
    let c = Catalog::parse(zero, "z.yaml").unwrap();
    let mut w = World::new(Continuity {
        catalog: Some(c.clone()),
        plan: None,
        clusters: BTreeMap::new(),
    });
    w.run("/dr declare sev1 data x services=a").unwrap();
    let due = impact::due_thresholds(&w.state(), &c, t("10:00"));
    assert_eq!(due, vec![("a".to_string(), 100, t("10:00"))]);
}

#[test]
fn since_moves_the_onset_and_the_deadlines_and_refuses_the_future() {
    let mut w = World::new(guide());
    let e = w
        .run("/dr declare sev1 data x services=user-api since=2026-02-08T10:05Z")
        .unwrap_err();
    assert!(e.contains("is in the future"), "{e}");
    assert!(w.events.is_empty());
    w.run("/dr declare sev1 data x services=user-api since=2026-02-08T09:40Z")
        .unwrap();
    let s = w.state();
    assert_eq!(onset(&s), t("09:40"));
    // The declaration keeps its own time: the update cadence still runs from it.
    assert_eq!(s.declared_at, t("10:00"));
    let cat = w.continuity.catalog.clone().unwrap();
    assert_eq!(
        impact::due_thresholds(&s, &cat, t("10:00")),
        vec![("user-api".to_string(), 50, t("09:55"))]
    );
    // A note dated earlier still moves it back; one dated later does not.
    w.now = t("10:20");
    w.run("/dr note \"first alert\" at=2026-02-08T09:30Z")
        .unwrap();
    w.run("/dr note \"restore started\" at=2026-02-08T10:10Z")
        .unwrap();
    assert_eq!(onset(&w.state()), t("09:30"));
}

#[test]
fn revenue_at_risk_sums_the_affected_services_over_the_duration() {
    let mut w = World::new(guide());
    w.run("/dr declare sev1 data x services=user-api,internal-tools")
        .unwrap();
    let cat = w.continuity.catalog.clone().unwrap();
    // ($10,000 + $500)/h for 30 min.
    assert_eq!(
        impact::revenue_at_risk(&w.state(), &cat, t("10:30")),
        525_000
    );
    assert_eq!(impact::revenue_rate(&w.state(), &cat), 1_050_000);
}

#[test]
fn status_shows_tier_rto_and_time_left_then_breached() {
    let mut w = World::new(guide());
    w.run(r#"/dr declare sev1 data "orders wiped" services=user-api"#)
        .unwrap();
    let c = guide();
    let live = super::view::status_lines(&w.state(), &c, t("10:10"), true).join("\n");
    assert!(
        live.contains("user-api: tier high, RTO 30 min: 20 min left (by 10:30Z)"),
        "{live}"
    );
    assert!(
        live.contains("Revenue at risk so far: $1,667 ($10,000/h for 10 min)"),
        "{live}"
    );
    let late = super::view::status_lines(&w.state(), &c, t("10:42"), true).join("\n");
    assert!(late.contains("BREACHED 12 min ago (at 10:30Z)"), "{late}");
    let pinned = super::view::status_lines(&w.state(), &c, t("10:42"), false).join("\n");
    assert!(pinned.contains("due by 10:30Z"), "{pinned}");
    w.push(EventKind::RtoThreshold {
        service: "user-api".into(),
        percent: 100,
        rto_seconds: 1800,
    });
    let pinned = super::view::status_lines(&w.state(), &c, t("10:42"), false).join("\n");
    assert!(pinned.contains("BREACHED at 10:30Z"), "{pinned}");
}

#[test]
fn path_lists_the_plans_priority_for_the_affected_services() {
    let mut w = World::new(guide());
    w.run("/dr declare sev1 data x services=blog,user-api,payment-api")
        .unwrap();
    let lines = super::view::path_lines(&w.state(), &guide());
    assert_eq!(lines[0], "Service recovery order (DR plan, tier 1 first):");
    assert!(
        lines[1].contains("tier 1: payment-api (target RTO 5 min): Automated DNS failover"),
        "{lines:?}"
    );
    assert!(
        lines[2].contains("tier 2: user-api (target RTO 30 min)"),
        "{lines:?}"
    );
    assert!(
        lines[3].contains("tier 3: blog (target RTO 4 h): Rebuild from backups"),
        "{lines:?}"
    );
    let no_plan = Continuity {
        plan: None,
        ..guide()
    };
    let lines = super::view::path_lines(&w.state(), &no_plan);
    assert!(lines[1].contains("no DR plan configured"), "{lines:?}");
}

fn restore(
    w: &mut World,
    kind: crate::incident::OperationKind,
    target: Option<DateTime<Utc>>,
    summary: Vec<String>,
) {
    use crate::incident::event::{OperationSpec, Outcome, Plan};
    let mut spec = OperationSpec::new("op1", kind, "orders-i1-op1");
    spec.target = target;
    w.push(EventKind::LaunchPreviewed {
        preview: "P1".into(),
        operation: spec,
        plan: Plan {
            summary,
            manifest: String::new(),
            backup: Some("orders-20260208030000".into()),
            window: None,
        },
        backend: "sandbox".into(),
        expires_at: w.now + Duration::minutes(10),
        warnings: vec![],
    });
    w.push(EventKind::LaunchConfirmed {
        preview: "P1".into(),
        operation: "op1".into(),
    });
    w.now += Duration::minutes(20);
    w.push(EventKind::OperationFinished {
        operation: "op1".into(),
        outcome: Outcome::Succeeded,
        phase: "Completed".into(),
        detail: String::new(),
        result: None,
    });
}

#[test]
fn rpo_achieved_runs_from_the_pitr_target_to_the_onset() {
    let mut w = World::new(guide());
    w.run("/dr declare sev1 data x services=user-api,blog since=2026-02-08T09:50Z")
        .unwrap();
    restore(
        &mut w,
        crate::incident::OperationKind::Pitr,
        Some(t("09:40")),
        vec![],
    );
    w.now = t("10:40");
    w.push(EventKind::Resolved);
    let s = w.state();
    let loss = impact::data_lost(&s).unwrap();
    assert_eq!(loss.lost, Duration::minutes(10));
    assert_eq!(loss.point, t("09:40"));
    let r = super::view::report(&s, &guide(), t("12:00")).unwrap();
    let user = &r.services[0];
    assert_eq!(user.service, "user-api");
    // 09:50 → 10:40 = 50 min against 30: missed; 10 min lost against 15: met.
    assert_eq!(user.rto_achieved_seconds, Some(3000));
    assert_eq!(user.rto, "missed");
    assert_eq!(user.rpo_achieved_seconds, Some(600));
    assert_eq!(user.rpo, "met");
    let blog = &r.services[1];
    assert_eq!((blog.rto, blog.rpo), ("met", "met"));
    // Revenue counts up to the resolution, not the export: $10,000/h for 50 min.
    assert_eq!(r.revenue_at_risk, "$8,333");
    let md = super::view::markdown(&s, &guide(), t("12:00"));
    assert!(
        md.contains("| user-api | high | 30 min | 50 min | missed | 15 min | 10 min | met |"),
        "{md}"
    );
    assert!(md.contains("PITR op1 to 2026-02-08T09:40:00Z"), "{md}");
}

#[test]
fn rpo_achieved_after_a_latest_backup_restore_runs_from_the_backups_end() {
    let mut w = World::new(guide());
    w.run("/dr declare sev1 data x services=user-api").unwrap();
    restore(
        &mut w,
        crate::incident::OperationKind::RestoreLatest,
        None,
        vec![
            "new SGCluster db/orders-i1-op1 restored from db/orders".into(),
            "from backup orders-20260208030000 (ended 2026-02-08T03:41:00Z)".into(),
        ],
    );
    let loss = impact::data_lost(&w.state()).unwrap();
    assert_eq!(loss.point, t("03:41"));
    assert_eq!(loss.lost, t("10:00") - t("03:41"));
    let r = super::view::report(&w.state(), &guide(), t("10:20")).unwrap();
    assert_eq!(r.services[0].rpo, "missed");
    assert_eq!(r.services[0].rto, "open");
}

/// A commit of notes skips rendering the pinned status (`messages::may_change_status`): that
/// holds only while a note dated at or after the declaration changes nothing it shows.
#[test]
fn a_note_after_the_declaration_leaves_the_pinned_status_as_it_was() {
    use crate::decide::posts::{Render, may_change_status};
    use crate::incident::Post;
    let mut w = World::new(guide());
    w.run("/dr declare sev1 data x services=user-api since=2026-02-08T09:40Z")
        .unwrap();
    w.run("/dr check 9.1.1 3/3 nodes Ready").unwrap();
    w.now = t("10:20");
    let pinned = |w: &World| {
        let render = Render {
            runbook: &w.runbook,
            two_person_severities: &w.policy.two_person_severities,
            now: w.now,
            continuity: &w.continuity,
            public_url: None,
        };
        Post::status(&w.state(), &render).text
    };
    let before = pinned(&w);
    for (line, at) in [
        ("/dr note \"restore started\"", t("10:20")),
        ("/dr note \"replica lag\" at=2026-02-08T10:00Z", t("10:00")),
    ] {
        let kinds = w.run(line).unwrap();
        assert!(!may_change_status(&kinds[0], at, w.state().declared_at));
        assert_eq!(pinned(&w), before, "{line}");
    }
    // Dated before the declaration, a note moves the impact's onset, which the status shows.
    let kinds = w
        .run("/dr note \"first alert\" at=2026-02-08T09:30Z")
        .unwrap();
    assert!(may_change_status(
        &kinds[0],
        t("09:30"),
        w.state().declared_at
    ));
    assert_ne!(pinned(&w), before);
}
