//! Self-tests of the Slack stand-in: slack-morphism against it, scripted failures,
//! contract checks, `response_url`, and the Slack webhook fixtures.

use super::*;

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
