//! The scheduler pass (`tick`, each second on every replica): launch queued operations and
//! watch running ones under a renewed claim, then keep each open incident's cadence, RTO
//! thresholds, tabletop injects and comms promises, and remind of drills due.

use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

use super::commit::Alongside;
use super::{App, AppError, MAX_ATTEMPTS};
use crate::cluster::ClusterError;
use crate::decide::posts;
use crate::features::cadence::{self, Due};
use crate::incident::Draft;
use crate::incident::{Actor, EventKind, Incident, IncidentId, OperationSpec, Outcome};
use crate::store::{StoreError, Target};

/// What one scheduler pass did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub launched: usize,
    pub progressed: usize,
    pub finished: usize,
    pub updates: usize,
    pub reminders: usize,
    pub summaries: usize,
    /// RTO threshold posts (50 % and 100 % of an affected service's RTO).
    pub rto_posts: usize,
    /// Reminders of a status page update promised to customers (`comms-due:<draft>`).
    pub comms_reminders: usize,
}

/// Progress is posted when the phase changes or the percentage moves by this much.
const PROGRESS_STEP: u8 = 25;
/// Renewed on every scheduler pass (each second): a dead replica's watch is taken over
/// within this plus one pass.
const OPERATION_LEASE: Duration = Duration::seconds(10);

impl App {
    /// One scheduler pass: launch queued operations, watch running ones, keep the cadence.
    pub async fn tick(&self) -> Result<TickReport, AppError> {
        let mut report = TickReport::default();
        // Two rounds: what was just launched is observed at once (a freeze is done instantly).
        for _ in 0..2 {
            let launched_before = report.launched;
            let now = self.clock.now();
            let claimed = self
                .store
                .claim_operations(&self.replica, now, now + OPERATION_LEASE)
                .await?;
            for row in claimed {
                self.deliveries.count("operations", "claimed");
                if row.taken_over {
                    self.deliveries.count("operations", "takeover");
                    info!(incident = row.incident, operation = %row.operation, "took over an operation whose replica stopped renewing its claim");
                }
                let spec: OperationSpec = serde_json::from_str(&row.spec)
                    .map_err(|e| AppError::BadOperation(row.operation.clone(), e))?;
                if let Err(e) = self
                    .advance_operation(row.incident, &spec, &mut report)
                    .await
                {
                    warn!(incident = row.incident, operation = %row.operation, error = %e, "operation step failed; will retry");
                }
            }
            if report.launched == launched_before {
                break;
            }
        }
        // Side by side, so the incidents' updates share group commits. Each incident is looked
        // at once (a remembered fold as new as the store's costs no read), and the keepers
        // pass that view along, brought up to date by what each commits.
        let active = self.store.active_incidents().await?;
        let kept = futures_util::future::join_all(active.into_iter().map(|active| async move {
            let mut kept = TickReport::default();
            let Some(mut state) = self.active_state(active).await? else {
                return Ok(kept);
            };
            self.keep_cadence(&mut state, &mut kept).await?;
            self.keep_rto(&mut state, &mut kept).await?;
            self.keep_tabletop(&mut state).await?;
            self.keep_comms_promise(&mut state, &mut kept)
                .await
                .map(|()| kept)
        }))
        .await;
        for one in kept {
            let one = one?;
            report.updates += one.updates;
            report.reminders += one.reminders;
            report.summaries += one.summaries;
            report.rto_posts += one.rto_posts;
            report.comms_reminders += one.comms_reminders;
        }
        self.remind_drills().await?;
        if let Err(e) = self.refresh_followups(self.followup_refresh).await {
            warn!(error = %e, "reading follow-ups back failed; the next pass tries again");
        }
        Ok(report)
    }

