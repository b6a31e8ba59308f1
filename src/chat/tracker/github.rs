//! GitHub Issues (paging reference §3.2, docs.github.com REST): `POST
//! /repos/{owner}/{repo}/issues` to file, `GET …/issues?labels=…&state=all` to look for a
//! create whose answer was lost, `GET …/issues/{number}` to read the state back.

use hyper::Method;
use serde_json::{Value, json};

use super::common::{TicketState, clip, encode, labels, owner_line, query, receipt, transport};
use crate::chat::DeliveryError;
use crate::chat::http::{HttpClient, Response};
use crate::config::TrackerSettings;
use crate::incident::post::FollowupOrder;

/// docs.github.com "API Versions"; octocrab pins the same (paging reference §3.2).
pub const API_VERSION: &str = "2022-11-28";
/// docs.github.com "Getting started with the REST API": the recommended media type.
pub const ACCEPT: &str = "application/vnd.github+json";
/// The longest title GitHub takes: 256 characters (unverified; octokit users report "title
/// is too long" beyond it).
const MAX_TITLE: usize = 256;
/// docs.github.com "Using pagination in the REST API": `per_page` at most 100.
const PER_PAGE: usize = 100;
/// How many pages of this incident's follow-ups are read before giving up the look: 1 000
/// follow-ups for one incident is far beyond any real one.
const MAX_PAGES: usize = 10;

