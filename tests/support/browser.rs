//! Debian's Chromium driven through `chromedriver` (W3C WebDriver) with fantoccini.
//!
//! Without `chromedriver` or Chromium the browser tests skip with the reason printed, unless
//! `DRBOT_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs both): then they fail.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, MutexGuard};

use super::http::{self, free_port};

pub const REQUIRE_ENV: &str = "DRBOT_REQUIRE_BROWSER";
/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The viewport screenshots are taken at.
pub const WINDOW: (u32, u32) = (1280, 900);

/// Upper bound for chromedriver to come up; a guard against hangs, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(30);

/// One browser at a time: each is a few processes, the machine has two cores, and the tests
/// time what the page does.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// `chromedriver` on a free port of 127.0.0.1 with a Chromium session of its own; the
/// driver (and with it the browser) is killed when this is dropped.
pub struct Browser {
    pub client: Client,
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
        let client = connect(&base, profile.path()).await;
        fit_viewport(&client).await;
        Some(Browser {
            client,
            _driver: driver,
            _profile: profile,
            _turn: turn,
        })
    }

    /// End the session (Chromium exits); the driver goes with the drop.
    pub async fn close(self) {
        self.client.close().await.expect("close the session");
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
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
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

async fn connect(base: &str, profile: &Path) -> Client {
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(capabilities(profile));
    builder
        .connect(base)
        .await
        .unwrap_or_else(|e| panic!("a Chromium session from chromedriver at {base}: {e}"))
}

/// Headless Chromium's `--window-size` is the window's, toolbar included: grow the window by
/// the difference so the page itself gets [`WINDOW`] (what a screenshot holds).
async fn fit_viewport(client: &Client) {
    let inner = "return [window.innerWidth, window.innerHeight]";
    let size = |v: Value| -> (u32, u32) {
        let n = |i: usize| v[i].as_u64().expect("a size") as u32;
        (n(0), n(1))
    };
    let (w, h) = size(client.execute(inner, vec![]).await.expect("viewport size"));
    let (width, height) = (WINDOW.0 + WINDOW.0 - w, WINDOW.1 + WINDOW.1 - h);
    client
        .set_window_size(width, height)
        .await
        .expect("resize the window");
    let now = size(client.execute(inner, vec![]).await.expect("viewport size"));
    assert_eq!(now, WINDOW, "the page's viewport");
}
