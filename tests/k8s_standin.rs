//! The Kubernetes API stand-in driven by the real kube client: paths, verbs, patch types,
//! watch streams, `Status` errors, schema checks and scripted controllers.

mod support;

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use support::k8s_api::{K8sApi, node, stackgres_cluster_labels};
use support::velero_controller::backup_item;

const PATIENCE: Duration = Duration::from_secs(20);

fn restores() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("velero.io", "v1", "Restore"),
        "restores",
    )
}

fn sgclusters() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("stackgres.io", "v1", "SGCluster"),
        "sgclusters",
    )
}

fn kustomizations() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization"),
        "kustomizations",
    )
}

/// The Restore of backends.md §2.1.
fn restore(name: &str) -> DynamicObject {
    DynamicObject::new(name, &restores()).data(json!({
        "spec": {
            "backupName": "nightly-20260115020000",
            "includedNamespaces": ["orders"],
            "namespaceMapping": {"orders": "orders-restore"},
            "restorePVs": true,
            "existingResourcePolicy": "none",
            "itemOperationTimeout": "4h",
        }
    }))
}

/// The PITR SGCluster of backends.md §1.1.
fn sgcluster(name: &str) -> DynamicObject {
    DynamicObject::new(name, &sgclusters()).data(json!({
        "spec": {
            "instances": 1,
            "postgres": {"version": "16"},
            "pods": {"persistentVolume": {"size": "50Gi"}},
            "initialData": {"restore": {
                "downloadDiskConcurrency": 2,
                "fromBackup": {
                    "name": "orders-nightly-20260115",
                    "pointInTimeRecovery": {"restoreToTimestamp": "2026-01-15T10:30:00Z"},
                },
            }},
        }
    }))
}

fn api_error(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn phase(object: &DynamicObject) -> Option<&str> {
    object.data.pointer("/status/phase").and_then(Value::as_str)
}

/// Schema assertions need the CRD folder; without it they are reported skipped.
fn schemas(api: &K8sApi, test: &str) -> bool {
    if !api.schemas_loaded() {
        println!("{test}: CRD schemas absent, schema assertions skipped");
    }
    api.schemas_loaded()
}

#[tokio::test]
async fn typed_core_objects_get_list_and_not_found() {
    let api = K8sApi::start();
    api.put(node("node-1", true));
    api.put(node("node-2", false));
    let mut labels = stackgres_cluster_labels("orders");
    labels["role"] = json!("primary");
    api.put(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "orders-0", "namespace": "db", "labels": labels},
        "spec": {"nodeName": "node-1", "containers": [{"name": "patroni", "image": "x"}]},
        "status": {"phase": "Running"},
    }));
    api.put(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "orders-1", "namespace": "db",
                     "labels": stackgres_cluster_labels("orders")},
        "spec": {"nodeName": "node-2", "containers": [{"name": "patroni", "image": "x"}]},
    }));
    let client = api.client();

    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default())
        .await
        .expect("list nodes");
    let names: Vec<_> = list
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    assert_eq!(names, ["node-1", "node-2"]);
    assert!(list.metadata.resource_version.is_some());
    let ready = nodes.get("node-1").await.expect("get node");
    let conditions = ready.status.and_then(|s| s.conditions).unwrap_or_default();
    assert_eq!(conditions[0].type_, "Ready");
    assert_eq!(conditions[0].status, "True");

    let pods: Api<Pod> = Api::namespaced(client.clone(), "db");
    let primary = pods
        .list(&ListParams::default().labels("stackgres.io/cluster-name=orders,role=primary"))
        .await
        .expect("list by label");
    assert_eq!(primary.items.len(), 1);
    assert_eq!(primary.items[0].metadata.name.as_deref(), Some("orders-0"));
    let on_node2 = pods
        .list(&ListParams::default().fields("spec.nodeName=node-2"))
        .await
        .expect("list by field");
    assert_eq!(on_node2.items.len(), 1);
    let not_primary = pods
        .list(&ListParams::default().labels("app=StackGresCluster,!role"))
        .await
        .expect("set-based selector");
    assert_eq!(
        not_primary.items[0].metadata.name.as_deref(),
        Some("orders-1")
    );
    let paged = pods
        .list(&ListParams::default().limit(1))
        .await
        .expect("first page");
    assert_eq!(paged.items.len(), 1);
    let token = paged.metadata.continue_.clone().expect("continue token");
    let rest = pods
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await
        .expect("second page");
    assert_eq!(rest.items[0].metadata.name.as_deref(), Some("orders-1"));

    let err = api_error(pods.get("nope").await.expect_err("missing pod"));
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "pods \"nope\" not found");
    assert!(pods.get_opt("nope").await.expect("get_opt").is_none());
    let other_ns: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert!(
        other_ns
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let all: Api<Pod> = Api::all(client);
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );

    let bad = api_error(
        Api::<Pod>::namespaced(api.client(), "db")
            .list(&ListParams::default().fields("spec.containers=x"))
            .await
            .expect_err("unsupported field"),
    );
    assert_eq!(bad.code, 400);

    let paths: Vec<String> = api.requests().iter().map(|r| r.path.clone()).collect();
    assert!(paths.contains(&"/api/v1/nodes".to_string()));
    assert!(paths.contains(&"/api/v1/nodes/node-1".to_string()));
    assert!(paths.contains(&"/api/v1/namespaces/db/pods".to_string()));
    assert!(paths.contains(&"/api/v1/pods".to_string()));
}

