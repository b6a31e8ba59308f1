//! A Slack Web API stand-in on 127.0.0.1: serves the methods drbot calls, checks the
//! token and the request shapes Slack enforces, answers with replies slack-morphism
//! 2.31.1 deserializes, records every call and can be scripted to fail.
//!
//! Point drbot at it with `DRBOT__SLACK__API_URL = SlackApi::base()`.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::http::{
    Incoming, Part, Recorder, SLACK_APP_ID, SLACK_TEAM_DOMAIN, SLACK_TEAM_ID, Server, bind_local,
    header_pairs, json_response, parse_multipart, slack_block_elements, text_response,
};

/// The bot user the stand-in posts as (what `auth.test` returns).
pub const BOT_USER_ID: &str = "UBOT";
pub const BOT_ID: &str = "B1";

/// Slack's hard limits the stand-in enforces.
pub const MAX_TEXT_CHARS: usize = 40_000;
pub const MAX_BLOCKS: usize = 50;
/// `response_url` accepts this many posts.
pub const MAX_RESPONSES_PER_URL: usize = 5;

/// What to do to the next call of a method instead of answering normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 429 with `Retry-After: {retry_after_secs}` (Slack: body `{"ok":false,"error":"ratelimited"}`;
    /// Discord: its rate-limit body with `retry_after` = the same seconds).
    RateLimited { retry_after_secs: u64 },
    /// 500, nothing applied.
    ServerError,
    /// Accept the request and never answer (until the stand-in is dropped): a timeout.
    Hang,
    /// Apply the call (the message is posted), then answer 500: "did it go through?".
    ReplyAfterApplying,
    /// Answer this call normally (a place holder, so the failure after it hits the next call).
    Pass,
    /// Apply the call, then hold the reply forever: the answer is in flight when the test
    /// kills drbot.
    HoldAfterApplying,
    /// Answer `{"ok": false, "error": code}` (Slack) or HTTP 400 with that message
    /// (Discord), applying nothing.
    Refuse(&'static str),
}

#[derive(Clone, Debug)]
pub struct Call {
    /// Web API method (`chat.postMessage`, ...), or `upload` (POST /upload/{file}),
    /// `response` (POST /response/{id}), `unknown` (any other path).
    pub method: String,
    /// Arguments normalised to one JSON object, whatever the encoding (JSON body, form,
    /// query string). Form/query values stay strings, except `blocks`, `attachments`,
    /// `files` and `metadata`, which are parsed as JSON when they hold JSON.
    pub body: Value,
    pub auth_ok: bool,
    /// False when the request broke Slack's contract (missing argument, too many blocks, ...).
    pub valid: bool,
    /// HTTP status sent; 0 while a `Hang` is holding the request.
    pub answered: u16,
    /// The Slack `error` code answered, if any.
    pub error: Option<String>,
    pub headers: Vec<(String, String)>,
    pub at: Instant,
}

