//! Offsite checks against a real S3 API: an in-process S3-compatible server on loopback,
//! seeded with WAL-G and Velero layouts whose LastModified times the tests choose.

mod support;

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use drbot::cluster::ClusterError;
use drbot::cluster::offsite::{Offsite, VersioningStatus};
use drbot::cluster::walg::{self, SegmentName, SwitchSource};
use drbot::config::Settings;
use support::s3::{BackupSpec, HistorySpec, S3Server, SECRET_KEY, WalRun, WalgLayout};

const BUCKET: &str = "dr-offsite";
const ORDERS: &str = "sgbackups.stackgres.io/db/orders/2026-01-05-10-00-00/16";
const BILLING: &str = "sgbackups.stackgres.io/db/billing/2026-01-05-10-00-00/16";
const INVENTORY: &str = "sgbackups.stackgres.io/db/inventory/2026-01-05-10-00-00/16";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

fn minutes(n: i64) -> Duration {
    Duration::minutes(n)
}

/// orders: base backup at segment 2 (finished minute 70), WAL 2..=0x14, segments 0x15 and
/// 0x16 lost, base backup at 0x17 (finished 310), WAL 0x17..=0x28 on timeline 1, then a
/// promotion in segment 0x29: timeline 2 from 0x29 to 0x32 (last upload minute 575).
fn orders_layout() -> WalgLayout {
    WalgLayout {
        backups: vec![
            BackupSpec {
                start: "000000010000000000000002",
                started: at(60),
                finished: at(70),
                complete: true,
            },
            BackupSpec {
                start: "000000010000000000000017",
                started: at(300),
                finished: at(310),
                complete: true,
            },
            // Tonight's, still running: no sentinel.
            BackupSpec {
                start: "000000020000000000000031",
                started: at(560),
                finished: at(600),
                complete: false,
            },
        ],
        wal: vec![
            WalRun {
                timeline: 1,
                first_segno: 2,
                count: 19,
                first_upload: at(65),
                every: minutes(10),
            },
            WalRun {
                timeline: 1,
                first_segno: 0x17,
                count: 18,
                first_upload: at(305),
                every: minutes(10),
            },
            WalRun {
                timeline: 2,
                first_segno: 0x29,
                count: 10,
                first_upload: at(485),
                every: minutes(10),
            },
        ],
        partials: vec![("000000010000000000000029".into(), at(480))],
        histories: vec![HistorySpec {
            timeline: 2,
            content: "1\t0/29000A28\tno recovery target specified\n".into(),
            uploaded: at(481),
            compressed: false,
        }],
        ..WalgLayout::default()
    }
}

/// billing: one backup, a promotion whose history file is lz4-compressed like WAL-G stores it.
fn billing_layout() -> WalgLayout {
    WalgLayout {
        backups: vec![BackupSpec {
            start: "000000010000000000000002",
            started: at(60),
            finished: at(70),
            complete: true,
        }],
        wal: vec![
            WalRun {
                timeline: 1,
                first_segno: 2,
                count: 9,
                first_upload: at(65),
                every: minutes(10),
            },
            WalRun {
                timeline: 2,
                first_segno: 11,
                count: 5,
                first_upload: at(160),
                every: minutes(10),
            },
        ],
        partials: vec![("00000001000000000000000B".into(), at(155))],
        histories: vec![HistorySpec {
            timeline: 2,
            content: "1\t0/B000060\tno recovery target specified\n".into(),
            uploaded: at(156),
            compressed: true,
        }],
        ..WalgLayout::default()
    }
}

fn settings(server: &S3Server, clusters: &[(&str, &str)]) -> drbot::config::OffsiteSettings {
    let mut s = server.settings(BUCKET);
    s.clusters = clusters.iter().map(|(n, p)| format!("{n}={p}")).collect();
    s
}

