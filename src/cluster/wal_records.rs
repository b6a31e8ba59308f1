//! Walk the records of one archived WAL segment and find its last transaction end (commit or
//! abort), the only records a `recovery_target_time` can stop at. Pure: bytes in, times out.
//!
//! PostgreSQL's recovery stops before the first commit/abort whose `xact_time` is after the
//! target (`recoveryStopsBefore`, xlogrecovery.c: `stopsHere = (recordXtime >
//! recoveryTargetTime)` with the default `recovery_target_inclusive = on`). With none, replay
//! runs out of WAL and fails with FATAL "recovery ended before configured recovery target was
//! reached". So the last archived commit/abort, not the segment's upload time, ends the window.
//!
//! The layout follows PostgreSQL's headers (read in postgres/postgres, and checked against
//! real PostgreSQL 15 WAL and its `pg_waldump`, see the fixture tests):
//! - `xlog_internal.h`: `XLogPageHeaderData` (magic u16, info u16, tli u32, pageaddr u64,
//!   rem_len u32: 24 bytes MAXALIGNed) and the long form on a segment's first page (+ sysid
//!   u64, seg_size u32, xlog_blcksz u32: 40 bytes); `XLP_FIRST_IS_CONTRECORD` 0x0001,
//!   `XLP_LONG_HEADER` 0x0002;
//! - `xlogrecord.h`: `XLogRecord` (tot_len u32, xid u32, prev u64, info u8, rmid u8, 2 pad,
//!   crc u32: 24 bytes), block headers, `XLR_BLOCK_ID_DATA_SHORT` 255 / `_LONG` 254 /
//!   `_ORIGIN` 253 / `_TOPLEVEL_XID` 252, `XLR_MAX_BLOCK_ID` 32, `BKPBLOCK_*`, `BKPIMAGE_*`;
//! - `xlogreader.c`: records MAXALIGNed (8), a record continues on the next page after that
//!   page's header, whose `xlp_rem_len` must equal what is left; `DecodeXLogRecord` puts the
//!   main data after all block data; the CRC-32C covers the record after its header, then the
//!   header up to `xl_crc` (`ValidXLogRecord`);
//! - `xact.h`: `RM_XACT_ID` 1, `XLOG_XACT_OPMASK` 0x70, COMMIT 0x00, ABORT 0x20,
//!   COMMIT_PREPARED 0x30, ABORT_PREPARED 0x40; `xl_xact_commit`/`xl_xact_abort` start with
//!   `TimestampTz xact_time` (microseconds since 2000-01-01 00:00 UTC).
//!
//! Like PostgreSQL's reader, the walk stops at the first invalid page or record (wrong page
//! address, broken `xl_prev` chain, bad CRC, zeros): that is the end of valid WAL in the file.
//! A recycled segment holds an older segment's bytes after that point.

use chrono::{DateTime, Utc};

use super::wal_names::{Lsn, SegmentName, WAL_SEGMENT_SIZE};

/// Page magics drbot reads, by PostgreSQL major. 0xD110 (15) is confirmed on real PostgreSQL 15
/// WAL (fixture tests); 13, 14, 16 and 17 are unverified: taken from copies of
/// `xlog_internal.h` in other projects, not read at the release tags. A misread layout fails
/// the record CRC and stops the walk early, which can only shorten the window.
pub const PAGE_MAGICS: &[(u16, u32)] = &[
    (0xD106, 13),
    (0xD10D, 14),
    (0xD110, 15),
    (0xD113, 16),
    (0xD116, 17),
];

const SHORT_PAGE_HEADER: usize = 24;
const LONG_PAGE_HEADER: usize = 40;
const XLP_FIRST_IS_CONTRECORD: u16 = 0x0001;
const XLP_LONG_HEADER: u16 = 0x0002;
/// PostgreSQL 15's `XLP_ALL_FLAGS` (0x0004 `XLP_BKP_REMOVABLE` is set on real PG 15 pages).
const XLP_ALL_FLAGS: u16 = 0x000F;
const RECORD_HEADER: usize = 24;
const RM_XLOG_ID: u8 = 0;
const RM_XACT_ID: u8 = 1;
const XLOG_SWITCH: u8 = 0x40;
const XLOG_XACT_OPMASK: u8 = 0x70;
const XLR_MAX_BLOCK_ID: u8 = 32;
const BKPBLOCK_HAS_IMAGE: u8 = 0x10;
const BKPBLOCK_HAS_DATA: u8 = 0x20;
const BKPBLOCK_SAME_REL: u8 = 0x80;
const BKPIMAGE_HAS_HOLE: u8 = 0x01;
/// PostgreSQL 15+: `BKPIMAGE_COMPRESS_PGLZ | _LZ4 | _ZSTD`; before 15, `BKPIMAGE_IS_COMPRESSED`.
const BKPIMAGE_COMPRESSED_15: u8 = 0x04 | 0x08 | 0x10;
const BKPIMAGE_COMPRESSED_14: u8 = 0x02;
/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00 UTC).
const PG_EPOCH_UNIX_SECONDS: i64 = 946_684_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XactKind {
    Commit,
    Abort,
    CommitPrepared,
    AbortPrepared,
}

