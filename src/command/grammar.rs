//! The one definition of the `/dr` grammar. The parser, `/dr help`, and (later) the Slack and
//! Discord command definitions are all derived from [`VERBS`].

/// The type of a positional argument or option value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// One of a fixed set of words (case-insensitive).
    Enum(&'static [&'static str]),
    /// A point in time (spec §3); may span up to three words (`2026-02-08 09:55 UTC`).
    Timestamp,
    /// A user mention in the platform's native form, or `@name` in the console.
    User,
    /// A single word (an id, a name).
    Word,
    /// Everything that remains, quotes allowed.
    Text,
    /// Comma-separated words.
    List,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
}

#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: ArgKind,
    pub required: bool,
    pub help: &'static str,
}

/// A `key=value` (or `--key value`) option.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    pub key: &'static str,
    pub kind: ArgKind,
    pub help: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct VerbSpec {
    /// The words that name the verb: `["infra", "restore"]`.
    pub words: &'static [&'static str],
    pub summary: &'static str,
    pub args: &'static [ArgSpec],
    pub options: &'static [OptSpec],
}

pub const SEVERITIES: &[&str] = &["sev1", "sev2", "sev3", "sev4"];
pub const INCIDENT_TYPES: &[&str] = &["infra", "data", "combined"];
pub const ROLES: &[&str] = &["ic", "dr-lead", "comms", "db-lead"];
pub const EXPORT_FORMATS: &[&str] = &["md", "json", "csv"];

const fn req(name: &'static str, kind: ArgKind, help: &'static str) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        required: true,
        help,
    }
}
const fn opt(name: &'static str, kind: ArgKind, help: &'static str) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        required: false,
        help,
    }
}
const fn key(key: &'static str, kind: ArgKind, help: &'static str) -> OptSpec {
    OptSpec { key, kind, help }
}

const CLUSTER: OptSpec = key("cluster", ArgKind::Word, "StackGres cluster to restore");

