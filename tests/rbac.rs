//! The Helm chart's RBAC, enforced: the Kubernetes stand-in loads the rules from
//! `deploy/rendered.yaml` and answers 403 with a `Status` to anything they do not allow, as a
//! real API server does. A data incident, an infra incident and a drill run through the real
//! console binary with no 403, and every verb the chart grants is used by them; with one rule
//! taken away, drbot says in the channel exactly which permission is missing.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use support::Drbot;
use support::k8s_api::K8sApi;
use support::rbac::Authorizer;
use support::recovery::{kubernetes_env, offsite_bucket, seed_cluster, t, write_kubeconfig};
use support::s3::S3Server;

struct World {
    api: K8sApi,
    _s3: S3Server,
    env: BTreeMap<String, String>,
    rbac: Arc<Authorizer>,
}

/// The stand-ins seeded, RBAC from the chart enforced, and settings that match the chart's
/// default values (the namespaces its RoleBindings cover).
async fn world(dir: &Path) -> World {
    let api = K8sApi::start();
    seed_cluster(&api, None);
    api.put(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "flux-system"},
        "spec": {"interval": "5m", "chart": {"spec": {"chart": "podinfo",
                 "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}}},
    }));
    // The StackGres emulator runs the restores; the archive's last commit is at 09:50.
    api.set_archive_last_commit("orders", t("2026-02-08T09:50:00Z"));
    let rbac = Arc::new(Authorizer::from_chart());
    api.enforce(rbac.clone());
    let s3 = offsite_bucket().await;
    let kubeconfig = write_kubeconfig(dir, &api.url(), true);
    let mut env = kubernetes_env(&kubeconfig, &s3);
    env.insert("DRBOT__KUBERNETES__DATABASE_NAMESPACES".into(), "db".into());
    env.insert(
        "DRBOT__KUBERNETES__FLUX_HELMRELEASES".into(),
        "flux-system/podinfo".into(),
    );
    World {
        api,
        _s3: s3,
        env,
        rbac,
    }
}

/// Step the StackGres emulator and tick until a line contains `marker`.
fn step_until(bot: &mut Drbot, api: &K8sApi, marker: &str) -> String {
    let mut seen = String::new();
    for _ in 0..10 {
        api.run_stackgres();
        seen.push_str(&bot.say(":tick"));
        if seen.contains(marker) {
            return seen;
        }
    }
    panic!("no `{marker}` after 10 steps:\n{seen}");
}

fn data_incident(w: &World, dir: &Path) {
    let mut bot = Drbot::console_with(dir, &w.env, "2026-02-08T10:00:00Z", "alice");
    bot.ask("/dr declare sev2 data orders wiped", "DISASTER DECLARED");
    bot.ask("/dr freeze bad migration", "Confirm with `/dr confirm P1`");
    bot.ask("/dr confirm P1", "op1 launched");
    bot.tick_until("op1 succeeded");
    bot.ask(
        "/dr pitr 2026-02-08T09:55Z",
        "Confirm with `/dr confirm P2`",
    );
    bot.ask("/dr confirm P2", "op2 launched");
    // Past the last archived commit: a crash loop, its log read (pods/log).
    step_until(&mut bot, &w.api, "op2 failed");
    bot.ask(
        "/dr pitr 2026-02-08T09:45Z",
        "Confirm with `/dr confirm P3`",
    );
    bot.ask("/dr confirm P3", "op3 launched");
    step_until(&mut bot, &w.api, "op3 succeeded");
    bot.ask("/dr verify", "9.1.1");
    bot.ask("/dr backups", "orders");
    bot.ask("/dr unfreeze", "Confirm with `/dr confirm P4`");
    bot.ask("/dr confirm P4", "op4 launched");
    bot.tick_until("op4 succeeded");
    bot.finish();
}

fn infra_incident(w: &World, dir: &Path) {
    let mut bot = Drbot::console_with(dir, &w.env, "2026-02-08T10:00:00Z", "alice");
    bot.ask("/dr declare sev2 infra cluster lost", "DISASTER DECLARED");
    bot.ask("/dr infra restore", "Confirm with `/dr confirm P1`");
    bot.ask("/dr confirm P1", "op1 launched");
    w.api.set_status(
        "restores",
        "velero",
        "drbot-inc1-op1-infra",
        json!({"phase": "Completed", "startTimestamp": "2026-02-08T10:01:00Z",
               "completionTimestamp": "2026-02-08T10:09:00Z",
               "progress": {"itemsRestored": 40, "totalItems": 40}}),
    );
    bot.tick_until("op1 succeeded");
    bot.ask("/dr verify", "9.1.1");
    bot.finish();
}

fn drill(w: &World, dir: &Path) {
    let mut bot = Drbot::console_with(dir, &w.env, "2026-02-08T10:00:00Z", "alice");
    bot.ask("/dr drill latest", "Confirm with `/dr confirm P1`");
    bot.ask("/dr confirm P1", "op1 launched");
    // The copied backup deleted before the operator reconciles: the restore script fails
    // (RESTORE_BACKUP_ERROR) and its log is read in the drill namespace.
    w.api
        .remove("sgbackups", "dr-drill", "orders-20260208030000")
        .expect("copy");
    step_until(&mut bot, &w.api, "op1 failed");
    bot.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_rbac_is_enough_and_nothing_more() {
    let root = tempfile::tempdir().expect("tempdir");
    let w = world(root.path()).await;
    for (name, run) in [
        ("data", data_incident as fn(&World, &Path)),
        ("infra", infra_incident),
        ("drill", drill),
    ] {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).expect("dir");
        tokio::task::block_in_place(|| run(&w, &dir));
    }
    assert_eq!(w.rbac.denied(), Vec::<String>::new(), "403s answered");
    assert_eq!(
        w.rbac.unused(),
        Vec::<String>::new(),
        "granted but never needed"
    );
    assert!(
        w.api.requests().iter().all(|r| r.status != 403),
        "no request was refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_is_named_in_the_channel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = world(dir.path()).await;
    w.rbac.revoke("drbot-argocd", "appprojects", "patch");
    let mut bot = Drbot::console_with(dir.path(), &w.env, "2026-02-08T10:00:00Z", "alice");
    bot.ask("/dr declare sev2 data orders wiped", "DISASTER DECLARED");
    bot.ask("/dr freeze bad migration", "Confirm with `/dr confirm P1`");
    let failed = bot.ask("/dr confirm P1", "op1 FAILED");
    bot.finish();
    for expected in [
        "missing permission: drbot may not patch appprojects (API group argoproj.io) in namespace argocd",
        r#"{apiGroups: ["argoproj.io"], resources: ["appprojects"], verbs: ["patch"]}"#,
        "kubectl auth can-i patch appprojects.argoproj.io -n argocd",
    ] {
        assert!(failed.contains(expected), "{expected}: {failed}");
    }
    assert_eq!(
        w.rbac.denied(),
        vec!["patch appprojects.argoproj.io in argocd".to_string()]
    );
    // The Kustomization it had not reached yet is untouched.
    let apps = w.api.get("kustomizations", "flux-system", "apps").unwrap();
    assert!(apps["spec"].get("suspend").is_none(), "{apps}");
}
