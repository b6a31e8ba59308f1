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
    /// A page to send or resolve (a `pager:<target>` lane).
    Page,
    /// A follow-up ticket to file (the `tracker` lane).
    Followup,
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
            PostKind::Page => "page",
            PostKind::Followup => "follow-up",
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
    /// What the paging provider receives, on a `pager:<target>` lane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<PageOrder>,
    /// What the tracker receives, on the `tracker` lane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followup: Option<FollowupOrder>,
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
            page: None,
            followup: None,
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

/// Outbox lane of a target's pages: `pager:dr-lead`. One lane per target keeps a target's
/// trigger before its resolve, and a target whose provider is failing holds back no other.
pub const PAGER_LANE: &str = "pager:";
/// Outbox lane of follow-up tickets.
pub const TRACKER_LANE: &str = "tracker";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageAction {
    Trigger,
    Resolve,
}

/// One page (or its resolve) for the paging provider. Carries no routing key: the adapter
/// looks the target's up in the settings when sending, so no secret is ever stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageOrder {
    /// `INC-3`
    pub incident: String,
    /// `dr-lead`, `ic`, `dba-oncall`…
    pub target: String,
    pub action: PageAction,
    /// `drbot:INC-3:<declared unix>:page:dr-lead` (`#2` and on for a deliberate re-page):
    /// PagerDuty's `dedup_key`, Opsgenie's `alias`. A retry merges into the open alert.
    pub dedup_key: String,
    /// One line: `[SEV1] INC-3 orders table wiped — DR lead paged by @dana: <message>`.
    pub summary: String,
    /// PagerDuty's payload severity: `critical`, `error`, `warning` or `info`.
    pub severity: String,
    /// The incident's page when the web view has a public URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// One follow-up ticket for the tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowupOrder {
    /// `INC-3`
    pub incident: String,
    pub declared_at: DateTime<Utc>,
    /// The follow-up's number within the incident (1, 2, …).
    pub number: u32,
    /// `drbot:INC-3:<declared unix>:fu:<n>`: written into the ticket so a create whose answer
    /// was lost is found instead of filed twice.
    pub marker: String,
    /// The ticket's title (the first line of the text, clipped).
    pub title: String,
    pub text: String,
    /// As typed in chat (`<@U123>` or `@dana`): written into the body, not mapped to a
    /// tracker account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<chrono::NaiveDate>,
    /// The incident's page, or its id when there is no web view.
    pub link: String,
}

impl FollowupOrder {
    /// The label only this incident's follow-ups carry (GitHub: `drbot:INC-3`; Jira, where
    /// labels take no colon or space: `drbot-INC-3-<declared unix>`).
    pub fn label(&self, colon: bool) -> String {
        if colon {
            format!("drbot:{}", self.incident)
        } else {
            format!("drbot-{}-{}", self.incident, self.declared_at.timestamp())
        }
    }
}
