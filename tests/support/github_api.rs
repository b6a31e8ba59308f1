//! A GitHub REST stand-in on 127.0.0.1 for the issue calls a follow-up tracker makes:
//! `POST /repos/{owner}/{repo}/issues`, `GET /repos/{owner}/{repo}/issues` (label filter,
//! state, pagination), `GET /repos/{owner}/{repo}/issues/{number}` and `GET
//! /repos/{owner}/{repo}` (what `drbot doctor` reads), with the checks the
//! real API makes (token, `User-Agent`, API version header, `title`, issues disabled) and
//! GitHub's error bodies. A test closes issues with [`GitHubApi::close_issue`].
//!
//! Upstream: the OpenAPI description (github/rest-api-description) is too large to keep
//! (12.9 M characters), so each rule names the docs.github.com page it follows, as quoted
//! in the paging reference (`shared/reference/paging.md` §3.2) or marked unverified.
//!
//! Point drbot at it with `[tracker] api_url = GitHubApi::base()`.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::faults::{Answer, Failure, header, query_pairs, query_value, retry_after, scripted};
use super::http::{Incoming, Recorder, Server, bind_local, header_pairs, json_response};

/// docs.github.com "API Versions": the supported `X-GitHub-Api-Version` values (2022-11-28
/// is the default when the header is absent; 2026-03-10 exists in
/// github/rest-api-description per the paging reference).
pub const API_VERSIONS: &[&str] = &["2022-11-28", "2026-03-10"];
/// docs.github.com "Getting started with the REST API": the recommended media type.
pub const ACCEPT: &str = "application/vnd.github+json";
/// docs.github.com "Using pagination in the REST API": per_page default 30, max 100.
const DEFAULT_PER_PAGE: usize = 30;
const MAX_PER_PAGE: usize = 100;
const DOCS_CREATE: &str = "https://docs.github.com/rest/issues/issues#create-an-issue";

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub auth_ok: bool,
    /// What broke the API's contract (also set for served calls missing a recommended
    /// header, such as `X-GitHub-Api-Version`).
    pub problem: Option<String>,
    /// HTTP status sent; 0 when the connection was dropped or the answer is held.
    pub answered: u16,
}

pub struct GitHubApi {
    shared: Arc<Shared>,
    _server: Server,
}

struct Shared {
    owner: String,
    repo: String,
    token: String,
    origin: String,
    recorder: Recorder<Call>,
    world: Mutex<World>,
}

#[derive(Default)]
struct World {
    /// Oldest first; `number` = index + 1.
    issues: Vec<Value>,
    issues_disabled: bool,
    failures: HashMap<String, VecDeque<Failure>>,
    clock: u64,
}

impl GitHubApi {
    /// Start on 127.0.0.1:0 serving `owner/repo` to `token`. Must be called inside a tokio
    /// runtime.
    pub fn start(owner: &str, repo: &str, token: &str) -> GitHubApi {
        let listener = bind_local();
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            owner: owner.into(),
            repo: repo.into(),
            token: token.into(),
            origin,
            recorder: Recorder::new(),
            world: Mutex::new(World::default()),
        });
        let server = Server::stand_in(listener, shared.clone(), 1024 * 1024, handle);
        GitHubApi {
            shared,
            _server: server,
        }
    }

    pub fn base(&self) -> String {
        self.shared.origin.clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.recorder.all()
    }

    /// Wait (bounded by `patience`, never a timing assertion) until the calls satisfy `what`.
    pub async fn wait_for(
        &self,
        what: impl Fn(&[Call]) -> bool,
        patience: Duration,
    ) -> Result<(), String> {
        self.shared.recorder.wait_for(what, patience).await
    }

    /// Every issue, oldest first, as `GET …/issues/{n}` shows it.
    pub fn issues(&self) -> Vec<Value> {
        self.shared.world.lock().unwrap().issues.clone()
    }

    /// Turn the repository's issues feature off (creates answer 410) or on.
    pub fn set_issues_disabled(&self, disabled: bool) {
        self.shared.world.lock().unwrap().issues_disabled = disabled;
    }

    /// Close issue `number` as someone would in the web UI; `reason` is `completed` or
    /// `not_planned`.
    pub fn close_issue(&self, number: u64, reason: &str) {
        let mut world = self.shared.world.lock().unwrap();
        let at = stamp(&mut world.clock);
        let issue = world
            .issues
            .get_mut(number as usize - 1)
            .unwrap_or_else(|| panic!("no issue #{number}"));
        issue["state"] = json!("closed");
        issue["state_reason"] = json!(reason);
        issue["closed_at"] = json!(at);
        issue["updated_at"] = json!(at);
    }

    /// Fail the next call of `method` (`GET`, `POST`) this way.
    pub fn fail_next(&self, method: &str, failure: Failure) {
        self.shared
            .world
            .lock()
            .unwrap()
            .failures
            .entry(method.to_string())
            .or_default()
            .push_back(failure);
    }
}

