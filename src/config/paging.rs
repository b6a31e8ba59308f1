//! `[paging]` (who drbot wakes, through PagerDuty's Events API v2 or Opsgenie / Jira Service
//! Management's alert API) and `[tracker]` (where follow-ups are filed: GitHub Issues or Jira
//! Cloud). Routing keys and tokens are secrets: never logged, never shown.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The roles `/dr page` knows without a route of their own being named in chat.
pub const PAGE_ROLES: &[&str] = &["ic", "dr-lead", "comms", "db-lead"];

/// Paging. Off while `provider` is unset.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagingSettings {
    /// `pagerduty` (Events API v2) or `opsgenie` (Opsgenie, or Jira Service Management Ops
    /// with `events_url` set to its alert API); unset = no paging.
    pub provider: Option<String>,
    /// Where events go; unset = the provider's (`PagerDuty: events.pagerduty.com/v2/enqueue`,
    /// Opsgenie: `api.opsgenie.com/v2/alerts`).
    pub events_url: Option<String>,
    /// Target (a role or a named route such as `dba-oncall`) → routing key (PagerDuty's
    /// 32-character integration key, or the Opsgenie integration's API key). Secrets:
    /// `DRBOT__PAGING__ROUTES__DR_LEAD` (an underscore in a name stands for a dash).
    pub routes: BTreeMap<String, String>,
    /// Severity → the targets a declaration (or a raise to it) pages: `sev1 = ["dr-lead", "ic"]`.
    pub auto: BTreeMap<String, Vec<String>>,
    /// Target → who to call when a page cannot be delivered: `dr-lead = "Dana, +1 555 0100"`.
    /// Without one, the DR plan's contact for the role is named.
    pub fallback: BTreeMap<String, String>,
    /// PagerDuty REST API base, for `/dr oncall`.
    pub api_url: String,
    /// A read-only PagerDuty REST key for `/dr oncall` (secret: `DRBOT__PAGING__API_KEY`).
    pub api_key: Option<String>,
    /// Target → PagerDuty escalation policy id (`P…`) whose on-call `/dr oncall` shows.
    pub oncall: BTreeMap<String, String>,
    /// PagerDuty V3 webhook signing secrets (`DRBOT__PAGING__WEBHOOK_SECRETS`, comma-separated;
    /// two during a rotation). Unset = `/pagerduty/webhook` answers 404.
    #[serde(deserialize_with = "super::string_list")]
    pub webhook_secrets: Vec<String>,
    /// A webhook whose `occurred_at` is older than this is refused as a replay.
    pub webhook_max_age_minutes: i64,
    /// A page not delivered within this is given up and the channel told whom to call.
    pub give_up_minutes: i64,
}

impl Default for PagingSettings {
    fn default() -> Self {
        PagingSettings {
            provider: None,
            events_url: None,
            routes: BTreeMap::new(),
            auto: BTreeMap::new(),
            fallback: BTreeMap::new(),
            api_url: "https://api.pagerduty.com".into(),
            api_key: None,
            oncall: BTreeMap::new(),
            webhook_secrets: Vec::new(),
            webhook_max_age_minutes: 30,
            give_up_minutes: 5,
        }
    }
}

/// Which alert API `[paging] provider` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingProvider {
    PagerDuty,
    Opsgenie,
}

impl PagingProvider {
    pub fn default_events_url(self) -> &'static str {
        match self {
            PagingProvider::PagerDuty => "https://events.pagerduty.com/v2/enqueue",
            PagingProvider::Opsgenie => "https://api.opsgenie.com/v2/alerts",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            PagingProvider::PagerDuty => "PagerDuty",
            PagingProvider::Opsgenie => "Opsgenie",
        }
    }
}

/// `dr_lead` (as an environment variable must spell it) is `dr-lead`.
pub fn target_name(raw: &str) -> String {
    raw.trim().to_ascii_lowercase().replace('_', "-")
}

