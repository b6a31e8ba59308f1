//! `drbot serve`: the HTTP edge (Slack, Discord, health, metrics, timeline API), the
//! scheduler and the outbox worker in one process. Requests are verified, handed to the
//! engine and answered within the platforms' 3-second limits; everything slower goes through
//! the outbox or a follow-up. Shutdown stops accepting, lets in-flight requests and their
//! follow-ups finish, stops the workers between passes, then closes the store.

pub mod console;
pub mod discord;
pub mod listener;
pub mod metrics;
mod pagerduty;
pub mod slack;
mod socket_mode;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::{Notify, RwLock, watch};
use tracing::{info, warn};

use crate::app::{App, AppError, Reply};
use crate::chat::discord::Discord;
use crate::chat::slack::Slack;
use crate::chat::{ChatSink, Router as Sinks};
use crate::command::{self, ExportFormat};
use crate::config::{HttpSettings, Settings};
use metrics::{Gauges, Metrics};
use socket_mode::{SocketMode, SocketSettings};

/// How often the scheduler and the outbox look for work when nothing wakes them.
const PASS_INTERVAL: Duration = Duration::from_secs(1);
/// Platforms redeliver within minutes; request keys are kept a day.
const REQUEST_MEMORY: chrono::TimeDelta = chrono::TimeDelta::hours(24);

pub struct Server {
    pub app: Arc<App>,
    pub metrics: Metrics,
    slack: Option<Arc<Slack>>,
    slack_secret: Option<String>,
    /// Set when commands also come over Slack Socket Mode.
    slack_socket: Option<SocketSettings>,
    discord: Option<Arc<Discord>>,
    discord_key: Option<[u8; 32]>,
    api_token: Option<String>,
    /// PagerDuty V3 webhook signing secrets; empty: `/pagerduty/webhook` is off.
    pagerduty_secrets: Vec<String>,
    pagerduty_max_age: chrono::Duration,
    replay_window: i64,
    /// Answer by then; a command still running goes on and answers through a follow-up.
    ack_budget: Duration,
    /// A request body must have arrived by then (else 408).
    body_timeout: Duration,
    wake_scheduler: Notify,
    wake_outbox: Notify,
    /// Background work started by requests holds a read guard; shutdown takes the write side.
    in_flight: Arc<RwLock<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}

fn decode_key(hex_key: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(hex_key).ok()?;
    bytes.try_into().ok()
}

impl Server {
    pub fn new(app: Arc<App>, settings: &Settings) -> Result<Server, ServeError> {
        let slack_socket = SocketSettings::from(&settings.slack);
        let slack = (settings.slack.signing_secret.is_some() || slack_socket.is_some())
            .then(|| Slack::new(&settings.slack))
            .flatten()
            .map(Arc::new);
        let discord_key = match &settings.discord.public_key {
            Some(k) => Some(decode_key(k).ok_or_else(|| {
                ServeError::Config("discord.public_key is not 64 hex characters".into())
            })?),
            None => None,
        };
        let discord = discord_key
            .and_then(|_| Discord::new(&settings.discord))
            .map(Arc::new);
        Ok(Server {
            app,
            metrics: Metrics::default(),
            slack,
            slack_secret: settings.slack.signing_secret.clone(),
            slack_socket,
            discord,
            discord_key,
            api_token: settings.http.api_token.clone(),
            pagerduty_secrets: settings.paging.webhook_secrets.clone(),
            pagerduty_max_age: chrono::Duration::minutes(settings.paging.webhook_max_age_minutes),
            replay_window: settings.http.replay_window_seconds,
            ack_budget: Duration::from_millis(settings.http.ack_budget_ms),
            body_timeout: Duration::from_millis(settings.http.body_timeout_ms),
            wake_scheduler: Notify::new(),
            wake_outbox: Notify::new(),
            in_flight: Arc::new(RwLock::new(())),
        })
    }

    fn sinks(&self) -> Sinks {
        Sinks {
            slack: self.slack.clone().map(|s| s as Arc<dyn ChatSink>),
            discord: self.discord.clone().map(|d| d as Arc<dyn ChatSink>),
            console: None,
            statuspage: self.app.statuspage.clone(),
            pager: self.app.pager.clone().map(|p| p as Arc<dyn ChatSink>),
            tracker: self.app.tracker.clone().map(|t| t as Arc<dyn ChatSink>),
        }
    }

