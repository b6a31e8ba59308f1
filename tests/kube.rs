//! The `kubernetes` backend against the Kubernetes API stand-in (real wire protocol, CRD
//! schema checks on every write) and an in-process S3 server holding the offsite backups:
//! whole incidents through the engine, Velero restores, a crash and restart, and freezes.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use drbot::app::App;
use drbot::clock::ManualClock;
use drbot::cluster::kube::Kube;
use drbot::cluster::{Cluster, ClusterError, ProbeContext};
use drbot::config::{KubernetesSettings, Settings};
use drbot::incident::{Event, EventKind, OperationKind, OperationSpec, Outcome, RecoveryWindow};
use serde_json::{Value, json};
use support::engine::{
    app_with_cluster, events, finished, frozen_parts, kube, kube_settings, previewed_plan, say,
};
use support::k8s_api::K8sApi;
use support::recovery::{ORDERS_PREFIX, offsite_client, seed_cluster, sgbackup, t, velero_backup};

fn t0() -> DateTime<Utc> {
    t("2026-02-08T10:00:00Z")
}

// ---- fixtures ------------------------------------------------------------------------------

/// The engine on SQLite in `dir`, with the kubernetes backend.
async fn app(dir: &std::path::Path, cluster: Kube, clock: &ManualClock) -> App {
    let extra = [("DRBOT__SAFETY__DEFAULT_CLUSTER", "orders")];
    app_with_cluster(dir, cluster, clock, &extra).await
}

/// orders' `spec.configurations.backups[]` entry; the operator fills in `path` when it is not
/// given, so a live cluster always has one.
fn orders_backups(with_path: bool) -> Value {
    let mut entry = json!({"sgObjectStorage": "offsite", "cronSchedule": "0 3 * * *",
                           "retention": 7, "compression": "lz4"});
    if with_path {
        entry["path"] = json!(ORDERS_PREFIX);
    }
    entry
}

/// The plan a preview showed.
async fn previewed_manifest(app: &App, preview: &str) -> String {
    previewed_plan(app, preview).await.manifest
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML document"))
        .collect()
}

fn probes(evs: &[Event]) -> Vec<(String, bool, String)> {
    evs.iter()
        .filter_map(|e| match &e.kind {
            EventKind::ProbeRecorded {
                item,
                passed,
                evidence,
                ..
            } => Some((item.clone(), *passed, evidence.clone())),
            _ => None,
        })
        .collect()
}

/// Nothing refused, and nothing pruned: on the newest CRDs every field drbot writes is known.
fn no_invalid(api: &K8sApi) {
    assert!(api.schemas_loaded(), "the CRD schemas must be loaded");
    assert!(api.invalid().is_empty(), "{:#?}", api.invalid());
    assert!(api.pruned().is_empty(), "{:#?}", api.pruned());
}

// ---- 1. a whole data incident --------------------------------------------------------------

