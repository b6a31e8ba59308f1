//! A PagerDuty stand-in on 127.0.0.1: the Events API v2 (`POST /v2/enqueue`,
//! `POST /v2/change/enqueue`) with its body checks and alert de-duplication, counting the
//! notifications each alert sends; the REST API's `GET /oncalls` over a configurable rota and
//! `GET /abilities`; and a V3 webhook signer with incident webhook bodies, for the way back.
//!
//! Upstream, read at these commits (paths below are relative to them):
//! - PagerDuty/api-schema `91a06fb3` (2026-08-14): `reference/events-v2/openapiv3.json` ("EV2"),
//!   `reference/REST/openapiv3.json` ("REST").
//! - PagerDuty/developer-docs `94224391` (2026-08-19): `docs/events-API-v2/*.md`,
//!   `docs/REST-API/*.md`, `docs/webhooks/*.md`.
//!
//! Point drbot at it with `[paging] events_url = PagerDutyApi::events_url()` and the REST base
//! `PagerDutyApi::base()`. Events and REST share one origin here; upstream they are
//! `events.pagerduty.com/v2` and `api.pagerduty.com`.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::faults::{
    self, Answer, Failure, header, query_pairs, query_value, query_values, scripted,
};
use super::http::{Incoming, Recorder, Server, bind_local, header_pairs, json_response};

/// `docs/events-API-v2/02-Trigger-Events.md` l.17: "the 32 character Integration Key".
pub const ROUTING_KEY_LEN: usize = 32;
/// `02-Trigger-Events.md` l.19.
pub const MAX_DEDUP_KEY: usize = 255;
/// `02-Trigger-Events.md` l.20; `03-Change-Events.md` l.17 for change events.
pub const MAX_SUMMARY: usize = 1024;
/// EV2 `components.schemas.Payload.properties.severity.enum` (l.320-328).
pub const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];
/// EV2 `/enqueue` `event_action.enum` (l.150-157).
pub const EVENT_ACTIONS: &[&str] = &["trigger", "acknowledge", "resolve"];
/// `docs/events-API-v2/01-Overview.md` l.93: "Events API payloads are limited to 512 KB".
pub const MAX_EVENT_BYTES: usize = 512 * 1024;
/// REST `components.parameters.header_Accept` (l.1955) and `docs/REST-API/03-Versioning.md` l.18.
pub const REST_ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

/// Events API endpoints and REST endpoints, as `fail_next` names them.
pub const ENQUEUE: &str = "/v2/enqueue";
pub const CHANGE_ENQUEUE: &str = "/v2/change/enqueue";
pub const ONCALLS: &str = "/oncalls";
pub const ABILITIES: &str = "/abilities";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertStatus {
    Triggered,
    Acknowledged,
    Resolved,
}

/// One alert, as PagerDuty keeps it per service (here: per routing key).
#[derive(Clone, Debug)]
pub struct Alert {
    /// `Q…`-style alert id, unique per alert (a re-trigger after resolve gets a new one).
    pub id: String,
    pub routing_key: String,
    pub dedup_key: String,
    pub status: AlertStatus,
    pub summary: String,
    pub severity: String,
    /// Every trigger applied to this alert, the opening one included.
    pub triggers: u32,
    /// Notifications sent to the on-call: one when the alert opens, none for later triggers.
    pub notifications: u32,
    /// The events applied to it, in order (`trigger`, `acknowledge`, `resolve`).
    pub log: Vec<String>,
}

impl Alert {
    pub fn is_open(&self) -> bool {
        self.status != AlertStatus::Resolved
    }
}

