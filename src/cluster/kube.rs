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
    restore_target, to_yaml, velero_overlap, velero_scope,
};
use super::offsite::{Offsite, VersioningStatus};
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
}

impl Kind {
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
        }
    }
}

// ---- JSON helpers ------------------------------------------------------------------------

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn time_at(v: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    text(v, pointer)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn name_of(v: &Value) -> &str {
    text(v, "/metadata/name").unwrap_or("?")
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .and_then(|a| a.get(key))
}

fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// The `status.conditions[]` entry of `kind`.
fn condition<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn condition_true(v: &Value, kind: &str) -> bool {
    condition(v, kind).and_then(|c| c.get("status").and_then(Value::as_str)) == Some("True")
}

/// Apply a JSON merge patch (RFC 7386) to `target`.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// `base` with `extra`'s keys added, recursively; unlike [`merge`], nulls are kept (this builds
/// a patch, it does not apply one).
fn overlay(base: &mut Value, extra: &Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => overlay(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, e) => *b = e.clone(),
    }
}

fn set_annotation(doc: &mut Value, key: &str, value: Value) {
    overlay(
        doc,
        &json!({ "metadata": { "annotations": { key: value } } }),
    );
}

/// `(operation, prior)` of a freeze annotation.
fn freeze_mark(v: &Value) -> Option<(String, Value)> {
    let raw = annotation(v, FREEZE_ANNOTATION)?.as_str()?;
    let parsed: Value = serde_json::from_str(raw).ok()?;
    let operation = parsed.get("operation")?.as_str()?.to_string();
    Some((
        operation,
        parsed.get("prior").cloned().unwrap_or(Value::Null),
    ))
}

/// `drbot-inc7` of `drbot-inc7-op3-freeze`: windows of any freeze of the same incident count
/// as this freeze's.
fn incident_tag(object: &str) -> &str {
    match object.find("-op") {
        Some(i) if object.starts_with("drbot-inc") => &object[..i],
        _ => object,
    }
}

fn pod_ready(pod: &Value) -> bool {
    condition_true(pod, "Ready")
}

/// Why a pod is not running well: the first waiting or terminated reason of its containers.
fn pod_trouble(pod: &Value) -> Option<String> {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)?;
    statuses.iter().find_map(|c| {
        let restarts = c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        let reason =
            text(c, "/state/waiting/reason").or_else(|| text(c, "/state/terminated/reason"))?;
        Some(if restarts > 0 {
            format!("{reason}, {restarts} restarts")
        } else {
            reason.to_string()
        })
    })
}

fn pod_state(pod: &Value) -> String {
    let phase = text(pod, "/status/phase").unwrap_or("Pending");
    let ready = if pod_ready(pod) { ", Ready" } else { "" };
    match pod_trouble(pod) {
        Some(t) => format!("{} {phase}{ready} ({t})", name_of(pod)),
        None => format!("{} {phase}{ready}", name_of(pod)),
    }
}

/// A PostgreSQL major from `server_version_num` (`160004` → `16`) or a version (`16.4`).
fn pg_major(version: &str) -> Option<String> {
    let v = version.trim();
    if let Ok(n) = v.parse::<u64>()
        && n >= 100_000
    {
        return Some((n / 10_000).to_string());
    }
    let major = v.split('.').next()?;
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit())).then(|| major.to_string())
}

/// Percent-encode a password for a connection URL.
fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn join_limited(items: &[String], max: usize) -> String {
    if items.len() <= max {
        items.join(", ")
    } else {
        format!("{} and {} more", items[..max].join(", "), items.len() - max)
    }
}

/// Map a client error: refusals and missing APIs are `Invalid` (retrying will not help), the
/// rest `Unavailable`.
fn api_error(what: &str, e: ::kube::Error) -> ClusterError {
    match e {
        ::kube::Error::Api(s) => {
            let detail = format!("{} {}: {}", s.code, s.reason, s.message);
            match s.code {
                401 | 403 => ClusterError::Invalid(format!(
                    "{what} was refused ({detail}): drbot's Kubernetes identity needs RBAC for it"
                )),
                404 => ClusterError::Invalid(format!(
                    "{what}: the API server does not serve it ({detail}); is the operator and its CRD installed?"
                )),
                400 | 409 | 422 => ClusterError::Invalid(format!("{what} was refused ({detail})")),
                _ => ClusterError::Unavailable(format!("{what} failed ({detail})")),
            }
        }
        other => ClusterError::Unavailable(format!("{what} failed: {other}")),
    }
}

// ---- freeze targets ----------------------------------------------------------------------

/// An object a freeze changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    kind: Kind,
    namespace: String,
    name: String,
}

const TARGET_KEYS: &[(&str, Kind)] = &[
    ("argocd_appproject", Kind::AppProject),
    ("argocd_application", Kind::Application),
    ("flux_kustomization", Kind::Kustomization),
    ("flux_helmrelease", Kind::HelmRelease),
];

impl Target {
    fn new(kind: Kind, namespace: &str, name: &str) -> Target {
        Target {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `argocd_appproject/argocd/default`: the key of its recorded state.
    fn key(&self) -> String {
        let prefix = TARGET_KEYS
            .iter()
            .find(|(_, k)| *k == self.kind)
            .map_or("?", |(p, _)| p);
        format!("{prefix}/{}/{}", self.namespace, self.name)
    }

    fn parse(key: &str) -> Option<Target> {
        let mut parts = key.splitn(3, '/');
        let (prefix, namespace, name) = (parts.next()?, parts.next()?, parts.next()?);
        let kind = TARGET_KEYS.iter().find(|(p, _)| *p == prefix)?.1;
        (!namespace.is_empty() && !name.is_empty()).then(|| Target::new(kind, namespace, name))
    }

    fn describe(&self) -> String {
        format!("{} {}/{}", self.kind.label(), self.namespace, self.name)
    }

    fn config_key(&self) -> &'static str {
        match self.kind {
            Kind::AppProject => "kubernetes.argocd_projects",
            Kind::Application => "kubernetes.argocd_applications",
            Kind::Kustomization => "kubernetes.flux_kustomizations",
            _ => "kubernetes.flux_helmreleases",
        }
    }

    /// `apiVersion`, `kind` and the name, to which a patch adds its fields.
    fn patch_base(&self) -> Value {
        let (_, _, kind, _) = self.kind.gvk();
        json!({
            "apiVersion": self.kind.api_version(),
            "kind": kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
        })
    }
}

/// Whether an Application syncs automatically now.
fn auto_sync_on(app: &Value) -> bool {
    match app.pointer("/spec/syncPolicy/automated") {
        Some(Value::Object(a)) => a.get("enabled").and_then(Value::as_bool) != Some(false),
        _ => false,
    }
}

/// One object's part of a freeze.
enum FreezeStep {
    /// Change it: the patch and the state it replaces.
    Change {
        doc: Value,
        prior: Value,
        line: String,
    },
    /// Nothing to do for it, and nothing to put back.
    Skip(String),
}

// ---- Velero and StackGres views ----------------------------------------------------------

struct VeleroBackup {
    name: String,
    phase: String,
    started: Option<DateTime<Utc>>,
    completed: Option<DateTime<Utc>>,
    warnings: i64,
    errors: i64,
    location: Option<String>,
}

impl VeleroBackup {
    fn read(v: &Value) -> VeleroBackup {
        VeleroBackup {
            name: name_of(v).to_string(),
            phase: text(v, "/status/phase").unwrap_or("New").to_string(),
            started: time_at(v, "/status/startTimestamp"),
            completed: time_at(v, "/status/completionTimestamp"),
            warnings: int(v, "/status/warnings"),
            errors: int(v, "/status/errors"),
            location: text(v, "/spec/storageLocation").map(str::to_string),
        }
    }

    fn when(&self) -> Option<DateTime<Utc>> {
        self.completed.or(self.started)
    }

    fn completed(&self) -> bool {
        self.phase == "Completed"
    }
}

struct BaseBackup {
    name: String,
    status: String,
    ended: Option<DateTime<Utc>>,
    pg_major: Option<String>,
    failure: Option<String>,
    object: Value,
}

impl BaseBackup {
    fn read(v: &Value) -> BaseBackup {
        BaseBackup {
            name: name_of(v).to_string(),
            status: text(v, "/status/process/status")
                .unwrap_or("Pending")
                .to_string(),
            ended: time_at(v, "/status/process/timing/end"),
            pg_major: text(v, "/status/backupInformation/postgresVersion").and_then(pg_major),
            failure: text(v, "/status/process/failure").map(str::to_string),
            object: v.clone(),
        }
    }

