//! A Kubernetes API server stand-in on 127.0.0.1 speaking the real wire protocol: the
//! paths, verbs, list/watch formats and `Status` errors of kube-apiserver, for the
//! resources drbot touches (core pods, nodes, namespaces, ...; Velero, StackGres, Argo CD
//! and Flux custom resources).
//!
//! What it does like the real server:
//! - GET / LIST (label and field selectors, `limit`/`continue`) / CREATE (`dryRun=All`,
//!   `generateName`) / PUT / PATCH (merge, JSON, server-side apply) / DELETE / WATCH
//!   (newline-delimited events from a resourceVersion, `BOOKMARK`s, `sendInitialEvents`,
//!   410 `Expired` after [`K8sApi::compact`]);
//! - one resourceVersion counter for the whole store; a no-op write keeps the old one;
//!   `metadata.generation` moves only when something outside metadata (and outside status,
//!   for resources with a status subresource) changes;
//! - the `status` subresource exists only where the upstream CRD (or core type) declares
//!   it (Flux Kustomization/HelmRelease, pods, nodes, ...): there, writes to the main
//!   resource leave status alone and `/status` writes change nothing else; elsewhere
//!   `/status` is a 404 and status is an ordinary part of the object;
//! - every custom resource a CREATE / PUT / PATCH would store is pruned of the fields its
//!   CRD schema does not declare, as a real server does without `fieldValidation=Strict`
//!   (recorded for [`K8sApi::pruned`]; with `Strict` they are refused), then checked against
//!   its upstream CRD schema; a failure is a 422 `Invalid` (nothing stored) and is recorded
//!   for [`K8sApi::invalid`]. [`K8sApi::start_with`] serves older releases' CRDs
//!   (`support::crd_release`).
//!
//! Where it is deliberately stricter or simpler than a real cluster:
//! - server-side apply is a merge patch (no managed fields, no conflicts, lists replaced);
//! - no admission, no namespace existence check, no finalizers, no managedFields.
//!
//! Controllers are played by the test: [`K8sApi::put`] seeds objects, [`K8sApi::set_status`]
//! moves status, [`K8sApi::script`] + [`K8sApi::advance`] play a queued sequence of
//! statuses, [`K8sApi::on_create`] spawns follow-up objects (e.g. an SGCluster's primary
//! pod), [`K8sApi::fail_next`] injects errors.
//! Velero's restore controller is emulated, not played: `velero_controller.rs`.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::crd_release::{Pruned, Releases};
use super::crd_schema::Crds;
use super::http::{Incoming, Recorder, Server, bind_local, json_response};
use super::k8s_patch::{json_patch, merge_patch};

/// Default namespace of [`K8sApi::client`].
pub const DEFAULT_NAMESPACE: &str = "default";
/// What `/version` reports.
pub const SERVER_MINOR: &str = "33";

// ---------------------------------------------------------------------------------------
// Resources served
// ---------------------------------------------------------------------------------------

/// One resource type the stand-in serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group; empty for the core group (`/api/v1`).
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// The `status` subresource is declared (upstream CRD `subresources.status`, or core type).
    pub status_subresource: bool,
    /// A custom resource: schema-checked on every write through the API.
    pub custom: bool,
    /// Fields a field selector may use besides `metadata.name` / `metadata.namespace`.
    pub selectable: &'static [&'static str],
}

const fn core(
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status_subresource: bool,
    selectable: &'static [&'static str],
) -> Resource {
    Resource {
        group: "",
        version: "v1",
        plural,
        kind,
        namespaced,
        status_subresource,
        custom: false,
        selectable,
    }
}

const fn crd(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    status_subresource: bool,
) -> Resource {
    Resource {
        group,
        version,
        plural,
        kind,
        namespaced: true,
        status_subresource,
        custom: true,
        selectable: &[],
    }
}

/// Every resource served. Status subresources as declared in the upstream CRDs in
/// `shared/reference/crds` (only the two Flux kinds declare one; SGCluster declares
/// only `scale`; Argo CD, Velero and SGBackup none).
pub const RESOURCES: &[Resource] = &[
    core(
        "pods",
        "Pod",
        true,
        true,
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    ),
    core("nodes", "Node", false, true, &["spec.unschedulable"]),
    core("namespaces", "Namespace", false, true, &["status.phase"]),
    core("services", "Service", true, true, &[]),
    core("secrets", "Secret", true, false, &["type"]),
    core("configmaps", "ConfigMap", true, false, &[]),
    core(
        "events",
        "Event",
        true,
        false,
        super::stackgres_controller::EVENT_FIELDS,
    ),
    Resource {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        status_subresource: false,
        custom: false,
        selectable: &[],
    },
    crd("velero.io", "v1", "backups", "Backup", false),
    crd("velero.io", "v1", "restores", "Restore", false),
    crd("velero.io", "v1", "schedules", "Schedule", false),
    crd(
        "velero.io",
        "v1",
        "backupstoragelocations",
        "BackupStorageLocation",
        false,
    ),
    crd("stackgres.io", "v1", "sgclusters", "SGCluster", false),
    crd("stackgres.io", "v1", "sgbackups", "SGBackup", false),
    crd("stackgres.io", "v1", "sgdbops", "SGDbOps", false),
    crd(
        "stackgres.io",
        "v1beta1",
        "sgobjectstorages",
        "SGObjectStorage",
        false,
    ),
    crd(
        "argoproj.io",
        "v1alpha1",
        "applications",
        "Application",
        false,
    ),
    crd(
        "argoproj.io",
        "v1alpha1",
        "appprojects",
        "AppProject",
        false,
    ),
    crd(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "kustomizations",
        "Kustomization",
        true,
    ),
    crd(
        "helm.toolkit.fluxcd.io",
        "v2",
        "helmreleases",
        "HelmRelease",
        true,
    ),
];

