//! Self-tests of the PagerDuty, GitHub Issues and Jira Cloud stand-ins: each asserts one
//! upstream rule the stand-in emulates, over real HTTP, so that drbot's paging and
//! follow-up tests can trust them.

mod support;

use std::time::Duration;

use serde_json::{Value, json};

use support::faults::Failure;
use support::github_api::GitHubApi;
use support::http as h;
use support::jira_api::{self, JiraApi, SearchLag, StatusCategory};
use support::pagerduty::{
    self, AlertStatus, Effect, OnCall, PagerDutyApi, WebhookIncident, pagerduty_incident_webhook,
    pagerduty_signature,
};

const ROUTING_KEY: &str = "R0UT1NGKEY0000000000000000000001";
const OTHER_ROUTING_KEY: &str = "R0UT1NGKEY0000000000000000000002";
const PD_TOKEN: &str = "y_NbAkKc66ryYTWUXYEu";
const GH_TOKEN: &str = "github_pat_standin";
const JIRA_EMAIL: &str = "drbot@example.com";
const JIRA_TOKEN: &str = "ATATT3xFfGF0standin";

fn json_headers() -> Vec<(&'static str, String)> {
    vec![("Content-Type", "application/json".to_string())]
}

fn trigger(routing_key: &str, dedup_key: &str) -> Value {
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": "INC-7 SEV1: paging the DR lead",
            "source": "drbot",
            "severity": "critical",
        },
    })
}

fn follow_up(routing_key: &str, dedup_key: &str, action: &str) -> Value {
    json!({ "routing_key": routing_key, "dedup_key": dedup_key, "event_action": action })
}

async fn send_event(pd: &PagerDutyApi, event: &Value) -> h::Response {
    h::post(&pd.events_url(), &json_headers(), event.to_string()).await
}

// ---------------------------------------------------------------------------------------
// PagerDuty Events API v2
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_second_trigger_on_an_open_key_is_accepted_but_does_not_notify() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    for _ in 0..2 {
        let r = send_event(
            &pd,
            &trigger(ROUTING_KEY, "drbot:7:1796000000:page:dr-lead"),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"status": "success", "message": "Event processed",
                   "dedup_key": "drbot:7:1796000000:page:dr-lead"})
        );
    }
    assert_eq!(pd.notifications("drbot:7:1796000000:page:dr-lead"), 1);
    let alerts = pd.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].triggers, 2);
    let effects: Vec<_> = pd.calls().into_iter().map(|c| c.effect).collect();
    assert_eq!(effects, [Some(Effect::Opened), Some(Effect::Merged)]);
}

#[tokio::test]
async fn after_resolve_a_trigger_opens_a_new_alert_and_notifies_again() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    let key = "drbot:7:1796000000:page:ic";
    send_event(&pd, &trigger(ROUTING_KEY, key)).await;
    let r = send_event(&pd, &follow_up(ROUTING_KEY, key, "resolve")).await;
    assert_eq!(r.status, 202);
    assert!(pd.open_alerts().is_empty());
    send_event(&pd, &trigger(ROUTING_KEY, key)).await;
    assert_eq!(pd.notifications(key), 2);
    let alerts = pd.alerts();
    assert_eq!(alerts.len(), 2);
    assert_ne!(alerts[0].id, alerts[1].id);
    assert_eq!(alerts[0].status, AlertStatus::Resolved);
    assert_eq!(pd.open_alerts().len(), 1);
}

#[tokio::test]
async fn an_acknowledged_alert_does_not_notify_on_new_triggers() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    let key = "k-ack";
    send_event(&pd, &trigger(ROUTING_KEY, key)).await;
    send_event(&pd, &follow_up(ROUTING_KEY, key, "acknowledge")).await;
    send_event(&pd, &trigger(ROUTING_KEY, key)).await;
    assert_eq!(pd.notifications(key), 1);
    assert_eq!(pd.open_alerts()[0].status, AlertStatus::Acknowledged);
}

#[tokio::test]
async fn ack_or_resolve_of_an_unknown_key_or_from_another_routing_key_is_dropped_with_202() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    send_event(&pd, &trigger(ROUTING_KEY, "k1")).await;
    for event in [
        follow_up(ROUTING_KEY, "never-triggered", "resolve"),
        follow_up(OTHER_ROUTING_KEY, "k1", "resolve"),
        follow_up(OTHER_ROUTING_KEY, "k1", "acknowledge"),
    ] {
        let r = send_event(&pd, &event).await;
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(pd.calls().last().unwrap().effect, Some(Effect::Dropped));
    }
    assert_eq!(pd.open_alerts().len(), 1);
    assert_eq!(pd.open_alerts()[0].status, AlertStatus::Triggered);
}

