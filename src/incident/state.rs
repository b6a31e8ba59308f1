//! Incident state: a fold over the timeline. `apply` is the only way state changes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::event::{Actor, Event, EventKind, IncidentId, OperationSpec, Outcome, Plan};

#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    Done {
        by: Actor,
        at: DateTime<Utc>,
        note: Option<String>,
    },
    NotApplicable {
        by: Actor,
        at: DateTime<Utc>,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Halt {
    pub by: Actor,
    pub at: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewStatus {
    Pending,
    Confirmed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub id: String,
    pub spec: OperationSpec,
    pub plan: Plan,
    pub backend: String,
    pub requested_by: Actor,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub warnings: Vec<String>,
    pub status: PreviewStatus,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub spec: OperationSpec,
    pub backend: String,
    pub backup: Option<String>,
    pub requested_by: Actor,
    pub confirmed_by: Actor,
    pub confirmed_at: DateTime<Utc>,
    pub launched_at: Option<DateTime<Utc>>,
    pub phase: String,
    pub percent: u8,
    /// What the controller last said of its progress (Velero's items, StackGres' state).
    pub progress: String,
    pub finished: Option<Finished>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
    pub detail: String,
    pub result: Option<serde_json::Value>,
}

impl Operation {
    pub fn is_running(&self) -> bool {
        self.finished.is_none()
    }
    pub fn succeeded(&self) -> bool {
        matches!(&self.finished, Some(f) if f.outcome == Outcome::Succeeded)
    }
}

/// Deployments frozen by drbot: which operation froze them and what to put back.
#[derive(Debug, Clone, PartialEq)]
pub struct Freeze {
    pub operation: String,
    pub since: DateTime<Utc>,
    pub prior: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: IncidentId,
    pub channel: String,
    pub title: String,
    pub severity: String,
    pub incident_type: Option<String>,
    pub drill: bool,
    pub declared_at: DateTime<Utc>,
    pub declared_by: Actor,
    pub classified_at: Option<DateTime<Utc>>,
    pub roles: BTreeMap<String, String>,
    pub marks: BTreeMap<String, Mark>,
    pub halt: Option<Halt>,
    pub previews: Vec<Preview>,
    pub operations: Vec<Operation>,
    pub freeze: Option<Freeze>,
    pub pitr_target: Option<DateTime<Utc>>,
    /// Anchor of the update cadence: the last update (its slot, for automatic ones).
    pub last_update_at: Option<DateTime<Utc>>,
    pub last_reminder_slot: Option<DateTime<Utc>>,
    /// What happened since the last update, for the automatic update.
    pub changes_since_update: Vec<String>,
    pub probes: BTreeMap<String, (bool, String)>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<Actor>,
    pub final_summary_posted: bool,
    /// Affected services, onset, RTO thresholds announced (issue 11 §2–3).
    pub continuity: crate::incident::impact::ContinuityState,
    /// A tabletop exercise played in this (drill) incident.
    pub tabletop: Option<super::exercise::Tabletop>,
    /// Customer updates drafted and published (`crate::features::comms`).
    pub comms: crate::incident::customer::CommsLog,
    /// Pages sent and follow-ups filed.
    pub reach: crate::incident::reach::Reach,
    /// Sequence number of the last event folded in.
    pub seq: i64,
    /// Not a fact of the incident: which of this process's commits the state includes
    /// while that commit may not be stored yet.
    pub pending: Pending,
}

/// The newest commit (by its process-wide token) a state was built on that may not be in the
/// store; `None` for a state folded from stored events. A commit decided on such a state lands
/// only if that commit did (`store::Chain`). Never part of the comparison of two states.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pending(pub Option<u64>);

impl PartialEq for Pending {
    fn eq(&self, _: &Pending) -> bool {
        true
    }
}

/// Changes kept for the next automatic update; older ones are summarised by count.
const MAX_CHANGES: usize = 30;

impl Incident {
    /// Start from the first event (which must be `Declared`).
    pub fn from_declared(event: &Event) -> Option<Incident> {
        let EventKind::Declared {
            channel,
            severity,
            incident_type,
            title,
            drill,
        } = &event.kind
        else {
            return None;
        };
        let mut roles = BTreeMap::new();
        roles.insert("ic".to_string(), event.actor.id.clone());
        Some(Incident {
            id: event.incident,
            channel: channel.clone(),
            title: title.clone(),
            severity: severity.clone(),
            incident_type: incident_type.clone(),
            drill: *drill,
            declared_at: event.at(),
            declared_by: event.actor.clone(),
            classified_at: incident_type.as_ref().map(|_| event.at()),
            roles,
            marks: BTreeMap::new(),
            halt: None,
            previews: Vec::new(),
            operations: Vec::new(),
            freeze: None,
            pitr_target: None,
            last_update_at: None,
            last_reminder_slot: None,
            changes_since_update: Vec::new(),
            probes: BTreeMap::new(),
            resolved_at: None,
            resolved_by: None,
            final_summary_posted: false,
            continuity: Default::default(),
            tabletop: None,
            comms: Default::default(),
            reach: Default::default(),
            seq: event.seq,
            pending: Pending(None),
        })
    }

    /// Rebuild from a whole timeline.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Incident> {
        let mut iter = events.into_iter();
        let mut state = Incident::from_declared(iter.next()?)?;
        for e in iter {
            state.apply(e);
        }
        Some(state)
    }

    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }

    pub fn role(&self, role: &str) -> Option<&str> {
        self.roles.get(role).map(String::as_str)
    }

    pub fn is_ic(&self, actor: &Actor) -> bool {
        self.role("ic") == Some(actor.id.as_str())
    }

    pub fn operation(&self, id: &str) -> Option<&Operation> {
        self.operations.iter().find(|o| o.spec.id == id)
    }

    pub fn preview(&self, id: &str) -> Option<&Preview> {
        self.previews.iter().find(|p| p.id.eq_ignore_ascii_case(id))
    }

    pub fn running_operations(&self) -> impl Iterator<Item = &Operation> {
        self.operations.iter().filter(|o| o.is_running())
    }

    /// The last successful database restore: when it finished (for "backup after recovery").
    pub fn recovered_at(&self) -> Option<DateTime<Utc>> {
        self.operations
            .iter()
            .filter(|o| o.spec.kind.is_restore() && o.succeeded())
            .filter_map(|o| o.finished.as_ref().map(|f| f.at))
            .max()
    }

    fn note_change(&mut self, kind: &EventKind) {
        const MORE: &str = "… and more (see /dr timeline)";
        if self.changes_since_update.len() < MAX_CHANGES {
            self.changes_since_update.push(kind.describe());
        } else if let Some(last) = self.changes_since_update.last_mut()
            && last != MORE
        {
            *last = MORE.to_string();
        }
    }

    fn operation_mut(&mut self, id: &str) -> Option<&mut Operation> {
        self.operations.iter_mut().find(|o| o.spec.id == id)
    }

    pub fn apply(&mut self, event: &Event) {
        self.seq = event.seq;
        super::exercise::apply(&mut self.tabletop, event);
        let at = event.at();
        // Most events do not record who did them: the actor is copied only where one does.
        let by = || event.actor.clone();
        self.continuity.apply(&event.kind, at, self.declared_at);
        match &event.kind {
            EventKind::Declared { .. } => {}
            EventKind::SeverityChanged { to, .. } => self.severity = to.clone(),
            EventKind::Classified { to, .. } => {
                self.incident_type = Some(to.clone());
                self.classified_at.get_or_insert(at);
            }
            EventKind::RoleAssigned { role, user } => {
                self.roles.insert(role.clone(), user.clone());
            }
            EventKind::Checked { item, note } => {
                self.marks.insert(
                    item.clone(),
                    Mark::Done {
                        by: by(),
                        at,
                        note: note.clone(),
                    },
                );
            }
            EventKind::Unchecked { item } => {
                self.marks.remove(item);
            }
            EventKind::MarkedNotApplicable { item, reason } => {
                self.marks.insert(
                    item.clone(),
                    Mark::NotApplicable {
                        by: by(),
                        at,
                        reason: reason.clone(),
                    },
                );
            }
            EventKind::UpdatePosted {
                automatic, slots, ..
            } => {
                let anchor = if *automatic {
                    slots.iter().max().copied().unwrap_or(at)
                } else {
                    at
                };
                self.last_update_at = Some(anchor);
                self.changes_since_update.clear();
                return;
            }
            EventKind::ReminderSent { slot } => {
                self.last_reminder_slot = Some(*slot);
                return;
            }
            EventKind::NoteAdded { .. } => {}
            EventKind::Escalated { reason } => {
                self.halt = Some(Halt {
                    by: by(),
                    at,
                    reason: reason.clone(),
                });
            }
            EventKind::Resumed => self.halt = None,
            EventKind::LaunchPreviewed { .. } => {
                self.apply_operation(event, at);
                // A preview is not a change of the status message (`note_change`).
                return;
            }
            EventKind::LaunchConfirmed { .. }
            | EventKind::LaunchCancelled { .. }
            | EventKind::OperationLaunched { .. }
            | EventKind::OperationProgressed { .. }
            | EventKind::OperationFinished { .. } => self.apply_operation(event, at),
            EventKind::BackupsChecked { .. } => {}
            EventKind::ProbeRecorded {
                item,
                passed,
                evidence,
                ..
            } => {
                self.probes
                    .insert(item.clone(), (*passed, evidence.clone()));
                if *passed {
                    self.marks.insert(
                        item.clone(),
                        Mark::Done {
                            by: by(),
                            at,
                            note: Some(evidence.clone()),
                        },
                    );
                }
            }
            EventKind::Resolved => {
                self.resolved_at = Some(at);
                self.resolved_by = Some(by());
            }
            EventKind::FinalSummaryPosted => self.final_summary_posted = true,
            EventKind::DeliveryGaveUp { .. } => {}
            EventKind::ServicesAffected { .. } | EventKind::RtoThreshold { .. } => {}
            EventKind::TabletopStarted { .. }
            | EventKind::InjectPosted { .. }
            | EventKind::TabletopEnded { .. } => {}
            EventKind::CommsDrafted { .. }
            | EventKind::CommsEdited { .. }
            | EventKind::CommsPublished { .. }
            | EventKind::CommsReminderSent { .. } => self.comms.apply(event),
            EventKind::PageRequested { .. }
            | EventKind::PageDelivered { .. }
            | EventKind::PageNotDelivered { .. }
            | EventKind::PageChanged { .. }
            | EventKind::FollowupRequested { .. }
            | EventKind::FollowupFiled { .. }
            | EventKind::FollowupNotFiled { .. }
            | EventKind::FollowupStateRead { .. }
            | EventKind::FollowupWaived { .. } => {
                self.reach
                    .apply(&event.kind, at, &event.actor, self.id, self.declared_at)
            }
        }
        self.note_change(&event.kind);
    }

    /// Fold a recovery action's event: its preview, launch, progress and outcome.
    fn apply_operation(&mut self, event: &Event, at: DateTime<Utc>) {
        let by = || event.actor.clone();
        match &event.kind {
            EventKind::LaunchPreviewed {
                preview,
                operation,
                plan,
                backend,
                expires_at,
                warnings,
            } => {
                self.previews.push(Preview {
                    id: preview.clone(),
                    spec: operation.clone(),
                    plan: plan.clone(),
                    backend: backend.clone(),
                    requested_by: by(),
                    requested_at: at,
                    expires_at: *expires_at,
                    warnings: warnings.clone(),
                    status: PreviewStatus::Pending,
                });
            }
            EventKind::LaunchConfirmed { preview, .. } => {
                if let Some(p) = self.previews.iter_mut().find(|p| &p.id == preview) {
                    p.status = PreviewStatus::Confirmed;
                    let p = p.clone();
                    if let Some(target) = p.spec.target
                        && matches!(p.spec.kind, super::event::OperationKind::Pitr)
                    {
                        self.pitr_target = Some(target);
                    }
                    self.operations.push(Operation {
                        backup: p.plan.backup.clone(),
                        spec: p.spec,
                        backend: p.backend,
                        requested_by: p.requested_by,
                        confirmed_by: by(),
                        confirmed_at: at,
                        launched_at: None,
                        phase: "Queued".into(),
                        percent: 0,
                        progress: String::new(),
                        finished: None,
                    });
                }
            }
            EventKind::LaunchCancelled { preview } => {
                if let Some(p) = self.previews.iter_mut().find(|p| &p.id == preview) {
                    p.status = PreviewStatus::Cancelled;
                }
            }
            EventKind::OperationLaunched { operation, .. } => {
                if let Some(op) = self.operation_mut(operation) {
                    op.launched_at = Some(at);
                    op.phase = "Launched".into();
                }
            }
            EventKind::OperationProgressed {
                operation,
                phase,
                percent,
                detail,
            } => {
                if let Some(op) = self.operation_mut(operation) {
                    op.phase.clone_from(phase);
                    op.percent = *percent;
                    op.progress.clone_from(detail);
                }
            }
            EventKind::OperationFinished {
                operation,
                outcome,
                phase,
                detail,
                result,
            } => {
                let mut kind = None;
                if let Some(op) = self.operation_mut(operation) {
                    op.phase = phase.clone();
                    if *outcome == Outcome::Succeeded {
                        op.percent = 100;
                    }
                    op.finished = Some(Finished {
                        at,
                        outcome: *outcome,
                        detail: detail.clone(),
                        result: result.clone(),
                    });
                    kind = Some(op.spec.kind);
                }
                use super::event::OperationKind as K;
                match (kind, outcome) {
                    (Some(K::Freeze), Outcome::Succeeded) => {
                        self.freeze = Some(Freeze {
                            operation: operation.clone(),
                            since: at,
                            prior: result.clone(),
                        });
                    }
                    (Some(K::Unfreeze), Outcome::Succeeded) => self.freeze = None,
                    _ => {}
                }
            }
            _ => {}
        }
    }
}
