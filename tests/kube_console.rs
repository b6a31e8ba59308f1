//! The real `drbot console` binary with `cluster.backend = "kubernetes"`, connected through a
//! kubeconfig to the Kubernetes API stand-in, with the offsite backups in an in-process S3
//! server: a whole data incident (freeze, PITR, verify, unfreeze), and a SIGKILL right after
//! the SGCluster was created followed by a restart.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::Drbot;
use support::engine::frozen_parts;
use support::k8s_api::K8sApi;
use support::recovery::{kubernetes_env, offsite_bucket, seed_cluster, write_kubeconfig};
use support::s3::S3Server;

// ---- the console process -------------------------------------------------------------------

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

/// The stand-ins, seeded, and the environment that points the binary at them: a kubeconfig
/// whose current context goes nowhere and whose `dr` context is the stand-in.
struct World {
    api: K8sApi,
    _s3: S3Server,
    env: BTreeMap<String, String>,
}

async fn world(dir: &Path) -> World {
    let api = K8sApi::start();
    seed_cluster(&api, None);
    let s3 = offsite_bucket().await;
    let kubeconfig = write_kubeconfig(dir, &api.url(), true);
    let env = kubernetes_env(&kubeconfig, &s3);
    World { api, _s3: s3, env }
}

/// The console at 10:00, with INC-1 declared and a PITR to 09:55 launched as op1.
fn launch_pitr(dir: &Path, env: &BTreeMap<String, String>) -> Drbot {
    let mut bot = Drbot::console_with(dir, env, "2026-02-08T10:00:00Z", "alice");
    bot.ask("/dr declare sev2 data orders wiped", "DISASTER DECLARED");
    bot.ask(
        "/dr pitr 2026-02-08T09:55Z",
        "Confirm with `/dr confirm P1`",
    );
    bot.ask("/dr confirm P1", "op1 launched");
    bot
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

/// The StackGres emulator reconciles (pods, no role yet), then the bootstrap succeeds
/// (role label, Ready, Bootstrapped).
fn make_ready(api: &K8sApi) {
    api.run_stackgres();
    api.run_stackgres();
}

// ---- 1. a whole data incident --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_incident_through_the_console_against_the_standins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let World { api, _s3, env } = world(dir.path()).await;
    let project_before = api.get("appprojects", "argocd", "default").unwrap();
    let apps_before = api.get("kustomizations", "flux-system", "apps").unwrap();

    let mut bot = Drbot::console_with(dir.path(), &env, "2026-02-08T10:00:00Z", "alice");
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

    // Watched to ready: no pods yet, then pods without a primary, then the primary Ready.
    let watching = bot.say(":advance 3m");
    assert!(!watching.contains("op2 succeeded"), "{watching}");
    api.run_stackgres();
    let restoring = bot.say(":advance 8m");
    assert!(!restoring.contains("op2 succeeded"), "{restoring}");
    let pod = api.get("pods", "db", "orders-i1-op2-0").expect("pod");
    assert!(pod["metadata"]["labels"].get("role").is_none(), "{pod}");
    api.run_stackgres();
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

    let bot = launch_pitr(dir.path(), &env);
    assert!(api.get("sgclusters", "db", "orders-i1-op1").is_some());
    assert_eq!(sgcluster_posts(&api), 1);
    // Crash: nothing more from this process.
    bot.kill();

    let reads_before = sgcluster_reads(&api, "orders-i1-op1");
    let mut bot = Drbot::console_with(dir.path(), &env, "2026-02-08T10:15:00Z", "alice");
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
    make_ready(&api);
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

// ---- 3. a restore that fails the way StackGres fails -----------------------------------------

/// The StackGres emulator instead of scripted pods: the archive's last commit is at 09:50,
/// so a PITR to 09:55 crash-loops on PostgreSQL's FATAL. drbot used to show "Restoring"
/// forever; now the console reports it failed with the FATAL, and the export shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pitr_past_the_last_commit_is_reported_failed_on_the_console_and_in_the_export() {
    use support::recovery::t;
    let dir = tempfile::tempdir().expect("tempdir");
    let api = K8sApi::start();
    seed_cluster(&api, None);
    api.set_archive_last_commit("orders", t("2026-02-08T09:50:00Z"));
    let _s3 = offsite_bucket().await;
    let kubeconfig = write_kubeconfig(dir.path(), &api.url(), true);
    let env = kubernetes_env(&kubeconfig, &_s3);

    let mut bot = launch_pitr(dir.path(), &env);
    let mut seen = String::new();
    for minute in 1..=6 {
        api.set_stackgres_time(t("2026-02-08T10:00:00Z") + chrono::Duration::minutes(minute));
        api.run_stackgres();
        seen.push_str(&bot.say(":advance 1m"));
        if seen.contains("op1 failed") {
            break;
        }
    }
    assert!(seen.contains("op1 failed"), "{seen}");
    assert!(
        seen.contains("FATAL:  recovery ended before configured recovery target was reached"),
        "{seen}"
    );
    assert!(seen.contains("STOP and escalate"), "{seen}");
    bot.finish();
    let json = export_json(dir.path(), &env, "INC-1");
    let ops = json["incident"]["operations"]
        .as_array()
        .expect("operations");
    assert_eq!(ops[0]["outcome"], "failed", "{ops:#?}");
    assert!(
        json.to_string()
            .contains("recovery ended before configured recovery target"),
        "{json}"
    );
    no_invalid(&api);
}
