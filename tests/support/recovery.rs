//! The recovery world shared by the kubernetes-backend tests: the Kubernetes stand-in's
//! objects as the incident finds them, the offsite S3 layout (orders' WAL-G prefix and the
//! Velero backups), the kubeconfig pointing at the stand-in, and the settings environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use drbot::cluster::manifests::DatabaseRestore;
use drbot::cluster::offsite::Offsite;
use serde_json::{Value, json};

use super::k8s_api::{K8sApi, node, pod_status};
use super::s3::{ACCESS_KEY, BackupSpec, S3Server, SECRET_KEY, WalRun, WalgLayout};

pub const BUCKET: &str = "dr-offsite";
pub const ORDERS_PREFIX: &str = "sgbackups.stackgres.io/db/orders/2026-01-05-10-00-00/16";

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

// ---- S3 --------------------------------------------------------------------------------------

/// The offsite bucket with versioning on and orders' WAL-G prefix: base backups on Feb 7 and 8,
/// WAL every 10 minutes up to 2026-02-08T09:58.
pub async fn orders_bucket() -> S3Server {
    let s3 = S3Server::start().await;
    s3.create_bucket(BUCKET);
    s3.set_versioning(BUCKET, Some("Enabled"));
    s3.seed_walg(
        BUCKET,
        ORDERS_PREFIX,
        &WalgLayout {
            backups: vec![
                BackupSpec {
                    start: "000000010000000000000002",
                    started: t("2026-02-07T03:00:00Z"),
                    finished: t("2026-02-07T03:41:00Z"),
                    complete: true,
                },
                BackupSpec {
                    start: "000000010000000000000092",
                    started: t("2026-02-08T03:00:00Z"),
                    finished: t("2026-02-08T03:41:00Z"),
                    complete: true,
                },
            ],
            wal: vec![WalRun {
                timeline: 1,
                first_segno: 2,
                count: 186,
                first_upload: t("2026-02-07T03:08:00Z"),
                every: Duration::minutes(10),
            }],
            // A busy primary: each segment's last commit right at its upload, so the window
            // ends at the last upload, 2026-02-08T09:58:00Z.
            commit_lag: Duration::zero(),
            ..WalgLayout::default()
        },
    );
    s3
}

/// [`orders_bucket`] plus the two nightly Velero backups.
pub async fn offsite_bucket() -> S3Server {
    let s3 = orders_bucket().await;
    for (name, done) in [
        ("nightly-20260207020000", t("2026-02-07T02:07:00Z")),
        ("nightly-20260208020000", t("2026-02-08T02:07:00Z")),
    ] {
        s3.seed_velero(BUCKET, "", name, "Completed", done);
    }
    s3
}

/// The offsite bucket (see [`offsite_bucket`]) and a client for it, with orders' prefix.
pub async fn offsite_client() -> (S3Server, Offsite) {
    let s3 = offsite_bucket().await;
    let mut settings = s3.settings(BUCKET);
    settings.clusters = vec![format!("orders={ORDERS_PREFIX}")];
    let offsite = Offsite::new(&settings).expect("offsite");
    (s3, offsite)
}

/// A restore of orders' nightly backup from `db` (PostgreSQL 16, one 20Gi instance), as
/// `name` in `namespace`, to `target` or the backup's end.
pub fn orders_restore(
    name: &str,
    namespace: &str,
    target: Option<DateTime<Utc>>,
) -> DatabaseRestore {
    DatabaseRestore {
        name: name.into(),
        namespace: namespace.into(),
        source_namespace: "db".into(),
        source_cluster: "orders".into(),
        backup: "orders-nightly".into(),
        postgres_version: "16".into(),
        instances: 1,
        volume_size: "20Gi".into(),
        target,
    }
}

// ---- Kubernetes objects ----------------------------------------------------------------------

