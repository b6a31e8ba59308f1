//! drbot over Slack: the real server on 127.0.0.1:0, requests signed with Slack's algorithm,
//! the Web API played by a stand-in that checks auth and body shapes.

mod support;

use chrono::Duration;
use drbot::clock::Clock;
use serde_json::Value;
use support::bot::{Bot, SLACK_SECRET, SLACK_TOKEN, t0};
use support::http::{self, Response};
use support::slack_api::{Failure, SlackApi};

const CHANNEL: &str = "C1";

struct Slack {
    bot: Bot,
    api: SlackApi,
    _dir: tempfile::TempDir,
}

async fn slack_with(extra: &[(&str, String)]) -> Slack {
    let dir = tempfile::tempdir().unwrap();
    let api = SlackApi::start(SLACK_TOKEN);
    api.set_usergroup("S0OPS", &["U2"]);
    let mut env = vec![
        ("DRBOT__SLACK__SIGNING_SECRET", SLACK_SECRET.to_string()),
        ("DRBOT__SLACK__BOT_TOKEN", SLACK_TOKEN.to_string()),
        ("DRBOT__SLACK__API_URL", api.base()),
        // U1 by id, U2 through the operators' user group.
        ("DRBOT__SLACK__OPERATORS", "U1,S0OPS".to_string()),
    ];
    env.extend(extra.iter().cloned());
    let bot = Bot::start(dir.path(), &env, t0()).await;
    Slack {
        bot,
        api,
        _dir: dir,
    }
}

async fn slack() -> Slack {
    slack_with(&[]).await
}

impl Slack {
    fn body(&self, user: &str, text: &str) -> String {
        http::slack_command_body(
            text,
            CHANNEL,
            user,
            &http::slack_trigger_id(),
            &self.api.response_url("cmd"),
        )
    }

    async fn send(&self, body: &str, headers: &[(&str, String)]) -> Response {
        http::post(&self.bot.url("/slack/commands"), headers, body.to_string()).await
    }

    async fn signed(&self, body: &str) -> Response {
        let headers = http::slack_signed_headers(SLACK_SECRET, self.bot.now_unix(), body);
        self.send(body, &headers).await
    }

    /// `/dr <text>` from `user`; the JSON answer's text.
    async fn dr(&self, user: &str, text: &str) -> String {
        let resp = self.signed(&self.body(user, text)).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        resp.json()["text"].as_str().unwrap_or_default().to_string()
    }

    async fn click(&self, user: &str, action: &str, value: &str, message: &Value) -> String {
        let url_id = format!("click-{}", http::slack_trigger_id());
        let ts = message["ts"].as_str().unwrap_or_default();
        let payload = http::slack_block_action_payload(
            user,
            CHANNEL,
            ts,
            action,
            value,
            &self.api.response_url(&url_id),
            Some(message),
        );
        let body = http::slack_interaction_body(&payload);
        let headers = http::slack_signed_headers(SLACK_SECRET, self.bot.now_unix(), &body);
        let resp = http::post(&self.bot.url("/slack/interactions"), &headers, body).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        let answers = self
            .bot
            .until("the button's answer", async || {
                let r = self.api.responses_to(&url_id);
                (!r.is_empty()).then_some(r)
            })
            .await;
        answers[0]["text"].as_str().unwrap_or_default().to_string()
    }

    /// Posts delivered to the channel so far (request bodies, in order).
    fn posts(&self) -> Vec<Value> {
        self.api.posts_in(CHANNEL)
    }

    async fn post_containing(&self, needle: &str) -> Value {
        self.bot.post_containing(&self.api, CHANNEL, needle).await
    }

    /// The channel message (as it stands, with ts and blocks) whose text contains `needle`.
    async fn message_containing(&self, needle: &str) -> Value {
        self.bot
            .message_containing(&self.api, CHANNEL, needle)
            .await
    }

    async fn event_count(&self) -> usize {
        self.bot.event_count(&format!("slack:{CHANNEL}")).await
    }

    async fn drained(&self) {
        self.bot.drained().await
    }

    fn assert_every_call_was_proper(&self) {
        for call in self.api.calls() {
            assert!(call.auth_ok, "unauthenticated call: {call:?}");
            assert!(call.valid, "call Slack would reject: {call:?}");
        }
    }
}

