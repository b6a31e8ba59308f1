//! The Slack app manifest and the Discord application command, both derived from
//! [`VERBS`](super::grammar::VERBS), and the way back from a Discord interaction to a `/dr`
//! text line.
//!
//! Slack sends the typed text, so its manifest only declares `/dr` ([`slack`]). Discord wants
//! typed subcommands, so every verb becomes a subcommand of `/dr` (see [`discord_path`] for
//! where each one goes, in [`discord`]) and [`discord_line`] turns the options Discord sends
//! back into the line [`parse`](super::parse) reads: both platforms end in the same parser.
//!
//! The generated files live in [`COMMANDS_DIR`]; [`write`] regenerates them and [`check`]
//! reports any difference from the grammar ([`diff`]).

use std::path::Path;

use serde_json::Value;

mod diff;
mod discord;
mod discord_line;
mod slack;

pub use discord::{discord_commands, discord_path};
pub use discord_line::discord_line;
pub use slack::{SLACK_BOT_SCOPES, slack_manifest};

/// The folder (relative to the repository root) holding the generated files.
pub const COMMANDS_DIR: &str = "commands";

/// Host used in the checked-in Slack manifest; replace it with the bot's public URL.
pub const PLACEHOLDER_BASE_URL: &str = "https://drbot.example.com";

const SLACK_MANIFEST_FILE: &str = "slack-app-manifest.json";
const DISCORD_COMMANDS_FILE: &str = "discord-commands.json";
const README_FILE: &str = "README.md";

/// The example timestamp both platforms show in their hints.
const TIMESTAMP_EXAMPLE: &str = "2026-02-08T09:55Z";

const README: &str = "\
# Chat platform command definitions

Generated from the `/dr` grammar (`src/command/grammar.rs`); do not edit by hand.

- `slack-app-manifest.json`: the Slack app manifest. Create or update the app at
  https://api.slack.com/apps (\"From an app manifest\", JSON), after replacing
  `https://drbot.example.com` with the bot's public URL.
- `discord-commands.json`: the Discord application command `/dr`. Register it with
  `drbot commands register-discord` (global) or `drbot commands register-discord --guild ID`
  (one server; changes show up at once).

Regenerate both after changing the grammar with `drbot commands print`; `drbot commands check`
(also run by `cargo test`) fails when they no longer match it.
";

/// The generated files, as `(file name, contents)`.
pub fn files() -> Vec<(&'static str, String)> {
    vec![
        (
            SLACK_MANIFEST_FILE,
            pretty(slack_manifest(PLACEHOLDER_BASE_URL)),
        ),
        (DISCORD_COMMANDS_FILE, pretty(discord_commands())),
        (README_FILE, README.to_string()),
    ]
}

/// Pretty JSON with sorted keys (stable whatever serde_json's map features) and a newline.
fn pretty(mut value: Value) -> String {
    value.sort_all_objects();
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// Write the generated files into `dir`, creating it.
pub fn write(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, contents) in files() {
        std::fs::write(dir.join(name), contents)?;
    }
    Ok(())
}

/// Compare the files in `dir` with what the grammar generates; the error lists every
/// missing or different file, with a line diff (`-expected`, `+found`).
pub fn check(dir: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    for (name, expected) in files() {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(found) => {
                let found = found.replace("\r\n", "\n");
                if found != expected {
                    problems.push(format!(
                        "{} differs from the grammar:\n--- expected\n+++ found ({})\n{}",
                        name,
                        path.display(),
                        diff::line_diff(&expected, &found)
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(format!("{name} is missing ({})", path.display()));
            }
            Err(e) => problems.push(format!("{name}: cannot read {}: {e}", path.display())),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.push("Regenerate the files with `drbot commands print`.".to_string());
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_pretty_json_and_readme() {
        let files = files();
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "slack-app-manifest.json",
                "discord-commands.json",
                "README.md"
            ]
        );
        for (name, contents) in &files {
            assert!(contents.ends_with('\n'), "{name}");
            if name.ends_with(".json") {
                serde_json::from_str::<Value>(contents).unwrap();
            }
        }
        assert_eq!(
            serde_json::from_str::<Value>(&files[1].1).unwrap(),
            discord_commands()
        );
    }
}
