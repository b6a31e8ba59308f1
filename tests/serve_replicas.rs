//! The `drbot serve` binary across crashes and replicas: a SIGKILL while a Slack post is in
//! flight (Slack has applied it, its answer is on the way) doubles nothing after the restart;
//! two processes on one PostgreSQL database post everything once; a second process on one
//! SQLite file is refused with a message that says to use PostgreSQL.

mod support;

use std::collections::BTreeMap;
use std::process::Stdio;

use serde_json::Value;
use support::bot::{SLACK_SECRET, SLACK_TOKEN};
use support::pg::{PG_ENV, PgDatabase};
use support::serve::{Serve, drained, until};
use support::slack_api::{Failure, SlackApi};

fn slack_env(api: &SlackApi) -> Vec<(&'static str, String)> {
    vec![
        ("DRBOT__SLACK__SIGNING_SECRET", SLACK_SECRET.to_string()),
        ("DRBOT__SLACK__BOT_TOKEN", SLACK_TOKEN.to_string()),
        ("DRBOT__SLACK__API_URL", api.base()),
        ("DRBOT__SLACK__OPERATORS", "U1".to_string()),
    ]
}

async fn dr(serve: &Serve, api: &SlackApi, channel: &str, text: &str) -> String {
    serve.slack_dr(api, channel, text).await
}

fn by_kind(api: &SlackApi, channel: &str, kind: &str) -> Vec<Value> {
    api.history(channel)
        .into_iter()
        .filter(|m| m["metadata"]["event_payload"]["kind"] == kind)
        .collect()
}

/// Kill drbot while Slack holds the answer to the `nth` chat.postMessage (1 = the
/// announcement, 2 = the first status message), restart it, and count what the channel got.
async fn kill_while_posting(nth: usize) {
    let dir = tempfile::tempdir().unwrap();
    let api = SlackApi::start(SLACK_TOKEN);
    for _ in 1..nth {
        api.fail_next("chat.postMessage", Failure::Pass);
    }
    api.fail_next("chat.postMessage", Failure::HoldAfterApplying);
    let env = slack_env(&api);
    let first = Serve::start(dir.path(), &env).await;
    dr(&first, &api, "C1", "declare sev2 data orders wiped").await;
    until("a post held in flight", async || {
        api.calls_to("chat.postMessage")
            .iter()
            .any(|c| c.answered == 0)
            .then_some(())
    })
    .await;
    first.kill();

    let second = Serve::start(dir.path(), &env).await;
    drained(&format!(
        "sqlite://{}",
        dir.path().join("drbot.db").display()
    ))
    .await;
    dr(&second, &api, "C1", "update after the restart").await;
    until("the update after the restart", async || {
        (!by_kind(&api, "C1", "update").is_empty()).then_some(())
    })
    .await;
    second.stop();

    let announcements = by_kind(&api, "C1", "announcement");
    assert_eq!(announcements.len(), 1, "{announcements:#?}");
    assert_eq!(by_kind(&api, "C1", "status").len(), 1, "one status message");
    assert_eq!(api.pinned("C1").len(), 1, "one pinned message");
    assert_eq!(by_kind(&api, "C1", "update").len(), 1);
    // The restart looked before posting again.
    assert!(!api.calls_to("conversations.history").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_the_announcement_is_in_flight_posts_it_once() {
    kill_while_posting(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_the_first_status_message_is_in_flight_leaves_one_pinned_status() {
    kill_while_posting(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_one_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let api = SlackApi::start(SLACK_TOKEN);
    let env = slack_env(&api);
    let first = Serve::start(dir.path(), &env).await;
    let (child, _) = Serve::spawn(dir.path(), &env, Stdio::piped());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
    assert!(stderr.contains("another drbot process"), "{stderr}");
    // The first one is unaffected.
    let answer = dr(&first, &api, "C1", "declare sev3 data orders wiped").await;
    assert!(answer.contains("INC-1"), "{answer}");
    first.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_on_one_postgres_database_post_everything_once() {
    let Ok(admin) = std::env::var(PG_ENV) else {
        eprintln!("{PG_ENV} unset: two processes need PostgreSQL; not run");
        return;
    };
    let db = PgDatabase::create(&admin).await;
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let api = SlackApi::start(SLACK_TOKEN);
    let mut env = slack_env(&api);
    env.push(("DRBOT__DATABASE__URL", db.url.clone()));
    // One simulated cluster for both, as they would share one real one.
    env.push((
        "DRBOT__SANDBOX__STATE_FILE",
        dir_a.path().join("sandbox.json").display().to_string(),
    ));
    let a = Serve::start(dir_a.path(), &env).await;
    let b = Serve::start(dir_b.path(), &env).await;
    let replicas = [&a, &b];
    const CHANNELS: usize = 10;
    const UPDATES: usize = 200;
    let channel = |i: usize| format!("C{}", i % CHANNELS + 1);
    for i in 0..CHANNELS {
        dr(
            replicas[i % 2],
            &api,
            &channel(i),
            "declare sev2 data orders wiped",
        )
        .await;
    }
    for n in 0..UPDATES {
        let answer = dr(
            replicas[n % 2],
            &api,
            &channel(n / 2),
            &format!("update step {n}"),
        )
        .await;
        assert!(answer.contains(&format!("step {n}")), "{answer}");
    }
    drained(&db.url).await;
    a.stop();
    b.stop();

    for i in 0..CHANNELS {
        let c = channel(i);
        assert_eq!(by_kind(&api, &c, "announcement").len(), 1, "{c}");
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for m in by_kind(&api, &c, "update") {
            *seen
                .entry(m["text"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
        assert_eq!(seen.len(), UPDATES / CHANNELS, "{c}: {seen:#?}");
        assert!(seen.values().all(|n| *n == 1), "{c}: doubled {seen:#?}");
        assert_eq!(by_kind(&api, &c, "status").len(), 1, "{c}");
        assert_eq!(api.pinned(&c).len(), 1, "{c}");
    }
}
