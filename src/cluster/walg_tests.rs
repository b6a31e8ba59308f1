use super::*;
use crate::cluster::wal_records::{XactEnd, XactKind};
use chrono::{Duration, TimeZone};

/// Minutes between a segment's last commit and its upload in [`Seed::wal`].
const LAG: i64 = 1;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

/// Builds a listing the way WAL-G lays it out; times in minutes after `t0`.
#[derive(Default)]
struct Seed {
    listing: Listing,
}

impl Seed {
    fn object(&mut self, key: String, minute: i64, body: Option<Vec<u8>>) -> &mut Self {
        if let Some(b) = body {
            self.listing.bodies.insert(key.clone(), Ok(b));
        }
        self.listing.objects.push(ListedObject {
            key,
            last_modified: at(minute),
            size: 100,
        });
        self
    }

    /// The start most tests share: base backup `…02` on timeline 1, finished at minute 60.
    fn first_backup() -> Seed {
        let mut s = Seed::default();
        s.backup("000000010000000000000002", 60, true);
        s
    }

    /// The first backup's WAL run: segments 2 to `to` on timeline 1, one every 30 minutes
    /// from minute 50.
    fn first_run(&mut self, to: u64) -> &mut Self {
        self.wal(1, 2, to, 50, 30)
    }

    /// A backup starting at `start` (segment name) finishing at `finish` minutes.
    fn backup(&mut self, start: &str, finish: i64, complete: bool) -> &mut Self {
        let seg = SegmentName::parse(start).unwrap();
        let name = format!("base_{start}");
        let start_lsn = seg.segno * WAL_SEGMENT_SIZE + 0x28;
        let meta = serde_json::json!({
            "start_time": fmt_time(at(finish - 10)),
            "finish_time": fmt_time(at(finish)),
            "date_fmt": "%Y-%m-%dT%H:%M:%S.%fZ",
            "hostname": "orders-0",
            "data_dir": "/var/lib/postgresql/data",
            "pg_version": 160004,
            "start_lsn": start_lsn,
            "finish_lsn": start_lsn + 0x100,
            "is_permanent": false,
        });
        self.object(
            format!("{BASEBACKUPS_DIR}{name}/tar_partitions/part_001.tar.lz4"),
            finish,
            None,
        );
        self.object(
            format!("{BASEBACKUPS_DIR}{name}/{METADATA_FILE}"),
            finish,
            Some(meta.to_string().into_bytes()),
        );
        if complete {
            let sentinel = serde_json::json!({
                "LSN": start_lsn, "FinishLSN": start_lsn + 0x100, "PgVersion": 160004,
            });
            self.object(
                format!("{BASEBACKUPS_DIR}{name}{SENTINEL_SUFFIX}"),
                finish + 1,
                Some(sentinel.to_string().into_bytes()),
            );
        }
        self
    }

    /// Segments `from..=to` on `tli`, segment n uploaded at minute `first + (n - from) * step`,
    /// its last commit [`LAG`] minutes before its upload.
    fn wal(&mut self, tli: u32, from: u64, to: u64, first: i64, step: i64) -> &mut Self {
        for n in from..=to {
            let name = SegmentName::new(tli, n).to_string();
            let uploaded = first + (n - from) as i64 * step;
            self.object(format!("{WAL_DIR}{name}.lz4"), uploaded, None);
            self.commit(seg(tli, n), uploaded - LAG);
        }
        self
    }

    /// What reading segment `s` found: its last commit at `minute`.
    fn commit(&mut self, s: SegmentName, minute: i64) -> &mut Self {
        self.scan(s, Some(at(minute)))
    }

    /// Segment `s` holds no commit or abort (a quiet database).
    fn quiet(&mut self, s: SegmentName) -> &mut Self {
        self.scan(s, None)
    }

    fn scan(&mut self, s: SegmentName, last: Option<DateTime<Utc>>) -> &mut Self {
        let scan = SegmentScan {
            pg_major: 15,
            last_xact_end: last.map(|time| XactEnd {
                time,
                lsn: Lsn(s.segno * WAL_SEGMENT_SIZE + 0x1000),
                kind: XactKind::Commit,
            }),
            records: 10,
            stopped: None,
        };
        self.listing.scans.insert(s, Ok(scan));
        self
    }

    fn file(&mut self, name: &str, minute: i64, body: Option<&str>) -> &mut Self {
        self.object(
            format!("{WAL_DIR}{name}"),
            minute,
            body.map(|b| b.as_bytes().to_vec()),
        )
    }