/// Timestamps that move forward one second per change, from a fixed start.
fn stamp(clock: &mut u64) -> String {
    *clock += 1;
    let t = chrono::DateTime::from_timestamp(1_796_000_000 + *clock as i64, 0).expect("time");
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// GitHub's error body: `message`, `documentation_url`, and (newer responses) `status` as a
/// string; the `status` member is unverified here.
fn gh_error(status: u16, message: &str, docs: &str) -> Answer {
    (
        status,
        vec![],
        json!({ "message": message, "documentation_url": docs, "status": status.to_string() }),
    )
}

async fn handle(shared: Arc<Shared>, (method, uri, headers, body): Incoming) -> Response {
    let call = Call {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: header_pairs(&headers),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        auth_ok: false,
        problem: None,
        answered: 0,
    };
    let failure = shared
        .world
        .lock()
        .unwrap()
        .failures
        .get_mut(method.as_str())
        .and_then(VecDeque::pop_front);
    let recorder = &shared.recorder;
    scripted(
        failure,
        call,
        |call| recorder.push(call),
        refuse,
        |call| answer(&shared, &method, &uri, &headers, &body, call),
    )
    .await
}

fn refuse(failure: Failure) -> Response {
    match failure {
        // Secondary rate limit: 403 or 429, `retry-after` when GitHub sends one (it does not
        // always, hub4j/github-api#1805); wording from real answers (KnpLabs/php-github-api
        // #1070). docs.github.com "Rate limits for the REST API" §secondary rate limits.
        Failure::RateLimited {
            status,
            retry_after_secs,
        } => {
            let (_, _, body) = gh_error(
                status,
                "You have exceeded a secondary rate limit. Please wait a few minutes before \
                 you try again.",
                "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api\
                 #about-secondary-rate-limits",
            );
            let mut headers = retry_after(retry_after_secs);
            headers.push(("x-ratelimit-remaining", "4990".into()));
            json_response(status, &headers, &body)
        }
        Failure::ServerError(status) => {
            let (_, _, body) = gh_error(status, "Server Error", "https://docs.github.com/rest");
            json_response(status, &[], &body)
        }
        applied => panic!("{applied:?} applies the call"),
    }
}

fn answer(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    call: &mut Call,
) -> Answer {
    // docs.github.com "Getting started with the REST API" §User agent: "All API requests
    // must include a valid User-Agent header"; requests without one are rejected (403; the
    // body text is unverified).
    if header(headers, "user-agent").is_none_or(str::is_empty) {
        return gh_error(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a \
             User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).",
            "https://docs.github.com/rest",
        );
    }
    // docs.github.com "Authenticating to the REST API": `Authorization: Bearer <token>` or
    // `token <token>`; a bad token is 401 "Bad credentials".
    let auth = header(headers, "authorization");
    call.auth_ok = auth.is_some_and(|a| {
        a.strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("token "))
            == Some(shared.token.as_str())
    });
    if !call.auth_ok {
        // Anonymous callers of a private repository see 404; the stand-in's repository is
        // private, so only a wrong token is 401.
        return match auth {
            None => gh_error(404, "Not Found", "https://docs.github.com/rest"),
            Some(_) => gh_error(401, "Bad credentials", "https://docs.github.com/rest"),
        };
    }
    // docs.github.com "API Versions": an unsupported version is a 400; no header means
    // 2022-11-28 (served, recorded).
    match header(headers, "x-github-api-version") {
        Some(v) if !API_VERSIONS.contains(&v) => {
            return gh_error(
                400,
                &format!("API version {v} is not supported."),
                "https://docs.github.com/rest/about-the-rest-api/api-versions",
            );
        }
        Some(_) => {}
        None => call.problem = Some("no X-GitHub-Api-Version header".into()),
    }
    if header(headers, "accept").is_none_or(|a| !a.contains(ACCEPT)) {
        call.problem = Some(format!(
            "Accept is {:?}, not {ACCEPT}",
            header(headers, "accept")
        ));
    }
    if method == Method::GET && uri.path() == format!("/repos/{}/{}", shared.owner, shared.repo) {
        let world = shared.world.lock().unwrap();
        return (200, vec![], repository(shared, &world));
    }
    let prefix = format!("/repos/{}/{}/issues", shared.owner, shared.repo);
    let Some(rest) = uri.path().strip_prefix(&prefix) else {
        return gh_error(404, "Not Found", "https://docs.github.com/rest");
    };
    let mut world = shared.world.lock().unwrap();
    match (method.clone(), rest.strip_prefix('/')) {
        (Method::POST, None) if rest.is_empty() => create(shared, &mut world, body),
        (Method::GET, None) if rest.is_empty() => list(shared, &world, uri),
        (Method::GET, Some(n)) => match n.parse::<usize>().ok().and_then(|n| n.checked_sub(1)) {
            Some(i) if i < world.issues.len() => (200, vec![], world.issues[i].clone()),
            _ => gh_error(
                404,
                "Not Found",
                "https://docs.github.com/rest/issues/issues#get-an-issue",
            ),
        },
        _ => gh_error(404, "Not Found", "https://docs.github.com/rest"),
    }
}

