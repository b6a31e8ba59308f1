//! `drbot serve` in-process on 127.0.0.1:0, on SQLite in a temp dir, with a simulated clock
//! the test moves (signatures are made with that clock's time too).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drbot::app::App;
use drbot::clock::{Clock, ManualClock};
use drbot::config::Settings;
use drbot::incident::IncidentId;
use drbot::server::{self, Running, Server};
use serde_json::Value;
use tokio::net::TcpListener;

use super::slack_api::SlackApi;

pub const T0: &str = "2026-02-08T10:00:00Z";
pub const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
pub const SLACK_TOKEN: &str = "xoxb-test-token";
pub const DISCORD_TOKEN: &str = "discord-test-token";
pub const DISCORD_SEED: [u8; 32] = [7; 32];

pub struct Bot {
    pub running: Running,
    pub clock: ManualClock,
    pub env: HashMap<String, String>,
    pub dir: PathBuf,
}

impl Bot {
    /// Start with `env` (DRBOT__… settings) over test defaults; `dir` holds database and
    /// sandbox state, so a second start on the same dir is a restart.
    pub async fn start(dir: &std::path::Path, env: &[(&str, String)], at: DateTime<Utc>) -> Bot {
        let mut vars: HashMap<String, String> = HashMap::from([
            (
                "DRBOT__DATABASE__URL".into(),
                format!("sqlite://{}", dir.join("drbot.db").display()),
            ),
            (
                "DRBOT__SANDBOX__STATE_FILE".into(),
                dir.join("sandbox.json").display().to_string(),
            ),
            ("DRBOT__SLACK__POST_INTERVAL_MS".into(), "0".into()),
        ]);
        for (k, v) in env {
            vars.insert(k.to_string(), v.clone());
        }
        let settings = Settings::load_from(None, Some(vars.clone())).expect("settings");
        let clock = ManualClock::new(at);
        let app = App::build(&settings, Arc::new(clock.clone()))
            .await
            .expect("app");
        let server = Arc::new(Server::new(Arc::new(app), &settings).expect("server"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let running = server::start(server, listener, &settings.http).expect("start");
        Bot {
            running,
            clock,
            env: vars,
            dir: dir.to_path_buf(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    pub fn now_unix(&self) -> i64 {
        self.clock.now().timestamp()
    }

    pub fn app(&self) -> &App {
        &self.running.server.app
    }

    /// Move the clock and let the scheduler and outbox run.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
        self.running.kick();
    }

    /// The web view on this bot's engine and settings (`DRBOT__WEB__…` in its env), on a free
    /// loopback port.
    pub async fn start_web(&self) -> drbot::server::web::WebRunning {
        let settings = Settings::load_from(None, Some(self.env.clone())).expect("settings");
        let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        drbot::server::web::start(
            self.running.server.app.clone(),
            &settings,
            &settings.web,
            socket,
        )
        .expect("web view")
    }

    pub async fn stop(self) {
        self.running.stop().await.expect("clean stop");
    }

    /// The first post to `channel` on the Slack stand-in whose text contains `needle`.
    pub async fn post_containing(&self, api: &SlackApi, channel: &str, needle: &str) -> Value {
        self.until(&format!("a post containing {needle:?}"), async || {
            api.posts_in(channel)
                .into_iter()
                .find(|p| p["text"].as_str().unwrap_or_default().contains(needle))
        })
        .await
    }

    /// The newest message in `channel` on the Slack stand-in (as it stands, with ts and
    /// blocks) whose text contains `needle`.
    pub async fn message_containing(&self, api: &SlackApi, channel: &str, needle: &str) -> Value {
        self.until(&format!("a message containing {needle:?}"), async || {
            api.history(channel)
                .into_iter()
                .rev()
                .find(|m| m["text"].as_str().unwrap_or_default().contains(needle))
        })
        .await
    }

    /// Events of the incident open in `channel` (`slack:C1`); 0 with none open.
    pub async fn event_count(&self, channel: &str) -> usize {
        let store = &self.app().store;
        match store.open_incident_in(channel).await.unwrap() {
            Some(id) => store.events(id).await.unwrap().len(),
            None => 0,
        }
    }

    /// The newest incident declared in `channel` (`slack:C1`), open or closed.
    pub async fn latest_incident_in(&self, channel: &str) -> Option<IncidentId> {
        self.app().store.latest_incident_in(channel).await.unwrap()
    }

    /// Until the outbox has delivered everything.
    pub async fn drained(&self) {
        self.until("the outbox to drain", async || {
            let (depth, _) = self.app().store.outbox_backlog().await.unwrap();
            (depth == 0).then_some(())
        })
        .await;
    }

    /// Poll `check` (waking the workers each time) until it holds; the deadline is only a
    /// safety net for a broken build, never a timing assertion.
    pub async fn until<T>(&self, what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
        let kick = || self.running.kick();
        super::poll_until(what, Duration::from_secs(30), check, kick).await
    }
}

pub fn t0() -> DateTime<Utc> {
    T0.parse().unwrap()
}
