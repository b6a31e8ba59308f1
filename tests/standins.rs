//! Self-tests of the Slack and Discord stand-ins and the webhook fixtures: real client
//! libraries talk to the stand-ins and parse the fixtures, so the other integration
//! tests can trust both.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use support::discord_api::DiscordApi;
use support::http::{self as h, Part};
use support::slack_api::{self, Failure, SlackApi};

/// Safety net for waits; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(20);
const TOKEN: &str = "xoxb-standin-token";

fn slack_client(base: &str) -> SlackHyperClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    SlackClient::new(SlackClientHyperConnector::with_connector(https).with_slack_api_url(base))
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Authorization", format!("Bearer {token}")),
        (
            "Content-Type",
            "application/json; charset=utf-8".to_string(),
        ),
    ]
}

fn incident_blocks() -> Vec<SlackBlock> {
    slack_blocks![
        some_into(SlackHeaderBlock::new(pt!("Incident INC-1"))),
        some_into(
            SlackSectionBlock::new()
                .with_text(md!("*Status:* restoring"))
                .with_block_id("status".into())
        ),
        some_into(
            SlackActionsBlock::new(vec![
                SlackBlockButtonElement::new(pt!("Approve restore"))
                    .with_action_id("approve_restore".into())
                    .with_value("INC-1".to_string())
                    .with_style(SlackBlockButtonStyle::Primary)
                    .into()
            ])
            .with_block_id("decide".into())
        )
    ]
}

// ---------------------------------------------------------------------------------------
// Slack
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn slack_morphism_round_trip() {
    let api = SlackApi::start(TOKEN);
    api.set_usergroup("S_ONCALL", &["U1", "U2"]);
    let client = slack_client(&api.base());
    let token = SlackApiToken::new(TOKEN.into());
    let session = client.open_session(&token);
    let channel: SlackChannelId = "C_OPS".into();

    let auth = session.auth_test().await.expect("auth.test");
    assert_eq!(auth.user_id.to_string(), slack_api::BOT_USER_ID);

    let metadata = SlackMessageMetadata::new("drbot_incident".into()).with_event_payload(
        HashMap::from([("incident".to_string(), "INC-1".to_string())]),
    );
    let posted = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            channel.clone(),
            SlackMessageContent::new()
                .with_text("Incident INC-1 declared".into())
                .with_blocks(incident_blocks())
                .with_metadata(metadata),
        ))
        .await
        .expect("chat.postMessage");
    assert_eq!(posted.channel, channel);

    let second = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            channel.clone(),
            SlackMessageContent::new().with_text("second".into()),
        ))
        .await
        .expect("second chat.postMessage");
    assert!(
        second.ts.to_string() > posted.ts.to_string(),
        "ts increases: {} then {}",
        posted.ts,
        second.ts
    );

    let updated = session
        .chat_update(&SlackApiChatUpdateRequest::new(
            channel.clone(),
            SlackMessageContent::new().with_text("Incident INC-1 restoring".into()),
            posted.ts.clone(),
        ))
        .await
        .expect("chat.update");
    assert_eq!(updated.ts, posted.ts);

    session
        .pins_add(&SlackApiPinsAddRequest::new(
            channel.clone(),
            posted.ts.clone(),
        ))
        .await
        .expect("pins.add");

    // files v2: getUploadURLExternal (GET) -> bytes to upload_url -> completeUploadExternal.
    let content = b"# Timeline\n- 09:55Z declared\n".to_vec();
    let up = session
        .get_upload_url_external(&SlackApiFilesGetUploadUrlExternalRequest::new(
            "timeline.md".into(),
            content.len(),
        ))
        .await
        .expect("files.getUploadURLExternal");
    assert!(up.upload_url.0.to_string().starts_with(&api.origin()));
    session
        .files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(
            up.upload_url.clone(),
            content.clone(),
            "text/markdown".into(),
        ))
        .await
        .expect("upload");
    let done = session
        .files_complete_upload_external(
            &SlackApiFilesCompleteUploadExternalRequest::new(vec![
                SlackApiFilesComplete::new(up.file_id.clone()).with_title("Timeline".into()),
            ])
            .with_channel_id(channel.clone()),
        )
        .await
        .expect("files.completeUploadExternal");
    assert_eq!(done.files[0].id, up.file_id);
    let uploads = api.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].bytes, content);
    assert_eq!(uploads[0].filename, "timeline.md");

    let history = session
        .conversations_history(
            &SlackApiConversationsHistoryRequest::new()
                .with_channel(channel.clone())
                .with_include_all_metadata(true),
        )
        .await
        .expect("conversations.history");
    // Newest first: the file share, the second post, then the first (updated) post.
    assert_eq!(history.messages.len(), 3);
    let first = &history.messages[2];
    assert_eq!(first.origin.ts, posted.ts);
    assert_eq!(
        first.content.text.as_deref(),
        Some("Incident INC-1 restoring")
    );
    let meta = first.content.metadata.as_ref().expect("metadata kept");
    assert_eq!(meta.event_type, "drbot_incident");
    assert_eq!(
        meta.event_payload.as_ref().unwrap()["incident"],
        "INC-1".to_string()
    );
    assert_eq!(history.messages[1].origin.ts, second.ts);

    let newer = session
        .conversations_history(
            &SlackApiConversationsHistoryRequest::new()
                .with_channel(channel.clone())
                .with_oldest(posted.ts.clone()),
        )
        .await
        .expect("history with oldest");
    assert_eq!(newer.messages.len(), 2, "oldest is exclusive");

    let members = session
        .usergroups_users_list(&SlackApiUserGroupsUsersListRequest::new("S_ONCALL".into()))
        .await
        .expect("usergroups.users.list");
    assert_eq!(
        members.users,
        vec!["U1".into(), "U2".into()] as Vec<SlackUserId>
    );

    client
        .respond_to_event(
            &SlackResponseUrl::new(api.response_url("cmd1").parse().unwrap()),
            &SlackApiPostWebhookMessageRequest::new(
                SlackMessageContent::new().with_text("Working on it".into()),
            ),
        )
        .await
        .expect("response_url");
    assert_eq!(api.responses_to("cmd1")[0]["text"], "Working on it");

    let calls = api.calls();
    assert!(
        calls
            .iter()
            .all(|c| c.auth_ok && c.valid && c.answered == 200),
        "{calls:#?}"
    );
    let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "auth.test",
            "chat.postMessage",
            "chat.postMessage",
            "chat.update",
            "pins.add",
            "files.getUploadURLExternal",
            "upload",
            "files.completeUploadExternal",
            "conversations.history",
            "conversations.history",
            "usergroups.users.list",
            "response",
        ]
    );
    // GET methods arrive as query strings, normalised like JSON bodies.
    let get_url = &api.calls_to("files.getUploadURLExternal")[0];
    assert_eq!(get_url.body["filename"], "timeline.md");
    assert_eq!(get_url.body["length"], content.len().to_string());
    let posts = api.posts_in("C_OPS");
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0]["blocks"].as_array().unwrap().len(), 3);
    assert_eq!(posts[0]["metadata"]["event_type"], "drbot_incident");
    assert!(api.message("C_OPS", posted.ts.as_ref()).unwrap()["pinned_to"].is_array());
}

