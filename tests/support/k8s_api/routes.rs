//! HTTP plumbing: `Status` errors, path routing, discovery documents, and the request
//! handler that dispatches to the verbs.

use super::*;

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

/// A `Status` failure object as kube-apiserver sends it.
pub(super) fn status_body(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}

pub(super) fn details(res: &Resource, name: &str) -> Value {
    let mut details = json!({"name": name, "kind": res.plural});
    if !res.group.is_empty() {
        details["group"] = json!(res.group);
    }
    details
}

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Value,
}

impl Reply {
    pub(super) fn ok(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub(super) fn fail(
        code: u16,
        reason: &str,
        message: impl AsRef<str>,
        details: Option<Value>,
    ) -> Reply {
        Reply::ok(code, status_body(code, reason, message.as_ref(), details))
    }

    pub(super) fn not_found(res: &Resource, name: &str) -> Reply {
        Reply::fail(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", res.group_resource()),
            Some(details(res, name)),
        )
    }

    pub(super) fn no_route() -> Reply {
        Reply::fail(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        )
    }

    pub(super) fn bad_request(message: impl AsRef<str>) -> Reply {
        Reply::fail(400, "BadRequest", message, None)
    }

    pub(super) fn conflict(res: &Resource, name: &str) -> Reply {
        Reply::fail(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                res.group_resource()
            ),
            Some(details(res, name)),
        )
    }

    pub(super) fn method_not_allowed() -> Reply {
        Reply::fail(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(json!({})),
        )
    }

    /// What the API server's authorizer answers: `User "…" cannot list resource "pods" in
    /// API group "" in the namespace "db"`.
    pub(super) fn forbidden(target: &Target, verb: &str) -> Reply {
        let (ns, sa) = super::super::rbac::SERVICE_ACCOUNT;
        let res = target.res;
        let place = match &target.namespace {
            Some(n) => format!(" in the namespace \"{n}\""),
            None => " at the cluster scope".to_string(),
        };
        let message = format!(
            "{} is forbidden: User \"system:serviceaccount:{ns}:{sa}\" cannot {verb} resource \"{}\" in API group \"{}\"{place}",
            match &target.name {
                Some(name) => format!("{} \"{name}\"", res.group_resource()),
                None => res.group_resource(),
            },
            res.plural,
            res.group,
        );
        Reply::ok(
            403,
            status_body(
                403,
                "Forbidden",
                &message,
                Some(details(res, target.name.as_deref().unwrap_or(""))),
            ),
        )
    }

    pub(super) fn injected(res: &Resource, name: &str, code: u16) -> Reply {
        let (reason, message) = match code {
            409 => {
                return Reply::conflict(res, name);
            }
            429 => (
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            ),
            500 => ("InternalError", "Internal error occurred: injected failure"),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted",
            ),
            403 => ("Forbidden", "forbidden: injected failure"),
            404 => return Reply::not_found(res, name),
            410 => ("Expired", "too old resource version"),
            _ => ("", "injected failure"),
        };
        let mut details = details(res, name);
        if code == 429 {
            details["retryAfterSeconds"] = json!(1);
        }
        let mut reply = Reply::fail(code, reason, message, Some(details));
        if code == 429 {
            reply.headers.push(("retry-after", "1".to_string()));
        }
        reply
    }

    pub(super) fn into_response(self) -> Response {
        json_response(self.status, &self.headers, &self.body)
    }
}

/// What a path addresses.
pub(super) struct Target {
    pub(super) res: &'static Resource,
    /// `None`: all namespaces (namespaced collections) or cluster-scoped.
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) status: bool,
}

pub(super) enum Route {
    Discovery(Value),
    Resource(Target),
    NotFound,
}

pub(super) fn route(path: &str, origin: &str) -> Route {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["version"] => return Route::Discovery(version_info()),
        ["api"] => return Route::Discovery(api_versions(origin)),
        ["apis"] => return Route::Discovery(api_groups()),
        ["apis", group] => {
            return match api_group(group) {
                Some(g) => Route::Discovery(g),
                None => Route::NotFound,
            };
        }
        ["api", "v1"] => return Route::Discovery(api_resources("", "v1")),
        ["apis", group, version] => {
            return match RESOURCES
                .iter()
                .any(|r| r.group == *group && r.version == *version)
            {
                true => Route::Discovery(api_resources(group, version)),
                false => Route::NotFound,
            };
        }
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Route::NotFound,
    };
    let target = |plural: &str, namespace: Option<&str>, name: Option<&str>, status: bool| {
        let res = Resource::get(group, version, plural)?;
        if namespace.is_some() && !res.namespaced {
            return None;
        }
        if name.is_some() && res.namespaced && namespace.is_none() {
            return None;
        }
        Some(Route::Resource(Target {
            res,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            status,
        }))
    };
    let found = match rest {
        [plural] => target(plural, None, None, false),
        [plural, name] => target(plural, None, Some(name), false),
        [plural, name, "status"] => target(plural, None, Some(name), true),
        ["namespaces", ns, plural] => target(plural, Some(ns), None, false),
        ["namespaces", ns, plural, name] => target(plural, Some(ns), Some(name), false),
        ["namespaces", ns, plural, name, "status"] => target(plural, Some(ns), Some(name), true),
        _ => None,
    };
    found.unwrap_or(Route::NotFound)
}

pub(super) fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": SERVER_MINOR,
        "emulationMajor": "1",
        "emulationMinor": SERVER_MINOR,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": format!("v1.{SERVER_MINOR}.0"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(super) fn api_versions(origin: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{
            "clientCIDR": "0.0.0.0/0",
            "serverAddress": origin.trim_start_matches("http://"),
        }],
    })
}

