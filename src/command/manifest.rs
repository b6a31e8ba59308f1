//! The Slack app manifest and the Discord application command, both derived from
//! [`VERBS`], and the way back from a Discord interaction to a `/dr` text line.
//!
//! Slack sends the typed text, so its manifest only declares `/dr`. Discord wants typed
//! subcommands, so every verb becomes a subcommand of `/dr` (see [`discord_path`] for where
//! each one goes) and [`discord_line`] turns the options Discord sends back into the line
//! [`parse`](super::parse) reads: both platforms end in the same parser.
//!
//! The generated files live in [`COMMANDS_DIR`]; [`write`] regenerates them and [`check`]
//! reports any difference from the grammar.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::MAX_INPUT;
use super::grammar::{ArgKind, VERBS, VerbSpec, find_verb};

/// The folder (relative to the repository root) holding the generated files.
pub const COMMANDS_DIR: &str = "commands";

/// Host used in the checked-in Slack manifest; replace it with the bot's public URL.
pub const PLACEHOLDER_BASE_URL: &str = "https://drbot.example.com";

const SLACK_MANIFEST_FILE: &str = "slack-app-manifest.json";
const DISCORD_COMMANDS_FILE: &str = "discord-commands.json";
const README_FILE: &str = "README.md";

/// Discord application command option types used here.
const SUB_COMMAND: u64 = 1;
const SUB_COMMAND_GROUP: u64 = 2;
const STRING: u64 = 3;
const USER: u64 = 6;
/// Application command type `CHAT_INPUT` (a slash command).
const CHAT_INPUT: u64 = 1;
/// Interaction context `GUILD`: the command is offered in servers only, never in DMs.
const CONTEXT_GUILD: u64 = 0;
/// Discord's limit on every description.
const DESCRIPTION_MAX: usize = 100;

const TIMESTAMP_EXAMPLE: &str = "2026-02-08T09:55Z";

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
];

/// The subcommand a one-word verb becomes when a group carries its name
/// (`timeline` → `/dr timeline show`, next to `/dr timeline export`).
const GROUP_SELF: &str = "show";

/// Descriptions of the groups. A group missing here lists its subcommands instead.
const GROUP_DESCRIPTIONS: &[(&str, &str)] = &[
    ("infra", "infrastructure restore (Velero)"),
    ("restore", "database restore into a new StackGres cluster"),
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
enum Entry {
    Sub(&'static str, &'static VerbSpec),
    Group(&'static str, Vec<(&'static str, &'static VerbSpec)>),
}

impl Entry {
    fn name(&self) -> &'static str {
        match self {
            Entry::Sub(name, _) | Entry::Group(name, _) => name,
        }
    }
}

/// The tree under `/dr`, in grammar order; a group sits where its first verb is, with its
/// `show` subcommand first.
fn layout() -> Vec<Entry> {
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

fn option_type(kind: ArgKind) -> u64 {
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

// ---------------------------------------------------------------------------------------
// Discord interaction → text line
// ---------------------------------------------------------------------------------------

/// Rebuild the `/dr` text line (without `/dr`) from the `data.options` array of a Discord
/// `CHAT_INPUT` interaction for `/dr`, so that [`parse`](super::parse) reads the same
/// command the user filled in. Errors name the problem; nothing here panics.
pub fn discord_line(options: &Value) -> Result<String, String> {
    let top = only_entry(options, "/dr")?;
    let name = str_field(top, "name", "/dr")?;
    let entries = layout();
    let Some(entry) = entries.iter().find(|e| e.name() == name) else {
        return Err(format!("unknown subcommand `/dr {name}`"));
    };
    let (verb, path, params) = match entry {
        Entry::Sub(sub, verb) => {
            let path = format!("/dr {sub}");
            expect_type(top, SUB_COMMAND, "a subcommand", &path)?;
            (*verb, path, top.get("options"))
        }
        Entry::Group(group, subs) => {
            let group_path = format!("/dr {group}");
            expect_type(top, SUB_COMMAND_GROUP, "a subcommand group", &group_path)?;
            let inner = only_entry(top.get("options").unwrap_or(&Value::Null), &group_path)?;
            let sub_name = str_field(inner, "name", &group_path)?;
            let Some((sub, verb)) = subs.iter().find(|(s, _)| *s == sub_name) else {
                let known: Vec<&str> = subs.iter().map(|(s, _)| *s).collect();
                return Err(format!(
                    "unknown subcommand `{group_path} {sub_name}` (known: {})",
                    known.join(", ")
                ));
            };
            let path = format!("{group_path} {sub}");
            expect_type(inner, SUB_COMMAND, "a subcommand", &path)?;
            (*verb, path, inner.get("options"))
        }
    };
    let given = collect_params(verb, &path, params)?;
    render(verb, &path, &given)
}

/// The single object in an options array (a command has exactly one subcommand path).
fn only_entry<'a>(options: &'a Value, at: &str) -> Result<&'a Map<String, Value>, String> {
    let items = match options {
        Value::Array(items) => items,
        Value::Null => return Err(format!("`{at}`: no subcommand given")),
        other => {
            return Err(format!(
                "`{at}`: expected an array of options, got {}",
                describe(other)
            ));
        }
    };
    match items.as_slice() {
        [] => Err(format!("`{at}`: no subcommand given")),
        [Value::Object(entry)] => Ok(entry),
        [other] => Err(format!(
            "`{at}`: expected a subcommand object, got {}",
            describe(other)
        )),
        _ => Err(format!(
            "`{at}`: expected one subcommand, got {}",
            items.len()
        )),
    }
}

fn str_field<'a>(entry: &'a Map<String, Value>, field: &str, at: &str) -> Result<&'a str, String> {
    match entry.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "`{at}`: `{field}` must be a string, got {}",
            describe(other)
        )),
        None => Err(format!("`{at}`: an option has no `{field}`")),
    }
}

