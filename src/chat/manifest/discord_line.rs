//! Discord interaction → text line: the options of a `/dr` interaction rebuilt as the line
//! [`parse`](crate::command::parse) reads, quoted so the tokenizer gives every value back.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::discord::{Entry, SUB_COMMAND, SUB_COMMAND_GROUP, layout, option_type};
use crate::command::MAX_INPUT;
use crate::command::grammar::{ArgKind, VERBS, VerbSpec};

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
            if crate::command::parse_mention(&mention).as_deref() != Some(value) {
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
        ArgKind::Enum(_) | ArgKind::Timestamp | ArgKind::Word | ArgKind::Date => word_token(value)
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

#[cfg(test)]
mod tests;
