//! Slack's side of the manifest: Slack sends the typed text, so the app declares only `/dr`,
//! with the scopes drbot calls and a usage hint built from the grammar.

use serde_json::{Value, json};

use super::TIMESTAMP_EXAMPLE;
use crate::command::grammar::{ArgKind, find_verb};

/// Bot token scopes, exactly what drbot calls.
pub const SLACK_BOT_SCOPES: &[&str] = &[
    // the `/dr` slash command
    "commands",
    // posts, replies and edits
    "chat:write",
    // pins the incident's status message
    "pins:write",
    // timeline exports
    "files:write",
    // after a timeout, whether a post went through (public and private channels)
    "channels:history",
    "groups:history",
    // operator groups
    "usergroups:read",
];

/// Verbs shown in Slack's usage hint next to `/dr`.
const SLACK_HINT_VERBS: &[&str] = &["declare", "status", "help"];

/// The Slack app manifest (JSON form) for an app served at `base_url`.
pub fn slack_manifest(base_url: &str) -> Value {
    let base = base_url.trim_end_matches('/');
    json!({
        "_metadata": { "major_version": 1, "minor_version": 1 },
        "display_information": {
            "name": "drbot",
            "description": "Runs the disaster-recovery SOP from the incident channel",
        },
        "features": {
            "bot_user": { "display_name": "drbot", "always_online": true },
            "slash_commands": [{
                "command": "/dr",
                "url": format!("{base}/slack/commands"),
                "description": "Run the disaster-recovery SOP (/dr help lists the commands)",
                "usage_hint": slack_usage_hint(),
                "should_escape": false,
            }],
        },
        "oauth_config": {
            "scopes": { "bot": SLACK_BOT_SCOPES },
        },
        "settings": {
            "interactivity": {
                "is_enabled": true,
                "request_url": format!("{base}/slack/interactions"),
            },
            "org_deploy_enabled": false,
            "socket_mode_enabled": false,
            "token_rotation_enabled": false,
        },
    })
}

/// `declare sev1 infra "title" | status | help`: an example line per hint verb. A verb with
/// a required argument shows all of its arguments; one with only optional arguments shows
/// none.
fn slack_usage_hint() -> String {
    SLACK_HINT_VERBS
        .iter()
        .filter_map(|name| find_verb(&[name]))
        .map(|verb| {
            let mut s = verb.name();
            if verb.args.iter().any(|a| a.required) {
                for arg in verb.args {
                    let example = match arg.kind {
                        ArgKind::Enum(values) => values.first().copied().unwrap_or("").to_string(),
                        ArgKind::Text => format!("\"{}\"", arg.name),
                        ArgKind::Timestamp => TIMESTAMP_EXAMPLE.to_string(),
                        ArgKind::User => "@user".to_string(),
                        ArgKind::Word | ArgKind::List | ArgKind::Date => {
                            format!("<{}>", arg.name)
                        }
                    };
                    s.push(' ');
                    s.push_str(&example);
                }
            }
            s
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_manifest_declares_what_the_bot_uses() {
        let m = slack_manifest("https://bot.example.org/");
        assert_eq!(m["display_information"]["name"], "drbot");
        let cmd = &m["features"]["slash_commands"][0];
        assert_eq!(cmd["command"], "/dr");
        assert_eq!(cmd["url"], "https://bot.example.org/slack/commands");
        assert_eq!(cmd["should_escape"], false);
        assert_eq!(
            cmd["usage_hint"],
            r#"declare sev1 infra "title" | status | help"#
        );
        assert_eq!(
            m["settings"]["interactivity"],
            json!({ "is_enabled": true, "request_url": "https://bot.example.org/slack/interactions" })
        );
        assert_eq!(m["settings"]["socket_mode_enabled"], false);
        assert_eq!(
            m["oauth_config"]["scopes"]["bot"],
            json!([
                "commands",
                "chat:write",
                "pins:write",
                "files:write",
                "channels:history",
                "groups:history",
                "usergroups:read"
            ])
        );
        assert!(m["features"]["bot_user"]["display_name"].is_string());
        // Slack's manifest schema limits.
        assert!(
            m["display_information"]["description"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= 140
        );
    }
}
