//! What a Velero Restore brings back (SOP §6.3), decided once for every backend and for
//! `drbot plan infra-restore`, so that no path can build a Restore Velero refuses.
//!
//! Upstream rules (vmware-tanzu/velero v1.18.1):
//! - `validateAndComplete` runs `ValidateIncludesExcludes` on the namespace lists
//!   (`pkg/controller/restore_controller.go:329-331`); an item in both lists fails the
//!   whole Restore: "excludes list cannot contain an item in the includes list"
//!   (`pkg/util/collections/includes_excludes.go:604-607`), phase `FailedValidation`,
//!   nothing restored (`restore_controller.go:241-242, 266-268`). `*` next to other
//!   includes, or in the excludes, fails the same way (`includes_excludes.go:596-602`).
//! - With `includeClusterResources` unset, a cluster-scoped item is skipped as soon as any
//!   namespace filter is set (`pkg/restore/restore.go:2275-2278`, `IncludeEverything` at
//!   `includes_excludes.go:264-268`; `site/content/docs/v1.18/resource-filtering.md:68-74`).
//!   drbot always sets it to `true`: the SOP restores CRDs with the namespaces.
//! - Some resources are never restored (`nonRestorableResources`,
//!   `restore_controller.go:67-94`).

use serde_json::{Value, json};

use super::ClusterError;

/// Label put on everything drbot creates.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Label naming the incident a Restore was made for (`drbot-inc7`).
pub const INCIDENT_LABEL: &str = "drbot/incident";
/// Label naming the Velero backup a Restore restores (cut to a label value).
pub const BACKUP_LABEL: &str = "drbot/backup";

/// Why the database namespaces are excluded, as previews say it.
pub const DATABASES: &str = "databases: restored by the database path, SOP §7";

/// Kinds of cluster-scoped resources a restore with `includeClusterResources: true` brings
/// back, as previews name them.
pub const CLUSTER_SCOPED: &str = "CustomResourceDefinitions, ClusterRoles and ClusterRoleBindings, StorageClasses, admission webhook configurations, PriorityClasses, PersistentVolumes";

/// What Velero never restores (`nonRestorableResources`, restore_controller.go:67-94).
pub const NEVER_RESTORED: &str =
    "nodes, events, Velero backups and restores, backup repositories, CSINodes, VolumeAttachments";

/// The namespaces of a Restore after the overlap is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreScope {
    /// `spec.includedNamespaces`; empty = all namespaces.
    pub included: Vec<String>,
    /// `spec.excludedNamespaces`; never shares an item with `included`.
    pub excluded: Vec<String>,
    /// Asked for, but excluded: taken out of `included`.
    pub left_out: Vec<String>,
    /// Why `excluded` is excluded (`None`: the caller asked for it).
    why: Option<String>,
}

/// A Kubernetes namespace name (RFC 1123 label). Velero treats other strings as glob
/// patterns, which drbot does not offer.
fn is_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 63
        && ns.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && ns.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn dedup(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in list {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

impl RestoreScope {
    /// The Restore's namespaces for `asked` (empty = all) minus `excluded`, excluded for
    /// `why`. Excluded namespaces leave the include list; when nothing is left the request is
    /// refused, naming what to do.
    pub fn resolve(
        asked: &[String],
        excluded: &[String],
        why: Option<&str>,
    ) -> Result<RestoreScope, ClusterError> {
        if let Some(bad) = asked.iter().chain(excluded).find(|n| !is_namespace(n)) {
            return Err(ClusterError::Invalid(format!(
                "`{bad}` is not a namespace name (at most 63 lowercase letters, digits and '-'): name each namespace to restore, or leave namespaces out to restore all of them"
            )));
        }
        let asked = dedup(asked);
        let excluded = dedup(excluded);
        let (left_out, included): (Vec<String>, Vec<String>) =
            asked.iter().cloned().partition(|n| excluded.contains(n));
        if !asked.is_empty() && included.is_empty() {
            let reason = why.map_or_else(String::new, |w| format!(" ({w})"));
            return Err(ClusterError::Invalid(format!(
                "nothing to restore: {} {} excluded from this Velero restore{reason}, and Velero refuses a Restore that both includes and excludes a namespace. Name other namespaces, or leave namespaces out to restore all but {}.",
                left_out.join(", "),
                if left_out.len() == 1 { "is" } else { "are" },
                excluded.join(", ")
            )));
        }
        Ok(RestoreScope {
            included,
            excluded,
            left_out,
            why: why.map(str::to_string),
        })
    }

    /// The preview's lines: the namespaces restored, those left out and why, the
    /// cluster-scoped resources, and what Velero never restores.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut scope = if self.included.is_empty() {
            "namespaces: all".to_string()
        } else {
            format!("namespaces: {}", self.included.join(", "))
        };
        if !self.excluded.is_empty() {
            scope.push_str(&format!(", except {}", self.excluded.join(", ")));
            if let Some(why) = &self.why {
                scope.push_str(&format!(" ({why})"));
            }
        }
        lines.push(scope);
        if !self.left_out.is_empty() {
            lines.push(format!(
                "{} left out of the namespaces asked for: excluded from this restore{} (Velero refuses a Restore that both includes and excludes a namespace)",
                self.left_out.join(", "),
                self.why
                    .as_deref()
                    .map_or_else(String::new, |w| format!(" ({w})"))
            ));
        }
        let scope_note = if self.included.is_empty() && self.excluded.is_empty() {
            ""
        } else {
            ", all of the backup's, not only those of the namespaces restored"
        };
        lines.push(format!(
            "cluster-scoped resources restored (includeClusterResources: true){scope_note}: {CLUSTER_SCOPED}"
        ));
        let mut not = Vec::new();
        if !self.excluded.is_empty() {
            // Their Namespace objects are cluster-scoped and selected like the others
            // (restore.go:2264-2278, 713-762): unverified, read but not run against Velero.
            not.push(format!(
                "the contents of namespaces {} (their Namespace objects are cluster-scoped and come back empty)",
                self.excluded.join(", ")
            ));
        }
        not.push(format!("never by Velero: {NEVER_RESTORED}"));
        lines.push(format!("not restored: {}", not.join("; ")));
        lines
    }
}