#[tokio::test]
async fn data_incident_freeze_pitr_verify_unfreeze() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = K8sApi::start();
    seed_cluster(&api, Some(json!([orders_backups(true)])));
    api.spawn_stackgres_pods();
    let (_s3, offsite) = offsite_client().await;
    let clock = ManualClock::new(t0());
    let app = app(
        dir.path(),
        kube(&api, &kube_settings(), Some(offsite), &clock),
        &clock,
    )
    .await;
    let project_before = frozen_parts(&api.get("appprojects", "argocd", "default").unwrap());
    let apps_before = frozen_parts(&api.get("kustomizations", "flux-system", "apps").unwrap());

    let declared = say(&app, "/dr declare sev2 data orders wiped").await;
    assert!(declared.contains("INC-1 declared"), "{declared}");

    // Freeze: the preview is exactly what is patched.
    say(&app, "/dr freeze bad migration").await;
    say(&app, "/dr confirm P1").await;
    app.tick().await.expect("tick");
    let (outcome, _, detail, prior) = finished(&app, "op1").await.expect("freeze finished");
    assert_eq!(outcome, Outcome::Succeeded, "{detail}");
    let prior = prior.expect("prior state recorded");
    // The project's record names drbot's window by its identity (see tests/freeze.rs).
    assert_eq!(prior["argocd_appproject/argocd/default"]["added"], true);
    assert_eq!(
        prior["argocd_appproject/argocd/default"]["syncWindow"]["schedule"],
        "* * * * *"
    );
    assert_eq!(
        prior["flux_kustomization/flux-system/apps"]["spec"]["suspend"],
        Value::Null
    );
    let patched: Vec<Value> = api
        .requests()
        .into_iter()
        .filter(|r| r.verb == "patch")
        .map(|r| r.body)
        .collect();
    assert_eq!(yaml_docs(&previewed_manifest(&app, "P1").await), patched);
    let project = api.get("appprojects", "argocd", "default").unwrap();
    let windows = project["spec"]["syncWindows"].as_array().unwrap();
    assert_eq!(windows.len(), 2);
    assert_eq!(windows[1]["kind"], "deny");
    assert!(
        windows[1]["description"]
            .as_str()
            .unwrap()
            .contains("drbot-inc1-op1-freeze: bad migration")
    );
    let frozen = api.get("kustomizations", "flux-system", "apps").unwrap();
    assert_eq!(frozen["spec"]["suspend"], true);
    assert!(frozen["metadata"]["annotations"]["suspend.toolkit.fluxcd.io/reason"].is_string());

    // PITR: outside the offsite window is refused with the window; inside is planned.
    let refused = say(&app, "/dr pitr 2026-02-05T00:00Z").await;
    assert!(
        refused
            .contains("outside the recoverable window 2026-02-07T03:41:00Z … 2026-02-08T09:58:00Z"),
        "{refused}"
    );
    say(&app, "/dr pitr 2026-02-08T09:55Z").await;
    let manifest = previewed_manifest(&app, "P2").await;
    assert!(
        manifest.contains("restoreToTimestamp: \"2026-02-08T09:55:00Z\""),
        "{manifest}"
    );
    assert!(
        manifest.contains("name: orders-20260208030000"),
        "{manifest}"
    );
    assert!(manifest.contains("version: \"16\""), "{manifest}");
    let window = events(&app).await.into_iter().find_map(|e| match e.kind {
        EventKind::LaunchPreviewed { preview, plan, .. } if preview == "P2" => plan.window,
        _ => None,
    });
    assert_eq!(
        window,
        Some(RecoveryWindow {
            start: t("2026-02-07T03:41:00Z"),
            end: t("2026-02-08T09:58:00Z"),
        })
    );
    say(&app, "/dr confirm P2").await;
    api.script(
        "sgclusters",
        "db",
        "orders-i1-op2",
        vec![
            json!({"instances": 2}),
            json!({"instances": 2,
                   "labelSelector": "app=StackGresCluster,stackgres.io/cluster-name=orders-i1-op2,stackgres.io/cluster=true",
                   "conditions": [{"type": "Bootstrapped", "status": "True",
                                   "reason": "ClusterBootstrapped",
                                   "lastTransitionTime": "2026-02-08T10:11:00Z"}]}),
        ],
    );
    app.tick().await.expect("tick");
    let created = api
        .get("sgclusters", "db", "orders-i1-op2")
        .expect("SGCluster created");
    no_invalid(&api);
    let posted = api.requests_to("create", "sgclusters");
    assert_eq!(posted.len(), 1);
    assert_eq!(yaml_docs(&manifest), vec![posted[0].body.clone()]);
    assert_eq!(
        created["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "drbot"
    );
    // Backups resume with orders' configuration, under a path of the new cluster's own.
    assert_eq!(
        created["spec"]["configurations"]["backups"],
        json!([orders_backups(false)])
    );
    assert!(!manifest.contains(ORDERS_PREFIX), "{manifest}");
    assert!(finished(&app, "op2").await.is_none());

    clock.advance(Duration::minutes(3));
    api.advance("sgclusters", "db", "orders-i1-op2");
    app.tick().await.expect("tick");
    assert!(
        finished(&app, "op2").await.is_none(),
        "pods still restoring"
    );
    clock.advance(Duration::minutes(8));
    api.advance("sgclusters", "db", "orders-i1-op2");
    app.tick().await.expect("tick");
    assert!(
        finished(&app, "op2").await.is_none(),
        "primary not Ready yet"
    );
    let progressed: Vec<String> = events(&app)
        .await
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::OperationProgressed { phase, .. } => Some(phase),
            _ => None,
        })
        .collect();
    assert!(
        progressed.contains(&"Bootstrapped".to_string()),
        "{progressed:?}"
    );
    clock.advance(Duration::minutes(1));
    api.set_pod_ready("db", "orders-i1-op2-0", true);
    app.tick().await.expect("tick");
    let (outcome, phase, detail, result) = finished(&app, "op2").await.expect("restore finished");
    assert_eq!(
        (outcome, phase.as_str()),
        (Outcome::Succeeded, "Bootstrapped"),
        "{detail}"
    );
    let result = result.expect("result");
    assert_eq!(result["primary"], "orders-i1-op2-0");
    assert_eq!(result["recoveredTo"], "2026-02-08T09:55:00Z");
    assert_eq!(result["fromBackup"], "orders-20260208030000");

    // Verify: real probes, pass and fail with evidence on the timeline.
    clock.advance(Duration::minutes(2));
    let verify = say(&app, "/dr verify").await;
    assert!(
        verify.contains("✓ 9.1.1: 2/2 nodes Ready: node-1, node-2"),
        "{verify}"
    );
    let recorded = probes(&events(&app).await);
    let probe = |item: &str| {
        recorded
            .iter()
            .rev()
            .find(|(i, _, _)| i == item)
            .cloned()
            .unwrap_or_else(|| panic!("no probe for {item}: {recorded:?}"))
    };
    for item in [
        "9.1.1", "9.1.2", "9.1.3", "9.2.3", "9.2.4", "9.2.5", "9.6.3",
    ] {
        let (_, passed, evidence) = probe(item);
        assert!(passed, "{item}: {evidence}");
    }
    assert!(probe("9.2.4").2.contains("versioning Enabled"));
    assert!(
        probe("9.2.5").2.contains("gzip header OK"),
        "{}",
        probe("9.2.5").2
    );
    let (_, passed, evidence) = probe("9.3.3");
    assert!(!passed);
    assert!(
        evidence.contains("not checked: no database connection configured"),
        "{evidence}"
    );
    assert!(
        evidence.contains("primary orders-i1-op2-0 Ready"),
        "{evidence}"
    );
    let (_, passed, evidence) = probe("9.3.6");
    assert!(!passed, "{evidence}");
    assert_eq!(
        evidence,
        "orders-i1-op2: no Completed SGBackup and no WAL archived offsite since 2026-02-08T10:12:00Z yet"
    );
    let (_, passed, evidence) = probe("9.6.4");
    assert!(!passed);
    assert!(
        evidence
            .contains("no Velero backup has completed since the recovery at 2026-02-08T10:12:00Z"),
        "{evidence}"
    );

    // Backups resume: the probes see them.
    api.put(velero_backup(
        "nightly-20260208101500",
        "Completed",
        "2026-02-08T10:15:00Z",
        "2026-02-08T10:21:00Z",
    ));
    let mut fresh = sgbackup(
        "orders-i1-op2-20260208102000",
        "Completed",
        "2026-02-08T10:16:00Z",
        "2026-02-08T10:20:00Z",
    );
    fresh["spec"]["sgCluster"] = json!("orders-i1-op2");
    fresh["status"]["backupPath"] =
        json!("sgbackups.stackgres.io/db/orders-i1-op2/2026-02-08-10-00-30/16");
    api.put(fresh);
    let again = say(&app, "/dr verify 9.6.4").await;
    assert!(
        again.contains("✓ 9.6.4: Velero backup nightly-20260208101500 Completed at 2026-02-08T10:21:00Z, after the recovery at 2026-02-08T10:12:00Z"),
        "{again}"
    );
    let again = say(&app, "/dr verify 9.3.6").await;
    assert!(
        again.contains("✓ 9.3.6: SGBackup orders-i1-op2-20260208102000 of orders-i1-op2 completed at 2026-02-08T10:20:00Z"),
        "{again}"
    );

    // Unfreeze: both objects end exactly as they began.
    say(&app, "/dr unfreeze").await;
    let unfreeze_manifest = previewed_manifest(&app, "P3").await;
    say(&app, "/dr confirm P3").await;
    app.tick().await.expect("tick");
    let (outcome, _, detail, put_back) = finished(&app, "op3").await.expect("unfreeze finished");
    assert_eq!(outcome, Outcome::Succeeded, "{detail}");
    assert_eq!(put_back, Some(prior));
    let patches: Vec<Value> = api
        .requests()
        .into_iter()
        .filter(|r| r.verb == "patch")
        .skip(2)
        .map(|r| r.body)
        .collect();
    assert_eq!(yaml_docs(&unfreeze_manifest), patches);
    assert_eq!(
        frozen_parts(&api.get("appprojects", "argocd", "default").unwrap()),
        project_before
    );
    assert_eq!(
        frozen_parts(&api.get("kustomizations", "flux-system", "apps").unwrap()),
        apps_before
    );
    no_invalid(&api);
}

