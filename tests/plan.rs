//! `drbot plan …` prints exactly what a launch would apply, and every manifest drbot builds
//! (through `drbot plan` and through the sandbox's plans) validates against the upstream CRDs.

mod support;

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, SecondsFormat, Utc};
use drbot::clock::ManualClock;
use drbot::cluster::Cluster;
use drbot::cluster::manifests;
use drbot::cluster::restore_scope::RestoreScope;
use drbot::cluster::sandbox::{Sandbox, SandboxConfig};
use drbot::incident::{OperationKind, OperationSpec};
use serde_json::{Value, json};
use support::command;
use support::crd_schema::Crds;
use support::k8s_api::K8sApi;
use support::recovery::{
    BUCKET, ORDERS_PREFIX, backup_storage_location, orders_bucket, orders_restore, seed_sgbackups,
    t, write_kubeconfig,
};
use support::s3::{ACCESS_KEY, S3Server, SECRET_KEY};

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn plan(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = command(dir)
        .arg("plan")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run drbot plan");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn plan_ok(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = plan(dir.path(), args, &[]);
    assert!(
        run.ok,
        "drbot plan {} failed:\n{}",
        args.join(" "),
        run.stderr
    );
    assert!(
        run.stderr.lines().all(|l| l.starts_with("# ")),
        "stderr holds only `# ` summary lines:\n{}",
        run.stderr
    );
    run
}

/// The documents of a multi-document manifest, each with its leading comment.
fn documents(yaml: &str) -> Vec<(String, Value)> {
    let mut chunks = vec![String::new()];
    for line in yaml.lines() {
        if line == "---" {
            chunks.push(String::new());
        } else {
            let last = chunks.last_mut().expect("a chunk");
            last.push_str(line);
            last.push('\n');
        }
    }
    chunks
        .into_iter()
        .map(|chunk| {
            let comment = chunk
                .lines()
                .take_while(|l| l.starts_with('#'))
                .map(|l| l.trim_start_matches('#').trim())
                .collect::<Vec<_>>()
                .join(" ");
            let doc: Value =
                serde_yaml::from_str(&chunk).unwrap_or_else(|e| panic!("not YAML ({e}):\n{chunk}"));
            (comment, doc)
        })
        .collect()
}

