//! Offsite object storage, read with the S3 API: the source of truth for what a restore can
//! use (the in-cluster MinIO is assumed lost). Checks the bucket's versioning, the Velero
//! layout (`<prefix>/backups/<name>/velero-backup.json`, `<name>.tar.gz`, …) and each database
//! cluster's WAL-G layout, whose recoverable window [`super::walg`] computes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::BucketVersioningStatus;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::Value;

use super::walg::{self, ListedObject, Listing, WalFile, Window};
use super::{BackupsReport, ClusterError};
use crate::clock::{Clock, SystemClock};
use crate::config::OffsiteSettings;

mod listing;
mod tail;

pub use listing::FULL_RELIST_EVERY;

/// Requests in flight at once when fetching many small documents.
const FETCH_CONCURRENCY: usize = 8;
/// A listing that goes on longer than this is a server bug, not a bucket.
const MAX_PAGES: usize = 100_000;
/// Bytes read from a tarball to prove it is readable.
const SAMPLE_BYTES: u64 = 1024;

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn to_utc(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Bucket versioning as S3 reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersioningStatus {
    Enabled,
    Suspended,
    /// Never enabled: S3 returns no status.
    Off,
}

impl VersioningStatus {
    pub fn label(&self) -> &'static str {
        match self {
            VersioningStatus::Enabled => "Enabled",
            VersioningStatus::Suspended => "Suspended",
            VersioningStatus::Off => "never enabled",
        }
    }
}

/// One Velero backup in the offsite bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeleroBackupObject {
    pub name: String,
    /// LastModified of `velero-backup.json`, else of the backup's newest object.
    pub last_modified: Option<DateTime<Utc>>,
    /// `velero-backup.json` was read and is a Velero Backup.
    pub readable: bool,
    /// `status.phase` (`Completed`, `PartiallyFailed`, `Failed`, …).
    pub phase: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Size of `<name>.tar.gz`, the backed-up resources.
    pub tarball: Option<i64>,
    /// Why it is not readable.
    pub problem: Option<String>,
}

impl VeleroBackupObject {
    pub fn completed(&self) -> bool {
        self.readable && self.phase.as_deref() == Some("Completed") && self.tarball.is_some()
    }

    fn when(&self) -> Option<DateTime<Utc>> {
        self.completed_at.or(self.last_modified)
    }
}

/// A client for the offsite bucket. Credentials stay inside the SDK client: nothing here
/// prints them.
pub struct Offsite {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// For messages: the endpoint URL, or "AWS S3 (<region>)".
    location: String,
    velero_root: String,
    clusters: Vec<(String, String)>,
    timeout: Duration,
    /// Tells how old a hole at the WAL tail is ("still uploading" or lost).
    clock: Arc<dyn Clock>,
    /// What each WAL segment read so far holds, so a look reads only what is new.
    scans: tail::ScanCache,
    /// Each WAL-G prefix's listing as last seen, so a look lists only what is new.
    listings: listing::ListingCache,
}

impl std::fmt::Debug for Offsite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offsite")
            .field("bucket", &self.bucket)
            .field("location", &self.location)
            .field("velero_root", &self.velero_root)
            .field("clusters", &self.clusters)
            .finish_non_exhaustive()
    }
}

