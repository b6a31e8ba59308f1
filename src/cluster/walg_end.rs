//! Where the recoverable window ends, and which targets it accepts. Pure, like `walg`, which
//! builds on it and re-exports these names.
//!
//! PostgreSQL reaches a `recovery_target_time` only by replaying a commit or abort record whose
//! `xact_time` is after the target (`recoveryStopsBefore` in xlogrecovery.c, with the default
//! `recovery_target_inclusive = on`: `recordXtime > recoveryTargetTime`); with none it ends
//! with FATAL "recovery ended before configured recovery target was reached". So the window
//! ends at the last commit/abort in the archived WAL, read from the segments themselves
//! ([`super::wal_records`]), and a target must be strictly before it. The same holds for the
//! end before each gap, and for the window of one named base backup.

use chrono::{DateTime, Utc};

use super::wal_names::{Lsn, SegmentName, TimelineSpan};
use super::wal_records::{SegmentScan, XactEnd, XactKind};
use crate::incident::RecoveryWindow;

/// Said wherever a window end is shown.
pub const END_NOTE: &str = "the end is the last commit/abort record in the archived WAL: PostgreSQL reaches a recovery_target_time only by replaying a commit or abort after it";

/// A hole at the tail whose following segments were all uploaded less than this long before
/// the listing is "still uploading", not lost. `wal-g wal-push` uploads up to
/// `WALG_UPLOAD_CONCURRENCY` (16) segments at once in the background (wal-g
/// `internal/databases/postgres/wal_push_handler.go`, `internal/config/config.go`), so holes
/// appear and fill within one archive round; wal-g's own `wal-verify` calls them
/// `MISSING_UPLOADING` (`wal_segment_scanner.go`). Five minutes is several rounds of a busy
/// primary; a hole older than that is reported as loss.
pub const STILL_UPLOADING_SECONDS: i64 = 300;

