//! A Slack Socket Mode stand-in on 127.0.0.1, in front of the Web API stand-in.
//!
//! `POST /api/apps.connections.open` is answered here: the `Authorization: Bearer` token must
//! be the app-level token, and the answer is a `ws://` URL of this stand-in's WebSocket
//! listener. Every other request is passed through to [`SlackApi`], which records it as
//! usual. On each WebSocket connection the stand-in says `hello` as Slack does, delivers the
//! envelopes the test pushes, and records every frame drbot sends back (acknowledgements).
//!
//! Point drbot at it with `DRBOT__SLACK__API_URL = SlackSocket::base()`.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::http::{
    self, Incoming, Recorder, SLACK_APP_ID, SLACK_TEAM_DOMAIN, SLACK_TEAM_ID,
    SLACK_VERIFICATION_TOKEN, Server, bind_local, json_response,
};
use super::slack_api::SlackApi;

/// Safety net for waits on drbot; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(30);

/// One `apps.connections.open` call.
#[derive(Clone, Debug)]
pub struct Open {
    pub method: String,
    /// The bearer token was the app-level token.
    pub auth_ok: bool,
}

/// A frame drbot sent over a Socket Mode connection.
#[derive(Clone, Debug)]
pub struct Frame {
    pub connection: u64,
    /// The frame as JSON (`Value::String` with the raw text if it was not JSON).
    pub body: Value,
}

pub struct SlackSocket {
    shared: Arc<Shared>,
    _http: Server,
    ws: tokio::task::JoinHandle<()>,
}

struct Shared {
    app_token: String,
    /// Origin of the Web API stand-in the other calls go to.
    upstream: String,
    ws_origin: String,
    opens: Recorder<Open>,
    frames: Recorder<Frame>,
    /// Live connections, oldest first: frames to send, `None` to close.
    connections: Mutex<Vec<(u64, mpsc::UnboundedSender<Option<String>>)>>,
    connected: tokio::sync::Notify,
    tickets: AtomicU64,
}

impl Drop for SlackSocket {
    fn drop(&mut self) {
        self.ws.abort();
    }
}

impl SlackSocket {
    /// Start in front of `api`, accepting `app_token` (`xapp-…`). Must be called inside a
    /// tokio runtime.
    pub fn start(api: &SlackApi, app_token: &str) -> SlackSocket {
        let http_listener = bind_local();
        let ws_listener = bind_local();
        let ws_origin = format!("ws://{}", ws_listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            app_token: app_token.to_string(),
            upstream: api.origin(),
            ws_origin,
            opens: Recorder::new(),
            frames: Recorder::new(),
            connections: Mutex::new(Vec::new()),
            connected: tokio::sync::Notify::new(),
            tickets: AtomicU64::new(1),
        });
        let http = Server::stand_in(http_listener, shared.clone(), 64 * 1024 * 1024, handle);
        let ws = tokio::spawn(accept(
            tokio::net::TcpListener::from_std(ws_listener).expect("tokio listener"),
            shared.clone(),
        ));
        SlackSocket {
            shared,
            _http: http,
            ws,
        }
    }

    /// `http://127.0.0.1:PORT/api`: the Web API base URL (`DRBOT__SLACK__API_URL`).
    pub fn base(&self) -> String {
        format!("http://{}/api", self._http.addr)
    }

    pub fn opens(&self) -> Vec<Open> {
        self.shared.opens.all()
    }

    /// Every frame drbot sent, in order.
    pub fn frames(&self) -> Vec<Frame> {
        self.shared.frames.all()
    }

    /// The acknowledgements of envelope `id` so far, in order.
    pub fn acks(&self, id: &str) -> Vec<Value> {
        acks_in(&self.shared.frames.all(), id)
    }

    /// Wait until envelope `id` has been acknowledged `n` times; returns those acks.
    pub async fn wait_acks(&self, id: &str, n: usize) -> Vec<Value> {
        self.shared
            .frames
            .wait_for(|frames| acks_in(frames, id).len() >= n, PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("envelope {id} not acknowledged {n} time(s): {e}"));
        self.acks(id)
    }

    /// Wait for the first acknowledgement of envelope `id`.
    pub async fn ack(&self, id: &str) -> Value {
        self.wait_acks(id, 1).await.remove(0)
    }

    /// How many WebSocket connections are open now.
    pub fn connections(&self) -> usize {
        self.shared.connections.lock().unwrap().len()
    }

    /// Ids of the open connections, oldest first (a new connection gets a new id).
    pub fn connection_ids(&self) -> Vec<u64> {
        self.shared
            .connections
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| *id)
            .collect()
    }

    /// Wait until drbot has at least one connection open.
    pub async fn connected(&self) {
        let end = tokio::time::Instant::now() + PATIENCE;
        loop {
            let notified = self.shared.connected.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.connections() > 0 {
                return;
            }
            if tokio::time::timeout_at(end, notified).await.is_err() {
                panic!(
                    "drbot opened no Socket Mode connection; apps.connections.open calls: {:?}",
                    self.opens()
                );
            }
        }
    }

    /// Send `envelope` over the oldest open connection (waiting for one), as Slack delivers
    /// each envelope to one of the app's connections.
    pub async fn deliver(&self, envelope: &Value) {
        self.connected().await;
        let connections = self.shared.connections.lock().unwrap();
        let (_, tx) = connections.first().expect("a connection");
        tx.send(Some(envelope.to_string()))
            .expect("connection open");
    }

    /// Send `envelope` over the `nth` open connection (oldest first): Slack redelivers an
    /// envelope that was not acknowledged in time to another of the app's connections, which
    /// may belong to another replica.
    pub fn deliver_over(&self, nth: usize, envelope: &Value) {
        let connections = self.shared.connections.lock().unwrap();
        let (_, tx) = connections.get(nth).expect("that many connections");
        tx.send(Some(envelope.to_string()))
            .expect("connection open");
    }

    /// Refresh every connection as Slack does from time to time: send
    /// `{"type":"disconnect"}`, then close the connection.
    pub fn disconnect_all(&self) {
        let frame = json!({
            "type": "disconnect",
            "reason": "refresh_requested",
            "debug_info": { "host": "applink-standin" },
        });
        for (_, tx) in self.shared.connections.lock().unwrap().iter() {
            let _ = tx.send(Some(frame.to_string()));
            let _ = tx.send(None);
        }
    }
}

