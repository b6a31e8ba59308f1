//! RBAC as the API server enforces it, from the Helm chart as rendered (`deploy/rendered.yaml`):
//! ClusterRoles, RoleBindings and ClusterRoleBindings to drbot's service account. A request no
//! bound rule allows is answered 403 with a Kubernetes `Status`, like a real API server's
//! authorizer; every rule that allowed something is recorded, so a test can show that the
//! chart grants nothing drbot does not use.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::Value;

/// The service account the chart binds (release `drbot` in namespace `drbot`).
pub const SERVICE_ACCOUNT: (&str, &str) = ("drbot", "drbot");

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    pub names: Vec<String>,
}

impl Rule {
    fn allows(&self, verb: &str, group: &str, resource: &str, name: Option<&str>) -> bool {
        let has = |list: &[String], v: &str| list.iter().any(|x| x == v || x == "*");
        has(&self.groups, group)
            && has(&self.resources, resource)
            && has(&self.verbs, verb)
            && (self.names.is_empty() || name.is_some_and(|n| self.names.iter().any(|x| x == n)))
    }
}

#[derive(Clone, Debug)]
struct Role {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
struct Binding {
    /// `None`: a ClusterRoleBinding.
    namespace: Option<String>,
    role: String,
}

/// One verb of one rule of one role, as used: `(role, rule index, verb)`.
pub type RuleId = (String, usize, String);

pub struct Authorizer {
    roles: Mutex<Vec<Role>>,
    bindings: Vec<Binding>,
    used: Mutex<BTreeSet<RuleId>>,
    denied: Mutex<Vec<String>>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn binds_drbot(binding: &Value) -> bool {
    binding["subjects"].as_array().is_some_and(|subjects| {
        subjects.iter().any(|s| {
            s["kind"] == "ServiceAccount"
                && s["name"] == SERVICE_ACCOUNT.1
                && s["namespace"] == SERVICE_ACCOUNT.0
        })
    })
}

impl Authorizer {
    /// From the multi-document YAML of a rendered chart.
    pub fn from_rendered(yaml: &str) -> Authorizer {
        let mut roles = Vec::new();
        let mut bindings = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let value: Value = match serde::Deserialize::deserialize(doc) {
                Ok(v) => v,
                Err(e) => panic!("rendered chart is not YAML: {e}"),
            };
            let kind = value["kind"].as_str().unwrap_or_default();
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match kind {
                "ClusterRole" | "Role" => {
                    assert_eq!(
                        kind, "ClusterRole",
                        "the chart defines rules in ClusterRoles"
                    );
                    let rules = value["rules"]
                        .as_array()
                        .map(|rules| {
                            rules
                                .iter()
                                .map(|r| Rule {
                                    groups: strings(&r["apiGroups"]),
                                    resources: strings(&r["resources"]),
                                    verbs: strings(&r["verbs"]),
                                    names: strings(&r["resourceNames"]),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    roles.push(Role { name, rules });
                }
                "RoleBinding" | "ClusterRoleBinding" if binds_drbot(&value) => {
                    bindings.push(Binding {
                        namespace: (kind == "RoleBinding").then(|| {
                            value["metadata"]["namespace"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string()
                        }),
                        role: value["roleRef"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    });
                }
                _ => {}
            }
        }
        Authorizer {
            roles: Mutex::new(roles),
            bindings,
            used: Mutex::new(BTreeSet::new()),
            denied: Mutex::new(Vec::new()),
        }
    }

    /// The chart as committed (`deploy/rendered.yaml`).
    pub fn from_chart() -> Authorizer {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rendered.yaml");
        let yaml = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Authorizer::from_rendered(&yaml)
    }

    /// Whether drbot may `verb` `resource` of `group` in `namespace` (`None`: cluster-scoped
    /// or all namespaces). Records the rule that allowed it, or the refusal.
    pub fn allows(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> bool {
        let roles = self.roles.lock().unwrap();
        for b in &self.bindings {
            // A RoleBinding grants only in its namespace; a ClusterRoleBinding everywhere.
            if b.namespace.is_some() && b.namespace.as_deref() != namespace {
                continue;
            }
            let Some(role) = roles.iter().find(|r| r.name == b.role) else {
                continue;
            };
            if let Some(i) = role
                .rules
                .iter()
                .position(|r| r.allows(verb, group, resource, name))
            {
                self.used
                    .lock()
                    .unwrap()
                    .insert((role.name.clone(), i, verb.to_string()));
                return true;
            }
        }
        self.denied.lock().unwrap().push(format!(
            "{verb} {resource}.{group} in {}",
            namespace.unwrap_or("(cluster)")
        ));
        false
    }

    /// What a SelfSubjectAccessReview answers: the same decision, not recorded as use.
    pub fn would_allow(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> bool {
        let roles = self.roles.lock().unwrap();
        self.bindings.iter().any(|b| {
            (b.namespace.is_none() || b.namespace.as_deref() == namespace)
                && roles.iter().any(|r| {
                    r.name == b.role
                        && r.rules
                            .iter()
                            .any(|rule| rule.allows(verb, group, resource, None))
                })
        })
    }

    /// Take `verb` off the rule of `role` for `resource` (a chart with that permission missing).
    pub fn revoke(&self, role: &str, resource: &str, verb: &str) {
        let mut roles = self.roles.lock().unwrap();
        let role = roles
            .iter_mut()
            .find(|r| r.name == role)
            .unwrap_or_else(|| panic!("no ClusterRole {role}"));
        let rule = role
            .rules
            .iter_mut()
            .find(|r| r.resources.iter().any(|x| x == resource))
            .unwrap_or_else(|| panic!("no rule for {resource}"));
        rule.verbs.retain(|v| v != verb);
    }

    /// Every (role, rule, verb) the chart grants, as `role: verb resource.group`.
    pub fn granted(&self) -> BTreeSet<String> {
        let roles = self.roles.lock().unwrap();
        let mut out = BTreeSet::new();
        for role in roles.iter() {
            for rule in &role.rules {
                for verb in &rule.verbs {
                    for resource in &rule.resources {
                        for group in &rule.groups {
                            out.insert(format!("{}: {verb} {resource}.{group}", role.name));
                        }
                    }
                }
            }
        }
        out
    }

    pub fn used(&self) -> BTreeSet<RuleId> {
        self.used.lock().unwrap().clone()
    }

    /// Verbs the chart grants that no request needed, as `role: verb resources`.
    pub fn unused(&self) -> Vec<String> {
        let roles = self.roles.lock().unwrap();
        let used = self.used.lock().unwrap();
        let mut out = Vec::new();
        for role in roles.iter() {
            for (i, rule) in role.rules.iter().enumerate() {
                for verb in &rule.verbs {
                    if !used.contains(&(role.name.clone(), i, verb.clone())) {
                        out.push(format!("{}: {verb} {:?}", role.name, rule.resources));
                    }
                }
            }
        }
        out
    }

    pub fn denied(&self) -> Vec<String> {
        self.denied.lock().unwrap().clone()
    }
}
