//! Pages and follow-up tickets across crashes and replicas, with the `drbot serve` binary:
//! a SIGKILL while PagerDuty (or GitHub) has applied the call and its answer is still on the
//! way, then a restart, wakes each target once and files one ticket; two processes on one
//! PostgreSQL database do the same. The stand-ins count the notifications and the issues.

mod support;

use drbot::store::Store;
use support::bot::{SLACK_SECRET, SLACK_TOKEN};
use support::faults::Failure;
use support::github_api::GitHubApi;
use support::pagerduty::{ENQUEUE, PagerDutyApi};
use support::pg::{PG_ENV, PgDatabase};
use support::serve::{Serve, drained, until};
use support::slack_api::SlackApi;

const DR_LEAD_KEY: &str = "R0DRLEAD0000000000000000000000AA";
const IC_KEY: &str = "R0INCIDENTCOMMANDER0000000000000";
const GH_TOKEN: &str = "ghp_drbotTestToken0123456789";

struct Stands {
    slack: SlackApi,
    pd: PagerDutyApi,
    gh: GitHubApi,
}

impl Stands {
    fn start() -> Stands {
        Stands {
            slack: SlackApi::start(SLACK_TOKEN),
            pd: PagerDutyApi::start("rest-token-unused"),
            gh: GitHubApi::start("acme", "platform", GH_TOKEN),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DRBOT__SLACK__SIGNING_SECRET", SLACK_SECRET.to_string()),
            ("DRBOT__SLACK__BOT_TOKEN", SLACK_TOKEN.to_string()),
            ("DRBOT__SLACK__API_URL", self.slack.base()),
            ("DRBOT__SLACK__OPERATORS", "U1".to_string()),
            ("DRBOT__PAGING__PROVIDER", "pagerduty".into()),
            ("DRBOT__PAGING__EVENTS_URL", self.pd.events_url()),
            ("DRBOT__PAGING__ROUTES__DR_LEAD", DR_LEAD_KEY.into()),
            ("DRBOT__PAGING__ROUTES__IC", IC_KEY.into()),
            ("DRBOT__PAGING__AUTO__SEV1", "dr-lead,ic".into()),
            ("DRBOT__TRACKER__KIND", "github".into()),
            ("DRBOT__TRACKER__REPO", "acme/platform".into()),
            ("DRBOT__TRACKER__TOKEN", GH_TOKEN.into()),
            ("DRBOT__TRACKER__API_URL", self.gh.base()),
        ]
    }

    /// Channel posts (the Slack stand-in's history) whose text starts with `start`.
    fn posts_starting(&self, channel: &str, start: &str) -> usize {
        self.slack
            .posts_in(channel)
            .iter()
            .filter(|p| p["text"].as_str().unwrap_or_default().starts_with(start))
            .count()
    }
}

async fn dr(serve: &Serve, stands: &Stands, channel: &str, text: &str) -> String {
    serve.slack_dr(&stands.slack, channel, text).await
}

