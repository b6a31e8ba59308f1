//! Discord's side of the manifest: where each verb goes under `/dr` (Discord allows 25
//! entries and two levels) and the application command JSON built from the grammar.

use serde_json::{Value, json};

use super::TIMESTAMP_EXAMPLE;
use crate::command::grammar::{ArgKind, VERBS, VerbSpec};

/// Discord application command option types used here.
pub(super) const SUB_COMMAND: u64 = 1;
pub(super) const SUB_COMMAND_GROUP: u64 = 2;
pub(super) const STRING: u64 = 3;
pub(super) const USER: u64 = 6;
/// Application command type `CHAT_INPUT` (a slash command).
pub(super) const CHAT_INPUT: u64 = 1;
/// Interaction context `GUILD`: the command is offered in servers only, never in DMs.
const CONTEXT_GUILD: u64 = 0;
/// Discord's limit on every description.
const DESCRIPTION_MAX: usize = 100;

// ---------------------------------------------------------------------------------------
// Placement of verbs under `/dr` on Discord
// ---------------------------------------------------------------------------------------

/// Single-word verbs moved into a group, as `(verb, group, subcommand)`.
///
/// Discord allows at most 25 subcommands and groups directly under `/dr`; the grammar has
/// more verbs than that, so related one-word verbs share a group.
const REGROUPED: &[(&str, &str, &str)] = &[
    ("confirm", "preview", "confirm"),
    ("cancel", "preview", "cancel"),
    ("check", "checklist", "check"),
    ("uncheck", "checklist", "uncheck"),
    ("na", "checklist", "na"),
    ("verify", "checklist", "verify"),
    ("drills", "drill", "status"),
    ("pitr", "restore", "pitr"),
    ("backups", "restore", "backups"),
    ("oncall", "page", "oncall"),
    ("followups", "followup", "list"),
];

/// The subcommand a one-word verb becomes when a group carries its name
/// (`timeline` → `/dr timeline show`, next to `/dr timeline export`).
const GROUP_SELF: &str = "show";

/// Descriptions of the groups. A group missing here lists its subcommands instead.
const GROUP_DESCRIPTIONS: &[(&str, &str)] = &[
    ("infra", "infrastructure restore (Velero)"),
    (
        "restore",
        "database restore into a new StackGres cluster: latest, pitr, and the backups to restore from",
    ),
    ("page", "page the on-call: show (page), resolve, oncall"),
    (
        "followup",
        "follow-up tickets: show (file one), none (waive), list",
    ),
    (
        "checklist",
        "the post-recovery checklist (SOP §9): show, check, uncheck, na, verify",
    ),
    ("timeline", "the incident timeline: show, export"),
    (
        "drill",
        "drills (SOP §10): latest, pitr, status of the quarter",
    ),
    ("tabletop", "tabletop exercises: start, end"),
    ("preview", "launch previews: confirm, cancel"),
    (
        "comms",
        "customer updates for the status page: draft, edit, publish",
    ),
];

/// Where a verb lives under `/dr` on Discord: `(group, subcommand)`.
///
/// The rules, in order:
///
/// | verb                          | Discord                          | why                        |
/// |-------------------------------|----------------------------------|----------------------------|
/// | listed in `REGROUPED`         | `/dr preview confirm`, `/dr checklist check`, … | stay under 25 entries |
/// | one word, also a group's name | `/dr timeline show`, `/dr checklist show` | a name is a group or a subcommand, not both |
/// | one word otherwise            | `/dr status`                     |                            |
/// | two words                     | `/dr drill pitr` (group `drill`) | Discord nests one level    |
///
/// Discord has exactly two levels below the command, so a verb of three or more words would
/// keep its first and last word; the grammar has none, and the tests check that every verb
/// lands on its own path.
pub fn discord_path(verb: &VerbSpec) -> (Option<&'static str>, &'static str) {
    let words: &'static [&'static str] = verb.words;
    match words {
        [] => (None, ""),
        [single] => {
            if let Some(&(_, group, sub)) = REGROUPED.iter().find(|(v, _, _)| v == single) {
                (Some(group), sub)
            } else if is_group(single) {
                (Some(single), GROUP_SELF)
            } else {
                (None, single)
            }
        }
        [first, .., last] => (Some(first), last),
    }
}