#[tokio::test]
async fn slack_wrong_token_is_invalid_auth() {
    let api = SlackApi::start(TOKEN);
    let client = slack_client(&api.base());
    let token = SlackApiToken::new("xoxb-wrong".into());
    let err = client
        .open_session(&token)
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C1".into(),
            SlackMessageContent::new().with_text("hi".into()),
        ))
        .await
        .expect_err("wrong token refused");
    match err {
        SlackClientError::ApiError(e) => assert_eq!(e.code, "invalid_auth"),
        other => panic!("expected invalid_auth, got {other:?}"),
    }
    let missing = h::post(
        &format!("{}/chat.postMessage", api.base()),
        &[("Content-Type", "application/json".to_string())],
        json!({"channel": "C1", "text": "hi"}).to_string(),
    )
    .await;
    assert_eq!(missing.json()["error"], "invalid_auth");
    let calls = api.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| !c.auth_ok && c.valid));
    assert!(api.posts_in("C1").is_empty());
}

#[tokio::test]
async fn slack_rate_limit_surfaces_retry_after() {
    let api = SlackApi::start(TOKEN);
    api.fail_next(
        "chat.postMessage",
        Failure::RateLimited {
            retry_after_secs: 7,
        },
    );
    let client = slack_client(&api.base());
    let token = SlackApiToken::new(TOKEN.into());
    let session = client.open_session(&token);
    let request = SlackApiChatPostMessageRequest::new(
        "C1".into(),
        SlackMessageContent::new().with_text("hi".into()),
    );
    match session.chat_post_message(&request).await {
        Err(SlackClientError::RateLimitError(e)) => {
            assert_eq!(e.retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("expected a rate-limit error, got {other:?}"),
    }
    session
        .chat_post_message(&request)
        .await
        .expect("second call goes through");
    let answered: Vec<u16> = api.calls().iter().map(|c| c.answered).collect();
    assert_eq!(answered, [429, 200]);
    assert_eq!(api.posts_in("C1").len(), 1);
}

#[tokio::test]
async fn slack_server_error_and_reply_after_applying() {
    let api = SlackApi::start(TOKEN);
    api.fail_next("chat.postMessage", Failure::ServerError);
    api.fail_next("chat.postMessage", Failure::ReplyAfterApplying);
    let client = slack_client(&api.base());
    let token = SlackApiToken::new(TOKEN.into());
    let session = client.open_session(&token);
    let request = SlackApiChatPostMessageRequest::new(
        "C1".into(),
        SlackMessageContent::new().with_text("restore started".into()),
    );
    for _ in 0..2 {
        match session.chat_post_message(&request).await {
            Err(SlackClientError::HttpError(e)) => assert_eq!(e.status_code.as_u16(), 500),
            other => panic!("expected HTTP 500, got {other:?}"),
        }
    }
    // The first 500 applied nothing, the second one posted anyway.
    assert_eq!(api.posts_in("C1").len(), 1);
    assert_eq!(api.history("C1").len(), 1);
    let answered: Vec<u16> = api.calls().iter().map(|c| c.answered).collect();
    assert_eq!(answered, [500, 500]);
}

#[tokio::test]
async fn slack_hang_holds_the_request_until_dropped() {
    let api = SlackApi::start(TOKEN);
    api.fail_next("chat.postMessage", Failure::Hang);
    let url = format!("{}/chat.postMessage", api.base());
    let pending = tokio::spawn(async move {
        h::send(
            "POST",
            &url,
            &bearer(TOKEN),
            json!({"channel": "C1", "text": "hi"}).to_string(),
        )
        .await
    });
    api.wait_for(
        |calls| calls.iter().any(|c| c.method == "chat.postMessage"),
        PATIENCE,
    )
    .await
    .unwrap();
    assert_eq!(api.calls()[0].answered, 0);
    assert!(!pending.is_finished());
    assert!(api.posts_in("C1").is_empty());
    drop(api);
    let outcome = pending.await.unwrap();
    assert!(
        outcome.is_err(),
        "connection closed without an answer: {outcome:?}"
    );
}

#[tokio::test]
async fn slack_rejects_contract_violations() {
    let api = SlackApi::start(TOKEN);
    let post = |body: Value| {
        let url = format!("{}/chat.postMessage", api.base());
        async move { h::post(&url, &bearer(TOKEN), body.to_string()).await.json() }
    };
    let too_many: Vec<Value> = (0..51)
        .map(|i| json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("{i}")}}))
        .collect();
    assert_eq!(
        post(json!({"channel": "C1", "blocks": too_many})).await["error"],
        "invalid_blocks"
    );
    assert_eq!(
        post(json!({"channel": "C1", "blocks": [{"text": "no type"}]})).await["error"],
        "invalid_blocks"
    );
    assert_eq!(
        post(json!({"channel": "C1", "text": "x".repeat(40_001)})).await["error"],
        "msg_too_long"
    );
    assert_eq!(
        post(json!({"text": "no channel"})).await["error"],
        "channel_not_found"
    );
    assert_eq!(post(json!({"channel": "C1"})).await["error"], "no_text");
    let update = h::post(
        &format!("{}/chat.update", api.base()),
        &bearer(TOKEN),
        json!({"channel": "C1", "ts": "1.000001", "text": "x"}).to_string(),
    )
    .await;
    assert_eq!(update.json()["error"], "message_not_found");
    let calls = api.calls();
    assert_eq!(calls.len(), 6);
    assert!(
        calls
            .iter()
            .all(|c| c.auth_ok && !c.valid && c.answered == 200)
    );

    // Form-encoded posts and query strings are accepted and normalised.
    api.reset();
    let form = h::slack_form(&[
        ("channel", "C1"),
        ("text", "from a form"),
        (
            "blocks",
            r#"[{"type":"section","text":{"type":"plain_text","text":"hi"}}]"#,
        ),
    ]);
    let reply = h::post(
        &format!("{}/chat.postMessage", api.base()),
        &[
            ("Authorization", format!("Bearer {TOKEN}")),
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            ),
        ],
        form,
    )
    .await
    .json();
    assert_eq!(reply["ok"], true, "{reply}");
    let body = &api.calls()[0].body;
    assert_eq!(body["blocks"][0]["type"], "section");
    let history = h::get(
        &format!("{}/conversations.history?channel=C1&limit=1", api.base()),
        &bearer(TOKEN),
    )
    .await
    .json();
    assert_eq!(history["messages"][0]["text"], "from a form");
    assert!(api.calls().iter().all(|c| c.valid && c.auth_ok));
}

