//! Several replicas on one database, in one test process: every post leaves exactly once,
//! each channel gets one pinned status message, one replica watches an operation and another
//! takes the watch over when it dies, a status edit that keeps failing holds back nothing and
//! is given up, and NUL is refused the same on both databases.
//!
//! The replicas share PostgreSQL when `DRBOT_TEST_DATABASE_URL` is set (CI sets it), else a
//! SQLite file (claims work the same there; only separate processes are refused on SQLite).

mod support;

use std::collections::BTreeMap;

use chrono::Duration;
use drbot::app::App;
use drbot::clock::ManualClock;
use drbot::incident::Caller;
use drbot::incident::{Actor, EventKind};
use serde_json::Value;
use support::bot::{Bot, SLACK_SECRET, SLACK_TOKEN, t0};
use support::engine::{build, settings};
use support::http;
use support::pg::{PG_ENV, PgDatabase};
use support::slack_api::{Failure, SlackApi};

/// The database URL the replicas share, and what keeps it alive for the test.
async fn shared_database(dir: &std::path::Path) -> (String, Option<PgDatabase>) {
    match std::env::var(PG_ENV) {
        Ok(admin) => {
            let db = PgDatabase::create(&admin).await;
            (db.url.clone(), Some(db))
        }
        Err(_) => {
            eprintln!("{PG_ENV} unset: the replicas share a SQLite file");
            (format!("sqlite://{}", dir.join("drbot.db").display()), None)
        }
    }
}

fn slack_env(api: &SlackApi, database: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DRBOT__DATABASE__URL", database.to_string()),
        ("DRBOT__SLACK__SIGNING_SECRET", SLACK_SECRET.to_string()),
        ("DRBOT__SLACK__BOT_TOKEN", SLACK_TOKEN.to_string()),
        ("DRBOT__SLACK__API_URL", api.base()),
        ("DRBOT__SLACK__OPERATORS", "U1".to_string()),
    ]
}

/// `/dr <text>` to `bot` from U1 in `channel`; the answer's text.
async fn dr(bot: &Bot, api: &SlackApi, channel: &str, user: &str, text: &str) -> String {
    let body = http::slack_command_body(
        text,
        channel,
        user,
        &http::slack_trigger_id(),
        &api.response_url("cmd"),
    );
    let headers = http::slack_signed_headers(SLACK_SECRET, bot.now_unix(), &body);
    let resp = http::post(&bot.url("/slack/commands"), &headers, body).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["text"].as_str().unwrap_or_default().to_string()
}

/// Wake every replica until none has anything left to send.
async fn drain(bots: &[&Bot]) {
    bots[0]
        .until("every replica's outbox to drain", async || {
            for bot in bots {
                bot.running.kick();
            }
            let pending = bots[0].app().store.pending_posts().await.ok()?;
            (pending == 0).then_some(())
        })
        .await;
}

