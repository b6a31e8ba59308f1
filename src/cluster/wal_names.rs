//! The plain names of PostgreSQL WAL: positions (LSNs), 16 MiB segments and the stretches of
//! a timeline chain. The record reader (`wal_records`), the window end (`walg_end`) and the
//! layout (`walg`) all speak of them; kept apart and importing none of those, so those three
//! build on each other in one direction only. `walg` re-exports every name.

use std::fmt;

/// PostgreSQL's default `wal_segment_size`; StackGres does not change it.
pub const WAL_SEGMENT_SIZE: u64 = 16 * 1024 * 1024;
/// Segments per 4 GiB "log id": the middle 8 hex digits of a segment name.
pub const SEGMENTS_PER_LOG: u64 = 0x1_0000_0000 / WAL_SEGMENT_SIZE;

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
