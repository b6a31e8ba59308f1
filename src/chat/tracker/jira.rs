//! Jira Cloud REST v3 (paging reference §3.1; jira-swaggers `platform-swagger.v3.json`):
//! `POST /rest/api/3/issue` to file, `GET /rest/api/3/search/jql` to look for a create whose
//! answer was lost, `GET /rest/api/3/issue/{key}?fields=status` to read the state back.
//!
//! Search is index-backed and lags behind creates (paging reference §3.1), so a miss right
//! after a lost create proves nothing: the adapter files again only once
//! `tracker.search_lag_seconds` have passed since the row was committed.

use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};

use super::common::{TicketState, clip, encode, labels, owner_line, query, receipt, transport};
use crate::chat::http::{HttpClient, Response};
use crate::chat::{DeliveryError, Outgoing};
use crate::config::TrackerSettings;
use crate::incident::post::FollowupOrder;

/// The summary field takes at most 255 characters (Jira's create screen; unverified in the
/// spec, which does not state a length).
const MAX_SUMMARY: usize = 255;
/// Search results per page (`maxResults`).
const PAGE_SIZE: usize = 100;
/// Pages read before giving up the look (1 000 follow-ups of one incident).
const MAX_PAGES: usize = 10;

/// `Basic base64(email:api_token)` (Atlassian "Basic auth for REST APIs", paging reference
/// §3.1). Never log it.
pub fn authorization(email: &str, api_token: &str) -> String {
    format!(
        "Basic {}",
        base64(format!("{email}:{api_token}").as_bytes())
    )
}

/// Standard base64 with padding (RFC 4648 §4): no crate in the build offers it.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
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

/// The marker paragraph's text; matched as a whole paragraph, so `…:fu:1` is not found
/// inside `…:fu:10`.
pub fn marker(order: &FollowupOrder) -> String {
    format!("drbot-followup {}", order.marker)
}

fn paragraph(content: Vec<Value>) -> Value {
    json!({ "type": "paragraph", "content": content })
}

fn text(t: &str) -> Value {
    json!({ "type": "text", "text": t })
}

/// The description as an ADF document: v3 `description` takes ADF, not a string
/// (`platform-swagger.v3.json`, `POST /rest/api/3/issue`). One paragraph per line of the
/// text, since an ADF text node holds no line break of its own.
pub fn description(order: &FollowupOrder) -> Value {
    let mut content: Vec<Value> = order
        .text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(|l| paragraph(vec![text(l)]))
        .collect();
    content.extend(owner_line(order).map(|o| paragraph(vec![text(&o)])));
    let link = order.link.trim();
    // A link mark needs a URL; an incident without a web view has only its id.
    let link_node = if link.starts_with("https://") || link.starts_with("http://") {
        json!({ "type": "text", "text": link,
                "marks": [{ "type": "link", "attrs": { "href": link } }] })
    } else {
        text(link)
    };
    content.push(paragraph(vec![text("Incident: "), link_node]));
    content.push(paragraph(vec![text(&marker(order))]));
    json!({ "type": "doc", "version": 1, "content": content })
}

/// Jira labels take no spaces: dashes instead.
fn label(l: &str) -> String {
    l.split_whitespace().collect::<Vec<_>>().join("-")
}

