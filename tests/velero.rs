//! Velero infra restores (SOP §6.3) through the `kubernetes` backend, against the stand-in
//! with Velero's restore controller emulated (`support/velero_controller.rs`): the Restore
//! drbot creates must be one Velero accepts, and it must bring back what the SOP says,
//! cluster-scoped resources (CRDs) included.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use drbot::app::App;
use drbot::clock::{Clock, ManualClock};
use drbot::cluster::kube::Kube;
use drbot::cluster::{Cluster, ClusterError};
use drbot::incident::{EventKind, OperationKind, OperationSpec, Outcome};
use serde_json::{Value, json};
use support::engine::{self, app_with_cluster, events, kube_settings, say};
use support::k8s_api::K8sApi;
use support::recovery::{seed_cluster, t};
use support::velero_controller::{BackupItem, CRDS, backup_item};

const LATEST: &str = "nightly-20260208020000";
const OLDER: &str = "nightly-20260207020000";

fn t0() -> DateTime<Utc> {
    t("2026-02-08T10:00:00Z")
}

fn kube(api: &K8sApi, clock: &ManualClock) -> Kube {
    engine::kube(api, &kube_settings(), None, clock)
}

async fn finished(app: &App, op: &str) -> Option<(Outcome, String, String)> {
    let finish = engine::finished(app, op).await;
    finish.map(|(outcome, phase, detail, _)| (outcome, phase, detail))
}

/// The summary lines of the plan a preview showed, one per line.
async fn previewed_summary(app: &App, preview: &str) -> String {
    engine::previewed_plan(app, preview)
        .await
        .summary
        .join("\n")
}

/// The last progress drbot recorded: (phase, percent, detail).
async fn last_progress(app: &App) -> (String, u8, String) {
    events(app)
        .await
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::OperationProgressed {
                phase,
                percent,
                detail,
                ..
            } => Some((phase, percent, detail)),
            _ => None,
        })
        .next_back()
        .expect("progress")
}

fn no_invalid(api: &K8sApi) {
    assert!(api.schemas_loaded(), "the CRD schemas must be loaded");
    assert!(api.invalid().is_empty(), "{:#?}", api.invalid());
}

fn namespace(name: &str) -> BackupItem {
    backup_item(
        "namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
}

fn config_map(ns: &str, name: &str) -> BackupItem {
    backup_item(
        "configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": ns}, "data": {"k": "v"}}),
    )
}

fn crd(group: &str, plural: &str, kind: &str) -> BackupItem {
    backup_item(
        "customresourcedefinitions",
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": format!("{plural}.{group}")},
               "spec": {"group": group, "scope": "Namespaced",
                        "names": {"plural": plural, "kind": kind}}}),
    )
}

/// What the nightly backup holds: cluster-scoped resources (a CRD, a ClusterRole, a
/// StorageClass, the namespaces) and the objects of shop and db.
fn nightly() -> Vec<BackupItem> {
    vec![
        backup_item(
            "clusterroles",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "shop-reader"}}),
        ),
        crd("example.com", "widgets", "Widget"),
        backup_item(
            "storageclasses",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                   "metadata": {"name": "fast"}, "provisioner": "ebs.csi.aws.com"}),
        ),
        namespace("shop"),
        namespace("db"),
        backup_item(
            "deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "shop"}}),
        ),
        config_map("shop", "settings"),
        backup_item(
            "widgets",
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                   "metadata": {"name": "w1", "namespace": "shop"}}),
        ),
        config_map("db", "orders-config"),
    ]
}

/// A combined incident on a cluster whose nightly backups hold [`nightly`].
async fn combined_incident(dir: &std::path::Path, api: &K8sApi, clock: &ManualClock) -> App {
    seed_cluster(api, None);
    api.seed_velero_backup(LATEST, nightly());
    let app = app_with_cluster(dir, kube(api, clock), clock, &[]).await;
    say(&app, "/dr declare sev2 combined cluster and orders lost").await;
    app
}

