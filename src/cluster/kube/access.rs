//! What drbot may do in the cluster, and what it says when it may not.
//!
//! [`SCOPES`] is the one list of permissions: every call the backend makes needs one of its
//! rules, the Helm chart renders its RBAC from it (`deploy/helm/drbot/files/permissions.yaml`,
//! written by `drbot rbac print`), `drbot doctor` asks the API server about each rule, and a
//! refusal names the rule that is missing.

use super::*;

/// One RBAC rule: a resource of an API group and the verbs drbot uses on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// `""` for the core group.
    pub group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    /// The calls that need it.
    pub needed_for: &'static str,
    /// The chart value that switches the rule on (the settings that make drbot call it).
    pub when: Option<&'static str>,
}

/// Rules granted together in a set of namespaces (or cluster-wide for `cluster`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub name: &'static str,
    /// Which namespaces, in the chart's words.
    pub namespaces: &'static str,
    pub rules: &'static [Rule],
}

const fn rule(
    group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
    needed_for: &'static str,
) -> Rule {
    Rule {
        group,
        resource,
        verbs,
        needed_for,
        when: None,
    }
}

const fn rule_when(rule: Rule, value: &'static str) -> Rule {
    Rule {
        when: Some(value),
        ..rule
    }
}

pub const SCOPES: &[Scope] = &[
    Scope {
        name: "velero",
        namespaces: "the Velero namespace (kubernetes.veleroNamespace)",
        rules: &[
            rule(
                "velero.io",
                "restores",
                &["create", "get"],
                "/dr infra restore: create the Velero Restore and watch it (SOP 6.3.5)",
            ),
            rule(
                "velero.io",
                "backups",
                &["list"],
                "/dr infra restore picks the backup; verify checks a backup newer than the recovery",
            ),
            rule(
                "velero.io",
                "schedules",
                &["list"],
                "/dr backups and verify: the Velero schedules exist and are enabled",
            ),
            rule(
                "velero.io",
                "backupstoragelocations",
                &["get", "list"],
                "/dr infra restore: the backup's storage location is Available; /dr backups lists them",
            ),
        ],
    },
    Scope {
        name: "database",
        namespaces: "each database namespace (kubernetes.databaseNamespaces)",
        rules: &[
            rule(
                "stackgres.io",
                "sgclusters",
                &["create", "get", "list"],
                "/dr restore latest and /dr pitr: read the source, create the new SGCluster, watch it; verify finds the restored cluster",
            ),
            rule(
                "stackgres.io",
                "sgbackups",
                &["list"],
                "/dr pitr and /dr backups: the base backups; verify: backups resumed",
            ),
            rule(
                "",
                "pods",
                &["list"],
                "watching a restore: the restored cluster's primary pod is Ready, or its patroni container crash-looping",
            ),
            rule(
                "",
                "events",
                &["list"],
                "watching a restore: the operator's Warning events on the new SGCluster (ClusterConfigFailed)",
            ),
            rule(
                "",
                "pods/log",
                &["get"],
                "a crash-looping restore: the tail of the patroni container's log, for PostgreSQL's FATAL",
            ),
            rule_when(
                rule(
                    "",
                    "secrets",
                    &["get"],
                    "verify: the superuser password for pg_is_in_recovery()",
                ),
                "kubernetes.dsnPasswordFromSecret",
            ),
        ],
    },
    Scope {
        name: "drill",
        namespaces: "the drill namespace (kubernetes.drillNamespace)",
        rules: &[
            rule(
                "stackgres.io",
                "sgclusters",
                &["create", "get", "list"],
                "/dr drill: create the drill SGCluster and watch it",
            ),
            rule(
                "stackgres.io",
                "sgbackups",
                &["create"],
                "/dr drill: copy the chosen backup into the drill namespace first",
            ),
            rule(
                "",
                "pods",
                &["list"],
                "watching a drill restore: its primary pod is Ready, or its patroni container crash-looping",
            ),
            rule(
                "",
                "events",
                &["list"],
                "watching a drill restore: the operator's Warning events on the drill SGCluster",
            ),
            rule(
                "",
                "pods/log",
                &["get"],
                "a crash-looping drill restore: the tail of the patroni container's log",
            ),
            rule(
                "",
                "secrets",
                &["get"],
                "/dr drill and doctor: the backup's object-storage Secrets are in the drill namespace (StackGres reads them there); verify: the superuser password",
            ),
        ],
    },
    Scope {
        name: "argocd",
        namespaces: "the Argo CD namespace (kubernetes.argocdNamespace)",
        rules: &[
            rule_when(
                rule(
                    "argoproj.io",
                    "appprojects",
                    &["get", "patch"],
                    "/dr freeze and /dr unfreeze: the deny sync window on each AppProject (SOP 5.1)",
                ),
                "freeze.argocdWindow",
            ),
            rule_when(
                rule(
                    "argoproj.io",
                    "applications",
                    &["get", "list", "patch"],
                    "/dr freeze and /dr unfreeze: auto-sync off and back on for each Application",
                ),
                "freeze.argocdAutoSync",
            ),
        ],
    },
    Scope {
        name: "flux",
        namespaces: "each namespace of the Flux objects (kubernetes.fluxNamespaces)",
        rules: &[
            rule(
                "kustomize.toolkit.fluxcd.io",
                "kustomizations",
                &["get", "patch"],
                "/dr freeze and /dr unfreeze: spec.suspend on each Kustomization",
            ),
            rule(
                "helm.toolkit.fluxcd.io",
                "helmreleases",
                &["get", "patch"],
                "/dr freeze and /dr unfreeze: spec.suspend on each HelmRelease",
            ),
        ],
    },
    Scope {
        name: "core",
        namespaces: "kube-system and each core namespace (kubernetes.coreNamespaces)",
        rules: &[rule(
            "",
            "pods",
            &["list"],
            "verify: control plane and core namespace pods are running (SOP 6.3.6)",
        )],
    },
    Scope {
        name: "cluster",
        namespaces: "cluster-wide (a ClusterRoleBinding)",
        rules: &[rule(
            "",
            "nodes",
            &["list"],
            "verify: every node is Ready (SOP 9.1.1)",
        )],
    },
];

