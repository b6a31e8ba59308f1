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

#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    CreateMessage {
        channel: String,
    },
    GetMessages {
        channel: String,
    },
    EditMessage {
        channel: String,
        id: String,
    },
    PinMessage {
        channel: String,
        id: String,
    },
    CreateFollowup {
        app: String,
        token: String,
    },
    EditOriginal {
        app: String,
        token: String,
    },
    EditFollowup {
        app: String,
        token: String,
        id: String,
    },
    GetCommands {
        app: String,
        guild: Option<String>,
    },
    SetGlobalCommands {
        app: String,
    },
    SetGuildCommands {
        app: String,
        guild: String,
    },
    InteractionCallback {
        id: String,
        token: String,
    },
    Unknown,
}

impl Route {
    fn parse(method: &Method, path: &str) -> Route {
        let Some(rest) = path.strip_prefix("/api/v10/") else {
            return Route::Unknown;
        };
        let segs: Vec<String> = rest.split('/').map(|s| s.replace("%40", "@")).collect();
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        let o = |x: &str| x.to_string();
        match (method.as_str(), s.as_slice()) {
            ("POST", ["channels", c, "messages"]) => Route::CreateMessage { channel: o(c) },
            ("GET", ["channels", c, "messages"]) => Route::GetMessages { channel: o(c) },
            ("PUT", ["channels", c, "pins", id])
            | ("PUT", ["channels", c, "messages", "pins", id]) => Route::PinMessage {
                channel: o(c),
                id: o(id),
            },
            ("PATCH", ["channels", c, "messages", id]) => Route::EditMessage {
                channel: o(c),
                id: o(id),
            },
            ("POST", ["webhooks", app, token]) => Route::CreateFollowup {
                app: o(app),
                token: o(token),
            },
            ("PATCH", ["webhooks", app, token, "messages", "@original"]) => Route::EditOriginal {
                app: o(app),
                token: o(token),
            },
            ("PATCH", ["webhooks", app, token, "messages", id]) => Route::EditFollowup {
                app: o(app),
                token: o(token),
                id: o(id),
            },
            ("GET", ["applications", app, "commands"]) => Route::GetCommands {
                app: o(app),
                guild: None,
            },
            ("GET", ["applications", app, "guilds", g, "commands"]) => Route::GetCommands {
                app: o(app),
                guild: Some(o(g)),
            },
            ("PUT", ["applications", app, "commands"]) => Route::SetGlobalCommands { app: o(app) },
            ("PUT", ["applications", app, "guilds", g, "commands"]) => Route::SetGuildCommands {
                app: o(app),
                guild: o(g),
            },
            ("POST", ["interactions", id, token, "callback"]) => Route::InteractionCallback {
                id: o(id),
                token: o(token),
            },
            _ => Route::Unknown,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Route::CreateMessage { .. } => "create_message",
            Route::GetMessages { .. } => "get_messages",
            Route::EditMessage { .. } => "edit_message",
            Route::PinMessage { .. } => "pin_message",
            Route::CreateFollowup { .. } => "create_followup",
            Route::EditOriginal { .. } => "edit_original",
            Route::EditFollowup { .. } => "edit_followup",
            Route::GetCommands { .. } => "get_commands",
            Route::SetGlobalCommands { .. } => "set_global_commands",
            Route::SetGuildCommands { .. } => "set_guild_commands",
            Route::InteractionCallback { .. } => "interaction_callback",
            Route::Unknown => "unknown",
        }
    }

    /// Bot-token routes; webhook and interaction routes authenticate by their token.
    fn needs_bot_auth(&self) -> bool {
        !matches!(
            self,
            Route::CreateFollowup { .. }
                | Route::EditOriginal { .. }
                | Route::EditFollowup { .. }
                | Route::InteractionCallback { .. }
        )
    }
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

impl World {
    fn next_snowflake(&mut self) -> String {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        let candidate = (now_ms - DISCORD_EPOCH_MS) << 22;
        self.last_snowflake = candidate.max(self.last_snowflake + 1);
        self.last_snowflake.to_string()
    }

    fn pop_failure(&mut self, route: &str) -> Option<Failure> {
        self.failures.get_mut(route)?.pop_front()
    }

    fn index_of(&self, channel: Option<&str>, id: &str) -> Option<usize> {
        self.messages
            .iter()
            .position(|m| m.message["id"] == id && channel.is_none_or(|c| m.channel == c))
    }
}

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

fn is_snowflake(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) && s != "0"
}

/// Channel encoded in a fixture interaction token (`itok_{id}_{channel}`).
fn channel_of_token(token: &str) -> String {
    token
        .strip_prefix("itok_")
        .and_then(|rest| rest.rsplit_once('_'))
        .map(|(_, channel)| channel.to_string())
        .filter(|c| is_snowflake(c))
        .unwrap_or_else(|| "1".to_string())
}

