//! A small writer of valid PostgreSQL 15 WAL segments, for tests and benches: page headers
//! (long on the first page), records MAXALIGNed and split across pages with continuation
//! headers, `xl_prev` chained, CRC-32C as PostgreSQL computes it, and commit/abort records at
//! chosen times. It writes only what [`super::wal_records`] reads; real PostgreSQL WAL is
//! checked by the fixture tests.

use chrono::{DateTime, Utc};

use super::wal_names::{SegmentName, WAL_SEGMENT_SIZE};

pub const PG15_MAGIC: u16 = 0xD110;
pub const BLCKSZ: usize = 8192;
const SHORT: usize = 24;
const LONG: usize = 40;
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800 * 1_000_000;

/// A block reference in a synthetic record.
#[derive(Debug, Clone, Copy, Default)]
pub struct Block {
    pub data_len: u16,
    /// A full-page image of this many bytes, with these `bimg_info` bits.
    pub image: Option<(u16, u8)>,
}

pub struct SegmentWriter {
    segment: SegmentName,
    magic: u16,
    buf: Vec<u8>,
    pos: usize,
    prev: u64,
}

impl SegmentWriter {
    pub fn new(segment: SegmentName) -> SegmentWriter {
        SegmentWriter::with_magic(segment, PG15_MAGIC)
    }

    pub fn with_magic(segment: SegmentName, magic: u16) -> SegmentWriter {
        let mut w = SegmentWriter {
            segment,
            magic,
            buf: vec![0; WAL_SEGMENT_SIZE as usize],
            pos: 0,
            // A plausible earlier record in the previous segment.
            prev: (segment.segno * WAL_SEGMENT_SIZE).saturating_sub(0x100),
        };
        w.page_header(0, 0);
        w.pos = LONG;
        w
    }

    fn start_lsn(&self) -> u64 {
        self.segment.segno * WAL_SEGMENT_SIZE
    }

    fn page_header(&mut self, off: usize, rem_len: u32) {
        let long = off == 0;
        let mut info: u16 = if long { 0x0002 } else { 0 };
        if rem_len > 0 {
            info |= 0x0001;
        }
        let h = &mut self.buf[off..off + if long { LONG } else { SHORT }];
        h[0..2].copy_from_slice(&self.magic.to_le_bytes());
        h[2..4].copy_from_slice(&info.to_le_bytes());
        h[4..8].copy_from_slice(&self.segment.timeline.to_le_bytes());
        h[8..16]
            .copy_from_slice(&(self.segment.segno * WAL_SEGMENT_SIZE + off as u64).to_le_bytes());
        h[16..20].copy_from_slice(&rem_len.to_le_bytes());
        if long {
            h[24..32].copy_from_slice(&7_345_678_901_234_567_890u64.to_le_bytes());
            h[32..36].copy_from_slice(&(WAL_SEGMENT_SIZE as u32).to_le_bytes());
            h[36..40].copy_from_slice(&(BLCKSZ as u32).to_le_bytes());
        }
    }

    /// Start the segment with the tail of a record begun in the previous one (`len` bytes).
    pub fn continued(mut self, len: u32) -> SegmentWriter {
        let mut left = len as usize;
        let mut off = 0;
        loop {
            let header = if off == 0 { LONG } else { SHORT };
            self.page_header(off, left as u32);
            let room = BLCKSZ - header;
            if left < room {
                self.pos = off + header + ((left + 7) & !7);
                return self;
            }
            left -= room;
            off += BLCKSZ;
        }
    }

    /// Room left before the segment's end.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Append raw record bytes at the current position, splitting across pages. Returns false
    /// (and writes nothing past the end) when the record does not fit in the segment.
    fn put(&mut self, rec: &[u8]) -> bool {
        let mut done = 0;
        while done < rec.len() {
            if self.pos.is_multiple_of(BLCKSZ) {
                if self.pos >= self.buf.len() {
                    return false;
                }
                let rem = if done == 0 {
                    0
                } else {
                    (rec.len() - done) as u32
                };
                self.page_header(self.pos, rem);
                self.pos += SHORT;
            }
            let page_end = (self.pos / BLCKSZ + 1) * BLCKSZ;
            let take = (rec.len() - done).min(page_end - self.pos);
            self.buf[self.pos..self.pos + take].copy_from_slice(&rec[done..done + take]);
            self.pos += take;
            done += take;
        }
        self.pos = ((self.pos + 7) & !7).min(self.buf.len());
        true
    }