/// The incident part of an operation's object name: `drbot-inc7` for `drbot-inc7-op3-infra`;
/// other names (`drbot plan`'s `drbot-restore-<backup>`) stand for themselves.
pub fn incident_of(object: &str) -> &str {
    match object.find("-op") {
        Some(i) if object.starts_with("drbot-inc") => &object[..i],
        _ => object,
    }
}

/// `s` as a label value: at most 63 characters, starting and ending with a letter or digit.
/// Velero backup and Restore names are DNS subdomains (letters, digits, '-', '.'), which are
/// label characters; only the length and the ends need care.
pub fn label_value(s: &str) -> String {
    let cut: String = s.chars().take(63).collect();
    cut.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The labels of a Restore drbot makes: who made it, for which incident, from which backup.
pub fn restore_labels(name: &str, backup: &str) -> Value {
    json!({
        MANAGED_BY: "drbot",
        INCIDENT_LABEL: label_value(incident_of(name)),
        BACKUP_LABEL: label_value(backup),
    })
}

/// A Restore found under drbot's deterministic `name` is adopted (a crash between create and
/// record left it) only when its labels say drbot made it for this incident and from the
/// backup it restores, and that backup is `backup` when one was named. Otherwise the launch
/// is refused: adopting someone else's Restore would report their restore as ours.
pub fn check_adoptable(
    existing: &Value,
    velero_namespace: &str,
    name: &str,
    backup: Option<&str>,
) -> Result<(), ClusterError> {
    let label = |key: &str| {
        existing
            .pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    };
    let restores = existing
        .pointer("/spec/backupName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let incident = label_value(incident_of(name));
    let mut wrong = Vec::new();
    if label(MANAGED_BY) != Some("drbot") {
        wrong.push(format!(
            "{MANAGED_BY} is {}",
            label(MANAGED_BY).unwrap_or("not set")
        ));
    }
    if label(INCIDENT_LABEL) != Some(incident.as_str()) {
        wrong.push(format!(
            "{INCIDENT_LABEL} is {} (this operation: {incident})",
            label(INCIDENT_LABEL).unwrap_or("not set")
        ));
    }
    if label(BACKUP_LABEL) != Some(label_value(restores).as_str()) || restores.is_empty() {
        wrong.push(format!(
            "{BACKUP_LABEL} is {} for spec.backupName {}",
            label(BACKUP_LABEL).unwrap_or("not set"),
            if restores.is_empty() {
                "(none)"
            } else {
                restores
            }
        ));
    }
    if let Some(b) = backup
        && restores != b
    {
        wrong.push(format!("it restores backup {restores}, not {b}"));
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(ClusterError::Invalid(format!(
        "Restore {velero_namespace}/{name} already exists and was not made by drbot for this operation ({}): drbot will not adopt it. Find out who made it (velero restore describe {name}); once it is not needed, delete it (kubectl -n {velero_namespace} delete restore {name}) and run the command again.",
        wrong.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn excluded_namespaces_leave_the_include_list() {
        let s = RestoreScope::resolve(&v(&["shop", "db", "shop"]), &v(&["db"]), Some(DATABASES))
            .expect("scope");
        assert_eq!(s.included, v(&["shop"]));
        assert_eq!(s.excluded, v(&["db"]));
        assert_eq!(s.left_out, v(&["db"]));
        let lines = s.summary().join("\n");
        assert!(
            lines.contains("db left out of the namespaces asked for"),
            "{lines}"
        );
        assert!(lines.contains("includeClusterResources: true"), "{lines}");
        assert!(lines.contains("CustomResourceDefinitions"), "{lines}");
    }

    #[test]
    fn nothing_left_is_refused_and_patterns_are_not_namespaces() {
        let e = RestoreScope::resolve(&v(&["db"]), &v(&["db", "pg"]), Some(DATABASES))
            .expect_err("refused");
        assert!(
            e.to_string().contains("nothing to restore: db is excluded"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("leave namespaces out to restore all but db, pg"),
            "{e}"
        );
        for bad in ["*", "shop-*", "Shop", ""] {
            assert!(
                RestoreScope::resolve(&v(&[bad]), &[], None).is_err(),
                "{bad}"
            );
        }
        let all = RestoreScope::resolve(&[], &v(&["db"]), None).expect("scope");
        assert!(all.included.is_empty() && all.left_out.is_empty());
    }
}