    fn window(&self) -> Result<Window, WindowProblem> {
        recoverable_window(&self.listing)
    }
}

fn seg(tli: u32, n: u64) -> SegmentName {
    SegmentName::new(tli, n)
}

#[test]
fn segment_names_parse_and_print() {
    let s = SegmentName::parse("00000002000000010000000A").unwrap();
    assert_eq!((s.timeline, s.log(), s.seg()), (2, 1, 10));
    assert_eq!(s.segno, 256 + 10);
    assert_eq!(s.to_string(), "00000002000000010000000A");
    assert_eq!(SEGMENTS_PER_LOG, 256);
    // 0x100 and more is not a 16 MiB segment; timeline 0 does not exist.
    assert!(SegmentName::parse("000000010000000000000100").is_none());
    assert!(SegmentName::parse("000000000000000000000001").is_none());
    assert!(SegmentName::parse("00000001000000000000001").is_none());
    assert!(SegmentName::parse("00000001000000000000001G").is_none());
    let lsn = Lsn::parse("1/0A000028").unwrap();
    assert_eq!(lsn.0, 0x1_0A00_0028);
    assert_eq!(lsn.to_string(), "1/A000028");
    assert_eq!(
        SegmentName::from_lsn(3, lsn).to_string(),
        "00000003000000010000000A"
    );
}

#[test]
fn wal_file_names_with_compression_partial_history_and_labels() {
    for (name, want) in [
        ("000000010000000000000003.lz4", WalFile::Segment(seg(1, 3))),
        ("000000010000000000000003.br", WalFile::Segment(seg(1, 3))),
        ("000000010000000000000003.zst", WalFile::Segment(seg(1, 3))),
        ("000000010000000000000003", WalFile::Segment(seg(1, 3))),
        (
            "000000010000000000000003.partial.lz4",
            WalFile::Partial(seg(1, 3)),
        ),
        (
            "000000010000000000000003.partial",
            WalFile::Partial(seg(1, 3)),
        ),
        ("00000002.history", WalFile::History { timeline: 2 }),
        ("0000000A.history.br", WalFile::History { timeline: 10 }),
        (
            "000000010000000000000002.00000028.backup.lz4",
            WalFile::BackupLabel(seg(1, 2)),
        ),
        ("000000010000000000000003.tmp", WalFile::Other),
        ("2.history", WalFile::Other),
    ] {
        assert_eq!(parse_wal_file(name), want, "{name}");
    }
    assert!(needs_body("wal_005/00000002.history"));
    assert!(!needs_body("wal_005/00000002.history.lz4"));
    assert!(!needs_body("wal_005/000000010000000000000003.lz4"));
    assert!(needs_body(
        "basebackups_005/base_000000010000000000000002_backup_stop_sentinel.json"
    ));
    assert!(needs_body(
        "basebackups_005/base_000000010000000000000002/metadata.json"
    ));
    assert!(!needs_body(
        "basebackups_005/base_000000010000000000000002/files_metadata.json"
    ));
}

#[test]
fn documents_parse() {
    let m = parse_metadata(
        br#"{"start_time":"2026-03-01T00:50:00.123456Z","finish_time":"2026-03-01T01:00:06.879707+00:00","start_lsn":33554472,"finish_lsn":33554728,"is_permanent":true}"#,
    )
    .unwrap();
    assert_eq!(m.start_lsn, Some(Lsn(33_554_472)));
    assert_eq!(m.finish_time.unwrap().timestamp(), at(60).timestamp() + 6);
    assert!(m.is_permanent);
    assert!(parse_metadata(b"{\"start_time\":\"2026-03-01T00:00:00Z\"}").is_err());
    assert!(parse_metadata(b"not json").is_err());
    let s = parse_sentinel(
        br#"{"LSN":33554472,"FinishLSN":"0/2000128","DeltaFrom":"base_000000010000000000000001","FinishTime":"2026-03-01T01:00:00Z"}"#,
    )
    .unwrap();
    assert_eq!(s.finish_lsn, Some(Lsn(0x200_0128)));
    assert_eq!(
        s.delta_from.as_deref(),
        Some("base_000000010000000000000001")
    );
    assert_eq!(s.finish_time, Some(at(60)));
    let h = parse_history("1\t0/5000A28\tno recovery target specified\n\n# c\n2\t0/9000000\tx\n")
        .unwrap();
    assert_eq!(
        h,
        vec![
            HistoryEntry {
                timeline: 1,
                switch: Lsn(0x500_0A28)
            },
            HistoryEntry {
                timeline: 2,
                switch: Lsn(0x900_0000)
            }
        ]
    );
    assert!(parse_history("").is_err());
    assert!(parse_history("2\t0/9000000\n1\t0/5000000\n").is_err());
}