/// What an accepted event did to the alert state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A new alert opened (and its on-call was notified).
    Opened,
    /// Merged into the open alert with the same key: a log entry, no notification.
    Merged,
    Acknowledged,
    Resolved,
    /// Accepted with 202 but applied to nothing (no open alert for this key and routing key).
    Dropped,
    /// A change event was stored.
    Change,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// Top-level event fields the schema does not name (accepted: it does not forbid them).
    pub unknown_fields: Vec<String>,
    /// What broke the API's contract, if anything (also set for accepted calls that sent,
    /// e.g., no `Accept` version header).
    pub problem: Option<String>,
    pub effect: Option<Effect>,
    /// HTTP status sent; 0 when the connection was dropped or the answer is held.
    pub answered: u16,
}

/// One on-call entry of the rota `GET /oncalls` serves.
#[derive(Clone, Debug)]
pub struct OnCall {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub escalation_policy_id: String,
    /// `None` for a user who is an escalation target directly (no schedule).
    pub schedule_id: Option<String>,
    pub escalation_level: u32,
}

pub struct PagerDutyApi {
    shared: Arc<Shared>,
    _server: Server,
}

struct Shared {
    origin: String,
    /// REST API token (`Authorization: Token token=…`).
    rest_token: String,
    recorder: Recorder<Call>,
    world: Mutex<World>,
}

#[derive(Default)]
struct World {
    /// Oldest first.
    alerts: Vec<Alert>,
    changes: Vec<Value>,
    rota: Vec<OnCall>,
    abilities: Vec<String>,
    failures: HashMap<String, VecDeque<Failure>>,
    next: u64,
}

impl PagerDutyApi {
    /// Start on 127.0.0.1:0 with REST token `rest_token`. Must be called inside a tokio
    /// runtime.
    pub fn start(rest_token: &str) -> PagerDutyApi {
        let listener = bind_local();
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            origin,
            rest_token: rest_token.into(),
            recorder: Recorder::new(),
            world: Mutex::new(World {
                // REST `/abilities` response example.
                abilities: [
                    "teams",
                    "read_only_users",
                    "service_support_hours",
                    "urgencies",
                ]
                .map(String::from)
                .to_vec(),
                ..World::default()
            }),
        });
        let server = Server::stand_in(listener, shared.clone(), MAX_EVENT_BYTES, handle);
        PagerDutyApi {
            shared,
            _server: server,
        }
    }

    pub fn base(&self) -> String {
        self.shared.origin.clone()
    }

    /// The alert events endpoint (`https://events.pagerduty.com/v2/enqueue` upstream).
    pub fn events_url(&self) -> String {
        format!("{}{ENQUEUE}", self.shared.origin)
    }

    pub fn change_events_url(&self) -> String {
        format!("{}{CHANGE_ENQUEUE}", self.shared.origin)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.recorder.all()
    }

    /// Wait (bounded by `patience`, never a timing assertion) until the calls satisfy `what`.
    pub async fn wait_for(
        &self,
        what: impl Fn(&[Call]) -> bool,
        patience: Duration,
    ) -> Result<(), String> {
        self.shared.recorder.wait_for(what, patience).await
    }

    /// Every alert ever opened, oldest first.
    pub fn alerts(&self) -> Vec<Alert> {
        self.shared.world.lock().unwrap().alerts.clone()
    }

    pub fn open_alerts(&self) -> Vec<Alert> {
        self.alerts().into_iter().filter(Alert::is_open).collect()
    }

    /// Notifications sent for `dedup_key`, over every alert and routing key that used it.
    pub fn notifications(&self, dedup_key: &str) -> u32 {
        self.alerts()
            .iter()
            .filter(|a| a.dedup_key == dedup_key)
            .map(|a| a.notifications)
            .sum()
    }

    /// Notifications sent for `dedup_key` on the service of `routing_key`.
    pub fn notifications_for(&self, routing_key: &str, dedup_key: &str) -> u32 {
        self.alerts()
            .iter()
            .filter(|a| a.routing_key == routing_key && a.dedup_key == dedup_key)
            .map(|a| a.notifications)
            .sum()
    }

    /// Change events received, oldest first.
    pub fn change_events(&self) -> Vec<Value> {
        self.shared.world.lock().unwrap().changes.clone()
    }

    /// Who is on call, as `GET /oncalls` will list it (in this order).
    pub fn set_rota(&self, rota: Vec<OnCall>) {
        self.shared.world.lock().unwrap().rota = rota;
    }

    pub fn set_abilities(&self, abilities: &[&str]) {
        self.shared.world.lock().unwrap().abilities =
            abilities.iter().map(|a| a.to_string()).collect();
    }

    /// Fail the next call to `path` ([`ENQUEUE`], [`CHANGE_ENQUEUE`], [`ONCALLS`],
    /// [`ABILITIES`]) this way.
    pub fn fail_next(&self, path: &str, failure: Failure) {
        self.shared
            .world
            .lock()
            .unwrap()
            .failures
            .entry(path.to_string())
            .or_default()
            .push_back(failure);
    }
}

