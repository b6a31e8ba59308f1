//! Scripted failures shared by the paging and tracker stand-ins (PagerDuty, GitHub, Jira):
//! either the call is refused before anything is applied, or it is applied and the answer
//! then goes wrong (a 500, a dropped connection, no answer at all). The second kind is what
//! makes "did it go through?" testable: the provider has the page or the ticket, the caller
//! does not know.

#![allow(dead_code)]

use axum::response::Response;

use super::http::text_response;

/// What to do to the next call of an endpoint instead of answering normally. A scripted
/// failure is used up by that next call even when the call is refused for its content (then
/// the refusal is answered and nothing is applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Refused with `status` (429, or GitHub's 403 secondary limit), nothing applied; with
    /// `Retry-After: {secs}` when given.
    RateLimited {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    /// This 5xx (500, 502, 503), nothing applied.
    ServerError(u16),
    /// Apply the call, then answer 500.
    ReplyAfterApplying,
    /// Apply the call, then close the connection without a byte of answer: the caller sees
    /// a transport error although the provider has the event.
    DropAfterApplying,
    /// Apply the call, then hold the answer until the stand-in is dropped: the caller's
    /// timeout fires (or the test kills the caller with the answer in flight).
    HoldAfterApplying,
}

impl Failure {
    /// True for the failures that apply the call first.
    pub fn applies(&self) -> bool {
        matches!(
            self,
            Failure::ReplyAfterApplying | Failure::DropAfterApplying | Failure::HoldAfterApplying
        )
    }
}

/// The status a failed-after-applying call is recorded with: 500, or 0 when no answer was
/// sent.
pub(crate) fn recorded_status(failure: &Failure) -> u16 {
    match failure {
        Failure::ReplyAfterApplying => 500,
        Failure::RateLimited { status, .. } => *status,
        Failure::ServerError(status) => *status,
        Failure::DropAfterApplying | Failure::HoldAfterApplying => 0,
    }
}

/// Turn the normal answer of an applied call into what `after` scripts. Never returns for
/// `DropAfterApplying` (the connection task unwinds, which closes the socket) nor for
/// `HoldAfterApplying` (until the server is dropped).
pub(crate) async fn after_applying(after: Option<Failure>, normal: Response) -> Response {
    match after {
        None => normal,
        Some(Failure::ReplyAfterApplying) => text_response(500, "Internal Server Error"),
        Some(Failure::DropAfterApplying) => drop_connection(),
        Some(Failure::HoldAfterApplying) => std::future::pending().await,
        Some(other) => panic!("{other:?} is refused before applying, not after"),
    }
}

/// Close the connection with no answer. The stand-in's server runs each connection in its
/// own task and catches a panic there by dropping the socket; `resume_unwind` unwinds
/// without running the panic hook, so nothing is printed.
pub(crate) fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("stand-in: connection dropped on purpose"))
}

/// A stand-in's answer: status, extra headers, JSON body.
pub type Answer = (u16, Vec<(&'static str, String)>, serde_json::Value);

/// What each stand-in records of a call, as far as the scripted failures need it.
pub trait Settled {
    fn problem(&self) -> Option<&str>;
    fn settle(&mut self, answered: u16, problem: Option<String>);
}

/// One call under its scripted `failure`: refused before anything is applied, or answered
/// by `answer` (which applies it) and then spoiled as scripted. Every call is `record`ed
/// with the status the caller saw (0: none) and, for a refusal, why.
pub async fn scripted<C: Settled>(
    failure: Option<Failure>,
    mut call: C,
    record: impl FnOnce(C),
    refuse: impl FnOnce(Failure) -> Response,
    answer: impl FnOnce(&mut C) -> Answer,
) -> Response {
    if let Some(failure) = failure.clone().filter(|f| !f.applies()) {
        call.settle(
            recorded_status(&failure),
            Some(format!("scripted {failure:?}")),
        );
        record(call);
        return refuse(failure);
    }
    let (status, extra, reply) = answer(&mut call);
    let problem = match call.problem() {
        None if status >= 400 => Some(reply.to_string()),
        p => p.map(str::to_string),
    };
    // A scripted failure after applying only counts when the call was applied.
    let after = failure.filter(|_| status < 400);
    call.settle(after.as_ref().map_or(status, recorded_status), problem);
    record(call);
    after_applying(after, super::http::json_response(status, &extra, &reply)).await
}

/// `Retry-After` as a header pair, when there is one.
pub(crate) fn retry_after(secs: Option<u64>) -> Vec<(&'static str, String)> {
    secs.map(|s| vec![("retry-after", s.to_string())])
        .unwrap_or_default()
}

/// Standard base64 with padding (RFC 4648 §4), for HTTP Basic credentials.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Query-string pairs, percent-decoded (`a%5B%5D=x` becomes `("a[]", "x")`).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default()
}

/// First value of a query parameter.
pub(crate) fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every value of a repeated query parameter.
pub(crate) fn query_values(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// Header value as text.
pub(crate) fn header<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
