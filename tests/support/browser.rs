//! Debian's Chromium driven through `chromedriver` with a small W3C WebDriver client
//! (<https://www.w3.org/TR/webdriver2/>): JSON over plain http on 127.0.0.1, only the
//! commands the browser tests send.
//!
//! Without `chromedriver` or Chromium the browser tests skip with the reason printed, unless
//! `DRBOT_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs both): then they fail.
#![allow(dead_code)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

use super::http::{self, free_port};

pub const REQUIRE_ENV: &str = "DRBOT_REQUIRE_BROWSER";
/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The viewport screenshots are taken at.
pub const WINDOW: (u32, u32) = (1280, 900);

/// Upper bound for chromedriver to come up; a guard against hangs, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(30);
/// Upper bound for one WebDriver command (a navigation waits for the page's load event).
const COMMAND_PATIENCE: Duration = Duration::from_secs(60);
/// How often [`Session::wait_for`] looks again: the tests time what the page shows, so a
/// coarser poll would blur the measure.
pub const POLL: Duration = Duration::from_millis(20);

/// One browser at a time: each is a few processes, the machine has two cores, and the tests
/// time what the page does.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// `chromedriver` on a free port of 127.0.0.1 with a Chromium session of its own; the
/// driver (and with it the browser) is killed when this is dropped.
pub struct Browser {
    pub session: Session,
    // Dropped in this order: the driver and its browser, then the profile they wrote to.
    _driver: Driver,
    _profile: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Browser {
    /// A fresh browser, or `None` (the reason printed) when this machine has none and
    /// [`REQUIRE_ENV`] is unset.
    pub async fn start() -> Option<Browser> {
        let driver = match find() {
            Ok(driver) => driver,
            Err(why) if required() => {
                panic!("{REQUIRE_ENV}=1 but the browser tests cannot run: {why}")
            }
            Err(why) => {
                eprintln!("skipping the browser test: {why} (set {REQUIRE_ENV}=1 to fail instead)");
                return None;
            }
        };
        let turn = ONE_AT_A_TIME.lock().await;
        let port = free_port();
        let driver = Driver::spawn(&driver, port);
        let profile = tempfile::tempdir().expect("profile dir");
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&base).await;
        let session = Session::new(&base, capabilities(profile.path())).await;
        fit_viewport(&session).await;
        Some(Browser {
            session,
            _driver: driver,
            _profile: profile,
            _turn: turn,
        })
    }

    /// End the session (Chromium exits); the driver goes with the drop.
    pub async fn close(self) {
        self.session.delete().await;
    }
}

struct Driver(Child);

impl Driver {
    fn spawn(path: &Path, port: u16) -> Driver {
        let mut cmd = Command::new(path);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // A process group of its own, so the drop takes down the browser it started too,
        // even when a test fails before closing its session.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        Driver(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", path.display())),
        )
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn required() -> bool {
    std::env::var(REQUIRE_ENV).as_deref() == Ok("1")
}

/// `chromedriver` on `PATH`, and Chromium where Debian installs it.
fn find() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let driver = std::env::split_paths(&path)
        .map(|dir| dir.join("chromedriver"))
        .find(|p| p.is_file())
        .ok_or("no chromedriver on PATH (Debian: apt-get install chromium-driver)")?;
    if !Path::new(CHROMIUM).is_file() {
        return Err(format!("no {CHROMIUM} (Debian: apt-get install chromium)"));
    }
    Ok(driver)
}

/// `GET /status` answers `ready: true` once the driver takes sessions (W3C WebDriver §8.3).
async fn wait_ready(base: &str) {
    let url = format!("{base}/status");
    super::poll_until(
        "chromedriver to be ready",
        PATIENCE,
        async || match http::send("GET", &url, &[], Vec::new()).await {
            Ok(r) if r.status == 200 && r.json()["value"]["ready"] == true => Some(()),
            _ => None,
        },
        || {},
    )
    .await
}

/// Chromium as root in a container: no sandbox, no GPU, nothing fetched in the background
/// (nothing outside the package registries is reachable here), a profile of its own, and a
/// fixed window so screenshots are the same each run.
fn capabilities(profile: &Path) -> Map<String, Value> {
    let mut caps = Map::new();
    // Navigation returns once the page has loaded (the spec's default, said outright).
    caps.insert("pageLoadStrategy".into(), json!("normal"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            // The W3C dialect (chromedriver's default since 75), not the legacy JSON wire one.
            "w3c": true,
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
                format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            ],
        }),
    );
    caps
}

