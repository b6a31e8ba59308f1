//! A Jira Cloud REST v3 stand-in on 127.0.0.1 for a follow-up tracker: `POST
//! /rest/api/3/issue`, `GET /rest/api/3/search/jql`, `GET /rest/api/3/issue/{key}`,
//! `GET /rest/api/3/myself`, `GET /rest/api/3/project/{key}`, with Basic auth, required
//! fields, Atlassian Document Format descriptions and `ErrorCollection` error bodies. Its
//! search index lags behind creates by a delay the test controls (a virtual clock, or a
//! number of searches), so "was my lost create applied?" is tested honestly.
//!
//! Upstream: salto-io/jira-swaggers `e9edd0ef` (2022-07-17) `platform-swagger.v3.json`
//! ("SW"; line numbers in its `platform-swagger.v3.pretty.json` twin). That copy predates
//! `/search/jql`, so the search rules are from Atlassian's pages as the paging reference
//! (`shared/reference/paging.md` §3.1) quotes them, or unverified.
//!
//! Point drbot at it with `[tracker] site = JiraApi::base()`.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::faults::{
    Answer, Failure, base64, header, query_pairs, query_value, retry_after, scripted,
};
use super::http::{Incoming, Recorder, Server, bind_local, header_pairs, json_response};

/// Fields the project's create screen has. Others are refused, as Jira refuses fields not
/// on the screen (Netflix/dispatch#421, ICTU/quality-time#4586).
pub const CREATE_FIELDS: &[&str] = &[
    "project",
    "issuetype",
    "summary",
    "description",
    "labels",
    "duedate",
    "assignee",
    "priority",
];
pub const ISSUE_TYPES: &[&str] = &["Task", "Bug", "Story"];

/// Jira's three status categories, `StatusCategory` (SW l.46146: self, id, key, colorName,
/// name). The keys/ids/names are Jira's usual ones (new 2 "To Do", indeterminate 4 "In
/// Progress", done 3 "Done") — unverified, the spec's examples are placeholders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCategory {
    New,
    Indeterminate,
    Done,
}

impl StatusCategory {
    fn json(self, origin: &str) -> Value {
        let (id, key, color, name) = match self {
            StatusCategory::New => (2, "new", "blue-gray", "To Do"),
            StatusCategory::Indeterminate => (4, "indeterminate", "yellow", "In Progress"),
            StatusCategory::Done => (3, "done", "green", "Done"),
        };
        json!({
            "self": format!("{origin}/rest/api/3/statuscategory/{id}"),
            "id": id,
            "key": key,
            "colorName": color,
            "name": name,
        })
    }

    fn status_name(self) -> &'static str {
        match self {
            StatusCategory::New => "To Do",
            StatusCategory::Indeterminate => "In Progress",
            StatusCategory::Done => "Done",
        }
    }
}

/// How long a new issue stays out of search results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchLag {
    /// Searchable at once.
    None,
    /// Searchable once the stand-in's clock ([`JiraApi::advance`]) has moved this far past
    /// the create.
    Clock(Duration),
    /// Searchable after this many searches have missed it.
    Searches(u32),
}

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub auth_ok: bool,
    /// What broke the API's contract, if anything.
    pub problem: Option<String>,
    /// HTTP status sent; 0 when the connection was dropped or the answer is held.
    pub answered: u16,
}

#[derive(Clone, Debug)]
pub struct Issue {
    pub id: String,
    pub key: String,
    pub fields: Map<String, Value>,
    pub category: StatusCategory,
    /// Clock reading at create.
    created: Duration,
    /// Searches still to miss it (for `SearchLag::Searches`).
    hidden_for: u32,
}

pub struct JiraApi {
    shared: Arc<Shared>,
    _server: Server,
}

struct Shared {
    email: String,
    api_token: String,
    project: String,
    origin: String,
    recorder: Recorder<Call>,
    world: Mutex<World>,
}

