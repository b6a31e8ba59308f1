//! An S3-compatible server on 127.0.0.1, in-process: s3s-fs keeps each object as a file under
//! a temporary directory (`<root>/<bucket>/<key>`), a wrapper adds bucket versioning (s3s-fs
//! has none), and SigV4 signatures are checked against test keys.
//!
//! Objects are seeded as files with chosen modification times: s3s-fs reports a file's mtime
//! as the object's LastModified, so tests control the times a window is computed from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use chrono::{DateTime, Duration, Utc};
use drbot::cluster::walg::{SegmentName, WAL_SEGMENT_SIZE};
use drbot::config::OffsiteSettings;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

pub const ACCESS_KEY: &str = "AKIAOFFSITETEST0001";
pub const SECRET_KEY: &str = "offsite/test+secret/key0000000000000001";

/// s3s-fs plus bucket versioning, which it does not implement.
struct VersionedFs {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
    versioning: Arc<Mutex<HashMap<String, String>>>,
    stats: Arc<Mutex<Vec<ListRequest>>>,
}

impl VersionedFs {
    fn bucket_exists(&self, bucket: &str) -> bool {
        self.root.join(bucket).is_dir()
    }
}

#[async_trait::async_trait]
impl S3 for VersionedFs {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }
    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let (prefix, start_after) = (req.input.prefix.clone(), req.input.start_after.clone());
        let out = list_v2(&self.root, req.input)?;
        self.stats.lock().unwrap().push(ListRequest {
            prefix,
            start_after,
            keys: out.key_count.unwrap_or(0),
        });
        Ok(S3Response::new(out))
    }
    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.fs.get_object(req).await
    }
    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.fs.put_object(req).await
    }
    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }
    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let bucket = req.input.bucket;
        if !self.bucket_exists(&bucket) {
            return Err(s3_error!(NoSuchBucket));
        }
        let status = self
            .versioning
            .lock()
            .unwrap()
            .get(&bucket)
            .cloned()
            .map(BucketVersioningStatus::from);
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            ..Default::default()
        }))
    }
    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let input = req.input;
        if !self.bucket_exists(&input.bucket) {
            return Err(s3_error!(NoSuchBucket));
        }
        if let Some(status) = input.versioning_configuration.status {
            self.versioning
                .lock()
                .unwrap()
                .insert(input.bucket, status.as_str().to_string());
        }
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }
}

/// One ListObjectsV2 request as the server saw it, and how many keys it answered.
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub prefix: Option<String>,
    pub start_after: Option<String>,
    pub keys: i32,
}

