//! The freeze targets: an Argo CD AppProject's sync windows and a Flux Kustomization's
//! suspend, what a freeze records of them and what an unfreeze puts back.

use serde_json::{Map, Value, json};

use super::state::{ARGO_KEY, FLUX_KEY, GitOps, Record, State};
use super::{Planned, Sandbox};
use crate::cluster::manifests::{self, FREEZE_DURATION, FluxKind, describe_windows, to_yaml};
use crate::cluster::{ClusterError, Observation};
use crate::incident::{OperationKind, OperationSpec, Outcome, Plan};

pub(super) const ARGO_NAMESPACE: &str = "argocd";
pub(super) const ARGO_PROJECT: &str = "default";
pub(super) const FLUX_NAMESPACE: &str = "flux-system";
pub(super) const FLUX_NAME: &str = "apps";

/// The part of a recorded freeze state that an unfreeze puts back; a target absent from the
/// record is left as it is.
#[derive(Debug, Clone, Default)]
pub(super) struct PutBack {
    pub(super) sync_windows: Option<Vec<Value>>,
    pub(super) suspend: Option<bool>,
}

impl PutBack {
    pub(super) fn parse(prior: &Value) -> Result<PutBack, ClusterError> {
        let known = format!("known: {ARGO_KEY}, {FLUX_KEY}");
        let Some(map) = prior.as_object() else {
            return Err(ClusterError::Invalid(format!(
                "the recorded freeze state is not an object of targets ({known})"
            )));
        };
        let mut out = PutBack::default();
        for (key, value) in map {
            match key.as_str() {
                ARGO_KEY => {
                    let Some(windows) = value.get("syncWindows").and_then(Value::as_array) else {
                        return Err(ClusterError::Invalid(format!(
                            "the recorded state of {ARGO_KEY} has no syncWindows list"
                        )));
                    };
                    out.sync_windows = Some(windows.clone());
                }
                FLUX_KEY => {
                    let Some(suspend) = value.get("suspend").and_then(Value::as_bool) else {
                        return Err(ClusterError::Invalid(format!(
                            "the recorded state of {FLUX_KEY} has no boolean suspend"
                        )));
                    };
                    out.suspend = Some(suspend);
                }
                other => {
                    return Err(ClusterError::Invalid(format!(
                        "unknown freeze target {other} in the recorded state; {known}"
                    )));
                }
            }
        }
        if out.sync_windows.is_none() && out.suspend.is_none() {
            return Err(ClusterError::Invalid(format!(
                "the recorded freeze state names no target; {known}"
            )));
        }
        Ok(out)
    }

    pub(super) fn applied_to(&self, current: &GitOps) -> GitOps {
        GitOps {
            argocd_sync_windows: self
                .sync_windows
                .clone()
                .unwrap_or_else(|| current.argocd_sync_windows.clone()),
            flux_suspend: self.suspend.unwrap_or(current.flux_suspend),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(w) = &self.sync_windows {
            m.insert(ARGO_KEY.into(), json!({ "syncWindows": w }));
        }
        if let Some(s) = self.suspend {
            m.insert(FLUX_KEY.into(), json!({ "suspend": s }));
        }
        Value::Object(m)
    }
}

impl Sandbox {
    pub(super) fn plan_freeze(
        &self,
        state: &State,
        spec: &OperationSpec,
        mut record: Record,
    ) -> Planned {
        let current = &state.gitops;
        let reason = spec.reason.as_deref().unwrap_or("disaster recovery");
        let window = manifests::argocd_deny_window(
            FREEZE_DURATION,
            &format!("drbot freeze {}: {reason}", spec.object_name),
        );
        let mut windows = current.argocd_sync_windows.clone();
        windows.push(window);
        let after = GitOps {
            argocd_sync_windows: windows.clone(),
            flux_suspend: true,
        };
        let summary = vec![
            format!(
                "Argo CD AppProject {ARGO_NAMESPACE}/{ARGO_PROJECT}: add deny sync window '* * * * *' for {FREEZE_DURATION}, all applications, manual syncs too (now: {})",
                describe_windows(&current.argocd_sync_windows)
            ),
            format!(
                "Flux Kustomization {FLUX_NAMESPACE}/{FLUX_NAME}: spec.suspend true (now: {})",
                current.flux_suspend
            ),
            "the current state is recorded; unfreeze puts back exactly that".into(),
        ];
        let docs = [
            (
                "merge patch on the existing AppProject (the list replaces syncWindows)",
                manifests::argocd_sync_windows(ARGO_NAMESPACE, ARGO_PROJECT, &windows),
            ),
            (
                "merge patch on the existing Kustomization",
                manifests::flux_suspend(
                    FluxKind::Kustomization,
                    FLUX_NAMESPACE,
                    FLUX_NAME,
                    true,
                    None,
                ),
            ),
        ];
        record.prior = Some(current.snapshot());
        gitops_planned(summary, &docs, record, after)
    }