#[tokio::test]
async fn a_31_character_routing_key_is_refused_with_the_documented_body() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    let r = send_event(&pd, &trigger(&ROUTING_KEY[1..], "k")).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"],
        })
    );
    assert!(pd.alerts().is_empty());
}

#[tokio::test]
async fn events_are_checked_against_the_events_v2_schema() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    let mut bad_severity = trigger(ROUTING_KEY, "k");
    bad_severity["payload"]["severity"] = json!("high");
    let mut long_summary = trigger(ROUTING_KEY, "k");
    long_summary["payload"]["summary"] = json!("x".repeat(1025));
    let mut no_source = trigger(ROUTING_KEY, "k");
    no_source["payload"]
        .as_object_mut()
        .unwrap()
        .remove("source");
    let mut long_key = trigger(ROUTING_KEY, &"k".repeat(256));
    long_key["event_action"] = json!("trigger");
    let bad = [
        bad_severity,
        long_summary,
        no_source,
        long_key,
        json!({ "routing_key": ROUTING_KEY, "event_action": "resolve" }),
        json!({ "routing_key": ROUTING_KEY, "event_action": "escalate", "dedup_key": "k" }),
    ];
    for event in &bad {
        let r = send_event(&pd, event).await;
        assert_eq!(r.status, 400, "accepted {event}");
        assert_eq!(r.json()["status"], "invalid event");
    }
    let r = h::post(&pd.events_url(), &json_headers(), "not json").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "Event object format is unrecognized");
    assert!(pd.alerts().is_empty());

    // The schema has no `additionalProperties: false`: extra fields pass, and are recorded.
    let mut extra = trigger(ROUTING_KEY, "k");
    extra["incident_key"] = json!("v1-style");
    assert_eq!(send_event(&pd, &extra).await.status, 202);
    assert_eq!(pd.calls().last().unwrap().unknown_fields, ["incident_key"]);
}

#[tokio::test]
async fn a_trigger_without_dedup_key_always_opens_a_new_alert() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    let mut event = trigger(ROUTING_KEY, "");
    event.as_object_mut().unwrap().remove("dedup_key");
    let a = send_event(&pd, &event).await.json()["dedup_key"].clone();
    let b = send_event(&pd, &event).await.json()["dedup_key"].clone();
    assert_ne!(a, b);
    assert_eq!(pd.open_alerts().len(), 2);
}

#[tokio::test]
async fn change_events_are_stored_and_never_notify() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    let event = json!({
        "routing_key": ROUTING_KEY,
        "payload": { "summary": "Velero restore started", "source": "drbot" },
        "links": [{ "href": "https://drbot.example/incidents/7", "text": "INC-7" }],
    });
    let r = h::post(&pd.change_events_url(), &json_headers(), event.to_string()).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(pd.change_events().len(), 1);
    assert!(pd.alerts().is_empty());
    let bad = json!({ "routing_key": ROUTING_KEY, "payload": { "source": "drbot" } });
    let r = h::post(&pd.change_events_url(), &json_headers(), bad.to_string()).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn a_429_or_5xx_ingests_nothing() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    pd.fail_next(
        pagerduty::ENQUEUE,
        Failure::RateLimited {
            status: 429,
            retry_after_secs: Some(30),
        },
    );
    pd.fail_next(pagerduty::ENQUEUE, Failure::ServerError(502));
    let r = send_event(&pd, &trigger(ROUTING_KEY, "k")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("30"));
    assert_eq!(
        send_event(&pd, &trigger(ROUTING_KEY, "k")).await.status,
        502
    );
    assert!(pd.alerts().is_empty());
    assert_eq!(
        send_event(&pd, &trigger(ROUTING_KEY, "k")).await.status,
        202
    );
    assert_eq!(pd.notifications("k"), 1);
}

