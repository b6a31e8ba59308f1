//! The StackGres operator, kubelet and Patroni, emulated where a restore depends on them.
//!
//! Rules from ongres/stackgres at tag 1.18.6 (paths shortened: `op/` =
//! `stackgres-k8s/src/operator/src/main/java/io/stackgres/operator/`, `common/` =
//! `stackgres-k8s/src/common/src/main/java/io/stackgres/common/`, `tpl/` =
//! `stackgres-k8s/src/operator/src/main/resources/templates/`). The emulator is driven by the
//! test, one step per [`K8sApi::run_stackgres`]: an SGCluster with no pods is reconciled (a
//! failed reconcile is a Warning Event and no pods; a good one creates the pods), a pod not
//! Ready yet runs its bootstrap once (a failure is one more container restart; success is
//! the role label, Ready, `Bootstrapped=True`). It never writes `Failed=True`.
//!
//! What the WAL archive reaches is a fact about the world, not a status:
//! [`K8sApi::set_archive_last_commit`].
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::k8s_api::{K8sApi, stackgres_cluster_labels};

/// The facts and clock of one stand-in (keyed by its URL, so `k8s_api/` stays untouched).
#[derive(Default, Clone)]
struct Facts {
    /// The test's world clock; `None`: the wall clock.
    now: Option<DateTime<Utc>>,
    /// Source cluster name → time of the last commit record in its WAL archive.
    last_commit: HashMap<String, DateTime<Utc>>,
    /// Patroni major in the image (4 from the Patroni 4 images on).
    patroni_major: Option<u32>,
    /// SGClusters (namespace/name) whose creationTimestamp the world clock has stamped.
    stamped: Vec<String>,
    /// Pod (namespace/name) → the log lines of its patroni container's last run.
    logs: HashMap<String, Vec<String>>,
    events: u64,
}

fn facts() -> &'static Mutex<HashMap<String, Facts>> {
    static FACTS: OnceLock<Mutex<HashMap<String, Facts>>> = OnceLock::new();
    FACTS.get_or_init(Default::default)
}

