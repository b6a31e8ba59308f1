//! Velero: the infra restore, planned from the simulated nightly backups and observed as it
//! runs.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::backups::{BSL, VELERO_NAMESPACE, velero_backups};
use super::state::Record;
use super::{Planned, Sandbox};
use crate::cluster::manifests::{self, VELERO_RESTORE_POLICY, fmt, to_yaml};
use crate::cluster::restore_scope::{DATABASES, RestoreScope};
use crate::cluster::{ClusterError, Observation};
use crate::incident::{OperationSpec, Plan};

// Simulated durations at speed 1.
pub(super) const VELERO_NEW_S: i64 = 15;
pub(super) const VELERO_DONE_S: i64 = 8 * 60;
pub(super) const RESTORE_ITEMS: u32 = 412;

impl Sandbox {
    pub(super) fn plan_infra(
        &self,
        spec: &OperationSpec,
        now: DateTime<Utc>,
        mut record: Record,
    ) -> Result<Planned, ClusterError> {
        let backups = velero_backups(now);
        let chosen = match &spec.backup {
            Some(name) => backups.iter().find(|b| &b.name == name).ok_or_else(|| {
                let known: Vec<&str> = backups.iter().map(|b| b.name.as_str()).collect();
                ClusterError::Invalid(format!(
                    "unknown Velero backup {name}; known (newest first): {}",
                    known.join(", ")
                ))
            })?,
            None => backups.iter().find(|b| b.completed).ok_or_else(|| {
                ClusterError::Invalid(format!(
                    "no Completed Velero backup in BSL {BSL} to restore from"
                ))
            })?,
        };
        let excluded: Vec<String> = if spec.exclude_database_namespaces {
            self.config.database_namespaces.clone()
        } else {
            Vec::new()
        };
        let mut summary = vec![format!(
            "Velero Restore {VELERO_NAMESPACE}/{} from backup {} ({} {})",
            spec.object_name,
            chosen.name,
            if chosen.completed {
                "Completed"
            } else {
                "PartiallyFailed"
            },
            fmt(chosen.finished)
        )];
        if !chosen.completed {
            summary.push(format!(
                "that backup is PartiallyFailed ({} warnings, {} error): some objects may be missing",
                chosen.warnings, chosen.errors
            ));
        }
        let scope = RestoreScope::resolve(&spec.include_namespaces, &excluded, Some(DATABASES))?;
        summary.extend(scope.summary());
        if spec.exclude_database_namespaces && excluded.is_empty() {
            summary.push("no database namespaces are configured, so none is excluded".into());
        }
        summary.push(VELERO_RESTORE_POLICY.into());
        let doc =
            manifests::velero_restore(&spec.object_name, VELERO_NAMESPACE, &chosen.name, &scope);
        record.namespace = Some(VELERO_NAMESPACE.into());
        record.backup = Some(chosen.name.clone());
        Ok(Planned {
            plan: Plan {
                summary,
                manifest: to_yaml(&[("", doc)]),
                backup: Some(chosen.name.clone()),
                window: None,
            },
            record,
            gitops_after: None,
            blocked: None,
        })
    }

    pub(super) fn observe_velero(&self, record: &Record, now: DateTime<Utc>) -> Observation {
        let ms = self.sim_elapsed_ms(record.created_at, now);
        let new_ms = (VELERO_NEW_S * 1000) as f64;
        let done_ms = (VELERO_DONE_S * 1000) as f64;
        if ms < new_ms {
            return Observation::running("New", 0, "waiting for the Velero server to pick it up");
        }
        if ms < done_ms {
            let frac = (ms - new_ms) / (done_ms - new_ms);
            let items = (f64::from(RESTORE_ITEMS) * frac).floor() as u32;
            return Observation::running(
                "InProgress",
                1 + (frac * 98.0).floor() as u8,
                format!("{items}/{RESTORE_ITEMS} items restored"),
            );
        }
        let completed_at = record.created_at + self.real(VELERO_DONE_S);
        Observation::succeeded(
            "Completed",
            format!("{RESTORE_ITEMS}/{RESTORE_ITEMS} items restored, 0 warnings, 0 errors"),
            json!({
                "backupName": record.backup,
                "itemsRestored": RESTORE_ITEMS,
                "totalItems": RESTORE_ITEMS,
                "warnings": 0,
                "errors": 0,
                "completionTimestamp": fmt(completed_at),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[tokio::test]
    async fn velero_restore_progresses_and_finishes_on_time() {
        let (c, sb) = sandbox_on_clock(1.0);
        let s = spec(OperationKind::InfraRestore, "drbot-inc1-op2-infra");
        sb.launch(&s).await.expect("launch");
        assert_eq!(sb.observe(&s).await.expect("observe").phase, "New");
        c.advance(Duration::minutes(4));
        let mid = sb.observe(&s).await.expect("observe");
        assert_eq!(mid.phase, "InProgress");
        assert!(mid.detail.ends_with("/412 items restored"), "{mid:?}");
        c.set(t("2026-02-08T10:00:00Z"));
        let fresh = sandbox(&c, 1.0);
        fresh.launch(&s).await.expect("launch");
        assert_eq!(
            run_to_completion(&fresh, &c, &s).await,
            Duration::minutes(8)
        );
        let o = fresh.observe(&s).await.expect("observe");
        assert_eq!(o.phase, "Completed");
        assert_eq!(o.result.expect("result")["itemsRestored"], 412);
    }

    #[tokio::test]
    async fn infra_restore_excludes_database_namespaces_when_asked() {
        let (_, sb) = sandbox_on_clock(1.0);
        let mut s = spec(OperationKind::InfraRestore, "drbot-inc1-op2-infra");
        let plan = planned(&sb, &s).await;
        assert_eq!(plan.backup.as_deref(), Some("nightly-20260208020000"));
        assert!(plan.manifest.contains("backupName: nightly-20260208020000"));
        assert!(plan.manifest.contains("namespace: velero"));
        assert!(!plan.manifest.contains("excludedNamespaces"));
        assert!(!plan.manifest.contains("includedNamespaces"));

        s.exclude_database_namespaces = true;
        s.include_namespaces = vec!["shop".into(), "web".into()];
        let plan = planned(&sb, &s).await;
        assert!(
            plan.manifest.contains("excludedNamespaces:\n  - db\n"),
            "{}",
            plan.manifest
        );
        assert!(
            plan.manifest
                .contains("includedNamespaces:\n  - shop\n  - web\n")
        );
        assert!(plan.summary.iter().any(|l| l.contains("except db")));

        s.backup = Some("nightly-20260131020000".into());
        let plan = sb
            .plan(&s)
            .await
            .expect("a PartiallyFailed backup is allowed");
        assert!(plan.summary.iter().any(|l| l.contains("PartiallyFailed")));
        s.backup = Some("nightly-2020".into());
        let m = invalid(sb.plan(&s).await);
        assert!(m.contains("unknown Velero backup nightly-2020"), "{m}");
        assert!(m.contains("nightly-20260208020000"), "{m}");
    }
}
