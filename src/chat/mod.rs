//! Chat adapters. Each turns platform input into a neutral command plus caller, and delivers
//! neutral posts. Only the console exists so far; Slack and Discord plug in the same way.

pub mod console;

use crate::cluster::BoxFuture;
use crate::incident::messages::Post;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// Worth trying again later (timeouts, rate limits, 5xx); otherwise it is logged and
    /// retried on the slowest schedule so an operator can fix the cause.
    pub retryable: bool,
    pub message: String,
}

/// Where the outbox worker sends posts.
pub trait ChatSink: Send + Sync {
    /// Deliver one post; returns a receipt (a message id) to record.
    fn deliver<'a>(
        &'a self,
        channel: &'a str,
        post: &'a Post,
    ) -> BoxFuture<'a, Result<String, DeliveryError>>;
}
