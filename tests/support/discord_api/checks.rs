//! Request validation: body parsing, snowflakes, tokens, and the message create/edit
//! rules (content, nonce, flags, files).

use super::*;

pub(super) fn parse_body(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Value, Vec<Part>), Value> {
    let raw = || Value::String(String::from_utf8_lossy(body).into_owned());
    if *method == Method::GET {
        let mut args = Map::new();
        for (k, v) in serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
            .unwrap_or_default()
        {
            args.insert(k, Value::String(v));
        }
        return Ok((Value::Object(args), Vec::new()));
    }
    if body.is_empty() {
        return Ok((Value::Null, Vec::new()));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        let parts = parse_multipart(content_type, body).map_err(|_| raw())?;
        let mut args = Map::new();
        let mut files = Vec::new();
        for part in parts {
            if part.filename.is_some() {
                files.push(part);
            } else if part.name == "payload_json" {
                match serde_json::from_slice::<Value>(&part.data) {
                    Ok(Value::Object(map)) => args.extend(map),
                    _ => return Err(raw()),
                }
            } else {
                args.insert(
                    part.name,
                    Value::String(String::from_utf8_lossy(&part.data).into_owned()),
                );
            }
        }
        return Ok((Value::Object(args), files));
    }
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(raw());
    }
    serde_json::from_slice::<Value>(body)
        .map(|v| (v, Vec::new()))
        .map_err(|_| raw())
}

pub(super) fn check_snowflake(field: &str, value: &str) -> Result<(), Reject> {
    if is_snowflake(value) {
        Ok(())
    } else {
        Err(form_error(
            field,
            "NUMBER_TYPE_COERCE",
            &format!("Value \"{value}\" is not snowflake."),
        ))
    }
}

pub(super) fn check_app(app: &str, expected: &str, webhook: bool) -> Result<(), Reject> {
    check_snowflake(
        if webhook {
            "webhook_id"
        } else {
            "application_id"
        },
        app,
    )?;
    if app == expected {
        Ok(())
    } else if webhook {
        Err(api_error(404, 10015, "Unknown Webhook"))
    } else {
        Err(api_error(403, 50001, "Missing Access"))
    }
}

pub(super) fn object(args: &Value) -> Result<&Map<String, Value>, Reject> {
    args.as_object()
        .ok_or_else(|| api_error(400, 50109, "The request body contains invalid JSON."))
}

/// Everything that can refuse a request, without changing state.
pub(super) fn check(
    world: &World,
    app_id: &str,
    route: &Route,
    args: &Value,
    files: &[Part],
) -> Result<(), Reject> {
    match route {
        Route::CreateMessage { channel } => {
            check_snowflake("channel_id", channel)?;
            check_message(object(args)?, files, true, false)
        }
        Route::GetMessages { channel } => {
            check_snowflake("channel_id", channel)?;
            if let Some(limit) = args.get("limit").and_then(Value::as_str) {
                match limit.parse::<u32>() {
                    Ok(1..=100) => {}
                    _ => {
                        return Err(form_error(
                            "limit",
                            "NUMBER_TYPE_MAX",
                            "Must be between 1 and 100.",
                        ));
                    }
                }
            }
            for key in ["before", "after", "around"] {
                if let Some(v) = args.get(key).and_then(Value::as_str) {
                    check_snowflake(key, v)?;
                }
            }
            Ok(())
        }
        Route::EditMessage { channel, id } => {
            check_snowflake("channel_id", channel)?;
            check_snowflake("message_id", id)?;
            let index = world
                .index_of(Some(channel), id)
                .ok_or_else(unknown_message)?;
            if world.messages[index].message["author"]["id"] != app_id {
                return Err(api_error(
                    403,
                    50005,
                    "Cannot edit a message authored by another user",
                ));
            }
            check_edit(&world.messages[index].message, object(args)?, files, false)
        }
        Route::PinMessage { channel, id } => {
            check_snowflake("channel_id", channel)?;
            check_snowflake("message_id", id)?;
            world
                .index_of(Some(channel), id)
                .ok_or_else(unknown_message)?;
            Ok(())
        }
        Route::CreateFollowup { app, token } => {
            check_app(app, app_id, true)?;
            check_token(token)?;
            check_message(object(args)?, files, true, true)
        }
        Route::EditOriginal { app, token } => {
            check_app(app, app_id, true)?;
            check_token(token)?;
            let current = world
                .originals
                .get(token)
                .map(|&i| world.messages[i].message.clone())
                .unwrap_or_else(
                    || json!({ "content": "", "embeds": [], "components": [], "attachments": [] }),
                );
            check_edit(&current, object(args)?, files, true)
        }
        Route::EditFollowup { app, token, id } => {
            check_app(app, app_id, true)?;
            check_token(token)?;
            check_snowflake("message_id", id)?;
            let index = world
                .index_of(None, id)
                .filter(|&i| world.messages[i].token.as_deref() == Some(token.as_str()))
                .ok_or_else(unknown_message)?;
            check_edit(&world.messages[index].message, object(args)?, files, true)
        }
        Route::GetCommands { app, guild } => {
            check_app(app, app_id, false)?;
            if let Some(g) = guild {
                check_snowflake("guild_id", g)?;
            }
            Ok(())
        }
        Route::SetGlobalCommands { app } => {
            check_app(app, app_id, false)?;
            check_commands(args)
        }
        Route::SetGuildCommands { app, guild } => {
            check_app(app, app_id, false)?;
            check_snowflake("guild_id", guild)?;
            check_commands(args)
        }
        Route::InteractionCallback { id, token } => {
            check_snowflake("interaction_id", id)?;
            check_token(token)?;
            let body = object(args)?;
            match body.get("type").and_then(Value::as_u64) {
                Some(1 | 5 | 6 | 8 | 9 | 12) => Ok(()),
                Some(4 | 7) => match body.get("data").and_then(Value::as_object) {
                    Some(data) => check_message(data, files, false, true),
                    None => Ok(()),
                },
                _ => Err(form_error(
                    "type",
                    "BASE_TYPE_CHOICES",
                    "Value must be one of {1, 4, 5, 6, 7, 8, 9, 12}.",
                )),
            }
        }
        Route::Unknown => Err(api_error(404, 0, "404: Not Found")),
    }
}

