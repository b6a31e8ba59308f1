//! Request handling: gates, method dispatch, argument parsing, scripted failures and
//! how every answer is recorded.

use super::*;

// ---------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------

pub(super) async fn handle(
    shared: Arc<Shared>,
    (method, uri, headers, body): Incoming,
) -> Response {
    let path = uri.path().to_string();
    if let Some(api_method) = path.strip_prefix("/api/") {
        pass_gate(&shared, api_method).await;
    }
    let outcome = if let Some(api_method) = path.strip_prefix("/api/") {
        api_call(&shared, api_method, &method, &uri, &headers, &body)
    } else if let Some(file_id) = path.strip_prefix("/upload/") {
        upload(&shared, file_id, &headers, &body)
    } else if let Some(id) = path.strip_prefix("/response/") {
        response_url(&shared, id, &headers, &body)
    } else {
        shared.recorder.push(Call {
            method: "unknown".into(),
            body: json!({ "method": method.as_str(), "path": path }),
            auth_ok: false,
            valid: false,
            answered: 404,
            error: Some("not_found".into()),
            headers: header_pairs(&headers),
            at: Instant::now(),
        });
        Some(text_response(404, "Not Found"))
    };
    match outcome {
        Some(response) => response,
        // A scripted `Hang`: hold the request until the stand-in is dropped.
        None => std::future::pending().await,
    }
}

/// Wait while `method` is gated.
pub(super) async fn pass_gate(shared: &Shared, method: &str) {
    let mut counted = false;
    loop {
        let opened = shared.opened.notified();
        tokio::pin!(opened);
        opened.as_mut().enable();
        {
            let mut gates = shared.gates.lock().unwrap();
            if !gates.0.contains(method) {
                if counted {
                    gates.1 -= 1;
                }
                return;
            }
            if !counted {
                gates.1 += 1;
                counted = true;
            }
        }
        opened.await;
    }
}

pub(super) const API_METHODS: &[&str] = &[
    "chat.postMessage",
    "chat.update",
    "pins.add",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
    "conversations.history",
    "usergroups.users.list",
    "auth.test",
];

pub(super) fn api_call(
    shared: &Shared,
    api_method: &str,
    http_method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let mut call = Call {
        method: api_method.to_string(),
        body: Value::Null,
        auth_ok: false,
        valid: true,
        answered: 200,
        error: None,
        headers: header_pairs(headers),
        at: Instant::now(),
    };
    let args = match normalise_args(http_method, uri.query(), headers, body) {
        Ok(args) => args,
        Err(raw) => {
            call.body = raw;
            call.valid = false;
            return Some(finish(shared, call, api_error("invalid_json")));
        }
    };
    call.body = Value::Object(args.clone());
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Slack also takes the token as a POST form argument.
    let form_token = args.get("token").and_then(Value::as_str);
    call.auth_ok = bearer.or(form_token) == Some(shared.token.as_str());

    if !API_METHODS.contains(&api_method) {
        call.valid = false;
        return Some(finish(shared, call, api_error("unknown_method")));
    }

    let mut world = shared.world.lock().unwrap();
    let checked = check(&world, api_method, &args);
    if !call.auth_ok {
        call.valid = checked.as_ref().err().is_none_or(|r| r.valid);
        drop(world);
        return Some(finish(shared, call, api_error("invalid_auth")));
    }
    if let Err(reject) = checked {
        call.valid = reject.valid;
        drop(world);
        return Some(finish(shared, call, api_error(reject.code)));
    }
    match world
        .pop_failure(api_method)
        .filter(|f| *f != Failure::Pass)
    {
        None => {
            let reply = apply(&mut world, &shared.origin, api_method, &args);
            drop(world);
            Some(finish(shared, call, (200, vec![], reply)))
        }
        Some(Failure::ReplyAfterApplying) => {
            apply(&mut world, &shared.origin, api_method, &args);
            drop(world);
            Some(finish(shared, call, server_error()))
        }
        Some(Failure::HoldAfterApplying) => {
            apply(&mut world, &shared.origin, api_method, &args);
            drop(world);
            call.answered = 0;
            call.error = Some("held after applying".into());
            shared.recorder.push(call);
            None
        }
        Some(failure) => {
            drop(world);
            fail(shared, call, failure)
        }
    }
}

