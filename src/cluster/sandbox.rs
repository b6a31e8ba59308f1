//! The sandbox cluster: an in-process simulation of Velero, StackGres, Argo CD and Flux for
//! tabletop drills and first runs.
//!
//! The simulated world (backups, schedules, WAL archive) is a pure function of the injected
//! clock, so a drill replays identically for the same times. Only what drbot itself changes
//! (restores it created, freezes it applied) is state, optionally kept in a file: a real
//! cluster outlives drbot, and a restarted drbot must find its restores where it left them.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Days, Duration, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::manifests::{
    self, DatabaseRestore, FREEZE_DURATION, FluxKind, VELERO_RESTORE_POLICY, backup_copy_note,
    check_cluster_name, check_ended_before, describe_windows, fmt, newest_backup_before,
    restore_target, to_yaml,
};
use super::restore_scope::{DATABASES, RestoreScope};
use super::{
    BackupsReport, BoxFuture, Cluster, ClusterError, Launched, Observation, ProbeContext,
    ProbeResult,
};
use crate::clock::Clock;
use crate::incident::{OperationKind, OperationSpec, Outcome, Plan, RecoveryWindow};

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

const VELERO_NAMESPACE: &str = "velero";
const SCHEDULE: &str = "nightly";
const SCHEDULE_CRON: &str = "0 2 * * *";
const BSL: &str = "offsite";
const BUCKET: &str = "s3://dr-offsite";

/// Backups reach back at least this far, so the PITR window always spans a full week.
const COVERAGE_DAYS: i64 = 7;
const VELERO_BACKUP_HOUR: u32 = 2;
const VELERO_BACKUP_MINUTES: i64 = 7;
const BASE_BACKUP_HOUR: u32 = 3;
/// Archiving trails the primary by about one WAL switch.
const WAL_LAG_SECONDS: i64 = 60;

// Simulated durations at speed 1.
const VELERO_NEW_S: i64 = 15;
const VELERO_DONE_S: i64 = 8 * 60;
const RESTORE_ITEMS: u32 = 412;
const SG_PENDING_S: i64 = 30;
const SG_BASE_DONE_S: i64 = 8 * 60;
const SG_READY_S: i64 = 12 * 60;
const SG_FIRST_BACKUP_S: i64 = 5 * 60;
const VELERO_AFTER_RECOVERY_START_S: i64 = 2 * 60;
const VELERO_AFTER_RECOVERY_DONE_S: i64 = 10 * 60;

const ARGO_KEY: &str = "argocd_appproject/default";
const ARGO_NAMESPACE: &str = "argocd";
const ARGO_PROJECT: &str = "default";
const FLUX_KEY: &str = "flux_kustomization/flux-system/apps";
const FLUX_NAMESPACE: &str = "flux-system";
const FLUX_NAME: &str = "apps";

struct SourceCluster {
    name: &'static str,
    instances: u32,
    volume: &'static str,
    /// How long its nightly base backup runs.
    backup_minutes: i64,
}

const PG_VERSION: &str = "16";
const SOURCE_CLUSTERS: &[SourceCluster] = &[
    SourceCluster {
        name: "orders",
        instances: 2,
        volume: "20Gi",
        backup_minutes: 41,
    },
    SourceCluster {
        name: "payments",
        instances: 2,
        volume: "50Gi",
        backup_minutes: 23,
    },
];

/// What drbot changed in the sandbox: the only part of the world that is not derived from
/// the clock.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    #[serde(default = "state_version")]
    version: u32,
    #[serde(default)]
    objects: BTreeMap<String, Record>,
    #[serde(default)]
    gitops: GitOps,
}

fn state_version() -> u32 {
    1
}

/// The freeze targets as they stand now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct GitOps {
    #[serde(default)]
    argocd_sync_windows: Vec<Value>,
    #[serde(default)]
    flux_suspend: bool,
}

impl GitOps {
    fn snapshot(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            ARGO_KEY.into(),
            json!({ "syncWindows": self.argocd_sync_windows }),
        );
        m.insert(FLUX_KEY.into(), json!({ "suspend": self.flux_suspend }));
        Value::Object(m)
    }
}

/// The part of a recorded freeze state that an unfreeze puts back; a target absent from the
/// record is left as it is.
#[derive(Debug, Clone, Default)]
struct PutBack {
    sync_windows: Option<Vec<Value>>,
    suspend: Option<bool>,
}

impl PutBack {
    fn parse(prior: &Value) -> Result<PutBack, ClusterError> {
        let known = format!("known: {ARGO_KEY}, {FLUX_KEY}");
        let Some(map) = prior.as_object() else {
            return Err(ClusterError::Invalid(format!(
                "the recorded freeze state is not an object of targets ({known})"
            )));
        };
        let mut out = PutBack::default();
        for (key, value) in map {
            match key.as_str() {
                ARGO_KEY => {
                    let Some(windows) = value.get("syncWindows").and_then(Value::as_array) else {
                        return Err(ClusterError::Invalid(format!(
                            "the recorded state of {ARGO_KEY} has no syncWindows list"
                        )));
                    };
                    out.sync_windows = Some(windows.clone());
                }
                FLUX_KEY => {
                    let Some(suspend) = value.get("suspend").and_then(Value::as_bool) else {
                        return Err(ClusterError::Invalid(format!(
                            "the recorded state of {FLUX_KEY} has no boolean suspend"
                        )));
                    };
                    out.suspend = Some(suspend);
                }
                other => {
                    return Err(ClusterError::Invalid(format!(
                        "unknown freeze target {other} in the recorded state; {known}"
                    )));
                }
            }
        }
        if out.sync_windows.is_none() && out.suspend.is_none() {
            return Err(ClusterError::Invalid(format!(
                "the recorded freeze state names no target; {known}"
            )));
        }
        Ok(out)
    }

    fn applied_to(&self, current: &GitOps) -> GitOps {
        GitOps {
            argocd_sync_windows: self
                .sync_windows
                .clone()
                .unwrap_or_else(|| current.argocd_sync_windows.clone()),
            flux_suspend: self.suspend.unwrap_or(current.flux_suspend),
        }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(w) = &self.sync_windows {
            m.insert(ARGO_KEY.into(), json!({ "syncWindows": w }));
        }
        if let Some(s) = self.suspend {
            m.insert(FLUX_KEY.into(), json!({ "suspend": s }));
        }
        Value::Object(m)
    }
}

/// An object drbot created, with what observing it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    name: String,
    kind: OperationKind,
    created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    /// Source database cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup: Option<String>,
    /// Where WAL replay stops: the PITR target, or the archive's end at launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replay_to: Option<DateTime<Utc>>,
    /// Freeze: the targets' state before it, for the unfreeze.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prior: Option<Value>,
    /// Unfreeze: the state it put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    put_back: Option<Value>,
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

struct VeleroBackup {
    name: String,
    completed: bool,
    finished: DateTime<Utc>,
    warnings: u32,
    errors: u32,
}

struct BaseBackup {
    name: String,
    ended: DateTime<Utc>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

/// Finished daily runs, newest first, back to the first one that ended at least
/// [`COVERAGE_DAYS`] before `now`.
fn daily_runs(
    now: DateTime<Utc>,
    hour: u32,
    took: Duration,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let at = NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN);
    let horizon = now - Duration::days(COVERAGE_DAYS);
    let mut runs = Vec::new();
    let mut day = Some(now.date_naive());
    while let Some(d) = day {
        let start = d.and_time(at).and_utc();
        let end = start + took;
        if end <= now {
            runs.push((start, end));
            if end <= horizon {
                break;
            }
        }
        day = d.checked_sub_days(Days::new(1));
    }
    runs
}

