//! Which upstream release's CRD the stand-in serves for each kind, and the pruning a real API
//! server applies to custom resources.
//!
//! Releases: the newest CRDs are in `shared/reference/crds/`, older ones in
//! `shared/reference/crds/older/` (`<group>_<plural>.<tag>.yaml`, see its `SOURCES.md`). A
//! kind without an older file for the chosen release is served from the newest file; the
//! mapping below says which.
//!
//! Pruning follows apiextensions-apiserver `pkg/apiserver/schema/pruning/algorithm.go`
//! (kubernetes/kubernetes `staging/src/k8s.io/apiextensions-apiserver/...`, read here at
//! 10dfa86b6c7b; newer releases also report the pruned paths, same rules): on create,
//! update and patch, every field the structural schema does not declare is dropped, unless
//! the schema node has `x-kubernetes-preserve-unknown-fields: true`; `additionalProperties`
//! schemas apply to every value of a map, `items` to every element of a list; at the root
//! `apiVersion`, `kind` and `metadata` always stay (ObjectMeta has its own rules);
//! `x-kubernetes-embedded-resource` keeps those three inside as well. Only the structural
//! part (`properties`, `additionalProperties`, `items`) decides: `anyOf`/`allOf`/`oneOf`/`not`
//! constrain values and never keep a field. A request with `fieldValidation=Strict` is
//! refused instead (422); without it (kube-rs sends none) the server drops them and answers
//! with a `Warning` header (the API reference's `fieldValidation` default, `Warn`; unverified
//! against the apiserver source, and the header is not emulated).

use serde_json::{Map, Value};

/// Argo CD release of the AppProject and Application CRDs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ArgoCd {
    /// v2.14.21 AppProject; no 2.14 Application file is kept, so Application is v3.0.23
    /// (neither has `syncPolicy.automated.enabled` nor `syncWindows[].description`).
    V2_14,
    /// v3.0.23 AppProject and Application.
    V3_0,
    /// v3.5.1 (`crds/`).
    #[default]
    V3_5,
}

/// Velero release of the Backup and Restore CRDs (Schedule and BackupStorageLocation stay
/// at the newest: no older file is kept).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Velero {
    /// v1.14.1.
    V1_14,
    /// v1.18.1 (`crds/`).
    #[default]
    V1_18,
}

/// StackGres release of the SGCluster and SGBackup CRDs (SGObjectStorage and SGDbOps stay at
/// the newest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StackGres {
    /// 1.15.2.
    V1_15,
    /// 1.18.6 (`crds/`).
    #[default]
    V1_18,
}

/// The release served per product; the default is the newest of each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Releases {
    pub argocd: ArgoCd,
    pub velero: Velero,
    pub stackgres: StackGres,
}

impl Releases {
    /// The tag of the older file serving `group`/`kind`, or `None` for the newest file.
    pub fn tag(&self, group: &str, kind: &str) -> Option<&'static str> {
        match (group, kind) {
            ("argoproj.io", "AppProject") => match self.argocd {
                ArgoCd::V2_14 => Some("v2.14.21"),
                ArgoCd::V3_0 => Some("v3.0.23"),
                ArgoCd::V3_5 => None,
            },
            ("argoproj.io", "Application") => match self.argocd {
                ArgoCd::V2_14 | ArgoCd::V3_0 => Some("v3.0.23"),
                ArgoCd::V3_5 => None,
            },
            ("velero.io", "Backup" | "Restore") => match self.velero {
                Velero::V1_14 => Some("v1.14.1"),
                Velero::V1_18 => None,
            },
            ("stackgres.io", "SGCluster" | "SGBackup") => match self.stackgres {
                StackGres::V1_15 => Some("1.15.2"),
                StackGres::V1_18 => None,
            },
            _ => None,
        }
    }

    /// Every tag some release selects: the files `crds/older/` must hold.
    pub fn all_older_tags() -> [(&'static str, &'static str, &'static str); 7] {
        [
            ("argoproj.io", "AppProject", "v2.14.21"),
            ("argoproj.io", "AppProject", "v3.0.23"),
            ("argoproj.io", "Application", "v3.0.23"),
            ("velero.io", "Backup", "v1.14.1"),
            ("velero.io", "Restore", "v1.14.1"),
            ("stackgres.io", "SGCluster", "1.15.2"),
            ("stackgres.io", "SGBackup", "1.15.2"),
        ]
    }
}