impl Resource {
    pub fn by_plural(plural: &str) -> Option<&'static Resource> {
        RESOURCES.iter().find(|r| r.plural == plural)
    }

    /// By the `apiVersion` and `kind` of an object.
    pub fn of(object: &Value) -> Option<&'static Resource> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        RESOURCES
            .iter()
            .find(|r| r.api_version() == api_version && r.kind == kind)
    }

    fn get(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
        RESOURCES
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `restores.velero.io`, `pods`: how the API server names the resource in messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Restore.velero.io`, `Pod`: how the API server names the kind in `Invalid` messages.
    fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    fn key(&self, namespace: &str, name: &str) -> Key {
        let namespace = if self.namespaced { namespace } else { "" };
        (self.plural, namespace.to_string(), name.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// Public records
// ---------------------------------------------------------------------------------------

/// One request as received.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// Raw query string (percent-encoded, as sent).
    pub query: String,
    pub content_type: Option<String>,
    /// The body as JSON; a JSON string holding the text if it is not JSON; null if empty.
    pub body: Value,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `discovery` or `unknown`.
    pub verb: String,
    /// Plural of the resource addressed (empty for discovery / unknown paths).
    pub resource: String,
    /// True for the `/status` subresource.
    pub status_subresource: bool,
    /// HTTP status answered (200 for a watch that was opened).
    pub status: u16,
}

impl Req {
    /// A decoded query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&self.query)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// A write refused with 422 `Invalid` (schema, name or required-field failure).
#[derive(Clone, Debug)]
pub struct Invalid {
    pub verb: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    /// The object that would have been stored.
    pub object: Value,
    pub errors: Vec<String>,
}

type Hook = dyn Fn(&Value) -> Vec<Value> + Send + Sync;

// ---------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------

/// (plural, namespace or "" for cluster-scoped, name).
type Key = (&'static str, String, String);

struct Event {
    rv: u64,
    resource: &'static Resource,
    namespace: String,
    kind: &'static str,
    object: Value,
    /// The object before a MODIFIED, for selector transitions.
    previous: Option<Value>,
}

struct Injected {
    verbs: Vec<&'static str>,
    plural: String,
    code: u16,
}

#[derive(Default)]
struct World {
    rv: u64,
    uids: u64,
    objects: BTreeMap<Key, Value>,
    events: Vec<Event>,
    /// Watches starting below this resourceVersion get 410 Expired.
    compacted: u64,
    failures: VecDeque<Injected>,
    scripts: HashMap<Key, VecDeque<Value>>,
    invalid: Vec<Invalid>,
    pruned: Vec<Pruned>,
}

struct Shared {
    origin: String,
    crds: Option<&'static Crds>,
    releases: Releases,
    world: Mutex<World>,
    /// Woken on every stored change (watches, `wait_for_object`).
    changed: tokio::sync::Notify,
    recorder: Recorder<Req>,
    hooks: Mutex<HashMap<&'static str, Vec<Arc<Hook>>>>,
    bookmark_every: Mutex<Duration>,
    /// When set, requests its rules do not allow are answered 403.
    authorizer: Mutex<Option<Arc<super::rbac::Authorizer>>>,
}

/// The CRD schemas, loaded once per test binary (`None` when the folder is absent).
fn crds() -> Option<&'static Crds> {
    static CRDS: OnceLock<Option<Crds>> = OnceLock::new();
    CRDS.get_or_init(Crds::load).as_ref()
}

pub struct K8sApi {
    shared: Arc<Shared>,
    server: Server,
    /// Velero's restore controller (`velero_controller.rs`).
    pub(super) velero: Mutex<super::velero_controller::VeleroState>,
}

impl K8sApi {
    /// Start on 127.0.0.1:0, serving the newest CRDs. Must be called inside a tokio runtime.
    pub fn start() -> K8sApi {
        K8sApi::start_with(Releases::default())
    }

    /// Start serving the CRDs of these releases (older ones from `crds/older/`).
    pub fn start_with(releases: Releases) -> K8sApi {
        let listener = bind_local();
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            origin,
            crds: crds(),
            releases,
            world: Mutex::new(World::default()),
            changed: tokio::sync::Notify::new(),
            recorder: Recorder::new(),
            hooks: Mutex::new(HashMap::new()),
            bookmark_every: Mutex::new(Duration::from_secs(1)),
            authorizer: Mutex::new(None),
        });
        let server = Server::stand_in(listener, shared.clone(), 16 * 1024 * 1024, handle);
        K8sApi {
            shared,
            server,
            velero: Mutex::default(),
        }
    }

    /// Enforce RBAC from now on, as `authorizer` allows (see `support::rbac`).
    pub fn enforce(&self, authorizer: Arc<super::rbac::Authorizer>) {
        *self.shared.authorizer.lock().unwrap() = Some(authorizer);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.origin.clone()
    }

    /// A client config for this server (plain http, default namespace `default`, kube's
    /// default retry of 429/503/504 left on).
    pub fn config(&self) -> kube::Config {
        let mut config = kube::Config::new(self.url().parse().expect("stand-in url"));
        config.default_namespace = DEFAULT_NAMESPACE.to_string();
        config
    }

    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("kube client")
    }

    /// Whether custom resources are being schema-checked (the CRD folder was found).
    pub fn schemas_loaded(&self) -> bool {
        self.shared.crds.is_some()
    }

    /// Interval between watch `BOOKMARK`s (when the client asked for them); default 1 s.
    pub fn set_bookmark_interval(&self, every: Duration) {
        *self.shared.bookmark_every.lock().unwrap() = every;
    }

    // --- records ------------------------------------------------------------------------

    pub fn requests(&self) -> Vec<Req> {
        self.shared.recorder.all()
    }

    /// Requests with this verb (`create`, `patch`, ...) on this plural.
    pub fn requests_to(&self, verb: &str, plural: &str) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| r.verb == verb && r.resource == plural)
            .collect()
    }

    /// Wait until the recorded requests satisfy `what`.
    pub async fn wait_for_requests(
        &self,
        what: impl Fn(&[Req]) -> bool,
        deadline: Duration,
    ) -> Result<(), String> {
        self.shared.recorder.wait_for(what, deadline).await
    }

    /// Writes refused with 422 `Invalid`; a test asserts this is empty.
    /// The fields pruned from what was written (by anyone, seeds included), in order.
    pub fn pruned(&self) -> Vec<Pruned> {
        self.world().pruned.clone()
    }

    pub fn invalid(&self) -> Vec<Invalid> {
        self.world().invalid.clone()
    }

    /// Every stored object of this plural, ordered by namespace and name.
    pub fn objects(&self, plural: &str) -> Vec<Value> {
        let res = resource(plural);
        self.world()
            .objects
            .iter()
            .filter(|((p, _, _), _)| *p == res.plural)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// One stored object (`namespace` is ignored for cluster-scoped resources).
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = resource(plural);
        self.world().objects.get(&res.key(namespace, name)).cloned()
    }

    /// Wait until the object exists (e.g. the code under test created it); returns it.
    pub async fn wait_for_object(
        &self,
        plural: &str,
        namespace: &str,
        name: &str,
        deadline: Duration,
    ) -> Value {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(object) = self.get(plural, namespace, name) {
                return object;
            }
            if tokio::time::timeout_at(end, notified).await.is_err() {
                panic!(
                    "{plural} {namespace}/{name} not created within {deadline:?}; requests:\n{}",
                    self.requests()
                        .iter()
                        .map(|r| format!("  {} {}?{} -> {}", r.method, r.path, r.query, r.status))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        }
    }

    /// The store's current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.world().rv
    }

    // --- seeding and scripting ----------------------------------------------------------

    /// Insert or replace an object directly (no validation, status kept): fixtures such
    /// as nodes, pods, completed backups, Argo CD / Flux objects. Kind and apiVersion
    /// pick the resource; uid, creationTimestamp and generation are filled in if missing;
    /// watchers see ADDED or MODIFIED. Returns the stored object.
    pub fn put(&self, object: Value) -> Value {
        put_object(&self.shared, object)
    }

    /// Replace an object's status (watchers see MODIFIED). Panics if it does not exist.
    pub fn set_status(&self, plural: &str, namespace: &str, name: &str, status: Value) -> Value {
        let res = resource(plural);
        let stored = {
            let mut world = self.world();
            let key = res.key(namespace, name);
            let previous = world
                .objects
                .get(&key)
                .cloned()
                .unwrap_or_else(|| panic!("set_status: no {plural} {namespace}/{name}"));
            let mut object = previous.clone();
            object["status"] = status;
            world.store_modified(res, key, object, previous)
        };
        self.shared.changed.notify_waiters();
        stored
    }

    /// Delete an object directly (watchers see DELETED). Returns it if it existed.
    pub fn remove(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = resource(plural);
        let removed = self.world().remove(res, res.key(namespace, name));
        self.shared.changed.notify_waiters();
        removed
    }

    /// Queue statuses for an object (it need not exist yet): each [`K8sApi::advance`]
    /// applies the next one.
    pub fn script(&self, plural: &str, namespace: &str, name: &str, steps: Vec<Value>) {
        let res = resource(plural);
        self.world()
            .scripts
            .entry(res.key(namespace, name))
            .or_default()
            .extend(steps);
    }

    /// Apply the next scripted status (watchers see MODIFIED); returns the stored object.
    /// Panics if the object does not exist or its script is used up.
    pub fn advance(&self, plural: &str, namespace: &str, name: &str) -> Value {
        let res = resource(plural);
        let step = self
            .world()
            .scripts
            .get_mut(&res.key(namespace, name))
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| {
                panic!("advance: no scripted status left for {plural} {namespace}/{name}")
            });
        self.set_status(plural, namespace, name, step)
    }

    /// Scripted statuses not applied yet.
    pub fn remaining_steps(&self, plural: &str, namespace: &str, name: &str) -> usize {
        let res = resource(plural);
        self.world()
            .scripts
            .get(&res.key(namespace, name))
            .map_or(0, VecDeque::len)
    }

    /// After every successful create of `plural` through the API (POST, or an apply that
    /// creates), `hook` gets the stored object and returns objects to [`K8sApi::put`].
    pub fn on_create(
        &self,
        plural: &str,
        hook: impl Fn(&Value) -> Vec<Value> + Send + Sync + 'static,
    ) {
        let res = resource(plural);
        self.shared
            .hooks
            .lock()
            .unwrap()
            .entry(res.plural)
            .or_default()
            .push(Arc::new(hook));
    }

    /// A shortcut: each created SGCluster gets its primary pod at once (`{name}-0`, already
    /// labelled `role=primary`, not Ready yet; flip it with [`K8sApi::set_pod_ready`]). Real
    /// StackGres labels the role only after bootstrap: restores are run on the emulator
    /// ([`K8sApi::run_stackgres`], `stackgres_controller.rs`).
    pub fn spawn_stackgres_pods(&self) {
        self.on_create("sgclusters", |cluster| {
            vec![stackgres_primary_pod(cluster, false)]
        });
    }

    /// Set a pod's `Ready` condition (and phase Running).
    pub fn set_pod_ready(&self, namespace: &str, name: &str, ready: bool) -> Value {
        self.set_status("pods", namespace, name, pod_status(ready))
    }

    /// The next request matching `method` on `plural` fails with `code` (FIFO), nothing
    /// applied. `method` is an HTTP method (`GET` covers get, list and watch) or a verb
    /// (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`). 429 carries
    /// `Retry-After: 1`, as kube-apiserver sends it; kube retries 429/503/504 by default.
    pub fn fail_next(&self, method: &str, plural: &str, code: u16) {
        let verbs: Vec<&'static str> = match method {
            "GET" => vec!["get", "list", "watch"],
            "POST" => vec!["create"],
            "PUT" => vec!["update"],
            "PATCH" => vec!["patch"],
            "DELETE" => vec!["delete"],
            verb => vec![
                *[
                    "get", "list", "watch", "create", "update", "patch", "delete",
                ]
                .iter()
                .find(|v| **v == verb)
                .unwrap_or_else(|| panic!("fail_next: unknown method or verb {verb}")),
            ],
        };
        let res = resource(plural);
        self.world().failures.push_back(Injected {
            verbs,
            plural: res.plural.to_string(),
            code,
        });
    }

    /// Forget the event history: watches from an older resourceVersion now get
    /// `410 Expired`, as after etcd compaction.
    pub fn compact(&self) {
        let mut world = self.world();
        world.compacted = world.rv;
        world.events.clear();
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.shared.world.lock().unwrap()
    }
}