/// Newest first; the oldest one only partly succeeded, so the preflight has something to
/// point out.
fn velero_backups(now: DateTime<Utc>) -> Vec<VeleroBackup> {
    let took = Duration::minutes(VELERO_BACKUP_MINUTES);
    let runs = daily_runs(now, VELERO_BACKUP_HOUR, took);
    let mut out: Vec<VeleroBackup> = runs
        .iter()
        .map(|&(start, end)| VeleroBackup {
            name: format!("{SCHEDULE}-{}", stamp(start)),
            completed: true,
            finished: end,
            warnings: 0,
            errors: 0,
        })
        .collect();
    if let Some(&(oldest, _)) = runs.last() {
        let start = oldest - Duration::days(1);
        out.push(VeleroBackup {
            name: format!("{SCHEDULE}-{}", stamp(start)),
            completed: false,
            finished: start + took + Duration::minutes(2),
            warnings: 3,
            errors: 1,
        });
    }
    out
}

fn base_backups(cluster: &SourceCluster, now: DateTime<Utc>) -> Vec<BaseBackup> {
    daily_runs(
        now,
        BASE_BACKUP_HOUR,
        Duration::minutes(cluster.backup_minutes),
    )
    .into_iter()
    .map(|(start, end)| BaseBackup {
        name: format!("{}-{}", cluster.name, stamp(start)),
        ended: end,
    })
    .collect()
}

fn wal_archived_until(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::seconds(WAL_LAG_SECONDS)
}

/// Oldest complete base backup's end … newest archived WAL.
fn recovery_window(cluster: &SourceCluster, now: DateTime<Utc>) -> Option<RecoveryWindow> {
    let oldest = base_backups(cluster, now).pop()?;
    Some(RecoveryWindow {
        start: oldest.ended,
        end: wal_archived_until(now),
    })
}

fn known_clusters() -> String {
    SOURCE_CLUSTERS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn source_cluster(name: Option<&str>) -> Result<&'static SourceCluster, ClusterError> {
    let Some(name) = name else {
        return Err(ClusterError::Invalid(format!(
            "no database cluster given; known: {}",
            known_clusters()
        )));
    };
    SOURCE_CLUSTERS
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            ClusterError::Invalid(format!(
                "unknown cluster {name}; known: {}",
                known_clusters()
            ))
        })
}

// ---- persistence -----------------------------------------------------------------------

fn load(path: &Path) -> Result<State, ClusterError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            ClusterError::Unavailable(format!(
                "sandbox state file {} is not valid: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
            version: state_version(),
            ..State::default()
        }),
        Err(e) => Err(ClusterError::Unavailable(format!(
            "cannot read sandbox state file {}: {e}",
            path.display()
        ))),
    }
}

/// Temp file + rename, so a crash leaves either the old state or the new one.
fn save(path: &Path, state: &State) -> Result<(), ClusterError> {
    let fail = |what: &str, e: std::io::Error| {
        ClusterError::Unavailable(format!(
            "cannot {what} sandbox state file {}: {e}",
            path.display()
        ))
    };
    let bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| ClusterError::Unavailable(format!("cannot encode sandbox state: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sandbox-state.json".into());
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        fail("replace", e)
    })
}

