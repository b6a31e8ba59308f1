//! `[offsite]`: the offsite object storage backups are checked in.

use serde::Deserialize;

use super::string_list;

/// Offsite object storage: the source of truth for backups (the in-cluster MinIO is assumed
/// lost). One bucket holds the Velero backup location and each database cluster's WAL-G
/// prefix. No `bucket` = no offsite checks.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OffsiteSettings {
    pub bucket: String,
    /// S3-compatible endpoint (`https://s3.example.net`); unset = AWS S3.
    pub endpoint: Option<String>,
    pub region: String,
    /// Path-style requests (`<endpoint>/<bucket>/<key>`), which most S3-compatible stores need.
    pub force_path_style: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// The Velero BackupStorageLocation's `objectStorage.prefix` ("" = bucket root): backups
    /// are read from `<velero_prefix>/backups/<name>/`.
    pub velero_prefix: String,
    /// `<cluster>=<WAL-G prefix>` per database cluster: the path of its `WALG_S3_PREFIX`
    /// (SGBackup `status.backupPath`), or the whole `s3://<bucket>/<path>`. In the
    /// environment, comma-separated.
    #[serde(deserialize_with = "string_list")]
    pub clusters: Vec<String>,
    /// Limit for one request, retries included.
    pub timeout_seconds: u64,
}

impl Default for OffsiteSettings {
    fn default() -> Self {
        OffsiteSettings {
            bucket: String::new(),
            endpoint: None,
            region: "us-east-1".into(),
            force_path_style: false,
            access_key_id: None,
            secret_access_key: None,
            velero_prefix: String::new(),
            clusters: Vec::new(),
            timeout_seconds: 30,
        }
    }
}

impl OffsiteSettings {
    pub fn enabled(&self) -> bool {
        !self.bucket.is_empty()
    }

    /// Where Velero's `backups/` lives: `""` or `velero/`.
    pub fn velero_root(&self) -> String {
        let p = self.velero_prefix.trim_matches('/');
        if p.is_empty() {
            String::new()
        } else {
            format!("{p}/")
        }
    }

    /// `(cluster, prefix)` per `clusters` entry; prefixes are bucket keys ending in `/`
    /// (empty for the bucket root).
    pub fn cluster_prefixes(&self) -> Result<Vec<(String, String)>, String> {
        let mut out: Vec<(String, String)> = Vec::new();
        for entry in &self.clusters {
            let Some((name, prefix)) = entry.split_once('=') else {
                return Err(format!(
                    "offsite.clusters entry {entry:?} must be `<cluster>=<WAL-G prefix>`"
                ));
            };
            let (name, prefix) = (name.trim(), prefix.trim());
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(format!(
                    "offsite.clusters entry {entry:?} must start with a database cluster name"
                ));
            }
            if out.iter().any(|(n, _)| n == name) {
                return Err(format!("offsite.clusters names {name} twice"));
            }
            let path = match prefix.strip_prefix("s3://") {
                Some(rest) => {
                    let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
                    if bucket != self.bucket {
                        return Err(format!(
                            "offsite.clusters entry for {name} is in bucket {bucket}, but offsite.bucket is {}: drbot reads one offsite bucket",
                            self.bucket
                        ));
                    }
                    path
                }
                None => prefix,
            };
            let path = path.trim_matches('/');
            let path = if path.is_empty() {
                String::new()
            } else {
                format!("{path}/")
            };
            out.push((name.to_string(), path));
        }
        Ok(out)
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            let set = [
                ("endpoint", self.endpoint.is_some()),
                ("access_key_id", self.access_key_id.is_some()),
                ("secret_access_key", self.secret_access_key.is_some()),
                ("clusters", !self.clusters.is_empty()),
            ];
            if let Some((name, _)) = set.iter().find(|(_, on)| *on) {
                return Err(format!(
                    "offsite.{name} is set but offsite.bucket is not: name the offsite bucket (DRBOT__OFFSITE__BUCKET)"
                ));
            }
            return Ok(());
        }
        let b = &self.bucket;
        let bucket_ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
            && b.starts_with(|c: char| c.is_ascii_alphanumeric())
            && b.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(format!(
                "offsite.bucket {b:?} is not an S3 bucket name (3-63 lowercase letters, digits, '.' and '-'); put the endpoint in offsite.endpoint and paths in offsite.velero_prefix / offsite.clusters"
            ));
        }
        if let Some(url) = &self.endpoint
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err("offsite.endpoint must be an http(s) URL".into());
        }
        if self.region.trim().is_empty() {
            return Err(
                "offsite.region must not be empty (S3-compatible stores usually accept us-east-1)"
                    .into(),
            );
        }
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        if !given(&self.access_key_id) || !given(&self.secret_access_key) {
            return Err(
                "offsite.access_key_id and offsite.secret_access_key are both required: drbot uses static credentials (DRBOT__OFFSITE__ACCESS_KEY_ID, DRBOT__OFFSITE__SECRET_ACCESS_KEY)".into(),
            );
        }
        if !(1..=300).contains(&self.timeout_seconds) {
            return Err("offsite.timeout_seconds must be between 1 and 300".into());
        }
        self.cluster_prefixes().map(|_| ())
    }
}
