use super::*;
use proptest::prelude::*;

fn ok(line: &str) -> Command {
    parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn err(line: &str) -> UsageError {
    parse(line).expect_err(line)
}

#[test]
fn declare_with_type_and_quoted_title() {
    assert_eq!(
        ok(r#"/dr declare sev1 data "orders table wiped""#),
        Command::Declare {
            severity: "sev1".into(),
            incident_type: Some("data".into()),
            title: "orders table wiped".into(),
            services: vec![],
            since: None
        }
    );
    assert_eq!(
        ok("/DR DECLARE SEV2 orders slow"),
        Command::Declare {
            severity: "sev2".into(),
            incident_type: None,
            title: "orders slow".into(),
            services: vec![],
            since: None
        }
    );
    assert_eq!(
        ok("declare sev1 combined “curly quoted”"),
        Command::Declare {
            severity: "sev1".into(),
            incident_type: Some("combined".into()),
            title: "curly quoted".into(),
            services: vec![],
            since: None
        }
    );
}

#[test]
fn multiword_verbs_and_options() {
    assert_eq!(
        ok("/dr infra restore backup=nightly-20260208020000 namespaces=a,b"),
        Command::InfraRestore {
            backup: BackupChoice::Named("nightly-20260208020000".into()),
            namespaces: vec!["a".into(), "b".into()]
        }
    );
    assert_eq!(
        ok("/dr infra restore"),
        Command::InfraRestore {
            backup: BackupChoice::Latest,
            namespaces: vec![]
        }
    );
    assert_eq!(
        ok("/dr restore latest --cluster orders"),
        Command::RestoreLatest {
            cluster: Some("orders".into())
        }
    );
    assert_eq!(
        ok("/dr timeline export CSV"),
        Command::TimelineExport(ExportFormat::Csv)
    );
    assert_eq!(ok("/dr timeline"), Command::Timeline);
}

#[test]
fn pitr_timestamp_forms() {
    let want = parse_timestamp("2026-02-08T09:55:00Z").unwrap();
    for line in [
        "/dr pitr 2026-02-08T09:55Z",
        "/dr pitr 2026-02-08 09:55 UTC",
        "/dr pitr \"2026-02-08 09:55 UTC\"",
        "/dr pitr 2026-02-08T10:55+01:00",
    ] {
        match ok(line) {
            Command::Pitr { target, cluster } => {
                assert_eq!(target.resolve(None), want.resolve(None), "{line}");
                assert_eq!(cluster, None);
            }
            other => panic!("{other:?}"),
        }
    }
    match ok("/dr pitr 2026-02-08 09:55 cluster=orders") {
        Command::Pitr { target, cluster } => {
            assert!(matches!(target, TimeInput::Naive(_)));
            assert_eq!(cluster.as_deref(), Some("orders"));
        }
        other => panic!("{other:?}"),
    }
    match ok("/dr note at=2026-02-08 09:41 UTC saw errors spike") {
        Command::Note { text, at } => {
            assert_eq!(text, "saw errors spike");
            assert!(matches!(at, Some(TimeInput::Zoned(_))));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mentions_in_each_platform_form() {
    for (line, id) in [
        ("/dr role comms <@U024BE7LH>", "U024BE7LH"),
        ("/dr role comms <@U024BE7LH|bob>", "U024BE7LH"),
        (
            "/dr role db-lead <@!80351110224678912>",
            "80351110224678912",
        ),
        ("/dr role IC @alice", "alice"),
    ] {
        match ok(line) {
            Command::Role { user, .. } => assert_eq!(user, id),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn problems_are_named() {
    assert!(
        err("/dr frobnicate")
            .problem
            .contains("unknown command `frobnicate`")
    );
    assert!(err("/dr").problem.contains("no command"));
    let e = err("/dr declare sev9 data x");
    assert!(
        e.problem.contains("sev9") && e.usage.starts_with("/dr declare"),
        "{e}"
    );
    let e = err("/dr pitr yesterday");
    assert!(e.problem.contains("not a timestamp"), "{e}");
    let e = err("/dr pitr");
    assert!(e.problem.contains("missing <timestamp>"), "{e}");
    let e = err("/dr role comms bob");
    assert!(e.problem.contains("mention"), "{e}");
    let e = err("/dr restore latest clustr=orders");
    assert!(e.problem.contains("unknown option `clustr`"), "{e}");
    let e = err("/dr status now");
    assert!(e.problem.contains("unexpected `now`"), "{e}");
    let e = err("/dr declare sev1 \"unclosed");
    assert!(e.problem.contains("unclosed quote"), "{e}");
    assert!(err(&"x".repeat(MAX_INPUT + 1)).problem.contains("too long"));
    let e = err("/dr na 9.5");
    assert!(e.problem.contains("missing <reason>"), "{e}");
}

#[test]
fn help_is_derived_from_the_grammar() {
    let all = grammar::help(None);
    for spec in grammar::VERBS {
        assert!(all.contains(&spec.usage()), "{}", spec.name());
    }
    assert!(grammar::help(Some("pitr")).contains("/dr pitr <timestamp> [cluster=<cluster>]"));
    assert!(grammar::help(Some("drill")).contains("/dr drill latest"));
    assert!(grammar::help(Some("nope")).starts_with("No verb `nope`"));
}

#[test]
fn every_verb_parses_from_its_own_usage_example() {
    let examples = [
        "declare sev1 data x",
        "severity sev2",
        "type infra",
        "role ic @a",
        "status",
        "path",
        "impact user-api",
        "freeze",
        "unfreeze",
        "backups",
        "infra restore",
        "restore latest",
        "pitr 2026-01-01T00:00Z",
        "check 9.1.1",
        "uncheck 9.1.1",
        "na 9.5 no metrics stack",
        "checklist",
        "verify",
        "update all good",
        "comms draft initial",
        "comms edit C1 we are on it",
        "comms publish C1",
        "note hello",
        "page dr-lead db is gone",
        "page resolve dr-lead",
        "oncall",
        "followup rotate the backup keys @dana due=2026-12-31",
        "followup none duplicate of INC-1",
        "followups",
        "escalate unclear",
        "resume",
        "timeline export md",
        "timeline",
        "resolve",
        "drill latest",
        "drill pitr 2026-01-01T00:00Z",
        "drills",
        "tabletop start q1.yaml",
        "tabletop end",
        "confirm P1",
        "cancel P1",
        "help",
    ];
    assert_eq!(examples.len(), grammar::VERBS.len());
    for (example, spec) in examples.iter().zip(grammar::VERBS) {
        assert_eq!(ok(example).verb(), spec.name());
    }
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/dr".to_string()),
        proptest::sample::select(
            grammar::VERBS
                .iter()
                .flat_map(|v| v.words.iter().copied())
                .collect::<Vec<_>>()
        )
        .prop_map(str::to_string),
        Just("sev1".to_string()),
        Just("data".to_string()),
        Just("2026-02-08T09:55Z".to_string()),
        Just("2026-02-08".to_string()),
        Just("09:55".to_string()),
        Just("UTC".to_string()),
        Just("cluster=".to_string()),
        Just("--at".to_string()),
        Just("backup=x".to_string()),
        Just("namespaces=,".to_string()),
        Just("<@U1>".to_string()),
        Just("\"".to_string()),
        Just("“".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ]
}

proptest! {
    // 100 000 generated inputs: the parser answers every one with a command or a usage error.
    #![proptest_config(ProptestConfig { cases: 50_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_command_shaped_input(words in proptest::collection::vec(word(), 0..8)) {
        let line = words.join(" ");
        match parse(&line) {
            Ok(cmd) => prop_assert!(!cmd.verb().is_empty()),
            Err(e) => prop_assert!(!e.problem.is_empty() && !e.usage.is_empty()),
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(line in "\\PC{0,64}") {
        let _ = parse(&line);
        let _ = parse_timestamp(&line);
    }
}

#[test]
fn declare_takes_services_and_since_and_impact_takes_a_list() {
    let Command::Declare {
        title,
        services,
        since,
        ..
    } = ok(
        r#"/dr declare sev1 data "orders wiped" services=user-api,blog since=2026-02-08T09:50Z"#,
    )
    else {
        panic!("not a declare")
    };
    assert_eq!(title, "orders wiped");
    assert_eq!(services, vec!["user-api".to_string(), "blog".to_string()]);
    assert!(since.is_some());
    assert_eq!(
        ok("/dr impact user-api, blog payment-api"),
        Command::Impact {
            services: vec!["user-api".into(), "blog".into(), "payment-api".into()]
        }
    );
    assert!(
        crate::command::parse("/dr impact")
            .unwrap_err()
            .to_string()
            .contains("Usage: /dr impact")
    );
}