fn resource(plural: &str) -> &'static Resource {
    Resource::by_plural(plural).unwrap_or_else(|| panic!("not a served resource: {plural}"))
}

// ---------------------------------------------------------------------------------------
// Fixture builders
// ---------------------------------------------------------------------------------------

/// Pod status with phase Running and the `Ready` condition set to `ready`.
pub fn pod_status(ready: bool) -> Value {
    let flag = if ready { "True" } else { "False" };
    json!({
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now()},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now()},
            {"type": "Ready", "status": flag, "lastTransitionTime": now()},
        ],
    })
}

/// Labels StackGres puts on a cluster's pods (`status.labelSelector` of the SGCluster);
/// the primary also has `role=primary`, or `master` under Patroni < 4
/// (`PatroniMember.getLabelRole`, StackGres ≥ 1.15), once Patroni leads.
pub fn stackgres_cluster_labels(cluster: &str) -> Value {
    json!({
        "app": "StackGresCluster",
        "stackgres.io/cluster-name": cluster,
        "stackgres.io/cluster": "true",
    })
}

/// The primary pod `{name}-0` the operator starts for an SGCluster.
pub fn stackgres_primary_pod(cluster: &Value, ready: bool) -> Value {
    let name = cluster["metadata"]["name"].as_str().expect("cluster name");
    let namespace = cluster["metadata"]["namespace"]
        .as_str()
        .unwrap_or(DEFAULT_NAMESPACE);
    let mut labels = stackgres_cluster_labels(name);
    labels["role"] = json!("primary");
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("{name}-0"),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": name,
                "uid": "00000000-0000-4000-8000-5a5a5a5a5a5a",
                "controller": true,
            }],
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "patroni", "image": "stackgres/patroni"}],
        },
        "status": pod_status(ready),
    })
}

