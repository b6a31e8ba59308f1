//! Fixtures shared by the checks.

use super::*;

pub(super) const T0: &str = "2026-03-01T10:00:00.123Z";

pub(super) fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time literal")
        .with_timezone(&Utc)
}

pub(super) fn after(base: &str, secs: i64) -> DateTime<Utc> {
    t(base) + Duration::seconds(secs)
}

pub(super) fn alice() -> Actor {
    Actor::new("slack", "U1", "alice")
}

pub(super) fn declared(channel: &str, at: &str) -> NewEvent {
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

pub(super) fn note(text: &str, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        recorded_at: at,
        occurred_at: None,
        actor: alice(),
        kind: EventKind::NoteAdded { text: text.into() },
        dedupe_key: None,
    }
}

pub(super) fn keyed(mut ev: NewEvent, key: &str) -> NewEvent {
    ev.dedupe_key = Some(key.into());
    ev
}

pub(super) fn projection() -> Projection {
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

pub(super) fn resolved(at: DateTime<Utc>) -> Projection {
    Projection {
        resolved_at: Some(at),
        ..projection()
    }
}

/// Incident ids are chosen by the caller; a process-wide counter keeps them unique.
pub(super) static NEXT_ID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);

pub(super) fn new_incident(channel: &str, events: Vec<NewEvent>) -> Commit {
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

pub(super) fn append(id: IncidentId, expected_seq: i64, events: Vec<NewEvent>) -> Commit {
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

pub(super) fn post(channel: &str, body: &str, at: DateTime<Utc>) -> NewPost {
    NewPost {
        channel: channel.into(),
        body: body.into(),
        created_at: at,
        status: false,
    }
}

pub(super) fn status_post(channel: &str, body: &str, at: DateTime<Utc>) -> NewPost {
    NewPost {
        status: true,
        ..post(channel, body, at)
    }
}

/// Claim what is due at `now` as worker `token`, with a 60-second lease.
pub(super) async fn claim(s: &Store, token: &str, now: DateTime<Utc>) -> Vec<OutboxRow> {
    s.claim_posts(token, now, now + Duration::seconds(60), 10, None)
        .await
        .expect("claim")
}

pub(super) fn queue(op: &str, object: &str) -> OperationChange {
    OperationChange::Queue {
        operation: op.into(),
        kind: "restore_latest".into(),
        object_name: object.into(),
        backend: "sandbox".into(),
        spec: format!(r#"{{"id":"{op}"}}"#),
    }
}

/// What reading back `events` appended as `seqs` of `incident` must give.
pub(super) fn expected(incident: IncidentId, seqs: &[i64], events: &[NewEvent]) -> Vec<Event> {
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
pub(super) fn varied_events() -> Vec<NewEvent> {
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

pub(super) async fn ops_of(store: &Store) -> Vec<OperationRow> {
    store.unfinished_operations().await.expect("operations")
}
