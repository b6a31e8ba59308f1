//! `POST /pagerduty/webhook`: PagerDuty V3 webhooks bring acknowledgements and resolves of
//! drbot's pages back to the incident. The body is believed only with a valid
//! `X-PagerDuty-Signature` (`docs/webhooks/04-Signatures.md`); a delivery older than
//! `[paging] webhook_max_age_minutes` is refused as a replay, and a redelivery of the same
//! event id records nothing twice. Event types other than `incident.acknowledged` and
//! `incident.resolved` are answered 200 and ignored, as PagerDuty expects of a subscriber.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tracing::{info, warn};

use super::Server;
use crate::app::PageChange;
use crate::chat::pager::webhook_signature_valid;

fn answer(status: StatusCode, text: &str) -> Response {
    (status, format!("{text}\n")).into_response()
}

pub(super) async fn webhook(
    State(s): State<Arc<Server>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if s.pagerduty_secrets.is_empty() {
        return answer(
            StatusCode::NOT_FOUND,
            "PagerDuty webhooks are not configured here (paging.webhook_secrets)",
        );
    }
    let signature = headers
        .get("x-pagerduty-signature")
        .and_then(|v| v.to_str().ok());
    if !webhook_signature_valid(&s.pagerduty_secrets, signature, &body) {
        warn!("PagerDuty webhook refused: signature missing or not valid");
        return answer(StatusCode::UNAUTHORIZED, "signature missing or not valid");
    }
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let event = &doc["event"];
    let (Some(event_id), Some(event_type)) = (event["id"].as_str(), event["event_type"].as_str())
    else {
        return answer(
            StatusCode::BAD_REQUEST,
            "not a V3 webhook event (event.id, event.event_type)",
        );
    };
    let status = match event_type {
        "incident.acknowledged" => "acknowledged",
        "incident.resolved" => "resolved",
        _ => return answer(StatusCode::OK, "ignored"),
    };
    let now = s.app.clock.now();
    let occurred = event["occurred_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    match occurred {
        Some(at) if now - at <= s.pagerduty_max_age && at - now <= chrono::Duration::minutes(5) => {
        }
        Some(_) => {
            warn!(
                event_id,
                "PagerDuty webhook refused: outside the replay window"
            );
            return answer(
                StatusCode::BAD_REQUEST,
                "event.occurred_at is outside the replay window",
            );
        }
        None => {
            return answer(
                StatusCode::BAD_REQUEST,
                "event.occurred_at is missing or not a time",
            );
        }
    }
    let Some(key) = event["data"]["incident_key"].as_str() else {
        return answer(StatusCode::OK, "no incident_key; ignored");
    };
    let by = event["agent"]["summary"].as_str().map(str::to_string);
    match s.app.page_changed(key, status, by, event_id).await {
        Ok(PageChange::Recorded) => {
            info!(event_id, status, "PagerDuty webhook recorded");
            s.kick();
            answer(StatusCode::OK, "recorded")
        }
        Ok(PageChange::AlreadyKnown) => answer(StatusCode::OK, "already known"),
        Ok(PageChange::Unknown) => answer(StatusCode::OK, "not a page of this drbot; ignored"),
        Err(e) => {
            warn!(event_id, error = %e, "PagerDuty webhook could not be recorded");
            // PagerDuty retries a delivery that was not answered 2xx.
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "could not record it; retry",
            )
        }
    }
}
