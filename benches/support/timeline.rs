//! A long, realistic incident: a data incident frozen, restored by PITR over a long WAL
//! replay with automatic progress, updates, reminders, notes, probes and checks, then
//! resolved; committed through the store API as the engine would have.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use drbot::incident::{
    Actor, EventKind, IncidentId, OperationKind, OperationSpec, Outcome, Plan, RecoveryWindow,
};
use drbot::store::{Chain, Commit, NewEvent, Projection, Store, Target};

/// Events in the timeline.
pub const EVENTS: usize = 100_000;
/// Events per commit while seeding.
pub const BATCH: usize = 1_000;

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap()
}

pub fn alice() -> Actor {
    Actor::new("slack", "U01ALICE", "Alice Martin")
}
pub fn bob() -> Actor {
    Actor::new("slack", "U02BOB", "Bob Okafor")
}
pub fn carol() -> Actor {
    Actor::new("discord", "1187", "Carol \"CJ\" Jensen")
}

fn spec(id: &str, kind: OperationKind, target: Option<DateTime<Utc>>) -> OperationSpec {
    OperationSpec {
        id: id.into(),
        kind,
        object_name: format!("drbot-inc1-{id}-{}", kind.short()),
        reason: Some("orders table truncated by a faulty migration".into()),
        backup: None,
        cluster: kind.restores_database().then(|| "orders-db".into()),
        namespace: None,
        target,
        include_namespaces: Vec::new(),
        exclude_database_namespaces: kind == OperationKind::Pitr,
        prior: None,
    }
}

fn previewed(preview: &str, operation: OperationSpec, at: DateTime<Utc>) -> EventKind {
    EventKind::LaunchPreviewed {
        preview: preview.into(),
        plan: Plan {
            summary: vec![
                format!("{} {}", operation.kind.label(), operation.object_name),
                "source cluster orders-db (3 instances, 412 GiB)".into(),
            ],
            manifest: format!(
                "apiVersion: stackgres.io/v1\nkind: SGCluster\nmetadata:\n  name: {}\n",
                operation.object_name
            ),
            backup: operation
                .kind
                .restores_database()
                .then(|| "orders-db-20260203-0000".into()),
            window: Some(RecoveryWindow {
                start: at - TimeDelta::days(7),
                end: at - TimeDelta::minutes(1),
            }),
        },
        operation,
        backend: "stackgres".into(),
        expires_at: at + TimeDelta::minutes(10),
        warnings: vec!["the restore replaces the running cluster's endpoint".into()],
    }
}

const ITEMS: [&str; 8] = [
    "9.1.1", "9.1.2", "9.2.3", "9.3.3", "9.3.4", "9.4.1", "9.4.3", "9.6.3",
];

/// The `i`th event of the timeline (0-based), at its time.
pub fn event(i: usize) -> (DateTime<Utc>, Actor, EventKind) {
    let at = start() + TimeDelta::milliseconds(2_500 * i as i64);
    let tail = EVENTS - i;
    let pitr_target = start() - TimeDelta::minutes(42);
    let (actor, kind) = match (i, tail) {
        (0, _) => (
            alice(),
            EventKind::Declared {
                channel: "C07INCORDERS".into(),
                severity: "sev1".into(),
                incident_type: None,
                title: "Orders database corrupted after migration 2026-02-03".into(),
                drill: false,
            },
        ),
        (1, _) => (
            alice(),
            EventKind::Classified {
                from: None,
                to: "data".into(),
            },
        ),
        (2, _) => (
            alice(),
            EventKind::RoleAssigned {
                role: "dr-lead".into(),
                user: "U02BOB".into(),
            },
        ),
        (3, _) => (
            bob(),
            previewed("P1", spec("op1", OperationKind::Freeze, None), at),
        ),
        (4, _) => (
            carol(),
            EventKind::LaunchConfirmed {
                preview: "P1".into(),
                operation: "op1".into(),
            },
        ),
        (5, _) => (
            Actor::drbot(),
            EventKind::OperationLaunched {
                operation: "op1".into(),
                object: "drbot-inc1-op1-freeze".into(),
            },
        ),
        (6, _) => (
            Actor::drbot(),
            EventKind::OperationFinished {
                operation: "op1".into(),
                outcome: Outcome::Succeeded,
                phase: "Frozen".into(),
                detail: "12 deployments scaled to 0".into(),
                result: Some(serde_json::json!({"orders-api": 6, "orders-worker": 3})),
            },
        ),
        (7, _) => (
            bob(),
            previewed(
                "P2",
                spec("op2", OperationKind::Pitr, Some(pitr_target)),
                at,
            ),
        ),
        (8, _) => (
            carol(),
            EventKind::LaunchConfirmed {
                preview: "P2".into(),
                operation: "op2".into(),
            },
        ),
        (9, _) => (
            Actor::drbot(),
            EventKind::OperationLaunched {
                operation: "op2".into(),
                object: "drbot-inc1-op2-pitr".into(),
            },
        ),
        (_, 8) => (
            Actor::drbot(),
            EventKind::OperationFinished {
                operation: "op2".into(),
                outcome: Outcome::Succeeded,
                phase: "Completed".into(),
                detail: "restored to 2026-02-03T03:23:06Z".into(),
                result: None,
            },
        ),
        (_, 7) => (
            bob(),
            previewed("P3", spec("op3", OperationKind::Unfreeze, None), at),
        ),
        (_, 6) => (
            carol(),
            EventKind::LaunchConfirmed {
                preview: "P3".into(),
                operation: "op3".into(),
            },
        ),
        (_, 5) => (
            Actor::drbot(),
            EventKind::OperationLaunched {
                operation: "op3".into(),
                object: "drbot-inc1-op3-unfreeze".into(),
            },
        ),
        (_, 4) => (
            Actor::drbot(),
            EventKind::OperationFinished {
                operation: "op3".into(),
                outcome: Outcome::Succeeded,
                phase: "Unfrozen".into(),
                detail: String::new(),
                result: None,
            },
        ),
        (_, 3) => (
            alice(),
            EventKind::MarkedNotApplicable {
                item: "9.7".into(),
                reason: "no compromise suspected".into(),
            },
        ),
        (_, 2) => (alice(), EventKind::Resolved),
        (_, 1) => (Actor::drbot(), EventKind::FinalSummaryPosted),
        _ => (Actor::drbot(), filler(i, at)),
    };
    (at, actor, kind)
}

