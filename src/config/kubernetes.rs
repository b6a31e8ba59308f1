//! `[kubernetes]`: the cluster backend's API server, where each controller lives, and what a
//! freeze touches.

use serde::Deserialize;

use super::string_list;

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
    #[serde(deserialize_with = "string_list")]
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
