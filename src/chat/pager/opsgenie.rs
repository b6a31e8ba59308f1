//! Opsgenie's alert API, and Jira Service Management Ops' integration API that took its wire
//! format over (`events_url = https://api.atlassian.com/jsm/ops/integration/v2/alerts`).
//!
//! Sources (as `shared/reference/paging.md` §2 quotes them): opsgenie/opsgenie-python-sdk
//! `opsgenie-oas.json` (`CreateAlertPayload`, close by alias with `identifierType=alias`, the
//! `GenieKey` security scheme, responses 202/400/401/402/403/422/429); docs.opsgenie.com
//! "alert-api" (asynchronous processing) and "alerts-and-alert-fields" (field limits).

use hyper::Method;
use serde_json::{Value, json};

use super::{clip, link_of, transport};
use crate::chat::DeliveryError;
use crate::chat::http::{HttpClient, Response, path_segment};
use crate::incident::post::{PageAction, PageOrder};

/// `CreateAlertPayload.message`: at most 130 characters.
const MAX_MESSAGE: usize = 130;
/// `CreateAlertPayload.alias`: at most 512 characters.
const MAX_ALIAS: usize = 512;
/// `CreateAlertPayload.description`: at most 15000 characters.
const MAX_DESCRIPTION: usize = 15_000;

/// PagerDuty's payload severities onto Opsgenie priorities (P1 highest … P5 lowest); an
/// unknown one gets Opsgenie's default, P3.
fn priority(severity: &str) -> &'static str {
    match severity {
        "critical" => "P1",
        "error" => "P2",
        "warning" => "P3",
        "info" => "P5",
        _ => "P3",
    }
}

/// The create-alert body.
pub(super) fn alert_body(target: &str, order: &PageOrder) -> Value {
    let description = match link_of(order) {
        Some(link) => format!("{}\n\n{link}", order.summary),
        None => order.summary.clone(),
    };
    json!({
        "message": clip(&order.summary, MAX_MESSAGE),
        "alias": order.dedup_key,
        "description": clip(&description, MAX_DESCRIPTION),
        "priority": priority(&order.severity),
        "source": "drbot",
        "tags": ["drbot", order.incident],
        "details": { "incident": order.incident, "target": target },
    })
}

/// Create (trigger) or close (resolve) the alert whose alias is the page's dedup key.
///
/// A 202 is "Request will be processed": Opsgenie applies it asynchronously and the outcome
/// is at `GET /v2/alerts/requests/{requestId}`. drbot takes the 202 as delivered and does not
/// poll the request id (unverified whether it should: a create refused after the 202 would
/// go unnoticed; the paging reference suggests one poll).
pub(super) async fn send(
    http: &HttpClient,
    url: &str,
    key: &str,
    target: &str,
    order: &PageOrder,
) -> Result<String, DeliveryError> {
    if order.dedup_key.chars().count() > MAX_ALIAS {
        return Err(DeliveryError::permanent(format!(
            "Opsgenie: the page key is longer than an alias may be ({MAX_ALIAS} characters)"
        )));
    }
    // `opsgenie-oas.json` security scheme `GenieKey`: header `Authorization: GenieKey <key>`.
    let auth = format!("GenieKey {key}");
    let headers = [("authorization", auth.as_str())];
    let base = url.trim_end_matches('/');
    let (url, body) = match order.action {
        PageAction::Trigger => (base.to_string(), alert_body(target, order)),
        PageAction::Resolve => (
            format!(
                "{base}/{}/close?identifierType=alias",
                path_segment(&order.dedup_key)
            ),
            json!({ "source": "drbot" }),
        ),
    };
    let resp = http
        .json(Method::POST, &url, &headers, &body)
        .await
        .map_err(|e| transport("Opsgenie", e))?;
    if resp.ok() {
        return Ok(order.dedup_key.clone());
    }
    Err(refusal(&resp))
}

fn refusal(resp: &Response) -> DeliveryError {
    let status = resp.status;
    let detail = resp
        .json()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    match status {
        401 | 403 => DeliveryError::permanent(format!(
            "Opsgenie refused the integration key (HTTP {status}){detail}: check the target's key in [paging.routes]"
        )),
        // The docs say over-limit requests are "rejected with 429 or delayed".
        429 => DeliveryError {
            retryable: true,
            message: format!("Opsgenie rate limit (HTTP 429){detail}"),
            retry_after: resp.retry_after,
        },
        500.. => DeliveryError::retryable(format!("Opsgenie: HTTP {status}{detail}")),
        _ => DeliveryError::permanent(format!("Opsgenie refused the page (HTTP {status}){detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alias_is_one_encoded_path_segment() {
        assert_eq!(
            path_segment("drbot:INC-3:1796000000:page:dr-lead#2"),
            "drbot%3AINC-3%3A1796000000%3Apage%3Adr-lead%232"
        );
    }

    #[test]
    fn severities_map_to_priorities() {
        assert_eq!(
            ["critical", "error", "warning", "info", "odd"].map(priority),
            ["P1", "P2", "P3", "P5", "P3"]
        );
    }

    #[test]
    fn the_message_is_clipped_and_the_link_goes_in_the_description() {
        let order = PageOrder {
            incident: "INC-3".into(),
            target: "dr-lead".into(),
            action: PageAction::Trigger,
            dedup_key: "k".into(),
            summary: "s".repeat(200),
            severity: "critical".into(),
            link: Some("https://drbot.example/i/3".into()),
        };
        let body = alert_body("dr-lead", &order);
        assert_eq!(
            body["message"].as_str().map(|m| m.chars().count()),
            Some(130)
        );
        assert!(
            body["description"]
                .as_str()
                .is_some_and(|d| d.ends_with("https://drbot.example/i/3"))
        );
        assert_eq!(body["tags"], json!(["drbot", "INC-3"]));
    }
}
