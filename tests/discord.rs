//! `drbot serve` over Discord, end to end: signed interactions in, REST calls out to the
//! Discord stand-in, with the engine's clock under the test's control.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use chrono::Duration;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use support::bot::{self, Bot, DISCORD_SEED, DISCORD_TOKEN};
use support::discord_api::{Call, DiscordApi, Failure};
use support::http::{self, DISCORD_APPLICATION_ID, DISCORD_GUILD_ID};

const EPHEMERAL: u64 = 64;

/// Operators are configured as one role and one user.
const OPS_ROLE: &str = "1400000000000000301";
const OTHER_ROLE: &str = "1400000000000000302";
/// Holds `OPS_ROLE`.
const ALICE: &str = "1400000000000000201";
/// Listed as an operator by user id.
const BOB: &str = "1400000000000000202";
/// A guild member with no operator role.
const MALLORY: &str = "1400000000000000203";

// ---------------------------------------------------------------------------------------
// Rig: the bot, the Discord stand-in and a way to send signed interactions
// ---------------------------------------------------------------------------------------

struct Rig {
    bot: Bot,
    api: DiscordApi,
    key: SigningKey,
    next_id: AtomicU64,
    _dir: tempfile::TempDir,
}

/// What the bot answered to an interaction (after the follow-up, if it deferred).
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Interaction response type: 4 (message) or 5 (deferred, content from the edit).
    kind: u64,
    content: String,
    flags: u64,
    components: Value,
}

impl Answer {
    fn private(&self) -> bool {
        self.flags & EPHEMERAL != 0
    }
}

impl Rig {
    async fn start() -> Rig {
        Rig::start_with(&[]).await
    }