// ---------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------

async fn handle(shared: Arc<Shared>, (method, uri, headers, body): Incoming) -> Response {
    let path = uri.path().to_string();
    let call = Call {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().map(str::to_string),
        headers: header_pairs(&headers),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        unknown_fields: Vec::new(),
        problem: None,
        effect: None,
        answered: 0,
    };
    let failure = shared
        .world
        .lock()
        .unwrap()
        .failures
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    let recorder = &shared.recorder;
    scripted(
        failure,
        call,
        |call| recorder.push(call),
        |failure| refuse(&path, failure),
        |call| match (method.clone(), path.as_str()) {
            (Method::POST, ENQUEUE) => enqueue(&shared, &body, call),
            (Method::POST, CHANGE_ENQUEUE) => change_enqueue(&shared, &body, call),
            (Method::GET, ONCALLS) => rest(&shared, &headers, call, |w| oncalls(w, &uri)),
            (Method::GET, ABILITIES) => rest(&shared, &headers, call, |w| {
                (200, vec![], json!({ "abilities": w.abilities }))
            }),
            _ => rest_error(404, 2100, "Not Found"),
        },
    )
    .await
}

/// The answer to a scripted failure that applies nothing.
fn refuse(path: &str, failure: Failure) -> Response {
    match failure {
        Failure::RateLimited {
            status,
            retry_after_secs,
        } => {
            let body = if path.starts_with("/v2/") {
                // `docs/events-API-v2/05-Rate-Limits.md`: "429 - Request Limit Exceeded and
                // PagerDuty will not ingest the event". The body's wording is unverified.
                json!({ "status": "throttle event", "message": "Request Limit Exceeded" })
            } else {
                // `docs/REST-API/14-Errors.md` l.92: code 2020 "Rate Limit Exceeded".
                json!({ "error": { "message": "Rate Limit Exceeded", "code": 2020 } })
            };
            // Whether PagerDuty sends Retry-After is unverified; tests choose.
            json_response(status, &faults::retry_after(retry_after_secs), &body)
        }
        Failure::ServerError(status) => faults_text(status),
        applied => panic!("{applied:?} applies the call"),
    }
}

fn faults_text(status: u16) -> Response {
    super::http::text_response(status, "Internal Server Error")
}

// ---------------------------------------------------------------------------------------
// Events API v2
// ---------------------------------------------------------------------------------------

/// EV2 `/enqueue` request body properties (l.142-177). The schema sets no
/// `additionalProperties`, so other fields are allowed (OpenAPI 3.0 default); they are
/// recorded, not refused.
const EVENT_FIELDS: &[&str] = &[
    "payload",
    "routing_key",
    "event_action",
    "dedup_key",
    "client",
    "client_url",
    "links",
    "images",
];
/// EV2 `/change/enqueue` request body properties (l.36-50).
const CHANGE_FIELDS: &[&str] = &["payload", "routing_key", "links", "images"];