fn expect_type(entry: &Map<String, Value>, want: u64, what: &str, at: &str) -> Result<(), String> {
    match entry.get("type") {
        Some(t) if t.as_u64() == Some(want) => Ok(()),
        Some(t) => Err(format!(
            "`{at}` is {what} (option type {want}), got type {t}"
        )),
        None => Err(format!("`{at}`: option type missing (expected {want})")),
    }
}

fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let shown = value.to_string();
    if shown.chars().count() > 40 {
        kind.to_string()
    } else {
        format!("{kind} ({shown})")
    }
}

/// A parameter of a verb: a positional argument or a `key=value` option.
#[derive(Clone, Copy)]
struct Param {
    name: &'static str,
    kind: ArgKind,
}

fn params_of(verb: &VerbSpec) -> impl Iterator<Item = Param> + '_ {
    verb.args
        .iter()
        .map(|a| Param {
            name: a.name,
            kind: a.kind,
        })
        .chain(verb.options.iter().map(|o| Param {
            name: o.key,
            kind: o.kind,
        }))
}

/// The values given, by parameter name, checked for name, type and shape.
fn collect_params(
    verb: &VerbSpec,
    path: &str,
    params: Option<&Value>,
) -> Result<Vec<(&'static str, String)>, String> {
    let items = match params {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(format!(
                "`{path}`: expected an array of options, got {}",
                describe(other)
            ));
        }
    };
    let mut given: Vec<(&'static str, String)> = Vec::new();
    for item in items {
        let Value::Object(option) = item else {
            return Err(format!(
                "`{path}`: expected an option object, got {}",
                describe(item)
            ));
        };
        let name = str_field(option, "name", path)?;
        let Some(param) = params_of(verb).find(|p| p.name == name) else {
            let known: Vec<&str> = params_of(verb).map(|p| p.name).collect();
            return Err(if known.is_empty() {
                format!("`{path}` takes no options, got `{name}`")
            } else {
                format!(
                    "unknown option `{name}` for `{path}` (known: {})",
                    known.join(", ")
                )
            });
        };
        if given.iter().any(|(n, _)| *n == param.name) {
            return Err(format!("`{path}`: option `{name}` given twice"));
        }
        let at = format!("{path} {name}");
        expect_type(option, option_type(param.kind), "an option", &at)?;
        let value = match option.get("value") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(format!(
                    "`{path}`: option `{name}` must be a string, got {}",
                    describe(other)
                ));
            }
            None => return Err(format!("`{path}`: option `{name}` has no value")),
        };
        given.push((param.name, value));
    }
    Ok(given)
}

/// A token of the rebuilt line: `raw` is what the tokenizer will hand the parser, `shown`
/// is how it is written (quoted where needed).
struct Tok {
    raw: String,
    shown: String,
}