/// `GET /repos/{owner}/{repo}` (docs.github.com "Get a repository"): the `full-repository`
/// object, here only the members a caller checks. `has_issues` follows the issues switch;
/// `permissions` (`admin`, `maintain`, `push`, `triage`, `pull`) is present for an
/// authenticated caller (the `full-repository` schema of github/rest-api-description, seen
/// through the generated models of docs.rs `openapi-github`; which members are always sent
/// is unverified). The token here has push access, as `create` assumes.
fn repository(shared: &Shared, world: &World) -> Value {
    let full_name = format!("{}/{}", shared.owner, shared.repo);
    json!({
        "id": 700_000_001u64,
        "node_id": "R_kgDOstandin",
        "name": shared.repo,
        "full_name": full_name,
        "private": true,
        "owner": { "login": shared.owner, "id": 2, "type": "Organization" },
        "html_url": format!("https://github.com/{full_name}"),
        "url": format!("https://api.github.com/repos/{full_name}"),
        "has_issues": !world.issues_disabled,
        "open_issues_count": world.issues.iter().filter(|i| i["state"] == "open").count(),
        "archived": false,
        "disabled": false,
        "permissions": { "admin": false, "maintain": false, "push": true, "triage": true, "pull": true },
    })
}

/// `POST /repos/{owner}/{repo}/issues` (docs.github.com "Create an issue").
fn create(shared: &Shared, world: &mut World, body: &[u8]) -> Answer {
    // "Create an issue": 410 Gone "if issues are disabled in the repository".
    if world.issues_disabled {
        return gh_error(410, "Issues are disabled for this repo", DOCS_CREATE);
    }
    // A body that is not a JSON object: 400 "Problems parsing JSON" (docs.github.com
    // "Troubleshooting the REST API" / client errors).
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(body) else {
        return gh_error(400, "Problems parsing JSON", DOCS_CREATE);
    };
    if let Err(answer) = check_issue(&input) {
        return answer;
    }
    let number = world.issues.len() as u64 + 1;
    let at = stamp(&mut world.clock);
    let html = format!(
        "https://github.com/{}/{}/issues/{number}",
        shared.owner, shared.repo
    );
    // Only users with push access can set labels/assignees; the token here has it. New
    // label names are created on the fly, as GitHub does for pushers.
    let labels: Vec<Value> = input
        .get("labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str().or_else(|| l.get("name").and_then(Value::as_str)))
        .enumerate()
        .map(|(i, name)| {
            json!({ "id": 7_000_000 + number * 100 + i as u64, "name": name, "color": "ededed",
                    "default": false, "description": null })
        })
        .collect();
    let title = match &input["title"] {
        Value::Number(n) => n.to_string(),
        other => other.as_str().unwrap_or_default().to_string(),
    };
    let issue = json!({
        "id": 2_000_000_000u64 + number,
        "node_id": format!("I_kwDOstandin{number:04}"),
        "url": format!("https://api.github.com/repos/{}/{}/issues/{number}", shared.owner, shared.repo),
        "html_url": html,
        "number": number,
        "state": "open",
        "state_reason": null,
        "title": title,
        "body": input.get("body").cloned().unwrap_or(Value::Null),
        "user": { "login": "drbot", "id": 1, "type": "Bot" },
        "labels": labels,
        "assignees": input.get("assignees").cloned().unwrap_or(json!([])),
        "milestone": null,
        "locked": false,
        "comments": 0,
        "created_at": at,
        "updated_at": at,
        "closed_at": null,
    });
    world.issues.push(issue.clone());
    (201, vec![("location", issue["url"].to_string())], issue)
}

/// Validation of a create body. 422 bodies follow GitHub's "Validation Failed" shape
/// (docs.github.com "Troubleshooting the REST API", client errors: `errors[]` with
/// `resource`, `field`, `code`); `missing_field` for `title` as octokit reports it
/// (benbalter/problem_child#10).
fn check_issue(input: &Map<String, Value>) -> Result<(), Answer> {
    let invalid = |field: &str, code: &str| {
        Err((
            422,
            vec![],
            json!({
                "message": "Validation Failed",
                "errors": [{ "resource": "Issue", "code": code, "field": field }],
                "documentation_url": DOCS_CREATE,
                "status": "422",
            }),
        ))
    };
    // "Create an issue": `title` (string or integer) required.
    match input.get("title") {
        None | Some(Value::Null) => return invalid("title", "missing_field"),
        Some(Value::String(t)) if t.trim().is_empty() => return invalid("title", "missing_field"),
        Some(Value::String(_) | Value::Number(_)) => {}
        Some(_) => return invalid("title", "invalid"),
    }
    // The title limit (256 characters) is unverified; octokit users report "title is too
    // long" with code `custom` (NullVoxPopuli/aeonvera#354).
    if input["title"]
        .as_str()
        .is_some_and(|t| t.chars().count() > 256)
    {
        return invalid("title", "custom");
    }
    // Body limit 65536 characters: unverified.
    if input
        .get("body")
        .and_then(Value::as_str)
        .is_some_and(|b| b.chars().count() > 65_536)
    {
        return invalid("body", "custom");
    }
    for list in ["labels", "assignees"] {
        match input.get(list) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items))
                if items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| !s.trim().is_empty()) || i.is_object()) => {
            }
            // An empty label name is `missing_field` on resource Label (gitment issue #172).
            Some(Value::Array(_)) if list == "labels" => {
                return Err((
                    422,
                    vec![],
                    json!({
                        "message": "Validation Failed",
                        "errors": [{ "resource": "Label", "field": "name", "code": "missing_field" }],
                        "documentation_url": DOCS_CREATE,
                        "status": "422",
                    }),
                ));
            }
            Some(_) => return invalid(list, "invalid"),
        }
    }
    Ok(())
}