fn attachment_objects(files: &[Part], origin: &str, channel: &str, first_id: u64) -> Vec<Value> {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let id = first_id + i as u64;
            let filename = f.filename.clone().unwrap_or_else(|| "file".into());
            let url = format!("{origin}/attachments/{channel}/{id}/{filename}");
            json!({
                "id": id.to_string(),
                "filename": filename,
                "size": f.data.len(),
                "url": url,
                "proxy_url": url,
                "content_type": f.content_type,
            })
        })
        .collect()
}

/// A Discord message object built from a create body.
fn message_object(
    id: &str,
    channel: &str,
    body: &Map<String, Value>,
    attachments: &[Value],
    author: Value,
) -> Value {
    json!({
        "id": id,
        "type": 0,
        "channel_id": channel,
        "author": author,
        "content": body.get("content").and_then(Value::as_str).unwrap_or(""),
        "embeds": body.get("embeds").cloned().unwrap_or(json!([])),
        "components": body.get("components").cloned().unwrap_or(json!([])),
        "attachments": attachments,
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": false,
        "pinned": false,
        "tts": body.get("tts").cloned().unwrap_or(json!(false)),
        "timestamp": now_iso(),
        "edited_timestamp": null,
        "flags": body.get("flags").cloned().unwrap_or(json!(0)),
    })
}

// ---------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------

async fn handle(shared: Arc<Shared>, (method, uri, headers, body): Incoming) -> Response {
    match respond(&shared, &method, &uri, &headers, &body) {
        Some(response) => response,
        // A scripted `Hang`: hold the request until the stand-in is dropped.
        None => std::future::pending().await,
    }
}

/// Handle one request; `None` means "never answer" (a scripted `Hang`).
fn respond(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let path = uri.path().to_string();
    let route = Route::parse(method, &path);
    let mut call = Call {
        method: format!(
            "{} {}",
            method,
            path.strip_prefix("/api/v10").unwrap_or(&path)
        ),
        route: route.name().to_string(),
        body: Value::Null,
        files: Vec::new(),
        auth_ok: false,
        valid: true,
        answered: 200,
        deduplicated: false,
        error: None,
        headers: header_pairs(headers),
        at: Instant::now(),
    };
    let expected = format!("Bot {}", shared.token);
    let bot_auth = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&expected);
    call.auth_ok = bot_auth || !route.needs_bot_auth();

    if route == Route::Unknown {
        call.valid = false;
        return Some(finish(
            shared,
            call,
            Err(api_error(404, 0, "404: Not Found")),
        ));
    }

    // Body: JSON, multipart (payload_json + files[n]), or the query string for GET.
    let (args, files) = match parse_body(method, uri.query(), headers, body) {
        Ok(parsed) => parsed,
        Err(raw) => {
            call.body = raw;
            call.valid = false;
            return Some(finish(
                shared,
                call,
                Err(api_error(
                    400,
                    50109,
                    "The request body contains invalid JSON.",
                )),
            ));
        }
    };
    call.body = args.clone();
    call.files = files.clone();

    let mut world = shared.world.lock().unwrap();
    let checked = check(&world, &shared.app_id, &route, &args, &files);
    if !call.auth_ok {
        call.valid = checked.as_ref().err().is_none_or(|r| r.valid);
        drop(world);
        return Some(finish(
            shared,
            call,
            Err(api_error(401, 0, "401: Unauthorized")),
        ));
    }
    if let Err(reject) = checked {
        call.valid = reject.valid;
        drop(world);
        return Some(finish(shared, call, Err(reject)));
    }
    match world
        .pop_failure(route.name())
        .filter(|f| *f != Failure::Pass)
    {
        None | Some(Failure::Pass) => {
            let answer = apply(&mut world, shared, &route, &args, &files, &mut call);
            drop(world);
            Some(finish(shared, call, answer))
        }
        Some(Failure::ReplyAfterApplying) => {
            let _ = apply(&mut world, shared, &route, &args, &files, &mut call);
            drop(world);
            Some(finish(shared, call, Err(server_error())))
        }
        Some(Failure::HoldAfterApplying) => {
            let _ = apply(&mut world, shared, &route, &args, &files, &mut call);
            drop(world);
            call.answered = 0;
            call.error = Some("held after applying".into());
            shared.recorder.push(call);
            None
        }
        Some(Failure::Refuse(message)) => {
            drop(world);
            Some(finish(
                shared,
                call,
                Err(Reject {
                    status: 400,
                    body: json!({ "code": 50035, "message": message }),
                    valid: true,
                }),
            ))
        }
        Some(Failure::ServerError) => {
            drop(world);
            Some(finish(shared, call, Err(server_error())))
        }
        Some(Failure::RateLimited { retry_after_secs }) => {
            drop(world);
            call.answered = 429;
            call.error = Some("You are being rate limited.".into());
            shared.recorder.push(call);
            let reset = chrono::Utc::now().timestamp() as u64 + retry_after_secs;
            Some(json_response(
                429,
                &[
                    ("retry-after", retry_after_secs.to_string()),
                    ("x-ratelimit-scope", "user".to_string()),
                    ("x-ratelimit-limit", "5".to_string()),
                    ("x-ratelimit-remaining", "0".to_string()),
                    ("x-ratelimit-reset", reset.to_string()),
                    ("x-ratelimit-reset-after", format!("{retry_after_secs}.000")),
                    ("x-ratelimit-bucket", format!("standin-{}", route.name())),
                ],
                &json!({
                    "message": "You are being rate limited.",
                    "retry_after": retry_after_secs as f64,
                    "global": false,
                }),
            ))
        }
        Some(Failure::Hang) => {
            drop(world);
            call.answered = 0;
            call.error = Some("hang".into());
            shared.recorder.push(call);
            None
        }
    }
}