pub(super) fn api_group(group: &str) -> Option<Value> {
    let mut versions: Vec<&str> = RESOURCES
        .iter()
        .filter(|r| r.group == group && !group.is_empty())
        .map(|r| r.version)
        .collect();
    versions.dedup();
    let preferred = *versions.first()?;
    Some(json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect::<Vec<_>>(),
        "preferredVersion": {"groupVersion": format!("{group}/{preferred}"), "version": preferred},
    }))
}

pub(super) fn api_groups() -> Value {
    let mut names: Vec<&str> = RESOURCES
        .iter()
        .map(|r| r.group)
        .filter(|g| !g.is_empty())
        .collect();
    names.dedup();
    let groups: Vec<Value> = names
        .iter()
        .filter_map(|g| {
            let mut group = api_group(g)?;
            let map = group.as_object_mut()?;
            map.remove("kind");
            map.remove("apiVersion");
            Some(group)
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(super) fn api_resources(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.kind.to_lowercase(),
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        }));
        if r.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

/// `kubectl auth can-i`: every identity may ask what it may do. Without RBAC enforced,
/// everything is allowed.
pub(super) fn self_subject_access_review(shared: &Shared, review: &Value) -> Reply {
    let attrs = &review["spec"]["resourceAttributes"];
    let s = |k: &str| attrs[k].as_str().unwrap_or_default().to_string();
    if review["kind"] != "SelfSubjectAccessReview" || !attrs.is_object() {
        return Reply::ok(
            400,
            status_body(
                400,
                "BadRequest",
                "expected a SelfSubjectAccessReview with spec.resourceAttributes",
                None,
            ),
        );
    }
    let namespace = attrs["namespace"].as_str().filter(|n| !n.is_empty());
    let allowed = shared.authorizer.lock().unwrap().as_ref().is_none_or(|a| {
        let resource = match s("subresource") {
            sub if sub.is_empty() => s("resource"),
            sub => format!("{}/{sub}", s("resource")),
        };
        a.would_allow(&s("verb"), &s("group"), &resource, namespace)
    });
    let mut answer = review.clone();
    answer["status"] = json!({ "allowed": allowed });
    Reply::ok(201, answer)
}

pub(super) async fn handle(
    shared: Arc<Shared>,
    (method, uri, headers, body): Incoming,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&query).unwrap_or_default();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body_value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let mut req = Req {
        method: method.to_string(),
        path: path.clone(),
        query,
        content_type: content_type.clone(),
        body: body_value.clone(),
        verb: "unknown".into(),
        resource: String::new(),
        status_subresource: false,
        status: 0,
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    if path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" && method == Method::POST {
        req.verb = "create".into();
        req.resource = "selfsubjectaccessreviews".into();
        let reply = self_subject_access_review(&shared, &body_value);
        req.status = reply.status;
        shared.recorder.push(req);
        return reply.into_response();
    }
    // `pods/{name}/log`: what the StackGres emulator's containers wrote.
    if let Some(reply) =
        super::super::stackgres_controller::pod_log_route(&path, &shared.origin, |n, p| {
            let authorizer = shared.authorizer.lock().unwrap().clone();
            authorizer.is_none_or(|a| a.allows("get", "", "pods/log", Some(n), Some(p)))
        })
    {
        (req.verb, req.resource, req.status) =
            ("get".into(), "pods/log".into(), reply.status().as_u16());
        shared.recorder.push(req);
        return reply;
    }
    let target = match route(&path, &shared.origin) {
        Route::Discovery(body) => {
            req.verb = "discovery".into();
            let reply = if method == Method::GET {
                Reply::ok(200, body)
            } else {
                Reply::method_not_allowed()
            };
            req.status = reply.status;
            shared.recorder.push(req);
            return reply.into_response();
        }
        Route::NotFound => {
            let reply = Reply::no_route();
            req.status = reply.status;
            shared.recorder.push(req);
            return reply.into_response();
        }
        Route::Resource(target) => target,
    };
    let watch = matches!(param("watch"), Some("true" | "1"));
    let verb = match (&method, target.name.is_some()) {
        (&Method::GET, false) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::GET, true) => "get",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        _ => "unknown",
    };
    req.verb = verb.into();
    req.resource = target.res.plural.into();
    req.status_subresource = target.status;

    let authorizer = shared.authorizer.lock().unwrap().clone();
    let forbidden = authorizer.is_some_and(|a| {
        !a.allows(
            verb,
            target.res.group,
            target.res.plural,
            target.namespace.as_deref(),
            target.name.as_deref(),
        )
    });
    let injected = shared
        .world
        .lock()
        .unwrap()
        .take_failure(verb, target.res.plural);
    let reply = if forbidden {
        Reply::forbidden(&target, verb)
    } else if let Some(code) = injected {
        Reply::injected(target.res, target.name.as_deref().unwrap_or(""), code)
    } else if target.status && !target.res.status_subresource {
        Reply::no_route()
    } else if target.status && !matches!(verb, "get" | "update" | "patch") {
        Reply::method_not_allowed()
    } else {
        let call = Call {
            shared: &shared,
            target: &target,
            params: &params,
        };
        match verb {
            "watch" => match call.watch() {
                Ok(response) => {
                    req.status = 200;
                    shared.recorder.push(req);
                    return response;
                }
                Err(reply) => reply,
            },
            "list" => call.list(),
            "get" => call.get(),
            "create" => call.create(&body_value),
            "update" => call.update(&body_value),
            "patch" => call.patch(content_type.as_deref(), &body_value, &body),
            "delete" => call.delete(),
            _ => Reply::method_not_allowed(),
        }
    };
    req.status = reply.status;
    shared.recorder.push(req);
    reply.into_response()
}
