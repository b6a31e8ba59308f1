//! Settings: built-in defaults, under an optional TOML file (`--config` or `DRBOT_CONFIG`),
//! under `DRBOT__<SECTION>__<KEY>` environment variables. Secrets are never logged: `Debug`
//! is not derived for anything that could hold one.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

mod web;
pub use web::{WebAuth, WebSettings};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

#[derive(Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub cluster: ClusterSettings,
    pub sandbox: SandboxSettings,
    pub runbook: RunbookSettings,
    pub continuity: ContinuitySettings,
    pub safety: SafetySettings,
    pub console: ConsoleSettings,
    pub http: HttpSettings,
    pub slack: SlackSettings,
    pub discord: DiscordSettings,
    pub offsite: OffsiteSettings,
    pub kubernetes: KubernetesSettings,
    pub drills: DrillsSettings,
    pub tabletop: TabletopSettings,
    pub statuspage: StatuspageSettings,
    pub web: WebSettings,
}

/// SOP §10.1 drills: where the "drill due" reminder goes, and how long before a quarter ends.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DrillsSettings {
    /// `slack:C…`, `discord:…` or a console channel; unset = no reminder.
    pub channel: Option<String>,
    pub days_before_quarter_end: i64,
}

impl Default for DrillsSettings {
    fn default() -> Self {
        DrillsSettings {
            channel: None,
            days_before_quarter_end: 14,
        }
    }
}

/// The customer status page (Atlassian Statuspage REST API v1) `/dr comms publish` sends
/// to. Unset `page_id` = no status page.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatuspageSettings {
    pub page_id: Option<String>,
    /// Secret: `DRBOT__STATUSPAGE__API_KEY`.
    pub api_key: Option<String>,
    /// API base; requests go to `{base_url}/v1/pages/{page_id}/…`. Tests point it elsewhere.
    pub base_url: String,
    /// Affected service name → Statuspage component id.
    pub components: std::collections::BTreeMap<String, String>,
}

impl Default for StatuspageSettings {
    fn default() -> Self {
        StatuspageSettings {
            page_id: None,
            api_key: None,
            base_url: "https://api.statuspage.io".into(),
            components: Default::default(),
        }
    }
}

/// Tabletop exercise files are read from under this directory (default: the working one).
#[derive(Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TabletopSettings {
    pub dir: Option<String>,
}

impl StatuspageSettings {
    pub fn enabled(&self) -> bool {
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        given(&self.page_id) && given(&self.api_key)
    }

