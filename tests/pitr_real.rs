//! The PITR window against real PostgreSQL 15: real WAL from a throwaway cluster, archived,
//! laid out in the S3 stand-in as wal-g leaves it, read by drbot's offsite code, and recovered
//! from by PostgreSQL itself (tests/support/pg_wal.rs). Skips without the binaries unless
//! `DRBOT_REQUIRE_PG_BINARIES` is set, as `.ci/run` does.
//!
//! PostgreSQL's rule, from `src/backend/access/transam/xlogrecovery.c` (REL_15, 15.18):
//! - only a COMMIT/ABORT record (or a restore point) can stop recovery at a target time
//!   (`recoveryStopsBefore`, 2510-2650; `getRecordTimestamp`, 2363-2386, reads the record's
//!   `xact_time`);
//! - with `recovery_target_inclusive` (default on) it stops before the first such record with
//!   `xact_time > recovery_target_time` (2622-2626) and logs "recovery stopping before commit
//!   of transaction %u, time %s" (2640);
//! - when the WAL ends first, `PerformWalRecovery` logs "last completed transaction was at log
//!   time %s" (1839) and then FATAL "recovery ended before configured recovery target was
//!   reached" (1855-1859).
//!
//! So the last archived commit's time C is a target that cannot be reached: every target
//! t < C recovers (stopping before C's commit), t >= C ends in FATAL. drbot's window must end
//! at C and refuse targets at or after it.

mod support;

use chrono::{DateTime, Duration, Utc};
use drbot::cluster::offsite::Offsite;
use drbot::cluster::walg;
use support::Drbot;
use support::k8s_api::K8sApi;
use support::pg_wal::{self, Archive, Outcome};
use support::recovery;
use support::s3::S3Server;

const BUCKET: &str = "dr-offsite";
const PREFIX: &str = "sgbackups.stackgres.io/db/orders/2026-12-01-00-00-00/15";
const FATAL_NOT_REACHED: &str =
    "FATAL:  recovery ended before configured recovery target was reached";

fn archive() -> Option<std::sync::Arc<Archive>> {
    tokio::task::block_in_place(pg_wal::shared_archive)
}

async fn uploaded(archive: &Archive) -> (S3Server, Offsite) {
    let s3 = S3Server::start().await;
    s3.create_bucket(BUCKET);
    s3.set_versioning(BUCKET, Some("Enabled"));
    pg_wal::upload_walg(&s3, BUCKET, PREFIX, archive);
    let mut settings = s3.settings(BUCKET);
    settings.clusters = vec![format!("orders={PREFIX}")];
    let offsite = Offsite::new(&settings).expect("offsite");
    (s3, offsite)
}

/// The time between the last commit and the last segment's upload, where drbot's old window
/// end lay: targets there pass an upload-time check and then fail in PostgreSQL.
fn between_last_commit_and_upload(archive: &Archive) -> DateTime<Utc> {
    let c = archive.last_commit().at;
    c + (archive.last_upload() - c) / 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_archive_in_walg_layout_reads_as_one_window_from_the_base_backup() {
    let Some(archive) = archive() else { return };
    let (_s3, offsite) = uploaded(&archive).await;
    let window = offsite.window("orders").await.expect("window");

    assert_eq!(
        window.oldest_backup,
        format!("base_{}", archive.backup.start_segment)
    );
    assert_eq!(window.start, archive.backup.finished, "{window:?}");
    assert_eq!(window.last_segment.to_string(), archive.last_segment);
    assert!(window.gaps.is_empty(), "{window:?}");
    assert_eq!(window.complete_backups, 1);
    // The archive is what the tests need: the last segment went up clearly after the last
    // commit, and every commit came after the base backup.
    assert!(
        archive.last_upload() - archive.last_commit().at >= Duration::seconds(1),
        "{:?} vs {:?}",
        archive.last_upload(),
        archive.last_commit()
    );
    assert!(archive.commits[0].at > archive.backup.finished);
    // Just before the last commit is inside the window, today and after the change.
    let just_before = archive.last_commit().at - Duration::microseconds(1);
    walg::check_target(&window, just_before).expect("just before the last commit");
}

/// WAITS FOR the walg.rs change that reads commit records from the archived WAL (issue 22,
/// deliver 3). Today `Window::end` is the last segment's LastModified, seconds after the last
/// commit, and targets in between are accepted: this test fails until that change is merged.
/// `Window::end` is a full-precision `DateTime<Utc>` and a commit record's `xact_time` is in
/// microseconds, so the end is compared exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_ends_at_the_last_archived_commit_not_at_the_upload() {
    let Some(archive) = archive() else { return };
    let (_s3, offsite) = uploaded(&archive).await;
    let window = offsite.window("orders").await.expect("window");
    let last = archive.last_commit().at;

    let just_before = last - Duration::microseconds(1);
    walg::check_target(&window, just_before).expect("just before the last commit");
    // The message names the last commit's time, to the second at least.
    let named = last.format("%Y-%m-%dT%H:%M:%S").to_string();
    for target in [last, between_last_commit_and_upload(&archive)] {
        let refused = walg::check_target(&window, target)
            .expect_err("a target at or after the last archived commit cannot be reached");
        assert!(refused.contains(&named), "{named}: {refused}");
    }
    assert_eq!(
        window.end,
        last,
        "the window ends at the last archived commit ({last:?}), not at the last upload ({:?})",
        archive.last_upload()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_recovery_to_just_before_the_last_commit_stops_before_it() {
    let Some(archive) = archive() else { return };
    let (s3, _offsite) = uploaded(&archive).await;
    // restore_command reads WAL fetched back from the S3 copy and decompressed, as
    // `wal-g wal-fetch` would: the recovery proves the uploaded layout, not just the local copy.
    let wal = pg_wal::fetch_wal(&s3, BUCKET, PREFIX, &archive).await;
    let last = archive.last_commit();
    let target = last.at - Duration::microseconds(1);

    let recovery = tokio::task::block_in_place(|| pg_wal::recover(&archive, &wal, target));
    let log = recovery.server.log_text();
    assert!(
        matches!(recovery.outcome, Outcome::Promoted),
        "{:?}\n{log}",
        recovery.outcome
    );
    let stopping = format!(
        "recovery stopping before commit of transaction {}, time {}",
        last.xid,
        pg_wal::pg_logged_time(last.at)
    );
    assert!(log.contains(&stopping), "{stopping}\n{log}");
    let rows = tokio::task::block_in_place(|| {
        recovery
            .server
            .query("SELECT string_agg(n::text, ',' ORDER BY n) FROM pitr")
    })
    .expect("query the recovered cluster");
    assert_eq!(
        rows, "1,2",
        "rows 1 and 2 recovered, row 3 (the last commit) not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_recovery_at_or_after_the_last_commit_ends_in_fatal() {
    let Some(archive) = archive() else { return };
    let (s3, _offsite) = uploaded(&archive).await;
    let wal = pg_wal::fetch_wal(&s3, BUCKET, PREFIX, &archive).await;
    let last = archive.last_commit();
    let logged_last = format!(
        "last completed transaction was at log time {}",
        pg_wal::pg_logged_time(last.at)
    );
    // At the last commit (inclusive: nothing later stops it), and between it and the upload
    // time drbot used to take as the end. Both recoveries at once: they share nothing.
    let targets = [last.at, between_last_commit_and_upload(&archive)];
    let recoveries = tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            let handles: Vec<_> = targets
                .iter()
                .map(|&t| {
                    let (archive, wal) = (&archive, &wal);
                    s.spawn(move || pg_wal::recover(archive, wal, t))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("recovery thread"))
                .collect::<Vec<_>>()
        })
    });
    for (target, recovery) in targets.iter().zip(&recoveries) {
        let log = recovery.server.log_text();
        match &recovery.outcome {
            Outcome::Fatal(line) => assert!(line.contains(FATAL_NOT_REACHED), "{target}: {log}"),
            other => panic!("{target}: {other:?}\n{log}"),
        }
        // PostgreSQL's own word on the archive's last commit: the one the test recorded.
        assert!(log.contains(&logged_last), "{logged_last}\n{log}");
    }
}