/// The documented 400 answer. Body shape: EV2 `components.responses.Error` (l.421-463);
/// status/message texts as PagerDuty's "send an event" page shows them for a bad routing
/// key (docs page, quoted in the paging reference; not in the schema repo).
fn invalid_event(errors: Vec<String>) -> Answer {
    (
        400,
        vec![],
        json!({
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": errors,
        }),
    )
}

fn parse_event(body: &[u8]) -> Result<Map<String, Value>, Answer> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        // EV2 `components.responses.Error` example (l.449-458).
        _ => Err((
            400,
            vec![],
            json!({
                "status": "Unrecognized object",
                "message": "Event object format is unrecognized",
                "errors": ["JSON parse error"],
            }),
        )),
    }
}

fn check_routing_key(event: &Map<String, Value>, errors: &mut Vec<String>) {
    // EV2 `/enqueue` `required: [routing_key, event_action]` (l.178-181); the length rule is
    // `02-Trigger-Events.md` l.17 and the message the docs page's 400 example.
    match event.get("routing_key").and_then(Value::as_str) {
        None => errors.push("'routing_key' is missing or blank".into()), // wording unverified
        Some(key) if key.chars().count() != ROUTING_KEY_LEN => {
            errors.push("Length of 'routing_key' is incorrect (should be 32 characters)".into())
        }
        Some(_) => {}
    }
}

/// Links (EV2 `Links`, l.285-306: `href` required) and images (EV2 `Images`, l.249-284:
/// `src` required).
fn check_context(event: &Map<String, Value>, errors: &mut Vec<String>) {
    for (field, required) in [("links", "href"), ("images", "src")] {
        let Some(list) = event.get(field) else {
            continue;
        };
        let Some(items) = list.as_array() else {
            errors.push(format!("'{field}' must be an array"));
            continue;
        };
        for item in items {
            if !item.get(required).is_some_and(Value::is_string) {
                errors.push(format!("'{field}' item is missing '{required}'"));
            }
        }
    }
}

fn check_summary(payload: &Map<String, Value>, errors: &mut Vec<String>) {
    match payload.get("summary").and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() && s.chars().count() <= MAX_SUMMARY => {}
        Some(s) if !s.trim().is_empty() => {
            errors.push("'payload.summary' is too long (maximum is 1024 characters)".into())
        }
        _ => errors.push("'payload.summary' is missing or blank".into()),
    }
}

/// A valid alert event: action, routing key, dedup key if any, payload if a trigger.
type Checked = (String, String, Option<String>, Map<String, Value>);

/// Check an alert event as the schema and `02-Trigger-Events.md` say; Ok is (action,
/// routing key, dedup key if any, payload if trigger).
fn check_event(event: &Map<String, Value>) -> Result<Checked, Vec<String>> {
    let mut errors = Vec::new();
    check_routing_key(event, &mut errors);
    let action = event.get("event_action").and_then(Value::as_str);
    if !action.is_some_and(|a| EVENT_ACTIONS.contains(&a)) {
        errors.push("'event_action' is invalid (must be trigger, acknowledge or resolve)".into());
    }
    // EV2 `dedup_key` description (l.158-161): "Required unless the event_type is trigger";
    // length from `02-Trigger-Events.md` l.19.
    match event.get("dedup_key") {
        None | Some(Value::Null) if action != Some("trigger") => {
            errors.push("'dedup_key' is required for acknowledge and resolve events".into())
        }
        None | Some(Value::Null) => {}
        Some(Value::String(k)) if k.chars().count() > MAX_DEDUP_KEY => {
            errors.push("'dedup_key' is too long (maximum is 255 characters)".into())
        }
        Some(Value::String(_)) => {}
        Some(_) => errors.push("'dedup_key' must be a string".into()),
    }
    let mut payload = Map::new();
    if action == Some("trigger") {
        // `02-Trigger-Events.md` l.20-22: summary, source, severity required for a trigger;
        // EV2 `Payload.required` (l.350-354).
        match event.get("payload").and_then(Value::as_object) {
            None => errors.push("'payload' is required for trigger events".into()),
            Some(p) => {
                payload = p.clone();
                check_summary(p, &mut errors);
                if p.get("source")
                    .and_then(Value::as_str)
                    .is_none_or(|s| s.trim().is_empty())
                {
                    errors.push("'payload.source' is missing or blank".into());
                }
                if p.get("severity")
                    .and_then(Value::as_str)
                    .is_none_or(|s| !SEVERITIES.contains(&s))
                {
                    errors.push(
                        "'payload.severity' is invalid (must be critical, error, warning or info)"
                            .into(),
                    );
                }
                // EV2 `Payload.custom_details` is `type: object` (l.345-348).
                if p.get("custom_details").is_some_and(|d| !d.is_object()) {
                    errors.push("'payload.custom_details' must be an object".into());
                }
            }
        }
    }
    check_context(event, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        action.unwrap_or_default().to_string(),
        event["routing_key"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        event
            .get("dedup_key")
            .and_then(Value::as_str)
            .map(str::to_string),
        payload,
    ))
}