#[tokio::test]
async fn applied_then_the_connection_dropped_and_the_retry_merges() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    pd.fail_next(pagerduty::ENQUEUE, Failure::DropAfterApplying);
    let lost = h::send(
        "POST",
        &pd.events_url(),
        &json_headers(),
        trigger(ROUTING_KEY, "k").to_string(),
    )
    .await;
    assert!(lost.is_err(), "expected a transport error, got {lost:?}");
    assert_eq!(pd.notifications("k"), 1, "the event was ingested");
    assert_eq!(pd.calls()[0].answered, 0);
    // The caller cannot know: it retries with the same key, which merges.
    assert_eq!(
        send_event(&pd, &trigger(ROUTING_KEY, "k")).await.status,
        202
    );
    assert_eq!(pd.notifications("k"), 1);
}

#[tokio::test]
async fn applied_then_held_leaves_the_caller_waiting() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    pd.fail_next(pagerduty::ENQUEUE, Failure::HoldAfterApplying);
    let url = pd.events_url();
    let body = trigger(ROUTING_KEY, "k").to_string();
    let held = tokio::spawn(async move { h::send("POST", &url, &json_headers(), body).await });
    pd.wait_for(|calls| !calls.is_empty(), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(pd.notifications("k"), 1);
    assert!(!held.is_finished());
    held.abort();
}

// ---------------------------------------------------------------------------------------
// PagerDuty REST and webhooks
// ---------------------------------------------------------------------------------------

fn rest_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Authorization", format!("Token token={token}")),
        ("Accept", pagerduty::REST_ACCEPT.to_string()),
    ]
}

fn rota() -> Vec<OnCall> {
    (1..=3)
        .map(|i| OnCall {
            user_id: format!("PUSER0{i}"),
            name: format!("Responder {i}"),
            email: format!("responder{i}@example.com"),
            escalation_policy_id: if i < 3 { "PDRLEAD" } else { "PDBA" }.into(),
            schedule_id: Some(format!("PSCHED{i}")),
            escalation_level: i,
        })
        .collect()
}

#[tokio::test]
async fn oncalls_needs_the_exact_token_header() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    pd.set_rota(rota());
    let url = format!("{}/oncalls", pd.base());
    for auth in [
        format!("Token {PD_TOKEN}"),
        format!("Bearer {PD_TOKEN}"),
        "Token token=wrong".into(),
    ] {
        let r = h::get(&url, &[("Authorization", auth.clone())]).await;
        assert_eq!(r.status, 401, "{auth}");
        assert_eq!(
            r.json(),
            json!({"error": {"message": "Authentication failed", "code": 2006}})
        );
    }
    let r = h::get(&url, &rest_headers(PD_TOKEN)).await;
    assert_eq!(r.status, 200);
    assert!(pd.calls().last().unwrap().problem.is_none());
    // Without the version header it is served (the token picks the version) but noted.
    let r = h::get(&url, &rest_headers(PD_TOKEN)[..1]).await;
    assert_eq!(r.status, 200);
    assert!(pd.calls().last().unwrap().problem.is_some());
}

#[tokio::test]
async fn oncalls_filters_includes_users_and_paginates() {
    let pd = PagerDutyApi::start(PD_TOKEN);
    pd.set_rota(rota());
    let base = pd.base();
    let r = h::get(
        &format!("{base}/oncalls?escalation_policy_ids%5B%5D=PDRLEAD&include%5B%5D=users&limit=1"),
        &rest_headers(PD_TOKEN),
    )
    .await;
    let page = r.json();
    assert_eq!(page["limit"], 1);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["more"], true);
    assert_eq!(page["total"], Value::Null);
    assert_eq!(
        page["oncalls"][0]["user"]["email"],
        "responder1@example.com"
    );
    let r = h::get(
        &format!("{base}/oncalls?escalation_policy_ids[]=PDRLEAD&offset=1&total=true"),
        &rest_headers(PD_TOKEN),
    )
    .await;
    let page = r.json();
    assert_eq!(page["more"], false);
    assert_eq!(page["total"], 2);
    assert_eq!(page["oncalls"][0]["user"]["type"], "user_reference");
    assert_eq!(page["oncalls"][0]["user"]["id"], "PUSER02");
    let r = h::get(
        &format!("{base}/oncalls?schedule_ids[]=PSCHED3"),
        &rest_headers(PD_TOKEN),
    )
    .await;
    assert_eq!(r.json()["oncalls"][0]["escalation_policy"]["id"], "PDBA");
    let r = h::get(
        &format!("{base}/oncalls?offset=9990&limit=25"),
        &rest_headers(PD_TOKEN),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = h::get(&format!("{base}/abilities"), &rest_headers(PD_TOKEN)).await;
    assert!(
        r.json()["abilities"]
            .as_array()
            .unwrap()
            .contains(&json!("teams"))
    );
}

