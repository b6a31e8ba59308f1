//! A StackGres restore that fails the way StackGres fails: a Warning Event and no pods, or a
//! crash-looping patroni container, or nothing at all before the deadline. The operator is
//! the emulator in `support/stackgres_controller.rs` (it never writes `Failed=True`); drbot
//! must report each as failed or stalled, quoting the cause and SOP §12's next step, on the
//! timeline and in the export, and a drill so failed is a failed drill.

mod support;

use chrono::{DateTime, Duration, Utc};
use drbot::app::App;
use drbot::clock::ManualClock;
use drbot::config::KubernetesSettings;
use drbot::incident::{Event, EventKind, Outcome};
use serde_json::{Value, json};
use support::engine::{self, app_with_cluster};
use support::k8s_api::K8sApi;
use support::recovery::{STORAGE_SECRET, offsite_client, seed_cluster, t};
use support::s3::S3Server;

fn t0() -> DateTime<Utc> {
    t("2026-02-08T10:00:00Z")
}

struct World {
    api: K8sApi,
    app: App,
    clock: ManualClock,
    _s3: S3Server,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = K8sApi::start();
    seed_cluster(&api, None);
    api.set_stackgres_time(t0());
    let (s3, offsite) = offsite_client().await;
    let clock = ManualClock::new(t0());
    let settings = KubernetesSettings {
        freeze_mode: vec!["argocd-window".into()],
        timeout_seconds: 10,
        ..KubernetesSettings::default()
    };
    let kube =
        engine::kube(&api, &settings, Some(offsite), &clock).with_drill_namespace("dr-drill");
    let extra = [
        ("DRBOT__SAFETY__DEFAULT_CLUSTER", "orders"),
        ("DRBOT__SAFETY__DRILL_NAMESPACE", "dr-drill"),
    ];
    let app = app_with_cluster(dir.path(), kube, &clock, &extra).await;
    World {
        api,
        app,
        clock,
        _s3: s3,
        _dir: dir,
    }
}

impl World {
    async fn say(&self, line: &str) -> String {
        engine::say(&self.app, line).await
    }

    async fn events(&self) -> Vec<Event> {
        engine::events(&self.app).await
    }

    async fn finished(&self, op: &str) -> Option<(Outcome, String, String)> {
        let finish = engine::finished(&self.app, op).await;
        finish.map(|(outcome, phase, detail, _)| (outcome, phase, detail))
    }

    /// A minute of the world: the operator and kubelet take a step, drbot looks.
    async fn minute(&self) {
        self.clock.advance(Duration::minutes(1));
        self.api.set_stackgres_time(self.clock_now());
        self.api.run_stackgres();
        self.app.tick().await.expect("tick");
    }

    fn clock_now(&self) -> DateTime<Utc> {
        use drbot::clock::Clock;
        self.clock.now()
    }

    /// Minutes until `op` finished (at most `limit`).
    async fn until_finished(&self, op: &str, limit: u32) -> (Outcome, String, String) {
        for _ in 0..limit {
            if let Some(f) = self.finished(op).await {
                return f;
            }
            self.minute().await;
        }
        self.finished(op)
            .await
            .unwrap_or_else(|| panic!("{op} not finished after {limit} minutes"))
    }

    /// The incident's export as JSON.
    async fn export(&self) -> Value {
        let mut out = Vec::new();
        drbot::export::export(
            &self.app.store,
            1,
            drbot::command::ExportFormat::Json,
            &drbot::sop::Runbook::embedded(),
            &mut out,
        )
        .await
        .expect("export");
        serde_json::from_slice(&out).expect("JSON")
    }

    async fn declare_and_freeze(&self) {
        let declared = self.say("/dr declare sev2 data orders wiped").await;
        assert!(declared.contains("INC-1 declared"), "{declared}");
        self.say("/dr freeze bad migration").await;
        self.say("/dr confirm P1").await;
        self.app.tick().await.expect("tick");
        let (outcome, _, detail) = self.finished("op1").await.expect("freeze");
        assert_eq!(outcome, Outcome::Succeeded, "{detail}");
    }
}