/// The running server; stops when dropped.
pub struct S3Server {
    pub endpoint: String,
    root: tempfile::TempDir,
    versioning: Arc<Mutex<HashMap<String, String>>>,
    /// Every ListObjectsV2 request received, in order.
    lists: Arc<Mutex<Vec<ListRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl S3Server {
    pub async fn start() -> S3Server {
        let root = tempfile::tempdir().expect("tempdir");
        let versioning = Arc::new(Mutex::new(HashMap::new()));
        let lists = Arc::new(Mutex::new(Vec::new()));
        let backend = VersionedFs {
            fs: s3s_fs::FileSystem::new(root.path()).expect("s3s-fs root"),
            root: root.path().to_path_buf(),
            versioning: versioning.clone(),
            stats: lists.clone(),
        };
        let mut builder = s3s::service::S3ServiceBuilder::new(backend);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
                });
            }
        });
        S3Server {
            endpoint: format!("http://{addr}"),
            root,
            versioning,
            lists,
            task,
        }
    }

    /// The ListObjectsV2 requests received so far (and forget them).
    pub fn take_lists(&self) -> Vec<ListRequest> {
        std::mem::take(&mut *self.lists.lock().unwrap())
    }

    pub fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir_all(self.root.path().join(bucket)).expect("bucket dir");
    }

    /// Set a bucket's versioning behind the API's back (`None` = never enabled).
    pub fn set_versioning(&self, bucket: &str, status: Option<&str>) {
        let mut v = self.versioning.lock().unwrap();
        match status {
            Some(s) => v.insert(bucket.to_string(), s.to_string()),
            None => v.remove(bucket),
        };
    }

    /// Store an object whose LastModified is `modified`.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8], modified: DateTime<Utc>) {
        let path = self.root.path().join(bucket).join(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("object dir");
        std::fs::write(&path, body).expect("object");
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("reopen");
        file.set_modified(SystemTime::from(modified))
            .expect("set mtime");
    }

    pub fn remove(&self, bucket: &str, key: &str) {
        std::fs::remove_file(self.root.path().join(bucket).join(key)).expect("remove object");
    }

    /// Offsite settings for `bucket` on this server, with the test keys.
    pub fn settings(&self, bucket: &str) -> OffsiteSettings {
        OffsiteSettings {
            bucket: bucket.to_string(),
            endpoint: Some(self.endpoint.clone()),
            force_path_style: true,
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            timeout_seconds: 10,
            ..OffsiteSettings::default()
        }
    }

    /// A plain SDK client, for what drbot itself never does (writing bucket settings).
    pub fn client(&self) -> aws_sdk_s3::Client {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(&self.endpoint)
                .force_path_style(true)
                .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
                .http_client(http)
                .build(),
        )
    }

    /// Lay out one database cluster's WAL-G prefix as `wal-g backup-push` and `wal-push` leave it.
    pub fn seed_walg(&self, bucket: &str, prefix: &str, layout: &WalgLayout) {
        let prefix = prefix.trim_end_matches('/');
        let ext = layout.compression;
        let put = |key: String, body: &[u8], at: DateTime<Utc>| {
            self.put(bucket, &format!("{prefix}/{key}"), body, at)
        };
        for b in &layout.backups {
            let start = SegmentName::parse(b.start).expect("backup start segment");
            let name = format!("base_{}", b.start);
            let start_lsn = start.segno * WAL_SEGMENT_SIZE + 0x28;
            // pg_backup_stop switches segments: the backup ends in the next one.
            let finish_lsn = (start.segno + 1) * WAL_SEGMENT_SIZE + 0x138;
            let dir = format!("basebackups_005/{name}");
            let parts = b.finished - Duration::seconds(5);
            put(
                format!("{dir}/tar_partitions/part_001.tar.{ext}"),
                &compressed(b"base backup data files"),
                parts,
            );
            put(
                format!("{dir}/tar_partitions/pg_control.tar.{ext}"),
                &compressed(b"pg_control"),
                parts,
            );
            put(
                format!("{dir}/tar_partitions/backup_label.tar.{ext}"),
                &compressed(b"backup_label"),
                parts,
            );
            put(
                format!("{dir}/files_metadata.json"),
                br#"{"Files":{"/PG_VERSION":{"IsSkipped":false,"IsIncremented":false,"MTime":"2026-01-01T00:00:00Z"}}}"#,
                parts,
            );
            let metadata = serde_json::json!({
                "start_time": b.started.to_rfc3339(),
                "finish_time": b.finished.to_rfc3339(),
                "date_fmt": "%Y-%m-%dT%H:%M:%S.%fZ",
                "hostname": "orders-0",
                "data_dir": "/var/lib/postgresql/data",
                "pg_version": 160004,
                "start_lsn": start_lsn,
                "finish_lsn": finish_lsn,
                "is_permanent": false,
                "system_identifier": 7_345_678_901_234_567_890u64,
                "uncompressed_size": 52_428_800,
                "compressed_size": 7_340_032,
                "user_data": null,
            });
            put(
                format!("{dir}/metadata.json"),
                metadata.to_string().as_bytes(),
                b.finished + Duration::seconds(1),
            );
            if b.complete {
                let sentinel = serde_json::json!({
                    "LSN": start_lsn,
                    "FinishLSN": finish_lsn,
                    "PgVersion": 160004,
                    "SystemIdentifier": 7_345_678_901_234_567_890u64,
                    "UncompressedSize": 52_428_800,
                    "CompressedSize": 7_340_032,
                    "DataCatalogSize": 52_428_800,
                    "Spec": null,
                    "UserData": null,
                    "FilesMetadataDisabled": false,
                });
                put(
                    format!("basebackups_005/{name}_backup_stop_sentinel.json"),
                    sentinel.to_string().as_bytes(),
                    b.finished + Duration::seconds(2),
                );
                put(
                    format!("wal_005/{}.00000028.backup.{ext}", b.start),
                    &compressed(b"START WAL LOCATION"),
                    b.finished,
                );
            }
        }
        for run in &layout.wal {
            for i in 0..run.count {
                let seg = SegmentName::new(run.timeline, run.first_segno + i);
                let name = seg.to_string();
                let uploaded = run.first_upload + run.every * i as i32;
                let commits = match layout.commits.iter().find(|(s, _)| *s == name) {
                    Some((_, at)) => at.clone(),
                    None if layout.quiet.contains(&name) => Vec::new(),
                    None => vec![uploaded - layout.commit_lag],
                };
                put(
                    format!("wal_005/{name}.{ext}"),
                    &super::wal::compress(ext, &super::wal::segment(seg, &commits)),
                    uploaded,
                );
            }
        }
        for (segment, at) in &layout.partials {
            put(
                format!("wal_005/{segment}.partial.{ext}"),
                &compressed(segment.as_bytes()),
                *at,
            );
        }
        for h in &layout.histories {
            let file = format!("wal_005/{:08X}.history", h.timeline);
            if h.compressed {
                put(
                    format!("{file}.{ext}"),
                    &compressed(h.content.as_bytes()),
                    h.uploaded,
                );
            } else {
                put(file, h.content.as_bytes(), h.uploaded);
            }
        }
    }

    /// A Velero backup as the server writes it under `<prefix>backups/<name>/`.
    pub fn seed_velero(
        &self,
        bucket: &str,
        prefix: &str,
        name: &str,
        phase: &str,
        completed: DateTime<Utc>,
    ) {
        let dir = format!("{prefix}backups/{name}");
        let started = completed - Duration::minutes(4);
        let backup = serde_json::json!({
            "kind": "Backup",
            "apiVersion": "velero.io/v1",
            "metadata": {
                "name": name,
                "namespace": "velero",
                "labels": {"velero.io/schedule-name": "daily", "velero.io/storage-location": "offsite"},
                "creationTimestamp": started.to_rfc3339(),
            },
            "spec": {
                "includedNamespaces": ["*"],
                "storageLocation": "offsite",
                "ttl": "720h0m0s",
                "snapshotVolumes": false,
                "defaultVolumesToFsBackup": false,
            },
            "status": {
                "version": 1,
                "formatVersion": "1.1.0",
                "phase": phase,
                "startTimestamp": started.to_rfc3339(),
                "completionTimestamp": completed.to_rfc3339(),
                "expiration": (completed + Duration::days(30)).to_rfc3339(),
                "progress": {"totalItems": 412, "itemsBackedUp": 412},
                "warnings": if phase == "Completed" { 0 } else { 3 },
                "errors": if phase == "Completed" { 0 } else { 1 },
            },
        });
        let gz = gzip(b"resources/namespaces/cluster/db.json");
        for file in [
            format!("{name}.tar.gz"),
            format!("{name}-logs.gz"),
            format!("{name}-podvolumebackups.json.gz"),
            format!("{name}-volumesnapshots.json.gz"),
            format!("{name}-itemoperations.json.gz"),
            format!("{name}-resource-list.json.gz"),
            format!("{name}-csi-volumesnapshots.json.gz"),
            format!("{name}-csi-volumesnapshotcontents.json.gz"),
            format!("{name}-csi-volumesnapshotclasses.json.gz"),
            format!("{name}-results.gz"),
            format!("{name}-volumeinfo.json.gz"),
        ] {
            self.put(bucket, &format!("{dir}/{file}"), &gz, completed);
        }
        self.put(
            bucket,
            &format!("{dir}/velero-backup.json"),
            backup.to_string().as_bytes(),
            completed + Duration::seconds(1),
        );
    }
}

