//! The WAL-G object-storage layout StackGres writes, and the point-in-time-recovery window it
//! implies. Pure: the caller lists and fetches (see [`super::offsite`]); this module reads
//! names, times and documents only.
//!
//! Under a cluster's prefix (WAL-G `utility/utility.go`):
//! - `basebackups_005/<name>_backup_stop_sentinel.json`: its presence marks a finished backup;
//! - `basebackups_005/<name>/metadata.json`: `start_time`, `finish_time`, `start_lsn`,
//!   `finish_lsn`, …;
//! - `wal_005/<TTTTTTTTXXXXXXXXYYYYYYYY>.<ext>`: WAL segments (16 MiB), `<segment>.partial.<ext>`
//!   (the old timeline's last segment at a promotion), `<TTTTTTTT>.history.<ext>` (timeline
//!   history) and `<segment>.<offset>.backup.<ext>` (backup history).
//!
//! The window runs from the finish time of the oldest complete base backup to the end of the
//! contiguous WAL run from that backup's start segment, along the latest timeline's history.
//! WAL-G keeps no time per segment: the end uses the segment object's `LastModified` (its
//! upload time, at or after its last record) as the proxy.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::incident::RecoveryWindow;

pub const BASEBACKUPS_DIR: &str = "basebackups_005/";
pub const WAL_DIR: &str = "wal_005/";
pub const SENTINEL_SUFFIX: &str = "_backup_stop_sentinel.json";
pub const METADATA_FILE: &str = "metadata.json";
/// PostgreSQL's default `wal_segment_size`; StackGres does not change it.
pub const WAL_SEGMENT_SIZE: u64 = 16 * 1024 * 1024;
/// Segments per 4 GiB "log id": the middle 8 hex digits of a segment name.
pub const SEGMENTS_PER_LOG: u64 = 0x1_0000_0000 / WAL_SEGMENT_SIZE;
/// Extensions WAL-G appends for its compression methods (none: no extension).
pub const COMPRESSION_EXTENSIONS: &[&str] = &["lz4", "lzma", "zst", "br", "gz"];

/// Said wherever a window end is shown.
pub const END_PROXY_NOTE: &str = "the end is the LastModified (upload time) of the last contiguous WAL segment, used as the proxy for its last transaction: WAL-G stores no time per segment";

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A PostgreSQL log sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `16/B374D848` (the form `pg_lsn` and history files use).
    pub fn parse(s: &str) -> Option<Lsn> {
        let (hi, lo) = s.trim().split_once('/')?;
        let hi = u32::from_str_radix(hi, 16).ok()?;
        let lo = u32::from_str_radix(lo, 16).ok()?;
        Some(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }

    /// The number of the segment holding this position.
    pub fn segno(self) -> u64 {
        self.0 / WAL_SEGMENT_SIZE
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// A 16 MiB WAL segment: timeline plus segment number (`log id * 256 + seg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentName {
    pub timeline: u32,
    pub segno: u64,
}

impl SegmentName {
    pub fn new(timeline: u32, segno: u64) -> SegmentName {
        SegmentName { timeline, segno }
    }

    /// `TTTTTTTTXXXXXXXXYYYYYYYY`: 24 hex digits, timeline / log id / segment. A last part of
    /// 0x100 or more is not a 16 MiB segment and is refused.
    pub fn parse(s: &str) -> Option<SegmentName> {
        if s.len() != 24 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let timeline = u32::from_str_radix(&s[0..8], 16).ok()?;
        let log = u64::from_str_radix(&s[8..16], 16).ok()?;
        let seg = u64::from_str_radix(&s[16..24], 16).ok()?;
        if timeline == 0 || seg >= SEGMENTS_PER_LOG {
            return None;
        }
        Some(SegmentName {
            timeline,
            segno: log * SEGMENTS_PER_LOG + seg,
        })
    }

    /// The segment holding `lsn` on `timeline`.
    pub fn from_lsn(timeline: u32, lsn: Lsn) -> SegmentName {
        SegmentName::new(timeline, lsn.segno())
    }

    pub fn log(self) -> u64 {
        self.segno / SEGMENTS_PER_LOG
    }

    pub fn seg(self) -> u64 {
        self.segno % SEGMENTS_PER_LOG
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:08X}{:08X}{:08X}",
            self.timeline,
            self.log(),
            self.seg()
        )
    }
}

/// What a file under `wal_005/` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalFile {
    Segment(SegmentName),
    /// The old timeline's last segment, archived with `.partial` at a promotion.
    Partial(SegmentName),
    /// `00000002.history`: how timeline 2 branched off.
    History {
        timeline: u32,
    },
    /// `<segment>.<offset>.backup`: backup history file.
    BackupLabel(SegmentName),
    Other,
}

