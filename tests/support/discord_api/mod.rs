//! A Discord REST (v10) stand-in on 127.0.0.1: serves the routes drbot calls, checks the
//! bot token and Discord's message/command limits, answers with Discord-shaped objects,
//! deduplicates `enforce_nonce` posts like Discord does, records every call and can be
//! scripted to fail.
//!
//! Point drbot at it with `DRBOT__DISCORD__API_URL = DiscordApi::base()` (routes are
//! under `/api/v10`).

#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

pub use super::slack_api::Failure;

use super::http::{
    Incoming, Part, Recorder, Server, bind_local, discord_bot_author, header_pairs, json_response,
    parse_multipart, text_response,
};

mod checks;
mod commands;
mod components;
mod routes;
mod state;

use checks::*;
use commands::*;
use components::*;
use routes::*;
use state::*;

pub const MAX_CONTENT_CHARS: usize = 2000;
pub const MAX_EMBEDS: usize = 10;
pub const MAX_EMBED_TOTAL_CHARS: usize = 6000;
pub const MAX_ACTION_ROWS: usize = 5;
pub const MAX_BUTTONS_PER_ROW: usize = 5;
pub const MAX_CUSTOM_ID_CHARS: usize = 100;
pub const MAX_NONCE_CHARS: usize = 25;
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
const FLAG_SUPPRESS_EMBEDS: u64 = 1 << 2;
const FLAG_EPHEMERAL: u64 = 1 << 6;
const FLAG_SUPPRESS_NOTIFICATIONS: u64 = 1 << 12;
const FLAG_COMPONENTS_V2: u64 = 1 << 15;

#[derive(Clone, Debug)]
pub struct Call {
    /// `"POST /channels/123/messages"`: HTTP method and path below `/api/v10`, real ids.
    pub method: String,
    /// Route template: `create_message`, `edit_message`, `pin_message`, `get_messages`,
    /// `create_followup`, `edit_original`, `edit_followup`, `set_global_commands`,
    /// `set_guild_commands`, `interaction_callback`, or `unknown`.
    pub route: String,
    /// JSON body (for multipart: the `payload_json` part, plus any plain form fields);
    /// for GET the query parameters as strings.
    pub body: Value,
    /// File parts of a multipart request.
    pub files: Vec<Part>,
    pub auth_ok: bool,
    /// False when the request broke Discord's contract (limits, empty message, bad ids...).
    pub valid: bool,
    /// HTTP status sent; 0 while a `Hang` is holding the request.
    pub answered: u16,
    /// A repeated `nonce` with `enforce_nonce: true`: answered with the original message.
    pub deduplicated: bool,
    /// Discord's error message (plus detail) when the answer was an error.
    pub error: Option<String>,
    pub headers: Vec<(String, String)>,
    pub at: Instant,
}

pub struct DiscordApi {
    shared: Arc<Shared>,
    server: Server,
}

struct Shared {
    token: String,
    app_id: String,
    origin: String,
    recorder: Recorder<Call>,
    world: Mutex<World>,
}

#[derive(Default)]
struct World {
    failures: HashMap<String, VecDeque<Failure>>,
    /// Every message, all channels, in creation order.
    messages: Vec<Stored>,
    /// nonce -> index into `messages`.
    nonces: HashMap<String, usize>,
    /// interaction token -> index of its `@original` message.
    originals: HashMap<String, usize>,
    last_snowflake: u64,
    global_commands: Vec<Value>,
    guild_commands: HashMap<String, Vec<Value>>,
    files: Vec<Part>,
    echo_nonce_in_history: bool,
}

struct Stored {
    channel: String,
    message: Value,
    /// Interaction token for follow-ups and `@original`.
    token: Option<String>,
}

/// A refused request: HTTP status, Discord error body, and whether it was the caller's fault.
struct Reject {
    status: u16,
    body: Value,
    valid: bool,
}

fn form_error(field: &str, code: &str, message: &str) -> Reject {
    let mut errors = json!({});
    let mut node = &mut errors;
    for segment in field.split('.') {
        node = node
            .as_object_mut()
            .expect("object")
            .entry(segment)
            .or_insert(json!({}));
    }
    node["_errors"] = json!([{ "code": code, "message": message }]);
    Reject {
        status: 400,
        body: json!({ "code": 50035, "message": "Invalid Form Body", "errors": errors }),
        valid: false,
    }
}

