//! Settings: built-in defaults, under an optional TOML file (`--config` or `DRBOT_CONFIG`),
//! under `DRBOT__<SECTION>__<KEY>` environment variables. Secrets are never logged: `Debug`
//! is not derived for anything that could hold one.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

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
    pub safety: SafetySettings,
    pub console: ConsoleSettings,
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
            .source(env);
        let settings: Settings = builder.add_source(env_source).build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if !matches!(self.cluster.backend.as_str(), "sandbox") {
            return invalid(
                "cluster.backend must be `sandbox` (the `kubernetes` backend is not available in this build)",
            );
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

    #[test]
    fn bad_settings_are_named() {
        let e = Settings::load_from(None, env(&[("DRBOT__CLUSTER__BACKEND", "nomad")]))
            .err()
            .unwrap();
        assert!(e.to_string().contains("cluster.backend"), "{e}");
        let e = Settings::load_from(None, env(&[("DRBOT__SAFETY__DEFAULT_ZONE", "Mars/Base")]))
            .err()
            .unwrap();
        assert!(e.to_string().contains("default_zone"), "{e}");
        let e = Settings::load_from(Some(Path::new("/nonexistent/drbot.toml")), env(&[]))
            .err()
            .unwrap();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