async fn seeded() -> (S3Server, Offsite) {
    let server = S3Server::start().await;
    server.create_bucket(BUCKET);
    server.set_versioning(BUCKET, Some("Enabled"));
    server.seed_walg(BUCKET, ORDERS, &orders_layout());
    server.seed_walg(BUCKET, BILLING, &billing_layout());
    for (name, phase, done) in [
        ("daily-20260228020000", "Completed", at(-1320)),
        ("daily-20260301020000", "Completed", at(120)),
        ("manual-20260301080000", "PartiallyFailed", at(480)),
    ] {
        server.seed_velero(BUCKET, "velero/", name, phase, done);
    }
    let mut s = settings(&server, &[("orders", ORDERS), ("billing", BILLING)]);
    s.velero_prefix = "velero".into();
    let offsite = Offsite::new(&s).unwrap();
    (server, offsite)
}

#[tokio::test]
async fn versioning_enabled_suspended_and_never_enabled_are_told_apart() {
    let server = S3Server::start().await;
    for b in ["dr-on", "dr-suspended", "dr-off"] {
        server.create_bucket(b);
    }
    // Through the S3 API, as an operator would.
    let client = server.client();
    for (bucket, status) in [
        ("dr-on", aws_sdk_s3::types::BucketVersioningStatus::Enabled),
        (
            "dr-suspended",
            aws_sdk_s3::types::BucketVersioningStatus::Suspended,
        ),
    ] {
        client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(status)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let status = |bucket: &str| {
        let offsite = Offsite::new(&server.settings(bucket)).unwrap();
        async move { offsite.versioning().await.unwrap() }
    };
    assert_eq!(status("dr-on").await, VersioningStatus::Enabled);
    assert_eq!(status("dr-suspended").await, VersioningStatus::Suspended);
    assert_eq!(status("dr-off").await, VersioningStatus::Off);

    let report = Offsite::new(&server.settings("dr-off"))
        .unwrap()
        .report()
        .await;
    assert!(
        report.lines[0].contains("versioning never enabled") && report.lines[0].contains("WARNING"),
        "{:?}",
        report.lines
    );
    let report = Offsite::new(&server.settings("dr-on"))
        .unwrap()
        .report()
        .await;
    assert!(
        report.lines[0].ends_with("reachable, versioning Enabled"),
        "{:?}",
        report.lines
    );
    // Empty bucket: no Velero backup is a failed preflight.
    assert!(!report.ok);
}

#[tokio::test]
async fn velero_backups_are_listed_newest_first_with_their_state() {
    let (server, offsite) = seeded().await;
    // One whose metadata was damaged, one that never got its tarball.
    server.put(
        BUCKET,
        "velero/backups/manual-broken/velero-backup.json",
        b"{\"kind\":",
        at(500),
    );
    server.put(
        BUCKET,
        "velero/backups/manual-broken/manual-broken-logs.gz",
        &support::s3::gzip(b"log"),
        at(500),
    );
    server.seed_velero(
        BUCKET,
        "velero/",
        "daily-20260227020000",
        "Completed",
        at(-2760),
    );
    server.remove(
        BUCKET,
        "velero/backups/daily-20260227020000/daily-20260227020000.tar.gz",
    );

    let backups = offsite.velero_backups().await.unwrap();
    let names: Vec<&str> = backups.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "manual-broken",
            "manual-20260301080000",
            "daily-20260301020000",
            "daily-20260228020000",
            "daily-20260227020000"
        ]
    );
    let by_name: HashMap<&str, _> = backups.iter().map(|b| (b.name.as_str(), b)).collect();
    let broken = by_name["manual-broken"];
    assert!(!broken.readable);
    assert!(broken.problem.as_deref().unwrap().contains("not JSON"));
    let partial = by_name["manual-20260301080000"];
    assert!(partial.readable && !partial.completed());
    assert_eq!(partial.phase.as_deref(), Some("PartiallyFailed"));
    let daily = by_name["daily-20260301020000"];
    assert!(daily.completed());
    assert_eq!(daily.completed_at, Some(at(120)));
    assert_eq!(daily.last_modified, Some(at(120) + Duration::seconds(1)));
    assert!(daily.tarball.unwrap() > 0);
    assert!(!by_name["daily-20260227020000"].completed());

    let report = offsite.report().await;
    let text = report.lines.join("\n");
    assert!(
        text.contains(
            "Velero: 5 backups in s3://dr-offsite/velero/backups/ (2 Completed), newest Completed daily-20260301020000 at 2026-03-01T02:00:00Z"
        ),
        "{text}"
    );
    assert!(text.contains("Velero: manual-broken unreadable"), "{text}");
    assert!(
        text.contains("Velero: manual-20260301080000 PartiallyFailed"),
        "{text}"
    );
    assert!(
        text.contains("daily-20260301020000.tar.gz: gzip header OK"),
        "{text}"
    );
}

