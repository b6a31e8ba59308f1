//! The follow-up tracker adapter against the GitHub and Jira stand-ins: one ticket per
//! follow-up however its answer is lost, Jira's search lag waited out before filing again,
//! refusals worded with the tracker's own field messages, state read back, and the doctor's
//! checks.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use drbot::chat::tracker::{TicketState, Tracker, parse_receipt};
use drbot::chat::{ChatSink, DeliveryError, Outgoing};
use drbot::clock::ManualClock;
use drbot::config::{Settings, TrackerSettings};
use drbot::doctor::{Check, Options};
use drbot::incident::post::{FollowupOrder, Post, PostKind};
use serde_json::{Value, json};

use support::faults::Failure;
use support::github_api::GitHubApi;
use support::jira_api::{JiraApi, SearchLag, StatusCategory};

const GH_TOKEN: &str = "github_pat_standin";
const JIRA_EMAIL: &str = "drbot@example.com";
const JIRA_TOKEN: &str = "ATATT3xFfGF0standin";
const LINK: &str = "https://drbot.example/incidents/3";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
}

fn declared() -> DateTime<Utc> {
    t0() - chrono::Duration::hours(2)
}

fn order(number: u32, title: &str) -> FollowupOrder {
    FollowupOrder {
        incident: "INC-3".into(),
        declared_at: declared(),
        number,
        marker: format!("drbot:INC-3:{}:fu:{number}", declared().timestamp()),
        title: title.into(),
        text: format!("{title}\nAlert on backup age over 26 h."),
        owner: Some("<@U123>".into()),
        due: NaiveDate::from_ymd_opt(2026, 12, 8),
        link: LINK.into(),
    }
}

fn post(order: FollowupOrder) -> Post {
    let mut post = Post::new(PostKind::Followup, order.text.clone());
    post.followup = Some(order);
    post
}

