//! The action verbs (freeze, restores, PITR, drills): the checks they share, the preview
//! that shows what would run, and `/dr confirm` / `/dr cancel` of that preview.

use super::{Input, events, not_halted, open};
use crate::command::{BackupChoice, Command};
use crate::incident::decision::{refuse, resolve_time};
use crate::incident::event::{EventKind, OperationKind, OperationSpec};
use crate::incident::state::{Incident, PreviewStatus};
use crate::incident::{Caller, Ctx, Decision, Facts, Refusal, fmt_time, incident_ref};
use crate::sop::Action;

pub(super) fn action_of(cmd: &Command) -> Option<Action> {
    Some(match cmd {
        Command::Freeze { .. } | Command::Unfreeze => Action::Freeze,
        Command::Backups => Action::Backups,
        Command::InfraRestore { .. } => Action::InfraRestore,
        Command::RestoreLatest { .. } => Action::RestoreLatest,
        Command::Pitr { .. } => Action::Pitr,
        Command::Verify { .. } => Action::Verify,
        Command::DrillLatest { .. } => Action::RestoreLatest,
        Command::DrillPitr { .. } => Action::Pitr,
        _ => return None,
    })
}

pub(super) fn is_drill(cmd: &Command) -> bool {
    matches!(cmd, Command::DrillLatest { .. } | Command::DrillPitr { .. })
}

