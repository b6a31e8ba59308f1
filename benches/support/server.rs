//! The release `drbot serve` as a child process, a Slack Web API it can post to, a
//! keep-alive HTTP/1 client and signed Slack slash commands: what the benches that drive the
//! server over HTTP share.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::env_text;

pub const SECRET: &str = "bench-signing-secret";
const TOKEN: &str = "xoxb-bench-token";
pub const OPERATOR: &str = "U1";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const READY_POLL: Duration = Duration::from_millis(2);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

// A minimal Slack Web API: enough for the outbox to deliver, counting what it receives.

#[derive(Default)]
pub struct Sink {
    posted: AtomicU64,
    updated: AtomicU64,
    pinned: AtomicU64,
    history: AtomicU64,
    other: AtomicU64,
    ts: AtomicU64,
}

impl Sink {
    fn next_ts(&self) -> String {
        let base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1_700_000_000, |d| d.as_secs());
        let n = self.ts.fetch_add(1, Ordering::Relaxed);
        // Strictly increasing whatever the clock does: the counter dominates the base.
        format!("{}.000100", base.max(1_700_000_000) + n)
    }

    pub fn delivered(&self) -> u64 {
        self.posted.load(Ordering::Relaxed) + self.updated.load(Ordering::Relaxed)
    }
}

/// The call's arguments, whatever the encoding: JSON body, form body or query string.
fn arguments(query: Option<&str>, body: &[u8]) -> HashMap<String, String> {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        return map
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
            .collect();
    }
    let mut args: HashMap<String, String> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    if let Some(q) = query {
        args.extend(serde_urlencoded::from_str::<HashMap<String, String>>(q).unwrap_or_default());
    }
    args
}

async fn slack_api(State(sink): State<Arc<Sink>>, uri: Uri, body: Bytes) -> Response {
    let method = uri.path().rsplit('/').next().unwrap_or_default();
    let args = arguments(uri.query(), &body);
    let channel = args.get("channel").cloned().unwrap_or_default();
    let reply = match method {
        "chat.postMessage" => {
            sink.posted.fetch_add(1, Ordering::Relaxed);
            let ts = sink.next_ts();
            json!({
                "ok": true,
                "channel": channel,
                "ts": ts,
                "message": { "type": "message", "ts": ts, "text": "" },
            })
        }
        "chat.update" => {
            sink.updated.fetch_add(1, Ordering::Relaxed);
            let ts = args.get("ts").cloned().unwrap_or_else(|| sink.next_ts());
            // The client requires `message` in the reply.
            json!({ "ok": true, "channel": channel, "ts": ts, "message": { "text": "" } })
        }
        "pins.add" => {
            sink.pinned.fetch_add(1, Ordering::Relaxed);
            json!({ "ok": true })
        }
        "conversations.history" => {
            sink.history.fetch_add(1, Ordering::Relaxed);
            json!({ "ok": true, "messages": [] })
        }
        _ => {
            sink.other.fetch_add(1, Ordering::Relaxed);
            json!({ "ok": true })
        }
    };
    Json(reply).into_response()
}

