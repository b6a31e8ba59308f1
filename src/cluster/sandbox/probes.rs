//! Probes: checks of the simulated cluster and of what the incident restored.

use chrono::{DateTime, Duration, Utc};

use super::Sandbox;
use super::backups::{
    BUCKET, SCHEDULE, SCHEDULE_CRON, SOURCE_CLUSTERS, VELERO_BACKUP_MINUTES, VeleroBackup,
    base_backups, stamp, velero_backups,
};
use super::stackgres::SG_READY_S;
use super::state::Record;
use crate::cluster::manifests::fmt;
use crate::cluster::{ClusterError, Observation, ProbeContext, ProbeResult};
use crate::incident::Outcome;

// Simulated durations at speed 1.
pub(super) const SG_FIRST_BACKUP_S: i64 = 5 * 60;
pub(super) const VELERO_AFTER_RECOVERY_START_S: i64 = 2 * 60;
pub(super) const VELERO_AFTER_RECOVERY_DONE_S: i64 = 10 * 60;

impl Sandbox {
    pub(super) fn probe_now(
        &self,
        probe: &str,
        ctx: &ProbeContext,
    ) -> Result<ProbeResult, ClusterError> {
        let now = self.clock.now();
        let pass = |evidence: String| ProbeResult {
            passed: true,
            evidence,
        };
        let fail = |evidence: String| ProbeResult {
            passed: false,
            evidence,
        };
        let velero = velero_backups(now);
        let newest_velero = velero.iter().find(|b| b.completed);
        Ok(match probe {
            "nodes_ready" => pass(
                "3/3 nodes Ready: sandbox-node-1, sandbox-node-2, sandbox-node-3".into(),
            ),
            "control_plane" => pass(
                "API server /readyz ok; kube-apiserver, etcd, kube-scheduler, kube-controller-manager Running, 0 restarts in the last hour".into(),
            ),
            "core_namespaces" => pass(
                "kube-system 14/14, monitoring 9/9, ingress-nginx 3/3 pods Ready".into(),
            ),
            "offsite_reachable" => pass(format!(
                "{BUCKET} reachable: listed backups/ ({} Velero backups) and sgbackups.stackgres.io/ ({} clusters)",
                velero.len(),
                SOURCE_CLUSTERS.len()
            )),
            "offsite_versioning" => pass(format!("{BUCKET} versioning Enabled")),
            "sample_backup_readable" => {
                let bases: Vec<String> = SOURCE_CLUSTERS
                    .iter()
                    .filter_map(|c| base_backups(c, now).into_iter().next())
                    .map(|b| b.name)
                    .collect();
                match newest_velero {
                    Some(v) => pass(format!(
                        "read backups/{0}/velero-backup.json (phase Completed) and the metadata.json of SGBackups {1}",
                        v.name,
                        bases.join(", ")
                    )),
                    None => fail("no Completed Velero backup to read".into()),
                }
            }
            "velero_schedule_active" => match newest_velero {
                Some(v) => pass(format!(
                    "schedule {SCHEDULE} ({SCHEDULE_CRON}) Enabled, not paused; last backup {} Completed at {}",
                    v.name,
                    fmt(v.finished)
                )),
                None => fail(format!(
                    "schedule {SCHEDULE} Enabled but no Completed backup yet"
                )),
            },
            "velero_backup_after_recovery" => self.probe_velero_after(ctx, now, &velero),
            "database_writable" => self.probe_writable(ctx, now),
            "database_backups_resumed" => self.probe_backups_resumed(ctx, now),
            other => {
                return Err(ClusterError::Invalid(format!(
                    "unknown probe {other}; known: {}",
                    crate::cluster::PROBES.join(", ")
                )));
            }
        })
    }

    /// Database clusters among the incident's restored objects, with where each stands.
    pub(super) fn restored_clusters(
        &self,
        ctx: &ProbeContext,
        now: DateTime<Utc>,
    ) -> Vec<(Record, Observation)> {
        let state = self.lock();
        ctx.restored_objects
            .iter()
            .filter_map(|name| state.objects.get(name))
            .filter(|r| r.kind.restores_database())
            .map(|r| (r.clone(), self.observe_record(r, now)))
            .collect()
    }

    pub(super) fn no_restored_cluster(ctx: &ProbeContext) -> ProbeResult {
        ProbeResult {
            passed: false,
            evidence: if ctx.restored_objects.is_empty() {
                "no restored objects in this incident: restore a database cluster first".into()
            } else {
                format!(
                    "none of the restored objects ({}) is a database cluster",
                    ctx.restored_objects.join(", ")
                )
            },
        }
    }