/// Checks shared by every action verb (spec §4), then the operation it would launch.
/// Returns `None` for actions that launch nothing (`backups`, `verify`).
pub fn draft_operation(
    state: Option<&Incident>,
    cmd: &Command,
    caller: &Caller,
    ctx: &Ctx,
) -> Result<Option<OperationSpec>, Refusal> {
    let Some(action) = action_of(cmd) else {
        return Ok(None);
    };
    let drill = is_drill(cmd);
    if drill && state.is_none_or(|s| !s.is_open()) {
        // A drill without an incident opens a drill incident first (see `decide`).
        if !caller.operator {
            return refuse(
                "Only operators can start a drill. Operators are set in the drbot configuration.",
            );
        }
        return Ok(None);
    }
    let s = open(state)?;
    not_halted(s)?;
    let Some(incident_type) = s.incident_type.as_deref() else {
        return refuse(format!(
            "{} is not classified yet, so there is no recovery path. Run `/dr type <infra|data|combined>` first (SOP §4).",
            incident_ref(s.id)
        ));
    };
    if !caller.operator {
        return refuse(format!(
            "`/dr {}` needs the operator role. Operators are set in the drbot configuration; ask one to run it.",
            cmd.verb()
        ));
    }
    if drill != s.drill {
        return refuse(if drill {
            "Drills run in a channel without a real incident open (SOP §10): they restore into the drill namespace, not production."
        } else {
            "This is a drill incident: use `/dr drill latest` or `/dr drill pitr <timestamp>`."
        });
    }
    let path_specific = matches!(
        action,
        Action::InfraRestore | Action::RestoreLatest | Action::Pitr
    );
    if path_specific && !drill && !ctx.runbook.path_allows(incident_type, action) {
        let path: Vec<&str> = ctx
            .runbook
            .incident_type(incident_type)
            .map(|t| t.sections.iter().map(String::as_str).collect())
            .unwrap_or_default();
        return refuse(format!(
            "`/dr {}` is not on the recovery path for a {incident_type} incident (SOP §{}). If the path is unclear, STOP and `/dr escalate <reason>` (SOP §12); if the classification is wrong, change it with `/dr type`.",
            cmd.verb(),
            path.join(", §")
        ));
    }
    let n = s.previews.len() + 1;
    let id = format!("op{n}");
    let base = |kind: OperationKind| {
        OperationSpec::new(
            &id,
            kind,
            &format!("drbot-inc{}-{id}-{}", s.id, kind.short()),
        )
    };
    let database = |kind: OperationKind,
                    cluster: &Option<String>|
     -> Result<OperationSpec, Refusal> {
        let Some(cluster) = cluster
            .clone()
            .or_else(|| ctx.policy.default_cluster.clone())
        else {
            return refuse(format!(
                "Which database cluster? Add `cluster=<name>` (no default cluster is configured). Usage: /dr {} … cluster=<name>",
                cmd.verb()
            ));
        };
        let mut spec = base(kind);
        // A new cluster named after the source (SOP: never repair in place); ≤ 44 characters.
        let suffix = format!("-i{}-{id}", s.id);
        let keep = 44usize.saturating_sub(suffix.len());
        let stem: String = cluster.chars().take(keep).collect();
        spec.object_name = format!("{}{suffix}", stem.trim_end_matches('-'));
        spec.cluster = Some(cluster);
        if drill {
            spec.namespace = Some(ctx.policy.drill_namespace.clone());
        }
        Ok(spec)
    };
    let running = |kind: OperationKind| s.running_operations().find(|o| o.spec.kind == kind);
    let spec = match cmd {
        Command::Freeze { reason } => {
            if let Some(f) = &s.freeze {
                return refuse(format!(
                    "Deployments are already frozen (since {} by {}).",
                    fmt_time(f.since),
                    f.operation
                ));
            }
            if let Some(op) = running(OperationKind::Freeze) {
                return refuse(format!("A freeze is already under way ({}).", op.spec.id));
            }
            let mut spec = base(OperationKind::Freeze);
            spec.reason = Some(
                reason
                    .clone()
                    .unwrap_or_else(|| format!("{} {}", incident_ref(s.id), s.title)),
            );
            spec
        }
        Command::Unfreeze => {
            let Some(f) = &s.freeze else {
                return refuse(
                    "Deployments are not frozen by drbot in this incident; nothing to unfreeze.",
                );
            };
            let mut spec = base(OperationKind::Unfreeze);
            spec.prior = f.prior.clone();
            spec.reason = Some(format!("undo {}", f.operation));
            spec
        }
        Command::InfraRestore { backup, namespaces } => {
            let mut spec = base(OperationKind::InfraRestore);
            spec.backup = match backup {
                BackupChoice::Latest => None,
                BackupChoice::Named(b) => Some(b.clone()),
            };
            spec.include_namespaces = namespaces.clone();
            spec.exclude_database_namespaces = matches!(incident_type, "data" | "combined");
            spec
        }
        Command::RestoreLatest { cluster } | Command::DrillLatest { cluster } => {
            let kind = if drill {
                OperationKind::DrillLatest
            } else {
                OperationKind::RestoreLatest
            };
            database(kind, cluster)?
        }
        Command::Pitr { target, cluster } | Command::DrillPitr { target, cluster } => {
            let (t, _) = resolve_time(target, ctx)?;
            if t > ctx.now {
                return refuse(format!(
                    "The PITR target {} is in the future (now {}). Pick the last known-good moment before the damage (SOP §8.2.1).",
                    fmt_time(t),
                    fmt_time(ctx.now)
                ));
            }
            let kind = if drill {
                OperationKind::DrillPitr
            } else {
                OperationKind::Pitr
            };
            let mut spec = database(kind, cluster)?;
            spec.target = Some(t);
            spec
        }
        Command::Backups | Command::Verify { .. } => return Ok(None),
        _ => return Ok(None),
    };
    if spec.kind.is_restore()
        && let Some(op) = running(spec.kind)
    {
        return refuse(format!(
            "{} ({} {}) is still running; wait for it to finish before launching another.",
            op.spec.id,
            op.spec.kind.label(),
            op.spec.object_name
        ));
    }
    Ok(Some(spec))
}

pub(super) fn preview(
    s: &Incident,
    cmd: &Command,
    spec: OperationSpec,
    ctx: &Ctx,
    facts: &Facts,
) -> Result<Decision, Refusal> {
    let Some(plan) = facts.plan.clone() else {
        return refuse("The cluster backend could not plan this operation.");
    };
    let mut warnings = Vec::new();
    if let (Command::Pitr { target, .. } | Command::DrillPitr { target, .. }, Some(t)) =
        (cmd, spec.target)
    {
        if let (_, Some(echo)) = resolve_time(target, ctx)? {
            warnings.push(echo);
        }
        let Some(window) = plan.window else {
            return refuse(
                "The recoverable window of that cluster is unknown, so the target cannot be checked. Run `/dr backups` and fix the offsite backups first.",
            );
        };
        if !window.contains(t) {
            return refuse(format!(
                "The PITR target {} is outside the recoverable window {} … {} (oldest complete base backup … newest archived WAL). Choose a time inside it.",
                fmt_time(t),
                fmt_time(window.start),
                fmt_time(window.end)
            ));
        }
        if t > s.declared_at {
            warnings.push(format!(
                "The target is after the incident was declared ({}): the damage may be included in the restored data.",
                fmt_time(s.declared_at)
            ));
        }
    }
    let preview = format!("P{}", s.previews.len() + 1);
    Ok(Decision {
        events: vec![
            EventKind::LaunchPreviewed {
                preview,
                operation: spec,
                plan,
                backend: facts.backend.clone(),
                expires_at: ctx.now + ctx.policy.preview_ttl,
                warnings,
            }
            .into(),
        ],
        then_retry: false,
    })
}