/// The button value of `action` in a message's blocks.
fn button_value(message: &Value, action: &str) -> String {
    message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["elements"].as_array().into_iter().flatten())
        .find(|e| e["action_id"] == action)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("no {action} button in {message}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_is_acknowledged_and_announced_and_forgeries_change_nothing() {
    let s = slack().await;
    let body = s.body("U1", "declare sev1 data orders wiped");
    let resp = s.signed(&body).await;
    assert_eq!(resp.status, 200);
    let answer = resp.json();
    assert_eq!(answer["response_type"], "in_channel");
    assert!(
        answer["text"].as_str().unwrap().contains("INC-1"),
        "{answer}"
    );

    let announcement = s.post_containing("SEV1").await;
    assert_eq!(announcement["channel"], CHANNEL);
    assert!(
        announcement["text"]
            .as_str()
            .unwrap()
            .contains("orders wiped")
    );
    // The status message is posted once and pinned.
    s.bot
        .until("the status message pinned", async || {
            (s.api.calls_to("pins.add").len() == 1).then_some(())
        })
        .await;
    s.drained().await;
    s.assert_every_call_was_proper();
    let events = s.event_count().await;
    assert!(events >= 1);

    // The same body with a wrong signature: 401, nothing stored or posted.
    let posts = s.posts().len();
    let forged = http::slack_signed_headers("not-the-secret", s.bot.now_unix(), &body);
    assert_eq!(s.send(&body, &forged).await.status, 401);
    let other = s.body("U1", "resolve");
    let mut swapped = http::slack_signed_headers(SLACK_SECRET, s.bot.now_unix(), &body);
    swapped[2].1 = http::slack_signature(SLACK_SECRET, s.bot.now_unix(), &body);
    assert_eq!(
        s.send(&other, &swapped).await.status,
        401,
        "signature of another body"
    );
    assert_eq!(s.event_count().await, events);
    s.drained().await;
    assert_eq!(s.posts().len(), posts);
    s.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_missing_oversized_and_malformed_requests_are_refused() {
    let s = slack().await;
    let body = s.body("U1", "declare sev2 data orders wiped");
    let stale = http::slack_signed_headers(SLACK_SECRET, s.bot.now_unix() - 301, &body);
    assert_eq!(s.send(&body, &stale).await.status, 401);
    let future = http::slack_signed_headers(SLACK_SECRET, s.bot.now_unix() + 301, &body);
    assert_eq!(s.send(&body, &future).await.status, 401);
    let unsigned = [(
        "Content-Type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    assert_eq!(s.send(&body, &unsigned).await.status, 401);

    let huge = s.body("U1", &format!("note {}", "x".repeat(70 * 1024)));
    assert_eq!(s.signed(&huge).await.status, 413);
    assert_eq!(s.signed("%%%not a form").await.status, 400);
    assert_eq!(s.signed("command=%2Fdr&text=status").await.status, 400);
    let interaction = "payload=%7Bnot%20json";
    let headers = http::slack_signed_headers(SLACK_SECRET, s.bot.now_unix(), interaction);
    let resp = http::post(&s.bot.url("/slack/interactions"), &headers, interaction).await;
    assert_eq!(resp.status, 400);

    // Signed but nonsense: a usage message for the sender only.
    let resp = s.signed(&s.body("U1", "explode everything")).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["response_type"], "ephemeral");
    assert!(resp.json()["text"].as_str().unwrap().contains("/dr help"));

    assert_eq!(s.bot.latest_incident_in("slack:C1").await, None);
    let metrics = http::get(&s.bot.url("/metrics"), &[]).await.text();
    assert!(
        metrics.contains("drbot_requests_rejected_total{platform=\"slack\",reason=\"stale\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("reason=\"missing_signature\"} 1"),
        "{metrics}"
    );
    s.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_and_replayed_commands_are_done_once() {
    let s = slack().await;
    let body = s.body("U1", "declare sev2 data orders wiped");
    let first = s.signed(&body).await;
    assert_eq!(first.status, 200);
    let mut retry = http::slack_signed_headers(SLACK_SECRET, s.bot.now_unix(), &body);
    retry.push(("X-Slack-Retry-Num", "1".into()));
    retry.push(("X-Slack-Retry-Reason", "http_timeout".into()));
    let second = s.send(&body, &retry).await;
    assert_eq!(second.status, 200);
    assert!(
        second.json()["text"]
            .as_str()
            .unwrap()
            .contains("already received"),
        "{}",
        second.text()
    );
    s.drained().await;
    let declared: Vec<Value> = s
        .posts()
        .into_iter()
        .filter(|p| {
            p["text"]
                .as_str()
                .unwrap_or_default()
                .contains("DISASTER DECLARED")
        })
        .collect();
    assert_eq!(declared.len(), 1, "{declared:?}");
    assert_eq!(s.event_count().await, 1);

    // Six minutes later the captured request is stale.
    s.bot.advance(Duration::minutes(6));
    let old = http::slack_signed_headers(SLACK_SECRET, s.bot.now_unix() - 360, &body);
    assert_eq!(s.send(&body, &old).await.status, 401);
    s.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_need_operators_and_never_launch_twice() {
    let s = slack().await;
    s.dr("U1", "declare sev1 data orders wiped").await;
    let refused = s.dr("U9", "freeze bad migration").await;
    assert!(refused.contains("operator"), "{refused}");

    assert!(s.dr("U1", "freeze bad migration").await.contains("P1"));
    let preview = s.message_containing("Confirm with `/dr confirm P1`").await;
    let value = button_value(&preview, "dr_confirm");
    assert_eq!(value, "1:P1");

    let own = s.click("U1", "dr_confirm", &value, &preview).await;
    assert!(own.contains("second operator"), "{own}");
    let outsider = s.click("U9", "dr_confirm", &value, &preview).await;
    assert!(outsider.contains("operator"), "{outsider}");
    // U2 is an operator through the S0OPS user group.
    let confirmed = s.click("U2", "dr_confirm", &value, &preview).await;
    assert!(confirmed.contains("op1"), "{confirmed}");
    let again = s.click("U2", "dr_confirm", &value, &preview).await;
    assert!(!again.contains("launched"), "{again}");
    let stale = s.click("U2", "dr_confirm", "7:P1", &preview).await;
    assert!(stale.contains("INC-7"), "{stale}");

    let id = s
        .bot
        .app()
        .store
        .open_incident_in("slack:C1")
        .await
        .unwrap()
        .unwrap();
    let events = s.bot.app().store.events(id).await.unwrap();
    let confirmations = events
        .iter()
        .filter(|e| e.kind.name() == "launch_confirmed")
        .count();
    assert_eq!(confirmations, 1);
    s.drained().await;
    s.assert_every_call_was_proper();
    s.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_incident_over_slack() {
    let s = slack().await;
    s.dr("U1", "declare sev1 data \"orders table wiped\"").await;
    s.dr("U1", "role comms <@U3|carol>").await;
    s.dr("U1", "freeze bad migration").await;
    let freeze = s.message_containing("confirm P1").await;
    s.click(
        "U2",
        "dr_confirm",
        &button_value(&freeze, "dr_confirm"),
        &freeze,
    )
    .await;
    s.post_containing("op1 succeeded").await;

    let pitr = s.dr("U1", "pitr 2026-02-08T09:55Z").await;
    assert!(pitr.contains("P2"), "{pitr}");
    let preview = s.message_containing("confirm P2").await;
    assert!(preview["text"].as_str().unwrap().contains("[SANDBOX]"));
    let answer = s
        .click(
            "U2",
            "dr_confirm",
            &button_value(&preview, "dr_confirm"),
            &preview,
        )
        .await;
    assert!(answer.contains("P2"), "{answer}");
    let launched = s.post_containing("op2 launched").await;
    // Progress goes in the thread under the pinned status message; the outcome to the channel.
    let pinned = s.api.calls_to("pins.add");
    assert_eq!(pinned.len(), 1);
    assert_eq!(
        launched["thread_ts"], pinned[0].body["timestamp"],
        "{launched}"
    );
    s.bot.advance(Duration::minutes(20));
    let done = s.post_containing("op2 succeeded").await;
    assert!(done.get("thread_ts").is_none(), "{done}");

    s.bot.advance(Duration::minutes(15));
    let verify = s.dr("U1", "verify").await;
    assert!(verify.contains("9.1.1"), "{verify}");
    // The checklist comes with tick buttons; tick one by button, the rest by command.
    let resp = s.signed(&s.body("U3", "checklist 9.1")).await;
    let reply = resp.json();
    let tick = reply["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["elements"].as_array().into_iter().flatten())
        .find(|e| e["value"] == "1:9.1.4")
        .unwrap_or_else(|| panic!("no tick button for 9.1.4 in {reply}"))
        .clone();
    assert_eq!(tick["action_id"], "dr_check");
    let ticked = s.click("U3", "dr_check", "1:9.1.4", &freeze).await;
    assert!(ticked.contains("9.1.4"), "{ticked}");
    for item in [
        "9.2.1", "9.2.2", "9.3.4", "9.3.5", "9.4.1", "9.4.2", "9.4.3", "9.4.4", "9.4.5", "9.6.1",
        "9.8.3", "9.8.4",
    ] {
        let r = s.dr("U3", &format!("check {item} done")).await;
        assert!(r.contains(item), "{r}");
    }
    assert!(s.dr("U1", "unfreeze").await.contains("P3"));
    let unfreeze = s.message_containing("confirm P3").await;
    s.click(
        "U2",
        "dr_confirm",
        &button_value(&unfreeze, "dr_confirm"),
        &unfreeze,
    )
    .await;
    s.post_containing("op3 succeeded").await;
    let resolved = s.dr("U1", "resolve").await;
    assert!(resolved.contains("resolved"), "{resolved}");
    s.bot.advance(Duration::minutes(31));
    s.post_containing("Final summary for INC-1").await;

    let export = s.dr("U1", "timeline export json").await;
    assert!(export.contains("INC-1-timeline.json"), "{export}");
    let upload = s
        .bot
        .until("the export upload", async || {
            s.api.uploads().into_iter().next()
        })
        .await;
    let json: Value = serde_json::from_slice(&upload.bytes).unwrap();
    assert_eq!(json["schema"], "drbot.timeline/v1");
    s.bot
        .until("the upload completed", async || {
            (!s.api.calls_to("files.completeUploadExternal").is_empty()).then_some(())
        })
        .await;
    s.drained().await;
    assert!(!s.api.calls_to("chat.update").is_empty(), "status edited");
    s.assert_every_call_was_proper();

    // Nothing was posted twice: every outbox id appears once in the metadata.
    let mut ids: Vec<String> = s
        .posts()
        .iter()
        .filter_map(|p| {
            p["metadata"]["event_payload"]["outbox"]
                .as_str()
                .map(String::from)
        })
        .collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total);
    s.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_storm_delays_posts_but_loses_and_doubles_none() {
    let s = slack().await;
    for _ in 0..4 {
        s.api.fail_next(
            "chat.postMessage",
            Failure::RateLimited {
                retry_after_secs: 2,
            },
        );
    }
    s.api.fail_next("chat.postMessage", Failure::ServerError);
    // Applied, then answered 500: the retry must find it instead of posting again.
    s.api
        .fail_next("chat.postMessage", Failure::ReplyAfterApplying);
    s.dr("U1", "declare sev2 data orders wiped").await;
    for n in 1..=3 {
        s.dr("U1", &format!("update storm update {n}")).await;
    }
    // Each simulated second: wait until nothing is due (delivered, or backing off as told),
    // then let the clock move on.
    for _ in 0..60 {
        let (depth, _) = s.bot.app().store.outbox_backlog().await.unwrap();
        if depth == 0 {
            break;
        }
        s.bot
            .until("the due posts to be handled", async || {
                let now = s.bot.clock.now();
                let pending = s.bot.app().store.pending_rows().await.unwrap();
                (!anything_due(&pending, now)).then_some(())
            })
            .await;
        s.bot.advance(Duration::seconds(1));
    }
    s.drained().await;
    let limited = s
        .api
        .calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.answered == 429)
        .count();
    assert_eq!(limited, 4);
    let texts = s.api.history_texts(CHANNEL);
    let declared = texts
        .iter()
        .filter(|t| t.contains("DISASTER DECLARED"))
        .count();
    assert_eq!(declared, 1, "{texts:#?}");
    let updates: Vec<usize> = (1..=3)
        .map(|n| {
            let needle = format!("storm update {n}");
            let found: Vec<usize> = texts
                .iter()
                .enumerate()
                .filter(|(_, t)| t.contains(&needle))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(found.len(), 1, "{needle}: {texts:#?}");
            found[0]
        })
        .collect();
    assert!(updates.windows(2).all(|w| w[0] < w[1]), "order: {texts:#?}");
    s.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_timeline_api_and_restart() {
    let dir_token = "api-token-123".to_string();
    let s = slack_with(&[("DRBOT__HTTP__API_TOKEN", dir_token.clone())]).await;
    assert_eq!(http::get(&s.bot.url("/healthz"), &[]).await.status, 200);
    assert_eq!(http::get(&s.bot.url("/readyz"), &[]).await.status, 200);
    s.dr("U1", "declare sev2 data orders wiped").await;
    let metrics = http::get(&s.bot.url("/metrics"), &[]).await.text();
    assert!(
        metrics.contains(
            "drbot_commands_total{platform=\"slack\",verb=\"declare\",outcome=\"changed\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("drbot_ack_seconds_count{platform=\"slack\"} 1"));
    assert!(metrics.contains("drbot_outbox_depth "));
    assert!(metrics.contains("drbot_cadence_lag_seconds "));

    let url = s.bot.url("/api/incidents/INC-1/timeline?format=json");
    assert_eq!(http::get(&url, &[]).await.status, 401);
    let wrong = [("Authorization", "Bearer nope".to_string())];
    assert_eq!(http::get(&url, &wrong).await.status, 401);
    let auth = [("Authorization", format!("Bearer {dir_token}"))];
    let export = http::get(&url, &auth).await;
    assert_eq!(export.status, 200);
    assert_eq!(export.json()["schema"], "drbot.timeline/v1");
    let csv = s.bot.url("/api/incidents/1/timeline?format=csv");
    assert_eq!(http::get(&csv, &auth).await.status, 200);
    let bad = s.bot.url("/api/incidents/1/timeline?format=pdf");
    assert_eq!(http::get(&bad, &auth).await.status, 400);
    let missing = s.bot.url("/api/incidents/99/timeline");
    assert_eq!(http::get(&missing, &auth).await.status, 404);

    // A clean stop and a start on the same database: the incident is still open.
    let Slack { bot, api, _dir } = s;
    let env: Vec<(String, String)> = bot.env.clone().into_iter().collect();
    let at = bot.clock.now();
    let dir = bot.dir.clone();
    bot.stop().await;
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let bot = Bot::start(&dir, &env, at).await;
    let again = Slack { bot, api, _dir };
    let status = again.dr("U1", "status").await;
    assert!(status.contains("INC-1"), "{status}");
    again.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_command_is_acknowledged_then_answered_through_response_url() {
    // No time budget at all: every command takes the slow path.
    let s = slack_with(&[("DRBOT__HTTP__ACK_BUDGET_MS", "0".to_string())]).await;
    let resp = s
        .signed(&http::slack_command_body(
            "declare sev2 data orders wiped",
            CHANNEL,
            "U1",
            &http::slack_trigger_id(),
            &s.api.response_url("slow"),
        ))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["response_type"], "ephemeral");
    assert!(
        resp.json()["text"]
            .as_str()
            .unwrap()
            .contains("Working on it")
    );
    let late = s
        .bot
        .until("the late answer", async || {
            s.api.responses_to("slow").into_iter().next()
        })
        .await;
    assert_eq!(late["response_type"], "in_channel", "{late}");
    assert!(late["text"].as_str().unwrap().contains("INC-1"), "{late}");
    s.post_containing("DISASTER DECLARED").await;
    s.bot.stop().await;
}

/// A client that hangs up while its command is being worked on does not stop the command
/// half-way: what was decided is done and posted as if the answer had been read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_whose_client_hangs_up_runs_to_its_end() {
    let s = slack().await;
    // U2 is an operator through the user group: the lookup waits at the gate, mid-command.
    s.api.gate("usergroups.users.list");
    let body = s.body("U2", "declare sev2 data orders wiped");
    let headers = http::slack_signed_headers(SLACK_SECRET, s.bot.now_unix(), &body);
    let url = s.bot.url("/slack/commands");
    let client = tokio::spawn(async move { http::post(&url, &headers, body).await });
    s.bot
        .until("the command at the gate", async || {
            (s.api.waiting_at_gates() == 1).then_some(())
        })
        .await;
    // The client gives up: its connection closes with the answer not yet sent.
    client.abort();
    assert!(client.await.unwrap_err().is_cancelled());
    s.api.open_gate("usergroups.users.list");
    s.post_containing("DISASTER DECLARED").await;
    let status = s.dr("U1", "status").await;
    assert!(status.contains("INC-1"), "{status}");
    s.bot.stop().await;
}

/// Whether the outbox has something it may send at `now`: the oldest pending post of a
/// channel when due, or a due status post with no older post of its channel pending.
fn anything_due(pending: &[drbot::store::PendingPost], now: chrono::DateTime<chrono::Utc>) -> bool {
    pending.iter().enumerate().any(|(i, row)| {
        let older_post = pending[..i]
            .iter()
            .any(|p| p.channel == row.channel && !p.status);
        row.next_attempt_at <= now && !older_post
    })
}

/// Slack's certificate check: an unsigned form with `ssl_check=1` gets 200 and an empty
/// body, as Bolt answers it; nothing is stored and nothing is posted. A signed command
/// whose text merely mentions it is still a command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_check_requests_get_200_before_signature_checking() {
    let s = slack().await;
    let form = [(
        "Content-Type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    let resp = s
        .send("ssl_check=1&token=legacy-verification-token", &form)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.text().is_empty(), "{}", resp.text());
    let resp = s.send("ssl_check=1", &[]).await;
    assert_eq!(resp.status, 200);
    // Anything else unsigned is still refused.
    assert_eq!(s.send("ssl_check=0", &form).await.status, 401);
    let forged = s.body("U1", "declare sev2 data orders wiped") + "&ssl_check=0";
    assert_eq!(s.send(&forged, &form).await.status, 401);
    let text = s.dr("U1", "note ssl_check=1").await;
    assert!(text.contains("no open incident"), "{text}");
    assert_eq!(
        s.bot.latest_incident_in("slack:C1").await,
        None,
        "no incident was opened"
    );
    assert!(
        s.api.calls_to("chat.postMessage").is_empty(),
        "{:?}",
        s.api.calls()
    );
    s.bot.stop().await;
}

/// The kubernetes backend on the StackGres emulator: a PITR past the archive's last commit
/// crash-loops on PostgreSQL's FATAL (StackGres writes no `Failed=True`), and the channel
/// is told it failed, with the FATAL and the next step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_fails_as_stackgres_fails_is_posted_failed_with_its_cause() {
    use support::k8s_api::K8sApi;
    use support::recovery::{kubernetes_env, offsite_bucket, seed_cluster, t, write_kubeconfig};
    let dir = tempfile::tempdir().unwrap();
    let k8s = K8sApi::start();
    seed_cluster(&k8s, None);
    k8s.set_archive_last_commit("orders", t("2026-02-08T09:50:00Z"));
    let s3 = offsite_bucket().await;
    let kubeconfig = write_kubeconfig(dir.path(), &k8s.url(), true);
    let env: Vec<(String, String)> = kubernetes_env(&kubeconfig, &s3).into_iter().collect();
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let s = slack_with(&env).await;
    s.dr("U1", "declare sev1 data \"orders table wiped\"").await;
    assert!(s.dr("U1", "pitr 2026-02-08T09:55Z").await.contains("P1"));
    let preview = s.message_containing("confirm P1").await;
    s.click(
        "U2",
        "dr_confirm",
        &button_value(&preview, "dr_confirm"),
        &preview,
    )
    .await;
    s.post_containing("op1 launched").await;
    // Each look steps the world one minute: the operator, kubelet and drbot's clock.
    let failed = s
        .bot
        .until("op1 failed", async || {
            k8s.set_stackgres_time(s.bot.clock.now());
            k8s.run_stackgres();
            s.bot.advance(Duration::minutes(1));
            s.posts().into_iter().find(|p| {
                p["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("op1 failed")
            })
        })
        .await;
    let text = failed["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("FATAL:  recovery ended before configured recovery target was reached"),
        "{text}"
    );
    assert!(text.contains("STOP and escalate"), "{text}");
    s.assert_every_call_was_proper();
    s.bot.stop().await;
}
