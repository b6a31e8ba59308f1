//! The Kubernetes objects drbot creates or patches, built as JSON values and printed as YAML.
//!
//! Pure functions, no I/O: both backends (the sandbox and kubernetes) and `drbot plan` build
//! their manifests here, so what a preview shows is what a launch applies.
//! Shapes follow the upstream CRDs: Velero `velero.io/v1` Restore, StackGres `stackgres.io/v1`
//! SGCluster and SGBackup, Argo CD `argoproj.io/v1alpha1` AppProject, Flux
//! `kustomize.toolkit.fluxcd.io/v1` Kustomization and `helm.toolkit.fluxcd.io/v2` HelmRelease.

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use serde_json::{Map, Value, json};

use super::ClusterError;
use super::restore_scope::{RestoreScope, restore_labels};

pub use super::restore_scope::MANAGED_BY;
/// Why a Flux object is suspended, for the people reading it. No released flux CLI sets it
/// (fluxcd/flux2 v2.9.4 `cmd/flux/suspend.go` has no `--reason`; it exists only in unmerged
/// commits) and no controller reads it: it is drbot's note, kept under the name that
/// proposal uses.
pub const FLUX_SUSPEND_REASON: &str = "suspend.toolkit.fluxcd.io/reason";
/// SGCluster `metadata.name` limit in the StackGres CRD.
pub const MAX_CLUSTER_NAME: usize = 44;
/// Kept under the 63 characters of a label value: Velero labels what it restores with the
/// Restore's name.
pub const MAX_RESTORE_NAME: usize = 63;

/// `{app.kubernetes.io/managed-by: drbot}`.
pub fn labels() -> Value {
    let mut m = Map::new();
    m.insert(MANAGED_BY.into(), json!("drbot"));
    Value::Object(m)
}

/// A time as StackGres and Velero read it: UTC with `Z`, whole seconds unless the time has a
/// fraction (`2026-02-08T09:55:00Z`, `2026-02-08T09:55:00.250Z`).
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A time in summaries and messages: UTC, whole seconds (`2026-02-08T09:55:00Z`).
pub fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

// ---- Velero ----------------------------------------------------------------------------

/// A Velero Restore of `backup`, created in the Velero server's namespace, over `scope`
/// (see [`RestoreScope`]: never a namespace both included and excluded). Cluster-scoped
/// resources are always included: under any namespace filter Velero skips them otherwise
/// (`pkg/restore/restore.go:2275-2278`, v1.18.1). Existing objects are left as they are,
/// volumes are restored. Labelled with the incident and the backup, so that a Restore found
/// under this name later can be told apart from someone else's ([`restore_labels`]).
pub fn velero_restore(
    name: &str,
    velero_namespace: &str,
    backup: &str,
    scope: &RestoreScope,
) -> Value {
    let mut spec = Map::new();
    spec.insert("backupName".into(), json!(backup));
    if !scope.excluded.is_empty() {
        spec.insert("excludedNamespaces".into(), json!(scope.excluded));
    }
    spec.insert("existingResourcePolicy".into(), json!("none"));
    spec.insert("includeClusterResources".into(), json!(true));
    if !scope.included.is_empty() {
        spec.insert("includedNamespaces".into(), json!(scope.included));
    }
    spec.insert("itemOperationTimeout".into(), json!("4h"));
    spec.insert("restorePVs".into(), json!(true));
    json!({
        "apiVersion": "velero.io/v1",
        "kind": "Restore",
        "metadata": {
            "name": name,
            "namespace": velero_namespace,
            "labels": restore_labels(name, backup),
        },
        "spec": spec,
    })
}

/// What a Velero Restore does to volumes and existing objects, as summaries say it.
pub const VELERO_RESTORE_POLICY: &str = "persistent volumes restored; existing objects are left as they are (existingResourcePolicy none)";

/// Deterministic Restore name: `drbot-restore-{backup}`, or `drbot-restore-latest` when the
/// backup is chosen later; at most [`MAX_RESTORE_NAME`] characters.
pub fn infra_restore_name(backup: Option<&str>) -> String {
    let full = format!("drbot-restore-{}", backup.unwrap_or("latest"));
    let cut: String = full.chars().take(MAX_RESTORE_NAME).collect();
    cut.trim_end_matches(['-', '.']).to_string()
}