    fn completed(&self) -> bool {
        self.status == "Completed" && self.ended.is_some()
    }
}

/// The source cluster an SGBackup belongs to (`orders`, or `db.orders` for a copy).
fn backup_cluster(v: &Value) -> &str {
    let c = text(v, "/spec/sgCluster").unwrap_or("");
    c.rsplit_once('.').map_or(c, |(_, name)| name)
}

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
        })
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
            Some(Offsite::new(&settings.offsite)?)
        } else {
            None
        };
        Kube::new(client, k, offsite, clock)
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
        request: impl Future<Output = Result<T, ::kube::Error>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(api_error(what, e)),
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
            .timed(&what, self.api(kind, Some(namespace)).get_opt(name))
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
        let list = self
            .timed(&what, self.api(kind, namespace).list(&params))
            .await?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect())
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
        match tokio::time::timeout(self.timeout, api.create(&params, &object)).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(::kube::Error::Api(s))) if s.code == 409 && s.reason == "AlreadyExists" => {
                Ok(false)
            }
            Ok(Err(e)) => Err(api_error(&what, e)),
            Err(_) => Err(ClusterError::Unavailable(format!(
                "{what}: no answer from the Kubernetes API within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    async fn merge_patch(&self, kind: Kind, doc: &Value) -> Result<(), ClusterError> {
        let namespace = text(doc, "/metadata/namespace").unwrap_or("");
        let name = name_of(doc);
        let what = format!("patching {} {namespace}/{name}", kind.label());
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let api = self.api(kind, Some(namespace));
        self.timed(&what, api.patch(name, &params, &Patch::Merge(doc)))
            .await
            .map(|_| ())
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

    // ---- freeze ------------------------------------------------------------------------

    /// The configured freeze targets. With `argocd-auto-sync` and no Applications named: every
    /// Application of `argocd_namespace` that syncs automatically or carries a freeze.
    async fn targets(&self) -> Result<Vec<Target>, ClusterError> {
        let s = &self.settings;
        let mut out = Vec::new();
        if self.mode("argocd-window") {
            for p in &s.argocd_projects {
                out.push(Target::new(Kind::AppProject, &s.argocd_namespace, p));
            }
        }
        if self.mode("argocd-auto-sync") {
            if s.argocd_applications.is_empty() {
                for app in self
                    .list(Kind::Application, Some(&s.argocd_namespace), None)
                    .await?
                {
                    if auto_sync_on(&app) || freeze_mark(&app).is_some() {
                        out.push(Target::new(
                            Kind::Application,
                            &s.argocd_namespace,
                            name_of(&app),
                        ));
                    }
                }
            } else {
                for entry in &s.argocd_applications {
                    let (ns, name) = entry
                        .split_once('/')
                        .unwrap_or((s.argocd_namespace.as_str(), entry.as_str()));
                    out.push(Target::new(Kind::Application, ns, name));
                }
            }
        }
        if self.mode("flux") {
            for (kind, list) in [
                (Kind::Kustomization, &s.flux_kustomizations),
                (Kind::HelmRelease, &s.flux_helmreleases),
            ] {
                for entry in list {
                    if let Some((ns, name)) = entry.split_once('/') {
                        out.push(Target::new(kind, ns, name));
                    }
                }
            }
        }
        Ok(out)
    }

    async fn target_object(&self, t: &Target) -> Result<Value, ClusterError> {
        self.get(t.kind, &t.namespace, &t.name)
            .await?
            .ok_or_else(|| {
                ClusterError::Invalid(format!(
                    "{} not found (it is configured in {})",
                    t.describe(),
                    t.config_key()
                ))
            })
    }

    async fn prepare_freeze(&self, spec: &OperationSpec) -> Result<Prepared, ClusterError> {
        let op = spec.object_name.as_str();
        let reason = spec.reason.as_deref().unwrap_or("disaster recovery");
        let note = format!("{WINDOW_PREFIX}{op}: {reason}");
        let mut summary = Vec::new();
        let mut steps = Vec::new();
        let mut held = 0;
        let targets = self.targets().await?;
        if targets.is_empty() {
            summary.push(format!(
                "no Argo CD Application in {} syncs automatically: nothing to freeze there",
                self.settings.argocd_namespace
            ));
        }
        for t in &targets {
            let object = self.target_object(t).await?;
            match freeze_mark(&object) {
                Some((holder, _)) if holder == op => {
                    held += 1;
                    summary.push(format!(
                        "{}: already frozen by this operation; its recorded state is kept",
                        t.describe()
                    ));
                    continue;
                }
                Some((holder, _)) => {
                    summary.push(format!(
                        "{}: already frozen by {holder}; left to that freeze's unfreeze",
                        t.describe()
                    ));
                    continue;
                }
                None => {}
            }
            let step = match t.kind {
                Kind::AppProject => freeze_project(t, &object, op, &note),
                Kind::Application => freeze_application(t, &object, self.argocd_legacy()),
                Kind::Kustomization => freeze_flux(t, &object, FluxKind::Kustomization, &note),
                _ => freeze_flux(t, &object, FluxKind::HelmRelease, &note),
            };
            match step {
                FreezeStep::Change {
                    mut doc,
                    prior,
                    line,
                } => {
                    let mark = json!({"operation": op, "prior": prior}).to_string();
                    set_annotation(&mut doc, FREEZE_ANNOTATION, Value::String(mark));
                    summary.push(line);
                    steps.push(Step {
                        kind: t.kind,
                        create: false,
                        doc,
                        undo: Some(unfreeze_patch(t, &prior)),
                    });
                }
                FreezeStep::Skip(line) => summary.push(line),
            }
        }
        summary.push(format!(
            "the state each change replaces is recorded (annotation {FREEZE_ANNOTATION} on the object and the incident timeline); unfreeze puts back exactly that"
        ));
        let manifest = Kube::manifest(&steps, "every target is already frozen or needs no change");
        Ok(Prepared {
            plan: Plan {
                summary,
                manifest,
                backup: None,
                window: None,
            },
            existing: steps.is_empty() && held > 0,
            steps,
            blocked: None,
        })
    }

    async fn observe_freeze(&self, spec: &OperationSpec) -> Result<Observation, ClusterError> {
        let op = spec.object_name.as_str();
        let tag = incident_tag(op);
        let mut prior = Map::new();
        let mut applied = Vec::new();
        let mut problems = Vec::new();
        let mut others = Vec::new();
        for t in self.targets().await? {
            let Some(object) = self.get(t.kind, &t.namespace, &t.name).await? else {
                problems.push(format!("{} no longer exists", t.describe()));
                continue;
            };
            match freeze_mark(&object) {
                Some((holder, recorded)) if holder == op => {
                    prior.insert(t.key(), recorded);
                    match freeze_effect(&t, &object, tag, self.argocd_legacy()) {
                        Ok(done) => applied.push(done),
                        Err(why) => problems.push(why),
                    }
                }
                Some((holder, _)) => others.push(format!("{} (frozen by {holder})", t.describe())),
                None => others.push(format!("{} (not changed)", t.describe())),
            }
        }
        let mut detail = applied.join("; ");
        if !others.is_empty() {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            detail.push_str(&format!("left as they were: {}", others.join(", ")));
        }
        if problems.is_empty() {
            Ok(Observation {
                phase: "Applied".into(),
                percent: 100,
                detail,
                done: Some(Outcome::Succeeded),
                result: Some(Value::Object(prior)),
            })
        } else {
            Ok(Observation {
                phase: "NotHeld".into(),
                percent: 100,
                detail: format!(
                    "{}; the recorded state of what was changed is in the result",
                    problems.join("; ")
                ),
                done: Some(Outcome::Failed),
                result: Some(Value::Object(prior)),
            })
        }
    }

    async fn prepare_unfreeze(&self, spec: &OperationSpec) -> Result<Prepared, ClusterError> {
        let targets = recorded_targets(spec)?;
        let mut summary = Vec::new();
        let mut steps = Vec::new();
        if targets.is_empty() {
            summary.push("the freeze changed nothing, so there is nothing to put back".into());
        }
        for (t, fragment) in &targets {
            let Some(object) = self.get(t.kind, &t.namespace, &t.name).await? else {
                summary.push(format!(
                    "{} no longer exists: nothing to put back",
                    t.describe()
                ));
                continue;
            };
            if restored(&object, fragment) {
                summary.push(format!("{}: already as recorded", t.describe()));
                continue;
            }
            let doc = unfreeze_patch(t, fragment);
            summary.push(format!(
                "{}: back to {} (now: {})",
                t.describe(),
                describe_fragment(fragment, None),
                describe_fragment(fragment, Some(&object))
            ));
            steps.push(Step {
                kind: t.kind,
                create: false,
                doc,
                undo: None,
            });
        }
        if !targets.is_empty() {
            summary.push(format!(
                "the freeze annotation {FREEZE_ANNOTATION} is removed; nothing else is touched"
            ));
        }
        let manifest = Kube::manifest(&steps, "every target already matches the recorded state");
        Ok(Prepared {
            plan: Plan {
                summary,
                manifest,
                backup: None,
                window: None,
            },
            existing: steps.is_empty(),
            steps,
            blocked: None,
        })
    }

    async fn observe_unfreeze(&self, spec: &OperationSpec) -> Result<Observation, ClusterError> {
        let targets = recorded_targets(spec)?;
        let mut done = Vec::new();
        let mut problems = Vec::new();
        for (t, fragment) in &targets {
            match self.get(t.kind, &t.namespace, &t.name).await? {
                None => done.push(format!("{} (gone)", t.describe())),
                Some(object) if restored(&object, fragment) => done.push(t.describe()),
                Some(object) => problems.push(format!(
                    "{} is not as recorded: {} instead of {}",
                    t.describe(),
                    describe_fragment(fragment, Some(&object)),
                    describe_fragment(fragment, None)
                )),
            }
        }
        let (outcome, detail) = if problems.is_empty() {
            (
                Outcome::Succeeded,
                if done.is_empty() {
                    "nothing to put back".to_string()
                } else {
                    format!("recorded state put back: {}", done.join(", "))
                },
            )
        } else {
            (Outcome::Failed, problems.join("; "))
        };
        Ok(Observation {
            phase: "Applied".into(),
            percent: 100,
            detail,
            done: Some(outcome),
            result: spec.prior.clone(),
        })
    }

    // ---- Velero --------------------------------------------------------------------------

    /// Newest first.
    async fn velero_backups(&self) -> Result<Vec<VeleroBackup>, ClusterError> {
        let mut out: Vec<VeleroBackup> = self
            .list(Kind::Backup, Some(&self.settings.velero_namespace), None)
            .await?
            .iter()
            .map(VeleroBackup::read)
            .collect();
        out.sort_by(|a, b| b.when().cmp(&a.when()).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    async fn prepare_infra(&self, spec: &OperationSpec) -> Result<Prepared, ClusterError> {
        let velero_ns = self.settings.velero_namespace.as_str();
        let backups = self.velero_backups().await?;
        let known = || {
            let names: Vec<String> = backups.iter().map(|b| b.name.clone()).collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                join_limited(&names, 8)
            }
        };
        let chosen = match &spec.backup {
            Some(name) => {
                let b = backups.iter().find(|b| &b.name == name).ok_or_else(|| {
                    ClusterError::Invalid(format!(
                        "unknown Velero backup {name} in namespace {velero_ns}; known (newest first): {}",
                        known()
                    ))
                })?;
                if !matches!(b.phase.as_str(), "Completed" | "PartiallyFailed") {
                    return Err(ClusterError::Invalid(format!(
                        "Velero backup {name} is {}: restore from a Completed (or PartiallyFailed) backup",
                        b.phase
                    )));
                }
                b
            }
            None => backups.iter().find(|b| b.completed()).ok_or_else(|| {
                ClusterError::Invalid(format!(
                    "no Completed Velero backup in namespace {velero_ns} to restore from (backups: {})",
                    known()
                ))
            })?,
        };
        let excluded = if spec.exclude_database_namespaces {
            self.database_namespaces()
        } else {
            Vec::new()
        };
        let mut summary = vec![format!(
            "Velero Restore {velero_ns}/{} from backup {} ({} {})",
            spec.object_name,
            chosen.name,
            chosen.phase,
            chosen.when().map_or_else(|| "time unknown".into(), fmt)
        )];
        if !chosen.completed() {
            summary.push(format!(
                "that backup is {} ({} warnings, {} errors): some objects may be missing",
                chosen.phase, chosen.warnings, chosen.errors
            ));
        }
        summary.push(velero_scope(
            &spec.include_namespaces,
            &excluded,
            Some("databases"),
        ));
        summary.extend(velero_overlap(&spec.include_namespaces, &excluded));
        if let Some(location) = &chosen.location {
            match self.get(Kind::StorageLocation, velero_ns, location).await? {
                Some(bsl) => {
                    let phase = text(&bsl, "/status/phase").unwrap_or("unknown");
                    if phase != "Available" {
                        summary.push(format!(
                            "WARNING: BackupStorageLocation {location} is {phase}: Velero refuses restores until it is Available"
                        ));
                    }
                }
                None => summary.push(format!(
                    "WARNING: BackupStorageLocation {location} of that backup does not exist"
                )),
            }
        }
        summary.push(VELERO_RESTORE_POLICY.into());
        let existing = self
            .get(Kind::Restore, velero_ns, &spec.object_name)
            .await?;
        if let Some(r) = &existing {
            summary.push(format!(
                "Restore {} already exists (phase {}): confirming reports it and creates nothing",
                spec.object_name,
                text(r, "/status/phase").unwrap_or("New")
            ));
        }
        let doc = manifests::velero_restore(
            &spec.object_name,
            velero_ns,
            &chosen.name,
            &spec.include_namespaces,
            &excluded,
        );
        let steps = vec![Step {
            kind: Kind::Restore,
            create: true,
            doc,
            undo: None,
        }];
        Ok(Prepared {
            plan: Plan {
                summary,
                manifest: Kube::manifest(&steps, ""),
                backup: Some(chosen.name.clone()),
                window: None,
            },
            steps,
            blocked: None,
            existing: existing.is_some(),
        })
    }

    async fn observe_velero(&self, spec: &OperationSpec) -> Result<Observation, ClusterError> {
        let ns = self.settings.velero_namespace.as_str();
        let Some(r) = self.get(Kind::Restore, ns, &spec.object_name).await? else {
            return Ok(Observation {
                phase: "Missing".into(),
                percent: 0,
                detail: format!(
                    "Restore {ns}/{} does not exist (deleted after launch?)",
                    spec.object_name
                ),
                done: Some(Outcome::Failed),
                result: None,
            });
        };
        let phase = text(&r, "/status/phase").unwrap_or("New").to_string();
        let items = int(&r, "/status/progress/itemsRestored");
        let total = int(&r, "/status/progress/totalItems");
        let warnings = int(&r, "/status/warnings");
        let errors = int(&r, "/status/errors");
        let progress = if total > 0 {
            format!("{items}/{total} items restored")
        } else {
            "no item count yet".to_string()
        };
        let running_percent = if total > 0 {
            1 + ((items.clamp(0, total) as f64 / total as f64) * 98.0).floor() as u8
        } else {
            1
        };
        let outcome = match phase.as_str() {
            "Completed" => Some(Outcome::Succeeded),
            "PartiallyFailed" | "Failed" | "FailedValidation" => Some(Outcome::Failed),
            _ => None,
        };
        let Some(outcome) = outcome else {
            let (percent, detail) = match phase.as_str() {
                "New" => (0, "waiting for the Velero server to pick it up".to_string()),
                "InProgress" => (running_percent, progress),
                "WaitingForPluginOperations"
                | "WaitingForPluginOperationsPartiallyFailed"
                | "Finalizing"
                | "FinalizingPartiallyFailed" => (
                    99,
                    format!("{progress}; {phase}: waiting for volume data and plugin operations"),
                ),
                other => (
                    running_percent,
                    format!("{progress}; phase {other} is unknown to drbot: still watching"),
                ),
            };
            let detail = if warnings > 0 || errors > 0 {
                format!("{detail}, {warnings} warnings, {errors} errors so far")
            } else {
                detail
            };
            return Ok(Observation {
                phase,
                percent,
                detail,
                done: None,
                result: None,
            });
        };
        let mut detail = format!("{progress}, {warnings} warnings, {errors} errors");
        if let Some(reason) = text(&r, "/status/failureReason") {
            detail.push_str(&format!("; failure: {reason}"));
        }
        let validation: Vec<Value> = r
            .pointer("/status/validationErrors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !validation.is_empty() {
            let each: Vec<String> = validation
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            detail.push_str(&format!("; validation errors: {}", each.join("; ")));
        }
        if warnings > 0 || errors > 0 || outcome == Outcome::Failed {
            detail.push_str(&format!(
                " (details: velero restore describe {} --details)",
                spec.object_name
            ));
        }
        Ok(Observation {
            phase: phase.clone(),
            percent: if outcome == Outcome::Succeeded {
                100
            } else {
                running_percent.min(99)
            },
            detail,
            done: Some(outcome),
            result: Some(json!({
                "restore": spec.object_name,
                "backupName": text(&r, "/spec/backupName"),
                "phase": phase,
                "itemsRestored": items,
                "totalItems": total,
                "warnings": warnings,
                "errors": errors,
                "failureReason": text(&r, "/status/failureReason"),
                "validationErrors": validation,
                "startTimestamp": text(&r, "/status/startTimestamp"),
                "completionTimestamp": text(&r, "/status/completionTimestamp"),
            })),
        })
    }

    // ---- StackGres -----------------------------------------------------------------------

    /// Base backups of `cluster` in `namespace`, newest end first (unfinished last).
    async fn base_backups(
        &self,
        namespace: &str,
        cluster: &str,
    ) -> Result<Vec<BaseBackup>, ClusterError> {
        let mut out: Vec<BaseBackup> = self
            .list(Kind::SgBackup, Some(namespace), None)
            .await?
            .iter()
            .filter(|b| backup_cluster(b) == cluster)
            .map(BaseBackup::read)
            .collect();
        out.sort_by(|a, b| b.ended.cmp(&a.ended).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    async fn known_clusters(&self, namespace: &str) -> String {
        match self.list(Kind::SgCluster, Some(namespace), None).await {
            Ok(list) if list.is_empty() => "none".into(),
            Ok(list) => list
                .iter()
                .map(|c| name_of(c).to_string())
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("unknown ({e})"),
        }
    }

    /// The recoverable window from the offsite bucket (the source of truth), or why there is
    /// none. An unreachable bucket is an error (worth retrying).
    async fn window(&self, cluster: &str) -> Result<Result<walg::Window, String>, ClusterError> {
        let Some(offsite) = &self.offsite else {
            return Ok(Err(
                "offsite storage is not configured (offsite.bucket), so the recoverable window is unknown".into(),
            ));
        };
        match offsite.window(cluster).await {
            Ok(w) => Ok(Ok(w)),
            Err(ClusterError::Invalid(why)) => Ok(Err(why)),
            Err(e) => Err(e),
        }
    }

    async fn prepare_database(&self, spec: &OperationSpec) -> Result<Prepared, ClusterError> {
        let source_ns = self.settings.database_namespace.clone();
        let Some(source) = spec.cluster.clone() else {
            return Err(ClusterError::Invalid(format!(
                "no database cluster given; known in {source_ns}: {}",
                self.known_clusters(&source_ns).await
            )));
        };
        check_cluster_name(&spec.object_name)?;
        let namespace = spec.namespace.clone().unwrap_or_else(|| source_ns.clone());
        let drill = matches!(
            spec.kind,
            OperationKind::DrillLatest | OperationKind::DrillPitr
        );
        if drill && self.database_namespaces().contains(&namespace) {
            return Err(ClusterError::Invalid(format!(
                "drills restore into a non-production namespace, and {namespace} holds production databases (kubernetes.database_namespace / database_namespaces); set safety.drill_namespace"
            )));
        }
        check_not_in_place(&spec.object_name, &namespace, &source, &source_ns)?;
        let pitr = matches!(spec.kind, OperationKind::Pitr | OperationKind::DrillPitr);
        let target = restore_target(pitr, spec.target)?;
        let Some(source_obj) = self.get(Kind::SgCluster, &source_ns, &source).await? else {
            return Err(ClusterError::Invalid(format!(
                "unknown cluster {source} in namespace {source_ns}; known: {}",
                self.known_clusters(&source_ns).await
            )));
        };
        let backups = self.base_backups(&source_ns, &source).await?;
        let window = match self.window(&source).await {
            Ok(w) => w,
            Err(e) if !pitr => Err(e.to_string()),
            Err(e) => return Err(e),
        };
        let mut window_lines = Vec::new();
        match &window {
            Ok(w) => {
                window_lines.push(format!(
                    "PITR window {} from the offsite bucket (oldest base backup {} finished … segment {} uploaded)",
                    w.range(),
                    w.oldest_backup,
                    w.last_segment
                ));
                for g in &w.gaps {
                    window_lines.push(g.describe());
                }
            }
            Err(why) => window_lines.push(format!("no recoverable window: {why}")),
        }
        let recovery_window = window.as_ref().ok().map(walg::Window::recovery_window);
        let chosen = match &spec.backup {
            Some(name) => {
                let b = backups.iter().find(|b| &b.name == name).ok_or_else(|| {
                    let known: Vec<String> = backups.iter().map(|b| b.name.clone()).collect();
                    ClusterError::Invalid(format!(
                        "unknown SGBackup {name} of {source}; known (newest first): {}",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            join_limited(&known, 8)
                        }
                    ))
                })?;
                if !b.completed() {
                    return Err(ClusterError::Invalid(format!(
                        "SGBackup {name} is {}: StackGres restores only from a Completed backup",
                        b.status
                    )));
                }
                check_ended_before(name, b.ended, target)?;
                Some(b)
            }
            None => newest_backup_before(&backups, target, |b| b.completed(), |b| b.ended),
        };
        let mut blocked = match (target, &window) {
            (Some(t), Ok(w)) => walg::check_target(w, t).err(),
            _ => None,
        };
        let Some(chosen) = chosen else {
            let why = match target {
                Some(t) => format!("no Completed SGBackup of {source} ended before {}", fmt(t)),
                None => format!("no Completed SGBackup of {source}"),
            };
            let mut summary = vec![why.clone()];
            summary.extend(window_lines);
            return Ok(Prepared {
                plan: Plan {
                    summary,
                    manifest: format!("# nothing to apply: {why}\n"),
                    backup: None,
                    window: recovery_window,
                },
                steps: Vec::new(),
                blocked: Some(blocked.take().unwrap_or(why)),
                existing: false,
            });
        };
        let postgres_version = chosen
            .pg_major
            .clone()
            .or_else(|| text(&source_obj, "/spec/postgres/version").and_then(pg_major))
            .ok_or_else(|| {
                ClusterError::Invalid(format!(
                    "the PostgreSQL major of SGBackup {} is unknown (no status.backupInformation.postgresVersion) and SGCluster {source} names none",
                    chosen.name
                ))
            })?;
        let instances = source_obj
            .pointer("/spec/instances")
            .and_then(Value::as_u64)
            .map_or(1, |n| n.clamp(1, u64::from(u32::MAX)) as u32);
        let volume_size = text(&source_obj, "/spec/pods/persistentVolume/size")
            .unwrap_or("")
            .to_string();
        check_volume_size(&volume_size)?;
        let restore = DatabaseRestore {
            name: spec.object_name.clone(),
            namespace: namespace.clone(),
            source_namespace: source_ns.clone(),
            source_cluster: source.clone(),
            backup: chosen.name.clone(),
            postgres_version: postgres_version.clone(),
            instances,
            volume_size: volume_size.clone(),
            target,
        };
        // Backups resume with the source's configuration, under a path StackGres gives the new
        // cluster. The SGObjectStorage it names is in the source's namespace, so a cluster
        // restored into another one (a drill) gets none.
        let source_backups = manifests::resumed_backups(&source_obj);
        let backups = if namespace == source_ns {
            source_backups.clone()
        } else {
            Vec::new()
        };
        let steps: Vec<Step> = manifests::sgcluster_restore_with_backups(&restore, &backups)
            .into_iter()
            .map(|(_, mut doc)| {
                let kind = if doc["kind"] == "SGBackup" {
                    // A copy is the object as it is, status included: the operator restores
                    // only from a backup whose status says Completed.
                    if let Some(status) = chosen.object.get("status") {
                        doc["status"] = status.clone();
                    }
                    Kind::SgBackup
                } else {
                    Kind::SgCluster
                };
                Step {
                    kind,
                    create: true,
                    doc,
                    undo: None,
                }
            })
            .collect();
        let mut summary = vec![
            format!(
                "new SGCluster {namespace}/{} restored from {source_ns}/{source} (the source is not touched)",
                spec.object_name
            ),
            format!(
                "from backup {} (ended {})",
                chosen.name,
                chosen.ended.map_or_else(|| "?".into(), fmt)
            ),
        ];
        let archived = window.as_ref().ok().map(|w| w.end);
        match target {
            Some(t) => {
                summary.push(format!(
                    "recover to {} (pointInTimeRecovery.restoreToTimestamp)",
                    manifests::timestamp(t)
                ));
                if let Some(end) = archived
                    && t > end
                {
                    summary.push(format!(
                        "the target is after the newest archived WAL ({})",
                        fmt(end)
                    ));
                }
            }
            None => summary.push(match archived {
                Some(end) => format!(
                    "replay all archived WAL (the offsite bucket has it up to {})",
                    fmt(end)
                ),
                None => "replay all archived WAL".into(),
            }),
        }
        summary.push(format!(
            "PostgreSQL {postgres_version} (the backup's major), {instances} instances, {volume_size} (as {source})"
        ));
        summary.push(describe_resumed_backups(
            (&source, &source_ns),
            &namespace,
            &source_backups,
            &backups,
        ));
        summary.extend(window_lines);
        if let Some(why) = &blocked {
            summary.push(format!("cannot be launched: {why}"));
        }
        summary.extend(backup_copy_note(&chosen.name, &namespace, &source_ns));
        let existing = self
            .get(Kind::SgCluster, &namespace, &spec.object_name)
            .await?;
        if let Some(c) = &existing {
            if label(c, MANAGED_BY) != Some("drbot") {
                return Err(ClusterError::Invalid(format!(
                    "SGCluster {namespace}/{} exists and was not created by drbot: drbot will not adopt it",
                    spec.object_name
                )));
            }
            summary.push(format!(
                "SGCluster {} already exists (created {}): confirming reports it and creates nothing",
                spec.object_name,
                text(c, "/metadata/creationTimestamp").unwrap_or("?")
            ));
        }
        Ok(Prepared {
            plan: Plan {
                summary,
                manifest: Kube::manifest(&steps, ""),
                backup: Some(chosen.name.clone()),
                window: recovery_window,
            },
            steps,
            blocked,
            existing: existing.is_some(),
        })
    }

    /// The primary pod of an SGCluster (label `role=primary`, `master` before 1.18).
    async fn primary_pod(
        &self,
        cluster: &Value,
    ) -> Result<(Vec<Value>, Option<Value>), ClusterError> {
        let name = name_of(cluster);
        let namespace = text(cluster, "/metadata/namespace").unwrap_or_default();
        let selector = text(cluster, "/status/labelSelector")
            .map(str::to_string)
            .unwrap_or_else(|| format!("app=StackGresCluster,stackgres.io/cluster-name={name}"));
        let pods = self
            .list(Kind::Pod, Some(namespace), Some(&selector))
            .await?;
        let primary = pods
            .iter()
            .find(|p| matches!(label(p, "role"), Some("primary" | "master")))
            .cloned();
        Ok((pods, primary))
    }

    async fn observe_database(&self, spec: &OperationSpec) -> Result<Observation, ClusterError> {
        let namespace = spec
            .namespace
            .clone()
            .unwrap_or_else(|| self.settings.database_namespace.clone());
        let Some(cluster) = self
            .get(Kind::SgCluster, &namespace, &spec.object_name)
            .await?
        else {
            return Ok(Observation {
                phase: "Missing".into(),
                percent: 0,
                detail: format!(
                    "SGCluster {namespace}/{} does not exist (deleted after launch?)",
                    spec.object_name
                ),
                done: Some(Outcome::Failed),
                result: None,
            });
        };
        Ok(self.cluster_progress(&cluster).await?.0)
    }

    /// Where a restored cluster stands, and its primary pod's name once Ready.
    async fn cluster_progress(
        &self,
        cluster: &Value,
    ) -> Result<(Observation, Option<String>), ClusterError> {
        let name = name_of(cluster).to_string();
        let namespace = text(cluster, "/metadata/namespace").unwrap_or_default();
        let from = "/spec/initialData/restore/fromBackup";
        let backup = text(cluster, &format!("{from}/name")).unwrap_or("?");
        let recovered_to = text(
            cluster,
            &format!("{from}/pointInTimeRecovery/restoreToTimestamp"),
        );
        if condition_true(cluster, "Failed") {
            let c = condition(cluster, "Failed");
            let why = c
                .and_then(|c| c.get("message").or_else(|| c.get("reason")))
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Ok((
                Observation {
                    phase: "Failed".into(),
                    percent: 0,
                    detail: format!("SGCluster {namespace}/{name} failed: {why}"),
                    done: Some(Outcome::Failed),
                    result: None,
                },
                None,
            ));
        }
        let bootstrapped = condition_true(cluster, "Bootstrapped");
        let (pods, primary) = self.primary_pod(cluster).await?;
        if bootstrapped && let Some(p) = primary.as_ref().filter(|p| pod_ready(p)) {
            let pod = name_of(p).to_string();
            let instances = cluster.pointer("/spec/instances").cloned();
            return Ok((
                Observation {
                    phase: "Bootstrapped".into(),
                    percent: 100,
                    detail: format!("primary {pod} Ready"),
                    done: Some(Outcome::Succeeded),
                    result: Some(json!({
                        "cluster": format!("{namespace}/{name}"),
                        "primary": pod,
                        "endpoint": format!("{name}.{namespace}.svc:5432"),
                        "instances": instances,
                        "fromBackup": backup,
                        "recoveredTo": recovered_to,
                        "readyAt": fmt(self.clock.now()),
                    })),
                },
                Some(pod),
            ));
        }
        let pod_states: Vec<String> = pods.iter().map(pod_state).collect();
        let (phase, percent, detail) = if bootstrapped {
            (
                "Bootstrapped",
                90,
                match &primary {
                    Some(p) => format!(
                        "bootstrapped; waiting for primary {} to be Ready",
                        pod_state(p)
                    ),
                    None => "bootstrapped; no primary pod yet".to_string(),
                },
            )
        } else if pods.is_empty() {
            (
                "Pending",
                0,
                "waiting for the StackGres operator to create the pods".to_string(),
            )
        } else {
            let replay = match recovered_to {
                Some(t) => format!(", then replaying WAL to {t}"),
                None => ", then replaying all archived WAL".to_string(),
            };
            (
                "Restoring",
                10,
                format!(
                    "restoring base backup {backup}{replay}; pods: {}",
                    join_limited(&pod_states, 4)
                ),
            )
        };
        Ok((
            Observation {
                phase: phase.into(),
                percent,
                detail,
                done: None,
                result: None,
            },
            None,
        ))
    }

    // ---- backups -------------------------------------------------------------------------

    async fn backups_now(&self) -> BackupsReport {
        let mut lines = Vec::new();
        let mut ok = true;
        let velero_ns = self.settings.velero_namespace.as_str();
        match self.velero_backups().await {
            Ok(backups) => {
                let completed: Vec<&VeleroBackup> =
                    backups.iter().filter(|b| b.completed()).collect();
                match completed.first() {
                    Some(newest) => lines.push(format!(
                        "Velero: {} backups ({} Completed), newest Completed {} at {}",
                        backups.len(),
                        completed.len(),
                        newest.name,
                        newest.when().map_or_else(|| "?".into(), fmt)
                    )),
                    None => {
                        ok = false;
                        lines.push(format!(
                            "Velero: no Completed backup in namespace {velero_ns} ({} backups)",
                            backups.len()
                        ));
                    }
                }
                let newest_ok = completed.first().and_then(|b| b.when());
                for b in backups
                    .iter()
                    .filter(|b| !b.completed() && b.when() >= newest_ok)
                    .take(3)
                {
                    lines.push(format!(
                        "Velero: {} {} ({} warnings, {} errors)",
                        b.name, b.phase, b.warnings, b.errors
                    ));
                }
            }
            Err(e) => {
                ok = false;
                lines.push(format!("Velero backups: {e}"));
            }
        }
        match self
            .list(Kind::StorageLocation, Some(velero_ns), None)
            .await
        {
            Ok(bsls) => {
                if bsls.is_empty() {
                    ok = false;
                    lines.push("Velero: no BackupStorageLocation".into());
                }
                for bsl in &bsls {
                    let phase = text(bsl, "/status/phase").unwrap_or("unknown");
                    ok &= phase == "Available";
                    let message = text(bsl, "/status/message")
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default();
                    lines.push(format!("Velero BSL {}: {phase}{message}", name_of(bsl)));
                }
            }
            Err(e) => {
                ok = false;
                lines.push(format!("Velero BackupStorageLocations: {e}"));
            }
        }
        match self.list(Kind::Schedule, Some(velero_ns), None).await {
            Ok(schedules) => {
                if schedules.is_empty() {
                    lines.push("Velero: no Schedule".into());
                }
                for s in &schedules {
                    lines.push(describe_schedule(s));
                }
            }
            Err(e) => lines.push(format!("Velero Schedules: {e}")),
        }
        let db_ns = self.settings.database_namespace.as_str();
        match self.list(Kind::SgBackup, Some(db_ns), None).await {
            Ok(all) => {
                let mut clusters: BTreeSet<String> = BTreeSet::new();
                for b in &all {
                    clusters.insert(backup_cluster(b).to_string());
                }
                if clusters.is_empty() {
                    lines.push(format!("StackGres: no SGBackup in namespace {db_ns}"));
                }
                for cluster in clusters {
                    let mut mine: Vec<BaseBackup> = all
                        .iter()
                        .filter(|b| backup_cluster(b) == cluster)
                        .map(BaseBackup::read)
                        .collect();
                    mine.sort_by_key(|b| std::cmp::Reverse(b.ended));
                    let done: Vec<&BaseBackup> = mine.iter().filter(|b| b.completed()).collect();
                    match done.first() {
                        Some(newest) => lines.push(format!(
                            "{db_ns}/{cluster}: {} SGBackups ({} Completed), newest {} (ended {})",
                            mine.len(),
                            done.len(),
                            newest.name,
                            newest.ended.map_or_else(|| "?".into(), fmt)
                        )),
                        None => {
                            ok = false;
                            lines.push(format!(
                                "{db_ns}/{cluster}: {} SGBackups, none Completed",
                                mine.len()
                            ));
                        }
                    }
                    for f in mine.iter().filter(|b| b.status == "Failed").take(2) {
                        lines.push(format!(
                            "{db_ns}/{cluster}: SGBackup {} Failed: {}",
                            f.name,
                            f.failure.as_deref().unwrap_or("no message")
                        ));
                    }
                }
            }
            Err(e) => {
                ok = false;
                lines.push(format!("StackGres SGBackups: {e}"));
            }
        }
        match &self.offsite {
            Some(offsite) => {
                let report = offsite.report().await;
                ok &= report.ok;
                lines.extend(report.lines);
            }
            None => {
                ok = false;
                lines.push(
                    "offsite storage is not configured (offsite.bucket): the PITR window and the offsite copies cannot be checked".into(),
                );
            }
        }
        BackupsReport { ok, lines }
    }

    // ---- probes --------------------------------------------------------------------------

    async fn probe_now(
        &self,
        probe: &str,
        ctx: &ProbeContext,
    ) -> Result<ProbeResult, ClusterError> {
        match probe {
            "nodes_ready" => self.probe_nodes().await,
            "control_plane" => self.probe_control_plane().await,
            "core_namespaces" => self.probe_core_namespaces().await,
            "offsite_reachable" | "offsite_versioning" | "sample_backup_readable" => {
                Ok(self.probe_offsite(probe).await)
            }
            "velero_schedule_active" => self.probe_schedules().await,
            "velero_backup_after_recovery" => self.probe_velero_after(ctx).await,
            "database_writable" => self.probe_writable(ctx).await,
            "database_backups_resumed" => self.probe_backups_resumed(ctx).await,
            other => Err(ClusterError::Invalid(format!(
                "unknown probe {other}; known: {}",
                super::PROBES.join(", ")
            ))),
        }
    }

    async fn probe_nodes(&self) -> Result<ProbeResult, ClusterError> {
        let nodes = self.list(Kind::Node, None, None).await?;
        let (ready, down): (Vec<&Value>, Vec<&Value>) =
            nodes.iter().partition(|n| condition_true(n, "Ready"));
        let names = |list: &[&Value]| -> Vec<String> {
            list.iter().map(|n| name_of(n).to_string()).collect()
        };
        if nodes.is_empty() {
            return Ok(fail("the API server lists no nodes".into()));
        }
        if !down.is_empty() {
            let each: Vec<String> = down
                .iter()
                .map(|n| {
                    let reason = condition(n, "Ready")
                        .and_then(|c| c.get("reason"))
                        .and_then(Value::as_str)
                        .unwrap_or("no Ready condition");
                    format!("{} ({reason})", name_of(n))
                })
                .collect();
            return Ok(fail(format!(
                "{}/{} nodes Ready; not Ready: {}",
                ready.len(),
                nodes.len(),
                join_limited(&each, 5)
            )));
        }
        Ok(pass(format!(
            "{}/{} nodes Ready: {}",
            ready.len(),
            nodes.len(),
            join_limited(&names(&ready), 10)
        )))
    }

    async fn probe_control_plane(&self) -> Result<ProbeResult, ClusterError> {
        let version = self
            .timed(
                "reading the API server version",
                self.client.apiserver_version(),
            )
            .await?;
        let pods = self
            .list(Kind::Pod, Some("kube-system"), Some("tier=control-plane"))
            .await?;
        let troubled: Vec<String> = pods
            .iter()
            .filter(|p| !pod_ready(p) || pod_trouble(p).is_some())
            .map(pod_state)
            .collect();
        let answered = format!("API server {} answered", version.git_version);
        if !troubled.is_empty() {
            return Ok(fail(format!(
                "{answered}; control-plane pods not healthy: {}",
                join_limited(&troubled, 5)
            )));
        }
        Ok(pass(if pods.is_empty() {
            format!("{answered}; control-plane pods are not visible (a managed control plane)")
        } else {
            let names: Vec<String> = pods.iter().map(|p| name_of(p).to_string()).collect();
            format!(
                "{answered}; control-plane pods Ready: {}",
                join_limited(&names, 6)
            )
        }))
    }

    async fn probe_core_namespaces(&self) -> Result<ProbeResult, ClusterError> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for ns in &self.settings.core_namespaces {
            let pods = self.list(Kind::Pod, Some(ns), None).await?;
            let healthy = |p: &&Value| {
                text(p, "/status/phase") == Some("Succeeded")
                    || (text(p, "/status/phase") == Some("Running") && pod_ready(p))
            };
            let sick: Vec<String> = pods.iter().filter(|p| !healthy(p)).map(pod_state).collect();
            let ok = pods.len() - sick.len();
            if pods.is_empty() {
                bad.push(format!("{ns}: no pods"));
            } else if sick.is_empty() {
                good.push(format!("{ns} {ok}/{} pods Ready", pods.len()));
            } else {
                bad.push(format!(
                    "{ns} {ok}/{} pods Ready, not: {}",
                    pods.len(),
                    join_limited(&sick, 4)
                ));
            }
        }
        Ok(if bad.is_empty() {
            pass(good.join(", "))
        } else {
            let mut all = bad;
            all.extend(good);
            fail(all.join("; "))
        })
    }

    async fn probe_offsite(&self, probe: &str) -> ProbeResult {
        let Some(offsite) = &self.offsite else {
            return fail("not checked: offsite storage is not configured (offsite.bucket)".into());
        };
        let bucket = offsite.bucket();
        match probe {
            "offsite_reachable" => match offsite.reachable().await {
                Err(e) => fail(e.to_string()),
                Ok(()) => match offsite.velero_backups().await {
                    Ok(v) => pass(format!(
                        "s3://{bucket} reachable: {} Velero backups listed",
                        v.len()
                    )),
                    Err(e) => fail(format!("s3://{bucket} reachable but not listable: {e}")),
                },
            },
            "offsite_versioning" => match offsite.versioning().await {
                Ok(VersioningStatus::Enabled) => pass(format!("s3://{bucket} versioning Enabled")),
                Ok(v) => fail(format!(
                    "s3://{bucket} versioning {}: deleted or overwritten backups cannot be recovered",
                    v.label()
                )),
                Err(e) => fail(e.to_string()),
            },
            _ => match offsite.sample_readable().await {
                Ok(evidence) => pass(evidence),
                Err(e) => fail(e.to_string()),
            },
        }
    }

    async fn probe_schedules(&self) -> Result<ProbeResult, ClusterError> {
        let ns = self.settings.velero_namespace.as_str();
        let schedules = self.list(Kind::Schedule, Some(ns), None).await?;
        if schedules.is_empty() {
            return Ok(fail(format!("no Velero Schedule in namespace {ns}")));
        }
        let lines: Vec<String> = schedules.iter().map(describe_schedule).collect();
        let active = |s: &Value| {
            s.pointer("/spec/paused").and_then(Value::as_bool) != Some(true)
                && text(s, "/status/phase") == Some("Enabled")
        };
        Ok(if schedules.iter().all(active) {
            pass(lines.join("; "))
        } else {
            fail(lines.join("; "))
        })
    }

    async fn probe_velero_after(&self, ctx: &ProbeContext) -> Result<ProbeResult, ClusterError> {
        let Some(recovered) = ctx.recovered_at else {
            return Ok(fail(
                "no recovery recorded yet: a Velero backup must complete after the restores finish"
                    .into(),
            ));
        };
        let backups = self.velero_backups().await?;
        // A backup started before the recovery finished does not hold the recovered state.
        let after = backups
            .iter()
            .filter(|b| b.completed() && b.started.is_some_and(|s| s > recovered))
            .min_by_key(|b| b.completed);
        Ok(match after {
            Some(b) => pass(format!(
                "Velero backup {} Completed at {}, after the recovery at {}",
                b.name,
                b.when().map_or_else(|| "?".into(), fmt),
                fmt(recovered)
            )),
            None => {
                let running: Vec<String> = backups
                    .iter()
                    .filter(|b| !b.completed() && b.started.is_some_and(|s| s > recovered))
                    .map(|b| format!("{} {}", b.name, b.phase))
                    .collect();
                fail(format!(
                    "no Velero backup has completed since the recovery at {}{}; start one with `velero backup create --from-schedule <schedule>`",
                    fmt(recovered),
                    if running.is_empty() {
                        String::new()
                    } else {
                        format!(" (started since: {})", running.join(", "))
                    }
                ))
            }
        })
    }

    /// SGClusters among the incident's restored objects.
    async fn restored_clusters(&self, ctx: &ProbeContext) -> Result<Vec<Value>, ClusterError> {
        if ctx.restored_objects.is_empty() {
            return Ok(Vec::new());
        }
        let selector = format!("{MANAGED_BY}=drbot");
        Ok(self
            .list(Kind::SgCluster, None, Some(&selector))
            .await?
            .into_iter()
            .filter(|c| ctx.restored_objects.iter().any(|o| o == name_of(c)))
            .collect())
    }

    async fn probe_writable(&self, ctx: &ProbeContext) -> Result<ProbeResult, ClusterError> {
        let clusters = self.restored_clusters(ctx).await?;
        if clusters.is_empty() {
            return Ok(no_restored_cluster(ctx));
        }
        let mut passed = true;
        let mut evidence = Vec::new();
        for c in &clusters {
            let name = name_of(c);
            let (seen, primary) = self.cluster_progress(c).await?;
            let Some(primary) = primary else {
                passed = false;
                evidence.push(format!(
                    "{name} is not ready: {} ({})",
                    seen.phase, seen.detail
                ));
                continue;
            };
            match self.in_recovery(c).await {
                Ok(Ok(false)) => evidence.push(format!(
                    "pg_is_in_recovery() = false on {name} (primary {primary})"
                )),
                Ok(Ok(true)) => {
                    passed = false;
                    evidence.push(format!(
                        "pg_is_in_recovery() = true on {name}: still replaying WAL, not accepting writes"
                    ));
                }
                Ok(Err(why)) => {
                    passed = false;
                    evidence.push(format!(
                        "not checked: {why}; SGCluster {name} Bootstrapped, primary {primary} Ready"
                    ));
                }
                Err(why) => {
                    passed = false;
                    evidence.push(format!("not checked on {name}: {why}"));
                }
            }
        }
        Ok(ProbeResult {
            passed,
            evidence: evidence.join("; "),
        })
    }

    /// `pg_is_in_recovery()` on a cluster's primary service. `Ok(Err(_))` = not checked
    /// (no connection configured); `Err(_)` = the check failed.
    async fn in_recovery(&self, cluster: &Value) -> Result<Result<bool, String>, String> {
        let Some(template) = &self.settings.postgres_dsn_template else {
            return Ok(Err(
                "no database connection configured (kubernetes.postgres_dsn_template)".into(),
            ));
        };
        let name = name_of(cluster);
        let namespace = text(cluster, "/metadata/namespace").unwrap_or_default();
        let mut dsn = template
            .replace("{cluster}", name)
            .replace("{namespace}", namespace);
        let mut secret_value = None;
        if dsn.contains("{password}") {
            let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
            let what = format!("reading Secret {namespace}/{name}");
            let secret = self
                .timed(&what, secrets.get_opt(name))
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!("Secret {namespace}/{name} (StackGres credentials) not found")
                })?;
            let password = secret
                .data
                .as_ref()
                .and_then(|d| d.get("superuser-password"))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .ok_or_else(|| format!("Secret {namespace}/{name} has no superuser-password"))?;
            dsn = dsn.replace("{password}", &url_encode(&password));
            secret_value = Some(password);
        }
        let check = async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&dsn).await?;
            let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                .fetch_one(&mut conn)
                .await?;
            let _ = conn.close().await;
            Ok::<bool, sqlx::Error>(in_recovery)
        };
        let hide = |msg: String| match &secret_value {
            Some(p) if !p.is_empty() => msg.replace(p.as_str(), "***"),
            _ => msg,
        };
        match tokio::time::timeout(self.timeout, check).await {
            Ok(Ok(v)) => Ok(Ok(v)),
            Ok(Err(e)) => Err(hide(format!("cannot query {name} in {namespace}: {e}"))),
            Err(_) => Err(format!(
                "no answer from {name} in {namespace} within {} s",
                self.timeout.as_secs()
            )),
        }
    }

    async fn probe_backups_resumed(&self, ctx: &ProbeContext) -> Result<ProbeResult, ClusterError> {
        let clusters = self.restored_clusters(ctx).await?;
        if clusters.is_empty() {
            return Ok(no_restored_cluster(ctx));
        }
        let since = ctx.recovered_at;
        let mut passed = true;
        let mut evidence = Vec::new();
        for c in &clusters {
            let name = name_of(c);
            let namespace = text(c, "/metadata/namespace").unwrap_or_default();
            let backups = self.base_backups(namespace, name).await?;
            let fresh = backups
                .iter()
                .find(|b| b.completed() && since.is_none_or(|s| b.ended.is_some_and(|e| e > s)));
            if let Some(b) = fresh {
                evidence.push(format!(
                    "SGBackup {} of {name} completed at {}",
                    b.name,
                    b.ended.map_or_else(|| "?".into(), fmt)
                ));
                continue;
            }
            if let Some(found) = self.archived_wal(c, since).await {
                evidence.push(found);
                continue;
            }
            passed = false;
            let configured = c
                .pointer("/spec/configurations/backups")
                .and_then(Value::as_array)
                .is_some_and(|b| !b.is_empty());
            let after = since
                .map(|s| format!(" since {}", fmt(s)))
                .unwrap_or_default();
            evidence.push(if configured {
                format!("{name}: no Completed SGBackup and no WAL archived offsite{after} yet")
            } else {
                format!(
                    "{name}: no Completed SGBackup{after}, and it has no spec.configurations.backups: StackGres neither archives WAL nor takes backups of it until one is added"
                )
            });
        }
        Ok(ProbeResult {
            passed,
            evidence: evidence.join("; "),
        })
    }

    /// The newest WAL segment a restored cluster archived to the offsite bucket (under its
    /// `status.backupPaths`) after `since`.
    async fn archived_wal(&self, cluster: &Value, since: Option<DateTime<Utc>>) -> Option<String> {
        let offsite = self.offsite.as_ref()?;
        let paths = cluster.pointer("/status/backupPaths")?.as_array()?;
        for path in paths.iter().filter_map(Value::as_str) {
            let prefix = format!("{}/{}", path.trim_matches('/'), walg::WAL_DIR);
            let Ok(objects) = offsite.list(&prefix).await else {
                continue;
            };
            let newest = objects
                .iter()
                .filter(|o| since.is_none_or(|s| o.last_modified > s))
                .max_by_key(|o| o.last_modified);
            if let Some(o) = newest {
                return Some(format!(
                    "{} archived WAL: s3://{}/{} at {}",
                    name_of(cluster),
                    offsite.bucket(),
                    o.key,
                    fmt(o.last_modified)
                ));
            }
        }
        None
    }
}