#[test]
fn window_runs_from_the_oldest_finish_to_the_last_contiguous_segment() {
    let mut s = Seed::first_backup();
    s.backup("000000010000000000000010", 600, true)
        .first_run(0x20);
    let w = s.window().unwrap();
    assert_eq!(w.start, at(60));
    assert_eq!(w.oldest_backup, "base_000000010000000000000002");
    assert_eq!(w.last_segment, seg(1, 0x20));
    // The end is the last archived commit, not segment 0x20's upload a minute later.
    assert_eq!(w.end, at(50 + 30 * 30 - LAG));
    assert_eq!(w.last_commit.segment, seg(1, 0x20));
    assert!(w.gaps.is_empty(), "{:?}", w.gaps);
    assert_eq!(w.complete_backups, 2);
    assert_eq!(w.recovery_window().start, w.start);
    assert_eq!(w.recovery_window().end, w.end);
    assert!(check_target(&w, at(60)).is_ok());
    assert!(check_target(&w, w.end - Duration::microseconds(1)).is_ok());
    assert!(check_target(&w, w.end).is_err());
    assert!(check_target(&w, at(300)).is_ok());
}

#[test]
fn target_before_the_oldest_finish_is_refused_with_the_window() {
    let mut s = Seed::first_backup();
    s.first_run(8);
    let w = s.window().unwrap();
    // During the backup (it started at minute 50) is not enough.
    let e = check_target(&w, at(59)).unwrap_err();
    assert!(e.contains("before the recoverable window"), "{e}");
    assert!(e.contains("base_000000010000000000000002"), "{e}");
    assert!(
        e.contains("2026-03-01T01:00:00Z … 2026-03-01T03:49:00Z"),
        "{e}"
    );
    assert!(e.contains("last archived commit"), "{e}");
}

#[test]
fn a_target_between_the_last_commit_and_the_upload_is_refused_naming_the_commit() {
    let mut s = Seed::first_backup();
    s.first_run(8);
    // Segment 8 was uploaded at 03:50, its last commit at 03:49:00.5.
    s.commit(seg(1, 8), 229);
    s.listing
        .scans
        .get_mut(&seg(1, 8))
        .unwrap()
        .as_mut()
        .unwrap()
        .last_xact_end
        .as_mut()
        .unwrap()
        .time += Duration::milliseconds(500);
    let w = s.window().unwrap();
    let last = at(229) + Duration::milliseconds(500);
    assert_eq!(w.end, last);
    // Before the old proxy (the upload at 03:50) but after the last commit: PostgreSQL would
    // find no commit after it and fail.
    let e = check_target(&w, at(229) + Duration::seconds(30)).unwrap_err();
    assert!(
        e.contains("at or after the end of the recoverable window"),
        "{e}"
    );
    assert!(
        e.contains("the last archived commit is at 2026-03-01T03:49:00.500000Z"),
        "{e}"
    );
    assert!(e.contains("000000010000000000000008"), "{e}");
    assert!(
        e.contains("recovery ended before configured recovery target"),
        "{e}"
    );
    assert!(check_target(&w, last).is_err(), "at the commit itself");
    assert!(check_target(&w, at(229)).is_ok(), "just before it");
}

#[test]
fn a_quiet_segment_sends_the_end_back_to_the_last_commit() {
    let mut s = Seed::first_backup();
    s.first_run(8).quiet(seg(1, 8)).quiet(seg(1, 7));
    let w = s.window().unwrap();
    assert_eq!(w.end, at(50 + 4 * 30 - LAG));
    assert_eq!(w.last_commit.segment, seg(1, 6));
    assert_eq!(w.last_segment, seg(1, 8));
    // Unread segments are asked for, newest first, one step at a time.
    s.listing.scans.clear();
    assert_eq!(
        segments_to_read(&s.listing),
        vec![format!("{WAL_DIR}000000010000000000000008.lz4")]
    );
    s.quiet(seg(1, 8));
    assert_eq!(
        segments_to_read(&s.listing),
        vec![format!("{WAL_DIR}000000010000000000000007.lz4")]
    );
    s.commit(seg(1, 7), 200);
    assert!(segments_to_read(&s.listing).is_empty());
    assert_eq!(s.window().unwrap().end, at(200));
}