const PG_FATAL: &str = "FATAL:  recovery ended before configured recovery target was reached";

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The major of `16.4` / `160004` (`StackGresBackupInformation.getPostgresMajorVersion`
/// takes `postgresVersion.substring(0, 2)`, common/crd/sgbackup/StackGresBackupInformation.java
/// ~44-49; the cluster's major is the part before the dot).
fn major(v: &str) -> String {
    if v.contains('.') {
        v.split('.').next().unwrap_or("").to_string()
    } else {
        v.chars().take(2).collect()
    }
}

/// What a reconcile of the restore context decides.
enum Context {
    /// The reconcile throws: the message of the Warning Event.
    Error(String),
    /// Pods are made; `Some` when the restore script will exit 1 with this stderr line
    /// (`RESTORE_BACKUP_ERROR`).
    Pods(Option<String>),
}

impl K8sApi {
    fn facts(&self) -> Facts {
        facts()
            .lock()
            .unwrap()
            .get(&self.url())
            .cloned()
            .unwrap_or_default()
    }

    fn with_facts(&self, f: impl FnOnce(&mut Facts)) {
        f(facts().lock().unwrap().entry(self.url()).or_default());
    }

    fn world_now(&self) -> DateTime<Utc> {
        self.facts().now.unwrap_or_else(Utc::now)
    }

    /// Set the world's clock (the API server's and the operator's), for Events, container
    /// states and the creationTimestamp of SGClusters created from now on.
    pub fn set_stackgres_time(&self, now: DateTime<Utc>) {
        self.with_facts(|f| f.now = Some(now));
    }

    /// The last commit record in `cluster`'s WAL archive: a recovery to a time at or after it
    /// ends in PostgreSQL's FATAL (no commit after the target is ever replayed). Unset: the
    /// archive reaches any target.
    pub fn set_archive_last_commit(&self, cluster: &str, at: DateTime<Utc>) {
        self.with_facts(|f| {
            f.last_commit.insert(cluster.to_string(), at);
        });
    }

    /// The Patroni major the pods run (default 4): it decides the primary's role label.
    pub fn set_patroni_major(&self, major: u32) {
        self.with_facts(|f| f.patroni_major = Some(major));
    }

    /// The patroni container's log of its last run (what `kubectl logs --previous` shows).
    pub fn stackgres_log(&self, namespace: &str, pod: &str) -> Vec<String> {
        self.facts()
            .logs
            .get(&format!("{namespace}/{pod}"))
            .cloned()
            .unwrap_or_default()
    }

    /// One step of the operator and of each restoring pod. Returns what happened, one line
    /// per cluster, for test diagnostics.
    pub fn run_stackgres(&self) -> Vec<String> {
        let mut done = Vec::new();
        for cluster in self.objects("sgclusters") {
            let namespace = text(&cluster, "/metadata/namespace")
                .unwrap_or_default()
                .to_string();
            let name = text(&cluster, "/metadata/name")
                .unwrap_or_default()
                .to_string();
            let key = format!("{namespace}/{name}");
            // The stand-in's API server stamps creation with the wall clock; the world's
            // clock is the test's, so the first look restamps it once, as an API server
            // running on that clock would have.
            if !self.facts().stamped.contains(&key) {
                self.with_facts(|f| f.stamped.push(key.clone()));
                let mut c = cluster.clone();
                c["metadata"]["creationTimestamp"] = json!(stamp(self.world_now()));
                self.put(c);
            }
            let cluster = self.get("sgclusters", &namespace, &name).expect("cluster");
            if cluster.pointer("/spec/initialData/restore").is_none() {
                continue;
            }
            let pods = self.cluster_pods(&namespace, &name);
            if pods.is_empty() {
                done.push(format!("{key}: {}", self.reconcile(&cluster)));
            } else {
                for pod in pods {
                    done.push(format!("{key}: {}", self.bootstrap_step(&cluster, &pod)));
                }
            }
        }
        done
    }

    fn cluster_pods(&self, namespace: &str, name: &str) -> Vec<Value> {
        self.objects("pods")
            .into_iter()
            .filter(|p| {
                text(p, "/metadata/namespace") == Some(namespace)
                    && text(p, "/metadata/labels/stackgres.io~1cluster-name") == Some(name)
            })
            .collect()
    }

    /// `ClusterRestoreBackupContextAppender.appendContext` (op/conciliation/cluster/context/
    /// ClusterRestoreBackupContextAppender.java ~52-138) and `RestoreConfigMap` (op/conciliation/
    /// factory/cluster/restore/RestoreConfigMap.java ~80-125).
    fn restore_context(&self, cluster: &Value) -> Context {
        let namespace = text(cluster, "/metadata/namespace").unwrap_or_default();
        let Some(backup_name) = text(cluster, "/spec/initialData/restore/fromBackup/name") else {
            return Context::Pods(Some(
                "Can not restore from backup. Backup not found!".into(),
            ));
        };
        // The backup is looked up in the cluster's own namespace (findRestoreBackup ~117-121).
        let Some(backup) = self.get("sgbackups", namespace, backup_name) else {
            // Not found is no error for the appender (an empty Optional), so pods are made and
            // RestoreConfigMap sets RESTORE_BACKUP_ERROR (RestoreConfigMap.java:125).
            return Context::Pods(Some(
                "Can not restore from backup. Backup not found!".into(),
            ));
        };
        // `BackupStatus.isCompleted` (~122-126).
        if text(&backup, "/status/process/status") != Some("Completed") {
            return Context::Error(format!(
                "Cannot restore from SGBackup {backup_name} because it's not Completed"
            ));
        }
        // Major equality (~128-137).
        let backup_major = text(&backup, "/status/backupInformation/postgresVersion")
            .map(major)
            .unwrap_or_default();
        let cluster_major = text(cluster, "/spec/postgres/version")
            .map(major)
            .unwrap_or_default();
        if backup_major != cluster_major {
            return Context::Error(format!(
                "Cannot restore from SGBackup {backup_name} because it has been created from a postgres instance with version {backup_major}"
            ));
        }
        // The storage Secrets, in the *cluster's* namespace (~70-100), through
        // `BackupEnvVarFactory.streamStorageSecretReferences` (S3 credentials here).
        let selectors = backup
            .pointer("/status/sgBackupConfig/storage/s3/awsCredentials/secretKeySelectors")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let iam = backup
            .pointer("/status/sgBackupConfig/storage/s3/awsCredentials/useIAMRole")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !iam {
            for field in ["accessKeyId", "secretAccessKey"] {
                let Some(sel) = selectors.get(field) else {
                    continue;
                };
                let (Some(secret), Some(key)) = (text(sel, "/name"), text(sel, "/key")) else {
                    continue;
                };
                let Some(found) = self.get("secrets", namespace, secret) else {
                    return Context::Error(format!(
                        "Secret {secret} not found for SGBackup {backup_name}"
                    ));
                };
                if found.pointer(&format!("/data/{key}")).is_none() {
                    return Context::Error(format!(
                        "Key {key} not found in Secret {secret} for SGBackup {backup_name}"
                    ));
                }
            }
        }
        Context::Pods(None)
    }

    /// One operator reconcile of a cluster without pods.
    fn reconcile(&self, cluster: &Value) -> String {
        match self.restore_context(cluster) {
            // `ClusterReconciliator.onError` (op/conciliation/cluster/ClusterReconciliator.java
            // ~188-196): a Warning Event, reason ClusterConfigFailed, nothing else.
            Context::Error(why) => {
                let message = format!("SGCluster reconciliation cycle failed: {why}");
                self.send_event(cluster, "Warning", "ClusterConfigFailed", &message);
                format!("reconcile failed: {why}")
            }
            Context::Pods(restore_error) => {
                // `onConfigCreated` (~169-177): a Normal Event and `Failed=False`, never True.
                let namespace = text(cluster, "/metadata/namespace").unwrap_or_default();
                let name = text(cluster, "/metadata/name").unwrap_or_default();
                self.send_event(
                    cluster,
                    "Normal",
                    "ClusterCreated",
                    &format!("SGCluster {namespace}.{name} created"),
                );
                let mut c = cluster.clone();
                c["status"]["conditions"] = json!([{
                    "type": "Failed", "status": "False", "reason": "FalseFailed",
                    "lastTransitionTime": stamp(self.world_now()),
                }]);
                // `labelSelector` from the cluster labels (ClusterStatusManager.java ~184-189).
                c["status"]["labelSelector"] = json!(format!(
                    "app=StackGresCluster,stackgres.io/cluster-name={name},stackgres.io/cluster=true"
                ));
                self.put(c);
                // The StatefulSet's pods, without the `role` label: Patroni sets it once it
                // leads (PatroniMember.getLabelRole, common/patroni/PatroniMember.java ~87-100).
                self.put(self.restoring_pod(cluster));
                if let Some(e) = restore_error {
                    self.with_facts(|f| {
                        f.logs
                            .insert(format!("{namespace}/{name}-0"), vec![e.clone()]);
                    });
                }
                "pods created".into()
            }
        }
    }

    fn restoring_pod(&self, cluster: &Value) -> Value {
        let name = text(cluster, "/metadata/name").unwrap_or_default();
        let namespace = text(cluster, "/metadata/namespace").unwrap_or_default();
        let now = stamp(self.world_now());
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": format!("{name}-0"),
                "namespace": namespace,
                "labels": stackgres_cluster_labels(name),
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "StatefulSet", "name": name,
                    "uid": "00000000-0000-4000-8000-5a5a5a5a5a5a", "controller": true,
                }],
            },
            "spec": {
                "nodeName": "node-1",
                "containers": [{"name": "patroni", "image": "stackgres/patroni"}],
            },
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "False", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": "False", "lastTransitionTime": now},
                ],
                "containerStatuses": [{
                    "name": "patroni", "ready": false, "restartCount": 0,
                    "image": "stackgres/patroni", "imageID": "", "started": true,
                    "state": {"running": {"startedAt": now}},
                }],
            },
        })
    }

    /// Why this pod's bootstrap fails, if it does: `recovery-from-backup.sh` exits 1 on
    /// `RESTORE_BACKUP_ERROR` (tpl/start-patroni.sh ~37-41); PostgreSQL, asked for a
    /// `recovery_target_time` (Patroni bootstrap `method: recovery`, start-patroni.sh
    /// ~195-242), ends recovery with a FATAL when no commit after the target is replayed
    /// (postgres xlogrecovery.c `PerformWalRecovery` / `recoveryStopsBefore`).
    fn bootstrap_failure(&self, cluster: &Value, pod: &Value) -> Option<Vec<String>> {
        let namespace = text(pod, "/metadata/namespace").unwrap_or_default();
        let pod_name = text(pod, "/metadata/name").unwrap_or_default();
        let logged = self
            .facts()
            .logs
            .get(&format!("{namespace}/{pod_name}"))
            .cloned();
        if let Some(lines) = logged.filter(|l| l.iter().any(|x| x.contains("Backup"))) {
            return Some(lines);
        }
        let target = text(
            cluster,
            "/spec/initialData/restore/fromBackup/pointInTimeRecovery/restoreToTimestamp",
        )
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))?;
        let backup = text(cluster, "/spec/initialData/restore/fromBackup/name")
            .and_then(|b| self.get("sgbackups", namespace, b))?;
        let source = text(&backup, "/spec/sgCluster")?;
        let source = source.rsplit_once('.').map_or(source, |(_, c)| c);
        let last = *self.facts().last_commit.get(source)?;
        (last <= target).then(|| {
            vec![
                format!(
                    "LOG:  last completed transaction was at log time {}",
                    last.format("%Y-%m-%d %H:%M:%S%.3f+00")
                ),
                PG_FATAL.to_string(),
            ]
        })
    }

    /// One kubelet / Patroni step of a pod that is not Ready yet.
    fn bootstrap_step(&self, cluster: &Value, pod: &Value) -> String {
        if pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        {
            return "ready".into();
        }
        let now = stamp(self.world_now());
        let namespace = text(pod, "/metadata/namespace")
            .unwrap_or_default()
            .to_string();
        let pod_name = text(pod, "/metadata/name").unwrap_or_default().to_string();
        if let Some(lines) = self.bootstrap_failure(cluster, pod) {
            // The container exits and kubelet restarts it with back-off. StackGres sets no
            // terminationMessagePolicy (none in 1.18.6), so the default `File` leaves the
            // termination message empty: the FATAL is only in the log. Unverified: that
            // Patroni exits on a failed custom bootstrap (Ha.cancel_initialization raising
            // "Failed to bootstrap cluster" was not read here).
            let mut p = pod.clone();
            let status = &mut p["status"]["containerStatuses"][0];
            let restarts = status["restartCount"].as_i64().unwrap_or(0) + 1;
            let started = status
                .pointer("/state/running/startedAt")
                .cloned()
                .unwrap_or(json!(now));
            status["restartCount"] = json!(restarts);
            status["lastState"] = json!({"terminated": {
                "exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": now,
            }});
            status["state"] = json!({"waiting": {
                "reason": "CrashLoopBackOff",
                "message": format!("back-off {}s restarting failed container=patroni pod={pod_name}", 10 * (1 << restarts.min(5))),
            }});
            self.put(p);
            self.with_facts(|f| {
                f.logs.insert(format!("{namespace}/{pod_name}"), lines);
            });
            return format!("patroni exited ({restarts} restarts)");
        }
        // Replay done and promoted: Patroni leads and labels the pod (PatroniMember
        // .getLabelRole: `master` below Patroni 4, `primary` from 4; the constants exist from
        // StackGres 1.15). Bootstrapped follows once status.arch/os are set
        // (op/conciliation/cluster/ClusterStatusManager.java ~100-112).
        let role = if self.facts().patroni_major.unwrap_or(4) < 4 {
            "master"
        } else {
            "primary"
        };
        let mut p = pod.clone();
        p["metadata"]["labels"]["role"] = json!(role);
        p["status"]["conditions"] = json!([
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
        ]);
        p["status"]["containerStatuses"][0]["ready"] = json!(true);
        self.put(p);
        let name = text(cluster, "/metadata/name").unwrap_or_default();
        let mut c = self.get("sgclusters", &namespace, name).expect("cluster");
        c["status"]["arch"] = json!("x86_64");
        c["status"]["os"] = json!("linux");
        let mut conditions = c["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions.push(json!({"type": "Bootstrapped", "status": "True",
            "reason": "ClusterBootstrapped", "lastTransitionTime": now}));
        c["status"]["conditions"] = json!(conditions);
        self.put(c);
        format!("{role} Ready, Bootstrapped")
    }

    /// `AbstractEventEmitter.sendEvent` (common/event/AbstractEventEmitter.java ~35-123): the
    /// same reason and message on the same object bumps `count` and `lastTimestamp`, else a
    /// new core v1 Event named `<object>.<id>`.
    fn send_event(&self, cluster: &Value, kind: &str, reason: &str, message: &str) {
        let namespace = text(cluster, "/metadata/namespace").unwrap_or_default();
        let name = text(cluster, "/metadata/name").unwrap_or_default();
        let uid = text(cluster, "/metadata/uid").unwrap_or_default();
        let now = stamp(self.world_now());
        let same = self.objects("events").into_iter().find(|e| {
            text(e, "/involvedObject/uid") == Some(uid)
                && text(e, "/reason") == Some(reason)
                && text(e, "/message") == Some(message)
        });
        if let Some(mut e) = same {
            e["count"] = json!(e["count"].as_i64().unwrap_or(1) + 1);
            e["lastTimestamp"] = json!(now);
            self.put(e);
            return;
        }
        let id = {
            let mut n = 0;
            self.with_facts(|f| {
                f.events += 1;
                n = f.events;
            });
            n
        };
        self.put(json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": format!("{name}.{id:016x}"), "namespace": namespace},
            "involvedObject": {
                "apiVersion": "stackgres.io/v1", "kind": "SGCluster",
                "name": name, "namespace": namespace, "uid": uid,
            },
            "type": kind,
            "reason": reason,
            "message": message,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            // Unverified: the component name StackGres reports (EventReason.component()).
            "source": {"component": "stackgres-operator"},
        }));
    }
}

