//! The paging adapter on the wire: pages and resolves through PagerDuty's Events API v2 and
//! Opsgenie's alert API (their stand-ins), the PagerDuty on-call lookup, and V3 webhook
//! signatures.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use drbot::chat::pager::{OnCall, Pager, webhook_signature_valid};
use drbot::chat::{ChatSink, DeliveryError, Outgoing};
use drbot::config::PagingSettings;
use drbot::incident::post::{PageAction, PageOrder, Post, PostKind};
use serde_json::json;

use support::faults::Failure;
use support::opsgenie::{self, OpsgenieApi};
use support::pagerduty::{self, AlertStatus, Effect, PagerDutyApi, pagerduty_signature};

const DR_LEAD_KEY: &str = "R0UT1NGKEY0000000000000000000001";
const IC_KEY: &str = "R0UT1NGKEY0000000000000000000002";
const REST_KEY: &str = "y_NbAkKc66ryYTWUXYEu";
const GENIE_KEY: &str = "eb243592-faa2-4ba2-a551-1afdf565c889";
const DEDUP: &str = "drbot:INC-3:1796000000:page:dr-lead";

fn pd_settings(pd: &PagerDutyApi) -> PagingSettings {
    PagingSettings {
        provider: Some("pagerduty".into()),
        events_url: Some(pd.events_url()),
        routes: BTreeMap::from([
            ("dr-lead".into(), DR_LEAD_KEY.into()),
            ("ic".into(), IC_KEY.into()),
        ]),
        api_url: pd.base(),
        api_key: Some(REST_KEY.into()),
        oncall: BTreeMap::from([("dr-lead".into(), "PDRLEAD".into())]),
        ..PagingSettings::default()
    }
}

fn order(target: &str, action: PageAction, link: Option<&str>) -> PageOrder {
    PageOrder {
        incident: "INC-3".into(),
        target: target.into(),
        action,
        dedup_key: format!("drbot:INC-3:1796000000:page:{target}"),
        summary: "[SEV1] INC-3 orders table wiped — DR lead paged by @dana: join the bridge".into(),
        severity: "critical".into(),
        link: link.map(str::to_string),
    }
}

fn page_post(order: PageOrder) -> Post {
    let mut post = Post::new(PostKind::Page, order.summary.clone());
    post.page = Some(order);
    post
}

async fn deliver(pager: &Pager, post: &Post, earlier_sends: i64) -> Result<String, DeliveryError> {
    let target = post.page.as_ref().map_or("", |p| p.target.as_str());
    let channel = format!("pager:{target}");
    pager
        .deliver(Outgoing {
            outbox_id: 1,
            incident: Some(3),
            channel: &channel,
            post,
            status_message: None,
            earlier_sends,
            status_in_doubt: false,
            created_at: Utc::now(),
            now: Utc::now(),
        })
        .await
}

fn pager(settings: &PagingSettings) -> Pager {
    Pager::new(settings).expect("paging is on")
}