/// Split a WAL-G compression extension off a file name: `("…0001", Some("lz4"))`.
pub fn strip_compression(name: &str) -> (&str, Option<&'static str>) {
    for ext in COMPRESSION_EXTENSIONS {
        if let Some(stem) = name.strip_suffix(ext).and_then(|s| s.strip_suffix('.')) {
            return (stem, Some(ext));
        }
    }
    (name, None)
}

/// Classify a file name under `wal_005/` (without the directory).
pub fn parse_wal_file(name: &str) -> WalFile {
    let (stem, _) = strip_compression(name);
    if let Some(segment) = SegmentName::parse(stem) {
        return WalFile::Segment(segment);
    }
    if let Some(segment) = stem.strip_suffix(".partial").and_then(SegmentName::parse) {
        return WalFile::Partial(segment);
    }
    if let Some(tli) = stem.strip_suffix(".history")
        && tli.len() == 8
        && tli.bytes().all(|b| b.is_ascii_hexdigit())
        && let Ok(timeline) = u32::from_str_radix(tli, 16)
    {
        return WalFile::History { timeline };
    }
    if let Some(rest) = stem.strip_suffix(".backup")
        && let Some((segment, offset)) = rest.split_once('.')
        && offset.len() == 8
        && offset.bytes().all(|b| b.is_ascii_hexdigit())
        && let Some(segment) = SegmentName::parse(segment)
    {
        return WalFile::BackupLabel(segment);
    }
    WalFile::Other
}

/// One line of a timeline history file: `timeline` ended at `switch` (it branched to the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryEntry {
    pub timeline: u32,
    pub switch: Lsn,
}

/// Parse a history file (`<parent tli>\t<switch lsn>\t<reason>` per line, `#` comments).
pub fn parse_history(text: &str) -> Result<Vec<HistoryEntry>, String> {
    let mut out: Vec<HistoryEntry> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(tli), Some(lsn)) = (fields.next(), fields.next()) else {
            return Err(format!(
                "line {}: expected `<timeline> <switch LSN>`",
                n + 1
            ));
        };
        let timeline: u32 = tli
            .parse()
            .map_err(|_| format!("line {}: timeline {tli:?} is not a number", n + 1))?;
        let switch =
            Lsn::parse(lsn).ok_or_else(|| format!("line {}: {lsn:?} is not an LSN", n + 1))?;
        if let Some(prev) = out.last()
            && (timeline <= prev.timeline || switch < prev.switch)
        {
            return Err(format!(
                "line {}: timelines and switch points must increase",
                n + 1
            ));
        }
        out.push(HistoryEntry { timeline, switch });
    }
    if out.is_empty() {
        return Err("no entries".into());
    }
    Ok(out)
}

/// What the sentinel or `metadata.json` says about a backup; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupDocument {
    pub start_time: Option<DateTime<Utc>>,
    pub finish_time: Option<DateTime<Utc>>,
    pub start_lsn: Option<Lsn>,
    pub finish_lsn: Option<Lsn>,
    pub is_permanent: bool,
    /// Delta backups: the backup this one is a delta from.
    pub delta_from: Option<String>,
}

fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// LSNs are JSON numbers in WAL-G documents; `X/Y` and decimal strings are accepted too.
fn json_lsn(v: Option<&Value>) -> Option<Lsn> {
    match v? {
        Value::Number(n) => n.as_u64().map(Lsn),
        Value::String(s) => s.parse::<u64>().ok().map(Lsn).or_else(|| Lsn::parse(s)),
        _ => None,
    }
}

fn json_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let s = v?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        // Go's zero time, written when a field was never set.
        .filter(|t| t.timestamp() > 0)
}

/// `basebackups_005/<name>/metadata.json` (`ExtendedMetadataDto`).
pub fn parse_metadata(body: &[u8]) -> Result<BackupDocument, String> {
    let m = json_object(body)?;
    let doc = BackupDocument {
        start_time: json_time(m.get("start_time")),
        finish_time: json_time(m.get("finish_time")),
        start_lsn: json_lsn(m.get("start_lsn")),
        finish_lsn: json_lsn(m.get("finish_lsn")),
        is_permanent: m
            .get("is_permanent")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        delta_from: None,
    };
    if doc.finish_time.is_none() {
        return Err("no finish_time".into());
    }
    Ok(doc)
}