pub(super) fn check_token(token: &str) -> Result<(), Reject> {
    if token.is_empty() {
        Err(api_error(401, 50027, "Invalid Webhook Token"))
    } else {
        Ok(())
    }
}

pub(super) fn chars(v: Option<&Value>) -> usize {
    v.and_then(Value::as_str).map_or(0, |s| s.chars().count())
}

/// Content, embeds, components, nonce, flags and files of a message create/edit body.
pub(super) fn check_message(
    body: &Map<String, Value>,
    files: &[Part],
    require_content: bool,
    webhook: bool,
) -> Result<(), Reject> {
    match body.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.chars().count() > MAX_CONTENT_CHARS => {
            return Err(form_error(
                "content",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 2000 or fewer in length.",
            ));
        }
        Some(Value::String(_)) => {}
        Some(_) => {
            return Err(form_error(
                "content",
                "STRING_TYPE_CONVERT",
                "Could not interpret value as string.",
            ));
        }
    }
    if let Some(embeds) = body.get("embeds").filter(|e| !e.is_null()) {
        check_embeds(embeds)?;
    }
    if let Some(components) = body.get("components").filter(|c| !c.is_null()) {
        let v2 = body.get("flags").and_then(Value::as_u64).unwrap_or(0) & FLAG_COMPONENTS_V2 != 0;
        if !v2 {
            check_components(components)?;
        }
    }
    match body.get("nonce") {
        None | Some(Value::Null) | Some(Value::Number(_)) => {}
        Some(Value::String(s)) if s.chars().count() <= MAX_NONCE_CHARS => {}
        Some(Value::String(_)) => {
            return Err(form_error(
                "nonce",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
        Some(_) => {
            return Err(form_error(
                "nonce",
                "BASE_TYPE_BAD_TYPE",
                "Must be a string or integer.",
            ));
        }
    }
    if let Some(flags) = body.get("flags").filter(|f| !f.is_null()) {
        let mut allowed = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2;
        if webhook {
            allowed |= FLAG_EPHEMERAL;
        }
        match flags.as_u64() {
            Some(f) if f & !allowed == 0 => {}
            _ => {
                return Err(form_error(
                    "flags",
                    "MESSAGE_FLAGS_INVALID",
                    "Invalid flags.",
                ));
            }
        }
    }
    if files.len() > 10 {
        return Err(form_error(
            "files",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 10 or fewer in length.",
        ));
    }
    if files.iter().any(|f| f.data.len() > MAX_FILE_BYTES) {
        return Err(api_error(413, 40005, "Request entity too large"));
    }
    if require_content && !has_content(body, files) {
        return Err(api_error(400, 50006, "Cannot send an empty message"));
    }
    Ok(())
}

pub(super) fn has_content(body: &Map<String, Value>, files: &[Part]) -> bool {
    let non_empty = |key: &str| match body.get(key) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(_)) => true,
        _ => false,
    };
    !files.is_empty()
        || non_empty("content")
        || non_empty("embeds")
        || non_empty("components")
        || non_empty("sticker_ids")
        || non_empty("poll")
}

/// An edit: the body's own rules, then the merged message must not be empty.
pub(super) fn check_edit(
    current: &Value,
    body: &Map<String, Value>,
    files: &[Part],
    webhook: bool,
) -> Result<(), Reject> {
    check_message(body, files, false, webhook)?;
    let mut merged = current.as_object().cloned().unwrap_or_default();
    merge_edit(&mut merged, body);
    if let Some(Value::Array(attachments)) = body.get("attachments") {
        merged.insert("attachments".into(), Value::Array(attachments.clone()));
    }
    let keeps_attachments = merged
        .get("attachments")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if !keeps_attachments && !has_content(&merged, files) {
        return Err(api_error(400, 50006, "Cannot send an empty message"));
    }
    Ok(())
}

pub(super) fn merge_edit(message: &mut Map<String, Value>, body: &Map<String, Value>) {
    for key in ["content", "embeds", "components", "flags"] {
        match body.get(key) {
            Some(Value::Null) => {
                let empty = match key {
                    "content" => json!(""),
                    "flags" => json!(0),
                    _ => json!([]),
                };
                message.insert(key.into(), empty);
            }
            Some(v) => {
                message.insert(key.into(), v.clone());
            }
            None => {}
        }
    }
}
