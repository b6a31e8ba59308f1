//! The incident page in a real browser (issue 24): Debian's Chromium through `chromedriver`,
//! the bot in-process with its Slack endpoint and its web view on 127.0.0.1, or the console
//! binary with `--web` for the README's demo. Skipped without a browser unless
//! `DRBOT_REQUIRE_BROWSER=1` (`.ci/run`).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drbot::incident::EventKind;
use drbot::server::web::WebRunning;
use support::Drbot;
use support::bot::{Bot, SLACK_SECRET, SLACK_TOKEN, t0};
use support::browser::Browser;
use support::http;
use support::slack_api::SlackApi;

/// The Slack channel the incidents are declared in.
const CHANNEL: &str = "C1";
/// An operator by Slack user id.
const OPERATOR: &str = "U1";
/// How long the page may take to show a committed event (issue 24, "Live").
const LIVE_WITHIN: Duration = Duration::from_secs(1);
/// Upper bound for any one wait in the browser (polled every [`support::browser::POLL`]); a
/// guard against hangs, not the measure.
const PATIENCE: Duration = Duration::from_secs(5);

/// The bot with its Slack endpoint (and the Slack stand-in behind it) and the web view on a
/// loopback listener without sign-in.
struct Site {
    bot: Bot,
    api: SlackApi,
    web: WebRunning,
    _dir: tempfile::TempDir,
}

impl Site {
    async fn start(extra: &[(&str, String)]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let api = SlackApi::start(SLACK_TOKEN);
        let mut env = vec![
            ("DRBOT__SLACK__SIGNING_SECRET", SLACK_SECRET.to_string()),
            ("DRBOT__SLACK__BOT_TOKEN", SLACK_TOKEN.to_string()),
            ("DRBOT__SLACK__API_URL", api.base()),
            ("DRBOT__SLACK__OPERATORS", OPERATOR.to_string()),
            ("DRBOT__WEB__LISTEN", "127.0.0.1:0".to_string()),
            ("DRBOT__WEB__AUTH", "none".to_string()),
        ];
        env.extend(extra.iter().cloned());
        let bot = Bot::start(dir.path(), &env, t0()).await;
        let web = bot.start_web().await;
        Site {
            bot,
            api,
            web,
            _dir: dir,
        }
    }

    fn page(&self, path: &str) -> String {
        format!("http://{}{path}", self.web.addr)
    }

    /// `/dr <text>` from the operator, posted to `/slack/commands` and signed as Slack signs
    /// (the signing secret, the request timestamp and the body); the reply's text.
    async fn dr(&self, text: &str) -> String {
        let body = http::slack_command_body(
            text,
            CHANNEL,
            OPERATOR,
            &http::slack_trigger_id(),
            &self.api.response_url("cmd"),
        );
        let headers = http::slack_signed_headers(SLACK_SECRET, self.bot.now_unix(), &body);
        let r = http::post(&self.bot.url("/slack/commands"), &headers, body).await;
        assert_eq!(r.status, 200, "/dr {text}: {}", r.text());
        r.json()["text"].as_str().unwrap_or_default().to_string()
    }

    /// The seq of the incident's note saying `text`.
    async fn note_seq(&self, text: &str) -> i64 {
        let events = self.bot.app().store.events(1).await.unwrap();
        events
            .iter()
            .find(|e| matches!(&e.kind, EventKind::NoteAdded { text: t } if t == text))
            .unwrap_or_else(|| panic!("no note {text:?} in the timeline"))
            .seq
    }

    async fn stop(self, browser: Browser) {
        // The browser first: an open page holds the live stream the web view waits for.
        browser.close().await;
        self.web.stop().await.unwrap();
        self.bot.stop().await;
    }
}

