//! `drbot doctor` through the binary: it passes on the embedded defaults; against the
//! stand-ins (Slack, Discord, the Kubernetes API enforcing the chart's RBAC, the offsite
//! bucket) it passes when everything is in place and names each cause when it is not.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use drbot::config::{Settings, WebSettings};
use drbot::doctor::Check;
use drbot::server::web;
use serde_json::Value;
use support::bot::{Bot, DISCORD_TOKEN, SLACK_TOKEN, t0};
use support::discord_api::DiscordApi;
use support::http::{DISCORD_APPLICATION_ID, DISCORD_GUILD_ID};
use support::k8s_api::K8sApi;
use support::rbac::Authorizer;
use support::recovery::{
    STORAGE_SECRET, kubernetes_env, offsite_bucket, seed_cluster, write_kubeconfig,
};
use support::slack_api::SlackApi;

/// `drbot doctor` with `env`: (exit code, stdout).
fn doctor(dir: &Path, env: &BTreeMap<String, String>, args: &[&str]) -> (i32, String) {
    let out = tokio::task::block_in_place(|| {
        support::command(dir)
            .envs(env)
            .arg("doctor")
            .args(args)
            .output()
            .expect("run drbot doctor")
    });
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn failed(report: &Value) -> Vec<(String, String, String)> {
    report
        .as_array()
        .expect("a JSON array")
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["detail"].as_str().unwrap_or_default().to_string(),
                c["fix"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_the_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = doctor(dir.path(), &BTreeMap::new(), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok   database: sqlite://"), "{out}");
    assert!(out.contains("ok   cluster: sandbox"), "{out}");
    assert!(out.ends_with("checks passed\n"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_an_unreachable_database_and_an_unknown_setting() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    // Nothing listens there any more.
    let env = BTreeMap::from([(
        "DRBOT__DATABASE__URL".to_string(),
        format!("postgres://drbot:hunter2@127.0.0.1:{port}/drbot"),
    )]);
    let (code, out) = doctor(dir.path(), &env, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "FAIL database: cannot connect to postgres://drbot@127.0.0.1:{port}/drbot"
        )),
        "{out}"
    );
    assert!(
        !out.contains("hunter2"),
        "the password is never shown: {out}"
    );
    assert!(out.contains("fix: check database.url"), "{out}");

    let env = BTreeMap::from([("DRBOT__HTTP__LISTN".to_string(), "0.0.0.0:1".to_string())]);
    let (code, out) = doctor(dir.path(), &env, &["--format", "json"]);
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let failed = failed(&report);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "settings");
    assert!(failed[0].1.contains("unknown field `listn`"), "{failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_against_the_standins_passes_then_names_each_cause() {
    let dir = tempfile::tempdir().unwrap();
    let slack = SlackApi::start(SLACK_TOKEN);
    let discord = DiscordApi::start(DISCORD_TOKEN, DISCORD_APPLICATION_ID);
    let api = K8sApi::start();
    seed_cluster(&api, None);
    let rbac = Arc::new(Authorizer::from_chart());
    api.enforce(rbac.clone());
    let s3 = offsite_bucket().await;
    let kubeconfig = write_kubeconfig(dir.path(), &api.url(), true);
    let mut env = kubernetes_env(&kubeconfig, &s3);
    for (k, v) in [
        ("DRBOT__KUBERNETES__DATABASE_NAMESPACES", "db".to_string()),
        ("DRBOT__SLACK__BOT_TOKEN", SLACK_TOKEN.to_string()),
        ("DRBOT__SLACK__API_URL", slack.base()),
        ("DRBOT__DISCORD__BOT_TOKEN", DISCORD_TOKEN.to_string()),
        (
            "DRBOT__DISCORD__APPLICATION_ID",
            DISCORD_APPLICATION_ID.to_string(),
        ),
        ("DRBOT__DISCORD__API_URL", discord.base()),
    ] {
        env.insert(k.to_string(), v);
    }
    let guild = ["--discord-guild", DISCORD_GUILD_ID, "--format", "json"];

    // Before /dr is registered, doctor says how to register it.
    let (code, out) = doctor(dir.path(), &env, &guild);
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        failed(&report),
        vec![(
            "discord /dr".to_string(),
            "/dr is not registered".to_string(),
            format!("run `drbot commands register-discord --guild {DISCORD_GUILD_ID}`")
        )]
    );

    let registered = tokio::task::block_in_place(|| {
        support::command(dir.path())
            .envs(&env)
            .args(["commands", "register-discord", "--guild", DISCORD_GUILD_ID])
            .status()
            .expect("register")
    });
    assert!(registered.success());
    let (code, out) = doctor(dir.path(), &env, &guild);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let names: Vec<&str> = report
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for expected in [
        "settings",
        "database",
        "migrations",
        "slack",
        "slack scopes",
        "discord",
        "discord /dr",
        "kubernetes",
        "custom resources",
        "permissions",
        "offsite",
        "offsite versioning",
        "PITR window orders",
        "drill storage secrets",
    ] {
        assert!(names.contains(&expected), "{expected}: {names:?}");
    }
    // Nothing was done: only reads and access reviews reached the API server; the only
    // objects read are the backups and, in the drill namespace, their storage Secret.
    assert!(
        api.requests().iter().all(|r| r.verb == "discovery"
            || r.resource == "selfsubjectaccessreviews"
            || (r.verb == "list" && r.resource == "sgbackups")
            || (r.verb == "get"
                && r.path == format!("/api/v1/namespaces/dr-drill/secrets/{STORAGE_SECRET}"))),
        "{:#?}",
        api.requests()
    );

    // A permission taken away, a scope missing: each is named with its fix.
    rbac.revoke("drbot-velero", "restores", "create");
    slack.set_scopes(&[
        "commands",
        "chat:write",
        "files:write",
        "channels:history",
        "groups:history",
        "usergroups:read",
    ]);
    let (code, out) = doctor(dir.path(), &env, &guild);
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let failed = failed(&report);
    assert_eq!(failed.len(), 2, "{failed:#?}");
    assert_eq!(failed[0].0, "slack scopes");
    assert!(failed[0].1.contains("pins:write"), "{failed:?}");
    assert_eq!(
        failed[1].0,
        "permission create restores.velero.io in velero"
    );
    assert!(
        failed[1]
            .2
            .contains("kubectl auth can-i create restores.velero.io -n velero"),
        "{failed:?}"
    );
    assert!(failed[1].2.contains("`velero` role"), "{failed:?}");

    // The drill namespace without the backups' storage Secret: named, with the copy.
    api.remove("secrets", "dr-drill", STORAGE_SECRET);
    let (code, out) = doctor(dir.path(), &env, &guild);
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let listed = self::failed(&report);
    let drill = listed
        .iter()
        .find(|f| f.0 == "drill storage secrets")
        .unwrap_or_else(|| panic!("{listed:#?}"));
    assert!(
        drill.1.contains(&format!(
            "Secret {STORAGE_SECRET} (object storage of SGBackup orders-20260207030000) is not in namespace dr-drill"
        )),
        "{drill:?}"
    );
    assert!(
        drill.1.contains(&format!(
            "kubectl get secret {STORAGE_SECRET} -n db -o json"
        )),
        "{drill:?}"
    );
}

/// The SRE guide's files are checked as drbot loads them at start: the catalog and the
/// cluster map load, the DR plan's overdue review fails with what to do, a file with a
/// mistake fails naming it, and a missing tabletop directory is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_guides_files_and_the_plan_review() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = |name: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/continuity")
            .join(name)
    };
    let plan = std::fs::read_to_string(fixture("disaster-recovery-plan.yaml")).unwrap();
    let current = dir.path().join("plan-current.yaml");
    std::fs::write(&current, plan.replace("2026-06-15", "2099-01-15")).unwrap();
    let mut env = BTreeMap::from([
        (
            "DRBOT__CONTINUITY__CATALOG".to_string(),
            fixture("business-impact-analysis.yaml")
                .display()
                .to_string(),
        ),
        (
            "DRBOT__CONTINUITY__PLAN".to_string(),
            current.display().to_string(),
        ),
        (
            "DRBOT__CONTINUITY__CLUSTERS__ORDERS".to_string(),
            "user-api".to_string(),
        ),
    ]);
    let (code, out) = doctor(dir.path(), &env, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok   service catalog: 4 services; 1 database cluster(s) mapped"),
        "{out}"
    );
    assert!(
        out.contains("ok   DR plan: DR plan next review: 2099-01-15"),
        "{out}"
    );

    // The guide's own plan was due for review on 2026-06-15.
    env.insert(
        "DRBOT__CONTINUITY__PLAN".to_string(),
        fixture("disaster-recovery-plan.yaml").display().to_string(),
    );
    env.insert(
        "DRBOT__TABLETOP__DIR".to_string(),
        "no-such-dir".to_string(),
    );
    let (code, out) = doctor(dir.path(), &env, &["--format", "json"]);
    assert_eq!(code, 1, "{out}");
    let failed = failed(&serde_json::from_str(&out).expect("JSON"));
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0].0, "DR plan");
    assert!(
        failed[0].1.contains("OVERDUE: it was due 2026-06-15"),
        "{failed:?}"
    );
    assert!(failed[0].2.contains("set next_review"), "{failed:?}");
    assert_eq!(failed[1].0, "tabletop");
    assert!(
        failed[1].1.contains("no-such-dir is not a directory"),
        "{failed:?}"
    );

    env.insert(
        "DRBOT__CONTINUITY__CLUSTERS__ORDERS".to_string(),
        "users-api".to_string(),
    );
    env.remove("DRBOT__TABLETOP__DIR");
    let (code, out) = doctor(dir.path(), &env, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL continuity: settings [continuity] clusters: orders = \"users-api\""),
        "{out}"
    );
}

