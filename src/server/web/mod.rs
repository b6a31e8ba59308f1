//! The incident web view (issue 24): read-only, server-rendered pages on a listener of
//! their own (`[web] listen`), in `drbot serve` and `drbot console --web`.
//!
//! Pages are written with `write!` into a `String` through one escaping wrapper
//! ([`html::Esc`]) rather than a template crate: a handful of pages do not repay a
//! proc-macro and its parser crates in every clean build, and every interpolated value goes
//! through the same escape. The stylesheet and the one script (live updates, the time-zone
//! switch) are embedded; the Content-Security-Policy allows no other script, inline or not.

mod auth;
mod html;
mod incident;
mod list;
mod live;
mod reach;
mod rto;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use super::metrics::Connections;
use super::{ExportFailure, ServeError, content_type, export, incident_id, listener};
use crate::app::App;
use crate::command::ExportFormat;
use crate::config::{Settings, WebSettings};
use auth::{Access, Guard, Refusal};

/// The login form is one short field.
const MAX_BODY: usize = 4 * 1024;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Between keep-alive comments on a live page: shorter than a proxy's read timeout (nginx's
/// default is 60 s).
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

pub struct Web {
    app: Arc<App>,
    guard: Guard,
    live: Arc<live::Live>,
    /// Ends the live streams when the web view stops.
    stopped: watch::Receiver<bool>,
}

/// The web view, listening.
pub struct WebRunning {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WebRunning {
    /// Stop accepting and let requests in progress finish.
    pub async fn stop(self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|e| ServeError::Io(std::io::Error::other(e)))
    }
}

/// Bind `[web] listen`, when set, and serve the web view on it.
pub async fn bind(
    app: Arc<App>,
    settings: &Settings,
    web: &WebSettings,
) -> Result<Option<WebRunning>, ServeError> {
    let Some(listen) = web.listen.as_deref() else {
        return Ok(None);
    };
    let socket = TcpListener::bind(listen)
        .await
        .map_err(|e| ServeError::Bind(listen.to_string(), e))?;
    start(app, settings, web, socket).map(Some)
}

/// Serve the web view on `socket` with `[http]`'s connection deadlines and cap; returns at
/// once.
pub fn start(
    app: Arc<App>,
    settings: &Settings,
    web: &WebSettings,
    socket: TcpListener,
) -> Result<WebRunning, ServeError> {
    let guard = Guard::new(web).map_err(|e| ServeError::Config(e.to_string()))?;
    let addr = socket.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let live = live::Live::new(app.clone());
    tokio::spawn(live.clone().run(stopped.clone()));
    let routes = router(Arc::new(Web {
        app,
        guard,
        live,
        stopped: stopped.clone(),
    }));
    let task = tokio::spawn(listener::serve(
        socket,
        routes,
        listener::Limits::new(&settings.http),
        Arc::new(Connections::default()),
        stopped,
    ));
    info!(%addr, auth = %web.auth, "web view listening");
    Ok(WebRunning { addr, stop, task })
}

fn router(web: Arc<Web>) -> Router {
    let pages = Router::new()
        .route("/incidents", get(incidents))
        .route("/incidents/{id}", get(incident_page))
        .route("/incidents/{id}/stream", get(stream))
        .route("/incidents/{id}/{file}", get(download))
        .route("/drills", get(drills))
        .route_layer(axum::middleware::from_fn_with_state(web.clone(), signed_in));
    Router::new()
        .route("/", get(|| async { Redirect::to("/incidents") }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/static/style.css", get(style))
        .route("/static/live.js", get(script))
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .merge(pages)
        .fallback(|| async {
            error_page(StatusCode::NOT_FOUND, "Not found", "There is no such page.")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(web)
}

/// On every response, refusals and errors included.
async fn secure_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn peer(request: &Request) -> std::net::IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())
}

async fn signed_in(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
    let now = web.app.clock.now();
    match web.guard.check(peer(&request), request.headers(), now) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refused(&web, refusal, None),
    }
}

/// What a refused request gets: never a page's content.
fn refused(web: &Web, refusal: Refusal, note: Option<&str>) -> Response {
    match (refusal, &web.guard.access) {
        (Refusal::SlowDown(seconds), _) => {
            let mut r = error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                &format!("Too many wrong tokens from your address: try again in {seconds} s."),
            );
            if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        (Refusal::SignIn, Access::Token(_)) => login_page(StatusCode::UNAUTHORIZED, note),
        _ => error_page(
            StatusCode::UNAUTHORIZED,
            "Not signed in",
            "Sign in through your organisation's proxy with an allowed account.",
        ),
    }
}

fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn error_page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!("<h1>{}</h1><p>{}</p>", html::Esc(title), html::Esc(text));
    html_response(status, html::page(title, &body, false))
}