/// One pass of the Velero controller, then one of drbot's scheduler.
async fn step(api: &K8sApi, app: &App, clock: &ManualClock) {
    clock.advance(Duration::minutes(1));
    api.run_velero(clock.now());
    app.tick().await.expect("tick");
}

// ---- the SOP §6.3 restore --------------------------------------------------------------------

#[tokio::test]
async fn a_combined_incident_restore_leaves_the_databases_out_and_brings_crds_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = K8sApi::start();
    let clock = ManualClock::new(t0());
    let app = combined_incident(dir.path(), &api, &clock).await;

    say(&app, "/dr infra restore namespaces=shop,db").await;
    let preview = previewed_summary(&app, "P1").await;
    for want in [
        "namespaces: shop, except db, pg-analytics",
        "db left out of the namespaces asked for",
        "restored by the database path, SOP §7",
        "cluster-scoped resources restored (includeClusterResources: true)",
        "CustomResourceDefinitions",
        "not restored: the contents of namespaces db, pg-analytics",
    ] {
        assert!(preview.contains(want), "{want:?} not in:\n{preview}");
    }
    assert!(!preview.contains("both included and excluded: Velero excludes it"));
    say(&app, "/dr confirm P1").await;
    app.tick().await.expect("tick");

    let name = "drbot-inc1-op1-infra";
    let restore = api
        .get("restores", "velero", name)
        .expect("Restore created");
    no_invalid(&api);
    let spec = &restore["spec"];
    assert_eq!(spec["includedNamespaces"], json!(["shop"]));
    assert_eq!(spec["excludedNamespaces"], json!(["db", "pg-analytics"]));
    assert_eq!(spec["includeClusterResources"], true);
    let labels = &restore["metadata"]["labels"];
    assert_eq!(labels["drbot/incident"], "drbot-inc1");
    assert_eq!(labels["drbot/backup"], LATEST);

    // Velero takes it (no FailedValidation) and restores a few items per second.
    api.set_velero_items_per_pass(3);
    step(&api, &app, &clock).await;
    assert_eq!(
        api.get("restores", "velero", name).unwrap()["status"]["phase"],
        "InProgress"
    );
    step(&api, &app, &clock).await;
    assert_eq!(
        last_progress(&app).await,
        ("InProgress".into(), 50, "3/6 items restored".into())
    );
    step(&api, &app, &clock).await;
    step(&api, &app, &clock).await;
    assert_eq!(last_progress(&app).await.0, "Finalizing");
    assert!(finished(&app, "op1").await.is_none());
    step(&api, &app, &clock).await;
    let (outcome, phase, detail) = finished(&app, "op1").await.expect("finished");
    assert_eq!((outcome, phase.as_str()), (Outcome::Succeeded, "Completed"));
    assert!(
        detail.starts_with("8/8 items restored, 0 warnings, 0 errors"),
        "{detail}"
    );

    // What came back: the CRD and the other cluster-scoped resources, shop, the custom
    // resource that needs the CRD; nothing of db but its (empty) Namespace.
    for (resource, name) in [
        (CRDS, "widgets.example.com"),
        ("clusterroles.rbac.authorization.k8s.io", "shop-reader"),
        ("storageclasses.storage.k8s.io", "fast"),
    ] {
        assert!(
            api.velero_cluster_object(resource, "", name).is_some(),
            "{resource} {name}"
        );
    }
    assert!(
        api.velero_cluster_object("widgets.example.com", "shop", "w1")
            .is_some()
    );
    assert!(
        api.velero_cluster_object("deployments.apps", "shop", "web")
            .is_some()
    );
    assert!(api.get("configmaps", "shop", "settings").is_some());
    assert!(api.get("configmaps", "db", "orders-config").is_none());
    assert!(
        api.velero_restored("velero", name)
            .iter()
            .all(|i| i.namespace != "db" && i.action == "created")
    );
}