    pub(super) fn plan_unfreeze(
        &self,
        state: &State,
        spec: &OperationSpec,
        mut record: Record,
    ) -> Result<Planned, ClusterError> {
        let Some(prior) = &spec.prior else {
            return Err(ClusterError::Invalid(
                "unfreeze needs the state recorded by the freeze, and none was given".into(),
            ));
        };
        let put_back = PutBack::parse(prior)?;
        let current = &state.gitops;
        let mut summary = Vec::new();
        let mut docs = Vec::new();
        match &put_back.sync_windows {
            Some(windows) => {
                summary.push(format!(
                    "Argo CD AppProject {ARGO_NAMESPACE}/{ARGO_PROJECT}: syncWindows back to {} (now: {})",
                    describe_windows(windows),
                    describe_windows(&current.argocd_sync_windows)
                ));
                docs.push((
                    "merge patch on the existing AppProject: the recorded syncWindows",
                    manifests::argocd_sync_windows(ARGO_NAMESPACE, ARGO_PROJECT, windows),
                ));
            }
            None => summary.push(format!(
                "Argo CD AppProject {ARGO_NAMESPACE}/{ARGO_PROJECT}: not in the recorded state, left as it is"
            )),
        }
        match put_back.suspend {
            Some(suspend) => {
                summary.push(format!(
                    "Flux Kustomization {FLUX_NAMESPACE}/{FLUX_NAME}: spec.suspend back to {suspend} (now: {})",
                    current.flux_suspend
                ));
                docs.push((
                    "merge patch on the existing Kustomization: the recorded suspend",
                    manifests::flux_suspend(
                        FluxKind::Kustomization,
                        FLUX_NAMESPACE,
                        FLUX_NAME,
                        suspend,
                        None,
                    ),
                ));
            }
            None => summary.push(format!(
                "Flux Kustomization {FLUX_NAMESPACE}/{FLUX_NAME}: not in the recorded state, left as it is"
            )),
        }
        let after = put_back.applied_to(current);
        if after == *current {
            summary.push("the targets already match the recorded state: nothing changes".into());
        }
        record.put_back = Some(put_back.to_json());
        Ok(gitops_planned(summary, &docs, record, after))
    }
}

/// A freeze's or unfreeze's plan: its patches, and the GitOps state they leave.
fn gitops_planned(
    summary: Vec<String>,
    docs: &[(&str, Value)],
    record: Record,
    after: GitOps,
) -> Planned {
    Planned {
        plan: Plan {
            summary,
            manifest: to_yaml(docs),
            backup: None,
            window: None,
        },
        record,
        gitops_after: Some(after),
        blocked: None,
    }
}

/// A freeze or unfreeze is applied at launch, so it is done as soon as it exists; what it
/// reports is the state the unfreeze needs (freeze) or the state it put back (unfreeze).
pub(super) fn observe(record: &Record) -> Observation {
    let (detail, result) = if record.kind == OperationKind::Unfreeze {
        ("recorded state put back".into(), record.put_back.clone())
    } else {
        (
            format!(
                "AppProject {ARGO_NAMESPACE}/{ARGO_PROJECT} deny window added; Kustomization {FLUX_NAMESPACE}/{FLUX_NAME} suspended"
            ),
            record.prior.clone(),
        )
    };
    Observation {
        phase: "Applied".into(),
        percent: 100,
        detail,
        done: Some(Outcome::Succeeded),
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[tokio::test]
    async fn freeze_records_prior_state_and_unfreeze_puts_it_back() {
        let (_, sb) = sandbox_on_clock(1.0);
        let mut freeze = spec(OperationKind::Freeze, "drbot-inc1-op1-freeze");
        freeze.reason = Some("INC-1 orders outage".into());
        let plan = planned(&sb, &freeze).await;
        assert!(plan.manifest.contains("kind: deny"), "{}", plan.manifest);
        assert!(plan.manifest.contains("schedule: \"* * * * *\""));
        assert!(plan.manifest.contains("duration: \"24h\""));
        assert!(plan.manifest.contains("suspend: true"));
        sb.launch(&freeze).await.expect("launch");
        let o = sb.observe(&freeze).await.expect("observe");
        assert_eq!(o.phase, "Applied");
        assert_eq!(o.done, Some(Outcome::Succeeded));
        let prior = o.result.expect("prior state");
        assert_eq!(
            prior,
            json!({
                "argocd_appproject/default": {"syncWindows": []},
                "flux_kustomization/flux-system/apps": {"suspend": false},
            })
        );

        // A second freeze now sees the first one's state.
        let again = planned(&sb, &spec(OperationKind::Freeze, "drbot-inc9-op1-freeze")).await;
        assert!(
            again.summary[0].contains("now: 1 sync window: deny"),
            "{:?}",
            again.summary
        );

        let mut unfreeze = spec(OperationKind::Unfreeze, "drbot-inc1-op2-unfreeze");
        let m = invalid(sb.plan(&unfreeze).await);
        assert!(m.contains("recorded by the freeze"), "{m}");
        unfreeze.prior = Some(prior.clone());
        let plan = planned(&sb, &unfreeze).await;
        assert!(
            plan.manifest.contains("syncWindows: []"),
            "{}",
            plan.manifest
        );
        assert!(plan.manifest.contains("suspend: false"));
        sb.launch(&unfreeze).await.expect("launch");
        let o = sb.observe(&unfreeze).await.expect("observe");
        assert_eq!(o.result, Some(prior.clone()));
        sb.launch(&spec(OperationKind::Freeze, "drbot-inc2-op1-freeze"))
            .await
            .expect("launch");
        let o = sb
            .observe(&spec(OperationKind::Freeze, "drbot-inc2-op1-freeze"))
            .await
            .expect("observe");
        assert_eq!(
            o.result,
            Some(prior),
            "the unfreeze put back exactly the prior state"
        );

        unfreeze.object_name = "x".into();
        unfreeze.prior = Some(json!({"argocd_appproject/other": {"syncWindows": []}}));
        let m = invalid(sb.plan(&unfreeze).await);
        assert!(m.contains("known: argocd_appproject/default"), "{m}");
    }
}