/// What a restored cluster does about backups, for the plan.
fn describe_resumed_backups(
    (source, source_namespace): (&str, &str),
    namespace: &str,
    source_backups: &[Value],
    backups: &[Value],
) -> String {
    let storages = |list: &[Value]| -> String {
        list.iter()
            .filter_map(|b| b.get("sgObjectStorage").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if source_backups.is_empty() {
        return format!(
            "WARNING: {source} has no spec.configurations.backups, so neither has the new cluster: it archives no WAL and takes no backups until one is added"
        );
    }
    if backups.is_empty() {
        return format!(
            "no spec.configurations.backups: SGObjectStorage {} of {source} is in namespace {source_namespace}, not {namespace}, so the new cluster archives no WAL and takes no backups",
            storages(source_backups)
        );
    }
    let each: Vec<String> = backups
        .iter()
        .map(|b| {
            let field = |k: &str| {
                b.get(k).map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            };
            let mut parts = vec![format!(
                "SGObjectStorage {}",
                field("sgObjectStorage").unwrap_or_default()
            )];
            parts.push(match field("cronSchedule") {
                Some(cron) => format!("base backups '{cron}'"),
                None => "no scheduled base backups".into(),
            });
            if let Some(retention) = field("retention") {
                parts.push(format!("retention {retention}"));
            }
            parts.join(", ")
        })
        .collect();
    format!(
        "backups resume with the configuration of {source} ({}); the path is left to StackGres, which gives the new cluster its own, so it never writes into the WAL archive of {source}",
        each.join("; ")
    )
}

fn pass(evidence: String) -> ProbeResult {
    ProbeResult {
        passed: true,
        evidence,
    }
}

fn fail(evidence: String) -> ProbeResult {
    ProbeResult {
        passed: false,
        evidence,
    }
}

fn no_restored_cluster(ctx: &ProbeContext) -> ProbeResult {
    fail(if ctx.restored_objects.is_empty() {
        "no restored objects in this incident: restore a database cluster first".into()
    } else {
        format!(
            "none of the restored objects ({}) is an SGCluster created by drbot",
            ctx.restored_objects.join(", ")
        )
    })
}

fn describe_schedule(s: &Value) -> String {
    let paused = s.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    format!(
        "schedule {} ({}) {}, {}; last backup {}",
        name_of(s),
        text(s, "/spec/schedule").unwrap_or("?"),
        text(s, "/status/phase").unwrap_or("New"),
        if paused { "PAUSED" } else { "not paused" },
        text(s, "/status/lastBackup").unwrap_or("never")
    )
}

/// The targets and recorded states of an unfreeze.
fn recorded_targets(spec: &OperationSpec) -> Result<Vec<(Target, Value)>, ClusterError> {
    let known = "argocd_appproject/<namespace>/<name>, argocd_application/…, flux_kustomization/…, flux_helmrelease/…";
    let Some(prior) = &spec.prior else {
        return Err(ClusterError::Invalid(
            "unfreeze needs the state recorded by the freeze, and none was given".into(),
        ));
    };
    let Some(map) = prior.as_object() else {
        return Err(ClusterError::Invalid(format!(
            "the recorded freeze state is not an object of targets ({known})"
        )));
    };
    map.iter()
        .map(|(key, fragment)| {
            let t = Target::parse(key).ok_or_else(|| {
                ClusterError::Invalid(format!(
                    "unknown freeze target {key} in the recorded state (was it recorded by another backend?); known: {known}"
                ))
            })?;
            if !fragment.is_object() {
                return Err(ClusterError::Invalid(format!(
                    "the recorded state of {key} is not an object"
                )));
            }
            Ok((t, fragment.clone()))
        })
        .collect()
}

/// The merge patch that puts back a target's recorded state and drops the freeze annotation.
fn unfreeze_patch(t: &Target, fragment: &Value) -> Value {
    let mut doc = t.patch_base();
    set_annotation(&mut doc, FREEZE_ANNOTATION, Value::Null);
    overlay(&mut doc, fragment);
    doc
}

/// The object carries the recorded state and no freeze annotation.
fn restored(object: &Value, fragment: &Value) -> bool {
    let mut after = object.clone();
    merge(&mut after, fragment);
    after == *object && freeze_mark(object).is_none()
}

/// The leaves of a recorded state, with their recorded values (`object` = `None`) or their
/// values in `object`: `annotation … absent, spec.suspend absent`.
fn describe_fragment(fragment: &Value, object: Option<&Value>) -> String {
    fn walk(v: &Value, path: &mut Vec<String>, object: Option<&Value>, out: &mut Vec<String>) {
        if let Value::Object(m) = v
            && !m.is_empty()
        {
            for (k, child) in m {
                path.push(k.clone());
                walk(child, path, object, out);
                path.pop();
            }
            return;
        }
        let value = match object {
            None => Some(v),
            Some(o) => path.iter().try_fold(o, |cur, p| cur.get(p)),
        };
        let shown = match value {
            None | Some(Value::Null) => "absent".to_string(),
            Some(Value::Array(a)) if path.last().map(String::as_str) == Some("syncWindows") => {
                describe_windows(a)
            }
            Some(other) => other.to_string(),
        };
        let key = if path.first().map(String::as_str) == Some("metadata") {
            format!("annotation {}", path.last().map_or("?", String::as_str))
        } else {
            path.join(".")
        };
        out.push(format!("{key} {shown}"));
    }
    let mut out = Vec::new();
    walk(fragment, &mut Vec::new(), object, &mut out);
    out.join(", ")
}

/// Add this incident's deny window to an AppProject, unless one is there already.
fn freeze_project(t: &Target, object: &Value, op: &str, note: &str) -> FreezeStep {
    let current = object.pointer("/spec/syncWindows").cloned();
    let windows: Vec<Value> = current
        .as_ref()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ours_prefix = format!("{WINDOW_PREFIX}{}", incident_tag(op));
    let is_ours = |w: &Value| {
        w.get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| d.starts_with(&ours_prefix))
    };
    let others: Vec<Value> = windows.iter().filter(|w| !is_ours(w)).cloned().collect();
    let has_ours = others.len() != windows.len();
    // What the unfreeze puts back: the list without this incident's windows (absent if that
    // leaves nothing where there was nothing but them).
    let prior = match (&current, has_ours, others.is_empty()) {
        (None, _, _) | (Some(_), true, true) => Value::Null,
        (Some(_), true, false) => Value::Array(others.clone()),
        (Some(c), false, _) => c.clone(),
    };
    let (after, line) = if has_ours {
        (
            windows.clone(),
            format!(
                "{}: a deny window of this incident is already there; no second one is added (now: {})",
                t.describe(),
                describe_windows(&windows)
            ),
        )
    } else {
        let mut after = others.clone();
        after.push(manifests::argocd_deny_window(FREEZE_DURATION, note));
        (
            after,
            format!(
                "{}: add deny sync window '* * * * *' for {FREEZE_DURATION}, all applications, manual syncs too (now: {})",
                t.describe(),
                describe_windows(&windows)
            ),
        )
    };
    FreezeStep::Change {
        doc: manifests::argocd_sync_windows(&t.namespace, &t.name, &after),
        prior: json!({"spec": {"syncWindows": prior}}),
        line,
    }
}

/// Turn an Application's auto-sync off: `automated.enabled: false` (Argo CD 3.1 and later,
/// prune and self-heal settings kept) or, before 3.1, no `automated` at all.
fn freeze_application(t: &Target, object: &Value, legacy: bool) -> FreezeStep {
    let automated = object.pointer("/spec/syncPolicy/automated");
    let Some(Value::Object(a)) = automated else {
        return FreezeStep::Skip(format!(
            "{}: no automated sync policy, so auto-sync is already off; left as it is",
            t.describe()
        ));
    };
    if a.get("enabled").and_then(Value::as_bool) == Some(false) {
        return FreezeStep::Skip(format!(
            "{}: automated.enabled is already false; left as it is",
            t.describe()
        ));
    }
    let now = Value::Object(a.clone());
    let (change, prior, line) = if legacy {
        (
            Value::Null,
            json!({"spec": {"syncPolicy": {"automated": now}}}),
            format!(
                "{}: remove spec.syncPolicy.automated (Argo CD before 3.1; now: {now})",
                t.describe()
            ),
        )
    } else {
        (
            json!({"enabled": false}),
            json!({"spec": {"syncPolicy": {"automated": {
                "enabled": a.get("enabled").cloned().unwrap_or(Value::Null)
            }}}}),
            format!(
                "{}: spec.syncPolicy.automated.enabled false, other settings kept (now: {now})",
                t.describe()
            ),
        )
    };
    let mut doc = t.patch_base();
    overlay(
        &mut doc,
        &json!({"spec": {"syncPolicy": {"automated": change}}}),
    );
    FreezeStep::Change { doc, prior, line }
}

/// Suspend a Flux Kustomization or HelmRelease with the reason annotation `flux suspend`
/// sets, unless something suspended it already.
fn freeze_flux(t: &Target, object: &Value, kind: FluxKind, note: &str) -> FreezeStep {
    let suspend = object
        .pointer("/spec/suspend")
        .cloned()
        .unwrap_or(Value::Null);
    if suspend == Value::Bool(true) {
        let why = annotation(object, FLUX_SUSPEND_REASON)
            .and_then(Value::as_str)
            .map(|r| format!(" (reason: {r})"))
            .unwrap_or_default();
        return FreezeStep::Skip(format!(
            "{}: already suspended{why}; left as it is, and the unfreeze will not resume it",
            t.describe()
        ));
    }
    let reason = annotation(object, FLUX_SUSPEND_REASON)
        .cloned()
        .unwrap_or(Value::Null);
    let line = format!(
        "{}: spec.suspend true, annotation {FLUX_SUSPEND_REASON} (now: suspend {})",
        t.describe(),
        if suspend.is_null() {
            "absent".to_string()
        } else {
            suspend.to_string()
        }
    );
    FreezeStep::Change {
        doc: manifests::flux_suspend(kind, &t.namespace, &t.name, true, Some(note)),
        prior: json!({
            "metadata": {"annotations": {FLUX_SUSPEND_REASON: reason}},
            "spec": {"suspend": suspend},
        }),
        line,
    }
}

/// What a freeze holding `object` has in force, or why it is not.
fn freeze_effect(t: &Target, object: &Value, tag: &str, legacy: bool) -> Result<String, String> {
    match t.kind {
        Kind::AppProject => {
            let prefix = format!("{WINDOW_PREFIX}{tag}");
            let held = object
                .pointer("/spec/syncWindows")
                .and_then(Value::as_array)
                .is_some_and(|ws| {
                    ws.iter().any(|w| {
                        w.get("kind").and_then(Value::as_str) == Some("deny")
                            && w.get("description")
                                .and_then(Value::as_str)
                                .is_some_and(|d| d.starts_with(&prefix))
                    })
                });
            if held {
                Ok(format!("{}: deny window active", t.describe()))
            } else {
                Err(format!(
                    "{} lost the deny window (reverted by something that manages the project?)",
                    t.describe()
                ))
            }
        }
        Kind::Application => {
            let automated = object.pointer("/spec/syncPolicy/automated");
            let off = match automated {
                None | Some(Value::Null) => true,
                Some(a) => !legacy && a.get("enabled").and_then(Value::as_bool) == Some(false),
            };
            if off {
                Ok(format!("{}: auto-sync off", t.describe()))
            } else if legacy {
                Err(format!("{} syncs automatically again", t.describe()))
            } else {
                Err(format!(
                    "{}: automated.enabled is not false; Argo CD before 3.1 drops that field: set kubernetes.argocd_version",
                    t.describe()
                ))
            }
        }
        _ => {
            if object.pointer("/spec/suspend") == Some(&Value::Bool(true)) {
                Ok(format!("{}: suspended", t.describe()))
            } else {
                Err(format!(
                    "{} is no longer suspended (reverted by its parent Kustomization?)",
                    t.describe()
                ))
            }
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
                            if let Some(undo) = &s.undo
                                && self.merge_patch(s.kind, undo).await.is_ok()
                            {
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
        let t = Target::parse("flux_kustomization/flux-system/apps").expect("target");
        assert_eq!(t.kind, Kind::Kustomization);
        assert_eq!(t.key(), "flux_kustomization/flux-system/apps");
        assert!(Target::parse("argocd_appproject/default").is_none());
        assert_eq!(url_encode("p@ss/w:rd"), "p%40ss%2Fw%3Ard");
        let fragment = json!({"metadata": {"annotations": {FLUX_SUSPEND_REASON: null}}, "spec": {"suspend": null}});
        assert_eq!(
            describe_fragment(&fragment, None),
            format!("annotation {FLUX_SUSPEND_REASON} absent, spec.suspend absent")
        );
    }
}
