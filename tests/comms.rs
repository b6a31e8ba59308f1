//! Customer communication (issue 11 §4): `/dr comms draft|edit|publish` through the console,
//! publications reaching a Statuspage stand-in exactly once, and the reminder of the promised
//! update posted once.

mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use drbot::chat::statuspage::Statuspage;
use drbot::chat::{ChatSink, Outgoing};
use drbot::config::StatuspageSettings;
use drbot::features::comms::internal_terms_in;
use drbot::incident::post::Publication;
use drbot::incident::post::{Post, PostKind};
use drbot::store::Store;
use serde_json::json;
use support::Drbot;
use support::statuspage_api::{Failure, StatuspageApi};

const PAGE: &str = "pg7kq2";
const KEY: &str = "sp-test-key";

async fn events_of(dir: &std::path::Path, incident: i64) -> Vec<drbot::incident::Event> {
    let store = Store::connect(&format!("sqlite://{}", dir.join("drbot.db").display()))
        .await
        .unwrap();
    store.events(incident).await.unwrap()
}

fn console_with_status_page(dir: &std::path::Path, api: &StatuspageApi) -> Drbot {
    let config = dir.join("drbot.toml");
    std::fs::write(
        &config,
        format!(
            "[statuspage]\npage_id = \"{PAGE}\"\nbase_url = \"{}\"\n\n[statuspage.components]\n\"user-api\" = \"cmpusr1\"\n",
            api.base()
        ),
    )
    .unwrap();
    let env = BTreeMap::from([
        ("DRBOT_CONFIG".to_string(), config.display().to_string()),
        ("DRBOT__STATUSPAGE__API_KEY".to_string(), KEY.to_string()),
    ]);
    Drbot::console_with(dir, &env, "2026-02-08T10:00:00Z", "alice")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_edit_publish_reaches_the_status_page_once_and_the_promise_is_reminded_once() {
    let api = StatuspageApi::start(PAGE, KEY, &["cmpusr1"]);
    let dir = tempfile::tempdir().unwrap();
    let mut bot = console_with_status_page(dir.path(), &api);
    bot.ask(
        "/dr declare sev1 data \"orders wiped\"",
        "DISASTER DECLARED",
    );
    bot.ask("/dr role comms @carol", "Communications lead");

    // Only the comms lead speaks to customers; refusals write nothing.
    bot.send(":as bob");
    let refused = bot.say("/dr comms draft initial");
    assert!(
        refused.contains("Only the communications lead"),
        "{refused}"
    );
    let typo = bot.say("/dr comms draft final");
    assert!(
        typo.contains("Usage: /dr comms draft <initial|update|resolved>"),
        "{typo}"
    );

    bot.send(":as carol");
    let draft = bot.say("/dr comms draft initial");
    assert!(
        draft.contains("Customer update draft C1 (initial)"),
        "{draft}"
    );
    assert!(draft.contains("Status: Investigating"), "{draft}");
    assert!(draft.contains("affecting some of our services"), "{draft}");
    assert!(draft.contains("by 10:30 UTC"), "{draft}");
    let customer: String = draft
        .lines()
        .skip_while(|l| !l.contains("Title:"))
        .take_while(|l| !l.contains("Edit with"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(customer.contains("Title: Service Disruption"), "{draft}");
    let internal = internal_terms_in(&customer, &["orders".to_string()]);
    assert!(internal.is_empty(), "{internal:?} in {customer}");
    assert!(api.calls().is_empty(), "a draft sends nothing");

    let edited = bot.say(
        "/dr comms edit C1 We are aware of a disruption affecting sign-in and are working on it. Next update by 10:30 UTC.",
    );
    assert!(edited.contains("Draft C1 edited by carol"), "{edited}");
    assert!(!edited.contains("internal terms"), "{edited}");

    // The create is applied but its answer is lost: the retry finds it, no second incident.
    api.fail_next("POST", Failure::ReplyAfterApplying);
    let published = bot.say("/dr comms publish C1");
    assert!(
        published.contains("published to the status page by carol"),
        "{published}"
    );
    assert!(
        published.contains("next update by 10:30 UTC"),
        "{published}"
    );
    assert_eq!(api.incidents().len(), 1);
    bot.say(":advance 1m");
    let incidents = api.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let first = &incidents[0];
    assert_eq!(first["name"], json!("Service Disruption"));
    assert_eq!(first["status"], json!("investigating"));
    assert_eq!(
        first["incident_updates"][0]["body"],
        json!(
            "We are aware of a disruption affecting sign-in and are working on it. Next update by 10:30 UTC."
        )
    );
    assert_eq!(first["metadata"]["drbot"]["incident"], json!("INC-1"));
    let calls = api.calls();
    let seen: Vec<(String, u16)> = calls
        .iter()
        .map(|c| (c.method.clone(), c.answered))
        .collect();
    assert_eq!(
        seen,
        // Look for the marker, create (answer lost), look again and adopt: one incident.
        vec![
            ("GET".into(), 200),
            ("POST".into(), 500),
            ("GET".into(), 200)
        ],
        "{calls:?}"
    );
    assert!(
        calls.iter().all(|c| c.auth_ok && c.problem.is_none()),
        "{calls:?}"
    );
    let again = bot.say("/dr comms publish C1");
    assert!(again.contains("already published"), "{again}");

    // The next publication updates the same Statuspage incident.
    let update = bot.say("/dr comms draft update");
    assert!(
        update.contains("Customer update draft C2 (update)"),
        "{update}"
    );
    assert!(update.contains("Status: Identified"), "{update}");
    assert!(update.contains("Next update: 10:31 UTC"), "{update}");
    bot.say("/dr comms publish C2");
    let calls = api.calls();
    let last = calls.last().unwrap();
    assert_eq!(last.method, "PATCH");
    assert_eq!(last.path, format!("/v1/pages/{PAGE}/incidents/sp0001"));
    assert_eq!(last.answered, 200, "{last:?}");
    assert!(last.body["incident"].get("name").is_none(), "{last:?}");
    let incidents = api.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["status"], json!("identified"));
    assert_eq!(
        incidents[0]["incident_updates"].as_array().unwrap().len(),
        2
    );

    // C2 promised 10:31: one reminder, however long the wait.
    let waited = format!("{}\n{}", bot.say(":advance 30m"), bot.say(":advance 40m"));
    let reminders = waited
        .lines()
        .filter(|l| l.contains("the status page update promised in C2 for 10:31 UTC is due"))
        .count();
    assert_eq!(reminders, 1, "{waited}");
    assert!(waited.contains("@carol INC-1"), "{waited}");
    bot.finish();

    let events = events_of(dir.path(), 1).await;
    let comms: Vec<&str> = events
        .iter()
        .map(|e| e.kind.name())
        .filter(|n| n.starts_with("comms_"))
        .collect();
    assert_eq!(
        comms,
        vec![
            "comms_drafted",
            "comms_edited",
            "comms_published",
            "comms_drafted",
            "comms_published",
            "comms_reminder_sent"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_without_a_status_page_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut bot = Drbot::console(dir.path(), "2026-02-08T10:00:00Z", "alice");
    bot.say("/dr declare sev2 infra \"api down\"");
    let draft = bot.say("/dr comms draft initial");
    assert!(draft.contains("Status: Investigating"), "{draft}");
    let refused = bot.say("/dr comms publish C1");
    assert!(
        refused.contains("No status page is configured"),
        "{refused}"
    );
    bot.finish();
    let events = events_of(dir.path(), 1).await;
    let names: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(names, vec!["declared", "comms_drafted"]);
}

fn publication(status: &str, body: &str) -> Publication {
    Publication {
        incident: "INC-4".into(),
        declared_at: "2026-02-08T10:00:00Z".parse::<DateTime<Utc>>().unwrap(),
        draft: "C1".into(),
        title: "Service Disruption - user-api, billing".into(),
        status: status.into(),
        body: body.into(),
        services: vec!["user-api".into(), "billing".into()],
        component_status: "major_outage".into(),
    }
}

fn component(incident: &serde_json::Value, id: &str) -> serde_json::Value {
    incident["components"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["id"] == json!(id)))
        .map(|c| c["status"].clone())
        .unwrap_or_default()
}

fn outgoing<'a>(post: &'a Post, known: Option<&'a str>, id: i64) -> Outgoing<'a> {
    Outgoing {
        outbox_id: id,
        incident: Some(4),
        channel: drbot::features::comms::STATUSPAGE_CHANNEL,
        post,
        status_message: known,
        earlier_sends: 0,
        status_in_doubt: false,
        created_at: Utc::now(),
        now: Utc::now(),
    }
}

/// The adapter on the wire: components mapped from service names, a lost answer adopted, a
/// bad key a permanent failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapter_maps_components_and_adopts_a_create_whose_answer_was_lost() {
    let api = StatuspageApi::start(PAGE, KEY, &["cmpusr1", "cmpbill"]);
    let settings = |key: &str| StatuspageSettings {
        page_id: Some(PAGE.into()),
        api_key: Some(key.into()),
        base_url: api.base(),
        components: BTreeMap::from([
            ("user-api".to_string(), "cmpusr1".to_string()),
            ("billing".to_string(), "cmpbill".to_string()),
        ]),
    };
    let sink = Statuspage::new(&settings(KEY)).unwrap();
    let mut post = Post::new(PostKind::Publication, "text".into());
    post.publication = Some(publication("investigating", "We are aware of it."));

    api.fail_next("POST", Failure::ReplyAfterApplying);
    let lost = sink.deliver(outgoing(&post, None, 1)).await.unwrap_err();
    assert!(lost.retryable, "{lost:?}");
    let id = sink.deliver(outgoing(&post, None, 1)).await.unwrap();
    assert_eq!(id, "sp0001");
    let incidents = api.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(component(&incidents[0], "cmpusr1"), json!("major_outage"));
    assert_eq!(component(&incidents[0], "cmpbill"), json!("major_outage"));
    let calls = api.calls();
    let create = calls.iter().find(|c| c.method == "POST").unwrap();
    assert_eq!(
        create.body["incident"]["component_ids"],
        json!(["cmpusr1", "cmpbill"])
    );
    assert_eq!(
        create.body["incident"]["name"],
        json!("Service Disruption - user-api, billing")
    );

    let mut resolved = post.clone();
    let mut p = publication("resolved", "Resolved.");
    p.component_status = "operational".into();
    resolved.publication = Some(p);
    assert_eq!(
        sink.deliver(outgoing(&resolved, Some("sp0001"), 2))
            .await
            .unwrap(),
        "sp0001"
    );
    let incidents = api.incidents();
    assert_eq!(incidents[0]["status"], json!("resolved"));
    assert_eq!(component(&incidents[0], "cmpbill"), json!("operational"));
    assert_eq!(component(&incidents[0], "cmpusr1"), json!("operational"));

    let bad = Statuspage::new(&settings("wrong")).unwrap();
    let refused = bad
        .deliver(outgoing(&post, Some("sp0001"), 3))
        .await
        .unwrap_err();
    assert!(!refused.retryable, "{refused:?}");
    assert!(
        refused.message.contains("statuspage.api_key"),
        "{refused:?}"
    );
    assert!(
        api.calls()
            .iter()
            .all(|c| c.problem.is_none() || !c.auth_ok)
    );
}