#[tokio::test]
async fn slack_fixtures_parse_with_slack_morphism() {
    let api = SlackApi::start(TOKEN);
    let body = h::slack_command_body(
        "declare sev1 database down",
        "C_OPS",
        "U_ALICE",
        "13345224609.738474920.8088930838d88f008e0",
        &api.response_url("r1"),
    );
    let fields: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap();
    for key in [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ] {
        assert!(fields.contains_key(key), "missing {key}");
    }
    let event: SlackCommandEvent = serde_urlencoded::from_str(&body).expect("command event");
    assert_eq!(event.command.0, "/dr");
    assert_eq!(event.text.as_deref(), Some("declare sev1 database down"));
    assert_eq!(event.response_url.0.to_string(), api.response_url("r1"));

    // The signature verifies with slack-morphism's own verifier.
    let ts = h::unix_now();
    let headers = h::slack_signed_headers("signing-secret", ts, &body);
    let sig = &headers
        .iter()
        .find(|(k, _)| *k == "X-Slack-Signature")
        .unwrap()
        .1;
    slack_morphism::signature_verifier::SlackEventSignatureVerifier::new(&SlackSigningSecret::new(
        "signing-secret".into(),
    ))
    .verify(sig, &body, &ts.to_string())
    .expect("signature verifies");

    // A button click on a message the stand-in holds.
    let client = slack_client(&api.base());
    let token = SlackApiToken::new(TOKEN.into());
    let posted = client
        .open_session(&token)
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C_OPS".into(),
            SlackMessageContent::new()
                .with_text("Approve?".into())
                .with_blocks(incident_blocks()),
        ))
        .await
        .unwrap();
    let message = api.message("C_OPS", posted.ts.as_ref()).unwrap();
    for with_message in [None, Some(&message)] {
        let payload = h::slack_block_action_payload(
            "U_ALICE",
            "C_OPS",
            posted.ts.as_ref(),
            "approve_restore",
            "INC-1",
            &api.response_url("a1"),
            with_message,
        );
        let body = h::slack_interaction_body(&payload);
        let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap();
        let event: SlackInteractionEvent =
            serde_json::from_str(&form["payload"]).expect("block_actions parses");
        let SlackInteractionEvent::BlockActions(actions) = event else {
            panic!("not block_actions");
        };
        let action = &actions.actions.as_ref().unwrap()[0];
        assert_eq!(action.action_id.0, "approve_restore");
        assert_eq!(action.value.as_deref(), Some("INC-1"));
        assert_eq!(actions.user.as_ref().unwrap().id.0, "U_ALICE");
        match &actions.container {
            SlackInteractionActionContainer::Message(c) => assert_eq!(c.message_ts, posted.ts),
            other => panic!("container {other:?}"),
        }
        if with_message.is_some() {
            assert_eq!(action.block_id.as_ref().unwrap().0, "decide");
            assert_eq!(actions.message.as_ref().unwrap().origin.ts, posted.ts);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Discord
// ---------------------------------------------------------------------------------------

const BOT_TOKEN: &str = "discord-bot-token";
const CHANNEL: &str = "1400000000000000001";

fn bot_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Authorization", format!("Bot {BOT_TOKEN}")),
        ("Content-Type", "application/json".to_string()),
        (
            "User-Agent",
            "DiscordBot (https://example.invalid/drbot, 0.1)".to_string(),
        ),
    ]
}

