//! The `kubernetes` cluster backend: Velero, StackGres, Argo CD and Flux objects through the
//! Kubernetes API, the recoverable window and the backup checks from the offsite bucket.
//!
//! Nothing is kept in drbot: whatever an operation needs to be observed, resumed or undone is
//! in the cluster. Restores and database clusters have deterministic names, so a launch after
//! a restart finds its object instead of creating a second one. A freeze writes the state it
//! replaces into an annotation ([`FREEZE_ANNOTATION`]) on each object it changes, in the same
//! patch as the change, so that state survives a crash between the patch and the event that
//! records it; the unfreeze removes the annotation again.
//!
//! Third-party kinds go through `DynamicObject` and are read as JSON: only the few fields
//! drbot needs, and unknown phases are reported rather than rejected.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use ::kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use ::kube::config::{KubeConfigOptions, Kubeconfig};
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Map, Value, json};

use super::manifests::{
    self, DatabaseRestore, FLUX_SUSPEND_REASON, FREEZE_DURATION, FluxKind, MANAGED_BY,
    VELERO_RESTORE_POLICY, backup_copy_note, check_cluster_name, check_ended_before,
    check_not_in_place, check_volume_size, describe_windows, fmt, newest_backup_before,
    restore_target, to_yaml,
};
use super::offsite::{Offsite, VersioningStatus};
use super::restore_scope::{DATABASES, RestoreScope, check_adoptable};
use super::walg;
use super::{
    BackupsReport, BoxFuture, Cluster, ClusterError, Launched, Observation, ProbeContext,
    ProbeResult,
};
use crate::clock::Clock;
use crate::config::{KubernetesSettings, Settings};
use crate::incident::{OperationKind, OperationSpec, Outcome, Plan};

/// Field manager of every write.
const FIELD_MANAGER: &str = "drbot";
/// Annotation a freeze leaves on each object it changed: `{"operation": <freeze object
/// name>, "prior": <merge patch that puts back what the freeze changed>}`.
pub const FREEZE_ANNOTATION: &str = "drbot/freeze";
/// Start of the description of drbot's deny windows: `drbot freeze <object>: <reason>`.
const WINDOW_PREFIX: &str = "drbot freeze ";

/// The resource types drbot reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Restore,
    Backup,
    Schedule,
    StorageLocation,
    SgCluster,
    SgBackup,
    AppProject,
    Application,
    Kustomization,
    HelmRelease,
    Pod,
    Node,
    Event,
}

impl Kind {
    const ALL: [Kind; 13] = [
        Kind::Restore,
        Kind::Backup,
        Kind::Schedule,
        Kind::StorageLocation,
        Kind::SgCluster,
        Kind::SgBackup,
        Kind::AppProject,
        Kind::Application,
        Kind::Kustomization,
        Kind::HelmRelease,
        Kind::Pod,
        Kind::Node,
        Kind::Event,
    ];

