//! The follow-up tracker adapter: files the `tracker` lane's follow-ups as GitHub issues or
//! Jira Cloud issues, and reads their state back.
//!
//! Neither tracker takes an idempotency key (paging reference §3.1, §3.2), so every ticket
//! carries the order's marker and this incident's label. When an earlier send of the row may
//! have landed (`earlier_sends > 0`), the adapter first looks for a ticket with the marker
//! under the label and adopts it instead of filing a second one.

mod common;
pub mod github;
pub mod jira;

use futures_util::future::BoxFuture;

use crate::chat::{ChatSink, DeliveryError, Outgoing};
use crate::config::{TrackerKind, TrackerSettings};

pub(crate) use common::encode;
pub use common::{TicketState, parse_receipt, receipt};

pub struct Tracker {
    settings: TrackerSettings,
    backend: Backend,
}

enum Backend {
    GitHub(github::GitHub),
    Jira(jira::Jira),
}

impl Tracker {
    /// The adapter for `[tracker]`; `None` when no tracker is configured.
    pub fn new(settings: &TrackerSettings) -> Option<Tracker> {
        let backend = match settings.kind()? {
            TrackerKind::GitHub => Backend::GitHub(github::GitHub::new(settings)),
            TrackerKind::Jira => Backend::Jira(jira::Jira::new(settings)),
        };
        Some(Tracker {
            settings: settings.clone(),
            backend,
        })
    }

    /// `GitHub` or `Jira`, for messages.
    pub fn name(&self) -> &'static str {
        self.settings.kind().map_or("tracker", |k| k.name())
    }

    /// The ticket's state now.
    pub async fn state(&self, key: &str) -> Result<TicketState, DeliveryError> {
        match &self.backend {
            Backend::GitHub(gh) => gh.state(key).await,
            Backend::Jira(jira) => jira.state(key).await,
        }
    }

    async fn file(&self, out: Outgoing<'_>) -> Result<String, DeliveryError> {
        let Some(order) = &out.post.followup else {
            return Err(DeliveryError::permanent(
                "not a follow-up order (only `/dr followup` uses the tracker lane)",
            ));
        };
        match &self.backend {
            Backend::GitHub(gh) => gh.file(order, out.earlier_sends).await,
            Backend::Jira(jira) => jira.file(order, &out).await,
        }
    }
}

impl ChatSink for Tracker {
    /// Receipt: [`receipt`] of the ticket filed (or found, when an earlier send's answer was
    /// lost).
    fn deliver<'a>(&'a self, out: Outgoing<'a>) -> BoxFuture<'a, Result<String, DeliveryError>> {
        Box::pin(self.file(out))
    }
}