    /// How far behind its update cadence the most overdue open incident is (zero if none).
    pub async fn cadence_lag(&self) -> Result<Duration, AppError> {
        let now = self.clock.now();
        let mut lag = Duration::zero();
        for active in self.store.active_incidents().await? {
            if let Some(state) = self.active_state(active).await?
                && let Some(due) = cadence::next_due(&state, &self.runbook.cadence)
            {
                lag = lag.max(now - due);
            }
        }
        Ok(lag)
    }

    async fn advance_operation(
        &self,
        incident: IncidentId,
        spec: &OperationSpec,
        report: &mut TickReport,
    ) -> Result<(), AppError> {
        let Some(state) = self.state(incident).await? else {
            return Ok(());
        };
        let Some(op) = state.operation(&spec.id) else {
            return Ok(());
        };
        if op.finished.is_some() {
            return Ok(());
        }
        let target = Target::Existing {
            id: incident,
            expected_seq: state.seq,
        };
        let mut drafts: Vec<EventKind> = Vec::new();
        if op.launched_at.is_none() {
            match self.cluster.launch(spec).await {
                Ok(launched) => {
                    if launched.already_existed {
                        info!(incident, operation = %spec.id, object = %launched.object, "object already existed; adopting it");
                    }
                    drafts.push(EventKind::OperationLaunched {
                        operation: spec.id.clone(),
                        object: launched.object,
                    });
                    report.launched += 1;
                }
                Err(ClusterError::Invalid(why)) => {
                    drafts.push(EventKind::OperationFinished {
                        operation: spec.id.clone(),
                        outcome: Outcome::Failed,
                        phase: "NotLaunched".into(),
                        detail: why,
                        result: None,
                    });
                    report.finished += 1;
                }
                Err(e @ ClusterError::Unavailable(_)) => {
                    warn!(incident, operation = %spec.id, error = %e, "launch failed; retrying next pass");
                    return Ok(());
                }
            }
        } else {
            let seen = match self.cluster.observe(spec).await {
                Ok(seen) => seen,
                Err(e) => {
                    warn!(incident, operation = %spec.id, error = %e, "could not observe operation");
                    return Ok(());
                }
            };
            if let Some(outcome) = seen.done {
                drafts.push(EventKind::OperationFinished {
                    operation: spec.id.clone(),
                    outcome,
                    phase: seen.phase,
                    detail: seen.detail,
                    result: seen.result,
                });
                report.finished += 1;
            } else if seen.phase != op.phase
                || seen.percent >= op.percent.saturating_add(PROGRESS_STEP)
            {
                drafts.push(EventKind::OperationProgressed {
                    operation: spec.id.clone(),
                    phase: seen.phase,
                    percent: seen.percent,
                    detail: seen.detail,
                });
                report.progressed += 1;
            }
        }
        if drafts.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let drafts = drafts.into_iter().map(|k| (Draft::from(k), None)).collect();
        match self
            .commit(
                target,
                Some(state),
                &Actor::drbot(),
                drafts,
                now,
                Alongside::default(),
            )
            .await
        {
            Ok(_) | Err(AppError::Store(StoreError::Conflict)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn keep_cadence(
        &self,
        state: &mut Incident,
        report: &mut TickReport,
    ) -> Result<(), AppError> {
        // A pass may owe a reminder and then, once posted, nothing more; look until quiet.
        let landed = self
            .commit_owed(state, 3, |state, now| {
                let due = cadence::due_work(state, &self.runbook.cadence, now)?;
                let (kind, key) = match &due {
                    Due::Update { slots } => {
                        let text = posts::automatic_update(state, &self.render(now), slots);
                        let last = slots.iter().max().copied().unwrap_or(now);
                        (
                            EventKind::UpdatePosted {
                                text,
                                automatic: true,
                                slots: slots.clone(),
                            },
                            format!("update:{}", last.to_rfc3339()),
                        )
                    }
                    Due::Reminder { slot } => (
                        EventKind::ReminderSent { slot: *slot },
                        format!("reminder:{}", slot.to_rfc3339()),
                    ),
                    Due::FinalSummary => {
                        (EventKind::FinalSummaryPosted, "final-summary".to_string())
                    }
                };
                Some((vec![(Draft::from(kind), Some(key))], due))
            })
            .await?;
        for due in landed {
            match due {
                Due::Update { .. } => report.updates += 1,
                Due::Reminder { .. } => report.reminders += 1,
                Due::FinalSummary => report.summaries += 1,
            }
        }
        Ok(())
    }

    /// RTO threshold posts owed at this moment (50 % and 100 % of each affected service's
    /// RTO), computed from the persisted state; each carries `rto:<service>:<percent>`, so a
    /// second replica's commit is refused whole and a restart neither skips nor repeats one.
    async fn keep_rto(
        &self,
        state: &mut Incident,
        report: &mut TickReport,
    ) -> Result<(), AppError> {
        let Some(catalog) = self.continuity.catalog.as_ref() else {
            return Ok(());
        };
        let landed = self
            .commit_owed(state, 3, |state, now| {
                let due = crate::features::continuity::impact::due_thresholds(state, catalog, now);
                let count = due.len();
                let drafts: Vec<_> = due
                    .into_iter()
                    .map(|(service, percent, _)| {
                        let rto_seconds =
                            catalog.service(&service).map_or(0, |s| s.rto.num_seconds());
                        let key = format!("rto:{service}:{percent}");
                        (
                            Draft::from(EventKind::RtoThreshold {
                                service,
                                percent,
                                rto_seconds,
                            }),
                            Some(key),
                        )
                    })
                    .collect();
                (count > 0).then_some((drafts, count))
            })
            .await?;
        report.rto_posts += landed.iter().sum::<usize>();
        Ok(())
    }

    /// Remind the comms lead once when the update promised to customers in the last
    /// publication falls due (dedupe key `comms-due:<draft>`, like the cadence slots).
    async fn keep_comms_promise(
        &self,
        state: &mut Incident,
        report: &mut TickReport,
    ) -> Result<(), AppError> {
        let landed = self
            .commit_owed(state, MAX_ATTEMPTS, |state, now| {
                let (draft, due) = state.comms.due(now)?;
                let kind = EventKind::CommsReminderSent {
                    draft: draft.id.clone(),
                    due,
                };
                let key = format!("comms-due:{}", draft.id);
                Some((vec![(Draft::from(kind), Some(key))], ()))
            })
            .await?;
        report.comms_reminders += landed.len();
        Ok(())
    }

    /// Commit what the scheduler owes the incident, as `owed` reads it from `state`, until
    /// nothing is owed or `attempts` are spent; `state` follows each commit that lands. Each
    /// commit carries its dedupe keys, so one another replica made first is refused whole, and
    /// the state is read again. Returns the tags of the commits that landed.
    pub(super) async fn commit_owed<T>(
        &self,
        state: &mut Incident,
        attempts: usize,
        mut owed: impl FnMut(&Incident, DateTime<Utc>) -> Option<(Vec<(Draft, Option<String>)>, T)>,
    ) -> Result<Vec<T>, AppError> {
        let id = state.id;
        let mut landed = Vec::new();
        for _ in 0..attempts {
            let now = self.clock.now();
            let Some((drafts, tag)) = owed(state, now) else {
                break;
            };
            let target = Target::Existing {
                id,
                expected_seq: state.seq,
            };
            match self
                .commit(
                    target,
                    Some(state.clone()),
                    &Actor::drbot(),
                    drafts,
                    now,
                    Alongside::default(),
                )
                .await
            {
                Ok((after, _)) => {
                    *state = after;
                    landed.push(tag);
                }
                // Another worker posted it, or the incident moved on: look again.
                Err(AppError::Store(StoreError::Duplicate(_) | StoreError::Conflict)) => {
                    match self.state(id).await? {
                        Some(fresh) => *state = fresh,
                        None => break,
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(landed)
    }
}