#[tokio::test]
async fn a_restore_of_only_database_namespaces_is_refused_naming_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = K8sApi::start();
    let clock = ManualClock::new(t0());
    let app = combined_incident(dir.path(), &api, &clock).await;
    let before = events(&app).await.len();
    let refused = say(&app, "/dr infra restore namespaces=db,pg-analytics").await;
    assert!(
        refused.contains("nothing to restore: db, pg-analytics are excluded"),
        "{refused}"
    );
    assert!(
        refused.contains("leave namespaces out to restore all but db, pg-analytics"),
        "{refused}"
    );
    assert_eq!(events(&app).await.len(), before, "a refusal writes nothing");
    assert!(api.requests_to("create", "restores").is_empty());
}

#[tokio::test]
async fn without_namespaces_the_restore_still_brings_cluster_scoped_resources_and_reports_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = K8sApi::start();
    let clock = ManualClock::new(t0());
    let app = combined_incident(dir.path(), &api, &clock).await;
    // The older backup holds a custom resource whose CRD is in no backup, and a ConfigMap
    // that is still in the cluster.
    api.seed_velero_backup(
        OLDER,
        vec![
            crd("example.com", "widgets", "Widget"),
            config_map("shop", "settings"),
            backup_item(
                "gadgets",
                json!({"apiVersion": "example.com/v1", "kind": "Gadget",
                       "metadata": {"name": "g1", "namespace": "shop"}}),
            ),
        ],
    );
    api.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "settings", "namespace": "shop"}}));
    say(&app, &format!("/dr infra restore backup={OLDER}")).await;
    say(&app, "/dr confirm P1").await;
    app.tick().await.expect("tick");
    let restore = api
        .get("restores", "velero", "drbot-inc1-op1-infra")
        .unwrap();
    assert!(restore["spec"].get("includedNamespaces").is_none());
    assert_eq!(restore["spec"]["includeClusterResources"], true);
    for _ in 0..3 {
        step(&api, &app, &clock).await;
    }
    let (outcome, phase, detail) = finished(&app, "op1").await.expect("finished");
    assert_eq!(
        (outcome, phase.as_str()),
        (Outcome::Failed, "PartiallyFailed")
    );
    assert!(detail.contains("1 warnings, 1 errors"), "{detail}");
    assert!(
        detail.contains("velero restore describe drbot-inc1-op1-infra"),
        "{detail}"
    );
    // The excluded database namespaces do not hide the CRD (Velero skips cluster-scoped
    // resources under any namespace filter unless includeClusterResources is true).
    assert!(
        api.velero_cluster_object(CRDS, "", "widgets.example.com")
            .is_some()
    );
}

// ---- adoption ------------------------------------------------------------------------------

fn infra_spec(name: &str, backup: Option<&str>) -> OperationSpec {
    let mut s = OperationSpec::new("op1", OperationKind::InfraRestore, name);
    s.backup = backup.map(str::to_string);
    s.exclude_database_namespaces = true;
    s
}