pub static VERBS: &[VerbSpec] = &[
    VerbSpec {
        words: &["declare"],
        summary: "open an incident in this channel; you become incident commander",
        args: &[
            req("severity", ArgKind::Enum(SEVERITIES), "severity"),
            opt(
                "type",
                ArgKind::Enum(INCIDENT_TYPES),
                "incident type (SOP §4)",
            ),
            opt("title", ArgKind::Text, "what happened"),
        ],
        options: &[
            key(
                "services",
                ArgKind::List,
                "affected services of the catalog (dependencies followed)",
            ),
            key(
                "since",
                ArgKind::Timestamp,
                "when things went bad, if earlier",
            ),
        ],
    },
    VerbSpec {
        words: &["severity"],
        summary: "re-grade the incident",
        args: &[req("severity", ArgKind::Enum(SEVERITIES), "new severity")],
        options: &[],
    },
    VerbSpec {
        words: &["type"],
        summary: "classify the incident; selects the recovery path (SOP §4–8)",
        args: &[req("type", ArgKind::Enum(INCIDENT_TYPES), "incident type")],
        options: &[],
    },
    VerbSpec {
        words: &["role"],
        summary: "assign a role",
        args: &[
            req("role", ArgKind::Enum(ROLES), "role"),
            req("user", ArgKind::User, "who takes it"),
        ],
        options: &[],
    },
    VerbSpec {
        words: &["status"],
        summary: "severity, type, phase, roles, freeze, operations, checklist, next update",
        args: &[],
        options: &[],
    },
    VerbSpec {
        words: &["path"],
        summary: "the recovery path for this incident type, step by step",
        args: &[],
        options: &[],
    },
    VerbSpec {
        words: &["impact"],
        summary: "record affected services of the catalog; their dependants are added too",
        args: &[req(
            "services",
            ArgKind::Text,
            "services or dependencies, comma-separated",
        )],
        options: &[],
    },
    VerbSpec {
        words: &["freeze"],
        summary: "stop automatic deployments on the configured targets (preview first)",
        args: &[opt("reason", ArgKind::Text, "why")],
        options: &[],
    },
    VerbSpec {
        words: &["unfreeze"],
        summary: "restore the deployment state recorded at freeze (preview first)",
        args: &[],
        options: &[],
    },
    VerbSpec {
        words: &["backups"],
        summary: "offsite backup preflight: Velero backups, base backups, WAL, PITR window",
        args: &[],
        options: &[],
    },
    VerbSpec {
        words: &["infra", "restore"],
        summary: "Velero restore of Kubernetes objects (SOP §6.3)",
        args: &[],
        options: &[
            key("backup", ArgKind::Word, "Velero backup name, or latest"),
            key(
                "namespaces",
                ArgKind::List,
                "namespaces to restore (default: all)",
            ),
        ],
    },
    VerbSpec {
        words: &["restore", "latest"],
        summary: "restore the latest good backup into a new StackGres cluster (SOP §7)",
        args: &[],
        options: &[CLUSTER],
    },
    VerbSpec {
        words: &["pitr"],
        summary: "point-in-time recovery into a new StackGres cluster (SOP §8)",
        args: &[req(
            "timestamp",
            ArgKind::Timestamp,
            "recovery target, with zone",
        )],
        options: &[CLUSTER],
    },
    VerbSpec {
        words: &["check"],
        summary: "tick a step or checklist item",
        args: &[
            req("item", ArgKind::Word, "item id, e.g. 9.1.1"),
            opt("note", ArgKind::Text, "evidence or remark"),
        ],
        options: &[],
    },
    VerbSpec {
        words: &["uncheck"],
        summary: "untick a step or checklist item",
        args: &[req("item", ArgKind::Word, "item id")],
        options: &[],
    },
    VerbSpec {
        words: &["na"],
        summary: "mark an if-applicable item or section not applicable",
        args: &[
            req("item", ArgKind::Word, "item or section id"),
            req("reason", ArgKind::Text, "why it does not apply"),
        ],
        options: &[],
    },
    VerbSpec {
        words: &["checklist"],
        summary: "the post-recovery checklist (SOP §9) with state",
        args: &[opt("section", ArgKind::Word, "section id, e.g. 9.3")],
        options: &[],
    },
    VerbSpec {
        words: &["verify"],
        summary: "run the automatic checklist probes and tick what passes",
        args: &[opt("section", ArgKind::Word, "section id")],
        options: &[],
    },
    VerbSpec {
        words: &["update"],
        summary: "post a status update; resets the update clock",
        args: &[req("text", ArgKind::Text, "the update")],
        options: &[],
    },
    VerbSpec {
        words: &["comms", "draft"],
        summary: "compose customer text for the status page from the incident (guide templates)",
        args: &[req(
            "stage",
            ArgKind::Enum(super::Stage::WORDS),
            "which template",
        )],
        options: &[],
    },
    VerbSpec {
        words: &["comms", "edit"],
        summary: "communications lead: replace a draft's message with your own words",
        args: &[
            req("id", ArgKind::Word, "draft id, e.g. C1"),
            req("text", ArgKind::Text, "the message customers read"),
        ],
        options: &[],
    },
    VerbSpec {
        words: &["comms", "publish"],
        summary: "communications lead: send a draft to the status page",
        args: &[req("id", ArgKind::Word, "draft id, e.g. C1")],
        options: &[],
    },
    VerbSpec {
        words: &["note"],
        summary: "add a note to the timeline",
        args: &[req("text", ArgKind::Text, "the note")],
        options: &[key(
            "at",
            ArgKind::Timestamp,
            "when it happened, if earlier",
        )],
    },
    VerbSpec {
        words: &["page"],
        summary: "page a role or route through the paging provider (PagerDuty, Opsgenie)",
        args: &[
            req(
                "target",
                ArgKind::Word,
                "ic, dr-lead, comms, db-lead or a configured route",
            ),
            opt(
                "message",
                ArgKind::Text,
                "what the person paged should know",
            ),
        ],
        options: &[],
    },
    VerbSpec {
        words: &["page", "resolve"],
        summary: "resolve this incident's page to a target (a page sent by mistake)",
        args: &[req("target", ArgKind::Word, "the target paged")],
        options: &[],
    },
    VerbSpec {
        words: &["oncall"],
        summary: "who a page would wake now (PagerDuty on-call), before paging",
        args: &[opt(
            "target",
            ArgKind::Word,
            "a role or route; all when omitted",
        )],
        options: &[],
    },
    VerbSpec {
        words: &["followup"],
        summary: "file a follow-up action item in the tracker, linked to this incident (SOP 9.8.4)",
        args: &[req(
            "text",
            ArgKind::Text,
            "what must be done; end with @owner to name an owner",
        )],
        options: &[key("due", ArgKind::Date, "due date, YYYY-MM-DD")],
    },
    VerbSpec {
        words: &["followup", "none"],
        summary: "incident commander: record that this incident needs no follow-up, and why",
        args: &[req("reason", ArgKind::Text, "why no follow-up is needed")],
        options: &[],
    },
    VerbSpec {
        words: &["followups"],
        summary: "this incident's follow-ups with their tracker state",
        args: &[],
        options: &[],
    },
    VerbSpec {
        words: &["escalate"],
        summary: "STOP (SOP §12): halt every action until the IC resumes",
        args: &[req("reason", ArgKind::Text, "what is unclear")],
        options: &[],
    },
    VerbSpec {
        words: &["resume"],
        summary: "incident commander only: lift a halt",
        args: &[],
        options: &[],
    },
    VerbSpec {
        words: &["timeline", "export"],
        summary: "export the timeline as a file",
        args: &[req("format", ArgKind::Enum(EXPORT_FORMATS), "file format")],
        options: &[],
    },
    VerbSpec {
        words: &["timeline"],
        summary: "show the recent timeline",
        args: &[],
        options: &[],
    },
    VerbSpec {
        words: &["resolve"],
        summary: "resolve the incident (refused while required checks are open)",
        args: &[],
        options: &[],
    },
    VerbSpec {
        words: &["drill", "latest"],
        summary: "drill (SOP §10): restore the latest backup into the drill namespace",
        args: &[],
        options: &[CLUSTER],
    },
    VerbSpec {
        words: &["drill", "pitr"],
        summary: "drill (SOP §10): point-in-time restore into the drill namespace",
        args: &[req(
            "timestamp",
            ArgKind::Timestamp,
            "recovery target, with zone",
        )],
        options: &[CLUSTER],
    },
    VerbSpec {
        words: &["drills"],
        summary: "SOP §10.1 per database cluster: last drills, time to restore, this quarter's due",
        args: &[],
        options: &[],
    },
    VerbSpec {
        words: &["tabletop", "start"],
        summary: "play a tabletop exercise (the SRE guide's YAML) here as a DRILL incident",
        args: &[req(
            "file",
            ArgKind::Word,
            "exercise file, relative to the tabletop directory",
        )],
        options: &[],
    },
    VerbSpec {
        words: &["tabletop", "end"],
        summary: "end the tabletop exercise and post its summary",
        args: &[],
        options: &[],
    },
    VerbSpec {
        words: &["confirm"],
        summary: "confirm a pending launch preview",
        args: &[req("id", ArgKind::Word, "preview id, e.g. P1")],
        options: &[],
    },
    VerbSpec {
        words: &["cancel"],
        summary: "cancel a pending launch preview",
        args: &[req("id", ArgKind::Word, "preview id")],
        options: &[],
    },
    VerbSpec {
        words: &["help"],
        summary: "usage",
        args: &[opt("verb", ArgKind::Text, "a verb")],
        options: &[],
    },
];

