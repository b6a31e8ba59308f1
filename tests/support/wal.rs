//! Valid PostgreSQL 15 WAL segments with commits at chosen times, compressed as wal-g does
//! (`internal/compression/*/compressor.go`: lz4 frame, zstd, brotli, lzma), so offsite tests
//! state "commits at known times" and drbot reads them as it reads a real archive.

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
        "lz4" => lz4_frame(data),
        "zst" => {
            ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
        }
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

const LZ4_BLOCK: usize = 64 * 1024;
static ZEROS: [u8; LZ4_BLOCK] = [0; LZ4_BLOCK];

/// An LZ4 frame of independent 64 KiB blocks, the all-zero ones compressed once: a mostly
/// empty 16 MiB segment then costs next to nothing to build, which keeps archives of
/// thousands of segments quick to seed. Decoders see an ordinary frame.
fn lz4_frame(data: &[u8]) -> Vec<u8> {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    use std::sync::OnceLock;
    static PARTS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    let (header, zero_block) = PARTS.get_or_init(|| {
        let info = FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .block_mode(BlockMode::Independent);
        let empty = FrameEncoder::with_frame_info(info, Vec::new())
            .finish()
            .expect("lz4 header");
        // Magic, FLG, BD, header checksum; then the end mark.
        let header = empty[..7].to_vec();
        (header, lz4_flex::block::compress(&[0u8; LZ4_BLOCK]))
    });
    let mut out = header.clone();
    for chunk in data.chunks(LZ4_BLOCK) {
        let compressed;
        // A slice comparison (memcmp): a byte loop is slow in unoptimised test builds.
        let block = if chunk == &ZEROS[..] {
            zero_block
        } else {
            compressed = lz4_flex::block::compress(chunk);
            &compressed
        };
        if block.len() < chunk.len() {
            out.extend_from_slice(&(block.len() as u32).to_le_bytes());
            out.extend_from_slice(block);
        } else {
            out.extend_from_slice(&(chunk.len() as u32 | 0x8000_0000).to_le_bytes());
            out.extend_from_slice(chunk);
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out
}