#[tokio::test]
async fn the_window_is_what_the_bucket_really_holds() {
    let (_server, offsite) = seeded().await;
    let w = offsite.window("orders").await.unwrap();
    assert_eq!(w.start, at(70));
    assert_eq!(w.oldest_backup, "base_000000010000000000000002");
    assert_eq!(w.last_segment.to_string(), "000000020000000000000032");
    // The last commit archived (30 s before that segment's upload), read from the WAL.
    assert_eq!(w.end, at(485 + 90) - Duration::seconds(30));
    assert_eq!(
        w.last_commit.segment.to_string(),
        "000000020000000000000032"
    );
    assert_eq!(w.complete_backups, 2);
    assert_eq!(w.gaps.len(), 1, "{:?}", w.gaps);
    let gap = &w.gaps[0];
    assert_eq!(gap.first_missing.to_string(), "000000010000000000000015");
    assert_eq!(gap.last_missing.to_string(), "000000010000000000000016");
    assert_eq!(gap.recoverable_until, at(65 + 180) - Duration::seconds(30));
    assert_eq!(
        gap.resumes_at,
        Some(("base_000000010000000000000017".to_string(), at(310)))
    );
    assert_eq!(w.recovery_window().start, at(70));

    let e = offsite.window("payments").await.unwrap_err();
    assert!(
        matches!(&e, ClusterError::Invalid(m) if m.contains("orders, billing")),
        "{e}"
    );
}

#[tokio::test]
async fn a_target_before_the_oldest_backups_finish_is_refused() {
    let (_server, offsite) = seeded().await;
    let w = offsite.window("orders").await.unwrap();
    // The backup was running then: not a consistent point.
    let e = walg::check_target(&w, at(65)).unwrap_err();
    assert!(e.contains("before the recoverable window"), "{e}");
    assert!(
        e.contains("base_000000010000000000000002 finished at 2026-03-01T01:10:00Z"),
        "{e}"
    );
    assert!(
        e.contains("2026-03-01T01:10:00Z … 2026-03-01T09:34:30Z"),
        "{e}"
    );
    assert!(walg::check_target(&w, at(70)).is_ok());
}

#[tokio::test]
async fn a_target_inside_a_wal_gap_is_refused() {
    let (_server, offsite) = seeded().await;
    let w = offsite.window("orders").await.unwrap();
    assert!(walg::check_target(&w, at(244)).is_ok());
    for minute in [245, 246, 280, 309] {
        let e = walg::check_target(&w, at(minute)).unwrap_err();
        assert!(e.contains("falls in a WAL gap"), "{e}");
        assert!(
            e.contains("000000010000000000000015 … 000000010000000000000016 are missing"),
            "{e}"
        );
        assert!(e.contains("base_000000010000000000000017 finished"), "{e}");
        assert!(e.contains("recoverable window"), "{e}");
    }
    // The next base backup restarts coverage.
    assert!(walg::check_target(&w, at(310)).is_ok());
}

#[tokio::test]
async fn a_target_after_the_last_archived_commit_is_refused_naming_it() {
    let (_server, offsite) = seeded().await;
    let w = offsite.window("orders").await.unwrap();
    let last = at(575) - Duration::seconds(30);
    assert!(walg::check_target(&w, last - Duration::seconds(1)).is_ok());
    // Between the last commit and the segment's upload: PostgreSQL would find no commit after
    // the target and stop with FATAL.
    for target in [last, last + Duration::seconds(10), at(575)] {
        let e = walg::check_target(&w, target).unwrap_err();
        assert!(
            e.contains("at or after the end of the recoverable window"),
            "{e}"
        );
        assert!(
            e.contains("the last archived commit is at 2026-03-01T09:34:30Z"),
            "{e}"
        );
        assert!(e.contains("000000020000000000000032"), "{e}");
    }
}

