//! Embed and message component limits, as Discord enforces them.

use super::*;

pub(super) fn check_embeds(embeds: &Value) -> Result<(), Reject> {
    let Some(embeds) = embeds.as_array() else {
        return Err(form_error(
            "embeds",
            "BASE_TYPE_BAD_TYPE",
            "Must be an array.",
        ));
    };
    if embeds.len() > MAX_EMBEDS {
        return Err(form_error(
            "embeds",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 10 or fewer in length.",
        ));
    }
    let mut total = 0;
    for (i, embed) in embeds.iter().enumerate() {
        let field = |name: &str| format!("embeds.{i}.{name}");
        let limit = |name: &str, value: Option<&Value>, max: usize| {
            if chars(value) > max {
                Err(form_error(
                    &field(name),
                    "BASE_TYPE_MAX_LENGTH",
                    &format!("Must be {max} or fewer in length."),
                ))
            } else {
                Ok(chars(value))
            }
        };
        total += limit("title", embed.get("title"), 256)?;
        total += limit("description", embed.get("description"), 4096)?;
        total += limit("footer", embed.pointer("/footer/text"), 2048)?;
        total += limit("author", embed.pointer("/author/name"), 256)?;
        let fields = embed
            .get("fields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if fields.len() > 25 {
            return Err(form_error(
                &field("fields"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ));
        }
        for f in &fields {
            let name = chars(f.get("name"));
            let value = chars(f.get("value"));
            if name == 0 || name > 256 || value == 0 || value > 1024 {
                return Err(form_error(
                    &field("fields"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Field name must be 1-256 and value 1-1024 in length.",
                ));
            }
            total += name + value;
        }
    }
    if total > MAX_EMBED_TOTAL_CHARS {
        return Err(form_error(
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000",
        ));
    }
    Ok(())
}

pub(super) fn check_components(components: &Value) -> Result<(), Reject> {
    let Some(rows) = components.as_array() else {
        return Err(form_error(
            "components",
            "BASE_TYPE_BAD_TYPE",
            "Must be an array.",
        ));
    };
    if rows.len() > MAX_ACTION_ROWS {
        return Err(form_error(
            "components",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 5 or fewer in length.",
        ));
    }
    let mut custom_ids = HashSet::new();
    for (r, row) in rows.iter().enumerate() {
        let at = |rest: &str| format!("components.{r}{rest}");
        if row.get("type").and_then(Value::as_u64) != Some(1) {
            return Err(form_error(
                &at(".type"),
                "COMPONENT_LAYOUT_INVALID",
                "Top-level components must be action rows (type 1).",
            ));
        }
        let children = row
            .get("components")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                form_error(
                    &at(".components"),
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                )
            })?;
        if children.len() > MAX_BUTTONS_PER_ROW {
            return Err(form_error(
                &at(".components"),
                "BASE_TYPE_MAX_LENGTH",
                "Must be 5 or fewer in length.",
            ));
        }
        for (c, child) in children.iter().enumerate() {
            let at = |rest: &str| format!("components.{r}.components.{c}{rest}");
            let custom_id = child.get("custom_id").and_then(Value::as_str);
            if let Some(id) = custom_id {
                if id.is_empty() || id.chars().count() > MAX_CUSTOM_ID_CHARS {
                    return Err(form_error(
                        &at(".custom_id"),
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    ));
                }
                if !custom_ids.insert(id.to_string()) {
                    return Err(form_error(
                        &at(".custom_id"),
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    ));
                }
            }
            match child.get("type").and_then(Value::as_u64) {
                Some(2) => {
                    let style = child.get("style").and_then(Value::as_u64);
                    match style {
                        Some(1..=4) if custom_id.is_none() => {
                            return Err(form_error(
                                &at(".custom_id"),
                                "BASE_TYPE_REQUIRED",
                                "This field is required",
                            ));
                        }
                        Some(1..=4) => {}
                        Some(5)
                            if child.get("url").and_then(Value::as_str).is_none()
                                || custom_id.is_some() =>
                        {
                            return Err(form_error(
                                &at(".url"),
                                "BUTTON_COMPONENT_URL_REQUIRED",
                                "A link button needs a url and no custom_id.",
                            ));
                        }
                        Some(5 | 6) => {}
                        _ => {
                            return Err(form_error(
                                &at(".style"),
                                "BASE_TYPE_CHOICES",
                                "Value must be one of {1, 2, 3, 4, 5, 6}.",
                            ));
                        }
                    }
                    let label = chars(child.get("label"));
                    if label > 80 {
                        return Err(form_error(
                            &at(".label"),
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 80 or fewer in length.",
                        ));
                    }
                    if label == 0 && child.get("emoji").is_none() && style != Some(6) {
                        return Err(form_error(
                            &at(".label"),
                            "BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED",
                            "A button needs a label or an emoji.",
                        ));
                    }
                }
                Some(3 | 5..=8) => {
                    if custom_id.is_none() {
                        return Err(form_error(
                            &at(".custom_id"),
                            "BASE_TYPE_REQUIRED",
                            "This field is required",
                        ));
                    }
                    if children.len() > 1 {
                        return Err(form_error(
                            &at(""),
                            "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                            "A select menu must be alone in its action row.",
                        ));
                    }
                }
                _ => {
                    return Err(form_error(
                        &at(".type"),
                        "COMPONENT_TYPE_INVALID",
                        "Invalid component type for an action row.",
                    ));
                }
            }
        }
    }
    Ok(())
}
