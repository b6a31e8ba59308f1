//! A create into a namespace that does not exist: kube-apiserver's NamespaceLifecycle
//! admission returns the NotFound of its own `Namespaces().Get` (kubernetes/kubernetes
//! `staging/src/k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle/admission.go`,
//! "refuse to operate on non-existent namespaces"): 404 `NotFound`, `namespaces "X" not
//! found`, `details.kind` `namespaces`, `details.name` the namespace. It is not a missing
//! CRD: say so, and how to fix it.

use ::kube::core::Status;

/// The message for a 404 that names a missing namespace, `None` for any other 404.
pub(super) fn missing_namespace(what: &str, s: &Status) -> Option<String> {
    let d = s.details.as_ref()?;
    if d.kind != "namespaces" || d.name.is_empty() {
        return None;
    }
    let ns = &d.name;
    Some(format!(
        "{what}: namespace {ns} does not exist ({} {}: {}). Create it (kubectl create namespace {ns}) or point drbot at the right one (kubernetes.velero_namespace, kubernetes.database_namespace, safety.drill_namespace), then run the command again.",
        s.code, s.reason, s.message
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kube-apiserver sends for a 404 naming `kind` `name`.
    fn status(kind: &str, name: &str) -> Status {
        serde_json::from_value(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
            "reason": "NotFound", "message": format!("{kind} \"{name}\" not found"),
            "details": {"name": name, "kind": kind},
        }))
        .expect("status")
    }

    #[test]
    fn a_missing_namespace_is_named_with_the_fix() {
        let e = super::super::access::api_error(
            "create SGCluster dr-drill/orders-i1-op1",
            None,
            ::kube::Error::Api(status("namespaces", "dr-drill").boxed()),
        );
        let m = e.to_string();
        assert!(m.contains("namespace dr-drill does not exist"), "{m}");
        assert!(m.contains("kubectl create namespace dr-drill"), "{m}");
        assert!(!m.contains("CRD"), "{m}");
        let other = super::super::access::api_error(
            "create Restore velero/r",
            None,
            ::kube::Error::Api(status("restores", "r").boxed()),
        );
        assert!(other.to_string().contains("CRD installed"), "{other}");
    }
}