/// Most keys a ListObjectsV2 page holds, whatever MaxKeys asks: "returns up to 1,000 key
/// names" (S3 API reference, ListObjectsV2, MaxKeys).
const MAX_KEYS: i32 = 1000;

/// ListObjectsV2 as S3 answers it, from one sorted index built per request: the keys under
/// the prefix's directory (names only), sorted in UTF-8 binary order; only the page's own
/// objects are then stat'ed and hashed. s3s-fs 0.14.1 (`list_objects_v2` in src/s3.rs)
/// instead stats every object of the bucket for every page, which made a 10 000-object
/// listing cost seconds on loopback where S3 answers from its index.
///
/// Semantics from the S3 API reference (ListObjectsV2) and the s3s 0.14.1 DTOs: keys after
/// `ContinuationToken` (opaque to clients; here the page's last key, as s3s-fs does), else
/// after `StartAfter`; with a `Delimiter`, keys holding it past the prefix roll up into one
/// `CommonPrefixes` entry, which counts once towards MaxKeys and KeyCount; `IsTruncated` and
/// `NextContinuationToken` when more remain; ETag is the quoted MD5 of the body (a
/// single-part, unencrypted upload's); StorageClass STANDARD.
fn list_v2(root: &Path, input: ListObjectsV2Input) -> S3Result<ListObjectsV2Output> {
    let bucket_root = root.join(&input.bucket);
    if input.bucket.is_empty() || input.bucket.contains(['/', '\\']) || !bucket_root.is_dir() {
        return Err(s3_error!(NoSuchBucket));
    }
    let max_keys = match input.max_keys {
        None => MAX_KEYS,
        Some(n) if n < 0 => {
            return Err(s3_error!(InvalidArgument, "MaxKeys must not be negative"));
        }
        Some(n) => n.min(MAX_KEYS),
    };
    let prefix = input.prefix.clone().unwrap_or_default();
    let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
    // S3 ignores StartAfter once a continuation token is given: the token is further on.
    let after = input
        .continuation_token
        .clone()
        .or_else(|| input.start_after.clone());

    // Only the directory the prefix names can hold its keys.
    let dir = match prefix.rfind('/') {
        Some(i) => bucket_root.join(&prefix[..i]),
        None => bucket_root.clone(),
    };
    let mut keys = Vec::new();
    walk(&bucket_root, &dir, &prefix, &mut keys).map_err(|e| s3_error!(InternalError, "{e}"))?;
    keys.sort_unstable();

    // Objects and rolled-up prefixes, in key order, past the resume point.
    let mut entries: Vec<(String, bool)> = Vec::new();
    for key in keys {
        let rolled = delimiter.as_deref().and_then(|d| {
            key[prefix.len()..]
                .find(d)
                .map(|i| key[..prefix.len() + i + d.len()].to_string())
        });
        let (name, is_prefix) = match rolled {
            Some(p) => (p, true),
            None => (key, false),
        };
        if after.as_deref().is_some_and(|a| name.as_str() <= a) {
            continue;
        }
        if entries.last().is_some_and(|(last, _)| *last == name) {
            continue;
        }
        entries.push((name, is_prefix));
    }
    let truncated = entries.len() > max_keys as usize;
    entries.truncate(max_keys as usize);
    let next = truncated
        .then(|| entries.last().map(|(k, _)| k.clone()))
        .flatten();
    let mut contents = Vec::new();
    let mut common = Vec::new();
    for (name, is_prefix) in &entries {
        if *is_prefix {
            common.push(CommonPrefix {
                prefix: Some(name.clone()),
            });
            continue;
        }
        let path = bucket_root.join(name);
        let body = std::fs::read(&path).map_err(|e| s3_error!(InternalError, "{e}"))?;
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|e| s3_error!(InternalError, "{e}"))?;
        let md5 = <md5::Md5 as md5::Digest>::digest(&body);
        let hex: String = md5.iter().map(|b| format!("{b:02x}")).collect();
        contents.push(Object {
            key: Some(name.clone()),
            last_modified: Some(Timestamp::from(modified)),
            size: Some(body.len() as i64),
            e_tag: Some(ETag::Strong(hex)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            ..Default::default()
        });
    }
    Ok(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: input.prefix,
        delimiter: input.delimiter,
        max_keys: Some(max_keys),
        key_count: Some(entries.len() as i32),
        is_truncated: Some(truncated),
        contents: (!contents.is_empty()).then_some(contents),
        common_prefixes: (!common.is_empty()).then_some(common),
        continuation_token: input.continuation_token,
        next_continuation_token: next,
        start_after: input.start_after,
        encoding_type: input.encoding_type,
        ..Default::default()
    })
}

