//! StackGres: a database restore or PITR into a new SGCluster, planned from the simulated
//! base backups and WAL window and observed as it bootstraps.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::backups::{
    SOURCE_CLUSTERS, base_backups, recovery_window, source_cluster, wal_archived_until,
};
use super::state::Record;
use super::{Planned, Sandbox};
use crate::cluster::manifests::{
    self, DatabaseRestore, backup_copy_note, check_cluster_name, check_ended_before, fmt,
    newest_backup_before, restore_target, to_yaml,
};
use crate::cluster::{ClusterError, Observation};
use crate::incident::{OperationKind, OperationSpec, Plan};

pub(super) const PG_VERSION: &str = "16";

// Simulated durations at speed 1.
pub(super) const SG_PENDING_S: i64 = 30;
pub(super) const SG_BASE_DONE_S: i64 = 8 * 60;
pub(super) const SG_READY_S: i64 = 12 * 60;

impl Sandbox {
    pub(super) fn plan_database(
        &self,
        spec: &OperationSpec,
        now: DateTime<Utc>,
        mut record: Record,
    ) -> Result<Planned, ClusterError> {
        let source = source_cluster(spec.cluster.as_deref())?;
        check_cluster_name(&spec.object_name)?;
        let source_ns = self.db_namespace().to_string();
        let namespace = spec.namespace.clone().unwrap_or_else(|| source_ns.clone());
        manifests::check_not_in_place(&spec.object_name, &namespace, source.name, &source_ns)?;
        let pitr = matches!(spec.kind, OperationKind::Pitr | OperationKind::DrillPitr);
        let target = restore_target(pitr, spec.target)?;
        let backups = base_backups(source, now);
        let window = recovery_window(source, now);
        let archived = wal_archived_until(now);
        let window_text = window
            .map(|w| format!("window {} … {}", fmt(w.start), fmt(w.end)))
            .unwrap_or_else(|| "no recoverable window: no complete base backup".into());
        let chosen = match &spec.backup {
            Some(name) => {
                let b = backups.iter().find(|b| &b.name == name).ok_or_else(|| {
                    let known: Vec<&str> = backups.iter().map(|b| b.name.as_str()).collect();
                    ClusterError::Invalid(format!(
                        "unknown SGBackup {name} of {}; known (newest first): {}",
                        source.name,
                        known.join(", ")
                    ))
                })?;
                check_ended_before(name, Some(b.ended), target)?;
                Some(b)
            }
            None => newest_backup_before(&backups, target, |_| true, |b| Some(b.ended)),
        };
        let mut blocked = None;
        if let (Some(t), Some(w)) = (target, window)
            && !w.contains(t)
        {
            blocked = Some(format!(
                "the PITR target {} is outside the recoverable window of {} ({} … {})",
                fmt(t),
                source.name,
                fmt(w.start),
                fmt(w.end)
            ));
        }
        let Some(chosen) = chosen else {
            let why = match target {
                Some(t) => format!(
                    "no complete base backup of {} ended before {}",
                    source.name,
                    fmt(t)
                ),
                None => format!("no complete base backup of {}", source.name),
            };
            return Ok(Planned {
                plan: Plan {
                    summary: vec![why.clone(), window_text],
                    manifest: format!("# nothing to apply: {why}\n"),
                    backup: None,
                    window,
                },
                record,
                gitops_after: None,
                blocked: Some(blocked.unwrap_or(why)),
            });
        };
        let replay_to = target.unwrap_or(archived);
        let mut summary = vec![
            format!(
                "new SGCluster {namespace}/{} restored from {source_ns}/{} (the source is not touched)",
                spec.object_name, source.name
            ),
            format!("from backup {} (ended {})", chosen.name, fmt(chosen.ended)),
        ];
        match target {
            Some(t) => {
                summary.push(format!("recover to {}", fmt(t)));
                if t > archived {
                    summary.push(format!(
                        "the target is after the newest archived WAL ({})",
                        fmt(archived)
                    ));
                }
            }
            None => summary.push(format!("replay all archived WAL, up to {}", fmt(archived))),
        }
        summary.push(format!(
            "PostgreSQL {PG_VERSION}, {} instances, {}",
            source.instances, source.volume
        ));
        summary.push(window_text);
        summary.extend(backup_copy_note(&chosen.name, &namespace, &source_ns));
        let docs = manifests::sgcluster_restore(&DatabaseRestore {
            name: spec.object_name.clone(),
            namespace: namespace.clone(),
            source_namespace: source_ns.clone(),
            source_cluster: source.name.into(),
            backup: chosen.name.clone(),
            postgres_version: PG_VERSION.into(),
            instances: source.instances,
            volume_size: source.volume.into(),
            target,
        });
        record.namespace = Some(namespace);
        record.cluster = Some(source.name.into());
        record.backup = Some(chosen.name.clone());
        record.replay_to = Some(replay_to);
        Ok(Planned {
            plan: Plan {
                summary,
                manifest: to_yaml(&docs),
                backup: Some(chosen.name.clone()),
                window,
            },
            record,
            gitops_after: None,
            blocked,
        })
    }