const PERMISSIONS_HEADER: &str = "\
# drbot's Kubernetes permissions: exactly what the kubernetes backend calls. Generated from
# src/cluster/kube/access.rs by `drbot rbac print`; `drbot rbac check` and `cargo test` fail
# when this file drifts. Each scope is one ClusterRole of namespaced rules, bound with a
# RoleBinding in each namespace of the scope; `cluster` is bound cluster-wide. A rule with
# `when` is rendered only when that chart value is true.
";

fn quoted(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", items.join(", "))
}

/// `deploy/helm/drbot/files/permissions.yaml`, which the chart renders its RBAC from.
pub fn permissions_yaml() -> String {
    let mut out = String::from(PERMISSIONS_HEADER);
    out.push_str("scopes:\n");
    for scope in SCOPES {
        out.push_str(&format!("  {}:\n", scope.name));
        out.push_str(&format!("    namespaces: {}\n", scope.namespaces));
        out.push_str("    rules:\n");
        for r in scope.rules {
            out.push_str(&format!("      - apiGroups: {}\n", quoted(&[r.group])));
            out.push_str(&format!("        resources: {}\n", quoted(&[r.resource])));
            out.push_str(&format!("        verbs: {}\n", quoted(r.verbs)));
            out.push_str(&format!("        for: {:?}\n", r.needed_for));
            if let Some(when) = r.when {
                out.push_str(&format!("        when: {when}\n"));
            }
        }
    }
    out
}

/// The request a refusal was about.
#[derive(Debug, Clone, Copy)]
pub(super) struct Access<'a> {
    pub(super) verb: &'static str,
    pub(super) group: &'static str,
    pub(super) resource: &'static str,
    /// `None`: cluster-scoped or all namespaces.
    pub(super) namespace: Option<&'a str>,
}

impl Access<'_> {
    pub(super) fn of<'a>(verb: &'static str, kind: Kind, namespace: Option<&'a str>) -> Access<'a> {
        let (group, _, _, resource) = kind.gvk();
        Access {
            verb,
            group,
            resource,
            namespace: if kind == Kind::Node { None } else { namespace },
        }
    }

    /// Reading a core-group resource that is no [`Kind`] (`secrets`, `pods/log`).
    pub(super) fn core_get<'a>(resource: &'static str, namespace: &'a str) -> Access<'a> {
        Access {
            verb: "get",
            group: "",
            resource,
            namespace: Some(namespace),
        }
    }

    /// The scopes whose rules grant this request.
    fn scopes(&self) -> Vec<&'static Scope> {
        SCOPES
            .iter()
            .filter(|s| {
                s.rules.iter().any(|r| {
                    r.group == self.group
                        && r.resource == self.resource
                        && r.verbs.contains(&self.verb)
                })
            })
            .collect()
    }

    /// What is missing and how to grant it, for the person in the channel.
    pub(super) fn missing(&self) -> String {
        let group = if self.group.is_empty() {
            "the core API group".to_string()
        } else {
            format!("API group {}", self.group)
        };
        let place = match self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "cluster-wide".to_string(),
        };
        let qualified = if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        let can_i = match self.namespace {
            Some(ns) => format!("kubectl auth can-i {} {qualified} -n {ns}", self.verb),
            None => format!("kubectl auth can-i {} {qualified}", self.verb),
        };
        let rule = format!(
            "{{apiGroups: [{:?}], resources: [{:?}], verbs: [{:?}]}}",
            self.group, self.resource, self.verb
        );
        let grant = match self.scopes().first() {
            Some(scope) if scope.name == "cluster" => format!(
                "The Helm chart grants it in its `{}` ClusterRole with a ClusterRoleBinding.",
                scope.name
            ),
            Some(scope) => format!(
                "The Helm chart grants it with its `{}` ClusterRole, bound in {}: make sure {} is listed there.",
                scope.name,
                scope.namespaces,
                self.namespace.unwrap_or("the namespace")
            ),
            None => {
                "It is not in drbot's permission list (src/cluster/kube/access.rs): that is a bug."
                    .into()
            }
        };
        format!(
            "missing permission: drbot may not {} {} ({group}) {place}. Grant drbot's service account the rule {rule} {place}. {grant} Check with `{can_i} --as=system:serviceaccount:<drbot namespace>:<drbot service account>`.",
            self.verb, self.resource
        )
    }
}