/// `GET /repos/{owner}/{repo}/issues` (docs.github.com "List repository issues"): `state`
/// open (default) | closed | all, `labels` a comma-separated list that must all match,
/// newest first, `per_page`/`page` with a `Link` header when there is more.
fn list(shared: &Shared, world: &World, uri: &Uri) -> Answer {
    let pairs = query_pairs(uri.query());
    let state = query_value(&pairs, "state").unwrap_or("open");
    if !["open", "closed", "all"].contains(&state) {
        return (
            422,
            vec![],
            json!({ "message": "Validation Failed",
                    "errors": [{ "resource": "Issue", "field": "state", "code": "invalid" }],
                    "documentation_url": "https://docs.github.com/rest/issues/issues#list-repository-issues",
                    "status": "422" }),
        );
    }
    let wanted: Vec<&str> = query_value(&pairs, "labels")
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let per_page = query_value(&pairs, "per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
    let page = query_value(&pairs, "page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let matching: Vec<&Value> = world
        .issues
        .iter()
        .rev()
        .filter(|i| state == "all" || i["state"] == state)
        .filter(|i| {
            wanted.iter().all(|w| {
                i["labels"]
                    .as_array()
                    .is_some_and(|ls| ls.iter().any(|l| l["name"] == *w))
            })
        })
        .collect();
    let items: Vec<Value> = matching
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|i| (*i).clone())
        .collect();
    let mut headers = Vec::new();
    if page * per_page < matching.len() {
        // The next page keeps every other parameter, as GitHub's `Link` does.
        let mut next: Vec<(String, String)> =
            pairs.into_iter().filter(|(k, _)| k != "page").collect();
        next.push(("page".into(), (page + 1).to_string()));
        let query = serde_urlencoded::to_string(&next).expect("query");
        headers.push((
            "link",
            format!("<{}{}?{query}>; rel=\"next\"", shared.origin, uri.path()),
        ));
    }
    (200, headers, Value::Array(items))
}

impl super::faults::Settled for Call {
    fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }
    fn settle(&mut self, answered: u16, problem: Option<String>) {
        self.answered = answered;
        self.problem = problem;
    }
}