pub fn sgbackup(name: &str, status: &str, start: &str, end: &str) -> Value {
    json!({
        "apiVersion": "stackgres.io/v1",
        "kind": "SGBackup",
        "metadata": {"name": name, "namespace": "db"},
        "spec": {"sgCluster": "orders", "managedLifecycle": true},
        "status": {
            "internalName": format!("base_{name}"),
            "backupPath": ORDERS_PREFIX,
            "process": {
                "status": status,
                "timing": {"start": start, "end": end, "stored": end},
            },
            "backupInformation": {"postgresVersion": "160004", "timeline": "1"},
            // The storage the backup was taken to, with the Secret StackGres reads in the
            // namespace of a cluster restored from it.
            "sgBackupConfig": {"storage": {
                "type": "s3",
                "s3": {"bucket": "dr-offsite", "awsCredentials": {"secretKeySelectors": {
                    "accessKeyId": {"name": STORAGE_SECRET, "key": "accessKeyId"},
                    "secretAccessKey": {"name": STORAGE_SECRET, "key": "secretAccessKey"},
                }}},
            }},
        },
    })
}

/// The object-storage Secret of orders' backups.
pub const STORAGE_SECRET: &str = "offsite-s3-credentials";

/// [`STORAGE_SECRET`] in `namespace`.
pub fn storage_secret(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": STORAGE_SECRET, "namespace": namespace},
        "data": {"accessKeyId": "QUtJQQ==", "secretAccessKey": "c2VjcmV0"},
    })
}

/// orders' SGBackups: two completed nightlies and a failed one this morning.
pub fn seed_sgbackups(api: &K8sApi) {
    api.put(sgbackup(
        "orders-20260207030000",
        "Completed",
        "2026-02-07T03:00:00Z",
        "2026-02-07T03:41:00Z",
    ));
    api.put(sgbackup(
        "orders-20260208030000",
        "Completed",
        "2026-02-08T03:00:00Z",
        "2026-02-08T03:41:00Z",
    ));
    api.put(sgbackup(
        "orders-20260208090000",
        "Failed",
        "2026-02-08T09:00:00Z",
        "2026-02-08T09:02:00Z",
    ));
}

pub fn velero_backup(name: &str, phase: &str, started: &str, completed: &str) -> Value {
    json!({
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {"name": name, "namespace": "velero",
                     "labels": {"velero.io/schedule-name": "nightly"}},
        "spec": {"storageLocation": "default", "includedNamespaces": ["*"]},
        "status": {"phase": phase, "startTimestamp": started, "completionTimestamp": completed,
                   "warnings": 0, "errors": 0},
    })
}

/// Velero's default storage location, on the offsite bucket.
pub fn backup_storage_location() -> Value {
    json!({
        "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": "default", "namespace": "velero"},
        "spec": {"provider": "aws", "objectStorage": {"bucket": BUCKET}, "default": true},
        "status": {"phase": "Available"},
    })
}

pub fn app_project() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": "default", "namespace": "argocd",
                     "annotations": {"team": "platform"}},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "*"}],
            "syncWindows": [{"kind": "allow", "schedule": "0 22 * * *", "duration": "1h",
                             "applications": ["*"], "description": "nightly releases"}],
        },
    })
}

/// A Flux Kustomization; `extra_spec`'s fields are added to (or replace) the usual spec.
pub fn kustomization(name: &str, extra_spec: Value) -> Value {
    let mut spec = json!({"interval": "10m", "path": format!("./{name}"), "prune": true,
                          "sourceRef": {"kind": "GitRepository", "name": "fleet"}});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        s.extend(e.clone());
    }
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system",
                     "annotations": {"team": "platform"}},
        "spec": spec,
        "status": {"observedGeneration": 1},
    })
}

