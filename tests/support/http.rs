//! Test-side HTTP: a plain-http client, Slack and Discord request signing, webhook
//! fixtures shaped like what the platforms really send, and the small server loop the
//! stand-ins run on.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

/// Safety net for a request the server under test never answers.
const CLIENT_PATIENCE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Fixture identities
// ---------------------------------------------------------------------------------------

/// Workspace the Slack fixtures come from (also what `auth.test` reports).
pub const SLACK_TEAM_ID: &str = "T1";
pub const SLACK_TEAM_DOMAIN: &str = "drbot-test";
/// Slack app the fixtures are addressed to.
pub const SLACK_APP_ID: &str = "A1";
/// The legacy verification token Slack still puts in every payload (drbot must not rely on it).
pub const SLACK_VERIFICATION_TOKEN: &str = "legacy-verification-token";

/// Discord application the fixtures are addressed to; pass it to `DiscordApi::start`.
pub const DISCORD_APPLICATION_ID: &str = "1300000000000000001";
/// Guild used by `discord_component` (commands take the guild as a parameter).
pub const DISCORD_GUILD_ID: &str = "1300000000000000002";
/// Id of the registered `/dr` command as Discord reports it in `data.id`.
pub const DISCORD_COMMAND_ID: &str = "1300000000000000003";
/// Permission bits of an ordinary member (view, send, read history, use commands, ...).
pub const DISCORD_MEMBER_PERMISSIONS: &str = "2248473465835073";

// ---------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON; panics (showing the body) if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "response body is not JSON ({err}); status {}, body: {}",
                self.status,
                self.text()
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Any method; `Err` on transport failure (refused, reset, no answer within 60 s).
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: impl Into<Vec<u8>>,
) -> Result<Response, String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http::<Full<Bytes>>();
    let mut builder = hyper::Request::builder()
        .method(
            hyper::Method::from_bytes(method.as_bytes())
                .map_err(|e| format!("bad method {method}: {e}"))?,
        )
        .uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(body.into())))
        .map_err(|e| format!("bad request to {url}: {e}"))?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("{method} {url}: {e:?}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{method} {url}: reading body: {e}"))?
            .to_bytes()
            .to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    };
    tokio::time::timeout(CLIENT_PATIENCE, exchange)
        .await
        .map_err(|_| format!("{method} {url}: no answer within {CLIENT_PATIENCE:?}"))?
}

/// Any method; panics on transport failure.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: impl Into<Vec<u8>>,
) -> Response {
    send(method, url, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

pub async fn post(url: &str, headers: &[(&str, String)], body: impl Into<Vec<u8>>) -> Response {
    request("POST", url, headers, body).await
}

pub async fn get(url: &str, headers: &[(&str, String)]) -> Response {
    request("GET", url, headers, Vec::new()).await
}

/// Seconds since the Unix epoch (what both platforms put in their timestamp headers).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------
// Slack
// ---------------------------------------------------------------------------------------

/// `v0=` + hex(HMAC-SHA256(secret, "v0:{timestamp}:" + body)).
pub fn slack_signature(secret: &str, timestamp: i64, body: impl AsRef<[u8]>) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body.as_ref());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Headers Slack sends with a form-encoded request (slash command or interaction).
pub fn slack_signed_headers(
    secret: &str,
    timestamp: i64,
    body: impl AsRef<[u8]>,
) -> Vec<(&'static str, String)> {
    vec![
        (
            "Content-Type",
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("X-Slack-Request-Timestamp", timestamp.to_string()),
        (
            "X-Slack-Signature",
            slack_signature(secret, timestamp, body),
        ),
    ]
}

/// `application/x-www-form-urlencoded` encoding of `fields`, in order.
pub fn slack_form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).expect("form encoding")
}

