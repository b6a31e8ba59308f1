//! Everything that can make a call fail without changing state: content and block
//! limits, per-method argument rules.

use super::*;

/// Message content rules shared by chat.postMessage, chat.update and response_url.
pub(super) fn check_content(
    args: &Map<String, Value>,
    require_content: bool,
) -> Result<(), Reject> {
    let text = args.get("text");
    if let Some(text) = text {
        let Some(text) = text.as_str() else {
            return Err(invalid("invalid_arguments"));
        };
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(invalid("msg_too_long"));
        }
    }
    let blocks = args.get("blocks");
    if let Some(blocks) = blocks {
        check_blocks(blocks)?;
    }
    let has_text = str_arg(args, "text").is_some();
    let has_blocks = blocks
        .and_then(Value::as_array)
        .is_some_and(|b| !b.is_empty());
    let has_attachments = args
        .get("attachments")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if require_content && !has_text && !has_blocks && !has_attachments {
        return Err(invalid("no_text"));
    }
    if let Some(metadata) = args.get("metadata") {
        let ok = metadata.get("event_type").and_then(Value::as_str).is_some()
            && metadata.get("event_payload").is_none_or(Value::is_object);
        if !ok {
            return Err(invalid("invalid_metadata_format"));
        }
    }
    Ok(())
}

pub(super) fn check_blocks(blocks: &Value) -> Result<(), Reject> {
    let Some(blocks) = blocks.as_array() else {
        return Err(invalid("invalid_blocks_format"));
    };
    if blocks.len() > MAX_BLOCKS {
        return Err(invalid("invalid_blocks"));
    }
    let mut block_ids = std::collections::HashSet::new();
    for block in blocks {
        let Some(kind) = block.get("type").and_then(Value::as_str) else {
            return Err(invalid("invalid_blocks"));
        };
        if let Some(id) = block.get("block_id").and_then(Value::as_str)
            && (id.len() > 255 || !block_ids.insert(id.to_string()))
        {
            return Err(invalid("invalid_blocks"));
        }
        let text_len = |ptr: &str| {
            block
                .pointer(ptr)
                .and_then(Value::as_str)
                .map_or(0, |t| t.chars().count())
        };
        let too_long = match kind {
            "section" => {
                text_len("/text/text") > 3000
                    || block
                        .get("fields")
                        .and_then(Value::as_array)
                        .is_some_and(|f| {
                            f.len() > 10
                                || f.iter().any(|x| {
                                    x.get("text")
                                        .and_then(Value::as_str)
                                        .is_some_and(|t| t.chars().count() > 2000)
                                })
                        })
            }
            "header" => text_len("/text/text") > 150,
            "actions" => block
                .get("elements")
                .and_then(Value::as_array)
                .is_none_or(|e| e.is_empty() || e.len() > 25),
            "context" => block
                .get("elements")
                .and_then(Value::as_array)
                .is_none_or(|e| e.is_empty() || e.len() > 10),
            _ => false,
        };
        if too_long {
            return Err(invalid("invalid_blocks"));
        }
        for element in slack_block_elements(block) {
            if element.get("type").and_then(Value::as_str) == Some("button") {
                let label = element.pointer("/text/text").and_then(Value::as_str);
                let action_id = element.get("action_id").and_then(Value::as_str);
                let value = element.get("value").and_then(Value::as_str);
                if label.is_none_or(|l| l.is_empty() || l.chars().count() > 75)
                    || action_id.is_some_and(|a| a.len() > 255)
                    || value.is_some_and(|v| v.chars().count() > 2000)
                {
                    return Err(invalid("invalid_blocks"));
                }
            }
        }
    }
    Ok(())
}

/// Everything that can make a call fail, without changing state.
pub(super) fn check(world: &World, method: &str, args: &Map<String, Value>) -> Result<(), Reject> {
    match method {
        "chat.postMessage" => {
            str_arg(args, "channel").ok_or(invalid("channel_not_found"))?;
            check_content(args, true)
        }
        "chat.update" => {
            let channel = str_arg(args, "channel").ok_or(invalid("channel_not_found"))?;
            let ts = str_arg(args, "ts").ok_or(invalid("invalid_arguments"))?;
            check_content(args, false)?;
            world
                .channels
                .get(channel)
                .and_then(|msgs| msgs.iter().find(|m| m["ts"] == ts))
                .ok_or(invalid("message_not_found"))?;
            Ok(())
        }
        "pins.add" => {
            let channel = str_arg(args, "channel").ok_or(invalid("channel_not_found"))?;
            let ts = str_arg(args, "timestamp").ok_or(invalid("invalid_arguments"))?;
            let message = world
                .channels
                .get(channel)
                .and_then(|msgs| msgs.iter().find(|m| m["ts"] == ts))
                .ok_or(invalid("message_not_found"))?;
            if message.get("pinned_to").is_some() {
                return Err(Reject {
                    code: "already_pinned",
                    valid: true,
                });
            }
            Ok(())
        }
        "files.getUploadURLExternal" => {
            str_arg(args, "filename").ok_or(invalid("invalid_arguments"))?;
            int_arg(args, "length")
                .filter(|l| *l > 0)
                .ok_or(invalid("invalid_arguments"))?;
            Ok(())
        }
        "files.completeUploadExternal" => {
            let files = args
                .get("files")
                .and_then(Value::as_array)
                .filter(|f| !f.is_empty())
                .ok_or(invalid("invalid_arguments"))?;
            for file in files {
                let id = file
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or(invalid("invalid_arguments"))?;
                let slot = world.files.get(id).ok_or(invalid("file_not_found"))?;
                if !slot.uploaded {
                    return Err(invalid("file_not_found"));
                }
            }
            if str_arg(args, "channel_id").is_none() && str_arg(args, "channels").is_none() {
                return Err(invalid("invalid_arguments"));
            }
            if let Some(comment) = args.get("initial_comment").and_then(Value::as_str)
                && comment.chars().count() > MAX_TEXT_CHARS
            {
                return Err(invalid("msg_too_long"));
            }
            if let Some(blocks) = args.get("blocks") {
                check_blocks(blocks)?;
            }
            Ok(())
        }
        "conversations.history" => {
            str_arg(args, "channel").ok_or(invalid("channel_not_found"))?;
            if args.contains_key("limit") && int_arg(args, "limit").is_none() {
                return Err(invalid("invalid_limit"));
            }
            for key in ["oldest", "latest"] {
                if let Some(ts) = str_arg(args, key)
                    && ts_micros(ts).is_none()
                {
                    return Err(invalid("invalid_ts_oldest"));
                }
            }
            Ok(())
        }
        "usergroups.users.list" => {
            let group = str_arg(args, "usergroup").ok_or(invalid("invalid_arguments"))?;
            if !world.usergroups.contains_key(group) {
                return Err(Reject {
                    code: "no_such_subteam",
                    valid: true,
                });
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
