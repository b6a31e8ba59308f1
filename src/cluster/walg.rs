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
//! The window runs from the finish time of the oldest complete base backup to the last
//! commit/abort record archived in the contiguous WAL run from that backup's start segment,
//! along the latest timeline's history. WAL-G keeps no time per segment, and a segment's
//! upload time (`LastModified`) is later than its last commit: PostgreSQL can only stop before
//! a commit after the target ([`super::walg_end`]), so the end is read from the WAL records of
//! the run's last segments ([`super::wal_records`]; the caller fetches what
//! [`segments_to_read`] names into [`Listing::scans`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use super::wal_names::{
    Lsn, SEGMENTS_PER_LOG, SegmentName, SwitchSource, TimelineSpan, WAL_SEGMENT_SIZE,
};
use super::wal_records::SegmentScan;
pub use super::walg_end::{
    BackupWindow, END_NOTE, Gap, LastCommit, STILL_UPLOADING_SECONDS, Window, check_target,
    check_target_from, fmt_commit_time,
};
use super::walg_end::{Lookup, fmt_time, last_commit};

pub const BASEBACKUPS_DIR: &str = "basebackups_005/";
pub const WAL_DIR: &str = "wal_005/";
pub const SENTINEL_SUFFIX: &str = "_backup_stop_sentinel.json";
pub const METADATA_FILE: &str = "metadata.json";
/// Extensions WAL-G appends for its compression methods (none: no extension).
pub const COMPRESSION_EXTENSIONS: &[&str] = &["lz4", "lzma", "zst", "br", "gz"];

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

