//! `drbot serve` as a child process on a free port of 127.0.0.1.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::http::{self, free_port};

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