fn assert_valid(crds: &Crds, doc: &Value) {
    if let Err(errors) = crds.validate(doc) {
        panic!(
            "{} {} does not validate:\n  {}\n{}",
            doc["kind"],
            doc["metadata"]["name"],
            errors.join("\n  "),
            serde_json::to_string_pretty(doc).unwrap_or_default()
        );
    }
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let object = target.as_object_mut().expect("object");
    for (key, value) in fields {
        if value.is_null() {
            object.remove(key);
        } else {
            merge(object.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The live object a merge patch applies to, as a typical install has it.
fn live_object(patch: &Value) -> Value {
    let metadata = json!({
        "name": patch["metadata"]["name"],
        "namespace": patch["metadata"]["namespace"],
    });
    match patch["kind"].as_str() {
        Some("AppProject") => json!({
            "apiVersion": patch["apiVersion"],
            "kind": "AppProject",
            "metadata": metadata,
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "*"}],
                "syncWindows": [{"kind": "allow", "schedule": "0 22 * * *", "duration": "1h", "applications": ["*"]}],
            },
        }),
        Some("Kustomization") => json!({
            "apiVersion": patch["apiVersion"],
            "kind": "Kustomization",
            "metadata": metadata,
            "spec": {
                "interval": "10m",
                "path": "./apps",
                "prune": true,
                "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
            },
        }),
        other => panic!("no live object for a merge patch on {other:?}"),
    }
}

/// Validates each document; a merge patch is validated as the object it produces.
fn assert_manifest_valid(crds: &Crds, yaml: &str) -> Vec<Value> {
    let docs = documents(yaml);
    assert!(!docs.is_empty(), "empty manifest");
    docs.into_iter()
        .map(|(comment, doc)| {
            if comment.starts_with("merge patch") {
                let mut live = live_object(&doc);
                assert_valid(crds, &live);
                merge(&mut live, &doc);
                assert_valid(crds, &live);
            } else {
                assert_valid(crds, &doc);
            }
            doc
        })
        .collect()
}

// ---- the acceptance commands -----------------------------------------------------------------

#[test]
fn plan_pitr_prints_one_sgcluster_restoring_to_the_target() {
    let run = plan_ok(&[
        "pitr",
        "--namespace",
        "db",
        "--cluster",
        "orders",
        "--backup",
        "orders-nightly",
        "--at",
        "2026-02-08T09:55Z",
    ]);
    let docs = documents(&run.stdout);
    assert_eq!(docs.len(), 1, "{}", run.stdout);
    let doc = &docs[0].1;
    assert_eq!(doc["kind"], "SGCluster");
    assert_eq!(doc["apiVersion"], "stackgres.io/v1");
    assert_eq!(doc["metadata"]["name"], "orders-restore-202602080955");
    assert_eq!(doc["metadata"]["namespace"], "db");
    let from = &doc["spec"]["initialData"]["restore"]["fromBackup"];
    assert_eq!(from["name"], "orders-nightly");
    assert_eq!(
        from["pointInTimeRecovery"]["restoreToTimestamp"],
        "2026-02-08T09:55:00Z"
    );
    assert_eq!(doc["spec"]["postgres"]["version"], "16");
    assert_eq!(doc["spec"]["instances"], 1);
    assert_eq!(doc["spec"]["pods"]["persistentVolume"]["size"], "20Gi");
    assert!(
        run.stderr.contains("# recover to 2026-02-08T09:55:00Z"),
        "{}",
        run.stderr
    );
    if let Some(crds) = Crds::load() {
        assert_valid(&crds, doc);
    }
}

#[test]
fn plan_infra_restore_prints_one_velero_restore() {
    let run = plan_ok(&[
        "infra-restore",
        "--backup",
        "nightly-20260208020000",
        "--exclude-namespaces",
        "db",
    ]);
    let docs = documents(&run.stdout);
    assert_eq!(docs.len(), 1, "{}", run.stdout);
    let doc = &docs[0].1;
    assert_eq!(doc["kind"], "Restore");
    assert_eq!(doc["apiVersion"], "velero.io/v1");
    assert_eq!(doc["metadata"]["namespace"], "velero");
    assert_eq!(
        doc["metadata"]["name"],
        "drbot-restore-nightly-20260208020000"
    );
    assert_eq!(doc["spec"]["backupName"], "nightly-20260208020000");
    assert_eq!(doc["spec"]["excludedNamespaces"], json!(["db"]));
    assert!(doc["spec"].get("includedNamespaces").is_none());
    // Under a namespace filter Velero restores no cluster-scoped resource (CRDs...) unless
    // this is set (tests/velero.rs runs this plan through the emulated controller).
    assert_eq!(doc["spec"]["includeClusterResources"], true);
    assert_eq!(doc["spec"]["existingResourcePolicy"], "none");
    assert_eq!(doc["spec"]["restorePVs"], true);
    if let Some(crds) = Crds::load() {
        assert_valid(&crds, doc);
    }
}

#[test]
fn plan_flags_shape_the_manifest() {
    let run = plan_ok(&[
        "restore-latest",
        "--namespace",
        "db",
        "--cluster",
        "payments",
        "--backup",
        "payments-20260208030000",
        "--target-namespace",
        "dr-drill",
        "--postgres-version",
        "17",
        "--instances",
        "3",
        "--volume-size",
        "1.5Ti",
    ]);
    let docs = documents(&run.stdout);
    assert_eq!(docs.len(), 2, "{}", run.stdout);
    assert_eq!(docs[0].1["kind"], "SGBackup");
    assert_eq!(docs[0].1["metadata"]["namespace"], "dr-drill");
    assert_eq!(docs[0].1["spec"]["sgCluster"], "db.payments");
    let cluster = &docs[1].1;
    assert_eq!(cluster["metadata"]["name"], "payments-restore-latest");
    assert_eq!(cluster["spec"]["instances"], 3);
    assert_eq!(cluster["spec"]["postgres"]["version"], "17");
    assert_eq!(cluster["spec"]["pods"]["persistentVolume"]["size"], "1.5Ti");
    assert!(
        cluster["spec"]["initialData"]["restore"]["fromBackup"]
            .get("pointInTimeRecovery")
            .is_none()
    );

    let infra = plan_ok(&[
        "infra-restore",
        "--backup",
        "nightly-20260208020000",
        "--include-namespaces",
        "shop,web",
        "--velero-namespace",
        "backup-system",
        "--name",
        "dr-1",
    ]);
    let docs = documents(&infra.stdout);
    assert_eq!(docs[0].1["metadata"]["name"], "dr-1");
    assert_eq!(docs[0].1["metadata"]["namespace"], "backup-system");
    assert_eq!(
        docs[0].1["spec"]["includedNamespaces"],
        json!(["shop", "web"])
    );

    if let Some(crds) = Crds::load() {
        assert_manifest_valid(&crds, &run.stdout);
        assert_manifest_valid(&crds, &infra.stdout);
    }
}

#[test]
fn plan_refusals_are_clear_and_print_no_yaml() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pitr = |at: &str, env: &[(&str, &str)]| {
        plan(
            dir.path(),
            &[
                "pitr",
                "--namespace",
                "db",
                "--cluster",
                "orders",
                "--backup",
                "orders-nightly",
                "--at",
                at,
            ],
            env,
        )
    };
    let refused = |run: &Run, why: &str| {
        assert!(!run.ok, "should fail with {why:?}");
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert!(run.stderr.contains(why), "{why:?} not in:\n{}", run.stderr);
    };
    refused(&pitr("yesterday", &[]), "`yesterday` is not a timestamp");
    refused(&pitr("2026-02-30T09:55Z", &[]), "is not a timestamp");
    refused(
        &pitr("2026-02-08 09:55", &[]),
        "has no time zone. Add one: `2026-02-08T09:55Z`",
    );
    refused(&pitr("2999-01-01T00:00Z", &[]), "is in the future");

    let zoned = pitr(
        "2026-02-08 09:55",
        &[("DRBOT__SAFETY__DEFAULT_ZONE", "+01:00")],
    );
    assert!(zoned.ok, "{}", zoned.stderr);
    assert!(zoned.stderr.contains("configured zone"), "{}", zoned.stderr);
    let doc = &documents(&zoned.stdout)[0].1;
    assert_eq!(
        doc["spec"]["initialData"]["restore"]["fromBackup"]["pointInTimeRecovery"]["restoreToTimestamp"],
        "2026-02-08T08:55:00Z"
    );

    let db = |extra: &[&str]| {
        let mut args = vec!["restore-latest", "--namespace", "db", "--cluster", "orders"];
        args.extend_from_slice(extra);
        plan(dir.path(), &args, &[])
    };
    refused(
        &db(&["--backup", "b", "--name", "Orders_2"]),
        "not a valid SGCluster name",
    );
    refused(
        &db(&["--backup", "b", "--name", "orders"]),
        "never in place",
    );
    refused(
        &db(&["--backup", "b", "--volume-size", "20G"]),
        "not a volume size",
    );
    refused(
        &db(&["--backup", "b", "--target-namespace", "DR"]),
        "not a namespace name",
    );
    refused(
        &db(&["--instances", "3"]),
        "--instances only apply with --backup",
    );
}

