//! What the sandbox's unit tests share.

pub(super) use std::sync::Arc;

pub(super) use chrono::{DateTime, Duration, Utc};
pub(super) use serde_json::json;

pub(super) use super::{Sandbox, SandboxConfig};
pub(super) use crate::clock::{Clock, ManualClock};
pub(super) use crate::cluster::{Cluster, ClusterError, Launched, ProbeContext};
pub(super) use crate::incident::{OperationKind, OperationSpec, Outcome};

pub(super) fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("valid test time")
        .with_timezone(&Utc)
}

pub(super) fn clock() -> ManualClock {
    ManualClock::new(t("2026-02-08T10:00:00Z"))
}

pub(super) fn sandbox(clock: &ManualClock, speed: f64) -> Sandbox {
    let config = SandboxConfig {
        speed,
        ..SandboxConfig::default()
    };
    Sandbox::new(config, Arc::new(clock.clone())).expect("sandbox")
}

/// A sandbox at `speed` on a fresh [`clock`], and the clock that moves it.
pub(super) fn sandbox_on_clock(speed: f64) -> (ManualClock, Sandbox) {
    let c = clock();
    let sb = sandbox(&c, speed);
    (c, sb)
}

pub(super) fn spec(kind: OperationKind, name: &str) -> OperationSpec {
    OperationSpec::new("op1", kind, name)
}

pub(super) fn pitr(cluster: &str, target: &str) -> OperationSpec {
    let mut s = spec(OperationKind::Pitr, "orders-i3-op4");
    s.cluster = Some(cluster.into());
    s.target = Some(t(target));
    s
}

pub(super) fn latest(name: &str) -> OperationSpec {
    let mut s = spec(OperationKind::RestoreLatest, name);
    s.cluster = Some("orders".into());
    s
}

/// What the sandbox plans for `s`, which must be plannable.
pub(super) async fn planned(sb: &Sandbox, s: &OperationSpec) -> crate::incident::Plan {
    sb.plan(s).await.expect("plan")
}

pub(super) fn invalid(r: Result<impl std::fmt::Debug, ClusterError>) -> String {
    match r {
        Err(ClusterError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Observes every 10 s until done; returns when it finished, checking that percent never
/// goes down and is 100 only when done.
pub(super) async fn run_to_completion(
    sb: &Sandbox,
    c: &ManualClock,
    s: &OperationSpec,
) -> Duration {
    let start = c.now();
    let mut last = 0u8;
    let mut phases = Vec::new();
    loop {
        let o = sb.observe(s).await.expect("observe");
        assert!(
            o.percent >= last,
            "percent went from {last} to {}",
            o.percent
        );
        assert_eq!(o.percent == 100, o.done.is_some(), "{o:?}");
        last = o.percent;
        if phases.last() != Some(&o.phase) {
            phases.push(o.phase.clone());
        }
        if o.done.is_some() {
            assert_eq!(o.done, Some(Outcome::Succeeded));
            return c.now() - start;
        }
        assert!(c.now() - start < Duration::hours(1), "never finished");
        c.advance(Duration::seconds(10));
    }
}