/// A Ready node.
pub fn node(name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {"conditions": [{
            "type": "Ready",
            "status": if ready { "True" } else { "False" },
            "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
            "lastHeartbeatTime": now(),
            "lastTransitionTime": now(),
        }]},
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

// ---------------------------------------------------------------------------------------
// Store operations
// ---------------------------------------------------------------------------------------

impl World {
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn next_uid(&mut self) -> String {
        self.uids += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.uids)
    }

    /// Stamp a new object (uid, creationTimestamp, resourceVersion) and store it.
    fn store_new(&mut self, res: &'static Resource, key: Key, mut object: Value) -> Value {
        let uid = self.next_uid();
        let rv = self.next_rv();
        let m = meta(&mut object);
        m.entry("uid").or_insert(json!(uid));
        m.entry("creationTimestamp").or_insert(json!(now()));
        m.insert("resourceVersion".into(), json!(rv.to_string()));
        self.objects.insert(key.clone(), object.clone());
        self.events.push(Event {
            rv,
            resource: res,
            namespace: key.1,
            kind: "ADDED",
            object: object.clone(),
            previous: None,
        });
        object
    }

    fn store_modified(
        &mut self,
        res: &'static Resource,
        key: Key,
        mut object: Value,
        previous: Value,
    ) -> Value {
        let rv = self.next_rv();
        meta(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        self.objects.insert(key.clone(), object.clone());
        self.events.push(Event {
            rv,
            resource: res,
            namespace: key.1,
            kind: "MODIFIED",
            object: object.clone(),
            previous: Some(previous),
        });
        object
    }

    fn remove(&mut self, res: &'static Resource, key: Key) -> Option<Value> {
        let mut object = self.objects.remove(&key)?;
        let rv = self.next_rv();
        meta(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        self.events.push(Event {
            rv,
            resource: res,
            namespace: key.1,
            kind: "DELETED",
            object: object.clone(),
            previous: None,
        });
        Some(object)
    }

    fn take_failure(&mut self, verb: &str, plural: &str) -> Option<u16> {
        let at = self
            .failures
            .iter()
            .position(|f| f.plural == plural && f.verbs.contains(&verb))?;
        self.failures.remove(at).map(|f| f.code)
    }
}

fn meta(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = json!({});
    }
    let map = object.as_object_mut().expect("object");
    let metadata = map.entry("metadata").or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    metadata.as_object_mut().expect("metadata object")
}

fn str_at(object: &Value, pointer: &str) -> Option<String> {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The object without metadata (and without status when status is a subresource): what
/// `metadata.generation` tracks.
fn generation_view(res: &Resource, object: &Value) -> Value {
    let mut view = object.clone();
    if let Some(map) = view.as_object_mut() {
        map.remove("metadata");
        if res.status_subresource {
            map.remove("status");
        }
    }
    view
}

fn next_generation(res: &Resource, previous: &Value, object: &Value) -> i64 {
    let current = previous["metadata"]["generation"].as_i64().unwrap_or(1);
    if generation_view(res, previous) == generation_view(res, object) {
        current
    } else {
        current + 1
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

/// A `Status` failure object as kube-apiserver sends it.
fn status_body(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}

fn details(res: &Resource, name: &str) -> Value {
    let mut details = json!({"name": name, "kind": res.plural});
    if !res.group.is_empty() {
        details["group"] = json!(res.group);
    }
    details
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

impl Reply {
    fn ok(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    fn fail(code: u16, reason: &str, message: impl AsRef<str>, details: Option<Value>) -> Reply {
        Reply::ok(code, status_body(code, reason, message.as_ref(), details))
    }

    fn not_found(res: &Resource, name: &str) -> Reply {
        Reply::fail(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", res.group_resource()),
            Some(details(res, name)),
        )
    }

    fn no_route() -> Reply {
        Reply::fail(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        )
    }

    fn bad_request(message: impl AsRef<str>) -> Reply {
        Reply::fail(400, "BadRequest", message, None)
    }

    fn conflict(res: &Resource, name: &str) -> Reply {
        Reply::fail(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                res.group_resource()
            ),
            Some(details(res, name)),
        )
    }

    fn method_not_allowed() -> Reply {
        Reply::fail(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(json!({})),
        )
    }

    /// What the API server's authorizer answers: `User "…" cannot list resource "pods" in
    /// API group "" in the namespace "db"`.
    fn forbidden(target: &Target, verb: &str) -> Reply {
        let (ns, sa) = super::rbac::SERVICE_ACCOUNT;
        let res = target.res;
        let place = match &target.namespace {
            Some(n) => format!(" in the namespace \"{n}\""),
            None => " at the cluster scope".to_string(),
        };
        let message = format!(
            "{} is forbidden: User \"system:serviceaccount:{ns}:{sa}\" cannot {verb} resource \"{}\" in API group \"{}\"{place}",
            match &target.name {
                Some(name) => format!("{} \"{name}\"", res.group_resource()),
                None => res.group_resource(),
            },
            res.plural,
            res.group,
        );
        Reply::ok(
            403,
            status_body(
                403,
                "Forbidden",
                &message,
                Some(details(res, target.name.as_deref().unwrap_or(""))),
            ),
        )
    }

    fn injected(res: &Resource, name: &str, code: u16) -> Reply {
        let (reason, message) = match code {
            409 => {
                return Reply::conflict(res, name);
            }
            429 => (
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            ),
            500 => ("InternalError", "Internal error occurred: injected failure"),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted",
            ),
            403 => ("Forbidden", "forbidden: injected failure"),
            404 => return Reply::not_found(res, name),
            410 => ("Expired", "too old resource version"),
            _ => ("", "injected failure"),
        };
        let mut details = details(res, name);
        if code == 429 {
            details["retryAfterSeconds"] = json!(1);
        }
        let mut reply = Reply::fail(code, reason, message, Some(details));
        if code == 429 {
            reply.headers.push(("retry-after", "1".to_string()));
        }
        reply
    }

    fn into_response(self) -> Response {
        json_response(self.status, &self.headers, &self.body)
    }
}

/// What a path addresses.
struct Target {
    res: &'static Resource,
    /// `None`: all namespaces (namespaced collections) or cluster-scoped.
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

enum Route {
    Discovery(Value),
    Resource(Target),
    NotFound,
}

fn route(path: &str, origin: &str) -> Route {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["version"] => return Route::Discovery(version_info()),
        ["api"] => return Route::Discovery(api_versions(origin)),
        ["apis"] => return Route::Discovery(api_groups()),
        ["apis", group] => {
            return match api_group(group) {
                Some(g) => Route::Discovery(g),
                None => Route::NotFound,
            };
        }
        ["api", "v1"] => return Route::Discovery(api_resources("", "v1")),
        ["apis", group, version] => {
            return match RESOURCES
                .iter()
                .any(|r| r.group == *group && r.version == *version)
            {
                true => Route::Discovery(api_resources(group, version)),
                false => Route::NotFound,
            };
        }
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Route::NotFound,
    };
    let target = |plural: &str, namespace: Option<&str>, name: Option<&str>, status: bool| {
        let res = Resource::get(group, version, plural)?;
        if namespace.is_some() && !res.namespaced {
            return None;
        }
        if name.is_some() && res.namespaced && namespace.is_none() {
            return None;
        }
        Some(Route::Resource(Target {
            res,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            status,
        }))
    };
    let found = match rest {
        [plural] => target(plural, None, None, false),
        [plural, name] => target(plural, None, Some(name), false),
        [plural, name, "status"] => target(plural, None, Some(name), true),
        ["namespaces", ns, plural] => target(plural, Some(ns), None, false),
        ["namespaces", ns, plural, name] => target(plural, Some(ns), Some(name), false),
        ["namespaces", ns, plural, name, "status"] => target(plural, Some(ns), Some(name), true),
        _ => None,
    };
    found.unwrap_or(Route::NotFound)
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": SERVER_MINOR,
        "emulationMajor": "1",
        "emulationMinor": SERVER_MINOR,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": format!("v1.{SERVER_MINOR}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn api_versions(origin: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{
            "clientCIDR": "0.0.0.0/0",
            "serverAddress": origin.trim_start_matches("http://"),
        }],
    })
}

fn api_group(group: &str) -> Option<Value> {
    let mut versions: Vec<&str> = RESOURCES
        .iter()
        .filter(|r| r.group == group && !group.is_empty())
        .map(|r| r.version)
        .collect();
    versions.dedup();
    let preferred = *versions.first()?;
    Some(json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect::<Vec<_>>(),
        "preferredVersion": {"groupVersion": format!("{group}/{preferred}"), "version": preferred},
    }))
}

