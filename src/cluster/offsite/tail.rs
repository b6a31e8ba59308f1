//! Reading the tails of the WAL runs, for the window's end: only the segments the window
//! asks for ([`walg::segments_to_read`]: the last of each run, and earlier ones only while
//! none holds a commit), and each at most once while it stays the same object.
//!
//! wal-g never rewrites a segment in place without changing it (a re-push is a new upload:
//! new LastModified), so a scan is keyed on the object's key, size and LastModified. A whole
//! object is always fetched: none of wal-g's compressions can be decoded from the middle.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::{FETCH_CONCURRENCY, Offsite};
use crate::cluster::wal_decompress::decompress;
use crate::cluster::wal_records::{SegmentScan, scan_segment};
use crate::cluster::walg::{self, Listing, WalFile};

/// Rounds of "read, then ask again": a quiet database can need a few segments back.
const MAX_ROUNDS: usize = 64;
/// Entries kept; a tail needs a handful per cluster, so this bound is never reached in use.
const MAX_CACHED: usize = 10_000;

/// One segment's scan, valid while the object keeps its size and LastModified.
#[derive(Debug, Clone)]
pub(super) struct CachedScan {
    size: i64,
    last_modified: DateTime<Utc>,
    scan: Result<SegmentScan, String>,
}

pub(super) type ScanCache = std::sync::Mutex<HashMap<String, CachedScan>>;

enum Fetched {
    Read(Result<SegmentScan, String>),
    Failed(String),
}

/// Decompress and walk one WAL object's body (CPU work: run off the async threads).
fn read_segment(name: &str, body: &[u8]) -> Result<SegmentScan, String> {
    let (stem, ext) = walg::strip_compression(name);
    let segment = match walg::parse_wal_file(name) {
        WalFile::Segment(s) => s,
        _ => return Err(format!("{stem} is not a WAL segment")),
    };
    let data = decompress(ext, body).map_err(|e| e.to_string())?;
    scan_segment(&data, segment).map_err(|e| e.to_string())
}

impl Offsite {
    /// Fill `listing.scans` with what the window's end needs, from the cache or the bucket.
    pub(super) async fn read_wal_tails(&self, prefix: &str, listing: &mut Listing) {
        let meta: HashMap<String, (i64, DateTime<Utc>)> = listing
            .objects
            .iter()
            .map(|o| (o.key.clone(), (o.size, o.last_modified)))
            .collect();
        for _ in 0..MAX_ROUNDS {
            let wanted = walg::segments_to_read(listing);
            if wanted.is_empty() {
                return;
            }
            let mut fetch = Vec::new();
            {
                let cache = self.scans.lock().unwrap_or_else(|e| e.into_inner());
                for key in wanted {
                    let Some(name) = key.strip_prefix(walg::WAL_DIR) else {
                        continue;
                    };
                    let WalFile::Segment(seg) = walg::parse_wal_file(name) else {
                        continue;
                    };
                    let (size, last_modified) = meta.get(&key).copied().unwrap_or_default();
                    match cache.get(&format!("{prefix}{key}")) {
                        Some(c) if c.size == size && c.last_modified == last_modified => {
                            listing.scans.insert(seg, c.scan.clone());
                        }
                        _ => fetch.push((key, seg, size, last_modified)),
                    }
                }
            }
            let read: Vec<_> = futures_util::stream::iter(fetch)
                .map(|(key, seg, size, last_modified)| async move {
                    let full = format!("{prefix}{key}");
                    let fetched = match self.get(&full, None).await {
                        Ok(body) => {
                            let name = key[walg::WAL_DIR.len()..].to_string();
                            Fetched::Read(
                                tokio::task::spawn_blocking(move || read_segment(&name, &body))
                                    .await
                                    .unwrap_or_else(|e| Err(format!("reading failed: {e}"))),
                            )
                        }
                        Err(e) => Fetched::Failed(e.to_string()),
                    };
                    (full, seg, size, last_modified, fetched)
                })
                .buffer_unordered(FETCH_CONCURRENCY)
                .collect()
                .await;
            let mut cache = self.scans.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() + read.len() > MAX_CACHED {
                cache.clear();
            }
            for (full, seg, size, last_modified, fetched) in read {
                let scan = match fetched {
                    Fetched::Read(scan) => {
                        let entry = CachedScan {
                            size,
                            last_modified,
                            scan: scan.clone(),
                        };
                        cache.insert(full, entry);
                        scan
                    }
                    // A failed GET says nothing about the object: not cached, and the window
                    // walks back past it (an earlier end only refuses more).
                    Fetched::Failed(e) => {
                        tracing::warn!(segment = %seg, error = %e, "WAL segment not fetched");
                        Err(e)
                    }
                };
                listing.scans.insert(seg, scan);
            }
        }
        tracing::warn!(prefix, "WAL tail reading stopped after {MAX_ROUNDS} rounds");
    }
}