/// Bytes received at an `upload_url`.
#[derive(Clone, Debug)]
pub struct Upload {
    pub file_id: String,
    /// As given to `files.getUploadURLExternal`.
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

pub struct SlackApi {
    shared: Arc<Shared>,
    server: Server,
}

struct Shared {
    token: String,
    origin: String,
    recorder: Recorder<Call>,
    world: Mutex<World>,
    /// Methods whose calls wait before they are handled, and how many wait now.
    gates: Mutex<(HashSet<String>, usize)>,
    opened: tokio::sync::Notify,
}

#[derive(Default)]
struct World {
    /// The bot token's scopes (`x-oauth-scopes`).
    scopes: Vec<String>,
    failures: HashMap<String, VecDeque<Failure>>,
    /// Messages per channel, oldest first, as Slack returns them in history.
    channels: HashMap<String, Vec<Value>>,
    /// Successful chat.postMessage bodies, in order.
    posts: Vec<(String, Value)>,
    last_ts: u128,
    usergroups: HashMap<String, Vec<String>>,
    files: HashMap<String, FileSlot>,
    next_file: u64,
    uploads: Vec<Upload>,
    responses: Vec<(String, Value)>,
}

struct FileSlot {
    filename: String,
    length: usize,
    uploaded: bool,
}

/// A rejected call: the Slack error code and whether it was the caller's fault.
struct Reject {
    code: &'static str,
    valid: bool,
}

fn invalid(code: &'static str) -> Reject {
    Reject { code, valid: false }
}

impl SlackApi {
    /// Start on 127.0.0.1:0. Must be called inside a tokio runtime.
    pub fn start(expected_token: &str) -> SlackApi {
        let listener = bind_local();
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            token: expected_token.to_string(),
            origin,
            recorder: Recorder::new(),
            gates: Mutex::default(),
            opened: tokio::sync::Notify::new(),
            world: Mutex::new(World {
                scopes: drbot::chat::manifest::SLACK_BOT_SCOPES
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                ..World::default()
            }),
        });
        let server = Server::stand_in(listener, shared.clone(), 64 * 1024 * 1024, handle);
        SlackApi { shared, server }
    }

    /// Calls of `method` wait, unanswered and not yet applied, until [`SlackApi::open_gate`]:
    /// the caller is mid-request for as long as the test wants.
    pub fn gate(&self, method: &str) {
        self.shared
            .gates
            .lock()
            .unwrap()
            .0
            .insert(method.to_string());
    }

    /// Let the waiting calls of `method` (and later ones) through.
    pub fn open_gate(&self, method: &str) {
        self.shared.gates.lock().unwrap().0.remove(method);
        self.shared.opened.notify_waiters();
    }

    /// How many calls wait at a gate now.
    pub fn waiting_at_gates(&self) -> usize {
        self.shared.gates.lock().unwrap().1
    }

    /// `http://127.0.0.1:PORT/api`: the Web API base URL (`DRBOT__SLACK__API_URL`).
    pub fn base(&self) -> String {
        format!("{}/api", self.shared.origin)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        self.shared.origin.clone()
    }

    /// A `response_url` served by this stand-in (for `slack_command_body` and interactions).
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response/{id}", self.shared.origin)
    }

    /// The scopes the bot token has (default: all drbot's manifest asks for).
    pub fn set_scopes(&self, scopes: &[&str]) {
        self.world().scopes = scopes.iter().map(|s| s.to_string()).collect();
    }

    /// Members returned by `usergroups.users.list?usergroup={id}`.
    pub fn set_usergroup(&self, id: &str, users: &[&str]) {
        self.world().usergroups.insert(
            id.to_string(),
            users.iter().map(|u| u.to_string()).collect(),
        );
    }

    /// Put a message in a channel's history as if someone else had posted it (fields
    /// `ts`, `type` are filled in if missing). Returns its `ts`.
    pub fn add_message(&self, channel: &str, message: Value) -> String {
        let mut world = self.world();
        let ts = world.next_ts();
        let mut message = match message {
            Value::Object(map) => map,
            other => panic!("add_message wants a JSON object, got {other}"),
        };
        message.entry("type").or_insert(json!("message"));
        message.entry("ts").or_insert(json!(ts.clone()));
        let ts = message["ts"].as_str().unwrap_or(&ts).to_string();
        world
            .channels
            .entry(channel.to_string())
            .or_default()
            .push(Value::Object(message));
        ts
    }

    /// Queue a failure for the next call of `method` (FIFO per method). `method` is a
    /// Web API method name, or `upload` / `response`.
    pub fn fail_next(&self, method: &str, failure: Failure) {
        self.world()
            .failures
            .entry(method.to_string())
            .or_default()
            .push_back(failure);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.recorder.all()
    }

    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Bodies of the chat.postMessage calls that posted to `channel`, in order
    /// (including ones answered 500 by `ReplyAfterApplying`).
    pub fn posts_in(&self, channel: &str) -> Vec<Value> {
        filed_under(&self.world().posts, channel)
    }

    /// The channel's pinned messages, oldest first.
    pub fn pinned(&self, channel: &str) -> Vec<Value> {
        self.history(channel)
            .into_iter()
            .filter(|m| m.get("pinned_to").is_some())
            .collect()
    }

    /// The channel's messages as they stand now (after updates), oldest first.
    pub fn history(&self, channel: &str) -> Vec<Value> {
        self.world()
            .channels
            .get(channel)
            .cloned()
            .unwrap_or_default()
    }

    /// The texts of [`SlackApi::history`].
    pub fn history_texts(&self, channel: &str) -> Vec<String> {
        self.history(channel)
            .iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// One message as Slack would embed it in an interaction payload.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Value> {
        self.world()
            .channels
            .get(channel)?
            .iter()
            .find(|m| m["ts"] == ts)
            .cloned()
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.world().uploads.clone()
    }

    /// JSON bodies received at any `response_url`, in order.
    pub fn responses(&self) -> Vec<Value> {
        self.world()
            .responses
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// JSON bodies received at `response_url(id)`, in order.
    pub fn responses_to(&self, id: &str) -> Vec<Value> {
        filed_under(&self.world().responses, id)
    }

    /// Forget recorded calls, posts, uploads and responses. Channel history, pins,
    /// user groups, handed-out file ids and queued failures stay.
    pub fn reset(&self) {
        let mut world = self.world();
        world.posts.clear();
        world.uploads.clear();
        world.responses.clear();
        self.shared.recorder.clear();
    }

    /// Wait until `what(calls)` holds; `Err` with a dump of the calls after `deadline`.
    pub async fn wait_for(
        &self,
        what: impl Fn(&[Call]) -> bool,
        deadline: Duration,
    ) -> Result<(), String> {
        self.shared.recorder.wait_for(what, deadline).await
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.shared.world.lock().unwrap()
    }
}

