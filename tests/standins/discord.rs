//! Self-tests of the Discord stand-in: nonces, body and auth checks, failures,
//! attachments and commands, and the Discord webhook fixtures parsed by serenity.

use super::*;

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
