//! The real `drbot console` binary with `cluster.backend = "kubernetes"`, connected through a
//! kubeconfig to the Kubernetes API stand-in, with the offsite backups in an in-process S3
//! server: a whole data incident (freeze, PITR, verify, unfreeze), and a SIGKILL right after
//! the SGCluster was created followed by a restart.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, channel};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use support::k8s_api::{K8sApi, node, pod_status};
use support::s3::{ACCESS_KEY, BackupSpec, S3Server, SECRET_KEY, WalRun, WalgLayout};

const BUCKET: &str = "dr-offsite";
const ORDERS_PREFIX: &str = "sgbackups.stackgres.io/db/orders/2026-01-05-10-00-00/16";

/// Upper bound for a reply to show up; a guard against hangs, not a timing assumption.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// An unknown console control: its answer is printed once every line before it has been
/// handled.
const BARRIER: &str = ":barrier";
const BARRIER_MARK: &str = "(console controls:";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

// ---- the console process -------------------------------------------------------------------

/// `drbot console` as a child process with extra environment. Every call that waits for the
/// process runs in `block_in_place`, so the stand-ins keep serving on the other worker.
struct Console {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    transcript: Vec<String>,
}

impl Console {
    fn start(dir: &Path, env: &BTreeMap<String, String>, clock: &str, user: &str) -> Console {
        let mut cmd = support::command(dir);
        cmd.envs(env)
            .args([
                "console",
                "--channel",
                "ops",
                "--user",
                user,
                "--clock",
                clock,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn drbot");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Console {
            child,
            stdin,
            lines: rx,
            transcript: Vec::new(),
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to drbot");
        stdin.flush().expect("flush");
    }

    /// Read output until a line contains `marker`; returns everything read.
    fn until(&mut self, marker: &str) -> String {
        tokio::task::block_in_place(|| {
            let mut got = Vec::new();
            loop {
                match self.lines.recv_timeout(PATIENCE) {
                    Ok(line) => {
                        self.transcript.push(line.clone());
                        let hit = line.contains(marker);
                        got.push(line);
                        if hit {
                            return got.join("\n");
                        }
                    }
                    Err(_) => panic!(
                        "no `{marker}` in output; transcript:\n{}",
                        self.transcript.join("\n")
                    ),
                }
            }
        })
    }

    /// Send a line and read up to `marker`.
    fn ask(&mut self, line: &str, marker: &str) -> String {
        self.send(line);
        self.until(marker)
    }

    /// Send a line and read everything it printed, whatever that is (up to a barrier).
    fn say(&mut self, line: &str) -> String {
        self.send(line);
        self.send(BARRIER);
        self.until(BARRIER_MARK)
    }

    /// `:tick` until a line contains `marker`; returns everything read.
    fn tick_until(&mut self, marker: &str) -> String {
        let mut seen = String::new();
        for _ in 0..10 {
            seen.push_str(&self.say(":tick"));
            seen.push('\n');
            if seen.contains(marker) {
                return seen;
            }
        }
        panic!(
            "no `{marker}` after 10 ticks; transcript:\n{}",
            self.transcript.join("\n")
        )
    }

    /// Close stdin and collect the rest of the output; the process must exit cleanly.
    fn finish(mut self) -> String {
        drop(self.stdin.take());
        tokio::task::block_in_place(|| {
            let status = self.child.wait().expect("wait");
            let rest: Vec<String> = self.lines.iter().collect();
            self.transcript.extend(rest.iter().cloned());
            assert!(
                status.success(),
                "drbot exited with {status}; transcript:\n{}",
                self.transcript.join("\n")
            );
            rest.join("\n")
        })
    }

    /// SIGKILL: no chance to clean up, like a crash.
    fn kill(mut self) {
        tokio::task::block_in_place(|| {
            self.child.kill().expect("kill");
            let _ = self.child.wait();
        });
    }
}

/// `drbot timeline export <incident> --format json` with the same settings, parsed.
fn export_json(dir: &Path, env: &BTreeMap<String, String>, incident: &str) -> Value {
    let out: PathBuf = dir.join("export.json");
    let output = tokio::task::block_in_place(|| {
        support::command(dir)
            .envs(env)
            .args(["timeline", "export", incident, "--format", "json", "--out"])
            .arg(&out)
            .output()
            .expect("run export")
    });
    assert!(
        output.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out).expect("read export")).expect("JSON")
}

// ---- the stand-ins -------------------------------------------------------------------------

/// The offsite bucket: versioning on, two Velero backups, and orders' WAL-G prefix with base
/// backups on Feb 7 and 8 and WAL every 10 minutes up to 2026-02-08T09:58.
async fn offsite_bucket() -> S3Server {
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
            ..WalgLayout::default()
        },
    );
    for (name, done) in [
        ("nightly-20260207020000", t("2026-02-07T02:07:00Z")),
        ("nightly-20260208020000", t("2026-02-08T02:07:00Z")),
    ] {
        s3.seed_velero(BUCKET, "", name, "Completed", done);
    }
    s3
}