/// The row's `n`-th send: `earlier` sends before it, the engine's clock at `now`.
fn outgoing(post: &Post, earlier: i64, now: DateTime<Utc>) -> Outgoing<'_> {
    Outgoing {
        outbox_id: 41,
        incident: Some(3),
        channel: "tracker",
        post,
        status_message: None,
        earlier_sends: earlier,
        status_in_doubt: false,
        created_at: t0(),
        now,
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

fn github(gh: &GitHubApi) -> TrackerSettings {
    TrackerSettings {
        kind: Some("github".into()),
        repo: Some("acme/dr".into()),
        token: Some(GH_TOKEN.into()),
        api_url: gh.base(),
        ..TrackerSettings::default()
    }
}

fn jira(api: &JiraApi) -> TrackerSettings {
    TrackerSettings {
        kind: Some("jira".into()),
        site: Some(format!("{}/", api.base())),
        project: Some("OPS".into()),
        email: Some(JIRA_EMAIL.into()),
        api_token: Some(JIRA_TOKEN.into()),
        labels: vec!["incident follow-up".into()],
        search_lag_seconds: 90,
        ..TrackerSettings::default()
    }
}

fn adapter(settings: &TrackerSettings) -> Tracker {
    Tracker::new(settings).expect("a tracker is configured")
}

async fn deliver(
    t: &Tracker,
    post: &Post,
    earlier: i64,
    now: DateTime<Utc>,
) -> Result<String, DeliveryError> {
    t.deliver(outgoing(post, earlier, now)).await
}

fn no_secret(e: &DeliveryError) {
    assert!(
        !e.message.contains(GH_TOKEN) && !e.message.contains(JIRA_TOKEN),
        "a token in an error message"
    );
}

// ---------------------------------------------------------------------------------------
// GitHub
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn github_files_one_issue_with_the_label_marker_and_body() {
    let gh = GitHubApi::start("acme", "dr", GH_TOKEN);
    let t = adapter(&github(&gh));
    assert_eq!(t.name(), "GitHub");
    let p = post(order(1, "Alert on stale backups"));
    let receipt = deliver(&t, &p, 0, t0()).await.expect("filed");
    assert_eq!(
        parse_receipt(&receipt),
        ("#1".into(), "https://github.com/acme/dr/issues/1".into())
    );
    let issues = gh.issues();
    assert_eq!(issues.len(), 1);
    let issue = &issues[0];
    assert_eq!(issue["title"], "Alert on stale backups");
    let labels: Vec<&str> = issue["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["incident-follow-up", "drbot:INC-3"]);
    let body = issue["body"].as_str().unwrap();
    for line in [
        "Alert on stale backups\nAlert on backup age over 26 h.",
        "\nOwner: <@U123>\n",
        "\nDue: 2026-12-08\n",
        &format!("\nIncident: {LINK}\n"),
        &format!(
            "<!-- drbot-followup drbot:INC-3:{}:fu:1 -->",
            declared().timestamp()
        ),
    ] {
        assert!(body.contains(line), "{line:?} missing from {body:?}");
    }
    let calls = gh.calls();
    assert_eq!(calls.len(), 1, "no look-up on a first send");
    assert!(calls[0].auth_ok);
    assert_eq!(calls[0].problem, None, "headers as GitHub documents them");
}

#[tokio::test]
async fn github_adopts_the_issue_a_lost_answer_filed() {
    for failure in [Failure::ReplyAfterApplying, Failure::DropAfterApplying] {
        let gh = GitHubApi::start("acme", "dr", GH_TOKEN);
        let t = adapter(&github(&gh));
        let p = post(order(1, "Alert on stale backups"));
        gh.fail_next("POST", failure.clone());
        let lost = deliver(&t, &p, 0, t0()).await.expect_err("answer lost");
        assert!(lost.retryable, "{failure:?}: {lost:?}");
        assert_eq!(gh.issues().len(), 1, "{failure:?}: the create landed");
        let receipt = deliver(&t, &p, 1, at(5)).await.expect("adopted");
        assert_eq!(parse_receipt(&receipt).0, "#1");
        assert_eq!(gh.issues().len(), 1, "{failure:?}: still one issue");
        let look = gh
            .calls()
            .into_iter()
            .find(|c| c.method == "GET")
            .expect("a look");
        let query = look.query.unwrap_or_default();
        assert!(query.contains("labels=drbot%3AINC-3"), "{query}");
        assert!(
            query.contains("state=all") && query.contains("per_page=100"),
            "{query}"
        );
    }
}

#[tokio::test]
async fn github_files_when_the_earlier_send_never_landed_and_ignores_other_markers() {
    let gh = GitHubApi::start("acme", "dr", GH_TOKEN);
    let t = adapter(&github(&gh));
    // Follow-up 10's marker contains follow-up 1's as a prefix.
    deliver(&t, &post(order(10, "Tenth")), 0, t0())
        .await
        .expect("filed");
    let p = post(order(1, "First"));
    gh.fail_next("POST", Failure::ServerError(503));
    let refused = deliver(&t, &p, 0, t0()).await.expect_err("503");
    assert!(refused.retryable);
    let receipt = deliver(&t, &p, 1, at(5)).await.expect("filed");
    assert_eq!(parse_receipt(&receipt).0, "#2");
    let titles: Vec<Value> = gh.issues().iter().map(|i| i["title"].clone()).collect();
    assert_eq!(titles, [json!("Tenth"), json!("First")]);
}

#[tokio::test]
async fn github_refusals_are_permanent_or_retryable_as_documented() {
    let gh = GitHubApi::start("acme", "dr", GH_TOKEN);
    let t = adapter(&github(&gh));

    let e = deliver(&t, &post(order(1, " ")), 0, t0())
        .await
        .unwrap_err();
    assert!(!e.retryable);
    assert!(
        e.message.contains("422") && e.message.contains("title: missing_field"),
        "{e}"
    );

    gh.set_issues_disabled(true);
    let e = deliver(&t, &post(order(1, "x")), 0, t0())
        .await
        .unwrap_err();
    assert!(!e.retryable);
    assert!(e.message.contains("issues are disabled on acme/dr"), "{e}");
    gh.set_issues_disabled(false);

    gh.fail_next(
        "POST",
        Failure::RateLimited {
            status: 403,
            retry_after_secs: Some(60),
        },
    );
    let e = deliver(&t, &post(order(1, "x")), 0, t0())
        .await
        .unwrap_err();
    assert!(e.retryable, "secondary limit: {e}");
    assert_eq!(e.retry_after, Some(Duration::from_secs(60)));

    gh.fail_next(
        "POST",
        Failure::RateLimited {
            status: 429,
            retry_after_secs: None,
        },
    );
    assert!(
        deliver(&t, &post(order(1, "x")), 0, t0())
            .await
            .unwrap_err()
            .retryable
    );

    let mut wrong = github(&gh);
    wrong.token = Some("github_pat_wrong".into());
    let e = deliver(&adapter(&wrong), &post(order(1, "x")), 0, t0())
        .await
        .unwrap_err();
    assert!(!e.retryable);
    assert!(
        e.message.contains("401") && e.message.contains("tracker.token"),
        "{e}"
    );
    assert!(!e.message.contains("github_pat_wrong"));
    no_secret(&e);

    let mut elsewhere = github(&gh);
    elsewhere.repo = Some("acme/other".into());
    let e = deliver(&adapter(&elsewhere), &post(order(1, "x")), 0, t0())
        .await
        .unwrap_err();
    assert!(!e.retryable);
    assert!(
        e.message.contains("not found or not visible to the token"),
        "{e}"
    );

    assert!(gh.issues().is_empty(), "nothing was filed");
}

#[tokio::test]
async fn github_state_is_read_back_after_the_issue_is_closed() {
    let gh = GitHubApi::start("acme", "dr", GH_TOKEN);
    let t = adapter(&github(&gh));
    let receipt = deliver(&t, &post(order(1, "x")), 0, t0()).await.unwrap();
    let key = parse_receipt(&receipt).0;
    assert_eq!(
        t.state(&key).await.unwrap(),
        TicketState {
            state: "open".into(),
            done: false
        }
    );
    gh.close_issue(1, "completed");
    assert_eq!(
        t.state(&key).await.unwrap(),
        TicketState {
            state: "closed (completed)".into(),
            done: true
        }
    );
    let e = t.state("#9").await.unwrap_err();
    assert!(!e.retryable, "{e}");
}

// ---------------------------------------------------------------------------------------
// Jira
// ---------------------------------------------------------------------------------------

/// The texts of the ADF paragraphs, each joined.
fn paragraphs(doc: &Value) -> Vec<String> {
    doc["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["text"].as_str().unwrap())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn jira_files_one_issue_with_adf_labels_and_due_date() {
    let api = JiraApi::start("OPS", JIRA_EMAIL, JIRA_TOKEN);
    let t = adapter(&jira(&api));
    assert_eq!(t.name(), "Jira");
    let receipt = deliver(&t, &post(order(1, "Alert on stale backups")), 0, t0())
        .await
        .expect("filed");
    assert_eq!(
        parse_receipt(&receipt),
        ("OPS-1".into(), format!("{}/browse/OPS-1", api.base()))
    );
    let issues = api.issues();
    assert_eq!(issues.len(), 1);
    let f = &issues[0].fields;
    assert_eq!(f["summary"], "Alert on stale backups");
    assert_eq!(f["issuetype"]["name"], "Task");
    assert_eq!(f["duedate"], "2026-12-08");
    let label = format!("drbot-INC-3-{}", declared().timestamp());
    assert_eq!(f["labels"], json!(["incident-follow-up", label]));
    assert_eq!(
        paragraphs(&f["description"]),
        [
            "Alert on stale backups".to_string(),
            "Alert on backup age over 26 h.".into(),
            "Owner: <@U123>".into(),
            format!("Incident: {LINK}"),
            format!("drbot-followup drbot:INC-3:{}:fu:1", declared().timestamp()),
        ]
    );
    let link = &f["description"]["content"][3]["content"][1];
    assert_eq!(
        link["marks"][0],
        json!({ "type": "link", "attrs": { "href": LINK } })
    );
    let calls = api.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].auth_ok);
    assert!(
        calls[0]
            .headers
            .iter()
            .any(|(k, v)| k == "accept" && v == "application/json")
    );
}

#[tokio::test]
async fn jira_adopts_a_lost_create_once_search_shows_it() {
    let api = JiraApi::start("OPS", JIRA_EMAIL, JIRA_TOKEN);
    let t = adapter(&jira(&api));
    let p = post(order(1, "x"));
    api.fail_next("POST", Failure::DropAfterApplying);
    assert!(deliver(&t, &p, 0, t0()).await.unwrap_err().retryable);
    let receipt = deliver(&t, &p, 1, at(1))
        .await
        .expect("found at once: no lag");
    assert_eq!(parse_receipt(&receipt).0, "OPS-1");
    assert_eq!(api.issues().len(), 1);
}

#[tokio::test]
async fn jira_waits_out_the_search_lag_before_filing_again() {
    let api = JiraApi::start("OPS", JIRA_EMAIL, JIRA_TOKEN);
    api.set_search_lag(SearchLag::Clock(Duration::from_secs(90)));
    let t = adapter(&jira(&api));
    let p = post(order(1, "x"));
    api.fail_next("POST", Failure::ReplyAfterApplying);
    assert!(deliver(&t, &p, 0, t0()).await.unwrap_err().retryable);
    assert_eq!(api.issues().len(), 1, "the create landed");

    api.advance(Duration::from_secs(10));
    let wait = deliver(&t, &p, 1, at(10)).await.unwrap_err();
    assert!(wait.retryable);
    assert_eq!(
        wait.message,
        "waiting for Jira's search to catch up before filing again"
    );
    assert_eq!(wait.retry_after, Some(Duration::from_secs(80)));
    assert_eq!(
        api.issues().len(),
        1,
        "no second issue while the index lags"
    );

    api.advance(Duration::from_secs(85));
    let receipt = deliver(&t, &p, 2, at(95)).await.expect("adopted");
    assert_eq!(parse_receipt(&receipt).0, "OPS-1");
    assert_eq!(api.issues().len(), 1);
    let posts = api.calls().iter().filter(|c| c.method == "POST").count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn jira_files_after_the_lag_when_the_first_create_never_landed() {
    let api = JiraApi::start("OPS", JIRA_EMAIL, JIRA_TOKEN);
    api.set_search_lag(SearchLag::Clock(Duration::from_secs(90)));
    let t = adapter(&jira(&api));
    let p = post(order(1, "x"));
    api.fail_next("POST", Failure::ServerError(503));
    assert!(deliver(&t, &p, 0, t0()).await.unwrap_err().retryable);
    assert!(api.issues().is_empty());
    let wait = deliver(&t, &p, 1, at(10)).await.unwrap_err();
    assert_eq!(wait.retry_after, Some(Duration::from_secs(80)));
    api.advance(Duration::from_secs(91));
    let receipt = deliver(&t, &p, 2, at(91)).await.expect("filed");
    assert_eq!(parse_receipt(&receipt).0, "OPS-1");
    assert_eq!(api.issues().len(), 1);
    let searches: Vec<String> = api
        .calls()
        .into_iter()
        .filter(|c| c.path == "/rest/api/3/search/jql")
        .map(|c| c.query.unwrap_or_default())
        .collect();
    assert_eq!(searches.len(), 2, "one look per retry");
    assert!(
        searches[0].contains(&format!(
            "jql=labels%20%3D%20%22drbot-INC-3-{}%22",
            declared().timestamp()
        )),
        "{}",
        searches[0]
    );
}

#[tokio::test]
async fn jira_refusals_carry_the_field_messages() {
    let api = JiraApi::start("OPS", JIRA_EMAIL, JIRA_TOKEN);
    let t = adapter(&jira(&api));
    let e = deliver(&t, &post(order(1, "")), 0, t0()).await.unwrap_err();
    assert!(!e.retryable);
    assert!(
        e.message
            .contains("summary: You must specify a summary of the issue."),
        "{e}"
    );

    let mut bad_type = jira(&api);
    bad_type.issue_type = "Epic".into();
    let e = deliver(&adapter(&bad_type), &post(order(1, "x")), 0, t0())
        .await
        .unwrap_err();
    assert!(
        e.message.contains("issuetype: Specify a valid issue type"),
        "{e}"
    );

    api.fail_next(
        "POST",
        Failure::RateLimited {
            status: 429,
            retry_after_secs: Some(5),
        },
    );
    let e = deliver(&t, &post(order(1, "x")), 0, t0())
        .await
        .unwrap_err();
    assert!(e.retryable);
    assert_eq!(e.retry_after, Some(Duration::from_secs(5)));

    let mut wrong = jira(&api);
    wrong.api_token = Some("ATATT3xFfGF0wrong".into());
    let e = deliver(&adapter(&wrong), &post(order(1, "x")), 0, t0())
        .await
        .unwrap_err();
    assert!(!e.retryable);
    assert!(e.message.contains("tracker.api_token"), "{e}");
    assert!(!e.message.contains("ATATT3xFfGF0wrong"));
    no_secret(&e);

    assert!(api.issues().is_empty());
}

#[tokio::test]
async fn jira_state_follows_the_status_category() {
    let api = JiraApi::start("OPS", JIRA_EMAIL, JIRA_TOKEN);
    let t = adapter(&jira(&api));
    deliver(&t, &post(order(1, "x")), 0, t0()).await.unwrap();
    let state = |s: &str, done| TicketState {
        state: s.into(),
        done,
    };
    assert_eq!(t.state("OPS-1").await.unwrap(), state("To Do", false));
    api.set_status("OPS-1", StatusCategory::Indeterminate);
    assert_eq!(t.state("OPS-1").await.unwrap(), state("In Progress", false));
    api.set_status("OPS-1", StatusCategory::Done);
    assert_eq!(t.state("OPS-1").await.unwrap(), state("Done", true));
    let e = t.state("OPS-9").await.unwrap_err();
    assert!(!e.retryable && e.message.contains("404"), "{e}");
}

// ---------------------------------------------------------------------------------------
// doctor
// ---------------------------------------------------------------------------------------

/// The doctor's tracker checks as (name, ok, detail).
async fn doctor(dir: &std::path::Path, tracker: TrackerSettings) -> Vec<(String, bool, String)> {
    let mut settings = Settings::default();
    settings.database.url = format!("sqlite://{}", dir.join("drbot.db").display());
    settings.tracker = tracker;
    let clock = Arc::new(ManualClock::new(t0()));
    drbot::doctor::run(&settings, clock, &Options::default())
        .await
        .into_iter()
        .filter(|c: &Check| c.name.starts_with("tracker"))
        .map(|c| (c.name, c.ok, c.detail))
        .collect()
}

#[tokio::test]
async fn doctor_checks_the_github_repository() {
    let dir = tempfile::tempdir().unwrap();
    let gh = GitHubApi::start("acme", "dr", GH_TOKEN);
    let checks = doctor(dir.path(), github(&gh)).await;
    assert_eq!(
        checks,
        [(
            "tracker".into(),
            true,
            "GitHub repository acme/dr reachable with this token".into()
        )]
    );
    gh.set_issues_disabled(true);
    let checks = doctor(dir.path(), github(&gh)).await;
    assert!(
        !checks[0].1 && checks[0].2.contains("issues are disabled"),
        "{checks:?}"
    );
    gh.set_issues_disabled(false);
    let mut wrong = github(&gh);
    wrong.token = Some("github_pat_wrong".into());
    let checks = doctor(dir.path(), wrong).await;
    assert!(!checks[0].1 && checks[0].2.contains("401"), "{checks:?}");
    let mut elsewhere = github(&gh);
    elsewhere.repo = Some("acme/other".into());
    let checks = doctor(dir.path(), elsewhere).await;
    assert!(
        !checks[0].1 && checks[0].2.contains("not found"),
        "{checks:?}"
    );
    assert!(
        doctor(dir.path(), TrackerSettings::default())
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn doctor_checks_the_jira_account_and_project() {
    let dir = tempfile::tempdir().unwrap();
    let api = JiraApi::start("OPS", JIRA_EMAIL, JIRA_TOKEN);
    let checks = doctor(dir.path(), jira(&api)).await;
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert!(checks.iter().all(|c| c.1), "{checks:?}");
    assert!(
        checks[0].2.contains("drbot"),
        "names the account: {checks:?}"
    );
    let mut nope = jira(&api);
    nope.project = Some("NOPE".into());
    let checks = doctor(dir.path(), nope).await;
    assert!(
        !checks[1].1 && checks[1].2.contains("not found or not visible"),
        "{checks:?}"
    );
    let mut epic = jira(&api);
    epic.issue_type = "Epic".into();
    let checks = doctor(dir.path(), epic).await;
    assert!(
        !checks[1].1 && checks[1].2.contains("no issue type"),
        "{checks:?}"
    );
    let mut wrong = jira(&api);
    wrong.api_token = Some("ATATT3xFfGF0wrong".into());
    let checks = doctor(dir.path(), wrong).await;
    assert_eq!(checks.len(), 1);
    assert!(
        !checks[0].1 && checks[0].2.contains("refused the credentials"),
        "{checks:?}"
    );
}