// ---- without --backup: the sandbox chooses --------------------------------------------------

#[test]
fn without_a_backup_the_sandbox_plans() {
    let crds = Crds::load();
    let latest = plan_ok(&["restore-latest", "--namespace", "db", "--cluster", "orders"]);
    assert!(latest.stderr.contains("# SANDBOX"), "{}", latest.stderr);
    let docs = documents(&latest.stdout);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].1["metadata"]["name"], "orders-restore-latest");
    assert_eq!(docs[0].1["spec"]["instances"], 2, "the source's instances");

    let at = (Utc::now() - Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let pitr = plan_ok(&[
        "pitr",
        "--namespace",
        "db",
        "--cluster",
        "orders",
        "--at",
        &at,
    ]);
    let docs = documents(&pitr.stdout);
    assert_eq!(
        docs[0].1["spec"]["initialData"]["restore"]["fromBackup"]["pointInTimeRecovery"]["restoreToTimestamp"],
        json!(at)
    );

    let infra = plan_ok(&["infra-restore", "--exclude-namespaces", "db"]);
    let docs = documents(&infra.stdout);
    assert_eq!(docs[0].1["spec"]["excludedNamespaces"], json!(["db"]));
    assert_eq!(docs[0].1["metadata"]["name"], "drbot-restore-latest");

    if let Some(crds) = &crds {
        for run in [&latest, &pitr, &infra] {
            assert_manifest_valid(crds, &run.stdout);
        }
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let elsewhere = plan(
        dir.path(),
        &[
            "restore-latest",
            "--namespace",
            "prod",
            "--cluster",
            "orders",
        ],
        &[],
    );
    assert!(!elsewhere.ok);
    assert!(
        elsewhere
            .stderr
            .contains("database clusters are in namespace db"),
        "{}",
        elsewhere.stderr
    );
    let unknown = plan(
        dir.path(),
        &[
            "restore-latest",
            "--namespace",
            "db",
            "--cluster",
            "inventory",
        ],
        &[],
    );
    assert!(!unknown.ok);
    assert!(
        unknown.stderr.contains("known: orders, payments"),
        "{}",
        unknown.stderr
    );
    let too_old = plan(
        dir.path(),
        &[
            "pitr",
            "--namespace",
            "db",
            "--cluster",
            "orders",
            "--at",
            "2020-01-01T00:00Z",
        ],
        &[],
    );
    assert!(!too_old.ok);
    assert!(too_old.stdout.is_empty());
}

// ---- without --backup: the kubernetes backend chooses ----------------------------------------

/// orders in namespace db as the operator leaves it (its backup `path` filled in), its
/// SGBackups, and Velero's backups.
fn seed_cluster(api: &K8sApi) {
    api.put(json!({
        "apiVersion": "stackgres.io/v1",
        "kind": "SGCluster",
        "metadata": {"name": "orders", "namespace": "db"},
        "spec": {
            "instances": 2,
            "postgres": {"version": "16.4"},
            "pods": {"persistentVolume": {"size": "50Gi"}},
            "configurations": {"backups": [{
                "sgObjectStorage": "offsite",
                "cronSchedule": "0 3 * * *",
                "retention": 7,
                "path": ORDERS_PREFIX,
            }]},
        },
    }));
    seed_sgbackups(api);
    for (name, started, completed) in [
        (
            "nightly-20260207020000",
            "2026-02-07T02:00:00Z",
            "2026-02-07T02:07:00Z",
        ),
        (
            "nightly-20260208020000",
            "2026-02-08T02:00:00Z",
            "2026-02-08T02:07:00Z",
        ),
    ] {
        api.put(json!({
            "apiVersion": "velero.io/v1",
            "kind": "Backup",
            "metadata": {"name": name, "namespace": "velero"},
            "spec": {"storageLocation": "default", "includedNamespaces": ["*"]},
            "status": {"phase": "Completed", "startTimestamp": started,
                       "completionTimestamp": completed, "warnings": 0, "errors": 0},
        }));
    }
    api.put(backup_storage_location());
}

/// Settings for the kubernetes backend on the stand-in, through a kubeconfig, with the
/// offsite bucket; the path of the file.
fn kubernetes_config(dir: &Path, api: &K8sApi, s3: &S3Server) -> String {
    let kubeconfig = write_kubeconfig(dir, &api.url(), false);
    let config = dir.join("drbot.toml");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nbackend = \"kubernetes\"\n\n[kubernetes]\nkubeconfig = {:?}\ntimeout_seconds = 10\n\n[offsite]\nbucket = {BUCKET:?}\nendpoint = {:?}\nforce_path_style = true\naccess_key_id = {ACCESS_KEY:?}\nsecret_access_key = {SECRET_KEY:?}\nclusters = [\"orders={ORDERS_PREFIX}\"]\ntimeout_seconds = 10\n",
            kubeconfig.display().to_string(),
            s3.endpoint,
        ),
    )
    .expect("config");
    config.display().to_string()
}