#[test]
fn no_commit_after_the_backup_means_no_point_in_time_target() {
    let mut s = Seed::first_backup();
    s.first_run(4).quiet(seg(1, 4)).quiet(seg(1, 3));
    let e = s.window().unwrap_err().to_string();
    assert!(
        e.contains("no commit/abort record archived in its WAL run after it finished at 2026-03-01T01:00:00Z"),
        "{e}"
    );
    // A segment uploaded after the finish whose last commit is before it.
    s.wal(1, 5, 5, 70, 30).commit(seg(1, 5), 59);
    let e = s.window().unwrap_err().to_string();
    assert!(e.contains("no commit archived after it finished"), "{e}");
    assert!(
        e.contains("the last archived commit is at 2026-03-01T00:59:00Z"),
        "{e}"
    );
}

#[test]
fn a_wal_gap_bridged_by_a_later_backup_is_a_hole_in_the_window() {
    let mut s = Seed::first_backup();
    // Segments 2..=6 (last at minute 170), 7 and 8 lost, 9.. again; backup at 9 ends 400.
    s.backup("000000010000000000000009", 400, true)
        .first_run(6)
        .wal(1, 9, 12, 390, 30);
    let w = s.window().unwrap();
    assert_eq!((w.start, w.end), (at(60), at(390 + 90 - LAG)));
    assert_eq!(w.gaps.len(), 1);
    let g = &w.gaps[0];
    assert_eq!((g.first_missing, g.last_missing), (seg(1, 7), seg(1, 8)));
    assert_eq!(g.recoverable_until, at(170 - LAG));
    assert!(!g.still_uploading);
    assert_eq!(
        g.resumes_at,
        Some(("base_000000010000000000000009".into(), at(400)))
    );
    assert!(check_target(&w, at(168)).is_ok());
    assert!(
        check_target(&w, at(169)).is_err(),
        "the last commit before the gap"
    );
    let e = check_target(&w, at(200)).unwrap_err();
    assert!(e.contains("WAL gap"), "{e}");
    assert!(
        e.contains("000000010000000000000007 … 000000010000000000000008"),
        "{e}"
    );
    assert!(e.contains("2026-03-01T06:40:00Z"), "{e}");
    assert!(check_target(&w, at(400)).is_ok());
    assert!(check_target(&w, at(450)).is_ok());
}

#[test]
fn a_gap_no_backup_bridges_ends_the_window() {
    let mut s = Seed::first_backup();
    s.first_run(6).wal(1, 8, 12, 240, 30);
    let w = s.window().unwrap();
    assert_eq!(w.end, at(170 - LAG));
    assert_eq!(w.last_segment, seg(1, 6));
    assert_eq!(w.gaps.len(), 1);
    assert_eq!(w.gaps[0].resumes_at, None);
    let e = check_target(&w, at(300)).unwrap_err();
    assert!(
        e.contains("at or after the end of the recoverable window"),
        "{e}"
    );
    assert!(
        e.contains("segment 000000010000000000000007 is missing"),
        "{e}"
    );
    assert!(e.contains("new base backup"), "{e}");
}

#[test]
fn a_young_hole_at_the_tail_is_still_uploading_not_lost() {
    let mut s = Seed::first_backup();
    // 2..=6, 7 missing, 8..=9 uploaded at minutes 238 and 239.
    s.first_run(6).wal(1, 8, 9, 238, 1);
    s.listing.listed_at = Some(at(240));
    let w = s.window().unwrap();
    let g = &w.gaps[0];
    assert!(g.still_uploading, "{g:?}");
    let d = g.describe();
    assert!(d.contains("still uploading"), "{d}");
    assert!(!d.contains("unusable"), "{d}");
    // Recovery cannot cross it yet: the window still ends before it.
    assert_eq!(w.end, at(170 - LAG));
    let e = check_target(&w, at(200)).unwrap_err();
    assert!(e.contains("still uploading"), "{e}");
    assert!(!e.contains("unusable until a new base backup"), "{e}");

    // Ten minutes later the hole is still there: lost.
    s.listing.listed_at = Some(at(250));
    let w = s.window().unwrap();
    assert!(!w.gaps[0].still_uploading);
    assert!(
        w.gaps[0]
            .describe()
            .contains("unusable until a new base backup")
    );
}