/// Keys (bucket-relative, `/`-separated) of the files under `dir` that start with `prefix`.
fn walk(
    bucket_root: &Path,
    dir: &Path,
    prefix: &str,
    keys: &mut Vec<String>,
) -> std::io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let Some(key) = path
            .strip_prefix(bucket_root)
            .ok()
            .and_then(|k| k.to_str())
            .map(|k| k.replace(std::path::MAIN_SEPARATOR, "/"))
        else {
            continue;
        };
        if entry.file_type()?.is_dir() {
            // Descend only where keys under the prefix can be.
            let as_prefix = format!("{key}/");
            if as_prefix.starts_with(prefix) || prefix.starts_with(&as_prefix) {
                walk(bucket_root, &path, prefix, keys)?;
            }
        } else if key.starts_with(prefix) {
            keys.push(key);
        }
    }
    Ok(())
}

/// One database cluster's WAL-G objects.
pub struct WalgLayout {
    /// Extension of compressed objects (`lz4` is StackGres's default).
    pub compression: &'static str,
    pub backups: Vec<BackupSpec>,
    pub wal: Vec<WalRun>,
    /// `.partial` segments (a promotion's old-timeline copy) and their upload times.
    pub partials: Vec<(String, DateTime<Utc>)>,
    pub histories: Vec<HistorySpec>,
    /// Each segment's last commit is this long before its upload (unless listed below).
    pub commit_lag: Duration,
    /// Segments (24 hex) holding no commit: a quiet database.
    pub quiet: Vec<String>,
    /// Segments (24 hex) with these commit times instead.
    pub commits: Vec<(String, Vec<DateTime<Utc>>)>,
}