fn acks_in(frames: &[Frame], id: &str) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f.body.get("envelope_id").and_then(Value::as_str) == Some(id))
        .map(|f| f.body.clone())
        .collect()
}

/// A `slash_commands` envelope for `/dr {text}`, its payload shaped like Slack's.
pub fn slash_command(
    envelope_id: &str,
    text: &str,
    channel_id: &str,
    user_id: &str,
    trigger_id: &str,
    response_url: &str,
) -> Value {
    json!({
        "envelope_id": envelope_id,
        "type": "slash_commands",
        "accepts_response_payload": true,
        "payload": {
            "token": SLACK_VERIFICATION_TOKEN,
            "team_id": SLACK_TEAM_ID,
            "team_domain": SLACK_TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": format!("incident-{}", channel_id.to_lowercase()),
            "user_id": user_id,
            "user_name": user_id.to_lowercase(),
            "command": "/dr",
            "text": text,
            "api_app_id": SLACK_APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        },
    })
}

/// An `interactive` envelope around `payload` (e.g. `http::slack_block_action_payload`).
/// Slack accepts no response payload for `block_actions`.
pub fn interactive(envelope_id: &str, payload: Value) -> Value {
    json!({
        "envelope_id": envelope_id,
        "type": "interactive",
        "accepts_response_payload": false,
        "payload": payload,
    })
}

// ---------------------------------------------------------------------------------------
// HTTP: apps.connections.open here, the rest passed through
// ---------------------------------------------------------------------------------------

async fn handle(shared: Arc<Shared>, (method, uri, headers, body): Incoming) -> Response {
    if uri.path() == "/api/apps.connections.open" {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let auth_ok = bearer == Some(shared.app_token.as_str());
        shared.opens.push(Open {
            method: method.to_string(),
            auth_ok,
        });
        if !auth_ok {
            return json_response(200, &[], &json!({ "ok": false, "error": "invalid_auth" }));
        }
        let ticket = shared.tickets.fetch_add(1, Ordering::Relaxed);
        let url = format!(
            "{}/link/?ticket={ticket:08x}&app_id={SLACK_APP_ID}",
            shared.ws_origin
        );
        return json_response(200, &[], &json!({ "ok": true, "url": url }));
    }
    let target = format!(
        "{}{}",
        shared.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let forwarded: Vec<(&str, String)> = ["authorization", "content-type"]
        .into_iter()
        .filter_map(|name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| (name, v.to_string()))
        })
        .collect();
    match http::send(method.as_str(), &target, &forwarded, body.to_vec()).await {
        Ok(resp) => {
            let mut builder = axum::http::Response::builder().status(resp.status);
            for (name, value) in &resp.headers {
                if name.eq_ignore_ascii_case("content-type")
                    || name.eq_ignore_ascii_case("retry-after")
                {
                    builder = builder.header(name.as_str(), value.as_str());
                }
            }
            builder
                .body(axum::body::Body::from(resp.body))
                .expect("response")
        }
        // The Web API stand-in is holding the request (a scripted `Hang`): hold this one too.
        Err(_) => std::future::pending().await,
    }
}

// ---------------------------------------------------------------------------------------
// WebSocket side
// ---------------------------------------------------------------------------------------

async fn accept(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    let mut next_id = 1u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let id = next_id;
                next_id += 1;
                connections.spawn(serve(id, stream, shared.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve(id: u64, stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let hello = json!({
        "type": "hello",
        "num_connections": shared.connections.lock().unwrap().len() + 1,
        "debug_info": {
            "host": "applink-standin",
            "build_number": 1,
            "approximate_connection_time": 18060,
        },
        "connection_info": { "app_id": SLACK_APP_ID },
    });
    if ws.send(Message::text(hello.to_string())).await.is_err() {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
    shared.connections.lock().unwrap().push((id, tx));
    shared.connected.notify_waiters();
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let body = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|_| Value::String(text.to_string()));
                    shared.frames.push(Frame { connection: id, body });
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => {}
            },
            outgoing = rx.recv() => match outgoing {
                Some(Some(text)) => {
                    if ws.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Some(None) | None => {
                    let _ = ws.close(None).await;
                    break;
                }
            },
        }
    }
    shared
        .connections
        .lock()
        .unwrap()
        .retain(|(other, _)| *other != id);
}