    async fn start_with(extra: &[(&str, String)]) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let api = DiscordApi::start(DISCORD_TOKEN, DISCORD_APPLICATION_ID);
        let (key, public_hex) = http::discord_keypair(DISCORD_SEED);
        let env = [
            ("DRBOT__DISCORD__PUBLIC_KEY", public_hex),
            ("DRBOT__DISCORD__BOT_TOKEN", DISCORD_TOKEN.to_string()),
            (
                "DRBOT__DISCORD__APPLICATION_ID",
                DISCORD_APPLICATION_ID.to_string(),
            ),
            ("DRBOT__DISCORD__API_URL", api.base()),
            ("DRBOT__DISCORD__OPERATORS", format!("{OPS_ROLE},{BOB}")),
        ];
        let env: Vec<(&str, String)> = env.into_iter().chain(extra.iter().cloned()).collect();
        let bot = Bot::start(dir.path(), &env, bot::t0()).await;
        Rig {
            bot,
            api,
            key,
            next_id: AtomicU64::new(1_450_000_000_000_000_001),
            _dir: dir,
        }
    }

    async fn finish(self) {
        self.bot.stop().await;
    }

    fn fresh_id(&self) -> String {
        self.next_id.fetch_add(1, Ordering::Relaxed).to_string()
    }

    fn url(&self) -> String {
        self.bot.url("/discord/interactions")
    }

    /// POST a body signed with the bot's clock.
    async fn post_signed(&self, body: &str) -> http::Response {
        let headers = http::discord_signed_headers(&self.key, self.bot.now_unix(), body);
        http::post(&self.url(), &headers, body.to_string()).await
    }

    /// `/dr …` from `user` in `channel` as a fresh interaction.
    async fn command(&self, channel: &str, user: &str, roles: &[&str], options: Value) -> Answer {
        let id = self.fresh_id();
        let body = http::discord_command(&id, channel, user, roles, DISCORD_GUILD_ID, options);
        self.deliver(&id, channel, &body).await
    }

    /// A click on button `custom_id` of message `message_id`, as a fresh interaction.
    async fn click(
        &self,
        channel: &str,
        user: &str,
        roles: &[&str],
        custom_id: &str,
        message_id: &str,
    ) -> Answer {
        let id = self.fresh_id();
        let body = http::discord_component(&id, channel, user, roles, custom_id, message_id);
        self.deliver(&id, channel, &body).await
    }

    /// Send an interaction body and read the answer, following a deferral to its edit.
    async fn deliver(&self, id: &str, channel: &str, body: &str) -> Answer {
        let resp = self.post_signed(body).await;
        assert_eq!(resp.status, 200, "interaction refused: {}", resp.text());
        let json = resp.json();
        let kind = json["type"].as_u64().expect("response type");
        match kind {
            4 => Answer {
                status: resp.status,
                kind,
                content: json["data"]["content"].as_str().unwrap_or("").to_string(),
                flags: json["data"]["flags"].as_u64().unwrap_or(0),
                components: json["data"]["components"].clone(),
            },
            5 => {
                let token = http::discord_interaction_token(id, channel);
                let message = self
                    .until("the deferred answer", async || {
                        self.api
                            .interaction_messages(&token)
                            .into_iter()
                            .find(|m| m["content"].as_str().is_some_and(|c| !c.is_empty()))
                    })
                    .await;
                Answer {
                    status: resp.status,
                    kind,
                    content: message["content"].as_str().unwrap_or("").to_string(),
                    flags: message["flags"].as_u64().unwrap_or(0)
                        | json["data"]["flags"].as_u64().unwrap_or(0),
                    components: message["components"].clone(),
                }
            }
            other => panic!("unexpected interaction response type {other}: {json}"),
        }
    }

    async fn until<T>(&self, what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
        self.bot.until(what, check).await
    }

    async fn open_incident(&self, channel: &str) -> Option<i64> {
        self.bot
            .app()
            .store
            .open_incident_in(&format!("discord:{channel}"))
            .await
            .expect("store")
    }

    async fn kinds(&self, incident: i64) -> Vec<String> {
        self.bot
            .app()
            .store
            .events(incident)
            .await
            .expect("events")
            .iter()
            .map(|e| e.kind.name().to_string())
            .collect()
    }

    async fn count(&self, incident: i64, kind: &str) -> usize {
        self.kinds(incident)
            .await
            .iter()
            .filter(|k| *k == kind)
            .count()
    }

    /// How operation `op` of `incident` finished, once it has.
    async fn finished(&self, incident: i64, op: &str) -> Option<String> {
        let prefix = format!("{op} ");
        self.bot
            .app()
            .store
            .events(incident)
            .await
            .ok()?
            .iter()
            .filter(|e| e.kind.name() == "operation_finished")
            .map(|e| e.kind.describe())
            .find(|d| d.starts_with(&prefix))
    }

    /// Wait until operation `op` of `incident` has finished.
    async fn wait_finished(&self, incident: i64, op: &str) -> String {
        self.until(&format!("{op} to finish"), async || {
            self.finished(incident, op).await
        })
        .await
    }

    /// Wait until the outbox has nothing left to send.
    async fn drained(&self) {
        self.until("the outbox to drain", async || {
            (self.bot.app().store.pending_posts().await.ok()? == 0).then_some(())
        })
        .await;
    }

    /// The posted preview message for `preview` in `channel`: (message id, confirm id, cancel id).
    async fn preview_message(&self, channel: &str, preview: &str) -> (String, String, String) {
        self.until(&format!("the {preview} preview message"), async || {
            self.api.messages_in(channel).iter().find_map(|m| {
                let ids = button_ids(m);
                let confirm = ids
                    .iter()
                    .find(|id| {
                        id.starts_with("dr:confirm:") && id.ends_with(&format!(":{preview}"))
                    })?
                    .clone();
                let cancel = ids
                    .iter()
                    .find(|id| {
                        id.starts_with("dr:cancel:") && id.ends_with(&format!(":{preview}"))
                    })?
                    .clone();
                Some((m["id"].as_str()?.to_string(), confirm, cancel))
            })
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------
// Interaction data for `/dr` subcommands
// ---------------------------------------------------------------------------------------

fn values(pairs: &[(&str, &str)]) -> Value {
    pairs
        .iter()
        .map(|(name, value)| {
            let kind = if *name == "user" { 6 } else { 3 };
            json!({ "name": name, "type": kind, "value": value })
        })
        .collect()
}

/// `/dr {name} key:value…`
fn sub(name: &str, pairs: &[(&str, &str)]) -> Value {
    json!([{ "name": name, "type": 1, "options": values(pairs) }])
}

/// `/dr {group} {name} key:value…`
fn grouped(group: &str, name: &str, pairs: &[(&str, &str)]) -> Value {
    json!([{
        "name": group,
        "type": 2,
        "options": [{ "name": name, "type": 1, "options": values(pairs) }],
    }])
}

fn button_ids(message: &Value) -> Vec<String> {
    message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["custom_id"].as_str().map(String::from))
        .collect()
}

/// Checklist item ids (`9.1.4`) leading the lines of a resolve refusal.
fn open_items(refusal: &str) -> Vec<String> {
    refusal
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("9.") && w.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .map(String::from)
        .collect()
}

fn content(call: &Call) -> &str {
    call.body["content"].as_str().unwrap_or("")
}

/// Posts Discord accepted as new (not deduplicated by nonce, not refused).
fn accepted_posts(api: &DiscordApi) -> Vec<Call> {
    api.calls_to("create_message")
        .into_iter()
        .filter(|c| c.answered == 200 && !c.deduplicated)
        .collect()
}

fn assert_calls_clean(api: &DiscordApi) {
    for call in api.calls() {
        assert!(call.auth_ok, "call without the bot token: {call:?}");
        assert!(call.valid, "call Discord would refuse: {call:?}");
    }
}

/// No two accepted posts carry the same nonce.
fn assert_no_doubled_posts(api: &DiscordApi) {
    let mut nonces: Vec<String> = accepted_posts(api)
        .iter()
        .filter_map(|c| c.body.get("nonce").filter(|n| !n.is_null()))
        .map(|n| n.as_str().map_or_else(|| n.to_string(), String::from))
        .collect();
    let total = nonces.len();
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), total, "a post was accepted twice");
}