// ---------------------------------------------------------------------------------------
// PagerDuty Events API v2
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_page_opens_one_alert_a_repeat_merges_and_a_resolve_closes_it() {
    let pd = PagerDutyApi::start(REST_KEY);
    let pager = pager(&pd_settings(&pd));
    let trigger = page_post(order(
        "dr-lead",
        PageAction::Trigger,
        Some("https://drbot.example/incidents/3"),
    ));

    assert_eq!(deliver(&pager, &trigger, 0).await, Ok(DEDUP.to_string()));
    let alerts = pd.open_alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].routing_key, DR_LEAD_KEY);
    assert_eq!(alerts[0].severity, "critical");
    assert_eq!(pd.notifications(DEDUP), 1);

    let sent = &pd.calls()[0];
    assert!(sent.problem.is_none(), "{:?}", sent.problem);
    assert!(sent.unknown_fields.is_empty(), "{:?}", sent.unknown_fields);
    assert!(!sent.headers.iter().any(|(k, _)| k == "authorization"));
    assert_eq!(sent.body["client"], "drbot");
    assert_eq!(sent.body["client_url"], "https://drbot.example/incidents/3");
    assert_eq!(
        sent.body["links"][0]["href"],
        "https://drbot.example/incidents/3"
    );
    assert_eq!(sent.body["payload"]["source"], "drbot");
    assert_eq!(
        sent.body["payload"]["custom_details"],
        json!({ "incident": "INC-3", "target": "dr-lead" })
    );

    // The outbox sends again after a lost answer: same key, no second page.
    assert_eq!(deliver(&pager, &trigger, 1).await, Ok(DEDUP.to_string()));
    assert_eq!(pd.notifications(DEDUP), 1);
    assert_eq!(pd.calls()[1].effect, Some(Effect::Merged));

    let resolve = page_post(order("dr-lead", PageAction::Resolve, None));
    assert_eq!(deliver(&pager, &resolve, 0).await, Ok(DEDUP.to_string()));
    assert!(pd.open_alerts().is_empty());
    assert_eq!(pd.alerts()[0].status, AlertStatus::Resolved);
    let resolved = &pd.calls()[2];
    assert_eq!(resolved.effect, Some(Effect::Resolved));
    assert_eq!(
        resolved.body,
        json!({ "routing_key": DR_LEAD_KEY, "dedup_key": DEDUP, "event_action": "resolve" })
    );
}

#[tokio::test]
async fn a_long_summary_is_clipped_to_what_pagerduty_takes() {
    let pd = PagerDutyApi::start(REST_KEY);
    let pager = pager(&pd_settings(&pd));
    let mut long = order("ic", PageAction::Trigger, None);
    long.summary = "x".repeat(3000);
    assert!(deliver(&pager, &page_post(long), 0).await.is_ok());
    let summary = pd.alerts()[0].summary.clone();
    assert_eq!(summary.chars().count(), pagerduty::MAX_SUMMARY);
    assert!(pd.calls()[0].body.get("client_url").is_none());
}

#[tokio::test]
async fn a_target_without_a_route_is_a_permanent_error_and_nothing_is_sent() {
    let pd = PagerDutyApi::start(REST_KEY);
    let pager = pager(&pd_settings(&pd));
    let err = deliver(
        &pager,
        &page_post(order("comms", PageAction::Trigger, None)),
        0,
    )
    .await
    .expect_err("no route");
    assert!(!err.retryable);
    assert_eq!(err.message, "no route for comms in [paging.routes]");
    assert!(pd.calls().is_empty());
}

#[tokio::test]
async fn a_refused_routing_key_is_permanent_and_the_key_is_not_in_the_message() {
    let pd = PagerDutyApi::start(REST_KEY);
    let short = &DR_LEAD_KEY[1..];
    let mut settings = pd_settings(&pd);
    settings.routes.insert("dr-lead".into(), short.into());
    let pager = pager(&settings);
    let err = deliver(
        &pager,
        &page_post(order("dr-lead", PageAction::Trigger, None)),
        0,
    )
    .await
    .expect_err("PagerDuty refuses a 31-character key");
    assert!(!err.retryable);
    assert_eq!(
        err.message,
        "PagerDuty refused the page: Length of 'routing_key' is incorrect (should be 32 characters)"
    );
    assert!(!err.message.contains(short), "the routing key leaked");
    assert!(pd.alerts().is_empty());
}

#[tokio::test]
async fn a_rate_limit_is_retryable_after_what_pagerduty_says_or_30_seconds() {
    let pd = PagerDutyApi::start(REST_KEY);
    let pager = pager(&pd_settings(&pd));
    let post = page_post(order("dr-lead", PageAction::Trigger, None));
    pd.fail_next(
        pagerduty::ENQUEUE,
        Failure::RateLimited {
            status: 429,
            retry_after_secs: Some(7),
        },
    );
    let err = deliver(&pager, &post, 0).await.expect_err("429");
    assert!(err.retryable);
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));

    pd.fail_next(
        pagerduty::ENQUEUE,
        Failure::RateLimited {
            status: 429,
            retry_after_secs: None,
        },
    );
    let err = deliver(&pager, &post, 1).await.expect_err("429");
    assert!(err.retryable);
    assert_eq!(err.retry_after, Some(Duration::from_secs(30)));
    assert!(pd.alerts().is_empty(), "a 429 is not ingested");

    pd.fail_next(pagerduty::ENQUEUE, Failure::ServerError(503));
    let err = deliver(&pager, &post, 2).await.expect_err("503");
    assert!(err.retryable);
    assert_eq!(deliver(&pager, &post, 3).await, Ok(DEDUP.to_string()));
    assert_eq!(pd.notifications(DEDUP), 1);
}