#[tokio::test]
async fn a_quiet_tail_ends_the_window_at_the_last_segment_with_a_commit() {
    let server = S3Server::start().await;
    server.create_bucket(BUCKET);
    let mut layout = orders_layout();
    // The last three segments on timeline 2 hold no commit (checkpoints, a quiet database);
    // the one before has two commits, the last at 08:59:59.250.
    layout.quiet = vec![
        "000000020000000000000030".into(),
        "000000020000000000000031".into(),
        "000000020000000000000032".into(),
    ];
    let last = at(539) + Duration::milliseconds(59_250);
    layout.commits = vec![("00000002000000000000002F".into(), vec![at(530), last])];
    server.seed_walg(BUCKET, ORDERS, &layout);
    let offsite = Offsite::new(&settings(&server, &[("orders", ORDERS)])).unwrap();
    let w = offsite.window("orders").await.unwrap();
    assert_eq!(w.end, last);
    assert_eq!(
        w.last_commit.segment.to_string(),
        "00000002000000000000002F"
    );
    assert_eq!(w.last_segment.to_string(), "000000020000000000000032");
    let e = walg::check_target(&w, at(560)).unwrap_err();
    assert!(
        e.contains("the last archived commit is at 2026-03-01T08:59:59.250000Z"),
        "{e}"
    );
    assert!(walg::check_target(&w, at(539)).is_ok());
}

#[tokio::test]
async fn every_wal_g_compression_is_read() {
    for ext in ["lz4", "zst", "br", "lzma"] {
        let server = S3Server::start().await;
        server.create_bucket(BUCKET);
        // Two segments: each codec compresses 16 MiB per segment, slowly when unoptimised.
        let layout = WalgLayout {
            compression: ext,
            backups: vec![BackupSpec {
                start: "000000010000000000000002",
                started: at(60),
                finished: at(70),
                complete: true,
            }],
            wal: vec![WalRun {
                timeline: 1,
                first_segno: 2,
                count: 2,
                first_upload: at(65),
                every: minutes(10),
            }],
            ..WalgLayout::default()
        };
        server.seed_walg(BUCKET, BILLING, &layout);
        let offsite = Offsite::new(&settings(&server, &[("billing", BILLING)])).unwrap();
        let w = offsite.window("billing").await.unwrap();
        assert_eq!(w.end, at(75) - Duration::seconds(30), "{ext}");
        assert_eq!(w.last_commit.segment, SegmentName::new(1, 3), "{ext}");
    }
}

#[tokio::test]
async fn a_young_hole_at_the_tail_is_still_uploading() {
    let server = S3Server::start().await;
    server.create_bucket(BUCKET);
    let mut layout = billing_layout();
    // Segments 0x11 and 0x12 on timeline 2 arrived before 0x10: wal-g's parallel uploads.
    layout.wal.push(WalRun {
        timeline: 2,
        first_segno: 0x11,
        count: 2,
        first_upload: at(216),
        every: minutes(1),
    });
    server.seed_walg(BUCKET, BILLING, &layout);
    let clock = drbot::clock::ManualClock::new(at(219));
    let offsite = Offsite::new(&settings(&server, &[("billing", BILLING)]))
        .unwrap()
        .with_clock(std::sync::Arc::new(clock.clone()));
    let w = offsite.window("billing").await.unwrap();
    assert_eq!(w.end, at(200) - Duration::seconds(30));
    assert!(w.gaps[0].still_uploading, "{:?}", w.gaps);
    let report = offsite.report().await.lines.join("\n");
    assert!(
        report.contains("segment 000000020000000000000010 is missing but still uploading"),
        "{report}"
    );
    assert!(
        !report.contains("unusable until a new base backup"),
        "{report}"
    );
    // Still missing ten minutes later: lost.
    clock.advance(minutes(10));
    let w = offsite.window("billing").await.unwrap();
    assert!(!w.gaps[0].still_uploading);
    assert!(
        w.gaps[0]
            .describe()
            .contains("unusable until a new base backup")
    );
}