#[test]
fn webhook_signatures_are_hmac_sha256_per_secret_comma_separated() {
    use hmac::{Hmac, KeyInit, Mac};
    let incident = WebhookIncident {
        id: "PGR0VU2".into(),
        number: 2,
        title: "INC-7 SEV1".into(),
        incident_key: "drbot:7:1796000000:page:dr-lead".into(),
        agent_name: "Dana Lead".into(),
        agent_id: "PLH1HKV".into(),
        occurred_at: "2026-12-07T02:30:00.000Z".into(),
    };
    let body = pagerduty_incident_webhook("incident.acknowledged", &incident).to_string();
    let header = pagerduty_signature(&["old-secret", "new-secret"], &body);
    let parts: Vec<&str> = header.split(',').collect();
    assert_eq!(parts.len(), 2);
    for (part, secret) in parts.iter().zip(["old-secret", "new-secret"]) {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let hex = part.strip_prefix("v1=").expect("v1= prefix");
        mac.verify_slice(&hex::decode(hex).unwrap())
            .expect("a valid signature");
    }
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["event"]["event_type"], "incident.acknowledged");
    assert_eq!(event["event"]["data"]["status"], "acknowledged");
    assert_eq!(event["event"]["agent"]["summary"], "Dana Lead");
    let resolved = pagerduty_incident_webhook("incident.resolved", &incident);
    assert_eq!(resolved["event"]["data"]["status"], "resolved");
    assert_ne!(resolved["event"]["id"], event["event"]["id"]);
}

// ---------------------------------------------------------------------------------------
// GitHub Issues
// ---------------------------------------------------------------------------------------

fn gh_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Authorization", format!("Bearer {GH_TOKEN}")),
        ("Accept", "application/vnd.github+json".to_string()),
        ("X-GitHub-Api-Version", "2022-11-28".to_string()),
        ("User-Agent", "drbot".to_string()),
        ("Content-Type", "application/json".to_string()),
    ]
}

#[tokio::test]
async fn a_github_create_without_a_title_gets_422() {
    let gh = GitHubApi::start("acme", "dr", GH_TOKEN);
    let url = format!("{}/repos/acme/dr/issues", gh.base());
    let r = h::post(
        &url,
        &gh_headers(),
        json!({ "body": "no title" }).to_string(),
    )
    .await;
    assert_eq!(r.status, 422);
    let body = r.json();
    assert_eq!(body["message"], "Validation Failed");
    assert_eq!(
        body["errors"][0],
        json!({"resource": "Issue", "code": "missing_field", "field": "title"})
    );
    assert!(gh.issues().is_empty());
}

#[tokio::test]
async fn github_checks_token_user_agent_version_and_disabled_issues() {
    let gh = GitHubApi::start("acme", "dr", GH_TOKEN);
    let url = format!("{}/repos/acme/dr/issues", gh.base());
    let body = json!({ "title": "Restore drill follow-up" }).to_string();
    let mut wrong = gh_headers();
    wrong[0].1 = "Bearer nope".into();
    assert_eq!(h::post(&url, &wrong, body.clone()).await.status, 401);
    let no_agent: Vec<_> = gh_headers()
        .into_iter()
        .filter(|(k, _)| *k != "User-Agent")
        .collect();
    assert_eq!(h::post(&url, &no_agent, body.clone()).await.status, 403);
    let mut old = gh_headers();
    old[2].1 = "2020-01-01".into();
    assert_eq!(h::post(&url, &old, body.clone()).await.status, 400);
    gh.set_issues_disabled(true);
    let r = h::post(&url, &gh_headers(), body.clone()).await;
    assert_eq!(r.status, 410);
    assert_eq!(r.json()["message"], "Issues are disabled for this repo");
    gh.set_issues_disabled(false);
    assert_eq!(h::post(&url, &gh_headers(), body).await.status, 201);
    assert_eq!(gh.issues().len(), 1);
}