impl Default for WalgLayout {
    fn default() -> Self {
        WalgLayout {
            compression: "lz4",
            backups: Vec::new(),
            wal: Vec::new(),
            partials: Vec::new(),
            histories: Vec::new(),
            commit_lag: Duration::seconds(30),
            quiet: Vec::new(),
            commits: Vec::new(),
        }
    }
}

pub struct BackupSpec {
    /// Start segment name (24 hex).
    pub start: &'static str,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// False: no sentinel yet (still running, or failed).
    pub complete: bool,
}

/// `count` segments from `first_segno` on `timeline`, uploaded `every` apart.
pub struct WalRun {
    pub timeline: u32,
    pub first_segno: u64,
    pub count: u64,
    pub first_upload: DateTime<Utc>,
    pub every: Duration,
}

impl WalRun {
    pub fn last_upload(&self) -> DateTime<Utc> {
        self.first_upload + self.every * (self.count as i32 - 1)
    }
}

pub struct HistorySpec {
    pub timeline: u32,
    /// `<parent tli>\t<switch LSN>\t<reason>` lines.
    pub content: String,
    pub uploaded: DateTime<Utc>,
    /// Stored compressed, as `wal-g wal-push` does.
    pub compressed: bool,
}

/// Stand-in for a WAL-G `lz4` object: LZ4 frame layout (magic, descriptor, one uncompressed
/// block, end mark) around `data`. Nothing decodes it; the header checksum is not computed.
pub fn compressed(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82];
    out.extend_from_slice(&(data.len() as u32 | 0x8000_0000).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out
}

/// A gzip member with one stored deflate block.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03];
    let len = data.len() as u16;
    out.push(0x01);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