#[tokio::test]
async fn the_window_runs_across_a_timeline_switch() {
    let (_server, offsite) = seeded().await;
    let w = offsite.window("orders").await.unwrap();
    let chain: Vec<(u32, u64, SwitchSource)> = w
        .timelines
        .iter()
        .map(|t| (t.timeline, t.first, t.source))
        .collect();
    assert_eq!(
        chain,
        vec![
            (1, 0, SwitchSource::Root),
            (2, 0x29, SwitchSource::HistoryFile)
        ]
    );
    // Last timeline-1 segment at 475, first timeline-2 segment at 485.
    for minute in [470, 480, 500, 570] {
        assert!(
            walg::check_target(&w, at(minute)).is_ok(),
            "minute {minute}"
        );
    }

    // The same with the history file compressed: the switch comes from segment names.
    let w = offsite.window("billing").await.unwrap();
    assert_eq!(w.last_segment, SegmentName::new(2, 15));
    assert_eq!(w.end, at(160 + 40) - Duration::seconds(30));
    assert_eq!(w.timelines[1].source, SwitchSource::SegmentNames);
    assert_eq!(w.timelines[1].first, 11);
    assert!(
        w.notes.iter().any(|n| n.contains("lz4-compressed")),
        "{:?}",
        w.notes
    );
    assert!(walg::check_target(&w, at(190)).is_ok());
}

#[tokio::test]
async fn listings_over_a_thousand_objects_are_followed_to_the_end() {
    let server = S3Server::start().await;
    server.create_bucket(BUCKET);
    let run = WalRun {
        timeline: 1,
        first_segno: 2,
        count: 1100,
        first_upload: at(65),
        every: minutes(1),
    };
    let last = run.last_upload();
    server.seed_walg(
        BUCKET,
        INVENTORY,
        &WalgLayout {
            backups: vec![BackupSpec {
                start: "000000010000000000000002",
                started: at(60),
                finished: at(70),
                complete: true,
            }],
            wal: vec![run],
            ..WalgLayout::default()
        },
    );
    let offsite = Offsite::new(&settings(&server, &[("inventory", INVENTORY)])).unwrap();
    let listing = offsite
        .walg_listing(&format!("{INVENTORY}/"))
        .await
        .unwrap();
    let segments = listing
        .objects
        .iter()
        .filter(|o| o.key.starts_with(walg::WAL_DIR) && o.key.ends_with(".lz4"))
        .count();
    // 1100 segments and the backup history file.
    assert_eq!(segments, 1101);
    let w = offsite.window("inventory").await.unwrap();
    assert_eq!(w.last_segment, SegmentName::new(1, 1101));
    assert_eq!(w.end, last - Duration::seconds(30));
    let report = offsite.report().await;
    assert!(
        report
            .lines
            .iter()
            .any(|l| l.starts_with("inventory: 1100 WAL segments on timeline 1")),
        "{:?}",
        report.lines
    );
}

#[tokio::test]
async fn wrong_credentials_are_refused_with_a_clear_message() {
    let server = S3Server::start().await;
    server.create_bucket(BUCKET);
    let mut s = server.settings(BUCKET);
    s.secret_access_key = Some("not-the-secret".into());
    let offsite = Offsite::new(&s).unwrap();
    let e = offsite.versioning().await.unwrap_err();
    let ClusterError::Invalid(msg) = &e else {
        panic!("expected Invalid, got {e:?}");
    };
    assert!(msg.contains("refused drbot's credentials"), "{msg}");
    assert!(msg.contains("SignatureDoesNotMatch"), "{msg}");
    assert!(msg.contains("offsite.secret_access_key"), "{msg}");
    assert!(
        !msg.contains("not-the-secret") && !msg.contains(SECRET_KEY),
        "{msg}"
    );

    s.access_key_id = Some("AKIAUNKNOWN".into());
    let offsite = Offsite::new(&s).unwrap();
    let e = offsite.velero_backups().await.unwrap_err();
    // Real S3 says InvalidAccessKeyId; the test server says NotSignedUp.
    assert!(
        e.to_string()
            .contains("refused drbot's credentials (NotSignedUp)"),
        "{e}"
    );
    let report = offsite.report().await;
    assert!(!report.ok);
    assert!(
        report.lines[0].contains("unreachable") && report.lines[0].contains("credentials"),
        "{:?}",
        report.lines
    );
}