/// `/dr note {text}` through Slack, then wait (up to [`PATIENCE`]) for the open page to show
/// the event without a reload; how long that took from the answer.
async fn note_appears(site: &Site, browser: &Browser, text: &str) -> Duration {
    site.dr(&format!("note {text}")).await;
    let committed = Instant::now();
    let seq = site.note_seq(text).await;
    let row = browser
        .session
        .wait_for(&format!("ol.timeline li#ev-{seq}"), PATIENCE)
        .await
        .unwrap_or_else(|e| panic!("#ev-{seq} not on the open page within {PATIENCE:?}: {e}"));
    let took = committed.elapsed();
    let shown = row.text().await;
    assert!(shown.contains(text), "#ev-{seq} shows {shown:?}");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_committed_through_slack_appears_on_the_open_page_within_a_second() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let site = Site::start(&[]).await;
    let declared = site.dr("declare sev2 data orders database wiped").await;
    assert!(declared.contains("INC-1"), "{declared}");
    let s = &browser.session;
    s.goto(&site.page("/incidents/INC-1")).await;
    let log = s
        .find("ol.timeline[role=\"log\"]")
        .await
        .unwrap_or_else(|e| panic!("the timeline as a log: {e}"));
    assert!(
        log.text().await.contains("orders database wiped"),
        "the declaration on the page"
    );

    // Nothing signals that the page's stream is open; a first note seen live proves it is,
    // and must itself arrive (an event committed while the page connects is not lost).
    note_appears(&site, &browser, "rollback started").await;
    let took = note_appears(&site, &browser, "restore of orders at 62%").await;
    println!("a committed note was on the open page after {took:?}");
    assert!(took < LIVE_WITHIN, "the note took {took:?} to show");
    assert_eq!(
        s.current_url().await,
        site.page("/incidents/INC-1"),
        "shown without leaving the page"
    );
    site.stop(browser).await;
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/continuity")
        .join(name)
}

/// The `data-state` of `service`'s RTO bar on the page as it stands.
async fn rto_state(browser: &Browser, service: &str) -> String {
    let css = format!("#live svg.rto[data-service=\"{service}\"]");
    let s = &browser.session;
    s.wait_for(&css, PATIENCE)
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
    // One script reads it: a live update may replace `#live` (and the bar) at any moment.
    let state = s
        .execute(
            "var bar = document.querySelector(arguments[0]); \
             return bar && bar.getAttribute('data-state');",
            vec![css.clone().into()],
        )
        .await;
    state
        .as_str()
        .unwrap_or_else(|| panic!("{css} has no data-state: {state}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rto_bar_turns_breached_at_the_deadline_on_a_manual_clock() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    // The SRE guide's catalog: user-api is tier high with a 30 minute RTO.
    let catalog = fixture("business-impact-analysis.yaml");
    let site = Site::start(&[("DRBOT__CONTINUITY__CATALOG", catalog.display().to_string())]).await;
    site.dr("declare sev1 data orders wiped services=user-api")
        .await;
    let s = &browser.session;
    s.goto(&site.page("/incidents/INC-1")).await;
    assert_eq!(rto_state(&browser, "user-api").await, "ok");

    // A minute before the deadline it still holds.
    site.bot.advance(chrono::Duration::minutes(29));
    s.refresh().await;
    assert_eq!(rto_state(&browser, "user-api").await, "ok");

    site.bot.advance(chrono::Duration::minutes(2));
    s.refresh().await;
    assert_eq!(rto_state(&browser, "user-api").await, "breached");
    site.stop(browser).await;
}

/// Where the README shows the screenshot from.
const SCREENSHOT: &str = "docs/incident-page.png";
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The README's "Trying it": the console's `--clock` and the lines typed into it.
fn readme_demo() -> (String, Vec<String>) {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Trying it")
        .nth(1)
        .expect("a \"Trying it\" section");
    let clock = section
        .split_whitespace()
        .skip_while(|w| *w != "--clock")
        .nth(1)
        .expect("the demo's --clock")
        .to_string();
    let typed = section
        .split("```text\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the demo's lines");
    let lines = typed
        .lines()
        .map(|l| l.split(" #").next().unwrap_or_default().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    (clock, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_screenshot_is_the_demo_incident_page() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (clock, lines) = readme_demo();
    assert!(
        lines.iter().any(|l| l.starts_with("/dr declare")),
        "{lines:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", http::free_port());
    let mut bot = Drbot::console_args(
        dir.path(),
        &BTreeMap::new(),
        &clock,
        "alice",
        &["--web", &listen],
    );
    for line in &lines {
        bot.say(line);
    }
    let s = &browser.session;
    s.goto(&format!("http://{listen}/incidents/INC-1")).await;
    let h1 = s
        .find("h1")
        .await
        .unwrap_or_else(|e| panic!("a title: {e}"));
    let title = h1.text().await;
    assert!(title.starts_with("INC-1:"), "{title}");
    let png = s.screenshot().await;
    assert!(png.starts_with(PNG_SIGNATURE), "not a PNG");
    assert!(png.len() > 10 * 1024, "{} bytes: a blank page?", png.len());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCREENSHOT);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &png).unwrap();
    println!("{} bytes written to {}", png.len(), path.display());
    browser.close().await;
    bot.kill();
}