impl Offsite {
    pub fn new(settings: &OffsiteSettings) -> Result<Offsite, ClusterError> {
        if !settings.enabled() {
            return Err(ClusterError::Invalid(
                "offsite storage is not configured: set offsite.bucket".into(),
            ));
        }
        let clusters = settings.cluster_prefixes().map_err(ClusterError::Invalid)?;
        let (Some(key), Some(secret)) = (
            settings.access_key_id.as_deref().filter(|s| !s.is_empty()),
            settings
                .secret_access_key
                .as_deref()
                .filter(|s| !s.is_empty()),
        ) else {
            return Err(ClusterError::Invalid(
                "offsite.access_key_id and offsite.secret_access_key are both required".into(),
            ));
        };
        let timeout = Duration::from_secs(settings.timeout_seconds.max(1));
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .force_path_style(settings.force_path_style)
            .credentials_provider(Credentials::new(key, secret, None, None, "drbot-offsite"))
            .http_client(http)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeout.min(Duration::from_secs(5)))
                    .operation_timeout(timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(Offsite {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            bucket: settings.bucket.clone(),
            location: settings
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("AWS S3 ({})", settings.region)),
            velero_root: settings.velero_root(),
            clusters,
            timeout,
            clock: Arc::new(SystemClock),
            scans: Default::default(),
            listings: Default::default(),
        })
    }

    /// Use this clock (the bot's, injected) instead of the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Offsite {
        self.clock = clock;
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Configured database clusters and their WAL-G prefixes.
    pub fn clusters(&self) -> &[(String, String)] {
        &self.clusters
    }

    /// Map an SDK failure: unreachable or failing storage is `Unavailable`; refused
    /// credentials and a missing bucket are `Invalid` (retrying will not help).
    fn error<E>(&self, what: &str, e: SdkError<E, HttpResponse>) -> ClusterError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let bucket = &self.bucket;
        let location = &self.location;
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().map(str::to_string);
        match &e {
            SdkError::TimeoutError(_) => ClusterError::Unavailable(format!(
                "offsite bucket {bucket} at {location}: {what} timed out after {} s",
                self.timeout.as_secs()
            )),
            SdkError::DispatchFailure(_) => ClusterError::Unavailable(format!(
                "offsite bucket {bucket}: cannot reach {location} ({what}): {}",
                DisplayErrorContext(&e)
            )),
            SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
                let code_or_status = code
                    .clone()
                    .or(status.map(|s| format!("HTTP {s}")))
                    .unwrap_or_else(|| "no error code".into());
                let refused = matches!(
                    code.as_deref(),
                    Some(
                        "InvalidAccessKeyId"
                            | "SignatureDoesNotMatch"
                            | "AccessDenied"
                            | "AuthorizationHeaderMalformed"
                            | "InvalidToken"
                            | "ExpiredToken"
                            | "InvalidSecurity"
                            | "NotSignedUp"
                    )
                ) || status == Some(403);
                if refused {
                    ClusterError::Invalid(format!(
                        "offsite bucket {bucket} at {location} refused drbot's credentials ({code_or_status}) for {what}: check offsite.access_key_id / offsite.secret_access_key and the bucket policy"
                    ))
                } else if code.as_deref() == Some("NoSuchBucket") {
                    ClusterError::Invalid(format!(
                        "offsite bucket {bucket} does not exist at {location}"
                    ))
                } else {
                    let message = e.message().unwrap_or("");
                    ClusterError::Unavailable(format!(
                        "offsite bucket {bucket} at {location}: {what} failed ({code_or_status}) {message}"
                    ))
                }
            }
            _ => ClusterError::Unavailable(format!(
                "offsite bucket {bucket} at {location}: {what} failed: {}",
                DisplayErrorContext(&e)
            )),
        }
    }

    /// The bucket exists and drbot may read it.
    pub async fn reachable(&self) -> Result<(), ClusterError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                // HEAD answers have no body, so no error code: name the usual causes.
                if e.raw_response().map(|r| r.status().as_u16()) == Some(404) {
                    ClusterError::Invalid(format!(
                        "offsite bucket {} does not exist at {}",
                        self.bucket, self.location
                    ))
                } else {
                    self.error("HeadBucket", e)
                }
            })
    }

    pub async fn versioning(&self) -> Result<VersioningStatus, ClusterError> {
        let out = self
            .client
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| self.error("GetBucketVersioning", e))?;
        Ok(match out.status() {
            Some(BucketVersioningStatus::Enabled) => VersioningStatus::Enabled,
            Some(BucketVersioningStatus::Suspended) => VersioningStatus::Suspended,
            _ => VersioningStatus::Off,
        })
    }

    /// Every object under `prefix`, following continuation tokens; keys are full keys.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, ClusterError> {
        self.list_after(prefix, None).await
    }

    /// The objects under `prefix` whose keys sort after `start_after` (S3 `StartAfter`).
    async fn list_after(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<ListedObject>, ClusterError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_start_after(start_after.map(str::to_string))
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| self.error(&format!("ListObjectsV2 {prefix}"), e))?;
            for o in page.contents() {
                let (Some(key), Some(t)) = (o.key(), o.last_modified().and_then(to_utc)) else {
                    continue;
                };
                out.push(ListedObject {
                    key: key.to_string(),
                    last_modified: t,
                    size: o.size().unwrap_or(0),
                });
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => {
                    if token.as_deref() == Some(next) {
                        return Err(ClusterError::Unavailable(format!(
                            "offsite bucket {}: listing {prefix} returned the same continuation token twice",
                            self.bucket
                        )));
                    }
                    token = Some(next.to_string());
                }
                _ => return Ok(out),
            }
        }
        Err(ClusterError::Unavailable(format!(
            "offsite bucket {}: listing {prefix} did not end after {MAX_PAGES} pages",
            self.bucket
        )))
    }

    /// GET an object, or its first bytes.
    async fn get(&self, key: &str, first_bytes: Option<u64>) -> Result<Vec<u8>, ClusterError> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(n) = first_bytes {
            req = req.range(format!("bytes=0-{}", n.saturating_sub(1)));
        }
        let out = req
            .send()
            .await
            .map_err(|e| self.error(&format!("GetObject {key}"), e))?;
        let body = out.body.collect().await.map_err(|e| {
            ClusterError::Unavailable(format!(
                "offsite bucket {}: reading {key} failed: {e}",
                self.bucket
            ))
        })?;
        Ok(body.into_bytes().to_vec())
    }

    /// Velero backups under `<velero_prefix>/backups/`, newest first.
    pub async fn velero_backups(&self) -> Result<Vec<VeleroBackupObject>, ClusterError> {
        let root = format!("{}backups/", self.velero_root);
        let objects = self.list(&root).await?;
        let mut by_name: BTreeMap<String, Vec<&ListedObject>> = BTreeMap::new();
        for o in &objects {
            if let Some((name, _)) = o.key[root.len()..].split_once('/')
                && !name.is_empty()
            {
                by_name.entry(name.to_string()).or_default().push(o);
            }
        }
        // What the listing tells; the documents are read next.
        let found: Vec<(VeleroBackupObject, Option<String>)> = by_name
            .iter()
            .map(|(name, objs)| {
                let file = |f: String| objs.iter().find(|o| o.key == format!("{root}{name}/{f}"));
                let json = file("velero-backup.json".into());
                let b = VeleroBackupObject {
                    name: name.clone(),
                    last_modified: json
                        .map(|o| o.last_modified)
                        .or_else(|| objs.iter().map(|o| o.last_modified).max()),
                    readable: false,
                    phase: None,
                    completed_at: None,
                    tarball: file(format!("{name}.tar.gz")).map(|o| o.size),
                    problem: None,
                };
                (b, json.map(|o| o.key.clone()))
            })
            .collect();
        let mut out: Vec<VeleroBackupObject> = futures_util::stream::iter(found)
            .map(|(mut b, json)| async move {
                let Some(json) = json else {
                    b.problem = Some("no velero-backup.json".into());
                    return b;
                };
                match self.get(&json, None).await {
                    Ok(body) => match parse_velero_backup(&body) {
                        Ok((phase, completed)) => {
                            b.readable = true;
                            b.phase = phase;
                            b.completed_at = completed;
                        }
                        Err(e) => b.problem = Some(format!("velero-backup.json {e}")),
                    },
                    Err(e) => b.problem = Some(e.to_string()),
                }
                b
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .collect()
            .await;
        out.sort_by(|a, b| b.when().cmp(&a.when()).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    /// Everything under a WAL-G prefix (keys made relative to it), with the documents and
    /// the WAL tails the window needs.
    pub async fn walg_listing(&self, prefix: &str) -> Result<Listing, ClusterError> {
        let objects: Vec<ListedObject> = self
            .list_walg(prefix)
            .await?
            .into_iter()
            .map(|o| ListedObject {
                key: o.key[prefix.len()..].to_string(),
                ..o
            })
            .collect();
        let wanted: Vec<ListedObject> = objects
            .iter()
            .filter(|o| walg::needs_body(&o.key))
            .cloned()
            .collect();
        let bodies = futures_util::stream::iter(wanted)
            .map(|o| async move {
                let full = format!("{prefix}{}", o.key);
                if let Some(body) = self.listings.body(&full, &o) {
                    return (o.key.clone(), Ok(body));
                }
                let body = self.get(&full, None).await.map_err(|e| e.to_string());
                if let Ok(b) = &body {
                    self.listings.keep_body(&full, &o, b);
                }
                (o.key, body)
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .collect()
            .await;
        let mut listing = Listing {
            objects,
            bodies,
            scans: BTreeMap::new(),
            listed_at: Some(self.clock.now()),
        };
        self.read_wal_tails(prefix, &mut listing).await;
        Ok(listing)
    }

    /// Everything under a WAL-G prefix (full keys): `basebackups_005/` listed whole and
    /// `wal_005/` from near the last key seen, or everything when [`listing::ListingCache`]
    /// says a full listing is due (first look, backups changed, [`FULL_RELIST_EVERY`]).
    async fn list_walg(&self, prefix: &str) -> Result<Vec<ListedObject>, ClusterError> {
        let now = self.clock.now();
        if let listing::Plan::After(after) = self.listings.plan(prefix, now) {
            let backups = self
                .list(&format!("{prefix}{}", walg::BASEBACKUPS_DIR))
                .await?;
            let tail = self
                .list_after(&format!("{prefix}{}", walg::WAL_DIR), Some(&after))
                .await?;
            if let Some(objects) = self.listings.merge(prefix, &backups, &after, tail) {
                return Ok(objects);
            }
            tracing::debug!(
                prefix,
                "base backups changed: listing the WAL-G prefix whole"
            );
        }
        let objects = self.list(prefix).await?;
        self.listings.full(prefix, objects.clone(), now);
        Ok(objects)
    }

    fn prefix_of(&self, cluster: &str) -> Result<&str, ClusterError> {
        self.clusters
            .iter()
            .find(|(name, _)| name == cluster)
            .map(|(_, prefix)| prefix.as_str())
            .ok_or_else(|| {
                let known: Vec<&str> = self.clusters.iter().map(|(n, _)| n.as_str()).collect();
                ClusterError::Invalid(format!(
                    "no WAL-G prefix for database cluster {cluster} in offsite.clusters (configured: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })
    }

    /// The recoverable window of a configured database cluster, gaps included.
    pub async fn window(&self, cluster: &str) -> Result<Window, ClusterError> {
        let prefix = self.prefix_of(cluster)?;
        let listing = self.walg_listing(prefix).await?;
        walg::recoverable_window(&listing).map_err(|p| {
            ClusterError::Invalid(format!("{cluster} (s3://{}/{prefix}): {p}", self.bucket))
        })
    }

    /// Read part of a real backup object: the first bytes of the newest Completed Velero
    /// backup's tarball, else the newest WAL-G sentinel. Returns what was read, as evidence.
    pub async fn sample_readable(&self) -> Result<String, ClusterError> {
        let velero = self.velero_backups().await?;
        self.sample(&velero).await
    }

    async fn sample(&self, velero: &[VeleroBackupObject]) -> Result<String, ClusterError> {
        let tarball = velero
            .iter()
            .find(|b| b.completed())
            .or_else(|| velero.iter().find(|b| b.tarball.is_some()));
        if let Some(b) = tarball {
            let key = format!("{}backups/{}/{}.tar.gz", self.velero_root, b.name, b.name);
            let head = self.get(&key, Some(SAMPLE_BYTES)).await?;
            return if head.starts_with(&[0x1f, 0x8b]) {
                Ok(format!(
                    "read the first {} bytes of s3://{}/{key}: gzip header OK",
                    head.len(),
                    self.bucket
                ))
            } else {
                Err(ClusterError::Invalid(format!(
                    "s3://{}/{key} is not gzip: the Velero tarball is damaged or encrypted by something drbot does not know",
                    self.bucket
                )))
            };
        }
        for (_, prefix) in &self.clusters {
            let root = format!("{prefix}{}", walg::BASEBACKUPS_DIR);
            let newest = self
                .list(&root)
                .await?
                .into_iter()
                .filter(|o| o.key.ends_with(walg::SENTINEL_SUFFIX))
                .max_by_key(|o| o.last_modified);
            if let Some(o) = newest {
                let body = self.get(&o.key, None).await?;
                walg::parse_sentinel(&body).map_err(|e| {
                    ClusterError::Invalid(format!("s3://{}/{}: {e}", self.bucket, o.key))
                })?;
                return Ok(format!(
                    "read s3://{}/{} ({} bytes): a WAL-G sentinel",
                    self.bucket,
                    o.key,
                    body.len()
                ));
            }
        }
        Err(ClusterError::Invalid(format!(
            "offsite bucket {}: no backup object to read (no Velero tarball, no WAL-G sentinel)",
            self.bucket
        )))
    }

    /// The offsite part of `/dr backups`; `ok` is false when something a restore needs is
    /// missing or unreadable.
    pub async fn report(&self) -> BackupsReport {
        let mut lines = Vec::new();
        let mut ok = true;
        let bucket = &self.bucket;
        if let Err(e) = self.reachable().await {
            lines.push(format!("offsite bucket {bucket} unreachable: {e}"));
            return BackupsReport { ok: false, lines };
        }
        match self.versioning().await {
            Ok(VersioningStatus::Enabled) => lines.push(format!(
                "offsite bucket {bucket} at {} reachable, versioning Enabled",
                self.location
            )),
            Ok(v) => lines.push(format!(
                "offsite bucket {bucket} at {} reachable, versioning {}: WARNING deleted or overwritten backups cannot be recovered; enable versioning on the bucket",
                self.location,
                v.label()
            )),
            Err(e) => lines.push(format!(
                "offsite bucket {bucket} reachable, versioning unknown: {e}"
            )),
        }

        let root = format!("{}backups/", self.velero_root);
        let velero = match self.velero_backups().await {
            Ok(v) => v,
            Err(e) => {
                ok = false;
                lines.push(format!("Velero: cannot list s3://{bucket}/{root}: {e}"));
                Vec::new()
            }
        };
        let completed: Vec<&VeleroBackupObject> = velero.iter().filter(|b| b.completed()).collect();
        match completed.first() {
            Some(newest) => lines.push(format!(
                "Velero: {} backups in s3://{bucket}/{root} ({} Completed), newest Completed {} at {}",
                velero.len(),
                completed.len(),
                newest.name,
                newest.when().map(fmt_time).unwrap_or_else(|| "unknown".into())
            )),
            None => {
                ok = false;
                lines.push(format!(
                    "Velero: no Completed backup in s3://{bucket}/{root} ({} found)",
                    velero.len()
                ));
            }
        }
        // Anything newer than the newest Completed one that is not Completed.
        let newest_ok = completed.first().and_then(|b| b.when());
        for b in velero
            .iter()
            .filter(|b| !b.completed() && b.when() >= newest_ok)
            .take(3)
        {
            let state = match (&b.problem, &b.phase, b.tarball) {
                (Some(p), _, _) => format!("unreadable ({p})"),
                (None, _, None) => "has no tarball".into(),
                (None, Some(phase), _) => phase.clone(),
                (None, None, _) => "has no status.phase".into(),
            };
            lines.push(format!("Velero: {} {state}", b.name));
        }
        if !velero.is_empty() {
            match self.sample(&velero).await {
                Ok(evidence) => lines.push(format!("sample read: {evidence}")),
                Err(e) => {
                    ok = false;
                    lines.push(format!("sample read failed: {e}"));
                }
            }
        }

        if self.clusters.is_empty() {
            lines.push("no database clusters configured (offsite.clusters)".into());
        }
        for (cluster, prefix) in &self.clusters {
            let listing = match self.walg_listing(prefix).await {
                Ok(l) => l,
                Err(e) => {
                    ok = false;
                    lines.push(format!(
                        "{cluster}: cannot list s3://{bucket}/{prefix}: {e}"
                    ));
                    continue;
                }
            };
            let (cluster_ok, cluster_lines) = describe_cluster(cluster, &listing);
            ok &= cluster_ok;
            lines.extend(cluster_lines);
        }
        BackupsReport { ok, lines }
    }
}

/// `status.phase` and `status.completionTimestamp` of a Velero Backup document.
fn parse_velero_backup(body: &[u8]) -> Result<(Option<String>, Option<DateTime<Utc>>), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("is not JSON: {e}"))?;
    if v.get("kind").and_then(Value::as_str) != Some("Backup") {
        return Err("is not a Velero Backup".into());
    }
    let status = v.get("status");
    let phase = status
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let completed = status
        .and_then(|s| s.get("completionTimestamp"))
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok((phase, completed))
}

/// Report lines for one database cluster's WAL-G prefix.
fn describe_cluster(cluster: &str, listing: &Listing) -> (bool, Vec<String>) {
    let mut lines = Vec::new();
    let backups = walg::base_backups(listing);
    let complete: Vec<&walg::BaseBackup> = backups.iter().filter(|b| b.complete).collect();
    match complete.iter().max_by_key(|b| b.finish_time) {
        Some(newest) => lines.push(format!(
            "{cluster}: {} base backups ({} complete), newest {} (finished {})",
            backups.len(),
            complete.len(),
            newest.name,
            newest
                .finish_time
                .map(fmt_time)
                .unwrap_or_else(|| "unknown".into())
        )),
        None => lines.push(format!(
            "{cluster}: {} base backups, none complete",
            backups.len()
        )),
    }
    let mut segments = 0;
    let mut timelines = std::collections::BTreeSet::new();
    let mut newest: Option<(DateTime<Utc>, walg::SegmentName)> = None;
    for o in listing.objects.iter() {
        if let Some(WalFile::Segment(s)) =
            o.key.strip_prefix(walg::WAL_DIR).map(walg::parse_wal_file)
        {
            segments += 1;
            timelines.insert(s.timeline);
            if newest.is_none_or(|(t, n)| (o.last_modified, s) > (t, n)) {
                newest = Some((o.last_modified, s));
            }
        }
    }
    match newest {
        Some((t, s)) => lines.push(format!(
            "{cluster}: {segments} WAL segments on timeline{} {}, newest {s} uploaded {}",
            if timelines.len() == 1 { "" } else { "s" },
            timelines
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            fmt_time(t)
        )),
        None => lines.push(format!("{cluster}: no WAL segments archived")),
    }
    match walg::recoverable_window(listing) {
        Ok(w) => {
            lines.push(format!(
                "{cluster}: PITR window {} (targets before the end: {}; WAL runs to segment {})",
                w.range(),
                w.last_commit.describe(),
                w.last_segment
            ));
            for g in &w.gaps {
                lines.push(format!("{cluster}: {}", g.describe()));
            }
            for n in &w.notes {
                lines.push(format!("{cluster}: {n}"));
            }
            (true, lines)
        }
        Err(p) => {
            lines.push(format!("{cluster}: no PITR window: {p}"));
            (false, lines)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velero_documents() {
        let (phase, at) = parse_velero_backup(
            br#"{"apiVersion":"velero.io/v1","kind":"Backup","metadata":{"name":"daily-1"},
                "status":{"phase":"Completed","completionTimestamp":"2026-03-01T02:00:00Z"}}"#,
        )
        .unwrap();
        assert_eq!(phase.as_deref(), Some("Completed"));
        assert_eq!(at.map(fmt_time).as_deref(), Some("2026-03-01T02:00:00Z"));
        assert!(parse_velero_backup(b"{}").is_err());
        assert!(parse_velero_backup(b"\x1f\x8b").is_err());
    }

    #[test]
    fn settings_are_checked_before_any_request() {
        let e = Offsite::new(&OffsiteSettings::default()).unwrap_err();
        assert!(e.to_string().contains("offsite.bucket"), "{e}");
        let settings = OffsiteSettings {
            bucket: "dr-offsite".into(),
            access_key_id: Some("AK".into()),
            ..OffsiteSettings::default()
        };
        let e = Offsite::new(&settings).unwrap_err();
        assert!(e.to_string().contains("secret_access_key"), "{e}");
    }
}
