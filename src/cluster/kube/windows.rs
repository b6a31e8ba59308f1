//! drbot's Argo CD deny window, found by its identity rather than its description, and
//! written with a `resourceVersion` precondition.
//!
//! Why not the description: `SyncWindow.description` first appears in Argo CD v3.1.0
//! (argoproj/argo-cd commit 6047e91d15, "feat(AppProject): Add sync window description
//! (#20766)"; absent from `pkg/apis/application/v1alpha1/types.go` and
//! `manifests/crds/appproject-crd.yaml` at v2.14.21 and v3.0.23). Before that the AppProject
//! CRD's structural schema prunes it, so the window works but carries no description.
//!
//! The identity is what Argo CD's `SyncWindow.HashIdentity` hashes (v3.5.1
//! `pkg/apis/application/v1alpha1/types.go:3463-3485`): kind, schedule, duration,
//! applications, namespaces, clusters, timeZone and andOperator, not manualSync nor
//! description. `ValidateProject` (`app_project_types.go:266-288`) refuses two windows of
//! equal identity from v3.2.0 on (commit 42d4cfb857); from v2.x to v3.1 it refuses two
//! windows of equal kind + schedule + duration (v3.0.23 `app_project_types.go:258-271`).
//! Both checks run only in Argo CD's API server (`argocd proj`, the UI), which drbot does not
//! go through; a duplicate would make those edits of the project fail.
//!
//! Ownership: the freeze records the identity and whether it added the window. An identical
//! deny window already there is someone else's: no second one is added (it freezes the
//! project just as well), and the unfreeze never removes it. Removing drbot's window is one
//! merge patch carrying the `metadata.resourceVersion` that was read, so a project changed
//! meanwhile is a 409 Conflict (kube-apiserver `registry/generic/registry/store.go`, `Update`:
//! a set resourceVersion that differs from the stored one is `NewConflict`) and is read
//! again: windows others added in between are kept.

use super::freeze_target::{FreezeStep, Target, freeze_note};
use super::*;

/// Attempts of a conditional write before giving up on a project that keeps changing.
const ATTEMPTS: usize = 5;

/// The `SyncWindow` fields of `HashIdentity`, with Go's zero values for absent ones (the
/// JSON tags are `omitempty`: absent, empty and zero are the same window).
const TEXT: [&str; 4] = ["kind", "schedule", "duration", "timeZone"];
const LISTS: [&str; 3] = ["applications", "namespaces", "clusters"];

/// A window's identity as a JSON object of exactly the identity fields.
pub(super) fn identity(window: &Value) -> Value {
    let mut m = Map::new();
    for k in TEXT {
        let v = window.get(k).and_then(Value::as_str).unwrap_or("");
        m.insert(k.into(), json!(v));
    }
    for k in LISTS {
        let v = window.get(k).and_then(Value::as_array).cloned();
        m.insert(k.into(), Value::Array(v.unwrap_or_default()));
    }
    let and = window.get("andOperator").and_then(Value::as_bool);
    m.insert("andOperator".into(), json!(and.unwrap_or(false)));
    Value::Object(m)
}

/// What a freeze records for a project: the identity of the deny window in force and
/// whether this freeze added it (and so the unfreeze removes it).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Record {
    pub window: Value,
    pub added: bool,
}

impl Record {
    pub fn to_json(&self) -> Value {
        json!({"syncWindow": self.window, "added": self.added})
    }

    /// The recorded state; a record from before identities were kept
    /// (`{"spec": {"syncWindows": [...]}}`) meant "drbot added its standard window".
    pub fn parse(fragment: &Value) -> Record {
        match fragment.get("syncWindow") {
            Some(w) => Record {
                window: identity(w),
                added: fragment.get("added").and_then(Value::as_bool) != Some(false),
            },
            None => Record {
                window: identity(&manifests::argocd_deny_window(FREEZE_DURATION, "")),
                added: true,
            },
        }
    }

    /// `deny '* * * * *' 24h, applications *`.
    pub fn describe(&self) -> String {
        let w = &self.window;
        let text = |k: &str| w[k].as_str().unwrap_or("").to_string();
        let list = |k: &str| {
            w[k].as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                .unwrap_or_default()
                .join(",")
        };
        let mut out = format!(
            "{} '{}' {}",
            text("kind"),
            text("schedule"),
            text("duration")
        );
        for (k, label) in [
            ("applications", "applications"),
            ("namespaces", "namespaces"),
            ("clusters", "clusters"),
        ] {
            let l = list(k);
            if !l.is_empty() {
                out.push_str(&format!(", {label} {l}"));
            }
        }
        out
    }
}

