//! PagerDuty: the Events API v2 (pages) and the REST API's `GET /oncalls` (`/dr oncall`).
//!
//! Sources (as `shared/reference/paging.md` quotes them): PagerDuty/developer-docs
//! `docs/events-API-v2/02-Trigger-Events.md` (body fields, limits, de-duplication),
//! `05-Rate-Limits.md` (429), `docs/REST-API/02-Authentication.md` (the `Token token=` header),
//! `03-Versioning.md` (the `Accept` header), `09-Pagination.md` (`limit` ≤ 100, `more`);
//! PagerDuty/api-schema `reference/events-v2/openapiv3.json` and `reference/REST/openapiv3.json`.

use std::collections::HashSet;
use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};

use super::{OnCall, clip, link_of, redact, transport};
use crate::chat::DeliveryError;
use crate::chat::http::{HttpClient, Response};
use crate::incident::post::{PageAction, PageOrder};

/// `02-Trigger-Events.md`: `payload.summary` is at most 1024 characters.
const MAX_SUMMARY: usize = 1024;
/// `05-Rate-Limits.md`: "We suggest retrying 3 times with each request being 30 seconds
/// apart"; used when a 429 carries no `Retry-After` (whether PagerDuty sends one is
/// unverified).
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
/// REST `header_Accept` (required per the REST schema) and `03-Versioning.md`.
pub(crate) const REST_ACCEPT: &str = "application/vnd.pagerduty+json;version=2";
/// `09-Pagination.md`: `limit` "cannot exceed 100".
const PAGE_LIMIT: usize = 100;
/// One escalation policy has a handful of on-calls; this bounds a runaway `more`.
const MAX_PAGES: usize = 5;

