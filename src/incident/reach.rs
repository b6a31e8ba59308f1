//! Who the incident paged and what it left to follow up: the part of the state folded from
//! the page and follow-up events, the keys that make a retried page or ticket the same one,
//! and their timeline lines.

use chrono::{DateTime, NaiveDate, Utc};

use super::event::{Actor, EventKind, IncidentId, PageAction};
pub use super::event::{describe_reach as describe, target_title};
use super::incident_ref;

/// PagerDuty's `dedup_key` / Opsgenie's `alias` of a target's nth page:
/// `drbot:INC-3:1796000000:page:dr-lead`, then `…#2`. Incident numbers start again on a new
/// database, so the declaration time is part of it; a retry after a crash or on another
/// replica sends the same key and merges into the open alert instead of waking anyone twice.
pub fn page_key(
    incident: IncidentId,
    declared_at: DateTime<Utc>,
    target: &str,
    nth: u32,
) -> String {
    let base = format!(
        "drbot:{}:{}:page:{target}",
        incident_ref(incident),
        declared_at.timestamp()
    );
    match nth {
        0 | 1 => base,
        n => format!("{base}#{n}"),
    }
}

/// The incident, declaration time and target a page's key names (`None` if it is not one
/// of drbot's keys).
pub fn parse_page_key(key: &str) -> Option<(IncidentId, i64, String)> {
    let rest = key.strip_prefix("drbot:INC-")?;
    let (id, rest) = rest.split_once(':')?;
    let (declared, rest) = rest.split_once(':')?;
    let target = rest.strip_prefix("page:")?;
    let target = target.split('#').next()?;
    Some((id.parse().ok()?, declared.parse().ok()?, target.to_string()))
}

