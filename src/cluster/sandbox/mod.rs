//! The sandbox cluster: an in-process simulation of Velero, StackGres, Argo CD and Flux for
//! tabletop drills and first runs.
//!
//! The simulated world (backups, schedules, WAL archive) is a pure function of the injected
//! clock, so a drill replays identically for the same times. Only what drbot itself changes
//! (restores it created, freezes it applied) is state, optionally kept in a file: a real
//! cluster outlives drbot, and a restarted drbot must find its restores where it left them.

mod backups;
mod freeze;
mod probes;
mod stackgres;
mod state;
#[cfg(test)]
mod test_support;
mod velero;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use super::manifests::fmt;
use super::{
    BackupsReport, BoxFuture, Cluster, ClusterError, Launched, Observation, ProbeContext,
    ProbeResult,
};
use crate::clock::Clock;
use crate::incident::{OperationKind, OperationSpec, Plan};
use state::{GitOps, Record, State, load, save};

#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    /// 1.0 = realistic durations; 60.0 = a restore takes seconds.
    pub speed: f64,
    /// Where the objects drbot created are kept; `None` = in memory only.
    pub state_file: Option<PathBuf>,
    /// Left out of infra restores on data incidents (SOP §6.3); the first one also hosts the
    /// simulated database clusters.
    pub database_namespaces: Vec<String>,
}

impl Default for SandboxConfig {
    fn default() -> SandboxConfig {
        SandboxConfig {
            speed: 1.0,
            state_file: None,
            database_namespaces: vec!["db".into()],
        }
    }
}

pub struct Sandbox {
    config: SandboxConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    created: AtomicUsize,
}

/// A plan plus what launching it would record.
struct Planned {
    plan: Plan,
    record: Record,
    gitops_after: Option<GitOps>,
    /// Why it must not be launched even though it can be shown (a PITR target outside the
    /// window: the engine explains that from the plan's window).
    blocked: Option<String>,
}

impl Sandbox {
    pub fn new(config: SandboxConfig, clock: Arc<dyn Clock>) -> Result<Sandbox, ClusterError> {
        if !(config.speed.is_finite() && config.speed > 0.0) {
            return Err(ClusterError::Invalid(format!(
                "sandbox speed must be a positive number (1 = realistic, 60 = a restore takes seconds), got {}",
                config.speed
            )));
        }
        let state = match &config.state_file {
            Some(path) => load(path)?,
            None => State::new(),
        };
        Ok(Sandbox {
            config,
            clock,
            state: Mutex::new(state),
            created: AtomicUsize::new(0),
        })
    }

    /// Realistic speed, nothing kept on disk.
    pub fn in_memory(clock: Arc<dyn Clock>) -> Sandbox {
        Sandbox {
            config: SandboxConfig::default(),
            clock,
            state: Mutex::new(State::new()),
            created: AtomicUsize::new(0),
        }
    }

    /// Objects this instance actually created (launches of an existing name do not count).
    pub fn created_objects(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }

    fn db_namespace(&self) -> &str {
        self.config
            .database_namespaces
            .first()
            .map(String::as_str)
            .unwrap_or("db")
    }

    /// Simulated milliseconds since `since`.
    fn sim_elapsed_ms(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
        (now - since).num_milliseconds().max(0) as f64 * self.config.speed
    }

    /// Wall-clock time of a simulated duration.
    fn real(&self, simulated_seconds: i64) -> Duration {
        Duration::milliseconds(
            (simulated_seconds as f64 * 1000.0 / self.config.speed).ceil() as i64,
        )
    }

    fn plan_in(
        &self,
        state: &State,
        spec: &OperationSpec,
        now: DateTime<Utc>,
    ) -> Result<Planned, ClusterError> {
        let record = Record {
            name: spec.object_name.clone(),
            kind: spec.kind,
            created_at: now,
            namespace: None,
            cluster: None,
            backup: None,
            replay_to: None,
            prior: None,
            put_back: None,
        };
        let mut planned = match spec.kind {
            OperationKind::Freeze => self.plan_freeze(state, spec, record),
            OperationKind::Unfreeze => self.plan_unfreeze(state, spec, record)?,
            OperationKind::InfraRestore => self.plan_infra(spec, now, record)?,
            OperationKind::RestoreLatest
            | OperationKind::Pitr
            | OperationKind::DrillLatest
            | OperationKind::DrillPitr => self.plan_database(spec, now, record)?,
        };
        if let Some(existing) = state.objects.get(&spec.object_name) {
            planned.plan.summary.push(format!(
                "{} already exists (created {}): confirming reports it and creates nothing",
                existing.name,
                fmt(existing.created_at)
            ));
        }
        Ok(planned)
    }

    fn plan_now(&self, spec: &OperationSpec) -> Result<Plan, ClusterError> {
        let now = self.clock.now();
        let state = self.lock();
        Ok(self.plan_in(&state, spec, now)?.plan)
    }