    /// (group, version, kind, plural).
    fn gvk(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Kind::Restore => ("velero.io", "v1", "Restore", "restores"),
            Kind::Backup => ("velero.io", "v1", "Backup", "backups"),
            Kind::Schedule => ("velero.io", "v1", "Schedule", "schedules"),
            Kind::StorageLocation => (
                "velero.io",
                "v1",
                "BackupStorageLocation",
                "backupstoragelocations",
            ),
            Kind::SgCluster => ("stackgres.io", "v1", "SGCluster", "sgclusters"),
            Kind::SgBackup => ("stackgres.io", "v1", "SGBackup", "sgbackups"),
            Kind::AppProject => ("argoproj.io", "v1alpha1", "AppProject", "appprojects"),
            Kind::Application => ("argoproj.io", "v1alpha1", "Application", "applications"),
            Kind::Kustomization => (
                "kustomize.toolkit.fluxcd.io",
                "v1",
                "Kustomization",
                "kustomizations",
            ),
            Kind::HelmRelease => (
                "helm.toolkit.fluxcd.io",
                "v2",
                "HelmRelease",
                "helmreleases",
            ),
            Kind::Pod => ("", "v1", "Pod", "pods"),
            Kind::Node => ("", "v1", "Node", "nodes"),
            Kind::Event => ("", "v1", "Event", "events"),
        }
    }

    fn resource(self) -> ApiResource {
        let (group, version, kind, plural) = self.gvk();
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    fn api_version(self) -> String {
        self.resource().api_version
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Restore => "Velero Restore",
            Kind::Backup => "Velero Backup",
            Kind::Schedule => "Velero Schedule",
            Kind::StorageLocation => "Velero BackupStorageLocation",
            Kind::SgCluster => "SGCluster",
            Kind::SgBackup => "SGBackup",
            Kind::AppProject => "Argo CD AppProject",
            Kind::Application => "Argo CD Application",
            Kind::Kustomization => "Flux Kustomization",
            Kind::HelmRelease => "Flux HelmRelease",
            Kind::Pod => "Pod",
            Kind::Node => "Node",
            Kind::Event => "Event",
        }
    }
}

pub mod access;
mod drill_secrets;
mod freeze;
mod freeze_target;
mod json;
mod missing_namespace;
mod probes;
mod restore_watch;
mod stackgres;
mod velero;
mod windows;

use access::*;
pub use drill_secrets::copy_secret_command;
use json::*;
use stackgres::*;
use velero::*;

/// A plan and what launching it does, in order: each step's document is in the manifest.
struct Prepared {
    plan: Plan,
    steps: Vec<Step>,
    /// Why it must not be launched although it can be shown (a PITR target outside the
    /// window: the engine explains that from the plan's window).
    blocked: Option<String>,
    /// The operation's object exists already: a launch adopts it.
    existing: bool,
}

impl Prepared {
    /// A plan whose launch applies `steps` (`existing`: or adopts the object already there);
    /// `nothing` tells the manifest why there is nothing to apply when `steps` is empty.
    fn applying(summary: Vec<String>, steps: Vec<Step>, nothing: &str, existing: bool) -> Prepared {
        Prepared {
            plan: Plan {
                summary,
                manifest: Kube::manifest(&steps, nothing),
                backup: None,
                window: None,
            },
            steps,
            blocked: None,
            existing,
        }
    }
}

struct Step {
    kind: Kind,
    create: bool,
    doc: Value,
    /// The patch that takes a freeze's change back, should a later step be refused.
    undo: Option<Value>,
}

pub struct Kube {
    client: ::kube::Client,
    settings: KubernetesSettings,
    offsite: Option<Offsite>,
    clock: Arc<dyn Clock>,
    timeout: StdDuration,
    /// Where drills restore (`safety.drill_namespace`).
    drill_namespace: String,
}

impl Kube {
    /// A backend on an existing client (tests point one at a stand-in API server).
    pub fn new(
        client: ::kube::Client,
        settings: &KubernetesSettings,
        offsite: Option<Offsite>,
        clock: Arc<dyn Clock>,
    ) -> Result<Kube, ClusterError> {
        settings.validate().map_err(ClusterError::Invalid)?;
        Ok(Kube {
            client,
            settings: settings.clone(),
            offsite,
            clock,
            timeout: StdDuration::from_secs(settings.timeout_seconds.max(1)),
            drill_namespace: crate::config::SafetySettings::default().drill_namespace,
        })
    }

    /// Drills restore into `namespace` (`safety.drill_namespace`).
    pub fn with_drill_namespace(mut self, namespace: &str) -> Kube {
        self.drill_namespace = namespace.to_string();
        self
    }

