//! `drbot serve` as a child process on a free port of 127.0.0.1.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::bot::SLACK_SECRET;
use super::http::{self, free_port};
use super::slack_api::SlackApi;

pub struct Serve {
    child: Child,
    pub base: String,
}

impl Serve {
    /// Start in `dir` (SQLite file and sandbox state there unless `env` says otherwise) and
    /// wait until `/readyz` answers.
    pub async fn start(dir: &Path, env: &[(&str, String)]) -> Serve {
        let (child, port) = Serve::spawn(dir, env, Stdio::inherit());
        let serve = Serve {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        serve.ready().await;
        serve
    }

    /// Start without waiting (`Stdio::piped()` for a start expected to fail, to read why).
    pub fn spawn(dir: &Path, env: &[(&str, String)], stderr: Stdio) -> (Child, u16) {
        let port = free_port();
        let mut cmd = super::command(dir);
        cmd.arg("serve")
            .env("DRBOT__HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("DRBOT__SLACK__POST_INTERVAL_MS", "0")
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        (cmd.spawn().expect("spawn drbot serve"), port)
    }

    async fn ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match http::send("GET", &format!("{}/readyz", self.base), &[], Vec::new()).await {
                Ok(r) if r.status == 200 => return,
                _ => {
                    assert!(tokio::time::Instant::now() < deadline, "never became ready");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `/dr <text>` from operator U1 in `channel`, signed as Slack signs; the answer's text.
    pub async fn slack_dr(&self, api: &SlackApi, channel: &str, text: &str) -> String {
        let body = http::slack_command_body(
            text,
            channel,
            "U1",
            &http::slack_trigger_id(),
            &api.response_url("cmd"),
        );
        let headers = http::slack_signed_headers(SLACK_SECRET, http::unix_now(), &body);
        let resp = http::post(&self.url("/slack/commands"), &headers, body).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        resp.json()["text"].as_str().unwrap_or_default().to_string()
    }

    /// SIGKILL: no chance to finish anything, like a crash or an OOM kill.
    pub fn kill(mut self) {
        super::blocking(|| {
            let _ = self.child.kill();
            let _ = self.child.wait();
        });
    }

    /// SIGTERM and wait; the exit must be clean.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let status = super::blocking(|| self.child.wait().expect("wait"));
        assert!(status.success(), "drbot serve exited with {status}");
    }
}

/// A test that fails between start and stop must not leave a server running (it would also
/// hold the test's output open).
impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `check` until it holds; the deadline only guards against a hang.
pub async fn until<T>(what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
    super::poll_until(what, Duration::from_secs(120), check, || ()).await
}

/// Until the outbox of the database at `url` is empty (every process's posts sent).
pub async fn drained(url: &str) {
    let store = drbot::store::Store::connect(url)
        .await
        .expect("open the database");
    until("the outbox to drain", async || {
        (store.pending_posts().await.ok()? == 0).then_some(())
    })
    .await;
    store.close().await;
}
