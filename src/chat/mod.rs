//! Chat adapters. Each turns platform input into a neutral command plus caller, and delivers
//! neutral posts. Channels are keyed `slack:<id>`, `discord:<id>`, or anything else for the
//! console, so one store and one outbox serve every platform.

pub mod discord;
pub mod http;
pub mod manifest;
pub mod pager;
pub mod slack;
pub mod statuspage;
pub mod tracker;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::incident::IncidentId;
use crate::incident::post::Post;
use futures_util::future::BoxFuture;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// Worth trying again later (timeouts, rate limits, 5xx); otherwise it is logged and
    /// retried on the slowest schedule so an operator can fix the cause.
    pub retryable: bool,
    pub message: String,
    /// The platform said when to come back (HTTP 429 `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl DeliveryError {
    pub fn retryable(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            retryable: true,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            retryable: false,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// One outbox row on its way out.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Unique per post: platforms that take an idempotency key (Discord's nonce, Slack's
    /// message metadata) get this, so a retry can be recognised.
    pub outbox_id: i64,
    pub incident: Option<IncidentId>,
    pub channel: &'a str,
    pub post: &'a Post,
    /// The incident's pinned status message once posted: a status post edits it, a thread
    /// post replies under it.
    pub status_message: Option<&'a str>,
    /// Earlier sends of this post whose result may not be known (a failure, a crash, a lost
    /// lease): when non-zero the adapter first checks whether the post went through.
    pub earlier_sends: i64,
    /// A status post while the incident's status message is unknown, after an earlier status
    /// post of the incident was sent: look for that message before creating another.
    pub status_in_doubt: bool,
    pub created_at: DateTime<Utc>,
    /// The engine's clock now (the manual clock in tests): adapters that wait out a
    /// provider's lag measure it against this, never against the wall clock.
    pub now: DateTime<Utc>,
}

/// Where the outbox worker sends posts.
pub trait ChatSink: Send + Sync {
    /// Deliver one post; returns a receipt (the platform's message id) to record. For a
    /// status post the receipt is the status message's id.
    fn deliver<'a>(&'a self, out: Outgoing<'a>) -> BoxFuture<'a, Result<String, DeliveryError>>;
}

/// Which platform a channel key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Slack,
    Discord,
    Console,
    /// The customer status page's lane (`crate::features::comms::STATUSPAGE_CHANNEL`).
    Statuspage,
    /// The paging provider's lanes (`pager:<target>`).
    Pager,
    /// The follow-up tracker's lane (`tracker`).
    Tracker,
}

impl Platform {
    pub fn of(channel: &str) -> (Platform, &str) {
        if let Some(id) = channel.strip_prefix("slack:") {
            (Platform::Slack, id)
        } else if let Some(id) = channel.strip_prefix("discord:") {
            (Platform::Discord, id)
        } else if channel == crate::features::comms::STATUSPAGE_CHANNEL {
            (Platform::Statuspage, channel)
        } else if let Some(target) = channel.strip_prefix(crate::incident::post::PAGER_LANE) {
            (Platform::Pager, target)
        } else if channel == crate::incident::post::TRACKER_LANE {
            (Platform::Tracker, channel)
        } else {
            (Platform::Console, channel)
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Discord => "discord",
            Platform::Console => "console",
            Platform::Statuspage => "statuspage",
            Platform::Pager => "pager",
            Platform::Tracker => "tracker",
        }
    }
}

/// Sends each post through the adapter of its channel's platform.
#[derive(Default, Clone)]
pub struct Router {
    pub slack: Option<std::sync::Arc<dyn ChatSink>>,
    pub discord: Option<std::sync::Arc<dyn ChatSink>>,
    pub console: Option<std::sync::Arc<dyn ChatSink>>,
    pub statuspage: Option<std::sync::Arc<dyn ChatSink>>,
    pub pager: Option<std::sync::Arc<dyn ChatSink>>,
    pub tracker: Option<std::sync::Arc<dyn ChatSink>>,
}

impl ChatSink for Router {
    fn deliver<'a>(&'a self, out: Outgoing<'a>) -> BoxFuture<'a, Result<String, DeliveryError>> {
        let (platform, _) = Platform::of(out.channel);
        let sink = match platform {
            Platform::Slack => &self.slack,
            Platform::Discord => &self.discord,
            Platform::Console => &self.console,
            Platform::Statuspage => &self.statuspage,
            Platform::Pager => &self.pager,
            Platform::Tracker => &self.tracker,
        };
        match sink {
            Some(sink) => sink.deliver(out),
            None => Box::pin(async move {
                Err(DeliveryError::permanent(format!(
                    "{} is not configured in this process",
                    platform.name()
                )))
            }),
        }
    }
}
