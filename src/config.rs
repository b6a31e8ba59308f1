//! Settings: built-in defaults, under an optional TOML file (`--config` or `DRBOT_CONFIG`),
//! under `DRBOT__<SECTION>__<KEY>` environment variables. Secrets are never logged: `Debug`
//! is not derived for anything that could hold one.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

mod kubernetes;
mod offsite;
mod paging;
mod web;
pub use kubernetes::{FREEZE_MODES, KubernetesSettings};
pub use offsite::OffsiteSettings;
pub use paging::{
    PAGE_ROLES, PagingProvider, PagingSettings, TrackerKind, TrackerSettings, target_name,
};
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
    pub paging: PagingSettings,
    pub tracker: TrackerSettings,
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

/// A TOML array, or one comma-separated string (how environment variables give lists).
fn string_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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
            .with_list_parse_key("paging.webhook_secrets")
            .with_list_parse_key("paging.auto.sev1")
            .with_list_parse_key("paging.auto.sev2")
            .with_list_parse_key("paging.auto.sev3")
            .with_list_parse_key("paging.auto.sev4")
            .with_list_parse_key("tracker.labels")
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
        self.paging.validate().map_err(ConfigError::Invalid)?;
        self.tracker.validate().map_err(ConfigError::Invalid)?;
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