fn is_group(name: &str) -> bool {
    VERBS
        .iter()
        .any(|v| v.words.len() > 1 && v.words[0] == name)
        || REGROUPED.iter().any(|(_, group, _)| *group == name)
}

/// One entry directly under `/dr`.
pub(super) enum Entry {
    Sub(&'static str, &'static VerbSpec),
    Group(&'static str, Vec<(&'static str, &'static VerbSpec)>),
}

impl Entry {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Entry::Sub(name, _) | Entry::Group(name, _) => name,
        }
    }
}

/// The tree under `/dr`, in grammar order; a group sits where its first verb is, with its
/// `show` subcommand first.
pub(super) fn layout() -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for verb in VERBS {
        match discord_path(verb) {
            (None, sub) => entries.push(Entry::Sub(sub, verb)),
            (Some(group), sub) => {
                let existing = entries
                    .iter_mut()
                    .find(|e| matches!(e, Entry::Group(name, _) if *name == group));
                match existing {
                    Some(Entry::Group(_, subs)) => subs.push((sub, verb)),
                    _ => entries.push(Entry::Group(group, vec![(sub, verb)])),
                }
            }
        }
    }
    for entry in &mut entries {
        if let Entry::Group(_, subs) = entry {
            subs.sort_by_key(|(sub, _)| *sub != GROUP_SELF);
        }
    }
    entries
}

// ---------------------------------------------------------------------------------------
// Discord application command
// ---------------------------------------------------------------------------------------

/// The Discord application commands (one `CHAT_INPUT` command, `dr`), as the JSON array
/// Discord's bulk-overwrite endpoint takes.
pub fn discord_commands() -> Value {
    let options: Vec<Value> = layout()
        .iter()
        .map(|entry| match entry {
            Entry::Sub(name, verb) => subcommand_json(name, verb),
            Entry::Group(name, subs) => {
                let description = GROUP_DESCRIPTIONS
                    .iter()
                    .find(|(g, _)| g == name)
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_else(|| {
                        let names: Vec<&str> = subs.iter().map(|(s, _)| *s).collect();
                        format!("{name}: {}", names.join(", "))
                    });
                json!({
                    "type": SUB_COMMAND_GROUP,
                    "name": name,
                    "description": clip(&description),
                    "options": subs
                        .iter()
                        .map(|(sub, verb)| subcommand_json(sub, verb))
                        .collect::<Vec<_>>(),
                })
            }
        })
        .collect();
    json!([{
        "type": CHAT_INPUT,
        "name": "dr",
        "description": "disaster recovery: run the DR SOP from the incident channel",
        "default_member_permissions": null,
        "contexts": [CONTEXT_GUILD],
        "options": options,
    }])
}

fn subcommand_json(name: &str, verb: &VerbSpec) -> Value {
    let mut required = Vec::new();
    let mut optional = Vec::new();
    let params = verb
        .args
        .iter()
        .map(|a| (a.name, a.kind, a.help, a.required))
        .chain(verb.options.iter().map(|o| (o.key, o.kind, o.help, false)));
    for (name, kind, help, is_required) in params {
        let description = match kind {
            ArgKind::Timestamp => format!("{help} (e.g. {TIMESTAMP_EXAMPLE})"),
            ArgKind::List => format!("{help}; comma-separated"),
            _ => help.to_string(),
        };
        let mut option = json!({
            "type": option_type(kind),
            "name": name,
            "description": clip(&description),
            "required": is_required,
        });
        if let ArgKind::Enum(values) = kind {
            option["choices"] = values
                .iter()
                .map(|v| json!({ "name": v, "value": v }))
                .collect();
        }
        // Discord refuses a required option after an optional one.
        if is_required {
            required.push(option);
        } else {
            optional.push(option);
        }
    }
    required.append(&mut optional);
    json!({
        "type": SUB_COMMAND,
        "name": name,
        "description": clip(verb.summary),
        "options": required,
    })
}

pub(super) fn option_type(kind: ArgKind) -> u64 {
    match kind {
        ArgKind::User => USER,
        _ => STRING,
    }
}

