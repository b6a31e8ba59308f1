//! The HTTP accept loop, ours rather than `axum::serve`'s, which bounds neither how long a
//! client may hold a connection nor how many it may hold.
//!
//! A connection must send its request head within `header_timeout`, counted from the accept
//! or from the first byte after a keep-alive wait; it may wait `idle_timeout` between
//! requests; its bodies must arrive within the body deadline of [`read_body`]. Connections
//! are capped at what the process file limit allows. At the cap the loop keeps accepting and
//! closes the oldest connection with no request in progress: pausing `accept` instead would
//! leave a health check or a signed command in the kernel's backlog behind the held sockets.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::metrics::{Connections, Shed, Timeout};
use crate::config::HttpSettings;

/// File descriptors left for everything but client connections: the database pool (SQLite
/// opens three files per connection), the outbound clients (Slack, Discord, S3, Kubernetes),
/// the listener, the runtime's own and the sandbox state file.
const FD_RESERVE: u64 = 64;
/// However low the file limit, the cap does not go below this: fewer connections would make
/// the edge useless, and running out of descriptors is survived by the accept loop anyway.
const MIN_CONNECTIONS: usize = 16;
/// Pause after a failed accept. The connection stays in the backlog and the listener stays
/// readable, so retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// A condition that can repeat thousands of times a second is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Connection deadlines and the cap, as the accept loop applies them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    /// From the settings, with the cap lowered to fit the process file limit.
    pub fn new(http: &HttpSettings) -> Limits {
        let file_limit = open_file_limit();
        let max_connections = connection_cap(http.max_connections, file_limit);
        if max_connections < http.max_connections {
            info!(
                configured = http.max_connections,
                file_limit,
                reserve = FD_RESERVE,
                max_connections,
                "connection limit lowered to fit the process file limit"
            );
        }
        Limits {
            header_timeout: Duration::from_millis(http.header_timeout_ms),
            idle_timeout: Duration::from_millis(http.idle_timeout_ms),
            max_connections,
        }
    }
}

/// `configured`, or fewer when the file limit leaves less room after [`FD_RESERVE`].
pub fn connection_cap(configured: usize, file_limit: Option<u64>) -> usize {
    match file_limit {
        Some(limit) => {
            let room = usize::try_from(limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
            configured.min(room.max(MIN_CONNECTIONS))
        }
        None => configured,
    }
}

/// The soft RLIMIT_NOFILE, from `/proc/self/limits`: std has no `getrlimit`, and a libc
/// binding for one number at start-up is not worth a dependency and `unsafe`. `None` when
/// unlimited or unreadable (not Linux); then `http.max_connections` alone applies.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_file_limit(&limits)
}

fn parse_file_limit(limits: &str) -> Option<u64> {
    const ROW: &str = "Max open files";
    let row = limits.lines().find(|l| l.starts_with(ROW))?;
    row[ROW.len()..].split_whitespace().next()?.parse().ok()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a connection is in its request cycle, which decides the deadline that applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head since then: from the accept, or from the first byte after
    /// an idle wait.
    Head(Instant),
    /// Keep-alive: the last response went out then and nothing has arrived since.
    Idle(Instant),
    /// This many requests are being read, handled or answered. No connection deadline: the
    /// body has its own, and a handler answers within the platforms' limits.
    Busy(usize),
}

/// One connection's state, shared by its IO (reads), its service (requests) and the accept
/// loop (which closes it to make room).
struct Tracker {
    phase: Mutex<Phase>,
    /// Woken to close the connection at once.
    close: Notify,
    /// Notified once the connection's task has ended and its socket is closed.
    gone: Notify,
}

impl Tracker {
    fn new() -> Arc<Tracker> {
        Arc::new(Tracker {
            phase: Mutex::new(Phase::Head(Instant::now())),
            close: Notify::new(),
            gone: Notify::new(),
        })
    }

    /// Bytes arrived: after an idle wait they start a request head, and its deadline.
    fn heard(&self) {
        let mut phase = lock(&self.phase);
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
        }
    }

    /// A request reached the service; it is in progress until the guard is dropped, which
    /// happens when its response body has been written (or abandoned).
    fn begin(self: &Arc<Self>) -> InFlight {
        let mut phase = lock(&self.phase);
        *phase = match *phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Head(_) | Phase::Idle(_) => Phase::Busy(1),
        };
        InFlight(self.clone())
    }

    fn end(&self) {
        let mut phase = lock(&self.phase);
        *phase = match *phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        };
    }

    fn is_busy(&self) -> bool {
        matches!(*lock(&self.phase), Phase::Busy(_))
    }

    /// When the connection is closed unless it makes progress, and why.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, Timeout)> {
        match *lock(&self.phase) {
            Phase::Head(since) => Some((since + limits.header_timeout, Timeout::Header)),
            Phase::Idle(since) => Some((since + limits.idle_timeout, Timeout::Idle)),
            Phase::Busy(_) => None,
        }
    }
}