fn render(verb: &VerbSpec, path: &str, given: &[(&'static str, String)]) -> Result<String, String> {
    let value_of = |name: &str| given.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let mut line = verb.name();
    let mut first_positional = true;
    // Optional arguments left out since the last one given: the parser reads positionally.
    let mut skipped: Vec<&str> = Vec::new();
    let mut skipped_enums: Vec<(&str, &[&str])> = Vec::new();
    let mut after_text: Option<&str> = None;
    for arg in verb.args {
        let Some(value) = value_of(arg.name) else {
            if arg.required {
                return Err(format!(
                    "`{path}`: missing required option `{}` ({})",
                    arg.name, arg.help
                ));
            }
            match arg.kind {
                ArgKind::Enum(values) => skipped_enums.push((arg.name, values)),
                _ => skipped.push(arg.name),
            }
            continue;
        };
        if let Some(text_arg) = after_text {
            return Err(format!(
                "`{path}`: `{}` cannot follow `{text_arg}` on a text line",
                arg.name
            ));
        }
        if let Some(missing) = skipped.first() {
            return Err(format!(
                "`{path}`: `{}` needs `{missing}` to be given as well",
                arg.name
            ));
        }
        let mut toks = arg_tokens(arg.kind, value, path, arg.name)?;
        let Some(first) = toks.first_mut() else {
            return Err(format!("`{path}`: option `{}` is empty", arg.name));
        };
        if let Some((enum_name, _)) = skipped_enums
            .iter()
            .find(|(_, values)| values.iter().any(|v| v.eq_ignore_ascii_case(&first.raw)))
        {
            return Err(format!(
                "`{path}`: {} `{}` would be read as the {enum_name}; give a {enum_name} or reword it",
                arg.name, first.raw
            ));
        }
        if first_positional && shadows_verb(verb, &first.raw) && first.shown == first.raw {
            first.shown = quote(&first.raw).ok_or_else(|| {
                format!(
                    "`{path}`: `{}` cannot be written as a command line",
                    first.raw
                )
            })?;
        }
        first_positional = false;
        skipped_enums.clear();
        if arg.kind == ArgKind::Text {
            after_text = Some(arg.name);
        }
        for tok in toks {
            line.push(' ');
            line.push_str(&tok.shown);
        }
    }
    // Options go last, timestamps at the very end: a timestamp option may read up to three
    // words after its key.
    let mut options: Vec<_> = verb.options.iter().collect();
    options.sort_by_key(|o| o.kind == ArgKind::Timestamp);
    for opt in options {
        let Some(value) = value_of(opt.key) else {
            continue;
        };
        let toks = arg_tokens(opt.kind, value, path, opt.key)?;
        let [tok] = toks.as_slice() else {
            return Err(format!(
                "`{path}`: the value of `{}` cannot be written as a command line: {}",
                opt.key,
                value.trim()
            ));
        };
        line.push(' ');
        if tok.shown == tok.raw {
            let _ = write!(line, "{}={}", opt.key, tok.raw);
        } else {
            let _ = write!(line, "--{} {}", opt.key, tok.shown);
        }
    }
    if line.len() > MAX_INPUT {
        return Err(format!(
            "`{path}`: the command is too long ({} bytes, at most {MAX_INPUT})",
            line.len()
        ));
    }
    Ok(line)
}

/// `a, b ,,c` → `a,b,c`: the parser splits on commas and trims each item.
fn normalise_list(value: &str) -> String {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `word`, written right after this one-word verb, would make the parser pick a
/// longer verb (`timeline export`).
fn shadows_verb(verb: &VerbSpec, word: &str) -> bool {
    VERBS.iter().any(|v| {
        v.words.len() == verb.words.len() + 1
            && v.words.iter().zip(verb.words).all(|(a, b)| a == b)
            && v.words
                .last()
                .is_some_and(|last| last.eq_ignore_ascii_case(word))
    })
}

fn arg_tokens(kind: ArgKind, value: &str, path: &str, name: &str) -> Result<Vec<Tok>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("`{path}`: option `{name}` is empty"));
    }
    let unrepresentable =
        || format!("`{path}`: the value of `{name}` cannot be written as a command line: {value}");
    match kind {
        ArgKind::User => {
            let mention = format!("<@{value}>");
            if super::parse_mention(&mention).as_deref() != Some(value) {
                return Err(format!(
                    "`{path}`: option `{name}` is not a user id: {value}"
                ));
            }
            Ok(vec![Tok {
                raw: mention.clone(),
                shown: mention,
            }])
        }
        ArgKind::Text => text_tokens(value).ok_or_else(unrepresentable),
        ArgKind::List => {
            let list = normalise_list(value);
            word_token(&list)
                .map(|t| vec![t])
                .ok_or_else(unrepresentable)
        }
        ArgKind::Enum(_) | ArgKind::Timestamp | ArgKind::Word => word_token(value)
            .map(|t| vec![t])
            .ok_or_else(unrepresentable),
    }
}