    /// Something changed: run the scheduler and the outbox now rather than at the next pass.
    pub fn kick(&self) {
        self.wake_scheduler.notify_one();
        self.wake_outbox.notify_one();
    }

    /// After a command: the scheduler is woken only when the command can have queued a launch
    /// (other changes wait for its next pass, within a second). The outbox wakes by itself
    /// when a commit with posts lands ([`App::outbox_ready`]).
    pub fn after_command(&self, verb: &str) {
        if verb == "confirm" {
            self.wake_scheduler.notify_one();
        }
    }

    /// Run a command's `work` on the request's own task for up to the acknowledgement budget
    /// (no hand-off to another task on the fast path). What is still running then goes on
    /// as a tracked task, returned for the caller to deliver its late answer; so does what
    /// is running when the request itself is dropped (a client hanging up), so a command is
    /// never stopped half-way. A panic is caught and reported as [`Panicked`].
    ///
    /// `work` comes boxed from where it is made: a command's future is about 10 KB, and each
    /// move of it by value (into this call, into the panic guard, into the box) was a copy:
    /// 15 % of the runtime thread's instructions per command (callgrind).
    async fn within_budget<T: Send + 'static>(
        self: &Arc<Self>,
        work: std::pin::Pin<Box<dyn Future<Output = T> + Send>>,
    ) -> Ack<T> {
        use futures_util::FutureExt;
        let work: Late<T> = Box::pin(
            std::panic::AssertUnwindSafe(work)
                .catch_unwind()
                .map(|r| r.map_err(|_| Panicked)),
        );
        if self.ack_budget.is_zero() {
            // No budget: acknowledge first, whatever the work would take (a timeout polls its
            // future once before it looks at the clock, so a quick command would slip through).
            return Ack::Late(work);
        }
        let mut unfinished = RunsToEnd {
            work: Some(work),
            server: self.clone(),
        };
        let Some(running) = unfinished.work.as_mut() else {
            return Ack::Done(Err(Panicked));
        };
        match tokio::time::timeout(self.ack_budget, running).await {
            Ok(result) => {
                unfinished.work = None;
                Ack::Done(result)
            }
            Err(_) => match unfinished.work.take() {
                Some(rest) => Ack::Late(rest),
                None => Ack::Done(Err(Panicked)),
            },
        }
    }

    /// Run `work` in the background; shutdown waits for it.
    fn spawn_tracked(&self, work: impl Future<Output = ()> + Send + 'static) {
        let lock = self.in_flight.clone();
        tokio::spawn(async move {
            let _guard = lock.read().await;
            work.await;
        });
    }

    /// Seconds since the epoch by the engine's clock (signed requests are checked against it).
    fn now_unix(&self) -> i64 {
        self.app.clock.now().timestamp()
    }
}

pub fn router(server: Arc<Server>, max_body: usize) -> Router {
    let body = listener::BodyLimits {
        max_bytes: max_body,
        timeout: server.body_timeout,
        stats: server.metrics.connections.clone(),
    };
    Router::new()
        .route("/slack/commands", post(slack::command))
        .route("/slack/interactions", post(slack::interaction))
        .route("/discord/interactions", post(discord::interaction))
        .route("/pagerduty/webhook", post(pagerduty::webhook))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/api/incidents/{id}/timeline", get(timeline))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            body,
            listener::read_body,
        ))
        .with_state(server)
}

async fn readyz(State(s): State<Arc<Server>>) -> Response {
    match s.app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            warn!(error = %e, "readiness: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
    }
}