fn discord() -> DiscordApi {
    DiscordApi::start(BOT_TOKEN, h::DISCORD_APPLICATION_ID)
}

fn messages_url(api: &DiscordApi, channel: &str) -> String {
    format!("{}/api/v10/channels/{channel}/messages", api.base())
}

#[tokio::test]
async fn discord_nonce_deduplicates() {
    let api = discord();
    let body = json!({
        "content": "Restore of INC-1 started",
        "nonce": "inc1-restore-0001",
        "enforce_nonce": true,
        "components": [{"type": 1, "components": [
            {"type": 2, "style": 4, "label": "Abort", "custom_id": "abort:INC-1"}
        ]}],
    })
    .to_string();
    let first = h::post(&messages_url(&api, CHANNEL), &bot_headers(), body.clone()).await;
    let second = h::post(&messages_url(&api, CHANNEL), &bot_headers(), body).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(second.status, 200);
    assert_eq!(first.json()["id"], second.json()["id"]);
    assert_eq!(first.json()["nonce"], "inc1-restore-0001");
    assert_eq!(api.messages_in(CHANNEL).len(), 1);
    let calls = api.calls_to("create_message");
    assert_eq!(
        calls.iter().map(|c| c.deduplicated).collect::<Vec<_>>(),
        [false, true]
    );
    assert!(calls.iter().all(|c| c.valid && c.auth_ok));
    assert_eq!(
        calls[0].method,
        format!("POST /channels/{CHANNEL}/messages")
    );

    // The reply is a full message object serenity understands.
    let message: serenity::all::Message = serde_json::from_slice(&first.body).expect("Message");
    assert_eq!(message.components[0].components.len(), 1);
    assert!(message.author.bot);

    // Without enforce_nonce Discord does not deduplicate.
    let loose = json!({"content": "again", "nonce": "inc1-restore-0001"}).to_string();
    let third = h::post(&messages_url(&api, CHANNEL), &bot_headers(), loose).await;
    assert_ne!(third.json()["id"], first.json()["id"]);

    // Fetched messages come newest first and, like Discord, without the nonce.
    let fetched = h::get(
        &format!("{}?limit=10", messages_url(&api, CHANNEL)),
        &bot_headers(),
    )
    .await
    .json();
    assert_eq!(fetched[0]["content"], "again");
    assert_eq!(fetched[1]["content"], "Restore of INC-1 started");
    assert!(fetched[0].get("nonce").is_none());
    let parsed: Vec<serenity::all::Message> = serde_json::from_value(fetched).expect("messages");
    assert_eq!(parsed.len(), 2);
}

