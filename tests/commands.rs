//! The checked-in Slack and Discord command definitions (`commands/`) match the grammar and
//! stay inside Discord's limits.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use drbot::chat::manifest::{COMMANDS_DIR, check, discord_commands, discord_path, files};
use drbot::command::grammar::VERBS;
use serde_json::Value;

fn checked_in() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMANDS_DIR)
}

#[test]
fn checked_in_files_match_the_grammar() {
    if let Err(diff) = check(&checked_in()) {
        panic!("{diff}");
    }
}

fn copy_of_checked_in() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, _) in files() {
        std::fs::copy(checked_in().join(name), dir.path().join(name)).unwrap();
    }
    dir
}

#[test]
fn an_edited_file_fails_the_check_naming_file_and_line() {
    let dir = copy_of_checked_in();
    let path = dir.path().join("discord-commands.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let original = "\"name\": \"pitr\",";
    let line = text
        .lines()
        .find(|l| l.trim() == original)
        .unwrap()
        .to_string();
    let edited = line.replace("pitr", "rewind");
    std::fs::write(&path, text.replacen(&line, &edited, 1)).unwrap();

    let err = check(dir.path()).unwrap_err();
    assert!(err.contains("discord-commands.json differs"), "{err}");
    assert!(err.contains(&format!("\n-{line}\n")), "{err}");
    assert!(err.contains(&format!("\n+{edited}\n")), "{err}");
    assert!(err.contains("@@ -"), "{err}");
    assert!(!err.contains("slack-app-manifest.json"), "{err}");
}

#[test]
fn a_missing_file_fails_the_check_naming_it() {
    let dir = copy_of_checked_in();
    std::fs::remove_file(dir.path().join("slack-app-manifest.json")).unwrap();
    let err = check(dir.path()).unwrap_err();
    assert!(err.contains("slack-app-manifest.json is missing"), "{err}");
    assert!(err.contains("drbot commands print"), "{err}");
}

/// `^[-_\p{L}\p{N}]{1,32}$`, lowercase.
fn is_discord_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=32).contains(&count)
        && name
            .chars()
            .all(|c| c == '-' || c == '_' || c.is_alphanumeric())
        && name.to_lowercase() == name
}

/// Walks options recursively, checking per-option limits; returns the characters Discord
/// counts toward its 8000 (names, descriptions, choice names and values).
fn check_options(options: &[Value], at: &str) -> usize {
    assert!(options.len() <= 25, "{at}: {} options", options.len());
    let mut names = HashSet::new();
    let mut chars = 0;
    for option in options {
        let name = option["name"].as_str().unwrap();
        let here = format!("{at} {name}");
        assert!(is_discord_name(name), "{here}: bad name");
        assert!(names.insert(name), "{here}: duplicate name");
        let description = option["description"].as_str().unwrap();
        let len = description.chars().count();
        assert!((1..=100).contains(&len), "{here}: description {len} chars");
        chars += name.chars().count() + len;
        if let Some(choices) = option["choices"].as_array() {
            assert!(choices.len() <= 25, "{here}: {} choices", choices.len());
            for choice in choices {
                let (n, v) = (
                    choice["name"].as_str().unwrap(),
                    choice["value"].as_str().unwrap(),
                );
                assert!((1..=100).contains(&n.chars().count()), "{here}: choice {n}");
                assert!(v.chars().count() <= 100, "{here}: choice {v}");
                chars += n.chars().count() + v.chars().count();
            }
        }
        if let Some(inner) = option["options"].as_array() {
            chars += check_options(inner, &here);
        }
    }
    chars
}

#[test]
fn discord_command_is_within_discord_limits() {
    let commands = discord_commands();
    let commands = commands.as_array().unwrap();
    assert_eq!(commands.len(), 1);
    let dr = &commands[0];
    assert_eq!(dr["name"], "dr");
    assert_eq!(dr["type"], 1);
    let description = dr["description"].as_str().unwrap();
    assert!((1..=100).contains(&description.chars().count()));
    let top = dr["options"].as_array().unwrap();
    assert!(top.len() <= 25, "{} top-level entries", top.len());
    let total = 2 + description.chars().count() + check_options(top, "/dr");
    assert!(total <= 8000, "{total} characters");
    // Nesting: groups hold subcommands only, subcommands hold plain options only.
    for entry in top {
        match entry["type"].as_u64() {
            Some(2) => {
                for sub in entry["options"].as_array().unwrap() {
                    assert_eq!(sub["type"], 1, "{}", entry["name"]);
                    for option in sub["options"].as_array().unwrap() {
                        assert!(option["type"].as_u64().unwrap() > 2);
                    }
                }
            }
            Some(1) => {
                for option in entry["options"].as_array().unwrap() {
                    assert!(option["type"].as_u64().unwrap() > 2);
                }
            }
            other => panic!("{}: type {other:?}", entry["name"]),
        }
    }
}

#[test]
fn every_verb_has_exactly_one_discord_path() {
    let commands = discord_commands();
    let top = commands[0]["options"].as_array().unwrap();
    let mut paths: Vec<(Option<String>, String)> = Vec::new();
    for entry in top {
        let name = entry["name"].as_str().unwrap().to_string();
        if entry["type"] == 2 {
            for sub in entry["options"].as_array().unwrap() {
                let sub = sub["name"].as_str().unwrap().to_string();
                paths.push((Some(name.clone()), sub));
            }
        } else {
            paths.push((None, name));
        }
    }
    let unique: HashSet<_> = paths.iter().collect();
    assert_eq!(unique.len(), paths.len(), "duplicate paths: {paths:?}");
    assert_eq!(paths.len(), VERBS.len(), "one subcommand per verb");
    for verb in VERBS {
        let (group, sub) = discord_path(verb);
        let path = (group.map(str::to_string), sub.to_string());
        assert_eq!(
            paths.iter().filter(|p| **p == path).count(),
            1,
            "{} → {path:?}",
            verb.name()
        );
        assert_eq!(
            VERBS
                .iter()
                .filter(|v| discord_path(v) == (group, sub))
                .count(),
            1,
            "{} shares its path",
            verb.name()
        );
    }
}