#[tokio::test]
async fn applied_then_dropped_is_retryable_and_the_retry_does_not_page_twice() {
    let pd = PagerDutyApi::start(REST_KEY);
    let pager = pager(&pd_settings(&pd));
    let post = page_post(order("dr-lead", PageAction::Trigger, None));
    pd.fail_next(pagerduty::ENQUEUE, Failure::DropAfterApplying);
    let err = deliver(&pager, &post, 0).await.expect_err("no answer");
    assert!(err.retryable, "{}", err.message);
    assert!(!err.message.contains(DR_LEAD_KEY));
    assert_eq!(pd.notifications(DEDUP), 1, "PagerDuty has the page");

    pd.fail_next(pagerduty::ENQUEUE, Failure::ReplyAfterApplying);
    let err = deliver(&pager, &post, 1)
        .await
        .expect_err("500 after applying");
    assert!(err.retryable);

    assert_eq!(deliver(&pager, &post, 2).await, Ok(DEDUP.to_string()));
    assert_eq!(pd.notifications(DEDUP), 1);
    assert_eq!(pd.alerts().len(), 1);
    assert_eq!(pd.alerts()[0].triggers, 3);
}

// ---------------------------------------------------------------------------------------
// PagerDuty on call
// ---------------------------------------------------------------------------------------

fn responder(user: u32, policy: &str, schedule: Option<&str>, level: u32) -> pagerduty::OnCall {
    pagerduty::OnCall {
        user_id: format!("PUSER0{user}"),
        name: format!("Responder {user}"),
        email: format!("responder{user}@example.com"),
        escalation_policy_id: policy.into(),
        schedule_id: schedule.map(str::to_string),
        escalation_level: level,
    }
}

#[tokio::test]
async fn oncall_lists_the_policy_by_level_each_person_once() {
    let pd = PagerDutyApi::start(REST_KEY);
    pd.set_rota(vec![
        responder(2, "PDRLEAD", Some("PSCHED2"), 2),
        responder(1, "PDRLEAD", Some("PSCHED1"), 1),
        responder(9, "PDBA", Some("PSCHED9"), 1),
        // Responder 1 again, one level up and directly (no schedule).
        responder(1, "PDRLEAD", None, 3),
    ]);
    let pager = pager(&pd_settings(&pd));
    let rows = pager.oncall("DR_LEAD").await.expect("on-call rows");
    assert_eq!(
        rows,
        vec![
            OnCall {
                level: 1,
                name: "Responder 1".into(),
                email: Some("responder1@example.com".into()),
                schedule: Some("Schedule PSCHED1".into()),
            },
            OnCall {
                level: 2,
                name: "Responder 2".into(),
                email: Some("responder2@example.com".into()),
                schedule: Some("Schedule PSCHED2".into()),
            },
        ]
    );
    let call = pd.calls().pop().expect("one REST call");
    assert_eq!(call.path, pagerduty::ONCALLS);
    assert!(call.problem.is_none(), "{:?}", call.problem);
}