impl XactKind {
    fn of(info: u8) -> Option<XactKind> {
        match info & XLOG_XACT_OPMASK {
            0x00 => Some(XactKind::Commit),
            0x20 => Some(XactKind::Abort),
            0x30 => Some(XactKind::CommitPrepared),
            0x40 => Some(XactKind::AbortPrepared),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            XactKind::Commit => "commit",
            XactKind::Abort => "abort",
            XactKind::CommitPrepared => "commit prepared",
            XactKind::AbortPrepared => "abort prepared",
        }
    }
}

/// A commit or abort record: where, when, which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XactEnd {
    pub time: DateTime<Utc>,
    pub lsn: Lsn,
    pub kind: XactKind,
}

/// What one segment holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    pub pg_major: u32,
    /// The last commit/abort whose record is complete in this segment.
    pub last_xact_end: Option<XactEnd>,
    /// Valid records read.
    pub records: u64,
    /// Why the walk stopped before the segment's end, if it did (end of valid WAL).
    pub stopped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WalError(pub String);

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn maxalign(n: usize) -> usize {
    (n + 7) & !7
}

#[derive(Clone, Copy)]
struct PageHeader {
    info: u16,
    rem_len: u32,
    size: usize,
}

/// The walk through one segment's bytes.
struct Walker<'a> {
    data: &'a [u8],
    start_lsn: u64,
    magic: u16,
    blcksz: usize,
    image_compressed: u8,
}

impl Walker<'_> {
    /// The header of the page at `off` if it is valid for this segment, else why not.
    fn page(&self, off: usize) -> Result<PageHeader, String> {
        let lsn = Lsn(self.start_lsn + off as u64);
        let (Some(magic), Some(info), Some(addr), Some(rem_len)) = (
            u16_at(self.data, off),
            u16_at(self.data, off + 2),
            u64_at(self.data, off + 8),
            u32_at(self.data, off + 16),
        ) else {
            return Err(format!("page at {lsn} is cut short"));
        };
        if magic != self.magic {
            return Err(format!(
                "page at {lsn} has magic {magic:#06X}, not {:#06X}",
                self.magic
            ));
        }
        if info & !XLP_ALL_FLAGS != 0 {
            return Err(format!("page at {lsn} has invalid flags {info:#06X}"));
        }
        if addr != lsn.0 {
            return Err(format!(
                "page at {lsn} says it is at {} (left over from a recycled segment)",
                Lsn(addr)
            ));
        }
        let size = if info & XLP_LONG_HEADER != 0 {
            LONG_PAGE_HEADER
        } else {
            SHORT_PAGE_HEADER
        };
        Ok(PageHeader {
            info,
            rem_len,
            size,
        })
    }

    /// Where the first record starting in this segment begins: after whatever continues a
    /// record from the previous segment. `None`: the continuation fills the whole segment.
    fn first_record(&self, first: &PageHeader) -> Result<Option<usize>, String> {
        let mut off = 0;
        let mut header = *first;
        while header.info & XLP_FIRST_IS_CONTRECORD != 0 {
            let end = off + header.size + maxalign(header.rem_len as usize);
            if end < off + self.blcksz {
                return Ok(Some(end));
            }
            off += self.blcksz;
            if off >= self.data.len() {
                return Ok(None);
            }
            header = self.page(off)?;
        }
        Ok(Some(off + header.size))
    }

    /// Collect the record starting at `pos` across page boundaries. `Ok(None)`: it runs past
    /// the segment's end; `Err`: invalid (end of valid WAL).
    fn gather(&self, pos: usize, tot_len: usize) -> Result<Option<(Vec<u8>, usize)>, String> {
        let mut buf = Vec::with_capacity(tot_len);
        let mut cur = pos;
        loop {
            let page_end = (cur / self.blcksz + 1) * self.blcksz;
            let take = (tot_len - buf.len()).min(page_end - cur);
            let Some(bytes) = self.data.get(cur..cur + take) else {
                return Ok(None);
            };
            buf.extend_from_slice(bytes);
            cur += take;
            if buf.len() == tot_len {
                return Ok(Some((buf, cur)));
            }
            if cur >= self.data.len() {
                return Ok(None);
            }
            let header = self.page(cur)?;
            let left = tot_len - buf.len();
            if header.info & XLP_FIRST_IS_CONTRECORD == 0 || header.rem_len as usize != left {
                return Err(format!(
                    "the record at {} continues on page {} without a matching continuation header",
                    Lsn(self.start_lsn + pos as u64),
                    Lsn(self.start_lsn + cur as u64)
                ));
            }
            cur += header.size;
        }
    }
}