#[tokio::test]
async fn custom_resource_create_get_list_and_patches() {
    let api = K8sApi::start();
    let restores_api: Api<DynamicObject> =
        Api::namespaced_with(api.client(), "velero", &restores());

    let created = restores_api
        .create(&PostParams::default(), &restore("orders-dr"))
        .await
        .expect("create restore");
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.metadata.namespace.as_deref(), Some("velero"));
    let rv1: u64 = created
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();

    let got = restores_api.get("orders-dr").await.expect("get");
    assert_eq!(got.data["spec"]["backupName"], "nightly-20260115020000");
    let everywhere: Api<DynamicObject> = Api::all_with(api.client(), &restores());
    let list = everywhere
        .list(&ListParams::default())
        .await
        .expect("list all");
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].types.as_ref().unwrap().kind, "Restore");

    // Merge patch on metadata only: no new generation.
    let patched = restores_api
        .patch(
            "orders-dr",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"drbot/incident": "INC-1"}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        patched.metadata.annotations.unwrap()["drbot/incident"],
        "INC-1"
    );
    assert_eq!(patched.metadata.generation, Some(1));
    let rv2: u64 = patched.metadata.resource_version.unwrap().parse().unwrap();
    assert!(rv2 > rv1);

    // JSON patch with a test op; a spec change moves the generation.
    let ops: Value = json!([
        {"op": "test", "path": "/spec/restorePVs", "value": true},
        {"op": "replace", "path": "/spec/restorePVs", "value": false},
        {"op": "add", "path": "/spec/includedNamespaces/-", "value": "billing"},
    ]);
    let patched = restores_api
        .patch(
            "orders-dr",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(ops).unwrap()),
        )
        .await
        .expect("json patch");
    assert_eq!(patched.data["spec"]["restorePVs"], false);
    assert_eq!(
        patched.data["spec"]["includedNamespaces"],
        json!(["orders", "billing"])
    );
    assert_eq!(patched.metadata.generation, Some(2));
    let failed_test: Value = json!([{"op": "test", "path": "/spec/restorePVs", "value": true}]);
    let err = api_error(
        restores_api
            .patch(
                "orders-dr",
                &PatchParams::default(),
                &Patch::Json::<()>(serde_json::from_value(failed_test).unwrap()),
            )
            .await
            .expect_err("failed test op"),
    );
    assert_eq!(err.code, 422);

    // Server-side apply: updates, and creates when absent.
    let mut applied = restore("orders-dr");
    applied.data["spec"]["existingResourcePolicy"] = json!("update");
    let out = restores_api
        .patch(
            "orders-dr",
            &PatchParams::apply("drbot").force(),
            &Patch::Apply(&applied),
        )
        .await
        .expect("apply");
    assert_eq!(out.data["spec"]["existingResourcePolicy"], "update");
    let fresh = restores_api
        .patch(
            "orders-dr-2",
            &PatchParams::apply("drbot"),
            &Patch::Apply(&restore("orders-dr-2")),
        )
        .await
        .expect("apply creates");
    assert_eq!(fresh.metadata.generation, Some(1));
    assert!(api.get("restores", "velero", "orders-dr-2").is_some());

    // A no-op patch keeps the resourceVersion.
    let before = api.get("restores", "velero", "orders-dr").unwrap();
    let unchanged = json!({"spec": {"restorePVs": before["spec"]["restorePVs"]}});
    let same = restores_api
        .patch(
            "orders-dr",
            &PatchParams::default(),
            &Patch::Merge(unchanged),
        )
        .await
        .expect("no-op");
    assert_eq!(
        same.metadata.resource_version.as_deref(),
        before["metadata"]["resourceVersion"].as_str()
    );

    // Stale resourceVersion in a merge patch: 409 Conflict.
    let err = api_error(
        restores_api
            .patch(
                "orders-dr",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"resourceVersion": rv1.to_string()}, "spec": {"restorePVs": true}})),
            )
            .await
            .expect_err("stale"),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));

    // Replace (PUT) with the current resourceVersion.
    let mut current = restores_api.get("orders-dr-2").await.unwrap();
    current.data["spec"]["restorePVs"] = json!(false);
    let replaced = restores_api
        .replace("orders-dr-2", &PostParams::default(), &current)
        .await
        .expect("replace");
    assert_eq!(replaced.data["spec"]["restorePVs"], false);

    // Dry run stores nothing; delete removes.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    restores_api
        .create(&dry, &restore("orders-dry"))
        .await
        .expect("dry run");
    assert!(api.get("restores", "velero", "orders-dry").is_none());
    restores_api
        .delete("orders-dr-2", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(api.get("restores", "velero", "orders-dr-2").is_none());

    let patches = api.requests_to("patch", "restores");
    let content_types: Vec<&str> = patches
        .iter()
        .filter_map(|r| r.content_type.as_deref())
        .collect();
    assert!(content_types.contains(&"application/merge-patch+json"));
    assert!(content_types.contains(&"application/json-patch+json"));
    assert!(content_types.contains(&"application/apply-patch+yaml"));
    let apply = patches
        .iter()
        .find(|r| r.content_type.as_deref() == Some("application/apply-patch+yaml"))
        .unwrap();
    assert_eq!(
        apply.path,
        "/apis/velero.io/v1/namespaces/velero/restores/orders-dr"
    );
    assert_eq!(apply.param("fieldManager").as_deref(), Some("drbot"));
    assert_eq!(apply.param("force").as_deref(), Some("true"));
    assert!(api.invalid().is_empty(), "{:?}", api.invalid());
}

