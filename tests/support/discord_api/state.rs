//! Stored messages and commands: snowflakes, message objects, and the effect of each
//! accepted request.

use super::*;

impl World {
    pub(super) fn next_snowflake(&mut self) -> String {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        let candidate = (now_ms - DISCORD_EPOCH_MS) << 22;
        self.last_snowflake = candidate.max(self.last_snowflake + 1);
        self.last_snowflake.to_string()
    }

    pub(super) fn pop_failure(&mut self, route: &str) -> Option<Failure> {
        self.failures.get_mut(route)?.pop_front()
    }

    pub(super) fn index_of(&self, channel: Option<&str>, id: &str) -> Option<usize> {
        self.messages
            .iter()
            .position(|m| m.message["id"] == id && channel.is_none_or(|c| m.channel == c))
    }
}

pub(super) fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

pub(super) fn is_snowflake(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) && s != "0"
}

/// Channel encoded in a fixture interaction token (`itok_{id}_{channel}`).
pub(super) fn channel_of_token(token: &str) -> String {
    token
        .strip_prefix("itok_")
        .and_then(|rest| rest.rsplit_once('_'))
        .map(|(_, channel)| channel.to_string())
        .filter(|c| is_snowflake(c))
        .unwrap_or_else(|| "1".to_string())
}

pub(super) fn attachment_objects(
    files: &[Part],
    origin: &str,
    channel: &str,
    first_id: u64,
) -> Vec<Value> {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let id = first_id + i as u64;
            let filename = f.filename.clone().unwrap_or_else(|| "file".into());
            let url = format!("{origin}/attachments/{channel}/{id}/{filename}");
            json!({
                "id": id.to_string(),
                "filename": filename,
                "size": f.data.len(),
                "url": url,
                "proxy_url": url,
                "content_type": f.content_type,
            })
        })
        .collect()
}

/// A Discord message object built from a create body.
pub(super) fn message_object(
    id: &str,
    channel: &str,
    body: &Map<String, Value>,
    attachments: &[Value],
    author: Value,
) -> Value {
    json!({
        "id": id,
        "type": 0,
        "channel_id": channel,
        "author": author,
        "content": body.get("content").and_then(Value::as_str).unwrap_or(""),
        "embeds": body.get("embeds").cloned().unwrap_or(json!([])),
        "components": body.get("components").cloned().unwrap_or(json!([])),
        "attachments": attachments,
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": false,
        "pinned": false,
        "tts": body.get("tts").cloned().unwrap_or(json!(false)),
        "timestamp": now_iso(),
        "edited_timestamp": null,
        "flags": body.get("flags").cloned().unwrap_or(json!(0)),
    })
}

