//! The `upload_url` and `response_url` endpoints Slack hands out.

use super::*;

// ---------------------------------------------------------------------------------------
// upload_url and response_url
// ---------------------------------------------------------------------------------------

pub(super) fn upload(
    shared: &Shared,
    file_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    // Raw bytes (what slack-morphism sends) or a multipart form with one file part.
    let bytes = match content_type.as_deref() {
        Some(ct) if ct.starts_with("multipart/form-data") => parse_multipart(ct, body)
            .ok()
            .and_then(|parts| parts.into_iter().find(|p| p.filename.is_some()))
            .map(|p| p.data)
            .unwrap_or_default(),
        _ => body.to_vec(),
    };
    let mut call = Call {
        method: "upload".into(),
        body: json!({ "file_id": file_id, "length": bytes.len(), "content_type": content_type }),
        auth_ok: true,
        valid: true,
        answered: 200,
        error: None,
        headers: header_pairs(headers),
        at: Instant::now(),
    };
    let mut world = shared.world.lock().unwrap();
    let Some(slot) = world
        .files
        .get(file_id)
        .map(|s| (s.filename.clone(), s.length))
    else {
        drop(world);
        call.valid = false;
        call.error = Some("unknown file id".into());
        call.answered = 404;
        shared.recorder.push(call);
        return Some(text_response(404, "Not Found"));
    };
    let (filename, length) = slot;
    if length != bytes.len() {
        // Slack would store a file of the wrong size; the caller declared another length.
        call.valid = false;
        call.error = Some(format!(
            "declared length {} but received {} bytes",
            length,
            bytes.len()
        ));
    }
    let failure = world.pop_failure("upload");
    if matches!(failure, None | Some(Failure::ReplyAfterApplying)) {
        world.files.get_mut(file_id).expect("slot").uploaded = true;
        world.uploads.push(Upload {
            file_id: file_id.to_string(),
            filename,
            content_type,
            bytes: bytes.clone(),
        });
    }
    drop(world);
    match failure {
        None => {
            shared.recorder.push(call);
            Some(text_response(200, &format!("OK - {}", bytes.len())))
        }
        Some(Failure::ReplyAfterApplying) => Some(finish(shared, call, server_error())),
        Some(failure) => fail(shared, call, failure),
    }
}

pub(super) fn response_url(
    shared: &Shared,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let mut call = Call {
        method: "response".into(),
        body: Value::Null,
        auth_ok: true,
        valid: true,
        answered: 200,
        error: None,
        headers: header_pairs(headers),
        at: Instant::now(),
    };
    let parsed = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        _ => {
            call.body = Value::String(String::from_utf8_lossy(body).into_owned());
            call.valid = false;
            return Some(refuse(shared, call, 400, "invalid_payload"));
        }
    };
    call.body = Value::Object(parsed.clone());
    let deleting = parsed.get("delete_original") == Some(&Value::Bool(true));
    if let Err(reject) = check_content(&parsed, !deleting) {
        call.valid = reject.valid;
        return Some(refuse(shared, call, 400, reject.code));
    }
    if let Some(kind) = parsed.get("response_type")
        && kind != "in_channel"
        && kind != "ephemeral"
    {
        call.valid = false;
        return Some(refuse(shared, call, 400, "invalid_response_type"));
    }
    let mut world = shared.world.lock().unwrap();
    let used = world.responses.iter().filter(|(i, _)| i == id).count();
    if used >= MAX_RESPONSES_PER_URL {
        drop(world);
        call.valid = false;
        return Some(refuse(shared, call, 404, "used_url"));
    }
    let failure = world.pop_failure("response");
    if matches!(failure, None | Some(Failure::ReplyAfterApplying)) {
        world
            .responses
            .push((id.to_string(), Value::Object(parsed)));
    }
    drop(world);
    match failure {
        None => Some(finish(shared, call, (200, vec![], json!({ "ok": true })))),
        Some(Failure::ReplyAfterApplying) => Some(finish(shared, call, server_error())),
        Some(failure) => fail(shared, call, failure),
    }
}