#[tokio::test]
async fn oncall_says_what_to_set_and_never_shows_the_key() {
    let pd = PagerDutyApi::start(REST_KEY);
    let mut settings = pd_settings(&pd);

    let err = pager(&settings)
        .oncall("ic")
        .await
        .expect_err("no policy for ic");
    assert_eq!(
        err,
        "add paging.oncall.ic = \"P…\" (the escalation policy id)"
    );

    settings.api_key = None;
    let err = pager(&settings)
        .oncall("dr-lead")
        .await
        .expect_err("no key");
    assert_eq!(err, "set paging.api_key (a read-only REST key)");

    let wrong = "u+WrongRestKey0000000";
    settings.api_key = Some(wrong.into());
    let err = pager(&settings).oncall("dr-lead").await.expect_err("401");
    assert_eq!(
        err,
        "PagerDuty refused the REST key (401): check paging.api_key"
    );
    assert!(!err.contains(wrong));

    settings.api_key = Some(REST_KEY.into());
    pd.fail_next(
        pagerduty::ONCALLS,
        Failure::RateLimited {
            status: 429,
            retry_after_secs: None,
        },
    );
    let err = pager(&settings).oncall("dr-lead").await.expect_err("429");
    assert!(err.contains("try again in a minute"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Opsgenie
// ---------------------------------------------------------------------------------------

fn og_settings(og: &OpsgenieApi) -> PagingSettings {
    PagingSettings {
        provider: Some("opsgenie".into()),
        events_url: Some(og.alerts_url()),
        routes: BTreeMap::from([("dr-lead".into(), GENIE_KEY.into())]),
        ..PagingSettings::default()
    }
}

#[tokio::test]
async fn opsgenie_opens_one_alert_per_alias_and_closes_it_by_alias() {
    let og = OpsgenieApi::start(GENIE_KEY);
    let pager = pager(&og_settings(&og));
    let mut first = order(
        "dr-lead",
        PageAction::Trigger,
        Some("https://drbot.example/incidents/3"),
    );
    first.summary = format!("[SEV1] INC-3 {}", "orders table wiped ".repeat(10));
    let trigger = page_post(first);

    assert_eq!(deliver(&pager, &trigger, 0).await, Ok(DEDUP.to_string()));
    assert_eq!(deliver(&pager, &trigger, 1).await, Ok(DEDUP.to_string()));
    let alerts = og.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].count, 2);
    assert_eq!(og.notifications(DEDUP), 1);
    assert_eq!(alerts[0].priority, "P1");
    assert_eq!(alerts[0].message.chars().count(), opsgenie::MAX_MESSAGE);
    assert!(
        alerts[0]
            .description
            .ends_with("https://drbot.example/incidents/3")
    );
    assert_eq!(alerts[0].tags, ["drbot", "INC-3"]);
    assert_eq!(alerts[0].details["target"], "dr-lead");
    assert!(og.calls().iter().all(|c| c.problem.is_none()));

    let resolve = page_post(order("dr-lead", PageAction::Resolve, None));
    assert_eq!(deliver(&pager, &resolve, 0).await, Ok(DEDUP.to_string()));
    assert!(!og.alerts()[0].open);
    let close = og.calls().pop().expect("the close");
    assert_eq!(close.effect, Some(opsgenie::Effect::Closed));
    assert_eq!(
        close.path,
        "/v2/alerts/drbot%3AINC-3%3A1796000000%3Apage%3Adr-lead/close"
    );
    assert_eq!(close.query.as_deref(), Some("identifierType=alias"));
    assert_eq!(close.body, json!({ "source": "drbot" }));
}

#[tokio::test]
async fn opsgenie_refusals_keep_the_key_out_and_rate_limits_retry() {
    let og = OpsgenieApi::start(GENIE_KEY);
    let post = page_post(order("dr-lead", PageAction::Trigger, None));
    let mut settings = og_settings(&og);
    let wrong = "0b0e7a1c-0000-4000-8000-00000000dead";
    settings.routes.insert("dr-lead".into(), wrong.into());
    let err = deliver(&pager(&settings), &post, 0).await.expect_err("401");
    assert!(!err.retryable);
    assert!(err.message.contains("HTTP 401"), "{}", err.message);
    assert!(!err.message.contains(wrong));

    let pager = pager(&og_settings(&og));
    og.fail_next(
        opsgenie::ALERTS,
        Failure::RateLimited {
            status: 429,
            retry_after_secs: Some(12),
        },
    );
    let err = deliver(&pager, &post, 0).await.expect_err("429");
    assert!(err.retryable);
    assert_eq!(err.retry_after, Some(Duration::from_secs(12)));

    og.fail_next(opsgenie::ALERTS, Failure::DropAfterApplying);
    let err = deliver(&pager, &post, 1).await.expect_err("dropped");
    assert!(err.retryable);
    assert_eq!(deliver(&pager, &post, 2).await, Ok(DEDUP.to_string()));
    assert_eq!(og.notifications(DEDUP), 1);
}

// ---------------------------------------------------------------------------------------
// doctor
// ---------------------------------------------------------------------------------------

async fn doctor_paging(paging: PagingSettings) -> Vec<drbot::doctor::Check> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = drbot::config::Settings::default();
    settings.database.url = format!("sqlite://{}", dir.path().join("drbot.db").display());
    settings.paging = paging;
    let clock = std::sync::Arc::new(drbot::clock::ManualClock::new(Utc::now()));
    drbot::doctor::run(&settings, clock, &drbot::doctor::Options::default())
        .await
        .into_iter()
        .filter(|c| c.name.starts_with("paging"))
        .collect()
}

