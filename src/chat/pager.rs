//! The paging adapter: sends the `pager:<target>` lanes' pages to PagerDuty's Events API v2
//! or Opsgenie's alert API, reads who is on call (PagerDuty REST `GET /oncalls`), and checks
//! PagerDuty V3 webhook signatures.

use futures_util::future::BoxFuture;

use crate::chat::{ChatSink, DeliveryError, Outgoing};
use crate::config::PagingSettings;

pub struct Pager {
    settings: PagingSettings,
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
        })
    }

    /// Who a page to `target` would wake now. `Err` says why it cannot be told (no REST key,
    /// no escalation policy for the target, the API refused), in words for the channel.
    pub async fn oncall(&self, target: &str) -> Result<Vec<OnCall>, String> {
        let _ = (&self.settings, target);
        Err("not built yet".into())
    }
}

impl ChatSink for Pager {
    /// Receipt: the dedup key the provider accepted.
    fn deliver<'a>(&'a self, out: Outgoing<'a>) -> BoxFuture<'a, Result<String, DeliveryError>> {
        let _ = out;
        Box::pin(async { Err(DeliveryError::permanent("not built yet")) })
    }
}

/// Whether `X-PagerDuty-Signature` (`v1=<hex>` per secret, comma-separated) carries a valid
/// HMAC-SHA256 of `body` under any of `secrets`, compared in constant time.
pub fn webhook_signature_valid(secrets: &[String], header: Option<&str>, body: &[u8]) -> bool {
    let _ = (secrets, header, body);
    false
}