#[tokio::test]
async fn storage_that_cannot_be_reached_is_unavailable() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = S3Server::start().await;
    let mut s = server.settings(BUCKET);
    s.endpoint = Some(format!("http://127.0.0.1:{port}"));
    s.timeout_seconds = 5;
    let e = Offsite::new(&s).unwrap().versioning().await.unwrap_err();
    assert!(
        matches!(&e, ClusterError::Unavailable(m) if m.contains("cannot reach http://127.0.0.1")),
        "{e:?}"
    );

    // A bucket that does not exist is a configuration mistake, not an outage.
    let e = Offsite::new(&server.settings("dr-nonexistent"))
        .unwrap()
        .reachable()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClusterError::Invalid(m) if m.contains("does not exist")),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_report_covers_bucket_velero_and_each_cluster() {
    let (server, offsite) = seeded().await;
    let report = offsite.report().await;
    let text = report.lines.join("\n");
    assert!(report.ok, "{text}");
    for want in [
        "offsite bucket dr-offsite at http://127.0.0.1",
        "reachable, versioning Enabled",
        "sample read: read the first",
        "orders: 3 base backups (2 complete), newest base_000000010000000000000017 (finished 2026-03-01T05:10:00Z)",
        "orders: 47 WAL segments on timelines 1, 2, newest 000000020000000000000032 uploaded 2026-03-01T09:35:00Z",
        "orders: PITR window 2026-03-01T01:10:00Z … 2026-03-01T09:34:30Z (targets before the end: the last archived commit is at 2026-03-01T09:34:30Z (commit record at 0/32000C18 in segment 000000020000000000000032); WAL runs to segment 000000020000000000000032)",
        "orders: WAL gap: segments 000000010000000000000015 … 000000010000000000000016 are missing",
        "billing: PITR window 2026-03-01T01:10:00Z … 2026-03-01T03:19:30Z",
        "billing: timeline 2: switch from timeline 1 at segment 00000002000000000000000B taken from segment names",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }

    // A database cluster with nothing offsite fails the preflight.
    let mut s = settings(
        &server,
        &[
            ("orders", ORDERS),
            ("ledger", "sgbackups.stackgres.io/db/ledger/16"),
        ],
    );
    s.velero_prefix = "velero/".into();
    let report = Offsite::new(&s).unwrap().report().await;
    assert!(!report.ok);
    assert!(
        report
            .lines
            .iter()
            .any(|l| l == "ledger: no PITR window: no base backup under basebackups_005/"),
        "{:?}",
        report.lines
    );
}

#[tokio::test]
async fn a_sample_object_is_read_from_wal_g_when_there_is_no_velero_backup() {
    let server = S3Server::start().await;
    server.create_bucket(BUCKET);
    server.seed_walg(BUCKET, ORDERS, &orders_layout());
    let offsite = Offsite::new(&settings(&server, &[("orders", ORDERS)])).unwrap();
    let evidence = offsite.sample_readable().await.unwrap();
    assert!(
        evidence
            .contains("basebackups_005/base_000000010000000000000017_backup_stop_sentinel.json")
            && evidence.contains("WAL-G sentinel"),
        "{evidence}"
    );
}

fn load(toml: Option<&str>, env: &[(&str, &str)]) -> Result<Settings, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = toml.map(|t| {
        let path = dir.path().join("drbot.toml");
        std::fs::write(&path, t).unwrap();
        path
    });
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load_from(file.as_deref(), Some(env)).map_err(|e| e.to_string())
}