/// The cluster as it stands when the incident starts; `backups` is orders'
/// `spec.configurations.backups`, if it has one.
pub fn seed_cluster(api: &K8sApi, backups: Option<Value>) {
    api.put(node("node-1", true));
    api.put(node("node-2", true));
    api.put(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "coredns-1", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {"containers": [{"name": "coredns", "image": "coredns"}]},
        "status": pod_status(true),
    }));
    let mut orders = json!({
        "apiVersion": "stackgres.io/v1",
        "kind": "SGCluster",
        "metadata": {"name": "orders", "namespace": "db"},
        "spec": {"instances": 2, "postgres": {"version": "16.4"},
                 "pods": {"persistentVolume": {"size": "20Gi"}}},
    });
    if let Some(backups) = backups {
        orders["spec"]["configurations"] = json!({ "backups": backups });
    }
    api.put(orders);
    seed_sgbackups(api);
    // Copied into the drill namespace beforehand, as drbot requires.
    api.put(storage_secret("db"));
    api.put(storage_secret("dr-drill"));
    api.put(velero_backup(
        "nightly-20260207020000",
        "Completed",
        "2026-02-07T02:00:00Z",
        "2026-02-07T02:07:00Z",
    ));
    api.put(velero_backup(
        "nightly-20260208020000",
        "Completed",
        "2026-02-08T02:00:00Z",
        "2026-02-08T02:07:00Z",
    ));
    api.put(json!({
        "apiVersion": "velero.io/v1", "kind": "Schedule",
        "metadata": {"name": "nightly", "namespace": "velero"},
        "spec": {"schedule": "0 2 * * *", "paused": false, "template": {"includedNamespaces": ["*"]}},
        "status": {"phase": "Enabled", "lastBackup": "2026-02-08T02:00:00Z"},
    }));
    api.put(backup_storage_location());
    api.put(app_project());
    api.put(kustomization("apps", json!({})));
}

// ---- configuration ---------------------------------------------------------------------------

/// Write `dir/kubeconfig` with a `dr` context on the stand-in at `server`. With `decoy`, the
/// current context is `other`, which goes nowhere, so only an explicit `dr` reaches the
/// stand-in; without, `dr` is current.
pub fn write_kubeconfig(dir: &Path, server: &str, decoy: bool) -> PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    let text = if decoy {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {server}\n- name: nowhere\n  cluster:\n    server: http://127.0.0.1:1\nusers:\n- name: drbot\n  user: {{}}\ncontexts:\n- name: other\n  context:\n    cluster: nowhere\n    user: drbot\n- name: dr\n  context:\n    cluster: standin\n    user: drbot\ncurrent-context: other\n"
        )
    } else {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {server}\nusers:\n- name: drbot\n  user: {{}}\ncontexts:\n- name: dr\n  context:\n    cluster: standin\n    user: drbot\ncurrent-context: dr\n"
        )
    };
    std::fs::write(&kubeconfig, text).expect("kubeconfig");
    kubeconfig
}

/// The environment for the kubernetes backend through `kubeconfig`'s `dr` context, freezing
/// Argo CD windows and Flux, with the offsite bucket on `s3` and orders as the default cluster.
pub fn kubernetes_env(kubeconfig: &Path, s3: &S3Server) -> BTreeMap<String, String> {
    [
        ("DRBOT__CLUSTER__BACKEND", "kubernetes".to_string()),
        (
            "DRBOT__KUBERNETES__KUBECONFIG",
            kubeconfig.display().to_string(),
        ),
        ("DRBOT__KUBERNETES__CONTEXT", "dr".into()),
        (
            "DRBOT__KUBERNETES__FREEZE_MODE",
            "argocd-window,flux".into(),
        ),
        (
            "DRBOT__KUBERNETES__DATABASE_NAMESPACES",
            "db,pg-analytics".into(),
        ),
        ("DRBOT__KUBERNETES__TIMEOUT_SECONDS", "10".into()),
        ("DRBOT__OFFSITE__BUCKET", BUCKET.into()),
        ("DRBOT__OFFSITE__ENDPOINT", s3.endpoint.clone()),
        ("DRBOT__OFFSITE__FORCE_PATH_STYLE", "true".into()),
        ("DRBOT__OFFSITE__ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("DRBOT__OFFSITE__SECRET_ACCESS_KEY", SECRET_KEY.into()),
        (
            "DRBOT__OFFSITE__CLUSTERS",
            format!("orders={ORDERS_PREFIX}"),
        ),
        ("DRBOT__OFFSITE__TIMEOUT_SECONDS", "10".into()),
        ("DRBOT__SAFETY__DEFAULT_CLUSTER", "orders".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