async fn metrics_text(State(s): State<Arc<Server>>) -> Response {
    let now = s.app.clock.now();
    let (depth, oldest) = s.app.store.outbox_backlog().await.unwrap_or((-1, None));
    let lag = s.app.cadence_lag().await.unwrap_or_default();
    let gauges = Gauges {
        outbox_depth: depth,
        outbox_oldest: oldest.and_then(|t| (now - t).to_std().ok()),
        cadence_lag: lag.to_std().unwrap_or_default(),
        deliveries: s.app.deliveries.snapshot(),
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(&gauges),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct TimelineQuery {
    format: Option<String>,
}

/// Constant-time equality for secrets.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn timeline(
    State(s): State<Arc<Server>>,
    Path(id): Path<String>,
    Query(q): Query<TimelineQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = &s.api_token else {
        return (
            StatusCode::NOT_FOUND,
            "the timeline API is off: set http.api_token\n",
        )
            .into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same_secret(given.as_bytes(), token.as_bytes()) {
        return (StatusCode::UNAUTHORIZED, "bearer token required\n").into_response();
    }
    let Some(id) = incident_id(&id) else {
        return (
            StatusCode::BAD_REQUEST,
            "incident id must be like INC-3 or 3\n",
        )
            .into_response();
    };
    let format = match q.format.as_deref().unwrap_or("json") {
        "md" => ExportFormat::Markdown,
        "json" => ExportFormat::Json,
        "csv" => ExportFormat::Csv,
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!("unknown format {other:?}: use md, json or csv\n"),
            )
                .into_response();
        }
    };
    match export(&s.app, id, format).await {
        Ok(out) => ([(header::CONTENT_TYPE, content_type(format))], out).into_response(),
        Err(ExportFailure::Unknown) => {
            (StatusCode::NOT_FOUND, "no such incident\n").into_response()
        }
        Err(ExportFailure::Store) => {
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
        Err(ExportFailure::Export) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "export failed\n").into_response()
        }
    }
}

/// `INC-3` or `3`.
fn incident_id(id: &str) -> Option<i64> {
    id.strip_prefix("INC-").unwrap_or(id).parse::<i64>().ok()
}

/// Why an export could not be given (the detail is logged).
enum ExportFailure {
    Unknown,
    Store,
    Export,
}

/// An incident's timeline export, whole, as the timeline API and the web view hand it out.
async fn export(app: &App, id: i64, format: ExportFormat) -> Result<Vec<u8>, ExportFailure> {
    match app.store.incident(id).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(ExportFailure::Unknown),
        Err(e) => {
            warn!(error = %e, "export: store");
            return Err(ExportFailure::Store);
        }
    }
    let mut out = Vec::new();
    let impact = crate::export::Impact {
        continuity: &app.continuity,
        now: app.clock.now(),
    };
    crate::export::export_with(&app.store, id, format, &app.runbook, impact, &mut out)
        .await
        .map_err(|e| {
            warn!(error = %e, "export");
            ExportFailure::Export
        })?;
    Ok(out)
}

fn content_type(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Markdown => "text/markdown; charset=utf-8",
        ExportFormat::Json => "application/json",
        ExportFormat::Csv => "text/csv; charset=utf-8",
    }
}

/// Label for metrics: the verb of a parsed line, or `invalid`.
fn verb_of(parsed: &Result<command::Command, Reply>) -> String {
    parsed
        .as_ref()
        .map(|c| c.verb().replace(' ', "_"))
        .unwrap_or_else(|_| "invalid".into())
}

fn outcome_of(r: &Result<Reply, AppError>) -> &'static str {
    match r {
        Ok(Reply::Public(_)) => "changed",
        Ok(Reply::Private(_)) => "answered",
        Ok(Reply::File { .. }) => "file",
        Err(_) => "error",
    }
}

/// What an operator sees when the engine itself failed (the database, mostly).
/// The detail goes to the log only: database and internal errors mean nothing to the person
/// in the channel and may carry what they should not see.
fn engine_failure(e: &AppError) -> String {
    warn!(error = %e, "command failed");
    crate::app::COULD_NOT_RECORD.to_string()
}

/// A running server: its address, a way to wake its workers, and a clean stop.
pub struct Running {
    pub addr: SocketAddr,
    pub server: Arc<Server>,
    stop: watch::Sender<bool>,
    http: tokio::task::JoinHandle<()>,
    socket: Option<SocketMode>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn kick(&self) {
        self.server.kick();
    }