fn declare_sev(severity: &str, kind: &str, title: &str) -> Value {
    sub(
        "declare",
        &[("severity", severity), ("type", kind), ("title", title)],
    )
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_signatures() {
    let rig = Rig::start().await;
    let url = rig.url();
    let now = rig.bot.now_unix();

    let ping = http::discord_ping();
    let resp = rig.post_signed(&ping).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({ "type": 1 }));

    // A declaration that would change something if any of these got through.
    let channel = "1400000000000000101";
    let declare = http::discord_command(
        &rig.fresh_id(),
        channel,
        ALICE,
        &[OPS_ROLE],
        DISCORD_GUILD_ID,
        declare_sev("sev1", "data", "orders wiped"),
    );

    let (stranger, _) = http::discord_keypair([9; 32]);
    for body in [&ping, &declare] {
        let headers = http::discord_signed_headers(&stranger, now, body);
        let resp = http::post(&url, &headers, body.to_string()).await;
        assert_eq!(resp.status, 401, "another key's signature: {}", resp.text());
    }

    let mut zero = http::discord_signed_headers(&rig.key, now, &declare);
    for (name, value) in &mut zero {
        if *name == "X-Signature-Ed25519" {
            *value = "0".repeat(128);
        }
    }
    let resp = http::post(&url, &zero, declare.clone()).await;
    assert_eq!(resp.status, 401, "zero signature: {}", resp.text());

    // Validly signed, but ten minutes older than the bot's clock: a replay.
    let stale = http::discord_signed_headers(&rig.key, now - 600, &declare);
    let resp = http::post(&url, &stale, declare.clone()).await;
    assert_eq!(resp.status, 401, "stale timestamp: {}", resp.text());

    let bare = [("Content-Type", "application/json".to_string())];
    let resp = http::post(&url, &bare, declare.clone()).await;
    assert_eq!(resp.status, 401, "no signature headers: {}", resp.text());

    let resp = rig.post_signed("this is not json").await;
    assert_eq!(resp.status, 400, "non-JSON body: {}", resp.text());

    let huge = format!(r#"{{"type":1,"padding":"{}"}}"#, "x".repeat(64 * 1024 + 10));
    let resp = rig.post_signed(&huge).await;
    assert_eq!(resp.status, 413, "oversized body: {}", resp.text());

    // Nothing got through: no incident anywhere, nothing posted.
    let store = &rig.bot.app().store;
    assert_eq!(rig.open_incident(channel).await, None);
    assert!(store.active_incidents().await.unwrap().is_empty());
    assert_eq!(store.next_incident_id().await.unwrap(), 1);
    assert_eq!(store.pending_posts().await.unwrap(), 0);
    assert!(rig.api.calls().is_empty(), "{:?}", rig.api.calls());
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_answers_in_time_and_posts() {
    let rig = Rig::start().await;
    let channel = "1400000000000000102";
    let answer = rig
        .command(
            channel,
            MALLORY,
            &[OTHER_ROLE],
            declare_sev("sev1", "data", "orders wiped"),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert!(matches!(answer.kind, 4 | 5), "{answer:?}");
    assert!(answer.content.contains("INC-1"), "{answer:?}");
    assert!(!answer.private(), "a declaration is public: {answer:?}");
    let incident = rig.open_incident(channel).await.expect("open incident");
    assert_eq!(incident, 1);

    let pin = rig
        .until("the status message to be pinned", async || {
            rig.api.calls_to("pin_message").into_iter().next()
        })
        .await;
    rig.drained().await;

    let posts = accepted_posts(&rig.api);
    let announcement = posts
        .iter()
        .find(|c| content(c).contains("SEV1"))
        .unwrap_or_else(|| panic!("no SEV1 announcement in {posts:?}"));
    assert_eq!(
        announcement.method,
        format!("POST /channels/{channel}/messages")
    );
    assert!(content(announcement).contains("INC-1"), "{announcement:?}");
    assert!(content(announcement).contains("orders wiped"));
    assert_eq!(announcement.body["enforce_nonce"], true);
    assert!(announcement.body["nonce"].is_string());

    // The status message: an embed, created in the channel, then pinned.
    let pinned_id = pin
        .method
        .rsplit('/')
        .next()
        .expect("message id")
        .to_string();
    assert!(
        pin.method.starts_with(&format!("PUT /channels/{channel}/")),
        "{pin:?}"
    );
    assert!(matches!(pin.answered, 200 | 204), "{pin:?}");
    let status = rig.api.message(&pinned_id).expect("pinned message exists");
    assert_eq!(status["pinned"], true);
    assert_eq!(status["channel_id"], channel);
    let title = status["embeds"][0]["title"].as_str().unwrap_or("");
    assert!(title.contains("INC-1"), "{status}");
    assert_eq!(rig.api.calls_to("pin_message").len(), 1);

    let messages = rig.api.messages_in(channel);
    assert!(
        messages.iter().any(|m| m["content"]
            .as_str()
            .is_some_and(|c| c.contains("SEV1") && c.contains("INC-1"))),
        "{messages:?}"
    );
    for call in rig.api.calls() {
        let auth = call
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str());
        assert_eq!(
            auth,
            Some(format!("Bot {DISCORD_TOKEN}").as_str()),
            "{call:?}"
        );
    }
    assert_calls_clean(&rig.api);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_command_is_deferred_then_the_answer_replaces_it() {
    // No time budget: every command takes the deferred path (type 5, then an edit).
    let rig = Rig::start_with(&[("DRBOT__HTTP__ACK_BUDGET_MS", "0".to_string())]).await;
    let channel = "1400000000000000109";
    let answer = rig
        .command(
            channel,
            ALICE,
            &[OPS_ROLE],
            declare_sev("sev2", "data", "orders wiped"),
        )
        .await;
    assert_eq!(answer.kind, 5, "{answer:?}");
    assert!(answer.content.contains("INC-1 declared"), "{answer:?}");
    let edits = rig.api.calls_to("edit_original");
    assert_eq!(edits.len(), 1, "{edits:?}");
    assert!(edits[0].valid, "{edits:?}");
    assert_eq!(rig.open_incident(channel).await, Some(1));
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_interaction_twice_is_done_once() {
    let rig = Rig::start().await;
    let channel = "1400000000000000103";
    let id = rig.fresh_id();
    let body = http::discord_command(
        &id,
        channel,
        ALICE,
        &[OPS_ROLE],
        DISCORD_GUILD_ID,
        declare_sev("sev2", "data", "orders wiped"),
    );
    let first = rig.deliver(&id, channel, &body).await;
    assert!(first.content.contains("INC-1 declared"), "{first:?}");
    let second = rig.deliver(&id, channel, &body).await;
    assert!(
        second.content.contains("already received and handled"),
        "{second:?}"
    );
    assert!(second.private(), "{second:?}");

    let store = &rig.bot.app().store;
    assert_eq!(rig.open_incident(channel).await, Some(1));
    assert_eq!(store.next_incident_id().await.unwrap(), 2, "one incident");
    assert_eq!(rig.count(1, "declared").await, 1);
    assert_eq!(rig.kinds(1).await.len(), 1, "{:?}", rig.kinds(1).await);

    rig.drained().await;
    let announcements: Vec<Call> = accepted_posts(&rig.api)
        .into_iter()
        .filter(|c| content(c).contains("DISASTER DECLARED"))
        .collect();
    assert_eq!(announcements.len(), 1, "{announcements:?}");
    assert_calls_clean(&rig.api);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_and_two_person_rule() {
    let rig = Rig::start().await;
    let channel = "1400000000000000104";
    let declared = rig
        .command(
            channel,
            MALLORY,
            &[],
            declare_sev("sev1", "data", "orders wiped"),
        )
        .await;
    assert!(declared.content.contains("INC-1"), "{declared:?}");
    let incident = rig.open_incident(channel).await.expect("open incident");

    // A member without an operator role cannot ask for a launch.
    let refused = rig
        .command(channel, MALLORY, &[OTHER_ROLE], sub("freeze", &[]))
        .await;
    assert!(refused.private(), "{refused:?}");
    assert!(refused.content.contains("operator"), "{refused:?}");
    assert_eq!(rig.count(incident, "launch_previewed").await, 0);
    rig.drained().await;
    assert!(
        rig.api
            .messages_in(channel)
            .iter()
            .all(|m| button_ids(m).is_empty()),
        "no preview may be posted"
    );

    // An operator by role asks: the preview shows up with Confirm and Cancel.
    let asked = rig
        .command(
            channel,
            ALICE,
            &[OTHER_ROLE, OPS_ROLE],
            sub("freeze", &[("reason", "bad migration")]),
        )
        .await;
    assert!(!asked.private(), "{asked:?}");
    assert!(asked.content.contains("P1"), "{asked:?}");
    let (message_id, confirm, cancel) = rig.preview_message(channel, "P1").await;
    assert_eq!(confirm, format!("dr:confirm:{incident}:P1"));
    assert_eq!(cancel, format!("dr:cancel:{incident}:P1"));

    // The requester cannot confirm their own SEV1 launch.
    let own = rig
        .click(channel, ALICE, &[OPS_ROLE], &confirm, &message_id)
        .await;
    assert!(own.private(), "{own:?}");
    assert!(own.content.contains("second operator"), "{own:?}");
    // Nor can someone who is no operator at all.
    let outsider = rig
        .click(channel, MALLORY, &[OTHER_ROLE], &confirm, &message_id)
        .await;
    assert!(outsider.private(), "{outsider:?}");
    assert!(outsider.content.contains("operator"), "{outsider:?}");
    assert_eq!(rig.count(incident, "launch_confirmed").await, 0);

    // Another operator, listed by user id, confirms: the freeze runs.
    let confirmed = rig.click(channel, BOB, &[], &confirm, &message_id).await;
    assert!(!confirmed.private(), "{confirmed:?}");
    assert!(confirmed.content.contains("op1"), "{confirmed:?}");
    let outcome = rig.wait_finished(incident, "op1").await;
    assert!(outcome.contains("succeeded"), "{outcome}");

    // A second click (a new interaction) launches nothing more.
    let again = rig.click(channel, BOB, &[], &confirm, &message_id).await;
    assert!(again.private(), "{again:?}");
    // A button naming another incident does nothing here.
    let before = rig.kinds(incident).await;
    let foreign = format!("dr:confirm:{}:P1", incident + 1);
    let stray = rig.click(channel, BOB, &[], &foreign, &message_id).await;
    assert!(stray.private(), "{stray:?}");
    assert!(
        stray.content.contains(&format!("INC-{}", incident + 1)),
        "{stray:?}"
    );
    assert!(stray.content.contains("nothing was done"), "{stray:?}");
    rig.drained().await;
    assert_eq!(rig.kinds(incident).await, before, "nothing recorded");
    assert_eq!(rig.count(incident, "launch_confirmed").await, 1);
    assert_eq!(rig.count(incident, "operation_launched").await, 1);
    assert_eq!(rig.count(incident, "operation_finished").await, 1);
    assert_calls_clean(&rig.api);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_incident_over_discord() {
    let rig = Rig::start().await;
    let channel = "1400000000000000105";
    let me = (BOB, &[] as &[&str]);
    let run = async |options: Value| rig.command(channel, me.0, me.1, options).await;

    // SEV2: one operator may request and confirm.
    let declared = run(declare_sev("sev2", "infra", "cluster gone")).await;
    assert!(declared.content.contains("INC-1 declared"), "{declared:?}");
    let incident = rig.open_incident(channel).await.expect("open incident");

    let freeze = run(sub("freeze", &[("reason", "bad deploy")])).await;
    assert!(freeze.content.contains("P1"), "{freeze:?}");
    let (message_id, confirm, _) = rig.preview_message(channel, "P1").await;
    let confirmed = rig.click(channel, me.0, me.1, &confirm, &message_id).await;
    assert!(confirmed.content.contains("op1"), "{confirmed:?}");
    rig.wait_finished(incident, "op1").await;

    let restore = run(grouped("infra", "restore", &[])).await;
    assert!(restore.content.contains("P2"), "{restore:?}");
    rig.preview_message(channel, "P2").await;
    let confirmed = run(grouped("preview", "confirm", &[("id", "P2")])).await;
    assert!(confirmed.content.contains("op2"), "{confirmed:?}");

    // The sandbox restore takes simulated minutes.
    let mut steps = 0;
    let outcome = loop {
        if let Some(outcome) = rig.finished(incident, "op2").await {
            break outcome;
        }
        steps += 1;
        assert!(steps <= 40, "op2 did not finish after {steps} steps");
        rig.bot.advance(Duration::minutes(1));
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    };
    assert!(outcome.contains("succeeded"), "{outcome}");
    // Give the nightly backup after the recovery time to complete (checklist 9.6.4).
    rig.bot.advance(Duration::minutes(15));

    let verified = run(grouped("checklist", "verify", &[])).await;
    assert!(verified.content.contains("9.1.1"), "{verified:?}");

    // Tick what the resolve refusal names as still open.
    let refusal = run(sub("resolve", &[])).await;
    assert!(refusal.content.contains("Cannot resolve"), "{refusal:?}");
    let items = open_items(&refusal.content);
    assert!(!items.is_empty(), "{refusal:?}");
    // The checklist view carries a tick button per open item; the first one is ticked by button.
    let view = run(grouped("checklist", "show", &[])).await;
    assert!(view.private(), "{view:?}");
    let ticks = button_ids(&json!({ "components": view.components }));
    let tick = format!("dr:check:{incident}:{}", items[0]);
    assert!(ticks.contains(&tick), "{tick} not among {ticks:?}");
    let ticked = rig.click(channel, me.0, me.1, &tick, &message_id).await;
    assert!(
        ticked.content.contains(&format!("checked {}", items[0])),
        "{ticked:?}"
    );
    for item in &items[1..] {
        let checked = run(grouped(
            "checklist",
            "check",
            &[("item", item), ("note", "done")],
        ))
        .await;
        assert!(
            checked.content.contains(&format!("checked {item}")),
            "{checked:?}"
        );
    }

    let unfreeze = run(sub("unfreeze", &[])).await;
    assert!(unfreeze.content.contains("P3"), "{unfreeze:?}");
    let (message_id, confirm, _) = rig.preview_message(channel, "P3").await;
    let confirmed = rig.click(channel, me.0, me.1, &confirm, &message_id).await;
    assert!(confirmed.content.contains("op3"), "{confirmed:?}");
    rig.wait_finished(incident, "op3").await;

    let resolved = run(sub("resolve", &[])).await;
    assert!(!resolved.private(), "{resolved:?}");
    assert!(resolved.content.contains("INC-1"), "{resolved:?}");
    assert_eq!(rig.open_incident(channel).await, None, "{resolved:?}");

    rig.bot.advance(Duration::minutes(31));
    rig.until("the final summary", async || {
        accepted_posts(&rig.api)
            .into_iter()
            .find(|c| content(c).contains("Final summary for INC-1"))
    })
    .await;
    assert_eq!(rig.count(incident, "final_summary_posted").await, 1);

    let export = run(grouped("timeline", "export", &[("format", "json")])).await;
    assert!(export.private(), "{export:?}");
    let upload = rig
        .until("the timeline file", async || {
            rig.api
                .calls_to("create_message")
                .into_iter()
                .find(|c| !c.files.is_empty())
        })
        .await;
    assert_eq!(upload.answered, 200, "{upload:?}");
    assert_eq!(upload.method, format!("POST /channels/{channel}/messages"));
    let file: Value = serde_json::from_slice(&upload.files[0].data).expect("JSON file");
    assert_eq!(file["schema"], "drbot.timeline/v1");
    let kinds: Vec<&str> = file["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for kind in [
        "declared",
        "operation_launched",
        "resolved",
        "final_summary_posted",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }

    rig.drained().await;
    assert_eq!(rig.api.calls_to("pin_message").len(), 1, "pinned once");
    assert!(
        !rig.api.calls_to("edit_message").is_empty(),
        "the status message was never edited"
    );
    assert!(
        rig.api
            .calls_to("edit_message")
            .iter()
            .all(|c| c.answered == 200),
        "{:?}",
        rig.api.calls_to("edit_message")
    );
    assert_no_doubled_posts(&rig.api);
    assert_calls_clean(&rig.api);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_posts_are_delayed_not_lost() {
    let rig = Rig::start().await;
    let channel = "1400000000000000106";
    for _ in 0..3 {
        rig.api.fail_next(
            "create_message",
            Failure::RateLimited {
                retry_after_secs: 1,
            },
        );
    }
    let declared = rig
        .command(
            channel,
            BOB,
            &[],
            declare_sev("sev2", "data", "orders wiped"),
        )
        .await;
    assert!(declared.content.contains("INC-1"), "{declared:?}");
    let update = rig
        .command(
            channel,
            BOB,
            &[],
            sub("update", &[("text", "restore under way")]),
        )
        .await;
    assert!(!update.private(), "{update:?}");

    let mut steps = 0;
    loop {
        let pending = rig.bot.app().store.pending_posts().await.unwrap();
        if pending == 0 {
            break;
        }
        steps += 1;
        assert!(
            steps <= 60,
            "{pending} post(s) still pending after {steps} s"
        );
        let seen = rig.api.calls().len();
        rig.bot.advance(Duration::seconds(1));
        // Let the outbox make its attempt before moving the clock again.
        for _ in 0..25 {
            if rig.api.calls().len() > seen {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    }

    let creates = rig.api.calls_to("create_message");
    let limited = creates.iter().filter(|c| c.answered == 429).count();
    assert_eq!(limited, 3, "{creates:?}");

    let posts = accepted_posts(&rig.api);
    let announcement = posts
        .iter()
        .position(|c| content(c).contains("DISASTER DECLARED"))
        .unwrap_or_else(|| panic!("no announcement in {posts:?}"));
    let update = posts
        .iter()
        .position(|c| content(c).contains("restore under way"))
        .unwrap_or_else(|| panic!("no update in {posts:?}"));
    assert_eq!(announcement, 0, "the announcement goes first: {posts:?}");
    assert!(announcement < update, "{posts:?}");
    let status = posts
        .iter()
        .position(|c| c.body["embeds"].as_array().is_some_and(|e| !e.is_empty()))
        .unwrap_or_else(|| panic!("no status message in {posts:?}"));
    assert!(announcement < status, "{posts:?}");
    for text in ["DISASTER DECLARED", "restore under way"] {
        let n = posts.iter().filter(|c| content(c).contains(text)).count();
        assert_eq!(n, 1, "{text:?} arrived {n} times: {posts:?}");
    }
    // Nonces (outbox ids) arrive in commit order; the status message's is the incident's.
    let nonces: Vec<i64> = posts
        .iter()
        .filter_map(|c| c.body["nonce"].as_str())
        .filter(|n| *n != "s1")
        .map(|n| n.parse().expect("numeric nonce"))
        .collect();
    assert!(nonces.windows(2).all(|w| w[0] < w[1]), "{nonces:?}");
    // The messages as they stand in the channel: one announcement, one update.
    let messages = rig.api.messages_in(channel);
    for text in ["DISASTER DECLARED", "restore under way"] {
        let n = messages
            .iter()
            .filter(|m| m["content"].as_str().is_some_and(|c| c.contains(text)))
            .count();
        assert_eq!(n, 1, "{text:?} in the channel {n} times");
    }
    assert_eq!(rig.api.calls_to("pin_message").len(), 1);
    assert_no_doubled_posts(&rig.api);
    assert_calls_clean(&rig.api);
    rig.finish().await;
}

/// The outbox retries a post whose answer was lost; for the status message (the one post
/// without a nonce) the retry must not leave a second status message in the channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn status_message_is_not_doubled_when_the_answer_is_lost() {
    use drbot::chat::discord::Discord;
    use drbot::chat::{ChatSink, Outgoing};
    use drbot::config::DiscordSettings;
    use drbot::incident::post::{Post, PostKind};

    let api = DiscordApi::start(DISCORD_TOKEN, DISCORD_APPLICATION_ID);
    let settings = DiscordSettings {
        bot_token: Some(DISCORD_TOKEN.to_string()),
        application_id: Some(DISCORD_APPLICATION_ID.to_string()),
        api_url: api.base(),
        ..Default::default()
    };
    let discord = Discord::new(&settings).expect("discord client");
    let channel = "1400000000000000107";
    let key = format!("discord:{channel}");
    let post = Post {
        kind: PostKind::Status,
        text: "INC-1: SEV2 data \"orders wiped\" | phase: assessment\nDeclared by bob".into(),
        sandbox: false,
        in_thread: false,
        preview: None,
        publication: None,
        page: None,
        followup: None,
    };
    let first = Outgoing {
        outbox_id: 2,
        incident: Some(1),
        channel: &key,
        post: &post,
        status_message: None,
        earlier_sends: 0,
        status_in_doubt: false,
        created_at: bot::t0(),
        now: bot::t0(),
    };

    // Discord posts the message, then the answer is lost (500): the outbox tries again.
    api.fail_next("create_message", Failure::ReplyAfterApplying);
    let lost = discord.deliver(first).await;
    assert!(lost.as_ref().is_err_and(|e| e.retryable), "{lost:?}");
    let retried = discord
        .deliver(Outgoing {
            earlier_sends: 1,
            ..first
        })
        .await
        .expect("the retry goes through");
    // A newer status post (another outbox row, e.g. on another replica after a takeover)
    // still gets the same message: the first status message takes the incident's nonce.
    let newer = discord
        .deliver(Outgoing {
            outbox_id: 9,
            status_in_doubt: true,
            ..first
        })
        .await
        .expect("the newer status post goes through");
    assert_eq!(newer, retried);

    let status: Vec<Value> = api
        .messages_in(channel)
        .into_iter()
        .filter(|m| m["embeds"].as_array().is_some_and(|e| !e.is_empty()))
        .collect();
    assert_eq!(
        status.len(),
        1,
        "status messages in the channel after one lost answer: {status:?}"
    );
    assert_eq!(status[0]["id"], retried.as_str());
    assert_calls_clean(&api);
}