/// `basebackups_005/<name>_backup_stop_sentinel.json` (`BackupSentinelDto`). Ordinary WAL-G
/// sentinels carry no times; StackGres's volume-snapshot ones add `StartTime`/`FinishTime`.
pub fn parse_sentinel(body: &[u8]) -> Result<BackupDocument, String> {
    let m = json_object(body)?;
    Ok(BackupDocument {
        start_time: json_time(m.get("StartTime")),
        finish_time: json_time(m.get("FinishTime")),
        start_lsn: json_lsn(m.get("LSN")),
        finish_lsn: json_lsn(m.get("FinishLSN")),
        is_permanent: m
            .get("IsPermanent")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        delta_from: m
            .get("DeltaFrom")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

/// An object as listed: key relative to the cluster's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub last_modified: DateTime<Utc>,
    pub size: i64,
}

/// Everything under one cluster's WAL-G prefix: the listing, and the bodies of the objects
/// [`needs_body`] asked for (a failed read holds its error).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub objects: Vec<ListedObject>,
    pub bodies: BTreeMap<String, Result<Vec<u8>, String>>,
}

/// Whether the window needs this object's content: sentinels, `metadata.json`, and history
/// files stored uncompressed (compressed ones are read from their names only).
pub fn needs_body(key: &str) -> bool {
    if let Some(rest) = key.strip_prefix(BASEBACKUPS_DIR) {
        return backup_name_of_sentinel(rest).is_some()
            || rest
                .strip_suffix(METADATA_FILE)
                .and_then(|d| d.strip_suffix('/'))
                .is_some_and(|name| !name.contains('/'));
    }
    if let Some(name) = key.strip_prefix(WAL_DIR) {
        return matches!(parse_wal_file(name), WalFile::History { .. })
            && strip_compression(name).1.is_none();
    }
    false
}

fn backup_name_of_sentinel(rest: &str) -> Option<&str> {
    rest.strip_suffix(SENTINEL_SUFFIX)
        .filter(|name| !name.contains('/') && !name.is_empty())
}

/// `base_<24 hex>` with an optional delta suffix `_D_<24 hex>`.
fn backup_start(name: &str) -> Option<SegmentName> {
    SegmentName::parse(name.strip_prefix("base_")?.get(..24)?)
}

fn delta_parent_from_name(name: &str) -> Option<String> {
    let (_, from) = name.split_once("_D_")?;
    SegmentName::parse(from.get(..24)?)?;
    Some(format!("base_{}", &from[..24]))
}

/// Where a backup's finish time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishSource {
    Metadata,
    Sentinel,
    /// No readable time: the sentinel object's LastModified (at or after the real finish).
    SentinelLastModified,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBackup {
    pub name: String,
    pub start: SegmentName,
    /// The sentinel exists: WAL-G uploads it last.
    pub complete: bool,
    /// Sentinel LastModified (`wal-g backup-list` calls it `time`).
    pub stored: Option<DateTime<Utc>>,
    pub start_time: Option<DateTime<Utc>>,
    pub finish_time: Option<DateTime<Utc>>,
    pub finish_source: Option<FinishSource>,
    pub finish_lsn: Option<Lsn>,
    pub is_permanent: bool,
    pub delta_from: Option<String>,
    /// Unreadable documents and the like.
    pub notes: Vec<String>,
}

/// The base backups under `basebackups_005/`, oldest start first.
pub fn base_backups(listing: &Listing) -> Vec<BaseBackup> {
    let mut names: BTreeMap<String, Option<DateTime<Utc>>> = BTreeMap::new();
    for o in &listing.objects {
        let Some(rest) = o.key.strip_prefix(BASEBACKUPS_DIR) else {
            continue;
        };
        if let Some(name) = backup_name_of_sentinel(rest) {
            names.insert(name.to_string(), Some(o.last_modified));
        } else if let Some((name, _)) = rest.split_once('/') {
            names.entry(name.to_string()).or_insert(None);
        }
    }
    let mut out = Vec::new();
    for (name, stored) in names {
        let Some(start) = backup_start(&name) else {
            continue;
        };
        let mut notes = Vec::new();
        let body = |key: String| listing.bodies.get(&key);
        let sentinel = match body(format!("{BASEBACKUPS_DIR}{name}{SENTINEL_SUFFIX}")) {
            Some(Ok(b)) => match parse_sentinel(b) {
                Ok(d) => Some(d),
                Err(e) => {
                    notes.push(format!("sentinel unreadable: {e}"));
                    None
                }
            },
            Some(Err(e)) => {
                notes.push(format!("sentinel unreadable: {e}"));
                None
            }
            None => None,
        };
        let metadata = match body(format!("{BASEBACKUPS_DIR}{name}/{METADATA_FILE}")) {
            Some(Ok(b)) => match parse_metadata(b) {
                Ok(d) => Some(d),
                Err(e) => {
                    notes.push(format!("metadata.json unreadable: {e}"));
                    None
                }
            },
            Some(Err(e)) => {
                notes.push(format!("metadata.json unreadable: {e}"));
                None
            }
            None => {
                if stored.is_some() {
                    notes.push("no metadata.json".into());
                }
                None
            }
        };
        let s = sentinel.unwrap_or_default();
        let m = metadata.unwrap_or_default();
        let (finish_time, finish_source) = if let Some(t) = m.finish_time {
            (Some(t), Some(FinishSource::Metadata))
        } else if let Some(t) = s.finish_time {
            (Some(t), Some(FinishSource::Sentinel))
        } else if let Some(t) = stored {
            (Some(t), Some(FinishSource::SentinelLastModified))
        } else {
            (None, None)
        };
        out.push(BaseBackup {
            start,
            complete: stored.is_some(),
            stored,
            start_time: m.start_time.or(s.start_time),
            finish_time,
            finish_source,
            finish_lsn: m.finish_lsn.or(s.finish_lsn),
            is_permanent: m.is_permanent || s.is_permanent,
            delta_from: s.delta_from.or_else(|| delta_parent_from_name(&name)),
            name,
            notes,
        });
    }
    out.sort_by(|a, b| (a.start.segno, &a.name).cmp(&(b.start.segno, &b.name)));
    out
}

/// How a timeline's first segment on the chain was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchSource {
    /// The first timeline of the chain.
    Root,
    /// Read from an uncompressed history file.
    HistoryFile,
    /// From segment names: the timeline's first archived segment (its history file is
    /// compressed, unreadable or missing).
    SegmentNames,
}

