//! Application command registration rules: names, descriptions, options.

use super::*;

pub(super) fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=32).contains(&n)
        && name.chars().all(|c| {
            (c.is_alphanumeric() && !c.is_uppercase()) || c == '-' || c == '_' || c == '\''
        })
}

pub(super) fn check_commands(commands: &Value) -> Result<(), Reject> {
    let Some(commands) = commands.as_array() else {
        return Err(form_error("_", "BASE_TYPE_BAD_TYPE", "Must be an array."));
    };
    let mut seen = HashSet::new();
    let chat_input = commands
        .iter()
        .filter(|c| c.get("type").and_then(Value::as_u64).unwrap_or(1) == 1)
        .count();
    if chat_input > 100 {
        return Err(api_error(
            400,
            30032,
            "Maximum number of application commands reached (100)",
        ));
    }
    for (i, command) in commands.iter().enumerate() {
        let kind = command.get("type").and_then(Value::as_u64).unwrap_or(1);
        let name = command.get("name").and_then(Value::as_str).unwrap_or("");
        if kind == 1 && !valid_name(name) || name.is_empty() || name.chars().count() > 32 {
            return Err(form_error(
                &format!("{i}.name"),
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            ));
        }
        if !seen.insert((kind, name.to_string())) {
            return Err(form_error(
                &format!("{i}.name"),
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                "Application command names must be unique",
            ));
        }
        if kind == 1 {
            let description = chars(command.get("description"));
            if !(1..=100).contains(&description) {
                return Err(form_error(
                    &format!("{i}.description"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                ));
            }
        }
        let mut total = name.chars().count() + chars(command.get("description"));
        if let Some(options) = command.get("options").filter(|o| !o.is_null()) {
            total += check_options(options, &format!("{i}.options"), 0)?;
        }
        if total > 8000 {
            return Err(api_error(400, 50035, "Command exceeds maximum size (8000)"));
        }
    }
    Ok(())
}

/// Returns the characters counted toward the 8000-character command limit.
pub(super) fn check_options(options: &Value, at: &str, depth: u8) -> Result<usize, Reject> {
    let Some(options) = options.as_array() else {
        return Err(form_error(at, "BASE_TYPE_BAD_TYPE", "Must be an array."));
    };
    if options.len() > 25 {
        return Err(form_error(
            at,
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.",
        ));
    }
    let mut names = HashSet::new();
    let mut optional_seen = false;
    let mut total = 0;
    for (i, option) in options.iter().enumerate() {
        let here = format!("{at}.{i}");
        let kind = option.get("type").and_then(Value::as_u64).unwrap_or(0);
        let name = option.get("name").and_then(Value::as_str).unwrap_or("");
        if !(1..=11).contains(&kind) {
            return Err(form_error(
                &format!("{here}.type"),
                "BASE_TYPE_CHOICES",
                "Value must be between 1 and 11.",
            ));
        }
        if !valid_name(name) {
            return Err(form_error(
                &format!("{here}.name"),
                "APPLICATION_COMMAND_INVALID_NAME",
                "Option name is invalid",
            ));
        }
        if !names.insert(name.to_string()) {
            return Err(form_error(
                &format!("{here}.name"),
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            ));
        }
        let description = chars(option.get("description"));
        if !(1..=100).contains(&description) {
            return Err(form_error(
                &format!("{here}.description"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            ));
        }
        total += name.chars().count() + description;
        let nested = option.get("options").filter(|o| !o.is_null());
        match kind {
            1 | 2 => {
                // Group (2) only at the top, holding subcommands; subcommand (1) holds values.
                if (kind == 2 && depth > 0) || (kind == 1 && depth > 1) {
                    return Err(form_error(
                        &format!("{here}.type"),
                        "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                        "Subcommands nest one level only",
                    ));
                }
                if let Some(nested) = nested {
                    if kind == 2
                        && nested.as_array().is_some_and(|n| {
                            n.iter()
                                .any(|o| o.get("type").and_then(Value::as_u64) != Some(1))
                        })
                    {
                        return Err(form_error(
                            &format!("{here}.options"),
                            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                            "A subcommand group holds subcommands only",
                        ));
                    }
                    if kind == 1
                        && nested.as_array().is_some_and(|n| {
                            n.iter().any(|o| {
                                matches!(o.get("type").and_then(Value::as_u64), Some(1 | 2))
                            })
                        })
                    {
                        return Err(form_error(
                            &format!("{here}.options"),
                            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                            "A subcommand cannot hold subcommands",
                        ));
                    }
                    total += check_options(nested, &format!("{here}.options"), depth + 1)?;
                }
            }
            _ => {
                let required = option
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if required && optional_seen {
                    return Err(form_error(
                        &format!("{here}.required"),
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    ));
                }
                optional_seen |= !required;
                if let Some(choices) = option.get("choices").and_then(Value::as_array) {
                    if choices.len() > 25 {
                        return Err(form_error(
                            &format!("{here}.choices"),
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 25 or fewer in length.",
                        ));
                    }
                    for choice in choices {
                        let value_len = match choice.get("value") {
                            Some(Value::String(s)) => s.chars().count(),
                            Some(v) => v.to_string().len(),
                            None => 0,
                        };
                        let choice_name = chars(choice.get("name"));
                        if !(1..=100).contains(&choice_name) || value_len > 100 {
                            return Err(form_error(
                                &format!("{here}.choices"),
                                "BASE_TYPE_BAD_LENGTH",
                                "Choice name and value must be 1-100 in length.",
                            ));
                        }
                        total += choice_name + value_len;
                    }
                }
            }
        }
    }
    Ok(total)
}
