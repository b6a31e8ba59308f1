//! The paging adapter: sends the `pager:<target>` lanes' pages to PagerDuty's Events API v2
//! or Opsgenie's alert API, reads who is on call (PagerDuty REST `GET /oncalls`), and checks
//! PagerDuty V3 webhook signatures.
//!
//! No look-up before a send: both providers de-duplicate on the page's key (PagerDuty
//! `dedup_key`, Opsgenie `alias`), so a repeat merges into the open alert instead of paging
//! again (`docs/events-API-v2/02-Trigger-Events.md` §Alert De-Duplication; Opsgenie: "only one
//! alert with open status with the same alias", as `shared/reference/paging.md` §2 quotes it).
//! Routing keys never reach a log line or an error text.

mod opsgenie;
mod pagerduty;
mod signature;

use futures_util::future::BoxFuture;

use crate::chat::http::{HttpClient, HttpError};
use crate::chat::{ChatSink, DeliveryError, Outgoing, Platform};
use crate::config::{PagingProvider, PagingSettings, target_name};
use crate::incident::clip_chars as clip;
use crate::incident::post::PageOrder;

pub(crate) use pagerduty::rest_headers;
pub use signature::webhook_signature_valid;

pub struct Pager {
    settings: PagingSettings,
    http: HttpClient,
}

/// One person on call for a target, as `/dr oncall` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCall {
    pub level: u32,
    pub name: String,
    pub email: Option<String>,
    pub schedule: Option<String>,
}

impl Pager {
    /// The adapter for `[paging]`; `None` when paging is off.
    pub fn new(settings: &PagingSettings) -> Option<Pager> {
        settings.enabled().then(|| Pager {
            settings: settings.clone(),
            http: HttpClient::default(),
        })
    }

    /// Who a page to `target` would wake now. `Err` says why it cannot be told (no REST key,
    /// no escalation policy for the target, the API refused), in words for the channel.
    pub async fn oncall(&self, target: &str) -> Result<Vec<OnCall>, String> {
        if self.settings.provider() != Some(PagingProvider::PagerDuty) {
            return Err(
                "/dr oncall reads PagerDuty's on-call (REST GET /oncalls); it is not available with paging.provider = \"opsgenie\"".into(),
            );
        }
        let key = self
            .settings
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or("set paging.api_key (a read-only REST key)")?;
        let wanted = target_name(target);
        let policy = self
            .settings
            .oncall
            .iter()
            .find(|(name, _)| target_name(name) == wanted)
            .map(|(_, id)| id.trim())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                format!("add paging.oncall.{wanted} = \"P…\" (the escalation policy id)")
            })?;
        pagerduty::oncall(&self.http, &self.settings.api_url, key, policy).await
    }

    async fn send(&self, out: Outgoing<'_>) -> Result<String, DeliveryError> {
        let Some(order) = &out.post.page else {
            return Err(DeliveryError::permanent(
                "not a page (only pages and their resolves use the pager lanes)",
            ));
        };
        let target = if order.target.trim().is_empty() {
            match Platform::of(out.channel) {
                (Platform::Pager, lane) => target_name(lane),
                _ => String::new(),
            }
        } else {
            target_name(&order.target)
        };
        let Some(key) = self.settings.routing_key(&target) else {
            return Err(DeliveryError::permanent(format!(
                "no route for {target} in [paging.routes]"
            )));
        };
        let url = self.settings.events_url();
        let sent = match self.settings.provider() {
            Some(PagingProvider::PagerDuty) => {
                pagerduty::send(&self.http, &url, key, &target, order).await
            }
            Some(PagingProvider::Opsgenie) => {
                opsgenie::send(&self.http, &url, key, &target, order).await
            }
            None => Err(DeliveryError::permanent("paging is off (paging.provider)")),
        };
        // The key is in the body (PagerDuty) or a header (Opsgenie), never meant to come back,
        // but a provider's error text is not ours to trust: masked before it is logged.
        let sent = sent.map_err(|mut e| {
            e.message = redact(&e.message, key);
            e
        });
        match &sent {
            Ok(_) => tracing::info!(
                page_target = %target,
                dedup_key = %order.dedup_key,
                action = ?order.action,
                "page accepted"
            ),
            Err(e) => tracing::warn!(
                page_target = %target,
                dedup_key = %order.dedup_key,
                action = ?order.action,
                retryable = e.retryable,
                error = %e.message,
                "page not accepted"
            ),
        }
        sent
    }
}

impl ChatSink for Pager {
    /// Receipt: the dedup key the provider accepted.
    fn deliver<'a>(&'a self, out: Outgoing<'a>) -> BoxFuture<'a, Result<String, DeliveryError>> {
        Box::pin(self.send(out))
    }
}

/// `text` with every occurrence of `secret` masked.
fn redact(text: &str, secret: &str) -> String {
    if secret.trim().is_empty() {
        text.to_string()
    } else {
        text.replace(secret, "[redacted]")
    }
}

/// A failed call before any answer: a request we could not build is ours to fix; a timeout
/// or a lost connection may or may not have been applied, and repeating is safe.
fn transport(provider: &str, e: HttpError) -> DeliveryError {
    match e {
        HttpError::Build(why) => DeliveryError::permanent(format!("{provider}: {why}")),
        other => DeliveryError::retryable(format!("{provider}: {other}")),
    }
}

/// The incident link for the page's body, when the web view has a public URL.
fn link_of(order: &PageOrder) -> Option<&str> {
    order
        .link
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_characters_and_marks_the_cut() {
        assert_eq!(clip("short", 10), "short");
        let long = "é".repeat(20);
        let cut = clip(&long, 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with("…"));
    }

    #[test]
    fn redact_masks_the_secret() {
        assert_eq!(redact("bad key abc123", "abc123"), "bad key [redacted]");
        assert_eq!(redact("nothing", ""), "nothing");
    }
}