#[test]
fn offsite_settings_from_toml_and_from_the_environment() {
    let s = load(
        Some(
            r#"
[offsite]
bucket = "dr-offsite"
endpoint = "https://s3.eu-central.example.net"
region = "eu-central-1"
force_path_style = true
access_key_id = "AKIAFILE"
secret_access_key = "from-file"
velero_prefix = "/velero/"
clusters = [
  "orders=sgbackups.stackgres.io/db/orders/2026-01-05-10-00-00/16",
  "billing=s3://dr-offsite/sgbackups.stackgres.io/db/billing/16/",
]
"#,
        ),
        &[("DRBOT__OFFSITE__SECRET_ACCESS_KEY", "from-env")],
    )
    .unwrap();
    let o = &s.offsite;
    assert!(o.enabled() && o.force_path_style);
    assert_eq!(o.region, "eu-central-1");
    assert_eq!(o.secret_access_key.as_deref(), Some("from-env"));
    assert_eq!(o.velero_root(), "velero/");
    assert_eq!(
        o.cluster_prefixes().unwrap(),
        vec![
            (
                "orders".to_string(),
                "sgbackups.stackgres.io/db/orders/2026-01-05-10-00-00/16/".to_string()
            ),
            (
                "billing".to_string(),
                "sgbackups.stackgres.io/db/billing/16/".to_string()
            ),
        ]
    );

    let s = load(
        None,
        &[
            ("DRBOT__OFFSITE__BUCKET", "dr-offsite"),
            ("DRBOT__OFFSITE__ACCESS_KEY_ID", "AKIAENV"),
            ("DRBOT__OFFSITE__SECRET_ACCESS_KEY", "env-secret"),
            ("DRBOT__OFFSITE__FORCE_PATH_STYLE", "true"),
            ("DRBOT__OFFSITE__TIMEOUT_SECONDS", "12"),
            (
                "DRBOT__OFFSITE__CLUSTERS",
                "orders=sgbackups.stackgres.io/db/orders/16, billing=sgbackups.stackgres.io/db/billing/16",
            ),
        ],
    )
    .unwrap();
    let o = &s.offsite;
    assert_eq!(o.region, "us-east-1");
    assert_eq!(o.timeout_seconds, 12);
    assert!(o.force_path_style);
    assert_eq!(o.velero_root(), "");
    let names: Vec<String> = o
        .cluster_prefixes()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, vec!["orders", "billing"]);

    // Off by default.
    assert!(!load(None, &[]).unwrap().offsite.enabled());
}

#[test]
fn bad_offsite_settings_are_named() {
    let base = [
        ("DRBOT__OFFSITE__BUCKET", "dr-offsite"),
        ("DRBOT__OFFSITE__ACCESS_KEY_ID", "AKIA"),
        ("DRBOT__OFFSITE__SECRET_ACCESS_KEY", "very-secret"),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut env: Vec<(&str, &str)> = base.to_vec();
        env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        env.extend_from_slice(extra);
        load(None, &env).err().unwrap_or_default()
    };
    for (extra, want) in [
        (
            &[("DRBOT__OFFSITE__SECRET_ACCESS_KEY", "")][..],
            "offsite.secret_access_key",
        ),
        (
            &[("DRBOT__OFFSITE__BUCKET", "s3://dr-offsite/velero")][..],
            "not an S3 bucket name",
        ),
        (
            &[("DRBOT__OFFSITE__ENDPOINT", "s3.example.net")][..],
            "offsite.endpoint",
        ),
        (
            &[("DRBOT__OFFSITE__CLUSTERS", "orders")][..],
            "`<cluster>=<WAL-G prefix>`",
        ),
        (
            &[("DRBOT__OFFSITE__CLUSTERS", "orders=a/16,orders=b/16")][..],
            "names orders twice",
        ),
        (
            &[("DRBOT__OFFSITE__CLUSTERS", "orders=s3://other-bucket/a/16")][..],
            "drbot reads one offsite bucket",
        ),
        (
            &[("DRBOT__OFFSITE__TIMEOUT_SECONDS", "0")][..],
            "offsite.timeout_seconds",
        ),
    ] {
        let e = with(extra);
        assert!(e.contains(want), "{extra:?}: {e:?}");
        assert!(!e.contains("very-secret"), "{e}");
    }
    let e = load(None, &[("DRBOT__OFFSITE__ACCESS_KEY_ID", "AKIA")])
        .err()
        .unwrap();
    assert!(
        e.contains("offsite.access_key_id is set but offsite.bucket is not"),
        "{e}"
    );
}