fn unknown_fields(event: &Map<String, Value>, known: &[&str]) -> Vec<String> {
    event
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .cloned()
        .collect()
}

fn enqueue(shared: &Shared, body: &[u8], call: &mut Call) -> Answer {
    let event = match parse_event(body) {
        Ok(event) => event,
        Err(answer) => return answer,
    };
    call.unknown_fields = unknown_fields(&event, EVENT_FIELDS);
    let (action, routing_key, dedup_key, payload) = match check_event(&event) {
        Ok(checked) => checked,
        Err(errors) => return invalid_event(errors),
    };
    let mut world = shared.world.lock().unwrap();
    // `02-Trigger-Events.md` l.39: a trigger without a dedup_key gets a generated UUID.
    let dedup_key = dedup_key.unwrap_or_else(|| uuid_like(&mut world.next));
    let effect = apply_event(&mut world, &action, &routing_key, &dedup_key, &payload);
    call.effect = Some(effect);
    // EV2 `components.responses.Success` example (l.408-416); 202 per `/enqueue` responses.
    (
        202,
        vec![],
        json!({ "status": "success", "message": "Event processed", "dedup_key": dedup_key }),
    )
}

/// Alert de-duplication, `docs/events-API-v2/02-Trigger-Events.md` §Alert De-Duplication
/// (l.33-39) and §Event Action Behavior (l.47-51).
fn apply_event(
    world: &mut World,
    action: &str,
    routing_key: &str,
    dedup_key: &str,
    payload: &Map<String, Value>,
) -> Effect {
    // l.37: later events apply to the open alert only via the routing key of the original
    // trigger. That a trigger via another key opens an alert on that other service (rather
    // than being dropped) is unverified: the docs only say acks/resolves are dropped.
    let open = world
        .alerts
        .iter_mut()
        .find(|a| a.is_open() && a.routing_key == routing_key && a.dedup_key == dedup_key);
    match (action, open) {
        ("trigger", Some(alert)) => {
            // l.49: "a trigger log entry is created on an existing alert"; l.50: an
            // acknowledged incident "won't generate any additional notifications, even if it
            // receives new trigger events". A triggered one is already notifying its
            // escalation: a repeat trigger does not page anyone again.
            alert.triggers += 1;
            alert.log.push("trigger".into());
            Effect::Merged
        }
        ("trigger", None) => {
            // l.35: once resolved, a further trigger with the key "will create a new alert".
            world.next += 1;
            let alert = Alert {
                id: format!("Q{:06}", world.next),
                routing_key: routing_key.into(),
                dedup_key: dedup_key.into(),
                status: AlertStatus::Triggered,
                summary: payload["summary"].as_str().unwrap_or_default().into(),
                severity: payload["severity"].as_str().unwrap_or_default().into(),
                triggers: 1,
                notifications: 1,
                log: vec!["trigger".into()],
            };
            world.alerts.push(alert);
            Effect::Opened
        }
        ("acknowledge", Some(alert)) => {
            alert.status = AlertStatus::Acknowledged;
            alert.log.push("acknowledge".into());
            Effect::Acknowledged
        }
        ("resolve", Some(alert)) => {
            alert.status = AlertStatus::Resolved;
            alert.log.push("resolve".into());
            Effect::Resolved
        }
        // l.35: acknowledge/resolve "without a currently open alert will not create a new
        // one" and for a resolved key "be dropped"; still 202 (the API is asynchronous,
        // `01-Overview.md` l.8) [2nd source in the paging reference].
        _ => Effect::Dropped,
    }
}