fn api_groups() -> Value {
    let mut names: Vec<&str> = RESOURCES
        .iter()
        .map(|r| r.group)
        .filter(|g| !g.is_empty())
        .collect();
    names.dedup();
    let groups: Vec<Value> = names
        .iter()
        .filter_map(|g| {
            let mut group = api_group(g)?;
            let map = group.as_object_mut()?;
            map.remove("kind");
            map.remove("apiVersion");
            Some(group)
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn api_resources(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.kind.to_lowercase(),
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        }));
        if r.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

/// `kubectl auth can-i`: every identity may ask what it may do. Without RBAC enforced,
/// everything is allowed.
fn self_subject_access_review(shared: &Shared, review: &Value) -> Reply {
    let attrs = &review["spec"]["resourceAttributes"];
    let s = |k: &str| attrs[k].as_str().unwrap_or_default().to_string();
    if review["kind"] != "SelfSubjectAccessReview" || !attrs.is_object() {
        return Reply::ok(
            400,
            status_body(
                400,
                "BadRequest",
                "expected a SelfSubjectAccessReview with spec.resourceAttributes",
                None,
            ),
        );
    }
    let namespace = attrs["namespace"].as_str().filter(|n| !n.is_empty());
    let allowed = shared.authorizer.lock().unwrap().as_ref().is_none_or(|a| {
        let resource = match s("subresource") {
            sub if sub.is_empty() => s("resource"),
            sub => format!("{}/{sub}", s("resource")),
        };
        a.would_allow(&s("verb"), &s("group"), &resource, namespace)
    });
    let mut answer = review.clone();
    answer["status"] = json!({ "allowed": allowed });
    Reply::ok(201, answer)
}

async fn handle(shared: Arc<Shared>, (method, uri, headers, body): Incoming) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&query).unwrap_or_default();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body_value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let mut req = Req {
        method: method.to_string(),
        path: path.clone(),
        query,
        content_type: content_type.clone(),
        body: body_value.clone(),
        verb: "unknown".into(),
        resource: String::new(),
        status_subresource: false,
        status: 0,
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    if path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" && method == Method::POST {
        req.verb = "create".into();
        req.resource = "selfsubjectaccessreviews".into();
        let reply = self_subject_access_review(&shared, &body_value);
        req.status = reply.status;
        shared.recorder.push(req);
        return reply.into_response();
    }
    // `pods/{name}/log`: what the StackGres emulator's containers wrote.
    if let Some(reply) =
        super::stackgres_controller::pod_log_route(&path, &shared.origin, |n, p| {
            let authorizer = shared.authorizer.lock().unwrap().clone();
            authorizer.is_none_or(|a| a.allows("get", "", "pods/log", Some(n), Some(p)))
        })
    {
        (req.verb, req.resource, req.status) =
            ("get".into(), "pods/log".into(), reply.status().as_u16());
        shared.recorder.push(req);
        return reply;
    }
    let target = match route(&path, &shared.origin) {
        Route::Discovery(body) => {
            req.verb = "discovery".into();
            let reply = if method == Method::GET {
                Reply::ok(200, body)
            } else {
                Reply::method_not_allowed()
            };
            req.status = reply.status;
            shared.recorder.push(req);
            return reply.into_response();
        }
        Route::NotFound => {
            let reply = Reply::no_route();
            req.status = reply.status;
            shared.recorder.push(req);
            return reply.into_response();
        }
        Route::Resource(target) => target,
    };
    let watch = matches!(param("watch"), Some("true" | "1"));
    let verb = match (&method, target.name.is_some()) {
        (&Method::GET, false) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::GET, true) => "get",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        _ => "unknown",
    };
    req.verb = verb.into();
    req.resource = target.res.plural.into();
    req.status_subresource = target.status;

    let authorizer = shared.authorizer.lock().unwrap().clone();
    let forbidden = authorizer.is_some_and(|a| {
        !a.allows(
            verb,
            target.res.group,
            target.res.plural,
            target.namespace.as_deref(),
            target.name.as_deref(),
        )
    });
    let injected = shared
        .world
        .lock()
        .unwrap()
        .take_failure(verb, target.res.plural);
    let reply = if forbidden {
        Reply::forbidden(&target, verb)
    } else if let Some(code) = injected {
        Reply::injected(target.res, target.name.as_deref().unwrap_or(""), code)
    } else if target.status && !target.res.status_subresource {
        Reply::no_route()
    } else if target.status && !matches!(verb, "get" | "update" | "patch") {
        Reply::method_not_allowed()
    } else {
        let call = Call {
            shared: &shared,
            target: &target,
            params: &params,
        };
        match verb {
            "watch" => match call.watch() {
                Ok(response) => {
                    req.status = 200;
                    shared.recorder.push(req);
                    return response;
                }
                Err(reply) => reply,
            },
            "list" => call.list(),
            "get" => call.get(),
            "create" => call.create(&body_value),
            "update" => call.update(&body_value),
            "patch" => call.patch(content_type.as_deref(), &body_value, &body),
            "delete" => call.delete(),
            _ => Reply::method_not_allowed(),
        }
    };
    req.status = reply.status;
    shared.recorder.push(req);
    reply.into_response()
}

struct Call<'a> {
    shared: &'a Arc<Shared>,
    target: &'a Target,
    params: &'a [(String, String)],
}

