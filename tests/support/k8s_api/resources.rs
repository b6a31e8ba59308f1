//! The resource types served: group, version, plural, kind, scope, subresources.

use super::*;

// ---------------------------------------------------------------------------------------
// Resources served
// ---------------------------------------------------------------------------------------

/// One resource type the stand-in serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group; empty for the core group (`/api/v1`).
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// The `status` subresource is declared (upstream CRD `subresources.status`, or core type).
    pub status_subresource: bool,
    /// A custom resource: schema-checked on every write through the API.
    pub custom: bool,
    /// Fields a field selector may use besides `metadata.name` / `metadata.namespace`.
    pub selectable: &'static [&'static str],
}

pub(super) const fn core(
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status_subresource: bool,
    selectable: &'static [&'static str],
) -> Resource {
    Resource {
        group: "",
        version: "v1",
        plural,
        kind,
        namespaced,
        status_subresource,
        custom: false,
        selectable,
    }
}

pub(super) const fn crd(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    status_subresource: bool,
) -> Resource {
    Resource {
        group,
        version,
        plural,
        kind,
        namespaced: true,
        status_subresource,
        custom: true,
        selectable: &[],
    }
}

/// Every resource served. Status subresources as declared in the upstream CRDs in
/// `shared/reference/crds` (only the two Flux kinds declare one; SGCluster declares
/// only `scale`; Argo CD, Velero and SGBackup none).
pub const RESOURCES: &[Resource] = &[
    core(
        "pods",
        "Pod",
        true,
        true,
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    ),
    core("nodes", "Node", false, true, &["spec.unschedulable"]),
    core("namespaces", "Namespace", false, true, &["status.phase"]),
    core("services", "Service", true, true, &[]),
    core("secrets", "Secret", true, false, &["type"]),
    core("configmaps", "ConfigMap", true, false, &[]),
    core(
        "events",
        "Event",
        true,
        false,
        super::super::stackgres_controller::EVENT_FIELDS,
    ),
    Resource {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        status_subresource: false,
        custom: false,
        selectable: &[],
    },
    crd("velero.io", "v1", "backups", "Backup", false),
    crd("velero.io", "v1", "restores", "Restore", false),
    crd("velero.io", "v1", "schedules", "Schedule", false),
    crd(
        "velero.io",
        "v1",
        "backupstoragelocations",
        "BackupStorageLocation",
        false,
    ),
    crd("stackgres.io", "v1", "sgclusters", "SGCluster", false),
    crd("stackgres.io", "v1", "sgbackups", "SGBackup", false),
    crd("stackgres.io", "v1", "sgdbops", "SGDbOps", false),
    crd(
        "stackgres.io",
        "v1beta1",
        "sgobjectstorages",
        "SGObjectStorage",
        false,
    ),
    crd(
        "argoproj.io",
        "v1alpha1",
        "applications",
        "Application",
        false,
    ),
    crd(
        "argoproj.io",
        "v1alpha1",
        "appprojects",
        "AppProject",
        false,
    ),
    crd(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "kustomizations",
        "Kustomization",
        true,
    ),
    crd(
        "helm.toolkit.fluxcd.io",
        "v2",
        "helmreleases",
        "HelmRelease",
        true,
    ),
];

impl Resource {
    pub fn by_plural(plural: &str) -> Option<&'static Resource> {
        RESOURCES.iter().find(|r| r.plural == plural)
    }

    /// By the `apiVersion` and `kind` of an object.
    pub fn of(object: &Value) -> Option<&'static Resource> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        RESOURCES
            .iter()
            .find(|r| r.api_version() == api_version && r.kind == kind)
    }

    pub(super) fn get(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
        RESOURCES
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `restores.velero.io`, `pods`: how the API server names the resource in messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Restore.velero.io`, `Pod`: how the API server names the kind in `Invalid` messages.
    pub(super) fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub(super) fn key(&self, namespace: &str, name: &str) -> Key {
        let namespace = if self.namespaced { namespace } else { "" };
        (self.plural, namespace.to_string(), name.to_string())
    }
}