const VIEWER_TOKEN: &str = "viewer-token-doctor-7c1e";
const COOKIE_KEY: &str = "cookie-key-doctor-0123456789abcdef0123";

/// `[web]` as the doctor is given it, on `listen`, for the checks settings loading does not
/// make (and, for a doctor handed settings some other way, those it does).
fn web_settings(listen: &str, auth: &str, f: impl FnOnce(&mut WebSettings)) -> WebSettings {
    let mut w = WebSettings {
        listen: Some(listen.to_string()),
        auth: auth.to_string(),
        ..WebSettings::default()
    };
    f(&mut w);
    w
}

fn named<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}: {checks:?}"))
}

/// Each unsafe or unusable `[web]` setting fails with its cause and what to do; the good
/// ones pass; tokens and the cookie key never appear in a line.
#[tokio::test]
async fn doctor_web_checks_name_each_unsafe_setting_and_its_fix() {
    assert!(
        drbot::doctor::web(&WebSettings::default()).await.is_empty(),
        "the web view is off: nothing to check"
    );
    let token = |w: &mut WebSettings| w.tokens = vec![VIEWER_TOKEN.to_string()];
    let proxy = |p: &str| {
        let p = p.to_string();
        move |w: &mut WebSettings| {
            w.proxy = vec![p];
            w.allow = vec!["@example.com".into()];
        }
    };
    // (settings, failing check, in its detail, in its fix)
    let failing: Vec<(WebSettings, &str, &str, &str)> = vec![
        (
            web_settings("localhost", "token", token),
            "web listen",
            "is not an address",
            "127.0.0.1:8081",
        ),
        (
            web_settings("0.0.0.0:0", "none", |_| {}),
            "web auth",
            "anyone who reaches it",
            "listen on 127.0.0.1",
        ),
        (
            web_settings("127.0.0.1:0", "basic", |_| {}),
            "web auth",
            "\"basic\" is not a mode",
            "\"token\"",
        ),
        (
            web_settings("0.0.0.0:0", "token", |_| {}),
            "web auth",
            "no viewer token",
            "DRBOT__WEB__TOKENS",
        ),
        (
            web_settings("0.0.0.0:0", "token", token),
            "web auth",
            "no web.cookie_key",
            "DRBOT__WEB__COOKIE_KEY",
        ),
        (
            web_settings("0.0.0.0:0", "token", |w| {
                token(w);
                w.cookie_key = Some("short-key".into());
            }),
            "web auth",
            "has 9 characters, fewer than 32",
            "openssl rand -hex 32",
        ),
        (
            web_settings("127.0.0.1:0", "proxy", |w| {
                w.allow = vec!["@example.com".into()]
            }),
            "web auth",
            "web.proxy is empty",
            "127.0.0.1",
        ),
        (
            web_settings("0.0.0.0:0", "proxy", proxy("proxy.local")),
            "web auth",
            "\"proxy.local\" is not an IP address",
            "not host names",
        ),
        (
            web_settings("127.0.0.1:0", "proxy", |w| {
                w.proxy = vec!["127.0.0.1".into()]
            }),
            "web auth",
            "web.allow is empty",
            "@domains",
        ),
        (
            web_settings("127.0.0.1:0", "proxy", proxy("10.0.0.5")),
            "web auth",
            "the proxy 10.0.0.5 is not on this host",
            "sidecar",
        ),
        (
            web_settings("127.0.0.1:0", "none", |w| {
                w.public_url = Some("drbot.example.com".into())
            }),
            "web public_url",
            "is not an http(s) URL",
            "https://",
        ),
    ];
    for (settings, name, detail, fix) in failing {
        let checks = drbot::doctor::web(&settings).await;
        let failed: Vec<&Check> = checks.iter().filter(|c| !c.ok).collect();
        assert_eq!(failed.len(), 1, "{checks:?}");
        assert_eq!(failed[0].name, name, "{checks:?}");
        assert!(failed[0].detail.contains(detail), "{checks:?}");
        let said = failed[0].fix.as_deref().unwrap_or_default();
        assert!(said.contains(fix), "{checks:?}");
        let shown = format!("{checks:?}");
        assert!(!shown.contains(VIEWER_TOKEN), "a token is shown: {shown}");
    }

    let good = [
        web_settings("127.0.0.1:0", "none", |_| {}),
        web_settings("0.0.0.0:0", "token", |w| {
            token(w);
            w.cookie_key = Some(COOKIE_KEY.into());
            w.public_url = Some("https://drbot-web.example.com".into());
        }),
        // The chart's sidecar: loopback listener, the header believed from loopback only.
        web_settings("127.0.0.1:0", "proxy", proxy("127.0.0.1")),
    ];
    for settings in good {
        let checks = drbot::doctor::web(&settings).await;
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        assert_eq!(checks.len(), 3, "{checks:?}");
        let shown = format!("{checks:?}");
        assert!(
            !shown.contains(VIEWER_TOKEN) && !shown.contains(COOKIE_KEY),
            "{shown}"
        );
    }
    let sidecar =
        drbot::doctor::web(&web_settings("127.0.0.1:0", "proxy", proxy("127.0.0.1"))).await;
    assert!(
        named(&sidecar, "web auth")
            .detail
            .contains("X-Forwarded-Email believed from 127.0.0.1 only; 1 allow entry"),
        "{sidecar:?}"
    );
    let plain = drbot::doctor::web(&web_settings("0.0.0.0:0", "token", |w| {
        token(w);
        w.cookie_key = Some(COOKIE_KEY.into());
        w.public_url = Some("http://drbot-web.example.com".into());
    }))
    .await;
    assert!(
        named(&plain, "web public_url")
            .detail
            .contains("not Secure"),
        "{plain:?}"
    );
}

