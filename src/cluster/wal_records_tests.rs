use super::*;
use crate::cluster::wal_decompress::decompress;
use crate::cluster::wal_synth::{Block, SegmentWriter};
use chrono::TimeZone;

fn seg(n: u64) -> SegmentName {
    SegmentName::new(1, n)
}

fn at(secs: i64, micros: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
        + chrono::Duration::seconds(secs)
        + chrono::Duration::microseconds(i64::from(micros))
}

/// Real PostgreSQL 15.20 WAL: `create table`, an insert of 300 rows, a rolled-back insert, one
/// more insert, `pg_switch_wal()`; archived by `archive_command`, compressed with `zstd -19`.
/// `pg_waldump` on it ends with `ABORT 2026-12-06 20:09:12.650774 UTC` at 0/0202BB38 and
/// `COMMIT 2026-12-06 20:09:12.698572 UTC` at 0/0202BBA0, then `SWITCH`.
const REAL_SEG2: &[u8] =
    include_bytes!("../../tests/fixtures/wal/pg15-000000010000000000000002.zst");
/// The next segment: a checkpoint and a switch, no transaction end.
const REAL_SEG3: &[u8] =
    include_bytes!("../../tests/fixtures/wal/pg15-000000010000000000000003.zst");

#[test]
fn real_postgresql_15_wal_gives_the_last_commit_pg_waldump_shows() {
    let data = decompress(Some("zst"), REAL_SEG2).unwrap();
    let scan = scan_segment(&data, seg(2)).unwrap();
    assert_eq!(scan.pg_major, 15);
    let last = scan.last_xact_end.unwrap();
    assert_eq!(last.kind, XactKind::Commit);
    assert_eq!(last.lsn, Lsn(0x0202_BBA0));
    assert_eq!(
        last.time,
        Utc.with_ymd_and_hms(2026, 12, 6, 20, 9, 12).unwrap()
            + chrono::Duration::microseconds(698_572)
    );
    assert_eq!(scan.stopped, None, "the walk ends at the switch record");
    assert!(scan.records > 100, "{}", scan.records);

    let data = decompress(Some("zst"), REAL_SEG3).unwrap();
    let scan = scan_segment(&data, seg(3)).unwrap();
    assert_eq!(scan.last_xact_end, None);
    assert!(scan.records > 0);
}

#[test]
fn a_segment_read_under_the_wrong_name_stops_at_once() {
    // Page addresses say segment 2: read as segment 5 (a recycled file), nothing is valid.
    let data = decompress(Some("zst"), REAL_SEG2).unwrap();
    let e = scan_segment(&data, seg(5)).unwrap_err();
    assert!(e.to_string().contains("recycled"), "{e}");
}

#[test]
fn synthetic_commits_across_pages_and_a_continued_first_record() {
    let mut w = SegmentWriter::new(seg(7)).continued(20_000);
    w.commit(at(0, 0)).unwrap();
    w.fill_to(100_000);
    // Page images with a hole and compression flags (PG 15 bits), origins and the like.
    w.record(
        10,
        0,
        &[
            Block {
                data_len: 10,
                image: Some((3000, 0x01 | 0x04)),
            },
            Block {
                data_len: 0,
                image: Some((8192, 0x02)),
            },
        ],
        &[9; 300],
    )
    .unwrap();
    // Let the commit's header straddle a page boundary: 16 bytes left on the page.
    loop {
        let r = w.remaining() % 8192;
        if r == 16 {
            break;
        }
        let size = if r >= 16 + 48 {
            (r - 16).min(2000)
        } else {
            200
        };
        let block = Block {
            data_len: (size - 44) as u16,
            image: None,
        };
        w.record(10, 0, &[block], &[]).unwrap();
    }
    let lsn = w.xact(0x20, at(5, 123_456)).unwrap();
    w.fill_to(300_000);
    let data = w.finish();
    let scan = scan_segment(&data, seg(7)).unwrap();
    let last = scan.last_xact_end.unwrap();
    assert_eq!(
        (last.time, last.lsn, last.kind),
        (at(5, 123_456), Lsn(lsn), XactKind::Abort)
    );
    assert!(
        scan.stopped.is_some(),
        "zeros after the last record end the walk"
    );
}

/// Segment 3 holding a commit at `first`, then one at `second`: its bytes, and where the
/// second record starts in them.
fn two_commits(first: DateTime<Utc>, second: DateTime<Utc>) -> (Vec<u8>, usize) {
    let mut w = SegmentWriter::new(seg(3));
    w.commit(first).unwrap();
    let second = w.commit(second).unwrap();
    let off = (second - 3 * WAL_SEGMENT_SIZE) as usize;
    (w.finish(), off)
}