fn change_enqueue(shared: &Shared, body: &[u8], call: &mut Call) -> Answer {
    let event = match parse_event(body) {
        Ok(event) => event,
        Err(answer) => return answer,
    };
    call.unknown_fields = unknown_fields(&event, CHANGE_FIELDS);
    let mut errors = Vec::new();
    // EV2 `/change/enqueue` `required: [payload, routing_key]` (l.51-54),
    // `ChangeEventPayload.required: [summary]` (l.378-380); `03-Change-Events.md` l.16-17.
    check_routing_key(&event, &mut errors);
    match event.get("payload").and_then(Value::as_object) {
        None => errors.push("'payload' is required".into()),
        Some(p) => check_summary(p, &mut errors),
    }
    check_context(&event, &mut errors);
    if !errors.is_empty() {
        return invalid_event(errors);
    }
    // EV2 l.28: change events "do not create incidents and do not send notifications".
    shared
        .world
        .lock()
        .unwrap()
        .changes
        .push(Value::Object(event));
    call.effect = Some(Effect::Change);
    (
        202,
        vec![],
        json!({ "status": "success", "message": "Change event processed" }),
    )
}

fn uuid_like(next: &mut u64) -> String {
    *next += 1;
    format!("{:08x}{:024x}", 0x5ac6_4822u32, *next)
}

// ---------------------------------------------------------------------------------------
// REST API
// ---------------------------------------------------------------------------------------

/// `docs/REST-API/14-Errors.md` l.15-26: `{"error":{"message","code","errors"}}`.
fn rest_error(status: u16, code: u32, message: &str) -> Answer {
    (
        status,
        vec![],
        json!({ "error": { "message": message, "code": code } }),
    )
}

/// Authenticate and version-check a REST call, then answer it with `f`.
fn rest(
    shared: &Shared,
    headers: &HeaderMap,
    call: &mut Call,
    f: impl FnOnce(&World) -> Answer,
) -> Answer {
    // `docs/REST-API/02-Authentication.md` l.20-24 and l.120: `Authorization: Token
    // token=<key>`, "must be followed precisely or you will receive a 401"; code 2006
    // "Authentication failed" (`14-Errors.md` l.78).
    let expected = format!("Token token={}", shared.rest_token);
    if header(headers, "authorization") != Some(expected.as_str()) {
        return rest_error(401, 2006, "Authentication failed");
    }
    // REST `header_Accept` is `required: true` (l.1955), but `03-Versioning.md` l.7 says the
    // token picks the version when the header is absent: served, and recorded.
    if header(headers, "accept") != Some(REST_ACCEPT) {
        call.problem = Some(format!(
            "Accept is {:?}, not {REST_ACCEPT}",
            header(headers, "accept")
        ));
    }
    f(&shared.world.lock().unwrap())
}

fn reference(kind: &str, path: &str, id: &str, summary: &str) -> Value {
    json!({
        "id": id,
        "type": format!("{kind}_reference"),
        "summary": summary,
        "self": format!("https://api.pagerduty.com/{path}/{id}"),
        "html_url": format!("https://drbot-test.pagerduty.com/{path}/{id}"),
    })
}

