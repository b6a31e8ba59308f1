//! Drives `drbot console` as a child process: write lines, read output up to a marker.

#![allow(dead_code)]

pub mod bot;
pub mod browser;
pub mod crd_pattern;
pub mod crd_release;
pub mod crd_schema;
pub mod discord_api;
pub mod engine;
pub mod faults;
pub mod github_api;
pub mod http;
pub mod jira_api;
pub mod k8s_api;
pub mod k8s_patch;
pub mod opsgenie;
pub mod pagerduty;
pub mod pg;
pub mod pg_wal;
pub mod rbac;
pub mod recovery;
pub mod s3;
pub mod serve;
pub mod slack_api;
pub mod slack_socket;
pub mod stackgres_controller;
pub mod statuspage_api;
pub mod velero_controller;
pub mod wal;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// Upper bound for a reply to show up; a guard against hangs, not a timing assumption.
const PATIENCE: Duration = Duration::from_secs(60);

/// An unknown console control: its answer is printed once every line before it has been
/// handled.
const BARRIER: &str = ":barrier";
const BARRIER_MARK: &str = "(console controls:";

/// Poll `check` until it holds, calling `between` before each retry; `patience` only guards
/// against a hang, it is never a timing assertion.
pub async fn poll_until<T>(
    what: &str,
    patience: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
    mut between: impl FnMut(),
) -> T {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        between();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub struct Drbot {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub transcript: Vec<String>,
}

pub fn command(dir: &Path) -> Command {
    with_test_env(Command::new(env!("CARGO_BIN_EXE_drbot")), dir)
}

/// [`command`] under `ulimit -n {limit}`: the binary starts with that process file limit.
/// Arguments added to the returned command go to the binary (`sh -c` hands them on).
pub fn command_with_file_limit(dir: &Path, limit: u64) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_drbot"));
    with_test_env(sh, dir)
}

fn with_test_env(mut cmd: Command, dir: &Path) -> Command {
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "DRBOT__DATABASE__URL",
            format!("sqlite://{}", dir.join("drbot.db").display()),
        )
        .env("DRBOT__SANDBOX__STATE_FILE", dir.join("sandbox.json"));
    cmd
}

impl Drbot {
    /// Start `drbot console` in `dir` with a simulated clock.
    pub fn console(dir: &Path, clock: &str, user: &str) -> Drbot {
        Drbot::console_with(dir, &BTreeMap::new(), clock, user)
    }

    /// [`Drbot::console`] with extra environment.
    pub fn console_with(
        dir: &Path,
        env: &BTreeMap<String, String>,
        clock: &str,
        user: &str,
    ) -> Drbot {
        Drbot::console_args(dir, env, clock, user, &[])
    }

    /// [`Drbot::console_with`] with more arguments (`--web 127.0.0.1:8081`).
    pub fn console_args(
        dir: &Path,
        env: &BTreeMap<String, String>,
        clock: &str,
        user: &str,
        more: &[&str],
    ) -> Drbot {
        let mut cmd = command(dir);
        cmd.envs(env)
            .args([
                "console",
                "--channel",
                "ops",
                "--user",
                user,
                "--clock",
                clock,
            ])
            .args(more)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn drbot");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Drbot {
            child,
            stdin,
            lines: rx,
            transcript: Vec::new(),
        }
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to drbot");
        stdin.flush().expect("flush");
    }

    /// Read output until a line contains `marker`; returns everything read.
    pub fn until(&mut self, marker: &str) -> Vec<String> {
        blocking(|| {
            let mut got = Vec::new();
            loop {
                match self.lines.recv_timeout(PATIENCE) {
                    Ok(line) => {
                        self.transcript.push(line.clone());
                        let hit = line.contains(marker);
                        got.push(line);
                        if hit {
                            return got;
                        }
                    }
                    Err(_) => panic!(
                        "no `{marker}` in output; transcript:\n{}",
                        self.transcript.join("\n")
                    ),
                }
            }
        })
    }

    /// Send a line and read up to `marker`.
    pub fn ask(&mut self, line: &str, marker: &str) -> String {
        self.send(line);
        self.until(marker).join("\n")
    }

    /// Send a line and read everything it printed, whatever that is (up to a barrier).
    pub fn say(&mut self, line: &str) -> String {
        self.send(line);
        self.send(BARRIER);
        self.until(BARRIER_MARK).join("\n")
    }

    /// `:tick` until a line contains `marker`; returns everything read.
    pub fn tick_until(&mut self, marker: &str) -> String {
        let mut seen = String::new();
        for _ in 0..10 {
            seen.push_str(&self.say(":tick"));
            seen.push('\n');
            if seen.contains(marker) {
                return seen;
            }
        }
        panic!(
            "no `{marker}` after 10 ticks; transcript:\n{}",
            self.transcript.join("\n")
        )
    }

    /// Close stdin and collect the rest of the output; the process must exit cleanly.
    pub fn finish(mut self) -> Vec<String> {
        drop(self.stdin.take());
        blocking(|| {
            let status = self.child.wait().expect("wait");
            let rest: Vec<String> = self.lines.iter().collect();
            self.transcript.extend(rest.iter().cloned());
            assert!(
                status.success(),
                "drbot exited with {status}; transcript:\n{}",
                self.transcript.join("\n")
            );
            rest
        })
    }

    /// SIGKILL: no chance to clean up, like a crash.
    pub fn kill(mut self) {
        blocking(|| {
            self.child.kill().expect("kill");
            let _ = self.child.wait();
        });
    }
}

/// Run a wait for the child process; on a multi-threaded runtime in `block_in_place`, so
/// stand-ins served by the runtime keep serving on the other worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Run `drbot timeline export` and return the output file's content.
pub fn export(dir: &Path, incident: &str, format: &str) -> String {
    let out: PathBuf = dir.join(format!("export.{format}"));
    let status = command(dir)
        .args(["timeline", "export", incident, "--format", format, "--out"])
        .arg(&out)
        .status()
        .expect("run export");
    assert!(status.success(), "export failed");
    std::fs::read_to_string(out).expect("read export")
}