    /// Append a record; returns its LSN, or `None` when it would not fit.
    pub fn record(&mut self, rmid: u8, info: u8, blocks: &[Block], main: &[u8]) -> Option<u64> {
        if self.pos.is_multiple_of(BLCKSZ) && self.pos < self.buf.len() {
            self.page_header(self.pos, 0);
            self.pos += SHORT;
        }
        if self.pos >= self.buf.len() {
            return None;
        }
        let lsn = self.start_lsn() + self.pos as u64;
        let mut rec = vec![0u8; 24];
        let mut payload = Vec::new();
        for (id, b) in blocks.iter().enumerate() {
            let mut flags = 0u8;
            if b.data_len > 0 {
                flags |= 0x20;
            }
            if b.image.is_some() {
                flags |= 0x10;
            }
            if id > 0 {
                flags |= 0x80;
            }
            rec.extend_from_slice(&[id as u8, flags]);
            rec.extend_from_slice(&b.data_len.to_le_bytes());
            if let Some((len, bimg)) = b.image {
                rec.extend_from_slice(&len.to_le_bytes());
                rec.extend_from_slice(&100u16.to_le_bytes());
                rec.push(bimg);
                if bimg & 0x01 != 0 && bimg & 0x1C != 0 {
                    rec.extend_from_slice(&200u16.to_le_bytes());
                }
                payload.extend(std::iter::repeat_n(0xAB, len as usize));
            }
            if id == 0 {
                rec.extend_from_slice(&[0x7F, 0, 0, 0, 0x40, 0, 0, 0, 0x00, 0x30, 0, 0]);
            }
            rec.extend_from_slice(&(id as u32).to_le_bytes());
            payload.extend(std::iter::repeat_n(0xCD, b.data_len as usize));
        }
        if !main.is_empty() {
            if main.len() < 256 {
                rec.extend_from_slice(&[255, main.len() as u8]);
            } else {
                rec.push(254);
                rec.extend_from_slice(&(main.len() as u32).to_le_bytes());
            }
        }
        rec.extend_from_slice(&payload);
        rec.extend_from_slice(main);
        let tot = rec.len() as u32;
        rec[0..4].copy_from_slice(&tot.to_le_bytes());
        rec[4..8].copy_from_slice(&1000u32.to_le_bytes());
        rec[8..16].copy_from_slice(&self.prev.to_le_bytes());
        rec[16] = info;
        rec[17] = rmid;
        let crc = crc32c::crc32c_append(crc32c::crc32c(&rec[24..]), &rec[..20]);
        rec[20..24].copy_from_slice(&crc.to_le_bytes());
        let saved = self.pos;
        if !self.put(&rec) {
            self.pos = saved;
            return None;
        }
        self.prev = lsn;
        Some(lsn)
    }

    /// A commit (`info` 0x00) or abort (0x20) at `at`, with an origin and a top-level xid id
    /// before the main data as PostgreSQL may write them.
    pub fn xact(&mut self, info: u8, at: DateTime<Utc>) -> Option<u64> {
        let micros = at.timestamp_micros() - PG_EPOCH_UNIX_MICROS;
        let mut main = micros.to_le_bytes().to_vec();
        main.extend_from_slice(&[0; 8]);
        self.record(1, info, &[], &main)
    }

    pub fn commit(&mut self, at: DateTime<Utc>) -> Option<u64> {
        self.xact(0x00, at)
    }

    /// A heap-like record of about `bytes` bytes (block data plus a page image).
    pub fn filler(&mut self, bytes: usize) -> Option<u64> {
        let image = bytes.min(8000) as u16;
        let data = bytes.saturating_sub(image as usize).min(60_000) as u16;
        self.record(
            10,
            0x00,
            &[Block {
                data_len: data.max(1),
                image: Some((image.max(1), 0x01 | 0x02)),
            }],
            &[1, 0, 0, 0],
        )
    }

    /// Fill the segment up to about `until` bytes with filler records.
    pub fn fill_to(&mut self, until: usize) {
        while self.pos + 9000 < until.min(self.buf.len()) {
            if self.filler(6000).is_none() {
                break;
            }
        }
    }

    /// An `XLOG_SWITCH` record: the rest of the segment is padding.
    pub fn switch(&mut self) -> Option<u64> {
        self.record(0, 0x40, &[], &[])
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}
