//! Pages and follow-ups coming back: PagerDuty's acknowledgements and resolves (from its
//! webhooks) onto the timeline, and the follow-up tickets' states read back from the tracker
//! on a slow schedule; and `/dr oncall`, who a page would wake.

use chrono::{DateTime, Duration, Utc};
use tracing::warn;

use super::{App, AppError};
use crate::incident::EventKind;
use crate::incident::reach::{PageStatus, parse_page_key};

/// Tickets read back in one pass: far under GitHub's and Jira's limits however many
/// incidents there are; the rest wait for the next pass.
const REFRESH_BATCH: usize = 50;
/// Resolved incidents' follow-ups are read back for this long after the resolve.
const REFRESH_AFTER_RESOLVE: Duration = Duration::days(30);
/// One read may take this long before the pass stops for now.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What became of a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageChange {
    /// On the timeline and told in the channel.
    Recorded,
    /// Nothing new (already known, or told before under the same webhook event id).
    AlreadyKnown,
    /// Not one of this database's pages.
    Unknown,
}

impl App {
    /// PagerDuty says the alert under `dedup_key` was `acknowledged` (by `by`) or `resolved`.
    /// `event_id` is the webhook event's id: a redelivery commits nothing twice.
    pub async fn page_changed(
        &self,
        dedup_key: &str,
        status: &str,
        by: Option<String>,
        event_id: &str,
    ) -> Result<PageChange, AppError> {
        let Some((incident, declared, target)) = parse_page_key(dedup_key) else {
            return Ok(PageChange::Unknown);
        };
        let Some(state) = self.state(incident).await? else {
            return Ok(PageChange::Unknown);
        };
        // Incident numbers start again on a new database: the declaration time tells.
        if state.declared_at.timestamp() != declared {
            return Ok(PageChange::Unknown);
        }
        let Some(page) = state.reach.pages.iter().find(|p| p.dedup_key == dedup_key) else {
            return Ok(PageChange::Unknown);
        };
        let known = match status {
            "resolved" => page.status == PageStatus::Resolved,
            _ => !page.is_open() || page.status == PageStatus::Acknowledged,
        };
        if known {
            return Ok(PageChange::AlreadyKnown);
        }
        let kind = EventKind::PageChanged {
            target,
            dedup_key: dedup_key.to_string(),
            status: status.to_string(),
            by,
        };
        let key = format!("pagerduty:{event_id}");
        Ok(
            match self.commit_drbot_event(incident, kind, key, None).await? {
                true => PageChange::Recorded,
                false => PageChange::AlreadyKnown,
            },
        )
    }

    /// Read back the state of follow-up tickets not known done, when `refresh` has passed
    /// since the last pass of this process; a change goes on the timeline.
    pub async fn refresh_followups(&self, refresh: Duration) -> Result<usize, AppError> {
        let Some(tracker) = &self.tracker else {
            return Ok(0);
        };
        let now = self.clock.now();
        {
            let mut last = self
                .followups_read
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at: DateTime<Utc>| now - at < refresh) {
                return Ok(0);
            }
            *last = Some(now);
        }
        let mut wanted = Vec::new();
        for state in self.stored_states().await? {
            if state
                .resolved_at
                .is_some_and(|at| now - at > REFRESH_AFTER_RESOLVE)
            {
                continue;
            }
            for f in &state.reach.followups {
                if let (Some(key), false) = (&f.key, f.done) {
                    wanted.push((state.id, state.seq, f.number, key.clone(), f.state.clone()));
                }
            }
        }
        let mut changed = 0;
        for (incident, seq, number, key, known) in wanted.into_iter().take(REFRESH_BATCH) {
            let read = match tokio::time::timeout(READ_TIMEOUT, tracker.state(&key)).await {
                Ok(Ok(read)) => read,
                Ok(Err(e)) if !e.retryable => {
                    warn!(incident, followup = number, error = %e, "reading a follow-up's state was refused");
                    continue;
                }
                // The tracker is down or limiting: the rest waits for the next pass, and
                // the scheduler is not held up.
                Ok(Err(e)) => {
                    warn!(incident, followup = number, error = %e, "the tracker did not answer; follow-ups are read again next pass");
                    break;
                }
                Err(_) => {
                    warn!(
                        incident,
                        followup = number,
                        "the tracker did not answer in time; follow-ups are read again next pass"
                    );
                    break;
                }
            };
            if known.as_deref() == Some(read.state.as_str()) {
                continue;
            }
            let kind = EventKind::FollowupStateRead {
                number,
                state: read.state.clone(),
                done: read.done,
            };
            // Replicas reading the same change from the same stored state record it once.
            let key = format!("followup-state:{number}:{seq}:{}", read.state);
            if self.commit_drbot_event(incident, kind, key, None).await? {
                changed += 1;
            }
        }
        Ok(changed)
    }
}

impl App {
    /// `/dr oncall [target]`: who a page would wake, read from PagerDuty now. Answers in
    /// words whatever happens; a provider that is down is said so, nothing waits on it
    /// beyond the HTTP client's timeout.
    pub(super) async fn oncall_view(&self, target: Option<&str>) -> String {
        let Some(pager) = &self.pager else {
            return "Paging is not configured: set [paging] provider and routes (see the README's Paging section).".into();
        };
        let known = &self.policy.paging.targets;
        let targets: Vec<&str> = match target {
            Some(t) if known.iter().any(|k| k == t) => vec![t],
            Some(t) => {
                return format!(
                    "Unknown target `{t}`. Targets with a route: {}.",
                    known.join(", ")
                );
            }
            None => known.iter().map(String::as_str).collect(),
        };
        // Side by side: a slow provider costs one timeout, not one per target.
        let answers = futures_util::future::join_all(targets.iter().map(|t| pager.oncall(t))).await;
        let mut out = String::from("On call now:\n");
        for (t, answer) in targets.into_iter().zip(answers) {
            let title = crate::incident::reach::target_title(t);
            match answer {
                Ok(people) if people.is_empty() => {
                    out.push_str(&format!("{t} ({title}): nobody is on call\n"))
                }
                Ok(people) => {
                    let names: Vec<String> = people
                        .iter()
                        .map(|p| {
                            let mut s = format!("L{} {}", p.level, p.name);
                            if let Some(email) = &p.email {
                                s.push_str(&format!(" <{email}>"));
                            }
                            if let Some(schedule) = &p.schedule {
                                s.push_str(&format!(" ({schedule})"));
                            }
                            s
                        })
                        .collect();
                    out.push_str(&format!("{t} ({title}): {}\n", names.join("; ")));
                }
                Err(why) => out.push_str(&format!("{t} ({title}): cannot tell — {why}\n")),
            }
        }
        out.trim_end().to_string()
    }
}