#[test]
fn a_named_backup_is_checked_against_its_own_window() {
    let mut s = Seed::first_backup();
    // Backup A's run ends at segment 6 (gap at 7..=8); backup B starts at 9.
    s.backup("000000010000000000000009", 400, true)
        .first_run(6)
        .wal(1, 9, 12, 390, 30);
    let w = s.window().unwrap();
    let a = "base_000000010000000000000002";
    let b = "base_000000010000000000000009";
    // The merged window accepts 450; from A alone PostgreSQL stops at the gap.
    assert!(check_target(&w, at(450)).is_ok());
    let e = check_target_from(&w, a, at(450)).unwrap_err();
    assert!(e.contains("named backup only"), "{e}");
    assert!(e.contains("2026-03-01T02:49:00Z"), "{e}");
    assert!(
        e.contains("000000010000000000000007 … 000000010000000000000008"),
        "{e}"
    );
    assert!(e.contains(b), "{e}");
    assert!(check_target_from(&w, a, at(100)).is_ok());
    assert!(check_target_from(&w, b, at(450)).is_ok());
    let e = check_target_from(&w, b, at(100)).unwrap_err();
    assert!(e.contains("before base backup"), "{e}");
    let e = check_target_from(&w, "base_000000010000000000000005", at(100)).unwrap_err();
    assert!(e.contains("not in the offsite bucket"), "{e}");
}

#[test]
fn the_window_follows_a_timeline_switch_from_a_readable_history_file() {
    let mut s = Seed::first_backup();
    // Promotion in segment 6 (at 0/6000A28): timeline 1 archives 6 as .partial, timeline 2
    // starts with its own copy of 6. The old primary kept writing 6..=9 on timeline 1: not
    // on the latest timeline's history, so not followed.
    s.first_run(5)
        .file("000000010000000000000006.partial.lz4", 170, None)
        .wal(1, 7, 9, 200, 30)
        .file(
            "00000002.history",
            171,
            Some("1\t0/6000A28\tno recovery target specified\n"),
        )
        .wal(2, 6, 10, 180, 30);
    let w = s.window().unwrap();
    assert_eq!(w.last_segment, seg(2, 10));
    assert_eq!(w.end, at(180 + 4 * 30 - LAG));
    assert!(w.gaps.is_empty(), "{:?}", w.gaps);
    assert_eq!(
        w.timelines,
        vec![
            TimelineSpan {
                timeline: 1,
                first: 0,
                end: Some(6),
                source: SwitchSource::Root
            },
            TimelineSpan {
                timeline: 2,
                first: 6,
                end: None,
                source: SwitchSource::HistoryFile
            },
        ]
    );
    // Across the switch: before it, and after it on the new timeline.
    assert!(check_target(&w, at(150)).is_ok());
    assert!(check_target(&w, at(250)).is_ok());
}

#[test]
fn a_compressed_history_file_is_followed_by_segment_names() {
    let mut s = Seed::first_backup();
    s.first_run(5)
        .file("000000010000000000000006.partial.lz4", 170, None)
        .file("00000002.history.lz4", 171, None)
        .wal(2, 6, 10, 180, 30);
    let w = s.window().unwrap();
    assert_eq!(w.last_segment, seg(2, 10));
    assert_eq!(w.timelines[1].source, SwitchSource::SegmentNames);
    assert!(
        w.notes.iter().any(|n| n.contains("lz4-compressed")),
        "{:?}",
        w.notes
    );
}

#[test]
fn a_missing_first_segment_on_the_new_timeline_is_a_gap() {
    let mut s = Seed::first_backup();
    // History says timeline 2 starts in segment 6, but only 7.. were archived.
    s.first_run(5)
        .file("00000002.history", 171, Some("1\t0/6000A28\tx\n"))
        .wal(2, 7, 10, 210, 30);
    let w = s.window().unwrap();
    assert_eq!(w.last_segment, seg(1, 5));
    assert_eq!(w.gaps[0].first_missing, seg(2, 6));
    assert_eq!(w.gaps[0].resumes_at, None);
}