/// `drbot plan` off the async runtime that serves the stand-ins.
async fn plan_with(dir: &Path, config: &str, args: &[&str]) -> Run {
    let dir = dir.to_path_buf();
    let config = config.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        plan(&dir, &args, &[("DRBOT_CONFIG", config.as_str())])
    })
    .await
    .expect("drbot plan")
}

fn writes(api: &K8sApi) -> Vec<String> {
    api.requests()
        .into_iter()
        .filter(|r| !matches!(r.verb.as_str(), "get" | "list" | "watch" | "discovery"))
        .map(|r| format!("{} {} ({})", r.method, r.path, r.verb))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_backup_the_kubernetes_backend_plans_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = K8sApi::start();
    seed_cluster(&api);
    let s3 = orders_bucket().await;
    let config = kubernetes_config(dir.path(), &api, &s3);
    let crds = Crds::load();

    let pitr = plan_with(
        dir.path(),
        &config,
        &[
            "pitr",
            "--namespace",
            "db",
            "--cluster",
            "orders",
            "--at",
            "2026-02-08T09:55Z",
        ],
    )
    .await;
    assert!(pitr.ok, "{}", pitr.stderr);
    assert!(
        pitr.stderr.lines().all(|l| l.starts_with("# ")),
        "stderr holds only `# ` summary lines:\n{}",
        pitr.stderr
    );
    for line in [
        "# planned against the Kubernetes cluster (cluster.backend = kubernetes): read only, nothing was created or changed",
        "# from backup orders-20260208030000 (ended 2026-02-08T03:41:00Z)",
        "# recover to 2026-02-08T09:55:00Z (pointInTimeRecovery.restoreToTimestamp)",
        "# PITR window 2026-02-07T03:41:00Z … 2026-02-08T09:58:00Z",
        "# backups resume with the configuration of orders (SGObjectStorage offsite, base backups '0 3 * * *', retention 7)",
    ] {
        assert!(
            pitr.stderr.contains(line),
            "{line:?} not in:\n{}",
            pitr.stderr
        );
    }
    let docs = documents(&pitr.stdout);
    assert_eq!(docs.len(), 1, "{}", pitr.stdout);
    let doc = &docs[0].1;
    assert_eq!(doc["kind"], "SGCluster");
    assert_eq!(doc["metadata"]["name"], "orders-restore-202602080955");
    assert_eq!(doc["metadata"]["namespace"], "db");
    let from = &doc["spec"]["initialData"]["restore"]["fromBackup"];
    assert_eq!(
        from["name"], "orders-20260208030000",
        "the newest Completed before the target"
    );
    assert_eq!(
        from["pointInTimeRecovery"]["restoreToTimestamp"],
        "2026-02-08T09:55:00Z"
    );
    assert_eq!(
        doc["spec"]["postgres"]["version"], "16",
        "the backup's major"
    );
    assert_eq!(doc["spec"]["instances"], 2, "the source's instances");
    assert_eq!(doc["spec"]["pods"]["persistentVolume"]["size"], "50Gi");
    assert_eq!(
        doc["spec"]["configurations"]["backups"],
        json!([{"sgObjectStorage": "offsite", "cronSchedule": "0 3 * * *", "retention": 7}]),
        "the source's backups, without its path"
    );
    assert!(!pitr.stdout.contains(ORDERS_PREFIX), "{}", pitr.stdout);
    if let Some(crds) = &crds {
        assert_manifest_valid(crds, &pitr.stdout);
    }
    assert!(
        !api.requests_to("get", "sgclusters").is_empty(),
        "the cluster was consulted"
    );

    let latest = plan_with(
        dir.path(),
        &config,
        &["restore-latest", "--namespace", "db", "--cluster", "orders"],
    )
    .await;
    assert!(latest.ok, "{}", latest.stderr);
    let docs = documents(&latest.stdout);
    assert_eq!(docs[0].1["metadata"]["name"], "orders-restore-latest");
    assert_eq!(
        docs[0].1["spec"]["initialData"]["restore"]["fromBackup"]["name"],
        "orders-20260208030000"
    );

    let infra = plan_with(
        dir.path(),
        &config,
        &["infra-restore", "--exclude-namespaces", "db"],
    )
    .await;
    assert!(infra.ok, "{}", infra.stderr);
    let docs = documents(&infra.stdout);
    assert_eq!(docs[0].1["kind"], "Restore");
    assert_eq!(docs[0].1["spec"]["backupName"], "nightly-20260208020000");
    assert_eq!(docs[0].1["spec"]["excludedNamespaces"], json!(["db"]));
    if let Some(crds) = &crds {
        assert_manifest_valid(crds, &latest.stdout);
        assert_manifest_valid(crds, &infra.stdout);
    }

    let refused = |run: &Run, why: &str| {
        assert!(!run.ok, "should fail with {why:?}");
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert!(run.stderr.contains(why), "{why:?} not in:\n{}", run.stderr);
    };
    let elsewhere = plan_with(
        dir.path(),
        &config,
        &[
            "restore-latest",
            "--namespace",
            "prod",
            "--cluster",
            "orders",
        ],
    )
    .await;
    refused(
        &elsewhere,
        "the kubernetes backend's database clusters are in namespace db (kubernetes.database_namespace), not prod",
    );
    let unknown = plan_with(
        dir.path(),
        &config,
        &[
            "restore-latest",
            "--namespace",
            "db",
            "--cluster",
            "inventory",
        ],
    )
    .await;
    refused(
        &unknown,
        "unknown cluster inventory in namespace db; known: orders",
    );
    let too_old = plan_with(
        dir.path(),
        &config,
        &[
            "pitr",
            "--namespace",
            "db",
            "--cluster",
            "orders",
            "--at",
            "2026-02-05T00:00Z",
        ],
    )
    .await;
    refused(
        &too_old,
        "nothing to apply: no Completed SGBackup of orders ended before",
    );

    assert_eq!(writes(&api), Vec::<String>::new(), "a plan only reads");
    assert!(api.requests().iter().all(|r| r.method != "POST"));
}