impl Call<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn res(&self) -> &'static Resource {
        self.target.res
    }

    fn namespace(&self) -> &str {
        self.target.namespace.as_deref().unwrap_or("")
    }

    fn name(&self) -> &str {
        self.target.name.as_deref().unwrap_or("")
    }

    fn dry_run(&self) -> bool {
        self.params.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }

    fn selectors(&self) -> Result<Selectors, Reply> {
        let labels = parse_label_selector(self.param("labelSelector").unwrap_or(""))
            .map_err(|e| Reply::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = parse_field_selector(self.res(), self.param("fieldSelector").unwrap_or(""))
            .map_err(Reply::bad_request)?;
        Ok(Selectors { labels, fields })
    }

    fn in_scope(&self, namespace: &str) -> bool {
        match &self.target.namespace {
            Some(ns) => ns == namespace,
            None => true,
        }
    }

    fn get(&self) -> Reply {
        let world = self.shared.world.lock().unwrap();
        match world
            .objects
            .get(&self.res().key(self.namespace(), self.name()))
        {
            Some(object) => Reply::ok(200, object.clone()),
            None => Reply::not_found(self.res(), self.name()),
        }
    }

    fn list(&self) -> Reply {
        let selectors = match self.selectors() {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let world = self.shared.world.lock().unwrap();
        let res = self.res();
        let matching: Vec<Value> = world
            .objects
            .iter()
            .filter(|((p, ns, _), object)| {
                *p == res.plural && self.in_scope(ns) && selectors.matches(object)
            })
            .map(|(_, object)| list_item(res, object))
            .collect();
        let start: usize = match self.param("continue") {
            Some(token) if !token.is_empty() => match token.parse() {
                Ok(n) => n,
                Err(_) => return Reply::bad_request("continue key is not valid"),
            },
            _ => 0,
        };
        let limit = self
            .param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let end = limit.map_or(matching.len(), |l| (start + l).min(matching.len()));
        let items: Vec<Value> = matching
            .get(start.min(matching.len())..end)
            .unwrap_or_default()
            .to_vec();
        let mut metadata = json!({"resourceVersion": world.rv.to_string()});
        if end < matching.len() {
            metadata["continue"] = json!(end.to_string());
            metadata["remainingItemCount"] = json!(matching.len() - end);
        }
        Reply::ok(
            200,
            json!({
                "kind": format!("{}List", res.kind),
                "apiVersion": res.api_version(),
                "metadata": metadata,
                "items": items,
            }),
        )
    }

    fn delete(&self) -> Reply {
        let res = self.res();
        let key = res.key(self.namespace(), self.name());
        let mut world = self.shared.world.lock().unwrap();
        if self.dry_run() {
            return match world.objects.get(&key) {
                Some(object) => Reply::ok(200, object.clone()),
                None => Reply::not_found(res, self.name()),
            };
        }
        match world.remove(res, key) {
            Some(object) => {
                drop(world);
                self.shared.changed.notify_waiters();
                Reply::ok(200, object)
            }
            None => Reply::not_found(res, self.name()),
        }
    }

    /// Kind/apiVersion of a body must be the resource's.
    fn check_type(&self, body: &Value) -> Result<(), Reply> {
        let res = self.res();
        let Some(map) = body.as_object() else {
            return Err(Reply::bad_request(
                "the body of the request is not a JSON object",
            ));
        };
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if kind.is_empty() {
            return Err(Reply::bad_request(format!(
                "Object 'Kind' is missing in '{body}'"
            )));
        }
        if api_version != res.api_version() || kind != res.kind {
            return Err(Reply::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                res.api_version()
            )));
        }
        Ok(())
    }

    fn create(&self, body: &Value) -> Reply {
        let res = self.res();
        if res.namespaced && self.target.namespace.is_none() {
            return Reply::method_not_allowed();
        }
        if let Err(reply) = self.check_type(body) {
            return reply;
        }
        match self.create_object(body.clone(), "create") {
            Ok(object) => Reply::ok(201, object),
            Err(reply) => reply,
        }
    }

    /// Shared by POST and by server-side apply of an object that does not exist.
    fn create_object(&self, mut object: Value, verb: &str) -> Result<Value, Reply> {
        let res = self.res();
        let namespace = self.namespace().to_string();
        {
            let m = meta(&mut object);
            if res.namespaced {
                match m.get("namespace").and_then(Value::as_str) {
                    Some(ns) if !ns.is_empty() && ns != namespace => {
                        return Err(Reply::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request",
                        ));
                    }
                    _ => {
                        m.insert("namespace".into(), json!(namespace));
                    }
                }
            } else {
                m.remove("namespace");
            }
            for field in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
            ] {
                m.remove(field);
            }
            m.insert("generation".into(), json!(1));
        }
        if res.status_subresource
            && let Some(map) = object.as_object_mut()
        {
            map.remove("status");
        }
        let mut world = self.shared.world.lock().unwrap();
        let name = match str_at(&object, "/metadata/name").filter(|n| !n.is_empty()) {
            Some(name) => name,
            None => match str_at(&object, "/metadata/generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => {
                    let suffix = format!("{:05x}", (world.uids * 7919 + world.rv) % 0xfffff);
                    let name = format!("{prefix}{suffix}");
                    meta(&mut object).insert("name".into(), json!(name));
                    name
                }
                None => {
                    let errors = vec![
                        "metadata.name: Required value: name or generateName is required"
                            .to_string(),
                    ];
                    return Err(self.refuse(&mut world, verb, "", object, errors));
                }
            },
        };
        let mut errors = name_errors(res, &name);
        if errors.is_empty() {
            errors = self.admit(&mut world, verb, &mut object);
        }
        if !errors.is_empty() {
            return Err(self.refuse(&mut world, verb, &name, object, errors));
        }
        let key = res.key(&namespace, &name);
        if world.objects.contains_key(&key) {
            return Err(Reply::fail(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", res.group_resource()),
                Some(details(res, &name)),
            ));
        }
        if self.dry_run() {
            let m = meta(&mut object);
            m.insert(
                "uid".into(),
                json!(format!("00000000-0000-4000-9000-{:012x}", world.uids + 1)),
            );
            m.insert("creationTimestamp".into(), json!(now()));
            return Ok(object);
        }
        let stored = world.store_new(res, key, object);
        drop(world);
        self.shared.changed.notify_waiters();
        self.run_hooks(&stored);
        Ok(stored)
    }

    fn run_hooks(&self, stored: &Value) {
        let hooks: Vec<Arc<Hook>> = self
            .shared
            .hooks
            .lock()
            .unwrap()
            .get(self.res().plural)
            .cloned()
            .unwrap_or_default();
        for hook in hooks {
            for extra in hook(stored) {
                put_object(self.shared, extra);
            }
        }
    }

    /// Prune (unless `fieldValidation=Strict`) and validate a custom resource about to be
    /// stored; the schema errors.
    fn admit(&self, world: &mut World, verb: &str, object: &mut Value) -> Vec<String> {
        if !self.res().custom {
            return Vec::new();
        }
        let Some(crds) = self.shared.crds else {
            return Vec::new();
        };
        let releases = &self.shared.releases;
        if self.param("fieldValidation") != Some("Strict") {
            let res = self.res().plural;
            for path in crds.prune(object, releases) {
                world.pruned.push(Pruned::new(verb, res, object, path));
            }
        }
        crds.validate_with(object, releases)
            .err()
            .unwrap_or_default()
    }

    /// Record and answer a 422 `Invalid`.
    fn refuse(
        &self,
        world: &mut World,
        verb: &str,
        name: &str,
        object: Value,
        errors: Vec<String>,
    ) -> Reply {
        let res = self.res();
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| {
                let mut cause = json!({"reason": "FieldValueInvalid", "message": e});
                if let Some((field, _)) = e.split_once(": ")
                    && !field.contains(' ')
                {
                    cause["field"] = json!(field);
                }
                cause
            })
            .collect();
        world.invalid.push(Invalid {
            verb: verb.to_string(),
            resource: res.plural.to_string(),
            namespace: self.namespace().to_string(),
            name: name.to_string(),
            object,
            errors: errors.clone(),
        });
        let mut details = json!({"name": name, "kind": res.kind, "causes": causes});
        if !res.group.is_empty() {
            details["group"] = json!(res.group);
        }
        Reply::fail(
            422,
            "Invalid",
            format!(
                "{} \"{name}\" is invalid: [{}]",
                res.group_kind(),
                errors.join(", ")
            ),
            Some(details),
        )
    }

    /// Store `proposed` as the new state of an existing object (PUT / PATCH result).
    fn commit(&self, verb: &str, previous: Value, proposed: Value) -> Reply {
        let res = self.res();
        let name = self.name().to_string();
        let mut object = if self.target.status {
            // Only status changes through the status subresource.
            let mut object = previous.clone();
            object["status"] = proposed.get("status").cloned().unwrap_or(Value::Null);
            if object["status"].is_null()
                && let Some(map) = object.as_object_mut()
            {
                map.remove("status");
            }
            object
        } else {
            let mut object = proposed;
            if res.status_subresource {
                match previous.get("status") {
                    Some(status) => object["status"] = status.clone(),
                    None => {
                        if let Some(map) = object.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
            object
        };
        if !object.is_object() {
            return Reply::bad_request("the patched object is not a JSON object");
        }
        // Identity and server-owned metadata stay.
        object["apiVersion"] = json!(res.api_version());
        object["kind"] = json!(res.kind);
        let generation = next_generation(res, &previous, &object);
        {
            let m = meta(&mut object);
            for field in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "resourceVersion",
            ] {
                match previous["metadata"].get(field) {
                    Some(v) => m.insert(field.into(), v.clone()),
                    None => m.remove(field),
                };
            }
            m.insert("generation".into(), json!(generation));
        }
        let mut world = self.shared.world.lock().unwrap();
        let errors = self.admit(&mut world, verb, &mut object);
        if !errors.is_empty() {
            return self.refuse(&mut world, verb, &name, object, errors);
        }
        if object == previous || self.dry_run() {
            return Reply::ok(200, object);
        }
        let key = res.key(self.namespace(), &name);
        if world.objects.get(&key) != Some(&previous) {
            return Reply::conflict(res, &name);
        }
        let stored = world.store_modified(res, key, object, previous);
        drop(world);
        self.shared.changed.notify_waiters();
        Reply::ok(200, stored)
    }

    fn current(&self) -> Option<Value> {
        self.shared
            .world
            .lock()
            .unwrap()
            .objects
            .get(&self.res().key(self.namespace(), self.name()))
            .cloned()
    }

    /// An optimistic-concurrency `metadata.resourceVersion` in a body that is not current.
    fn stale(&self, body: &Value, previous: &Value) -> bool {
        match body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            Some(rv) if !rv.is_empty() => previous["metadata"]["resourceVersion"] != json!(rv),
            _ => false,
        }
    }

    fn update(&self, body: &Value) -> Reply {
        let res = self.res();
        if let Err(reply) = self.check_type(body) {
            return reply;
        }
        if str_at(body, "/metadata/name").as_deref() != Some(self.name()) {
            return Reply::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({})",
                str_at(body, "/metadata/name").unwrap_or_default(),
                self.name()
            ));
        }
        let Some(previous) = self.current() else {
            return Reply::not_found(res, self.name());
        };
        if body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            let errors = vec![
                "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
                    .to_string(),
            ];
            let mut world = self.shared.world.lock().unwrap();
            return self.refuse(&mut world, "update", self.name(), body.clone(), errors);
        }
        if self.stale(body, &previous) {
            return Reply::conflict(res, self.name());
        }
        self.commit("update", previous, body.clone())
    }

    fn patch(&self, content_type: Option<&str>, body: &Value, raw: &Bytes) -> Reply {
        let res = self.res();
        let media = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let accepted = "accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";
        match media.as_str() {
            "application/merge-patch+json" | "application/json-patch+json" => {}
            "application/strategic-merge-patch+json" if !res.custom => {}
            "application/apply-patch+yaml" => return self.apply(body, raw),
            _ => {
                return Reply::fail(
                    415,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format - {accepted}"),
                    None,
                );
            }
        }
        let Some(previous) = self.current() else {
            return Reply::not_found(res, self.name());
        };
        let mut object = previous.clone();
        if media == "application/json-patch+json" {
            let Some(ops) = body.as_array() else {
                return Reply::bad_request(
                    "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
                );
            };
            if let Err(e) = json_patch(&mut object, ops) {
                return Reply::fail(422, "Invalid", e, None);
            }
        } else {
            if !body.is_object() {
                return Reply::bad_request("the body of the request is not a JSON object");
            }
            if self.stale(body, &previous) {
                return Reply::conflict(res, self.name());
            }
            // Strategic merge (core types only) is treated as a JSON merge patch.
            merge_patch(&mut object, body);
        }
        self.commit("patch", previous, object)
    }

    /// Server-side apply, as a merge patch; creates the object when it does not exist.
    fn apply(&self, body: &Value, raw: &Bytes) -> Reply {
        let res = self.res();
        if !self
            .params
            .iter()
            .any(|(k, v)| k == "fieldManager" && !v.is_empty())
        {
            let mut world = self.shared.world.lock().unwrap();
            let errors =
                vec!["fieldManager: Required value: is required for apply patch".to_string()];
            let mut reply = self.refuse(&mut world, "patch", self.name(), body.clone(), errors);
            reply.body["message"] = json!(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
            );
            return reply;
        }
        if !body.is_object() {
            return Reply::bad_request(format!(
                "error decoding YAML: the apply body is not a JSON object: {}",
                String::from_utf8_lossy(raw)
            ));
        }
        if let Err(reply) = self.check_type(body) {
            return reply;
        }
        if str_at(body, "/metadata/name").as_deref() != Some(self.name()) {
            return Reply::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({})",
                str_at(body, "/metadata/name").unwrap_or_default(),
                self.name()
            ));
        }
        match self.current() {
            None => match self.create_object(body.clone(), "patch") {
                Ok(object) => Reply::ok(201, object),
                Err(reply) => reply,
            },
            Some(previous) => {
                if self.stale(body, &previous) {
                    return Reply::conflict(res, self.name());
                }
                let mut object = previous.clone();
                merge_patch(&mut object, body);
                self.commit("patch", previous, object)
            }
        }
    }

    fn watch(&self) -> Result<Response, Reply> {
        let selectors = self.selectors()?;
        let res = self.res();
        let bookmarks = matches!(self.param("allowWatchBookmarks"), Some("true" | "1"));
        let initial_events = matches!(self.param("sendInitialEvents"), Some("true" | "1"));
        let timeout = self
            .param("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map_or(Duration::from_secs(1800), Duration::from_secs);
        let from = self.param("resourceVersion").unwrap_or("");
        let world = self.shared.world.lock().unwrap();
        let mut lines = Vec::new();
        let cursor;
        let mut closed = false;
        match from.parse::<u64>() {
            Ok(rv) if rv > 0 && !initial_events => {
                if rv < world.compacted {
                    lines.push(watch_line(
                        "ERROR",
                        &status_body(
                            410,
                            "Expired",
                            &format!("too old resource version: {rv} ({})", world.compacted),
                            None,
                        ),
                    ));
                    closed = true;
                }
                cursor = rv;
            }
            _ if from.is_empty() || from == "0" || initial_events => {
                // Synthetic ADDED for the current state, then changes.
                for ((p, ns, _), object) in &world.objects {
                    if *p == res.plural && self.in_scope(ns) && selectors.matches(object) {
                        lines.push(watch_line("ADDED", object));
                    }
                }
                cursor = world.rv;
                if initial_events {
                    lines.push(watch_line("BOOKMARK", &bookmark(res, cursor, true)));
                }
            }
            _ => {
                return Err(Reply::bad_request(format!(
                    "invalid resource version: {from}"
                )));
            }
        }
        drop(world);
        let state = Watch {
            shared: self.shared.clone(),
            res,
            namespace: self.target.namespace.clone(),
            selectors,
            cursor,
            pending: lines.into(),
            closed,
            bookmarks,
            deadline: tokio::time::Instant::now() + timeout,
        };
        let stream = futures_util::stream::unfold(state, Watch::next);
        Ok(axum::http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("cache-control", "no-cache, private")
            .body(Body::from_stream(stream))
            .expect("watch response"))
    }
}