#[tokio::test]
async fn github_lists_by_label_and_reads_back_a_closed_state() {
    let gh = GitHubApi::start("acme", "dr", GH_TOKEN);
    let url = format!("{}/repos/acme/dr/issues", gh.base());
    for (title, label) in [("one", "drbot:7"), ("two", "drbot:8"), ("three", "drbot:7")] {
        let body = json!({ "title": title, "labels": [label, "drbot"],
                           "body": format!("<!-- drbot-followup {label} -->") });
        let r = h::post(&url, &gh_headers(), body.to_string()).await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    gh.close_issue(1, "completed");
    let open = h::get(&format!("{url}?labels=drbot:7"), &gh_headers())
        .await
        .json();
    assert_eq!(open.as_array().unwrap().len(), 1, "default state is open");
    let all = h::get(
        &format!("{url}?labels=drbot%3A7&state=all&per_page=100"),
        &gh_headers(),
    )
    .await
    .json();
    let titles: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["three", "one"], "newest first");
    let one = h::get(&format!("{url}/1"), &gh_headers()).await.json();
    assert_eq!(one["state"], "closed");
    assert_eq!(one["state_reason"], "completed");
    assert_eq!(h::get(&format!("{url}/9"), &gh_headers()).await.status, 404);
    let paged = h::get(&format!("{url}?state=all&per_page=2"), &gh_headers()).await;
    assert!(paged.header("link").unwrap().contains("rel=\"next\""));
}

#[tokio::test]
async fn github_secondary_limit_refuses_and_a_lost_answer_still_created() {
    let gh = GitHubApi::start("acme", "dr", GH_TOKEN);
    let url = format!("{}/repos/acme/dr/issues", gh.base());
    let body = json!({ "title": "t" }).to_string();
    gh.fail_next(
        "POST",
        Failure::RateLimited {
            status: 403,
            retry_after_secs: Some(60),
        },
    );
    gh.fail_next("POST", Failure::ReplyAfterApplying);
    let r = h::post(&url, &gh_headers(), body.clone()).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("retry-after"), Some("60"));
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("secondary rate limit")
    );
    assert!(gh.issues().is_empty());
    assert_eq!(h::post(&url, &gh_headers(), body).await.status, 500);
    assert_eq!(
        gh.issues().len(),
        1,
        "created although the answer was a 500"
    );
}

// ---------------------------------------------------------------------------------------
// Jira Cloud
// ---------------------------------------------------------------------------------------

fn jira_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Authorization", jira_api::basic(JIRA_EMAIL, JIRA_TOKEN)),
        ("Accept", "application/json".to_string()),
        ("Content-Type", "application/json".to_string()),
    ]
}

fn adf(text: &str) -> Value {
    json!({ "type": "doc", "version": 1, "content": [
        { "type": "paragraph", "content": [{ "type": "text", "text": text }] }
    ]})
}

fn jira_issue(summary: &str, label: &str) -> Value {
    json!({ "fields": {
        "project": { "key": "OPS" },
        "issuetype": { "name": "Task" },
        "summary": summary,
        "labels": [label],
        "description": adf("drbot-followup INC-7 #1"),
    }})
}

#[test]
fn basic_auth_is_base64_of_email_colon_token() {
    // RFC 7617 §2's example credentials.
    assert_eq!(
        jira_api::basic("Aladdin", "open sesame"),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
}

#[tokio::test]
async fn jira_create_checks_auth_required_fields_and_adf() {
    let jira = JiraApi::start("OPS", JIRA_EMAIL, JIRA_TOKEN);
    let url = format!("{}/rest/api/3/issue", jira.base());
    let mut wrong = jira_headers();
    wrong[0].1 = jira_api::basic(JIRA_EMAIL, "nope");
    let r = h::post(&url, &wrong, jira_issue("s", "l").to_string()).await;
    assert_eq!(r.status, 401);
    assert!(r.json()["errorMessages"].is_array());

    let r = h::post(&url, &jira_headers(), json!({ "fields": {} }).to_string()).await;
    assert_eq!(r.status, 400);
    let errors = r.json()["errors"].clone();
    for field in ["project", "issuetype", "summary"] {
        assert!(
            errors.get(field).is_some(),
            "no error for {field}: {errors}"
        );
    }

    let mut plain = jira_issue("s", "l");
    plain["fields"]["description"] = json!("a plain string");
    let r = h::post(&url, &jira_headers(), plain.to_string()).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["errors"]["description"].is_string());

    let mut off_screen = jira_issue("s", "l");
    off_screen["fields"]["customfield_10099"] = json!("x");
    let r = h::post(&url, &jira_headers(), off_screen.to_string()).await;
    assert_eq!(r.status, 400);
    assert!(jira.issues().is_empty());

    let r = h::post(&url, &jira_headers(), jira_issue("s", "l").to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    assert_eq!(created["key"], "OPS-1");
    assert_eq!(
        created.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "key", "self"]
    );
}