/// A stretch of the chain: segments `[first, end)` are read from `timeline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineSpan {
    pub timeline: u32,
    pub first: u64,
    /// Exclusive; `None` for the latest timeline.
    pub end: Option<u64>,
    pub source: SwitchSource,
}

/// Segments missing from the chain, and what that does to recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub first_missing: SegmentName,
    pub last_missing: SegmentName,
    /// Recovery reaches this far: LastModified of the segment before the gap.
    pub recoverable_until: DateTime<Utc>,
    pub last_before: SegmentName,
    /// Recovery is possible again from the finish of this base backup; `None` = WAL was
    /// archived after the gap but no base backup followed it, so that WAL is unusable.
    pub resumes_at: Option<(String, DateTime<Utc>)>,
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
        match &self.resumes_at {
            Some((backup, at)) => format!(
                "WAL gap: {missing}; no recovery between {} (LastModified of {}) and {} (base backup {backup} finished)",
                fmt_time(self.recoverable_until),
                self.last_before,
                fmt_time(*at)
            ),
            None => format!(
                "WAL gap: {missing}; WAL archived after it is unusable until a new base backup completes",
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Finish time of the oldest usable complete base backup.
    pub start: DateTime<Utc>,
    /// LastModified of `last_segment` (the proxy; see [`END_PROXY_NOTE`]).
    pub end: DateTime<Utc>,
    pub oldest_backup: String,
    pub last_segment: SegmentName,
    /// Holes inside the window (`resumes_at` set), then one after its end if WAL continues
    /// past a gap no base backup bridges.
    pub gaps: Vec<Gap>,
    /// The latest timeline's history, oldest first.
    pub timelines: Vec<TimelineSpan>,
    pub complete_backups: usize,
    /// Base backups that do not count, inferred switch points, and the like.
    pub notes: Vec<String>,
}

impl Window {
    pub fn recovery_window(&self) -> RecoveryWindow {
        RecoveryWindow {
            start: self.start,
            end: self.end,
        }
    }

    /// `2026-03-01T01:00:00Z … 2026-03-02T00:00:00Z`.
    pub fn range(&self) -> String {
        format!("{} … {}", fmt_time(self.start), fmt_time(self.end))
    }

    /// The window with where each bound comes from.
    pub fn describe(&self) -> String {
        format!(
            "recoverable window {} (from the finish of base backup {} to segment {}; {})",
            self.range(),
            self.oldest_backup,
            self.last_segment,
            END_PROXY_NOTE
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowProblem {
    #[error("no base backup under {BASEBACKUPS_DIR}")]
    NoBaseBackup,
    #[error(
        "no complete base backup (no {SENTINEL_SUFFIX} sentinel); unfinished: {}",
        .unfinished.join(", ")
    )]
    NoCompleteBackup { unfinished: Vec<String> },
    #[error("no usable base backup: {}", .reasons.join("; "))]
    NoUsableBackup { reasons: Vec<String> },
}

struct Segments {
    /// Full segments: timeline → segno → LastModified (the latest upload if repeated).
    full: BTreeMap<u32, BTreeMap<u64, DateTime<Utc>>>,
    partial: BTreeMap<u32, BTreeSet<u64>>,
    /// Timeline → readable history (`None`: compressed; `Some(Err)`: unreadable).
    history: BTreeMap<u32, Option<Result<Vec<HistoryEntry>, String>>>,
    history_ext: BTreeMap<u32, &'static str>,
}

fn segments(listing: &Listing) -> Segments {
    let mut s = Segments {
        full: BTreeMap::new(),
        partial: BTreeMap::new(),
        history: BTreeMap::new(),
        history_ext: BTreeMap::new(),
    };
    for o in &listing.objects {
        let Some(name) = o.key.strip_prefix(WAL_DIR) else {
            continue;
        };
        match parse_wal_file(name) {
            WalFile::Segment(seg) => {
                let t = s
                    .full
                    .entry(seg.timeline)
                    .or_default()
                    .entry(seg.segno)
                    .or_insert(o.last_modified);
                *t = (*t).max(o.last_modified);
            }
            WalFile::Partial(seg) => {
                s.partial.entry(seg.timeline).or_default().insert(seg.segno);
            }
            WalFile::History { timeline } => {
                let parsed = match (strip_compression(name).1, listing.bodies.get(&o.key)) {
                    (Some(ext), _) => {
                        s.history_ext.insert(timeline, ext);
                        None
                    }
                    (None, Some(Ok(body))) => Some(
                        std::str::from_utf8(body)
                            .map_err(|_| "not text".to_string())
                            .and_then(parse_history),
                    ),
                    (None, Some(Err(e))) => Some(Err(e.clone())),
                    (None, None) => Some(Err("not fetched".into())),
                };
                // A readable copy wins over a compressed one.
                match s.history.get(&timeline) {
                    Some(Some(Ok(_))) => {}
                    _ => {
                        s.history.insert(timeline, parsed);
                    }
                }
            }
            WalFile::BackupLabel(_) | WalFile::Other => {}
        }
    }
    s
}

/// The latest timeline's ancestry as spans, oldest first, plus notes on inferred switches.
fn timeline_chain(s: &Segments) -> (Vec<TimelineSpan>, Vec<String>) {
    let mut notes = Vec::new();
    let known: BTreeSet<u32> = s
        .full
        .keys()
        .chain(s.history.keys())
        .chain(s.partial.keys())
        .copied()
        .collect();
    let Some(&latest) = s.full.keys().chain(s.history.keys()).max() else {
        return (Vec::new(), notes);
    };
    let mut spans: Vec<TimelineSpan> = Vec::new();
    let mut cur = latest;
    let mut end: Option<u64> = None;
    loop {
        if let Some(Some(Ok(entries))) = s.history.get(&cur) {
            let first = entries.last().map_or(0, |e| e.switch.segno());
            spans.push(TimelineSpan {
                timeline: cur,
                first,
                end,
                source: SwitchSource::HistoryFile,
            });
            let mut next_first = first;
            for (i, e) in entries.iter().enumerate().rev() {
                let first = if i == 0 {
                    0
                } else {
                    entries[i - 1].switch.segno()
                };
                spans.push(TimelineSpan {
                    timeline: e.timeline,
                    first,
                    end: Some(next_first),
                    source: if i == 0 {
                        SwitchSource::Root
                    } else {
                        SwitchSource::HistoryFile
                    },
                });
                next_first = first;
            }
            break;
        }
        let parent = known.range(..cur).next_back().copied();
        let Some(parent) = parent else {
            spans.push(TimelineSpan {
                timeline: cur,
                first: 0,
                end,
                source: SwitchSource::Root,
            });
            break;
        };
        // The new timeline starts with a copy of the segment holding the switch point; the
        // parent's own copy of it is archived as `.partial`.
        let first = s
            .full
            .get(&cur)
            .and_then(|m| m.keys().next().copied())
            .or_else(|| {
                s.partial
                    .get(&parent)
                    .and_then(|p| p.iter().next_back().copied())
            });
        let why = match s.history.get(&cur) {
            Some(None) => format!(
                "its history file is {}-compressed",
                s.history_ext.get(&cur).copied().unwrap_or("")
            ),
            Some(Some(Err(e))) => format!("its history file is unreadable: {e}"),
            _ => "it has no history file".to_string(),
        };
        match first {
            Some(first) => {
                notes.push(format!(
                    "timeline {cur}: switch from timeline {parent} at segment {} taken from segment names ({why})",
                    SegmentName::new(cur, first)
                ));
                spans.push(TimelineSpan {
                    timeline: cur,
                    first,
                    end,
                    source: SwitchSource::SegmentNames,
                });
                end = Some(first);
            }
            None => notes.push(format!(
                "timeline {cur} has no archived segment yet; following timeline {parent}"
            )),
        }
        cur = parent;
    }
    spans.reverse();
    // Empty stretches (two switches inside one segment) say nothing.
    spans.retain(|sp| sp.end.is_none_or(|e| e > sp.first));
    (spans, notes)
}

fn timeline_at(spans: &[TimelineSpan], segno: u64) -> Option<u32> {
    spans
        .iter()
        .find(|sp| sp.first <= segno && sp.end.is_none_or(|e| segno < e))
        .map(|sp| sp.timeline)
}

/// What one usable base backup makes recoverable.
struct Coverage {
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    backup: String,
    /// Last segment number of the contiguous run from the backup's start.
    run_end: u64,
}

struct Chain<'a> {
    spans: &'a [TimelineSpan],
    /// The chain's segments archived in full: segno → (timeline, LastModified).
    present: &'a BTreeMap<u64, (u32, DateTime<Utc>)>,
    /// Names of the complete backups.
    complete: &'a BTreeSet<&'a str>,
}

impl Chain<'_> {
    /// The contiguous run holding `segno`: its last segment number.
    fn run_end(&self, segno: u64) -> Option<u64> {
        self.present.get(&segno)?;
        let mut n = segno;
        while self.present.contains_key(&(n + 1)) {
            n += 1;
        }
        Some(n)
    }

    /// What `b` covers, or why it covers nothing.
    fn coverage(&self, b: &BaseBackup) -> Result<Coverage, String> {
        if let Some(from) = &b.delta_from
            && !self.complete.iter().any(|n| n.starts_with(from.as_str()))
        {
            return Err(format!("delta from {from}, which is not in storage"));
        }
        let on_chain = timeline_at(self.spans, b.start.segno);
        if on_chain != Some(b.start.timeline) {
            return Err(match on_chain {
                Some(t) => format!(
                    "started on timeline {}, which the latest timeline does not follow there (it reads timeline {t})",
                    b.start.timeline
                ),
                None => format!(
                    "its start segment {} is missing (no WAL archived for timeline {})",
                    b.start, b.start.timeline
                ),
            });
        }
        let Some(end) = self.run_end(b.start.segno) else {
            return Err(format!("its start segment {} is missing", b.start));
        };
        if let Some(lsn) = b.finish_lsn
            && lsn.segno() > end
        {
            let at = timeline_at(self.spans, end + 1).unwrap_or(b.start.timeline);
            return Err(format!(
                "WAL up to its end ({lsn}) is incomplete: segment {} is missing",
                SegmentName::new(at, end + 1)
            ));
        }
        let finish = b.finish_time.ok_or("no finish time")?;
        let (tli, until) = self.present[&end];
        if finish > until {
            return Err(format!(
                "finished at {} but its WAL run ends at {} (LastModified of {})",
                fmt_time(finish),
                fmt_time(until),
                SegmentName::new(tli, end)
            ));
        }
        Ok(Coverage {
            from: finish,
            until,
            backup: b.name.clone(),
            run_end: end,
        })
    }
}