pub(super) fn pending_preview<'s>(
    s: &'s Incident,
    id: &str,
) -> Result<&'s crate::incident::state::Preview, Refusal> {
    let Some(p) = s.preview(id) else {
        let pending: Vec<&str> = s
            .previews
            .iter()
            .filter(|p| p.status == PreviewStatus::Pending)
            .map(|p| p.id.as_str())
            .collect();
        return refuse(if pending.is_empty() {
            format!(
                "No preview {id} in {}, and none is pending.",
                incident_ref(s.id)
            )
        } else {
            format!(
                "No preview {id} in {}. Pending: {}.",
                incident_ref(s.id),
                pending.join(", ")
            )
        });
    };
    match p.status {
        PreviewStatus::Confirmed => {
            refuse(format!("{} was already confirmed; it launches once.", p.id))
        }
        PreviewStatus::Cancelled => refuse(format!(
            "{} was cancelled; run the command again for a new preview.",
            p.id
        )),
        PreviewStatus::Pending => Ok(p),
    }
}

pub(super) fn confirm(
    state: Option<&Incident>,
    id: &str,
    caller: &Caller,
    ctx: &Ctx,
) -> Result<Decision, Refusal> {
    let s = open(state)?;
    not_halted(s)?;
    let p = pending_preview(s, id)?;
    if ctx.now > p.expires_at {
        return refuse(format!(
            "{} expired at {}. Run `/dr {}` again for a fresh preview.",
            p.id,
            fmt_time(p.expires_at),
            p.spec.kind.label()
        ));
    }
    if !caller.operator {
        return refuse("Only an operator can confirm a launch.");
    }
    if ctx
        .policy
        .two_person_severities
        .iter()
        .any(|sev| sev.eq_ignore_ascii_case(&s.severity))
        && p.requested_by.id == caller.actor.id
        && p.requested_by.platform == caller.actor.platform
    {
        return refuse(format!(
            "{} launches need a second operator: {} requested {}, so another operator must confirm it.",
            s.severity.to_uppercase(),
            p.requested_by.name,
            p.id
        ));
    }
    if p.spec.kind.is_restore()
        && !s.drill
        && let Some(t) = &s.incident_type
    {
        let action = match p.spec.kind {
            OperationKind::InfraRestore => Some(Action::InfraRestore),
            OperationKind::RestoreLatest => Some(Action::RestoreLatest),
            OperationKind::Pitr => Some(Action::Pitr),
            _ => None,
        };
        if action.is_some_and(|a| !ctx.runbook.path_allows(t, a)) {
            return refuse(format!(
                "The incident was reclassified as {t}; {} no longer fits its recovery path. Cancel it with `/dr cancel {}`.",
                p.id, p.id
            ));
        }
    }
    if p.spec.kind == OperationKind::Freeze && s.freeze.is_some() {
        return refuse("Deployments are already frozen.");
    }
    if p.spec.kind == OperationKind::Unfreeze && s.freeze.is_none() {
        return refuse("Deployments are no longer frozen.");
    }
    Ok(Decision {
        events: vec![
            EventKind::LaunchConfirmed {
                preview: p.id.clone(),
                operation: p.spec.id.clone(),
            }
            .into(),
        ],
        then_retry: false,
    })
}

pub(super) fn cancel(v: &Input, id: &str) -> Result<Decision, Refusal> {
    let Input { state, caller, .. } = *v;
    let s = open(state)?;
    let p = pending_preview(s, id)?;
    if !caller.operator && p.requested_by.id != caller.actor.id {
        return refuse("Only an operator or the requester can cancel a preview.");
    }
    events(vec![EventKind::LaunchCancelled {
        preview: p.id.clone(),
    }])
}