#[tokio::test]
async fn doctor_checks_route_shapes_and_the_rest_key_without_showing_either() {
    let pd = PagerDutyApi::start(REST_KEY);
    let mut settings = pd_settings(&pd);
    let short = &IC_KEY[1..];
    settings.routes.insert("ic".into(), short.into());
    let checks = doctor_paging(settings.clone()).await;
    let named = |name: &str| {
        checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} check in {checks:?}"))
    };
    assert!(named("paging route dr-lead").ok);
    assert!(!named("paging route ic").ok);
    assert!(named("paging rest key").ok);
    assert_eq!(named("paging rest key").detail, "REST key accepted");
    let webhook = named("paging webhook");
    assert!(
        webhook.ok
            && webhook
                .detail
                .starts_with("acknowledgements will not come back")
    );
    for c in &checks {
        let text = format!("{} {} {:?}", c.name, c.detail, c.fix);
        for secret in [DR_LEAD_KEY, short, REST_KEY] {
            assert!(!text.contains(secret), "a secret in check {}", c.name);
        }
    }
    assert!(
        pd.calls().iter().all(|c| c.path == pagerduty::ABILITIES),
        "doctor sent an event"
    );

    settings.api_key = Some("u+WrongRestKey0000000".into());
    let checks = doctor_paging(settings).await;
    let rest = checks
        .iter()
        .find(|c| c.name == "paging rest key")
        .expect("rest check");
    assert!(!rest.ok);
    assert!(rest.detail.contains("401"), "{}", rest.detail);
    assert!(!format!("{rest:?}").contains("WrongRestKey"));
}

// ---------------------------------------------------------------------------------------
// Webhook signatures
// ---------------------------------------------------------------------------------------

#[test]
fn webhook_signatures_from_pagerduty_are_checked_across_a_rotation() {
    let body = br#"{"event":{"event_type":"incident.acknowledged","data":{"incident_key":"drbot:INC-3"}}}"#;
    let secrets = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let signed = pagerduty_signature(&["current"], body);
    assert!(webhook_signature_valid(
        &secrets(&["current"]),
        Some(&signed),
        body
    ));
    assert!(!webhook_signature_valid(
        &secrets(&["other"]),
        Some(&signed),
        body
    ));
    assert!(!webhook_signature_valid(
        &secrets(&["current"]),
        Some(&signed),
        b"{}"
    ));
    assert!(!webhook_signature_valid(&secrets(&["current"]), None, body));

    // PagerDuty signs with both secrets during a rotation; drbot may know either or both.
    let rotating = pagerduty_signature(&["old", "new"], body);
    for known in [&["old"][..], &["new"], &["new", "old"]] {
        assert!(
            webhook_signature_valid(&secrets(known), Some(&rotating), body),
            "{known:?}"
        );
    }
    assert!(!webhook_signature_valid(
        &secrets(&["retired"]),
        Some(&rotating),
        body
    ));
}