    /// The client the settings name: `kubernetes.kubeconfig` (with `kubernetes.context`), else
    /// `KUBECONFIG` / `~/.kube/config`, else the in-cluster service account. Nothing is sent
    /// until the first operation.
    pub async fn connect(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Kube, ClusterError> {
        let k = &settings.kubernetes;
        k.validate().map_err(ClusterError::Invalid)?;
        let options = KubeConfigOptions {
            context: k.context.clone(),
            ..KubeConfigOptions::default()
        };
        let bad = |what: String| ClusterError::Invalid(what);
        let mut config = match &k.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path)
                    .map_err(|e| bad(format!("kubernetes.kubeconfig {path}: {e}")))?;
                ::kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| bad(format!("kubernetes.kubeconfig {path}: {e}")))?
            }
            None if k.context.is_some() => ::kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| bad(format!("kubeconfig (KUBECONFIG or ~/.kube/config): {e}")))?,
            None => ::kube::Config::infer().await.map_err(|e| {
                bad(format!(
                    "no Kubernetes connection: {e}; set kubernetes.kubeconfig, or run drbot in the cluster with a service account"
                ))
            })?,
        };
        let timeout = StdDuration::from_secs(k.timeout_seconds.max(1));
        config.connect_timeout = Some(timeout.min(StdDuration::from_secs(10)));
        config.read_timeout = Some(timeout);
        config.reset_reader_on_write = true;
        config.write_timeout = Some(timeout);
        let client =
            ::kube::Client::try_from(config).map_err(|e| bad(format!("Kubernetes client: {e}")))?;
        let offsite = if settings.offsite.enabled() {
            Some(Offsite::new(&settings.offsite)?.with_clock(clock.clone()))
        } else {
            None
        };
        Ok(Kube::new(client, k, offsite, clock)?
            .with_drill_namespace(&settings.safety.drill_namespace))
    }

    // ---- API access ----------------------------------------------------------------------

    fn api(&self, kind: Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        let resource = kind.resource();
        match namespace {
            Some(ns) if kind != Kind::Node => {
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
            _ => Api::all_with(self.client.clone(), &resource),
        }
    }

    async fn timed<T>(
        &self,
        what: &str,
        access: Option<Access<'_>>,
        request: impl Future<Output = Result<T, ::kube::Error>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(api_error(what, access, e)),
            Err(_) => Err(ClusterError::Unavailable(format!(
                "{what}: no answer from the Kubernetes API within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    async fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let what = format!("reading {} {namespace}/{name}", kind.label());
        let found = self
            .timed(
                &what,
                Some(Access::of("get", kind, Some(namespace))),
                self.api(kind, Some(namespace)).get_opt(name),
            )
            .await?;
        Ok(found.and_then(|o| serde_json::to_value(o).ok()))
    }

    async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        labels: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        let mut params = ListParams::default();
        if let Some(l) = labels {
            params = params.labels(l);
        }
        let place = namespace.map_or("all namespaces".to_string(), |n| format!("namespace {n}"));
        let what = format!("listing {}s in {place}", kind.label());
        self.list_with(&what, kind, namespace, &params).await
    }

    async fn list_with(
        &self,
        what: &str,
        kind: Kind,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<Vec<Value>, ClusterError> {
        let list = self
            .timed(
                what,
                Some(Access::of("list", kind, namespace)),
                self.api(kind, namespace).list(params),
            )
            .await?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect())
    }

    /// [`Kube::timed`] for a write the API may refuse with 409 Conflict: `Ok(false)` when
    /// `expected(reason)` says that refusal is an answer (the object exists already, or changed
    /// since it was read), not an error.
    async fn timed_write<T>(
        &self,
        what: &str,
        access: Access<'_>,
        request: impl Future<Output = Result<T, ::kube::Error>>,
        expected: impl Fn(&str) -> bool,
    ) -> Result<bool, ClusterError> {
        let written = async {
            match request.await {
                Ok(_) => Ok(true),
                Err(::kube::Error::Api(s)) if s.code == 409 && expected(&s.reason) => Ok(false),
                Err(e) => Err(e),
            }
        };
        self.timed(what, Some(access), written).await
    }

    /// Create; `false` when an object of that name exists already.
    async fn create(&self, kind: Kind, doc: &Value) -> Result<bool, ClusterError> {
        let namespace = text(doc, "/metadata/namespace").unwrap_or("");
        let what = format!("creating {} {namespace}/{}", kind.label(), name_of(doc));
        let object: DynamicObject = serde_json::from_value(doc.clone())
            .map_err(|e| ClusterError::Invalid(format!("{what}: not an object ({e})")))?;
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        let api = self.api(kind, Some(namespace));
        self.timed_write(
            &what,
            Access::of("create", kind, Some(namespace)),
            api.create(&params, &object),
            |reason| reason == "AlreadyExists",
        )
        .await
    }

    async fn merge_patch(&self, kind: Kind, doc: &Value) -> Result<(), ClusterError> {
        self.merge_patch_or(kind, doc, |_| false).await.map(|_| ())
    }

    /// A merge patch; `Ok(false)` on a 409 Conflict whose reason `expected` accepts.
    async fn merge_patch_or(
        &self,
        kind: Kind,
        doc: &Value,
        expected: impl Fn(&str) -> bool,
    ) -> Result<bool, ClusterError> {
        let namespace = text(doc, "/metadata/namespace").unwrap_or("");
        let name = name_of(doc);
        let what = format!("patching {} {namespace}/{name}", kind.label());
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let api = self.api(kind, Some(namespace));
        self.timed_write(
            &what,
            Access::of("patch", kind, Some(namespace)),
            api.patch(name, &params, &Patch::Merge(doc)),
            expected,
        )
        .await
    }

    /// Namespaces left out of infra restores on data incidents: `database_namespace` and
    /// `database_namespaces`.
    fn database_namespaces(&self) -> Vec<String> {
        let mut out = vec![self.settings.database_namespace.clone()];
        for ns in &self.settings.database_namespaces {
            if !out.contains(ns) {
                out.push(ns.clone());
            }
        }
        out
    }

    fn mode(&self, mode: &str) -> bool {
        self.settings.freeze_mode.iter().any(|m| m == mode)
    }

    /// Argo CD before 3.1 has no `automated.enabled`: auto-sync is turned off by removing
    /// `automated`.
    fn argocd_legacy(&self) -> bool {
        self.settings.argocd_release().is_some_and(|v| v < (3, 1))
    }

    fn manifest(steps: &[Step], nothing: &str) -> String {
        if steps.is_empty() {
            return format!("# nothing to apply: {nothing}\n");
        }
        let docs: Vec<(&str, Value)> = steps
            .iter()
            .map(|s| {
                let comment = match (s.create, s.kind) {
                    (true, Kind::SgBackup) => {
                        "copy of the source backup, status included (spec.sgCluster points at the source cluster)"
                    }
                    (true, _) => "",
                    (false, _) => "merge patch on the existing object",
                };
                (comment, s.doc.clone())
            })
            .collect();
        to_yaml(&docs)
    }

    async fn prepare(&self, spec: &OperationSpec) -> Result<Prepared, ClusterError> {
        match spec.kind {
            OperationKind::Freeze => self.prepare_freeze(spec).await,
            OperationKind::Unfreeze => self.prepare_unfreeze(spec).await,
            OperationKind::InfraRestore => self.prepare_infra(spec).await,
            OperationKind::RestoreLatest
            | OperationKind::Pitr
            | OperationKind::DrillLatest
            | OperationKind::DrillPitr => self.prepare_database(spec).await,
        }
    }
}

impl Cluster for Kube {
    fn backend(&self) -> &'static str {
        "kubernetes"
    }

    fn plan<'a>(&'a self, spec: &'a OperationSpec) -> BoxFuture<'a, Result<Plan, ClusterError>> {
        Box::pin(async move { Ok(self.prepare(spec).await?.plan) })
    }

    fn launch<'a>(
        &'a self,
        spec: &'a OperationSpec,
    ) -> BoxFuture<'a, Result<Launched, ClusterError>> {
        Box::pin(async move {
            let prepared = self.prepare(spec).await?;
            let launched = |already_existed| Launched {
                object: spec.object_name.clone(),
                already_existed,
            };
            if prepared.existing {
                return Ok(launched(true));
            }
            if let Some(why) = prepared.blocked {
                return Err(ClusterError::Invalid(why));
            }
            // The last step is the operation's own object (a copied backup comes first).
            let mut created = true;
            for (i, step) in prepared.steps.iter().enumerate() {
                let done = if step.create {
                    self.create(step.kind, &step.doc).await.map(|made| {
                        if i + 1 == prepared.steps.len() {
                            created = made;
                        }
                    })
                } else if let Some(replan) =
                    windows::Replan::of_step(spec, step, self.argocd_legacy())
                {
                    self.write_conditional(step.kind, &step.doc, &replan).await
                } else {
                    self.merge_patch(step.kind, &step.doc).await
                };
                match done {
                    Ok(()) => {}
                    // Refused for good: take back what this launch changed, so a failed
                    // freeze leaves nothing frozen that no event records. (Unavailable is
                    // retried: the next launch finds those objects held by this freeze.)
                    Err(ClusterError::Invalid(why)) if i > 0 => {
                        let mut undone = Vec::new();
                        for s in prepared.steps[..i].iter().rev() {
                            let undone_ok = match (windows::Replan::undo_of(spec, s), &s.undo) {
                                (Some(replan), _) => self.undo_conditional(s.kind, &replan).await,
                                (None, Some(undo)) => self.merge_patch(s.kind, undo).await.is_ok(),
                                (None, None) => false,
                            };
                            if undone_ok {
                                undone.push(format!("{} {}", s.kind.label(), name_of(&s.doc)));
                            }
                        }
                        return Err(ClusterError::Invalid(if undone.is_empty() {
                            why
                        } else {
                            format!("{why}; put back as it was: {}", undone.join(", "))
                        }));
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(launched(!created))
        })
    }

    fn observe<'a>(
        &'a self,
        spec: &'a OperationSpec,
    ) -> BoxFuture<'a, Result<Observation, ClusterError>> {
        Box::pin(async move {
            match spec.kind {
                OperationKind::Freeze => self.observe_freeze(spec).await,
                OperationKind::Unfreeze => self.observe_unfreeze(spec).await,
                OperationKind::InfraRestore => self.observe_velero(spec).await,
                OperationKind::RestoreLatest
                | OperationKind::Pitr
                | OperationKind::DrillLatest
                | OperationKind::DrillPitr => self.observe_database(spec).await,
            }
        })
    }

    fn backups(&self) -> BoxFuture<'_, Result<BackupsReport, ClusterError>> {
        Box::pin(async move { Ok(self.backups_now().await) })
    }

    fn probe<'a>(
        &'a self,
        probe: &'a str,
        ctx: &'a ProbeContext,
    ) -> BoxFuture<'a, Result<ProbeResult, ClusterError>> {
        Box::pin(async move { self.probe_now(probe, ctx).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut v = json!({"a": {"b": 1, "c": 2}, "d": [1, 2]});
        merge(&mut v, &json!({"a": {"b": null, "e": 3}, "d": [3]}));
        assert_eq!(v, json!({"a": {"c": 2, "e": 3}, "d": [3]}));
        let mut doc = json!({"spec": {"x": 1}});
        overlay(&mut doc, &json!({"spec": {"y": null}}));
        assert_eq!(doc, json!({"spec": {"x": 1, "y": null}}));
    }

    #[test]
    fn names_versions_and_targets() {
        assert_eq!(incident_tag("drbot-inc7-op3-freeze"), "drbot-inc7");
        assert_eq!(incident_tag("custom"), "custom");
        assert_eq!(pg_major("160004").as_deref(), Some("16"));
        assert_eq!(pg_major("16.4").as_deref(), Some("16"));
        assert_eq!(pg_major("latest"), None);
        assert_eq!(url_encode("p@ss/w:rd"), "p%40ss%2Fw%3Ard");
    }
}