/// The marker written into follow-up `number`'s ticket: a create whose answer was lost is
/// found by it instead of filed twice.
pub fn followup_marker(incident: IncidentId, declared_at: DateTime<Utc>, number: u32) -> String {
    format!(
        "drbot:{}:{}:fu:{number}",
        incident_ref(incident),
        declared_at.timestamp()
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageStatus {
    /// In the outbox.
    Sending,
    Delivered,
    /// Given up: someone must be called.
    NotDelivered,
    Acknowledged,
    /// A resolve is in the outbox.
    Resolving,
    Resolved,
}

impl PageStatus {
    pub fn word(self) -> &'static str {
        match self {
            PageStatus::Sending => "sending",
            PageStatus::Delivered => "paged",
            PageStatus::NotDelivered => "NOT paged",
            PageStatus::Acknowledged => "acknowledged",
            PageStatus::Resolving => "resolving",
            PageStatus::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub target: String,
    pub nth: u32,
    pub dedup_key: String,
    pub status: PageStatus,
    pub requested_at: DateTime<Utc>,
    pub requested_by: Actor,
    pub reason: String,
    pub fallback: Option<String>,
    /// Who acknowledged it, or why it was not delivered.
    pub detail: Option<String>,
}

impl Page {
    /// Still able to wake or hold someone: a resolve is owed for it. A page given up may
    /// have gone through after all (its answer lost), so it is resolved too.
    pub fn is_open(&self) -> bool {
        !matches!(self.status, PageStatus::Resolving | PageStatus::Resolved)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Followup {
    pub number: u32,
    pub text: String,
    pub owner: Option<String>,
    pub due: Option<NaiveDate>,
    pub requested_by: Actor,
    pub requested_at: DateTime<Utc>,
    /// The tracker's key (`OPS-12`, `#45`) once filed.
    pub key: Option<String>,
    pub url: Option<String>,
    /// The tracker's word for its state, as last read.
    pub state: Option<String>,
    pub done: bool,
    /// Why it could not be filed.
    pub failed: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Waiver {
    pub by: Actor,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// Pages and follow-ups of one incident.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reach {
    pub pages: Vec<Page>,
    pub followups: Vec<Followup>,
    pub waiver: Option<Waiver>,
}

impl Reach {
    /// The target's newest page.
    pub fn page(&self, target: &str) -> Option<&Page> {
        self.pages.iter().rev().find(|p| p.target == target)
    }

    /// How many pages the target has had.
    pub fn pages_of(&self, target: &str) -> u32 {
        self.pages.iter().filter(|p| p.target == target).count() as u32
    }

    pub fn open_pages(&self) -> impl Iterator<Item = &Page> {
        self.pages.iter().filter(|p| p.is_open())
    }

    /// SOP 9.8.4 is met: a follow-up is filed, or the incident commander waived them.
    pub fn followups_settled(&self) -> Option<(Option<DateTime<Utc>>, String)> {
        if let Some(f) = self.followups.iter().find(|f| f.key.is_some()) {
            return Some((
                Some(f.requested_at),
                format!(
                    "follow-up #{} filed as {}",
                    f.number,
                    f.key.as_deref().unwrap_or("?")
                ),
            ));
        }
        self.waiver.as_ref().map(|w| {
            (
                Some(w.at),
                format!("no follow-up needed ({}): {}", w.by.name, w.reason),
            )
        })
    }

    pub fn apply(
        &mut self,
        kind: &EventKind,
        at: DateTime<Utc>,
        actor: &Actor,
        incident: IncidentId,
        declared_at: DateTime<Utc>,
    ) {
        match kind {
            EventKind::PageRequested {
                target,
                action: PageAction::Trigger,
                nth,
                reason,
                fallback,
            } => self.pages.push(Page {
                target: target.clone(),
                nth: *nth,
                dedup_key: page_key(incident, declared_at, target, *nth),
                status: PageStatus::Sending,
                requested_at: at,
                requested_by: actor.clone(),
                reason: reason.clone(),
                fallback: fallback.clone(),
                detail: None,
            }),
            EventKind::PageRequested {
                target,
                action: PageAction::Resolve,
                nth,
                ..
            } => {
                if let Some(p) = self.page_mut(target, *nth) {
                    p.status = PageStatus::Resolving;
                }
            }
            EventKind::PageDelivered {
                dedup_key, action, ..
            } => {
                if let Some(p) = self.pages.iter_mut().find(|p| p.dedup_key == *dedup_key) {
                    match action {
                        PageAction::Trigger if p.status == PageStatus::Sending => {
                            p.status = PageStatus::Delivered
                        }
                        PageAction::Trigger => {}
                        PageAction::Resolve => p.status = PageStatus::Resolved,
                    }
                }
            }
            EventKind::PageNotDelivered {
                dedup_key,
                action: PageAction::Trigger,
                error,
                ..
            } => {
                if let Some(p) = self.pages.iter_mut().find(|p| p.dedup_key == *dedup_key)
                    && p.status == PageStatus::Sending
                {
                    p.status = PageStatus::NotDelivered;
                    p.detail = Some(error.clone());
                }
            }
            EventKind::PageNotDelivered { .. } => {}
            EventKind::PageChanged {
                dedup_key,
                status,
                by,
                ..
            } => {
                if let Some(p) = self.pages.iter_mut().find(|p| p.dedup_key == *dedup_key) {
                    match status.as_str() {
                        "resolved" => p.status = PageStatus::Resolved,
                        _ if p.is_open() => {
                            p.status = PageStatus::Acknowledged;
                            p.detail = by.clone();
                        }
                        _ => {}
                    }
                }
            }
            EventKind::FollowupRequested {
                number,
                text,
                owner,
                due,
            } => self.followups.push(Followup {
                number: *number,
                text: text.clone(),
                owner: owner.clone(),
                due: *due,
                requested_by: actor.clone(),
                requested_at: at,
                key: None,
                url: None,
                state: None,
                done: false,
                failed: None,
            }),
            EventKind::FollowupFiled { number, key, url } => {
                if let Some(f) = self.followup_mut(*number) {
                    f.key = Some(key.clone());
                    f.url = Some(url.clone()).filter(|u| !u.is_empty());
                    f.failed = None;
                }
            }
            EventKind::FollowupNotFiled { number, error } => {
                if let Some(f) = self.followup_mut(*number)
                    && f.key.is_none()
                {
                    f.failed = Some(error.clone());
                }
            }
            EventKind::FollowupStateRead {
                number,
                state,
                done,
            } => {
                if let Some(f) = self.followup_mut(*number) {
                    f.state = Some(state.clone());
                    f.done = *done;
                }
            }
            EventKind::FollowupWaived { reason } => {
                self.waiver = Some(Waiver {
                    by: actor.clone(),
                    at,
                    reason: reason.clone(),
                })
            }
            _ => {}
        }
    }

    fn page_mut(&mut self, target: &str, nth: u32) -> Option<&mut Page> {
        self.pages
            .iter_mut()
            .find(|p| p.target == target && p.nth == nth)
    }

    fn followup_mut(&mut self, number: u32) -> Option<&mut Followup> {
        self.followups.iter_mut().find(|f| f.number == number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_keys_name_incident_declaration_and_target_and_parse_back() {
        let at = DateTime::from_timestamp(1_796_000_000, 0).unwrap();
        let first = page_key(3, at, "dr-lead", 1);
        assert_eq!(first, "drbot:INC-3:1796000000:page:dr-lead");
        assert_eq!(page_key(3, at, "dr-lead", 2), format!("{first}#2"));
        assert_eq!(
            parse_page_key(&format!("{first}#2")),
            Some((3, 1_796_000_000, "dr-lead".into()))
        );
        assert_eq!(parse_page_key("drbot:INC-x:1:page:ic"), None);
        assert_eq!(parse_page_key("someone-else"), None);
        assert!(first.len() <= 255);
    }
}
