//! What drbot may do in the cluster, and what it says when it may not.

use super::*;

/// Map a client error: refusals and missing APIs are `Invalid` (retrying will not help), the
/// rest `Unavailable`.
pub(super) fn api_error(what: &str, e: ::kube::Error) -> ClusterError {
    match e {
        ::kube::Error::Api(s) => {
            let detail = format!("{} {}: {}", s.code, s.reason, s.message);
            match s.code {
                401 | 403 => ClusterError::Invalid(format!(
                    "{what} was refused ({detail}): drbot's Kubernetes identity needs RBAC for it"
                )),
                404 => ClusterError::Invalid(format!(
                    "{what}: the API server does not serve it ({detail}); is the operator and its CRD installed?"
                )),
                400 | 409 | 422 => ClusterError::Invalid(format!("{what} was refused ({detail})")),
                _ => ClusterError::Unavailable(format!("{what} failed ({detail})")),
            }
        }
        other => ClusterError::Unavailable(format!("{what} failed: {other}")),
    }
}