    pub(super) fn probe_writable(&self, ctx: &ProbeContext, now: DateTime<Utc>) -> ProbeResult {
        let clusters = self.restored_clusters(ctx, now);
        if clusters.is_empty() {
            return Sandbox::no_restored_cluster(ctx);
        }
        let ready: Vec<String> = clusters
            .iter()
            .filter(|(_, o)| o.done == Some(Outcome::Succeeded))
            .map(|(r, _)| format!("pg_is_in_recovery() = false on {}", r.name))
            .collect();
        if !ready.is_empty() {
            return ProbeResult {
                passed: true,
                evidence: ready.join("; "),
            };
        }
        let waiting: Vec<String> = clusters
            .iter()
            .map(|(r, o)| format!("{} is {} ({}%)", r.name, o.phase, o.percent))
            .collect();
        ProbeResult {
            passed: false,
            evidence: format!("not accepting writes yet: {}", waiting.join("; ")),
        }
    }

    pub(super) fn probe_backups_resumed(
        &self,
        ctx: &ProbeContext,
        now: DateTime<Utc>,
    ) -> ProbeResult {
        let clusters = self.restored_clusters(ctx, now);
        if clusters.is_empty() {
            return Sandbox::no_restored_cluster(ctx);
        }
        let mut missing = Vec::new();
        for (r, o) in &clusters {
            let ready_at = r.created_at + self.real(SG_READY_S);
            let backup_at = r.created_at + self.real(SG_READY_S + SG_FIRST_BACKUP_S);
            if o.done != Some(Outcome::Succeeded) {
                missing.push(format!(
                    "{} is still {} ({}%), so nothing is archived from it yet",
                    r.name, o.phase, o.percent
                ));
                continue;
            }
            let ms = self.sim_elapsed_ms(r.created_at, now);
            if ms >= ((SG_READY_S + SG_FIRST_BACKUP_S) * 1000) as f64 {
                return ProbeResult {
                    passed: true,
                    evidence: format!(
                        "SGBackup {}-{} completed at {}; WAL archiving active on {}",
                        r.name,
                        stamp(ready_at),
                        fmt(backup_at),
                        r.name
                    ),
                };
            }
            missing.push(format!(
                "{} Bootstrapped at {} but no SGBackup of it has completed yet (first one expected around {})",
                r.name,
                fmt(ready_at),
                fmt(backup_at)
            ));
        }
        ProbeResult {
            passed: false,
            evidence: missing.join("; "),
        }
    }

