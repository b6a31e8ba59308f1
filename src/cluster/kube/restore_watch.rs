//! How a StackGres restore fails, as StackGres shows it, and the deadline that bounds it.
//!
//! No StackGres release writes the SGCluster condition `Failed=True`: the operator only ever
//! writes `Failed=False` (`ClusterReconciliator.java` `onConfigCreated` / `onConfigUpdated`,
//! 1.18.6 lines ~170-186) and turns a reconcile error into a Warning Event `ClusterConfigFailed`
//! on the SGCluster (`onError`, ~188-196; `ClusterEventReason.java:20`; written as a core v1
//! Event by `AbstractEventEmitter.java` ~95-123). A restore that cannot start is such an event
//! and no pods (`ClusterRestoreBackupContextAppender.java` ~52-138: backup not Completed, major
//! mismatch, storage Secret or key missing). A restore that starts and cannot finish is a
//! patroni container that exits and is restarted: `recovery-from-backup.sh` exits 1 on
//! `RESTORE_BACKUP_ERROR` (`start-patroni.sh` ~37-41; set for a missing backup by
//! `RestoreConfigMap.java:125`), and PostgreSQL ends a recovery whose target lies past the
//! archive with FATAL "recovery ended before configured recovery target was reached"
//! (`xlogrecovery.c` `PerformWalRecovery`). So drbot reads the SGCluster's Events and its
//! pods' container states, and gives up after `kubernetes.restore_deadline_minutes`.
//!
//! Unverified: that Patroni exits (rather than retrying in-process) when its custom bootstrap
//! fails; Patroni's `Ha.cancel_initialization` raising "Failed to bootstrap cluster" was not
//! read here. Either way the pod never turns Ready and the deadline ends the watch.

use super::*;

/// The Warning reason the operator gives a failed reconcile (`ClusterEventReason.java:20`).
pub(super) const CONFIG_FAILED: &str = "ClusterConfigFailed";
/// Restarts of one container that make a crash loop. kubelet shows `CrashLoopBackOff` after
/// the first exit already; one exit can be a transient wal-g fetch error that the next start
/// retries, three exits of a bootstrap that is run again from scratch each time are not.
pub(super) const CRASH_LOOP_RESTARTS: i64 = 3;
/// SOP §12, the next step for the person in the channel.
pub(super) const ESCALATE: &str = "Next step (SOP §12): STOP and escalate; guessing during DR causes more damage than downtime. Do not retry blindly.";

/// Why a watched restore ended without a Ready primary.
pub(super) struct Trouble {
    /// `Failed` or `Stalled`.
    pub(super) phase: &'static str,
    pub(super) detail: String,
}

/// The crash loop of the first container that is in one: `(pod, container, restarts, quote)`.
pub(super) fn crash_loop(pods: &[Value]) -> Option<(String, String, i64, String)> {
    pods.iter().find_map(|pod| {
        let statuses = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)?;
        statuses.iter().find_map(|c| {
            let restarts = c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            if restarts < CRASH_LOOP_RESTARTS {
                return None;
            }
            let container = text(c, "/name").unwrap_or("?").to_string();
            Some((
                name_of(pod).to_string(),
                container,
                restarts,
                termination(c),
            ))
        })
    })
}

/// A container's last termination, as kubelet reports it: reason, exit code and message.
/// StackGres leaves `terminationMessagePolicy` at its default (`File`; no container in
/// 1.18.6 sets it), so the message is usually empty and PostgreSQL's FATAL is in the log.
fn termination(c: &Value) -> String {
    let last = c
        .pointer("/lastState/terminated")
        .or_else(|| c.pointer("/state/terminated"));
    let waiting = text(c, "/state/waiting/reason");
    let mut parts = Vec::new();
    if let Some(w) = waiting {
        parts.push(w.to_string());
    }
    if let Some(t) = last {
        let reason = text(t, "/reason").unwrap_or("terminated");
        let code = t.get("exitCode").and_then(Value::as_i64).unwrap_or(-1);
        parts.push(format!("last exit: {reason}, exit code {code}"));
        if let Some(m) = text(t, "/message").map(str::trim).filter(|m| !m.is_empty()) {
            parts.push(format!("message: {}", last_lines(m, 3)));
        }
    }
    if parts.is_empty() {
        "no termination recorded".into()
    } else {
        parts.join("; ")
    }
}

