//! The status-page adapter: sends publications of the `statuspage` outbox lane to the
//! Atlassian Statuspage REST API v1 (`{base_url}/v1/pages/{page_id}/incidents`, header
//! `Authorization: OAuth <api key>`).
//!
//! The first publication of an incident creates a Statuspage incident (POST); its id is the
//! outbox receipt, and later publications of the incident update it (PATCH). Exactly once:
//! the outbox claims each row for one sender. When no receipt is known yet, the adapter
//! first lists the page's incidents and looks for one carrying this incident's marker in its
//! metadata (`drbot.incident` + `drbot.declared_at`): a create whose answer was lost (a
//! crash, a timeout, a 500 after applying) is adopted instead of made twice.

use std::collections::BTreeMap;

use hyper::Method;
use serde_json::{Value, json};

use crate::chat::http::{HttpClient, HttpError, Response};
use crate::chat::{ChatSink, DeliveryError, Outgoing};
use crate::config::StatuspageSettings;
use crate::incident::post::Publication;
use futures_util::future::BoxFuture;

pub struct Statuspage {
    http: HttpClient,
    base: String,
    page: String,
    key: String,
    components: BTreeMap<String, String>,
}

impl Statuspage {
    /// The adapter for the configured page; `None` when no status page is configured.
    pub fn new(settings: &StatuspageSettings) -> Option<Statuspage> {
        if !settings.enabled() {
            return None;
        }
        Some(Statuspage {
            http: HttpClient::default(),
            base: settings.base_url.trim_end_matches('/').to_string(),
            page: settings.page_id.clone().unwrap_or_default(),
            key: settings.api_key.clone().unwrap_or_default(),
            components: settings.components.clone(),
        })
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v1/pages/{}/incidents{tail}", self.base, self.page)
    }

    /// The `{"incident": …}` body: name and marker only when creating (an update keeps the
    /// incident's name, which names the services).
    pub fn request_body(&self, p: &Publication, create: bool) -> Value {
        let ids: Vec<&String> = p
            .services
            .iter()
            .filter_map(|s| self.components.get(s))
            .collect();
        let components: serde_json::Map<String, Value> = ids
            .iter()
            .map(|id| (id.to_string(), json!(p.component_status)))
            .collect();
        let mut incident = json!({
            "status": p.status,
            "body": p.body,
            "deliver_notifications": true,
            "component_ids": ids,
            "components": components,
        });
        if create {
            incident["name"] = json!(p.title);
            incident["metadata"] = json!({
                "drbot": {
                    "incident": p.incident,
                    "declared_at": p.declared_at.to_rfc3339(),
                }
            });
        }
        json!({ "incident": incident })
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Response, DeliveryError> {
        let auth = format!("OAuth {}", self.key);
        let headers = [("authorization", auth.as_str())];
        let sent = match body {
            Some(body) => self.http.json(method, url, &headers, body).await,
            None => self.http.send(method, url, &headers, None).await,
        };
        let resp = sent.map_err(|e| match e {
            HttpError::Build(why) => DeliveryError::permanent(format!("status page: {why}")),
            other => DeliveryError::retryable(format!("status page: {other}")),
        })?;
        if resp.ok() {
            return Ok(resp);
        }
        let detail = resp
            .json()
            .and_then(|v| v.get("error").or_else(|| v.get("message")).cloned())
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_default();
        let status = resp.status;
        Err(match status {
            401 | 403 => DeliveryError::permanent(format!(
                "status page refused the API key (HTTP {status}): check statuspage.api_key"
            )),
            404 => DeliveryError::permanent(format!(
                "status page: not found (HTTP 404): check statuspage.page_id{}",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!("; {detail}")
                }
            )),
            420 | 429 => DeliveryError {
                retryable: true,
                message: format!("status page rate limit (HTTP {status})"),
                retry_after: resp.retry_after,
            },
            500.. => DeliveryError::retryable(format!("status page: HTTP {status}")),
            _ => DeliveryError::permanent(format!(
                "status page rejected it (HTTP {status}): {detail}"
            )),
        })
    }

    /// The page's incident carrying this incident's marker, with its latest update's body.
    async fn find(&self, p: &Publication) -> Result<Option<(String, String)>, DeliveryError> {
        let resp = self
            .call(Method::GET, &self.url("?limit=100"), None)
            .await?;
        let list = resp.json().unwrap_or(Value::Null);
        let declared = p.declared_at.to_rfc3339();
        let found = list.as_array().into_iter().flatten().find(|i| {
            let marker = &i["metadata"]["drbot"];
            marker["incident"] == json!(p.incident) && marker["declared_at"] == json!(declared)
        });
        Ok(found.and_then(|i| {
            let id = i["id"].as_str()?.to_string();
            let latest = i["incident_updates"][0]["body"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            Some((id, latest))
        }))
    }

    async fn publish(&self, out: Outgoing<'_>) -> Result<String, DeliveryError> {
        let Some(p) = &out.post.publication else {
            return Err(DeliveryError::permanent(
                "not a status page publication (only `/dr comms publish` uses this lane)",
            ));
        };
        let known = match out.status_message {
            Some(id) => Some(id.to_string()),
            None => match self.find(p).await? {
                // The earlier send of this very publication went through: adopt it.
                Some((id, latest)) if latest == p.body => return Ok(id),
                Some((id, _)) => Some(id),
                None => None,
            },
        };
        let resp = match &known {
            Some(id) => {
                let body = self.request_body(p, false);
                self.call(Method::PATCH, &self.url(&format!("/{id}")), Some(&body))
                    .await?
            }
            None => {
                let body = self.request_body(p, true);
                self.call(Method::POST, &self.url(""), Some(&body)).await?
            }
        };
        match resp
            .json()
            .and_then(|v| v["id"].as_str().map(str::to_string))
        {
            Some(id) => Ok(id),
            None => known.ok_or_else(|| {
                DeliveryError::retryable(
                    "status page answered without an incident id; the next try looks it up",
                )
            }),
        }
    }
}

impl ChatSink for Statuspage {
    fn deliver<'a>(&'a self, out: Outgoing<'a>) -> BoxFuture<'a, Result<String, DeliveryError>> {
        Box::pin(self.publish(out))
    }
}