/// Field selectors of core Events: `involvedObject.*` is what `kubectl describe` uses; the
/// rest is kube-apiserver's event strategy as remembered (unverified: not re-read here).
pub const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// `GET /api/v1/namespaces/{ns}/pods/{pod}/log` on the stand-in at `origin`, if `path` is
/// one: the log of the patroni container's last run, as `--previous` asks (`allowed`: the
/// stand-in's RBAC for `pods/log`). 400 when the container never ended (kubelet's wording
/// unverified).
pub fn pod_log_route(
    path: &str,
    origin: &str,
    allowed: impl Fn(&str, &str) -> bool,
) -> Option<axum::response::Response> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ["api", "v1", "namespaces", ns, "pods", pod, "log"] = parts.as_slice() else {
        return None;
    };
    let lines = facts()
        .lock()
        .unwrap()
        .get(origin)
        .and_then(|f| f.logs.get(&format!("{ns}/{pod}")).cloned());
    let (status, kind, body) = match (allowed(ns, pod), lines) {
        (false, _) => (
            403,
            "application/json",
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
                   "code": 403, "message": format!("pods \"{pod}\" is forbidden: cannot get resource \"pods/log\"")})
            .to_string(),
        ),
        (true, Some(lines)) => (200, "text/plain", lines.join("\n") + "\n"),
        (true, None) => (
            400,
            "text/plain",
            format!("previous terminated container \"patroni\" in pod \"{pod}\" not found"),
        ),
    };
    Some(
        axum::response::Response::builder()
            .status(status)
            .header("content-type", kind)
            .body(axum::body::Body::from(body))
            .expect("log response"),
    )
}