/// Segments 2..=101 on timeline 1 after one base backup: more WAL than the listing re-reads.
fn long_layout() -> WalgLayout {
    WalgLayout {
        backups: vec![BackupSpec {
            start: "000000010000000000000002",
            started: at(0),
            finished: at(5),
            complete: true,
        }],
        wal: vec![WalRun {
            timeline: 1,
            first_segno: 2,
            count: 100,
            first_upload: at(1),
            every: minutes(1),
        }],
        ..WalgLayout::default()
    }
}

fn wal_key(segno: u64) -> String {
    format!("{BILLING}/wal_005/{}.lz4", SegmentName::new(1, segno))
}

#[tokio::test]
async fn a_second_look_lists_only_the_wal_after_the_last_key_seen() {
    use drbot::cluster::offsite::FULL_RELIST_EVERY;
    let server = S3Server::start().await;
    server.create_bucket(BUCKET);
    server.seed_walg(BUCKET, BILLING, &long_layout());
    let clock = drbot::clock::ManualClock::new(at(101));
    let offsite = Offsite::new(&settings(&server, &[("billing", BILLING)]))
        .unwrap()
        .with_clock(std::sync::Arc::new(clock.clone()));
    let whole = format!("{BILLING}/");
    let wal = format!("{BILLING}/wal_005/");
    let backups = format!("{BILLING}/basebackups_005/");

    let w = offsite.window("billing").await.unwrap();
    assert_eq!(w.last_segment, SegmentName::new(1, 101));
    let lists = server.take_lists();
    assert_eq!(lists.len(), 1, "{lists:?}");
    assert_eq!(lists[0].prefix.as_deref(), Some(whole.as_str()));
    assert_eq!(lists[0].start_after, None);

    // A new segment: the backups are listed, then wal_005/ only from near its end.
    let segment = |segno: u64| {
        support::wal::compress(
            "lz4",
            &support::wal::segment(SegmentName::new(1, segno), &[at(101)]),
        )
    };
    server.put(BUCKET, &wal_key(102), &segment(102), at(102));
    clock.advance(minutes(1));
    let w = offsite.window("billing").await.unwrap();
    assert_eq!(w.last_segment, SegmentName::new(1, 102));
    assert!(w.gaps.is_empty(), "{:?}", w.gaps);
    let lists = server.take_lists();
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert_eq!(lists[0].prefix.as_deref(), Some(backups.as_str()));
    assert_eq!(lists[1].prefix.as_deref(), Some(wal.as_str()));
    // The last 64 keys seen are read again (parallel uploads land out of order), not 100+.
    assert_eq!(lists[1].start_after, Some(wal_key(101 - 64)));
    assert_eq!(lists[1].keys, 64 + 1);

    // A segment lost in the middle goes unseen until the next full listing...
    server.remove(BUCKET, &wal_key(0x20));
    clock.advance(FULL_RELIST_EVERY - minutes(2));
    let w = offsite.window("billing").await.unwrap();
    assert!(w.gaps.is_empty(), "{:?}", w.gaps);
    assert!(server.take_lists()[1].start_after.is_some());
    // ...which comes FULL_RELIST_EVERY after the last one.
    clock.advance(minutes(1));
    let w = offsite.window("billing").await.unwrap();
    assert_eq!(w.gaps.len(), 1, "{:?}", w.gaps);
    let lists = server.take_lists();
    assert_eq!(lists.len(), 1, "{lists:?}");
    assert_eq!(lists[0].prefix.as_deref(), Some(whole.as_str()));

    // A new base backup (or retention removing one) makes the next look list everything.
    clock.advance(minutes(1));
    server.seed_walg(
        BUCKET,
        BILLING,
        &WalgLayout {
            backups: vec![BackupSpec {
                start: "000000010000000000000066",
                started: at(110),
                finished: at(112),
                complete: true,
            }],
            ..WalgLayout::default()
        },
    );
    offsite.window("billing").await.unwrap();
    let lists = server.take_lists();
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert_eq!(lists[0].prefix.as_deref(), Some(backups.as_str()));
    assert_eq!(lists[1].prefix.as_deref(), Some(wal.as_str()));
    assert_eq!(lists[2].prefix.as_deref(), Some(whole.as_str()));
    assert_eq!(lists[2].start_after, None);
}