// ---- 2. Velero: tests/velero.rs, against the emulated restore controller -----------------

// ---- 3. crash and restart ------------------------------------------------------------------

#[tokio::test]
async fn a_restarted_engine_resumes_the_restore_without_a_second_create() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = K8sApi::start();
    seed_cluster(&api, Some(json!([orders_backups(true)])));
    let (_s3, offsite) = offsite_client().await;
    let clock = ManualClock::new(t0());
    let first = app(
        dir.path(),
        kube(&api, &kube_settings(), Some(offsite), &clock),
        &clock,
    )
    .await;
    say(&first, "/dr declare sev2 data orders wiped").await;
    say(&first, "/dr pitr 2026-02-08T09:55Z").await;
    say(&first, "/dr confirm P1").await;
    first.tick().await.expect("tick");
    assert!(api.get("sgclusters", "db", "orders-i1-op1").is_some());
    // Crash: nothing more from this engine.
    drop(first);

    clock.advance(Duration::minutes(15));
    let (_s3b, offsite) = offsite_client().await;
    let second = app(
        dir.path(),
        kube(&api, &kube_settings(), Some(offsite), &clock),
        &clock,
    )
    .await;
    second.tick().await.expect("tick");
    assert!(finished(&second, "op1").await.is_none());
    // The StackGres emulator: pods after the reconcile, then the bootstrap succeeds.
    api.run_stackgres();
    second.tick().await.expect("tick");
    assert!(
        finished(&second, "op1").await.is_none(),
        "pods, no primary yet"
    );
    api.run_stackgres();
    second.tick().await.expect("tick");
    second.tick().await.expect("tick");
    let (outcome, _, detail, _) = finished(&second, "op1").await.expect("finished");
    assert_eq!(outcome, Outcome::Succeeded, "{detail}");
    let evs = events(&second).await;
    let count = |name: &str| evs.iter().filter(|e| e.kind.name() == name).count();
    assert_eq!(count("operation_launched"), 1);
    assert_eq!(count("operation_finished"), 1);
    assert_eq!(api.requests_to("create", "sgclusters").len(), 1);
    no_invalid(&api);
}