    fn launch_now(&self, spec: &OperationSpec) -> Result<Launched, ClusterError> {
        let now = self.clock.now();
        let _file = self.file_lock()?;
        let mut state = self.lock();
        if let Some(existing) = state.objects.get(&spec.object_name) {
            if existing.kind != spec.kind {
                return Err(ClusterError::Invalid(format!(
                    "{} already exists as a {} object, not a {}",
                    spec.object_name,
                    existing.kind.label(),
                    spec.kind.label()
                )));
            }
            return Ok(Launched {
                object: spec.object_name.clone(),
                already_existed: true,
            });
        }
        let planned = self.plan_in(&state, spec, now)?;
        if let Some(why) = planned.blocked {
            return Err(ClusterError::Invalid(why));
        }
        let mut next = state.clone();
        if let Some(gitops) = planned.gitops_after {
            next.gitops = gitops;
        }
        next.objects
            .insert(spec.object_name.clone(), planned.record);
        if let Some(path) = &self.config.state_file {
            save(path, &next)?;
        }
        *state = next;
        self.created.fetch_add(1, Ordering::SeqCst);
        Ok(Launched {
            object: spec.object_name.clone(),
            already_existed: false,
        })
    }

    fn observe_now(&self, spec: &OperationSpec) -> Result<Observation, ClusterError> {
        let now = self.clock.now();
        let record = self
            .lock()
            .objects
            .get(&spec.object_name)
            .cloned()
            .ok_or_else(|| {
                ClusterError::Invalid(format!(
                    "{} object {} was never created",
                    spec.kind.label(),
                    spec.object_name
                ))
            })?;
        Ok(self.observe_record(&record, now))
    }

    fn observe_record(&self, record: &Record, now: DateTime<Utc>) -> Observation {
        match record.kind {
            OperationKind::Freeze | OperationKind::Unfreeze => freeze::observe(record),
            OperationKind::InfraRestore => self.observe_velero(record, now),
            OperationKind::RestoreLatest
            | OperationKind::Pitr
            | OperationKind::DrillLatest
            | OperationKind::DrillPitr => self.observe_sgcluster(record, now),
        }
    }
}

impl Cluster for Sandbox {
    fn backend(&self) -> &'static str {
        "sandbox"
    }

    fn plan<'a>(&'a self, spec: &'a OperationSpec) -> BoxFuture<'a, Result<Plan, ClusterError>> {
        Box::pin(async move { self.plan_now(spec) })
    }

    fn launch<'a>(
        &'a self,
        spec: &'a OperationSpec,
    ) -> BoxFuture<'a, Result<Launched, ClusterError>> {
        Box::pin(async move { self.launch_now(spec) })
    }

    fn observe<'a>(
        &'a self,
        spec: &'a OperationSpec,
    ) -> BoxFuture<'a, Result<Observation, ClusterError>> {
        Box::pin(async move { self.observe_now(spec) })
    }

    fn backups(&self) -> BoxFuture<'_, Result<BackupsReport, ClusterError>> {
        Box::pin(async move { Ok(self.backups_now()) })
    }

    fn probe<'a>(
        &'a self,
        probe: &'a str,
        ctx: &'a ProbeContext,
    ) -> BoxFuture<'a, Result<ProbeResult, ClusterError>> {
        Box::pin(async move { self.probe_now(probe, ctx) })
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;

    #[tokio::test]
    async fn launching_twice_creates_one_object() {
        let (c, sb) = sandbox_on_clock(1.0);
        let s = latest("orders-i3-op4");
        let first = sb.launch(&s).await.expect("launch");
        assert_eq!(
            first,
            Launched {
                object: "orders-i3-op4".into(),
                already_existed: false
            }
        );
        c.advance(Duration::minutes(6));
        let second = sb.launch(&s).await.expect("launch again");
        assert!(second.already_existed);
        assert_eq!(sb.created_objects(), 1);
        // Progress still counts from the first launch.
        c.advance(Duration::minutes(6));
        let o = sb.observe(&s).await.expect("observe");
        assert_eq!(o.done, Some(Outcome::Succeeded));
        let plan = planned(&sb, &s).await;
        assert!(plan.summary.iter().any(|l| l.contains("already exists")));
        // Same name, other kind: not the same operation.
        let m = invalid(
            sb.launch(&spec(OperationKind::Freeze, "orders-i3-op4"))
                .await,
        );
        assert!(m.contains("already exists"), "{m}");
    }

    #[tokio::test]
    async fn never_launched_cannot_be_observed() {
        let (_, sb) = sandbox_on_clock(1.0);
        let m = invalid(sb.observe(&latest("orders-i3-op4")).await);
        assert!(m.contains("was never created"), "{m}");
    }
}