pub async fn start_sink() -> (String, Arc<Sink>) {
    let sink = Arc::new(Sink::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the Slack API sink");
    let addr = listener.local_addr().expect("sink address");
    let router = axum::Router::new()
        .fallback(slack_api)
        .with_state(sink.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}/api"), sink)
}

// ---------------------------------------------------------------------------------------------
// The server under test: the release binary, as a child process.

/// Kills the server if the bench panics before stopping it.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub spawned: Instant,
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// `extra`: more settings for this bench (e.g. `[web]`), as environment variables.
pub fn start_server(
    dir: &Path,
    url: &str,
    api_url: &str,
    post_interval_ms: u64,
    extra: &[(&str, String)],
) -> Server {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_drbot"));
    command
        .arg("serve")
        .current_dir(dir)
        .env("DRBOT__HTTP__LISTEN", addr.to_string())
        .env("DRBOT__DATABASE__URL", url)
        .env("DRBOT__SLACK__SIGNING_SECRET", SECRET)
        .env("DRBOT__SLACK__BOT_TOKEN", TOKEN)
        .env("DRBOT__SLACK__API_URL", api_url)
        .env("DRBOT__SLACK__OPERATORS", OPERATOR)
        .env(
            "DRBOT__SLACK__POST_INTERVAL_MS",
            post_interval_ms.to_string(),
        )
        .env(
            "DRBOT__SANDBOX__STATE_FILE",
            dir.join("sandbox.json").display().to_string(),
        )
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .env("DRBOT_LOG", env_text("DRBOT_LOG", "warn"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let spawned = Instant::now();
    let child = command.spawn().expect("start drbot serve");
    Server {
        child,
        addr,
        spawned,
    }
}

/// Poll `/readyz` every 2 ms, each time on a new connection; the time from spawn to its 200.
pub async fn wait_ready(server: &mut Server) -> Duration {
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("drbot serve exited before it was ready: {status}");
        }
        let pool = Pool::new(server.addr, 1);
        if let Ok((StatusCode::OK, _)) = pool.get("/readyz").await {
            return server.spawned.elapsed();
        }
        assert!(
            server.spawned.elapsed() < READY_TIMEOUT,
            "drbot serve not ready within {READY_TIMEOUT:?}"
        );
        tokio::time::sleep(READY_POLL).await;
    }
}

/// SIGTERM, then wait for the graceful stop; true when it exited cleanly in time.
pub async fn stop(server: &mut Server) -> bool {
    let pid = server.child.id().to_string();
    let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        match server.child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            _ => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                return false;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client: a fixed number of keep-alive connections. A request takes a permit (waiting
// in line when all are busy), then an idle connection or a new one in place of a broken one.

pub type Conn = http1::SendRequest<Full<Bytes>>;

pub struct Pool {
    pub addr: SocketAddr,
    permits: Semaphore,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    pub fn new(addr: SocketAddr, size: usize) -> Arc<Pool> {
        Arc::new(Pool {
            addr,
            permits: Semaphore::new(size),
            idle: Mutex::new(Vec::with_capacity(size)),
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn connect(&self) -> Result<Conn, String> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Open every connection before a measurement.
    pub async fn fill(&self) {
        let size = self.permits.available_permits();
        let mut opened = Vec::with_capacity(size);
        for _ in 0..size {
            opened.push(self.connect().await.expect("open a keep-alive connection"));
        }
        *self.idle() = opened;
    }

    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let reused = self.idle().pop().filter(|c| !c.is_closed());
        let mut conn = match reused {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        conn.ready().await.map_err(|e| e.to_string())?;
        let response = conn
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        self.idle().push(conn);
        Ok((status, body))
    }

    pub async fn get(&self, path: &str) -> Result<(StatusCode, Bytes), String> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("host", self.addr.to_string())
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        self.send(request).await
    }
}

// ---------------------------------------------------------------------------------------------
// Signed slash commands.

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Where slash commands go, and where drbot may answer late (the sink).
#[derive(Clone)]
pub struct Endpoint {
    pub pool: Arc<Pool>,
    pub response_url: String,
}

/// `POST /slack/commands`, signed with the current time; the status and the reply.
pub async fn slash(
    to: &Endpoint,
    channel: &str,
    text: &str,
    trigger: &str,
) -> Result<(StatusCode, Bytes), String> {
    let body = serde_urlencoded::to_string([
        ("token", "unused"),
        ("team_id", "T0BENCH"),
        ("channel_id", channel),
        ("user_id", OPERATOR),
        ("user_name", "bench"),
        ("command", "/dr"),
        ("text", text),
        ("response_url", to.response_url.as_str()),
        ("trigger_id", trigger),
    ])
    .map_err(|e| e.to_string())?;
    let ts = unix_now().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body.as_bytes());
    let signature = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    let request = Request::builder()
        .method(Method::POST)
        .uri("/slack/commands")
        .header("host", to.pool.addr.to_string())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    to.pool.send(request).await
}