/// One token: bare when the tokenizer and option scanner leave it alone, quoted otherwise.
fn word_token(value: &str) -> Option<Tok> {
    let shown = if is_plain(value) {
        value.to_string()
    } else {
        quote(value)?
    };
    Some(Tok {
        raw: value.to_string(),
        shown,
    })
}

/// Free text, always quoted so that `key=value`-looking words stay text. The parser joins
/// the tokens of a text argument with single spaces, so text no quote style can hold whole
/// is written as several quoted tokens split at single spaces.
fn text_tokens(value: &str) -> Option<Vec<Tok>> {
    if let Some(shown) = quote(value) {
        return Some(vec![Tok {
            raw: value.to_string(),
            shown,
        }]);
    }
    value
        .split(' ')
        .map(|piece| {
            quote(piece).map(|shown| Tok {
                raw: piece.to_string(),
                shown,
            })
        })
        .collect()
}

/// A bare token: no whitespace, no quote to open, no `=` or leading `--` an option scanner
/// could take.
fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && !value.starts_with("--")
        && !value.starts_with(['"', '\'', '“', '‘'])
        && !value.chars().any(|c| c.is_whitespace() || c == '=')
}

/// Wrap `value` in a quote style the tokenizer gives back verbatim: `"…"` closes at `"`,
/// `'…'` at `'`, `‘…’` at `’`. (`“…”` also closes at a straight `"`, so it adds nothing.)
fn quote(value: &str) -> Option<String> {
    [('"', '"'), ('\'', '\''), ('‘', '’')]
        .into_iter()
        .find(|(_, close)| !value.contains(*close))
        .map(|(open, close)| format!("{open}{value}{close}"))
}

// ---------------------------------------------------------------------------------------
// Slack app manifest
// ---------------------------------------------------------------------------------------

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
                        ArgKind::Word | ArgKind::List => format!("<{}>", arg.name),
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

// ---------------------------------------------------------------------------------------
// The checked-in files
// ---------------------------------------------------------------------------------------

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
                        line_diff(&expected, &found)
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

/// Lines of context around each change.
const CONTEXT: usize = 2;
/// Diff lines shown per file before the rest is summarised.
const MAX_DIFF_LINES: usize = 200;
/// Past this many cells the LCS table is not built; the first difference is shown instead.
const MAX_LCS_CELLS: usize = 4_000_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Del,
    Ins,
}

/// A unified-style diff of `expected` against `found`, with `@@ -line +line @@` headers.
fn line_diff(expected: &str, found: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = found.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (mid_a, mid_b) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    if mid_a.is_empty() && mid_b.is_empty() {
        // Same lines; only the final newline differs.
        return "(the files differ only in their final newline)".to_string();
    }
    let mut ops: Vec<(Op, &str)> = a[..prefix].iter().map(|l| (Op::Same, *l)).collect();
    if (mid_a.len() + 1).saturating_mul(mid_b.len() + 1) > MAX_LCS_CELLS {
        ops.extend(mid_a.iter().map(|l| (Op::Del, *l)));
        ops.extend(mid_b.iter().map(|l| (Op::Ins, *l)));
    } else {
        ops.extend(lcs_ops(mid_a, mid_b));
    }
    ops.extend(a[a.len() - suffix..].iter().map(|l| (Op::Same, *l)));
    render_hunks(&ops)
}