/// The main data of a record (`DecodeXLogRecord`: it follows all block data).
fn main_data(rec: &[u8], image_compressed: u8) -> Result<&[u8], String> {
    let short = || "record headers run past the record".to_string();
    let mut p = RECORD_HEADER;
    let mut datatotal: usize = 0;
    let mut main_len: usize = 0;
    let mut max_block: i32 = -1;
    while rec.len() - p > datatotal {
        let id = *rec.get(p).ok_or_else(short)?;
        p += 1;
        match id {
            255 => {
                main_len = *rec.get(p).ok_or_else(short)? as usize;
                datatotal += main_len;
                p += 1;
                break;
            }
            254 => {
                main_len = u32_at(rec, p).ok_or_else(short)? as usize;
                datatotal += main_len;
                p += 4;
                break;
            }
            253 => p += 2,
            252 => p += 4,
            id if id <= XLR_MAX_BLOCK_ID => {
                if i32::from(id) <= max_block {
                    return Err(format!("out-of-order block_id {id}"));
                }
                max_block = i32::from(id);
                let flags = *rec.get(p).ok_or_else(short)?;
                let data_len = u16_at(rec, p + 1).ok_or_else(short)? as usize;
                p += 3;
                if (flags & BKPBLOCK_HAS_DATA != 0) != (data_len != 0) {
                    return Err(format!(
                        "block {id}: data flag and length {data_len} disagree"
                    ));
                }
                datatotal += data_len;
                if flags & BKPBLOCK_HAS_IMAGE != 0 {
                    let image_len = u16_at(rec, p).ok_or_else(short)? as usize;
                    let info = *rec.get(p + 4).ok_or_else(short)?;
                    p += 5;
                    if info & BKPIMAGE_HAS_HOLE != 0 && info & image_compressed != 0 {
                        p += 2;
                    }
                    datatotal += image_len;
                }
                if flags & BKPBLOCK_SAME_REL == 0 {
                    p += 12;
                }
                p += 4;
            }
            other => return Err(format!("invalid block_id {other}")),
        }
        if p > rec.len() {
            return Err(short());
        }
    }
    if rec.len() - p != datatotal {
        return Err(format!(
            "record data is {} bytes where its headers announce {datatotal}",
            rec.len() - p
        ));
    }
    Ok(&rec[rec.len() - main_len..])
}

fn xact_time(main: &[u8]) -> Result<DateTime<Utc>, String> {
    let micros = main
        .get(..8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
        .ok_or("commit/abort record without its xact_time")?;
    micros
        .checked_add(PG_EPOCH_UNIX_SECONDS * 1_000_000)
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| format!("xact_time {micros} is out of range"))
}

