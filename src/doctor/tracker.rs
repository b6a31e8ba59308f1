//! `drbot doctor` for `[tracker]`: harmless calls only (reads, never a create).

use hyper::Method;
use serde_json::Value;

use super::{Check, fail, pass};
use crate::chat::http::{HttpClient, Response};
use crate::chat::tracker::{encode, github, jira};
use crate::config::{TrackerKind, TrackerSettings};

/// The tracker's checks (none when no tracker is configured).
pub async fn tracker(settings: &TrackerSettings) -> Vec<Check> {
    match settings.kind() {
        None => Vec::new(),
        Some(TrackerKind::GitHub) => vec![github_repo(settings).await],
        Some(TrackerKind::Jira) => jira_checks(settings).await,
    }
}

async fn get(url: &str, headers: &[(&str, String)]) -> Result<Response, String> {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    HttpClient::default()
        .send(Method::GET, url, &headers, None)
        .await
        .map_err(|e| e.to_string())
}

/// GitHub "Get a repository": reachable with the token and issues turned on.
async fn github_repo(settings: &TrackerSettings) -> Check {
    const NAME: &str = "tracker";
    let repo = settings.repo.as_deref().unwrap_or_default();
    let token = settings.token.as_deref().unwrap_or_default();
    let resp = match get(&github::repo_url(settings), &github::headers(token)).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::warn!(error = %e, "doctor: GitHub");
            return fail(
                NAME,
                format!("cannot reach GitHub at {}: {e}", settings.api_url),
                "check tracker.api_url and that this host may reach it",
            );
        }
    };
    let body = resp.json().unwrap_or(Value::Null);
    match resp.status {
        200 if body["has_issues"] == false => fail(
            NAME,
            format!("GitHub repository {repo}: issues are disabled"),
            "turn Issues on in the repository's settings (Features), or point tracker.repo elsewhere",
        ),
        200 => pass(
            NAME,
            format!("GitHub repository {repo} reachable with this token"),
        ),
        401 => fail(
            NAME,
            "GitHub refused the token (401)",
            "check tracker.token (DRBOT__TRACKER__TOKEN): it may be mistyped, expired or revoked",
        ),
        404 => fail(
            NAME,
            format!("GitHub repository {repo} not found or not visible to the token (404)"),
            "check tracker.repo (owner/name) and that the token has access to it with Issues write permission",
        ),
        status => fail(
            NAME,
            format!(
                "GitHub answered HTTP {status}: {}",
                body["message"].as_str().unwrap_or_default()
            ),
            "check tracker.token and tracker.repo",
        ),
    }
}

/// Jira: the account (`GET /rest/api/3/myself`), then the project and its issue type
/// (`GET /rest/api/3/project/{key}`).
async fn jira_checks(settings: &TrackerSettings) -> Vec<Check> {
    let site = jira::site(settings);
    let headers = [
        (
            "authorization",
            jira::authorization(
                settings.email.as_deref().unwrap_or_default(),
                settings.api_token.as_deref().unwrap_or_default(),
            ),
        ),
        ("accept", "application/json".to_string()),
    ];
    let me = match get(&format!("{site}/rest/api/3/myself"), &headers).await {
        Ok(resp) if resp.ok() => pass(
            "tracker account",
            format!(
                "Jira at {site} accepts the API token of {}",
                resp.json()
                    .and_then(|v| v["displayName"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "this account".into())
            ),
        ),
        Ok(resp) if resp.status == 401 || resp.status == 403 => {
            return vec![fail(
                "tracker account",
                format!(
                    "Jira at {site} refused the credentials (HTTP {})",
                    resp.status
                ),
                "check tracker.email and tracker.api_token (DRBOT__TRACKER__API_TOKEN): the token must belong to that e-mail's account",
            )];
        }
        Ok(resp) => {
            return vec![fail(
                "tracker account",
                format!("Jira at {site} answered HTTP {}", resp.status),
                "check tracker.site: it is https://<site>.atlassian.net",
            )];
        }
        Err(e) => {
            tracing::warn!(error = %e, "doctor: Jira");
            return vec![fail(
                "tracker account",
                format!("cannot reach Jira at {site}: {e}"),
                "check tracker.site and that this host may reach it",
            )];
        }
    };
    let project = settings.project.as_deref().unwrap_or_default().trim();
    let url = format!("{site}/rest/api/3/project/{}", encode(project));
    let check = match get(&url, &headers).await {
        Ok(resp) if resp.ok() => project_types(settings, project, &resp),
        Ok(resp) if resp.status == 404 => fail(
            "tracker project",
            format!("Jira project {project} not found or not visible to this account"),
            "check tracker.project (the key, e.g. OPS) and that the account may browse the project",
        ),
        Ok(resp) => fail(
            "tracker project",
            format!(
                "Jira answered HTTP {} for project {project}: {}",
                resp.status,
                jira::error_details(&resp)
            ),
            "check tracker.project and the account's permissions",
        ),
        Err(e) => fail(
            "tracker project",
            format!("cannot reach Jira at {site}: {e}"),
            "check tracker.site and that this host may reach it",
        ),
    };
    vec![me, check]
}

/// The project is visible; its issue types, when the answer lists them, must include the one
/// follow-ups are filed as (whether the list is always there is unverified).
fn project_types(settings: &TrackerSettings, project: &str, resp: &Response) -> Check {
    let body = resp.json().unwrap_or(Value::Null);
    let types: Vec<&str> = body["issueTypes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    if !types.is_empty() && !types.contains(&settings.issue_type.as_str()) {
        return fail(
            "tracker project",
            format!(
                "Jira project {project} has no issue type {:?} (it has {})",
                settings.issue_type,
                types.join(", ")
            ),
            "set tracker.issue_type to one of the project's issue types",
        );
    }
    pass(
        "tracker project",
        format!(
            "Jira project {project} visible; follow-ups are filed as {}",
            settings.issue_type
        ),
    )
}