// ---- StackGres ---------------------------------------------------------------------------

/// A new SGCluster restored from an SGBackup of an existing cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseRestore {
    /// The new cluster's name (see [`check_cluster_name`]).
    pub name: String,
    /// Where the new cluster goes.
    pub namespace: String,
    /// Where the source cluster and its SGBackup are.
    pub source_namespace: String,
    pub source_cluster: String,
    /// SGBackup name (in `source_namespace`).
    pub backup: String,
    /// Must have the backup's major version.
    pub postgres_version: String,
    pub instances: u32,
    /// `20Gi`, `512Mi`…
    pub volume_size: String,
    /// Point-in-time target; `None` replays all archived WAL.
    pub target: Option<DateTime<Utc>>,
}

/// The documents of a database restore, in apply order: a copy of the SGBackup when the new
/// cluster goes into another namespace (StackGres restores only from a backup in the
/// cluster's own namespace), then the SGCluster. Each comes with a comment for the preview.
///
/// The new cluster gets no `spec.configurations.backups`, so it neither archives WAL nor takes
/// backups; [`sgcluster_restore_with_backups`] gives it the source's.
pub fn sgcluster_restore(r: &DatabaseRestore) -> Vec<(&'static str, Value)> {
    sgcluster_restore_with_backups(r, &[])
}

/// The backup configuration a cluster restored from `source` (an SGCluster) resumes backups
/// with: each `spec.configurations.backups[]` entry of the source (SGObjectStorage, schedule,
/// retention, compression, performance…) without its `path`.
///
/// The path is where WAL-G writes the cluster's WAL archive and base backups. Left out,
/// StackGres gives the new cluster a path of its own,
/// `sgbackups.stackgres.io/<namespace>/<cluster>/<created at>/<major>`; the source's path would
/// make the restored cluster, on its new timeline, archive into the source's WAL history and
/// run retention over the source's backups. The source's path is always set, as the operator
/// fills it in when it is not given. Entries without an `sgObjectStorage` are left out.
pub fn resumed_backups(source: &Value) -> Vec<Value> {
    source
        .pointer("/spec/configurations/backups")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(Value::as_object)
                .filter(|e| e.get("sgObjectStorage").is_some_and(Value::is_string))
                .map(|e| {
                    let mut entry = e.clone();
                    entry.remove("path");
                    Value::Object(entry)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// [`sgcluster_restore`] with `spec.configurations.backups` set to `backups` (none when
/// empty), as [`resumed_backups`] builds them. A `path` in an entry is dropped all the same:
/// a restored cluster never shares another cluster's WAL archive.
pub fn sgcluster_restore_with_backups(
    r: &DatabaseRestore,
    backups: &[Value],
) -> Vec<(&'static str, Value)> {
    let backups: Vec<Value> = backups
        .iter()
        .map(|b| {
            let mut b = b.clone();
            if let Some(entry) = b.as_object_mut() {
                entry.remove("path");
            }
            b
        })
        .collect();
    let mut from_backup = Map::new();
    from_backup.insert("name".into(), json!(r.backup));
    if let Some(t) = r.target {
        from_backup.insert(
            "pointInTimeRecovery".into(),
            json!({ "restoreToTimestamp": timestamp(t) }),
        );
    }
    let mut cluster = json!({
        "apiVersion": "stackgres.io/v1",
        "kind": "SGCluster",
        "metadata": {
            "name": r.name,
            "namespace": r.namespace,
            "labels": labels(),
        },
        "spec": {
            "instances": r.instances,
            "postgres": {"version": r.postgres_version},
            "pods": {"persistentVolume": {"size": r.volume_size}},
            "initialData": {
                "restore": {
                    "downloadDiskConcurrency": 2,
                    "fromBackup": from_backup,
                },
            },
        },
    });
    if !backups.is_empty() {
        cluster["spec"]["configurations"] = json!({ "backups": backups });
    }
    let mut docs = Vec::new();
    if r.namespace != r.source_namespace {
        docs.push((
            "copy of the source backup (spec.sgCluster points at the source cluster)",
            json!({
                "apiVersion": "stackgres.io/v1",
                "kind": "SGBackup",
                "metadata": {
                    "name": r.backup,
                    "namespace": r.namespace,
                    "labels": labels(),
                },
                "spec": {
                    "sgCluster": format!("{}.{}", r.source_namespace, r.source_cluster),
                    "managedLifecycle": false,
                },
            }),
        ));
    }
    docs.push(("", cluster));
    docs
}

/// SGCluster `metadata.name` rules from the CRD; a bad name would only fail at apply time.
pub fn check_cluster_name(name: &str) -> Result<(), ClusterError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_CLUSTER_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ClusterError::Invalid(format!(
            "{name} is not a valid SGCluster name (at most 44 characters, lowercase letters, digits and '-', starting with a letter)"
        )))
    }
}