/// The form body Slack posts for `/dr {text}`. `response_url` is where delayed replies
/// go: use `SlackApi::response_url(id)` so the stand-in records them.
pub fn slack_command_body(
    text: &str,
    channel_id: &str,
    user_id: &str,
    trigger_id: &str,
    response_url: &str,
) -> String {
    let channel_name = format!("incident-{}", channel_id.to_lowercase());
    let user_name = user_id.to_lowercase();
    slack_form(&[
        ("token", SLACK_VERIFICATION_TOKEN),
        ("team_id", SLACK_TEAM_ID),
        ("team_domain", SLACK_TEAM_DOMAIN),
        ("channel_id", channel_id),
        ("channel_name", &channel_name),
        ("user_id", user_id),
        ("user_name", &user_name),
        ("command", "/dr"),
        ("text", text),
        ("api_app_id", SLACK_APP_ID),
        ("is_enterprise_install", "false"),
        ("response_url", response_url),
        ("trigger_id", trigger_id),
    ])
}

static TRIGGERS: AtomicU64 = AtomicU64::new(1);

/// A trigger id in Slack's shape (`<digits>.<digits>.<hex>`), unique per call.
pub fn slack_trigger_id() -> String {
    let n = TRIGGERS.fetch_add(1, Ordering::Relaxed);
    format!("{}.{}.{:032x}", 7_000_000_000u64 + n, 1_000_000 + n, n)
}

/// The JSON Slack wraps in `payload=` when a user clicks a button (`block_actions`).
/// `message` is the message as Slack would include it (e.g. `SlackApi::message`); when
/// given, `block_id` and the button label are taken from the button with `action_id`.
pub fn slack_block_action_payload(
    user_id: &str,
    channel_id: &str,
    message_ts: &str,
    action_id: &str,
    value: &str,
    response_url: &str,
    message: Option<&Value>,
) -> Value {
    let (block_id, label) = message
        .and_then(|m| find_slack_button(m, action_id))
        .unwrap_or_else(|| ("actions".to_string(), action_id.to_string()));
    let user_name = user_id.to_lowercase();
    let mut payload = json!({
        "type": "block_actions",
        "user": {
            "id": user_id,
            "username": user_name,
            "name": user_name,
            "team_id": SLACK_TEAM_ID,
        },
        "api_app_id": SLACK_APP_ID,
        "token": SLACK_VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": false,
        },
        "trigger_id": slack_trigger_id(),
        "team": { "id": SLACK_TEAM_ID, "domain": SLACK_TEAM_DOMAIN },
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {
            "id": channel_id,
            "name": format!("incident-{}", channel_id.to_lowercase()),
        },
        "state": { "values": {} },
        "response_url": response_url,
        "actions": [{
            "type": "button",
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "text": { "type": "plain_text", "text": label, "emoji": true },
            "action_ts": format!("{}.{:06}", unix_now(), TRIGGERS.load(Ordering::Relaxed) % 1_000_000),
        }],
    });
    if let Some(message) = message {
        payload["message"] = message.clone();
    }
    payload
}

/// `payload=<urlencoded JSON>`: the form body of an interaction, such as a
/// [`slack_block_action_payload`].
pub fn slack_interaction_body(payload: &Value) -> String {
    slack_form(&[("payload", &payload.to_string())])
}

/// The elements of a Slack block, its `accessory` included.
pub(crate) fn slack_block_elements(block: &Value) -> impl Iterator<Item = &Value> {
    block
        .get("elements")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(block.get("accessory"))
}

