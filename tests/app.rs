//! The engine as a library: two processes (two `App`s) on one database see each other's
//! changes, although each remembers folded incidents between commands.

mod support;

use drbot::clock::ManualClock;
use support::engine::{alice, sqlite_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_incident_catches_up_with_another_writer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new("2026-02-08T10:00:00Z".parse().unwrap());
    let first = sqlite_app(dir.path(), &clock, &[]).await;
    let second = sqlite_app(dir.path(), &clock, &[]).await;
    first
        .handle("#ops", &alice(), "/dr declare sev3 data orders wiped")
        .await
        .unwrap();
    // `first` now remembers INC-1 folded at its declaration.
    let status = first.handle("#ops", &alice(), "/dr status").await.unwrap();
    assert!(status.text().contains("SEV3"), "{}", status.text());

    second
        .handle("#ops", &alice(), "/dr severity sev1")
        .await
        .unwrap();
    second
        .handle("#ops", &alice(), "/dr role comms @carol")
        .await
        .unwrap();

    let status = first.handle("#ops", &alice(), "/dr status").await.unwrap();
    assert!(status.text().contains("SEV1"), "{}", status.text());
    assert!(
        status.text().contains("comms: <@carol>"),
        "{}",
        status.text()
    );
    // And `first` appends after `second`'s events, not over them.
    first
        .handle("#ops", &alice(), "/dr note seen by both")
        .await
        .unwrap();
    let timeline = second
        .handle("#ops", &alice(), "/dr timeline")
        .await
        .unwrap();
    assert!(
        timeline.text().contains("seen by both"),
        "{}",
        timeline.text()
    );
}