fn server_error() -> Reject {
    Reject {
        status: 500,
        body: json!({ "code": 0, "message": "500: Internal Server Error" }),
        valid: true,
    }
}

/// Success answers: status and JSON body (`Null` for 204).
type Answer = Result<(u16, Value), Reject>;

fn finish(shared: &Shared, mut call: Call, answer: Answer) -> Response {
    let response = match answer {
        Ok((status, body)) => {
            call.answered = status;
            if body.is_null() {
                text_response(status, "")
            } else {
                json_response(status, &[], &body)
            }
        }
        Err(reject) => {
            call.answered = reject.status;
            let message = reject.body["message"].as_str().unwrap_or("").to_string();
            call.error = Some(match reject.body.get("errors") {
                Some(errors) => format!("{message}: {errors}"),
                None => message,
            });
            json_response(reject.status, &[], &reject.body)
        }
    };
    shared.recorder.push(call);
    response
}

fn parse_body(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Value, Vec<Part>), Value> {
    let raw = || Value::String(String::from_utf8_lossy(body).into_owned());
    if *method == Method::GET {
        let mut args = Map::new();
        for (k, v) in serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
            .unwrap_or_default()
        {
            args.insert(k, Value::String(v));
        }
        return Ok((Value::Object(args), Vec::new()));
    }
    if body.is_empty() {
        return Ok((Value::Null, Vec::new()));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        let parts = parse_multipart(content_type, body).map_err(|_| raw())?;
        let mut args = Map::new();
        let mut files = Vec::new();
        for part in parts {
            if part.filename.is_some() {
                files.push(part);
            } else if part.name == "payload_json" {
                match serde_json::from_slice::<Value>(&part.data) {
                    Ok(Value::Object(map)) => args.extend(map),
                    _ => return Err(raw()),
                }
            } else {
                args.insert(
                    part.name,
                    Value::String(String::from_utf8_lossy(&part.data).into_owned()),
                );
            }
        }
        return Ok((Value::Object(args), files));
    }
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(raw());
    }
    serde_json::from_slice::<Value>(body)
        .map(|v| (v, Vec::new()))
        .map_err(|_| raw())
}

fn check_snowflake(field: &str, value: &str) -> Result<(), Reject> {
    if is_snowflake(value) {
        Ok(())
    } else {
        Err(form_error(
            field,
            "NUMBER_TYPE_COERCE",
            &format!("Value \"{value}\" is not snowflake."),
        ))
    }
}

fn check_app(app: &str, expected: &str, webhook: bool) -> Result<(), Reject> {
    check_snowflake(
        if webhook {
            "webhook_id"
        } else {
            "application_id"
        },
        app,
    )?;
    if app == expected {
        Ok(())
    } else if webhook {
        Err(api_error(404, 10015, "Unknown Webhook"))
    } else {
        Err(api_error(403, 50001, "Missing Access"))
    }
}

fn object(args: &Value) -> Result<&Map<String, Value>, Reject> {
    args.as_object()
        .ok_or_else(|| api_error(400, 50109, "The request body contains invalid JSON."))
}

