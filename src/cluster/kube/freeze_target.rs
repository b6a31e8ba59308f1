//! What a freeze touches, shared by the freeze itself and the Argo CD sync windows: the
//! objects it changes (`Target`), each one's step, and the note that marks its window.

use super::*;

/// The description of a freeze's deny window and the Flux reason annotation:
/// `drbot freeze <object>: <reason>`.
pub(super) fn freeze_note(spec: &OperationSpec) -> String {
    let reason = spec.reason.as_deref().unwrap_or("disaster recovery");
    format!("{WINDOW_PREFIX}{}: {reason}", spec.object_name)
}

/// An object a freeze changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) kind: Kind,
    pub(super) namespace: String,
    pub(super) name: String,
}

pub(super) const TARGET_KEYS: &[(&str, Kind)] = &[
    ("argocd_appproject", Kind::AppProject),
    ("argocd_application", Kind::Application),
    ("flux_kustomization", Kind::Kustomization),
    ("flux_helmrelease", Kind::HelmRelease),
];

impl Target {
    pub(super) fn new(kind: Kind, namespace: &str, name: &str) -> Target {
        Target {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `argocd_appproject/argocd/default`: the key of its recorded state.
    pub(super) fn key(&self) -> String {
        let prefix = TARGET_KEYS
            .iter()
            .find(|(_, k)| *k == self.kind)
            .map_or("?", |(p, _)| p);
        format!("{prefix}/{}/{}", self.namespace, self.name)
    }

    pub(super) fn parse(key: &str) -> Option<Target> {
        let mut parts = key.splitn(3, '/');
        let (prefix, namespace, name) = (parts.next()?, parts.next()?, parts.next()?);
        let kind = TARGET_KEYS.iter().find(|(p, _)| *p == prefix)?.1;
        (!namespace.is_empty() && !name.is_empty()).then(|| Target::new(kind, namespace, name))
    }

    pub(super) fn describe(&self) -> String {
        format!("{} {}/{}", self.kind.label(), self.namespace, self.name)
    }

    pub(super) fn config_key(&self) -> &'static str {
        match self.kind {
            Kind::AppProject => "kubernetes.argocd_projects",
            Kind::Application => "kubernetes.argocd_applications",
            Kind::Kustomization => "kubernetes.flux_kustomizations",
            _ => "kubernetes.flux_helmreleases",
        }
    }

    /// `apiVersion`, `kind` and the name, to which a patch adds its fields.
    pub(super) fn patch_base(&self) -> Value {
        let (_, _, kind, _) = self.kind.gvk();
        json!({
            "apiVersion": self.kind.api_version(),
            "kind": kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
        })
    }
}

/// One object's part of a freeze.
pub(super) enum FreezeStep {
    /// Change it: the patch and the state it replaces.
    Change {
        doc: Value,
        prior: Value,
        line: String,
    },
    /// Nothing to do for it, and nothing to put back.
    Skip(String),
}
