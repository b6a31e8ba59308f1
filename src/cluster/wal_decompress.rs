//! Undo the compression `wal-g wal-push` applies to each WAL file (wal-g
//! `internal/compression/*/compressor.go`, v3.0.9):
//! - `.lz4`: pierrec/lz4 v4 `lz4.NewWriter`, the LZ4 *frame* format;
//! - `.zst`: klauspost/compress `zstd.NewWriter`, a standard zstd frame;
//! - `.br`: google/brotli `cbrotli.NewWriter` (quality 3; only in wal-g builds with the
//!   `brotli` tag);
//! - `.lzma`: ulikunitz/xz `lzma.NewWriter`, the classic `.lzma` header (properties, dictionary
//!   size, and an unknown size: its `WriterConfig.fill` sets no size and an end marker).
//!
//! A ranged GET cannot help: none of these can start decoding in the middle of a stream, so a
//! segment is always fetched and decoded whole (mostly-empty segments compress to little).
//! Encrypted segments (`WALG_LIBSODIUM_KEY`, `WALG_PGP_KEY`) look like garbage here and are
//! reported as undecodable.

use std::io::Read;

/// No WAL file decompresses to more: a segment is 16 MiB; a little slack for `.partial` oddities.
pub const MAX_DECOMPRESSED: u64 = super::wal_names::WAL_SEGMENT_SIZE + 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecompressError(pub String);

/// Decompress `data` stored with extension `ext` (`None`: stored as is). The output is bounded
/// by [`MAX_DECOMPRESSED`], so a hostile object cannot exhaust memory.
pub fn decompress(ext: Option<&str>, data: &[u8]) -> Result<Vec<u8>, DecompressError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        DecompressError(format!(
            "not a valid {what} stream ({e}): the object is damaged, encrypted by wal-g, or not a WAL-G file"
        ))
    };
    match ext {
        None => {
            if data.len() as u64 > MAX_DECOMPRESSED {
                return Err(DecompressError(format!(
                    "{} bytes, more than a WAL segment",
                    data.len()
                )));
            }
            Ok(data.to_vec())
        }
        Some("lz4") => read_bounded(lz4_flex::frame::FrameDecoder::new(data))
            .map_err(|e| fail("LZ4 frame", &e)),
        Some("zst") => {
            let decoder =
                ruzstd::decoding::StreamingDecoder::new(data).map_err(|e| fail("zstd", &e))?;
            read_bounded(decoder).map_err(|e| fail("zstd", &e))
        }
        Some("br") => read_bounded(brotli_decompressor::Decompressor::new(data, 64 * 1024))
            .map_err(|e| fail("brotli", &e)),
        Some("lzma") => {
            let mut out = Bounded(Vec::new());
            let options = lzma_rs::decompress::Options {
                // Bounds the dictionary a damaged header could ask for (ulikunitz's is 8 MiB).
                memlimit: Some(64 * 1024 * 1024),
                ..Default::default()
            };
            lzma_rs::lzma_decompress_with_options(
                &mut std::io::BufReader::new(data),
                &mut out,
                &options,
            )
            .map_err(|e| fail("LZMA", &e))?;
            Ok(out.0)
        }
        Some(other) => Err(DecompressError(format!(
            "compression `.{other}` is not one wal-g writes (lz4, zst, br, lzma); drbot cannot read it"
        ))),
    }
}

fn read_bounded<R: Read>(reader: R) -> Result<Vec<u8>, std::io::Error> {
    let mut out = Vec::new();
    reader.take(MAX_DECOMPRESSED + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(std::io::Error::other(format!(
            "decompresses to more than {MAX_DECOMPRESSED} bytes: not a WAL segment"
        )));
    }
    Ok(out)
}

/// A sink that refuses to grow past [`MAX_DECOMPRESSED`].
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.0.len() + buf.len()) as u64 > MAX_DECOMPRESSED {
            return Err(std::io::Error::other(format!(
                "decompresses to more than {MAX_DECOMPRESSED} bytes: not a WAL segment"
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
