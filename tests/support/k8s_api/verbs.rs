//! The verbs on one addressed resource: GET, LIST, DELETE, CREATE, PUT, PATCH, apply.

use super::*;

pub(super) struct Call<'a> {
    pub(super) shared: &'a Arc<Shared>,
    pub(super) target: &'a Target,
    pub(super) params: &'a [(String, String)],
}

impl Call<'_> {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn res(&self) -> &'static Resource {
        self.target.res
    }

    pub(super) fn namespace(&self) -> &str {
        self.target.namespace.as_deref().unwrap_or("")
    }

    pub(super) fn name(&self) -> &str {
        self.target.name.as_deref().unwrap_or("")
    }

    pub(super) fn dry_run(&self) -> bool {
        self.params.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }

    pub(super) fn selectors(&self) -> Result<Selectors, Reply> {
        let labels = parse_label_selector(self.param("labelSelector").unwrap_or(""))
            .map_err(|e| Reply::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = parse_field_selector(self.res(), self.param("fieldSelector").unwrap_or(""))
            .map_err(Reply::bad_request)?;
        Ok(Selectors { labels, fields })
    }

    pub(super) fn in_scope(&self, namespace: &str) -> bool {
        match &self.target.namespace {
            Some(ns) => ns == namespace,
            None => true,
        }
    }

    pub(super) fn get(&self) -> Reply {
        let world = self.shared.world.lock().unwrap();
        match world
            .objects
            .get(&self.res().key(self.namespace(), self.name()))
        {
            Some(object) => Reply::ok(200, object.clone()),
            None => Reply::not_found(self.res(), self.name()),
        }
    }

    pub(super) fn list(&self) -> Reply {
        let selectors = match self.selectors() {
            Ok(s) => s,
            Err(reply) => return reply,
        };
        let world = self.shared.world.lock().unwrap();
        let res = self.res();
        let matching: Vec<Value> = world
            .objects
            .iter()
            .filter(|((p, ns, _), object)| {
                *p == res.plural && self.in_scope(ns) && selectors.matches(object)
            })
            .map(|(_, object)| list_item(res, object))
            .collect();
        let start: usize = match self.param("continue") {
            Some(token) if !token.is_empty() => match token.parse() {
                Ok(n) => n,
                Err(_) => return Reply::bad_request("continue key is not valid"),
            },
            _ => 0,
        };
        let limit = self
            .param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let end = limit.map_or(matching.len(), |l| (start + l).min(matching.len()));
        let items: Vec<Value> = matching
            .get(start.min(matching.len())..end)
            .unwrap_or_default()
            .to_vec();
        let mut metadata = json!({"resourceVersion": world.rv.to_string()});
        if end < matching.len() {
            metadata["continue"] = json!(end.to_string());
            metadata["remainingItemCount"] = json!(matching.len() - end);
        }
        Reply::ok(
            200,
            json!({
                "kind": format!("{}List", res.kind),
                "apiVersion": res.api_version(),
                "metadata": metadata,
                "items": items,
            }),
        )
    }

    pub(super) fn delete(&self) -> Reply {
        let res = self.res();
        let key = res.key(self.namespace(), self.name());
        let mut world = self.shared.world.lock().unwrap();
        if self.dry_run() {
            return match world.objects.get(&key) {
                Some(object) => Reply::ok(200, object.clone()),
                None => Reply::not_found(res, self.name()),
            };
        }
        match world.remove(res, key) {
            Some(object) => {
                drop(world);
                self.shared.changed.notify_waiters();
                Reply::ok(200, object)
            }
            None => Reply::not_found(res, self.name()),
        }
    }
}