/// A field the stand-in pruned from a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pruned {
    /// `create`, `update`, `patch`, `apply`, or `put` for a seed ([`super::k8s_api::K8sApi::put`]).
    pub verb: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    /// `spec.syncWindows[1].description`.
    pub path: String,
}

impl Pruned {
    pub fn new(verb: &str, resource: &str, object: &Value, path: String) -> Pruned {
        let meta = |k: &str| {
            object
                .pointer(&format!("/metadata/{k}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Pruned {
            verb: verb.into(),
            resource: resource.into(),
            namespace: meta("namespace"),
            name: meta("name"),
            path,
        }
    }
}

/// Drop from `value` what `schema` does not declare; returns the JSON paths dropped
/// (`spec.syncWindows[1].description`).
pub fn prune(schema: &Value, value: &mut Value) -> Vec<String> {
    let mut out = Vec::new();
    prune_at(Some(schema), value, "", true, &mut out);
    out
}

fn flag(s: &Map<String, Value>, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// kubernetes `staging/src/k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning/
/// algorithm.go` `prune`: no schema (`None`) clears an object; preserve-unknown-fields keeps
/// unknown keys but still prunes the known ones (`skipPrune`).
fn prune_at(
    schema: Option<&Value>,
    value: &mut Value,
    path: &str,
    root: bool,
    out: &mut Vec<String>,
) {
    let s = schema.and_then(Value::as_object);
    match value {
        Value::Object(m) => {
            let preserve = s.is_some_and(|s| flag(s, "x-kubernetes-preserve-unknown-fields"));
            let embedded = root || s.is_some_and(|s| flag(s, "x-kubernetes-embedded-resource"));
            let properties = s
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object);
            let additional = s.and_then(|s| s.get("additionalProperties"));
            let mut dropped = Vec::new();
            for (key, child) in m.iter_mut() {
                let p = join(path, key);
                if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    // TypeMeta and ObjectMeta are not the CRD schema's (ObjectMeta's rules
                    // live in the validator).
                    continue;
                }
                match (properties.and_then(|ps| ps.get(key)), additional) {
                    (Some(child_schema), _) => prune_at(Some(child_schema), child, &p, false, out),
                    (None, Some(a @ Value::Object(_))) => prune_at(Some(a), child, &p, false, out),
                    (None, Some(Value::Bool(true))) => {}
                    (None, _) if preserve => {}
                    (None, _) => dropped.push(key.clone()),
                }
            }
            for key in dropped {
                m.remove(&key);
                out.push(join(path, &key));
            }
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.get("items"));
            for (i, item) in items.iter_mut().enumerate() {
                prune_at(item_schema, item, &format!("{path}[{i}]"), false, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_what_the_schema_does_not_declare() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "windows": {"type": "array", "items": {"type": "object", "properties": {"kind": {"type": "string"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            }},
        }});
        let mut v = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
            "spec": {"windows": [{"kind": "deny", "description": "gone"}],
                     "free": {"any": 1}, "labels": {"a": "b"}, "typo": 1}});
        let pruned = prune(&schema, &mut v);
        assert_eq!(pruned, ["spec.windows[0].description", "spec.typo"]);
        assert_eq!(v["spec"]["windows"][0], json!({"kind": "deny"}));
        assert_eq!(v["spec"]["free"], json!({"any": 1}));
        assert_eq!(v["metadata"]["name"], "n");
    }
}