/// Perform a request that passed `check`; returns the success answer.
pub(super) fn apply(
    world: &mut World,
    shared: &Shared,
    route: &Route,
    args: &Value,
    files: &[Part],
    call: &mut Call,
) -> Answer {
    let empty = Map::new();
    let body = args.as_object().unwrap_or(&empty);
    match route {
        Route::CreateMessage { channel } => {
            let nonce = body.get("nonce").filter(|n| !n.is_null()).map(|n| match n {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            let enforce = body.get("enforce_nonce") == Some(&Value::Bool(true));
            if let Some(nonce) = &nonce
                && enforce
                && let Some(&index) = world.nonces.get(nonce)
            {
                call.deduplicated = true;
                return Ok((200, world.messages[index].message.clone()));
            }
            let message = create(world, shared, channel, body, files, None);
            if let Some(nonce) = nonce {
                world.nonces.insert(nonce, world.messages.len() - 1);
            }
            Ok((200, message))
        }
        Route::GetMessages { channel } => {
            let limit = body
                .get("limit")
                .and_then(Value::as_str)
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(50);
            let id_of = |key: &str| {
                body.get(key)
                    .and_then(Value::as_str)
                    .and_then(|v| v.parse::<u64>().ok())
            };
            let (before, after) = (id_of("before"), id_of("after"));
            let mut found: Vec<Value> = world
                .messages
                .iter()
                .filter(|m| m.channel == *channel)
                .filter(|m| m.message["flags"].as_u64().unwrap_or(0) & FLAG_EPHEMERAL == 0)
                .filter(|m| {
                    let id: u64 = m.message["id"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    before.is_none_or(|b| id < b) && after.is_none_or(|a| id > a)
                })
                .map(|m| {
                    let mut message = m.message.clone();
                    if !world.echo_nonce_in_history
                        && let Some(map) = message.as_object_mut()
                    {
                        map.remove("nonce");
                    }
                    message
                })
                .collect();
            found.reverse();
            if after.is_some() && before.is_none() {
                // Discord pages `after` from the oldest side.
                let skip = found.len().saturating_sub(limit);
                found.drain(..skip);
            } else {
                found.truncate(limit);
            }
            Ok((200, Value::Array(found)))
        }
        Route::EditMessage { channel, id } => {
            let index = world.index_of(Some(channel), id).expect("checked");
            Ok((200, edit(world, shared, index, body, files)))
        }
        Route::PinMessage { channel, id } => {
            let index = world.index_of(Some(channel), id).expect("checked");
            world.messages[index].message["pinned"] = json!(true);
            Ok((204, Value::Null))
        }
        Route::CreateFollowup { token, .. } => {
            let channel = channel_of_token(token);
            let mut message = create(world, shared, &channel, body, files, Some(token));
            if let Some(map) = message.as_object_mut() {
                map.remove("nonce");
            }
            Ok((200, message))
        }
        Route::EditOriginal { token, .. } => {
            let index = match world.originals.get(token) {
                Some(&i) => i,
                None => {
                    let channel = channel_of_token(token);
                    create(world, shared, &channel, &Map::new(), &[], Some(token));
                    let i = world.messages.len() - 1;
                    world.originals.insert(token.clone(), i);
                    i
                }
            };
            Ok((200, edit(world, shared, index, body, files)))
        }
        Route::EditFollowup { id, .. } => {
            let index = world.index_of(None, id).expect("checked");
            Ok((200, edit(world, shared, index, body, files)))
        }
        Route::GetCommands { guild, .. } => {
            let list = match guild {
                None => world.global_commands.clone(),
                Some(g) => world.guild_commands.get(g).cloned().unwrap_or_default(),
            };
            Ok((200, Value::Array(list)))
        }
        Route::SetGlobalCommands { .. } | Route::SetGuildCommands { .. } => {
            let guild = match route {
                Route::SetGuildCommands { guild, .. } => Some(guild.clone()),
                _ => None,
            };
            let mut registered = Vec::new();
            for command in args.as_array().into_iter().flatten() {
                let mut c = command.clone();
                c["id"] = json!(world.next_snowflake());
                c["application_id"] = json!(shared.app_id);
                c["version"] = json!(world.next_snowflake());
                if c.get("type").is_none() {
                    c["type"] = json!(1);
                }
                if c.get("default_member_permissions").is_none() {
                    c["default_member_permissions"] = Value::Null;
                }
                c["nsfw"] = c.get("nsfw").cloned().unwrap_or(json!(false));
                if let Some(g) = &guild {
                    c["guild_id"] = json!(g);
                }
                registered.push(c);
            }
            match guild {
                Some(g) => {
                    world.guild_commands.insert(g, registered.clone());
                }
                None => world.global_commands = registered.clone(),
            }
            Ok((200, Value::Array(registered)))
        }
        Route::InteractionCallback { .. } => Ok((204, Value::Null)),
        Route::Unknown => Err(api_error(404, 0, "404: Not Found")),
    }
}

pub(super) fn create(
    world: &mut World,
    shared: &Shared,
    channel: &str,
    body: &Map<String, Value>,
    files: &[Part],
    token: Option<&str>,
) -> Value {
    let id = world.next_snowflake();
    let first_attachment: u64 = world.next_snowflake().parse().expect("snowflake");
    for _ in 1..files.len() {
        world.next_snowflake();
    }
    let attachments = attachment_objects(files, &shared.origin, channel, first_attachment);
    let mut message = message_object(
        &id,
        channel,
        body,
        &attachments,
        discord_bot_author(&shared.app_id),
    );
    message["application_id"] = json!(shared.app_id);
    if token.is_some() {
        message["webhook_id"] = json!(shared.app_id);
    }
    if let Some(nonce) = body.get("nonce").filter(|n| !n.is_null()) {
        message["nonce"] = nonce.clone();
    }
    world.files.extend(files.iter().cloned());
    world.messages.push(Stored {
        channel: channel.to_string(),
        message: message.clone(),
        token: token.map(String::from),
    });
    message
}

pub(super) fn edit(
    world: &mut World,
    shared: &Shared,
    index: usize,
    body: &Map<String, Value>,
    files: &[Part],
) -> Value {
    let channel = world.messages[index].channel.clone();
    let first_attachment: u64 = world.next_snowflake().parse().expect("snowflake");
    for _ in 1..files.len() {
        world.next_snowflake();
    }
    let new_attachments = attachment_objects(files, &shared.origin, &channel, first_attachment);
    world.files.extend(files.iter().cloned());
    let stored = &mut world.messages[index].message;
    let map = stored.as_object_mut().expect("message object");
    merge_edit(map, body);
    // `attachments` in an edit lists the existing attachments to keep.
    if let Some(Value::Array(keep)) = body.get("attachments") {
        let keep_ids: HashSet<String> = keep
            .iter()
            .filter_map(|a| a.get("id"))
            .map(|id| match id {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let kept: Vec<Value> = map
            .get("attachments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|a| a["id"].as_str().is_some_and(|id| keep_ids.contains(id)))
            .cloned()
            .collect();
        map.insert("attachments".into(), Value::Array(kept));
    }
    if let Some(Value::Array(attachments)) = map.get_mut("attachments") {
        attachments.extend(new_attachments);
    }
    map.insert("edited_timestamp".into(), json!(now_iso()));
    let mut reply = stored.clone();
    if let Some(map) = reply.as_object_mut() {
        map.remove("nonce");
    }
    reply
}