/// `GET /oncalls` (REST `/oncalls` at l.51522, operation `listOnCalls`).
fn oncalls(world: &World, uri: &Uri) -> Answer {
    let pairs = query_pairs(uri.query());
    // REST `include_oncalls` (l.3437): enum escalation_policies, users, schedules.
    let include = query_values(&pairs, "include[]");
    if include
        .iter()
        .any(|i| !["escalation_policies", "users", "schedules"].contains(&i.as_str()))
    {
        return rest_error(400, 2001, "Invalid Input Provided");
    }
    // `docs/REST-API/09-Pagination.md` l.14: default 25, "cannot exceed 100". Whether a
    // larger limit is refused or clamped is unverified; clamped here.
    let limit = match query_value(&pairs, "limit").map(str::parse::<usize>) {
        None => 25,
        Some(Ok(n)) => n.clamp(1, 100),
        Some(Err(_)) => return rest_error(400, 2001, "Invalid Input Provided"),
    };
    let offset = match query_value(&pairs, "offset").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return rest_error(400, 2001, "Invalid Input Provided"),
    };
    // `09-Pagination.md` l.34: offset + limit over 10000 is a 400.
    if offset + limit > 10_000 {
        return rest_error(400, 2001, "Invalid Input Provided");
    }
    let policies = query_values(&pairs, "escalation_policy_ids[]");
    let schedules = query_values(&pairs, "schedule_ids[]");
    let users = query_values(&pairs, "user_ids[]");
    let matching: Vec<&OnCall> = world
        .rota
        .iter()
        .filter(|o| policies.is_empty() || policies.contains(&o.escalation_policy_id))
        .filter(|o| {
            // REST `schedule_ids_oncalls` (l.3478): `null` in the list selects direct
            // (schedule-less) escalation targets.
            schedules.is_empty()
                || match &o.schedule_id {
                    Some(s) => schedules.contains(s),
                    None => schedules.iter().any(|s| s == "null"),
                }
        })
        .filter(|o| users.is_empty() || users.contains(&o.user_id))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|o| oncall_row(o, &include))
        .collect();
    // `09-Pagination.md` l.28-30: `more` always a boolean; `total` null unless `total=true`.
    let total = (query_value(&pairs, "total") == Some("true")).then_some(matching.len());
    (
        200,
        vec![],
        json!({
            "oncalls": page,
            "limit": limit,
            "offset": offset,
            "more": offset + limit < matching.len(),
            "total": total,
        }),
    )
}

/// One row of `GET /oncalls`, shaped like the REST `listOnCalls` response example.
fn oncall_row(o: &OnCall, include: &[String]) -> Value {
    let mut user = reference("user", "users", &o.user_id, &o.name);
    if include.iter().any(|i| i == "users") {
        // `include[]=users` inlines the full user object (type `user`, with `email`).
        user = json!({
            "id": o.user_id,
            "type": "user",
            "summary": o.name,
            "name": o.name,
            "email": o.email,
            "time_zone": "Etc/UTC",
            "role": "user",
            "self": format!("https://api.pagerduty.com/users/{}", o.user_id),
            "html_url": format!("https://drbot-test.pagerduty.com/users/{}", o.user_id),
        });
    }
    let schedule = o
        .schedule_id
        .as_ref()
        .map(|s| reference("schedule", "schedules", s, &format!("Schedule {s}")));
    json!({
        "user": user,
        "schedule": schedule,
        "escalation_policy": reference(
            "escalation_policy",
            "escalation_policies",
            &o.escalation_policy_id,
            &format!("Policy {}", o.escalation_policy_id),
        ),
        "escalation_level": o.escalation_level,
        // Permanent on-calls have null start/end; rota entries here are open-ended.
        "start": null,
        "end": null,
    })
}

// ---------------------------------------------------------------------------------------
// Webhooks V3
// ---------------------------------------------------------------------------------------