fn sgbackup(name: &str, status: &str, start: &str, end: &str) -> Value {
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
        },
    })
}

fn velero_backup(name: &str, phase: &str, started: &str, completed: &str) -> Value {
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

fn app_project() -> Value {
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

fn kustomization(name: &str) -> Value {
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system",
                     "annotations": {"team": "platform"}},
        "spec": {"interval": "10m", "path": format!("./{name}"), "prune": true,
                 "sourceRef": {"kind": "GitRepository", "name": "fleet"}},
        "status": {"observedGeneration": 1},
    })
}

/// The cluster as it stands when the incident starts.
fn seed_cluster(api: &K8sApi) {
    api.put(node("node-1", true));
    api.put(node("node-2", true));
    api.put(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "coredns-1", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {"containers": [{"name": "coredns", "image": "coredns"}]},
        "status": pod_status(true),
    }));
    api.put(json!({
        "apiVersion": "stackgres.io/v1",
        "kind": "SGCluster",
        "metadata": {"name": "orders", "namespace": "db"},
        "spec": {"instances": 2, "postgres": {"version": "16.4"},
                 "pods": {"persistentVolume": {"size": "20Gi"}}},
    }));
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
    api.put(json!({
        "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": "default", "namespace": "velero"},
        "spec": {"provider": "aws", "objectStorage": {"bucket": BUCKET}, "default": true},
        "status": {"phase": "Available"},
    }));
    api.put(app_project());
    api.put(kustomization("apps"));
}

/// The stand-ins, seeded, and the environment that points the binary at them: a kubeconfig
/// whose current context goes nowhere and whose `dr` context is the stand-in.
struct World {
    api: K8sApi,
    _s3: S3Server,
    env: BTreeMap<String, String>,
}

async fn world(dir: &Path) -> World {
    let api = K8sApi::start();
    seed_cluster(&api);
    api.spawn_stackgres_pods();
    let s3 = offsite_bucket().await;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {}\n- name: nowhere\n  cluster:\n    server: http://127.0.0.1:1\nusers:\n- name: drbot\n  user: {{}}\ncontexts:\n- name: other\n  context:\n    cluster: nowhere\n    user: drbot\n- name: dr\n  context:\n    cluster: standin\n    user: drbot\ncurrent-context: other\n",
            api.url()
        ),
    )
    .expect("kubeconfig");
    let env: BTreeMap<String, String> = [
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
    .collect();
    World { api, _s3: s3, env }
}

/// What a freeze must leave exactly as it found: the spec and the annotations (an empty
/// annotation map is no map, as the API server stores it).
fn frozen_parts(object: &Value) -> Value {
    let annotations = match &object["metadata"]["annotations"] {
        Value::Object(m) if m.is_empty() => Value::Null,
        other => other.clone(),
    };
    json!({"spec": object["spec"], "annotations": annotations})
}

fn no_invalid(api: &K8sApi) {
    assert!(api.schemas_loaded(), "the CRD schemas must be loaded");
    assert!(api.invalid().is_empty(), "{:#?}", api.invalid());
}

/// POSTs that created (or tried to create) an SGCluster.
fn sgcluster_posts(api: &K8sApi) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.resource == "sgclusters")
        .count()
}