/// `Authorization` and `Accept` for a REST call. `02-Authentication.md`: the header "must be
/// followed precisely or you will receive a 401".
pub(crate) fn rest_headers(key: &str) -> [(&'static str, String); 2] {
    [
        ("authorization", format!("Token token={key}")),
        ("accept", REST_ACCEPT.to_string()),
    ]
}

/// The `/v2/enqueue` body. A resolve carries only what `02-Trigger-Events.md` lists for it
/// (`routing_key`, `dedup_key`, `event_action`); `client_url` is trigger-only.
pub(super) fn event_body(routing_key: &str, target: &str, order: &PageOrder) -> Value {
    match order.action {
        PageAction::Resolve => json!({
            "routing_key": routing_key,
            "dedup_key": order.dedup_key,
            "event_action": "resolve",
        }),
        PageAction::Trigger => {
            let mut body = json!({
                "routing_key": routing_key,
                "event_action": "trigger",
                "dedup_key": order.dedup_key,
                "client": "drbot",
                "payload": {
                    "summary": clip(&order.summary, MAX_SUMMARY),
                    "source": "drbot",
                    "severity": order.severity,
                    "custom_details": { "incident": order.incident, "target": target },
                },
            });
            if let Some(link) = link_of(order) {
                body["client_url"] = json!(link);
                body["links"] =
                    json!([{ "href": link, "text": format!("{} in drbot", order.incident) }]);
            }
            body
        }
    }
}

/// Send one page or resolve. 202 means enqueued (the API is asynchronous, `01-Overview.md`):
/// the receipt is the dedup key PagerDuty echoes, else ours.
pub(super) async fn send(
    http: &HttpClient,
    url: &str,
    routing_key: &str,
    target: &str,
    order: &PageOrder,
) -> Result<String, DeliveryError> {
    let body = event_body(routing_key, target, order);
    let resp = http
        .json(Method::POST, url, &[], &body)
        .await
        .map_err(|e| transport("PagerDuty", e))?;
    if resp.ok() {
        let echoed = resp
            .json()
            .and_then(|v| v["dedup_key"].as_str().map(str::to_string));
        return Ok(echoed.unwrap_or_else(|| order.dedup_key.clone()));
    }
    Err(refusal(&resp))
}

/// The Events API's retry table (`shared/reference/paging.md` §1.1, from PagerDuty's "send an
/// event" page): 400 no, 429 yes, 5xx yes.
fn refusal(resp: &Response) -> DeliveryError {
    let status = resp.status;
    match status {
        400 => {
            let errors: Vec<String> = resp
                .json()
                .and_then(|v| v["errors"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                .collect();
            let why = if errors.is_empty() {
                resp.json()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "HTTP 400".into())
            } else {
                errors.join("; ")
            };
            DeliveryError::permanent(format!("PagerDuty refused the page: {why}"))
        }
        // `05-Rate-Limits.md`: "PagerDuty will not ingest the event".
        429 => DeliveryError {
            retryable: true,
            message: "PagerDuty rate limit (HTTP 429): the event was not taken".into(),
            retry_after: Some(resp.retry_after.unwrap_or(RATE_LIMIT_WAIT)),
        },
        500.. => DeliveryError::retryable(format!("PagerDuty: HTTP {status}")),
        _ => DeliveryError::permanent(format!(
            "PagerDuty refused the page (HTTP {status}): check paging.events_url"
        )),
    }
}

/// `GET /oncalls` for one escalation policy, users included, lowest level first and each
/// person once (a user on two schedules of the policy is listed at their lowest level).
pub(super) async fn oncall(
    http: &HttpClient,
    api_url: &str,
    key: &str,
    policy: &str,
) -> Result<Vec<OnCall>, String> {
    let headers = rest_headers(key);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let base = api_url.trim_end_matches('/');
    let mut rows: Vec<(u32, String, OnCall)> = Vec::new();
    let mut offset = 0;
    for _ in 0..MAX_PAGES {
        let query = serde_urlencoded::to_string([
            ("escalation_policy_ids[]", policy.to_string()),
            ("include[]", "users".into()),
            ("limit", PAGE_LIMIT.to_string()),
            ("offset", offset.to_string()),
        ])
        .map_err(|e| format!("could not build the on-call query: {e}"))?;
        let url = format!("{base}/oncalls?{query}");
        let resp = http
            .send(Method::GET, &url, &headers, None)
            .await
            .map_err(|e| redact(&format!("could not ask PagerDuty who is on call: {e}"), key))?;
        if !resp.ok() {
            return Err(redact(&rest_refusal(&resp), key));
        }
        let page = resp
            .json()
            .ok_or("PagerDuty answered the on-call lookup with something that is not JSON")?;
        for row in page["oncalls"].as_array().into_iter().flatten() {
            rows.extend(oncall_row(row));
        }
        if page["more"].as_bool() != Some(true) {
            break;
        }
        offset += PAGE_LIMIT;
    }
    rows.sort_by_key(|(level, _, _)| *level);
    let mut seen = HashSet::new();
    Ok(rows
        .into_iter()
        .filter(|(_, user, _)| seen.insert(user.clone()))
        .map(|(_, _, row)| row)
        .collect())
}

/// One `oncalls[]` entry: (level, the user's identity for de-duplication, the row).
fn oncall_row(row: &Value) -> Option<(u32, String, OnCall)> {
    let user = &row["user"];
    let name = user["summary"]
        .as_str()
        .or_else(|| user["name"].as_str())
        .map(str::to_string)?;
    let id = user["id"]
        .as_str()
        .map_or_else(|| name.clone(), str::to_string);
    let level = row["escalation_level"]
        .as_u64()
        .and_then(|l| u32::try_from(l).ok())
        .unwrap_or(u32::MAX);
    Some((
        level,
        id,
        OnCall {
            level,
            name,
            email: user["email"].as_str().map(str::to_string),
            schedule: row["schedule"]["summary"].as_str().map(str::to_string),
        },
    ))
}

/// `docs/REST-API/14-Errors.md`: `{"error":{"message","code","errors"}}`.
fn rest_refusal(resp: &Response) -> String {
    let status = resp.status;
    match status {
        401 => "PagerDuty refused the REST key (401): check paging.api_key".into(),
        429 => "PagerDuty rate limited the on-call lookup (429): try again in a minute".into(),
        _ => {
            let message = resp
                .json()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string));
            match message {
                Some(m) => format!("PagerDuty answered the on-call lookup with HTTP {status}: {m}"),
                None => format!("PagerDuty answered the on-call lookup with HTTP {status}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(action: PageAction, link: Option<&str>) -> PageOrder {
        PageOrder {
            incident: "INC-3".into(),
            target: "dr-lead".into(),
            action,
            dedup_key: "drbot:INC-3:1796000000:page:dr-lead".into(),
            summary: "x".repeat(2000),
            severity: "critical".into(),
            link: link.map(str::to_string),
        }
    }

    #[test]
    fn a_trigger_carries_the_payload_and_the_link() {
        let body = event_body(
            "k",
            "dr-lead",
            &order(PageAction::Trigger, Some("https://d/i/3")),
        );
        assert_eq!(
            body["payload"]["summary"]
                .as_str()
                .map(|s| s.chars().count()),
            Some(1024)
        );
        assert_eq!(body["client_url"], "https://d/i/3");
        assert_eq!(body["links"][0]["href"], "https://d/i/3");
        assert_eq!(body["payload"]["custom_details"]["target"], "dr-lead");
        let bare = event_body("k", "dr-lead", &order(PageAction::Trigger, None));
        assert!(bare.get("client_url").is_none() && bare.get("links").is_none());
    }

    #[test]
    fn a_resolve_carries_only_the_key_fields() {
        let body = event_body(
            "k",
            "dr-lead",
            &order(PageAction::Resolve, Some("https://d")),
        );
        let mut keys: Vec<&String> = body
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        keys.sort();
        assert_eq!(keys, ["dedup_key", "event_action", "routing_key"]);
    }
}