/// Everything that can refuse a request, without changing state.
fn check(
    world: &World,
    app_id: &str,
    route: &Route,
    args: &Value,
    files: &[Part],
) -> Result<(), Reject> {
    match route {
        Route::CreateMessage { channel } => {
            check_snowflake("channel_id", channel)?;
            check_message(object(args)?, files, true, false)
        }
        Route::GetMessages { channel } => {
            check_snowflake("channel_id", channel)?;
            if let Some(limit) = args.get("limit").and_then(Value::as_str) {
                match limit.parse::<u32>() {
                    Ok(1..=100) => {}
                    _ => {
                        return Err(form_error(
                            "limit",
                            "NUMBER_TYPE_MAX",
                            "Must be between 1 and 100.",
                        ));
                    }
                }
            }
            for key in ["before", "after", "around"] {
                if let Some(v) = args.get(key).and_then(Value::as_str) {
                    check_snowflake(key, v)?;
                }
            }
            Ok(())
        }
        Route::EditMessage { channel, id } => {
            check_snowflake("channel_id", channel)?;
            check_snowflake("message_id", id)?;
            let index = world
                .index_of(Some(channel), id)
                .ok_or_else(unknown_message)?;
            if world.messages[index].message["author"]["id"] != app_id {
                return Err(api_error(
                    403,
                    50005,
                    "Cannot edit a message authored by another user",
                ));
            }
            check_edit(&world.messages[index].message, object(args)?, files, false)
        }
        Route::PinMessage { channel, id } => {
            check_snowflake("channel_id", channel)?;
            check_snowflake("message_id", id)?;
            world
                .index_of(Some(channel), id)
                .ok_or_else(unknown_message)?;
            Ok(())
        }
        Route::CreateFollowup { app, token } => {
            check_app(app, app_id, true)?;
            check_token(token)?;
            check_message(object(args)?, files, true, true)
        }
        Route::EditOriginal { app, token } => {
            check_app(app, app_id, true)?;
            check_token(token)?;
            let current = world
                .originals
                .get(token)
                .map(|&i| world.messages[i].message.clone())
                .unwrap_or_else(
                    || json!({ "content": "", "embeds": [], "components": [], "attachments": [] }),
                );
            check_edit(&current, object(args)?, files, true)
        }
        Route::EditFollowup { app, token, id } => {
            check_app(app, app_id, true)?;
            check_token(token)?;
            check_snowflake("message_id", id)?;
            let index = world
                .index_of(None, id)
                .filter(|&i| world.messages[i].token.as_deref() == Some(token.as_str()))
                .ok_or_else(unknown_message)?;
            check_edit(&world.messages[index].message, object(args)?, files, true)
        }
        Route::GetCommands { app, guild } => {
            check_app(app, app_id, false)?;
            if let Some(g) = guild {
                check_snowflake("guild_id", g)?;
            }
            Ok(())
        }
        Route::SetGlobalCommands { app } => {
            check_app(app, app_id, false)?;
            check_commands(args)
        }
        Route::SetGuildCommands { app, guild } => {
            check_app(app, app_id, false)?;
            check_snowflake("guild_id", guild)?;
            check_commands(args)
        }
        Route::InteractionCallback { id, token } => {
            check_snowflake("interaction_id", id)?;
            check_token(token)?;
            let body = object(args)?;
            match body.get("type").and_then(Value::as_u64) {
                Some(1 | 5 | 6 | 8 | 9 | 12) => Ok(()),
                Some(4 | 7) => match body.get("data").and_then(Value::as_object) {
                    Some(data) => check_message(data, files, false, true),
                    None => Ok(()),
                },
                _ => Err(form_error(
                    "type",
                    "BASE_TYPE_CHOICES",
                    "Value must be one of {1, 4, 5, 6, 7, 8, 9, 12}.",
                )),
            }
        }
        Route::Unknown => Err(api_error(404, 0, "404: Not Found")),
    }
}

fn check_token(token: &str) -> Result<(), Reject> {
    if token.is_empty() {
        Err(api_error(401, 50027, "Invalid Webhook Token"))
    } else {
        Ok(())
    }
}

fn chars(v: Option<&Value>) -> usize {
    v.and_then(Value::as_str).map_or(0, |s| s.chars().count())
}

/// Content, embeds, components, nonce, flags and files of a message create/edit body.
fn check_message(
    body: &Map<String, Value>,
    files: &[Part],
    require_content: bool,
    webhook: bool,
) -> Result<(), Reject> {
    match body.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.chars().count() > MAX_CONTENT_CHARS => {
            return Err(form_error(
                "content",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 2000 or fewer in length.",
            ));
        }
        Some(Value::String(_)) => {}
        Some(_) => {
            return Err(form_error(
                "content",
                "STRING_TYPE_CONVERT",
                "Could not interpret value as string.",
            ));
        }
    }
    if let Some(embeds) = body.get("embeds").filter(|e| !e.is_null()) {
        check_embeds(embeds)?;
    }
    if let Some(components) = body.get("components").filter(|c| !c.is_null()) {
        let v2 = body.get("flags").and_then(Value::as_u64).unwrap_or(0) & FLAG_COMPONENTS_V2 != 0;
        if !v2 {
            check_components(components)?;
        }
    }
    match body.get("nonce") {
        None | Some(Value::Null) | Some(Value::Number(_)) => {}
        Some(Value::String(s)) if s.chars().count() <= MAX_NONCE_CHARS => {}
        Some(Value::String(_)) => {
            return Err(form_error(
                "nonce",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
        Some(_) => {
            return Err(form_error(
                "nonce",
                "BASE_TYPE_BAD_TYPE",
                "Must be a string or integer.",
            ));
        }
    }
    if let Some(flags) = body.get("flags").filter(|f| !f.is_null()) {
        let mut allowed = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2;
        if webhook {
            allowed |= FLAG_EPHEMERAL;
        }
        match flags.as_u64() {
            Some(f) if f & !allowed == 0 => {}
            _ => {
                return Err(form_error(
                    "flags",
                    "MESSAGE_FLAGS_INVALID",
                    "Invalid flags.",
                ));
            }
        }
    }
    if files.len() > 10 {
        return Err(form_error(
            "files",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 10 or fewer in length.",
        ));
    }
    if files.iter().any(|f| f.data.len() > MAX_FILE_BYTES) {
        return Err(api_error(413, 40005, "Request entity too large"));
    }
    if require_content && !has_content(body, files) {
        return Err(api_error(400, 50006, "Cannot send an empty message"));
    }
    Ok(())
}

fn has_content(body: &Map<String, Value>, files: &[Part]) -> bool {
    let non_empty = |key: &str| match body.get(key) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(_)) => true,
        _ => false,
    };
    !files.is_empty()
        || non_empty("content")
        || non_empty("embeds")
        || non_empty("components")
        || non_empty("sticker_ids")
        || non_empty("poll")
}

