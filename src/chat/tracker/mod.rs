//! The follow-up tracker adapter: files the `tracker` lane's follow-ups as GitHub issues or
//! Jira Cloud issues, and reads their state back.

use futures_util::future::BoxFuture;

use crate::chat::{ChatSink, DeliveryError, Outgoing};
use crate::config::TrackerSettings;

pub struct Tracker {
    settings: TrackerSettings,
}

/// A ticket's state as the tracker shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketState {
    /// The tracker's own word: `open`, `closed`, `To Do`, `In Progress`, `Done`…
    pub state: String,
    /// Closed (GitHub) or in the done category (Jira).
    pub done: bool,
}

/// The outbox receipt of a filed ticket: its key and its URL.
pub fn receipt(key: &str, url: &str) -> String {
    format!("{key}\t{url}")
}

/// The key and URL a receipt carries.
pub fn parse_receipt(receipt: &str) -> (String, String) {
    match receipt.split_once('\t') {
        Some((key, url)) => (key.to_string(), url.to_string()),
        None => (receipt.to_string(), String::new()),
    }
}

impl Tracker {
    /// The adapter for `[tracker]`; `None` when no tracker is configured.
    pub fn new(settings: &TrackerSettings) -> Option<Tracker> {
        settings.enabled().then(|| Tracker {
            settings: settings.clone(),
        })
    }

    /// `GitHub` or `Jira`, for messages.
    pub fn name(&self) -> &'static str {
        self.settings.kind().map_or("tracker", |k| k.name())
    }

    /// The ticket's state now.
    pub async fn state(&self, key: &str) -> Result<TicketState, DeliveryError> {
        let _ = key;
        Err(DeliveryError::permanent("not built yet"))
    }
}

impl ChatSink for Tracker {
    /// Receipt: [`receipt`] of the ticket filed (or found, when an earlier send's answer was
    /// lost).
    fn deliver<'a>(&'a self, out: Outgoing<'a>) -> BoxFuture<'a, Result<String, DeliveryError>> {
        let _ = out;
        Box::pin(async { Err(DeliveryError::permanent("not built yet")) })
    }
}