// ---- drills, settings, the client from a kubeconfig ----------------------------------------

#[tokio::test]
async fn drills_copy_the_backup_into_the_drill_namespace_and_never_into_production() {
    let api = K8sApi::start();
    seed_cluster(&api, Some(json!([orders_backups(true)])));
    let clock = ManualClock::new(t0());
    let k = kube(&api, &kube_settings(), None, &clock);
    let mut drill = OperationSpec::new("op1", OperationKind::DrillLatest, "orders-i1-op1");
    drill.cluster = Some("orders".into());
    drill.namespace = Some("dr-drill".into());
    let plan = k.plan(&drill).await.expect("plan");
    assert_eq!(plan.backup.as_deref(), Some("orders-20260208030000"));
    assert!(
        plan.summary
            .iter()
            .any(|l| l.contains("no recoverable window: offsite storage is not configured"))
    );
    // The SGObjectStorage of orders is in db: a drill cluster takes no backups.
    assert!(
        plan.summary.iter().any(|l| l
            == "no spec.configurations.backups: SGObjectStorage offsite of orders is in namespace db, not dr-drill, so the new cluster archives no WAL and takes no backups"),
        "{:?}",
        plan.summary
    );
    let launched = k.launch(&drill).await.expect("launch");
    assert!(!launched.already_existed);
    let copy = api
        .get("sgbackups", "dr-drill", "orders-20260208030000")
        .expect("backup copied");
    assert_eq!(copy["spec"]["sgCluster"], "db.orders");
    assert_eq!(copy["status"]["process"]["status"], "Completed");
    let drill_cluster = api
        .get("sgclusters", "dr-drill", "orders-i1-op1")
        .expect("drill cluster");
    assert!(
        drill_cluster["spec"].get("configurations").is_none(),
        "{drill_cluster}"
    );
    assert!(k.launch(&drill).await.expect("relaunch").already_existed);
    assert_eq!(api.requests_to("create", "sgclusters").len(), 1);
    no_invalid(&api);

    drill.namespace = Some("pg-analytics".into());
    match k.plan(&drill).await {
        Err(ClusterError::Invalid(m)) => assert!(m.contains("non-production"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let mut unknown = OperationSpec::new("op2", OperationKind::RestoreLatest, "inventory-i1-op2");
    unknown.cluster = Some("inventory".into());
    match k.plan(&unknown).await {
        Err(ClusterError::Invalid(m)) => assert!(m.contains("known: orders"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let ctx = ProbeContext::default();
    let r = k.probe("database_writable", &ctx).await.expect("probe");
    assert!(!r.passed && r.evidence.contains("restore a database cluster first"));
}

#[test]
fn kubernetes_settings_from_toml_and_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("drbot.toml");
    std::fs::write(
        &file,
        "[cluster]\nbackend = \"kubernetes\"\n[kubernetes]\ncontext = \"prod\"\nfreeze_mode = \"flux\"\nflux_helmreleases = [\"web/frontend\"]\npostgres_dsn_template = \"postgres://postgres:{password}@{cluster}.{namespace}:5432/postgres\"\n",
    )
    .expect("write");
    let s = Settings::load_from(Some(&file), Some(Default::default())).expect("settings");
    assert_eq!(s.cluster.backend, "kubernetes");
    assert_eq!(s.kubernetes.freeze_mode, ["flux"]);
    assert_eq!(s.kubernetes.flux_helmreleases, ["web/frontend"]);
    assert_eq!(s.kubernetes.velero_namespace, "velero");

    let env = |pairs: &[(&str, &str)]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    let s = Settings::load_from(
        None,
        env(&[
            ("DRBOT__CLUSTER__BACKEND", "kubernetes"),
            ("DRBOT__KUBERNETES__FREEZE_MODE", "argocd-window,flux"),
            (
                "DRBOT__KUBERNETES__FLUX_KUSTOMIZATIONS",
                "flux-system/apps,flux-system/infra",
            ),
            ("DRBOT__KUBERNETES__DATABASE_NAMESPACES", "db,pg"),
            ("DRBOT__KUBERNETES__TIMEOUT_SECONDS", "20"),
        ]),
    )
    .expect("settings");
    assert_eq!(s.kubernetes.freeze_mode, ["argocd-window", "flux"]);
    assert_eq!(
        s.kubernetes.flux_kustomizations,
        ["flux-system/apps", "flux-system/infra"]
    );
    assert_eq!(s.kubernetes.database_namespaces, ["db", "pg"]);
    assert_eq!(s.kubernetes.timeout_seconds, 20);

    for (key, value, expected) in [
        ("FREEZE_MODE", "helm", "kubernetes.freeze_mode \"helm\""),
        ("FREEZE_MODE", "argocd-window,argocd-auto-sync", "not both"),
        ("FLUX_KUSTOMIZATIONS", "apps", "namespace/name"),
        ("VELERO_NAMESPACE", "Velero", "kubernetes.velero_namespace"),
        ("TIMEOUT_SECONDS", "0", "kubernetes.timeout_seconds"),
        ("POSTGRES_DSN_TEMPLATE", "mysql://x", "postgres://"),
    ] {
        let var = format!("DRBOT__KUBERNETES__{key}");
        let e = Settings::load_from(
            None,
            env(&[
                ("DRBOT__CLUSTER__BACKEND", "kubernetes"),
                ("DRBOT__KUBERNETES__FREEZE_MODE", "flux"),
                (var.as_str(), value),
            ]),
        )
        .err()
        .unwrap_or_else(|| panic!("{key}={value} accepted"));
        assert!(e.to_string().contains(expected), "{key}={value}: {e}");
    }
    // The sandbox stays the default, and ignores the section.
    let s = Settings::load_from(None, env(&[("DRBOT__KUBERNETES__TIMEOUT_SECONDS", "0")]))
        .expect("sandbox settings");
    assert_eq!(s.cluster.backend, "sandbox");
}

#[tokio::test]
async fn app_build_connects_through_a_kubeconfig_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = K8sApi::start();
    seed_cluster(&api, Some(json!([orders_backups(true)])));
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {}\nusers:\n- name: drbot\n  user: {{}}\ncontexts:\n- name: other\n  context:\n    cluster: nowhere\n    user: drbot\n- name: dr\n  context:\n    cluster: standin\n    user: drbot\ncurrent-context: other\n",
            api.url()
        ),
    )
    .expect("kubeconfig");
    let vars: std::collections::HashMap<String, String> = [
        (
            "DRBOT__DATABASE__URL",
            format!("sqlite://{}", dir.path().join("drbot.db").display()),
        ),
        ("DRBOT__CLUSTER__BACKEND", "kubernetes".into()),
        (
            "DRBOT__KUBERNETES__KUBECONFIG",
            kubeconfig.display().to_string(),
        ),
        ("DRBOT__KUBERNETES__CONTEXT", "dr".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let settings = Settings::load_from(None, Some(vars)).expect("settings");
    let clock = ManualClock::new(t0());
    let app = App::build(&settings, Arc::new(clock.clone()))
        .await
        .expect("app");
    assert_eq!(app.cluster.backend(), "kubernetes");
    assert_eq!(
        app.policy.default_cluster, None,
        "no sandbox default on a real cluster"
    );
    let r = app
        .cluster
        .probe("nodes_ready", &ProbeContext::default())
        .await
        .expect("probe");
    assert!(r.passed, "{}", r.evidence);
    let report = app.cluster.backups().await.expect("backups");
    let all = report.lines.join("\n");
    assert!(!report.ok, "no offsite bucket configured: {all}");
    assert!(
        all.contains("newest Completed nightly-20260208020000 at 2026-02-08T02:07:00Z"),
        "{all}"
    );
    assert!(all.contains("Velero BSL default: Available"), "{all}");
    assert!(
        all.contains("db/orders: 3 SGBackups (2 Completed), newest orders-20260208030000"),
        "{all}"
    );
    assert!(
        all.contains("SGBackup orders-20260208090000 Failed"),
        "{all}"
    );
    assert!(all.contains("offsite storage is not configured"), "{all}");
}

/// A restored, Bootstrapped cluster with a Ready primary and its StackGres credentials.
fn restored_cluster(api: &K8sApi, name: &str) {
    api.put(json!({
        "apiVersion": "stackgres.io/v1",
        "kind": "SGCluster",
        "metadata": {"name": name, "namespace": "db",
                     "labels": {"app.kubernetes.io/managed-by": "drbot"}},
        "spec": {"instances": 1, "postgres": {"version": "16"},
                 "pods": {"persistentVolume": {"size": "20Gi"}}},
        "status": {"conditions": [{"type": "Bootstrapped", "status": "True",
                                   "reason": "ClusterBootstrapped"}]},
    }));
    let cluster = api.get("sgclusters", "db", name).expect("cluster");
    api.put(support::k8s_api::stackgres_primary_pod(&cluster, true));
    api.put(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "db"},
        "type": "Opaque",
        "data": {"superuser-username": "cG9zdGdyZXM=", "superuser-password": "czNjcjN0L3B3K3g="},
    }));
}

#[tokio::test]
async fn database_writable_asks_postgres_over_the_configured_connection() {
    let api = K8sApi::start();
    restored_cluster(&api, "orders-restore");
    let clock = ManualClock::new(t0());
    let ctx = ProbeContext {
        recovered_at: Some(t0()),
        restored_objects: vec!["orders-restore".into()],
    };
    let probe = |template: &str| {
        let settings = KubernetesSettings {
            postgres_dsn_template: Some(template.to_string()),
            ..KubernetesSettings::default()
        };
        let k = kube(&api, &settings, None, &clock);
        let ctx = ctx.clone();
        async move { k.probe("database_writable", &ctx).await.expect("probe") }
    };

    // Nothing listens there: reported as not checked, and the password never shows.
    let r = probe("postgres://postgres:{password}@127.0.0.1:1/postgres?application_name={cluster}")
        .await;
    assert!(!r.passed);
    assert!(
        r.evidence
            .starts_with("not checked on orders-restore: cannot query orders-restore in db"),
        "{}",
        r.evidence
    );
    assert!(!r.evidence.contains("s3cr3t"), "{}", r.evidence);

    // The machine's PostgreSQL (as in CI) is a primary: not in recovery.
    let Ok(url) = std::env::var("DRBOT_TEST_DATABASE_URL") else {
        println!("DRBOT_TEST_DATABASE_URL unset: the pg_is_in_recovery() query is not run");
        return;
    };
    let with_password = url.replacen('@', ":{password}@", 1);
    let separator = if url.contains('?') { '&' } else { '?' };
    let r = probe(&format!(
        "{with_password}{separator}application_name={{cluster}}"
    ))
    .await;
    assert!(r.passed, "{}", r.evidence);
    assert_eq!(
        r.evidence,
        "pg_is_in_recovery() = false on orders-restore (primary orders-restore-0)"
    );
    no_invalid(&api);
}
