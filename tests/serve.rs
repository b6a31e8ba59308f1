//! The `drbot serve` binary: comes up ready, stops cleanly on SIGTERM, keeps what it
//! acknowledged; `drbot commands check` guards `commands/`.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::bot::{SLACK_SECRET, SLACK_TOKEN};
use support::http::{self, free_port};
use support::slack_api::SlackApi;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let api = SlackApi::start(SLACK_TOKEN);
    let port = free_port();
    let mut child = support::command(dir.path())
        .arg("serve")
        .env("DRBOT__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("DRBOT__SLACK__SIGNING_SECRET", SLACK_SECRET)
        .env("DRBOT__SLACK__BOT_TOKEN", SLACK_TOKEN)
        .env("DRBOT__SLACK__API_URL", api.base())
        .env("DRBOT__SLACK__OPERATORS", "U1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn drbot serve");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match http::send("GET", &format!("{base}/readyz"), &[], Vec::new()).await {
            Ok(r) if r.status == 200 => break,
            _ => {
                assert!(tokio::time::Instant::now() < deadline, "never became ready");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let body = http::slack_command_body(
        "declare sev2 data orders wiped",
        "C1",
        "U1",
        &http::slack_trigger_id(),
        &api.response_url("cmd"),
    );
    let headers = http::slack_signed_headers(SLACK_SECRET, http::unix_now(), &body);
    let resp = http::post(&format!("{base}/slack/commands"), &headers, body).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    api.wait_for(
        |calls| calls.iter().any(|c| c.method == "chat.postMessage"),
        Duration::from_secs(30),
    )
    .await
    .expect("announcement posted");

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "drbot serve exited with {status}");

    let export = support::command(dir.path())
        .args(["timeline", "export", "INC-1", "--format", "json"])
        .output()
        .unwrap();
    assert!(export.status.success());
    let json: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    assert_eq!(json["incident"]["severity"], "sev2", "{json}");
}

#[test]
fn commands_check_passes_on_the_checked_in_files_and_fails_on_an_edit() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ok = support::command(root)
        .args(["commands", "check"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("commands");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(root.join("commands")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let manifest = copy.join("slack-app-manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replacen("/slack/commands", "/slack/cmds", 1),
    )
    .unwrap();
    let drift = support::command(dir.path())
        .args(["commands", "check"])
        .output()
        .unwrap();
    assert!(!drift.status.success());
    let stderr = String::from_utf8_lossy(&drift.stderr);
    assert!(stderr.contains("slack-app-manifest.json"), "{stderr}");
    assert!(stderr.contains("/slack/cmds"), "{stderr}");
}
