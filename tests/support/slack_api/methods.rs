//! The effect of each accepted Web API method, and conversations.history paging.

use super::*;

pub(super) fn bot_message(ts: &str, args: &Map<String, Value>) -> Value {
    let mut message = json!({
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": SLACK_APP_ID,
        "team": SLACK_TEAM_ID,
        "ts": ts,
        "text": args.get("text").and_then(Value::as_str).unwrap_or(""),
    });
    for key in ["blocks", "attachments", "metadata", "thread_ts"] {
        if let Some(v) = args.get(key) {
            message[key] = v.clone();
        }
    }
    message
}

/// Perform a call that passed `check`, returning the success reply.
pub(super) fn apply(
    world: &mut World,
    origin: &str,
    method: &str,
    args: &Map<String, Value>,
) -> Value {
    match method {
        "chat.postMessage" => {
            let channel = str_arg(args, "channel").unwrap_or_default().to_string();
            let ts = world.next_ts();
            let message = bot_message(&ts, args);
            world
                .channels
                .entry(channel.clone())
                .or_default()
                .push(message.clone());
            world
                .posts
                .push((channel.clone(), Value::Object(args.clone())));
            json!({ "ok": true, "channel": channel, "ts": ts, "message": message })
        }
        "chat.update" => {
            let channel = str_arg(args, "channel").unwrap_or_default().to_string();
            let ts = str_arg(args, "ts").unwrap_or_default().to_string();
            let now = world.next_ts();
            let message = world
                .find_message(&channel, &ts)
                .expect("checked: message exists");
            for key in ["text", "blocks", "attachments", "metadata"] {
                if let Some(v) = args.get(key) {
                    message[key] = v.clone();
                }
            }
            message["edited"] = json!({ "user": BOT_USER_ID, "ts": now });
            let text = message["text"].clone();
            let mut updated = json!({ "text": text });
            if let Some(blocks) = message.get("blocks") {
                updated["blocks"] = blocks.clone();
            }
            json!({ "ok": true, "channel": channel, "ts": ts, "text": text, "message": updated })
        }
        "pins.add" => {
            let channel = str_arg(args, "channel").unwrap_or_default().to_string();
            let ts = str_arg(args, "timestamp").unwrap_or_default().to_string();
            if let Some(message) = world.find_message(&channel, &ts) {
                message["pinned_to"] = json!([channel]);
            }
            json!({ "ok": true })
        }
        "files.getUploadURLExternal" => {
            world.next_file += 1;
            let file_id = format!("F{}", world.next_file);
            world.files.insert(
                file_id.clone(),
                FileSlot {
                    filename: str_arg(args, "filename").unwrap_or_default().to_string(),
                    length: int_arg(args, "length").unwrap_or_default() as usize,
                    uploaded: false,
                },
            );
            json!({
                "ok": true,
                "upload_url": format!("{origin}/upload/{file_id}"),
                "file_id": file_id,
            })
        }
        "files.completeUploadExternal" => {
            let channel = str_arg(args, "channel_id")
                .or_else(|| str_arg(args, "channels"))
                .and_then(|c| c.split(',').next())
                .unwrap_or_default()
                .to_string();
            let mut files = Vec::new();
            for file in args["files"].as_array().into_iter().flatten() {
                let id = file["id"].as_str().unwrap_or_default();
                let name = world
                    .files
                    .get(id)
                    .map(|s| s.filename.clone())
                    .unwrap_or_default();
                let title = file
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or(&name)
                    .to_string();
                files.push(json!({ "id": id, "name": name, "title": title }));
            }
            // Slack shares the files in the channel as a bot message.
            let ts = world.next_ts();
            let mut share = json!({
                "type": "message",
                "subtype": "file_share",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "ts": ts,
                "text": args.get("initial_comment").and_then(Value::as_str).unwrap_or(""),
                "files": files.clone(),
                "upload": true,
            });
            if let Some(thread) = args.get("thread_ts") {
                share["thread_ts"] = thread.clone();
            }
            world.channels.entry(channel).or_default().push(share);
            json!({ "ok": true, "files": files })
        }
        "conversations.history" => history(world, args),
        "usergroups.users.list" => {
            let group = str_arg(args, "usergroup").unwrap_or_default();
            json!({ "ok": true, "users": world.usergroups.get(group).cloned().unwrap_or_default() })
        }
        "auth.test" => json!({
            "ok": true,
            "url": format!("https://{SLACK_TEAM_DOMAIN}.slack.com/"),
            "team": SLACK_TEAM_DOMAIN,
            "user": "drbot",
            "team_id": SLACK_TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": false,
        }),
        _ => json!({ "ok": true }),
    }
}

/// conversations.history: newest first, `oldest`/`latest` exclusive unless `inclusive`,
/// `limit` (default 100), `cursor` from a previous page's `next_cursor`.
pub(super) fn history(world: &World, args: &Map<String, Value>) -> Value {
    let channel = str_arg(args, "channel").unwrap_or_default();
    let inclusive = match args.get("inclusive") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        _ => false,
    };
    let oldest = str_arg(args, "oldest").and_then(ts_micros);
    let mut latest = str_arg(args, "latest").and_then(ts_micros);
    let mut latest_inclusive = inclusive;
    if let Some(cursor) = str_arg(args, "cursor").and_then(ts_micros) {
        latest = Some(cursor);
        latest_inclusive = false;
    }
    let limit = int_arg(args, "limit")
        .filter(|l| *l > 0)
        .unwrap_or(100)
        .min(999) as usize;
    let mut matching: Vec<&Value> = world
        .channels
        .get(channel)
        .into_iter()
        .flatten()
        .filter(|m| {
            let Some(ts) = m["ts"].as_str().and_then(ts_micros) else {
                return false;
            };
            let after_oldest = oldest.is_none_or(|o| ts > o || (inclusive && ts == o));
            let before_latest = latest.is_none_or(|l| ts < l || (latest_inclusive && ts == l));
            after_oldest && before_latest && m.get("thread_ts").is_none_or(|t| *t == m["ts"])
        })
        .collect();
    matching.reverse();
    let has_more = matching.len() > limit;
    matching.truncate(limit);
    let next_cursor = if has_more {
        matching
            .last()
            .and_then(|m| m["ts"].as_str())
            .unwrap_or_default()
            .to_string()
    } else {
        String::new()
    };
    json!({
        "ok": true,
        "messages": matching,
        "has_more": has_more,
        "pin_count": 0,
        "response_metadata": { "next_cursor": next_cursor },
    })
}
