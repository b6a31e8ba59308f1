//! `/dr` commands: the grammar ([`grammar`]), the parser, and the typed [`Command`].

pub mod comms;
pub mod grammar;
pub mod timestamp;

pub use comms::{CommsCommand, Stage};
use grammar::{ArgKind, ArgSpec, OptSpec, VERBS, VerbSpec};
pub use timestamp::{TimeInput, parse_timestamp};

/// Longest accepted command line; longer input is refused before parsing.
pub const MAX_INPUT: usize = 4000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Ic,
    DrLead,
    Comms,
    DbLead,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Ic, Role::DrLead, Role::Comms, Role::DbLead];
    pub fn id(self) -> &'static str {
        match self {
            Role::Ic => "ic",
            Role::DrLead => "dr-lead",
            Role::Comms => "comms",
            Role::DbLead => "db-lead",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Role::Ic => "Incident commander",
            Role::DrLead => "DR lead",
            Role::Comms => "Communications lead",
            Role::DbLead => "Database lead",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.id().eq_ignore_ascii_case(s))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Markdown,
    Json,
    Csv,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(ExportFormat::Markdown),
            "json" => Some(ExportFormat::Json),
            "csv" => Some(ExportFormat::Csv),
            _ => None,
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Markdown => "md",
            ExportFormat::Json => "json",
            ExportFormat::Csv => "csv",
        }
    }
}

/// Which Velero backup an infrastructure restore uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupChoice {
    Latest,
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Declare {
        severity: String,
        incident_type: Option<String>,
        title: String,
        /// `services=a,b`: affected services of the catalog.
        services: Vec<String>,
        /// `since=`: when things went bad.
        since: Option<TimeInput>,
    },
    /// `/dr impact a,b`: record affected services.
    Impact {
        services: Vec<String>,
    },
    Severity(String),
    Type(String),
    Role {
        role: Role,
        user: String,
    },
    Status,
    Path,
    Freeze {
        reason: Option<String>,
    },
    Unfreeze,
    Backups,
    InfraRestore {
        backup: BackupChoice,
        namespaces: Vec<String>,
    },
    RestoreLatest {
        cluster: Option<String>,
    },
    Pitr {
        target: TimeInput,
        cluster: Option<String>,
    },
    Check {
        item: String,
        note: Option<String>,
    },
    Uncheck {
        item: String,
    },
    NotApplicable {
        item: String,
        reason: String,
    },
    Checklist {
        section: Option<String>,
    },
    Verify {
        section: Option<String>,
    },
    Update {
        text: String,
    },
    Note {
        text: String,
        at: Option<TimeInput>,
    },
    Escalate {
        reason: String,
    },
    Resume,
    Timeline,
    TimelineExport(ExportFormat),
    Resolve,
    DrillLatest {
        cluster: Option<String>,
    },
    DrillPitr {
        target: TimeInput,
        cluster: Option<String>,
    },
    /// SOP §10.1: the quarterly drills per database cluster (any channel).
    Drills,
    TabletopStart {
        file: String,
    },
    TabletopEnd,
    Confirm {
        id: String,
    },
    Cancel {
        id: String,
    },
    Help {
        verb: Option<String>,
    },
    /// `/dr comms draft|edit|publish` (customer communication, `crate::features::comms`).
    Comms(CommsCommand),
    /// `/dr page <target> [message]`
    Page {
        target: String,
        message: Option<String>,
    },
    /// `/dr page resolve <target>`
    PageResolve {
        target: String,
    },
    /// `/dr oncall [target]`
    Oncall {
        target: Option<String>,
    },
    /// `/dr followup <text> [@owner] [due=YYYY-MM-DD]`
    Followup {
        text: String,
        owner: Option<String>,
        due: Option<chrono::NaiveDate>,
    },
    /// `/dr followup none <reason>`
    FollowupWaive {
        reason: String,
    },
    Followups,
}

impl Command {
    /// Commands that only read state and never write an event.
    pub fn is_query(&self) -> bool {
        matches!(
            self,
            Command::Status
                | Command::Path
                | Command::Checklist { .. }
                | Command::Timeline
                | Command::TimelineExport(_)
                | Command::Help { .. }
                | Command::Backups
                | Command::Drills
                | Command::Oncall { .. }
                | Command::Followups
        )
    }

