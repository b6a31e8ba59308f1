//! `/dr check`, `/dr uncheck`, `/dr na`: the SOP steps and checklist items, ticked by people.

use super::{Input, events, open};
use crate::features::checklist;
use crate::incident::decision::refuse;
use crate::incident::event::EventKind;
use crate::incident::state::Incident;
use crate::incident::{Decision, Refusal, fmt_time};
use crate::sop::Runbook;

pub(super) fn check(v: &Input, item: &str, note: &Option<String>) -> Result<Decision, Refusal> {
    let Input { state, ctx, .. } = *v;
    let s = open(state)?;
    // With a tracker, 9.8.4 is met by a filed follow-up or the IC's waiver, never a tick.
    let by_followup = |id: &str| {
        ctx.policy.tracker.is_some()
            && ctx
                .runbook
                .checklist_item(id)
                .is_some_and(|(_, i)| i.auto.as_deref() == Some(checklist::FOLLOWUPS))
    };
    if by_followup(item) && current_mark(s, item, ctx.runbook).is_none() {
        return refuse(format!(
            "{item} is met by a follow-up filed in {}: `/dr followup <text> [@owner] [due=YYYY-MM-DD]`, or the incident commander's `/dr followup none <reason>`.",
            ctx.policy.tracker.as_deref().unwrap_or("the tracker")
        ));
    }
    if let Some(mut open_items) = section_items(s, item, ctx.runbook) {
        open_items.retain(|id| !by_followup(id));
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
        item: item.to_string(),
        note: note.clone(),
    }])
}

pub(super) fn uncheck(v: &Input, item: &str) -> Result<Decision, Refusal> {
    let Input { state, ctx, .. } = *v;
    let s = open(state)?;
    known_item(item, ctx.runbook)?;
    if !s.marks.contains_key(item) {
        return refuse(format!("{item} has no tick or n/a to take back."));
    }
    events(vec![EventKind::Unchecked {
        item: item.to_string(),
    }])
}

pub(super) fn not_applicable(v: &Input, item: &str, reason: &str) -> Result<Decision, Refusal> {
    let Input { state, ctx, .. } = *v;
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
        item: item.to_string(),
        reason: reason.to_string(),
    }])
}

/// The open items under `id` when it names a section (`9.4`, `7`, `6.3`): checklist items
/// and recovery-path steps numbered `id.…`, in SOP order. `None` when nothing is numbered
/// under it (then `id` is an item, or unknown).
pub(super) fn section_items(s: &Incident, id: &str, runbook: &Runbook) -> Option<Vec<String>> {
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

pub(super) fn known_item(item: &str, runbook: &Runbook) -> Result<String, Refusal> {
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

pub(super) fn current_mark(s: &Incident, item: &str, runbook: &Runbook) -> Option<String> {
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