#[tokio::test]
async fn already_exists_is_a_409_api_error() {
    let api = K8sApi::start();
    let restores_api: Api<DynamicObject> =
        Api::namespaced_with(api.client(), "velero", &restores());
    restores_api
        .create(&PostParams::default(), &restore("once"))
        .await
        .expect("first create");
    let err = restores_api
        .create(&PostParams::default(), &restore("once"))
        .await
        .expect_err("second create");
    let status = api_error(err);
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "AlreadyExists");
    assert!(status.is_already_exists());
    assert_eq!(status.message, "restores.velero.io \"once\" already exists");
    assert_eq!(status.details.as_ref().unwrap().group, "velero.io");
}

#[tokio::test]
async fn manifests_that_break_the_crd_schema_are_refused() {
    let api = K8sApi::start();
    if !schemas(&api, "manifests_that_break_the_crd_schema_are_refused") {
        return;
    }
    let restores_api: Api<DynamicObject> =
        Api::namespaced_with(api.client(), "velero", &restores());

    // Without fieldValidation=Strict an unknown field is pruned, as a real server does for a
    // structural schema, and recorded; with Strict it is refused.
    let mut typo = restore("typo");
    typo.data["spec"]["backupNme"] = typo.data["spec"]["backupName"].clone();
    restores_api
        .create(&PostParams::default(), &typo)
        .await
        .expect("pruned, not refused");
    let stored = api.get("restores", "velero", "typo").unwrap();
    assert!(stored["spec"].get("backupNme").is_none(), "{stored}");
    let pruned = api.pruned();
    assert_eq!(pruned.len(), 1, "{pruned:?}");
    assert_eq!(
        (
            pruned[0].verb.as_str(),
            pruned[0].name.as_str(),
            pruned[0].path.as_str()
        ),
        ("create", "typo", "spec.backupNme")
    );
    let status = api_error(
        restores_api
            .patch(
                "typo",
                &PatchParams::default().validation_strict(),
                &Patch::Merge(json!({"spec": {"backupNme": "x"}})),
            )
            .await
            .expect_err("unknown field, strict"),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let causes = &status.details.as_ref().expect("details").causes;
    assert!(
        causes.iter().any(|c| c.field == "spec.backupNme"),
        "{causes:?}"
    );
    assert_eq!(api.get("restores", "velero", "typo").unwrap(), stored);

    let mut wrong_type = restore("wrong-type");
    wrong_type.data["spec"]["restorePVs"] = json!("yes");
    let status = api_error(
        restores_api
            .create(&PostParams::default(), &wrong_type)
            .await
            .expect_err("wrong type"),
    );
    assert_eq!(status.code, 422);

    // A patch whose result breaks the schema leaves the object as it was.
    restores_api
        .create(&PostParams::default(), &restore("good"))
        .await
        .expect("valid restore");
    let before = api.get("restores", "velero", "good").unwrap();
    let status = api_error(
        restores_api
            .patch(
                "good",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"includedNamespaces": "orders"}})),
            )
            .await
            .expect_err("invalid patch"),
    );
    assert_eq!(status.code, 422);
    assert_eq!(api.get("restores", "velero", "good").unwrap(), before);

    let invalid = api.invalid();
    assert_eq!(invalid.len(), 3, "{invalid:?}");
    assert_eq!(invalid[0].name, "typo");
    assert_eq!(invalid[0].verb, "patch");
    assert!(
        invalid[0]
            .errors
            .iter()
            .any(|e| e.starts_with("spec.backupNme"))
    );
    assert_eq!(invalid[2].verb, "patch");
}

