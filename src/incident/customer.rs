//! Customer updates as the timeline records them: drafts, edits and publications, folded
//! into the incident's state (`features::comms` composes and decides them).

use chrono::{DateTime, Utc};

pub use super::event::CustomerStatus;
use super::event::{Event, EventKind};
use crate::command::Stage;

/// A draft of customer text, as the timeline records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub id: String,
    pub stage: Stage,
    pub title: String,
    pub status: CustomerStatus,
    pub statuspage_status: String,
    pub component_status: String,
    pub body: String,
    pub services: Vec<String>,
    pub next_update_at: Option<DateTime<Utc>>,
    pub edited_by: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
}

impl Draft {
    /// The draft as the comms lead reads it.
    pub fn text(&self) -> String {
        format!(
            "Title: {}\nStatus: {}\n{}",
            self.title,
            self.status.label(),
            self.body
        )
    }
}

/// Drafts and publications of an incident: a fold of its comms events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommsLog {
    pub drafts: Vec<Draft>,
    /// Draft ids in the order they were published.
    pub published: Vec<String>,
    /// Publications whose promised update the comms lead was reminded of.
    pub reminded: Vec<String>,
}

impl CommsLog {
    pub fn draft(&self, id: &str) -> Option<&Draft> {
        self.drafts.iter().find(|d| d.id.eq_ignore_ascii_case(id))
    }

    /// The last publication.
    pub fn last_published(&self) -> Option<&Draft> {
        self.published.last().and_then(|id| self.draft(id))
    }

    /// The update promised by the last publication, when it is due and not yet reminded of.
    pub fn due(&self, now: DateTime<Utc>) -> Option<(&Draft, DateTime<Utc>)> {
        let last = self.last_published()?;
        let due = last.next_update_at?;
        (due <= now && !self.reminded.contains(&last.id)).then_some((last, due))
    }

    /// Fold one event in (others are ignored).
    pub fn apply(&mut self, event: &Event) {
        match &event.kind {
            EventKind::CommsDrafted {
                draft,
                stage,
                status,
                statuspage_status,
                component_status,
                title,
                body,
                services,
                next_update_at,
            } => self.drafts.push(Draft {
                id: draft.clone(),
                stage: *stage,
                title: title.clone(),
                status: *status,
                statuspage_status: statuspage_status.clone(),
                component_status: component_status.clone(),
                body: body.clone(),
                services: services.clone(),
                next_update_at: *next_update_at,
                edited_by: None,
                published_at: None,
            }),
            EventKind::CommsEdited { draft, body, .. } => {
                if let Some(d) = self.drafts.iter_mut().find(|d| &d.id == draft) {
                    d.body = body.clone();
                    d.edited_by = Some(event.actor.name.clone());
                }
            }
            EventKind::CommsPublished { draft, .. } => {
                if let Some(d) = self.drafts.iter_mut().find(|d| &d.id == draft) {
                    d.published_at = Some(event.at());
                    self.published.push(d.id.clone());
                }
            }
            EventKind::CommsReminderSent { draft, .. } => self.reminded.push(draft.clone()),
            _ => {}
        }
    }
}