/// The headers every call carries. Never log them: they hold the token.
pub fn headers(token: &str) -> [(&'static str, String); 4] {
    [
        ("authorization", format!("Bearer {token}")),
        ("accept", ACCEPT.to_string()),
        ("x-github-api-version", API_VERSION.to_string()),
        // docs.github.com "Getting started with the REST API" §User agent: requests without
        // one are rejected.
        ("user-agent", "drbot".to_string()),
    ]
}

/// `{api_url}/repos/{owner}/{repo}` with both parts percent-encoded.
pub fn repo_url(settings: &TrackerSettings) -> String {
    let repo = settings.repo.as_deref().unwrap_or_default();
    let (owner, name) = repo.split_once('/').unwrap_or((repo, ""));
    format!(
        "{}/repos/{}/{}",
        settings.api_url.trim_end_matches('/'),
        encode(owner.trim()),
        encode(name.trim())
    )
}

/// The text of an HTML comment that marks the issue as this order's; the closing ` -->` is
/// part of the match, so `…:fu:1` is not found inside `…:fu:10`.
pub fn marker(order: &FollowupOrder) -> String {
    format!("<!-- drbot-followup {} -->", order.marker)
}

/// The issue's Markdown body.
pub fn body(order: &FollowupOrder) -> String {
    let mut lines = vec![order.text.trim_end().to_string(), String::new()];
    lines.extend(owner_line(order));
    if let Some(due) = order.due {
        lines.push(format!("Due: {}", due.format("%Y-%m-%d")));
    }
    lines.push(format!("Incident: {}", order.link));
    lines.push(String::new());
    lines.push(marker(order));
    lines.join("\n")
}

pub struct GitHub {
    http: HttpClient,
    repo_url: String,
    repo: String,
    token: String,
    labels: Vec<String>,
}

impl GitHub {
    pub fn new(settings: &TrackerSettings) -> GitHub {
        GitHub {
            http: HttpClient::default(),
            repo_url: repo_url(settings),
            repo: settings.repo.clone().unwrap_or_default(),
            token: settings.token.clone().unwrap_or_default(),
            labels: settings.labels.clone(),
        }
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Response, DeliveryError> {
        let owned = headers(&self.token);
        let headers: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let sent = match body {
            Some(body) => self.http.json(method, url, &headers, body).await,
            None => self.http.send(method, url, &headers, None).await,
        };
        let resp = sent.map_err(|e| transport("GitHub", e))?;
        if resp.ok() {
            Ok(resp)
        } else {
            Err(refusal(&resp, &self.repo))
        }
    }

    /// File the order, or adopt the issue an earlier send filed.
    pub async fn file(
        &self,
        order: &FollowupOrder,
        earlier_sends: i64,
    ) -> Result<String, DeliveryError> {
        if earlier_sends > 0
            && let Some((number, url)) = self.find(order).await?
        {
            tracing::info!(incident = %order.incident, number, "GitHub: adopted the issue an earlier send filed");
            return Ok(receipt(&format!("#{number}"), &url));
        }
        let request = json!({
            "title": clip(&order.title, MAX_TITLE),
            "body": body(order),
            "labels": labels(&self.labels, order.label(true), str::to_string),
        });
        let resp = self
            .call(
                Method::POST,
                &format!("{}/issues", self.repo_url),
                Some(&request),
            )
            .await?;
        let issue = resp.json().unwrap_or(Value::Null);
        match (issue["number"].as_u64(), issue["html_url"].as_str()) {
            (Some(number), Some(url)) => {
                tracing::info!(incident = %order.incident, number, "GitHub: issue filed");
                Ok(receipt(&format!("#{number}"), url))
            }
            // Filed, but the answer does not say where: the retry finds it by its marker.
            _ => Err(DeliveryError::retryable(
                "GitHub answered the create without an issue number; the next try looks it up",
            )),
        }
    }

    /// The issue carrying the order's marker under the incident's label, if any. A list, not
    /// the search API: the list is consistent at once, search is not (paging reference §3.2).
    async fn find(&self, order: &FollowupOrder) -> Result<Option<(u64, String)>, DeliveryError> {
        let label = order.label(true);
        let wanted = marker(order);
        let per_page = PER_PAGE.to_string();
        for page in 1..=MAX_PAGES {
            let page = page.to_string();
            let q = query(&[
                ("labels", &label),
                ("state", "all"),
                ("per_page", &per_page),
                ("page", &page),
            ]);
            let resp = self
                .call(Method::GET, &format!("{}/issues?{q}", self.repo_url), None)
                .await?;
            let list = resp.json().unwrap_or(Value::Null);
            let Some(items) = list.as_array() else {
                return Err(DeliveryError::retryable(
                    "GitHub answered the issue list with something other than a list",
                ));
            };
            let found = items
                .iter()
                .find(|i| i["body"].as_str().is_some_and(|b| b.contains(&wanted)));
            if let Some(issue) = found
                && let Some(number) = issue["number"].as_u64()
            {
                let url = issue["html_url"].as_str().unwrap_or_default().to_string();
                return Ok(Some((number, url)));
            }
            if items.len() < PER_PAGE {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// `#12` (or `12`): `open`, or `closed (completed)` / `closed (not_planned)`.
    pub async fn state(&self, key: &str) -> Result<TicketState, DeliveryError> {
        let Ok(number) = key.trim().trim_start_matches('#').parse::<u64>() else {
            return Err(DeliveryError::permanent(format!(
                "GitHub: {key:?} is not an issue number"
            )));
        };
        let resp = self
            .call(
                Method::GET,
                &format!("{}/issues/{number}", self.repo_url),
                None,
            )
            .await?;
        let issue = resp.json().unwrap_or(Value::Null);
        let Some(state) = issue["state"].as_str() else {
            return Err(DeliveryError::retryable(
                "GitHub answered without the issue's state",
            ));
        };
        let done = state == "closed";
        let state = match issue["state_reason"].as_str() {
            Some(reason) if done => format!("closed ({reason})"),
            _ => state.to_string(),
        };
        Ok(TicketState { state, done })
    }
}

/// What GitHub's refusal means for the outbox: worth another try later or not.
pub fn refusal(resp: &Response, repo: &str) -> DeliveryError {
    let body = resp.json().unwrap_or(Value::Null);
    let message = body["message"].as_str().unwrap_or_default();
    let status = resp.status;
    // docs.github.com "Rate limits for the REST API": a primary or secondary limit answers
    // 403 or 429, with `retry-after` for a secondary one or a "rate limit" message.
    // (`x-ratelimit-remaining: 0` also says so; the shared HTTP client does not expose it, so
    // the message stands in for it.)
    let limited = status == 429
        || (status == 403
            && (resp.retry_after.is_some() || message.to_lowercase().contains("rate limit")));
    if limited {
        return DeliveryError {
            retryable: true,
            message: format!("GitHub rate limit (HTTP {status}): {message}"),
            retry_after: resp.retry_after,
        };
    }
    match status {
        401 => DeliveryError::permanent("GitHub refused the token (401): check tracker.token"),
        403 => DeliveryError::permanent(format!(
            "GitHub refused the call (403): the token needs Issues write permission on {repo}; GitHub said: {message}"
        )),
        404 => DeliveryError::permanent(format!(
            "GitHub: repository {repo} (or the issue) not found or not visible to the token (404): check tracker.repo and the token's repository access"
        )),
        // docs.github.com "Create an issue": 410 Gone when issues are disabled.
        410 => DeliveryError::permanent(format!(
            "GitHub: issues are disabled on {repo} (410): turn them on in the repository's settings"
        )),
        422 => DeliveryError::permanent(format!(
            "GitHub refused the issue (422 {message}): {}",
            validation_errors(&body)
        )),
        500.. => DeliveryError::retryable(format!("GitHub: HTTP {status}")),
        _ => DeliveryError::permanent(format!(
            "GitHub refused the call (HTTP {status}): {message}"
        )),
    }
}

/// GitHub's `errors[]` (docs.github.com "Troubleshooting the REST API", client errors:
/// `resource`, `field`, `code`, sometimes `message`) as `field: code (message)`.
fn validation_errors(body: &Value) -> String {
    let errors: Vec<String> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| match e.as_str() {
            Some(text) => text.to_string(),
            None => {
                let field = e["field"].as_str().unwrap_or("?");
                let code = e["code"].as_str().unwrap_or("invalid");
                match e["message"].as_str() {
                    Some(m) => format!("{field}: {code} ({m})"),
                    None => format!("{field}: {code}"),
                }
            }
        })
        .collect();
    if errors.is_empty() {
        "no details given".into()
    } else {
        errors.join("; ")
    }
}
