//! The WAL-G prefix's listing, kept between looks so that a look lists only what is new.
//!
//! S3 returns keys in UTF-8 binary order and can start a listing after a given key
//! (ListObjectsV2 `StartAfter`); wal-g names segments `<timeline><log><seg>` in fixed-width
//! upper-case hex, so new segments (and a new timeline's history file) sort after the old
//! ones. A look therefore lists `basebackups_005/` (a few objects per backup) whole and
//! `wal_005/` from a little before the last key seen. What this cannot see is a key removed
//! or added *before* that point: retention deleting old segments (it deletes base backups
//! too, so the backup listing changes and forces a full listing) or a segment lost in the
//! middle of the chain. A full listing every [`FULL_RELIST_EVERY`] bounds how long such a
//! change goes unnoticed.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::walg::{BASEBACKUPS_DIR, ListedObject, WAL_DIR};

/// The longest a deletion in the middle of `wal_005/` goes unnoticed.
pub const FULL_RELIST_EVERY: Duration = Duration::minutes(15);

/// How many of the last keys seen are listed again: wal-g uploads up to
/// WALG_UPLOAD_CONCURRENCY (default 16) segments at once, so a segment can land after a
/// later one; re-reading this many keys back sees it arrive and a tail hole close.
pub const TAIL_OVERLAP: usize = 64;

/// A document's LastModified and size when it was read, and its bytes.
type Body = (DateTime<Utc>, i64, Vec<u8>);

/// One prefix's listing as last seen.
#[derive(Debug, Clone)]
struct Seen {
    /// Full keys, sorted.
    objects: Vec<ListedObject>,
    /// When the last full listing was taken.
    full_at: DateTime<Utc>,
}

/// Per WAL-G prefix, the listing last seen.
#[derive(Debug, Default)]
pub struct ListingCache {
    by_prefix: Mutex<HashMap<String, Seen>>,
    /// Documents read (sentinels, metadata), by full key with the LastModified and size they
    /// were listed with: wal-g writes them once, so an unchanged listing entry is not read again.
    bodies: Mutex<HashMap<String, Body>>,
}

/// What to list next for a prefix.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Everything under the prefix.
    Full,
    /// `wal_005/` after this key, once `basebackups_005/` is seen unchanged.
    After(String),
}

fn backups_of<'a>(
    objects: &'a [ListedObject],
    prefix: &str,
) -> impl Iterator<Item = &'a ListedObject> {
    let root = format!("{prefix}{BASEBACKUPS_DIR}");
    objects.iter().filter(move |o| o.key.starts_with(&root))
}

impl ListingCache {
    /// Full when nothing was seen, the last full listing is too old (or in the future: the
    /// clock was set back), or too little WAL was seen to start after.
    pub fn plan(&self, prefix: &str, now: DateTime<Utc>) -> Plan {
        let seen = self.by_prefix.lock().unwrap_or_else(|e| e.into_inner());
        let Some(seen) = seen.get(prefix) else {
            return Plan::Full;
        };
        let age = now - seen.full_at;
        if age >= FULL_RELIST_EVERY || age < Duration::zero() {
            return Plan::Full;
        }
        let wal = format!("{prefix}{WAL_DIR}");
        let keys: Vec<&str> = seen
            .objects
            .iter()
            .map(|o| o.key.as_str())
            .filter(|k| k.starts_with(&wal))
            .collect();
        match keys.len().checked_sub(TAIL_OVERLAP + 1) {
            Some(i) => Plan::After(keys[i].to_string()),
            None => Plan::Full,
        }
    }

    /// The body read before for this object, if it was listed the same then.
    pub fn body(&self, key: &str, o: &ListedObject) -> Option<Vec<u8>> {
        let bodies = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        bodies
            .get(key)
            .filter(|(t, size, _)| *t == o.last_modified && *size == o.size)
            .map(|(_, _, body)| body.clone())
    }

    pub fn keep_body(&self, key: &str, o: &ListedObject, body: &[u8]) {
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), (o.last_modified, o.size, body.to_vec()));
    }

    /// Keep a full listing of `prefix`.
    pub fn full(&self, prefix: &str, mut objects: Vec<ListedObject>, now: DateTime<Utc>) {
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        self.by_prefix
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                prefix.to_string(),
                Seen {
                    objects,
                    full_at: now,
                },
            );
    }

    /// The listing seen, with `wal_005/` after `after` replaced by `wal_tail`; `None` when
    /// `backups` (a fresh listing of `basebackups_005/`) differs from what was seen, which
    /// calls for a full listing.
    pub fn merge(
        &self,
        prefix: &str,
        backups: &[ListedObject],
        after: &str,
        wal_tail: Vec<ListedObject>,
    ) -> Option<Vec<ListedObject>> {
        let mut by_prefix = self.by_prefix.lock().unwrap_or_else(|e| e.into_inner());
        let seen = by_prefix.get_mut(prefix)?;
        if !backups_of(&seen.objects, prefix).eq(backups.iter()) {
            return None;
        }
        let wal = format!("{prefix}{WAL_DIR}");
        seen.objects
            .retain(|o| !(o.key.starts_with(&wal) && o.key.as_str() > after));
        seen.objects.extend(wal_tail);
        seen.objects.sort_by(|a, b| a.key.cmp(&b.key));
        Some(seen.objects.clone())
    }
}