    pub(super) fn probe_velero_after(
        &self,
        ctx: &ProbeContext,
        now: DateTime<Utc>,
        velero: &[VeleroBackup],
    ) -> ProbeResult {
        let Some(recovered) = ctx.recovered_at else {
            return ProbeResult {
                passed: false,
                evidence: "no recovery recorded yet: a Velero backup must complete after the restores finish".into(),
            };
        };
        // A backup that started before the recovery finished does not hold the recovered
        // state, so only ones started afterwards count; nightly runs first, then the one the
        // team triggers after recovery (`velero backup create --from-schedule nightly`).
        let nightly_start =
            |b: &VeleroBackup| b.finished - Duration::minutes(VELERO_BACKUP_MINUTES);
        let nightly = velero
            .iter()
            .filter(|b| b.completed && nightly_start(b) > recovered)
            .min_by_key(|b| b.finished)
            .map(|b| (b.name.clone(), b.finished));
        let manual_start = recovered + self.real(VELERO_AFTER_RECOVERY_START_S);
        let manual_done = recovered + self.real(VELERO_AFTER_RECOVERY_DONE_S);
        let manual = (now >= manual_done)
            .then(|| (format!("{SCHEDULE}-{}", stamp(manual_start)), manual_done));
        let found = [nightly, manual]
            .into_iter()
            .flatten()
            .min_by_key(|(_, at)| *at);
        match found {
            Some((name, at)) => ProbeResult {
                passed: true,
                evidence: format!(
                    "Velero backup {name} Completed at {}, after the recovery at {}",
                    fmt(at),
                    fmt(recovered)
                ),
            },
            None => ProbeResult {
                passed: false,
                evidence: format!(
                    "no Velero backup has completed since the recovery at {}; the next is expected around {}",
                    fmt(recovered),
                    fmt(manual_done)
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::cluster::PROBES;

    #[tokio::test]
    async fn probes_follow_the_restore() {
        let (c, sb) = sandbox_on_clock(1.0);
        // Before any restore, every probe passes but those about what was restored.
        let after_restore = [
            "database_writable",
            "database_backups_resumed",
            "velero_backup_after_recovery",
        ];
        for &name in PROBES.iter().filter(|p| !after_restore.contains(p)) {
            let r = sb.probe(name, &ProbeContext::default()).await.expect(name);
            assert!(r.passed, "{name}: {}", r.evidence);
        }
        let r = sb
            .probe("nodes_ready", &ProbeContext::default())
            .await
            .expect("probe");
        assert!(r.evidence.starts_with("3/3 nodes Ready: sandbox-node-1"));
        let m = invalid(sb.probe("disk_full", &ProbeContext::default()).await);
        assert!(m.contains("velero_backup_after_recovery"), "{m}");

        let none = ProbeContext::default();
        let r = sb.probe("database_writable", &none).await.expect("probe");
        assert!(!r.passed);
        let r = sb
            .probe("database_backups_resumed", &none)
            .await
            .expect("probe");
        assert!(!r.passed);
        assert!(
            r.evidence.contains("restore a database cluster"),
            "{}",
            r.evidence
        );

        let s = latest("orders-i3-op4");
        sb.launch(&s).await.expect("launch");
        let infra = spec(OperationKind::InfraRestore, "drbot-inc3-op2-infra");
        sb.launch(&infra).await.expect("launch");
        let ctx = ProbeContext {
            recovered_at: None,
            restored_objects: vec![infra.object_name.clone(), s.object_name.clone()],
        };
        c.advance(Duration::minutes(5));
        let r = sb.probe("database_writable", &ctx).await.expect("probe");
        assert!(!r.passed);
        assert!(
            r.evidence.contains("orders-i3-op4 is Restoring"),
            "{}",
            r.evidence
        );

        c.advance(Duration::minutes(7));
        let r = sb.probe("database_writable", &ctx).await.expect("probe");
        assert!(r.passed, "{}", r.evidence);
        assert_eq!(r.evidence, "pg_is_in_recovery() = false on orders-i3-op4");
        let r = sb
            .probe("database_backups_resumed", &ctx)
            .await
            .expect("probe");
        assert!(!r.passed);
        assert!(
            r.evidence.contains("around 2026-02-08T10:17:00Z"),
            "{}",
            r.evidence
        );
        c.advance(Duration::minutes(5));
        let r = sb
            .probe("database_backups_resumed", &ctx)
            .await
            .expect("probe");
        assert!(r.passed, "{}", r.evidence);
        assert!(
            r.evidence.starts_with(
                "SGBackup orders-i3-op4-20260208101200 completed at 2026-02-08T10:17:00Z"
            ),
            "{}",
            r.evidence
        );

        let r = sb
            .probe("velero_backup_after_recovery", &ctx)
            .await
            .expect("probe");
        assert!(!r.passed);
        assert!(
            r.evidence.contains("no recovery recorded"),
            "{}",
            r.evidence
        );
        let ctx = ProbeContext {
            recovered_at: Some(t("2026-02-08T10:12:00Z")),
            ..ctx
        };
        let r = sb
            .probe("velero_backup_after_recovery", &ctx)
            .await
            .expect("probe");
        assert!(!r.passed, "{}", r.evidence);
        assert!(
            r.evidence.contains("around 2026-02-08T10:22:00Z"),
            "{}",
            r.evidence
        );
        c.set(t("2026-02-08T10:22:00Z"));
        let r = sb
            .probe("velero_backup_after_recovery", &ctx)
            .await
            .expect("probe");
        assert!(r.passed, "{}", r.evidence);
        assert_eq!(
            r.evidence,
            "Velero backup nightly-20260208101400 Completed at 2026-02-08T10:22:00Z, after the recovery at 2026-02-08T10:12:00Z"
        );
    }

    #[tokio::test]
    async fn probes_scale_with_speed() {
        let (c, sb) = sandbox_on_clock(60.0);
        let s = latest("orders-i3-op4");
        sb.launch(&s).await.expect("launch");
        let ctx = ProbeContext {
            recovered_at: Some(t("2026-02-08T10:00:12Z")),
            restored_objects: vec![s.object_name.clone()],
        };
        for (seconds, probe) in [
            (12, "database_writable"),
            (5, "database_backups_resumed"),
            (5, "velero_backup_after_recovery"),
        ] {
            c.advance(Duration::seconds(seconds));
            let r = sb.probe(probe, &ctx).await.expect("probe");
            assert!(r.passed, "{probe}: {}", r.evidence);
        }
    }
}