/// The recoverable window of one database cluster, from its listing.
pub fn recoverable_window(listing: &Listing) -> Result<Window, WindowProblem> {
    let backups = base_backups(listing);
    if backups.is_empty() {
        return Err(WindowProblem::NoBaseBackup);
    }
    let complete: Vec<&BaseBackup> = backups.iter().filter(|b| b.complete).collect();
    if complete.is_empty() {
        return Err(WindowProblem::NoCompleteBackup {
            unfinished: backups.iter().map(|b| b.name.clone()).collect(),
        });
    }
    let segs = segments(listing);
    let (spans, mut notes) = timeline_chain(&segs);

    // The chain's segments that are archived in full: segno → (timeline, LastModified).
    let mut present: BTreeMap<u64, (u32, DateTime<Utc>)> = BTreeMap::new();
    for sp in &spans {
        if let Some(m) = segs.full.get(&sp.timeline) {
            for (&segno, &t) in m.range(sp.first..sp.end.unwrap_or(u64::MAX)) {
                present.insert(segno, (sp.timeline, t));
            }
        }
    }
    let names: BTreeSet<&str> = complete.iter().map(|b| b.name.as_str()).collect();

    // Each usable backup covers [its finish, LastModified of the end of its run].
    let chain = Chain {
        spans: &spans,
        present: &present,
        complete: &names,
    };
    let mut reasons = Vec::new();
    let mut ranges: Vec<Coverage> = Vec::new();
    for b in &complete {
        for n in &b.notes {
            notes.push(format!("{}: {n}", b.name));
        }
        if b.finish_source == Some(FinishSource::SentinelLastModified) {
            notes.push(format!(
                "{}: finish time taken from the sentinel's LastModified",
                b.name
            ));
        }
        match chain.coverage(b) {
            Ok(c) => ranges.push(c),
            Err(why) => reasons.push(format!("{}: {why}", b.name)),
        }
    }
    if ranges.is_empty() {
        return Err(WindowProblem::NoUsableBackup { reasons });
    }
    for r in &reasons {
        notes.push(format!("not usable: {r}"));
    }
    ranges.sort_by_key(|r| (r.from, r.run_end));

    // Merge; holes between merged ranges are gaps.
    let mut merged: Vec<Coverage> = Vec::new();
    let mut gaps = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.from <= last.until => {
                if (r.until, r.run_end) > (last.until, last.run_end) {
                    last.until = r.until;
                    last.run_end = r.run_end;
                }
            }
            _ => merged.push(r),
        }
    }
    let gap_after = |end: u64| -> Option<(SegmentName, SegmentName, SegmentName, DateTime<Utc>)> {
        let (&next, _) = present.range(end + 1..).next()?;
        let (tli_before, until) = present[&end];
        let missing = |n: u64| SegmentName::new(timeline_at(&spans, n).unwrap_or(tli_before), n);
        Some((
            missing(end + 1),
            missing(next - 1),
            SegmentName::new(tli_before, end),
            until,
        ))
    };
    for pair in merged.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        if let Some((first_missing, last_missing, last_before, until)) = gap_after(prev.run_end) {
            gaps.push(Gap {
                first_missing,
                last_missing,
                recoverable_until: until,
                last_before,
                resumes_at: Some((next.backup.clone(), next.from)),
            });
        }
    }
    let first = &merged[0];
    let last = &merged[merged.len() - 1];
    if let Some((first_missing, last_missing, last_before, until)) = gap_after(last.run_end) {
        gaps.push(Gap {
            first_missing,
            last_missing,
            recoverable_until: until,
            last_before,
            resumes_at: None,
        });
    }
    Ok(Window {
        start: first.from,
        end: last.until,
        oldest_backup: first.backup.clone(),
        last_segment: SegmentName::new(present[&last.run_end].0, last.run_end),
        gaps,
        timelines: spans,
        complete_backups: complete.len(),
        notes,
    })
}

