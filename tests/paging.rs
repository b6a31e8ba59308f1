//! Paging and follow-ups end to end: the real server on 127.0.0.1 with Slack, PagerDuty,
//! GitHub and Jira played by stand-ins that check what they receive and count what they
//! would notify. Crashes and replicas are in `tests/paging_crash.rs`.

mod support;

use chrono::Duration;
use drbot::clock::Clock;
use drbot::command::ExportFormat;
use support::bot::{Bot, SLACK_SECRET, SLACK_TOKEN, t0};
use support::faults::Failure;
use support::github_api::GitHubApi;
use support::http;
use support::pagerduty::{
    ENQUEUE, OnCall, PagerDutyApi, WebhookIncident, pagerduty_incident_webhook,
    pagerduty_webhook_headers,
};
use support::slack_api::SlackApi;

const CHANNEL: &str = "C1";
const DR_LEAD_KEY: &str = "R0DRLEAD0000000000000000000000AA";
const IC_KEY: &str = "R0INCIDENTCOMMANDER0000000000000";
const DBA_KEY: &str = "R0DBAONCALL000000000000000000000";
const REST_TOKEN: &str = "y_NbAkKc66ryYTWUXYEu";
const WEBHOOK_SECRET: &str = "whsec-drbot-test-0123456789abcdef";
const GH_TOKEN: &str = "ghp_drbotTestToken0123456789";

struct World {
    bot: Bot,
    slack: SlackApi,
    pd: PagerDutyApi,
    gh: GitHubApi,
    _dir: tempfile::TempDir,
}

fn paging_env(pd: &PagerDutyApi) -> Vec<(&'static str, String)> {
    vec![
        ("DRBOT__PAGING__PROVIDER", "pagerduty".into()),
        ("DRBOT__PAGING__EVENTS_URL", pd.events_url()),
        ("DRBOT__PAGING__API_URL", pd.base()),
        ("DRBOT__PAGING__API_KEY", REST_TOKEN.into()),
        ("DRBOT__PAGING__ROUTES__DR_LEAD", DR_LEAD_KEY.into()),
        ("DRBOT__PAGING__ROUTES__IC", IC_KEY.into()),
        ("DRBOT__PAGING__ROUTES__DBA_ONCALL", DBA_KEY.into()),
        ("DRBOT__PAGING__AUTO__SEV1", "dr-lead,ic".into()),
        (
            "DRBOT__PAGING__FALLBACK__DR_LEAD",
            "Dana on +1 555 0100".into(),
        ),
        ("DRBOT__PAGING__ONCALL__DR_LEAD", "PDRLEAD".into()),
        ("DRBOT__PAGING__WEBHOOK_SECRETS", WEBHOOK_SECRET.into()),
        ("DRBOT__WEB__LISTEN", "127.0.0.1:0".into()),
        ("DRBOT__WEB__AUTH", "none".into()),
    ]
}

fn tracker_env(gh: &GitHubApi) -> Vec<(&'static str, String)> {
    vec![
        ("DRBOT__TRACKER__KIND", "github".into()),
        ("DRBOT__TRACKER__REPO", "acme/platform".into()),
        ("DRBOT__TRACKER__TOKEN", GH_TOKEN.into()),
        ("DRBOT__TRACKER__API_URL", gh.base()),
    ]
}