#[tokio::test]
async fn jira_search_does_not_see_a_new_issue_until_the_lag_passes() {
    let jira = JiraApi::start("OPS", JIRA_EMAIL, JIRA_TOKEN);
    jira.set_search_lag(SearchLag::Clock(Duration::from_secs(30)));
    let base = jira.base();
    let create = h::post(
        &format!("{base}/rest/api/3/issue"),
        &jira_headers(),
        jira_issue("Fix the backup alert", "drbot-7-1796000000").to_string(),
    )
    .await;
    assert_eq!(create.status, 201);
    let search = format!(
        "{base}/rest/api/3/search/jql?jql={}&fields=summary,labels",
        urlencode("labels = \"drbot-7-1796000000\"")
    );
    let hits = |r: h::Response| r.json()["issues"].as_array().unwrap().len();
    assert_eq!(hits(h::get(&search, &jira_headers()).await), 0);
    jira.advance(Duration::from_secs(29));
    assert_eq!(hits(h::get(&search, &jira_headers()).await), 0);
    jira.advance(Duration::from_secs(1));
    let found = h::get(&search, &jira_headers()).await.json();
    assert_eq!(found["issues"][0]["key"], "OPS-1");
    assert_eq!(
        found["issues"][0]["fields"]["summary"],
        "Fix the backup alert"
    );
    assert_eq!(found["isLast"], true);

    // The other lag: invisible to the next K searches.
    jira.set_search_lag(SearchLag::Searches(2));
    h::post(
        &format!("{base}/rest/api/3/issue"),
        &jira_headers(),
        jira_issue("second", "drbot-8").to_string(),
    )
    .await;
    let search = format!(
        "{base}/rest/api/3/search/jql?jql={}",
        urlencode("labels = drbot-8")
    );
    assert_eq!(hits(h::get(&search, &jira_headers()).await), 0);
    assert_eq!(hits(h::get(&search, &jira_headers()).await), 0);
    assert_eq!(hits(h::get(&search, &jira_headers()).await), 1);
}

#[tokio::test]
async fn jira_reads_back_status_category_myself_and_project() {
    let jira = JiraApi::start("OPS", JIRA_EMAIL, JIRA_TOKEN);
    let base = jira.base();
    h::post(
        &format!("{base}/rest/api/3/issue"),
        &jira_headers(),
        jira_issue("s", "l").to_string(),
    )
    .await;
    let status_of = async |key: &str| {
        h::get(
            &format!("{base}/rest/api/3/issue/{key}?fields=status"),
            &jira_headers(),
        )
        .await
    };
    let r = status_of("OPS-1").await.json();
    assert_eq!(r["fields"]["status"]["statusCategory"]["key"], "new");
    assert!(
        r["fields"].get("summary").is_none(),
        "only the fields asked for"
    );
    jira.set_status("OPS-1", StatusCategory::Done);
    let r = status_of("OPS-1").await.json();
    assert_eq!(r["fields"]["status"]["statusCategory"]["key"], "done");
    assert_eq!(status_of("OPS-9").await.status, 404);
    let me = h::get(&format!("{base}/rest/api/3/myself"), &jira_headers()).await;
    assert_eq!(me.json()["emailAddress"], JIRA_EMAIL);
    let p = h::get(&format!("{base}/rest/api/3/project/OPS"), &jira_headers()).await;
    assert_eq!(p.json()["key"], "OPS");
    let p = h::get(&format!("{base}/rest/api/3/project/NOPE"), &jira_headers()).await;
    assert_eq!(p.status, 404);
}

#[tokio::test]
async fn jira_429_carries_retry_after_and_creates_nothing() {
    let jira = JiraApi::start("OPS", JIRA_EMAIL, JIRA_TOKEN);
    let url = format!("{}/rest/api/3/issue", jira.base());
    jira.fail_next(
        "POST",
        Failure::RateLimited {
            status: 429,
            retry_after_secs: Some(5),
        },
    );
    let r = h::post(&url, &jira_headers(), jira_issue("s", "l").to_string()).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(jira.issues().is_empty());
    jira.fail_next("POST", Failure::DropAfterApplying);
    let lost = h::send(
        "POST",
        &url,
        &jira_headers(),
        jira_issue("s", "l").to_string(),
    )
    .await;
    assert!(lost.is_err());
    assert_eq!(jira.issues().len(), 1, "created although no answer came");
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("q", s)]).unwrap()[2..].to_string()
}
