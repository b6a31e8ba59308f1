//! Fixture builders: objects the way their controllers would write them.

use super::*;

// ---------------------------------------------------------------------------------------
// Fixture builders
// ---------------------------------------------------------------------------------------

/// Pod status with phase Running and the `Ready` condition set to `ready`.
pub fn pod_status(ready: bool) -> Value {
    let flag = if ready { "True" } else { "False" };
    json!({
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now()},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now()},
            {"type": "Ready", "status": flag, "lastTransitionTime": now()},
        ],
    })
}

/// Labels StackGres puts on a cluster's pods (`status.labelSelector` of the SGCluster);
/// the primary also has `role=primary`, or `master` under Patroni < 4
/// (`PatroniMember.getLabelRole`, StackGres ≥ 1.15), once Patroni leads.
pub fn stackgres_cluster_labels(cluster: &str) -> Value {
    json!({
        "app": "StackGresCluster",
        "stackgres.io/cluster-name": cluster,
        "stackgres.io/cluster": "true",
    })
}

/// The primary pod `{name}-0` the operator starts for an SGCluster.
pub fn stackgres_primary_pod(cluster: &Value, ready: bool) -> Value {
    let name = cluster["metadata"]["name"].as_str().expect("cluster name");
    let namespace = cluster["metadata"]["namespace"]
        .as_str()
        .unwrap_or(DEFAULT_NAMESPACE);
    let mut labels = stackgres_cluster_labels(name);
    labels["role"] = json!("primary");
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("{name}-0"),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": name,
                "uid": "00000000-0000-4000-8000-5a5a5a5a5a5a",
                "controller": true,
            }],
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "patroni", "image": "stackgres/patroni"}],
        },
        "status": pod_status(ready),
    })
}

/// A Ready node.
pub fn node(name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {"conditions": [{
            "type": "Ready",
            "status": if ready { "True" } else { "False" },
            "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
            "lastHeartbeatTime": now(),
            "lastTransitionTime": now(),
        }]},
    })
}

pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