/// The values in `pairs` filed under `key`, in order.
fn filed_under(pairs: &[(String, Value)], key: &str) -> Vec<Value> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

impl World {
    /// A fresh message ts: wall-clock microseconds, strictly increasing.
    fn next_ts(&mut self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_micros();
        self.last_ts = now.max(self.last_ts + 1);
        format!(
            "{}.{:06}",
            self.last_ts / 1_000_000,
            self.last_ts % 1_000_000
        )
    }

    fn pop_failure(&mut self, method: &str) -> Option<Failure> {
        self.failures.get_mut(method)?.pop_front()
    }

    fn find_message(&mut self, channel: &str, ts: &str) -> Option<&mut Value> {
        self.channels
            .get_mut(channel)?
            .iter_mut()
            .find(|m| m["ts"] == ts)
    }
}

// ---------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------

async fn handle(shared: Arc<Shared>, (method, uri, headers, body): Incoming) -> Response {
    let path = uri.path().to_string();
    if let Some(api_method) = path.strip_prefix("/api/") {
        pass_gate(&shared, api_method).await;
    }
    let outcome = if let Some(api_method) = path.strip_prefix("/api/") {
        api_call(&shared, api_method, &method, &uri, &headers, &body)
    } else if let Some(file_id) = path.strip_prefix("/upload/") {
        upload(&shared, file_id, &headers, &body)
    } else if let Some(id) = path.strip_prefix("/response/") {
        response_url(&shared, id, &headers, &body)
    } else {
        shared.recorder.push(Call {
            method: "unknown".into(),
            body: json!({ "method": method.as_str(), "path": path }),
            auth_ok: false,
            valid: false,
            answered: 404,
            error: Some("not_found".into()),
            headers: header_pairs(&headers),
            at: Instant::now(),
        });
        Some(text_response(404, "Not Found"))
    };
    match outcome {
        Some(response) => response,
        // A scripted `Hang`: hold the request until the stand-in is dropped.
        None => std::future::pending().await,
    }
}

/// Wait while `method` is gated.
async fn pass_gate(shared: &Shared, method: &str) {
    let mut counted = false;
    loop {
        let opened = shared.opened.notified();
        tokio::pin!(opened);
        opened.as_mut().enable();
        {
            let mut gates = shared.gates.lock().unwrap();
            if !gates.0.contains(method) {
                if counted {
                    gates.1 -= 1;
                }
                return;
            }
            if !counted {
                gates.1 += 1;
                counted = true;
            }
        }
        opened.await;
    }
}

const API_METHODS: &[&str] = &[
    "chat.postMessage",
    "chat.update",
    "pins.add",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
    "conversations.history",
    "usergroups.users.list",
    "auth.test",
];