#[tokio::test]
async fn only_drbots_own_restore_for_this_incident_and_backup_is_adopted() {
    let api = K8sApi::start();
    seed_cluster(&api, None);
    let clock = ManualClock::new(t0());
    let k = kube(&api, &clock);
    let name = "drbot-inc1-op1-infra";
    let s = infra_spec(name, None);
    assert!(!k.launch(&s).await.expect("launch").already_existed);
    assert!(k.launch(&s).await.expect("relaunch").already_existed);
    let ours = api.get("restores", "velero", name).unwrap();

    fn refused<T: std::fmt::Debug>(r: Result<T, ClusterError>) -> String {
        match r {
            Err(ClusterError::Invalid(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    // Named backup other than the one it restores.
    let m = refused(k.launch(&infra_spec(name, Some(OLDER))).await);
    assert!(
        m.contains(&format!("it restores backup {LATEST}, not {OLDER}")),
        "{m}"
    );

    // Someone else's Restore under our name.
    let mut foreign = ours.clone();
    foreign["metadata"]["labels"] = json!({"team": "platform"});
    api.put(foreign);
    let m = refused(k.launch(&s).await);
    for want in [
        "Restore velero/drbot-inc1-op1-infra already exists and was not made by drbot",
        "app.kubernetes.io/managed-by is not set",
        "drbot will not adopt it",
        "kubectl -n velero delete restore drbot-inc1-op1-infra",
    ] {
        assert!(m.contains(want), "{want:?} not in {m}");
    }
    let m = refused(k.plan(&s).await);
    assert!(m.contains("drbot will not adopt it"), "{m}");

    // drbot's, but another incident's.
    let mut other = ours.clone();
    other["metadata"]["labels"]["drbot/incident"] = json!("drbot-inc9");
    api.put(other);
    let m = refused(k.launch(&s).await);
    assert!(
        m.contains("drbot/incident is drbot-inc9 (this operation: drbot-inc1)"),
        "{m}"
    );
    assert_eq!(api.requests_to("create", "restores").len(), 1);
}

// ---- the emulated controller: what Velero does with what drbot used to send ---------------

fn restore(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["backupName"] = json!(LATEST);
    json!({"apiVersion": "velero.io/v1", "kind": "Restore",
           "metadata": {"name": name, "namespace": "velero"}, "spec": spec})
}

#[tokio::test]
async fn velero_refuses_overlapping_namespaces_and_skips_cluster_scoped_resources_under_a_filter() {
    let api = K8sApi::start();
    seed_cluster(&api, None);
    api.seed_velero_backup(LATEST, nightly());
    let clock = ManualClock::new(t0());
    // drbot's old shape: db both included and excluded.
    api.put(restore(
        "overlap",
        json!({"includedNamespaces": ["shop", "db"], "excludedNamespaces": ["db"]}),
    ));
    // includeClusterResources unset / true / false under a namespace filter, and unset
    // without any filter.
    api.put(restore("unset", json!({"excludedNamespaces": ["db"]})));
    api.put(restore(
        "true",
        json!({"excludedNamespaces": ["db"], "includeClusterResources": true}),
    ));
    api.put(restore("false", json!({"includeClusterResources": false})));
    api.put(restore("everything", json!({})));
    for _ in 0..3 {
        api.run_velero(t0());
    }
    let overlap = api.get("restores", "velero", "overlap").unwrap();
    assert_eq!(overlap["status"]["phase"], "FailedValidation");
    assert_eq!(
        overlap["status"]["validationErrors"],
        json!([
            "Invalid included/excluded namespace lists: excludes list cannot contain an item in the includes list: db"
        ])
    );
    assert!(overlap["status"].get("completionTimestamp").is_none());
    assert!(api.velero_restored("velero", "overlap").is_empty());

    // drbot reports Velero's refusal with its words.
    let k = kube(&api, &clock);
    let o = k
        .observe(&infra_spec("overlap", None))
        .await
        .expect("observe");
    assert_eq!(o.done, Some(Outcome::Failed));
    assert!(
        o.detail
            .contains("excludes list cannot contain an item in the includes list: db"),
        "{}",
        o.detail
    );

    let has_crd = |restore: &str| {
        api.velero_restored("velero", restore)
            .iter()
            .any(|i| i.resource == CRDS)
    };
    assert!(
        !has_crd("unset"),
        "nil + namespace filter skips cluster-scoped"
    );
    assert!(has_crd("true"));
    assert!(!has_crd("false"));
    assert!(
        has_crd("everything"),
        "nil without a filter includes everything"
    );
    for r in ["unset", "true", "false", "everything"] {
        let r = api.get("restores", "velero", r).unwrap();
        assert_eq!(r["status"]["phase"], "Completed", "{r}");
        assert!(r["status"]["completionTimestamp"].is_string());
    }
}

#[tokio::test]
async fn velero_fails_validation_without_the_backup_or_an_available_location() {
    let api = K8sApi::start();
    seed_cluster(&api, None);
    api.put(restore("no-backup", json!({})));
    let mut missing = restore("missing", json!({}));
    missing["spec"]["backupName"] = json!("nightly-2020");
    api.put(missing);
    api.run_velero(t0());
    let errors = |n: &str| api.get("restores", "velero", n).unwrap()["status"].clone();
    // A backup with no tarball fails downloading it, after validation.
    assert_eq!(errors("no-backup")["phase"], "InProgress");
    api.run_velero(t0());
    assert_eq!(errors("no-backup")["phase"], "Failed");
    assert_eq!(errors("missing")["phase"], "FailedValidation");
    assert!(
        errors("missing")["validationErrors"][0]
            .as_str()
            .unwrap()
            .starts_with("Error retrieving backup: can't find backup velero/nightly-2020")
    );

    let mut bsl = api
        .get("backupstoragelocations", "velero", "default")
        .unwrap();
    bsl["status"]["phase"] = json!("Unavailable");
    api.put(bsl);
    api.put(restore("unavailable", json!({})));
    api.run_velero(t0());
    assert_eq!(
        errors("unavailable")["validationErrors"],
        json!(["The BSL default is unavailable, cannot retrieve the backup"])
    );
}

// ---- `drbot plan infra-restore` ------------------------------------------------------------

/// `drbot plan infra-restore --backup LATEST …`: (succeeded, YAML documents, stderr).
fn plan_infra(extra: &[&str]) -> (bool, Vec<Value>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = support::command(dir.path())
        .args(["plan", "infra-restore", "--backup", LATEST])
        .args(extra)
        .output()
        .expect("drbot plan");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let docs = serde_yaml::Deserializer::from_str(&stdout)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML document"))
        .filter(|d: &Value| !d.is_null())
        .collect();
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    (out.status.success(), docs, stderr)
}

#[tokio::test]
async fn the_planned_restore_is_accepted_by_velero_and_restores_crds() {
    let (ok, docs, stderr) = plan_infra(&["--exclude-namespaces", "db"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("CustomResourceDefinitions"), "{stderr}");
    let api = K8sApi::start();
    seed_cluster(&api, None);
    api.seed_velero_backup(LATEST, nightly());
    api.put(docs[0].clone());
    for _ in 0..3 {
        api.run_velero(t0());
    }
    let name = format!("drbot-restore-{LATEST}");
    let r = api.get("restores", "velero", &name).unwrap();
    assert_eq!(r["status"]["phase"], "Completed", "{r}");
    assert!(
        api.velero_cluster_object(CRDS, "", "widgets.example.com")
            .is_some()
    );
    assert!(api.get("configmaps", "db", "orders-config").is_none());

    // Namespaces both included and excluded: the excluded ones leave the include list, or
    // the plan is refused when none is left.
    let (ok, docs, stderr) = plan_infra(&[
        "--include-namespaces",
        "shop,db",
        "--exclude-namespaces",
        "db",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(docs[0]["spec"]["includedNamespaces"], json!(["shop"]));
    assert!(
        stderr.contains("db left out of the namespaces asked for"),
        "{stderr}"
    );
    let (ok, docs, stderr) =
        plan_infra(&["--include-namespaces", "db", "--exclude-namespaces", "db"]);
    assert!(!ok && docs.is_empty());
    assert!(
        stderr.contains("nothing to restore: db is excluded"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_sandbox_resolves_the_overlap_the_same_way() {
    use drbot::cluster::sandbox::{Sandbox, SandboxConfig};
    let clock = ManualClock::new(t0());
    let sandbox = Sandbox::new(SandboxConfig::default(), Arc::new(clock)).expect("sandbox");
    let mut s = infra_spec("drbot-inc1-op1-infra", None);
    s.include_namespaces = vec!["shop".into(), "db".into()];
    let plan = sandbox.plan(&s).await.expect("plan");
    let doc: Value = serde_yaml::from_str(&plan.manifest).expect("YAML");
    assert_eq!(doc["spec"]["includedNamespaces"], json!(["shop"]));
    assert_eq!(doc["spec"]["excludedNamespaces"], json!(["db"]));
    assert!(plan.manifest.contains("includeClusterResources: true"));
    assert!(
        plan.summary
            .iter()
            .any(|l| l.starts_with("db left out of the namespaces asked for"))
    );
    s.include_namespaces = vec!["db".into()];
    match sandbox.plan(&s).await {
        Err(ClusterError::Invalid(m)) => assert!(m.contains("nothing to restore"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