fn lcs_ops<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(Op, &'a str)> {
    let (n, m) = (a.len(), b.len());
    // table[i][j]: LCS length of a[i..] and b[j..].
    let width = m + 1;
    let mut table = vec![0u32; (n + 1) * width];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i * width + j] = if a[i] == b[j] {
                table[(i + 1) * width + j + 1] + 1
            } else {
                table[(i + 1) * width + j].max(table[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n && j < m {
        if a[i] == b[j] {
            ops.push((Op::Same, a[i]));
            i += 1;
            j += 1;
        } else if table[(i + 1) * width + j] >= table[i * width + j + 1] {
            ops.push((Op::Del, a[i]));
            i += 1;
        } else {
            ops.push((Op::Ins, b[j]));
            j += 1;
        }
    }
    ops.extend(a[i..].iter().map(|l| (Op::Del, *l)));
    ops.extend(b[j..].iter().map(|l| (Op::Ins, *l)));
    ops
}

fn render_hunks(ops: &[(Op, &str)]) -> String {
    // Line numbers (1-based) in expected and found before each op.
    let mut numbers = Vec::with_capacity(ops.len());
    let (mut la, mut lb) = (1usize, 1usize);
    for (op, _) in ops {
        numbers.push((la, lb));
        match op {
            Op::Same => {
                la += 1;
                lb += 1;
            }
            Op::Del => la += 1,
            Op::Ins => lb += 1,
        }
    }
    // Ranges of ops to show: each change with CONTEXT lines around it, merged.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (k, (op, _)) in ops.iter().enumerate() {
        if *op == Op::Same {
            continue;
        }
        let start = k.saturating_sub(CONTEXT);
        let end = (k + CONTEXT + 1).min(ops.len());
        match ranges.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => ranges.push((start, end)),
        }
    }
    let mut out = String::new();
    let mut shown = 0usize;
    let total: usize = ranges.iter().map(|(s, e)| e - s).sum();
    for (start, end) in ranges {
        if shown >= MAX_DIFF_LINES {
            let _ = writeln!(out, "… ({} more diff lines)", total - shown);
            break;
        }
        let slice = &ops[start..end];
        let count_a = slice.iter().filter(|(op, _)| *op != Op::Ins).count();
        let count_b = slice.iter().filter(|(op, _)| *op != Op::Del).count();
        let (first_a, first_b) = numbers[start];
        let _ = writeln!(out, "@@ -{first_a},{count_a} +{first_b},{count_b} @@");
        for (op, line) in slice {
            let sign = match op {
                Op::Same => ' ',
                Op::Del => '-',
                Op::Ins => '+',
            };
            let _ = writeln!(out, "{sign}{line}");
            shown += 1;
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, parse};
    use proptest::prelude::*;

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
        ("backups", "backups"),
        ("infra restore", "infra restore"),
        ("restore latest", "restore latest"),
        ("pitr", "pitr"),
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
    ];

    fn leaf(name: &str, ty: u64, value: Value) -> Value {
        json!({ "name": name, "type": ty, "value": value })
    }

    /// The `data.options` Discord sends for `/dr <path>` with these leaf options.
    fn interaction(path: &str, leaves: Vec<Value>) -> Value {
        match path.split_once(' ') {
            Some((group, sub)) => json!([{
                "name": group,
                "type": SUB_COMMAND_GROUP,
                "options": [{ "name": sub, "type": SUB_COMMAND, "options": leaves }],
            }]),
            None => json!([{ "name": path, "type": SUB_COMMAND, "options": leaves }]),
        }
    }

    fn line(path: &str, leaves: Vec<Value>) -> String {
        let options = interaction(path, leaves);
        discord_line(&options).unwrap_or_else(|e| panic!("{options}: {e}"))
    }

    fn refused(options: Value) -> String {
        discord_line(&options).expect_err(&options.to_string())
    }

    fn parsed(line: &str) -> Command {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

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
    fn lines_for_the_common_commands() {
        assert_eq!(
            line(
                "drill pitr",
                vec![leaf("timestamp", STRING, json!("2026-02-08T09:55Z"))]
            ),
            "drill pitr 2026-02-08T09:55Z"
        );
        assert_eq!(
            line(
                "role",
                vec![
                    leaf("role", STRING, json!("comms")),
                    leaf("user", USER, json!("123"))
                ]
            ),
            "role comms <@123>"
        );
        // Order as sent does not matter; the grammar's order is used.
        assert_eq!(
            line(
                "declare",
                vec![
                    leaf("title", STRING, json!("orders wiped")),
                    leaf("severity", STRING, json!("sev1")),
                    leaf("type", STRING, json!("data")),
                ]
            ),
            r#"declare sev1 data "orders wiped""#
        );
        assert_eq!(
            line(
                "infra restore",
                vec![
                    leaf("namespaces", STRING, json!("a, b")),
                    leaf("backup", STRING, json!("nightly")),
                ]
            ),
            "infra restore backup=nightly namespaces=a,b"
        );
        assert_eq!(line("timeline show", vec![]), "timeline");
        assert_eq!(
            line(
                "timeline export",
                vec![leaf("format", STRING, json!("csv"))]
            ),
            "timeline export csv"
        );
        assert_eq!(
            line("preview confirm", vec![leaf("id", STRING, json!("P1"))]),
            "confirm P1"
        );
        assert_eq!(
            line(
                "checklist na",
                vec![
                    leaf("item", STRING, json!("9.4")),
                    leaf("reason", STRING, json!("no replicas"))
                ]
            ),
            r#"na 9.4 "no replicas""#
        );
        assert_eq!(
            line(
                "note",
                vec![
                    leaf("at", STRING, json!("2026-02-08 09:55 UTC")),
                    leaf("text", STRING, json!("paged"))
                ]
            ),
            r#"note "paged" --at "2026-02-08 09:55 UTC""#
        );
        // The raw form Discord sends when a subcommand has no options at all.
        assert_eq!(
            discord_line(&json!([{ "name": "status", "type": 1 }])).unwrap(),
            "status"
        );
    }

    fn kind_of(verb: &VerbSpec, name: &str) -> ArgKind {
        params_of(verb)
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{} has no {name}", verb.name()))
            .kind
    }

    /// A sample value for a manifest option, as Discord sends it and as one would type it.
    fn sample(verb: &VerbSpec, option: &Value, variant: usize) -> (Value, String) {
        let name = option["name"].as_str().unwrap();
        if let Some(choices) = option["choices"].as_array() {
            let value = choices[variant % choices.len()]["value"].as_str().unwrap();
            return (json!(value), value.to_string());
        }
        if option["type"] == USER {
            return (json!("123456789012345678"), "<@123456789012345678>".into());
        }
        let (value, typed) = match kind_of(verb, name) {
            ArgKind::Timestamp => ("2026-02-08T09:55Z", "2026-02-08T09:55Z"),
            ArgKind::List => ("ns-a, ns-b", "ns-a,ns-b"),
            ArgKind::Word => ("w-1", "w-1"),
            ArgKind::Text => (
                "orders table wiped at=noon",
                "\"orders table wiped at=noon\"",
            ),
            kind => panic!("no sample for {kind:?}"),
        };
        (json!(value), typed.to_string())
    }

    /// For every subcommand of the generated manifest, an interaction filled with sample
    /// values reads as the same command as the equivalent typed line.
    #[test]
    fn every_verb_round_trips_from_the_manifest_shape() {
        let commands = discord_commands();
        let mut subcommands = Vec::new();
        for entry in commands[0]["options"].as_array().unwrap() {
            let name = entry["name"].as_str().unwrap();
            if entry["type"] == SUB_COMMAND_GROUP {
                for sub in entry["options"].as_array().unwrap() {
                    subcommands.push((Some(name), sub));
                }
            } else {
                subcommands.push((None, entry));
            }
        }
        assert_eq!(subcommands.len(), VERBS.len());
        for (group, sub) in subcommands {
            let sub_name = sub["name"].as_str().unwrap();
            let verb = VERBS
                .iter()
                .find(|v| discord_path(v) == (group, sub_name))
                .unwrap();
            let path = match group {
                Some(g) => format!("{g} {sub_name}"),
                None => sub_name.to_string(),
            };
            for (variant, all) in [(0, true), (1, false), (2, true)] {
                let mut leaves = Vec::new();
                let mut typed_by_name = Vec::new();
                for option in sub["options"].as_array().unwrap() {
                    if !all && option["required"] != true {
                        continue;
                    }
                    let name = option["name"].as_str().unwrap();
                    let (value, typed) = sample(verb, option, variant);
                    leaves.push(leaf(name, option["type"].as_u64().unwrap(), value));
                    typed_by_name.push((name, typed));
                }
                let typed_of = |n: &str| {
                    typed_by_name
                        .iter()
                        .find(|(name, _)| *name == n)
                        .map(|(_, t)| t.clone())
                };
                let mut typed = verb.name();
                for arg in verb.args {
                    if let Some(t) = typed_of(arg.name) {
                        typed.push_str(&format!(" {t}"));
                    }
                }
                for opt in verb.options {
                    if let Some(t) = typed_of(opt.key) {
                        typed.push_str(&format!(" {}={t}", opt.key));
                    }
                }
                let rebuilt = line(&path, leaves);
                assert_eq!(
                    parsed(&rebuilt),
                    parsed(&typed),
                    "/dr {path}: `{rebuilt}` vs `{typed}`"
                );
            }
        }
    }

    fn update_text(text: &str) -> Result<Command, String> {
        let l = discord_line(&interaction(
            "update",
            vec![leaf("text", STRING, json!(text))],
        ))?;
        parse(&l).map_err(|e| e.to_string())
    }

    #[test]
    fn text_comes_back_verbatim() {
        for text in [
            "plain words",
            r#"the "orders" table"#,
            "it's gone",
            r#"it's the "orders" table"#,
            "two  spaces and\ttab\nnewline",
            "backup=nightly --cluster x",
            "“curly” and ‘single’",
            r#""quoted start"#,
            r#"she said "it's ’fine’" twice"#,
            "/dr declare sev1",
        ] {
            assert_eq!(
                update_text(text),
                Ok(Command::Update { text: text.into() }),
                "{text}"
            );
        }
        // Surrounding whitespace is trimmed, as for typed text.
        assert_eq!(
            update_text("  padded \n"),
            Ok(Command::Update {
                text: "padded".into()
            })
        );
        // One word holding every closing quote the tokenizer knows cannot be written.
        let err = update_text(r#"a"b'c’d"#).unwrap_err();
        assert!(err.contains("cannot be written"), "{err}");
    }

    #[test]
    fn words_and_options_are_quoted_when_needed() {
        let l = line(
            "checklist check",
            vec![
                leaf("item", STRING, json!("cluster=9.1")),
                leaf("note", STRING, json!("x")),
            ],
        );
        assert_eq!(
            parsed(&l),
            Command::Check {
                item: "cluster=9.1".into(),
                note: Some("x".into())
            }
        );
        let l = line(
            "restore latest",
            vec![leaf("cluster", STRING, json!("my cluster"))],
        );
        assert_eq!(l, r#"restore latest --cluster "my cluster""#);
        assert_eq!(
            parsed(&l),
            Command::RestoreLatest {
                cluster: Some("my cluster".into())
            }
        );
        let l = line(
            "pitr",
            vec![
                leaf("timestamp", STRING, json!("2026-02-08 10:55 +01:00")),
                leaf("cluster", STRING, json!("--cluster")),
            ],
        );
        match parsed(&l) {
            Command::Pitr { target, cluster } => {
                assert_eq!(target.to_string(), "2026-02-08T10:55:00+01:00");
                assert_eq!(cluster.as_deref(), Some("--cluster"));
            }
            other => panic!("{l}: {other:?}"),
        }
        let l = line("help", vec![leaf("verb", STRING, json!("drill pitr"))]);
        assert_eq!(
            parsed(&l),
            Command::Help {
                verb: Some("drill pitr".into())
            }
        );
    }

    #[test]
    fn a_title_that_reads_as_the_type_is_refused() {
        let err = refused(interaction(
            "declare",
            vec![
                leaf("severity", STRING, json!("sev2")),
                leaf("title", STRING, json!("Data")),
            ],
        ));
        assert!(err.contains("would be read as the type"), "{err}");
        // With more words it is fine.
        let l = line(
            "declare",
            vec![
                leaf("severity", STRING, json!("sev2")),
                leaf("title", STRING, json!("data loss")),
            ],
        );
        assert_eq!(
            parsed(&l),
            Command::Declare {
                severity: "sev2".into(),
                incident_type: None,
                title: "data loss".into(),
                services: vec![],
                since: None
            }
        );
    }

    #[test]
    fn malformed_interactions_are_refused_with_the_reason() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({}), "expected an array of options"),
            (json!(null), "no subcommand given"),
            (json!([]), "no subcommand given"),
            (json!(["status"]), "expected a subcommand object"),
            (
                json!([{ "name": "status", "type": 1 }, { "name": "path", "type": 1 }]),
                "expected one subcommand, got 2",
            ),
            (json!([{ "type": 1 }]), "no `name`"),
            (json!([{ "name": 5, "type": 1 }]), "`name` must be a string"),
            (
                json!([{ "name": "frobnicate", "type": 1 }]),
                "unknown subcommand `/dr frobnicate`",
            ),
            (
                interaction("drill rewind", vec![]),
                "unknown subcommand `/dr drill rewind` (known: latest, pitr, status)",
            ),
            (
                json!([{ "name": "timeline", "type": 1 }]),
                "`/dr timeline` is a subcommand group",
            ),
            (
                json!([{ "name": "drill", "type": 2 }]),
                "`/dr drill`: no subcommand given",
            ),
            (
                json!([{ "name": "status", "type": 2 }]),
                "`/dr status` is a subcommand",
            ),
            (json!([{ "name": "status" }]), "option type missing"),
            (
                interaction("drill pitr", vec![]),
                "`/dr drill pitr`: missing required option `timestamp`",
            ),
            (
                interaction("drill pitr", vec![leaf("when", STRING, json!("x"))]),
                "unknown option `when` for `/dr drill pitr` (known: timestamp, cluster)",
            ),
            (
                interaction("status", vec![leaf("x", STRING, json!("y"))]),
                "`/dr status` takes no options, got `x`",
            ),
            (
                interaction("update", vec![leaf("text", STRING, json!(5))]),
                "option `text` must be a string, got a number (5)",
            ),
            (
                interaction("update", vec![leaf("text", STRING, json!(null))]),
                "option `text` must be a string, got null",
            ),
            (
                interaction("update", vec![json!({ "name": "text", "type": 3 })]),
                "option `text` has no value",
            ),
            (
                interaction("update", vec![leaf("text", STRING, json!("   "))]),
                "option `text` is empty",
            ),
            (
                interaction(
                    "update",
                    vec![
                        leaf("text", STRING, json!("a")),
                        leaf("text", STRING, json!("b")),
                    ],
                ),
                "option `text` given twice",
            ),
            (
                interaction(
                    "role",
                    vec![
                        leaf("role", STRING, json!("ic")),
                        leaf("user", STRING, json!("123")),
                    ],
                ),
                "`/dr role user` is an option (option type 6), got type 3",
            ),
            (
                interaction(
                    "role",
                    vec![
                        leaf("role", STRING, json!("ic")),
                        leaf("user", USER, json!("12>3")),
                    ],
                ),
                "option `user` is not a user id",
            ),
            (
                json!([{ "name": "update", "type": 1, "options": { "text": "x" } }]),
                "`/dr update`: expected an array of options, got an object",
            ),
            (
                json!([{ "name": "update", "type": 1, "options": ["x"] }]),
                "expected an option object, got a string",
            ),
            (
                interaction(
                    "update",
                    vec![leaf("text", STRING, json!("x".repeat(MAX_INPUT)))],
                ),
                "too long",
            ),
        ];
        for (options, want) in cases {
            let err = refused(options.clone());
            assert!(err.contains(want), "{options}: got {err:?}, want {want:?}");
        }
    }

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

    #[test]
    fn diff_shows_changed_lines_with_context_and_line_numbers() {
        let expected = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let found = "a\nb\nc\nD\ne\nf\ng\nh\ni\nnew\n";
        assert_eq!(
            line_diff(expected, found),
            "@@ -2,5 +2,5 @@\n b\n c\n-d\n+D\n e\n f\n@@ -8,2 +8,3 @@\n h\n i\n+new"
        );
        // Changes closer than twice the context share a hunk.
        assert_eq!(
            line_diff("a\nb\nc\nd\ne\n", "a\nB\nc\nD\ne\n"),
            "@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n-d\n+D\n e"
        );
        assert_eq!(
            line_diff("a\n", "a"),
            "(the files differ only in their final newline)"
        );
        assert_eq!(line_diff("", "x\n"), "@@ -1,0 +1,1 @@\n+x");
    }

    fn json_tree() -> impl Strategy<Value = Value> {
        let names = prop_oneof![
            Just("drill"),
            Just("pitr"),
            Just("timeline"),
            Just("show"),
            Just("status"),
            Just("update"),
            Just("text"),
            Just("role"),
            Just("user"),
            Just("note"),
            Just("at"),
            Just("declare"),
            Just("title"),
            Just("x"),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0u64..8).prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            names.clone().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(
                    (
                        prop_oneof![Just("name"), Just("type"), Just("options"), Just("value")],
                        inner
                    ),
                    0..4
                )
                .prop_map(|fields| {
                    Value::Object(
                        fields
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn discord_line_never_panics(options in json_tree()) {
            let _ = discord_line(&options);
        }

        #[test]
        fn any_text_comes_back_or_is_refused(text in "\\PC{0,40}") {
            if let Ok(command) = update_text(&text) {
                prop_assert_eq!(command, Command::Update { text: text.trim().to_string() });
            }
        }

        #[test]
        fn any_word_comes_back_or_is_refused(word in "[\\PC&&[^ ]]{1,16}") {
            let l = discord_line(&interaction(
                "checklist uncheck",
                vec![leaf("item", STRING, json!(word))],
            ));
            if let Ok(l) = l {
                let command = parse(&l);
                if let Ok(command) = command {
                    prop_assert_eq!(command, Command::Uncheck { item: word.trim().to_string() });
                }
            }
        }
    }
}