// ---- every manifest the sandbox plans --------------------------------------------------------

#[tokio::test]
async fn every_sandbox_manifest_validates() {
    let Some(crds) = Crds::load() else { return };
    let clock = ManualClock::new(t("2026-02-08T10:00:00Z"));
    let sandbox = Sandbox::new(SandboxConfig::default(), Arc::new(clock)).expect("sandbox");
    let database = |kind, name: &str| {
        let mut s = OperationSpec::new("op1", kind, name);
        s.cluster = Some("orders".into());
        s
    };

    let mut infra = OperationSpec::new("op1", OperationKind::InfraRestore, "drbot-inc1-op1-infra");
    let mut specs = vec![infra.clone()];
    infra.exclude_database_namespaces = true;
    infra.include_namespaces = vec!["shop".into(), "web".into()];
    infra.backup = Some("nightly-20260131020000".into());
    specs.push(infra);

    specs.push(database(OperationKind::RestoreLatest, "orders-i1-op2"));
    let mut pitr = database(OperationKind::Pitr, "orders-i1-op3");
    pitr.target = Some(t("2026-02-08T09:55:00Z"));
    specs.push(pitr.clone());
    pitr.backup = Some("orders-20260205030000".into());
    pitr.target = Some(t("2026-02-06T12:00:00.250Z"));
    specs.push(pitr);
    let mut drill = database(OperationKind::DrillLatest, "orders-i1-op4");
    drill.namespace = Some("dr-drill".into());
    specs.push(drill);
    let mut drill_pitr = database(OperationKind::DrillPitr, "orders-i1-op5");
    drill_pitr.namespace = Some("dr-drill".into());
    drill_pitr.target = Some(t("2026-02-07T23:59:59Z"));
    specs.push(drill_pitr);
    let mut freeze = OperationSpec::new("op6", OperationKind::Freeze, "drbot-inc1-op6-freeze");
    freeze.reason = Some("INC-1 orders: \"wiped\" # by a bad migration".into());
    specs.push(freeze.clone());

    let mut kinds = Vec::new();
    for spec in &specs {
        let plan = sandbox.plan(spec).await.expect("plan");
        for doc in assert_manifest_valid(&crds, &plan.manifest) {
            kinds.push(doc["kind"].as_str().unwrap_or_default().to_string());
        }
    }

    // Unfreeze puts back what the freeze recorded; a second freeze sees the first one's window.
    sandbox.launch(&freeze).await.expect("freeze");
    let prior = sandbox
        .observe(&freeze)
        .await
        .expect("observe")
        .result
        .expect("recorded state");
    let again = OperationSpec::new("op7", OperationKind::Freeze, "drbot-inc2-op1-freeze");
    let plan = sandbox.plan(&again).await.expect("plan");
    let docs = assert_manifest_valid(&crds, &plan.manifest);
    assert_eq!(
        docs[0]["spec"]["syncWindows"].as_array().map(Vec::len),
        Some(2)
    );
    let mut unfreeze =
        OperationSpec::new("op8", OperationKind::Unfreeze, "drbot-inc1-op8-unfreeze");
    unfreeze.prior = Some(prior);
    let plan = sandbox.plan(&unfreeze).await.expect("plan");
    for doc in assert_manifest_valid(&crds, &plan.manifest) {
        kinds.push(doc["kind"].as_str().unwrap_or_default().to_string());
    }

    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "AppProject",
            "Kustomization",
            "Restore",
            "SGBackup",
            "SGCluster"
        ]
    );
}