fn api_call(
    shared: &Shared,
    api_method: &str,
    http_method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let mut call = Call {
        method: api_method.to_string(),
        body: Value::Null,
        auth_ok: false,
        valid: true,
        answered: 200,
        error: None,
        headers: header_pairs(headers),
        at: Instant::now(),
    };
    let args = match normalise_args(http_method, uri.query(), headers, body) {
        Ok(args) => args,
        Err(raw) => {
            call.body = raw;
            call.valid = false;
            return Some(finish(shared, call, api_error("invalid_json")));
        }
    };
    call.body = Value::Object(args.clone());
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Slack also takes the token as a POST form argument.
    let form_token = args.get("token").and_then(Value::as_str);
    call.auth_ok = bearer.or(form_token) == Some(shared.token.as_str());

    if !API_METHODS.contains(&api_method) {
        call.valid = false;
        return Some(finish(shared, call, api_error("unknown_method")));
    }

    let mut world = shared.world.lock().unwrap();
    let checked = check(&world, api_method, &args);
    if !call.auth_ok {
        call.valid = checked.as_ref().err().is_none_or(|r| r.valid);
        drop(world);
        return Some(finish(shared, call, api_error("invalid_auth")));
    }
    if let Err(reject) = checked {
        call.valid = reject.valid;
        drop(world);
        return Some(finish(shared, call, api_error(reject.code)));
    }
    match world
        .pop_failure(api_method)
        .filter(|f| *f != Failure::Pass)
    {
        None => {
            let reply = apply(&mut world, &shared.origin, api_method, &args);
            drop(world);
            Some(finish(shared, call, (200, vec![], reply)))
        }
        Some(Failure::ReplyAfterApplying) => {
            apply(&mut world, &shared.origin, api_method, &args);
            drop(world);
            Some(finish(shared, call, server_error()))
        }
        Some(Failure::HoldAfterApplying) => {
            apply(&mut world, &shared.origin, api_method, &args);
            drop(world);
            call.answered = 0;
            call.error = Some("held after applying".into());
            shared.recorder.push(call);
            None
        }
        Some(failure) => {
            drop(world);
            fail(shared, call, failure)
        }
    }
}