impl Call<'_> {
    pub(super) fn create(&self, body: &Value) -> Reply {
        let res = self.res();
        if res.namespaced && self.target.namespace.is_none() {
            return Reply::method_not_allowed();
        }
        if let Err(reply) = self.check_type(body) {
            return reply;
        }
        match self.create_object(body.clone(), "create") {
            Ok(object) => Reply::ok(201, object),
            Err(reply) => reply,
        }
    }

    /// Shared by POST and by server-side apply of an object that does not exist.
    pub(super) fn create_object(&self, mut object: Value, verb: &str) -> Result<Value, Reply> {
        let res = self.res();
        let namespace = self.namespace().to_string();
        {
            let m = meta(&mut object);
            if res.namespaced {
                match m.get("namespace").and_then(Value::as_str) {
                    Some(ns) if !ns.is_empty() && ns != namespace => {
                        return Err(Reply::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request",
                        ));
                    }
                    _ => {
                        m.insert("namespace".into(), json!(namespace));
                    }
                }
            } else {
                m.remove("namespace");
            }
            for field in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
            ] {
                m.remove(field);
            }
            m.insert("generation".into(), json!(1));
        }
        if res.status_subresource
            && let Some(map) = object.as_object_mut()
        {
            map.remove("status");
        }
        let mut world = self.shared.world.lock().unwrap();
        let name = match str_at(&object, "/metadata/name").filter(|n| !n.is_empty()) {
            Some(name) => name,
            None => match str_at(&object, "/metadata/generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => {
                    let suffix = format!("{:05x}", (world.uids * 7919 + world.rv) % 0xfffff);
                    let name = format!("{prefix}{suffix}");
                    meta(&mut object).insert("name".into(), json!(name));
                    name
                }
                None => {
                    let errors = vec![
                        "metadata.name: Required value: name or generateName is required"
                            .to_string(),
                    ];
                    return Err(self.refuse(&mut world, verb, "", object, errors));
                }
            },
        };
        let mut errors = name_errors(res, &name);
        if errors.is_empty() {
            errors = self.admit(&mut world, verb, &mut object);
        }
        if !errors.is_empty() {
            return Err(self.refuse(&mut world, verb, &name, object, errors));
        }
        let key = res.key(&namespace, &name);
        if world.objects.contains_key(&key) {
            return Err(Reply::fail(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", res.group_resource()),
                Some(details(res, &name)),
            ));
        }
        if self.dry_run() {
            let m = meta(&mut object);
            m.insert(
                "uid".into(),
                json!(format!("00000000-0000-4000-9000-{:012x}", world.uids + 1)),
            );
            m.insert("creationTimestamp".into(), json!(now()));
            return Ok(object);
        }
        let stored = world.store_new(res, key, object);
        drop(world);
        self.shared.changed.notify_waiters();
        self.run_hooks(&stored);
        Ok(stored)
    }

    pub(super) fn run_hooks(&self, stored: &Value) {
        let hooks: Vec<Arc<Hook>> = self
            .shared
            .hooks
            .lock()
            .unwrap()
            .get(self.res().plural)
            .cloned()
            .unwrap_or_default();
        for hook in hooks {
            for extra in hook(stored) {
                put_object(self.shared, extra);
            }
        }
    }
}