pub(super) fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A commit time to the microsecond when it has one (PostgreSQL's precision).
pub fn fmt_commit_time(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_micros() == 0 {
        fmt_time(t)
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

/// The last commit/abort archived on a stretch of WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastCommit {
    pub time: DateTime<Utc>,
    pub lsn: Lsn,
    pub kind: XactKind,
    pub segment: SegmentName,
}

impl LastCommit {
    fn from(x: XactEnd, segment: SegmentName) -> LastCommit {
        LastCommit {
            time: x.time,
            lsn: x.lsn,
            kind: x.kind,
            segment,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "the last archived commit is at {} ({} record at {} in segment {})",
            fmt_commit_time(self.time),
            self.kind.label(),
            self.lsn,
            self.segment
        )
    }
}

/// What walking back from the end of a WAL run found.
pub(super) enum Lookup {
    Found(LastCommit),
    /// This segment has not been read yet.
    Unread(SegmentName),
    /// Nothing usable back to the floor; the reasons (unreadable segments).
    NotFound(Vec<String>),
}

/// Walk back from segment `from` through the contiguous run `segments` (segno → (timeline,
/// LastModified)) to `floor`, and find the newest commit/abort read. A segment without one (a
/// quiet database) sends the walk to the previous one; an unreadable one too (recovery could
/// not replay it either, and an earlier end only refuses more). `not_after`: stop once a
/// segment was uploaded before this time: nothing in it or before can be later.
pub(super) fn last_commit(
    segments: &std::collections::BTreeMap<u64, (u32, DateTime<Utc>)>,
    scans: &std::collections::BTreeMap<SegmentName, Result<SegmentScan, String>>,
    from: u64,
    floor: u64,
    not_after: Option<DateTime<Utc>>,
) -> Lookup {
    let mut why = Vec::new();
    let mut n = from;
    while let Some(&(tli, uploaded)) = segments.get(&n) {
        if not_after.is_some_and(|t| uploaded < t) {
            break;
        }
        let seg = SegmentName::new(tli, n);
        match scans.get(&seg) {
            None => return Lookup::Unread(seg),
            Some(Ok(scan)) => {
                if let Some(x) = scan.last_xact_end {
                    return Lookup::Found(LastCommit::from(x, seg));
                }
            }
            Some(Err(e)) => why.push(format!("segment {seg} unreadable: {e}")),
        }
        if n == floor || n == 0 {
            break;
        }
        n -= 1;
    }
    Lookup::NotFound(why)
}

/// Segments missing from the chain, and what that does to recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub first_missing: SegmentName,
    pub last_missing: SegmentName,
    /// Recovery reaches targets before this: the last archived commit before the gap.
    pub recoverable_until: DateTime<Utc>,
    pub last_before: SegmentName,
    /// Recovery is possible again from the finish of this base backup; `None` = WAL was
    /// archived after the gap but no base backup followed it, so that WAL is unusable.
    pub resumes_at: Option<(String, DateTime<Utc>)>,
    /// A hole at the tail with only freshly uploaded segments after it: wal-g's parallel
    /// uploads, not loss. Recovery still cannot cross it today.
    pub still_uploading: bool,
}

impl Gap {
    pub fn describe(&self) -> String {
        let missing = if self.first_missing == self.last_missing {
            format!("segment {} is missing", self.first_missing)
        } else {
            format!(
                "segments {} … {} are missing",
                self.first_missing, self.last_missing
            )
        };
        if self.still_uploading {
            return format!(
                "{missing} but still uploading (wal-g uploads segments in parallel; every segment after it is younger than {} minutes): recovery reaches only before {} (the last archived commit before it, in or before {}) until it arrives",
                STILL_UPLOADING_SECONDS / 60,
                fmt_commit_time(self.recoverable_until),
                self.last_before
            );
        }
        match &self.resumes_at {
            Some((backup, at)) => format!(
                "WAL gap: {missing}; no recovery between {} (the last archived commit before it, in or before {}) and {} (base backup {backup} finished)",
                fmt_commit_time(self.recoverable_until),
                self.last_before,
                fmt_time(*at)
            ),
            None => format!(
                "WAL gap: {missing}; WAL archived after it is unusable until a new base backup completes",
            ),
        }
    }
}

/// What one usable base backup alone makes recoverable: StackGres replays from the backup it
/// is given only (`RESTORE_BACKUP_NAME`, SG `RestoreConfigMap.java`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupWindow {
    /// The WAL-G name (`base_…`, SGBackup `status.internalName`).
    pub name: String,
    pub start: DateTime<Utc>,
    /// Exclusive: its last archived commit.
    pub end: DateTime<Utc>,
    pub last_commit: LastCommit,
    /// Last segment of the contiguous run from its start.
    pub last_segment: SegmentName,
    /// The hole that ends its run, when WAL goes on after it.
    pub gap_after: Option<Gap>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Finish time of the oldest usable complete base backup.
    pub start: DateTime<Utc>,
    /// The last archived commit/abort (see [`END_NOTE`]); targets must be before it.
    pub end: DateTime<Utc>,
    pub oldest_backup: String,
    /// The last segment of the contiguous WAL run.
    pub last_segment: SegmentName,
    /// The record that ends the window.
    pub last_commit: LastCommit,
    /// Holes inside the window (`resumes_at` set), then one after its end if WAL continues
    /// past a gap no base backup bridges.
    pub gaps: Vec<Gap>,
    /// The latest timeline's history, oldest first.
    pub timelines: Vec<TimelineSpan>,
    pub complete_backups: usize,
    /// Each usable base backup's own window, oldest first.
    pub backups: Vec<BackupWindow>,
    /// Complete base backups that are not usable, and why.
    pub unusable: Vec<(String, String)>,
    /// Base backups that do not count, inferred switch points, and the like.
    pub notes: Vec<String>,
}

impl Window {
    /// For the incident's plan. Its check includes the end; the backend's [`check_target`]
    /// then refuses a target at the last commit itself, naming it.
    pub fn recovery_window(&self) -> RecoveryWindow {
        RecoveryWindow {
            start: self.start,
            end: self.end,
        }
    }