/// `X-PagerDuty-Signature` for `body`: `v1=` + hex HMAC-SHA256 per secret, comma-separated
/// (several during a secret rotation). `docs/webhooks/04-Signatures.md` l.15-23, l.36-40.
pub fn pagerduty_signature(secrets: &[&str], body: impl AsRef<[u8]>) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    secrets
        .iter()
        .map(|secret| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes any key");
            mac.update(body.as_ref());
            format!("v1={}", hex::encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Headers of a V3 webhook delivery. `X-Webhook-Id` is `docs/webhooks/02-Behavior.md`
/// l.116 (same value on every retry of one delivery); the `User-Agent` value is unverified.
pub fn pagerduty_webhook_headers(
    secrets: &[&str],
    webhook_id: &str,
    body: impl AsRef<[u8]>,
) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_string()),
        ("User-Agent", "PagerDuty-Webhook/V3.0".to_string()),
        ("X-Webhook-Id", webhook_id.to_string()),
        ("X-PagerDuty-Signature", pagerduty_signature(secrets, body)),
    ]
}

static WEBHOOK_EVENTS: AtomicU64 = AtomicU64::new(1);

/// The incident a V3 webhook is about.
#[derive(Clone, Debug)]
pub struct WebhookIncident {
    /// PagerDuty incident id (`P…`).
    pub id: String,
    pub number: u64,
    pub title: String,
    /// The alert's dedup key, which PagerDuty reports as the incident's `incident_key`.
    pub incident_key: String,
    /// Who acted (`event.agent.summary`), e.g. "Dana Lead".
    pub agent_name: String,
    pub agent_id: String,
    /// ISO 8601, e.g. "2026-12-07T02:30:00.000Z".
    pub occurred_at: String,
}

/// A V3 webhook body for `event_type` (`incident.acknowledged`, `incident.resolved`, …),
/// shaped like the `incident.priority_updated` example of `docs/webhooks/01-Overview.md`
/// l.107-170 (event fields l.93-103); `data.status` follows the event.
pub fn pagerduty_incident_webhook(event_type: &str, incident: &WebhookIncident) -> Value {
    let n = WEBHOOK_EVENTS.fetch_add(1, Ordering::Relaxed);
    let status = match event_type {
        "incident.acknowledged" => "acknowledged",
        "incident.resolved" => "resolved",
        _ => "triggered",
    };
    let user = |id: &str, name: &str| {
        json!({
            "html_url": format!("https://drbot-test.pagerduty.com/users/{id}"),
            "id": id,
            "self": format!("https://api.pagerduty.com/users/{id}"),
            "summary": name,
            "type": "user_reference",
        })
    };
    let assignees = if status == "resolved" {
        json!([])
    } else {
        json!([user(&incident.agent_id, &incident.agent_name)])
    };
    json!({
        "event": {
            "id": format!("5ac64822-4adc-4fda-ade0-{n:012x}"),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": incident.occurred_at,
            "agent": user(&incident.agent_id, &incident.agent_name),
            "client": { "name": "PagerDuty" },
            "data": {
                "id": incident.id,
                "type": "incident",
                "self": format!("https://api.pagerduty.com/incidents/{}", incident.id),
                "html_url": format!("https://drbot-test.pagerduty.com/incidents/{}", incident.id),
                "number": incident.number,
                "status": status,
                "incident_key": incident.incident_key,
                "created_at": incident.occurred_at,
                "title": incident.title,
                "service": reference("service", "services", "PF9KMXH", "drbot test service"),
                "assignees": assignees,
                "escalation_policy": reference(
                    "escalation_policy", "escalation_policies", "PUS0KTE", "Default"),
                "teams": [],
                "priority": null,
                "urgency": "high",
                "conference_bridge": null,
                "resolve_reason": null,
            },
        },
    })
}

impl super::faults::Settled for Call {
    fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }
    fn settle(&mut self, answered: u16, problem: Option<String>) {
        self.answered = answered;
        self.problem = problem;
    }
}