struct InFlight(Arc<Tracker>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A response body that keeps its request in progress until hyper is done with it.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, telling its tracker when bytes arrive.
struct Watched {
    io: TcpStream,
    tracker: Arc<Tracker>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.tracker.heard();
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// What the accept loop and its connections share.
struct Shared {
    limits: Limits,
    stats: Arc<Connections>,
    /// Open connections by accept order, so the first idle one is the oldest.
    open: Mutex<BTreeMap<u64, Arc<Tracker>>>,
}

impl Shared {
    /// Close the oldest connection with no request in progress and return it; `None` when
    /// all are busy.
    fn shed_oldest_idle(&self) -> Option<Arc<Tracker>> {
        let mut open = lock(&self.open);
        let oldest = open.iter().find(|(_, t)| !t.is_busy()).map(|(id, _)| *id);
        let victim = oldest.and_then(|id| open.remove(&id))?;
        victim.close.notify_one();
        self.stats.shed(Shed::Idle);
        Some(victim)
    }
}

/// Rate limit for a warning that can repeat thousands of times a second.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// Whether to warn now, and if so how many warnings were held back since the last one.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t < WARN_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The client went away between connecting and our accept: nothing to back off from.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Serve `app` on `listener` until `stop` turns true (or its sender is gone); then stop
/// accepting, let requests in progress finish, close idle connections, and return once every
/// connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<Connections>,
    mut stop: watch::Receiver<bool>,
) {
    stats.set_limit(limits.max_connections);
    let shared = Arc::new(Shared {
        limits,
        stats,
        open: Mutex::new(BTreeMap::new()),
    });
    let mut tasks = JoinSet::new();
    let mut next_id: u64 = 0;
    let mut at_cap = Throttle::default();
    let mut failing = Throttle::default();
    loop {
        // A shed connection gives its descriptor back only when its task ends; until then
        // accepting more would go past the limit, and in a burst past the file limit.
        let room = tasks.len() <= shared.limits.max_connections;
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept(), if room => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of descriptors, mostly (EMFILE, ENFILE): give one back and retry.
                shared.stats.accept_failed();
                let victim = shared.shed_oldest_idle();
                if let Some(suppressed) = failing.due() {
                    warn!(error = %e, shed_idle_connection = victim.is_some(), suppressed, "accept failed; retrying shortly");
                }
                // Retry as soon as the shed connection's descriptor is free, so the backlog
                // drains at the speed of closing rather than one connection per backoff.
                let freed = async {
                    match &victim {
                        Some(v) => v.gone.notified().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = freed => continue,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        };
        let open = lock(&shared.open).len();
        if open >= shared.limits.max_connections {
            let made_room = shared.shed_oldest_idle().is_some();
            if let Some(suppressed) = at_cap.due() {
                warn!(
                    max_connections = shared.limits.max_connections,
                    closed = if made_room {
                        "oldest idle"
                    } else {
                        "new (all busy)"
                    },
                    suppressed,
                    "connection limit reached"
                );
            }
            if !made_room {
                shared.stats.shed(Shed::New);
                drop(stream);
                continue;
            }
        }
        next_id += 1;
        let tracker = Tracker::new();
        lock(&shared.open).insert(next_id, tracker.clone());
        tasks.spawn(connection(
            next_id,
            (stream, peer),
            tracker,
            shared.clone(),
            app.clone(),
            stop.clone(),
        ));
    }
    drop(listener);
    // Each connection watches `stop` itself: idle ones close, busy ones finish first.
    while tasks.join_next().await.is_some() {}
}

/// Forgets a connection however its task ends. Declared before the socket in
/// [`connection`], so it is dropped after it.
struct Open {
    id: u64,
    tracker: Arc<Tracker>,
    shared: Arc<Shared>,
}

impl Drop for Open {
    fn drop(&mut self) {
        lock(&self.shared.open).remove(&self.id);
        self.shared.stats.closed();
        self.tracker.gone.notify_one();
    }
}

enum End {
    Done(Option<hyper::Error>),
    Shed,
    Timeout(Timeout),
}

async fn connection(
    id: u64,
    (stream, peer): (TcpStream, std::net::SocketAddr),
    tracker: Arc<Tracker>,
    shared: Arc<Shared>,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    shared.stats.opened();
    let _open = Open {
        id,
        tracker: tracker.clone(),
        shared: shared.clone(),
    };
    let io = TokioIo::new(Watched {
        io: stream,
        tracker: tracker.clone(),
    });
    let app = TowerToHyperService::new(app);
    let requests = tracker.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        // The web view believes a proxy's header only from the proxy's own address.
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let in_flight = requests.begin();
        let answer = app.call(request);
        async move {
            let response = answer.await?;
            Ok::<_, Infallible>(response.map(|body| Tracked {
                body,
                _in_flight: in_flight,
            }))
        }
    });
    // Our deadlines replace hyper's `header_read_timeout`: in hyper 1.12 its timer also runs
    // through the keep-alive wait (`Conn::poll_read_head`, re-armed when the connection goes
    // idle), so it cannot give a short header deadline and a longer idle one.
    let conn = http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let stopping = stop.wait_for(|s| *s);
    let mut stopping = std::pin::pin!(stopping);
    let mut shutting_down = false;
    let shed = tracker.close.notified();
    let mut shed = std::pin::pin!(shed);
    let limits = shared.limits;
    let sleep = tokio::time::sleep(limits.header_timeout);
    let mut sleep = std::pin::pin!(sleep);
    let end = std::future::poll_fn(|cx| {
        loop {
            if let Poll::Ready(done) = conn.as_mut().poll(cx) {
                return Poll::Ready(End::Done(done.err()));
            }
            if !shutting_down && stopping.as_mut().poll(cx).is_ready() {
                shutting_down = true;
                // Closes an idle or untouched connection, or ends it after the request in
                // progress; hyper acts on it at the next poll.
                conn.as_mut().graceful_shutdown();
                continue;
            }
            break;
        }
        if shed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(End::Shed);
        }
        // Every phase change happens inside `conn.poll` (reads, service calls, response
        // bodies finishing), so the deadline read here is current.
        if let Some((at, why)) = tracker.deadline(&limits) {
            if sleep.deadline() != at {
                sleep.as_mut().reset(at);
            }
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(End::Timeout(why));
            }
        }
        Poll::Pending
    })
    .await;
    match end {
        End::Done(None) => {}
        End::Done(Some(e)) => debug!(error = %e, "connection ended with an error"),
        End::Shed => debug!("closed an idle connection to make room"),
        End::Timeout(why) => {
            shared.stats.timed_out(why);
            debug!(?why, "closed a slow connection");
        }
    }
}

