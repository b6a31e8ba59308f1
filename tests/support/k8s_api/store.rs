//! Object storage: the single resourceVersion counter, uids, generations, and seeding.

use super::*;

// ---------------------------------------------------------------------------------------
// Store operations
// ---------------------------------------------------------------------------------------

impl World {
    pub(super) fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    pub(super) fn next_uid(&mut self) -> String {
        self.uids += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.uids)
    }

    /// Stamp a new object (uid, creationTimestamp, resourceVersion) and store it.
    pub(super) fn store_new(
        &mut self,
        res: &'static Resource,
        key: Key,
        mut object: Value,
    ) -> Value {
        let uid = self.next_uid();
        let rv = self.next_rv();
        let m = meta(&mut object);
        m.entry("uid").or_insert(json!(uid));
        m.entry("creationTimestamp").or_insert(json!(now()));
        m.insert("resourceVersion".into(), json!(rv.to_string()));
        self.objects.insert(key.clone(), object.clone());
        self.events.push(Event {
            rv,
            resource: res,
            namespace: key.1,
            kind: "ADDED",
            object: object.clone(),
            previous: None,
        });
        object
    }

    pub(super) fn store_modified(
        &mut self,
        res: &'static Resource,
        key: Key,
        mut object: Value,
        previous: Value,
    ) -> Value {
        let rv = self.next_rv();
        meta(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        self.objects.insert(key.clone(), object.clone());
        self.events.push(Event {
            rv,
            resource: res,
            namespace: key.1,
            kind: "MODIFIED",
            object: object.clone(),
            previous: Some(previous),
        });
        object
    }

    pub(super) fn remove(&mut self, res: &'static Resource, key: Key) -> Option<Value> {
        let mut object = self.objects.remove(&key)?;
        let rv = self.next_rv();
        meta(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        self.events.push(Event {
            rv,
            resource: res,
            namespace: key.1,
            kind: "DELETED",
            object: object.clone(),
            previous: None,
        });
        Some(object)
    }

    pub(super) fn take_failure(&mut self, verb: &str, plural: &str) -> Option<u16> {
        let at = self
            .failures
            .iter()
            .position(|f| f.plural == plural && f.verbs.contains(&verb))?;
        self.failures.remove(at).map(|f| f.code)
    }
}

pub(super) fn meta(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = json!({});
    }
    let map = object.as_object_mut().expect("object");
    let metadata = map.entry("metadata").or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    metadata.as_object_mut().expect("metadata object")
}

pub(super) fn str_at(object: &Value, pointer: &str) -> Option<String> {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The object without metadata (and without status when status is a subresource): what
/// `metadata.generation` tracks.
pub(super) fn generation_view(res: &Resource, object: &Value) -> Value {
    let mut view = object.clone();
    if let Some(map) = view.as_object_mut() {
        map.remove("metadata");
        if res.status_subresource {
            map.remove("status");
        }
    }
    view
}

pub(super) fn next_generation(res: &Resource, previous: &Value, object: &Value) -> i64 {
    let current = previous["metadata"]["generation"].as_i64().unwrap_or(1);
    if generation_view(res, previous) == generation_view(res, object) {
        current
    } else {
        current + 1
    }
}

/// [`K8sApi::put`], also used for the objects hooks return.
pub(super) fn put_object(shared: &Shared, object: Value) -> Value {
    let res =
        Resource::of(&object).unwrap_or_else(|| panic!("put: no served resource for {object}"));
    let mut object = object;
    let name = str_at(&object, "/metadata/name")
        .unwrap_or_else(|| panic!("put: object without metadata.name: {object}"));
    let namespace = if res.namespaced {
        let ns =
            str_at(&object, "/metadata/namespace").unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        meta(&mut object).insert("namespace".into(), json!(ns));
        ns
    } else {
        meta(&mut object).remove("namespace");
        String::new()
    };
    let stored = {
        let mut world = shared.world.lock().unwrap();
        if let (true, Some(crds)) = (res.custom, shared.crds) {
            for path in crds.prune(&mut object, &shared.releases) {
                world
                    .pruned
                    .push(Pruned::new("put", res.plural, &object, path));
            }
        }
        let key = res.key(&namespace, &name);
        match world.objects.get(&key).cloned() {
            Some(previous) => {
                let m = meta(&mut object);
                for field in ["uid", "creationTimestamp"] {
                    if !m.contains_key(field) {
                        m.insert(field.into(), previous["metadata"][field].clone());
                    }
                }
                if !m.contains_key("generation") {
                    let generation = next_generation(res, &previous, &object);
                    meta(&mut object).insert("generation".into(), json!(generation));
                }
                world.store_modified(res, key, object, previous)
            }
            None => {
                meta(&mut object).entry("generation").or_insert(json!(1));
                world.store_new(res, key, object)
            }
        }
    };
    shared.changed.notify_waiters();
    stored
}