fn login_page(status: StatusCode, note: Option<&str>) -> Response {
    let note = note
        .map(|n| format!("<p class=\"halted\">{}</p>", html::Esc(n)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>{note}<form method=\"post\" action=\"/login\">\
         <label>Viewer token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">Sign in</button></form>"
    );
    html_response(status, html::page("Sign in", &body, false))
}

impl Web {
    /// A page for a signed-in viewer: with the sign-out button when there is a session.
    fn page(&self, title: &str, body: &str) -> Response {
        let session = matches!(self.guard.access, Access::Token(_));
        html_response(StatusCode::OK, html::page(title, body, session))
    }
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        html::SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        html::STYLE,
    )
        .into_response()
}

async fn login_form(State(web): State<Arc<Web>>) -> Response {
    match web.guard.access {
        Access::Token(_) => login_page(StatusCode::OK, None),
        _ => Redirect::to("/incidents").into_response(),
    }
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(web): State<Arc<Web>>, request: Request) -> Response {
    if auth::cross_site(request.headers()) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "A sign-in from another site is refused.",
        );
    }
    let from = peer(&request);
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), MAX_BODY).await else {
        return error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Refused",
            "The form is too large.",
        );
    };
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&bytes) else {
        return login_page(
            StatusCode::BAD_REQUEST,
            Some("The form needs a field named token."),
        );
    };
    let now = web.app.clock.now();
    match web.guard.try_token(from, form.token.trim(), now) {
        Ok(()) => {
            let mut r = Redirect::to("/incidents").into_response();
            if let Ok(v) = HeaderValue::from_str(&web.guard.session_cookie(now)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(refusal) => refused(&web, refusal, Some("That token is not a viewer token.")),
    }
}

async fn logout(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    if auth::cross_site(&headers) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "A sign-out from another site is refused.",
        );
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&web.guard.cleared_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    warn!(error = %e, "web view: store");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "The database cannot be read right now; try again shortly.",
    )
}

fn bad_query(what: &str, accepted: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Bad query",
        &format!("{what}. Accepted: {accepted}."),
    )
}

fn no_incident(id: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "No such incident",
        &format!("There is no incident {id}. Incidents are named like INC-3."),
    )
}

async fn incidents(State(web): State<Arc<Web>>, RawQuery(query): RawQuery) -> Response {
    let filter = match list::Filter::parse(query.as_deref()) {
        Ok(f) => f,
        Err(e) => return bad_query(&e, list::ACCEPTED),
    };
    let found = match list::incidents(&web.app, filter).await {
        Ok(found) => found,
        Err(e) => return unavailable(e),
    };
    let mut body = String::new();
    let _ = list::render(&mut body, &web.app, &found, web.app.clock.now());
    web.page("Incidents", &body)
}

/// SOP §10.1 per database cluster, as `/dr drills` shows it: each drill kind's standing this
/// quarter and each drill's time to restore against the RTO.
async fn drills(State(web): State<Arc<Web>>) -> Response {
    let view = match web.app.drills_view().await {
        Ok(view) => view,
        Err(e) => return unavailable(e),
    };
    let body = format!(
        "<h1>Drills (SOP §10.1)</h1><pre class=\"drills\">{}</pre>",
        html::Esc(&view)
    );
    web.page("Drills", &body)
}