/// At most [`DESCRIPTION_MAX`] characters, never empty.
fn clip(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "-".to_string();
    }
    if text.chars().count() <= DESCRIPTION_MAX {
        return text.to_string();
    }
    let mut out: String = text.chars().take(DESCRIPTION_MAX - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every verb and where it lives on Discord.
    const PLACEMENT: &[(&str, &str)] = &[
        ("declare", "declare"),
        ("severity", "severity"),
        ("type", "type"),
        ("role", "role"),
        ("status", "status"),
        ("path", "path"),
        ("impact", "impact"),
        ("freeze", "freeze"),
        ("unfreeze", "unfreeze"),
        ("backups", "restore backups"),
        ("infra restore", "infra restore"),
        ("restore latest", "restore latest"),
        ("pitr", "restore pitr"),
        ("check", "checklist check"),
        ("uncheck", "checklist uncheck"),
        ("na", "checklist na"),
        ("checklist", "checklist show"),
        ("verify", "checklist verify"),
        ("update", "update"),
        ("comms draft", "comms draft"),
        ("comms edit", "comms edit"),
        ("comms publish", "comms publish"),
        ("note", "note"),
        ("escalate", "escalate"),
        ("resume", "resume"),
        ("timeline export", "timeline export"),
        ("timeline", "timeline show"),
        ("resolve", "resolve"),
        ("drill latest", "drill latest"),
        ("drill pitr", "drill pitr"),
        ("drills", "drill status"),
        ("tabletop start", "tabletop start"),
        ("tabletop end", "tabletop end"),
        ("confirm", "preview confirm"),
        ("cancel", "preview cancel"),
        ("help", "help"),
        ("page", "page show"),
        ("page resolve", "page resolve"),
        ("oncall", "page oncall"),
        ("followup", "followup show"),
        ("followup none", "followup none"),
        ("followups", "followup list"),
    ];

    #[test]
    fn placement_table() {
        assert_eq!(PLACEMENT.len(), VERBS.len());
        for verb in VERBS {
            let (group, sub) = discord_path(verb);
            let path = match group {
                Some(g) => format!("{g} {sub}"),
                None => sub.to_string(),
            };
            let want = PLACEMENT
                .iter()
                .find(|(v, _)| *v == verb.name())
                .unwrap_or_else(|| panic!("{} missing from PLACEMENT", verb.name()));
            assert_eq!(path, want.1, "{}", verb.name());
        }
    }

    #[test]
    fn discord_command_shape() {
        let commands = discord_commands();
        let dr = &commands[0];
        assert_eq!(commands.as_array().unwrap().len(), 1);
        assert_eq!(dr["name"], "dr");
        assert_eq!(dr["type"], CHAT_INPUT);
        assert_eq!(dr["contexts"], json!([CONTEXT_GUILD]));
        assert!(dr["default_member_permissions"].is_null());
        let pitr = dr["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "drill")
            .unwrap()["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "pitr")
            .unwrap()
            .clone();
        assert_eq!(
            pitr["options"],
            json!([
                {
                    "type": 3, "name": "timestamp", "required": true,
                    "description": "recovery target, with zone (e.g. 2026-02-08T09:55Z)"
                },
                {
                    "type": 3, "name": "cluster", "required": false,
                    "description": "StackGres cluster to restore"
                }
            ])
        );
        let role = dr["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "role")
            .unwrap();
        assert_eq!(role["options"][1]["type"], USER);
        assert_eq!(
            role["options"][0]["choices"][1],
            json!({ "name": "dr-lead", "value": "dr-lead" })
        );
        // Required options first, everywhere.
        fn check_order(options: &[Value]) {
            for option in options {
                if let Some(inner) = option["options"].as_array() {
                    check_order(inner);
                }
            }
            let first_optional = options
                .iter()
                .position(|o| o["required"] == false)
                .unwrap_or(options.len());
            assert!(
                options[first_optional..]
                    .iter()
                    .all(|o| o["required"] != true),
                "{options:?}"
            );
        }
        check_order(dr["options"].as_array().unwrap());
    }
}
