//! `decide`: a command, the incident's state, the caller and the time in; events or a refusal
//! out. Pure: no clock, no I/O. Facts that need I/O (a backend's plan, probe results, the
//! backup report) are gathered by the caller beforehand and passed in.

pub mod posts;

use crate::command::{BackupChoice, Command};
use crate::features::{checklist, tabletop};
use crate::incident::decision::{refuse, resolve_time};
use crate::incident::event::{EventKind, OperationKind, OperationSpec};
use crate::incident::state::{Incident, PreviewStatus};
use crate::incident::{Caller, Ctx, Decision, Draft, Facts, Refusal, fmt_time, incident_ref};
use crate::sop::{Action, Runbook};

fn action_of(cmd: &Command) -> Option<Action> {
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

fn is_drill(cmd: &Command) -> bool {
    matches!(cmd, Command::DrillLatest { .. } | Command::DrillPitr { .. })
}

fn open(state: Option<&Incident>) -> Result<&Incident, Refusal> {
    match state {
        Some(s) if s.is_open() => Ok(s),
        _ => refuse(
            "There is no open incident in this channel. Open one with `/dr declare <sev1..sev4> [infra|data|combined] <title>`.",
        ),
    }
}

fn not_halted(s: &Incident) -> Result<(), Refusal> {
    match &s.halt {
        Some(h) => refuse(format!(
            "{} is HALTED (escalated by {} at {}: {}). Every action is refused until the incident commander runs `/dr resume`.",
            incident_ref(s.id),
            h.by.name,
            fmt_time(h.at),
            h.reason
        )),
        None => Ok(()),
    }
}

fn ic_or_operator(s: &Incident, caller: &Caller, what: &str) -> Result<(), Refusal> {
    if caller.operator || s.is_ic(&caller.actor) {
        Ok(())
    } else {
        refuse(format!(
            "Only the incident commander or an operator can {what}. Ask <@{}>.",
            s.role("ic").unwrap_or("?")
        ))
    }
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

/// Decide what a command does to the incident.
pub fn decide(
    state: Option<&Incident>,
    cmd: &Command,
    caller: &Caller,
    ctx: &Ctx,
    facts: &Facts,
) -> Result<Decision, Refusal> {
    let events = |list: Vec<EventKind>| {
        Ok(Decision {
            events: list.into_iter().map(Draft::from).collect(),
            then_retry: false,
        })
    };
    if let Some(spec) = draft_operation(state, cmd, caller, ctx)? {
        let s = open(state)?;
        return preview(s, cmd, spec, ctx, facts);
    }
    match cmd {
        Command::DrillLatest { .. } | Command::DrillPitr { .. } => {
            if let Some(s) = state.filter(|s| s.is_open()) {
                return refuse(format!(
                    "{} is open here; drills run in a channel without an incident.",
                    incident_ref(s.id)
                ));
            }
            Ok(Decision {
                events: vec![
                    EventKind::Declared {
                        channel: ctx.channel.to_string(),
                        severity: "sev4".into(),
                        incident_type: Some("data".into()),
                        title: format!("DR drill: {}", cmd.verb()),
                        drill: true,
                    }
                    .into(),
                ],
                then_retry: true,
            })
        }
        Command::Declare {
            severity,
            incident_type,
            title,
            services,
            since,
        } => {
            if let Some(s) = state.filter(|s| s.is_open()) {
                return refuse(format!(
                    "{} is already open in this channel ({} {}: {}). One incident per channel: resolve it first or declare in another channel.",
                    incident_ref(s.id),
                    s.severity.to_uppercase(),
                    s.incident_type.as_deref().unwrap_or("unclassified"),
                    s.title
                ));
            }
            if ctx.runbook.severity(severity).is_none() {
                return refuse(format!("Unknown severity {severity}."));
            }
            if let Some(t) = incident_type
                && ctx.runbook.incident_type(t).is_none()
            {
                return refuse(format!("Unknown incident type {t}."));
            }
            let title = if title.trim().is_empty() {
                "untitled incident".to_string()
            } else {
                title.clone()
            };
            let mut drafts: Vec<Draft> = vec![
                EventKind::Declared {
                    channel: ctx.channel.to_string(),
                    severity: severity.clone(),
                    incident_type: incident_type.clone(),
                    title,
                    drill: false,
                }
                .into(),
            ];
            drafts.extend(crate::features::continuity::decide::on_declare(
                services,
                since.as_ref(),
                ctx,
            )?);
            Ok(Decision {
                events: drafts,
                then_retry: false,
            })
        }
        Command::Impact { services } => {
            let s = open(state)?;
            events(vec![crate::features::continuity::decide::impact(
                s, services, ctx,
            )?])
        }
        Command::Severity(to) => {
            let s = open(state)?;
            ic_or_operator(s, caller, "change the severity")?;
            if ctx.runbook.severity(to).is_none() {
                return refuse(format!("Unknown severity {to}."));
            }
            if s.severity == *to {
                return refuse(format!(
                    "{} is already {}.",
                    incident_ref(s.id),
                    to.to_uppercase()
                ));
            }
            events(vec![EventKind::SeverityChanged {
                from: s.severity.clone(),
                to: to.clone(),
            }])
        }
        Command::Type(to) => {
            let s = open(state)?;
            ic_or_operator(s, caller, "classify the incident")?;
            if s.drill {
                return refuse("A drill incident keeps its type.");
            }
            if ctx.runbook.incident_type(to).is_none() {
                return refuse(format!("Unknown incident type {to}."));
            }
            if s.incident_type.as_deref() == Some(to) {
                return refuse(format!(
                    "{} is already classified as {to}.",
                    incident_ref(s.id)
                ));
            }
            events(vec![EventKind::Classified {
                from: s.incident_type.clone(),
                to: to.clone(),
            }])
        }
        Command::Role { role, user } => {
            let s = open(state)?;
            ic_or_operator(s, caller, "assign roles")?;
            if s.role(role.id()) == Some(user.as_str()) {
                return refuse(format!("<@{user}> already holds {}.", role.id()));
            }
            events(vec![EventKind::RoleAssigned {
                role: role.id().into(),
                user: user.clone(),
            }])
        }
        Command::Check { item, note } => {
            let s = open(state)?;
            if let Some(open_items) = section_items(s, item, ctx.runbook) {
                // A section ticks each of its open items, one event each, so every item
                // carries its own who and when (and `/dr resolve` sees them done).
                if open_items.is_empty() {
                    return refuse(format!(
                        "Every item of §{item} is already done or n/a; nothing to tick. See `/dr checklist {item}` or `/dr path`."
                    ));
                }
                return events(
                    open_items
                        .into_iter()
                        .map(|id| EventKind::Checked {
                            item: id,
                            note: note.clone(),
                        })
                        .collect(),
                );
            }
            let label = known_item(item, ctx.runbook)?;
            if let Some(prior) = current_mark(s, item, ctx.runbook) {
                return refuse(format!("{item} ({label}) is already {prior}."));
            }
            events(vec![EventKind::Checked {
                item: item.clone(),
                note: note.clone(),
            }])
        }
        Command::Uncheck { item } => {
            let s = open(state)?;
            known_item(item, ctx.runbook)?;
            if !s.marks.contains_key(item) {
                return refuse(format!("{item} has no tick or n/a to take back."));
            }
            events(vec![EventKind::Unchecked { item: item.clone() }])
        }
        Command::NotApplicable { item, reason } => {
            let s = open(state)?;
            let allowed = match ctx.runbook.checklist.iter().find(|c| c.id == *item) {
                Some(section) => !section.required,
                None => match ctx.runbook.checklist_item(item) {
                    Some((section, i)) => !section.required || i.if_applicable,
                    None => {
                        known_item(item, ctx.runbook)?;
                        false
                    }
                },
            };
            if !allowed {
                return refuse(format!(
                    "{item} is required by the SOP; only items or sections marked if-applicable can be n/a. If it cannot be done, `/dr escalate`."
                ));
            }
            if s.marks.contains_key(item) {
                return refuse(format!(
                    "{item} is already marked; `/dr uncheck {item}` first."
                ));
            }
            events(vec![EventKind::MarkedNotApplicable {
                item: item.clone(),
                reason: reason.clone(),
            }])
        }
        Command::Update { text } => {
            open(state)?;
            events(vec![EventKind::UpdatePosted {
                text: text.clone(),
                automatic: false,
                slots: vec![],
            }])
        }
        Command::Note { text, at } => {
            open(state)?;
            let occurred_at = match at {
                Some(input) => {
                    let (t, _) = resolve_time(input, ctx)?;
                    if t > ctx.now {
                        return refuse(format!(
                            "A note cannot be dated in the future ({}).",
                            fmt_time(t)
                        ));
                    }
                    Some(t)
                }
                None => None,
            };
            Ok(Decision {
                events: vec![Draft {
                    kind: EventKind::NoteAdded { text: text.clone() },
                    occurred_at,
                }],
                then_retry: false,
            })
        }
        Command::Escalate { reason } => {
            let s = open(state)?;
            if let Some(h) = &s.halt {
                return refuse(format!(
                    "Already halted by {} at {}: {}",
                    h.by.name,
                    fmt_time(h.at),
                    h.reason
                ));
            }
            events(vec![EventKind::Escalated {
                reason: reason.clone(),
            }])
        }
        Command::Resume => {
            let s = open(state)?;
            if s.halt.is_none() {
                return refuse("The incident is not halted.");
            }
            if !s.is_ic(&caller.actor) {
                return refuse(format!(
                    "Only the incident commander (<@{}>) can lift a halt.",
                    s.role("ic").unwrap_or("?")
                ));
            }
            events(vec![EventKind::Resumed])
        }
        Command::Resolve => {
            let s = open(state)?;
            ic_or_operator(s, caller, "resolve the incident")?;
            not_halted(s)?;
            let running: Vec<String> = s
                .running_operations()
                .map(|o| {
                    format!(
                        "{} ({} {}, {})",
                        o.spec.id,
                        o.spec.kind.label(),
                        o.spec.object_name,
                        o.phase
                    )
                })
                .collect();
            if !running.is_empty() {
                return refuse(format!(
                    "Cannot resolve while operations are running: {}.",
                    running.join("; ")
                ));
            }
            let open_items = checklist::open_required(s, ctx.runbook);
            if !open_items.is_empty() {
                let list: Vec<String> = open_items
                    .iter()
                    .map(|i| format!("{} {}", i.id, i.text))
                    .collect();
                return refuse(format!(
                    "Cannot resolve {}: {} required checklist item(s) are open (SOP §9: do not close the incident until every required section is completed):\n{}",
                    incident_ref(s.id),
                    list.len(),
                    list.join("\n")
                ));
            }
            events(vec![EventKind::Resolved])
        }
        Command::Confirm { id } => confirm(state, id, caller, ctx),
        Command::Cancel { id } => {
            let s = open(state)?;
            let p = pending_preview(s, id)?;
            if !caller.operator && p.requested_by.id != caller.actor.id {
                return refuse("Only an operator or the requester can cancel a preview.");
            }
            events(vec![EventKind::LaunchCancelled {
                preview: p.id.clone(),
            }])
        }
        Command::Backups => {
            // Reached only when the action checks passed (draft_operation returned None).
            let Some((ok, report)) = &facts.backups else {
                return refuse("The backup report is unavailable.");
            };
            events(vec![EventKind::BackupsChecked {
                backend: facts.backend.clone(),
                ok: *ok,
                report: report.clone(),
            }])
        }
        Command::Verify { .. } => {
            open(state)?;
            if facts.probes.is_empty() {
                return refuse("No automatic probes apply to that section.");
            }
            events(
                facts
                    .probes
                    .iter()
                    .map(|(item, probe, passed, evidence)| EventKind::ProbeRecorded {
                        item: item.clone(),
                        probe: probe.clone(),
                        passed: *passed,
                        evidence: evidence.clone(),
                    })
                    .collect(),
            )
        }
        Command::Status
        | Command::Path
        | Command::Checklist { .. }
        | Command::Timeline
        | Command::TimelineExport(_)
        | Command::Help { .. }
        | Command::Drills => Ok(Decision::default()),
        Command::TabletopStart { .. } | Command::TabletopEnd => {
            tabletop::decide(state, cmd, ctx, facts)
        }
        // Also on a resolved incident: customers hear "Resolved" after the incident closes.
        Command::Comms(c) => match state {
            Some(s) => events(crate::features::comms::decide(
                s,
                c,
                caller,
                &crate::features::comms::CommsCtx {
                    now: ctx.now,
                    status_page: ctx.policy.status_page,
                    default_cluster: ctx.policy.default_cluster.as_deref(),
                },
            )?),
            None => open(state).map(|_| Decision::default()),
        },
        Command::Freeze { .. }
        | Command::Unfreeze
        | Command::InfraRestore { .. }
        | Command::RestoreLatest { .. }
        | Command::Pitr { .. } => unreachable!("launch verbs return from draft_operation"),
    }
}

fn preview(
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

fn pending_preview<'s>(
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

fn confirm(
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

/// The open items under `id` when it names a section (`9.4`, `7`, `6.3`): checklist items
/// and recovery-path steps numbered `id.…`, in SOP order. `None` when nothing is numbered
/// under it (then `id` is an item, or unknown).
fn section_items(s: &Incident, id: &str, runbook: &Runbook) -> Option<Vec<String>> {
    let prefix = format!("{id}.");
    let mut under = false;
    let mut open_items = Vec::new();
    for (section, item) in runbook.checklist_items() {
        if item.id.starts_with(&prefix) {
            under = true;
            if checklist::checklist_item_state(s, section, item).is_open() {
                open_items.push(item.id.clone());
            }
        }
    }
    for step in runbook.sections.iter().flat_map(|sec| &sec.steps) {
        if step.id.starts_with(&prefix) {
            under = true;
            if checklist::item_state(s, &step.id, step.auto.as_deref(), None).is_open() {
                open_items.push(step.id.clone());
            }
        }
    }
    under.then_some(open_items)
}

fn known_item(item: &str, runbook: &Runbook) -> Result<String, Refusal> {
    if let Some((_, i)) = runbook.checklist_item(item) {
        return Ok(i.text.clone());
    }
    if let Some((_, step)) = runbook.step(item) {
        return Ok(step.text.clone());
    }
    if let Some(c) = runbook.checklist.iter().find(|c| c.id == item) {
        return Ok(c.title.clone());
    }
    refuse(format!(
        "Unknown item `{item}`. Items use the SOP's numbering: steps like 6.3.1 (`/dr path`), checklist items like 9.1.1 (`/dr checklist`)."
    ))
}

fn current_mark(s: &Incident, item: &str, runbook: &Runbook) -> Option<String> {
    use crate::incident::state::Mark;
    match s.marks.get(item) {
        Some(Mark::Done { by, at, .. }) => {
            Some(format!("checked by {} at {}", by.name, fmt_time(*at)))
        }
        Some(Mark::NotApplicable { by, .. }) => Some(format!("marked n/a by {}", by.name)),
        None => {
            let auto = runbook
                .checklist_item(item)
                .and_then(|(_, i)| i.auto.as_deref())
                .or_else(|| runbook.step(item).and_then(|(_, st)| st.auto.as_deref()));
            match checklist::item_state(s, item, auto, None) {
                checklist::ItemState::Done { how, .. } => {
                    Some(format!("done automatically ({how})"))
                }
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests;
