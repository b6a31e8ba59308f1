//! An Opsgenie alert API stand-in on 127.0.0.1 (also the wire format of Jira Service
//! Management Ops' integration API): create an alert (`POST /v2/alerts`) with alias
//! de-duplication, counting notifications, and close one (`POST /v2/alerts/{id}/close`).
//!
//! Upstream: opsgenie/opsgenie-python-sdk `0d20d231` (2021-08-02) `opsgenie-oas.json` ("OAS"):
//! `/v2/alerts` (l.102), `/v2/alerts/{identifier}/close` (l.574), `securityDefinitions.GenieKey`
//! (l.16), `CreateAlertPayload` (l.4592), `ErrorResponse`/`BaseResponse` (l.4007), parameter
//! `AlertIdentifierType` (l.3668). Field limits and the alias rule are the docs pages
//! `shared/reference/paging.md` §2 quotes (docs.opsgenie.com alert-api, alerts-and-alert-fields).

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::faults::{self, Answer, Failure, header, query_pairs, query_value, scripted};
use super::http::{Incoming, Recorder, Server, bind_local, header_pairs, json_response};

/// The create endpoint, and the name `fail_next` gives every close.
pub const ALERTS: &str = "/v2/alerts";
pub const CLOSE: &str = "close";
/// docs.opsgenie.com "alerts-and-alert-fields": message 130, alias 512, description 15000.
pub const MAX_MESSAGE: usize = 130;
pub const MAX_ALIAS: usize = 512;
pub const MAX_DESCRIPTION: usize = 15_000;
/// OAS `CreateAlertPayload.priority.enum`.
pub const PRIORITIES: &[&str] = &["P1", "P2", "P3", "P4", "P5"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A new alert opened and its responders were notified.
    Opened,
    /// Same alias as an open alert: its count went up, nobody was notified again.
    Counted,
    Closed,
    /// Accepted with 202 (processing is asynchronous) but applied to nothing.
    Dropped,
}

#[derive(Clone, Debug)]
pub struct Alert {
    pub alias: String,
    pub message: String,
    pub description: String,
    pub priority: String,
    pub tags: Vec<String>,
    pub details: Map<String, Value>,
    pub open: bool,
    /// Creates applied to it (OAS: alias "is also the key element of alert deduplication").
    pub count: u32,
    pub notifications: u32,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// As sent, percent-encoded.
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub problem: Option<String>,
    pub effect: Option<Effect>,
    pub answered: u16,
}

pub struct OpsgenieApi {
    shared: Arc<Shared>,
    _server: Server,
}

struct Shared {
    origin: String,
    /// The integration's API key (`Authorization: GenieKey …`).
    key: String,
    recorder: Recorder<Call>,
    world: Mutex<World>,
}

#[derive(Default)]
struct World {
    alerts: Vec<Alert>,
    failures: HashMap<String, VecDeque<Failure>>,
    next: u64,
}

impl OpsgenieApi {
    /// Start on 127.0.0.1:0 taking integration key `key`. Must be called in a tokio runtime.
    pub fn start(key: &str) -> OpsgenieApi {
        let listener = bind_local();
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            origin,
            key: key.into(),
            recorder: Recorder::new(),
            world: Mutex::new(World::default()),
        });
        let server = Server::stand_in(listener, shared.clone(), 1 << 20, handle);
        OpsgenieApi {
            shared,
            _server: server,
        }
    }

    /// `https://api.opsgenie.com/v2/alerts` upstream.
    pub fn alerts_url(&self) -> String {
        format!("{}{ALERTS}", self.shared.origin)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.recorder.all()
    }

    pub fn alerts(&self) -> Vec<Alert> {
        self.shared.world.lock().unwrap().alerts.clone()
    }

    pub fn notifications(&self, alias: &str) -> u32 {
        self.alerts()
            .iter()
            .filter(|a| a.alias == alias)
            .map(|a| a.notifications)
            .sum()
    }

    /// Fail the next create ([`ALERTS`]) or close ([`CLOSE`]) this way.
    pub fn fail_next(&self, which: &str, failure: Failure) {
        self.shared
            .world
            .lock()
            .unwrap()
            .failures
            .entry(which.to_string())
            .or_default()
            .push_back(failure);
    }
}

async fn handle(shared: Arc<Shared>, (method, uri, headers, body): Incoming) -> Response {
    let path = uri.path().to_string();
    let which = if path.ends_with("/close") {
        CLOSE
    } else {
        ALERTS
    };
    let call = Call {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().map(str::to_string),
        headers: header_pairs(&headers),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        problem: None,
        effect: None,
        answered: 0,
    };
    let failure = shared
        .world
        .lock()
        .unwrap()
        .failures
        .get_mut(which)
        .and_then(VecDeque::pop_front);
    let recorder = &shared.recorder;
    scripted(
        failure,
        call,
        |call| recorder.push(call),
        refuse,
        |call| {
            if let Some(refused) = authenticate(&shared, &headers) {
                return refused;
            }
            match (method.clone(), path.as_str()) {
                (Method::POST, ALERTS) => create(&shared, &body, call),
                (Method::POST, p) if p.starts_with("/v2/alerts/") && p.ends_with("/close") => {
                    close(&shared, &uri, call)
                }
                _ => error(404, "Requested resource not found"),
            }
        },
    )
    .await
}

/// OAS `ErrorResponse` (`message`, `code`) over `BaseResponse` (`requestId`, `took` required).
/// The message texts here are unverified.
fn error(status: u16, message: &str) -> Answer {
    (
        status,
        vec![],
        json!({ "message": message, "took": 0.001, "requestId": "5ac64822-0000-4000-8000-000000000000" }),
    )
}