/// A restore goes into a new cluster, never over its source.
pub fn check_not_in_place(
    name: &str,
    namespace: &str,
    source_cluster: &str,
    source_namespace: &str,
) -> Result<(), ClusterError> {
    if name == source_cluster && namespace == source_namespace {
        return Err(ClusterError::Invalid(format!(
            "{name} is the source cluster itself: a restore goes into a new cluster, never in place"
        )));
    }
    Ok(())
}

/// The target of a database restore: required for a point-in-time recovery, ignored otherwise.
pub fn restore_target(
    pitr: bool,
    target: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, ClusterError> {
    if !pitr {
        return Ok(None);
    }
    target
        .map(Some)
        .ok_or_else(|| ClusterError::Invalid("a point-in-time recovery needs a target time".into()))
}

/// A chosen base backup must have ended before the recovery target.
pub fn check_ended_before(
    backup: &str,
    ended: Option<DateTime<Utc>>,
    target: Option<DateTime<Utc>>,
) -> Result<(), ClusterError> {
    if let (Some(t), Some(ended)) = (target, ended)
        && ended >= t
    {
        return Err(ClusterError::Invalid(format!(
            "SGBackup {backup} ended at {}, not before the target {}: recovery cannot stop inside a base backup",
            fmt(ended),
            fmt(t)
        )));
    }
    Ok(())
}

/// The backup to restore from when none is named: the first of `backups` (newest first) that
/// is `completed` and, with a target, `ended` before it.
pub fn newest_backup_before<T>(
    backups: &[T],
    target: Option<DateTime<Utc>>,
    completed: impl Fn(&T) -> bool,
    ended: impl Fn(&T) -> Option<DateTime<Utc>>,
) -> Option<&T> {
    backups.iter().find(|b| {
        completed(b)
            && match target {
                Some(t) => ended(b).is_some_and(|e| e < t),
                None => true,
            }
    })
}

/// The summary line for a restore into another namespace than its source's, if it is one.
pub fn backup_copy_note(backup: &str, namespace: &str, source_namespace: &str) -> Option<String> {
    (namespace != source_namespace).then(|| {
        format!(
            "copies SGBackup {backup} into {namespace} first: StackGres restores only from a backup in the cluster's own namespace"
        )
    })
}

/// Deterministic name of a restored cluster: `{cluster}-restore-{YYYYMMDDHHMM}` for a
/// point-in-time target (seconds appended when not zero), `{cluster}-restore-latest`
/// otherwise. The cluster part is shortened to keep the whole within
/// [`MAX_CLUSTER_NAME`] characters.
pub fn restore_cluster_name(cluster: &str, target: Option<DateTime<Utc>>) -> String {
    let suffix = match target {
        Some(t) if t.second() != 0 => {
            format!("-restore-{}", t.format("%Y%m%d%H%M%S"))
        }
        Some(t) => format!("-restore-{}", t.format("%Y%m%d%H%M")),
        None => "-restore-latest".to_string(),
    };
    let keep = MAX_CLUSTER_NAME.saturating_sub(suffix.len());
    let stem: String = cluster.chars().take(keep).collect();
    format!("{}{suffix}", stem.trim_end_matches('-'))
}

/// StackGres' pattern for `spec.pods.persistentVolume.size`: `^[0-9]+(\.[0-9]+)?(Mi|Gi|Ti)$`.
pub fn check_volume_size(size: &str) -> Result<(), ClusterError> {
    let number = size
        .strip_suffix("Mi")
        .or_else(|| size.strip_suffix("Gi"))
        .or_else(|| size.strip_suffix("Ti"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = number.is_some_and(|n| match n.split_once('.') {
        Some((whole, frac)) => digits(whole) && digits(frac),
        None => digits(n),
    });
    if ok {
        Ok(())
    } else {
        Err(ClusterError::Invalid(format!(
            "{size} is not a volume size StackGres accepts: a number with Mi, Gi or Ti (20Gi, 512Mi, 1.5Ti)"
        )))
    }
}

// ---- GitOps freeze -------------------------------------------------------------------------

/// A project's sync windows in one line: `2 sync windows: deny '* * * * *' 1h, …`.
pub fn describe_windows(windows: &[Value]) -> String {
    if windows.is_empty() {
        return "no sync windows".into();
    }
    let each: Vec<String> = windows
        .iter()
        .map(|w| {
            let field = |k: &str| w.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
            format!(
                "{} '{}' {}",
                field("kind"),
                field("schedule"),
                field("duration")
            )
        })
        .collect();
    format!(
        "{} sync window{}: {}",
        windows.len(),
        if windows.len() == 1 { "" } else { "s" },
        each.join(", ")
    )
}

/// Argo CD rejects sync window descriptions over 255 bytes: `SyncWindow.Validate` checks Go's
/// `len(description)` (argoproj/argo-cd v3.5.1 `pkg/apis/application/v1alpha1/types.go:3456`).
pub const MAX_WINDOW_DESCRIPTION: usize = 255;

/// An always-active `deny` sync window for every application of a project, manual syncs
/// included. `duration` is a Go duration (`24h`); the description is cut to what Argo CD
/// accepts.
/// How long a freeze's deny window lasts: longer than any incident; unfreeze removes it anyway.
pub const FREEZE_DURATION: &str = "24h";

pub fn argocd_deny_window(duration: &str, description: &str) -> Value {
    let mut end = description.len().min(MAX_WINDOW_DESCRIPTION);
    while !description.is_char_boundary(end) {
        end -= 1;
    }
    let description = &description[..end];
    json!({
        "kind": "deny",
        "schedule": "* * * * *",
        "duration": duration,
        "applications": ["*"],
        "manualSync": false,
        "timeZone": "UTC",
        "description": description,
    })
}

/// Merge patch on an existing AppProject: the list replaces `spec.syncWindows` as a whole.
pub fn argocd_sync_windows(namespace: &str, project: &str, windows: &[Value]) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": project, "namespace": namespace},
        "spec": {"syncWindows": windows},
    })
}