/// [`K8sApi::put`], also used for the objects hooks return.
fn put_object(shared: &Shared, object: Value) -> Value {
    let res =
        Resource::of(&object).unwrap_or_else(|| panic!("put: no served resource for {object}"));
    let mut object = object;
    let name = str_at(&object, "/metadata/name")
        .unwrap_or_else(|| panic!("put: object without metadata.name: {object}"));
    let namespace = if res.namespaced {
        let ns =
            str_at(&object, "/metadata/namespace").unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        meta(&mut object).insert("namespace".into(), json!(ns));
        ns
    } else {
        meta(&mut object).remove("namespace");
        String::new()
    };
    let stored = {
        let mut world = shared.world.lock().unwrap();
        if let (true, Some(crds)) = (res.custom, shared.crds) {
            for path in crds.prune(&mut object, &shared.releases) {
                world
                    .pruned
                    .push(Pruned::new("put", res.plural, &object, path));
            }
        }
        let key = res.key(&namespace, &name);
        match world.objects.get(&key).cloned() {
            Some(previous) => {
                let m = meta(&mut object);
                for field in ["uid", "creationTimestamp"] {
                    if !m.contains_key(field) {
                        m.insert(field.into(), previous["metadata"][field].clone());
                    }
                }
                if !m.contains_key("generation") {
                    let generation = next_generation(res, &previous, &object);
                    meta(&mut object).insert("generation".into(), json!(generation));
                }
                world.store_modified(res, key, object, previous)
            }
            None => {
                meta(&mut object).entry("generation").or_insert(json!(1));
                world.store_new(res, key, object)
            }
        }
    };
    shared.changed.notify_waiters();
    stored
}