/// GETs of one SGCluster: how drbot watches a restore.
fn sgcluster_reads(api: &K8sApi, name: &str) -> usize {
    let path = format!("/sgclusters/{name}");
    api.requests_to("get", "sgclusters")
        .iter()
        .filter(|r| r.path.ends_with(&path))
        .count()
}

/// The primary pod the operator started is Ready and the cluster reports Bootstrapped.
fn make_ready(api: &K8sApi, name: &str, at: &str) {
    api.set_status(
        "sgclusters",
        "db",
        name,
        json!({"conditions": [{"type": "Bootstrapped", "status": "True",
                               "reason": "ClusterBootstrapped",
                               "lastTransitionTime": at}]}),
    );
    api.set_pod_ready("db", &format!("{name}-0"), true);
}

// ---- 1. a whole data incident --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_incident_through_the_console_against_the_standins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let World { api, _s3, env } = world(dir.path()).await;
    let project_before = api.get("appprojects", "argocd", "default").unwrap();
    let apps_before = api.get("kustomizations", "flux-system", "apps").unwrap();

    let mut bot = Console::start(dir.path(), &env, "2026-02-08T10:00:00Z", "alice");
    let declared = bot.ask("/dr declare sev2 data orders wiped", "DISASTER DECLARED");
    assert!(declared.contains("INC-1 declared"), "{declared}");

    // Freeze.
    let preview = bot.ask("/dr freeze bad migration", "Confirm with `/dr confirm P1`");
    assert!(!preview.contains("[SANDBOX]"), "{preview}");
    bot.ask("/dr confirm P1", "op1 launched");
    bot.tick_until("op1 succeeded");
    let project = api.get("appprojects", "argocd", "default").unwrap();
    let windows = project["spec"]["syncWindows"].as_array().unwrap();
    assert_eq!(windows.len(), 2, "{project}");
    assert_eq!(windows[1]["kind"], "deny");
    assert!(
        windows[1]["description"]
            .as_str()
            .unwrap()
            .contains("drbot-inc1-op1-freeze: bad migration"),
        "{project}"
    );
    let frozen = api.get("kustomizations", "flux-system", "apps").unwrap();
    assert_eq!(frozen["spec"]["suspend"], true, "{frozen}");

    // PITR: outside the offsite window is refused with the window; inside is previewed.
    let refused = bot.say("/dr pitr 2026-02-05T00:00Z");
    assert!(
        refused
            .contains("outside the recoverable window 2026-02-07T03:41:00Z … 2026-02-08T09:58:00Z"),
        "{refused}"
    );
    assert!(!refused.contains("/dr confirm P2"), "{refused}");
    let preview = bot.ask(
        "/dr pitr 2026-02-08T09:55Z",
        "Confirm with `/dr confirm P2`",
    );
    assert!(!preview.contains("[SANDBOX]"), "{preview}");
    for expected in [
        "restoreToTimestamp: \"2026-02-08T09:55:00Z\"",
        "name: orders-20260208030000",
        "orders-i1-op2",
    ] {
        assert!(preview.contains(expected), "{expected}: {preview}");
    }
    assert_eq!(sgcluster_posts(&api), 0, "nothing created by a preview");
    let launched = bot.ask("/dr confirm P2", "op2 launched");
    assert!(launched.contains("`orders-i1-op2` created"), "{launched}");
    let created = api
        .get("sgclusters", "db", "orders-i1-op2")
        .expect("SGCluster created");
    assert_eq!(
        created["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "drbot"
    );
    assert_eq!(sgcluster_posts(&api), 1);
    no_invalid(&api);

    // Watched to ready: Bootstrapped alone is not enough, the primary must be Ready.
    let watching = bot.say(":advance 3m");
    assert!(!watching.contains("op2 succeeded"), "{watching}");
    api.set_status(
        "sgclusters",
        "db",
        "orders-i1-op2",
        json!({"conditions": [{"type": "Bootstrapped", "status": "True",
                               "reason": "ClusterBootstrapped",
                               "lastTransitionTime": "2026-02-08T10:03:00Z"}]}),
    );
    let bootstrapped = bot.say(":advance 8m");
    assert!(!bootstrapped.contains("op2 succeeded"), "{bootstrapped}");
    make_ready(&api, "orders-i1-op2", "2026-02-08T10:03:00Z");
    let done = bot.tick_until("op2 succeeded");
    assert!(done.contains("Next: `/dr verify`"), "{done}");
    assert_eq!(sgcluster_posts(&api), 1);

    // Verify: the probes' evidence, passed and failed.
    let verify = bot.say("/dr verify");
    for expected in [
        "✓ 9.1.1: 2/2 nodes Ready: node-1, node-2",
        "versioning Enabled",
        "gzip header OK",
        "✗ 9.3.3",
        "not checked: no database connection configured",
        "primary orders-i1-op2-0 Ready",
        "✗ 9.6.4",
        "no Velero backup has completed since the recovery",
    ] {
        assert!(verify.contains(expected), "{expected}: {verify}");
    }
    for item in [
        "9.1.1", "9.1.2", "9.1.3", "9.2.3", "9.2.4", "9.2.5", "9.6.3",
    ] {
        assert!(verify.contains(&format!("✓ {item}:")), "{item}: {verify}");
    }

    // Unfreeze: both objects end exactly as they began.
    bot.ask("/dr unfreeze", "Confirm with `/dr confirm P3`");
    bot.ask("/dr confirm P3", "op3 launched");
    bot.tick_until("op3 succeeded");
    bot.finish();

    assert_eq!(
        frozen_parts(&api.get("appprojects", "argocd", "default").unwrap()),
        frozen_parts(&project_before)
    );
    assert_eq!(
        frozen_parts(&api.get("kustomizations", "flux-system", "apps").unwrap()),
        frozen_parts(&apps_before)
    );
    assert_eq!(sgcluster_posts(&api), 1);
    no_invalid(&api);
}