fn windows_of(object: &Value) -> Vec<Value> {
    object
        .pointer("/spec/syncWindows")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn described_by(w: &Value, prefix: &str) -> bool {
    w.get("description")
        .and_then(Value::as_str)
        .is_some_and(|d| d.starts_with(prefix))
}

/// The merge patch base of a project write: identity plus the resourceVersion it was
/// computed from (the precondition).
fn conditional_base(t: &Target, object: &Value) -> Value {
    let mut doc = t.patch_base();
    if let Some(rv) = object.pointer("/metadata/resourceVersion") {
        doc["metadata"]["resourceVersion"] = rv.clone();
    }
    doc
}

/// Add this incident's deny window to an AppProject unless a window of the same identity is
/// there; the patch carries the freeze annotation and the resourceVersion read.
pub(super) fn freeze_project(
    t: &Target,
    object: &Value,
    op: &str,
    note: &str,
    legacy: bool,
) -> FreezeStep {
    let windows = windows_of(object);
    let mut ours = manifests::argocd_deny_window(FREEZE_DURATION, note);
    if legacy && let Some(m) = ours.as_object_mut() {
        // Before 3.1 the schema has no description: it would only be pruned.
        m.remove("description");
    }
    let id = identity(&ours);
    let prefix = format!("{WINDOW_PREFIX}{}", incident_tag(op));
    let now = describe_windows(&windows);
    let same: Vec<&Value> = windows.iter().filter(|w| identity(w) == id).collect();
    let mut doc = conditional_base(t, object);
    let (added, line) = if same.iter().any(|w| described_by(w, &prefix)) {
        (
            true,
            format!(
                "{}: a deny window of this incident is already there; no second one is added (now: {now})",
                t.describe()
            ),
        )
    } else if !same.is_empty() {
        let manual = if same
            .iter()
            .any(|w| w.get("manualSync").and_then(Value::as_bool) == Some(true))
        {
            "; it lets manual syncs through (manualSync: true)"
        } else {
            ""
        };
        (
            false,
            format!(
                "{}: an identical deny window ({}) is already there and is not this freeze's: it freezes the project{manual}, no duplicate is added (Argo CD refuses two windows of the same identity), and the unfreeze leaves it in place (now: {now})",
                t.describe(),
                Record {
                    window: id.clone(),
                    added: false
                }
                .describe()
            ),
        )
    } else {
        let clash = windows.iter().any(|w| {
            ["kind", "schedule", "duration"]
                .iter()
                .all(|k| w.get(*k) == ours.get(*k))
        });
        let mut after = windows.clone();
        after.push(ours.clone());
        doc["spec"] = json!({"syncWindows": after});
        let mut line = format!(
            "{}: add deny sync window '* * * * *' for {FREEZE_DURATION}, all applications, manual syncs too; other windows kept (now: {now})",
            t.describe()
        );
        if clash {
            line.push_str("; note: a window of the same kind, schedule and duration is there, which Argo CD before 3.2 refuses in `argocd proj` edits of this project until the unfreeze");
        }
        (true, line)
    };
    FreezeStep::Change {
        doc,
        prior: Record { window: id, added }.to_json(),
        line,
    }
}

/// The conditional patch that takes this incident's freeze off a project: its deny window
/// (if the freeze added it) and its annotation; `None` when there is nothing left to do.
pub(super) fn unfreeze_project(
    t: &Target,
    object: &Value,
    record: &Record,
    tag: &str,
) -> Option<Value> {
    let windows = windows_of(object);
    let prefix = format!("{WINDOW_PREFIX}{tag}");
    let marked = freeze_mark(object).is_some_and(|(holder, _)| incident_tag(&holder) == tag);
    let same = |w: &Value| identity(w) == record.window;
    // A window carrying this incident's description is drbot's for sure (3.1 and later);
    // before 3.1, while this freeze's annotation is there, the identical window is the one
    // it added (the annotation and the window go in one write).
    let remove = if record.added {
        windows
            .iter()
            .position(|w| same(w) && described_by(w, &prefix))
            .or_else(|| marked.then(|| windows.iter().position(same)).flatten())
    } else {
        None
    };
    if remove.is_none() && !marked {
        return None;
    }
    let mut doc = conditional_base(t, object);
    if marked {
        set_annotation(&mut doc, FREEZE_ANNOTATION, Value::Null);
    }
    if let Some(i) = remove {
        let mut after = windows;
        after.remove(i);
        // No list where only drbot's window was (an emptied list reads as "absent" anyway).
        doc["spec"] = json!({"syncWindows": if after.is_empty() { Value::Null } else { Value::Array(after) }});
    }
    Some(doc)
}

/// The line an unfreeze plan shows for a project.
pub(super) fn unfreeze_line(t: &Target, object: &Value, record: &Record, doc: &Value) -> String {
    let now = describe_windows(&windows_of(object));
    if doc.pointer("/spec/syncWindows").is_some() {
        format!(
            "{}: remove this freeze's deny window ({}); every other window stays (now: {now})",
            t.describe(),
            record.describe()
        )
    } else if record.added {
        format!(
            "{}: this freeze's deny window is no longer there; the freeze annotation goes (now: {now})",
            t.describe()
        )
    } else {
        format!(
            "{}: the identical deny window ({}) was there before the freeze and is not drbot's: left in place, so syncs stay blocked until its owner removes it; the freeze annotation goes (now: {now})",
            t.describe(),
            record.describe()
        )
    }
}

/// What a project freeze has in force, or why not.
pub(super) fn project_effect(
    t: &Target,
    object: &Value,
    recorded: &Value,
) -> Result<String, String> {
    let record = Record::parse(recorded);
    let held = windows_of(object).iter().any(|w| {
        identity(w) == record.window && w.get("kind").and_then(Value::as_str) == Some("deny")
    });
    match (held, record.added) {
        (true, true) => Ok(format!(
            "{}: deny window active ({})",
            t.describe(),
            record.describe()
        )),
        (true, false) => Ok(format!(
            "{}: deny window active ({}; there before the freeze, not drbot's, so the unfreeze leaves it)",
            t.describe(),
            record.describe()
        )),
        (false, _) => Err(format!(
            "{} lost the deny window {} (reverted by something that manages the project?)",
            t.describe(),
            record.describe()
        )),
    }
}

/// How a project write is computed again after a 409 Conflict.
#[derive(Debug, Clone)]
pub(super) enum Replan {
    Freeze {
        target: Target,
        op: String,
        note: String,
        legacy: bool,
    },
    Unfreeze {
        target: Target,
        record: Record,
        tag: String,
    },
}

impl Kube {
    /// A merge patch that may meet a 409 Conflict: `Ok(false)` then.
    async fn patch_or_conflict(&self, kind: Kind, doc: &Value) -> Result<bool, ClusterError> {
        self.merge_patch_or(kind, doc, |_| true).await
    }

    /// Write `doc` (computed from the object as it was read); on a conflict read the project
    /// again and compute the write afresh, a bounded number of times.
    pub(super) async fn write_conditional(
        &self,
        kind: Kind,
        doc: &Value,
        replan: &Replan,
    ) -> Result<(), ClusterError> {
        if self.patch_or_conflict(kind, doc).await? {
            return Ok(());
        }
        for _ in 1..ATTEMPTS {
            tracing::info!(
                project = %replan.target().describe(),
                "the project changed since it was read: reading it again"
            );
            let Some(doc) = self.replanned(replan).await? else {
                return Ok(());
            };
            if self.patch_or_conflict(kind, &doc).await? {
                return Ok(());
            }
        }
        Err(ClusterError::Unavailable(format!(
            "{} changed under every one of {ATTEMPTS} attempts to write it; try again",
            replan.target().describe()
        )))
    }

    /// Take back a freeze's project write; whether that worked.
    pub(super) async fn undo_conditional(&self, kind: Kind, replan: &Replan) -> bool {
        match self.replanned(replan).await {
            Ok(Some(doc)) => self.write_conditional(kind, &doc, replan).await.is_ok(),
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// The write a replan makes against the project as it is now (`None`: nothing to do).
    pub(super) async fn replanned(&self, replan: &Replan) -> Result<Option<Value>, ClusterError> {
        let t = replan.target();
        let Some(object) = self.get(t.kind, &t.namespace, &t.name).await? else {
            return Err(ClusterError::Invalid(format!(
                "{} no longer exists",
                t.describe()
            )));
        };
        Ok(match replan {
            Replan::Freeze {
                target,
                op,
                note,
                legacy,
            } => match freeze_mark(&object) {
                Some((holder, _)) if holder == *op => None,
                Some((holder, _)) => {
                    return Err(ClusterError::Invalid(format!(
                        "{} was frozen by {holder} meanwhile; left to that freeze",
                        target.describe()
                    )));
                }
                None => match freeze_project(target, &object, op, note, *legacy) {
                    FreezeStep::Change { mut doc, prior, .. } => {
                        mark(&mut doc, op, prior);
                        Some(doc)
                    }
                    FreezeStep::Skip(_) => None,
                },
            },
            Replan::Unfreeze {
                target,
                record,
                tag,
            } => unfreeze_project(target, &object, record, tag),
        })
    }
}

impl Replan {
    /// How to compute a launch step again: project writes of a freeze or unfreeze only.
    pub(super) fn of_step(spec: &OperationSpec, step: &Step, legacy: bool) -> Option<Replan> {
        let target = Replan::step_target(step)?;
        match spec.kind {
            OperationKind::Freeze => Some(Replan::Freeze {
                target,
                op: spec.object_name.clone(),
                note: freeze_note(spec),
                legacy,
            }),
            OperationKind::Unfreeze => {
                let fragment = spec.prior.as_ref()?.get(target.key())?;
                Some(Replan::Unfreeze {
                    record: Record::parse(fragment),
                    target,
                    tag: incident_tag(&spec.object_name).to_string(),
                })
            }
            _ => None,
        }
    }

    /// How to take back a freeze's project write (a later step was refused).
    pub(super) fn undo_of(spec: &OperationSpec, step: &Step) -> Option<Replan> {
        let target = Replan::step_target(step)?;
        let (_, prior) = freeze_mark(&step.doc)?;
        Some(Replan::Unfreeze {
            record: Record::parse(&prior),
            target,
            tag: incident_tag(&spec.object_name).to_string(),
        })
    }

    fn step_target(step: &Step) -> Option<Target> {
        (step.kind == Kind::AppProject && !step.create).then(|| {
            Target::new(
                Kind::AppProject,
                text(&step.doc, "/metadata/namespace").unwrap_or(""),
                name_of(&step.doc),
            )
        })
    }

    fn target(&self) -> &Target {
        match self {
            Replan::Freeze { target, .. } | Replan::Unfreeze { target, .. } => target,
        }
    }
}

/// Put the freeze annotation (`{"operation", "prior"}`) into a freeze patch.
pub(super) fn mark(doc: &mut Value, op: &str, prior: Value) {
    let mark = json!({"operation": op, "prior": prior}).to_string();
    set_annotation(doc, FREEZE_ANNOTATION, Value::String(mark));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(windows: Value, rv: &str) -> Value {
        json!({"metadata": {"name": "default", "namespace": "argocd", "resourceVersion": rv},
               "spec": {"syncWindows": windows}})
    }

    #[test]
    fn the_window_is_found_by_identity_not_description() {
        let t = Target::new(Kind::AppProject, "argocd", "default");
        let theirs = json!({"kind": "allow", "schedule": "0 22 * * *", "duration": "1h", "applications": ["*"]});
        let p = project(json!([theirs]), "7");
        let FreezeStep::Change { doc, prior, .. } = freeze_project(
            &t,
            &p,
            "drbot-inc1-op1-freeze",
            "drbot freeze drbot-inc1-op1-freeze: x",
            false,
        ) else {
            panic!("a change");
        };
        assert_eq!(doc["metadata"]["resourceVersion"], "7");
        assert_eq!(doc["spec"]["syncWindows"].as_array().map(Vec::len), Some(2));
        let record = Record::parse(&prior);
        assert!(record.added);
        assert_eq!(record.window["timeZone"], "UTC");
        // The stored window without its description (pruned before 3.1) is still found.
        let mut stored = doc["spec"]["syncWindows"].clone();
        stored[1].as_object_mut().unwrap().remove("description");
        let mut frozen = project(stored, "8");
        mark(&mut frozen, "drbot-inc1-op1-freeze", prior.clone());
        assert!(project_effect(&t, &frozen, &prior).is_ok());
        let undo = unfreeze_project(&t, &frozen, &record, "drbot-inc1").expect("a write");
        assert_eq!(undo["spec"]["syncWindows"], json!([theirs]));
        assert_eq!(undo["metadata"]["resourceVersion"], "8");
        assert!(undo["metadata"]["annotations"][FREEZE_ANNOTATION].is_null());
    }

    #[test]
    fn a_record_from_before_identities_means_drbots_standard_window() {
        // Freezes recorded `{"spec": {"syncWindows": <list without drbot's window>}}`.
        let old = json!({"spec": {"syncWindows": [{"kind": "allow"}]}});
        let record = Record::parse(&old);
        assert!(record.added);
        assert_eq!(
            record.window,
            identity(&manifests::argocd_deny_window(FREEZE_DURATION, "x"))
        );
        assert_eq!(record.describe(), "deny '* * * * *' 24h, applications *");
    }

    #[test]
    fn an_identical_window_of_someone_else_is_kept() {
        let t = Target::new(Kind::AppProject, "argocd", "default");
        let theirs = json!({"kind": "deny", "schedule": "* * * * *", "duration": "24h",
                            "applications": ["*"], "timeZone": "UTC", "manualSync": true});
        let p = project(json!([theirs]), "3");
        let FreezeStep::Change { doc, prior, line } =
            freeze_project(&t, &p, "drbot-inc1-op1-freeze", "n", false)
        else {
            panic!("a change");
        };
        assert!(doc.get("spec").is_none(), "no duplicate: {doc}");
        assert!(line.contains("not this freeze's"), "{line}");
        let record = Record::parse(&prior);
        assert!(!record.added);
        let mut frozen = project(json!([theirs]), "4");
        mark(&mut frozen, "drbot-inc1-op1-freeze", prior);
        let undo = unfreeze_project(&t, &frozen, &record, "drbot-inc1").expect("annotation");
        assert!(undo.get("spec").is_none(), "their window stays: {undo}");
    }
}