/// Read `data` (one decompressed segment named `segment`) and find its last commit/abort.
/// `Err`: the file is not a WAL segment drbot can read (wrong size, first page invalid,
/// unknown PostgreSQL major). An invalid record further on ends the walk, like PostgreSQL.
pub fn scan_segment(data: &[u8], segment: SegmentName) -> Result<SegmentScan, WalError> {
    let err = |m: String| WalError(format!("{segment}: {m}"));
    let magic = u16_at(data, 0).ok_or_else(|| err("empty file".into()))?;
    let pg_major = PAGE_MAGICS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            err(format!(
                "WAL page magic {magic:#06X} is not one drbot reads (PostgreSQL 13-17: {}); the window cannot be read from this WAL",
                PAGE_MAGICS
                    .iter()
                    .map(|(m, v)| format!("{v} {m:#06X}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let info = u16_at(data, 2).unwrap_or(0);
    if info & XLP_LONG_HEADER == 0 {
        return Err(err("the first page has no long header".into()));
    }
    let seg_size = u32_at(data, 32).ok_or_else(|| err("the first page is cut short".into()))?;
    let blcksz = u32_at(data, 36).ok_or_else(|| err("the first page is cut short".into()))?;
    if u64::from(seg_size) != WAL_SEGMENT_SIZE {
        return Err(err(format!(
            "wal_segment_size is {seg_size}, drbot reads {WAL_SEGMENT_SIZE}-byte segments"
        )));
    }
    if !blcksz.is_power_of_two() || !(1024..=65536).contains(&blcksz) {
        return Err(err(format!("invalid XLOG block size {blcksz}")));
    }
    if data.len() as u64 != WAL_SEGMENT_SIZE {
        return Err(err(format!(
            "{} bytes after decompression, not a whole {WAL_SEGMENT_SIZE}-byte segment",
            data.len()
        )));
    }
    let walker = Walker {
        data,
        start_lsn: segment.segno * WAL_SEGMENT_SIZE,
        magic,
        blcksz: blcksz as usize,
        image_compressed: if pg_major >= 15 {
            BKPIMAGE_COMPRESSED_15
        } else {
            BKPIMAGE_COMPRESSED_14
        },
    };
    let first = walker.page(0).map_err(err)?;
    let mut scan = SegmentScan {
        pg_major,
        last_xact_end: None,
        records: 0,
        stopped: None,
    };
    let mut pos = match walker.first_record(&first) {
        Ok(Some(pos)) => pos,
        Ok(None) => return Ok(scan),
        Err(why) => {
            scan.stopped = Some(why);
            return Ok(scan);
        }
    };
    let mut prev: Option<u64> = None;
    scan.stopped = walk(&walker, &mut pos, &mut prev, &mut scan);
    Ok(scan)
}

/// Walk records from `pos`; returns why it stopped early, `None` at the segment's end.
fn walk(
    w: &Walker,
    pos: &mut usize,
    prev: &mut Option<u64>,
    scan: &mut SegmentScan,
) -> Option<String> {
    loop {
        if (*pos).is_multiple_of(w.blcksz) {
            if *pos >= w.data.len() {
                return None;
            }
            match w.page(*pos) {
                Ok(h) if h.info & XLP_FIRST_IS_CONTRECORD == 0 => *pos += h.size,
                Ok(_) => {
                    return Some(format!(
                        "unexpected continuation page at {}",
                        Lsn(w.start_lsn + *pos as u64)
                    ));
                }
                Err(why) => return Some(why),
            }
        }
        let lsn = w.start_lsn + *pos as u64;
        let tot_len = u32_at(w.data, *pos).unwrap_or(0) as usize;
        if tot_len < RECORD_HEADER {
            return Some(format!("invalid record length {tot_len} at {}", Lsn(lsn)));
        }
        if tot_len > w.data.len() {
            return Some(format!(
                "record length {tot_len} at {} is too large",
                Lsn(lsn)
            ));
        }
        let (rec, end) = match w.gather(*pos, tot_len) {
            Ok(Some(r)) => r,
            // Continues in the next segment: not complete here.
            Ok(None) => return None,
            Err(why) => return Some(why),
        };
        let xl_prev = u64_at(&rec, 8).unwrap_or(0);
        let ok_prev = match prev {
            Some(p) => xl_prev == *p,
            None => xl_prev < lsn,
        };
        if !ok_prev {
            return Some(format!(
                "record at {} has xl_prev {}, expected {}",
                Lsn(lsn),
                Lsn(xl_prev),
                prev.map_or("an earlier position".into(), |p| Lsn(p).to_string())
            ));
        }
        let crc = crc32c::crc32c_append(crc32c::crc32c(&rec[RECORD_HEADER..]), &rec[..20]);
        if u32_at(&rec, 20) != Some(crc) {
            return Some(format!("incorrect CRC in record at {}", Lsn(lsn)));
        }
        let (info, rmid) = (rec[16], rec[17]);
        if rmid == RM_XACT_ID
            && let Some(kind) = XactKind::of(info)
        {
            match main_data(&rec, w.image_compressed).and_then(xact_time) {
                Ok(time) => {
                    scan.last_xact_end = Some(XactEnd {
                        time,
                        lsn: Lsn(lsn),
                        kind,
                    })
                }
                Err(why) => return Some(format!("record at {}: {why}", Lsn(lsn))),
            }
        }
        scan.records += 1;
        *prev = Some(lsn);
        if rmid == RM_XLOG_ID && info & 0xF0 == XLOG_SWITCH {
            // The rest of the segment is padding.
            return None;
        }
        *pos = maxalign(end);
    }
}

#[cfg(test)]
#[path = "wal_records_tests.rs"]
mod tests;