impl Call<'_> {
    /// Store `proposed` as the new state of an existing object (PUT / PATCH result).
    pub(super) fn commit(&self, verb: &str, previous: Value, proposed: Value) -> Reply {
        let res = self.res();
        let name = self.name().to_string();
        let mut object = if self.target.status {
            // Only status changes through the status subresource.
            let mut object = previous.clone();
            object["status"] = proposed.get("status").cloned().unwrap_or(Value::Null);
            if object["status"].is_null()
                && let Some(map) = object.as_object_mut()
            {
                map.remove("status");
            }
            object
        } else {
            let mut object = proposed;
            if res.status_subresource {
                match previous.get("status") {
                    Some(status) => object["status"] = status.clone(),
                    None => {
                        if let Some(map) = object.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
            object
        };
        if !object.is_object() {
            return Reply::bad_request("the patched object is not a JSON object");
        }
        // Identity and server-owned metadata stay.
        object["apiVersion"] = json!(res.api_version());
        object["kind"] = json!(res.kind);
        let generation = next_generation(res, &previous, &object);
        {
            let m = meta(&mut object);
            for field in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "resourceVersion",
            ] {
                match previous["metadata"].get(field) {
                    Some(v) => m.insert(field.into(), v.clone()),
                    None => m.remove(field),
                };
            }
            m.insert("generation".into(), json!(generation));
        }
        let mut world = self.shared.world.lock().unwrap();
        let errors = self.admit(&mut world, verb, &mut object);
        if !errors.is_empty() {
            return self.refuse(&mut world, verb, &name, object, errors);
        }
        if object == previous || self.dry_run() {
            return Reply::ok(200, object);
        }
        let key = res.key(self.namespace(), &name);
        if world.objects.get(&key) != Some(&previous) {
            return Reply::conflict(res, &name);
        }
        let stored = world.store_modified(res, key, object, previous);
        drop(world);
        self.shared.changed.notify_waiters();
        Reply::ok(200, stored)
    }

    pub(super) fn current(&self) -> Option<Value> {
        self.shared
            .world
            .lock()
            .unwrap()
            .objects
            .get(&self.res().key(self.namespace(), self.name()))
            .cloned()
    }

    /// An optimistic-concurrency `metadata.resourceVersion` in a body that is not current.
    pub(super) fn stale(&self, body: &Value, previous: &Value) -> bool {
        match body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            Some(rv) if !rv.is_empty() => previous["metadata"]["resourceVersion"] != json!(rv),
            _ => false,
        }
    }

    pub(super) fn update(&self, body: &Value) -> Reply {
        let res = self.res();
        if let Err(reply) = self.check_type(body) {
            return reply;
        }
        if str_at(body, "/metadata/name").as_deref() != Some(self.name()) {
            return Reply::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({})",
                str_at(body, "/metadata/name").unwrap_or_default(),
                self.name()
            ));
        }
        let Some(previous) = self.current() else {
            return Reply::not_found(res, self.name());
        };
        if body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            let errors = vec![
                "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
                    .to_string(),
            ];
            let mut world = self.shared.world.lock().unwrap();
            return self.refuse(&mut world, "update", self.name(), body.clone(), errors);
        }
        if self.stale(body, &previous) {
            return Reply::conflict(res, self.name());
        }
        self.commit("update", previous, body.clone())
    }

    pub(super) fn patch(&self, content_type: Option<&str>, body: &Value, raw: &Bytes) -> Reply {
        let res = self.res();
        let media = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let accepted = "accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";
        match media.as_str() {
            "application/merge-patch+json" | "application/json-patch+json" => {}
            "application/strategic-merge-patch+json" if !res.custom => {}
            "application/apply-patch+yaml" => return self.apply(body, raw),
            _ => {
                return Reply::fail(
                    415,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format - {accepted}"),
                    None,
                );
            }
        }
        let Some(previous) = self.current() else {
            return Reply::not_found(res, self.name());
        };
        let mut object = previous.clone();
        if media == "application/json-patch+json" {
            let Some(ops) = body.as_array() else {
                return Reply::bad_request(
                    "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
                );
            };
            if let Err(e) = json_patch(&mut object, ops) {
                return Reply::fail(422, "Invalid", e, None);
            }
        } else {
            if !body.is_object() {
                return Reply::bad_request("the body of the request is not a JSON object");
            }
            if self.stale(body, &previous) {
                return Reply::conflict(res, self.name());
            }
            // Strategic merge (core types only) is treated as a JSON merge patch.
            merge_patch(&mut object, body);
        }
        self.commit("patch", previous, object)
    }

    /// Server-side apply, as a merge patch; creates the object when it does not exist.
    pub(super) fn apply(&self, body: &Value, raw: &Bytes) -> Reply {
        let res = self.res();
        if !self
            .params
            .iter()
            .any(|(k, v)| k == "fieldManager" && !v.is_empty())
        {
            let mut world = self.shared.world.lock().unwrap();
            let errors =
                vec!["fieldManager: Required value: is required for apply patch".to_string()];
            let mut reply = self.refuse(&mut world, "patch", self.name(), body.clone(), errors);
            reply.body["message"] = json!(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
            );
            return reply;
        }
        if !body.is_object() {
            return Reply::bad_request(format!(
                "error decoding YAML: the apply body is not a JSON object: {}",
                String::from_utf8_lossy(raw)
            ));
        }
        if let Err(reply) = self.check_type(body) {
            return reply;
        }
        if str_at(body, "/metadata/name").as_deref() != Some(self.name()) {
            return Reply::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({})",
                str_at(body, "/metadata/name").unwrap_or_default(),
                self.name()
            ));
        }
        match self.current() {
            None => match self.create_object(body.clone(), "patch") {
                Ok(object) => Reply::ok(201, object),
                Err(reply) => reply,
            },
            Some(previous) => {
                if self.stale(body, &previous) {
                    return Reply::conflict(res, self.name());
                }
                let mut object = previous.clone();
                merge_patch(&mut object, body);
                self.commit("patch", previous, object)
            }
        }
    }
}