/// An edit: the body's own rules, then the merged message must not be empty.
fn check_edit(
    current: &Value,
    body: &Map<String, Value>,
    files: &[Part],
    webhook: bool,
) -> Result<(), Reject> {
    check_message(body, files, false, webhook)?;
    let mut merged = current.as_object().cloned().unwrap_or_default();
    merge_edit(&mut merged, body);
    if let Some(Value::Array(attachments)) = body.get("attachments") {
        merged.insert("attachments".into(), Value::Array(attachments.clone()));
    }
    let keeps_attachments = merged
        .get("attachments")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if !keeps_attachments && !has_content(&merged, files) {
        return Err(api_error(400, 50006, "Cannot send an empty message"));
    }
    Ok(())
}

fn merge_edit(message: &mut Map<String, Value>, body: &Map<String, Value>) {
    for key in ["content", "embeds", "components", "flags"] {
        match body.get(key) {
            Some(Value::Null) => {
                let empty = match key {
                    "content" => json!(""),
                    "flags" => json!(0),
                    _ => json!([]),
                };
                message.insert(key.into(), empty);
            }
            Some(v) => {
                message.insert(key.into(), v.clone());
            }
            None => {}
        }
    }
}

fn check_embeds(embeds: &Value) -> Result<(), Reject> {
    let Some(embeds) = embeds.as_array() else {
        return Err(form_error(
            "embeds",
            "BASE_TYPE_BAD_TYPE",
            "Must be an array.",
        ));
    };
    if embeds.len() > MAX_EMBEDS {
        return Err(form_error(
            "embeds",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 10 or fewer in length.",
        ));
    }
    let mut total = 0;
    for (i, embed) in embeds.iter().enumerate() {
        let field = |name: &str| format!("embeds.{i}.{name}");
        let limit = |name: &str, value: Option<&Value>, max: usize| {
            if chars(value) > max {
                Err(form_error(
                    &field(name),
                    "BASE_TYPE_MAX_LENGTH",
                    &format!("Must be {max} or fewer in length."),
                ))
            } else {
                Ok(chars(value))
            }
        };
        total += limit("title", embed.get("title"), 256)?;
        total += limit("description", embed.get("description"), 4096)?;
        total += limit("footer", embed.pointer("/footer/text"), 2048)?;
        total += limit("author", embed.pointer("/author/name"), 256)?;
        let fields = embed
            .get("fields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if fields.len() > 25 {
            return Err(form_error(
                &field("fields"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
        for f in &fields {
            let name = chars(f.get("name"));
            let value = chars(f.get("value"));
            if name == 0 || name > 256 || value == 0 || value > 1024 {
                return Err(form_error(
                    &field("fields"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Field name must be 1-256 and value 1-1024 in length.",
                ));
            }
            total += name + value;
        }
    }
    if total > MAX_EMBED_TOTAL_CHARS {
        return Err(form_error(
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000",
        ));
    }
    Ok(())
}

fn check_components(components: &Value) -> Result<(), Reject> {
    let Some(rows) = components.as_array() else {
        return Err(form_error(
            "components",
            "BASE_TYPE_BAD_TYPE",
            "Must be an array.",
        ));
    };
    if rows.len() > MAX_ACTION_ROWS {
        return Err(form_error(
            "components",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 5 or fewer in length.",
        ));
    }
    let mut custom_ids = HashSet::new();
    for (r, row) in rows.iter().enumerate() {
        let at = |rest: &str| format!("components.{r}{rest}");
        if row.get("type").and_then(Value::as_u64) != Some(1) {
            return Err(form_error(
                &at(".type"),
                "COMPONENT_LAYOUT_INVALID",
                "Top-level components must be action rows (type 1).",
            ));
        }
        let children = row
            .get("components")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                form_error(
                    &at(".components"),
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                )
            })?;
        if children.len() > MAX_BUTTONS_PER_ROW {
            return Err(form_error(
                &at(".components"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 5 or fewer in length.",
            ));
        }
        for (c, child) in children.iter().enumerate() {
            let at = |rest: &str| format!("components.{r}.components.{c}{rest}");
            let custom_id = child.get("custom_id").and_then(Value::as_str);
            if let Some(id) = custom_id {
                if id.is_empty() || id.chars().count() > MAX_CUSTOM_ID_CHARS {
                    return Err(form_error(
                        &at(".custom_id"),
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    ));
                }
                if !custom_ids.insert(id.to_string()) {
                    return Err(form_error(
                        &at(".custom_id"),
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    ));
                }
            }
            match child.get("type").and_then(Value::as_u64) {
                Some(2) => {
                    let style = child.get("style").and_then(Value::as_u64);
                    match style {
                        Some(1..=4) if custom_id.is_none() => {
                            return Err(form_error(
                                &at(".custom_id"),
                                "BASE_TYPE_REQUIRED",
                                "This field is required",
                            ));
                        }
                        Some(1..=4) => {}
                        Some(5)
                            if child.get("url").and_then(Value::as_str).is_none()
                                || custom_id.is_some() =>
                        {
                            return Err(form_error(
                                &at(".url"),
                                "BUTTON_COMPONENT_URL_REQUIRED",
                                "A link button needs a url and no custom_id.",
                            ));
                        }
                        Some(5 | 6) => {}
                        _ => {
                            return Err(form_error(
                                &at(".style"),
                                "BASE_TYPE_CHOICES",
                                "Value must be one of {1, 2, 3, 4, 5, 6}.",
                            ));
                        }
                    }
                    let label = chars(child.get("label"));
                    if label > 80 {
                        return Err(form_error(
                            &at(".label"),
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 80 or fewer in length.",
                        ));
                    }
                    if label == 0 && child.get("emoji").is_none() && style != Some(6) {
                        return Err(form_error(
                            &at(".label"),
                            "BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED",
                            "A button needs a label or an emoji.",
                        ));
                    }
                }
                Some(3 | 5..=8) => {
                    if custom_id.is_none() {
                        return Err(form_error(
                            &at(".custom_id"),
                            "BASE_TYPE_REQUIRED",
                            "This field is required",
                        ));
                    }
                    if children.len() > 1 {
                        return Err(form_error(
                            &at(""),
                            "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                            "A select menu must be alone in its action row.",
                        ));
                    }
                }
                _ => {
                    return Err(form_error(
                        &at(".type"),
                        "COMPONENT_TYPE_INVALID",
                        "Invalid component type for an action row.",
                    ));
                }
            }
        }
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=32).contains(&n)
        && name.chars().all(|c| {
            (c.is_alphanumeric() && !c.is_uppercase()) || c == '-' || c == '_' || c == '\''
        })
}

fn check_commands(commands: &Value) -> Result<(), Reject> {
    let Some(commands) = commands.as_array() else {
        return Err(form_error("_", "BASE_TYPE_BAD_TYPE", "Must be an array."));
    };
    let mut seen = HashSet::new();
    let chat_input = commands
        .iter()
        .filter(|c| c.get("type").and_then(Value::as_u64).unwrap_or(1) == 1)
        .count();
    if chat_input > 100 {
        return Err(api_error(
            400,
            30032,
            "Maximum number of application commands reached (100)",
        ));
    }
    for (i, command) in commands.iter().enumerate() {
        let kind = command.get("type").and_then(Value::as_u64).unwrap_or(1);
        let name = command.get("name").and_then(Value::as_str).unwrap_or("");
        if kind == 1 && !valid_name(name) || name.is_empty() || name.chars().count() > 32 {
            return Err(form_error(
                &format!("{i}.name"),
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            ));
        }
        if !seen.insert((kind, name.to_string())) {
            return Err(form_error(
                &format!("{i}.name"),
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                "Application command names must be unique",
            ));
        }
        if kind == 1 {
            let description = chars(command.get("description"));
            if !(1..=100).contains(&description) {
                return Err(form_error(
                    &format!("{i}.description"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                ));
            }
        }
        let mut total = name.chars().count() + chars(command.get("description"));
        if let Some(options) = command.get("options").filter(|o| !o.is_null()) {
            total += check_options(options, &format!("{i}.options"), 0)?;
        }
        if total > 8000 {
            return Err(api_error(400, 50035, "Command exceeds maximum size (8000)"));
        }
    }
    Ok(())
}

/// Returns the characters counted toward the 8000-character command limit.
fn check_options(options: &Value, at: &str, depth: u8) -> Result<usize, Reject> {
    let Some(options) = options.as_array() else {
        return Err(form_error(at, "BASE_TYPE_BAD_TYPE", "Must be an array."));
    };
    if options.len() > 25 {
        return Err(form_error(
            at,
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.",
        ));
    }
    let mut names = HashSet::new();
    let mut optional_seen = false;
    let mut total = 0;
    for (i, option) in options.iter().enumerate() {
        let here = format!("{at}.{i}");
        let kind = option.get("type").and_then(Value::as_u64).unwrap_or(0);
        let name = option.get("name").and_then(Value::as_str).unwrap_or("");
        if !(1..=11).contains(&kind) {
            return Err(form_error(
                &format!("{here}.type"),
                "BASE_TYPE_CHOICES",
                "Value must be between 1 and 11.",
            ));
        }
        if !valid_name(name) {
            return Err(form_error(
                &format!("{here}.name"),
                "APPLICATION_COMMAND_INVALID_NAME",
                "Option name is invalid",
            ));
        }
        if !names.insert(name.to_string()) {
            return Err(form_error(
                &format!("{here}.name"),
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            ));
        }
        let description = chars(option.get("description"));
        if !(1..=100).contains(&description) {
            return Err(form_error(
                &format!("{here}.description"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            ));
        }
        total += name.chars().count() + description;
        let nested = option.get("options").filter(|o| !o.is_null());
        match kind {
            1 | 2 => {
                // Group (2) only at the top, holding subcommands; subcommand (1) holds values.
                if (kind == 2 && depth > 0) || (kind == 1 && depth > 1) {
                    return Err(form_error(
                        &format!("{here}.type"),
                        "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                        "Subcommands nest one level only",
                    ));
                }
                if let Some(nested) = nested {
                    if kind == 2
                        && nested.as_array().is_some_and(|n| {
                            n.iter()
                                .any(|o| o.get("type").and_then(Value::as_u64) != Some(1))
                        })
                    {
                        return Err(form_error(
                            &format!("{here}.options"),
                            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                            "A subcommand group holds subcommands only",
                        ));
                    }
                    if kind == 1
                        && nested.as_array().is_some_and(|n| {
                            n.iter().any(|o| {
                                matches!(o.get("type").and_then(Value::as_u64), Some(1 | 2))
                            })
                        })
                    {
                        return Err(form_error(
                            &format!("{here}.options"),
                            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                            "A subcommand cannot hold subcommands",
                        ));
                    }
                    total += check_options(nested, &format!("{here}.options"), depth + 1)?;
                }
            }
            _ => {
                let required = option
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if required && optional_seen {
                    return Err(form_error(
                        &format!("{here}.required"),
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    ));
                }
                optional_seen |= !required;
                if let Some(choices) = option.get("choices").and_then(Value::as_array) {
                    if choices.len() > 25 {
                        return Err(form_error(
                            &format!("{here}.choices"),
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 25 or fewer in length.",
                        ));
                    }
                    for choice in choices {
                        let value_len = match choice.get("value") {
                            Some(Value::String(s)) => s.chars().count(),
                            Some(v) => v.to_string().len(),
                            None => 0,
                        };
                        let choice_name = chars(choice.get("name"));
                        if !(1..=100).contains(&choice_name) || value_len > 100 {
                            return Err(form_error(
                                &format!("{here}.choices"),
                                "BASE_TYPE_BAD_LENGTH",
                                "Choice name and value must be 1-100 in length.",
                            ));
                        }
                        total += choice_name + value_len;
                    }
                }
            }
        }
    }
    Ok(total)
}

/// Perform a request that passed `check`; returns the success answer.
fn apply(
    world: &mut World,
    shared: &Shared,
    route: &Route,
    args: &Value,
    files: &[Part],
    call: &mut Call,
) -> Answer {
    let empty = Map::new();
    let body = args.as_object().unwrap_or(&empty);
    match route {
        Route::CreateMessage { channel } => {
            let nonce = body.get("nonce").filter(|n| !n.is_null()).map(|n| match n {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            let enforce = body.get("enforce_nonce") == Some(&Value::Bool(true));
            if let Some(nonce) = &nonce
                && enforce
                && let Some(&index) = world.nonces.get(nonce)
            {
                call.deduplicated = true;
                return Ok((200, world.messages[index].message.clone()));
            }
            let message = create(world, shared, channel, body, files, None);
            if let Some(nonce) = nonce {
                world.nonces.insert(nonce, world.messages.len() - 1);
            }
            Ok((200, message))
        }
        Route::GetMessages { channel } => {
            let limit = body
                .get("limit")
                .and_then(Value::as_str)
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(50);
            let id_of = |key: &str| {
                body.get(key)
                    .and_then(Value::as_str)
                    .and_then(|v| v.parse::<u64>().ok())
            };
            let (before, after) = (id_of("before"), id_of("after"));
            let mut found: Vec<Value> = world
                .messages
                .iter()
                .filter(|m| m.channel == *channel)
                .filter(|m| m.message["flags"].as_u64().unwrap_or(0) & FLAG_EPHEMERAL == 0)
                .filter(|m| {
                    let id: u64 = m.message["id"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    before.is_none_or(|b| id < b) && after.is_none_or(|a| id > a)
                })
                .map(|m| {
                    let mut message = m.message.clone();
                    if !world.echo_nonce_in_history
                        && let Some(map) = message.as_object_mut()
                    {
                        map.remove("nonce");
                    }
                    message
                })
                .collect();
            found.reverse();
            if after.is_some() && before.is_none() {
                // Discord pages `after` from the oldest side.
                let skip = found.len().saturating_sub(limit);
                found.drain(..skip);
            } else {
                found.truncate(limit);
            }
            Ok((200, Value::Array(found)))
        }
        Route::EditMessage { channel, id } => {
            let index = world.index_of(Some(channel), id).expect("checked");
            Ok((200, edit(world, shared, index, body, files)))
        }
        Route::PinMessage { channel, id } => {
            let index = world.index_of(Some(channel), id).expect("checked");
            world.messages[index].message["pinned"] = json!(true);
            Ok((204, Value::Null))
        }
        Route::CreateFollowup { token, .. } => {
            let channel = channel_of_token(token);
            let mut message = create(world, shared, &channel, body, files, Some(token));
            if let Some(map) = message.as_object_mut() {
                map.remove("nonce");
            }
            Ok((200, message))
        }
        Route::EditOriginal { token, .. } => {
            let index = match world.originals.get(token) {
                Some(&i) => i,
                None => {
                    let channel = channel_of_token(token);
                    create(world, shared, &channel, &Map::new(), &[], Some(token));
                    let i = world.messages.len() - 1;
                    world.originals.insert(token.clone(), i);
                    i
                }
            };
            Ok((200, edit(world, shared, index, body, files)))
        }
        Route::EditFollowup { id, .. } => {
            let index = world.index_of(None, id).expect("checked");
            Ok((200, edit(world, shared, index, body, files)))
        }
        Route::GetCommands { guild, .. } => {
            let list = match guild {
                None => world.global_commands.clone(),
                Some(g) => world.guild_commands.get(g).cloned().unwrap_or_default(),
            };
            Ok((200, Value::Array(list)))
        }
        Route::SetGlobalCommands { .. } | Route::SetGuildCommands { .. } => {
            let guild = match route {
                Route::SetGuildCommands { guild, .. } => Some(guild.clone()),
                _ => None,
            };
            let mut registered = Vec::new();
            for command in args.as_array().into_iter().flatten() {
                let mut c = command.clone();
                c["id"] = json!(world.next_snowflake());
                c["application_id"] = json!(shared.app_id);
                c["version"] = json!(world.next_snowflake());
                if c.get("type").is_none() {
                    c["type"] = json!(1);
                }
                if c.get("default_member_permissions").is_none() {
                    c["default_member_permissions"] = Value::Null;
                }
                c["nsfw"] = c.get("nsfw").cloned().unwrap_or(json!(false));
                if let Some(g) = &guild {
                    c["guild_id"] = json!(g);
                }
                registered.push(c);
            }
            match guild {
                Some(g) => {
                    world.guild_commands.insert(g, registered.clone());
                }
                None => world.global_commands = registered.clone(),
            }
            Ok((200, Value::Array(registered)))
        }
        Route::InteractionCallback { .. } => Ok((204, Value::Null)),
        Route::Unknown => Err(api_error(404, 0, "404: Not Found")),
    }
}

fn create(
    world: &mut World,
    shared: &Shared,
    channel: &str,
    body: &Map<String, Value>,
    files: &[Part],
    token: Option<&str>,
) -> Value {
    let id = world.next_snowflake();
    let first_attachment: u64 = world.next_snowflake().parse().expect("snowflake");
    for _ in 1..files.len() {
        world.next_snowflake();
    }
    let attachments = attachment_objects(files, &shared.origin, channel, first_attachment);
    let mut message = message_object(
        &id,
        channel,
        body,
        &attachments,
        discord_bot_author(&shared.app_id),
    );
    message["application_id"] = json!(shared.app_id);
    if token.is_some() {
        message["webhook_id"] = json!(shared.app_id);
    }
    if let Some(nonce) = body.get("nonce").filter(|n| !n.is_null()) {
        message["nonce"] = nonce.clone();
    }
    world.files.extend(files.iter().cloned());
    world.messages.push(Stored {
        channel: channel.to_string(),
        message: message.clone(),
        token: token.map(String::from),
    });
    message
}

fn edit(
    world: &mut World,
    shared: &Shared,
    index: usize,
    body: &Map<String, Value>,
    files: &[Part],
) -> Value {
    let channel = world.messages[index].channel.clone();
    let first_attachment: u64 = world.next_snowflake().parse().expect("snowflake");
    for _ in 1..files.len() {
        world.next_snowflake();
    }
    let new_attachments = attachment_objects(files, &shared.origin, &channel, first_attachment);
    world.files.extend(files.iter().cloned());
    let stored = &mut world.messages[index].message;
    let map = stored.as_object_mut().expect("message object");
    merge_edit(map, body);
    // `attachments` in an edit lists the existing attachments to keep.
    if let Some(Value::Array(keep)) = body.get("attachments") {
        let keep_ids: HashSet<String> = keep
            .iter()
            .filter_map(|a| a.get("id"))
            .map(|id| match id {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let kept: Vec<Value> = map
            .get("attachments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|a| a["id"].as_str().is_some_and(|id| keep_ids.contains(id)))
            .cloned()
            .collect();
        map.insert("attachments".into(), Value::Array(kept));
    }
    if let Some(Value::Array(attachments)) = map.get_mut("attachments") {
        attachments.extend(new_attachments);
    }
    map.insert("edited_timestamp".into(), json!(now_iso()));
    let mut reply = stored.clone();
    if let Some(map) = reply.as_object_mut() {
        map.remove("nonce");
    }
    reply
}