async fn incident_page(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let before = match incident::parse_query(query.as_deref()) {
        Ok(b) => b,
        Err(e) => return bad_query(&e, "before={event number}, e.g. ?before=1200"),
    };
    let Some(n) = incident_id(&id) else {
        return no_incident(&id);
    };
    let page = match incident::load(&web.app, n, before).await {
        Ok(Some(page)) => page,
        Ok(None) => return no_incident(&id),
        Err(e) => return unavailable(e),
    };
    let mut body = String::new();
    let _ = incident::render(&mut body, &web.app, &page, web.app.clock.now());
    let title = crate::incident::incident_ref(n);
    web.page(&title, &body)
}

/// `GET /incidents/{id}/stream`: the live page's events after `?after=` or, when the browser
/// reconnects, after its `Last-Event-ID`.
async fn stream(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(n) = incident_id(&id) else {
        return no_incident(&id);
    };
    let after = match live_position(query.as_deref(), &headers) {
        Ok(after) => after,
        Err(e) => return bad_query(&e, "after={event number} or a Last-Event-ID header of one"),
    };
    match web.live.page(n, after, web.stopped.clone()).await {
        Ok(Some(frames)) => {
            let mut r = axum::response::sse::Sse::new(frames)
                .keep_alive(axum::response::sse::KeepAlive::new().interval(KEEP_ALIVE))
                .into_response();
            // Proxies that buffer (nginx by default) would hold the events back.
            r.headers_mut()
                .insert("x-accel-buffering", HeaderValue::from_static("no"));
            r
        }
        Ok(None) => no_incident(&id),
        Err(e) => unavailable(e),
    }
}

/// Where a live page resumes: the browser's `Last-Event-ID` when it reconnects, else the
/// `?after=` its page was rendered with, else the start.
fn live_position(query: Option<&str>, headers: &HeaderMap) -> Result<i64, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| "unreadable query".to_string())?;
    let mut after = 0;
    for (key, value) in pairs {
        match (key.as_str(), value.parse::<i64>()) {
            ("after", Ok(seq)) if seq >= 0 => after = seq,
            _ => return Err(format!("{key}={value} is not accepted")),
        }
    }
    if let Some(last) = headers.get("last-event-id") {
        let text = last.to_str().unwrap_or("").trim();
        match text.parse::<i64>() {
            Ok(seq) if seq >= 0 => after = seq,
            // A number past any sequence is read as "everything so far" (it is clamped to
            // the newest event); anything else is refused.
            Err(e) if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) => after = i64::MAX,
            _ => {
                return Err(format!(
                    "Last-Event-ID {:?} is not an event number",
                    text.chars().take(40).collect::<String>()
                ));
            }
        }
    }
    Ok(after)
}

async fn download(
    State(web): State<Arc<Web>>,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    let format = match file.as_str() {
        "export.md" => ExportFormat::Markdown,
        "export.json" => ExportFormat::Json,
        "export.csv" => ExportFormat::Csv,
        _ => {
            return error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "Exports are export.md, export.json and export.csv.",
            );
        }
    };
    let Some(n) = incident_id(&id) else {
        return no_incident(&id);
    };
    match export(&web.app, n, format).await {
        Ok(bytes) => {
            let name = format!("INC-{n}-timeline.{}", format.extension());
            (
                [
                    (header::CONTENT_TYPE, content_type(format).to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                ],
                Body::from(bytes),
            )
                .into_response()
        }
        Err(ExportFailure::Unknown) => no_incident(&id),
        Err(ExportFailure::Store) => unavailable("export"),
        Err(ExportFailure::Export) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Export failed",
            "The export could not be written; the log says why.",
        ),
    }
}