    fn validate(&self) -> Result<(), String> {
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        if given(&self.page_id) != given(&self.api_key) {
            return Err("statuspage.page_id and statuspage.api_key go together: set both (DRBOT__STATUSPAGE__PAGE_ID, DRBOT__STATUSPAGE__API_KEY) or neither".into());
        }
        if !(self.base_url.starts_with("https://") || self.base_url.starts_with("http://")) {
            return Err("statuspage.base_url must be an http(s) URL".into());
        }
        if let Some(page) = &self.page_id
            && !page.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(format!(
                "statuspage.page_id {page:?} must be the page's id (letters and digits, from its API page), not a URL"
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://drbot.db` (default) or `postgres://…`.
    pub url: String,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: "sqlite://drbot.db".into(),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// `sandbox` (default, a simulation) or `kubernetes`.
    pub backend: String,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            backend: "sandbox".into(),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSettings {
    /// 1.0 = realistic durations; 60 = an hour-long restore takes a minute.
    pub speed: f64,
    /// Where the simulated cluster keeps its objects (it outlives drbot, like a real one).
    /// Empty = in memory.
    pub state_file: String,
    pub database_namespaces: Vec<String>,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            speed: 1.0,
            state_file: "drbot-sandbox.json".into(),
            database_namespaces: vec!["db".into()],
        }
    }
}

#[derive(Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RunbookSettings {
    /// A runbook TOML to use instead of the embedded one.
    pub path: Option<String>,
}

/// The SRE guide's files (issue 11). Paths are absolute or relative to the working
/// directory, like `runbook.path`.
#[derive(Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ContinuitySettings {
    /// `business-impact-analysis.yaml`: services with tier, RPO, RTO, revenue, dependencies.
    pub catalog: Option<String>,
    /// `disaster-recovery-plan.yaml`: roles, recovery priority, review dates.
    pub plan: Option<String>,
    /// Database cluster → the catalog service whose data it holds, so a drill's time to
    /// restore is compared with that service's RTO (`orders = "user-api"`). A cluster named
    /// like a catalog service needs no entry.
    pub clusters: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SafetySettings {
    /// Launches at these severities need a second operator to confirm.
    pub two_person_severities: Vec<String>,
    pub preview_ttl_minutes: i64,
    /// Zone for timestamps typed without one (`UTC`, `+01:00`); unset = refuse them.
    pub default_zone: Option<String>,
    /// Database cluster restored when a command names none (the sandbox's is `orders`).
    pub default_cluster: Option<String>,
    /// Non-production namespace for drills (SOP §10).
    pub drill_namespace: String,
}

impl Default for SafetySettings {
    fn default() -> Self {
        SafetySettings {
            two_person_severities: vec!["sev1".into()],
            preview_ttl_minutes: 10,
            default_zone: None,
            default_cluster: None,
            drill_namespace: "dr-drill".into(),
        }
    }
}

#[derive(Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Console users allowed to launch; unset = everyone at the console is an operator.
    pub operators: Option<Vec<String>>,
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address `drbot serve` listens on.
    pub listen: String,
    /// Larger request bodies are refused with 413 before anything reads them.
    pub max_body_bytes: usize,
    /// Signed requests older (or newer) than this are refused as replays.
    pub replay_window_seconds: i64,
    /// Bearer token for `GET /api/incidents/{id}/timeline`; unset = the route is off.
    pub api_token: Option<String>,
    /// A command still running after this long is acknowledged at once and answered later
    /// (Slack `response_url`, Discord deferred reply). Both platforms give up after 3 s.
    pub ack_budget_ms: u64,
    /// A request head must arrive within this, counted from the connection's accept or from
    /// the first byte after an idle keep-alive wait; else the connection is closed.
    pub header_timeout_ms: u64,
    /// A request body must arrive within this after its head; else 408 and the connection
    /// is closed.
    pub body_timeout_ms: u64,
    /// A keep-alive connection that sends nothing for this long after a response is closed.
    pub idle_timeout_ms: u64,
    /// Most client connections open at once; lowered to fit the process file limit. At the
    /// limit the oldest connection with no request in progress is closed for a new one.
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 64 * 1024,
            replay_window_seconds: 300,
            api_token: None,
            ack_budget_ms: 2000,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 1024,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackSettings {
    /// Signing secret from the app's Basic Information page; unset = Slack routes are off.
    pub signing_secret: Option<String>,
    /// Bot token (`xoxb-…`) for the Web API.
    pub bot_token: Option<String>,
    /// Web API base; tests and proxies point it elsewhere.
    pub api_url: String,
    /// Who may launch: user ids (`U…`, `W…`) and user-group ids (`S…`).
    pub operators: Vec<String>,
    /// Minimum gap between two posts to one channel (Slack allows about one per second).
    pub post_interval_ms: u64,
    /// Receive commands over Socket Mode instead of HTTP (needs `app_token`).
    pub socket_mode: bool,
    /// App-level token (`xapp-…`) for Socket Mode.
    pub app_token: Option<String>,
}

impl Default for SlackSettings {
    fn default() -> Self {
        SlackSettings {
            signing_secret: None,
            bot_token: None,
            api_url: "https://slack.com/api".into(),
            operators: Vec::new(),
            post_interval_ms: 1000,
            socket_mode: false,
            app_token: None,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordSettings {
    /// Application public key (hex) for verifying interactions; unset = the route is off.
    pub public_key: Option<String>,
    pub bot_token: Option<String>,
    pub application_id: Option<String>,
    /// REST base (requests go to `{api_url}/api/v10/…`); tests point it elsewhere.
    pub api_url: String,
    /// Who may launch: user ids and role ids.
    pub operators: Vec<String>,
}

impl Default for DiscordSettings {
    fn default() -> Self {
        DiscordSettings {
            public_key: None,
            bot_token: None,
            application_id: None,
            api_url: "https://discord.com".into(),
            operators: Vec::new(),
        }
    }
}

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
    #[serde(deserialize_with = "offsite_list")]
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

/// A TOML array, or one comma-separated string (how environment variables give lists).
fn offsite_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct List;
    impl<'de> serde::de::Visitor<'de> for List {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of strings or a comma-separated string")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<String>, E> {
            Ok(s.split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(String::from)
                .collect())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(e) = seq.next_element::<String>()? {
                out.push(e);
            }
            Ok(out)
        }
    }
    d.deserialize_any(List)
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

    fn validate(&self) -> Result<(), String> {
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

/// The `kubernetes` cluster backend (`cluster.backend = "kubernetes"`): where the API server
/// is, where Velero, StackGres, Argo CD and Flux live, and what a freeze touches. Checked only
/// when that backend is selected.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesSettings {
    /// Kubeconfig file; unset = `KUBECONFIG` or `~/.kube/config`, else the in-cluster service
    /// account.
    pub kubeconfig: Option<String>,
    /// Kubeconfig context; unset = the file's current context.
    pub context: Option<String>,
    /// Where the Velero server runs: Restores are created there.
    pub velero_namespace: String,
    /// Namespace of the source SGClusters and their SGBackups.
    pub database_namespace: String,
    /// Left out of Velero restores on data and combined incidents (SOP §6.3), together with
    /// `database_namespace`.
    pub database_namespaces: Vec<String>,
    /// `argocd-window` (AppProject deny sync window), `argocd-auto-sync` (per-Application
    /// auto-sync off) and/or `flux` (suspend Kustomizations and HelmReleases). A string or a
    /// list; comma-separated in the environment.
    #[serde(deserialize_with = "offsite_list")]
    pub freeze_mode: Vec<String>,
    pub argocd_namespace: String,
    /// `major.minor` of Argo CD: from 3.1 on auto-sync is turned off with
    /// `automated.enabled: false`, before it by removing `automated`.
    pub argocd_version: String,
    /// AppProjects that get the deny window (`argocd-window`).
    pub argocd_projects: Vec<String>,
    /// Applications (`name` or `namespace/name`) whose auto-sync is turned off
    /// (`argocd-auto-sync`); empty = every Application with auto-sync in `argocd_namespace`.
    pub argocd_applications: Vec<String>,
    /// `namespace/name` of each Flux Kustomization to suspend (`flux`).
    pub flux_kustomizations: Vec<String>,
    /// `namespace/name` of each Flux HelmRelease to suspend (`flux`).
    pub flux_helmreleases: Vec<String>,
    /// Namespaces whose pods must all be running for the `core_namespaces` probe.
    pub core_namespaces: Vec<String>,
    /// Connection for the `pg_is_in_recovery()` check of a restored cluster, with
    /// `{cluster}`, `{namespace}` and optionally `{password}` (read from the cluster's
    /// StackGres secret). Unset = that check reports "not checked".
    pub postgres_dsn_template: Option<String>,
    /// Limit for one API request.
    pub timeout_seconds: u64,
    /// A database restore or drill with no Ready primary this long after its SGCluster was
    /// created is reported stalled (StackGres reports no progress to compare against).
    pub restore_deadline_minutes: u64,
}

impl Default for KubernetesSettings {
    fn default() -> Self {
        KubernetesSettings {
            kubeconfig: None,
            context: None,
            velero_namespace: "velero".into(),
            database_namespace: "db".into(),
            database_namespaces: vec!["db".into()],
            freeze_mode: vec!["argocd-window".into()],
            argocd_namespace: "argocd".into(),
            argocd_version: "3.1".into(),
            argocd_projects: vec!["default".into()],
            argocd_applications: Vec::new(),
            flux_kustomizations: vec!["flux-system/apps".into()],
            flux_helmreleases: Vec::new(),
            core_namespaces: vec!["kube-system".into()],
            postgres_dsn_template: None,
            timeout_seconds: 30,
            restore_deadline_minutes: 240,
        }
    }
}

/// The freeze modes `kubernetes.freeze_mode` accepts.
pub const FREEZE_MODES: &[&str] = &["argocd-window", "argocd-auto-sync", "flux"];

/// A Kubernetes object or namespace name (RFC 1123 label: lowercase letters, digits, '-').
fn dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// An object name (RFC 1123 subdomain: labels joined by '.').
fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(dns_label)
}

impl KubernetesSettings {
    /// `argocd_version` as (major, minor).
    pub fn argocd_release(&self) -> Option<(u32, u32)> {
        let v = self.argocd_version.trim().trim_start_matches('v');
        let mut parts = v.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
        Some((major, minor))
    }

    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("velero_namespace", &self.velero_namespace),
            ("database_namespace", &self.database_namespace),
            ("argocd_namespace", &self.argocd_namespace),
        ] {
            if !dns_label(value) {
                return Err(format!(
                    "kubernetes.{key} {value:?} is not a namespace name (lowercase letters, digits and '-')"
                ));
            }
        }
        for (key, list) in [
            ("database_namespaces", &self.database_namespaces),
            ("core_namespaces", &self.core_namespaces),
        ] {
            if let Some(bad) = list.iter().find(|n| !dns_label(n)) {
                return Err(format!(
                    "kubernetes.{key} entry {bad:?} is not a namespace name"
                ));
            }
        }
        if self.freeze_mode.is_empty() {
            return Err(format!(
                "kubernetes.freeze_mode must name at least one of {}",
                FREEZE_MODES.join(", ")
            ));
        }
        if let Some(bad) = self
            .freeze_mode
            .iter()
            .find(|m| !FREEZE_MODES.contains(&m.as_str()))
        {
            return Err(format!(
                "kubernetes.freeze_mode {bad:?} is not one of {}",
                FREEZE_MODES.join(", ")
            ));
        }
        let mode = |m: &str| self.freeze_mode.iter().any(|x| x == m);
        if mode("argocd-window") && mode("argocd-auto-sync") {
            return Err(
                "kubernetes.freeze_mode: choose argocd-window or argocd-auto-sync, not both (the deny window already stops every sync of the project)".into(),
            );
        }
        if mode("argocd-window") && self.argocd_projects.is_empty() {
            return Err(
                "kubernetes.freeze_mode argocd-window needs kubernetes.argocd_projects (AppProject names)".into(),
            );
        }
        if let Some(bad) = self.argocd_projects.iter().find(|p| !dns_subdomain(p)) {
            return Err(format!(
                "kubernetes.argocd_projects entry {bad:?} is not an AppProject name"
            ));
        }
        if mode("argocd-auto-sync") && self.argocd_release().is_none() {
            return Err(format!(
                "kubernetes.argocd_version {:?} must be major.minor, like 3.1 (it decides how auto-sync is turned off)",
                self.argocd_version
            ));
        }
        for entry in &self.argocd_applications {
            let ok = match entry.split_once('/') {
                Some((ns, name)) => dns_label(ns) && dns_subdomain(name),
                None => dns_subdomain(entry),
            };
            if !ok {
                return Err(format!(
                    "kubernetes.argocd_applications entry {entry:?} must be `name` or `namespace/name`"
                ));
            }
        }
        for (key, list) in [
            ("flux_kustomizations", &self.flux_kustomizations),
            ("flux_helmreleases", &self.flux_helmreleases),
        ] {
            for entry in list {
                let ok = entry
                    .split_once('/')
                    .is_some_and(|(ns, name)| dns_label(ns) && dns_subdomain(name));
                if !ok {
                    return Err(format!(
                        "kubernetes.{key} entry {entry:?} must be `namespace/name`"
                    ));
                }
            }
        }
        if mode("flux") && self.flux_kustomizations.is_empty() && self.flux_helmreleases.is_empty()
        {
            return Err(
                "kubernetes.freeze_mode flux needs kubernetes.flux_kustomizations or kubernetes.flux_helmreleases (namespace/name)".into(),
            );
        }
        if let Some(t) = &self.postgres_dsn_template {
            if !(t.starts_with("postgres://") || t.starts_with("postgresql://")) {
                return Err(
                    "kubernetes.postgres_dsn_template must be a postgres:// URL, e.g. postgres://postgres:{password}@{cluster}.{namespace}:5432/postgres".into(),
                );
            }
            if !t.contains("{cluster}") {
                return Err(
                    "kubernetes.postgres_dsn_template must contain {cluster}: each restored cluster has its own service".into(),
                );
            }
        }
        if let Some(path) = &self.kubeconfig
            && path.trim().is_empty()
        {
            return Err(
                "kubernetes.kubeconfig is set but empty: give a file path or leave it unset".into(),
            );
        }
        if !(1..=300).contains(&self.timeout_seconds) {
            return Err("kubernetes.timeout_seconds must be between 1 and 300".into());
        }
        if !(10..=10_080).contains(&self.restore_deadline_minutes) {
            return Err(
                "kubernetes.restore_deadline_minutes must be between 10 and 10080 (a week)".into(),
            );
        }
        Ok(())
    }
}