    pub fn verb(&self) -> &'static str {
        match self {
            Command::Declare { .. } => "declare",
            Command::Impact { .. } => "impact",
            Command::Severity(_) => "severity",
            Command::Type(_) => "type",
            Command::Role { .. } => "role",
            Command::Status => "status",
            Command::Path => "path",
            Command::Freeze { .. } => "freeze",
            Command::Unfreeze => "unfreeze",
            Command::Backups => "backups",
            Command::InfraRestore { .. } => "infra restore",
            Command::RestoreLatest { .. } => "restore latest",
            Command::Pitr { .. } => "pitr",
            Command::Check { .. } => "check",
            Command::Uncheck { .. } => "uncheck",
            Command::NotApplicable { .. } => "na",
            Command::Checklist { .. } => "checklist",
            Command::Verify { .. } => "verify",
            Command::Update { .. } => "update",
            Command::Note { .. } => "note",
            Command::Escalate { .. } => "escalate",
            Command::Resume => "resume",
            Command::Timeline => "timeline",
            Command::TimelineExport(_) => "timeline export",
            Command::Resolve => "resolve",
            Command::DrillLatest { .. } => "drill latest",
            Command::DrillPitr { .. } => "drill pitr",
            Command::Drills => "drills",
            Command::TabletopStart { .. } => "tabletop start",
            Command::TabletopEnd => "tabletop end",
            Command::Confirm { .. } => "confirm",
            Command::Cancel { .. } => "cancel",
            Command::Help { .. } => "help",
            Command::Comms(c) => c.verb(),
            Command::Page { .. } => "page",
            Command::PageResolve { .. } => "page resolve",
            Command::Oncall { .. } => "oncall",
            Command::Followup { .. } => "followup",
            Command::FollowupWaive { .. } => "followup none",
            Command::Followups => "followups",
        }
    }
}

/// Why a line is not a command; the message names the problem and shows the usage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}\nUsage: {usage}")]
pub struct UsageError {
    pub problem: String,
    pub usage: String,
}

impl UsageError {
    fn new(problem: impl Into<String>, verb: Option<&VerbSpec>) -> UsageError {
        UsageError {
            problem: problem.into(),
            usage: verb.map_or_else(
                || "/dr <verb> …  (try `/dr help`)".to_string(),
                |v| v.usage(),
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    quoted: bool,
}

/// Split on whitespace, honouring "double", 'single' and “curly” quotes (chat clients
/// replace straight quotes with curly ones).
fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let close = match c {
            '"' => Some('"'),
            '\'' => Some('\''),
            '“' => Some('”'),
            '‘' => Some('’'),
            _ => None,
        };
        if let Some(close) = close {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some(ch) if ch == close || (close == '”' && ch == '"') => break,
                    Some(ch) => text.push(ch),
                    None => return Err(format!("unclosed quote {c}")),
                }
            }
            tokens.push(Token { text, quoted: true });
        } else {
            let mut text = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                text.push(ch);
                chars.next();
            }
            tokens.push(Token {
                text,
                quoted: false,
            });
        }
    }
    Ok(tokens)
}

