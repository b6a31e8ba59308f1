//! Valid PostgreSQL 15 WAL segments with commits at chosen times, compressed as wal-g does
//! (`internal/compression/*/compressor.go`: lz4 frame, zstd, brotli, lzma), so offsite tests
//! state "commits at known times" and drbot reads them as it reads a real archive.

use std::io::Write;

use chrono::{DateTime, Utc};
use drbot::cluster::wal_synth::SegmentWriter;
use drbot::cluster::walg::SegmentName;

/// A segment holding some other records and then a commit at each of `commits`, in order.
pub fn segment(seg: SegmentName, commits: &[DateTime<Utc>]) -> Vec<u8> {
    let mut w = SegmentWriter::new(seg);
    w.filler(3000);
    for &t in commits {
        w.commit(t).expect("commit fits");
        w.filler(500);
    }
    w.switch();
    w.finish()
}

/// `data` as `wal-g wal-push` stores it with extension `ext`.
pub fn compress(ext: &str, data: &[u8]) -> Vec<u8> {
    match ext {
        // pierrec/lz4 v4 `NewWriter`: the frame format.
        "lz4" => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(data).expect("lz4");
            e.finish().expect("lz4")
        }
        "zst" => ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest),
        // cbrotli quality 3.
        "br" => {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams {
                quality: 3,
                ..Default::default()
            };
            brotli::BrotliCompress(&mut &data[..], &mut out, &params).expect("brotli");
            out
        }
        // ulikunitz/xz `lzma.NewWriter`: no size in the header, an end marker.
        "lzma" => {
            let mut out = Vec::new();
            lzma_rs::lzma_compress(&mut &data[..], &mut out).expect("lzma");
            out
        }
        other => panic!("wal-g writes no .{other}"),
    }
}