    /// Graceful stop: as on SIGTERM.
    pub async fn stop(self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        // Socket Mode: new envelopes are left for Slack to redeliver; those in hand finish.
        if let Some(socket) = self.socket {
            socket.stop().await;
        }
        let served = self.http.await;
        // Follow-ups and uploads started by requests finish before the workers stop.
        drop(self.server.in_flight.write().await);
        for w in self.workers {
            let _ = w.await;
        }
        // Another replica need not wait for the leases to run out.
        let app = &self.server.app;
        if let Err(e) = app.store.release_operations(&app.replica).await {
            warn!(error = %e, "could not release the operations this replica watched");
        }
        app.store.close().await;
        served.map_err(|e| ServeError::Io(std::io::Error::other(e)))
    }
}

/// Start serving on `socket` with workers; returns at once.
pub fn start(
    server: Arc<Server>,
    socket: TcpListener,
    http: &HttpSettings,
) -> Result<Running, ServeError> {
    let addr = socket.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let app = router(server.clone(), http.max_body_bytes);
    let limits = listener::Limits::new(http);
    let serving = tokio::spawn(listener::serve(
        socket,
        app,
        limits,
        server.metrics.connections.clone(),
        stopped.clone(),
    ));
    let socket = SocketMode::start(&server);
    let workers = vec![
        tokio::spawn(scheduler(server.clone(), stopped.clone())),
        tokio::spawn(outbox(server.clone(), stopped)),
    ];
    info!(
        %addr,
        slack = server.slack.is_some(),
        slack_socket_mode = socket.is_some(),
        discord = server.discord.is_some(),
        max_connections = limits.max_connections,
        "serving"
    );
    Ok(Running {
        addr,
        server,
        stop,
        http: serving,
        socket,
        workers,
    })
}

/// Bind `listen` and serve until `signal` resolves.
pub async fn run(
    app: Arc<App>,
    settings: &Settings,
    signal: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let listen = &settings.http.listen;
    let socket = TcpListener::bind(listen)
        .await
        .map_err(|e| ServeError::Bind(listen.clone(), e))?;
    let web = web::bind(app.clone(), settings, &settings.web).await?;
    let server = Arc::new(Server::new(app, settings)?);
    let running = start(server, socket, &settings.http)?;
    signal.await;
    info!("shutting down: finishing in-flight requests");
    if let Some(web) = web {
        web.stop().await?;
    }
    running.stop().await
}

async fn scheduler(server: Arc<Server>, mut stop: watch::Receiver<bool>) {
    loop {
        match server.app.tick().await {
            Ok(report) if report != Default::default() => {
                info!(?report, "scheduler pass");
                server.wake_outbox.notify_one();
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "scheduler pass failed; retrying"),
        }
        tokio::select! {
            _ = server.wake_scheduler.notified() => {}
            _ = tokio::time::sleep(PASS_INTERVAL) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn outbox(server: Arc<Server>, mut stop: watch::Receiver<bool>) {
    let sinks = server.sinks();
    let mut passes: u64 = 0;
    loop {
        if let Err(e) = server.app.deliver_to(&sinks, None).await {
            warn!(error = %e, "outbox pass failed; retrying");
        }
        passes += 1;
        if passes.is_multiple_of(3600) {
            let before = server.app.clock.now() - REQUEST_MEMORY;
            if let Err(e) = server.app.store.forget_requests(before).await {
                warn!(error = %e, "could not prune request keys");
            }
        }
        tokio::select! {
            _ = server.wake_outbox.notified() => {}
            _ = server.app.outbox_ready.notified() => {}
            _ = tokio::time::sleep(PASS_INTERVAL) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// A command's work panicked; nothing it had not committed was kept.
#[derive(Debug)]
pub(super) struct Panicked;

/// The rest of a command's work, past the acknowledgement budget.
type Late<T> = std::pin::Pin<Box<dyn Future<Output = Result<T, Panicked>> + Send>>;

/// How a command ended within its acknowledgement budget.
pub(super) enum Ack<T> {
    Done(Result<T, Panicked>),
    /// Still running: the caller awaits the rest on a tracked task.
    Late(Late<T>),
}

/// Work that runs to its end: dropped unfinished, it goes on as a tracked task.
struct RunsToEnd<T: Send + 'static> {
    work: Option<Late<T>>,
    server: Arc<Server>,
}

impl<T: Send + 'static> Drop for RunsToEnd<T> {
    fn drop(&mut self) {
        if let Some(work) = self.work.take() {
            self.server.spawn_tracked(async move {
                let _ = work.await;
            });
        }
    }
}