type Answer = (u16, Vec<(&'static str, String)>, Value);

fn api_error(code: &str) -> Answer {
    (200, vec![], json!({ "ok": false, "error": code }))
}

fn server_error() -> Answer {
    (500, vec![], Value::Null)
}

/// Record the call with the answer's status/error and build the response.
/// [`finish`] with Slack's error answer.
fn refuse(shared: &Shared, call: Call, status: u16, error: &str) -> Response {
    finish(
        shared,
        call,
        (status, vec![], json!({ "ok": false, "error": error })),
    )
}

fn finish(shared: &Shared, mut call: Call, (status, mut headers, body): Answer) -> Response {
    call.answered = status;
    // Slack names the token's scopes on every Web API answer.
    headers.push((
        "x-oauth-scopes",
        shared.world.lock().unwrap().scopes.join(","),
    ));
    if call.error.is_none() {
        call.error = body.get("error").and_then(Value::as_str).map(String::from);
    }
    shared.recorder.push(call);
    if body.is_null() {
        text_response(status, "Internal Server Error")
    } else {
        json_response(status, &headers, &body)
    }
}

/// Answer a scripted failure (not `ReplyAfterApplying`, which the caller handles);
/// `None` for `Hang`.
fn fail(shared: &Shared, call: Call, failure: Failure) -> Option<Response> {
    Some(match failure {
        Failure::RateLimited { retry_after_secs } => finish(
            shared,
            call,
            (
                429,
                vec![("retry-after", retry_after_secs.to_string())],
                json!({ "ok": false, "error": "ratelimited" }),
            ),
        ),
        Failure::Refuse(code) => finish(shared, call, api_error(code)),
        Failure::Pass
        | Failure::ServerError
        | Failure::ReplyAfterApplying
        | Failure::HoldAfterApplying => {
            let mut call = call;
            call.error = Some("internal_error".into());
            finish(shared, call, server_error())
        }
        Failure::Hang => {
            let mut call = call;
            call.answered = 0;
            call.error = Some("hang".into());
            shared.recorder.push(call);
            return None;
        }
    })
}

/// JSON body, form body and query string, merged into one object (body wins).
fn normalise_args(
    http_method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, Value> {
    let mut args = Map::new();
    if let Some(query) = query {
        for (k, v) in serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default()
        {
            args.insert(k, Value::String(v));
        }
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let raw = || Value::String(String::from_utf8_lossy(body).into_owned());
    if body.is_empty() || *http_method == Method::GET {
        // nothing more
    } else if content_type.starts_with("application/json")
        || (content_type.is_empty() && body.first() == Some(&b'{'))
    {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => args.extend(map),
            _ => return Err(raw()),
        }
    } else if content_type.starts_with("multipart/form-data") {
        let parts: Vec<Part> = parse_multipart(&content_type, body).map_err(|_| raw())?;
        for part in parts.into_iter().filter(|p| p.filename.is_none()) {
            args.insert(
                part.name,
                Value::String(String::from_utf8_lossy(&part.data).into_owned()),
            );
        }
    } else {
        let pairs =
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).map_err(|_| raw())?;
        for (k, v) in pairs {
            args.insert(k, Value::String(v));
        }
    }
    for key in ["blocks", "attachments", "files", "metadata"] {
        if let Some(Value::String(s)) = args.get(key)
            && let Ok(parsed) = serde_json::from_str::<Value>(s)
            && (parsed.is_array() || parsed.is_object())
        {
            args.insert(key.to_string(), parsed);
        }
    }
    Ok(args)
}

fn str_arg<'a>(args: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn int_arg(args: &Map<String, Value>, key: &str) -> Option<u64> {
    match args.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn ts_micros(ts: &str) -> Option<u128> {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    let secs: u128 = secs.parse().ok()?;
    let mut frac: String = frac.chars().take(6).collect();
    while frac.len() < 6 {
        frac.push('0');
    }
    Some(secs * 1_000_000 + frac.parse::<u128>().ok()?)
}

/// Message content rules shared by chat.postMessage, chat.update and response_url.
fn check_content(args: &Map<String, Value>, require_content: bool) -> Result<(), Reject> {
    let text = args.get("text");
    if let Some(text) = text {
        let Some(text) = text.as_str() else {
            return Err(invalid("invalid_arguments"));
        };
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(invalid("msg_too_long"));
        }
    }
    let blocks = args.get("blocks");
    if let Some(blocks) = blocks {
        check_blocks(blocks)?;
    }
    let has_text = str_arg(args, "text").is_some();
    let has_blocks = blocks
        .and_then(Value::as_array)
        .is_some_and(|b| !b.is_empty());
    let has_attachments = args
        .get("attachments")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if require_content && !has_text && !has_blocks && !has_attachments {
        return Err(invalid("no_text"));
    }
    if let Some(metadata) = args.get("metadata") {
        let ok = metadata.get("event_type").and_then(Value::as_str).is_some()
            && metadata.get("event_payload").is_none_or(Value::is_object);
        if !ok {
            return Err(invalid("invalid_metadata_format"));
        }
    }
    Ok(())
}

fn check_blocks(blocks: &Value) -> Result<(), Reject> {
    let Some(blocks) = blocks.as_array() else {
        return Err(invalid("invalid_blocks_format"));
    };
    if blocks.len() > MAX_BLOCKS {
        return Err(invalid("invalid_blocks"));
    }
    let mut block_ids = std::collections::HashSet::new();
    for block in blocks {
        let Some(kind) = block.get("type").and_then(Value::as_str) else {
            return Err(invalid("invalid_blocks"));
        };
        if let Some(id) = block.get("block_id").and_then(Value::as_str)
            && (id.len() > 255 || !block_ids.insert(id.to_string()))
        {
            return Err(invalid("invalid_blocks"));
        }
        let text_len = |ptr: &str| {
            block
                .pointer(ptr)
                .and_then(Value::as_str)
                .map_or(0, |t| t.chars().count())
        };
        let too_long = match kind {
            "section" => {
                text_len("/text/text") > 3000
                    || block
                        .get("fields")
                        .and_then(Value::as_array)
                        .is_some_and(|f| {
                            f.len() > 10
                                || f.iter().any(|x| {
                                    x.get("text")
                                        .and_then(Value::as_str)
                                        .is_some_and(|t| t.chars().count() > 2000)
                                })
                        })
            }
            "header" => text_len("/text/text") > 150,
            "actions" => block
                .get("elements")
                .and_then(Value::as_array)
                .is_none_or(|e| e.is_empty() || e.len() > 25),
            "context" => block
                .get("elements")
                .and_then(Value::as_array)
                .is_none_or(|e| e.is_empty() || e.len() > 10),
            _ => false,
        };
        if too_long {
            return Err(invalid("invalid_blocks"));
        }
        for element in slack_block_elements(block) {
            if element.get("type").and_then(Value::as_str) == Some("button") {
                let label = element.pointer("/text/text").and_then(Value::as_str);
                let action_id = element.get("action_id").and_then(Value::as_str);
                let value = element.get("value").and_then(Value::as_str);
                if label.is_none_or(|l| l.is_empty() || l.chars().count() > 75)
                    || action_id.is_some_and(|a| a.len() > 255)
                    || value.is_some_and(|v| v.chars().count() > 2000)
                {
                    return Err(invalid("invalid_blocks"));
                }
            }
        }
    }
    Ok(())
}

/// Everything that can make a call fail, without changing state.
fn check(world: &World, method: &str, args: &Map<String, Value>) -> Result<(), Reject> {
    match method {
        "chat.postMessage" => {
            str_arg(args, "channel").ok_or(invalid("channel_not_found"))?;
            check_content(args, true)
        }
        "chat.update" => {
            let channel = str_arg(args, "channel").ok_or(invalid("channel_not_found"))?;
            let ts = str_arg(args, "ts").ok_or(invalid("invalid_arguments"))?;
            check_content(args, false)?;
            world
                .channels
                .get(channel)
                .and_then(|msgs| msgs.iter().find(|m| m["ts"] == ts))
                .ok_or(invalid("message_not_found"))?;
            Ok(())
        }
        "pins.add" => {
            let channel = str_arg(args, "channel").ok_or(invalid("channel_not_found"))?;
            let ts = str_arg(args, "timestamp").ok_or(invalid("invalid_arguments"))?;
            let message = world
                .channels
                .get(channel)
                .and_then(|msgs| msgs.iter().find(|m| m["ts"] == ts))
                .ok_or(invalid("message_not_found"))?;
            if message.get("pinned_to").is_some() {
                return Err(Reject {
                    code: "already_pinned",
                    valid: true,
                });
            }
            Ok(())
        }
        "files.getUploadURLExternal" => {
            str_arg(args, "filename").ok_or(invalid("invalid_arguments"))?;
            int_arg(args, "length")
                .filter(|l| *l > 0)
                .ok_or(invalid("invalid_arguments"))?;
            Ok(())
        }
        "files.completeUploadExternal" => {
            let files = args
                .get("files")
                .and_then(Value::as_array)
                .filter(|f| !f.is_empty())
                .ok_or(invalid("invalid_arguments"))?;
            for file in files {
                let id = file
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or(invalid("invalid_arguments"))?;
                let slot = world.files.get(id).ok_or(invalid("file_not_found"))?;
                if !slot.uploaded {
                    return Err(invalid("file_not_found"));
                }
            }
            if str_arg(args, "channel_id").is_none() && str_arg(args, "channels").is_none() {
                return Err(invalid("invalid_arguments"));
            }
            if let Some(comment) = args.get("initial_comment").and_then(Value::as_str)
                && comment.chars().count() > MAX_TEXT_CHARS
            {
                return Err(invalid("msg_too_long"));
            }
            if let Some(blocks) = args.get("blocks") {
                check_blocks(blocks)?;
            }
            Ok(())
        }
        "conversations.history" => {
            str_arg(args, "channel").ok_or(invalid("channel_not_found"))?;
            if args.contains_key("limit") && int_arg(args, "limit").is_none() {
                return Err(invalid("invalid_limit"));
            }
            for key in ["oldest", "latest"] {
                if let Some(ts) = str_arg(args, key)
                    && ts_micros(ts).is_none()
                {
                    return Err(invalid("invalid_ts_oldest"));
                }
            }
            Ok(())
        }
        "usergroups.users.list" => {
            let group = str_arg(args, "usergroup").ok_or(invalid("invalid_arguments"))?;
            if !world.usergroups.contains_key(group) {
                return Err(Reject {
                    code: "no_such_subteam",
                    valid: true,
                });
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn bot_message(ts: &str, args: &Map<String, Value>) -> Value {
    let mut message = json!({
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": SLACK_APP_ID,
        "team": SLACK_TEAM_ID,
        "ts": ts,
        "text": args.get("text").and_then(Value::as_str).unwrap_or(""),
    });
    for key in ["blocks", "attachments", "metadata", "thread_ts"] {
        if let Some(v) = args.get(key) {
            message[key] = v.clone();
        }
    }
    message
}

/// Perform a call that passed `check`, returning the success reply.
fn apply(world: &mut World, origin: &str, method: &str, args: &Map<String, Value>) -> Value {
    match method {
        "chat.postMessage" => {
            let channel = str_arg(args, "channel").unwrap_or_default().to_string();
            let ts = world.next_ts();
            let message = bot_message(&ts, args);
            world
                .channels
                .entry(channel.clone())
                .or_default()
                .push(message.clone());
            world
                .posts
                .push((channel.clone(), Value::Object(args.clone())));
            json!({ "ok": true, "channel": channel, "ts": ts, "message": message })
        }
        "chat.update" => {
            let channel = str_arg(args, "channel").unwrap_or_default().to_string();
            let ts = str_arg(args, "ts").unwrap_or_default().to_string();
            let now = world.next_ts();
            let message = world
                .find_message(&channel, &ts)
                .expect("checked: message exists");
            for key in ["text", "blocks", "attachments", "metadata"] {
                if let Some(v) = args.get(key) {
                    message[key] = v.clone();
                }
            }
            message["edited"] = json!({ "user": BOT_USER_ID, "ts": now });
            let text = message["text"].clone();
            let mut updated = json!({ "text": text });
            if let Some(blocks) = message.get("blocks") {
                updated["blocks"] = blocks.clone();
            }
            json!({ "ok": true, "channel": channel, "ts": ts, "text": text, "message": updated })
        }
        "pins.add" => {
            let channel = str_arg(args, "channel").unwrap_or_default().to_string();
            let ts = str_arg(args, "timestamp").unwrap_or_default().to_string();
            if let Some(message) = world.find_message(&channel, &ts) {
                message["pinned_to"] = json!([channel]);
            }
            json!({ "ok": true })
        }
        "files.getUploadURLExternal" => {
            world.next_file += 1;
            let file_id = format!("F{}", world.next_file);
            world.files.insert(
                file_id.clone(),
                FileSlot {
                    filename: str_arg(args, "filename").unwrap_or_default().to_string(),
                    length: int_arg(args, "length").unwrap_or_default() as usize,
                    uploaded: false,
                },
            );
            json!({
                "ok": true,
                "upload_url": format!("{origin}/upload/{file_id}"),
                "file_id": file_id,
            })
        }
        "files.completeUploadExternal" => {
            let channel = str_arg(args, "channel_id")
                .or_else(|| str_arg(args, "channels"))
                .and_then(|c| c.split(',').next())
                .unwrap_or_default()
                .to_string();
            let mut files = Vec::new();
            for file in args["files"].as_array().into_iter().flatten() {
                let id = file["id"].as_str().unwrap_or_default();
                let name = world
                    .files
                    .get(id)
                    .map(|s| s.filename.clone())
                    .unwrap_or_default();
                let title = file
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or(&name)
                    .to_string();
                files.push(json!({ "id": id, "name": name, "title": title }));
            }
            // Slack shares the files in the channel as a bot message.
            let ts = world.next_ts();
            let mut share = json!({
                "type": "message",
                "subtype": "file_share",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "ts": ts,
                "text": args.get("initial_comment").and_then(Value::as_str).unwrap_or(""),
                "files": files.clone(),
                "upload": true,
            });
            if let Some(thread) = args.get("thread_ts") {
                share["thread_ts"] = thread.clone();
            }
            world.channels.entry(channel).or_default().push(share);
            json!({ "ok": true, "files": files })
        }
        "conversations.history" => history(world, args),
        "usergroups.users.list" => {
            let group = str_arg(args, "usergroup").unwrap_or_default();
            json!({ "ok": true, "users": world.usergroups.get(group).cloned().unwrap_or_default() })
        }
        "auth.test" => json!({
            "ok": true,
            "url": format!("https://{SLACK_TEAM_DOMAIN}.slack.com/"),
            "team": SLACK_TEAM_DOMAIN,
            "user": "drbot",
            "team_id": SLACK_TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": false,
        }),
        _ => json!({ "ok": true }),
    }
}

/// conversations.history: newest first, `oldest`/`latest` exclusive unless `inclusive`,
/// `limit` (default 100), `cursor` from a previous page's `next_cursor`.
fn history(world: &World, args: &Map<String, Value>) -> Value {
    let channel = str_arg(args, "channel").unwrap_or_default();
    let inclusive = match args.get("inclusive") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        _ => false,
    };
    let oldest = str_arg(args, "oldest").and_then(ts_micros);
    let mut latest = str_arg(args, "latest").and_then(ts_micros);
    let mut latest_inclusive = inclusive;
    if let Some(cursor) = str_arg(args, "cursor").and_then(ts_micros) {
        latest = Some(cursor);
        latest_inclusive = false;
    }
    let limit = int_arg(args, "limit")
        .filter(|l| *l > 0)
        .unwrap_or(100)
        .min(999) as usize;
    let mut matching: Vec<&Value> = world
        .channels
        .get(channel)
        .into_iter()
        .flatten()
        .filter(|m| {
            let Some(ts) = m["ts"].as_str().and_then(ts_micros) else {
                return false;
            };
            let after_oldest = oldest.is_none_or(|o| ts > o || (inclusive && ts == o));
            let before_latest = latest.is_none_or(|l| ts < l || (latest_inclusive && ts == l));
            after_oldest && before_latest && m.get("thread_ts").is_none_or(|t| *t == m["ts"])
        })
        .collect();
    matching.reverse();
    let has_more = matching.len() > limit;
    matching.truncate(limit);
    let next_cursor = if has_more {
        matching
            .last()
            .and_then(|m| m["ts"].as_str())
            .unwrap_or_default()
            .to_string()
    } else {
        String::new()
    };
    json!({
        "ok": true,
        "messages": matching,
        "has_more": has_more,
        "pin_count": 0,
        "response_metadata": { "next_cursor": next_cursor },
    })
}

// ---------------------------------------------------------------------------------------
// upload_url and response_url
// ---------------------------------------------------------------------------------------

fn upload(shared: &Shared, file_id: &str, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    // Raw bytes (what slack-morphism sends) or a multipart form with one file part.
    let bytes = match content_type.as_deref() {
        Some(ct) if ct.starts_with("multipart/form-data") => parse_multipart(ct, body)
            .ok()
            .and_then(|parts| parts.into_iter().find(|p| p.filename.is_some()))
            .map(|p| p.data)
            .unwrap_or_default(),
        _ => body.to_vec(),
    };
    let mut call = Call {
        method: "upload".into(),
        body: json!({ "file_id": file_id, "length": bytes.len(), "content_type": content_type }),
        auth_ok: true,
        valid: true,
        answered: 200,
        error: None,
        headers: header_pairs(headers),
        at: Instant::now(),
    };
    let mut world = shared.world.lock().unwrap();
    let Some(slot) = world
        .files
        .get(file_id)
        .map(|s| (s.filename.clone(), s.length))
    else {
        drop(world);
        call.valid = false;
        call.error = Some("unknown file id".into());
        call.answered = 404;
        shared.recorder.push(call);
        return Some(text_response(404, "Not Found"));
    };
    let (filename, length) = slot;
    if length != bytes.len() {
        // Slack would store a file of the wrong size; the caller declared another length.
        call.valid = false;
        call.error = Some(format!(
            "declared length {} but received {} bytes",
            length,
            bytes.len()
        ));
    }
    let failure = world.pop_failure("upload");
    if matches!(failure, None | Some(Failure::ReplyAfterApplying)) {
        world.files.get_mut(file_id).expect("slot").uploaded = true;
        world.uploads.push(Upload {
            file_id: file_id.to_string(),
            filename,
            content_type,
            bytes: bytes.clone(),
        });
    }
    drop(world);
    match failure {
        None => {
            shared.recorder.push(call);
            Some(text_response(200, &format!("OK - {}", bytes.len())))
        }
        Some(Failure::ReplyAfterApplying) => Some(finish(shared, call, server_error())),
        Some(failure) => fail(shared, call, failure),
    }
}

fn response_url(shared: &Shared, id: &str, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let mut call = Call {
        method: "response".into(),
        body: Value::Null,
        auth_ok: true,
        valid: true,
        answered: 200,
        error: None,
        headers: header_pairs(headers),
        at: Instant::now(),
    };
    let parsed = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        _ => {
            call.body = Value::String(String::from_utf8_lossy(body).into_owned());
            call.valid = false;
            return Some(refuse(shared, call, 400, "invalid_payload"));
        }
    };
    call.body = Value::Object(parsed.clone());
    let deleting = parsed.get("delete_original") == Some(&Value::Bool(true));
    if let Err(reject) = check_content(&parsed, !deleting) {
        call.valid = reject.valid;
        return Some(refuse(shared, call, 400, reject.code));
    }
    if let Some(kind) = parsed.get("response_type")
        && kind != "in_channel"
        && kind != "ephemeral"
    {
        call.valid = false;
        return Some(refuse(shared, call, 400, "invalid_response_type"));
    }
    let mut world = shared.world.lock().unwrap();
    let used = world.responses.iter().filter(|(i, _)| i == id).count();
    if used >= MAX_RESPONSES_PER_URL {
        drop(world);
        call.valid = false;
        return Some(refuse(shared, call, 404, "used_url"));
    }
    let failure = world.pop_failure("response");
    if matches!(failure, None | Some(Failure::ReplyAfterApplying)) {
        world
            .responses
            .push((id.to_string(), Value::Object(parsed)));
    }
    drop(world);
    match failure {
        None => Some(finish(shared, call, (200, vec![], json!({ "ok": true })))),
        Some(Failure::ReplyAfterApplying) => Some(finish(shared, call, server_error())),
        Some(failure) => fail(shared, call, failure),
    }
}