/// Lines of a container's log read for the cause of a crash.
const LOG_TAIL: i64 = 40;

/// The lines that name the cause: PostgreSQL's FATAL / PANIC, the restore script's errors
/// (`RESTORE_BACKUP_ERROR` is echoed as is, `start-patroni.sh` ~37-41), else the last three.
fn cause_lines(log: &str) -> String {
    let keys = ["FATAL", "PANIC", "ERROR", "Backup", "backup"];
    let hits: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| keys.iter().any(|k| l.contains(k)))
        .collect();
    if hits.is_empty() {
        return last_lines(log, 3);
    }
    hits[hits.len().saturating_sub(3)..].join(" | ")
}

/// The last `n` non-empty lines of a message, joined with " | ".
fn last_lines(m: &str, n: usize) -> String {
    let lines: Vec<&str> = m.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// The newest `ClusterConfigFailed` Warning among `events`: `(reason, message, count, last)`.
pub(super) fn config_failure(events: &[Value]) -> Option<(String, String, i64, String)> {
    events
        .iter()
        .filter(|e| {
            text(e, "/type") == Some("Warning") && text(e, "/reason") == Some(CONFIG_FAILED)
        })
        .max_by_key(|e| last_seen(e))
        .map(|e| {
            (
                text(e, "/reason").unwrap_or(CONFIG_FAILED).to_string(),
                text(e, "/message").unwrap_or("no message").to_string(),
                e.get("count").and_then(Value::as_i64).unwrap_or(1),
                last_seen(e).map_or_else(|| "?".into(), fmt),
            )
        })
}

fn last_seen(e: &Value) -> Option<DateTime<Utc>> {
    time_at(e, "/lastTimestamp")
        .or_else(|| time_at(e, "/eventTime"))
        .or_else(|| time_at(e, "/firstTimestamp"))
}

impl Kube {
    /// The Events about this SGCluster (this object: its uid), as `kubectl describe` reads
    /// them: a core v1 list in its namespace with an `involvedObject` field selector.
    pub(super) async fn cluster_events(&self, cluster: &Value) -> Result<Vec<Value>, ClusterError> {
        let namespace = text(cluster, "/metadata/namespace").unwrap_or_default();
        let name = name_of(cluster);
        let mut fields = format!("involvedObject.kind=SGCluster,involvedObject.name={name}");
        if let Some(uid) = text(cluster, "/metadata/uid") {
            fields.push_str(&format!(",involvedObject.uid={uid}"));
        }
        let what = format!("listing the Events of SGCluster {namespace}/{name}");
        let params = ListParams::default().fields(&fields);
        self.list_with(&what, Kind::Event, Some(namespace), &params)
            .await
    }

    /// The lines of a container's previous run that say why it ended: PostgreSQL's FATAL /
    /// PANIC / ERROR lines and the restore script's error, else the last lines; `Err` says
    /// why the log could not be read (the failure is reported either way).
    async fn last_run_log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<String, String> {
        use ::kube::api::LogParams;
        use k8s_openapi::api::core::v1::Pod;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some(container.to_string()),
            previous: true,
            tail_lines: Some(LOG_TAIL),
            ..LogParams::default()
        };
        let what = format!("reading the log of {namespace}/{pod} ({container})");
        let access = Access::core_get("pods/log", namespace);
        let log = self
            .timed(&what, Some(access), pods.logs(pod, &params))
            .await
            .map_err(|e| e.to_string())?;
        Ok(cause_lines(&log))
    }

    /// How long a restore may take before it is reported stalled.
    fn restore_deadline(&self) -> chrono::Duration {
        chrono::Duration::minutes(
            i64::try_from(self.settings.restore_deadline_minutes).unwrap_or(i64::MAX / 60_000),
        )
    }

    /// Whether the restore of `cluster` (not Ready yet) failed or stalled, and why.
    pub(super) async fn restore_trouble(
        &self,
        cluster: &Value,
        pods: &[Value],
        state: &str,
    ) -> Result<Option<Trouble>, ClusterError> {
        let name = name_of(cluster);
        let namespace = text(cluster, "/metadata/namespace").unwrap_or_default();
        // A refused or unserved Events list must not hide a crash loop or the deadline: the
        // watch goes on without them (`drbot doctor` names the missing permission).
        let events = match self.cluster_events(cluster).await {
            Ok(events) => events,
            Err(ClusterError::Invalid(why)) => {
                tracing::warn!(cluster = %name, error = %why, "could not read the SGCluster's events");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        if let Some((reason, message, count, last)) = config_failure(&events) {
            let pods_note = if pods.is_empty() {
                "; the operator creates no pods until it reconciles"
            } else {
                ""
            };
            return Ok(Some(Trouble {
                phase: "Failed",
                detail: format!(
                    "SGCluster {namespace}/{name} failed: the StackGres operator reports Warning {reason} ({count}×, last {last}): \"{message}\"{pods_note}. See `kubectl describe sgcluster -n {namespace} {name}`. {ESCALATE}"
                ),
            }));
        }
        if let Some((pod, container, restarts, quote)) = crash_loop(pods) {
            let target = text(
                cluster,
                "/spec/initialData/restore/fromBackup/pointInTimeRecovery/restoreToTimestamp",
            );
            let hint = match target {
                Some(t) => format!(
                    " If it says FATAL \"recovery ended before configured recovery target was reached\", the archive holds no commit after {t}: the target is past the last archived commit."
                ),
                None => String::new(),
            };
            let log = match self.last_run_log(namespace, &pod, &container).await {
                Ok(lines) if !lines.is_empty() => format!("its log: \"{lines}\""),
                Ok(_) => "its log is empty".to_string(),
                Err(why) => format!("its log could not be read ({why})"),
            };
            return Ok(Some(Trouble {
                phase: "Failed",
                detail: format!(
                    "SGCluster {namespace}/{name} failed: container {container} of pod {pod} is crash-looping ({restarts} restarts; {quote}): the restore's bootstrap fails each time it starts; {log}. More with `kubectl logs -n {namespace} {pod} -c {container} --previous`.{hint} {ESCALATE}"
                ),
            }));
        }
        let created = time_at(cluster, "/metadata/creationTimestamp");
        let now = self.clock.now();
        let deadline = self.restore_deadline();
        if let Some(created) = created
            && now - created >= deadline
        {
            return Ok(Some(Trouble {
                phase: "Stalled",
                detail: format!(
                    "SGCluster {namespace}/{name} stalled: no Ready primary {} min after it was created ({}; kubernetes.restore_deadline_minutes = {}); last seen: {state}. See `kubectl describe sgcluster -n {namespace} {name}` and the patroni log of its pods. {ESCALATE}",
                    (now - created).num_minutes(),
                    fmt(created),
                    self.settings.restore_deadline_minutes,
                ),
            }));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_needs_three_restarts_and_quotes_the_exit() {
        let pod = |restarts: i64| {
            json!({"metadata": {"name": "c-0"}, "status": {"containerStatuses": [{
                "name": "patroni", "restartCount": restarts,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"reason": "Error", "exitCode": 1,
                    "message": "a\n\nFATAL:  recovery ended before configured recovery target was reached\n"}},
            }]}})
        };
        assert!(crash_loop(&[pod(2)]).is_none());
        let (p, c, n, quote) = crash_loop(&[pod(3)]).expect("loop");
        assert_eq!((p.as_str(), c.as_str(), n), ("c-0", "patroni", 3));
        assert!(
            quote.starts_with("CrashLoopBackOff; last exit: Error, exit code 1"),
            "{quote}"
        );
        assert!(quote.contains("FATAL:  recovery ended"), "{quote}");
    }

    #[test]
    fn only_config_failures_count_and_the_newest_wins() {
        let ev = |kind: &str, reason: &str, msg: &str, at: &str| json!({"type": kind, "reason": reason, "message": msg, "count": 2, "lastTimestamp": at});
        let events = [
            ev("Normal", "ClusterCreated", "ok", "2026-01-01T00:00:00Z"),
            ev(
                "Warning",
                "ClusterSecurityWarning",
                "weak",
                "2026-01-01T00:03:00Z",
            ),
            ev("Warning", CONFIG_FAILED, "old", "2026-01-01T00:01:00Z"),
            ev("Warning", CONFIG_FAILED, "new", "2026-01-01T00:02:00Z"),
        ];
        let (_, message, count, _) = config_failure(&events).expect("failure");
        assert_eq!((message.as_str(), count), ("new", 2));
        assert!(config_failure(&events[..2]).is_none());
    }
}