/// The long middle: what a restore that takes days leaves in the timeline.
fn filler(i: usize, at: DateTime<Utc>) -> EventKind {
    match i % 10 {
        0..=4 => EventKind::OperationProgressed {
            operation: "op2".into(),
            phase: "Restoring".into(),
            percent: (i * 100 / EVENTS) as u8,
            detail: format!("WAL replay at segment 00000001000000{:010X}", i),
        },
        5 => EventKind::NoteAdded {
            text: format!(
                "replica lag {} s, checked with \"pg_stat_replication\"; next check, as agreed,\nin 10 minutes",
                i % 97
            ),
        },
        6 => EventKind::UpdatePosted {
            text: format!(
                "Restore in progress ({}%).\nNext update in 30 minutes.",
                i * 100 / EVENTS
            ),
            automatic: true,
            slots: vec![at],
        },
        7 => EventKind::ReminderSent { slot: at },
        8 => EventKind::Checked {
            item: ITEMS[i / 10 % ITEMS.len()].into(),
            note: Some(format!("verified by script run #{i}, see | runbook")),
        },
        _ => EventKind::ProbeRecorded {
            item: "9.1.1".into(),
            probe: "nodes_ready".into(),
            passed: !i.is_multiple_of(3),
            evidence: "12/12 nodes Ready".into(),
        },
    }
}

pub async fn fill(store: &Store) -> IncidentId {
    let mut id = None;
    let mut last_seq = 0;
    for first in (0..EVENTS).step_by(BATCH) {
        let batch: Vec<NewEvent> = (first..(first + BATCH).min(EVENTS))
            .map(|i| {
                let (recorded_at, actor, kind) = event(i);
                NewEvent {
                    recorded_at,
                    occurred_at: None,
                    actor,
                    kind,
                    dedupe_key: None,
                }
            })
            .collect();
        let done = first + batch.len() == EVENTS;
        let target = match id {
            None => Target::New {
                id: store.next_incident_id().await.expect("next id"),
                channel: "C07INCORDERS".into(),
                platform: "slack".into(),
            },
            Some(id) => Target::Existing {
                id,
                expected_seq: last_seq,
            },
        };
        let committed = store
            .commit(Commit {
                target,
                events: batch,
                posts: Vec::new(),
                operations: Vec::new(),
                projection: Projection {
                    severity: "sev1".into(),
                    incident_type: Some("data".into()),
                    title: "Orders database corrupted after migration 2026-02-03".into(),
                    drill: false,
                    declared_at: start(),
                    resolved_at: done.then(|| event(EVENTS - 2).0),
                    final_summary_posted: done,
                },
                request_key: None,
                gave_up: None,
                chain: Chain::root(),
            })
            .await
            .expect("commit a batch");
        id = Some(committed.incident);
        last_seq = *committed.seqs.last().expect("a non-empty batch");
    }
    id.expect("at least one batch")
}