fn assert_escalates(detail: &str) {
    assert!(detail.contains("SOP §12"), "{detail}");
    assert!(detail.contains("STOP and escalate"), "{detail}");
}

#[tokio::test]
async fn a_restore_whose_backup_is_gone_fails_quoting_the_restore_error() {
    let w = world().await;
    w.declare_and_freeze().await;
    let said = w.say("/dr pitr 2026-02-08T09:55Z").await;
    let confirmed = w.say("/dr confirm P2").await;
    w.app.tick().await.expect("tick");
    assert!(
        w.api.get("sgclusters", "db", "orders-i1-op2").is_some(),
        "{said}\n{confirmed}\n{:#?}",
        w.events().await
    );
    // Retention deleted the backup before the operator got to the new cluster.
    w.api
        .remove("sgbackups", "db", "orders-20260208030000")
        .expect("backup");
    let (outcome, phase, detail) = w.until_finished("op2", 15).await;
    assert_eq!(
        (outcome, phase.as_str()),
        (Outcome::Failed, "Failed"),
        "{detail}"
    );
    assert!(detail.contains("crash-looping"), "{detail}");
    assert!(
        detail.contains("Can not restore from backup. Backup not found!"),
        "{detail}"
    );
    assert!(detail.contains("exit code 1"), "{detail}");
    assert_escalates(&detail);
    let pod = w.api.get("pods", "db", "orders-i1-op2-0").expect("pod");
    assert!(pod["metadata"]["labels"].get("role").is_none(), "{pod}");
    let cluster = w.api.get("sgclusters", "db", "orders-i1-op2").unwrap();
    assert!(
        !cluster
            .to_string()
            .contains(r#""type":"Failed","status":"True""#),
        "StackGres never writes Failed=True: {cluster}"
    );
}

#[tokio::test]
async fn a_pitr_past_the_last_archived_commit_fails_with_postgresqls_fatal() {
    let w = world().await;
    // The archive's last commit is at 09:50; the window (upload times) says 09:58.
    w.api
        .set_archive_last_commit("orders", t("2026-02-08T09:50:00Z"));
    w.declare_and_freeze().await;
    let preview = w.say("/dr pitr 2026-02-08T09:55Z").await;
    assert!(preview.contains("/dr confirm P2"), "{preview}");
    w.say("/dr confirm P2").await;
    w.app.tick().await.expect("tick");
    let (outcome, phase, detail) = w.until_finished("op2", 15).await;
    assert_eq!(
        (outcome, phase.as_str()),
        (Outcome::Failed, "Failed"),
        "{detail}"
    );
    assert!(
        detail.contains("FATAL:  recovery ended before configured recovery target was reached"),
        "{detail}"
    );
    assert!(
        detail.contains("container patroni of pod orders-i1-op2-0"),
        "{detail}"
    );
    assert!(detail.contains("3 restarts"), "{detail}");
    assert_escalates(&detail);
    let export = w.export().await;
    let text = export.to_string();
    assert!(text.contains("operation_finished"), "{text}");
    assert!(
        text.contains("recovery ended before configured recovery target"),
        "{text}"
    );
}

#[tokio::test]
async fn a_pitr_the_archive_reaches_ends_with_the_primary_ready() {
    let w = world().await;
    w.api.set_patroni_major(3);
    w.api
        .set_archive_last_commit("orders", t("2026-02-08T09:57:00Z"));
    w.declare_and_freeze().await;
    w.say("/dr pitr 2026-02-08T09:55Z").await;
    w.say("/dr confirm P2").await;
    w.app.tick().await.expect("tick");
    let (outcome, phase, detail) = w.until_finished("op2", 10).await;
    assert_eq!(
        (outcome, phase.as_str()),
        (Outcome::Succeeded, "Bootstrapped"),
        "{detail}"
    );
    let pod = w.api.get("pods", "db", "orders-i1-op2-0").expect("pod");
    assert_eq!(pod["metadata"]["labels"]["role"], "master", "Patroni 3");
}

#[tokio::test]
async fn a_restore_that_never_finishes_stalls_at_the_deadline() {
    let w = world().await;
    w.declare_and_freeze().await;
    w.say("/dr pitr 2026-02-08T09:55Z").await;
    w.say("/dr confirm P2").await;
    w.app.tick().await.expect("tick");
    // The operator makes the pods, then the restore neither finishes nor fails: a base
    // backup fetch that hangs. drbot used to say "Restoring 10 %" forever.
    w.api.run_stackgres();
    for _ in 0..4 {
        w.clock.advance(Duration::minutes(59));
        w.api.set_stackgres_time(w.clock_now());
        w.app.tick().await.expect("tick");
    }
    assert!(
        w.finished("op2").await.is_none(),
        "236 min: within the deadline"
    );
    w.clock.advance(Duration::minutes(5));
    w.app.tick().await.expect("tick");
    let (outcome, phase, detail) = w.finished("op2").await.expect("stalled");
    assert_eq!(
        (outcome, phase.as_str()),
        (Outcome::Failed, "Stalled"),
        "{detail}"
    );
    assert!(detail.contains("no Ready primary 241 min after it was created (2026-02-08T10:00:00Z; kubernetes.restore_deadline_minutes = 240)"), "{detail}");
    assert!(detail.contains("pods: orders-i1-op2-0 Running"), "{detail}");
    assert_escalates(&detail);
}

#[tokio::test]
async fn a_drill_whose_storage_secret_is_missing_is_refused_naming_the_copy_command() {
    let w = world().await;
    w.api
        .remove("secrets", "dr-drill", STORAGE_SECRET)
        .expect("secret");
    w.say("/dr drill latest").await;
    let preview = w
        .events()
        .await
        .into_iter()
        .find_map(|e| match e.kind {
            EventKind::LaunchPreviewed { plan, .. } => Some(plan.summary.join("\n")),
            _ => None,
        })
        .expect("preview");
    assert!(
        preview.contains(&format!(
            "Secret {STORAGE_SECRET} (object storage of SGBackup orders-20260208030000) is not in namespace dr-drill"
        )),
        "{preview}"
    );
    assert!(
        preview.contains(&format!(
            "kubectl get secret {STORAGE_SECRET} -n db -o json"
        )),
        "{preview}"
    );
    assert!(
        w.api
            .get("sgclusters", "dr-drill", "orders-i1-op1")
            .is_none()
    );
}

#[tokio::test]
async fn a_drill_the_operator_refuses_is_a_failed_drill_quoting_the_warning_event() {
    let w = world().await;
    w.say("/dr drill latest").await;
    w.say("/dr confirm P1").await;
    w.app.tick().await.expect("tick");
    assert!(
        w.api
            .get("sgclusters", "dr-drill", "orders-i1-op1")
            .is_some()
    );
    // Someone tidied the drill namespace after drbot checked it.
    w.api.remove("secrets", "dr-drill", STORAGE_SECRET);
    let (outcome, phase, detail) = w.until_finished("op1", 5).await;
    assert_eq!(
        (outcome, phase.as_str()),
        (Outcome::Failed, "Failed"),
        "{detail}"
    );
    assert!(
        detail.contains(&format!(
            "Warning ClusterConfigFailed (1×, last 2026-02-08T10:01:00Z): \"SGCluster reconciliation cycle failed: Secret {STORAGE_SECRET} not found for SGBackup orders-20260208030000\""
        )),
        "{detail}"
    );
    assert!(detail.contains("creates no pods"), "{detail}");
    assert_escalates(&detail);
    assert!(
        w.api
            .objects("pods")
            .iter()
            .all(|p| p["metadata"]["namespace"] != "dr-drill")
    );
    let drills = w.say("/dr drills").await;
    assert!(drills.contains("last attempt FAILED"), "{drills}");
    let export = w.export().await.to_string();
    assert!(export.contains("not found for SGBackup"), "{export}");
    let _ = json!(null);
}
