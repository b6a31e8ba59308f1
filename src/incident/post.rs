//! Platform-neutral messages: what the incident channel (and the status page's lane)
//! receives. Adapters turn them into Block Kit, embeds or console text. Mentions use
//! `<@id>`, the form both Slack and Discord understand; the console prints them as `@id`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostKind {
    Announcement,
    Preview,
    Progress,
    Update,
    Reminder,
    Summary,
    /// The incident's status message: posted and pinned once, then edited in place.
    Status,
    /// drbot telling the channel about itself (a post it could not deliver).
    Notice,
    /// Customer text for the status page (the `statuspage` lane, see `crate::features::comms`).
    Publication,
}

impl PostKind {
    /// The word for it in logs, metrics and the timeline.
    pub fn label(self) -> &'static str {
        match self {
            PostKind::Announcement => "announcement",
            PostKind::Preview => "preview",
            PostKind::Progress => "progress",
            PostKind::Update => "update",
            PostKind::Reminder => "reminder",
            PostKind::Summary => "summary",
            PostKind::Status => "status",
            PostKind::Notice => "notice",
            PostKind::Publication => "publication",
        }
    }
}

/// A message for the incident channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    pub kind: PostKind,
    pub text: String,
    /// Caused by the sandbox backend: shown with a SANDBOX label.
    #[serde(default)]
    pub sandbox: bool,
    /// Belongs in the thread under the status message where the platform has threads.
    #[serde(default)]
    pub in_thread: bool,
    /// The preview this message asks to confirm (platforms render Confirm/Cancel buttons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// What the status page receives, on the `statuspage` lane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication: Option<Publication>,
}

impl Post {
    pub fn new(kind: PostKind, text: String) -> Post {
        Post {
            kind,
            text,
            sandbox: false,
            in_thread: false,
            preview: None,
            publication: None,
        }
    }

    /// Plain text with the SANDBOX label where it applies.
    pub fn plain(&self) -> String {
        if self.sandbox {
            format!("[SANDBOX] {}", self.text)
        } else {
            self.text.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// `INC-3`
    pub incident: String,
    /// When the incident was declared: with `incident`, the marker a retried create looks
    /// for on the status page (incident numbers start again on a new database).
    pub declared_at: DateTime<Utc>,
    pub draft: String,
    pub title: String,
    pub status: String,
    pub body: String,
    pub services: Vec<String>,
    pub component_status: String,
}