// ---- 2. a crash right after the create, and a restart --------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_after_sgcluster_created_then_restart_creates_nothing_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let World { api, _s3, env } = world(dir.path()).await;

    let mut bot = Console::start(dir.path(), &env, "2026-02-08T10:00:00Z", "alice");
    bot.ask("/dr declare sev2 data orders wiped", "DISASTER DECLARED");
    bot.ask(
        "/dr pitr 2026-02-08T09:55Z",
        "Confirm with `/dr confirm P1`",
    );
    bot.ask("/dr confirm P1", "op1 launched");
    assert!(api.get("sgclusters", "db", "orders-i1-op1").is_some());
    assert_eq!(sgcluster_posts(&api), 1);
    // Crash: nothing more from this process.
    bot.kill();

    let reads_before = sgcluster_reads(&api, "orders-i1-op1");
    let mut bot = Console::start(dir.path(), &env, "2026-02-08T10:15:00Z", "alice");
    let resumed = bot.say(":tick");
    assert!(!resumed.contains("op1 succeeded"), "{resumed}");
    assert!(
        sgcluster_reads(&api, "orders-i1-op1") > reads_before,
        "the new process watches orders-i1-op1 again: {:#?}",
        api.requests_to("get", "sgclusters")
    );
    assert!(
        !resumed.contains("`orders-i1-op1` created"),
        "launched again: {resumed}"
    );
    make_ready(&api, "orders-i1-op1", "2026-02-08T10:14:00Z");
    bot.tick_until("op1 succeeded");
    bot.finish();

    assert_eq!(sgcluster_posts(&api), 1, "exactly one POST to sgclusters");
    no_invalid(&api);
    let json = export_json(dir.path(), &env, "INC-1");
    let events = json["events"].as_array().expect("events");
    let count = |kind: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == kind && e["data"]["operation"] == "op1")
            .count()
    };
    assert_eq!(count("operation_launched"), 1, "{events:#?}");
    assert_eq!(count("operation_finished"), 1, "{events:#?}");
    let ops = json["incident"]["operations"]
        .as_array()
        .expect("operations");
    assert_eq!(ops.len(), 1, "{ops:#?}");
    assert_eq!(ops[0]["outcome"], "succeeded", "{ops:#?}");
}