/// The key drbot gives incident `n`'s page to `target` (its declaration time read back).
async fn page_key(url: &str, n: i64, target: &str) -> String {
    let store = Store::connect(url).await.expect("open the database");
    let events = store.events(n).await.expect("events");
    store.close().await;
    let declared = events[0].at().timestamp();
    format!("drbot:INC-{n}:{declared}:page:{target}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_with_a_page_in_flight_still_wakes_each_target_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("drbot.db").display());
    let stands = Stands::start();
    // PagerDuty takes the DR lead's page, then its answer never comes: drbot is killed
    // with the page applied and unrecorded.
    stands.pd.fail_next(ENQUEUE, Failure::HoldAfterApplying);
    let first = Serve::start(dir.path(), &stands.env()).await;
    dr(
        &first,
        &stands,
        "C1",
        "declare sev1 data orders table wiped",
    )
    .await;
    until("a page held in flight", async || {
        stands
            .pd
            .calls()
            .iter()
            .any(|c| c.answered == 0)
            .then_some(())
    })
    .await;
    first.kill();

    let second = Serve::start(dir.path(), &stands.env()).await;
    drained(&url).await;
    let dr_lead = page_key(&url, 1, "dr-lead").await;
    let ic = page_key(&url, 1, "ic").await;
    // The restart sent the held page again, and PagerDuty merged it into the open alert.
    let calls = stands.pd.calls();
    let held = calls
        .iter()
        .find(|c| c.answered == 0)
        .map(|c| c.body["dedup_key"].clone())
        .expect("the held call");
    let sends = calls
        .iter()
        .filter(|c| c.body["dedup_key"] == held && c.body["event_action"] == "trigger")
        .count();
    assert_eq!(sends, 2, "held, then sent again after the restart: {held}");
    assert!(stands.pd.calls().iter().all(|c| c.problem.is_none()));
    assert_eq!(stands.pd.notifications_for(DR_LEAD_KEY, &dr_lead), 1);
    assert_eq!(stands.pd.notifications_for(IC_KEY, &ic), 1);
    assert_eq!(stands.posts_starting("C1", "Paged the DR lead."), 1);
    assert_eq!(
        stands.posts_starting("C1", "Paged the incident commander."),
        1
    );
    assert_eq!(stands.posts_starting("C1", "Paging the DR lead"), 1);
    second.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_with_a_ticket_in_flight_files_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("drbot.db").display());
    let stands = Stands::start();
    stands.gh.fail_next("POST", Failure::HoldAfterApplying);
    let first = Serve::start(dir.path(), &stands.env()).await;
    dr(
        &first,
        &stands,
        "C1",
        "declare sev3 data orders table wiped",
    )
    .await;
    dr(
        &first,
        &stands,
        "C1",
        "followup add a restore drill for the ledger",
    )
    .await;
    until("the create held in flight", async || {
        (!stands.gh.issues().is_empty()).then_some(())
    })
    .await;
    first.kill();

    let second = Serve::start(dir.path(), &stands.env()).await;
    drained(&url).await;
    assert_eq!(stands.gh.issues().len(), 1, "{:#?}", stands.gh.issues());
    // The restart looked for the ticket before filing.
    assert!(
        stands.gh.calls().iter().any(|c| c.method == "GET"),
        "no look-up after the restart"
    );
    assert_eq!(
        stands
            .gh
            .calls()
            .iter()
            .filter(|c| c.method == "POST")
            .count(),
        1
    );
    assert_eq!(stands.posts_starting("C1", "Follow-up #1 filed as #1"), 1);
    let list = dr(&second, &stands, "C1", "followups").await;
    assert!(list.contains("#1 [#1"), "{list}");
    second.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_database_page_and_file_once() {
    let Ok(admin) = std::env::var(PG_ENV) else {
        eprintln!("{PG_ENV} unset: two processes need PostgreSQL; not run");
        return;
    };
    let db = PgDatabase::create(&admin).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let stands = Stands::start();
    let mut env = stands.env();
    env.push(("DRBOT__DATABASE__URL", db.url.clone()));
    env.push((
        "DRBOT__SANDBOX__STATE_FILE",
        dir_a.path().join("sandbox.json").display().to_string(),
    ));
    let a = Serve::start(dir_a.path(), &env).await;
    let b = Serve::start(dir_b.path(), &env).await;
    let replicas = [&a, &b];
    const INCIDENTS: usize = 6;
    for i in 0..INCIDENTS {
        let channel = format!("C{}", i + 1);
        dr(
            replicas[i % 2],
            &stands,
            &channel,
            "declare sev1 data orders table wiped",
        )
        .await;
        dr(
            replicas[(i + 1) % 2],
            &stands,
            &channel,
            "followup add a restore drill for the ledger",
        )
        .await;
    }
    drained(&db.url).await;
    a.stop();
    b.stop();

    for n in 1..=INCIDENTS as i64 {
        for (target, routing) in [("dr-lead", DR_LEAD_KEY), ("ic", IC_KEY)] {
            let key = page_key(&db.url, n, target).await;
            assert_eq!(stands.pd.notifications_for(routing, &key), 1, "{key}");
        }
    }
    assert_eq!(stands.pd.alerts().len(), 2 * INCIDENTS);
    assert_eq!(
        stands.gh.issues().len(),
        INCIDENTS,
        "one ticket per follow-up"
    );
    for i in 0..INCIDENTS {
        let channel = format!("C{}", i + 1);
        assert_eq!(
            stands.posts_starting(&channel, "Paged the DR lead."),
            1,
            "{channel}"
        );
        assert_eq!(
            stands.posts_starting(&channel, "Follow-up #1 filed"),
            1,
            "{channel}"
        );
    }
}