/// What one kind of backup document calls the fields both kinds carry: start time, finish
/// time, start LSN, finish LSN, permanence.
type DocumentKeys = [&'static str; 5];

/// A backup document's common fields, and the whole object for the rest.
fn backup_document(
    body: &[u8],
    [start_time, finish_time, start_lsn, finish_lsn, is_permanent]: DocumentKeys,
) -> Result<(BackupDocument, serde_json::Map<String, Value>), String> {
    let m = json_object(body)?;
    let doc = BackupDocument {
        start_time: json_time(m.get(start_time)),
        finish_time: json_time(m.get(finish_time)),
        start_lsn: json_lsn(m.get(start_lsn)),
        finish_lsn: json_lsn(m.get(finish_lsn)),
        is_permanent: m
            .get(is_permanent)
            .and_then(Value::as_bool)
            .unwrap_or(false),
        delta_from: None,
    };
    Ok((doc, m))
}

/// `basebackups_005/<name>/metadata.json` (`ExtendedMetadataDto`).
pub fn parse_metadata(body: &[u8]) -> Result<BackupDocument, String> {
    let keys = [
        "start_time",
        "finish_time",
        "start_lsn",
        "finish_lsn",
        "is_permanent",
    ];
    let (doc, _) = backup_document(body, keys)?;
    if doc.finish_time.is_none() {
        return Err("no finish_time".into());
    }
    Ok(doc)
}

/// `basebackups_005/<name>_backup_stop_sentinel.json`. Since wal-g v2.0.0 the uploaded sentinel
/// is `BackupSentinelDtoV2`: the DTO plus `Version`, `StartTime`, `FinishTime`, `DateFmt`,
/// `Hostname`, `DataDir`, `IsPermanent` (wal-g `internal/databases/postgres/
/// backup_sentinel_dto.go` ~180-205); older ones carry no times. `metadata.json` is preferred.
pub fn parse_sentinel(body: &[u8]) -> Result<BackupDocument, String> {
    let keys = ["StartTime", "FinishTime", "LSN", "FinishLSN", "IsPermanent"];
    let (mut doc, m) = backup_document(body, keys)?;
    doc.delta_from = m
        .get("DeltaFrom")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(doc)
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
    /// What the records of the segments [`segments_to_read`] asked for say (a segment that
    /// could not be fetched, decompressed or read holds its error).
    pub scans: BTreeMap<SegmentName, Result<SegmentScan, String>>,
    /// When the listing was taken (the injected clock): a hole whose following segments are
    /// all younger than [`STILL_UPLOADING_SECONDS`] is still uploading. `None`: never.
    pub listed_at: Option<DateTime<Utc>>,
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

/// A backup's document `key` as `parse` reads it: `Ok(None)` when it was not fetched, `Err`
/// the note on why `what` is unreadable.
fn read_document(
    listing: &Listing,
    key: &str,
    what: &str,
    parse: fn(&[u8]) -> Result<BackupDocument, String>,
) -> Result<Option<BackupDocument>, String> {
    match listing.bodies.get(key) {
        Some(Ok(body)) => parse(body).map(Some),
        Some(Err(e)) => Err(e.clone()),
        None => Ok(None),
    }
    .map_err(|e| format!("{what} unreadable: {e}"))
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
        let sentinel_key = format!("{BASEBACKUPS_DIR}{name}{SENTINEL_SUFFIX}");
        let sentinel = read_document(listing, &sentinel_key, "sentinel", parse_sentinel)
            .unwrap_or_else(|e| {
                notes.push(e);
                None
            });
        let metadata_key = format!("{BASEBACKUPS_DIR}{name}/{METADATA_FILE}");
        let metadata = read_document(listing, &metadata_key, "metadata.json", parse_metadata)
            .unwrap_or_else(|e| {
                notes.push(e);
                None
            });
        if stored.is_some() && !listing.bodies.contains_key(&metadata_key) {
            notes.push("no metadata.json".into());
        }
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
    /// The object holding each full segment (the latest upload).
    keys: BTreeMap<SegmentName, String>,
    partial: BTreeMap<u32, BTreeSet<u64>>,
    /// Timeline → readable history (`None`: compressed; `Some(Err)`: unreadable).
    history: BTreeMap<u32, Option<Result<Vec<HistoryEntry>, String>>>,
    history_ext: BTreeMap<u32, &'static str>,
}

fn segments(listing: &Listing) -> Segments {
    let mut s = Segments {
        full: BTreeMap::new(),
        keys: BTreeMap::new(),
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
                if o.last_modified >= *t || !s.keys.contains_key(&seg) {
                    s.keys.insert(seg, o.key.clone());
                }
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
    /// Exclusive: the last archived commit of its run.
    until: DateTime<Utc>,
    last: LastCommit,
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
    scans: &'a BTreeMap<SegmentName, Result<SegmentScan, String>>,
    /// Segments whose records a window end needs and nobody has read yet.
    unread: std::cell::RefCell<BTreeSet<SegmentName>>,
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
        let last = match last_commit(self.present, self.scans, end, b.start.segno, Some(finish)) {
            Lookup::Found(c) if c.time > finish => c,
            Lookup::Found(c) => {
                return Err(format!(
                    "no commit archived after it finished at {}: {}; a point-in-time target needs a commit after it (a restore to the latest state does not)",
                    fmt_time(finish),
                    c.describe()
                ));
            }
            Lookup::Unread(seg) => {
                self.unread.borrow_mut().insert(seg);
                return Err(format!("WAL segment {seg} has not been read yet"));
            }
            Lookup::NotFound(why) => {
                return Err(format!(
                    "no commit/abort record archived in its WAL run after it finished at {}{}",
                    fmt_time(finish),
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", why.join("; "))
                    }
                ));
            }
        };
        Ok(Coverage {
            from: finish,
            until: last.time,
            last,
            backup: b.name.clone(),
            run_end: end,
        })
    }

    /// The hole after the run ending at `end`, if WAL goes on after it.
    fn gap_after(
        &self,
        end: u64,
        listed_at: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        resumes_at: Option<(String, DateTime<Utc>)>,
    ) -> Option<Gap> {
        let (&next, _) = self.present.range(end + 1..).next()?;
        let tli_before = self.present[&end].0;
        let missing =
            |n: u64| SegmentName::new(timeline_at(self.spans, n).unwrap_or(tli_before), n);
        let still_uploading = resumes_at.is_none()
            && listed_at.is_some_and(|now| {
                let young = now - chrono::Duration::seconds(STILL_UPLOADING_SECONDS);
                self.present
                    .range(next..)
                    .all(|(_, (_, uploaded))| *uploaded >= young)
            });
        Some(Gap {
            first_missing: missing(end + 1),
            last_missing: missing(next - 1),
            recoverable_until: until,
            last_before: SegmentName::new(tli_before, end),
            resumes_at,
            still_uploading,
        })
    }
}

/// The recoverable window of one database cluster, from its listing and the records of the
/// segments [`segments_to_read`] named.
pub fn recoverable_window(listing: &Listing) -> Result<Window, WindowProblem> {
    compute(listing).0
}

/// WAL objects (keys under the prefix) whose records the window still needs: the tail of
/// each WAL run, walking back past segments without a commit. Read them into
/// [`Listing::scans`] and ask again until none is left.
pub fn segments_to_read(listing: &Listing) -> Vec<String> {
    let (_, unread, keys) = compute(listing);
    unread.iter().filter_map(|s| keys.get(s).cloned()).collect()
}

type Computed = (
    Result<Window, WindowProblem>,
    BTreeSet<SegmentName>,
    BTreeMap<SegmentName, String>,
);

fn compute(listing: &Listing) -> Computed {
    let segs = segments(listing);
    let backups = base_backups(listing);
    if backups.is_empty() {
        return (Err(WindowProblem::NoBaseBackup), BTreeSet::new(), segs.keys);
    }
    let complete: Vec<&BaseBackup> = backups.iter().filter(|b| b.complete).collect();
    if complete.is_empty() {
        let unfinished = backups.iter().map(|b| b.name.clone()).collect();
        return (
            Err(WindowProblem::NoCompleteBackup { unfinished }),
            BTreeSet::new(),
            segs.keys,
        );
    }
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

    // Each usable backup covers [its finish, its run's last archived commit).
    let chain = Chain {
        spans: &spans,
        present: &present,
        complete: &names,
        scans: &listing.scans,
        unread: Default::default(),
    };
    let mut reasons = Vec::new();
    let mut unusable = Vec::new();
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
            Err(why) => {
                reasons.push(format!("{}: {why}", b.name));
                unusable.push((b.name.clone(), why));
            }
        }
    }
    let unread = chain.unread.take();
    if ranges.is_empty() {
        return (
            Err(WindowProblem::NoUsableBackup { reasons }),
            unread,
            segs.keys,
        );
    }
    for r in &reasons {
        notes.push(format!("not usable: {r}"));
    }
    ranges.sort_by_key(|r| (r.from, r.run_end));
    let backup_windows = ranges
        .iter()
        .map(|r| {
            // The first usable backup starting after this run's end bridges its hole.
            let resumes = ranges
                .iter()
                .filter(|o| o.run_end > r.run_end)
                .min_by_key(|o| o.from)
                .map(|o| (o.backup.clone(), o.from));
            BackupWindow {
                name: r.backup.clone(),
                start: r.from,
                end: r.until,
                last_commit: r.last,
                last_segment: SegmentName::new(present[&r.run_end].0, r.run_end),
                gap_after: chain.gap_after(r.run_end, listing.listed_at, r.until, resumes),
            }
        })
        .collect();

    // Merge; holes between merged ranges are gaps.
    let mut merged: Vec<Coverage> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.from < last.until => {
                if (r.until, r.run_end) > (last.until, last.run_end) {
                    last.until = r.until;
                    last.last = r.last;
                    last.run_end = r.run_end;
                }
            }
            _ => merged.push(r),
        }
    }
    let mut gaps = Vec::new();
    for pair in merged.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        let resumes = Some((next.backup.clone(), next.from));
        gaps.extend(chain.gap_after(prev.run_end, None, prev.until, resumes));
    }
    let first = &merged[0];
    let last = &merged[merged.len() - 1];
    gaps.extend(chain.gap_after(last.run_end, listing.listed_at, last.until, None));
    let window = Window {
        start: first.from,
        end: last.until,
        oldest_backup: first.backup.clone(),
        last_segment: SegmentName::new(present[&last.run_end].0, last.run_end),
        last_commit: last.last,
        gaps,
        timelines: spans.clone(),
        complete_backups: complete.len(),
        backups: backup_windows,
        unusable,
        notes,
    };
    (Ok(window), unread, segs.keys)
}

#[cfg(test)]
#[path = "walg_tests.rs"]
mod tests;
