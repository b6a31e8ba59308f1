//! `/dr escalate`, `/dr resume`, `/dr resolve`: halting, lifting a halt, and closing.

use super::{Input, events, ic_or_operator, not_halted, open};
use crate::features::checklist;
use crate::incident::decision::refuse;
use crate::incident::event::EventKind;
use crate::incident::{Decision, Refusal, fmt_time, incident_ref};

pub(super) fn escalate(v: &Input, reason: &str) -> Result<Decision, Refusal> {
    let Input { state, .. } = *v;
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
        reason: reason.to_string(),
    }])
}

pub(super) fn resume(v: &Input) -> Result<Decision, Refusal> {
    let Input { state, caller, .. } = *v;
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

pub(super) fn resolve(v: &Input) -> Result<Decision, Refusal> {
    let Input {
        state, caller, ctx, ..
    } = *v;
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
            .map(|i| match i.auto.as_deref() {
                Some(checklist::FOLLOWUPS) => format!(
                    "{} {} — file one with `/dr followup <text>`, or the incident commander records why none is needed with `/dr followup none <reason>`",
                    i.id, i.text
                ),
                _ => format!("{} {}", i.id, i.text),
            })
            .collect();
        return refuse(format!(
            "Cannot resolve {}: {} required checklist item(s) are open (SOP §9: do not close the incident until every required section is completed):\n{}",
            incident_ref(s.id),
            list.len(),
            list.join("\n")
        ));
    }
    let mut list = vec![EventKind::Resolved];
    list.extend(crate::features::paging::on_resolve(s));
    events(list)
}