pub(super) type Answer = (u16, Vec<(&'static str, String)>, Value);

pub(super) fn api_error(code: &str) -> Answer {
    (200, vec![], json!({ "ok": false, "error": code }))
}

pub(super) fn server_error() -> Answer {
    (500, vec![], Value::Null)
}

/// Record the call with the answer's status/error and build the response.
/// [`finish`] with Slack's error answer.
pub(super) fn refuse(shared: &Shared, call: Call, status: u16, error: &str) -> Response {
    finish(
        shared,
        call,
        (status, vec![], json!({ "ok": false, "error": error })),
    )
}

pub(super) fn finish(
    shared: &Shared,
    mut call: Call,
    (status, mut headers, body): Answer,
) -> Response {
    call.answered = status;
    // Slack names the token's scopes on every Web API answer.
    headers.push((
        "x-oauth-scopes",
        shared.world.lock().unwrap().scopes.join(","),
    ));
    if call.error.is_none() {
        call.error = body.get("error").and_then(Value::as_str).map(String::from);
    }
    shared.recorder.push(call);
    if body.is_null() {
        text_response(status, "Internal Server Error")
    } else {
        json_response(status, &headers, &body)
    }
}

/// Answer a scripted failure (not `ReplyAfterApplying`, which the caller handles);
/// `None` for `Hang`.
pub(super) fn fail(shared: &Shared, call: Call, failure: Failure) -> Option<Response> {
    Some(match failure {
        Failure::RateLimited { retry_after_secs } => finish(
            shared,
            call,
            (
                429,
                vec![("retry-after", retry_after_secs.to_string())],
                json!({ "ok": false, "error": "ratelimited" }),
            ),
        ),
        Failure::Refuse(code) => finish(shared, call, api_error(code)),
        Failure::Pass
        | Failure::ServerError
        | Failure::ReplyAfterApplying
        | Failure::HoldAfterApplying => {
            let mut call = call;
            call.error = Some("internal_error".into());
            finish(shared, call, server_error())
        }
        Failure::Hang => {
            let mut call = call;
            call.answered = 0;
            call.error = Some("hang".into());
            shared.recorder.push(call);
            return None;
        }
    })
}

/// JSON body, form body and query string, merged into one object (body wins).
pub(super) fn normalise_args(
    http_method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, Value> {
    let mut args = Map::new();
    if let Some(query) = query {
        for (k, v) in serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default()
        {
            args.insert(k, Value::String(v));
        }
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let raw = || Value::String(String::from_utf8_lossy(body).into_owned());
    if body.is_empty() || *http_method == Method::GET {
        // nothing more
    } else if content_type.starts_with("application/json")
        || (content_type.is_empty() && body.first() == Some(&b'{'))
    {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => args.extend(map),
            _ => return Err(raw()),
        }
    } else if content_type.starts_with("multipart/form-data") {
        let parts: Vec<Part> = parse_multipart(&content_type, body).map_err(|_| raw())?;
        for part in parts.into_iter().filter(|p| p.filename.is_none()) {
            args.insert(
                part.name,
                Value::String(String::from_utf8_lossy(&part.data).into_owned()),
            );
        }
    } else {
        let pairs =
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).map_err(|_| raw())?;
        for (k, v) in pairs {
            args.insert(k, Value::String(v));
        }
    }
    for key in ["blocks", "attachments", "files", "metadata"] {
        if let Some(Value::String(s)) = args.get(key)
            && let Ok(parsed) = serde_json::from_str::<Value>(s)
            && (parsed.is_array() || parsed.is_object())
        {
            args.insert(key.to_string(), parsed);
        }
    }
    Ok(args)
}

pub(super) fn str_arg<'a>(args: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(super) fn int_arg(args: &Map<String, Value>, key: &str) -> Option<u64> {
    match args.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub(super) fn ts_micros(ts: &str) -> Option<u128> {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    let secs: u128 = secs.parse().ok()?;
    let mut frac: String = frac.chars().take(6).collect();
    while frac.len() < 6 {
        frac.push('0');
    }
    Some(secs * 1_000_000 + frac.parse::<u128>().ok()?)
}
