//! Connection hygiene of the `drbot serve` binary under a file limit of 256, as in the bug
//! report: held connections neither starve `/healthz` nor signed commands, slow or idle ones
//! are closed after their timeouts, and running out of descriptors altogether is survived.

mod support;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use support::bot::{SLACK_SECRET, SLACK_TOKEN};
use support::http::{self, free_port};
use support::slack_api::SlackApi;

/// The process file limit the server runs under.
const FILE_LIMIT: u64 = 256;
/// What drbot makes of it: the limit minus the 64 descriptors it keeps for itself.
const EXPECTED_CAP: u64 = 192;
/// Safety net for anything the server is expected to do; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(30);
const API_TOKEN: &str = "connections-test-token";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Serve {
    child: Child,
    addr: SocketAddr,
    base: String,
    api: SlackApi,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// `drbot serve` under `ulimit -n 256`, with Slack on a stand-in and `env` on top.
    async fn start(env: &[(&str, &str)]) -> Serve {
        Serve::start_with_file_limit(FILE_LIMIT, env).await
    }

    async fn start_with_file_limit(file_limit: u64, env: &[(&str, &str)]) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let api = SlackApi::start(SLACK_TOKEN);
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = support::command_with_file_limit(dir.path(), file_limit)
            .arg("serve")
            .env("DRBOT__HTTP__LISTEN", addr.to_string())
            .env("DRBOT__HTTP__API_TOKEN", API_TOKEN)
            .env("DRBOT__SLACK__SIGNING_SECRET", SLACK_SECRET)
            .env("DRBOT__SLACK__BOT_TOKEN", SLACK_TOKEN)
            .env("DRBOT__SLACK__API_URL", api.base())
            .env("DRBOT__SLACK__OPERATORS", "U1")
            .env("DRBOT__SLACK__POST_INTERVAL_MS", "0")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn drbot serve");
        let serve = Serve {
            child,
            addr,
            base: format!("http://{addr}"),
            api,
            _dir: dir,
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            match http::send("GET", &serve.url("/readyz"), &[], Vec::new()).await {
                Ok(r) if r.status == 200 => break,
                _ => {
                    assert!(Instant::now() < deadline, "never became ready");
                    tokio::time::sleep(ms(20)).await;
                }
            }
        }
        serve
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// One sample of `/metrics`, by its full name (labels included).
    async fn metric(&self, name: &str) -> u64 {
        let text = http::get(&self.url("/metrics"), &[]).await.text();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"));
        line.parse::<f64>().expect("a number") as u64
    }

    /// Poll a metric until `ok` holds; returns its value.
    async fn metric_until(&self, name: &str, ok: impl Fn(u64) -> bool) -> u64 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let v = self.metric(name).await;
            if ok(v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{name} stayed at {v}");
            tokio::time::sleep(ms(20)).await;
        }
    }

    /// `GET /healthz` must answer 200; returns how long it took.
    async fn healthz(&self) -> Duration {
        let started = Instant::now();
        let r = http::send("GET", &self.url("/healthz"), &[], Vec::new())
            .await
            .expect("/healthz answered");
        assert_eq!(r.status, 200, "{}", r.text());
        started.elapsed()
    }

    /// A signed `/dr declare` from U1 in `channel`; must answer 200. Returns how long it took.
    async fn declare(&self, channel: &str) -> Duration {
        let body = http::slack_command_body(
            "declare sev2 data orders wiped",
            channel,
            "U1",
            &http::slack_trigger_id(),
            &self.api.response_url("cmd"),
        );
        let headers = http::slack_signed_headers(SLACK_SECRET, http::unix_now(), &body);
        let started = Instant::now();
        let r = http::send("POST", &self.url("/slack/commands"), &headers, body)
            .await
            .expect("/slack/commands answered");
        assert_eq!(r.status, 200, "{}", r.text());
        started.elapsed()
    }

    /// SIGTERM; the process must exit cleanly. Returns how long it took.
    async fn stop(&mut self) -> Duration {
        let started = Instant::now();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "drbot serve exited with {status}");
                return started.elapsed();
            }
            assert!(started.elapsed() < PATIENCE, "drbot serve did not stop");
            tokio::time::sleep(ms(20)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` connections that send nothing.
async fn hold(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    held
}

#[derive(Debug, PartialEq, Eq)]
enum Closed {
    Eof,
    Reset,
}

/// Read until the server closes the connection; what it sent, and how it closed.
async fn until_closed(stream: &mut TcpStream) -> (Vec<u8>, Closed) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Closed::Eof,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Closed::Reset,
                Err(e) => panic!("read: {e}"),
            }
        }
    };
    let how = tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the server never closed the connection");
    (got, how)
}

/// Read one response on a keep-alive connection: (status line, body).
async fn response(stream: &mut TcpStream) -> (String, String) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .expect("content-length");
                if got.len() >= end + 4 + length {
                    let body = String::from_utf8_lossy(&got[end + 4..end + 4 + length]);
                    let status = head.lines().next().unwrap_or_default().to_string();
                    return (status, body.into_owned());
                }
            }
            let n = stream.read(&mut buf).await.expect("read response");
            assert!(
                n > 0,
                "closed mid-response: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("no response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_connections_starve_neither_health_checks_nor_commands() {
    // Timeouts far beyond the test's length: only shedding can close the held connections.
    let mut s = Serve::start(&[
        ("DRBOT__HTTP__HEADER_TIMEOUT_MS", "120000"),
        ("DRBOT__HTTP__IDLE_TIMEOUT_MS", "120000"),
    ])
    .await;
    assert_eq!(s.metric("drbot_http_connections_limit").await, EXPECTED_CAP);

    let first = hold(s.addr, 500).await;
    let health = s.healthz().await;
    let command = s.declare("C1").await;
    let timeline = http::get(
        &s.url("/api/incidents/INC-1/timeline"),
        &[("Authorization", format!("Bearer {API_TOKEN}"))],
    )
    .await;
    assert_eq!(timeline.status, 200, "{}", timeline.text());
    assert_eq!(timeline.json()["incident"]["severity"], "sev2");

    let second = hold(s.addr, 500).await;
    let health_again = s.healthz().await;
    let command_again = s.declare("C2").await;
    eprintln!(
        "with 500 held: /healthz {health:?}, /dr declare {command:?}; \
         with 1000 opened: /healthz {health_again:?}, /dr declare {command_again:?}"
    );

    // The server closed every connection of the first wave to make room, oldest first.
    for mut held in first {
        let (got, how) = until_closed(&mut held).await;
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
        assert_eq!(how, Closed::Eof);
    }
    let shed = s
        .metric(r#"drbot_http_connections_shed_total{closed="idle"}"#)
        .await;
    assert!(shed >= 1000 - EXPECTED_CAP, "shed {shed}");
    assert_eq!(
        s.metric(r#"drbot_http_connections_shed_total{closed="new"}"#)
            .await,
        0
    );
    assert_eq!(
        s.metric(r#"drbot_http_timeouts_total{phase="header"}"#)
            .await,
        0
    );
    // The cap kept the server inside its file limit: no accept ever failed.
    assert_eq!(s.metric("drbot_http_accept_errors_total").await, 0);
    let open = s
        .metric_until("drbot_http_connections_open", |n| n <= EXPECTED_CAP)
        .await;
    eprintln!("shed {shed} idle connections; {open} open afterwards");

    // Stopping with the second wave held: untouched connections are closed at once, not
    // left to their two-minute header deadline.
    let stopped = s.stop().await;
    for mut held in second {
        let (got, how) = until_closed(&mut held).await;
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
        assert_eq!(how, Closed::Eof);
    }
    eprintln!("stopped in {stopped:?} with the second wave held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_after_their_timeouts() {
    const HEADER_MS: u64 = 500;
    const BODY_MS: u64 = 500;
    const IDLE_MS: u64 = 1500;
    let mut s = Serve::start(&[
        ("DRBOT__HTTP__HEADER_TIMEOUT_MS", &HEADER_MS.to_string()),
        ("DRBOT__HTTP__BODY_TIMEOUT_MS", &BODY_MS.to_string()),
        ("DRBOT__HTTP__IDLE_TIMEOUT_MS", &IDLE_MS.to_string()),
    ])
    .await;

    // Connected, nothing sent: closed at the header deadline.
    let started = Instant::now();
    let mut silent = hold(s.addr, 50).await;
    for held in &mut silent {
        let (got, how) = until_closed(held).await;
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
        assert_eq!(how, Closed::Eof);
    }
    let silent_closed = started.elapsed();
    assert!(silent_closed >= ms(HEADER_MS), "{silent_closed:?}");

    // Half a request head, then nothing.
    let started = Instant::now();
    let mut half_head = TcpStream::connect(s.addr).await.unwrap();
    half_head
        .write_all(b"POST /slack/commands HTTP/1.1\r\nHost: drbot\r\nContent-Type: application/x-")
        .await
        .unwrap();
    let (got, half_head_how) = until_closed(&mut half_head).await;
    let half_head_closed = started.elapsed();
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert!(half_head_closed >= ms(HEADER_MS), "{half_head_closed:?}");

    // The whole head and half the body, then nothing: 408, or at least closed.
    let body = http::slack_command_body(
        "declare sev2 data orders wiped",
        "C1",
        "U1",
        &http::slack_trigger_id(),
        &s.api.response_url("cmd"),
    );
    let mut head = format!(
        "POST /slack/commands HTTP/1.1\r\nHost: drbot\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in http::slack_signed_headers(SLACK_SECRET, http::unix_now(), &body) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let started = Instant::now();
    let mut half_body = TcpStream::connect(s.addr).await.unwrap();
    half_body.write_all(head.as_bytes()).await.unwrap();
    half_body
        .write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    let (got, half_body_how) = until_closed(&mut half_body).await;
    let half_body_closed = started.elapsed();
    let answer = String::from_utf8_lossy(&got).into_owned();
    assert!(
        got.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(half_body_closed >= ms(BODY_MS), "{half_body_closed:?}");

    // A body trickled a byte every 100 ms: the deadline is for the whole body.
    let started = Instant::now();
    let mut trickle = TcpStream::connect(s.addr).await.unwrap();
    trickle.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut sent = 0;
    let trickle_how = loop {
        if got.is_empty()
            && sent < body.len()
            && trickle
                .write_all(&body.as_bytes()[sent..=sent])
                .await
                .is_ok()
        {
            sent += 1;
        }
        match tokio::time::timeout(ms(100), trickle.read(&mut buf)).await {
            Err(_) => assert!(started.elapsed() < PATIENCE, "never cut off"),
            Ok(Ok(0)) => break Closed::Eof,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => break Closed::Reset,
            Ok(Err(e)) => panic!("read: {e}"),
        }
    };
    let trickle_closed = started.elapsed();
    let trickle_answer = String::from_utf8_lossy(&got).into_owned();
    assert!(
        got.is_empty() || trickle_answer.starts_with("HTTP/1.1 408"),
        "{trickle_answer}"
    );
    assert!(sent < body.len(), "the whole body went through");
    assert!(trickle_closed >= ms(BODY_MS), "{trickle_closed:?}");

    // Keep-alive works, and a connection left idle after a response is closed after the
    // idle timeout, not the shorter header one.
    let mut keep_alive = TcpStream::connect(s.addr).await.unwrap();
    for _ in 0..2 {
        keep_alive
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: drbot\r\n\r\n")
            .await
            .unwrap();
        let (status, body) = response(&mut keep_alive).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, "ok\n");
    }
    let answered = Instant::now();
    let (got, how) = until_closed(&mut keep_alive).await;
    let idle_closed = answered.elapsed();
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert_eq!(how, Closed::Eof);
    // The server starts the idle wait as it finishes the response, a moment before the
    // client has read it.
    assert!(idle_closed >= ms(IDLE_MS - 100), "{idle_closed:?}");

    // Prompt requests are untouched: a signed command still works, a large body still 413s.
    s.declare("C1").await;
    let huge = format!("text={}", "x".repeat(70 * 1024));
    let headers = http::slack_signed_headers(SLACK_SECRET, http::unix_now(), &huge);
    let r = http::post(&s.url("/slack/commands"), &headers, huge).await;
    assert_eq!(r.status, 413, "{}", r.text());

    let header = s
        .metric(r#"drbot_http_timeouts_total{phase="header"}"#)
        .await;
    let body_timeouts = s.metric(r#"drbot_http_timeouts_total{phase="body"}"#).await;
    let idle = s.metric(r#"drbot_http_timeouts_total{phase="idle"}"#).await;
    assert!(header >= 51, "header timeouts {header}");
    assert!(body_timeouts >= 2, "body timeouts {body_timeouts}");
    assert!(idle >= 1, "idle timeouts {idle}");
    eprintln!(
        "closed: 50 silent after {silent_closed:?}, half a head after {half_head_closed:?} \
         ({half_head_how:?}), \
         half a body after {half_body_closed:?} ({half_body_how:?}, {:?}), trickled body after \
         {trickle_closed:?} ({trickle_how:?}, {sent} bytes sent, {:?}), idle keep-alive after \
         {idle_closed:?}; timeouts: header {header}, body {body_timeouts}, idle {idle}",
        got_status(&answer),
        got_status(&trickle_answer),
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_never_ends_the_accept_loop() {
    // So few descriptors that the smallest connection cap (16) no longer fits: accepts fail
    // with EMFILE while connections are held.
    let mut s =
        Serve::start_with_file_limit(28, &[("DRBOT__HTTP__HEADER_TIMEOUT_MS", "120000")]).await;
    let held = hold(s.addr, 100).await;
    let health = s.healthz().await;
    let failed = s.metric("drbot_http_accept_errors_total").await;
    assert!(
        failed > 0,
        "no accept failed: the limit left room for the cap"
    );
    let health_again = s.healthz().await;
    eprintln!(
        "file limit 28, 100 held: {failed} failed accepts, /healthz {health:?} then {health_again:?}"
    );
    s.stop().await;
    drop(held);
}

fn got_status(answer: &str) -> &str {
    answer.lines().next().unwrap_or("no response")
}
