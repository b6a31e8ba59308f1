//! Where each step and checklist item stands, derived from state (never stored twice).

use chrono::{DateTime, Utc};

use crate::incident::event::{Actor, OperationKind};
use crate::incident::state::{Incident, Mark};
use crate::sop::{ChecklistItem, ChecklistSection, Runbook};

#[derive(Debug, Clone, PartialEq)]
pub enum ItemState {
    Open,
    Done {
        by: Option<Actor>,
        at: Option<DateTime<Utc>>,
        how: String,
    },
    NotApplicable {
        by: Actor,
        at: DateTime<Utc>,
        reason: String,
    },
}

impl ItemState {
    pub fn is_open(&self) -> bool {
        matches!(self, ItemState::Open)
    }
    pub fn symbol(&self) -> &'static str {
        match self {
            ItemState::Open => "[ ]",
            ItemState::Done { .. } => "[x]",
            ItemState::NotApplicable { .. } => "[-]",
        }
    }
}

/// The `auto` of SOP 9.8.4: a follow-up filed in the tracker, or the incident commander's
/// waiver. With no tracker configured the item is ticked by hand, as before.
pub const FOLLOWUPS: &str = "followups";

/// State of an `auto` condition: `Some(description)` when the incident satisfies it.
fn auto_done(state: &Incident, auto: &str) -> Option<(Option<DateTime<Utc>>, String)> {
    let finished_op = |kind: OperationKind| {
        state
            .operations
            .iter()
            .rev()
            .filter(|o| o.spec.kind == kind && o.succeeded())
            .find_map(|o| o.finished.as_ref().map(|f| (o, f.at)))
    };
    match auto {
        "classified" => state.classified_at.map(|at| {
            (
                Some(at),
                format!(
                    "classified as {}",
                    state.incident_type.as_deref().unwrap_or("?")
                ),
            )
        }),
        "update_posted" => state
            .last_update_at
            .map(|at| (Some(at), "status update posted".to_string())),
        "pitr_target" => state.pitr_target.map(|t| {
            (
                None,
                format!("PITR target {}", t.format("%Y-%m-%dT%H:%M:%SZ")),
            )
        }),
        "database_restored" => state
            .operations
            .iter()
            .rev()
            .filter(|o| {
                o.spec.kind.restores_database()
                    && !o.spec.kind.label().starts_with("drill")
                    && o.succeeded()
            })
            .find_map(|o| o.finished.as_ref().map(|f| (o, f.at)))
            .map(|(o, at)| {
                (
                    Some(at),
                    format!(
                        "{} {} ({})",
                        o.spec.id,
                        o.spec.kind.label(),
                        o.spec.object_name
                    ),
                )
            }),
        "unfrozen" => finished_op(OperationKind::Unfreeze)
            .filter(|_| state.freeze.is_none())
            .map(|(o, at)| (Some(at), format!("unfrozen by {}", o.spec.id))),
        "resolve" => None,
        FOLLOWUPS => state.reach.followups_settled(),
        other => {
            let kind = other.strip_prefix("operation_done:")?;
            let kind = match kind {
                "pitr" => OperationKind::Pitr,
                "restore_latest" => OperationKind::RestoreLatest,
                "infra_restore" => OperationKind::InfraRestore,
                _ => return None,
            };
            finished_op(kind).map(|(o, at)| (Some(at), format!("{} finished", o.spec.id)))
        }
    }
}

fn from_mark(mark: &Mark) -> ItemState {
    match mark {
        Mark::Done { by, at, note } => ItemState::Done {
            by: Some(by.clone()),
            at: Some(*at),
            how: note.clone().unwrap_or_else(|| "checked".into()),
        },
        Mark::NotApplicable { by, at, reason } => ItemState::NotApplicable {
            by: by.clone(),
            at: *at,
            reason: reason.clone(),
        },
    }
}

/// State of a step or checklist item: a human mark wins, then automatic completion.
pub fn item_state(
    state: &Incident,
    id: &str,
    auto: Option<&str>,
    section: Option<&str>,
) -> ItemState {
    if let Some(mark) = state.marks.get(id) {
        return from_mark(mark);
    }
    if let Some(Mark::NotApplicable { .. }) = section.and_then(|s| state.marks.get(s)) {
        return from_mark(&state.marks[section.expect("checked above")]);
    }
    match auto.and_then(|a| auto_done(state, a)) {
        Some((at, how)) => ItemState::Done { by: None, at, how },
        None => ItemState::Open,
    }
}

pub fn checklist_item_state(
    state: &Incident,
    section: &ChecklistSection,
    item: &ChecklistItem,
) -> ItemState {
    item_state(state, &item.id, item.auto.as_deref(), Some(&section.id))
}

/// Required checklist items that still block `resolve` (items satisfied by resolving excepted).
pub fn open_required<'r>(state: &Incident, runbook: &'r Runbook) -> Vec<&'r ChecklistItem> {
    runbook
        .checklist_items()
        .filter(|(s, _)| s.required)
        .filter(|(_, i)| i.auto.as_deref() != Some("resolve"))
        .filter(|(s, i)| checklist_item_state(state, s, i).is_open())
        .map(|(_, i)| i)
        .collect()
}

/// (done, not applicable, open) over the whole checklist.
pub fn counts(state: &Incident, runbook: &Runbook) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for (s, i) in runbook.checklist_items() {
        match checklist_item_state(state, s, i) {
            ItemState::Done { .. } => c.0 += 1,
            ItemState::NotApplicable { .. } => c.1 += 1,
            ItemState::Open => c.2 += 1,
        }
    }
    c
}
