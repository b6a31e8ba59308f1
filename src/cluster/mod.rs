//! The cluster port: what drbot needs from a Kubernetes cluster and its offsite backups.
//! Backends (`cluster.backend`): `sandbox`, an in-process simulation and the default, and
//! `kubernetes` ([`kube`]), the real cluster through its API with the offsite bucket.

pub mod kube;
pub mod manifests;
pub mod offsite;
pub mod restore_scope;
pub mod sandbox;
pub mod wal_decompress;
mod wal_names;
pub mod wal_records;
#[doc(hidden)]
pub mod wal_synth;
pub mod walg;
mod walg_end;

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};

use crate::incident::{OperationSpec, Outcome, Plan};

/// The checklist probes every backend answers (the runbook names them).
pub const PROBES: &[&str] = &[
    "nodes_ready",
    "control_plane",
    "core_namespaces",
    "offsite_reachable",
    "offsite_versioning",
    "sample_backup_readable",
    "database_writable",
    "database_backups_resumed",
    "velero_schedule_active",
    "velero_backup_after_recovery",
];

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The request is wrong for this cluster (unknown backup or database cluster…); the
    /// message says what exists instead.
    #[error("{0}")]
    Invalid(String),
    /// The cluster or storage could not be reached or answered badly; worth retrying.
    #[error("cluster backend unavailable: {0}")]
    Unavailable(String),
}

/// Result of a launch. Launching an operation whose object already exists is not an error:
/// names are deterministic, so the existing object is that operation's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    pub object: String,
    pub already_existed: bool,
}

/// Where an operation stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub phase: String,
    pub percent: u8,
    pub detail: String,
    /// Set once the operation reached a final phase.
    pub done: Option<Outcome>,
    /// Data to keep on the timeline (a freeze's prior state, warnings, the restored endpoint).
    pub result: Option<serde_json::Value>,
}

impl Observation {
    /// Still under way: no outcome, nothing to keep yet.
    pub(crate) fn running(
        phase: impl Into<String>,
        percent: u8,
        detail: impl Into<String>,
    ) -> Observation {
        Observation {
            phase: phase.into(),
            percent,
            detail: detail.into(),
            done: None,
            result: None,
        }
    }

    /// Finished well, with what to keep on the timeline.
    pub(crate) fn succeeded(
        phase: impl Into<String>,
        detail: impl Into<String>,
        result: serde_json::Value,
    ) -> Observation {
        Observation {
            phase: phase.into(),
            percent: 100,
            detail: detail.into(),
            done: Some(Outcome::Succeeded),
            result: Some(result),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupsReport {
    pub ok: bool,
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub passed: bool,
    pub evidence: String,
}

/// What a probe may need to know about the incident.
#[derive(Debug, Clone, Default)]
pub struct ProbeContext {
    /// When the last restore finished: backups must be newer than this.
    pub recovered_at: Option<DateTime<Utc>>,
    /// Objects created by the incident's restores (new database clusters…).
    pub restored_objects: Vec<String>,
}

pub trait Cluster: Send + Sync {
    /// `sandbox` or `kubernetes`; sandbox messages are labelled as such.
    fn backend(&self) -> &'static str;

    /// Exactly what `launch` would create or change; no side effects.
    fn plan<'a>(&'a self, spec: &'a OperationSpec) -> BoxFuture<'a, Result<Plan, ClusterError>>;

    /// Create the operation's object (idempotent by `spec.object_name`).
    fn launch<'a>(
        &'a self,
        spec: &'a OperationSpec,
    ) -> BoxFuture<'a, Result<Launched, ClusterError>>;

    /// Current phase and progress of a launched operation.
    fn observe<'a>(
        &'a self,
        spec: &'a OperationSpec,
    ) -> BoxFuture<'a, Result<Observation, ClusterError>>;

    /// Offsite backup preflight (spec §2 `backups`).
    fn backups(&self) -> BoxFuture<'_, Result<BackupsReport, ClusterError>>;

    /// Run one named checklist probe (`nodes_ready`, `offsite_versioning`, …).
    fn probe<'a>(
        &'a self,
        probe: &'a str,
        ctx: &'a ProbeContext,
    ) -> BoxFuture<'a, Result<ProbeResult, ClusterError>>;
}