/// List items: custom resources carry apiVersion/kind, core list items do not (as the
/// real server's typed lists).
fn list_item(res: &Resource, object: &Value) -> Value {
    let mut item = object.clone();
    if !res.custom
        && let Some(map) = item.as_object_mut()
    {
        map.remove("apiVersion");
        map.remove("kind");
    }
    item
}

fn bookmark(res: &Resource, rv: u64, initial_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": metadata})
}

fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// An open watch: sends queued lines, then events after `cursor`, then waits.
struct Watch {
    shared: Arc<Shared>,
    res: &'static Resource,
    namespace: Option<String>,
    selectors: Selectors,
    cursor: u64,
    pending: VecDeque<Bytes>,
    closed: bool,
    bookmarks: bool,
    deadline: tokio::time::Instant,
}

impl Watch {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Watch)> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some((Ok(line), self));
            }
            if self.closed {
                return None;
            }
            let shared = self.shared.clone();
            let notified = shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.collect();
            if !self.pending.is_empty() {
                continue;
            }
            let every = *shared.bookmark_every.lock().unwrap();
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(self.deadline) => return None,
                _ = tokio::time::sleep(every), if self.bookmarks => {
                    let mark = bookmark(self.res, self.cursor, false);
                    self.pending.push_back(watch_line("BOOKMARK", &mark));
                }
            }
        }
    }

    /// Queue the events after the cursor that this watch sees.
    fn collect(&mut self) {
        let world = self.shared.world.lock().unwrap();
        if self.cursor < world.compacted {
            self.pending.push_back(watch_line(
                "ERROR",
                &status_body(410, "Expired", "too old resource version", None),
            ));
            self.closed = true;
            return;
        }
        let start = world.events.partition_point(|e| e.rv <= self.cursor);
        for event in &world.events[start..] {
            if event.resource.plural != self.res.plural {
                continue;
            }
            if let Some(ns) = &self.namespace
                && *ns != event.namespace
            {
                continue;
            }
            let now_matches = self.selectors.matches(&event.object);
            let was_matching = event
                .previous
                .as_ref()
                .is_some_and(|p| self.selectors.matches(p));
            let kind = match (event.kind, was_matching, now_matches) {
                ("MODIFIED", true, false) => "DELETED",
                ("MODIFIED", false, true) => "ADDED",
                ("MODIFIED", false, false) => continue,
                (_, _, false) => continue,
                (kind, _, true) => kind,
            };
            self.pending.push_back(watch_line(kind, &event.object));
        }
        self.cursor = world.rv;
    }
}

// ---------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum LabelReq {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Clone, Debug)]
struct Selectors {
    labels: Vec<LabelReq>,
    /// (field path, equal?, value)
    fields: Vec<(String, bool, String)>,
}

impl Selectors {
    fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|r| match r {
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::Ne(k, v) => label(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
        });
        labels_ok
            && self.fields.iter().all(|(path, equal, value)| {
                let pointer = format!("/{}", path.replace('.', "/"));
                let actual = match object.pointer(&pointer) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                (actual == *value) == *equal
            })
    }
}

/// Split on commas outside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_label_selector(s: &str) -> Result<Vec<LabelReq>, String> {
    let mut reqs = Vec::new();
    for term in split_terms(s) {
        let req = if let Some((head, tail)) = term.split_once('(') {
            let words: Vec<&str> = head.split_whitespace().collect();
            let values = tail
                .strip_suffix(')')
                .ok_or_else(|| format!("{term}: missing ')'"))?
                .split(',')
                .map(|v| v.trim().to_string())
                .collect();
            match words.as_slice() {
                [key, "in"] => LabelReq::In(key.to_string(), values),
                [key, "notin"] => LabelReq::NotIn(key.to_string(), values),
                _ => {
                    return Err(format!(
                        "{term}: expected `key in (..)` or `key notin (..)`"
                    ));
                }
            }
        } else if let Some(key) = term.strip_prefix('!') {
            LabelReq::NotExists(key.trim().to_string())
        } else if let Some((k, v)) = term.split_once("!=") {
            LabelReq::Ne(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = term.split_once("==") {
            LabelReq::Eq(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = term.split_once('=') {
            LabelReq::Eq(k.trim().to_string(), v.trim().to_string())
        } else {
            LabelReq::Exists(term.to_string())
        };
        let key = match &req {
            LabelReq::Eq(k, _)
            | LabelReq::Ne(k, _)
            | LabelReq::In(k, _)
            | LabelReq::NotIn(k, _)
            | LabelReq::Exists(k)
            | LabelReq::NotExists(k) => k,
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("{term}: invalid label key"));
        }
        reqs.push(req);
    }
    Ok(reqs)
}

fn parse_field_selector(res: &Resource, s: &str) -> Result<Vec<(String, bool, String)>, String> {
    let mut fields = Vec::new();
    for term in split_terms(s) {
        let (path, equal, value) = if let Some((k, v)) = term.split_once("!=") {
            (k, false, v)
        } else if let Some((k, v)) = term.split_once("==") {
            (k, true, v)
        } else if let Some((k, v)) = term.split_once('=') {
            (k, true, v)
        } else {
            return Err(format!(
                "invalid selector: '{s}'; can't understand '{term}'"
            ));
        };
        let path = path.trim();
        if !["metadata.name", "metadata.namespace"].contains(&path)
            && !res.selectable.contains(&path)
        {
            return Err(format!("field label not supported: {path}"));
        }
        fields.push((path.to_string(), equal, value.trim().to_string()));
    }
    Ok(fields)
}

// ---------------------------------------------------------------------------------------
// Names and patches
// ---------------------------------------------------------------------------------------

/// Object name rules: DNS-1123 label for namespaces, DNS-1123 subdomain otherwise.
fn name_errors(res: &Resource, name: &str) -> Vec<String> {
    let label = res.plural == "namespaces";
    let max = if label { 63 } else { 253 };
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (c == '.' && !label));
    let ends_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if name.len() <= max && chars_ok && ends_ok {
        Vec::new()
    } else {
        let rule = if label {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        };
        vec![format!("metadata.name: Invalid value: \"{name}\": {rule}")]
    }
}
