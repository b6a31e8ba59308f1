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

mod admission;
mod fixtures;
mod resources;
mod routes;
mod selectors;
mod store;
mod verbs;
mod watch;

use admission::*;
pub use fixtures::*;
pub use resources::*;
use routes::*;
use selectors::*;
use store::*;
use verbs::*;
use watch::*;

/// Default namespace of [`K8sApi::client`].
pub const DEFAULT_NAMESPACE: &str = "default";
/// What `/version` reports.
pub const SERVER_MINOR: &str = "33";

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