/// The Flux objects a freeze suspends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FluxKind {
    Kustomization,
    HelmRelease,
}

impl FluxKind {
    pub fn api_version(self) -> &'static str {
        match self {
            FluxKind::Kustomization => "kustomize.toolkit.fluxcd.io/v1",
            FluxKind::HelmRelease => "helm.toolkit.fluxcd.io/v2",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            FluxKind::Kustomization => "Kustomization",
            FluxKind::HelmRelease => "HelmRelease",
        }
    }
}

/// Merge patch on an existing Flux object setting `spec.suspend`; with a reason, also the
/// [`FLUX_SUSPEND_REASON`] annotation.
pub fn flux_suspend(
    kind: FluxKind,
    namespace: &str,
    name: &str,
    suspend: bool,
    reason: Option<&str>,
) -> Value {
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    metadata.insert("namespace".into(), json!(namespace));
    if let Some(reason) = reason {
        let mut annotations = Map::new();
        annotations.insert(FLUX_SUSPEND_REASON.into(), json!(reason));
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    json!({
        "apiVersion": kind.api_version(),
        "kind": kind.kind(),
        "metadata": metadata,
        "spec": {"suspend": suspend},
    })
}

// ---- YAML ----------------------------------------------------------------------------------
//
// Block YAML that reads back as the same JSON under YAML 1.1 (Kubernetes) and 1.2 (serde_yaml)
// alike. Strings are plain only when they cannot read as anything else; all others are
// double-quoted with JSON-style escapes, which YAML shares.

/// Documents separated by `---`, each under its comment (`# …`, none when empty).
pub fn to_yaml(docs: &[(&str, Value)]) -> String {
    docs.iter()
        .map(|(comment, doc)| {
            let mut out = String::new();
            for line in comment.lines() {
                out.push_str("# ");
                out.push_str(line);
                out.push('\n');
            }
            emit(&mut out, doc, 0);
            out
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn emit(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => emit_map(out, m, indent),
        Value::Array(items) if !items.is_empty() => emit_seq(out, items, indent),
        _ => {
            pad(out, indent);
            out.push_str(&inline(v));
            out.push('\n');
        }
    }
}

fn emit_map(out: &mut String, m: &Map<String, Value>, indent: usize) {
    for (k, v) in m {
        pad(out, indent);
        out.push_str(&scalar(k));
        out.push(':');
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                emit_map(out, inner, indent + 2);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                emit_seq(out, items, indent);
            }
            _ => {
                out.push(' ');
                out.push_str(&inline(v));
                out.push('\n');
            }
        }
    }
}

fn emit_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        pad(out, indent);
        match item {
            Value::Object(m) if !m.is_empty() => {
                out.push_str("- ");
                let mut inner = String::new();
                emit_map(&mut inner, m, indent + 2);
                out.push_str(&inner[indent + 2..]);
            }
            Value::Array(nested) if !nested.is_empty() => {
                out.push_str("-\n");
                emit_seq(out, nested, indent + 2);
            }
            _ => {
                out.push_str("- ");
                out.push_str(&inline(item));
                out.push('\n');
            }
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn inline(v: &Value) -> String {
    match v {
        Value::String(s) => scalar(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        Value::Number(n) => number(&n.to_string()),
        other => other.to_string(),
    }
}

/// A float in a form both YAML versions read as one: `1e300` → `1.0e+300`.
fn number(text: &str) -> String {
    match text.split_once(['e', 'E']) {
        Some((mantissa, exp)) => {
            let mantissa = if mantissa.contains('.') {
                mantissa.to_string()
            } else {
                format!("{mantissa}.0")
            };
            let exp = if exp.starts_with(['-', '+']) {
                exp.to_string()
            } else {
                format!("+{exp}")
            };
            format!("{mantissa}e{exp}")
        }
        None => text.to_string(),
    }
}

/// A string as a plain scalar when nothing could read it otherwise (it starts with a letter,
/// has only letters, digits and `.-_/`, and is no YAML 1.1 boolean or null), else
/// double-quoted.
fn scalar(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain { s.to_string() } else { quoted(s) }
}

/// A double-quoted scalar: `"` and `\` escaped, and every character YAML does not allow
/// as-is (controls, DEL, C1 controls, line and paragraph separators, BOM) as an escape.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid test time")
            .with_timezone(&Utc)
    }

    fn restore(namespace: &str, target: Option<&str>) -> DatabaseRestore {
        DatabaseRestore {
            name: "orders-restore-202602080955".into(),
            namespace: namespace.into(),
            source_namespace: "db".into(),
            source_cluster: "orders".into(),
            backup: "orders-nightly".into(),
            postgres_version: "16".into(),
            instances: 1,
            volume_size: "20Gi".into(),
            target: target.map(t),
        }
    }

    #[test]
    fn pitr_restores_into_a_new_cluster_at_the_target() {
        let docs = sgcluster_restore(&restore("db", Some("2026-02-08T09:55:00Z")));
        assert_eq!(docs.len(), 1);
        let (comment, doc) = &docs[0];
        assert_eq!(*comment, "");
        assert_eq!(doc["kind"], "SGCluster");
        let from = &doc["spec"]["initialData"]["restore"]["fromBackup"];
        assert_eq!(from["name"], "orders-nightly");
        assert_eq!(
            from["pointInTimeRecovery"]["restoreToTimestamp"],
            "2026-02-08T09:55:00Z"
        );
        assert_eq!(doc["spec"]["postgres"]["version"], "16");
        assert_eq!(doc["metadata"]["labels"][MANAGED_BY], "drbot");

        let latest = sgcluster_restore(&restore("db", None));
        assert!(
            latest[0].1["spec"]["initialData"]["restore"]["fromBackup"]
                .get("pointInTimeRecovery")
                .is_none()
        );
    }

    #[test]
    fn another_namespace_gets_a_copy_of_the_backup_first() {
        let docs = sgcluster_restore(&restore("dr-drill", None));
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].1["kind"], "SGBackup");
        assert_eq!(docs[0].1["metadata"]["namespace"], "dr-drill");
        assert_eq!(docs[0].1["spec"]["sgCluster"], "db.orders");
        assert_eq!(docs[1].1["kind"], "SGCluster");
        assert_eq!(docs[1].1["metadata"]["namespace"], "dr-drill");
    }

    #[test]
    fn restored_clusters_resume_backups_under_a_path_of_their_own() {
        let source = json!({
            "kind": "SGCluster",
            "metadata": {"name": "orders", "namespace": "db"},
            "spec": {"configurations": {"backups": [
                {
                    "sgObjectStorage": "offsite",
                    "cronSchedule": "0 3 * * *",
                    "retention": 7,
                    "compression": "lz4",
                    "path": "sgbackups.stackgres.io/db/orders/2026-01-05-10-00-00/16",
                },
                {"cronSchedule": "no storage named"},
                "not an entry",
            ]}},
        });
        let backups = resumed_backups(&source);
        assert_eq!(
            backups,
            vec![json!({
                "sgObjectStorage": "offsite",
                "cronSchedule": "0 3 * * *",
                "retention": 7,
                "compression": "lz4",
            })]
        );
        assert!(resumed_backups(&json!({"spec": {}})).is_empty());

        let docs = sgcluster_restore_with_backups(&restore("db", None), &backups);
        assert_eq!(
            docs[0].1["spec"]["configurations"]["backups"],
            json!(backups)
        );
        // A path handed in directly is dropped too.
        let with_path = [json!({"sgObjectStorage": "offsite", "path": "orders/16"})];
        let docs = sgcluster_restore_with_backups(&restore("db", None), &with_path);
        assert_eq!(
            docs[0].1["spec"]["configurations"]["backups"],
            json!([{"sgObjectStorage": "offsite"}])
        );
        let plain = sgcluster_restore(&restore("db", None));
        assert!(plain[0].1["spec"].get("configurations").is_none());
    }

    #[test]
    fn timestamps_are_utc_with_z() {
        assert_eq!(
            timestamp(t("2026-02-08T10:55:00+01:00")),
            "2026-02-08T09:55:00Z"
        );
        assert_eq!(
            timestamp(t("2026-02-08T09:55:00.25Z")),
            "2026-02-08T09:55:00.250Z"
        );
    }

    #[test]
    fn names_are_deterministic_and_short_enough() {
        let at = Some(t("2026-02-08T09:55:00Z"));
        assert_eq!(
            restore_cluster_name("orders", at),
            "orders-restore-202602080955"
        );
        assert_eq!(
            restore_cluster_name("orders", Some(t("2026-02-08T09:55:30Z"))),
            "orders-restore-20260208095530"
        );
        assert_eq!(
            restore_cluster_name("orders", None),
            "orders-restore-latest"
        );
        let long = restore_cluster_name(&"a-".repeat(40), at);
        assert!(long.len() <= MAX_CLUSTER_NAME, "{long}");
        check_cluster_name(&long).expect("valid");
        assert!(check_cluster_name("Orders").is_err());
        assert!(check_cluster_name(&"a".repeat(45)).is_err());
        assert!(check_not_in_place("orders", "db", "orders", "db").is_err());
        assert!(check_not_in_place("orders", "dr-drill", "orders", "db").is_ok());

        assert_eq!(
            infra_restore_name(Some("nightly-20260208020000")),
            "drbot-restore-nightly-20260208020000"
        );
        assert_eq!(infra_restore_name(None), "drbot-restore-latest");
        assert!(infra_restore_name(Some(&"x".repeat(100))).len() <= MAX_RESTORE_NAME);
    }

    #[test]
    fn volume_sizes_follow_the_stackgres_pattern() {
        for ok in ["20Gi", "512Mi", "1.5Ti"] {
            check_volume_size(ok).expect(ok);
        }
        for bad in ["20G", "Gi", "1.Gi", "20 Gi", "-1Gi", ""] {
            assert!(check_volume_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn freeze_documents() {
        let w = argocd_deny_window("24h", &"x".repeat(300));
        assert_eq!(w["description"].as_str().map(str::len), Some(255));
        // Bytes, not characters, and never half a character: 127 × "é" (2 bytes) = 254.
        let w = argocd_deny_window("24h", &"é".repeat(200));
        assert_eq!(w["description"].as_str().map(str::len), Some(254));
        let p = argocd_sync_windows("argocd", "default", &[w]);
        assert_eq!(p["spec"]["syncWindows"][0]["kind"], "deny");
        let k = flux_suspend(FluxKind::Kustomization, "flux-system", "apps", true, None);
        assert_eq!(k["spec"]["suspend"], true);
        assert!(k["metadata"].get("annotations").is_none());
        let h = flux_suspend(
            FluxKind::HelmRelease,
            "flux-system",
            "web",
            true,
            Some("INC-1"),
        );
        assert_eq!(h["apiVersion"], "helm.toolkit.fluxcd.io/v2");
        assert_eq!(h["metadata"]["annotations"][FLUX_SUSPEND_REASON], "INC-1");
    }

    #[test]
    fn yaml_quotes_what_would_not_read_as_a_string() {
        let doc = json!({
            "a": "plain-name.v1",
            "b": "yes",
            "c": "16",
            "d": "* * * * *",
            "e": "it's \"quoted\"\nnext",
            "f": [],
            "g": {},
            "h": [{"x": 1, "list": [true, null]}, "z"],
            "y": "n",
        });
        let y = to_yaml(&[("comment", doc)]);
        assert_eq!(
            y,
            "# comment\n\
             a: plain-name.v1\n\
             b: \"yes\"\n\
             c: \"16\"\n\
             d: \"* * * * *\"\n\
             e: \"it's \\\"quoted\\\"\\nnext\"\n\
             f: []\n\
             g: {}\n\
             h:\n\
             - list:\n  \
             - true\n  \
             - null\n  \
             x: 1\n\
             - z\n\
             \"y\": \"n\"\n"
        );
    }

    const TRICKY: &[&str] = &[
        "",
        " ",
        "  leading and trailing  ",
        "a: b",
        "a:b",
        "key:",
        "# not a comment",
        "a #b",
        "-",
        "- item",
        "--- ",
        "---",
        "...",
        "?",
        "? x",
        ":",
        "!tag",
        "&anchor",
        "*alias",
        "|",
        ">",
        "%YAML",
        "@at",
        "`tick",
        "'single'",
        "\"double\"",
        "{a: 1}",
        "[1, 2]",
        ",",
        "true",
        "True",
        "FALSE",
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "N",
        "null",
        "Null",
        "~",
        "0",
        "-1",
        "+1",
        "007",
        "0x1F",
        "0o17",
        "1e3",
        "1.5",
        ".5",
        ".inf",
        "-.Inf",
        ".nan",
        "NaN",
        "inf",
        "1_000",
        "12:30:45",
        "2026-02-08",
        "2026-02-08T09:55:00Z",
        "<<",
        "=",
        "back\\slash",
        "tab\there",
        "line\nbreak",
        "cr\rlf",
        "trailing newline\n",
        "\u{0}nul",
        "bell\u{7}",
        "del\u{7f}",
        "nel\u{85}",
        "ls\u{2028}ps\u{2029}",
        "\u{feff}bom",
        "emoji 🚀 and é",
        "multi\n\nblank",
        "app.kubernetes.io/managed-by",
        "s3://bucket/path",
        "* * * * *",
    ];

    #[test]
    fn tricky_strings_read_back_as_themselves() {
        for s in TRICKY {
            let mut doc = json!({ "value": s, "list": [s], "nested": {"k": [{"v": s}]} });
            doc.as_object_mut()
                .expect("object")
                .insert(s.to_string(), json!(s));
            let text = to_yaml(&[("", doc.clone())]);
            let back: Value = serde_yaml::from_str(&text)
                .unwrap_or_else(|e| panic!("{s:?} gives invalid YAML ({e}):\n{text}"));
            assert_eq!(back, doc, "{s:?} did not round-trip:\n{text}");
        }
    }

    #[test]
    fn every_value_kind_reads_back() {
        let doc = json!({
            "int": -42,
            "big": u64::MAX,
            "float": 1.5,
            "tiny": 1e-300,
            "huge": 1e300,
            "bool": false,
            "null": null,
            "empty_map": {},
            "empty_list": [],
            "nested_lists": [[1, [2, []]], [], {}],
            "maps_in_lists": [{"a": {"b": [{"c": "d"}]}}, {}],
        });
        let text = to_yaml(&[
            ("first\nsecond line", doc.clone()),
            ("", json!("scalar doc")),
        ]);
        assert!(text.starts_with("# first\n# second line\n"), "{text}");
        let back: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).expect("document"))
            .collect();
        assert_eq!(back, vec![doc, json!("scalar doc")], "{text}");
    }
}