struct World {
    issues: Vec<Issue>,
    lag: SearchLag,
    clock: Duration,
    failures: HashMap<String, VecDeque<Failure>>,
}

impl JiraApi {
    /// Start on 127.0.0.1:0 with project `project` for the account `email` + `api_token`.
    /// Must be called inside a tokio runtime.
    pub fn start(project: &str, email: &str, api_token: &str) -> JiraApi {
        let listener = bind_local();
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            email: email.into(),
            api_token: api_token.into(),
            project: project.into(),
            origin,
            recorder: Recorder::new(),
            world: Mutex::new(World {
                issues: Vec::new(),
                lag: SearchLag::None,
                clock: Duration::ZERO,
                failures: HashMap::new(),
            }),
        });
        let server = Server::stand_in(listener, shared.clone(), 1024 * 1024, handle);
        JiraApi {
            shared,
            _server: server,
        }
    }

    pub fn base(&self) -> String {
        self.shared.origin.clone()
    }

    /// The `Authorization` value Jira expects: `Basic base64(email:api_token)`.
    pub fn basic_auth(&self) -> String {
        basic(&self.shared.email, &self.shared.api_token)
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

    pub fn issues(&self) -> Vec<Issue> {
        self.shared.world.lock().unwrap().issues.clone()
    }

    /// Applies to issues created from now on.
    pub fn set_search_lag(&self, lag: SearchLag) {
        self.shared.world.lock().unwrap().lag = lag;
    }

    /// Move the stand-in's clock (only search visibility reads it).
    pub fn advance(&self, by: Duration) {
        self.shared.world.lock().unwrap().clock += by;
    }

    /// Move issue `key` to a status of `category`, as a person working it would.
    pub fn set_status(&self, key: &str, category: StatusCategory) {
        let mut world = self.shared.world.lock().unwrap();
        let issue = world
            .issues
            .iter_mut()
            .find(|i| i.key == key)
            .unwrap_or_else(|| panic!("no issue {key}"));
        issue.category = category;
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

/// `Basic base64(email:api_token)` (Atlassian "Basic auth for REST APIs").
pub fn basic(email: &str, api_token: &str) -> String {
    format!(
        "Basic {}",
        base64(format!("{email}:{api_token}").as_bytes())
    )
}

/// `ErrorCollection` (SW l.43834: `errorMessages[]`, `errors{field: message}`,
/// `additionalProperties: false`).
fn error_collection(status: u16, messages: &[&str], errors: Map<String, Value>) -> Answer {
    (
        status,
        vec![],
        json!({ "errorMessages": messages, "errors": errors }),
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
        // Atlassian "Rate limiting": 429 with `Retry-After` (seconds) and `RateLimit-Reason`
        // (`jira-burst-based` for API-token traffic) [doc, via the paging reference]; the
        // body is unverified.
        Failure::RateLimited {
            status,
            retry_after_secs,
        } => {
            let mut headers = retry_after(retry_after_secs);
            headers.push(("ratelimit-reason", "jira-burst-based".into()));
            let (_, _, body) = error_collection(status, &["Rate limit exceeded."], Map::new());
            json_response(status, &headers, &body)
        }
        Failure::ServerError(status) => {
            let (_, _, body) = error_collection(status, &["Internal server error"], Map::new());
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
    // SW `POST /rest/api/3/issue` 401 "authentication credentials are incorrect or missing",
    // schema `ErrorCollection`; the message text is unverified.
    call.auth_ok =
        header(headers, "authorization") == Some(basic(&shared.email, &shared.api_token).as_str());
    if !call.auth_ok {
        return error_collection(
            401,
            &["Client must be authenticated to access this resource."],
            Map::new(),
        );
    }
    let Some(path) = uri.path().strip_prefix("/rest/api/3/") else {
        return error_collection(404, &["Not Found"], Map::new());
    };
    let mut world = shared.world.lock().unwrap();
    match (method.clone(), path) {
        (Method::POST, "issue") => create(shared, &mut world, headers, body),
        (Method::GET, "search/jql") => search(shared, &mut world, uri),
        // The old search "has been fully removed" (Atlassian KB, via the paging reference);
        // the status it answers now is unverified.
        (_, "search") => error_collection(
            410,
            &[
                "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API.",
            ],
            Map::new(),
        ),
        (Method::GET, "myself") => (200, vec![], myself(shared)),
        (Method::GET, p) if p.starts_with("project/") => project(shared, &p["project/".len()..]),
        (Method::GET, p) if p.starts_with("issue/") => {
            get_issue(shared, &world, &p["issue/".len()..], uri)
        }
        _ => error_collection(404, &["Not Found"], Map::new()),
    }
}

/// An ADF document root: `{"type":"doc","version":1,"content":[…]}` whose nodes each have a
/// `type` (Atlassian "Atlassian Document Format" structure page).
fn is_adf(value: &Value) -> bool {
    fn node_ok(node: &Value) -> bool {
        node.get("type").is_some_and(Value::is_string)
            && node
                .get("content")
                .is_none_or(|c| c.as_array().is_some_and(|c| c.iter().all(node_ok)))
    }
    value.get("type") == Some(&json!("doc"))
        && value.get("version") == Some(&json!(1))
        && value
            .get("content")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().all(node_ok))
}

/// Check a create body's `fields`; errors per field as Jira words them (unverified
/// wordings are noted).
fn check_fields(fields: &Map<String, Value>, project: &str) -> Map<String, Value> {
    let mut errors = Map::new();
    let mut err = |field: &str, message: &str| {
        errors.insert(field.into(), json!(message));
    };
    // Required: project, issuetype, summary (the create screen's required fields; SW 400
    // "is missing required fields"). Wordings unverified.
    match fields.get("project") {
        Some(p) if p.get("key").and_then(Value::as_str) == Some(project) => {}
        Some(p) if p.get("key").is_some() || p.get("id").is_some() => {
            err("project", "valid project is required")
        }
        _ => err("project", "Specify a valid project ID or key"),
    }
    match fields.get("issuetype").and_then(|t| t.get("name")) {
        Some(Value::String(n)) if ISSUE_TYPES.contains(&n.as_str()) => {}
        Some(_) => err("issuetype", "Specify a valid issue type"),
        None => err("issuetype", "Specify an issue type"),
    }
    match fields.get("summary") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 255 => {}
        Some(Value::String(s)) if !s.trim().is_empty() => {
            err("summary", "Summary must be less than 255 characters.")
        }
        _ => err("summary", "You must specify a summary of the issue."),
    }
    // SW `POST /rest/api/3/issue` description (l.13439): "`description` … take Atlassian
    // Document Format content". The 400 for a plain string is unverified (its wording is
    // what Jira users commonly report).
    if let Some(d) = fields.get("description")
        && !d.is_null()
        && !is_adf(d)
    {
        err(
            "description",
            "Operation value must be an Atlassian Document (see the Atlassian Document Format)",
        );
    }
    // Labels may not contain spaces (Jira label rule; wording unverified).
    if let Some(labels) = fields.get("labels") {
        match labels.as_array() {
            Some(ls)
                if ls.iter().all(|l| {
                    l.as_str()
                        .is_some_and(|s| !s.contains(' ') && !s.is_empty())
                }) => {}
            _ => err(
                "labels",
                "The label must not contain spaces and must be a string.",
            ),
        }
    }
    if let Some(due) = fields.get("duedate")
        && due
            .as_str()
            .is_none_or(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err())
    {
        err("duedate", "Error parsing date string: use YYYY-MM-DD");
    }
    for field in fields.keys() {
        if !CREATE_FIELDS.contains(&field.as_str()) {
            err(
                field,
                &format!(
                    "Field '{field}' cannot be set. It is not on the appropriate screen, or unknown."
                ),
            );
        }
    }
    errors
}

/// `POST /rest/api/3/issue` (SW l.13433).
fn create(shared: &Shared, world: &mut World, headers: &HeaderMap, body: &[u8]) -> Answer {
    if !header(headers, "content-type").is_some_and(|c| c.starts_with("application/json")) {
        return error_collection(415, &["Unsupported Media Type"], Map::new());
    }
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(body) else {
        return error_collection(400, &["Invalid JSON body."], Map::new());
    };
    let Some(fields) = input.get("fields").and_then(Value::as_object) else {
        return error_collection(400, &["Field 'fields' is required"], Map::new());
    };
    let errors = check_fields(fields, &shared.project);
    if !errors.is_empty() {
        return error_collection(400, &[], errors);
    }
    let n = world.issues.len() + 1;
    let id = (10_000 + n).to_string();
    let key = format!("{}-{n}", shared.project);
    let hidden_for = match world.lag {
        SearchLag::Searches(k) => k,
        _ => 0,
    };
    world.issues.push(Issue {
        id: id.clone(),
        key: key.clone(),
        fields: fields.clone(),
        category: StatusCategory::New,
        created: world.clock,
        hidden_for,
    });
    // SW `CreatedIssue` (l.49510) and the 201 example: `{id, key, self}`; `transition` only
    // when one was requested.
    (
        201,
        vec![],
        json!({ "id": id, "key": key, "self": format!("{}/rest/api/3/issue/{id}", shared.origin) }),
    )
}

/// The issue as `GET /rest/api/3/issue/{key}` and search show it, with only `wanted` fields
/// (all when empty or `*all`).
fn issue_json(shared: &Shared, issue: &Issue, wanted: &[&str]) -> Value {
    let mut fields = Map::new();
    let all = wanted.is_empty() || wanted.contains(&"*all");
    for (k, v) in &issue.fields {
        if all || wanted.contains(&k.as_str()) {
            fields.insert(k.clone(), v.clone());
        }
    }
    if all || wanted.contains(&"status") {
        fields.insert(
            "status".into(),
            json!({
                "self": format!("{}/rest/api/3/status/{}", shared.origin, issue.category as u8 + 1),
                "name": issue.category.status_name(),
                "id": (issue.category as u8 + 1).to_string(),
                "statusCategory": issue.category.json(&shared.origin),
            }),
        );
    }
    json!({
        "id": issue.id,
        "key": issue.key,
        "self": format!("{}/rest/api/3/issue/{}", shared.origin, issue.id),
        "fields": fields,
    })
}

fn wanted_fields(uri: &Uri) -> Vec<String> {
    query_value(&query_pairs(uri.query()), "fields")
        .map(|f| f.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default()
}

/// `GET /rest/api/3/issue/{issueIdOrKey}` (SW l.14670).
fn get_issue(shared: &Shared, world: &World, key: &str, uri: &Uri) -> Answer {
    let wanted = wanted_fields(uri);
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    match world.issues.iter().find(|i| i.key == key || i.id == key) {
        Some(issue) => (200, vec![], issue_json(shared, issue, &wanted)),
        // SW 404 "the issue is not found or the user does not have permission to view it".
        None => error_collection(
            404,
            &["Issue does not exist or you do not have permission to see it."],
            Map::new(),
        ),
    }
}

/// The JQL this stand-in understands: clauses `labels = "x"`, `labels = x`, `project = KEY`
/// joined by `AND`. Anything else is a 400 (the real parser is far richer; a query drbot
/// sends that this refuses needs the stand-in extended, not bypassed).
fn parse_jql(jql: &str) -> Result<Vec<(String, String)>, String> {
    let mut clauses = Vec::new();
    for clause in jql.split(" AND ") {
        let Some((field, value)) = clause.split_once('=') else {
            return Err(format!("Error in the JQL Query: cannot parse '{clause}'"));
        };
        let field = field.trim().to_lowercase();
        let value = value.trim().trim_matches('"').to_string();
        if !["labels", "project"].contains(&field.as_str()) || value.is_empty() {
            return Err(format!(
                "Error in the JQL Query: unsupported clause '{clause}'"
            ));
        }
        clauses.push((field, value));
    }
    Ok(clauses)
}

/// `GET /rest/api/3/search/jql` (enhanced search; not in the 2022 spec): `{issues[],
/// isLast, nextPageToken?}` [doc: developer.atlassian.com issue search, via the paging
/// reference; response member names unverified]. New issues appear only after the
/// configured [`SearchLag`].
fn search(shared: &Shared, world: &mut World, uri: &Uri) -> Answer {
    let pairs = query_pairs(uri.query());
    let Some(jql) = query_value(&pairs, "jql") else {
        return error_collection(400, &["The 'jql' parameter is required."], Map::new());
    };
    let clauses = match parse_jql(jql) {
        Ok(c) => c,
        Err(why) => return error_collection(400, &[&why], Map::new()),
    };
    let max = query_value(&pairs, "maxResults")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(50)
        .clamp(1, 5000);
    let start: usize = query_value(&pairs, "nextPageToken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let wanted = wanted_fields(uri);
    // The enhanced search returns only ids unless `fields` says otherwise (unverified).
    let wanted: Vec<&str> = if wanted.is_empty() {
        vec!["id"]
    } else {
        wanted.iter().map(String::as_str).collect()
    };
    let (clock, lag) = (world.clock, world.lag);
    let mut hits = Vec::new();
    for issue in world.issues.iter_mut() {
        let matches = clauses.iter().all(|(field, value)| match field.as_str() {
            "project" => issue.key.starts_with(&format!("{value}-")),
            _ => issue.fields["labels"]
                .as_array()
                .is_some_and(|ls| ls.iter().any(|l| l == value)),
        });
        if !matches {
            continue;
        }
        let indexed = match lag {
            SearchLag::None => true,
            SearchLag::Clock(after) => clock >= issue.created + after,
            SearchLag::Searches(_) => issue.hidden_for == 0,
        };
        if indexed {
            hits.push(issue.clone());
        } else {
            issue.hidden_for = issue.hidden_for.saturating_sub(1);
        }
    }
    let page: Vec<Value> = hits
        .iter()
        .skip(start)
        .take(max)
        .map(|i| issue_json(shared, i, &wanted))
        .collect();
    let mut reply = json!({ "issues": page, "isLast": start + max >= hits.len() });
    if start + max < hits.len() {
        reply["nextPageToken"] = json!((start + max).to_string());
    }
    (200, vec![], reply)
}

/// `GET /rest/api/3/myself` (SW l.23918), shaped like its `User` example.
fn myself(shared: &Shared) -> Value {
    json!({
        "self": format!("{}/rest/api/3/user?accountId=5b10a2844c20165700ede21g", shared.origin),
        "accountId": "5b10a2844c20165700ede21g",
        "accountType": "atlassian",
        "emailAddress": shared.email,
        "displayName": "drbot",
        "active": true,
        "timeZone": "Etc/UTC",
        "locale": "en_US",
    })
}

/// `GET /rest/api/3/project/{projectIdOrKey}` (SW l.26367).
fn project(shared: &Shared, key: &str) -> Answer {
    if key != shared.project {
        // Wording unverified.
        return error_collection(
            404,
            &[&format!("No project could be found with key '{key}'.")],
            Map::new(),
        );
    }
    let types: Vec<Value> = ISSUE_TYPES
        .iter()
        .enumerate()
        .map(|(i, name)| json!({ "id": (10_001 + i).to_string(), "name": name, "subtask": false }))
        .collect();
    (
        200,
        vec![],
        json!({
            "self": format!("{}/rest/api/3/project/10000", shared.origin),
            "id": "10000",
            "key": shared.project,
            "name": format!("{} project", shared.project),
            "projectTypeKey": "software",
            "simplified": false,
            "style": "classic",
            "isPrivate": false,
            "issueTypes": types,
        }),
    )
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
