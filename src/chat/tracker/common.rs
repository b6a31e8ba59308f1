//! What both trackers' adapters share: the ticket state and receipt, URL encoding, labels.

use crate::chat::DeliveryError;
use crate::chat::http::HttpError;
use crate::incident::post::FollowupOrder;

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

pub(crate) use crate::chat::http::path_segment as encode;

/// A query string from pairs, each value percent-encoded.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// At most `max` characters: both trackers refuse longer titles.
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => text[..cut].to_string(),
        None => text.to_string(),
    }
}

/// A transport failure: the call may or may not have been applied, so it is retried (the
/// retry looks before it files again); a request that cannot even be built never will be.
pub(crate) fn transport(tracker: &str, e: HttpError) -> DeliveryError {
    match e {
        HttpError::Build(why) => DeliveryError::permanent(format!("{tracker}: {why}")),
        other => DeliveryError::retryable(format!("{tracker}: {other}")),
    }
}

/// The configured labels plus drbot's own, without blanks or repeats, in order.
pub(crate) fn labels(
    configured: &[String],
    own: String,
    fix: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for label in configured
        .iter()
        .map(|l| fix(l.trim()))
        .chain(std::iter::once(own))
    {
        if !label.is_empty() && !out.contains(&label) {
            out.push(label);
        }
    }
    out
}

/// The owner as typed in chat: written into the body, since chat ids do not map to tracker
/// accounts (`FollowupOrder::owner`).
pub(crate) fn owner_line(order: &FollowupOrder) -> Option<String> {
    order
        .owner
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| format!("Owner: {o}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(encode("acme/dr"), "acme%2Fdr");
        assert_eq!(encode("drbot:INC-3"), "drbot%3AINC-3");
        assert_eq!(encode("a b&c=d#e"), "a%20b%26c%3Dd%23e");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(encode("OPS-1_x.y~"), "OPS-1_x.y~");
    }

    #[test]
    fn clipping_counts_characters_not_bytes() {
        assert_eq!(clip("ééé", 2), "éé");
        assert_eq!(clip("abc", 5), "abc");
    }

    #[test]
    fn receipts_round_trip() {
        let r = receipt("#4", "https://github.com/acme/dr/issues/4");
        assert_eq!(
            parse_receipt(&r),
            ("#4".into(), "https://github.com/acme/dr/issues/4".into())
        );
    }
}