/// Map a client error: refusals and missing APIs are `Invalid` (retrying will not help), the
/// rest `Unavailable`. A 403 names the permission drbot lacks and how to grant it.
pub(super) fn api_error(what: &str, access: Option<Access<'_>>, e: ::kube::Error) -> ClusterError {
    match e {
        ::kube::Error::Api(s) => {
            let detail = format!("{} {}: {}", s.code, s.reason, s.message);
            match (s.code, access) {
                (403, Some(access)) => {
                    ClusterError::Invalid(format!("{what} was refused: {}", access.missing()))
                }
                (401 | 403, _) => ClusterError::Invalid(format!(
                    "{what} was refused ({detail}): drbot's Kubernetes identity needs RBAC for it"
                )),
                (404, _) => ClusterError::Invalid(
                    super::missing_namespace::missing_namespace(what, &s).unwrap_or_else(|| {
                        format!(
                            "{what}: the API server does not serve it ({detail}); is the operator and its CRD installed?"
                        )
                    }),
                ),
                (400 | 409 | 422, _) => {
                    ClusterError::Invalid(format!("{what} was refused ({detail})"))
                }
                _ => ClusterError::Unavailable(format!("{what} failed ({detail})")),
            }
        }
        other => ClusterError::Unavailable(format!("{what} failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_list_is_generated_from_this_one() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/helm/drbot/files/permissions.yaml"
        );
        let on_disk = std::fs::read_to_string(path).expect("permissions.yaml");
        assert_eq!(
            on_disk,
            permissions_yaml(),
            "deploy/helm/drbot/files/permissions.yaml drifted: run `drbot rbac print > {path}`"
        );
    }

    #[test]
    fn no_wildcard_and_no_delete() {
        for scope in SCOPES {
            for r in scope.rules {
                assert!(!r.resource.contains('*') && !r.group.contains('*'), "{r:?}");
                assert!(r.verbs.iter().all(|v| *v != "*" && *v != "delete"), "{r:?}");
            }
        }
    }

    #[test]
    fn a_refusal_names_the_rule_and_where_to_grant_it() {
        let text = Access::of("patch", Kind::AppProject, Some("argocd")).missing();
        assert!(
            text.contains("may not patch appprojects (API group argoproj.io) in namespace argocd"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"{apiGroups: ["argoproj.io"], resources: ["appprojects"], verbs: ["patch"]}"#
            ),
            "{text}"
        );
        assert!(text.contains("`argocd` ClusterRole"), "{text}");
        assert!(
            text.contains("kubectl auth can-i patch appprojects.argoproj.io -n argocd"),
            "{text}"
        );
        let nodes = Access::of("list", Kind::Node, Some("x")).missing();
        assert!(nodes.contains("cluster-wide"), "{nodes}");
        assert!(nodes.contains("(the core API group)"), "{nodes}");
    }
}

/// One permission to check: a verb on a resource, in a namespace (`None`: cluster-wide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed {
    pub scope: &'static str,
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub namespace: Option<String>,
}

fn push_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for item in items {
        if !item.is_empty() && !list.contains(&item) {
            list.push(item);
        }
    }
}

