//! An Atlassian Statuspage REST API v1 stand-in on 127.0.0.1: the incident endpoints drbot
//! calls (`GET|POST /v1/pages/{page_id}/incidents`, `PATCH …/incidents/{incident_id}`),
//! with the checks the real API makes: `Authorization: OAuth <key>`, the page, a JSON
//! `{"incident": {…}}` body with known fields, the realtime statuses, component ids of the
//! page and component statuses, metadata whose top-level values are objects. It keeps the
//! incidents (newest first, updates newest first, as Statuspage lists them), records every
//! call, and can be told to fail the next call of a method after applying it.
//!
//! Point drbot at it with `DRBOT__STATUSPAGE__BASE_URL = StatuspageApi::base()`.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::http::{Incoming, Recorder, Server, bind_local, json_response};

pub const INCIDENT_STATUSES: &[&str] = &["investigating", "identified", "monitoring", "resolved"];
pub const COMPONENT_STATUSES: &[&str] = &[
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
];
const INCIDENT_FIELDS: &[&str] = &[
    "name",
    "status",
    "impact_override",
    "body",
    "deliver_notifications",
    "component_ids",
    "components",
    "metadata",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Apply the call, then answer 500: "did it go through?".
    ReplyAfterApplying,
    /// 500, nothing applied.
    ServerError,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub auth_ok: bool,
    /// What broke the API's contract, if anything.
    pub problem: Option<String>,
    pub answered: u16,
}

pub struct StatuspageApi {
    shared: Arc<Shared>,
    _server: Server,
}

struct Shared {
    key: String,
    page: String,
    components: Vec<String>,
    origin: String,
    recorder: Recorder<Call>,
    world: Mutex<World>,
}

#[derive(Default)]
struct World {
    /// Newest first.
    incidents: Vec<Value>,
    failures: HashMap<String, VecDeque<Failure>>,
    next: u64,
}

impl StatuspageApi {
    /// Start on 127.0.0.1:0 for page `page` with API key `key` and these component ids.
    /// Must be called inside a tokio runtime.
    pub fn start(page: &str, key: &str, components: &[&str]) -> StatuspageApi {
        let listener = bind_local();
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            key: key.into(),
            page: page.into(),
            components: components.iter().map(|c| c.to_string()).collect(),
            origin,
            recorder: Recorder::new(),
            world: Mutex::new(World::default()),
        });
        // axum's own default body limit, which this stand-in has always had.
        let server = Server::stand_in(listener, shared.clone(), 2 * 1024 * 1024, handle);
        StatuspageApi {
            _server: server,
            shared,
        }
    }

    pub fn base(&self) -> String {
        self.shared.origin.clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.recorder.all()
    }

    /// The incidents on the page, newest first.
    pub fn incidents(&self) -> Vec<Value> {
        self.shared.world.lock().unwrap().incidents.clone()
    }

    /// Fail the next `method` (GET, POST, PATCH) call this way.
    pub fn fail_next(&self, method: &str, failure: Failure) {
        self.shared
            .world
            .lock()
            .unwrap()
            .failures
            .entry(method.to_string())
            .or_default()
            .push_back(failure);
    }
}

fn error(status: u16, message: &str) -> Response {
    json_response(status, &[], &json!({ "error": message }))
}

/// Check an `{"incident": …}` body as the API does; `create` needs a name.
fn check_incident(
    body: &Value,
    create: bool,
    components: &[String],
) -> Result<serde_json::Map<String, Value>, String> {
    let Some(incident) = body.get("incident").and_then(Value::as_object) else {
        return Err("body must be {\"incident\": {…}}".into());
    };
    if let Some(unknown) = incident
        .keys()
        .find(|k| !INCIDENT_FIELDS.contains(&k.as_str()))
    {
        return Err(format!("unknown incident field {unknown}"));
    }
    match incident.get("name") {
        Some(Value::String(n)) if !n.is_empty() && n.chars().count() <= 255 => {}
        None if !create => {}
        other => return Err(format!("name must be 1-255 characters, got {other:?}")),
    }
    match incident.get("status").and_then(Value::as_str) {
        Some(s) if INCIDENT_STATUSES.contains(&s) => {}
        other => {
            return Err(format!(
                "status {other:?} is not a realtime incident status"
            ));
        }
    }
    if let Some(b) = incident.get("body")
        && !b.is_string()
    {
        return Err("body must be a string".into());
    }
    if let Some(ids) = incident.get("component_ids") {
        let Some(ids) = ids.as_array() else {
            return Err("component_ids must be an array".into());
        };
        for id in ids {
            match id.as_str() {
                Some(id) if components.iter().any(|c| c == id) => {}
                _ => return Err(format!("component_ids: unknown component {id}")),
            }
        }
    }
    if let Some(map) = incident.get("components") {
        let Some(map) = map.as_object() else {
            return Err("components must be an object".into());
        };
        for (id, status) in map {
            if !components.contains(id) {
                return Err(format!("components: unknown component {id}"));
            }
            if !status
                .as_str()
                .is_some_and(|s| COMPONENT_STATUSES.contains(&s))
            {
                return Err(format!("components: bad status {status} for {id}"));
            }
        }
    }
    if let Some(meta) = incident.get("metadata") {
        let ok = meta
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_object));
        if !ok {
            return Err("metadata: top level values must be objects".into());
        }
    }
    Ok(incident.clone())
}