/// Headless Chromium's `--window-size` is the window's, toolbar included: grow the window by
/// the difference so the page itself gets [`WINDOW`] (what a screenshot holds).
async fn fit_viewport(session: &Session) {
    let inner = "return [window.innerWidth, window.innerHeight]";
    let size = |v: Value| -> (u32, u32) {
        let n = |i: usize| v[i].as_u64().expect("a size") as u32;
        (n(0), n(1))
    };
    let (w, h) = size(session.execute(inner, vec![]).await);
    let (width, height) = (WINDOW.0 + WINDOW.0 - w, WINDOW.1 + WINDOW.1 - h);
    session.set_window_size(width, height).await;
    let now = size(session.execute(inner, vec![]).await);
    assert_eq!(now, WINDOW, "the page's viewport");
}

/// An error a WebDriver command answered (W3C WebDriver §6.6 "Errors"): a 4xx or 5xx whose
/// body is `{"value": {"error", "message", "stacktrace"}}`.
#[derive(Debug)]
pub struct WebDriverError {
    pub status: u16,
    /// The spec's error code, e.g. `no such element`.
    pub error: String,
    pub message: String,
}

impl fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {}): {}", self.error, self.status, self.message)
    }
}

/// What Find Element answers when nothing matches (§12.3.2).
const NO_SUCH_ELEMENT: &str = "no such element";
/// The key a web element reference is sent under (§12.2, "web element identifier").
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One WebDriver session: commands go to `{driver}/session/{id}/…` on a kept-alive
/// connection. Apart from [`Session::find`] (where "nothing matches" is an answer), a command
/// that fails panics with the driver's error.
pub struct Session {
    http: Client<HttpConnector, Full<Bytes>>,
    /// `{driver}/session/{id}`.
    url: String,
}

impl Session {
    /// New Session (§8.1) with `caps` as what every match must have.
    async fn new(driver: &str, caps: Map<String, Value>) -> Session {
        let http = Client::builder(TokioExecutor::new()).build_http();
        let body = json!({"capabilities": {"alwaysMatch": caps, "firstMatch": [{}]}});
        let url = format!("{driver}/session");
        let value = send(&http, Method::POST, &url, Some(body))
            .await
            .unwrap_or_else(|e| panic!("a Chromium session from chromedriver at {driver}: {e}"));
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("New Session answered no sessionId: {value}"));
        Session {
            url: format!("{url}/{id}"),
            http,
        }
    }

    async fn try_command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        send(&self.http, method, &format!("{}{path}", self.url), body).await
    }

    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let what = format!("{method} {path}");
        self.try_command(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {what}: {e}"))
    }

    /// Navigate To (§10.1): returns once the page has loaded.
    pub async fn goto(&self, url: &str) {
        self.command(Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Refresh (§10.5).
    pub async fn refresh(&self) {
        self.command(Method::POST, "/refresh", Some(json!({})))
            .await;
    }

    /// Get Current URL (§10.2).
    pub async fn current_url(&self) -> String {
        let value = self.command(Method::GET, "/url", None).await;
        value
            .as_str()
            .unwrap_or_else(|| panic!("Get Current URL answered {value}"))
            .to_string()
    }

    /// Find Element (§12.3.2) by CSS selector; `Err` with [`NO_SUCH_ELEMENT`] when nothing
    /// matches.
    pub async fn find(&self, css: &str) -> Result<Element<'_>, WebDriverError> {
        let by = json!({"using": "css selector", "value": css});
        let value = self.try_command(Method::POST, "/element", Some(by)).await?;
        Ok(self.element(&value))
    }

    /// Find Elements (§12.3.3) by CSS selector, in document order.
    pub async fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let by = json!({"using": "css selector", "value": css});
        let value = self.command(Method::POST, "/elements", Some(by)).await;
        let list = value
            .as_array()
            .unwrap_or_else(|| panic!("Find Elements answered {value}"));
        list.iter().map(|v| self.element(v)).collect()
    }

    fn element(&self, reference: &Value) -> Element<'_> {
        let id = reference[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not a web element reference: {reference}"));
        Element {
            session: self,
            id: id.to_string(),
        }
    }

    /// [`Session::find`] every [`POLL`] until an element matches or `patience` is up; the
    /// last error when none did, or at once for any error but [`NO_SUCH_ELEMENT`].
    pub async fn wait_for(
        &self,
        css: &str,
        patience: Duration,
    ) -> Result<Element<'_>, WebDriverError> {
        let deadline = Instant::now() + patience;
        loop {
            match self.find(css).await {
                Err(e) if e.error == NO_SUCH_ELEMENT && Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await
                }
                found => return found,
            }
        }
    }

    /// Execute Script (§15.2.1): the function body `script` with `args` as `arguments`;
    /// what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        let body = json!({"script": script, "args": args});
        self.command(Method::POST, "/execute/sync", Some(body))
            .await
    }

    /// Set Window Rect (§11.8.2), size only.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        let rect = json!({"width": width, "height": height});
        self.command(Method::POST, "/window/rect", Some(rect)).await;
    }

    /// Take Screenshot (§17.1): the viewport as PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        let value = self.command(Method::GET, "/screenshot", None).await;
        let text = value
            .as_str()
            .unwrap_or_else(|| panic!("Take Screenshot answered {value}"));
        base64_decode(text)
    }

    /// Delete Session (§8.2): the browser exits.
    pub async fn delete(&self) {
        self.command(Method::DELETE, "", None).await;
    }
}