fn api_error(status: u16, code: u64, message: &str) -> Reject {
    Reject {
        status,
        body: json!({ "code": code, "message": message }),
        valid: false,
    }
}

fn unknown_message() -> Reject {
    api_error(404, 10008, "Unknown Message")
}

impl DiscordApi {
    /// Start on 127.0.0.1:0. Must be called inside a tokio runtime.
    pub fn start(expected_token: &str, application_id: &str) -> DiscordApi {
        let listener = bind_local();
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            token: expected_token.to_string(),
            app_id: application_id.to_string(),
            origin,
            recorder: Recorder::new(),
            world: Mutex::new(World::default()),
        });
        let server = Server::stand_in(listener, shared.clone(), 64 * 1024 * 1024, handle);
        DiscordApi { shared, server }
    }

    /// `http://127.0.0.1:PORT` (`DRBOT__DISCORD__API_URL`; routes are under `/api/v10`).
    pub fn base(&self) -> String {
        self.shared.origin.clone()
    }

    /// Queue a failure for the next call of a route template (`create_message`, ...).
    pub fn fail_next(&self, route: &str, failure: Failure) {
        self.world()
            .failures
            .entry(route.to_string())
            .or_default()
            .push_back(failure);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.recorder.all()
    }

    /// Calls of one route template (`create_message`, `edit_original`, ...).
    pub fn calls_to(&self, route: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.route == route)
            .collect()
    }

    /// Messages in `channel` as they stand now (after edits), oldest first, as Discord
    /// message objects. Includes interaction follow-ups and `@original` responses whose
    /// token came from the fixtures (`discord_interaction_token`), ephemeral ones too.
    pub fn messages_in(&self, channel: &str) -> Vec<Value> {
        self.world()
            .messages
            .iter()
            .filter(|m| m.channel == channel)
            .map(|m| m.message.clone())
            .collect()
    }

    /// Messages created through the interaction webhook for `token` (follow-ups and
    /// `@original`), oldest first.
    pub fn interaction_messages(&self, token: &str) -> Vec<Value> {
        self.world()
            .messages
            .iter()
            .filter(|m| m.token.as_deref() == Some(token))
            .map(|m| m.message.clone())
            .collect()
    }

    pub fn message(&self, id: &str) -> Option<Value> {
        self.world()
            .messages
            .iter()
            .find(|m| m.message["id"] == id)
            .map(|m| m.message.clone())
    }

    /// Files attached to successfully created or edited messages, in order.
    pub fn files(&self) -> Vec<Part> {
        self.world().files.clone()
    }

    /// The command set last registered globally (`None`) or for a guild.
    pub fn commands(&self, guild: Option<&str>) -> Vec<Value> {
        let world = self.world();
        match guild {
            None => world.global_commands.clone(),
            Some(g) => world.guild_commands.get(g).cloned().unwrap_or_default(),
        }
    }

    /// Put a message from someone else in a channel (for history reads). Returns its id.
    pub fn add_message(&self, channel: &str, author_id: &str, content: &str) -> String {
        let mut world = self.world();
        let id = world.next_snowflake();
        let mut message = message_object(
            &id,
            channel,
            &Map::new(),
            &[],
            json!({
                "id": author_id,
                "username": format!("user{author_id}"),
                "discriminator": "0",
                "global_name": null,
                "avatar": null,
            }),
        );
        message["content"] = json!(content);
        world.messages.push(Stored {
            channel: channel.to_string(),
            message,
            token: None,
        });
        id
    }

    /// Real Discord does not return `nonce` when messages are fetched (only in the reply
    /// to the create call). Set this to echo it in `GET .../messages` anyway.
    pub fn echo_nonce_in_history(&self, echo: bool) {
        self.world().echo_nonce_in_history = echo;
    }

    /// Forget recorded calls and files. Messages, nonces, commands and queued failures stay.
    pub fn reset(&self) {
        self.world().files.clear();
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