impl PagingSettings {
    pub fn provider(&self) -> Option<PagingProvider> {
        match self.provider.as_deref().map(str::trim) {
            Some("pagerduty") => Some(PagingProvider::PagerDuty),
            Some("opsgenie") => Some(PagingProvider::Opsgenie),
            _ => None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.provider().is_some()
    }

    pub fn events_url(&self) -> String {
        match (&self.events_url, self.provider()) {
            (Some(url), _) => url.clone(),
            (None, Some(p)) => p.default_events_url().to_string(),
            (None, None) => String::new(),
        }
    }

    /// The routing key of a target (names normalised as [`target_name`]).
    pub fn routing_key(&self, target: &str) -> Option<&str> {
        let target = target_name(target);
        self.routes
            .iter()
            .find(|(name, _)| target_name(name) == target)
            .map(|(_, key)| key.as_str())
    }

    /// Every target a page may name, normalised and sorted.
    pub fn targets(&self) -> Vec<String> {
        let mut names: Vec<String> = self.routes.keys().map(|k| target_name(k)).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Severity (lower case) → targets, normalised.
    pub fn auto_targets(&self) -> BTreeMap<String, Vec<String>> {
        self.auto
            .iter()
            .map(|(sev, targets)| {
                (
                    sev.to_ascii_lowercase(),
                    targets.iter().map(|t| target_name(t)).collect(),
                )
            })
            .collect()
    }

    pub fn fallbacks(&self) -> BTreeMap<String, String> {
        self.fallback
            .iter()
            .map(|(t, who)| (target_name(t), who.clone()))
            .collect()
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        match self.provider.as_deref().map(str::trim) {
            None => {
                if !self.routes.is_empty() || !self.auto.is_empty() {
                    return Err("paging.routes or paging.auto is set but paging.provider is not: set it to `pagerduty` or `opsgenie`".into());
                }
                return Ok(());
            }
            Some("pagerduty" | "opsgenie") => {}
            Some(other) => {
                return Err(format!(
                    "paging.provider {other:?} is not known: use `pagerduty` (Events API v2) or `opsgenie` (Opsgenie or Jira Service Management Ops)"
                ));
            }
        }
        if self.routes.is_empty() {
            return Err("paging.provider is set but no route is: add a routing key per target under [paging.routes] (e.g. `dr-lead = \"…\"`, or DRBOT__PAGING__ROUTES__DR_LEAD)".into());
        }
        for (name, key) in &self.routes {
            let target = target_name(name);
            if target.is_empty()
                || !target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(format!(
                    "paging.routes: {name:?} is not a target name (letters, digits and dashes)"
                ));
            }
            if key.trim().is_empty() {
                return Err(format!(
                    "paging.routes.{target} is empty: give its routing key"
                ));
            }
            if self.provider() == Some(PagingProvider::PagerDuty) && key.trim().len() != 32 {
                return Err(format!(
                    "paging.routes.{target} is not a PagerDuty integration key (those are 32 characters): copy it from the service's Events API v2 integration"
                ));
            }
        }
        let targets = self.targets();
        for (sev, names) in &self.auto {
            if !crate::command::grammar::SEVERITIES.contains(&sev.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "paging.auto: {sev:?} is not a severity (sev1…sev4)"
                ));
            }
            for name in names {
                if !targets.contains(&target_name(name)) {
                    return Err(format!(
                        "paging.auto.{sev} pages {name:?}, which has no route in [paging.routes]"
                    ));
                }
            }
        }
        for name in self.fallback.keys().chain(self.oncall.keys()) {
            if !targets.contains(&target_name(name)) {
                return Err(format!(
                    "paging: {name:?} (in fallback or oncall) has no route in [paging.routes]"
                ));
            }
        }
        for (name, url) in [
            ("paging.events_url", self.events_url.as_deref()),
            ("paging.api_url", Some(self.api_url.as_str())),
        ] {
            if let Some(url) = url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return Err(format!("{name} must be an http(s) URL"));
            }
        }
        if !(1..=60).contains(&self.give_up_minutes) {
            return Err("paging.give_up_minutes must be between 1 and 60".into());
        }
        if self.webhook_max_age_minutes <= 0 {
            return Err("paging.webhook_max_age_minutes must be positive".into());
        }
        Ok(())
    }
}