async fn handle(shared: Arc<Shared>, (method, uri, headers, body): Incoming) -> Response {
    let path = uri.path().to_string();
    let auth_ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("OAuth {}", shared.key));
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut call = Call {
        method: method.to_string(),
        path: path.clone(),
        body: json.clone(),
        auth_ok,
        problem: None,
        answered: 0,
    };
    let (status, reply) = answer(&shared, &method, &uri, &headers, &json, auth_ok);
    if status >= 400 && status != 500 {
        call.problem = reply["error"].as_str().map(str::to_string);
    }
    call.answered = status;
    shared.recorder.push(call);
    json_response(status, &[], &reply)
}

fn answer(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    json: &Value,
    auth_ok: bool,
) -> (u16, Value) {
    let fail = |status: u16, message: &str| (status, json!({ "error": message }));
    if !auth_ok {
        return fail(401, "Could not authenticate");
    }
    let prefix = format!("/v1/pages/{}/incidents", shared.page);
    let Some(rest) = uri.path().strip_prefix(&prefix) else {
        return fail(404, "The requested resource could not be found.");
    };
    let target = rest.strip_prefix('/').filter(|r| !r.is_empty());
    let mut world = shared.world.lock().unwrap();
    let failure = world
        .failures
        .get_mut(method.as_str())
        .and_then(VecDeque::pop_front);
    if failure == Some(Failure::ServerError) {
        return fail(500, "Internal Server Error");
    }
    if *method != Method::GET {
        let json_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json_type {
            return fail(415, "Content-Type must be application/json");
        }
    }
    let now = chrono::Utc::now().to_rfc3339();
    let (status, reply) = match (method.clone(), target) {
        (Method::GET, None) => {
            let limit: usize = uri
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("limit="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(100);
            if limit > 100 {
                return fail(400, "limit must be at most 100");
            }
            (
                200,
                Value::Array(world.incidents.iter().take(limit).cloned().collect()),
            )
        }
        (Method::POST, None) => match check_incident(json, true, &shared.components) {
            Err(why) => return fail(422, &why),
            Ok(incident) => {
                world.next += 1;
                let id = format!("sp{:04}", world.next);
                let stored = json!({
                    "id": id,
                    "page_id": shared.page,
                    "name": incident["name"],
                    "status": incident["status"],
                    "metadata": incident.get("metadata").cloned().unwrap_or(json!({})),
                    "created_at": now,
                    "incident_updates": [{
                        "id": format!("{id}-u1"),
                        "status": incident["status"],
                        "body": incident.get("body").cloned().unwrap_or(json!("")),
                        "created_at": now,
                    }],
                    "components": components_of(&incident, &json!([])),
                });
                world.incidents.insert(0, stored.clone());
                (201, stored)
            }
        },
        (Method::PATCH, Some(id)) => match check_incident(json, false, &shared.components) {
            Err(why) => return fail(422, &why),
            Ok(incident) => {
                let Some(stored) = world.incidents.iter_mut().find(|i| i["id"] == json!(id)) else {
                    return fail(404, "The requested resource could not be found.");
                };
                if let Some(name) = incident.get("name") {
                    stored["name"] = name.clone();
                }
                stored["status"] = incident["status"].clone();
                let n = stored["incident_updates"].as_array().map_or(0, Vec::len) + 1;
                let update = json!({
                    "id": format!("{id}-u{n}"),
                    "status": incident["status"],
                    "body": incident.get("body").cloned().unwrap_or(json!("")),
                    "created_at": now,
                });
                if let Some(updates) = stored["incident_updates"].as_array_mut() {
                    updates.insert(0, update);
                }
                let components = components_of(&incident, &stored["components"]);
                stored["components"] = components;
                (200, stored.clone())
            }
        },
        _ => return fail(405, "Method not allowed"),
    };
    match failure {
        Some(Failure::ReplyAfterApplying) => fail(500, "Internal Server Error"),
        _ => (status, reply),
    }
}

/// The incident's components after an update: the listed ones with their new status.
fn components_of(incident: &serde_json::Map<String, Value>, before: &Value) -> Value {
    let mut list: Vec<Value> = before.as_array().cloned().unwrap_or_default();
    if let Some(map) = incident.get("components").and_then(Value::as_object) {
        for (id, status) in map {
            match list.iter_mut().find(|c| c["id"] == json!(id)) {
                Some(c) => c["status"] = status.clone(),
                None => list.push(json!({ "id": id, "status": status })),
            }
        }
    }
    Value::Array(list)
}