/// orders' SGBackup for the real base backup, as StackGres records a wal-g backup.
fn real_sgbackup(archive: &Archive) -> serde_json::Value {
    let b = &archive.backup;
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::json!({
        "apiVersion": "stackgres.io/v1",
        "kind": "SGBackup",
        "metadata": {"name": "orders-real", "namespace": "db"},
        "spec": {"sgCluster": "orders", "managedLifecycle": true},
        "status": {
            "internalName": format!("base_{}", b.start_segment),
            "backupPath": recovery::ORDERS_PREFIX,
            "process": {
                "status": "Completed",
                "timing": {"start": at(b.started), "end": at(b.finished), "stored": at(b.finished)},
            },
            "backupInformation": {"postgresVersion": "150000", "timeline": "1"},
        },
    })
}

/// `/dr pitr` end to end through the console, the Kubernetes stand-in and the real archive in
/// S3, with whole-second targets around the last commit (the archive puts a whole second
/// between the last two commits). Accepted just before it (PostgreSQL recovers there, see
/// above); refused after it, naming its time. WAITS FOR the same walg.rs change as
/// `window_ends_at_the_last_archived_commit_not_at_the_upload`: today the refused target lies
/// before the last upload and is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dr_pitr_refuses_after_the_last_archived_commit_and_accepts_just_before() {
    let Some(archive) = archive() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let api = K8sApi::start();
    recovery::seed_cluster(&api, None);
    api.put(real_sgbackup(&archive));
    api.spawn_stackgres_pods();
    let s3 = S3Server::start().await;
    s3.create_bucket(recovery::BUCKET);
    s3.set_versioning(recovery::BUCKET, Some("Enabled"));
    pg_wal::upload_walg(&s3, recovery::BUCKET, recovery::ORDERS_PREFIX, &archive);
    let kubeconfig = recovery::write_kubeconfig(dir.path(), &api.url(), true);
    let env = recovery::kubernetes_env(&kubeconfig, &s3);

    let last = archive.last_commit().at;
    let (before, after) = pg_wal::whole_seconds_around(last);
    assert!(before > archive.commits[1].at && after < archive.last_upload());
    let secs = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let now = secs(Utc::now() + Duration::seconds(1));

    let mut bot = Drbot::console_with(dir.path(), &env, &now, "alice");
    bot.ask("/dr declare sev2 data orders wiped", "DISASTER DECLARED");
    let refused = bot.say(&format!("/dr pitr {}", secs(after)));
    assert!(!refused.contains("/dr confirm P1"), "{refused}");
    let named = last.format("%Y-%m-%dT%H:%M:%S").to_string();
    assert!(
        refused.contains(&named),
        "names the last commit {named}: {refused}"
    );

    let preview = bot.ask(
        &format!("/dr pitr {}", secs(before)),
        "Confirm with `/dr confirm P1`",
    );
    let restore_to = format!("restoreToTimestamp: \"{}\"", secs(before));
    for expected in [restore_to.as_str(), "name: orders-real"] {
        assert!(preview.contains(expected), "{expected}: {preview}");
    }
    bot.finish();
}