/// The namespaces of `scope` for these settings (empty: the scope is not used).
pub fn scope_namespaces(settings: &Settings, scope: &str) -> Vec<String> {
    let k = &settings.kubernetes;
    let modes = |m: &str| k.freeze_mode.iter().any(|x| x == m);
    let namespace_of = |entry: &String| entry.split_once('/').map(|(ns, _)| ns.to_string());
    let mut out = Vec::new();
    match scope {
        "velero" => push_unique(&mut out, [k.velero_namespace.clone()]),
        "database" => {
            push_unique(&mut out, [k.database_namespace.clone()]);
            push_unique(&mut out, k.database_namespaces.iter().cloned());
        }
        "drill" => push_unique(&mut out, [settings.safety.drill_namespace.clone()]),
        "argocd" if modes("argocd-window") || modes("argocd-auto-sync") => {
            push_unique(&mut out, [k.argocd_namespace.clone()]);
            if modes("argocd-auto-sync") {
                push_unique(
                    &mut out,
                    k.argocd_applications.iter().filter_map(namespace_of),
                );
            }
        }
        "flux" if modes("flux") => {
            push_unique(
                &mut out,
                k.flux_kustomizations.iter().filter_map(namespace_of),
            );
            push_unique(
                &mut out,
                k.flux_helmreleases.iter().filter_map(namespace_of),
            );
        }
        "core" => {
            push_unique(&mut out, ["kube-system".to_string()]);
            push_unique(&mut out, k.core_namespaces.iter().cloned());
        }
        _ => {}
    }
    out
}

/// Whether the settings make drbot call `rule` (its chart `when`).
fn applies(settings: &Settings, rule: &Rule) -> bool {
    let k = &settings.kubernetes;
    let mode = |m: &str| k.freeze_mode.iter().any(|x| x == m);
    match rule.when {
        None => match rule.resource {
            "kustomizations" => !k.flux_kustomizations.is_empty(),
            "helmreleases" => !k.flux_helmreleases.is_empty(),
            _ => true,
        },
        Some("kubernetes.dsnPasswordFromSecret") => k
            .postgres_dsn_template
            .as_deref()
            .is_some_and(|t| t.contains("{password}")),
        Some("freeze.argocdWindow") => mode("argocd-window"),
        Some("freeze.argocdAutoSync") => mode("argocd-auto-sync"),
        Some(_) => true,
    }
}

/// Every permission these settings need, namespace by namespace.
pub fn needed(settings: &Settings) -> Vec<Needed> {
    let mut out = Vec::new();
    for scope in SCOPES {
        let namespaces: Vec<Option<String>> = if scope.name == "cluster" {
            vec![None]
        } else {
            scope_namespaces(settings, scope.name)
                .into_iter()
                .map(Some)
                .collect()
        };
        for rule in scope.rules.iter().filter(|r| applies(settings, r)) {
            for ns in &namespaces {
                for verb in rule.verbs {
                    out.push(Needed {
                        scope: scope.name,
                        verb,
                        group: rule.group,
                        resource: rule.resource,
                        namespace: ns.clone(),
                    });
                }
            }
        }
    }
    out
}

impl Kube {
    /// The API server's version (`major.minor`, git version).
    pub async fn server_version(&self) -> Result<String, ClusterError> {
        let info = self
            .timed(
                "reading the API server version",
                None,
                self.client.apiserver_version(),
            )
            .await?;
        Ok(format!(
            "{}.{} ({})",
            info.major, info.minor, info.git_version
        ))
    }

    /// The custom resources drbot uses that the API server does not serve at the version
    /// drbot uses, as `plural.group/version`.
    pub async fn missing_resources(&self) -> Result<Vec<String>, ClusterError> {
        let mut missing = Vec::new();
        let mut versions: Vec<(&str, &str)> = Vec::new();
        for kind in Kind::ALL {
            let (group, version, _, _) = kind.gvk();
            if !group.is_empty() && !versions.contains(&(group, version)) {
                versions.push((group, version));
            }
        }
        for (group, version) in versions {
            let api_version = format!("{group}/{version}");
            let served = match self
                .timed(
                    &format!("reading the resources of {api_version}"),
                    None,
                    self.client.list_api_group_resources(&api_version),
                )
                .await
            {
                Ok(list) => list.resources.into_iter().map(|r| r.name).collect(),
                Err(ClusterError::Invalid(_)) => Vec::new(),
                Err(e) => return Err(e),
            };
            for kind in Kind::ALL {
                let (g, v, _, plural) = kind.gvk();
                if g == group && v == version && !served.iter().any(|s| s == plural) {
                    missing.push(format!("{plural}.{api_version}"));
                }
            }
        }
        Ok(missing)
    }

    /// What `kubectl auth can-i` asks: a SelfSubjectAccessReview for `need`.
    pub async fn can(&self, need: &Needed) -> Result<bool, ClusterError> {
        use k8s_openapi::api::authorization::v1::{
            ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
        };
        let (resource, subresource) = match need.resource.split_once('/') {
            Some((r, sub)) => (r, Some(sub)),
            None => (need.resource, None),
        };
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(need.group.to_string()),
                    // `pods/log` is asked as resource `pods`, subresource `log`.
                    resource: Some(resource.to_string()),
                    subresource: subresource.map(str::to_string),
                    verb: Some(need.verb.to_string()),
                    namespace: need.namespace.clone(),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let answer = self
            .timed(
                "asking the API server what drbot may do (SelfSubjectAccessReview)",
                None,
                api.create(&PostParams::default(), &review),
            )
            .await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }
}