#[test]
fn three_timelines_from_one_history_file() {
    let mut s = Seed::first_backup();
    s.first_run(5)
        .wal(2, 6, 8, 180, 30)
        .wal(3, 9, 11, 270, 30)
        .file(
            "00000003.history",
            260,
            Some("1\t0/6000A28\tx\n2\t0/9000000\ty\n"),
        )
        // Timeline 2's own history is compressed: timeline 3's lists all ancestors.
        .file("00000002.history.br", 171, None);
    let w = s.window().unwrap();
    let tlis: Vec<(u32, u64)> = w.timelines.iter().map(|t| (t.timeline, t.first)).collect();
    assert_eq!(tlis, vec![(1, 0), (2, 6), (3, 9)]);
    assert_eq!(w.last_segment, seg(3, 11));
    assert!(w.gaps.is_empty());
}

#[test]
fn a_backup_on_an_abandoned_timeline_does_not_count() {
    let mut s = Seed::first_backup();
    // Timeline 2 branched at segment 6; a backup taken on timeline 1 afterwards (the old
    // primary) cannot reach timeline 2.
    s.backup("000000010000000000000008", 300, true)
        .first_run(9)
        .file("00000002.history", 171, Some("1\t0/6000A28\tx\n"))
        .wal(2, 6, 10, 180, 30);
    let w = s.window().unwrap();
    assert_eq!(w.oldest_backup, "base_000000010000000000000002");
    assert!(
        w.notes
            .iter()
            .any(|n| n.contains("base_000000010000000000000008") && n.contains("timeline")),
        "{:?}",
        w.notes
    );
}

#[test]
fn unfinished_and_unusable_backups() {
    let mut s = Seed::default();
    s.backup("000000010000000000000002", 60, false).first_run(4);
    assert!(matches!(
        s.window(),
        Err(WindowProblem::NoCompleteBackup { .. })
    ));
    assert_eq!(
        recoverable_window(&Listing::default()),
        Err(WindowProblem::NoBaseBackup)
    );

    // Retention removed the oldest backup's first segments: the next backup starts the window.
    let mut s = Seed::first_backup();
    s.backup("000000010000000000000005", 200, true)
        .wal(1, 4, 9, 150, 30);
    let w = s.window().unwrap();
    assert_eq!(w.oldest_backup, "base_000000010000000000000005");
    assert_eq!(w.start, at(200));
    assert!(
        w.notes.iter().any(|n| n.contains("start segment")),
        "{:?}",
        w.notes
    );

    // No WAL at all.
    let s = Seed::first_backup();
    let e = s.window().unwrap_err();
    assert!(e.to_string().contains("start segment"), "{e}");
}

#[test]
fn a_backup_whose_own_wal_is_incomplete_does_not_count() {
    // finish_lsn is in segment 2 + 0x100 bytes: still segment 2. Make it segment 3.
    let mut s = Seed::first_backup();
    let key = format!("{BASEBACKUPS_DIR}base_000000010000000000000002/{METADATA_FILE}");
    let meta = serde_json::json!({
        "start_time": fmt_time(at(50)), "finish_time": fmt_time(at(60)),
        "start_lsn": 2 * WAL_SEGMENT_SIZE, "finish_lsn": 3 * WAL_SEGMENT_SIZE + 8,
    });
    s.listing
        .bodies
        .insert(key, Ok(meta.to_string().into_bytes()));
    s.wal(1, 2, 2, 55, 30).wal(1, 4, 6, 120, 30);
    let e = s.window().unwrap_err();
    assert!(e.to_string().contains("000000010000000000000003"), "{e}");
}

#[test]
fn a_sentinel_without_metadata_uses_its_lastmodified() {
    let mut s = Seed::first_backup();
    s.first_run(6);
    s.listing.bodies.retain(|k, _| !k.ends_with(METADATA_FILE));
    let w = s.window().unwrap();
    assert_eq!(w.start, at(61));
    assert!(
        w.notes.iter().any(|n| n.contains("LastModified")),
        "{:?}",
        w.notes
    );
}

#[test]
fn a_delta_backup_needs_its_base() {
    let mut s = Seed::first_backup();
    s.first_run(12);
    // A delta whose parent is gone: listed under its own name only.
    let name = "base_000000010000000000000008_D_000000010000000000000001";
    s.object(
        format!("{BASEBACKUPS_DIR}{name}{SENTINEL_SUFFIX}"),
        300,
        Some(b"{}".to_vec()),
    );
    let w = s.window().unwrap();
    assert!(
        w.notes
            .iter()
            .any(|n| n.contains(name) && n.contains("delta")),
        "{:?}",
        w.notes
    );
}