/// Messages of ours in `channel` by their metadata kind (`status`, `update`, …).
fn by_kind(api: &SlackApi, channel: &str, kind: &str) -> Vec<Value> {
    api.history(channel)
        .into_iter()
        .filter(|m| m["metadata"]["event_payload"]["kind"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_post_every_update_once_and_pin_one_status_per_channel() {
    let dir = tempfile::tempdir().unwrap();
    let (database, _pg) = shared_database(dir.path()).await;
    let api = SlackApi::start(SLACK_TOKEN);
    let env = slack_env(&api, &database);
    let a = Bot::start(dir.path(), &env, t0()).await;
    let b = Bot::start(dir.path(), &env, t0()).await;
    let replicas = [&a, &b];
    const CHANNELS: usize = 10;
    const UPDATES: usize = 120;
    let channel = |i: usize| format!("C{}", i % CHANNELS + 1);

    for i in 0..CHANNELS {
        let answer = dr(
            replicas[i % 2],
            &api,
            &channel(i),
            "U1",
            "declare sev2 data orders wiped",
        )
        .await;
        assert!(answer.contains("INC-"), "{answer}");
    }
    for n in 0..UPDATES {
        // Alternate replicas and channels, so both replicas deliver every channel's posts.
        let bot = replicas[n % 2];
        let answer = dr(
            bot,
            &api,
            &channel(n / 2),
            "U1",
            &format!("update step {n}"),
        )
        .await;
        assert!(answer.contains(&format!("step {n}")), "{answer}");
    }
    drain(&replicas).await;

    for i in 0..CHANNELS {
        let c = channel(i);
        let texts = api.history_texts(&c);
        let declared = texts
            .iter()
            .filter(|t| t.contains("DISASTER DECLARED"))
            .count();
        assert_eq!(declared, 1, "{c}: {texts:#?}");
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for m in by_kind(&api, &c, "update") {
            *seen
                .entry(m["text"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
        assert!(seen.values().all(|n| *n == 1), "{c}: doubled {seen:#?}");
        assert_eq!(seen.len(), UPDATES / CHANNELS, "{c}: {seen:#?}");
        // In the order they were committed.
        let order: Vec<usize> = by_kind(&api, &c, "update")
            .iter()
            .filter_map(|m| {
                let text = m["text"].as_str()?;
                let at = text.find("step ")?;
                text[at + 5..]
                    .split(|ch: char| !ch.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{c}: {order:?}");
        assert_eq!(
            by_kind(&api, &c, "status").len(),
            1,
            "{c}: one status message"
        );
        assert_eq!(api.pinned(&c).len(), 1, "{c}: one pinned message");
    }
    // Both replicas took part in delivering.
    for bot in replicas {
        assert!(bot.app().deliveries.get("slack", "delivered") > 0);
    }
    a.stop().await;
    b.stop().await;
}

fn operator(name: &str) -> Caller {
    Caller {
        actor: Actor::new("console", name, name),
        operator: true,
    }
}

async fn engine(dir: &std::path::Path, database: &str, clock: &ManualClock) -> App {
    let state_file = dir.join("sandbox.json").display().to_string();
    build(&settings(database.to_string(), state_file, &[]), clock).await
}

async fn kinds(app: &App, name: &str) -> usize {
    let id = app.store.latest_incident_in("ops").await.unwrap().unwrap();
    app.store
        .events(id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind.name() == name)
        .count()
}

/// A replica remembers the incidents it folded; the store's last sequence number, read with
/// the list of active incidents, tells it when another replica has moved one on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_sees_what_the_other_posted_on_its_next_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (database, _pg) = shared_database(dir.path()).await;
    let clock = ManualClock::new(t0());
    let first = engine(dir.path(), &database, &clock).await;
    let second = engine(dir.path(), &database, &clock).await;
    let declared = first
        .handle(
            "ops",
            &operator("alice"),
            "/dr declare sev2 data orders wiped",
        )
        .await
        .unwrap();
    assert!(declared.text().contains("INC-"), "{declared:?}");
    // Both replicas have looked at the incident and remember it.
    for app in [&first, &second] {
        let quiet = app.tick().await.unwrap();
        assert_eq!((quiet.updates, quiet.reminders), (0, 0), "{quiet:?}");
    }

    // The first update falls due; the second replica posts it.
    clock.advance(Duration::minutes(16));
    let posted = second.tick().await.unwrap();
    assert_eq!(posted.updates, 1, "{posted:?}");

    // The first replica's memory is one update behind; it is not fooled into seeing the
    // cadence overdue, and posts nothing more.
    assert_eq!(first.cadence_lag().await.unwrap(), Duration::zero());
    let after = first.tick().await.unwrap();
    assert_eq!((after.updates, after.reminders), (0, 0), "{after:?}");
    assert_eq!(kinds(&first, "update_posted").await, 1);
}

/// A replica decides a command on the incident as it remembers it, without a read. What it
/// answers from that memory (a view, a refusal) is checked against the store first, and a
/// change it commits is checked by its sequence number: neither misses what the other
/// replica did meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_replica_remembers_never_hides_the_other_replicas_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (database, _pg) = shared_database(dir.path()).await;
    let clock = ManualClock::new(t0());
    let first = engine(dir.path(), &database, &clock).await;
    let second = engine(dir.path(), &database, &clock).await;
    let alice = operator("alice");
    first
        .handle("ops", &alice, "/dr declare sev2 data orders wiped")
        .await
        .unwrap();
    let seen = second.handle("ops", &alice, "/dr status").await.unwrap();
    assert!(seen.text().contains("SEV2"), "{seen:?}");

    first
        .handle("ops", &alice, "/dr severity sev1")
        .await
        .unwrap();
    let status = second.handle("ops", &alice, "/dr status").await.unwrap();
    assert!(status.text().contains("SEV1"), "{status:?}");

    first
        .handle("ops", &alice, "/dr note from the first")
        .await
        .unwrap();
    let noted = second
        .handle("ops", &alice, "/dr note from the second")
        .await
        .unwrap();
    assert!(noted.text().contains("from the second"), "{noted:?}");
    let id = first
        .store
        .latest_incident_in("ops")
        .await
        .unwrap()
        .unwrap();
    let notes: Vec<String> = first
        .store
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::NoteAdded { text } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(notes, ["from the first", "from the second"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_during_a_restore_leaves_the_watch_to_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (database, _pg) = shared_database(dir.path()).await;
    let clock = ManualClock::new(t0());
    let first = engine(dir.path(), &database, &clock).await;
    let second = engine(dir.path(), &database, &clock).await;

    let preview = first
        .handle("ops", &operator("alice"), "/dr drill latest")
        .await
        .unwrap();
    assert!(preview.text().contains("P1"), "{preview:?}");
    let confirmed = first
        .handle("ops", &operator("alice"), "/dr confirm P1")
        .await
        .unwrap();
    assert!(confirmed.text().contains("confirmed"), "{confirmed:?}");

    // The first replica launches the restore and holds the watch.
    let report = first.tick().await.unwrap();
    assert_eq!(report.launched, 1, "{report:?}");
    clock.advance(Duration::seconds(1));
    // While its claim is fresh the second replica leaves the operation alone.
    let idle = second.tick().await.unwrap();
    assert_eq!((idle.launched, idle.progressed, idle.finished), (0, 0, 0));
    assert_eq!(second.deliveries.get("operations", "claimed"), 0);

    // The first replica dies without a word (no release). Within 15 s its lease has run
    // out and the second takes the watch over.
    drop(first);
    clock.advance(Duration::seconds(11));
    let mut finished = 0;
    for _ in 0..120 {
        finished += second.tick().await.unwrap().finished;
        if finished > 0 {
            break;
        }
        clock.advance(Duration::seconds(15));
    }
    assert_eq!(finished, 1);
    assert_eq!(second.deliveries.get("operations", "takeover"), 1);
    assert_eq!(kinds(&second, "operation_launched").await, 1);
    assert_eq!(kinds(&second, "operation_finished").await, 1);
    // Nothing more happens to it on later passes.
    clock.advance(Duration::minutes(5));
    second.tick().await.unwrap();
    assert_eq!(kinds(&second, "operation_finished").await, 1);
    assert!(
        second
            .store
            .unfinished_operations()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_edit_that_keeps_failing_holds_back_no_post_and_is_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let (database, _pg) = shared_database(dir.path()).await;
    let api = SlackApi::start(SLACK_TOKEN);
    let bot = Bot::start(dir.path(), &slack_env(&api, &database), t0()).await;
    dr(&bot, &api, "C1", "U1", "declare sev2 data orders wiped").await;
    drain(&[&bot]).await;
    assert_eq!(api.pinned("C1").len(), 1);
    for _ in 0..40 {
        api.fail_next("chat.update", Failure::ServerError);
    }

    dr(&bot, &api, "C1", "U1", "role comms <@U7>").await;
    for n in 0..3 {
        dr(&bot, &api, "C1", "U1", &format!("update still going {n}")).await;
    }
    // The progress posts arrive although every status edit fails.
    bot.until("the updates despite the failing status edits", async || {
        bot.running.kick();
        (by_kind(&api, "C1", "update").len() == 3).then_some(())
    })
    .await;
    assert!(
        api.calls_to("chat.update")
            .iter()
            .all(|c| c.answered == 500)
    );

    // Time passes with no change: the edit keeps failing until drbot gives up on it.
    let store = &bot.app().store;
    bot.until("the status edit to be given up", async || {
        bot.advance(Duration::minutes(2));
        let id = store.open_incident_in("slack:C1").await.ok()??;
        let events = store.events(id).await.ok()?;
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::DeliveryGaveUp { post, .. } if post == "status"))
            .then_some(())
    })
    .await;
    // The cadence may move on meanwhile: a status that changes after the give-up is a new
    // post with attempts of its own, so edits are counted up to its first.
    let texts: Vec<String> = api
        .calls_to("chat.update")
        .iter()
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
        .collect();
    let newest = texts.iter().position(|t| Some(t) == texts.last());
    let edits = match newest {
        Some(first) if first >= 10 => first,
        _ => texts.len(),
    };
    assert!(edits <= 10, "{edits} edits: the bound is 10 attempts");
    let notice = bot
        .until("the notice in the channel", async || {
            bot.running.kick();
            api.history("C1").into_iter().find(|m| {
                m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("could not deliver a status message"))
            })
        })
        .await;
    assert_eq!(notice["metadata"]["event_payload"]["kind"], "notice");
    assert_eq!(bot.app().deliveries.get("slack", "gave_up"), 1);
    let metrics = http::send("GET", &bot.url("/metrics"), &[], Vec::new())
        .await
        .expect("metrics");
    assert!(
        metrics
            .text()
            .contains("drbot_outbox_total{platform=\"slack\",event=\"gave_up\"} 1"),
        "{}",
        metrics.text()
    );
    let given_up = store.given_up().await.unwrap();
    assert_eq!(given_up.len(), 1, "{given_up:?}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_is_refused_with_a_clear_answer_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (database, _pg) = shared_database(dir.path()).await;
    let api = SlackApi::start(SLACK_TOKEN);
    let bot = Bot::start(dir.path(), &slack_env(&api, &database), t0()).await;
    let trigger = http::slack_trigger_id();
    let cases = [
        (
            "declare sev2 data orders\0wiped",
            "C1",
            "U1",
            trigger.clone(),
        ),
        (
            "declare sev2 data orders wiped",
            "C\0",
            "U1",
            http::slack_trigger_id(),
        ),
        (
            "declare sev2 data orders wiped",
            "C1",
            "U\0",
            http::slack_trigger_id(),
        ),
        (
            "declare sev2 data orders wiped",
            "C1",
            "U1",
            format!("{trigger}\0"),
        ),
    ];
    for (text, channel, user, trigger) in cases {
        let body =
            http::slack_command_body(text, channel, user, &trigger, &api.response_url("cmd"));
        let headers = http::slack_signed_headers(SLACK_SECRET, bot.now_unix(), &body);
        let resp = http::post(&bot.url("/slack/commands"), &headers, body).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        let answer = resp.json()["text"].as_str().unwrap_or_default().to_string();
        assert!(answer.contains("NUL"), "{answer}");
        assert!(answer.contains("Nothing was changed"), "{answer}");
        assert!(
            !answer.contains("0x00") && !answer.contains("database"),
            "{answer}"
        );
    }
    assert_eq!(bot.app().store.next_incident_id().await.unwrap(), 1);
    // The same command without it goes through.
    let ok = dr(&bot, &api, "C1", "U1", "declare sev2 data orders wiped").await;
    assert!(ok.contains("INC-1"), "{ok}");
    bot.stop().await;
}
