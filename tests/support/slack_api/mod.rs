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

mod checks;
mod methods;
mod routes;
mod urls;

use checks::*;
use methods::*;
use routes::*;
use urls::*;

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