// ---- the sandbox -----------------------------------------------------------------------

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
            None => State {
                version: state_version(),
                ..State::default()
            },
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
            state: Mutex::new(State {
                version: state_version(),
                ..State::default()
            }),
            created: AtomicUsize::new(0),
        }
    }

    /// Objects this instance actually created (launches of an existing name do not count).
    pub fn created_objects(&self) -> usize {
        self.created.load(Ordering::SeqCst)
    }

    /// The simulated cluster as it stands. With a state file, the file is the cluster: it is
    /// read again each time, so several drbot replicas see one cluster, as they would a real
    /// one (an unreadable file leaves the last state read).
    fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = &self.config.state_file
            && let Ok(current) = load(path)
        {
            *state = current;
        }
        state
    }

    /// Held while a launch reads, changes and writes the state file, so two replicas
    /// launching at once cannot lose each other's object.
    fn file_lock(&self) -> Result<Option<fs::File>, ClusterError> {
        let Some(path) = &self.config.state_file else {
            return Ok(None);
        };
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let fail = |e: std::io::Error| {
            ClusterError::Unavailable(format!(
                "cannot lock sandbox state file {}: {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(fail)?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(fail)?;
        file.lock().map_err(fail)?;
        Ok(Some(file))
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

    fn plan_freeze(&self, state: &State, spec: &OperationSpec, mut record: Record) -> Planned {
        let current = &state.gitops;
        let reason = spec.reason.as_deref().unwrap_or("disaster recovery");
        let window = manifests::argocd_deny_window(
            FREEZE_DURATION,
            &format!("drbot freeze {}: {reason}", spec.object_name),
        );
        let mut windows = current.argocd_sync_windows.clone();
        windows.push(window);
        let after = GitOps {
            argocd_sync_windows: windows.clone(),
            flux_suspend: true,
        };
        let summary = vec![
            format!(
                "Argo CD AppProject {ARGO_NAMESPACE}/{ARGO_PROJECT}: add deny sync window '* * * * *' for {FREEZE_DURATION}, all applications, manual syncs too (now: {})",
                describe_windows(&current.argocd_sync_windows)
            ),
            format!(
                "Flux Kustomization {FLUX_NAMESPACE}/{FLUX_NAME}: spec.suspend true (now: {})",
                current.flux_suspend
            ),
            "the current state is recorded; unfreeze puts back exactly that".into(),
        ];
        let docs = [
            (
                "merge patch on the existing AppProject (the list replaces syncWindows)",
                manifests::argocd_sync_windows(ARGO_NAMESPACE, ARGO_PROJECT, &windows),
            ),
            (
                "merge patch on the existing Kustomization",
                manifests::flux_suspend(
                    FluxKind::Kustomization,
                    FLUX_NAMESPACE,
                    FLUX_NAME,
                    true,
                    None,
                ),
            ),
        ];
        record.prior = Some(current.snapshot());
        Planned {
            plan: Plan {
                summary,
                manifest: to_yaml(&docs),
                backup: None,
                window: None,
            },
            record,
            gitops_after: Some(after),
            blocked: None,
        }
    }

    fn plan_unfreeze(
        &self,
        state: &State,
        spec: &OperationSpec,
        mut record: Record,
    ) -> Result<Planned, ClusterError> {
        let Some(prior) = &spec.prior else {
            return Err(ClusterError::Invalid(
                "unfreeze needs the state recorded by the freeze, and none was given".into(),
            ));
        };
        let put_back = PutBack::parse(prior)?;
        let current = &state.gitops;
        let mut summary = Vec::new();
        let mut docs = Vec::new();
        match &put_back.sync_windows {
            Some(windows) => {
                summary.push(format!(
                    "Argo CD AppProject {ARGO_NAMESPACE}/{ARGO_PROJECT}: syncWindows back to {} (now: {})",
                    describe_windows(windows),
                    describe_windows(&current.argocd_sync_windows)
                ));
                docs.push((
                    "merge patch on the existing AppProject: the recorded syncWindows",
                    manifests::argocd_sync_windows(ARGO_NAMESPACE, ARGO_PROJECT, windows),
                ));
            }
            None => summary.push(format!(
                "Argo CD AppProject {ARGO_NAMESPACE}/{ARGO_PROJECT}: not in the recorded state, left as it is"
            )),
        }
        match put_back.suspend {
            Some(suspend) => {
                summary.push(format!(
                    "Flux Kustomization {FLUX_NAMESPACE}/{FLUX_NAME}: spec.suspend back to {suspend} (now: {})",
                    current.flux_suspend
                ));
                docs.push((
                    "merge patch on the existing Kustomization: the recorded suspend",
                    manifests::flux_suspend(
                        FluxKind::Kustomization,
                        FLUX_NAMESPACE,
                        FLUX_NAME,
                        suspend,
                        None,
                    ),
                ));
            }
            None => summary.push(format!(
                "Flux Kustomization {FLUX_NAMESPACE}/{FLUX_NAME}: not in the recorded state, left as it is"
            )),
        }
        let after = put_back.applied_to(current);
        if after == *current {
            summary.push("the targets already match the recorded state: nothing changes".into());
        }
        record.put_back = Some(put_back.to_json());
        Ok(Planned {
            plan: Plan {
                summary,
                manifest: to_yaml(&docs),
                backup: None,
                window: None,
            },
            record,
            gitops_after: Some(after),
            blocked: None,
        })
    }

    fn plan_infra(
        &self,
        spec: &OperationSpec,
        now: DateTime<Utc>,
        mut record: Record,
    ) -> Result<Planned, ClusterError> {
        let backups = velero_backups(now);
        let chosen = match &spec.backup {
            Some(name) => backups.iter().find(|b| &b.name == name).ok_or_else(|| {
                let known: Vec<&str> = backups.iter().map(|b| b.name.as_str()).collect();
                ClusterError::Invalid(format!(
                    "unknown Velero backup {name}; known (newest first): {}",
                    known.join(", ")
                ))
            })?,
            None => backups.iter().find(|b| b.completed).ok_or_else(|| {
                ClusterError::Invalid(format!(
                    "no Completed Velero backup in BSL {BSL} to restore from"
                ))
            })?,
        };
        let excluded: Vec<String> = if spec.exclude_database_namespaces {
            self.config.database_namespaces.clone()
        } else {
            Vec::new()
        };
        let mut summary = vec![format!(
            "Velero Restore {VELERO_NAMESPACE}/{} from backup {} ({} {})",
            spec.object_name,
            chosen.name,
            if chosen.completed {
                "Completed"
            } else {
                "PartiallyFailed"
            },
            fmt(chosen.finished)
        )];
        if !chosen.completed {
            summary.push(format!(
                "that backup is PartiallyFailed ({} warnings, {} error): some objects may be missing",
                chosen.warnings, chosen.errors
            ));
        }
        let scope = RestoreScope::resolve(&spec.include_namespaces, &excluded, Some(DATABASES))?;
        summary.extend(scope.summary());
        if spec.exclude_database_namespaces && excluded.is_empty() {
            summary.push("no database namespaces are configured, so none is excluded".into());
        }
        summary.push(VELERO_RESTORE_POLICY.into());
        let doc =
            manifests::velero_restore(&spec.object_name, VELERO_NAMESPACE, &chosen.name, &scope);
        record.namespace = Some(VELERO_NAMESPACE.into());
        record.backup = Some(chosen.name.clone());
        Ok(Planned {
            plan: Plan {
                summary,
                manifest: to_yaml(&[("", doc)]),
                backup: Some(chosen.name.clone()),
                window: None,
            },
            record,
            gitops_after: None,
            blocked: None,
        })
    }

    fn plan_database(
        &self,
        spec: &OperationSpec,
        now: DateTime<Utc>,
        mut record: Record,
    ) -> Result<Planned, ClusterError> {
        let source = source_cluster(spec.cluster.as_deref())?;
        check_cluster_name(&spec.object_name)?;
        let source_ns = self.db_namespace().to_string();
        let namespace = spec.namespace.clone().unwrap_or_else(|| source_ns.clone());
        manifests::check_not_in_place(&spec.object_name, &namespace, source.name, &source_ns)?;
        let pitr = matches!(spec.kind, OperationKind::Pitr | OperationKind::DrillPitr);
        let target = restore_target(pitr, spec.target)?;
        let backups = base_backups(source, now);
        let window = recovery_window(source, now);
        let archived = wal_archived_until(now);
        let window_text = window
            .map(|w| format!("window {} … {}", fmt(w.start), fmt(w.end)))
            .unwrap_or_else(|| "no recoverable window: no complete base backup".into());
        let chosen = match &spec.backup {
            Some(name) => {
                let b = backups.iter().find(|b| &b.name == name).ok_or_else(|| {
                    let known: Vec<&str> = backups.iter().map(|b| b.name.as_str()).collect();
                    ClusterError::Invalid(format!(
                        "unknown SGBackup {name} of {}; known (newest first): {}",
                        source.name,
                        known.join(", ")
                    ))
                })?;
                check_ended_before(name, Some(b.ended), target)?;
                Some(b)
            }
            None => newest_backup_before(&backups, target, |_| true, |b| Some(b.ended)),
        };
        let mut blocked = None;
        if let (Some(t), Some(w)) = (target, window)
            && !w.contains(t)
        {
            blocked = Some(format!(
                "the PITR target {} is outside the recoverable window of {} ({} … {})",
                fmt(t),
                source.name,
                fmt(w.start),
                fmt(w.end)
            ));
        }
        let Some(chosen) = chosen else {
            let why = match target {
                Some(t) => format!(
                    "no complete base backup of {} ended before {}",
                    source.name,
                    fmt(t)
                ),
                None => format!("no complete base backup of {}", source.name),
            };
            return Ok(Planned {
                plan: Plan {
                    summary: vec![why.clone(), window_text],
                    manifest: format!("# nothing to apply: {why}\n"),
                    backup: None,
                    window,
                },
                record,
                gitops_after: None,
                blocked: Some(blocked.unwrap_or(why)),
            });
        };
        let replay_to = target.unwrap_or(archived);
        let mut summary = vec![
            format!(
                "new SGCluster {namespace}/{} restored from {source_ns}/{} (the source is not touched)",
                spec.object_name, source.name
            ),
            format!("from backup {} (ended {})", chosen.name, fmt(chosen.ended)),
        ];
        match target {
            Some(t) => {
                summary.push(format!("recover to {}", fmt(t)));
                if t > archived {
                    summary.push(format!(
                        "the target is after the newest archived WAL ({})",
                        fmt(archived)
                    ));
                }
            }
            None => summary.push(format!("replay all archived WAL, up to {}", fmt(archived))),
        }
        summary.push(format!(
            "PostgreSQL {PG_VERSION}, {} instances, {}",
            source.instances, source.volume
        ));
        summary.push(window_text);
        summary.extend(backup_copy_note(&chosen.name, &namespace, &source_ns));
        let docs = manifests::sgcluster_restore(&DatabaseRestore {
            name: spec.object_name.clone(),
            namespace: namespace.clone(),
            source_namespace: source_ns.clone(),
            source_cluster: source.name.into(),
            backup: chosen.name.clone(),
            postgres_version: PG_VERSION.into(),
            instances: source.instances,
            volume_size: source.volume.into(),
            target,
        });
        record.namespace = Some(namespace);
        record.cluster = Some(source.name.into());
        record.backup = Some(chosen.name.clone());
        record.replay_to = Some(replay_to);
        Ok(Planned {
            plan: Plan {
                summary,
                manifest: to_yaml(&docs),
                backup: Some(chosen.name.clone()),
                window,
            },
            record,
            gitops_after: None,
            blocked,
        })
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
            OperationKind::Freeze => Observation {
                phase: "Applied".into(),
                percent: 100,
                detail: format!(
                    "AppProject {ARGO_NAMESPACE}/{ARGO_PROJECT} deny window added; Kustomization {FLUX_NAMESPACE}/{FLUX_NAME} suspended"
                ),
                done: Some(Outcome::Succeeded),
                result: record.prior.clone(),
            },
            OperationKind::Unfreeze => Observation {
                phase: "Applied".into(),
                percent: 100,
                detail: "recorded state put back".into(),
                done: Some(Outcome::Succeeded),
                result: record.put_back.clone(),
            },
            OperationKind::InfraRestore => self.observe_velero(record, now),
            OperationKind::RestoreLatest
            | OperationKind::Pitr
            | OperationKind::DrillLatest
            | OperationKind::DrillPitr => self.observe_sgcluster(record, now),
        }
    }

    fn observe_velero(&self, record: &Record, now: DateTime<Utc>) -> Observation {
        let ms = self.sim_elapsed_ms(record.created_at, now);
        let new_ms = (VELERO_NEW_S * 1000) as f64;
        let done_ms = (VELERO_DONE_S * 1000) as f64;
        if ms < new_ms {
            return Observation {
                phase: "New".into(),
                percent: 0,
                detail: "waiting for the Velero server to pick it up".into(),
                done: None,
                result: None,
            };
        }
        if ms < done_ms {
            let frac = (ms - new_ms) / (done_ms - new_ms);
            let items = (f64::from(RESTORE_ITEMS) * frac).floor() as u32;
            return Observation {
                phase: "InProgress".into(),
                percent: 1 + (frac * 98.0).floor() as u8,
                detail: format!("{items}/{RESTORE_ITEMS} items restored"),
                done: None,
                result: None,
            };
        }
        let completed_at = record.created_at + self.real(VELERO_DONE_S);
        Observation {
            phase: "Completed".into(),
            percent: 100,
            detail: format!("{RESTORE_ITEMS}/{RESTORE_ITEMS} items restored, 0 warnings, 0 errors"),
            done: Some(Outcome::Succeeded),
            result: Some(json!({
                "backupName": record.backup,
                "itemsRestored": RESTORE_ITEMS,
                "totalItems": RESTORE_ITEMS,
                "warnings": 0,
                "errors": 0,
                "completionTimestamp": fmt(completed_at),
            })),
        }
    }

    fn observe_sgcluster(&self, record: &Record, now: DateTime<Utc>) -> Observation {
        let ms = self.sim_elapsed_ms(record.created_at, now);
        let pending_ms = (SG_PENDING_S * 1000) as f64;
        let base_ms = (SG_BASE_DONE_S * 1000) as f64;
        let ready_ms = (SG_READY_S * 1000) as f64;
        let backup = record.backup.as_deref().unwrap_or("?");
        let replay_to = record
            .replay_to
            .map(fmt)
            .unwrap_or_else(|| "the end of the archive".into());
        if ms < pending_ms {
            return Observation {
                phase: "Pending".into(),
                percent: 0,
                detail: "waiting for the StackGres operator to create the pods".into(),
                done: None,
                result: None,
            };
        }
        if ms < base_ms {
            let frac = (ms - pending_ms) / (base_ms - pending_ms);
            return Observation {
                phase: "Restoring".into(),
                percent: 1 + (frac * 69.0).floor() as u8,
                detail: format!(
                    "restoring base backup {backup} {}%",
                    (frac * 100.0).floor() as u8
                ),
                done: None,
                result: None,
            };
        }
        if ms < ready_ms {
            let frac = (ms - base_ms) / (ready_ms - base_ms);
            return Observation {
                phase: "Restoring".into(),
                percent: 70 + (frac * 29.0).floor() as u8,
                detail: format!("replaying WAL to {replay_to}"),
                done: None,
                result: None,
            };
        }
        let namespace = record.namespace.as_deref().unwrap_or("db");
        let instances = record
            .cluster
            .as_deref()
            .and_then(|c| SOURCE_CLUSTERS.iter().find(|s| s.name == c))
            .map_or(1, |s| s.instances);
        let primary = format!("{}-0", record.name);
        Observation {
            phase: "Bootstrapped".into(),
            percent: 100,
            detail: format!("primary {primary} Ready"),
            done: Some(Outcome::Succeeded),
            result: Some(json!({
                "primary": primary,
                "endpoint": format!("{}.{namespace}.svc:5432", record.name),
                "instances": instances,
                "fromBackup": record.backup,
                "recoveredTo": record.replay_to.map(fmt),
                "readyAt": fmt(record.created_at + self.real(SG_READY_S)),
            })),
        }
    }

    fn backups_now(&self) -> BackupsReport {
        let now = self.clock.now();
        let velero = velero_backups(now);
        let mut lines = vec![format!(
            "offsite bucket {BUCKET} reachable, versioning Enabled"
        )];
        let completed = velero.iter().filter(|b| b.completed).count();
        match velero.iter().find(|b| b.completed) {
            Some(newest) => lines.push(format!(
                "Velero: {} backups ({completed} Completed), newest Completed {} at {}",
                velero.len(),
                newest.name,
                fmt(newest.finished)
            )),
            None => lines.push("Velero: no Completed backup".into()),
        }
        for b in velero.iter().filter(|b| !b.completed) {
            lines.push(format!(
                "Velero: {} PartiallyFailed ({} warnings, {} error)",
                b.name, b.warnings, b.errors
            ));
        }
        lines.push(format!(
            "Velero BSL {BSL}: Available; schedule {SCHEDULE} ({SCHEDULE_CRON}) not paused"
        ));
        let ns = self.db_namespace();
        for cluster in SOURCE_CLUSTERS {
            let backups = base_backups(cluster, now);
            if let (Some(newest), Some(oldest)) = (backups.first(), backups.last()) {
                lines.push(format!(
                    "{ns}/{}: {} base backups, newest {} (ended {})",
                    cluster.name,
                    backups.len(),
                    newest.name,
                    fmt(newest.ended)
                ));
                lines.push(format!(
                    "{ns}/{}: oldest base backup {} (ended {})",
                    cluster.name,
                    oldest.name,
                    fmt(oldest.ended)
                ));
            }
            lines.push(format!(
                "{ns}/{}: WAL archived up to {}",
                cluster.name,
                fmt(wal_archived_until(now))
            ));
            if let Some(w) = recovery_window(cluster, now) {
                lines.push(format!(
                    "{ns}/{}: PITR window {} … {}",
                    cluster.name,
                    fmt(w.start),
                    fmt(w.end)
                ));
            }
        }
        BackupsReport { ok: true, lines }
    }

    fn probe_now(&self, probe: &str, ctx: &ProbeContext) -> Result<ProbeResult, ClusterError> {
        let now = self.clock.now();
        let pass = |evidence: String| ProbeResult {
            passed: true,
            evidence,
        };
        let fail = |evidence: String| ProbeResult {
            passed: false,
            evidence,
        };
        let velero = velero_backups(now);
        let newest_velero = velero.iter().find(|b| b.completed);
        Ok(match probe {
            "nodes_ready" => pass(
                "3/3 nodes Ready: sandbox-node-1, sandbox-node-2, sandbox-node-3".into(),
            ),
            "control_plane" => pass(
                "API server /readyz ok; kube-apiserver, etcd, kube-scheduler, kube-controller-manager Running, 0 restarts in the last hour".into(),
            ),
            "core_namespaces" => pass(
                "kube-system 14/14, monitoring 9/9, ingress-nginx 3/3 pods Ready".into(),
            ),
            "offsite_reachable" => pass(format!(
                "{BUCKET} reachable: listed backups/ ({} Velero backups) and sgbackups.stackgres.io/ ({} clusters)",
                velero.len(),
                SOURCE_CLUSTERS.len()
            )),
            "offsite_versioning" => pass(format!("{BUCKET} versioning Enabled")),
            "sample_backup_readable" => {
                let bases: Vec<String> = SOURCE_CLUSTERS
                    .iter()
                    .filter_map(|c| base_backups(c, now).into_iter().next())
                    .map(|b| b.name)
                    .collect();
                match newest_velero {
                    Some(v) => pass(format!(
                        "read backups/{0}/velero-backup.json (phase Completed) and the metadata.json of SGBackups {1}",
                        v.name,
                        bases.join(", ")
                    )),
                    None => fail("no Completed Velero backup to read".into()),
                }
            }
            "velero_schedule_active" => match newest_velero {
                Some(v) => pass(format!(
                    "schedule {SCHEDULE} ({SCHEDULE_CRON}) Enabled, not paused; last backup {} Completed at {}",
                    v.name,
                    fmt(v.finished)
                )),
                None => fail(format!(
                    "schedule {SCHEDULE} Enabled but no Completed backup yet"
                )),
            },
            "velero_backup_after_recovery" => self.probe_velero_after(ctx, now, &velero),
            "database_writable" => self.probe_writable(ctx, now),
            "database_backups_resumed" => self.probe_backups_resumed(ctx, now),
            other => {
                return Err(ClusterError::Invalid(format!(
                    "unknown probe {other}; known: {}",
                    super::PROBES.join(", ")
                )));
            }
        })
    }

    /// Database clusters among the incident's restored objects, with where each stands.
    fn restored_clusters(
        &self,
        ctx: &ProbeContext,
        now: DateTime<Utc>,
    ) -> Vec<(Record, Observation)> {
        let state = self.lock();
        ctx.restored_objects
            .iter()
            .filter_map(|name| state.objects.get(name))
            .filter(|r| r.kind.restores_database())
            .map(|r| (r.clone(), self.observe_record(r, now)))
            .collect()
    }

    fn no_restored_cluster(ctx: &ProbeContext) -> ProbeResult {
        ProbeResult {
            passed: false,
            evidence: if ctx.restored_objects.is_empty() {
                "no restored objects in this incident: restore a database cluster first".into()
            } else {
                format!(
                    "none of the restored objects ({}) is a database cluster",
                    ctx.restored_objects.join(", ")
                )
            },
        }
    }

    fn probe_writable(&self, ctx: &ProbeContext, now: DateTime<Utc>) -> ProbeResult {
        let clusters = self.restored_clusters(ctx, now);
        if clusters.is_empty() {
            return Sandbox::no_restored_cluster(ctx);
        }
        let ready: Vec<String> = clusters
            .iter()
            .filter(|(_, o)| o.done == Some(Outcome::Succeeded))
            .map(|(r, _)| format!("pg_is_in_recovery() = false on {}", r.name))
            .collect();
        if !ready.is_empty() {
            return ProbeResult {
                passed: true,
                evidence: ready.join("; "),
            };
        }
        let waiting: Vec<String> = clusters
            .iter()
            .map(|(r, o)| format!("{} is {} ({}%)", r.name, o.phase, o.percent))
            .collect();
        ProbeResult {
            passed: false,
            evidence: format!("not accepting writes yet: {}", waiting.join("; ")),
        }
    }

    fn probe_backups_resumed(&self, ctx: &ProbeContext, now: DateTime<Utc>) -> ProbeResult {
        let clusters = self.restored_clusters(ctx, now);
        if clusters.is_empty() {
            return Sandbox::no_restored_cluster(ctx);
        }
        let mut missing = Vec::new();
        for (r, o) in &clusters {
            let ready_at = r.created_at + self.real(SG_READY_S);
            let backup_at = r.created_at + self.real(SG_READY_S + SG_FIRST_BACKUP_S);
            if o.done != Some(Outcome::Succeeded) {
                missing.push(format!(
                    "{} is still {} ({}%), so nothing is archived from it yet",
                    r.name, o.phase, o.percent
                ));
                continue;
            }
            let ms = self.sim_elapsed_ms(r.created_at, now);
            if ms >= ((SG_READY_S + SG_FIRST_BACKUP_S) * 1000) as f64 {
                return ProbeResult {
                    passed: true,
                    evidence: format!(
                        "SGBackup {}-{} completed at {}; WAL archiving active on {}",
                        r.name,
                        stamp(ready_at),
                        fmt(backup_at),
                        r.name
                    ),
                };
            }
            missing.push(format!(
                "{} Bootstrapped at {} but no SGBackup of it has completed yet (first one expected around {})",
                r.name,
                fmt(ready_at),
                fmt(backup_at)
            ));
        }
        ProbeResult {
            passed: false,
            evidence: missing.join("; "),
        }
    }

    fn probe_velero_after(
        &self,
        ctx: &ProbeContext,
        now: DateTime<Utc>,
        velero: &[VeleroBackup],
    ) -> ProbeResult {
        let Some(recovered) = ctx.recovered_at else {
            return ProbeResult {
                passed: false,
                evidence: "no recovery recorded yet: a Velero backup must complete after the restores finish".into(),
            };
        };
        // A backup that started before the recovery finished does not hold the recovered
        // state, so only ones started afterwards count; nightly runs first, then the one the
        // team triggers after recovery (`velero backup create --from-schedule nightly`).
        let nightly_start =
            |b: &VeleroBackup| b.finished - Duration::minutes(VELERO_BACKUP_MINUTES);
        let nightly = velero
            .iter()
            .filter(|b| b.completed && nightly_start(b) > recovered)
            .min_by_key(|b| b.finished)
            .map(|b| (b.name.clone(), b.finished));
        let manual_start = recovered + self.real(VELERO_AFTER_RECOVERY_START_S);
        let manual_done = recovered + self.real(VELERO_AFTER_RECOVERY_DONE_S);
        let manual = (now >= manual_done)
            .then(|| (format!("{SCHEDULE}-{}", stamp(manual_start)), manual_done));
        let found = [nightly, manual]
            .into_iter()
            .flatten()
            .min_by_key(|(_, at)| *at);
        match found {
            Some((name, at)) => ProbeResult {
                passed: true,
                evidence: format!(
                    "Velero backup {name} Completed at {}, after the recovery at {}",
                    fmt(at),
                    fmt(recovered)
                ),
            },
            None => ProbeResult {
                passed: false,
                evidence: format!(
                    "no Velero backup has completed since the recovery at {}; the next is expected around {}",
                    fmt(recovered),
                    fmt(manual_done)
                ),
            },
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
    use super::*;
    use crate::clock::ManualClock;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid test time")
            .with_timezone(&Utc)
    }

    fn clock() -> ManualClock {
        ManualClock::new(t("2026-02-08T10:00:00Z"))
    }

    fn sandbox(clock: &ManualClock, speed: f64) -> Sandbox {
        let config = SandboxConfig {
            speed,
            ..SandboxConfig::default()
        };
        Sandbox::new(config, Arc::new(clock.clone())).expect("sandbox")
    }

    fn spec(kind: OperationKind, name: &str) -> OperationSpec {
        OperationSpec::new("op1", kind, name)
    }

    fn pitr(cluster: &str, target: &str) -> OperationSpec {
        let mut s = spec(OperationKind::Pitr, "orders-i3-op4");
        s.cluster = Some(cluster.into());
        s.target = Some(t(target));
        s
    }

    fn latest(name: &str) -> OperationSpec {
        let mut s = spec(OperationKind::RestoreLatest, name);
        s.cluster = Some("orders".into());
        s
    }

    fn invalid(r: Result<impl std::fmt::Debug, ClusterError>) -> String {
        match r {
            Err(ClusterError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn pitr_plan_picks_newest_backup_that_ended_before_the_target() {
        let c = clock();
        let sb = sandbox(&c, 1.0);
        let plan = sb
            .plan(&pitr("orders", "2026-02-08T09:55:00Z"))
            .await
            .expect("plan");
        assert_eq!(plan.backup.as_deref(), Some("orders-20260208030000"));
        assert!(
            plan.manifest
                .contains("restoreToTimestamp: \"2026-02-08T09:55:00Z\""),
            "{}",
            plan.manifest
        );
        assert!(plan.manifest.contains("name: orders-20260208030000"));
        assert!(plan.manifest.contains("kind: SGCluster"));
        assert!(plan.manifest.contains("version: \"16\""));
        assert!(plan.manifest.contains("size: \"20Gi\""));
        assert!(
            plan.summary
                .contains(&"from backup orders-20260208030000 (ended 2026-02-08T03:41:00Z)".into()),
            "{:?}",
            plan.summary
        );
        assert!(
            plan.summary
                .contains(&"PostgreSQL 16, 2 instances, 20Gi".into())
        );

        // Today's backup was still running at 03:30, and recovery cannot stop inside one.
        let plan = sb
            .plan(&pitr("orders", "2026-02-08T03:30:00Z"))
            .await
            .expect("plan");
        assert_eq!(plan.backup.as_deref(), Some("orders-20260207030000"));
        let plan = sb
            .plan(&pitr("orders", "2026-02-08T03:41:00Z"))
            .await
            .expect("plan");
        assert_eq!(plan.backup.as_deref(), Some("orders-20260207030000"));
        assert_eq!(sb.created_objects(), 0);
    }

    #[tokio::test]
    async fn unknown_cluster_names_the_known_ones() {
        let c = clock();
        let sb = sandbox(&c, 1.0);
        let m = invalid(sb.plan(&pitr("inventory", "2026-02-08T09:55:00Z")).await);
        assert_eq!(m, "unknown cluster inventory; known: orders, payments");
        let m = invalid(sb.launch(&pitr("inventory", "2026-02-08T09:55:00Z")).await);
        assert!(m.contains("orders, payments"), "{m}");
        let mut no_cluster = latest("x-i1-op1");
        no_cluster.cluster = None;
        let m = invalid(sb.plan(&no_cluster).await);
        assert!(m.contains("orders, payments"), "{m}");
        assert_eq!(sb.created_objects(), 0);
    }

    #[tokio::test]
    async fn window_runs_from_oldest_backup_end_to_a_minute_ago() {
        let c = clock();
        let sb = sandbox(&c, 1.0);
        let plan = sb
            .plan(&pitr("orders", "2026-02-08T09:55:00Z"))
            .await
            .expect("plan");
        let w = plan.window.expect("window");
        assert_eq!(w.start, t("2026-02-01T03:41:00Z"));
        assert_eq!(w.end, t("2026-02-08T09:59:00Z"));
        assert!(
            plan.summary
                .contains(&"window 2026-02-01T03:41:00Z … 2026-02-08T09:59:00Z".into())
        );
        let payments = sb
            .plan(&pitr("payments", "2026-02-08T09:55:00Z"))
            .await
            .expect("plan");
        assert_eq!(
            payments.window.expect("window").start,
            t("2026-02-01T03:23:00Z")
        );
        // Before today's backup has finished, the oldest one is a day older.
        c.set(t("2026-02-08T03:00:00Z"));
        let early = sb.plan(&latest("orders-i1-op1")).await.expect("plan");
        assert_eq!(early.backup.as_deref(), Some("orders-20260207030000"));
        assert_eq!(
            early.window.expect("window").start,
            t("2026-01-31T03:41:00Z")
        );
    }

    #[tokio::test]
    async fn pitr_outside_the_window_is_planned_but_not_launched() {
        let c = clock();
        let sb = sandbox(&c, 1.0);
        let before = pitr("orders", "2026-01-20T00:00:00Z");
        let plan = sb.plan(&before).await.expect("plan shows the window");
        assert_eq!(plan.backup, None);
        assert!(plan.window.is_some());
        let m = invalid(sb.launch(&before).await);
        assert!(m.contains("outside the recoverable window"), "{m}");
        let after = pitr("orders", "2026-02-08T09:59:30Z");
        let m = invalid(sb.launch(&after).await);
        assert!(m.contains("2026-02-08T09:59:00Z"), "{m}");
        assert_eq!(sb.created_objects(), 0);
    }

    #[tokio::test]
    async fn launching_twice_creates_one_object() {
        let c = clock();
        let sb = sandbox(&c, 1.0);
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
        let plan = sb.plan(&s).await.expect("plan");
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
        let c = clock();
        let sb = sandbox(&c, 1.0);
        let m = invalid(sb.observe(&latest("orders-i3-op4")).await);
        assert!(m.contains("was never created"), "{m}");
    }

    /// Observes every 10 s until done; returns when it finished, checking that percent never
    /// goes down and is 100 only when done.
    async fn run_to_completion(sb: &Sandbox, c: &ManualClock, s: &OperationSpec) -> Duration {
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

    #[tokio::test]
    async fn database_restore_progresses_and_finishes_on_time() {
        let c = clock();
        let sb = sandbox(&c, 1.0);
        let s = pitr("orders", "2026-02-08T09:55:00Z");
        sb.launch(&s).await.expect("launch");
        assert_eq!(sb.observe(&s).await.expect("observe").phase, "Pending");
        c.advance(Duration::minutes(4));
        let mid = sb.observe(&s).await.expect("observe");
        assert_eq!(mid.phase, "Restoring");
        assert!(mid.detail.starts_with("restoring base backup"), "{mid:?}");
        c.advance(Duration::minutes(6));
        let replay = sb.observe(&s).await.expect("observe");
        assert_eq!(replay.detail, "replaying WAL to 2026-02-08T09:55:00Z");
        c.set(t("2026-02-08T10:11:59Z"));
        assert_eq!(sb.observe(&s).await.expect("observe").done, None);
        c.set(t("2026-02-08T10:12:00Z"));
        let done = sb.observe(&s).await.expect("observe");
        assert_eq!(done.phase, "Bootstrapped");
        assert_eq!(done.detail, "primary orders-i3-op4-0 Ready");
        assert_eq!(done.done, Some(Outcome::Succeeded));

        c.set(t("2026-02-08T10:00:00Z"));
        let fresh = sandbox(&c, 1.0);
        let s2 = latest("orders-i3-op5");
        fresh.launch(&s2).await.expect("launch");
        assert_eq!(
            run_to_completion(&fresh, &c, &s2).await,
            Duration::minutes(12)
        );
    }

    #[tokio::test]
    async fn faster_speed_finishes_in_seconds() {
        let c = clock();
        let sb = sandbox(&c, 60.0);
        let s = latest("orders-i3-op4");
        sb.launch(&s).await.expect("launch");
        assert_eq!(run_to_completion(&sb, &c, &s).await, Duration::seconds(20));
        c.set(t("2026-02-08T10:00:00Z"));
        let s = latest("orders-i3-op6");
        let sb = sandbox(&c, 60.0);
        sb.launch(&s).await.expect("launch");
        c.advance(Duration::milliseconds(11_999));
        assert_eq!(sb.observe(&s).await.expect("observe").done, None);
        c.advance(Duration::milliseconds(1));
        assert_eq!(
            sb.observe(&s).await.expect("observe").done,
            Some(Outcome::Succeeded)
        );
    }

    #[tokio::test]
    async fn velero_restore_progresses_and_finishes_on_time() {
        let c = clock();
        let sb = sandbox(&c, 1.0);
        let s = spec(OperationKind::InfraRestore, "drbot-inc1-op2-infra");
        sb.launch(&s).await.expect("launch");
        assert_eq!(sb.observe(&s).await.expect("observe").phase, "New");
        c.advance(Duration::minutes(4));
        let mid = sb.observe(&s).await.expect("observe");
        assert_eq!(mid.phase, "InProgress");
        assert!(mid.detail.ends_with("/412 items restored"), "{mid:?}");
        c.set(t("2026-02-08T10:00:00Z"));
        let fresh = sandbox(&c, 1.0);
        fresh.launch(&s).await.expect("launch");
        assert_eq!(
            run_to_completion(&fresh, &c, &s).await,
            Duration::minutes(8)
        );
        let o = fresh.observe(&s).await.expect("observe");
        assert_eq!(o.phase, "Completed");
        assert_eq!(o.result.expect("result")["itemsRestored"], 412);
    }

    #[tokio::test]
    async fn infra_restore_excludes_database_namespaces_when_asked() {
        let c = clock();
        let sb = sandbox(&c, 1.0);
        let mut s = spec(OperationKind::InfraRestore, "drbot-inc1-op2-infra");
        let plan = sb.plan(&s).await.expect("plan");
        assert_eq!(plan.backup.as_deref(), Some("nightly-20260208020000"));
        assert!(plan.manifest.contains("backupName: nightly-20260208020000"));
        assert!(plan.manifest.contains("namespace: velero"));
        assert!(!plan.manifest.contains("excludedNamespaces"));
        assert!(!plan.manifest.contains("includedNamespaces"));

        s.exclude_database_namespaces = true;
        s.include_namespaces = vec!["shop".into(), "web".into()];
        let plan = sb.plan(&s).await.expect("plan");
        assert!(
            plan.manifest.contains("excludedNamespaces:\n  - db\n"),
            "{}",
            plan.manifest
        );
        assert!(
            plan.manifest
                .contains("includedNamespaces:\n  - shop\n  - web\n")
        );
        assert!(plan.summary.iter().any(|l| l.contains("except db")));

        s.backup = Some("nightly-20260131020000".into());
        let plan = sb
            .plan(&s)
            .await
            .expect("a PartiallyFailed backup is allowed");
        assert!(plan.summary.iter().any(|l| l.contains("PartiallyFailed")));
        s.backup = Some("nightly-2020".into());
        let m = invalid(sb.plan(&s).await);
        assert!(m.contains("unknown Velero backup nightly-2020"), "{m}");
        assert!(m.contains("nightly-20260208020000"), "{m}");
    }

    #[tokio::test]
    async fn drill_restores_into_its_namespace_with_a_backup_copy() {
        let c = clock();
        let sb = sandbox(&c, 1.0);
        let mut s = spec(OperationKind::DrillLatest, "orders-i2-op1");
        s.cluster = Some("orders".into());
        s.namespace = Some("dr-drill".into());
        let plan = sb.plan(&s).await.expect("plan");
        assert!(plan.manifest.contains("kind: SGBackup"));
        assert!(plan.manifest.contains("sgCluster: db.orders"));
        assert!(plan.manifest.contains("namespace: dr-drill"));
        assert!(!plan.manifest.contains("pointInTimeRecovery"));
    }

    #[tokio::test]
    async fn freeze_records_prior_state_and_unfreeze_puts_it_back() {
        let c = clock();
        let sb = sandbox(&c, 1.0);
        let mut freeze = spec(OperationKind::Freeze, "drbot-inc1-op1-freeze");
        freeze.reason = Some("INC-1 orders outage".into());
        let plan = sb.plan(&freeze).await.expect("plan");
        assert!(plan.manifest.contains("kind: deny"), "{}", plan.manifest);
        assert!(plan.manifest.contains("schedule: \"* * * * *\""));
        assert!(plan.manifest.contains("duration: \"24h\""));
        assert!(plan.manifest.contains("suspend: true"));
        sb.launch(&freeze).await.expect("launch");
        let o = sb.observe(&freeze).await.expect("observe");
        assert_eq!(o.phase, "Applied");
        assert_eq!(o.done, Some(Outcome::Succeeded));
        let prior = o.result.expect("prior state");
        assert_eq!(
            prior,
            json!({
                "argocd_appproject/default": {"syncWindows": []},
                "flux_kustomization/flux-system/apps": {"suspend": false},
            })
        );

        // A second freeze now sees the first one's state.
        let again = sb
            .plan(&spec(OperationKind::Freeze, "drbot-inc9-op1-freeze"))
            .await
            .expect("plan");
        assert!(
            again.summary[0].contains("now: 1 sync window: deny"),
            "{:?}",
            again.summary
        );

        let mut unfreeze = spec(OperationKind::Unfreeze, "drbot-inc1-op2-unfreeze");
        let m = invalid(sb.plan(&unfreeze).await);
        assert!(m.contains("recorded by the freeze"), "{m}");
        unfreeze.prior = Some(prior.clone());
        let plan = sb.plan(&unfreeze).await.expect("plan");
        assert!(
            plan.manifest.contains("syncWindows: []"),
            "{}",
            plan.manifest
        );
        assert!(plan.manifest.contains("suspend: false"));
        sb.launch(&unfreeze).await.expect("launch");
        let o = sb.observe(&unfreeze).await.expect("observe");
        assert_eq!(o.result, Some(prior.clone()));
        sb.launch(&spec(OperationKind::Freeze, "drbot-inc2-op1-freeze"))
            .await
            .expect("launch");
        let o = sb
            .observe(&spec(OperationKind::Freeze, "drbot-inc2-op1-freeze"))
            .await
            .expect("observe");
        assert_eq!(
            o.result,
            Some(prior),
            "the unfreeze put back exactly the prior state"
        );

        unfreeze.object_name = "x".into();
        unfreeze.prior = Some(json!({"argocd_appproject/other": {"syncWindows": []}}));
        let m = invalid(sb.plan(&unfreeze).await);
        assert!(m.contains("known: argocd_appproject/default"), "{m}");
    }

    #[tokio::test]
    async fn state_file_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("sandbox.json");
        let c = clock();
        let config = SandboxConfig {
            state_file: Some(path.clone()),
            ..SandboxConfig::default()
        };
        let first = Sandbox::new(config.clone(), Arc::new(c.clone())).expect("sandbox");
        let s = latest("orders-i3-op4");
        first.launch(&s).await.expect("launch");
        first
            .launch(&spec(OperationKind::Freeze, "drbot-inc3-op1-freeze"))
            .await
            .expect("launch");
        drop(first);

        c.advance(Duration::minutes(10));
        let second = Sandbox::new(config, Arc::new(c.clone())).expect("sandbox");
        let again = second.launch(&s).await.expect("launch");
        assert!(again.already_existed);
        assert_eq!(second.created_objects(), 0);
        assert_eq!(
            second.lock().objects["orders-i3-op4"].created_at,
            t("2026-02-08T10:00:00Z")
        );
        c.advance(Duration::minutes(2));
        assert_eq!(
            second.observe(&s).await.expect("observe").done,
            Some(Outcome::Succeeded)
        );
        assert!(
            second.lock().gitops.flux_suspend,
            "the freeze is still applied"
        );
        // No temporary file left behind; the lock file that replicas share stays.
        let mut leftovers: Vec<_> = fs::read_dir(path.parent().expect("dir"))
            .expect("read dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        leftovers.sort();
        assert_eq!(
            leftovers,
            vec![
                std::ffi::OsString::from("sandbox.json"),
                std::ffi::OsString::from("sandbox.json.lock")
            ]
        );
    }

    #[tokio::test]
    async fn a_corrupt_state_file_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sandbox.json");
        fs::write(&path, "not json").expect("write");
        let config = SandboxConfig {
            state_file: Some(path),
            ..SandboxConfig::default()
        };
        let r = Sandbox::new(config, Arc::new(clock()));
        assert!(matches!(r, Err(ClusterError::Unavailable(m)) if m.contains("not valid")));
        let bad = SandboxConfig {
            speed: 0.0,
            ..SandboxConfig::default()
        };
        assert!(matches!(
            Sandbox::new(bad, Arc::new(clock())),
            Err(ClusterError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn backups_report_is_short_and_complete() {
        let c = clock();
        let sb = sandbox(&c, 1.0);
        let r = sb.backups().await.expect("backups");
        assert!(r.ok);
        let all = r.lines.join("\n");
        for expected in [
            "versioning Enabled",
            "newest Completed nightly-20260208020000 at 2026-02-08T02:07:00Z",
            "PartiallyFailed",
            "BSL offsite: Available",
            "db/orders: 8 base backups, newest orders-20260208030000 (ended 2026-02-08T03:41:00Z)",
            "db/orders: oldest base backup orders-20260201030000 (ended 2026-02-01T03:41:00Z)",
            "db/orders: WAL archived up to 2026-02-08T09:59:00Z",
            "db/payments: PITR window 2026-02-01T03:23:00Z … 2026-02-08T09:59:00Z",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
        assert!(r.lines.iter().all(|l| l.chars().count() <= 120), "{all}");
    }

    #[tokio::test]
    async fn probes_follow_the_restore() {
        let c = clock();
        let sb = sandbox(&c, 1.0);
        for name in [
            "nodes_ready",
            "control_plane",
            "core_namespaces",
            "offsite_reachable",
            "offsite_versioning",
            "sample_backup_readable",
            "velero_schedule_active",
        ] {
            let r = sb.probe(name, &ProbeContext::default()).await.expect(name);
            assert!(r.passed, "{name}: {}", r.evidence);
        }
        let r = sb
            .probe("nodes_ready", &ProbeContext::default())
            .await
            .expect("probe");
        assert!(r.evidence.starts_with("3/3 nodes Ready: sandbox-node-1"));
        let m = invalid(sb.probe("disk_full", &ProbeContext::default()).await);
        assert!(m.contains("velero_backup_after_recovery"), "{m}");

        let none = ProbeContext::default();
        let r = sb.probe("database_writable", &none).await.expect("probe");
        assert!(!r.passed);
        let r = sb
            .probe("database_backups_resumed", &none)
            .await
            .expect("probe");
        assert!(!r.passed);
        assert!(
            r.evidence.contains("restore a database cluster"),
            "{}",
            r.evidence
        );

        let s = latest("orders-i3-op4");
        sb.launch(&s).await.expect("launch");
        let infra = spec(OperationKind::InfraRestore, "drbot-inc3-op2-infra");
        sb.launch(&infra).await.expect("launch");
        let ctx = ProbeContext {
            recovered_at: None,
            restored_objects: vec![infra.object_name.clone(), s.object_name.clone()],
        };
        c.advance(Duration::minutes(5));
        let r = sb.probe("database_writable", &ctx).await.expect("probe");
        assert!(!r.passed);
        assert!(
            r.evidence.contains("orders-i3-op4 is Restoring"),
            "{}",
            r.evidence
        );

        c.advance(Duration::minutes(7));
        let r = sb.probe("database_writable", &ctx).await.expect("probe");
        assert!(r.passed, "{}", r.evidence);
        assert_eq!(r.evidence, "pg_is_in_recovery() = false on orders-i3-op4");
        let r = sb
            .probe("database_backups_resumed", &ctx)
            .await
            .expect("probe");
        assert!(!r.passed);
        assert!(
            r.evidence.contains("around 2026-02-08T10:17:00Z"),
            "{}",
            r.evidence
        );
        c.advance(Duration::minutes(5));
        let r = sb
            .probe("database_backups_resumed", &ctx)
            .await
            .expect("probe");
        assert!(r.passed, "{}", r.evidence);
        assert!(
            r.evidence.starts_with(
                "SGBackup orders-i3-op4-20260208101200 completed at 2026-02-08T10:17:00Z"
            ),
            "{}",
            r.evidence
        );

        let r = sb
            .probe("velero_backup_after_recovery", &ctx)
            .await
            .expect("probe");
        assert!(!r.passed);
        assert!(
            r.evidence.contains("no recovery recorded"),
            "{}",
            r.evidence
        );
        let ctx = ProbeContext {
            recovered_at: Some(t("2026-02-08T10:12:00Z")),
            ..ctx
        };
        let r = sb
            .probe("velero_backup_after_recovery", &ctx)
            .await
            .expect("probe");
        assert!(!r.passed, "{}", r.evidence);
        assert!(
            r.evidence.contains("around 2026-02-08T10:22:00Z"),
            "{}",
            r.evidence
        );
        c.set(t("2026-02-08T10:22:00Z"));
        let r = sb
            .probe("velero_backup_after_recovery", &ctx)
            .await
            .expect("probe");
        assert!(r.passed, "{}", r.evidence);
        assert_eq!(
            r.evidence,
            "Velero backup nightly-20260208101400 Completed at 2026-02-08T10:22:00Z, after the recovery at 2026-02-08T10:12:00Z"
        );
    }

    #[tokio::test]
    async fn probes_scale_with_speed() {
        let c = clock();
        let sb = sandbox(&c, 60.0);
        let s = latest("orders-i3-op4");
        sb.launch(&s).await.expect("launch");
        let ctx = ProbeContext {
            recovered_at: Some(t("2026-02-08T10:00:12Z")),
            restored_objects: vec![s.object_name.clone()],
        };
        c.advance(Duration::seconds(12));
        assert!(
            sb.probe("database_writable", &ctx)
                .await
                .expect("probe")
                .passed
        );
        c.advance(Duration::seconds(5));
        assert!(
            sb.probe("database_backups_resumed", &ctx)
                .await
                .expect("probe")
                .passed
        );
        c.advance(Duration::seconds(5));
        assert!(
            sb.probe("velero_backup_after_recovery", &ctx)
                .await
                .expect("probe")
                .passed
        );
    }
}