/// Whether a point-in-time target can be reached; the refusal shows the window.
pub fn check_target(window: &Window, target: DateTime<Utc>) -> Result<(), String> {
    let t = fmt_time(target);
    if target < window.start {
        return Err(format!(
            "target {t} is before the recoverable window: the oldest complete base backup {} finished at {}, and a restore cannot stop before a base backup's end; {}",
            window.oldest_backup,
            fmt_time(window.start),
            window.describe()
        ));
    }
    if target > window.end {
        let mut msg = format!(
            "target {t} is after the recoverable window: the last contiguous WAL segment {} was uploaded at {}; {}",
            window.last_segment,
            fmt_time(window.end),
            window.describe()
        );
        if let Some(gap) = window.gaps.iter().find(|g| g.resumes_at.is_none()) {
            msg.push_str(&format!("; {}", gap.describe()));
        }
        return Err(msg);
    }
    for gap in &window.gaps {
        if let Some((_, resumes)) = &gap.resumes_at
            && gap.recoverable_until < target
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

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

        /// Segments `from..=to` on `tli`, segment n uploaded at minute `first + (n - from) * step`.
        fn wal(&mut self, tli: u32, from: u64, to: u64, first: i64, step: i64) -> &mut Self {
            for n in from..=to {
                let name = SegmentName::new(tli, n).to_string();
                self.object(
                    format!("{WAL_DIR}{name}.lz4"),
                    first + (n - from) as i64 * step,
                    None,
                );
            }
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
        let h =
            parse_history("1\t0/5000A28\tno recovery target specified\n\n# c\n2\t0/9000000\tx\n")
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
        let mut s = Seed::default();
        s.backup("000000010000000000000002", 60, true)
            .backup("000000010000000000000010", 600, true)
            .wal(1, 2, 0x20, 50, 30);
        let w = s.window().unwrap();
        assert_eq!(w.start, at(60));
        assert_eq!(w.oldest_backup, "base_000000010000000000000002");
        assert_eq!(w.last_segment, seg(1, 0x20));
        assert_eq!(w.end, at(50 + 30 * 30));
        assert!(w.gaps.is_empty(), "{:?}", w.gaps);
        assert_eq!(w.complete_backups, 2);
        assert_eq!(w.recovery_window().start, w.start);
        assert!(check_target(&w, at(60)).is_ok());
        assert!(check_target(&w, w.end).is_ok());
        assert!(check_target(&w, at(300)).is_ok());
    }

    #[test]
    fn target_before_the_oldest_finish_is_refused_with_the_window() {
        let mut s = Seed::default();
        s.backup("000000010000000000000002", 60, true)
            .wal(1, 2, 8, 50, 30);
        let w = s.window().unwrap();
        // During the backup (it started at minute 50) is not enough.
        let e = check_target(&w, at(59)).unwrap_err();
        assert!(e.contains("before the recoverable window"), "{e}");
        assert!(e.contains("base_000000010000000000000002"), "{e}");
        assert!(
            e.contains("2026-03-01T01:00:00Z … 2026-03-01T03:50:00Z"),
            "{e}"
        );
        assert!(e.contains("LastModified"), "{e}");
    }

    #[test]
    fn target_after_the_last_segment_is_refused_saying_lastmodified_is_the_proxy() {
        let mut s = Seed::default();
        s.backup("000000010000000000000002", 60, true)
            .wal(1, 2, 8, 50, 30);
        let w = s.window().unwrap();
        let e = check_target(&w, w.end + Duration::seconds(1)).unwrap_err();
        assert!(e.contains("after the recoverable window"), "{e}");
        assert!(e.contains("000000010000000000000008"), "{e}");
        assert!(e.contains("LastModified"), "{e}");
        assert!(e.contains("proxy"), "{e}");
    }

    #[test]
    fn a_wal_gap_bridged_by_a_later_backup_is_a_hole_in_the_window() {
        let mut s = Seed::default();
        // Segments 2..=6 (last at minute 170), 7 and 8 lost, 9.. again; backup at 9 ends 400.
        s.backup("000000010000000000000002", 60, true)
            .backup("000000010000000000000009", 400, true)
            .wal(1, 2, 6, 50, 30)
            .wal(1, 9, 12, 390, 30);
        let w = s.window().unwrap();
        assert_eq!((w.start, w.end), (at(60), at(390 + 90)));
        assert_eq!(w.gaps.len(), 1);
        let g = &w.gaps[0];
        assert_eq!((g.first_missing, g.last_missing), (seg(1, 7), seg(1, 8)));
        assert_eq!(g.recoverable_until, at(170));
        assert_eq!(
            g.resumes_at,
            Some(("base_000000010000000000000009".into(), at(400)))
        );
        assert!(check_target(&w, at(170)).is_ok());
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
        let mut s = Seed::default();
        s.backup("000000010000000000000002", 60, true)
            .wal(1, 2, 6, 50, 30)
            .wal(1, 8, 12, 240, 30);
        let w = s.window().unwrap();
        assert_eq!(w.end, at(170));
        assert_eq!(w.last_segment, seg(1, 6));
        assert_eq!(w.gaps.len(), 1);
        assert_eq!(w.gaps[0].resumes_at, None);
        let e = check_target(&w, at(300)).unwrap_err();
        assert!(e.contains("after the recoverable window"), "{e}");
        assert!(
            e.contains("segment 000000010000000000000007 is missing"),
            "{e}"
        );
        assert!(e.contains("new base backup"), "{e}");
    }

    #[test]
    fn the_window_follows_a_timeline_switch_from_a_readable_history_file() {
        let mut s = Seed::default();
        // Promotion in segment 6 (at 0/6000A28): timeline 1 archives 6 as .partial, timeline 2
        // starts with its own copy of 6. The old primary kept writing 6..=9 on timeline 1: not
        // on the latest timeline's history, so not followed.
        s.backup("000000010000000000000002", 60, true)
            .wal(1, 2, 5, 50, 30)
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
        assert_eq!(w.end, at(180 + 4 * 30));
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
        let mut s = Seed::default();
        s.backup("000000010000000000000002", 60, true)
            .wal(1, 2, 5, 50, 30)
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
        let mut s = Seed::default();
        // History says timeline 2 starts in segment 6, but only 7.. were archived.
        s.backup("000000010000000000000002", 60, true)
            .wal(1, 2, 5, 50, 30)
            .file("00000002.history", 171, Some("1\t0/6000A28\tx\n"))
            .wal(2, 7, 10, 210, 30);
        let w = s.window().unwrap();
        assert_eq!(w.last_segment, seg(1, 5));
        assert_eq!(w.gaps[0].first_missing, seg(2, 6));
        assert_eq!(w.gaps[0].resumes_at, None);
    }

    #[test]
    fn three_timelines_from_one_history_file() {
        let mut s = Seed::default();
        s.backup("000000010000000000000002", 60, true)
            .wal(1, 2, 5, 50, 30)
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
        let mut s = Seed::default();
        // Timeline 2 branched at segment 6; a backup taken on timeline 1 afterwards (the old
        // primary) cannot reach timeline 2.
        s.backup("000000010000000000000002", 60, true)
            .backup("000000010000000000000008", 300, true)
            .wal(1, 2, 9, 50, 30)
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
        s.backup("000000010000000000000002", 60, false)
            .wal(1, 2, 4, 50, 30);
        assert!(matches!(
            s.window(),
            Err(WindowProblem::NoCompleteBackup { .. })
        ));
        assert_eq!(
            recoverable_window(&Listing::default()),
            Err(WindowProblem::NoBaseBackup)
        );

        // Retention removed the oldest backup's first segments: the next backup starts the window.
        let mut s = Seed::default();
        s.backup("000000010000000000000002", 60, true)
            .backup("000000010000000000000005", 200, true)
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
        let mut s = Seed::default();
        s.backup("000000010000000000000002", 60, true);
        let e = s.window().unwrap_err();
        assert!(e.to_string().contains("start segment"), "{e}");
    }

    #[test]
    fn a_backup_whose_own_wal_is_incomplete_does_not_count() {
        let mut s = Seed::default();
        // finish_lsn is in segment 2 + 0x100 bytes: still segment 2. Make it segment 3.
        s.backup("000000010000000000000002", 60, true);
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
        let mut s = Seed::default();
        s.backup("000000010000000000000002", 60, true)
            .wal(1, 2, 6, 50, 30);
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
        let mut s = Seed::default();
        s.backup("000000010000000000000002", 60, true)
            .wal(1, 2, 12, 50, 30);
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
}
