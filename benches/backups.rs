//! `/dr backups` (`Offsite::report`) on a 30-day archive of 10 000 WAL segments and 30 daily
//! base backups, through the in-process S3 server on loopback (tests/support/s3.rs, s3s-fs).
//! Cold: a new `Offsite` each run (nothing cached); warm: the same `Offsite` again. Median of
//! three each; exits non-zero when the cold median reaches 2 s or the warm one 200 ms.
//!
//! The last 300 segments (a day) and each backup's first ones hold valid WAL with commits
//! (lz4 frames, StackGres's default); older segments hold small placeholders: drbot reads
//! only the tails of WAL runs, so their bodies are never fetched, and 10 000 real 16 MiB
//! segments would take gigabytes. Run with `cargo bench --bench backups`.

#[path = "../tests/support/s3.rs"]
#[allow(dead_code)]
mod s3;
#[path = "../tests/support/wal.rs"]
#[allow(dead_code)]
mod wal;

use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use drbot::cluster::offsite::Offsite;
use drbot::cluster::walg::SegmentName;
use s3::{BackupSpec, S3Server, WalgLayout};

const BUCKET: &str = "dr-offsite";
const PREFIX: &str = "sgbackups.stackgres.io/db/orders/2026-01-05-10-00-00/16";
const SEGMENTS: u64 = 10_000;
const REAL_TAIL: u64 = 300;
const COLD_TARGET: StdDuration = StdDuration::from_secs(2);
const WARM_TARGET: StdDuration = StdDuration::from_millis(200);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// Segment n is uploaded 30 days * n / SEGMENTS after t0 (one every ~4 min 19 s).
fn uploaded(n: u64) -> DateTime<Utc> {
    t0() + Duration::seconds((30 * 86_400 * n / SEGMENTS) as i64)
}

fn seed(server: &S3Server) -> DateTime<Utc> {
    server.create_bucket(BUCKET);
    server.set_versioning(BUCKET, Some("Enabled"));
    server.seed_velero(
        BUCKET,
        "velero/",
        "daily-20260330",
        "Completed",
        t0() + Duration::days(29),
    );
    let first = 2u64;
    let mut backups = Vec::new();
    let names: Vec<String> = (0..30)
        .map(|day| SegmentName::new(1, first + day * SEGMENTS / 30).to_string())
        .collect();
    for (day, start) in names.iter().enumerate() {
        let segno = first + day as u64 * SEGMENTS / 30;
        backups.push(BackupSpec {
            start: Box::leak(start.clone().into_boxed_str()),
            started: uploaded(segno - first),
            finished: uploaded(segno - first) + Duration::minutes(3),
            complete: true,
        });
    }
    server.seed_walg(
        BUCKET,
        PREFIX,
        &WalgLayout {
            backups,
            ..WalgLayout::default()
        },
    );
    let mut last = t0();
    for i in 0..SEGMENTS {
        let seg = SegmentName::new(1, first + i);
        let at = uploaded(i);
        let real = i + REAL_TAIL >= SEGMENTS || i % (SEGMENTS / 30) < 2;
        let body = if real {
            last = at - Duration::seconds(20);
            wal::compress(
                "lz4",
                &wal::segment(seg, &[at - Duration::seconds(40), last]),
            )
        } else {
            s3::compressed(seg.to_string().as_bytes())
        };
        server.put(BUCKET, &format!("{PREFIX}/wal_005/{seg}.lz4"), &body, at);
    }
    last
}

fn median(mut v: Vec<StdDuration>) -> StdDuration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = S3Server::start().await;
        let built = Instant::now();
        let last_commit = seed(&server);
        println!(
            "archive: {SEGMENTS} segments, 30 base backups, built in {:.1?}",
            built.elapsed()
        );
        let mut settings = server.settings(BUCKET);
        settings.velero_prefix = "velero/".into();
        settings.clusters = vec![format!("orders={PREFIX}")];

        let mut cold = Vec::new();
        for _ in 0..3 {
            let offsite = Offsite::new(&settings).expect("offsite");
            let t = Instant::now();
            let report = offsite.report().await;
            cold.push(t.elapsed());
            let text = report.lines.join("\n");
            assert!(report.ok, "{text}");
            let want = drbot::cluster::walg::fmt_commit_time(last_commit);
            assert!(
                text.contains(&format!("the last archived commit is at {want}")),
                "{text}"
            );
        }
        let offsite = Offsite::new(&settings).expect("offsite");
        offsite.report().await;
        let mut warm = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let report = offsite.report().await;
            warm.push(t.elapsed());
            assert!(report.ok);
        }
        // The bare listing of wal_005/ (11 pages), to tell the server's share from drbot's.
        let mut listing = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let objects = offsite
                .list(&format!("{PREFIX}/wal_005/"))
                .await
                .expect("list");
            listing.push(t.elapsed());
            assert_eq!(objects.len() as u64, SEGMENTS + 30);
        }
        println!(
            "listing wal_005/ alone: {listing:.1?} median {:.1?}",
            median(listing.clone())
        );
        let (c, w) = (median(cold.clone()), median(warm.clone()));
        println!("cold: {cold:.1?} median {c:.1?} (target < {COLD_TARGET:?})");
        println!("warm: {warm:.1?} median {w:.1?} (target < {WARM_TARGET:?})");
        if c < COLD_TARGET && w < WARM_TARGET {
            ExitCode::SUCCESS
        } else {
            println!("MISSED");
            ExitCode::FAILURE
        }
    })
}
