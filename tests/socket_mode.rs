//! drbot over Slack Socket Mode: the real server in-process with `slack.socket_mode` on and no
//! signing secret; a stand-in hands out a `ws://` URL from `apps.connections.open`, delivers
//! envelopes over the WebSocket and records the acknowledgements; the Web API stand-in
//! behind it records the posts.

mod support;

use serde_json::Value;
use support::bot::{Bot, SLACK_TOKEN, t0};
use support::http;
use support::slack_api::SlackApi;
use support::slack_socket::{self, SlackSocket};

const CHANNEL: &str = "C1";
const APP_TOKEN: &str = "xapp-test";
/// [`CHANNEL`] as the engine names it.
const SLACK_CHANNEL: &str = "slack:C1";

struct Socket {
    bot: Bot,
    api: SlackApi,
    link: SlackSocket,
    _dir: tempfile::TempDir,
}

async fn socket_mode() -> Socket {
    let dir = tempfile::tempdir().unwrap();
    let api = SlackApi::start(SLACK_TOKEN);
    let link = SlackSocket::start(&api, APP_TOKEN);
    let env = vec![
        ("DRBOT__SLACK__SOCKET_MODE", "true".to_string()),
        ("DRBOT__SLACK__APP_TOKEN", APP_TOKEN.to_string()),
        ("DRBOT__SLACK__BOT_TOKEN", SLACK_TOKEN.to_string()),
        ("DRBOT__SLACK__API_URL", link.base()),
        ("DRBOT__SLACK__OPERATORS", "U1,U2".to_string()),
    ];
    let bot = Bot::start(dir.path(), &env, t0()).await;
    link.connected().await;
    Socket {
        bot,
        api,
        link,
        _dir: dir,
    }
}

impl Socket {
    /// `/dr <text>` from `user` in a new envelope; returns the envelope (to deliver again).
    fn command(&self, envelope_id: &str, user: &str, text: &str) -> Value {
        slack_socket::slash_command(
            envelope_id,
            text,
            CHANNEL,
            user,
            &http::slack_trigger_id(),
            &self.api.response_url(envelope_id),
        )
    }

    /// Deliver `/dr <text>` and return the acknowledgement's payload.
    async fn dr(&self, envelope_id: &str, user: &str, text: &str) -> Value {
        let envelope = self.command(envelope_id, user, text);
        self.link.deliver(&envelope).await;
        self.link.ack(envelope_id).await["payload"].clone()
    }

    /// The answers sent to the response_url of envelope `id`, once there are `n`.
    async fn responses(&self, id: &str, n: usize) -> Vec<Value> {
        self.bot
            .until(
                &format!("{n} answer(s) at {id}'s response_url"),
                async || {
                    let r = self.api.responses_to(id);
                    (r.len() >= n).then_some(r)
                },
            )
            .await
    }

    /// The first delivery of `envelope_id` declared INC-1; the second was recognised.
    async fn assert_handled_once(&self, envelope_id: &str) {
        let acks = self.link.wait_acks(envelope_id, 2).await;
        assert!(text_of(&acks[0]["payload"]).contains("INC-1"), "{acks:?}");
        assert!(
            text_of(&acks[1]["payload"]).contains("already received"),
            "{acks:?}"
        );
    }

    /// One announcement in the channel and one event on the timeline.
    async fn assert_declared_once(&self) {
        let declared = self
            .api
            .posts_in(CHANNEL)
            .into_iter()
            .filter(|p| text_of(p).contains("DISASTER DECLARED"))
            .count();
        assert_eq!(declared, 1);
        assert_eq!(self.bot.event_count(SLACK_CHANNEL).await, 1);
    }

    fn assert_every_call_was_proper(&self) {
        for open in self.link.opens() {
            assert!(
                open.auth_ok,
                "apps.connections.open without the app token: {open:?}"
            );
            assert_eq!(open.method, "POST");
        }
        for call in self.api.calls() {
            assert!(call.auth_ok, "unauthenticated call: {call:?}");
            assert!(call.valid, "call Slack would reject: {call:?}");
        }
    }
}