#[derive(Debug, Default)]
struct Parsed {
    args: Vec<(&'static str, Value)>,
    options: Vec<(&'static str, Value)>,
}

#[derive(Debug, Clone)]
enum Value {
    Word(String),
    Text(String),
    Time(TimeInput),
    List(Vec<String>),
}

impl Parsed {
    fn arg(&self, name: &str) -> Option<&Value> {
        self.args.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
    fn opt(&self, key: &str) -> Option<&Value> {
        self.options.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    fn word(&self, name: &str) -> Option<String> {
        match self.arg(name).or_else(|| self.opt(name)) {
            Some(Value::Word(w) | Value::Text(w)) => Some(w.clone()),
            _ => None,
        }
    }
    fn time(&self, name: &str) -> Option<TimeInput> {
        match self.arg(name).or_else(|| self.opt(name)) {
            Some(Value::Time(t)) => Some(*t),
            _ => None,
        }
    }
    fn list(&self, name: &str) -> Vec<String> {
        match self.opt(name) {
            Some(Value::List(l)) => l.clone(),
            _ => Vec::new(),
        }
    }
}

/// Parse a command line. Accepts it with or without the leading `/dr`.
pub fn parse(input: &str) -> Result<Command, UsageError> {
    if input.len() > MAX_INPUT {
        return Err(UsageError::new(
            format!(
                "command is too long ({} bytes, at most {MAX_INPUT})",
                input.len()
            ),
            None,
        ));
    }
    let mut tokens = tokenize(input.trim()).map_err(|e| UsageError::new(e, None))?;
    if tokens
        .first()
        .is_some_and(|t| !t.quoted && t.text.eq_ignore_ascii_case("/dr"))
    {
        tokens.remove(0);
    }
    if tokens.is_empty() {
        return Err(UsageError::new("no command given", None));
    }
    let spec = match_verb(&tokens).ok_or_else(|| {
        UsageError::new(
            format!(
                "unknown command `{}`; `/dr help` lists them",
                tokens[0].text
            ),
            None,
        )
    })?;
    let parsed = parse_args(spec, &tokens[spec.words.len()..])?;
    build(spec, parsed)
}

fn match_verb(tokens: &[Token]) -> Option<&'static VerbSpec> {
    VERBS
        .iter()
        .filter(|v| {
            v.words.len() <= tokens.len()
                && v.words
                    .iter()
                    .zip(tokens)
                    .all(|(w, t)| !t.quoted && w.eq_ignore_ascii_case(&t.text))
        })
        .max_by_key(|v| v.words.len())
}

fn parse_args(spec: &'static VerbSpec, tokens: &[Token]) -> Result<Parsed, UsageError> {
    let fail = |problem: String| UsageError::new(problem, Some(spec));
    let mut parsed = Parsed::default();
    let mut rest: Vec<&Token> = Vec::with_capacity(tokens.len());
    // Options first: `key=value` or `--key value` for keys this verb declares.
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if let Some((opt, value, used)) = take_option(spec, tokens, i).map_err(fail)? {
            if parsed.opt(opt.key).is_some() {
                return Err(fail(format!("option {}= given twice", opt.key)));
            }
            parsed.options.push((opt.key, value));
            i += used;
        } else {
            rest.push(t);
            i += 1;
        }
    }
    let mut pos = 0;
    for arg in spec.args {
        match take_arg(arg, &rest[pos..]).map_err(fail)? {
            Some((value, used)) => {
                parsed.args.push((arg.name, value));
                pos += used;
            }
            None if arg.required => {
                return Err(fail(format!("missing <{}>: {}", arg.name, arg.help)));
            }
            None => {}
        }
    }
    if let Some(extra) = rest.get(pos) {
        let problem = match extra.text.split_once('=') {
            Some((k, _)) if !extra.quoted => {
                let keys: Vec<&str> = spec.options.iter().map(|o| o.key).collect();
                if keys.is_empty() {
                    format!("`{}` takes no options", spec.name())
                } else {
                    format!("unknown option `{k}` (known: {})", keys.join(", "))
                }
            }
            _ => format!("unexpected `{}`", extra.text),
        };
        return Err(fail(problem));
    }
    Ok(parsed)
}

type OptionMatch = (&'static OptSpec, Value, usize);

/// Recognise `key=value` or `--key value` at `tokens[i]` for a key this verb declares.
/// Returns the option, its value and how many tokens it used.
fn take_option(
    spec: &'static VerbSpec,
    tokens: &[Token],
    i: usize,
) -> Result<Option<OptionMatch>, String> {
    let t = &tokens[i];
    if t.quoted {
        return Ok(None);
    }
    let (key, inline) = match t.text.strip_prefix("--") {
        Some(flag) => match flag.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (flag, None),
        },
        None => match t.text.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => return Ok(None),
        },
    };
    let Some(opt) = spec
        .options
        .iter()
        .find(|o| o.key.eq_ignore_ascii_case(key))
    else {
        return Ok(None);
    };
    // Candidate words for the value; a timestamp may span up to three.
    let (mut words, first_following) = match inline {
        Some(v) if !v.is_empty() => (vec![v.to_string()], i + 1),
        _ => (Vec::new(), i + 1),
    };
    let already = words.len();
    words.extend(
        tokens[first_following..]
            .iter()
            .take(3 - already)
            .map(|t| t.text.clone()),
    );
    if words.is_empty() {
        return Err(format!("option {}= needs a value", opt.key));
    }
    let max = if opt.kind == ArgKind::Timestamp {
        words.len()
    } else {
        1
    };
    for take in (2..=max).rev() {
        if let Ok(v) = option_value(opt, &words[..take].join(" ")) {
            return Ok(Some((opt, v, 1 + take - already)));
        }
    }
    option_value(opt, &words[0]).map(|v| Some((opt, v, 2 - already)))
}

fn option_value(opt: &OptSpec, text: &str) -> Result<Value, String> {
    value_of(opt.kind, text).map_err(|why| format!("option {}=: {why}", opt.key))
}

fn value_of(kind: ArgKind, text: &str) -> Result<Value, String> {
    match kind {
        ArgKind::Enum(values) => values
            .iter()
            .find(|v| v.eq_ignore_ascii_case(text))
            .map(|v| Value::Word(v.to_string()))
            .ok_or_else(|| format!("`{text}` is not one of {}", values.join(", "))),
        ArgKind::Timestamp => parse_timestamp(text).map(Value::Time).ok_or_else(|| {
            format!(
                "`{text}` is not a timestamp; use 2026-02-08T09:55Z, 2026-02-08T10:55+01:00 or 2026-02-08 09:55 UTC"
            )
        }),
        ArgKind::User => parse_mention(text)
            .map(Value::Word)
            .ok_or_else(|| format!("`{text}` is not a user mention (@name)")),
        ArgKind::Word | ArgKind::Text => {
            if text.is_empty() {
                Err("empty value".into())
            } else {
                Ok(Value::Word(text.to_string()))
            }
        }
        ArgKind::Date => chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map(|_| Value::Word(text.trim().to_string()))
            .map_err(|_| format!("`{text}` is not a date; give it as YYYY-MM-DD, e.g. 2026-12-31")),
        ArgKind::List => {
            let items: Vec<String> = text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if items.is_empty() {
                Err("empty list".into())
            } else {
                Ok(Value::List(items))
            }
        }
    }
}

/// `<@U123>`, `<@U123|name>` (Slack), `<@123>` / `<@!123>` (Discord), `@name` (console).
pub fn parse_mention(text: &str) -> Option<String> {
    let id = if let Some(inner) = text.strip_prefix("<@").and_then(|s| s.strip_suffix('>')) {
        let inner = inner.strip_prefix('!').unwrap_or(inner);
        inner.split('|').next().unwrap_or(inner)
    } else {
        text.strip_prefix('@')?
    };
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    valid.then(|| id.to_string())
}

fn take_arg(arg: &ArgSpec, rest: &[&Token]) -> Result<Option<(Value, usize)>, String> {
    let Some(first) = rest.first() else {
        return Ok(None);
    };
    match arg.kind {
        ArgKind::Text => {
            let text = rest
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let text = text.trim().to_string();
            if text.is_empty() {
                return Ok(None);
            }
            Ok(Some((Value::Text(text), rest.len())))
        }
        ArgKind::Timestamp => {
            for take in (1..=rest.len().min(3)).rev() {
                let text = rest[..take]
                    .iter()
                    .map(|t| t.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                if let Some(t) = parse_timestamp(&text) {
                    return Ok(Some((Value::Time(t), take)));
                }
            }
            value_of(arg.kind, &first.text).map(|v| Some((v, 1)))
        }
        ArgKind::Enum(_) if !arg.required => {
            // An optional enum is skipped when the word is not one of its values.
            Ok(value_of(arg.kind, &first.text).ok().map(|v| (v, 1)))
        }
        kind => value_of(kind, &first.text)
            .map(|v| Some((v, 1)))
            .map_err(|e| format!("<{}>: {e}", arg.name)),
    }
}

fn build(spec: &'static VerbSpec, p: Parsed) -> Result<Command, UsageError> {
    let word = |n: &str| p.word(n).unwrap_or_default();
    let lower = |n: &str| word(n).to_ascii_lowercase();
    let cmd = match spec.name().as_str() {
        "declare" => Command::Declare {
            severity: lower("severity"),
            incident_type: p.word("type").map(|t| t.to_ascii_lowercase()),
            title: word("title"),
            services: p.list("services"),
            since: p.time("since"),
        },
        "impact" => Command::Impact {
            services: split_names(&word("services")),
        },
        "severity" => Command::Severity(lower("severity")),
        "type" => Command::Type(lower("type")),
        "role" => Command::Role {
            role: Role::parse(&word("role"))
                .ok_or_else(|| UsageError::new("bad role", Some(spec)))?,
            user: word("user"),
        },
        "status" => Command::Status,
        "path" => Command::Path,
        "freeze" => Command::Freeze {
            reason: p.word("reason"),
        },
        "unfreeze" => Command::Unfreeze,
        "backups" => Command::Backups,
        "infra restore" => Command::InfraRestore {
            backup: match p.word("backup") {
                None => BackupChoice::Latest,
                Some(b) if b.eq_ignore_ascii_case("latest") => BackupChoice::Latest,
                Some(b) => BackupChoice::Named(b),
            },
            namespaces: p.list("namespaces"),
        },
        "restore latest" => Command::RestoreLatest {
            cluster: p.word("cluster"),
        },
        "pitr" => Command::Pitr {
            target: p.time("timestamp").expect("required by grammar"),
            cluster: p.word("cluster"),
        },
        "check" => Command::Check {
            item: word("item"),
            note: p.word("note"),
        },
        "uncheck" => Command::Uncheck { item: word("item") },
        "na" => Command::NotApplicable {
            item: word("item"),
            reason: word("reason"),
        },
        "checklist" => Command::Checklist {
            section: p.word("section"),
        },
        "verify" => Command::Verify {
            section: p.word("section"),
        },
        "update" => Command::Update { text: word("text") },
        "note" => Command::Note {
            text: word("text"),
            at: p.time("at"),
        },
        "escalate" => Command::Escalate {
            reason: word("reason"),
        },
        "resume" => Command::Resume,
        "timeline" => Command::Timeline,
        "timeline export" => Command::TimelineExport(
            ExportFormat::parse(&word("format"))
                .ok_or_else(|| UsageError::new("bad format", Some(spec)))?,
        ),
        "resolve" => Command::Resolve,
        "drill latest" => Command::DrillLatest {
            cluster: p.word("cluster"),
        },
        "drill pitr" => Command::DrillPitr {
            target: p.time("timestamp").expect("required by grammar"),
            cluster: p.word("cluster"),
        },
        "drills" => Command::Drills,
        "tabletop start" => Command::TabletopStart { file: word("file") },
        "tabletop end" => Command::TabletopEnd,
        "confirm" => Command::Confirm { id: word("id") },
        "cancel" => Command::Cancel { id: word("id") },
        "help" => Command::Help {
            verb: p.word("verb"),
        },
        "comms draft" => Command::Comms(CommsCommand::Draft(
            Stage::parse(&word("stage")).ok_or_else(|| UsageError::new("bad stage", Some(spec)))?,
        )),
        "comms edit" => Command::Comms(CommsCommand::Edit {
            id: word("id"),
            text: word("text"),
        }),
        "comms publish" => Command::Comms(CommsCommand::Publish { id: word("id") }),
        "page" => Command::Page {
            target: lower("target"),
            message: p.word("message"),
        },
        "page resolve" => Command::PageResolve {
            target: lower("target"),
        },
        "oncall" => Command::Oncall {
            target: p.word("target").map(|t| t.to_ascii_lowercase()),
        },
        "followup" => followup(spec, &word("text"), p.word("due"))?,
        "followup none" => Command::FollowupWaive {
            reason: word("reason"),
        },
        "followups" => Command::Followups,
        other => {
            return Err(UsageError::new(
                format!("`{other}` is not implemented"),
                Some(spec),
            ));
        }
    };
    Ok(cmd)
}

/// `/dr followup`: a trailing mention names the owner (the grammar checked `due=`).
fn followup(
    spec: &'static VerbSpec,
    text: &str,
    due: Option<String>,
) -> Result<Command, UsageError> {
    let due = due.and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
    let (text, owner) = match text.rsplit_once(char::is_whitespace) {
        Some((rest, last)) if parse_mention(last).is_some() && !rest.trim().is_empty() => {
            (rest.trim().to_string(), Some(last.to_string()))
        }
        _ => (text.trim().to_string(), None),
    };
    if parse_mention(&text).is_some() {
        return Err(UsageError::new(
            "say what must be done before naming the owner",
            Some(spec),
        ));
    }
    Ok(Command::Followup { text, owner, due })
}

/// Split `a,b c` into names.
pub fn split_names(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests;