/// What [`read_body`] enforces.
#[derive(Clone)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
    pub stats: Arc<Connections>,
}

/// Reads the whole request body before routing: at most `max_bytes` (413 beyond, as
/// before) and within `timeout` (408 and the connection closed), so a client that stops
/// sending mid-body holds neither a handler nor, for long, a connection.
pub async fn read_body(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return too_large();
    }
    let read = Limited::new(body, limits.max_bytes).collect();
    let bytes = match tokio::time::timeout(limits.timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Ok(Err(e)) => {
            debug!(error = %e, "request body could not be read");
            return (StatusCode::BAD_REQUEST, "request body could not be read\n").into_response();
        }
        Err(_) => {
            limits.stats.timed_out(Timeout::Body);
            return (
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                "request body not received in time\n",
            )
                .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn too_large() -> Response {
    (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            256                  524288               files
Max locked memory         8388608              8388608              bytes
";

    #[test]
    fn the_soft_file_limit_is_read_and_caps_connections() {
        assert_eq!(parse_file_limit(LIMITS), Some(256));
        let unlimited = LIMITS.replace("256                  524288", "unlimited unlimited");
        assert_eq!(parse_file_limit(&unlimited), None);
        assert_eq!(connection_cap(1024, Some(256)), 192);
        assert_eq!(connection_cap(100, Some(256)), 100);
        assert_eq!(connection_cap(1024, None), 1024);
        assert_eq!(connection_cap(1024, Some(10)), MIN_CONNECTIONS);
        assert_eq!(connection_cap(4, Some(10)), 4);
    }

    #[test]
    fn deadlines_follow_the_request_cycle() {
        let limits = Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 8,
        };
        let t = Tracker::new();
        let (_, why) = t.deadline(&limits).unwrap();
        assert_eq!(why, Timeout::Header);
        t.heard();
        assert_eq!(t.deadline(&limits).unwrap().1, Timeout::Header);
        let first = t.begin();
        assert!(t.deadline(&limits).is_none() && t.is_busy());
        let second = t.begin();
        drop(first);
        assert!(t.is_busy());
        drop(second);
        let (idle_until, why) = t.deadline(&limits).unwrap();
        assert_eq!(why, Timeout::Idle);
        t.heard();
        let (head_until, why) = t.deadline(&limits).unwrap();
        assert_eq!(why, Timeout::Header);
        assert!(head_until < idle_until);
    }

    #[test]
    fn the_oldest_idle_connection_is_shed_and_busy_ones_never() {
        let shared = Shared {
            limits: Limits {
                header_timeout: Duration::from_secs(1),
                idle_timeout: Duration::from_secs(1),
                max_connections: 3,
            },
            stats: Arc::default(),
            open: Mutex::new(BTreeMap::new()),
        };
        let trackers: Vec<_> = (0..3).map(|_| Tracker::new()).collect();
        for (id, t) in trackers.iter().enumerate() {
            lock(&shared.open).insert(id as u64, t.clone());
        }
        let _busy = trackers[0].begin();
        assert!(shared.shed_oldest_idle().is_some());
        assert_eq!(
            lock(&shared.open).keys().copied().collect::<Vec<_>>(),
            [0, 2]
        );
        let _also_busy = trackers[2].begin();
        assert!(shared.shed_oldest_idle().is_none());
    }
}