fn text_of(payload: &Value) -> &str {
    payload["text"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declare_envelope_is_answered_in_its_ack_and_announced() {
    let s = socket_mode().await;
    assert!(!s.link.opens().is_empty());

    let answer = s.dr("E1", "U1", "declare sev2 data orders wiped").await;
    assert_eq!(answer["response_type"], "in_channel", "{answer}");
    assert!(text_of(&answer).contains("INC-1"), "{answer}");

    let announcement = s.bot.post_containing(&s.api, CHANNEL, "orders wiped").await;
    assert_eq!(announcement["channel"], CHANNEL);
    s.bot.drained().await;
    assert!(s.bot.event_count(SLACK_CHANNEL).await >= 1);
    // Answered in the acknowledgement: nothing went to response_url.
    assert!(s.api.responses_to("E1").is_empty());
    s.assert_every_call_was_proper();

    // No signing secret: the HTTP routes stay off.
    let body = http::slack_command_body("status", CHANNEL, "U1", "1.2.3", "http://x");
    let resp = http::post(&s.bot.url("/slack/commands"), &[], body).await;
    assert_eq!(resp.status, 404);
    s.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_envelope_makes_one_incident() {
    let s = socket_mode().await;
    let envelope = s.command("E2", "U1", "declare sev2 data orders wiped");
    s.link.deliver(&envelope).await;
    s.link.deliver(&envelope).await;
    s.assert_handled_once("E2").await;

    s.bot.drained().await;
    s.assert_declared_once().await;
    let store = &s.bot.app().store;
    assert_eq!(
        store.latest_incident_in("slack:C1").await.unwrap(),
        store.open_incident_in("slack:C1").await.unwrap()
    );
    s.assert_every_call_was_proper();
    s.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_verb_gets_a_private_usage_answer_and_stores_nothing() {
    let s = socket_mode().await;
    let answer = s.dr("E3", "U1", "explode everything").await;
    assert_eq!(answer["response_type"], "ephemeral", "{answer}");
    assert!(text_of(&answer).contains("/dr help"), "{answer}");
    assert_eq!(s.bot.latest_incident_in("slack:C1").await, None);
    s.bot.drained().await;
    assert!(s.api.posts_in(CHANNEL).is_empty());
    s.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_over_the_socket_are_pressed_once() {
    let s = socket_mode().await;
    s.dr("E4", "U1", "declare sev1 data orders wiped").await;
    let freeze = s.dr("E5", "U1", "freeze bad migration").await;
    assert!(text_of(&freeze).contains("P1"), "{freeze}");
    let preview = s
        .bot
        .message_containing(&s.api, CHANNEL, "Confirm with `/dr confirm P1`")
        .await;
    let ts = preview["ts"].as_str().unwrap().to_string();

    let press = |envelope_id: &str, user: &str| {
        slack_socket::interactive(
            envelope_id,
            http::slack_block_action_payload(
                user,
                CHANNEL,
                &ts,
                "dr_confirm",
                "1:P1",
                &s.api.response_url(envelope_id),
                Some(&preview),
            ),
        )
    };
    // Two-person rule at sev1: the declaring operator cannot confirm alone.
    s.link.deliver(&press("B1", "U1")).await;
    let ack = s.link.ack("B1").await;
    assert_eq!(ack, serde_json::json!({ "envelope_id": "B1" }));
    let own = s.responses("B1", 1).await;
    assert!(text_of(&own[0]).contains("second operator"), "{own:?}");

    // A second operator confirms; Slack delivers that envelope twice.
    let confirm = press("B2", "U2");
    s.link.deliver(&confirm).await;
    s.link.deliver(&confirm).await;
    s.link.wait_acks("B2", 2).await;
    // The two deliveries are handled side by side: either may be the one that confirms.
    let answers = s.responses("B2", 2).await;
    assert_eq!(
        answers
            .iter()
            .filter(|a| text_of(a).contains("op1"))
            .count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .any(|a| text_of(a).contains("already received")),
        "{answers:?}"
    );

    let store = &s.bot.app().store;
    let id = store.open_incident_in("slack:C1").await.unwrap().unwrap();
    let confirmations = store
        .events(id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind.name() == "launch_confirmed")
        .count();
    assert_eq!(confirmations, 1);
    s.bot.drained().await;
    s.assert_every_call_was_proper();
    s.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_slack_asks_to_reconnect_commands_still_arrive() {
    let s = socket_mode().await;
    let before = s.link.connection_ids();
    let opened = s.link.opens().len();
    s.link.disconnect_all();
    s.bot
        .until("a fresh connection in place of the old ones", async || {
            let now = s.link.connection_ids();
            (!now.is_empty() && now.iter().all(|id| !before.contains(id))).then_some(())
        })
        .await;
    assert!(s.link.opens().len() > opened, "{:?}", s.link.opens());

    let answer = s.dr("E6", "U1", "declare sev2 data orders wiped").await;
    assert!(text_of(&answer).contains("INC-1"), "{answer}");
    s.bot.post_containing(&s.api, CHANNEL, "orders wiped").await;
    s.assert_every_call_was_proper();
    s.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_redelivered_to_another_replica_is_handled_once() {
    let first = socket_mode().await;
    // A second replica on the same database with its own connection to the same app.
    let env: Vec<(&str, String)> = first
        .bot
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let second = Bot::start(&first.bot.dir, &env, t0()).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while first.link.connections() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second replica never connected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let envelope = first.command("E9", "U1", "declare sev2 data orders wiped");
    first.link.deliver_over(0, &envelope);
    first.link.wait_acks("E9", 1).await;
    // Slack did not see that acknowledgement in time and hands the envelope to the other
    // replica's connection.
    first.link.deliver_over(1, &envelope);
    first.assert_handled_once("E9").await;
    first.bot.drained().await;
    first.assert_declared_once().await;
    second.stop().await;
    first.bot.stop().await;
}