fn find_slack_button(message: &Value, action_id: &str) -> Option<(String, String)> {
    for block in message.get("blocks")?.as_array()? {
        for element in slack_block_elements(block) {
            if element.get("action_id").and_then(Value::as_str) == Some(action_id) {
                let block_id = block
                    .get("block_id")
                    .and_then(Value::as_str)
                    .unwrap_or("actions")
                    .to_string();
                let label = element
                    .pointer("/text/text")
                    .and_then(Value::as_str)
                    .unwrap_or(action_id)
                    .to_string();
                return Some((block_id, label));
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Discord
// ---------------------------------------------------------------------------------------

/// drbot as the author of the messages it posts as application `app_id`.
pub fn discord_bot_author(app_id: &str) -> Value {
    json!({
        "id": app_id,
        "username": "drbot",
        "discriminator": "0000",
        "global_name": null,
        "avatar": null,
        "bot": true,
        "public_flags": 0,
    })
}

/// A signing key from a fixed seed and its public key as hex (the application public key).
pub fn discord_keypair(seed: [u8; 32]) -> (ed25519_dalek::SigningKey, String) {
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = hex::encode(key.verifying_key().to_bytes());
    (key, public)
}

/// Headers Discord sends with an interaction: Ed25519 over `timestamp ‖ body`.
pub fn discord_signed_headers(
    key: &ed25519_dalek::SigningKey,
    timestamp: i64,
    body: impl AsRef<[u8]>,
) -> Vec<(&'static str, String)> {
    use ed25519_dalek::Signer;
    let ts = timestamp.to_string();
    let mut signed = ts.clone().into_bytes();
    signed.extend_from_slice(body.as_ref());
    let signature = key.sign(&signed);
    vec![
        ("Content-Type", "application/json".to_string()),
        ("X-Signature-Ed25519", hex::encode(signature.to_bytes())),
        ("X-Signature-Timestamp", ts),
    ]
}

/// The PING Discord sends when the interactions endpoint URL is saved.
pub fn discord_ping() -> String {
    r#"{"id":"1","application_id":"2","type":1,"token":"t","version":1}"#.to_string()
}

/// The interaction token the fixtures use for interaction `id` in `channel_id`. The
/// Discord stand-in reads the channel back out of it, so follow-ups and `@original`
/// edits show up in `DiscordApi::messages_in(channel_id)`.
pub fn discord_interaction_token(id: &str, channel_id: &str) -> String {
    format!("itok_{id}_{channel_id}")
}

fn discord_user(user_id: &str) -> Value {
    json!({
        "id": user_id,
        "username": format!("user{user_id}"),
        "discriminator": "0",
        "global_name": format!("User {user_id}"),
        "avatar": null,
        "public_flags": 0,
        "flags": 0,
        "avatar_decoration_data": null,
        "collectibles": null,
        "clan": null,
        "primary_guild": null,
    })
}

fn discord_guild_interaction(
    kind: u8,
    id: &str,
    channel_id: &str,
    user_id: &str,
    roles: &[&str],
    guild_id: &str,
) -> Value {
    json!({
        "id": id,
        "application_id": DISCORD_APPLICATION_ID,
        "type": kind,
        "token": discord_interaction_token(id, channel_id),
        "version": 1,
        "guild_id": guild_id,
        "guild": { "id": guild_id, "locale": "en-US", "features": [] },
        "channel_id": channel_id,
        "channel": {
            "id": channel_id,
            "type": 0,
            "guild_id": guild_id,
            "name": format!("incident-{channel_id}"),
            "position": 0,
            "flags": 0,
            "parent_id": null,
            "topic": null,
            "nsfw": false,
            "last_message_id": null,
            "rate_limit_per_user": 0,
            "permissions": DISCORD_MEMBER_PERMISSIONS,
        },
        "member": {
            "user": discord_user(user_id),
            "roles": roles,
            "permissions": DISCORD_MEMBER_PERMISSIONS,
            "joined_at": "2024-01-02T03:04:05.000000+00:00",
            "premium_since": null,
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "nick": null,
            "avatar": null,
            "banner": null,
            "communication_disabled_until": null,
            "unusual_dm_activity_until": null,
        },
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "entitlement_sku_ids": [],
        "app_permissions": DISCORD_MEMBER_PERMISSIONS,
        "authorizing_integration_owners": { "0": guild_id },
        "context": 0,
        "attachment_size_limit": 10485760,
    })
}

/// A guild APPLICATION_COMMAND (type 2) interaction for `/dr`, as Discord sends it.
/// Ids must be snowflakes (digits). `options` is `data.options` (an array; `Null` omits it),
/// e.g. `json!([{"name":"status","type":1,"options":[{"name":"incident","type":3,"value":"INC-1"}]}])`.
pub fn discord_command(
    id: &str,
    channel_id: &str,
    user_id: &str,
    roles: &[&str],
    guild_id: &str,
    options: Value,
) -> String {
    let mut interaction = discord_guild_interaction(2, id, channel_id, user_id, roles, guild_id);
    let mut data = json!({
        "id": DISCORD_COMMAND_ID,
        "name": "dr",
        "type": 1,
        "guild_id": guild_id,
    });
    if !options.is_null() {
        data["options"] = options;
    }
    interaction["data"] = data;
    interaction.to_string()
}

/// A MESSAGE_COMPONENT (type 3) interaction: a click on the button `custom_id` of the
/// bot's message `message_id` in `channel_id`, from guild [`DISCORD_GUILD_ID`].
pub fn discord_component(
    id: &str,
    channel_id: &str,
    user_id: &str,
    roles: &[&str],
    custom_id: &str,
    message_id: &str,
) -> String {
    let mut interaction =
        discord_guild_interaction(3, id, channel_id, user_id, roles, DISCORD_GUILD_ID);
    interaction["message"] = json!({
        "id": message_id,
        "type": 0,
        "channel_id": channel_id,
        "author": discord_bot_author(DISCORD_APPLICATION_ID),
        "content": "",
        "embeds": [],
        "attachments": [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": false,
        "pinned": false,
        "tts": false,
        "timestamp": "2024-01-02T03:04:05.000000+00:00",
        "edited_timestamp": null,
        "flags": 0,
        "application_id": DISCORD_APPLICATION_ID,
        "components": [{
            "type": 1,
            "id": 1,
            "components": [{
                "type": 2,
                "id": 2,
                "style": 1,
                "label": custom_id,
                "custom_id": custom_id,
            }],
        }],
    });
    interaction["data"] = json!({ "custom_id": custom_id, "component_type": 2, "id": 2 });
    interaction.to_string()
}

// ---------------------------------------------------------------------------------------
// multipart/form-data
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Form field name (`payload_json`, `files[0]`, ...).
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// Encode `parts` as multipart/form-data; returns (Content-Type header value, body).
pub fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    let boundary = "standin-boundary-7d1f3a";
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
        if let Some(filename) = &part.filename {
            disposition.push_str(&format!("; filename=\"{filename}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(ct) = &part.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Split a multipart/form-data body. `content_type` is the request's Content-Type.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or("multipart Content-Type without boundary")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut pos = find(body, &delimiter, 0).ok_or("no opening boundary")? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        pos = skip_crlf(body, pos);
        let head_end = find(body, b"\r\n\r\n", pos).ok_or("part without header end")?;
        let head = String::from_utf8_lossy(&body[pos..head_end]).into_owned();
        let data_start = head_end + 4;
        let mut closing = b"\r\n".to_vec();
        closing.extend_from_slice(&delimiter);
        let data_end = find(body, &closing, data_start).ok_or("part without closing boundary")?;
        let mut part = Part {
            name: String::new(),
            filename: None,
            content_type: None,
            data: body[data_start..data_end].to_vec(),
        };
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                for param in value.split(';').map(str::trim) {
                    if let Some(v) = param.strip_prefix("name=") {
                        part.name = v.trim_matches('"').to_string();
                    } else if let Some(v) = param.strip_prefix("filename=") {
                        part.filename = Some(v.trim_matches('"').to_string());
                    }
                }
            } else if key.trim().eq_ignore_ascii_case("content-type") {
                part.content_type = Some(value.trim().to_string());
            }
        }
        parts.push(part);
        pos = data_end + closing.len();
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn skip_crlf(body: &[u8], pos: usize) -> usize {
    if body[pos..].starts_with(b"\r\n") {
        pos + 2
    } else {
        pos
    }
}

// ---------------------------------------------------------------------------------------
// Server loop for the stand-ins
// ---------------------------------------------------------------------------------------

/// A bound 127.0.0.1:0 listener (bound synchronously so the port is known up front).
/// A port nothing listens on now, for a server the test starts itself.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub(crate) fn bind_local() -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.set_nonblocking(true).expect("nonblocking");
    listener
}

/// Serves `router` on `listener` until dropped. Dropping aborts every open connection,
/// including requests a stand-in is deliberately not answering.
pub(crate) struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

/// One request, whole, as a stand-in answers it.
pub(crate) type Incoming = (
    axum::http::Method,
    axum::http::Uri,
    axum::http::HeaderMap,
    Bytes,
);

impl Server {
    /// A stand-in on `listener`: every request, with a body of up to `body_limit` bytes, goes
    /// to `handler` with the stand-in's `state`. Must be called inside a tokio runtime.
    pub fn stand_in<S, H, F>(
        listener: std::net::TcpListener,
        state: std::sync::Arc<S>,
        body_limit: usize,
        handler: H,
    ) -> Server
    where
        S: Send + Sync + 'static,
        H: Fn(std::sync::Arc<S>, Incoming) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = axum::response::Response> + Send + 'static,
    {
        let route = move |axum::extract::State(state), method, uri, headers, body| {
            handler(state, (method, uri, headers, body))
        };
        let router = axum::Router::new()
            .fallback(route)
            .layer(axum::extract::DefaultBodyLimit::max(body_limit))
            .with_state(state);
        Server::spawn(listener, router)
    }

    /// Must be called inside a tokio runtime.
    pub fn spawn(listener: std::net::TcpListener, router: axum::Router) -> Server {
        let addr = listener.local_addr().expect("local addr");
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let service = hyper_util::service::TowerToHyperService::new(router.clone());
                        connections.spawn(async move {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Server { addr, task }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Shared bookkeeping for a stand-in: recorded calls plus a wake-up per new call.
pub(crate) struct Recorder<C> {
    calls: std::sync::Mutex<Vec<C>>,
    changed: tokio::sync::Notify,
}

impl<C: Clone + std::fmt::Debug> Recorder<C> {
    pub fn new() -> Self {
        Recorder {
            calls: std::sync::Mutex::new(Vec::new()),
            changed: tokio::sync::Notify::new(),
        }
    }

    pub fn push(&self, call: C) {
        self.calls.lock().unwrap().push(call);
        self.changed.notify_waiters();
    }

    pub fn all(&self) -> Vec<C> {
        self.calls.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.calls.lock().unwrap().clear();
    }

    pub async fn wait_for(
        &self,
        what: impl Fn(&[C]) -> bool,
        deadline: Duration,
    ) -> Result<(), String> {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if what(&self.calls.lock().unwrap()) {
                return Ok(());
            }
            if tokio::time::timeout_at(end, notified).await.is_err() {
                let calls = self.calls.lock().unwrap();
                let dump: Vec<String> = calls.iter().map(|c| format!("  {c:?}")).collect();
                return Err(format!(
                    "condition not met within {deadline:?}; {} call(s) recorded:\n{}",
                    calls.len(),
                    dump.join("\n")
                ));
            }
        }
    }
}

/// Lower-case header pairs of a request, for the call records.
pub(crate) fn header_pairs(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A response with a JSON body.
pub(crate) fn json_response(
    status: u16,
    headers: &[(&str, String)],
    body: &Value,
) -> axum::response::Response {
    let mut builder = axum::http::Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8");
    for (k, v) in headers {
        builder = builder.header(*k, v.as_str());
    }
    builder
        .body(axum::body::Body::from(body.to_string()))
        .expect("response")
}

/// A response with a plain-text (or empty, for 204) body.
pub(crate) fn text_response(status: u16, body: &str) -> axum::response::Response {
    let mut builder = axum::http::Response::builder().status(status);
    if !body.is_empty() {
        builder = builder.header("content-type", "text/plain; charset=utf-8");
    }
    builder
        .body(axum::body::Body::from(body.to_string()))
        .expect("response")
}
