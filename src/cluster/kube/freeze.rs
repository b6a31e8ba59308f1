//! Freeze and unfreeze (SOP §5.1): Argo CD sync windows or auto-sync, Flux suspend; the prior
//! state of every object is kept on the object and in the event, and put back exactly.

use super::freeze_target::{FreezeStep, Target, freeze_note};
use super::windows::{self, Record};
use super::*;

/// Whether an Application syncs automatically now.
pub(super) fn auto_sync_on(app: &Value) -> bool {
    match app.pointer("/spec/syncPolicy/automated") {
        Some(Value::Object(a)) => a.get("enabled").and_then(Value::as_bool) != Some(false),
        _ => false,
    }
}

impl Kube {
    /// The configured freeze targets. With `argocd-auto-sync` and no Applications named: every
    /// Application of `argocd_namespace` that syncs automatically or carries a freeze.
    pub(super) async fn targets(&self) -> Result<Vec<Target>, ClusterError> {
        let s = &self.settings;
        let mut out = Vec::new();
        if self.mode("argocd-window") {
            for p in &s.argocd_projects {
                out.push(Target::new(Kind::AppProject, &s.argocd_namespace, p));
            }
        }
        if self.mode("argocd-auto-sync") {
            if s.argocd_applications.is_empty() {
                for app in self
                    .list(Kind::Application, Some(&s.argocd_namespace), None)
                    .await?
                {
                    if auto_sync_on(&app) || freeze_mark(&app).is_some() {
                        out.push(Target::new(
                            Kind::Application,
                            &s.argocd_namespace,
                            name_of(&app),
                        ));
                    }
                }
            } else {
                for entry in &s.argocd_applications {
                    let (ns, name) = entry
                        .split_once('/')
                        .unwrap_or((s.argocd_namespace.as_str(), entry.as_str()));
                    out.push(Target::new(Kind::Application, ns, name));
                }
            }
        }
        if self.mode("flux") {
            for (kind, list) in [
                (Kind::Kustomization, &s.flux_kustomizations),
                (Kind::HelmRelease, &s.flux_helmreleases),
            ] {
                for entry in list {
                    if let Some((ns, name)) = entry.split_once('/') {
                        out.push(Target::new(kind, ns, name));
                    }
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn target_object(&self, t: &Target) -> Result<Value, ClusterError> {
        self.get(t.kind, &t.namespace, &t.name)
            .await?
            .ok_or_else(|| {
                ClusterError::Invalid(format!(
                    "{} not found (it is configured in {})",
                    t.describe(),
                    t.config_key()
                ))
            })
    }

    pub(super) async fn prepare_freeze(
        &self,
        spec: &OperationSpec,
    ) -> Result<Prepared, ClusterError> {
        let op = spec.object_name.as_str();
        let note = freeze_note(spec);
        let mut summary = Vec::new();
        let mut steps = Vec::new();
        let mut held = 0;
        let targets = self.targets().await?;
        if targets.is_empty() {
            summary.push(format!(
                "no Argo CD Application in {} syncs automatically: nothing to freeze there",
                self.settings.argocd_namespace
            ));
        }
        for t in &targets {
            let object = self.target_object(t).await?;
            match freeze_mark(&object) {
                Some((holder, _)) if holder == op => {
                    held += 1;
                    summary.push(format!(
                        "{}: already frozen by this operation; its recorded state is kept",
                        t.describe()
                    ));
                    continue;
                }
                Some((holder, _)) => {
                    summary.push(format!(
                        "{}: already frozen by {holder}; left to that freeze's unfreeze",
                        t.describe()
                    ));
                    continue;
                }
                None => {}
            }
            let step = match t.kind {
                Kind::AppProject => {
                    windows::freeze_project(t, &object, op, &note, self.argocd_legacy())
                }
                Kind::Application => freeze_application(t, &object, self.argocd_legacy()),
                Kind::Kustomization => freeze_flux(t, &object, FluxKind::Kustomization, &note),
                _ => freeze_flux(t, &object, FluxKind::HelmRelease, &note),
            };
            match step {
                FreezeStep::Change {
                    mut doc,
                    prior,
                    line,
                } => {
                    windows::mark(&mut doc, op, prior.clone());
                    summary.push(line);
                    // A project's undo is computed from the project as it is then.
                    let undo = (t.kind != Kind::AppProject).then(|| unfreeze_patch(t, &prior));
                    steps.push(Step {
                        kind: t.kind,
                        create: false,
                        doc,
                        undo,
                    });
                }
                FreezeStep::Skip(line) => summary.push(line),
            }
        }
        summary.push(format!(
            "the state each change replaces is recorded (annotation {FREEZE_ANNOTATION} on the object and the incident timeline); unfreeze puts back exactly that"
        ));
        let existing = steps.is_empty() && held > 0;
        Ok(Prepared::applying(
            summary,
            steps,
            "every target is already frozen or needs no change",
            existing,
        ))
    }

    pub(super) async fn observe_freeze(
        &self,
        spec: &OperationSpec,
    ) -> Result<Observation, ClusterError> {
        let op = spec.object_name.as_str();
        let mut prior = Map::new();
        let mut applied = Vec::new();
        let mut problems = Vec::new();
        let mut others = Vec::new();
        for t in self.targets().await? {
            let Some(object) = self.get(t.kind, &t.namespace, &t.name).await? else {
                problems.push(format!("{} no longer exists", t.describe()));
                continue;
            };
            match freeze_mark(&object) {
                Some((holder, recorded)) if holder == op => {
                    prior.insert(t.key(), recorded.clone());
                    let effect = match t.kind {
                        Kind::AppProject => windows::project_effect(&t, &object, &recorded),
                        _ => freeze_effect(&t, &object, self.argocd_legacy()),
                    };
                    match effect {
                        Ok(done) => applied.push(done),
                        Err(why) => problems.push(why),
                    }
                }
                Some((holder, _)) => others.push(format!("{} (frozen by {holder})", t.describe())),
                None => others.push(format!("{} (not changed)", t.describe())),
            }
        }
        let mut detail = applied.join("; ");
        if !others.is_empty() {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            detail.push_str(&format!("left as they were: {}", others.join(", ")));
        }
        if problems.is_empty() {
            Ok(Observation {
                phase: "Applied".into(),
                percent: 100,
                detail,
                done: Some(Outcome::Succeeded),
                result: Some(Value::Object(prior)),
            })
        } else {
            Ok(Observation {
                phase: "NotHeld".into(),
                percent: 100,
                detail: format!(
                    "{}; the recorded state of what was changed is in the result",
                    problems.join("; ")
                ),
                done: Some(Outcome::Failed),
                result: Some(Value::Object(prior)),
            })
        }
    }

    pub(super) async fn prepare_unfreeze(
        &self,
        spec: &OperationSpec,
    ) -> Result<Prepared, ClusterError> {
        let targets = recorded_targets(spec)?;
        let mut summary = Vec::new();
        let mut steps = Vec::new();
        if targets.is_empty() {
            summary.push("the freeze changed nothing, so there is nothing to put back".into());
        }
        for (t, fragment) in &targets {
            let Some(object) = self.get(t.kind, &t.namespace, &t.name).await? else {
                summary.push(format!(
                    "{} no longer exists: nothing to put back",
                    t.describe()
                ));
                continue;
            };
            if t.kind == Kind::AppProject {
                let record = Record::parse(fragment);
                let tag = incident_tag(&spec.object_name);
                match windows::unfreeze_project(t, &object, &record, tag) {
                    None => summary.push(format!("{}: already as recorded", t.describe())),
                    Some(doc) => {
                        summary.push(windows::unfreeze_line(t, &object, &record, &doc));
                        steps.push(Step {
                            kind: t.kind,
                            create: false,
                            doc,
                            undo: None,
                        });
                    }
                }
                continue;
            }
            if restored(&object, fragment) {
                summary.push(format!("{}: already as recorded", t.describe()));
                continue;
            }
            let doc = unfreeze_patch(t, fragment);
            summary.push(format!(
                "{}: back to {} (now: {})",
                t.describe(),
                describe_fragment(fragment, None),
                describe_fragment(fragment, Some(&object))
            ));
            steps.push(Step {
                kind: t.kind,
                create: false,
                doc,
                undo: None,
            });
        }
        if !targets.is_empty() {
            summary.push(format!(
                "the freeze annotation {FREEZE_ANNOTATION} is removed; nothing else is touched"
            ));
        }
        let existing = steps.is_empty();
        Ok(Prepared::applying(
            summary,
            steps,
            "every target already matches the recorded state",
            existing,
        ))
    }

    pub(super) async fn observe_unfreeze(
        &self,
        spec: &OperationSpec,
    ) -> Result<Observation, ClusterError> {
        let targets = recorded_targets(spec)?;
        let mut done = Vec::new();
        let mut problems = Vec::new();
        for (t, fragment) in &targets {
            let tag = incident_tag(&spec.object_name);
            let put_back = |object: &Value| match t.kind {
                Kind::AppProject => {
                    windows::unfreeze_project(t, object, &Record::parse(fragment), tag).is_none()
                }
                _ => restored(object, fragment),
            };
            match self.get(t.kind, &t.namespace, &t.name).await? {
                None => done.push(format!("{} (gone)", t.describe())),
                Some(object) if put_back(&object) => done.push(t.describe()),
                Some(object) => problems.push(format!(
                    "{} is not as recorded: {} instead of {}",
                    t.describe(),
                    describe_fragment(fragment, Some(&object)),
                    describe_fragment(fragment, None)
                )),
            }
        }
        let (outcome, detail) = if problems.is_empty() {
            (
                Outcome::Succeeded,
                if done.is_empty() {
                    "nothing to put back".to_string()
                } else {
                    format!("recorded state put back: {}", done.join(", "))
                },
            )
        } else {
            (Outcome::Failed, problems.join("; "))
        };
        Ok(Observation {
            phase: "Applied".into(),
            percent: 100,
            detail,
            done: Some(outcome),
            result: spec.prior.clone(),
        })
    }
}

/// The targets and recorded states of an unfreeze.
pub(super) fn recorded_targets(spec: &OperationSpec) -> Result<Vec<(Target, Value)>, ClusterError> {
    let known = "argocd_appproject/<namespace>/<name>, argocd_application/…, flux_kustomization/…, flux_helmrelease/…";
    let Some(prior) = &spec.prior else {
        return Err(ClusterError::Invalid(
            "unfreeze needs the state recorded by the freeze, and none was given".into(),
        ));
    };
    let Some(map) = prior.as_object() else {
        return Err(ClusterError::Invalid(format!(
            "the recorded freeze state is not an object of targets ({known})"
        )));
    };
    map.iter()
        .map(|(key, fragment)| {
            let t = Target::parse(key).ok_or_else(|| {
                ClusterError::Invalid(format!(
                    "unknown freeze target {key} in the recorded state (was it recorded by another backend?); known: {known}"
                ))
            })?;
            if !fragment.is_object() {
                return Err(ClusterError::Invalid(format!(
                    "the recorded state of {key} is not an object"
                )));
            }
            Ok((t, fragment.clone()))
        })
        .collect()
}

/// The merge patch that puts back a target's recorded state and drops the freeze annotation.
pub(super) fn unfreeze_patch(t: &Target, fragment: &Value) -> Value {
    let mut doc = t.patch_base();
    set_annotation(&mut doc, FREEZE_ANNOTATION, Value::Null);
    overlay(&mut doc, fragment);
    doc
}

/// The object carries the recorded state and no freeze annotation.
pub(super) fn restored(object: &Value, fragment: &Value) -> bool {
    let mut after = object.clone();
    merge(&mut after, fragment);
    after == *object && freeze_mark(object).is_none()
}

/// The leaves of a recorded state, with their recorded values (`object` = `None`) or their
/// values in `object`: `annotation … absent, spec.suspend absent`.
pub(super) fn describe_fragment(fragment: &Value, object: Option<&Value>) -> String {
    fn walk(v: &Value, path: &mut Vec<String>, object: Option<&Value>, out: &mut Vec<String>) {
        if let Value::Object(m) = v
            && !m.is_empty()
        {
            for (k, child) in m {
                path.push(k.clone());
                walk(child, path, object, out);
                path.pop();
            }
            return;
        }
        let value = match object {
            None => Some(v),
            Some(o) => path.iter().try_fold(o, |cur, p| cur.get(p)),
        };
        let shown = match value {
            None | Some(Value::Null) => "absent".to_string(),
            Some(Value::Array(a)) if path.last().map(String::as_str) == Some("syncWindows") => {
                describe_windows(a)
            }
            Some(other) => other.to_string(),
        };
        let key = if path.first().map(String::as_str) == Some("metadata") {
            format!("annotation {}", path.last().map_or("?", String::as_str))
        } else {
            path.join(".")
        };
        out.push(format!("{key} {shown}"));
    }
    let mut out = Vec::new();
    walk(fragment, &mut Vec::new(), object, &mut out);
    out.join(", ")
}

/// Turn an Application's auto-sync off: `automated.enabled: false` (Argo CD 3.1 and later,
/// prune and self-heal settings kept) or, before 3.1, no `automated` at all.
pub(super) fn freeze_application(t: &Target, object: &Value, legacy: bool) -> FreezeStep {
    let automated = object.pointer("/spec/syncPolicy/automated");
    let Some(Value::Object(a)) = automated else {
        return FreezeStep::Skip(format!(
            "{}: no automated sync policy, so auto-sync is already off; left as it is",
            t.describe()
        ));
    };
    if a.get("enabled").and_then(Value::as_bool) == Some(false) {
        return FreezeStep::Skip(format!(
            "{}: automated.enabled is already false; left as it is",
            t.describe()
        ));
    }
    let now = Value::Object(a.clone());
    let (change, prior, line) = if legacy {
        (
            Value::Null,
            json!({"spec": {"syncPolicy": {"automated": now}}}),
            format!(
                "{}: remove spec.syncPolicy.automated (Argo CD before 3.1; now: {now})",
                t.describe()
            ),
        )
    } else {
        (
            json!({"enabled": false}),
            json!({"spec": {"syncPolicy": {"automated": {
                "enabled": a.get("enabled").cloned().unwrap_or(Value::Null)
            }}}}),
            format!(
                "{}: spec.syncPolicy.automated.enabled false, other settings kept (now: {now})",
                t.describe()
            ),
        )
    };
    let mut doc = t.patch_base();
    overlay(
        &mut doc,
        &json!({"spec": {"syncPolicy": {"automated": change}}}),
    );
    FreezeStep::Change { doc, prior, line }
}

/// Suspend a Flux Kustomization or HelmRelease, with drbot's reason annotation
/// ([`FLUX_SUSPEND_REASON`]: a note for people, read by no controller), unless something
/// suspended it already. Only these two scalar fields change (merge patch), so nothing that
/// others change meanwhile is replaced; the unfreeze puts back exactly these two.
pub(super) fn freeze_flux(t: &Target, object: &Value, kind: FluxKind, note: &str) -> FreezeStep {
    let suspend = object
        .pointer("/spec/suspend")
        .cloned()
        .unwrap_or(Value::Null);
    if suspend == Value::Bool(true) {
        let why = annotation(object, FLUX_SUSPEND_REASON)
            .and_then(Value::as_str)
            .map(|r| format!(" (reason: {r})"))
            .unwrap_or_default();
        return FreezeStep::Skip(format!(
            "{}: already suspended{why}; left as it is, and the unfreeze will not resume it",
            t.describe()
        ));
    }
    let reason = annotation(object, FLUX_SUSPEND_REASON)
        .cloned()
        .unwrap_or(Value::Null);
    let line = format!(
        "{}: spec.suspend true, annotation {FLUX_SUSPEND_REASON} (now: suspend {})",
        t.describe(),
        if suspend.is_null() {
            "absent".to_string()
        } else {
            suspend.to_string()
        }
    );
    FreezeStep::Change {
        doc: manifests::flux_suspend(kind, &t.namespace, &t.name, true, Some(note)),
        prior: json!({
            "metadata": {"annotations": {FLUX_SUSPEND_REASON: reason}},
            "spec": {"suspend": suspend},
        }),
        line,
    }
}

/// What a freeze holding `object` has in force, or why it is not.
pub(super) fn freeze_effect(t: &Target, object: &Value, legacy: bool) -> Result<String, String> {
    match t.kind {
        Kind::Application => {
            let automated = object.pointer("/spec/syncPolicy/automated");
            let off = match automated {
                None | Some(Value::Null) => true,
                Some(a) => !legacy && a.get("enabled").and_then(Value::as_bool) == Some(false),
            };
            if off {
                Ok(format!("{}: auto-sync off", t.describe()))
            } else if legacy {
                Err(format!("{} syncs automatically again", t.describe()))
            } else {
                Err(format!(
                    "{}: automated.enabled is not false; Argo CD before 3.1 drops that field: set kubernetes.argocd_version",
                    t.describe()
                ))
            }
        }
        _ => {
            if object.pointer("/spec/suspend") == Some(&Value::Bool(true)) {
                Ok(format!("{}: suspended", t.describe()))
            } else {
                Err(format!(
                    "{} is no longer suspended (reverted by its parent Kustomization?)",
                    t.describe()
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_fragments() {
        let t = Target::parse("flux_kustomization/flux-system/apps").expect("target");
        assert_eq!(t.kind, Kind::Kustomization);
        assert_eq!(t.key(), "flux_kustomization/flux-system/apps");
        assert!(Target::parse("argocd_appproject/default").is_none());
        let fragment = json!({"metadata": {"annotations": {FLUX_SUSPEND_REASON: null}}, "spec": {"suspend": null}});
        assert_eq!(
            describe_fragment(&fragment, None),
            format!("annotation {FLUX_SUSPEND_REASON} absent, spec.suspend absent")
        );
    }
}