impl Settings {
    /// Load from an optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::load_from(file, None)
    }

    /// Load with an explicit environment (tests must not mutate the process's).
    pub fn load_from(
        file: Option<&Path>,
        env: Option<HashMap<String, String>>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let env_source = config::Environment::with_prefix("DRBOT")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("safety.two_person_severities")
            .with_list_parse_key("sandbox.database_namespaces")
            .with_list_parse_key("console.operators")
            .with_list_parse_key("slack.operators")
            .with_list_parse_key("discord.operators")
            .with_list_parse_key("kubernetes.database_namespaces")
            .with_list_parse_key("kubernetes.freeze_mode")
            .with_list_parse_key("kubernetes.argocd_projects")
            .with_list_parse_key("kubernetes.argocd_applications")
            .with_list_parse_key("kubernetes.flux_kustomizations")
            .with_list_parse_key("kubernetes.flux_helmreleases")
            .with_list_parse_key("kubernetes.core_namespaces")
            .with_list_parse_key("web.tokens")
            .with_list_parse_key("web.proxy")
            .with_list_parse_key("web.allow")
            .source(env);
        let settings: Settings = builder.add_source(env_source).build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        self.offsite.validate().map_err(ConfigError::Invalid)?;
        self.statuspage.validate().map_err(ConfigError::Invalid)?;
        self.web.validate().map_err(ConfigError::Invalid)?;
        match self.cluster.backend.as_str() {
            "sandbox" => {}
            "kubernetes" => self.kubernetes.validate().map_err(ConfigError::Invalid)?,
            _ => {
                return invalid(
                    "cluster.backend must be `sandbox` (a simulation, the default) or `kubernetes`",
                );
            }
        }
        if !(1..=92).contains(&self.drills.days_before_quarter_end) {
            return invalid("drills.days_before_quarter_end must be between 1 and 92");
        }
        if !(self.sandbox.speed > 0.0 && self.sandbox.speed.is_finite()) {
            return invalid("sandbox.speed must be a positive number");
        }
        if self.safety.preview_ttl_minutes <= 0 {
            return invalid("safety.preview_ttl_minutes must be positive");
        }
        if let Some(zone) = &self.safety.default_zone
            && crate::command::timestamp::parse_zone(zone).is_none()
        {
            return invalid("safety.default_zone must be UTC or an offset like +01:00");
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return invalid("http.listen must be an address like 127.0.0.1:8080");
        }
        if self.http.ack_budget_ms > 2500 {
            return invalid(
                "http.ack_budget_ms must leave room under the platforms' 3 s limit (at most 2500)",
            );
        }
        if self.http.max_body_bytes < 1024 || self.http.replay_window_seconds <= 0 {
            return invalid(
                "http.max_body_bytes must be at least 1024 and http.replay_window_seconds positive",
            );
        }
        let h = &self.http;
        if h.header_timeout_ms == 0 || h.body_timeout_ms == 0 || h.idle_timeout_ms == 0 {
            return invalid(
                "http.header_timeout_ms, http.body_timeout_ms and http.idle_timeout_ms must be positive",
            );
        }
        if h.max_connections == 0 {
            return invalid("http.max_connections must be at least 1");
        }
        for (name, url) in [
            ("slack.api_url", &self.slack.api_url),
            ("discord.api_url", &self.discord.api_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return invalid(&format!("{name} must be an http(s) URL"));
            }
        }
        if self.slack.signing_secret.is_some() && self.slack.bot_token.is_none() {
            return invalid(
                "slack.signing_secret is set but slack.bot_token is not: drbot could hear commands but not answer them",
            );
        }
        if self.slack.socket_mode {
            // Socket Mode connections are authenticated by the app-level token; the signing
            // secret only matters for the HTTP routes, which stay off without it.
            match self.slack.app_token.as_deref() {
                None | Some("") => {
                    return invalid(
                        "slack.socket_mode is on but slack.app_token is not set: create an app-level token (xapp-…) with the connections:write scope",
                    );
                }
                Some(token) if !token.starts_with("xapp-") => {
                    return invalid(
                        "slack.app_token must be an app-level token (xapp-…), not a bot or user token",
                    );
                }
                Some(_) => {}
            }
            if self.slack.bot_token.is_none() {
                return invalid(
                    "slack.socket_mode is on but slack.bot_token is not set: drbot could hear commands but not answer them",
                );
            }
        }
        if let Some(key) = &self.discord.public_key
            && (key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return invalid(
                "discord.public_key must be the application's 64-character hex public key",
            );
        }
        if self.discord.public_key.is_some()
            && (self.discord.bot_token.is_none() || self.discord.application_id.is_none())
        {
            return invalid(
                "discord.public_key is set but discord.bot_token or discord.application_id is not: drbot could hear commands but not answer them",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_are_the_first_run_setup() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.database.url, "sqlite://drbot.db");
        assert_eq!(s.cluster.backend, "sandbox");
        assert_eq!(s.safety.two_person_severities, vec!["sev1"]);
        assert!(s.console.operators.is_none());
        assert_eq!(s.http.header_timeout_ms, 10_000);
        assert_eq!(s.http.max_connections, 1024);
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("drbot.toml");
        std::fs::write(
            &file,
            "[database]\nurl = \"sqlite://from-file.db\"\n[sandbox]\nspeed = 5.0\n",
        )
        .unwrap();
        let s = Settings::load_from(
            Some(&file),
            env(&[
                ("DRBOT__DATABASE__URL", "postgres://x/y"),
                ("DRBOT__SAFETY__TWO_PERSON_SEVERITIES", "sev1,sev2"),
            ]),
        )
        .unwrap();
        assert_eq!(s.database.url, "postgres://x/y");
        assert_eq!(s.sandbox.speed, 5.0);
        assert_eq!(s.safety.two_person_severities, vec!["sev1", "sev2"]);
    }

    /// The error text of settings that must be refused.
    fn refusal(file: Option<&Path>, pairs: &[(&str, &str)]) -> String {
        match Settings::load_from(file, env(pairs)) {
            Ok(_) => panic!("accepted: {pairs:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_settings_are_named() {
        for (pair, named) in [
            (("DRBOT__CLUSTER__BACKEND", "nomad"), "cluster.backend"),
            (("DRBOT__SAFETY__DEFAULT_ZONE", "Mars/Base"), "default_zone"),
            (("DRBOT__HTTP__IDLE_TIMEOUT_MS", "0"), "idle_timeout_ms"),
        ] {
            let e = refusal(None, &[pair]);
            assert!(e.contains(named), "{e}");
        }
        let e = refusal(Some(Path::new("/nonexistent/drbot.toml")), &[]);
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn socket_mode_needs_an_app_token_and_a_bot_token_but_no_signing_secret() {
        const ON: (&str, &str) = ("DRBOT__SLACK__SOCKET_MODE", "true");
        const BOT: (&str, &str) = ("DRBOT__SLACK__BOT_TOKEN", "xoxb-1");
        const APP: (&str, &str) = ("DRBOT__SLACK__APP_TOKEN", "xapp-1");
        for (pairs, named) in [
            (&[ON, BOT][..], "slack.app_token"),
            (
                &[
                    ON,
                    ("DRBOT__SLACK__APP_TOKEN", "xoxb-not-an-app-token"),
                    BOT,
                ][..],
                "slack.app_token",
            ),
            (&[ON, APP][..], "slack.bot_token"),
        ] {
            let e = refusal(None, pairs);
            assert!(e.contains(named), "{e}");
        }
        let s = Settings::load_from(None, env(&[ON, APP, BOT])).unwrap();
        assert!(s.slack.socket_mode);
        assert!(s.slack.signing_secret.is_none());
        // Off by default: an app token alone changes nothing.
        let s = Settings::load_from(None, env(&[("DRBOT__SLACK__APP_TOKEN", "whatever")])).unwrap();
        assert!(!s.slack.socket_mode);
    }
}