// ---- the validator itself ----------------------------------------------------------------

fn sgcluster() -> Value {
    let target = Some(t("2026-02-08T09:55:00Z"));
    manifests::sgcluster_restore(&orders_restore("orders-restore-202602080955", "db", target))
        .remove(0)
        .1
}

/// The errors of `doc` after `change`; panics when it validates.
fn errors_after(crds: &Crds, mut doc: Value, change: impl FnOnce(&mut Value)) -> String {
    change(&mut doc);
    match crds.validate(&doc) {
        Ok(()) => panic!(
            "should not validate:\n{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ),
        Err(errors) => errors.join("\n"),
    }
}

#[test]
fn validator_names_the_path_of_each_error() {
    let Some(crds) = Crds::load() else { return };
    let good = sgcluster();
    assert_valid(&crds, &good);

    let e = errors_after(&crds, good.clone(), |d| {
        d["spec"]["initialData"]["restore"]["fromBackup"]["pointInTimeRecovery"]["restoreToTimestamp"] =
            json!(1770544500);
        d["spec"]["instance"] = json!(2);
    });
    assert!(
        e.contains(
            "spec.initialData.restore.fromBackup.pointInTimeRecovery.restoreToTimestamp: expected string, got integer"
        ),
        "{e}"
    );
    assert!(e.contains("spec.instance: unknown field"), "{e}");
    assert_eq!(e.lines().count(), 2, "{e}");

    let e = errors_after(&crds, good.clone(), |d| {
        d["spec"]["postgres"]
            .as_object_mut()
            .expect("postgres")
            .remove("version");
    });
    assert_eq!(e, "spec.postgres.version: required field missing");
    let e = errors_after(&crds, good.clone(), |d| {
        d["spec"]["pods"]["persistentVolume"]["size"] = json!("20G");
    });
    assert!(
        e.starts_with("spec.pods.persistentVolume.size: \"20G\" does not match pattern"),
        "{e}"
    );
    let e = errors_after(&crds, good.clone(), |d| {
        d["spec"]["initialData"]["restore"]["downloadDiskConcurrency"] = json!(0);
    });
    assert!(e.contains("below the minimum 1"), "{e}");
    let e = errors_after(&crds, good.clone(), |d| {
        d["metadata"]["name"] = json!("a".repeat(45));
    });
    assert!(
        e.contains("metadata.name: 45 characters, more than 44"),
        "{e}"
    );
    let e = errors_after(&crds, good.clone(), |d| {
        d["metadata"]["name"] = json!("orders.restore");
    });
    assert!(
        e.contains("metadata.name: \"orders.restore\" does not match"),
        "{e}"
    );
    let e = errors_after(&crds, good.clone(), |d| {
        d["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("dr bot");
        d["metadata"]["namespace"] = json!("DB");
        d["metadata"]["uid2"] = json!("x");
    });
    assert!(
        e.contains("metadata.labels[\"app.kubernetes.io/managed-by\"]: invalid label value"),
        "{e}"
    );
    assert!(
        e.contains("metadata.namespace: \"DB\" is not a DNS label"),
        "{e}"
    );
    assert!(e.contains("metadata.uid2: unknown field"), "{e}");
    let e = errors_after(&crds, good.clone(), |d| {
        d.as_object_mut().expect("object").remove("metadata");
    });
    assert!(e.contains("metadata: required field missing"), "{e}");
    let e = errors_after(&crds, good.clone(), |d| {
        d["apiVersion"] = json!("stackgres.io/v1beta1");
    });
    assert!(e.contains("v1beta1 is not a served version"), "{e}");
    let e = errors_after(&crds, good.clone(), |d| d["kind"] = json!("SGClusterr"));
    assert!(e.contains("no CRD for stackgres.io SGClusterr"), "{e}");

    let scope = RestoreScope::resolve(&[], &["db".into()], None).expect("scope");
    let restore = manifests::velero_restore("r", "velero", "b", &scope);
    assert_valid(&crds, &restore);
    let mut nullable = restore.clone();
    nullable["spec"]["includeClusterResources"] = Value::Null;
    assert_valid(&crds, &nullable);
    let e = errors_after(&crds, restore.clone(), |d| {
        d["spec"]["restorePVs"] = json!("yes");
        d["spec"]["backupName"] = Value::Null;
        d["spec"]["excludedNamespaces"] = json!("db");
        d["status"] = json!({"phase": "Done", "startTimestamp": "yesterday"});
    });
    for want in [
        "spec.restorePVs: expected boolean, got string",
        "spec.backupName: null is not allowed",
        "spec.excludedNamespaces: expected array, got string",
        "status.phase: \"Done\" is not one of",
        "status.startTimestamp: \"yesterday\" is not an RFC 3339 date-time",
    ] {
        assert!(e.contains(want), "{want:?} not in:\n{e}");
    }

    // Flux durations: the pattern engine handles groups, alternation and repetition.
    let mut kustomization = live_object(&manifests::flux_suspend(
        manifests::FluxKind::Kustomization,
        "flux-system",
        "apps",
        true,
        Some("INC-1"),
    ));
    kustomization["spec"]["interval"] = json!("1h30m");
    assert_valid(&crds, &kustomization);
    let e = errors_after(&crds, kustomization, |d| {
        d["spec"]["interval"] = json!("10 minutes");
    });
    assert!(
        e.contains("spec.interval: \"10 minutes\" does not match"),
        "{e}"
    );
}