#[tokio::test]
async fn discord_rejects_invalid_bodies() {
    let api = discord();
    let url = messages_url(&api, CHANNEL);
    let cases = [
        json!({"content": "x".repeat(2001)}),
        json!({}),
        json!({"content": ""}),
        json!({"content": "hi", "nonce": "x".repeat(26)}),
        json!({"embeds": (0..11).map(|i| json!({"title": format!("{i}")})).collect::<Vec<_>>()}),
        json!({"embeds": [{"description": "d".repeat(4000)}, {"description": "d".repeat(2001)}]}),
        json!({"components": [{"type": 1, "components": (0..6)
            .map(|i| json!({"type": 2, "style": 1, "label": "b", "custom_id": format!("b{i}")}))
            .collect::<Vec<_>>()}]}),
        json!({"components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "b", "custom_id": "c".repeat(101)}]}]}),
        json!({"components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "custom_id": "no-label"}]}]}),
        json!({"content": "ephemeral is for interactions", "flags": 64}),
    ];
    for body in &cases {
        let reply = h::post(&url, &bot_headers(), body.to_string()).await;
        assert_eq!(reply.status, 400, "{body} -> {}", reply.text());
        let code = reply.json()["code"].as_u64().unwrap();
        assert!(code == 50035 || code == 50006, "{}", reply.text());
    }
    let bad_channel = h::post(
        &messages_url(&api, "general"),
        &bot_headers(),
        json!({"content": "hi"}).to_string(),
    )
    .await;
    assert_eq!(bad_channel.status, 400);
    let calls = api.calls();
    assert_eq!(calls.len(), cases.len() + 1);
    assert!(calls.iter().all(|c| !c.valid && c.auth_ok), "{calls:#?}");
    assert!(api.messages_in(CHANNEL).is_empty());
}

#[tokio::test]
async fn discord_requires_bot_auth_except_on_webhooks() {
    let api = discord();
    let body = json!({"content": "hi"}).to_string();
    let anonymous = [("Content-Type", "application/json".to_string())];
    let reply = h::post(&messages_url(&api, CHANNEL), &anonymous, body.clone()).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json(),
        json!({"message": "401: Unauthorized", "code": 0})
    );
    let wrong = [
        ("Authorization", "Bot nope".to_string()),
        ("Content-Type", "application/json".to_string()),
    ];
    assert_eq!(
        h::post(&messages_url(&api, CHANNEL), &wrong, body.clone())
            .await
            .status,
        401
    );
    let calls = api.calls();
    assert!(
        calls
            .iter()
            .all(|c| !c.auth_ok && c.valid && c.answered == 401)
    );

    // Interaction webhooks take no bot token; follow-ups land in the token's channel.
    let token = h::discord_interaction_token("1500000000000000001", CHANNEL);
    let hook = format!(
        "{}/api/v10/webhooks/{}/{token}",
        api.base(),
        h::DISCORD_APPLICATION_ID
    );
    let followup = h::post(
        &hook,
        &anonymous,
        json!({"content": "only you can see this", "flags": 64}).to_string(),
    )
    .await;
    assert_eq!(followup.status, 200, "{}", followup.text());
    let original = h::request(
        "PATCH",
        &format!("{hook}/messages/@original"),
        &anonymous,
        json!({"content": "Incident INC-1 declared"}).to_string(),
    )
    .await;
    assert_eq!(original.status, 200, "{}", original.text());
    let edited = h::request(
        "PATCH",
        &format!("{hook}/messages/@original"),
        &anonymous,
        json!({"content": "Incident INC-1 resolved"}).to_string(),
    )
    .await;
    assert_eq!(edited.json()["id"], original.json()["id"]);
    let in_channel = api.messages_in(CHANNEL);
    assert_eq!(in_channel.len(), 2);
    assert_eq!(in_channel[1]["content"], "Incident INC-1 resolved");
    assert_eq!(api.interaction_messages(&token).len(), 2);
    let webhook_calls: Vec<_> = api
        .calls()
        .into_iter()
        .filter(|c| c.route != "create_message")
        .collect();
    assert!(webhook_calls.iter().all(|c| c.auth_ok && c.valid));
    assert_eq!(
        webhook_calls
            .iter()
            .map(|c| c.route.as_str())
            .collect::<Vec<_>>(),
        ["create_followup", "edit_original", "edit_original"]
    );
}

#[tokio::test]
async fn discord_rate_limit_and_failures() {
    let api = discord();
    api.fail_next(
        "create_message",
        Failure::RateLimited {
            retry_after_secs: 2,
        },
    );
    api.fail_next("create_message", Failure::ReplyAfterApplying);
    let body = json!({"content": "hi"}).to_string();
    let limited = h::post(&messages_url(&api, CHANNEL), &bot_headers(), body.clone()).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json()["retry_after"], 2.0);
    assert_eq!(limited.json()["global"], false);
    assert_eq!(limited.header("retry-after"), Some("2"));
    assert_eq!(limited.header("x-ratelimit-scope"), Some("user"));
    assert!(api.messages_in(CHANNEL).is_empty());
    let applied = h::post(&messages_url(&api, CHANNEL), &bot_headers(), body.clone()).await;
    assert_eq!(applied.status, 500);
    assert_eq!(api.messages_in(CHANNEL).len(), 1);
    let normal = h::post(&messages_url(&api, CHANNEL), &bot_headers(), body).await;
    assert_eq!(normal.status, 200);
    let answered: Vec<u16> = api.calls().iter().map(|c| c.answered).collect();
    assert_eq!(answered, [429, 500, 200]);
}

#[tokio::test]
async fn discord_attachments_edits_pins_and_commands() {
    let api = discord();
    let payload = json!({
        "content": "Timeline export",
        "attachments": [{"id": 0, "filename": "timeline.md"}],
    });
    let (content_type, body) = h::multipart(&[
        Part {
            name: "payload_json".into(),
            filename: None,
            content_type: Some("application/json".into()),
            data: payload.to_string().into_bytes(),
        },
        Part {
            name: "files[0]".into(),
            filename: Some("timeline.md".into()),
            content_type: Some("text/markdown".into()),
            data: b"# INC-1\r\n--not a boundary\r\n".to_vec(),
        },
    ]);
    let headers = [
        ("Authorization", format!("Bot {BOT_TOKEN}")),
        ("Content-Type", content_type),
    ];
    let created = h::post(&messages_url(&api, CHANNEL), &headers, body).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let created = created.json();
    assert_eq!(created["attachments"][0]["filename"], "timeline.md");
    let files = api.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "files[0]");
    assert_eq!(files[0].data, b"# INC-1\r\n--not a boundary\r\n");
    assert_eq!(api.calls()[0].body["content"], "Timeline export");
    let id = created["id"].as_str().unwrap().to_string();

    let edited = h::request(
        "PATCH",
        &format!("{}/{id}", messages_url(&api, CHANNEL)),
        &bot_headers(),
        json!({"content": "Timeline export (final)"}).to_string(),
    )
    .await;
    assert_eq!(edited.status, 200);
    let edited: serenity::all::Message = serde_json::from_slice(&edited.body).unwrap();
    assert_eq!(edited.content, "Timeline export (final)");
    assert!(edited.edited_timestamp.is_some());
    assert_eq!(edited.attachments.len(), 1);

    for path in [
        format!("/channels/{CHANNEL}/pins/{id}"),
        format!("/channels/{CHANNEL}/messages/pins/{id}"),
    ] {
        let pinned = h::request(
            "PUT",
            &format!("{}/api/v10{path}", api.base()),
            &bot_headers(),
            Vec::new(),
        )
        .await;
        assert_eq!(pinned.status, 204, "{path}: {}", pinned.text());
    }
    assert_eq!(api.message(&id).unwrap()["pinned"], true);
    let missing = h::request(
        "PATCH",
        &format!("{}/1499999999999999999", messages_url(&api, CHANNEL)),
        &bot_headers(),
        json!({"content": "x"}).to_string(),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], 10008);

    // serenity's own command builders serialize to a body the stand-in accepts.
    use serenity::all::{CommandOptionType, CreateCommand, CreateCommandOption};
    let commands = vec![
        CreateCommand::new("dr")
            .description("Disaster-recovery incidents")
            .add_option(
                CreateCommandOption::new(CommandOptionType::SubCommand, "status", "Show status")
                    .add_sub_option(
                        CreateCommandOption::new(
                            CommandOptionType::String,
                            "incident",
                            "Incident id",
                        )
                        .required(true),
                    ),
            ),
    ];
    let guild_url = format!(
        "{}/api/v10/applications/{}/guilds/{}/commands",
        api.base(),
        h::DISCORD_APPLICATION_ID,
        h::DISCORD_GUILD_ID
    );
    let registered = h::request(
        "PUT",
        &guild_url,
        &bot_headers(),
        serde_json::to_vec(&commands).unwrap(),
    )
    .await;
    assert_eq!(registered.status, 200, "{}", registered.text());
    let registered: Vec<serenity::all::Command> =
        serde_json::from_slice(&registered.body).expect("commands parse");
    assert_eq!(registered[0].name, "dr");
    assert_eq!(api.commands(Some(h::DISCORD_GUILD_ID)).len(), 1);
    let bad = json!([{"name": "Dr Bot", "description": "spaces and capitals"}]);
    let refused = h::request("PUT", &guild_url, &bot_headers(), bad.to_string()).await;
    assert_eq!(refused.status, 400);

    let calls = api.calls();
    let invalid: Vec<&str> = calls
        .iter()
        .filter(|c| !c.valid)
        .map(|c| c.route.as_str())
        .collect();
    assert_eq!(invalid, ["edit_message", "set_guild_commands"]);
}

