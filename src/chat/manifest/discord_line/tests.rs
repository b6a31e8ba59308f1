use super::*;
use crate::chat::manifest::discord::{STRING, USER, discord_commands, discord_path};
use crate::command::{Command, parse};
use proptest::prelude::*;
use serde_json::json;

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
        ArgKind::Date => ("2026-12-31", "2026-12-31"),
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
        "restore pitr",
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