/// Through the binary: the web address taken by something else fails with what to do; taken
/// by a running drbot web view (doctor beside the server) it passes; `auth = "none"` off
/// loopback is refused at load with the fix. No token or key reaches the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_web_listener_beside_a_running_web_view() {
    let dir = tempfile::tempdir().unwrap();
    let env_for = |listen: &str| {
        BTreeMap::from([
            ("DRBOT__WEB__LISTEN".to_string(), listen.to_string()),
            ("DRBOT__WEB__TOKENS".to_string(), VIEWER_TOKEN.to_string()),
            ("DRBOT__WEB__COOKIE_KEY".to_string(), COOKIE_KEY.to_string()),
        ])
    };

    // A port nobody holds: bindable.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let (code, out) = doctor(dir.path(), &env_for(&free.to_string()), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("ok   web listen: {free} can be bound")),
        "{out}"
    );
    assert!(
        out.contains("ok   web auth: token: 1 viewer token(s)"),
        "{out}"
    );

    // Something that is not drbot holds it.
    let squatter = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let taken = squatter.local_addr().unwrap();
    let squat = tokio::spawn(async move {
        // Accept and hang up, as a process speaking something else would.
        while let Ok((conn, _)) = squatter.accept().await {
            drop(conn);
        }
    });
    let (code, out) = doctor(
        dir.path(),
        &env_for(&taken.to_string()),
        &["--format", "json"],
    );
    assert_eq!(code, 1, "{out}");
    let failed = failed(&serde_json::from_str(&out).expect("JSON"));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "web listen");
    assert!(
        failed[0]
            .1
            .contains(&format!("{taken} is in use by another process")),
        "{failed:?}"
    );
    assert!(failed[0].2.contains("choose another port"), "{failed:?}");
    squat.abort();

    // drbot's own web view holds it: the doctor run beside the server.
    let bot_dir = tempfile::tempdir().unwrap();
    let bot = Bot::start(
        bot_dir.path(),
        &[("DRBOT__WEB__AUTH", "none".to_string())],
        t0(),
    )
    .await;
    let settings = Settings::load_from(None, Some(bot.env.clone())).expect("settings");
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = web::start(
        bot.running.server.app.clone(),
        &settings,
        &settings.web,
        socket,
    )
    .unwrap();
    let (code, out) = doctor(dir.path(), &env_for(&running.addr.to_string()), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "ok   web listen: {} is in use by a running drbot web view (/healthz answers ok)",
            running.addr
        )),
        "{out}"
    );
    assert!(
        !out.contains(VIEWER_TOKEN) && !out.contains(COOKIE_KEY),
        "{out}"
    );
    running.stop().await.unwrap();

    // Settings drbot refuses at start: the settings line names the key and what to do.
    let env = BTreeMap::from([
        ("DRBOT__WEB__LISTEN".to_string(), "0.0.0.0:8081".to_string()),
        ("DRBOT__WEB__AUTH".to_string(), "none".to_string()),
    ]);
    let (code, out) = doctor(dir.path(), &env, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL settings: ") && out.contains("accepted only on a loopback address"),
        "{out}"
    );
    assert!(out.contains("fix: "), "{out}");
}