    pub(super) fn observe_sgcluster(&self, record: &Record, now: DateTime<Utc>) -> Observation {
        let ms = self.sim_elapsed_ms(record.created_at, now);
        let pending_ms = (SG_PENDING_S * 1000) as f64;
        let base_ms = (SG_BASE_DONE_S * 1000) as f64;
        let ready_ms = (SG_READY_S * 1000) as f64;
        let backup = record.backup.as_deref().unwrap_or("?");
        let replay_to = record
            .replay_to
            .map(fmt)
            .unwrap_or_else(|| "the end of the archive".into());
        if ms < pending_ms {
            return Observation::running(
                "Pending",
                0,
                "waiting for the StackGres operator to create the pods",
            );
        }
        if ms < base_ms {
            let frac = (ms - pending_ms) / (base_ms - pending_ms);
            return Observation::running(
                "Restoring",
                1 + (frac * 69.0).floor() as u8,
                format!(
                    "restoring base backup {backup} {}%",
                    (frac * 100.0).floor() as u8
                ),
            );
        }
        if ms < ready_ms {
            let frac = (ms - base_ms) / (ready_ms - base_ms);
            return Observation::running(
                "Restoring",
                70 + (frac * 29.0).floor() as u8,
                format!("replaying WAL to {replay_to}"),
            );
        }
        let namespace = record.namespace.as_deref().unwrap_or("db");
        let instances = record
            .cluster
            .as_deref()
            .and_then(|c| SOURCE_CLUSTERS.iter().find(|s| s.name == c))
            .map_or(1, |s| s.instances);
        let primary = format!("{}-0", record.name);
        Observation::succeeded(
            "Bootstrapped",
            format!("primary {primary} Ready"),
            json!({
                "primary": primary,
                "endpoint": format!("{}.{namespace}.svc:5432", record.name),
                "instances": instances,
                "fromBackup": record.backup,
                "recoveredTo": record.replay_to.map(fmt),
                "readyAt": fmt(record.created_at + self.real(SG_READY_S)),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[tokio::test]
    async fn pitr_plan_picks_newest_backup_that_ended_before_the_target() {
        let (_, sb) = sandbox_on_clock(1.0);
        let plan = planned(&sb, &pitr("orders", "2026-02-08T09:55:00Z")).await;
        assert_eq!(plan.backup.as_deref(), Some("orders-20260208030000"));
        assert!(
            plan.manifest
                .contains("restoreToTimestamp: \"2026-02-08T09:55:00Z\""),
            "{}",
            plan.manifest
        );
        assert!(plan.manifest.contains("name: orders-20260208030000"));
        assert!(plan.manifest.contains("kind: SGCluster"));
        assert!(plan.manifest.contains("version: \"16\""));
        assert!(plan.manifest.contains("size: \"20Gi\""));
        assert!(
            plan.summary
                .contains(&"from backup orders-20260208030000 (ended 2026-02-08T03:41:00Z)".into()),
            "{:?}",
            plan.summary
        );
        assert!(
            plan.summary
                .contains(&"PostgreSQL 16, 2 instances, 20Gi".into())
        );

        // Today's backup was still running at 03:30, and recovery cannot stop inside one.
        let plan = planned(&sb, &pitr("orders", "2026-02-08T03:30:00Z")).await;
        assert_eq!(plan.backup.as_deref(), Some("orders-20260207030000"));
        let plan = planned(&sb, &pitr("orders", "2026-02-08T03:41:00Z")).await;
        assert_eq!(plan.backup.as_deref(), Some("orders-20260207030000"));
        assert_eq!(sb.created_objects(), 0);
    }

    #[tokio::test]
    async fn unknown_cluster_names_the_known_ones() {
        let (_, sb) = sandbox_on_clock(1.0);
        let m = invalid(sb.plan(&pitr("inventory", "2026-02-08T09:55:00Z")).await);
        assert_eq!(m, "unknown cluster inventory; known: orders, payments");
        let m = invalid(sb.launch(&pitr("inventory", "2026-02-08T09:55:00Z")).await);
        assert!(m.contains("orders, payments"), "{m}");
        let mut no_cluster = latest("x-i1-op1");
        no_cluster.cluster = None;
        let m = invalid(sb.plan(&no_cluster).await);
        assert!(m.contains("orders, payments"), "{m}");
        assert_eq!(sb.created_objects(), 0);
    }

    #[tokio::test]
    async fn window_runs_from_oldest_backup_end_to_a_minute_ago() {
        let (c, sb) = sandbox_on_clock(1.0);
        let plan = planned(&sb, &pitr("orders", "2026-02-08T09:55:00Z")).await;
        let w = plan.window.expect("window");
        assert_eq!(w.start, t("2026-02-01T03:41:00Z"));
        assert_eq!(w.end, t("2026-02-08T09:59:00Z"));
        assert!(
            plan.summary
                .contains(&"window 2026-02-01T03:41:00Z … 2026-02-08T09:59:00Z".into())
        );
        let payments = planned(&sb, &pitr("payments", "2026-02-08T09:55:00Z")).await;
        assert_eq!(
            payments.window.expect("window").start,
            t("2026-02-01T03:23:00Z")
        );
        // Before today's backup has finished, the oldest one is a day older.
        c.set(t("2026-02-08T03:00:00Z"));
        let early = planned(&sb, &latest("orders-i1-op1")).await;
        assert_eq!(early.backup.as_deref(), Some("orders-20260207030000"));
        assert_eq!(
            early.window.expect("window").start,
            t("2026-01-31T03:41:00Z")
        );
    }

    #[tokio::test]
    async fn pitr_outside_the_window_is_planned_but_not_launched() {
        let (_, sb) = sandbox_on_clock(1.0);
        let before = pitr("orders", "2026-01-20T00:00:00Z");
        let plan = sb.plan(&before).await.expect("plan shows the window");
        assert_eq!(plan.backup, None);
        assert!(plan.window.is_some());
        let m = invalid(sb.launch(&before).await);
        assert!(m.contains("outside the recoverable window"), "{m}");
        let after = pitr("orders", "2026-02-08T09:59:30Z");
        let m = invalid(sb.launch(&after).await);
        assert!(m.contains("2026-02-08T09:59:00Z"), "{m}");
        assert_eq!(sb.created_objects(), 0);
    }

    #[tokio::test]
    async fn database_restore_progresses_and_finishes_on_time() {
        let (c, sb) = sandbox_on_clock(1.0);
        let s = pitr("orders", "2026-02-08T09:55:00Z");
        sb.launch(&s).await.expect("launch");
        assert_eq!(sb.observe(&s).await.expect("observe").phase, "Pending");
        c.advance(Duration::minutes(4));
        let mid = sb.observe(&s).await.expect("observe");
        assert_eq!(mid.phase, "Restoring");
        assert!(mid.detail.starts_with("restoring base backup"), "{mid:?}");
        c.advance(Duration::minutes(6));
        let replay = sb.observe(&s).await.expect("observe");
        assert_eq!(replay.detail, "replaying WAL to 2026-02-08T09:55:00Z");
        c.set(t("2026-02-08T10:11:59Z"));
        assert_eq!(sb.observe(&s).await.expect("observe").done, None);
        c.set(t("2026-02-08T10:12:00Z"));
        let done = sb.observe(&s).await.expect("observe");
        assert_eq!(done.phase, "Bootstrapped");
        assert_eq!(done.detail, "primary orders-i3-op4-0 Ready");
        assert_eq!(done.done, Some(Outcome::Succeeded));

        c.set(t("2026-02-08T10:00:00Z"));
        let fresh = sandbox(&c, 1.0);
        let s2 = latest("orders-i3-op5");
        fresh.launch(&s2).await.expect("launch");
        assert_eq!(
            run_to_completion(&fresh, &c, &s2).await,
            Duration::minutes(12)
        );
    }

    #[tokio::test]
    async fn faster_speed_finishes_in_seconds() {
        let (c, sb) = sandbox_on_clock(60.0);
        let s = latest("orders-i3-op4");
        sb.launch(&s).await.expect("launch");
        assert_eq!(run_to_completion(&sb, &c, &s).await, Duration::seconds(20));
        c.set(t("2026-02-08T10:00:00Z"));
        let s = latest("orders-i3-op6");
        let sb = sandbox(&c, 60.0);
        sb.launch(&s).await.expect("launch");
        c.advance(Duration::milliseconds(11_999));
        assert_eq!(sb.observe(&s).await.expect("observe").done, None);
        c.advance(Duration::milliseconds(1));
        assert_eq!(
            sb.observe(&s).await.expect("observe").done,
            Some(Outcome::Succeeded)
        );
    }

    #[tokio::test]
    async fn drill_restores_into_its_namespace_with_a_backup_copy() {
        let (_, sb) = sandbox_on_clock(1.0);
        let mut s = spec(OperationKind::DrillLatest, "orders-i2-op1");
        s.cluster = Some("orders".into());
        s.namespace = Some("dr-drill".into());
        let plan = planned(&sb, &s).await;
        assert!(plan.manifest.contains("kind: SGBackup"));
        assert!(plan.manifest.contains("sgCluster: db.orders"));
        assert!(plan.manifest.contains("namespace: dr-drill"));
        assert!(!plan.manifest.contains("pointInTimeRecovery"));
    }
}