/// Where follow-ups are filed. Off while `kind` is unset.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerSettings {
    /// `github` or `jira`; unset = no tracker (SOP item 9.8.4 is then ticked by hand).
    pub kind: Option<String>,
    /// GitHub: `owner/name`.
    pub repo: Option<String>,
    /// GitHub: a token with Issues write access (secret: `DRBOT__TRACKER__TOKEN`).
    pub token: Option<String>,
    /// Labels every follow-up carries (besides drbot's own `drbot:INC-n`).
    #[serde(deserialize_with = "super::string_list")]
    pub labels: Vec<String>,
    /// GitHub API base.
    pub api_url: String,
    /// Jira: the site, `https://example.atlassian.net`.
    pub site: Option<String>,
    /// Jira: the project key, `OPS`.
    pub project: Option<String>,
    /// Jira: the issue type follow-ups are filed as.
    pub issue_type: String,
    /// Jira: the account the API token belongs to.
    pub email: Option<String>,
    /// Jira: the API token (secret: `DRBOT__TRACKER__API_TOKEN`).
    pub api_token: Option<String>,
    /// How often open follow-ups' states are read back.
    pub refresh_minutes: i64,
    /// How long a new ticket may stay out of the tracker's search (Jira's index lags): a
    /// create whose answer was lost is re-sent only after this.
    pub search_lag_seconds: i64,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        TrackerSettings {
            kind: None,
            repo: None,
            token: None,
            labels: vec!["incident-follow-up".into()],
            api_url: "https://api.github.com".into(),
            site: None,
            project: None,
            issue_type: "Task".into(),
            email: None,
            api_token: None,
            refresh_minutes: 15,
            search_lag_seconds: 60,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackerKind {
    GitHub,
    Jira,
}

impl TrackerKind {
    pub fn name(self) -> &'static str {
        match self {
            TrackerKind::GitHub => "GitHub",
            TrackerKind::Jira => "Jira",
        }
    }
}

impl TrackerSettings {
    pub fn kind(&self) -> Option<TrackerKind> {
        match self.kind.as_deref().map(str::trim) {
            Some("github") => Some(TrackerKind::GitHub),
            Some("jira") => Some(TrackerKind::Jira),
            _ => None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.kind().is_some()
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        match self.kind.as_deref().map(str::trim) {
            None => return Ok(()),
            Some("github") => {
                let Some(repo) = self.repo.as_deref().filter(|r| !r.trim().is_empty()) else {
                    return Err(
                        "tracker.kind is github but tracker.repo is not set: give it as owner/name"
                            .into(),
                    );
                };
                let mut parts = repo.split('/');
                if !(parts.next().is_some_and(|o| !o.is_empty())
                    && parts.next().is_some_and(|n| !n.is_empty())
                    && parts.next().is_none())
                {
                    return Err(format!("tracker.repo {repo:?} must be owner/name"));
                }
                if !given(&self.token) {
                    return Err("tracker.kind is github but tracker.token is not set (DRBOT__TRACKER__TOKEN: a token with Issues write access)".into());
                }
                if !(self.api_url.starts_with("https://") || self.api_url.starts_with("http://")) {
                    return Err("tracker.api_url must be an http(s) URL".into());
                }
            }
            Some("jira") => {
                match self.site.as_deref() {
                    Some(site) if site.starts_with("https://") || site.starts_with("http://") => {}
                    _ => return Err("tracker.kind is jira but tracker.site is not an http(s) URL: give it as https://<site>.atlassian.net".into()),
                }
                if !given(&self.project) {
                    return Err("tracker.kind is jira but tracker.project is not set: give the project key (e.g. OPS)".into());
                }
                if !given(&self.email) || !given(&self.api_token) {
                    return Err("tracker.kind is jira: set tracker.email and tracker.api_token (DRBOT__TRACKER__API_TOKEN) together".into());
                }
            }
            Some(other) => {
                return Err(format!(
                    "tracker.kind {other:?} is not known: use `github` or `jira`"
                ));
            }
        }
        if self.refresh_minutes < 1 {
            return Err("tracker.refresh_minutes must be at least 1".into());
        }
        if !(0..=3600).contains(&self.search_lag_seconds) {
            return Err("tracker.search_lag_seconds must be between 0 and 3600".into());
        }
        Ok(())
    }
}