#[tokio::test]
async fn velero_restore_phases_reach_watchers() {
    let api = K8sApi::start();
    let restores_api: Api<DynamicObject> =
        Api::namespaced_with(api.client(), "velero", &restores());
    // Velero's restore controller is emulated: its backup, location and tarball.
    api.put(json!({"apiVersion": "velero.io/v1", "kind": "Backup",
                   "metadata": {"name": "nightly-20260115020000", "namespace": "velero"},
                   "spec": {"storageLocation": "default"}, "status": {"phase": "Completed"}}));
    api.put(
        json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
                   "metadata": {"name": "default", "namespace": "velero"},
                   "spec": {"provider": "aws", "objectStorage": {"bucket": "b"}},
                   "status": {"phase": "Available"}}),
    );
    api.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "orders"}}));
    let items = (0..42)
        .map(|i| {
            backup_item(
                "configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": format!("c{i}"), "namespace": "orders"}}),
            )
        })
        .collect();
    api.seed_velero_backup("nightly-20260115020000", items);
    let mut orders_dr = restore("orders-dr");
    // Namespace mapping is not emulated.
    orders_dr.data["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("namespaceMapping");
    let created = restores_api
        .create(&PostParams::default(), &orders_dr)
        .await
        .expect("create");
    let from = created.metadata.resource_version.clone().unwrap();

    // Raw watch from the create's resourceVersion.
    let mut events = restores_api
        .watch(
            &WatchParams::default()
                .fields("metadata.name=orders-dr")
                .timeout(30),
            &from,
        )
        .await
        .expect("watch")
        .boxed();

    // kube-runtime's condition wait (list, then watch) in parallel.
    let waiter = tokio::spawn(await_condition(
        restores_api.clone(),
        "orders-dr",
        |o: Option<&DynamicObject>| {
            matches!(
                o.and_then(phase),
                Some("Completed" | "PartiallyFailed" | "Failed")
            )
        },
    ));
    api.wait_for_requests(
        |reqs| {
            reqs.iter()
                .any(|r| r.verb == "watch" && r.param("allowWatchBookmarks").is_some())
        },
        PATIENCE,
    )
    .await
    .expect("condition watch opened");

    for _ in 0..3 {
        api.run_velero("2026-01-15T11:00:00Z".parse().expect("time"));
    }

    let mut phases = Vec::new();
    while phases.len() < 3 {
        let event = tokio::time::timeout(PATIENCE, events.try_next())
            .await
            .expect("event in time")
            .expect("watch ok")
            .expect("stream open");
        match event {
            WatchEvent::Modified(o) => phases.push(phase(&o).unwrap().to_string()),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(phases, ["InProgress", "Finalizing", "Completed"]);

    let done = tokio::time::timeout(PATIENCE, waiter)
        .await
        .expect("condition in time")
        .expect("join")
        .expect("await_condition")
        .expect("object");
    assert_eq!(phase(&done), Some("Completed"));
    assert_eq!(done.data["status"]["progress"]["itemsRestored"], 42);
}

#[tokio::test]
async fn sgcluster_spawns_its_primary_pod_and_pod_readiness_is_watched() {
    let api = K8sApi::start();
    api.spawn_stackgres_pods();
    let clusters: Api<DynamicObject> = Api::namespaced_with(api.client(), "db", &sgclusters());
    clusters
        .create(&PostParams::default(), &sgcluster("orders-pitr"))
        .await
        .expect("create sgcluster");
    if schemas(&api, "sgcluster_spawns_its_primary_pod") {
        assert!(api.invalid().is_empty(), "{:?}", api.invalid());
    }

    // SGCluster declares no status subresource: /status is a 404 like on a real cluster.
    let err = api_error(
        clusters
            .patch_status(
                "orders-pitr",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {}})),
            )
            .await
            .expect_err("no status subresource"),
    );
    assert_eq!(err.code, 404);
    api.set_status(
        "sgclusters",
        "db",
        "orders-pitr",
        json!({"conditions": [{"type": "Bootstrapped", "status": "True", "reason": "ClusterBootstrapped",
                               "lastTransitionTime": "2026-01-15T11:10:00Z"}],
               "labelSelector": "app=StackGresCluster,stackgres.io/cluster-name=orders-pitr,stackgres.io/cluster=true"}),
    );
    let cluster = clusters.get("orders-pitr").await.unwrap();
    let selector = cluster.data["status"]["labelSelector"]
        .as_str()
        .unwrap()
        .to_string();

    let pods: Api<Pod> = Api::namespaced(api.client(), "db");
    let listed = pods
        .list(&ListParams::default().labels(&format!("{selector},role=primary")))
        .await
        .expect("list pods");
    assert_eq!(listed.items.len(), 1);
    let pod_name = listed.items[0].metadata.name.clone().unwrap();
    assert_eq!(pod_name, "orders-pitr-0");

    let ready = |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let waiter = tokio::spawn(await_condition(pods.clone(), "orders-pitr-0", ready));
    api.wait_for_requests(
        |reqs| {
            reqs.iter()
                .any(|r| r.verb == "watch" && r.resource == "pods")
        },
        PATIENCE,
    )
    .await
    .expect("pod watch");
    api.set_pod_ready("db", "orders-pitr-0", true);
    tokio::time::timeout(PATIENCE, waiter)
        .await
        .expect("ready in time")
        .expect("join")
        .expect("await_condition");

    // kube-runtime's watcher sees the pod through a label-selected stream.
    let seen: Vec<Pod> = tokio::time::timeout(
        PATIENCE,
        watcher(pods, watcher::Config::default().labels("role=primary"))
            .applied_objects()
            .take(1)
            .try_collect(),
    )
    .await
    .expect("watcher in time")
    .expect("watcher");
    assert_eq!(seen[0].metadata.name.as_deref(), Some("orders-pitr-0"));
}