/// An element of the session's current page.
pub struct Element<'s> {
    session: &'s Session,
    id: String,
}

impl Element<'_> {
    /// Get Element Text (§12.4.5): the rendered text, as a reader sees it.
    pub async fn text(&self) -> String {
        let path = format!("/element/{}/text", self.id);
        let value = self.session.command(Method::GET, &path, None).await;
        value
            .as_str()
            .unwrap_or_else(|| panic!("Get Element Text answered {value}"))
            .to_string()
    }

    /// Get Element Attribute (§12.4.2); `None` when the element has no such attribute.
    pub async fn attr(&self, name: &str) -> Option<String> {
        let path = format!("/element/{}/attribute/{name}", self.id);
        let value = self.session.command(Method::GET, &path, None).await;
        value.as_str().map(str::to_string)
    }
}

/// One command: `body` as JSON, the answer's `value` (§6.5 "Send a response"), or the error
/// it carries. A transport failure or an answer that is not WebDriver JSON panics: neither is
/// something a test could act on.
async fn send(
    http: &Client<HttpConnector, Full<Bytes>>,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, WebDriverError> {
    let what = format!("WebDriver {method} {url}");
    let mut request = hyper::Request::builder().method(method).uri(url);
    let body = match body {
        Some(json) => {
            request = request.header("content-type", "application/json; charset=utf-8");
            Bytes::from(json.to_string())
        }
        None => Bytes::new(),
    };
    let request = request
        .body(Full::new(body))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let exchange = async {
        let response = http
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{what}: reading the answer: {e}"))
            .to_bytes();
        (status, body)
    };
    let (status, body) = tokio::time::timeout(COMMAND_PATIENCE, exchange)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {COMMAND_PATIENCE:?}"));
    let mut answer: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        let text = String::from_utf8_lossy(&body);
        panic!("{what}: HTTP {status}, not JSON ({e}): {text}")
    });
    let value = answer
        .get_mut("value")
        .map(Value::take)
        .unwrap_or_else(|| panic!("{what}: HTTP {status}, no \"value\": {answer}"));
    if status.is_success() {
        return Ok(value);
    }
    let field = |name: &str| value[name].as_str().unwrap_or_default().to_string();
    Err(WebDriverError {
        status: status.as_u16(),
        error: field("error"),
        message: field("message"),
    })
}

/// Standard base64 (RFC 4648 §4), as Take Screenshot encodes the PNG; `=` padding optional.
fn base64_decode(text: &str) -> Vec<u8> {
    let sextet = |c: u8| -> u32 {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("{:?} in the screenshot is not base64", c as char),
        };
        u32::from(v)
    };
    let digits = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() / 4 * 3 + 2);
    for group in digits.chunks(4) {
        assert!(group.len() > 1, "base64 that ends in a lone digit");
        // Four digits are 24 bits, big-endian; a short last group carries one byte per digit
        // after its first.
        let bits = group
            .iter()
            .enumerate()
            .fold(0, |bits, (i, &c)| bits | sextet(c) << (18 - 6 * i));
        out.extend_from_slice(&bits.to_be_bytes()[1..group.len()]);
    }
    out
}