async fn world_with(extra: &[(&'static str, String)]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let slack = SlackApi::start(SLACK_TOKEN);
    let pd = PagerDutyApi::start(REST_TOKEN);
    let gh = GitHubApi::start("acme", "platform", GH_TOKEN);
    let mut env = vec![
        ("DRBOT__SLACK__SIGNING_SECRET", SLACK_SECRET.to_string()),
        ("DRBOT__SLACK__BOT_TOKEN", SLACK_TOKEN.to_string()),
        ("DRBOT__SLACK__API_URL", slack.base()),
        ("DRBOT__SLACK__OPERATORS", "U1".to_string()),
    ];
    env.extend(paging_env(&pd));
    env.extend(tracker_env(&gh));
    env.extend(extra.iter().cloned());
    let bot = Bot::start(dir.path(), &env, t0()).await;
    World {
        bot,
        slack,
        pd,
        gh,
        _dir: dir,
    }
}

async fn world() -> World {
    world_with(&[]).await
}

impl World {
    async fn dr(&self, user: &str, text: &str) -> String {
        let body = http::slack_command_body(
            text,
            CHANNEL,
            user,
            &http::slack_trigger_id(),
            &self.slack.response_url("cmd"),
        );
        let headers = http::slack_signed_headers(SLACK_SECRET, self.bot.now_unix(), &body);
        let resp = http::post(&self.bot.url("/slack/commands"), &headers, body).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        resp.json()["text"].as_str().unwrap_or_default().to_string()
    }

    /// Posts in the channel containing `needle`, once the outbox has drained.
    async fn posts(&self, needle: &str) -> Vec<String> {
        self.bot.drained().await;
        self.slack
            .posts_in(CHANNEL)
            .into_iter()
            .filter_map(|p| p["text"].as_str().map(str::to_string))
            .filter(|t| t.contains(needle))
            .collect()
    }

    async fn post(&self, needle: &str) -> String {
        self.bot.post_containing(&self.slack, CHANNEL, needle).await["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn key(&self, target: &str) -> String {
        format!("drbot:INC-1:{}:page:{target}", t0().timestamp())
    }

    async fn events(&self) -> usize {
        self.bot.event_count(&format!("slack:{CHANNEL}")).await
    }

    /// Tick every checklist item (9.8.4 excepted: a tracker is configured).
    async fn check_everything(&self) {
        let r = self.dr("U1", "check 9 done").await;
        assert!(r.contains("checked"), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sev1_declaration_pages_each_auto_target_once_and_resolve_resolves_them() {
    let w = world().await;
    let answer = w.dr("U1", "declare sev1 data orders table wiped").await;
    assert!(answer.contains("INC-1"), "{answer}");
    w.post("Paged the DR lead.").await;
    w.post("Paged the incident commander.").await;
    assert_eq!(w.pd.notifications_for(DR_LEAD_KEY, &w.key("dr-lead")), 1);
    assert_eq!(w.pd.notifications_for(IC_KEY, &w.key("ic")), 1);
    assert_eq!(w.pd.alerts().len(), 2, "nothing else was paged");
    let paging = w.posts("Paging the DR lead (declared SEV1)").await;
    assert_eq!(paging.len(), 1, "{paging:?}");
    let status = w.dr("U1", "status").await;
    assert!(
        status.contains("dr-lead paged") && status.contains("ic paged"),
        "{status}"
    );

    // SOP 9.8.4: resolve is refused until a follow-up is filed or waived, naming both.
    w.check_everything().await;
    let refused = w.dr("U1", "resolve").await;
    assert!(refused.contains("Cannot resolve"), "{refused}");
    assert!(refused.contains("/dr followup <text>"), "{refused}");
    assert!(refused.contains("/dr followup none <reason>"), "{refused}");
    assert!(w.dr("U1", "check 9.8.4").await.contains("/dr followup"));

    let filed = w
        .dr(
            "U1",
            "followup rotate the backup encryption keys <@U2> due=2026-03-01",
        )
        .await;
    assert!(filed.contains("follow-up #1 requested"), "{filed}");
    let post = w.post("Follow-up #1 filed as #1").await;
    assert!(post.contains("http"), "{post}");
    let issues = w.gh.issues();
    assert_eq!(issues.len(), 1);
    let body = issues[0]["body"].as_str().unwrap_or_default();
    assert!(body.contains("rotate the backup encryption keys"), "{body}");
    assert!(body.contains("drbot:INC-1:"), "the marker: {body}");
    let list = w.dr("U1", "followups").await;
    assert!(
        list.contains("#1") && list.contains("rotate the backup"),
        "{list}"
    );

    let resolved = w.dr("U1", "resolve").await;
    assert!(resolved.to_lowercase().contains("resolved"), "{resolved}");
    w.post("The page to the DR lead is resolved.").await;
    w.post("The page to the incident commander is resolved.")
        .await;
    assert!(w.pd.open_alerts().is_empty(), "{:?}", w.pd.open_alerts());
    // Each target was woken once, start to finish.
    assert_eq!(w.pd.notifications(&w.key("dr-lead")), 1);
    assert_eq!(w.pd.notifications(&w.key("ic")), 1);

    // The incident page shows them too.
    let web = w.bot.start_web().await;
    let page = http::get(&format!("http://{}/incidents/INC-1", web.addr), &[]).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("<h2>Pages</h2>") && html.contains("data-page=\"dr-lead\""),
        "{html}"
    );
    assert!(html.contains("<h2>Follow-ups</h2>"), "{html}");
    assert!(
        html.contains("<a href=\"http"),
        "the ticket is a link: {html}"
    );

    // The postmortem lists the pages and the follow-up with its ticket.
    let app = w.bot.app();
    for (format, wanted) in [
        (ExportFormat::Markdown, "## Follow-ups (SOP 9.8.4)"),
        (ExportFormat::Json, "\"followups\":[{\"number\":1"),
    ] {
        let mut out = Vec::new();
        drbot::export::export(&app.store, 1, format, &app.runbook, &mut out)
            .await
            .expect("export");
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(wanted), "{text}");
        assert!(text.contains(&w.key("dr-lead")), "the dedup key: {text}");
        assert!(text.contains("rotate the backup encryption keys"), "{text}");
    }
    w.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raise_pages_what_the_new_severity_pages_and_a_deliberate_repage_wakes_again() {
    let w = world().await;
    w.dr("U1", "declare sev2 data orders table wiped").await;
    w.bot.drained().await;
    assert!(w.pd.alerts().is_empty(), "sev2 pages nobody here");
    w.dr("U1", "page dr-lead the replica is gone too").await;
    w.post("Paged the DR lead.").await;
    w.dr("U1", "severity sev1").await;
    w.post("Paged the incident commander.").await;
    // dr-lead was paged already and is open: the raise does not page it again.
    assert_eq!(w.pd.notifications(&w.key("dr-lead")), 1);
    assert_eq!(w.pd.notifications(&w.key("ic")), 1);
    // Paging again on purpose: a key of its own, so the person is woken again.
    w.dr("U1", "page dr-lead still nobody on the bridge").await;
    w.bot.drained().await;
    assert_eq!(w.pd.notifications(&format!("{}#2", w.key("dr-lead"))), 1);
    // One target resolved by hand.
    let r = w.dr("U1", "page resolve ic").await;
    assert!(!r.contains("no open page"), "{r}");
    w.post("The page to the incident commander is resolved.")
        .await;
    assert_eq!(w.pd.open_alerts().len(), 2);
    w.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_clear_message_and_writes_nothing() {
    let w = world().await;
    w.dr("U1", "declare sev3 data orders table wiped").await;
    w.bot.drained().await;
    let before = w.events().await;
    let unknown = w.dr("U1", "page dba-on-call help").await;
    assert!(
        unknown.contains("Unknown target `dba-on-call`"),
        "{unknown}"
    );
    assert!(
        unknown.contains("dba-oncall"),
        "lists the targets: {unknown}"
    );
    let bad_date = w.dr("U1", "followup fix the alerting due=2026-13-01").await;
    assert!(
        bad_date.contains("not a date") && bad_date.contains("YYYY-MM-DD"),
        "{bad_date}"
    );
    let past = w.dr("U1", "followup fix the alerting due=2020-01-01").await;
    assert!(past.contains("in the past"), "{past}");
    let nobody = w.dr("U1", "page resolve dr-lead").await;
    assert!(nobody.contains("no open page"), "{nobody}");
    let not_ic = w.dr("U2", "followup none nothing to do").await;
    assert!(not_ic.contains("Only the incident commander"), "{not_ic}");
    assert_eq!(w.events().await, before, "refusals write nothing");

    // A forged webhook: wrong secret, then a replay of an old delivery.
    let incident = WebhookIncident {
        id: "PABC123".into(),
        number: 1,
        title: "x".into(),
        incident_key: w.key("dr-lead"),
        agent_name: "Mallory".into(),
        agent_id: "PMAL".into(),
        occurred_at: w.bot.clock.now().to_rfc3339(),
    };
    let body = pagerduty_incident_webhook("incident.acknowledged", &incident).to_string();
    let forged = pagerduty_webhook_headers(&["not-the-secret"], "wh-1", &body);
    let r = http::post(&w.bot.url("/pagerduty/webhook"), &forged, body.clone()).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let mut old = incident.clone();
    old.occurred_at = (w.bot.clock.now() - Duration::hours(3)).to_rfc3339();
    let body = pagerduty_incident_webhook("incident.acknowledged", &old).to_string();
    let replay = pagerduty_webhook_headers(&[WEBHOOK_SECRET], "wh-2", &body);
    let r = http::post(&w.bot.url("/pagerduty/webhook"), &replay, body).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("replay"), "{}", r.text());
    assert_eq!(w.events().await, before, "forged webhooks write nothing");
    w.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_and_resolves_come_back_from_pagerduty_webhooks_once() {
    let w = world().await;
    w.dr("U1", "declare sev1 data orders table wiped").await;
    w.post("Paged the DR lead.").await;
    let incident = WebhookIncident {
        id: "PDRL001".into(),
        number: 42,
        title: "[SEV1] INC-1".into(),
        incident_key: w.key("dr-lead"),
        agent_name: "Dana Lead".into(),
        agent_id: "PDANA01".into(),
        occurred_at: w.bot.clock.now().to_rfc3339(),
    };
    let ack = pagerduty_incident_webhook("incident.acknowledged", &incident).to_string();
    let headers = pagerduty_webhook_headers(&["old-secret", WEBHOOK_SECRET], "wh-ack", &ack);
    for _ in 0..2 {
        // PagerDuty redelivers when unsure; the second changes nothing.
        let r = http::post(&w.bot.url("/pagerduty/webhook"), &headers, ack.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    w.post("acknowledged by Dana Lead").await;
    assert_eq!(w.posts("was acknowledged by Dana Lead").await.len(), 1);
    let status = w.dr("U1", "status").await;
    assert!(
        status.contains("dr-lead acknowledged by Dana Lead"),
        "{status}"
    );

    let other = pagerduty_incident_webhook("incident.priority_updated", &incident).to_string();
    let headers = pagerduty_webhook_headers(&[WEBHOOK_SECRET], "wh-prio", &other);
    let r = http::post(&w.bot.url("/pagerduty/webhook"), &headers, other).await;
    assert_eq!((r.status, r.text().trim()), (200, "ignored"));

    let resolved = pagerduty_incident_webhook("incident.resolved", &incident).to_string();
    let headers = pagerduty_webhook_headers(&[WEBHOOK_SECRET], "wh-res", &resolved);
    let r = http::post(&w.bot.url("/pagerduty/webhook"), &headers, resolved).await;
    assert_eq!(r.status, 200, "{}", r.text());
    w.post("was resolved in PagerDuty").await;
    w.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pagerduty_down_commands_answer_and_the_give_up_names_whom_to_call_once() {
    let w = world().await;
    for _ in 0..40 {
        w.pd.fail_next(ENQUEUE, Failure::ServerError(503));
    }
    let answer = w.dr("U1", "declare sev1 data orders table wiped").await;
    assert!(answer.contains("INC-1"), "the command answered: {answer}");
    let note = w.dr("U1", "note bridge open").await;
    assert!(note.contains("note"), "{note}");
    // Retries back off; within the bound nothing is given up.
    for round in 1..=4 {
        w.bot
            .until("both pages tried again", async || {
                (w.pd.calls().len() >= 2 * round).then_some(())
            })
            .await;
        w.bot.advance(Duration::seconds(50));
    }
    let sent_so_far = w.slack.posts_in(CHANNEL);
    assert!(
        !sent_so_far
            .iter()
            .any(|p| p.to_string().contains("NOT paged")),
        "given up too early"
    );
    w.bot.advance(Duration::minutes(3));
    let given_up = w.post("NOT paged: the DR lead").await;
    assert!(given_up.contains("call Dana on +1 555 0100"), "{given_up}");
    let ic = w.post("NOT paged: the incident commander").await;
    assert!(ic.contains("call <@U1>"), "the IC role's holder: {ic}");
    w.bot.advance(Duration::minutes(10));
    // Once (an automatic update may quote it among its changes).
    let notices: Vec<String> = w
        .posts("NOT paged: the DR lead")
        .await
        .into_iter()
        .filter(|p| p.starts_with("NOT paged"))
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(w.pd.alerts().is_empty());
    w.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oncall_shows_who_a_page_would_wake() {
    let w = world().await;
    w.pd.set_rota(vec![
        OnCall {
            user_id: "PDANA01".into(),
            name: "Dana Lead".into(),
            email: "dana@example.com".into(),
            escalation_policy_id: "PDRLEAD".into(),
            schedule_id: Some("PSCHED1".into()),
            escalation_level: 1,
        },
        OnCall {
            user_id: "PBOSS01".into(),
            name: "Bo Boss".into(),
            email: "bo@example.com".into(),
            escalation_policy_id: "PDRLEAD".into(),
            schedule_id: None,
            escalation_level: 2,
        },
    ]);
    let shown = w.dr("U1", "oncall dr-lead").await;
    assert!(
        shown.contains("Dana Lead") && shown.contains("Bo Boss"),
        "{shown}"
    );
    assert!(!shown.contains(REST_TOKEN));
    let unknown = w.dr("U1", "oncall nobody").await;
    assert!(unknown.contains("Unknown target `nobody`"), "{unknown}");
    let no_policy = w.dr("U1", "oncall ic").await;
    assert!(no_policy.contains("paging.oncall"), "{no_policy}");
    w.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_files_one_ticket_and_the_waiver_also_meets_9_8_4() {
    let w = world().await;
    w.dr("U1", "declare sev3 data orders table wiped").await;
    w.gh.fail_next("POST", Failure::ReplyAfterApplying);
    w.dr("U1", "followup add a restore drill for the ledger")
        .await;
    w.bot
        .until("the create whose answer was lost", async || {
            (!w.gh.issues().is_empty()).then_some(())
        })
        .await;
    // The retry comes after its back-off, on the engine's clock.
    w.bot.advance(Duration::seconds(2));
    w.post("Follow-up #1 filed as #1").await;
    assert_eq!(
        w.gh.issues().len(),
        1,
        "the retry found the ticket instead of filing again"
    );
    assert_eq!(w.posts("Follow-up #1 filed").await.len(), 1);

    // The waiver meets 9.8.4 just as well.
    let r = w
        .dr("U1", "followup none covered by INC-1's follow-ups")
        .await;
    assert!(r.contains("no follow-up needed"), "{r}");
    let again = w.dr("U1", "followup none twice").await;
    assert!(again.contains("already waived"), "{again}");
    w.check_everything().await;
    let resolved = w.dr("U1", "resolve").await;
    assert!(resolved.to_lowercase().contains("resolved"), "{resolved}");
    let export = w.dr("U1", "timeline export md").await;
    assert!(export.contains("INC-1"), "{export}");
    w.bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followups_state_is_read_back_on_the_slow_schedule() {
    let w = world().await;
    w.dr("U1", "declare sev3 data orders table wiped").await;
    w.dr("U1", "followup add a restore drill for the ledger")
        .await;
    w.post("Follow-up #1 filed as #1").await;
    w.gh.close_issue(1, "completed");
    w.bot.advance(Duration::minutes(16));
    w.bot
        .until("the closed state read back", async || {
            let list = w.dr("U1", "followups").await;
            list.contains("closed").then_some(())
        })
        .await;
    w.bot.stop().await;
}