#[tokio::test]
async fn flux_status_subresource_and_freeze_patch() {
    let api = K8sApi::start();
    api.put(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {"interval": "10m", "path": "./apps", "prune": true,
                 "sourceRef": {"kind": "GitRepository", "name": "fleet"}},
        "status": {"observedGeneration": 1},
    }));
    let ks: Api<DynamicObject> =
        Api::namespaced_with(api.client(), "flux-system", &kustomizations());
    let frozen = ks
        .patch(
            "apps",
            &PatchParams {
                field_manager: Some("flux-client-side-apply".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"suspend": true}, "status": {"observedGeneration": 99}})),
        )
        .await
        .expect("suspend");
    assert_eq!(frozen.data["spec"]["suspend"], true);
    // Status is a subresource here: the main endpoint ignores it.
    assert_eq!(frozen.data["status"]["observedGeneration"], 1);
    assert_eq!(frozen.metadata.generation, Some(2));
    let moved = ks
        .patch_status(
            "apps",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 2}})),
        )
        .await
        .expect("patch status");
    assert_eq!(moved.data["status"]["observedGeneration"], 2);
    assert_eq!(moved.metadata.generation, Some(2));
    assert!(api.invalid().is_empty(), "{:?}", api.invalid());
}

#[tokio::test]
async fn injected_failures_and_kube_retries() {
    let api = K8sApi::start();
    let restores_api: Api<DynamicObject> =
        Api::namespaced_with(api.client(), "velero", &restores());

    // 429 is retried by kube's default policy (after Retry-After: 1).
    api.fail_next("POST", "restores", 429);
    restores_api
        .create(&PostParams::default(), &restore("retried"))
        .await
        .expect("create after 429");
    let creates: Vec<u16> = api
        .requests_to("create", "restores")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(creates, [429, 201]);

    api.fail_next("GET", "restores", 500);
    let err = api_error(restores_api.get("retried").await.expect_err("500"));
    assert_eq!((err.code, err.reason.as_str()), (500, "InternalError"));
    restores_api.get("retried").await.expect("next get is fine");

    api.fail_next("patch", "restores", 409);
    let err = api_error(
        restores_api
            .patch(
                "retried",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
            )
            .await
            .expect_err("409"),
    );
    assert!(err.is_conflict());
}