    /// `2026-03-01T01:00:00Z … 2026-03-02T00:00:00.123456Z`.
    pub fn range(&self) -> String {
        format!("{} … {}", fmt_time(self.start), fmt_commit_time(self.end))
    }

    /// The window with where each bound comes from.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "recoverable window {} (from the finish of base backup {} to before the last archived commit, a {} record at {} in segment {}; WAL runs to segment {}; {})",
            self.range(),
            self.oldest_backup,
            self.last_commit.kind.label(),
            self.last_commit.lsn,
            self.last_commit.segment,
            self.last_segment,
            END_NOTE
        );
        if let Some(g) = self.gaps.iter().find(|g| g.still_uploading) {
            s.push_str(&format!("; {}", g.describe()));
        }
        s
    }

    /// A named base backup's own window, or why it has none.
    pub fn for_backup(&self, name: &str) -> Result<&BackupWindow, String> {
        if let Some(b) = self.backups.iter().find(|b| b.name == name) {
            return Ok(b);
        }
        match self.unusable.iter().find(|(n, _)| n == name) {
            Some((_, why)) => Err(format!(
                "base backup {name} cannot be used for a point-in-time recovery: {why}"
            )),
            None => Err(format!(
                "base backup {name} is not in the offsite bucket's WAL-G listing (complete: {})",
                self.backups
                    .iter()
                    .map(|b| b.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

fn past_end(t: &str, whose: &str, last: &LastCommit) -> String {
    format!(
        "target {t} is at or after the end of {whose}: {}. PostgreSQL stops only before a commit or abort after the target, so recovery would run out of WAL and fail with FATAL \"recovery ended before configured recovery target was reached\"; pick a time before it",
        last.describe()
    )
}

/// Whether a point-in-time target can be reached; the refusal shows the window.
pub fn check_target(window: &Window, target: DateTime<Utc>) -> Result<(), String> {
    let t = fmt_commit_time(target);
    if target < window.start {
        return Err(format!(
            "target {t} is before the recoverable window: the oldest complete base backup {} finished at {}, and a restore cannot stop before a base backup's end; {}",
            window.oldest_backup,
            fmt_time(window.start),
            window.describe()
        ));
    }
    if target >= window.end {
        let mut msg = format!(
            "{}; {}",
            past_end(&t, "the recoverable window", &window.last_commit),
            window.describe()
        );
        if let Some(gap) = window
            .gaps
            .iter()
            .find(|g| g.resumes_at.is_none() && !g.still_uploading)
        {
            msg.push_str(&format!("; {}", gap.describe()));
        }
        return Err(msg);
    }
    for gap in &window.gaps {
        if let Some((_, resumes)) = &gap.resumes_at
            && gap.recoverable_until <= target
            && target < *resumes
        {
            return Err(format!(
                "target {t} falls in a WAL gap: {}; {}",
                gap.describe(),
                window.describe()
            ));
        }
    }
    Ok(())
}

/// Whether `target` can be reached replaying from base backup `backup` only.
pub fn check_target_from(
    window: &Window,
    backup: &str,
    target: DateTime<Utc>,
) -> Result<(), String> {
    let b = window.for_backup(backup)?;
    let t = fmt_commit_time(target);
    if target < b.start {
        return Err(format!(
            "target {t} is before base backup {backup} finished ({}): a restore cannot stop before its base backup's end",
            fmt_time(b.start)
        ));
    }
    if target >= b.end {
        let mut msg = format!(
            "{} (StackGres replays WAL from the named backup only)",
            past_end(
                &t,
                &format!("what base backup {backup} can reach"),
                &b.last_commit
            )
        );
        if let Some(g) = &b.gap_after {
            msg.push_str(&format!(
                "; its WAL run ends at segment {}: {}",
                b.last_segment,
                g.describe()
            ));
            if let Some((later, at)) = &g.resumes_at {
                msg.push_str(&format!(
                    "; name base backup {later} (finished {}) instead, or none",
                    fmt_time(*at)
                ));
            }
        }
        return Err(msg);
    }
    Ok(())
}