impl VerbSpec {
    pub fn name(&self) -> String {
        self.words.join(" ")
    }

    /// `/dr pitr <timestamp> [cluster=<cluster>]`
    pub fn usage(&self) -> String {
        let mut s = format!("/dr {}", self.name());
        for a in self.args {
            let shape = match a.kind {
                ArgKind::Enum(values) => values.join("|"),
                ArgKind::Text => format!("{}…", a.name),
                _ => a.name.to_string(),
            };
            if a.required {
                s.push_str(&format!(" <{shape}>"));
            } else {
                s.push_str(&format!(" [{shape}]"));
            }
        }
        for o in self.options {
            s.push_str(&format!(" [{}=<{}>]", o.key, o.key));
        }
        s
    }
}

pub fn find_verb(words: &[&str]) -> Option<&'static VerbSpec> {
    VERBS.iter().find(|v| {
        v.words.len() == words.len()
            && v.words
                .iter()
                .zip(words)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    })
}

/// `/dr help` or `/dr help <verb>`.
pub fn help(verb: Option<&str>) -> String {
    if let Some(v) = verb {
        let words: Vec<&str> = v.split_whitespace().collect();
        let matches: Vec<&VerbSpec> = VERBS
            .iter()
            .filter(|spec| {
                words
                    .iter()
                    .zip(spec.words)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b))
                    && !words.is_empty()
                    && words.len() <= spec.words.len()
            })
            .collect();
        if matches.is_empty() {
            return format!("No verb `{v}`. {}", help(None));
        }
        let mut out = String::new();
        for spec in matches {
            out.push_str(&format!("{}\n  {}\n", spec.usage(), spec.summary));
            for a in spec.args {
                out.push_str(&format!("  {}: {}\n", a.name, a.help));
            }
            for o in spec.options {
                out.push_str(&format!("  {}=: {}\n", o.key, o.help));
            }
        }
        return out.trim_end().to_string();
    }
    let mut out = String::from("drbot runs the DR SOP from this channel. Commands:\n");
    for spec in VERBS {
        out.push_str(&format!("{:<58} {}\n", spec.usage(), spec.summary));
    }
    out.push_str("Timestamps: 2026-02-08T09:55Z, 2026-02-08T10:55+01:00, 2026-02-08 09:55 UTC");
    out
}