#[tokio::test]
async fn watch_bookmarks_selector_transitions_and_expiry() {
    let api = K8sApi::start();
    api.set_bookmark_interval(Duration::from_millis(50));
    let pods: Api<Pod> = Api::namespaced(api.client(), "db");
    let pod = |role: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "namespace": "db", "labels": {"role": role}},
               "spec": {"containers": [{"name": "c", "image": "x"}]}})
    };
    api.put(pod("replica"));
    let start = api.resource_version().to_string();
    let mut stream = pods
        .watch(
            &WatchParams::default().labels("role=primary").timeout(30),
            &start,
        )
        .await
        .expect("watch")
        .boxed();
    api.put(pod("primary"));
    api.put(pod("replica"));
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(PATIENCE, stream.try_next())
            .await
            .expect("in time")
            .expect("ok")
            .expect("open");
        seen.push(match event {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(e) => panic!("{e:?}"),
        });
        seen.dedup_by(|a, b| *a == "BOOKMARK" && *b == "BOOKMARK");
    }
    let changes: Vec<&str> = seen.iter().copied().filter(|e| *e != "BOOKMARK").collect();
    assert_eq!(&changes[..2], ["ADDED", "DELETED"]);
    assert!(seen.contains(&"BOOKMARK"));

    // After compaction an old resourceVersion is answered with 410 Expired.
    api.compact();
    let mut old = pods
        .watch(&WatchParams::default(), &start)
        .await
        .expect("watch")
        .boxed();
    match tokio::time::timeout(PATIENCE, old.try_next())
        .await
        .expect("in time")
    {
        Ok(Some(WatchEvent::Error(status))) => assert_eq!(status.code, 410),
        other => panic!("expected 410 ERROR event, got {other:?}"),
    }

    // timeoutSeconds ends a watch; so does the server going away.
    let short = pods
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .expect("short watch");
    tokio::time::timeout(PATIENCE, drain(short))
        .await
        .expect("closed after timeoutSeconds");
    let long = pods
        .watch(&WatchParams::default().timeout(290), "0")
        .await
        .expect("long watch");
    drop(api);
    tokio::time::timeout(PATIENCE, drain(long))
        .await
        .expect("closed when the server stops");
}

/// Read a watch until it ends (or fails, as a dropped connection may).
async fn drain<T>(events: impl futures_util::Stream<Item = kube::Result<WatchEvent<T>>>) {
    let mut events = std::pin::pin!(events);
    while let Ok(Some(_)) = events.try_next().await {}
}

#[tokio::test]
async fn discovery_and_version() {
    let api = K8sApi::start();
    let client = api.client();
    let info = client.apiserver_version().await.expect("version");
    assert_eq!(info.minor, "33");
    let (ar, caps) = kube::discovery::pinned_kind(
        &client,
        &GroupVersionKind::gvk("velero.io", "v1", "Restore"),
    )
    .await
    .expect("pinned kind");
    assert_eq!(ar.plural, "restores");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let (ar, caps) =
        kube::discovery::pinned_kind(&client, &GroupVersionKind::gvk("", "v1", "Node"))
            .await
            .expect("pinned core kind");
    assert_eq!(ar.plural, "nodes");
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
}