fn refuse(failure: Failure) -> Response {
    match failure {
        Failure::RateLimited {
            status,
            retry_after_secs,
        } => {
            // OAS `responses.TooManyRequest` ("Throttling", an `ErrorResponse`). Whether
            // Opsgenie sends Retry-After is unverified; tests choose.
            let (_, _, body) = error(status, "Too many requests");
            json_response(status, &faults::retry_after(retry_after_secs), &body)
        }
        Failure::ServerError(status) => super::http::text_response(status, "Internal Server Error"),
        applied => panic!("{applied:?} applies the call"),
    }
}

/// OAS `securityDefinitions.GenieKey`: an api key in the `Authorization` header, sent as
/// `GenieKey <key>`; `responses.Unauthorized`: "apiKey is invalid or integration is disabled".
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Option<Answer> {
    let expected = format!("GenieKey {}", shared.key);
    (header(headers, "authorization") != Some(expected.as_str()))
        .then(|| error(401, "Key format is not valid!"))
}

/// OAS `responses.Accepted`: a `SuccessResponse` with the request id of the asynchronous
/// operation; the `result` text is the docs page's.
fn accepted(world: &mut World) -> Answer {
    world.next += 1;
    (
        202,
        vec![],
        json!({
            "result": "Request will be processed",
            "took": 0.107,
            "requestId": format!("5ac64822-4adc-4fda-ade0-{:012x}", world.next),
        }),
    )
}

fn text_field(
    body: &Map<String, Value>,
    name: &str,
    max: usize,
    errors: &mut Vec<String>,
) -> String {
    match body.get(name) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.chars().count() <= max => s.clone(),
        Some(Value::String(_)) => {
            errors.push(format!("{name} can not be longer than {max} characters"));
            String::new()
        }
        Some(_) => {
            errors.push(format!("{name} must be a string"));
            String::new()
        }
    }
}

fn create(shared: &Shared, body: &[u8], call: &mut Call) -> Answer {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        // OAS `responses.BadRequest`: "Invalid JSON body".
        return error(400, "Invalid JSON body");
    };
    let mut errors = Vec::new();
    // OAS `CreateAlertPayload.required: [message]`.
    let message = text_field(&body, "message", MAX_MESSAGE, &mut errors);
    if message.trim().is_empty() {
        errors.push("Message can not be empty.".into());
    }
    let alias = text_field(&body, "alias", MAX_ALIAS, &mut errors);
    let description = text_field(&body, "description", MAX_DESCRIPTION, &mut errors);
    let priority = match body.get("priority") {
        // "Default value is P3" (docs page; the OAS gives no default).
        None => "P3".to_string(),
        Some(Value::String(p)) if PRIORITIES.contains(&p.as_str()) => p.clone(),
        Some(_) => {
            errors.push("Priority should be one of [P1, P2, P3, P4, P5]".into());
            String::new()
        }
    };
    let tags: Vec<String> = match body.get("tags") {
        None => Vec::new(),
        Some(Value::Array(t)) if t.iter().all(Value::is_string) => t
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        Some(_) => {
            errors.push("tags must be a list of strings".into());
            Vec::new()
        }
    };
    // OAS `details`: an object whose `additionalProperties` are strings.
    let details = match body.get("details") {
        None => Map::new(),
        Some(Value::Object(d)) if d.values().all(Value::is_string) => d.clone(),
        Some(_) => {
            errors.push("details must be a map of strings".into());
            Map::new()
        }
    };
    if !errors.is_empty() {
        // OAS `responses.UnprocessableEntity`: "Semantic errors in request body".
        return error(422, &errors.join("; "));
    }
    let mut world = shared.world.lock().unwrap();
    // "there can be only one alert with open status with the same alias" (docs, quoted in
    // the paging reference): a repeat counts, it does not notify again.
    let open = world
        .alerts
        .iter_mut()
        .find(|a| a.open && !alias.is_empty() && a.alias == alias);
    call.effect = Some(match open {
        Some(alert) => {
            alert.count += 1;
            Effect::Counted
        }
        None => {
            world.alerts.push(Alert {
                alias,
                message,
                description,
                priority,
                tags,
                details,
                open: true,
                count: 1,
                notifications: 1,
            });
            Effect::Opened
        }
    });
    accepted(&mut world)
}

fn close(shared: &Shared, uri: &Uri, call: &mut Call) -> Answer {
    let raw = uri
        .path()
        .trim_start_matches("/v2/alerts/")
        .trim_end_matches("/close");
    let identifier = percent_decode(raw);
    let pairs = query_pairs(uri.query());
    // OAS `AlertIdentifierType`: enum id|alias|tiny, default id.
    let kind = query_value(&pairs, "identifierType").unwrap_or("id");
    if !["id", "alias", "tiny"].contains(&kind) {
        return error(422, "identifierType should be one of [id, alias, tiny]");
    }
    let mut world = shared.world.lock().unwrap();
    // Alerts here have no ids or tiny ids: only an alias finds one. Processing is
    // asynchronous, so a miss is still 202 (the request's status would say "Alert does not
    // exist").
    let open = world
        .alerts
        .iter_mut()
        .find(|a| kind == "alias" && a.open && a.alias == identifier);
    call.effect = Some(match open {
        Some(alert) => {
            alert.open = false;
            Effect::Closed
        }
        None => Effect::Dropped,
    });
    accepted(&mut world)
}

/// `%XX` decoding of a path segment (a bad escape is kept as is).
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