#[test]
fn a_record_left_over_after_the_valid_end_is_not_read() {
    let (mut data, off) = two_commits(at(1, 0), at(9, 0));
    // The second commit comes from an older life of the file: valid CRC, but its xl_prev does
    // not point at the record before it.
    data[off + 8..off + 16].copy_from_slice(&0x0200_0028u64.to_le_bytes());
    let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&data[off + 24..off + len]),
        &data[off..off + 20],
    );
    data[off + 20..off + 24].copy_from_slice(&crc.to_le_bytes());
    let scan = scan_segment(&data, seg(3)).unwrap();
    assert_eq!(scan.last_xact_end.map(|x| x.time), Some(at(1, 0)));
    assert!(scan.stopped.unwrap().contains("xl_prev"));
}

#[test]
fn a_bad_crc_ends_the_walk() {
    let (mut data, off) = two_commits(at(1, 0), at(2, 0));
    data[off + 24] ^= 0xFF;
    let scan = scan_segment(&data, seg(3)).unwrap();
    assert_eq!(scan.last_xact_end.map(|x| x.time), Some(at(1, 0)));
    assert!(scan.stopped.unwrap().contains("CRC"));
}

#[test]
fn unknown_majors_and_garbage_are_clear_errors_never_panics() {
    let mut w = SegmentWriter::with_magic(seg(3), 0xD10A);
    w.commit(at(1, 0)).unwrap();
    let e = scan_segment(&w.finish(), seg(3)).unwrap_err();
    assert!(e.to_string().contains("0xD10A"), "{e}");
    assert!(e.to_string().contains("PostgreSQL 13-17"), "{e}");
    assert!(scan_segment(&[], seg(3)).is_err());
    assert!(scan_segment(&[0x10, 0xD1], seg(3)).is_err());

    let mut w = SegmentWriter::new(seg(3));
    for i in 0..50 {
        w.commit(at(i, 0)).unwrap();
        w.filler(700);
    }
    let good = w.finish();
    assert!(
        scan_segment(&good[..100_000], seg(3)).is_err(),
        "a cut segment is refused"
    );
    // Flip bytes all over the used part: errors or an earlier end, never a panic or a later time.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..300 {
        let mut bad = good.clone();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = (state % 60_000) as usize;
            bad[i] = (state >> 32) as u8;
        }
        if let Ok(scan) = scan_segment(&bad, seg(3))
            && let Some(x) = scan.last_xact_end
        {
            assert!(x.time <= at(49, 0));
        }
    }
}

#[test]
fn every_codec_wal_g_writes_round_trips() {
    let mut w = SegmentWriter::new(seg(4));
    w.commit(at(3, 0)).unwrap();
    let raw = w.finish();
    let lz4 = {
        let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut e, &raw).unwrap();
        e.finish().unwrap()
    };
    let zst =
        ruzstd::encoding::compress_to_vec(&raw[..], ruzstd::encoding::CompressionLevel::Fastest);
    let br = {
        let mut out = Vec::new();
        let params = brotli::enc::BrotliEncoderParams {
            quality: 3,
            ..Default::default()
        };
        brotli::BrotliCompress(&mut &raw[..], &mut out, &params).unwrap();
        out
    };
    let lzma = {
        let mut out = Vec::new();
        lzma_rs::lzma_compress(&mut &raw[..], &mut out).unwrap();
        out
    };
    assert_eq!(
        &lzma[5..13],
        &[0xFF; 8],
        "unknown size, as ulikunitz/xz writes it"
    );
    for (ext, body) in [("lz4", lz4), ("zst", zst), ("br", br), ("lzma", lzma)] {
        let data = decompress(Some(ext), &body).unwrap_or_else(|e| panic!("{ext}: {e}"));
        let scan = scan_segment(&data, seg(4)).unwrap();
        assert_eq!(scan.last_xact_end.map(|x| x.time), Some(at(3, 0)), "{ext}");
        let e = decompress(Some(ext), &body[..body.len() / 2]);
        assert!(
            e.is_err() || e.is_ok_and(|d| scan_segment(&d, seg(4)).is_err()),
            "{ext}"
        );
        assert!(
            decompress(Some(ext), b"garbage, or libsodium-encrypted").is_err(),
            "{ext}"
        );
    }
    assert!(
        decompress(Some("lzo"), b"x")
            .unwrap_err()
            .to_string()
            .contains("lzo")
    );
}