/// True when one of the document's paragraphs is exactly the marker.
fn has_marker(doc: &Value, wanted: &str) -> bool {
    fn paragraph_text(node: &Value) -> String {
        node["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["text"].as_str())
            .collect()
    }
    fn walk(node: &Value, wanted: &str) -> bool {
        if node["type"] == "paragraph" && paragraph_text(node).trim() == wanted {
            return true;
        }
        node["content"]
            .as_array()
            .is_some_and(|c| c.iter().any(|n| walk(n, wanted)))
    }
    walk(doc, wanted)
}

pub struct Jira {
    http: HttpClient,
    site: String,
    project: String,
    issue_type: String,
    authorization: String,
    labels: Vec<String>,
    search_lag: Duration,
}

impl Jira {
    pub fn new(settings: &TrackerSettings) -> Jira {
        Jira {
            http: HttpClient::default(),
            site: site(settings),
            project: settings
                .project
                .clone()
                .unwrap_or_default()
                .trim()
                .to_string(),
            issue_type: settings.issue_type.clone(),
            authorization: authorization(
                settings.email.as_deref().unwrap_or_default(),
                settings.api_token.as_deref().unwrap_or_default(),
            ),
            labels: settings.labels.clone(),
            search_lag: Duration::from_secs(settings.search_lag_seconds.max(0) as u64),
        }
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Response, DeliveryError> {
        let headers = [
            ("authorization", self.authorization.as_str()),
            ("accept", "application/json"),
        ];
        let sent = match body {
            Some(body) => self.http.json(method, url, &headers, body).await,
            None => self.http.send(method, url, &headers, None).await,
        };
        let resp = sent.map_err(|e| transport("Jira", e))?;
        if resp.ok() {
            Ok(resp)
        } else {
            Err(refusal(&resp, &self.project))
        }
    }

    fn browse(&self, key: &str) -> String {
        format!("{}/browse/{}", self.site, encode(key))
    }

    /// The create body.
    pub fn request(&self, order: &FollowupOrder) -> Value {
        let mut fields = json!({
            "project": { "key": self.project },
            "issuetype": { "name": self.issue_type },
            "summary": clip(&order.title, MAX_SUMMARY),
            "labels": labels(&self.labels, order.label(false), label),
            "description": description(order),
        });
        if let Some(due) = order.due {
            fields["duedate"] = json!(due.format("%Y-%m-%d").to_string());
        }
        json!({ "fields": fields })
    }

    /// File the order, adopt the issue an earlier send filed, or wait for the search index.
    pub async fn file(
        &self,
        order: &FollowupOrder,
        out: &Outgoing<'_>,
    ) -> Result<String, DeliveryError> {
        if out.earlier_sends > 0 {
            if let Some(key) = self.find(order).await? {
                tracing::info!(incident = %order.incident, key, "Jira: adopted the issue an earlier send filed");
                return Ok(receipt(&key, &self.browse(&key)));
            }
            let waited = (out.now - out.created_at)
                .to_std()
                .unwrap_or(Duration::ZERO);
            if waited < self.search_lag {
                return Err(DeliveryError {
                    retryable: true,
                    message: "waiting for Jira's search to catch up before filing again".into(),
                    retry_after: Some(self.search_lag - waited),
                });
            }
        }
        let resp = self
            .call(
                Method::POST,
                &format!("{}/rest/api/3/issue", self.site),
                Some(&self.request(order)),
            )
            .await?;
        // `CreatedIssue` `{id, key, self}` (platform-swagger.v3.json).
        match resp
            .json()
            .and_then(|v| v["key"].as_str().map(str::to_string))
        {
            Some(key) => {
                tracing::info!(incident = %order.incident, key, "Jira: issue filed");
                Ok(receipt(&key, &self.browse(&key)))
            }
            None => Err(DeliveryError::retryable(
                "Jira answered the create without an issue key; the next try looks it up",
            )),
        }
    }

    /// The key of the issue carrying the order's marker under the incident's label, if the
    /// search index has it yet.
    async fn find(&self, order: &FollowupOrder) -> Result<Option<String>, DeliveryError> {
        let jql = format!("labels = \"{}\"", order.label(false));
        let wanted = marker(order);
        let max = PAGE_SIZE.to_string();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut pairs = vec![
                ("jql", jql.as_str()),
                ("fields", "summary,description,labels"),
                ("maxResults", max.as_str()),
            ];
            if let Some(t) = &token {
                pairs.push(("nextPageToken", t.as_str()));
            }
            let url = format!("{}/rest/api/3/search/jql?{}", self.site, query(&pairs));
            let page = self
                .call(Method::GET, &url, None)
                .await?
                .json()
                .unwrap_or(Value::Null);
            let found = page["issues"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| has_marker(&i["fields"]["description"], &wanted))
                .and_then(|i| i["key"].as_str());
            if let Some(key) = found {
                return Ok(Some(key.to_string()));
            }
            // `isLast` / `nextPageToken` of the enhanced search (paging reference §3.1).
            match page["nextPageToken"].as_str() {
                Some(next) if page["isLast"] != true => token = Some(next.to_string()),
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// `fields.status.name`; done when its `statusCategory.key` is `done` (the category
    /// keys `new|indeterminate|done` are unverified, paging reference §3.1).
    pub async fn state(&self, key: &str) -> Result<TicketState, DeliveryError> {
        let url = format!(
            "{}/rest/api/3/issue/{}?fields=status",
            self.site,
            encode(key.trim())
        );
        let issue = self
            .call(Method::GET, &url, None)
            .await?
            .json()
            .unwrap_or(Value::Null);
        let status = &issue["fields"]["status"];
        let Some(state) = status["name"].as_str() else {
            return Err(DeliveryError::retryable(
                "Jira answered without the issue's status",
            ));
        };
        Ok(TicketState {
            state: state.to_string(),
            done: status["statusCategory"]["key"] == "done",
        })
    }
}

/// The site's base URL without a trailing slash.
pub fn site(settings: &TrackerSettings) -> String {
    settings
        .site
        .as_deref()
        .unwrap_or_default()
        .trim()
        .trim_end_matches('/')
        .to_string()
}

/// Jira's `ErrorCollection` (`errorMessages[]`, `errors{field: message}`,
/// platform-swagger.v3.json) as one line, each field's message verbatim.
pub fn error_details(resp: &Response) -> String {
    let body = resp.json().unwrap_or(Value::Null);
    let mut parts: Vec<String> = body["errorMessages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    if let Some(errors) = body["errors"].as_object() {
        for (field, message) in errors {
            let message = message
                .as_str()
                .map_or_else(|| message.to_string(), str::to_string);
            parts.push(format!("{field}: {message}"));
        }
    }
    parts.join("; ")
}

/// What Jira's refusal means for the outbox: worth another try later or not.
pub fn refusal(resp: &Response, project: &str) -> DeliveryError {
    let status = resp.status;
    let details = error_details(resp);
    let said = if details.is_empty() {
        String::new()
    } else {
        format!(": {details}")
    };
    match status {
        400 => DeliveryError::permanent(format!("Jira refused the issue (400){said}")),
        401 => DeliveryError::permanent(
            "Jira refused the credentials (401): check tracker.email and tracker.api_token",
        ),
        403 => DeliveryError::permanent(format!(
            "Jira refused the call (403): the account needs Browse projects and Create issues in {project}{said}"
        )),
        404 => DeliveryError::permanent(format!(
            "Jira: not found (404): check tracker.project ({project}) and tracker.site{said}"
        )),
        // Atlassian "Rate limiting": 429 with `Retry-After` in seconds (paging reference §3.1).
        429 => DeliveryError {
            retryable: true,
            message: "Jira rate limit (HTTP 429)".into(),
            retry_after: resp.retry_after,
        },
        500.. => DeliveryError::retryable(format!("Jira: HTTP {status}")),
        _ => DeliveryError::permanent(format!("Jira refused the call (HTTP {status}){said}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_7617s_example() {
        assert_eq!(
            authorization("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn labels_lose_their_spaces() {
        assert_eq!(label("incident follow up"), "incident-follow-up");
    }

    #[test]
    fn the_marker_must_be_a_whole_paragraph() {
        let doc = json!({ "type": "doc", "version": 1, "content": [
            paragraph(vec![text("drbot-followup drbot:INC-3:1796000000:fu:10")]),
        ]});
        assert!(has_marker(
            &doc,
            "drbot-followup drbot:INC-3:1796000000:fu:10"
        ));
        assert!(!has_marker(
            &doc,
            "drbot-followup drbot:INC-3:1796000000:fu:1"
        ));
    }
}