#[tokio::test]
async fn discord_hang_then_drop() {
    let api = discord();
    api.fail_next("create_message", Failure::Hang);
    let url = messages_url(&api, CHANNEL);
    let pending = tokio::spawn(async move {
        h::send(
            "POST",
            &url,
            &bot_headers(),
            json!({"content": "hi"}).to_string(),
        )
        .await
    });
    api.wait_for(|calls| !calls.is_empty(), PATIENCE)
        .await
        .unwrap();
    assert_eq!(api.calls()[0].answered, 0);
    drop(api);
    assert!(pending.await.unwrap().is_err());
}

#[tokio::test]
async fn wait_for_reports_the_calls_on_deadline() {
    let api = SlackApi::start(TOKEN);
    h::get(&format!("{}/auth.test", api.base()), &bearer(TOKEN)).await;
    let err = api
        .wait_for(
            |calls| calls.iter().any(|c| c.method == "chat.postMessage"),
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
    assert!(err.contains("auth.test"), "{err}");
}

#[test]
fn discord_fixtures_parse_with_serenity() {
    use serenity::all::{CommandDataOptionValue, Interaction};

    let (key, public_hex) = h::discord_keypair([7; 32]);
    let verifier = serenity::interactions_endpoint::Verifier::new(&public_hex);

    let ping = h::discord_ping();
    assert!(matches!(
        serde_json::from_str::<Interaction>(&ping).unwrap(),
        Interaction::Ping(_)
    ));

    let options = json!([{"name": "restore", "type": 1, "options": [
        {"name": "backup", "type": 3, "value": "nightly"},
        {"name": "dry_run", "type": 5, "value": true}
    ]}]);
    let body = h::discord_command(
        "1500000000000000001",
        CHANNEL,
        "1600000000000000001",
        &["1700000000000000001"],
        h::DISCORD_GUILD_ID,
        options,
    );
    let Interaction::Command(command) = serde_json::from_str::<Interaction>(&body).unwrap() else {
        panic!("not a command");
    };
    assert_eq!(command.data.name, "dr");
    assert_eq!(command.user.id.get(), 1600000000000000001);
    assert_eq!(command.channel_id.get(), CHANNEL.parse::<u64>().unwrap());
    let member = command.member.as_ref().unwrap();
    assert_eq!(member.roles[0].get(), 1700000000000000001);
    assert_eq!(command.guild_id.unwrap().to_string(), h::DISCORD_GUILD_ID);
    assert_eq!(command.data.options[0].name, "restore");
    let CommandDataOptionValue::SubCommand(leaves) = &command.data.options[0].value else {
        panic!("subcommand expected");
    };
    assert_eq!(
        leaves[0].value,
        CommandDataOptionValue::String("nightly".into())
    );
    assert_eq!(
        command.token,
        h::discord_interaction_token("1500000000000000001", CHANNEL)
    );

    let ts = h::unix_now();
    let headers = h::discord_signed_headers(&key, ts, &body);
    let sig = &headers
        .iter()
        .find(|(k, _)| *k == "X-Signature-Ed25519")
        .unwrap()
        .1;
    verifier
        .verify(sig, &ts.to_string(), body.as_bytes())
        .expect("signature verifies");
    assert!(
        verifier
            .verify(sig, &(ts + 1).to_string(), body.as_bytes())
            .is_err()
    );

    let click = h::discord_component(
        "1500000000000000002",
        CHANNEL,
        "1600000000000000001",
        &[],
        "approve:INC-1",
        "1800000000000000001",
    );
    let Interaction::Component(component) = serde_json::from_str::<Interaction>(&click).unwrap()
    else {
        panic!("not a component");
    };
    assert_eq!(component.data.custom_id, "approve:INC-1");
    assert_eq!(component.message.id.get(), 1800000000000000001);
    assert_eq!(component.user.id.get(), 1600000000000000001);
}

#[tokio::test]
async fn slack_response_url_takes_five_posts() {
    let api = SlackApi::start(TOKEN);
    let json_header = [("Content-Type", "application/json".to_string())];
    for i in 0..6 {
        let reply = h::post(
            &api.response_url("r1"),
            &json_header,
            json!({"text": format!("update {i}"), "response_type": "ephemeral"}).to_string(),
        )
        .await;
        assert_eq!(reply.status, if i < 5 { 200 } else { 404 }, "post {i}");
    }
    assert_eq!(api.responses_to("r1").len(), 5);
    let valid: Vec<bool> = api.calls().iter().map(|c| c.valid).collect();
    assert_eq!(valid, [true, true, true, true, true, false]);
}

#[tokio::test]
async fn discord_checks_history_limits_and_command_shapes() {
    let api = discord();
    let too_many = h::get(
        &format!("{}?limit=101", messages_url(&api, CHANNEL)),
        &bot_headers(),
    )
    .await;
    assert_eq!(too_many.status, 400);
    let url = format!(
        "{}/api/v10/applications/{}/commands",
        api.base(),
        h::DISCORD_APPLICATION_ID
    );
    let optional_first = json!([{"name": "dr", "description": "DR", "options": [
        {"name": "restore", "type": 1, "description": "Restore", "options": [
            {"name": "dry_run", "type": 5, "description": "Plan only"},
            {"name": "backup", "type": 3, "description": "Backup", "required": true}
        ]}
    ]}]);
    let reply = h::request("PUT", &url, &bot_headers(), optional_first.to_string()).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let other_app = format!("{}/api/v10/applications/42/commands", api.base());
    let reply = h::request("PUT", &other_app, &bot_headers(), "[]").await;
    assert_eq!(reply.status, 403);
    assert!(api.calls().iter().all(|c| !c.valid));
}
