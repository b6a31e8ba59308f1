//! Routing and HTTP plumbing: which Discord route a request is, the handler, the
//! scripted failures and how every answer is recorded.

use super::*;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Route {
    CreateMessage {
        channel: String,
    },
    GetMessages {
        channel: String,
    },
    EditMessage {
        channel: String,
        id: String,
    },
    PinMessage {
        channel: String,
        id: String,
    },
    CreateFollowup {
        app: String,
        token: String,
    },
    EditOriginal {
        app: String,
        token: String,
    },
    EditFollowup {
        app: String,
        token: String,
        id: String,
    },
    GetCommands {
        app: String,
        guild: Option<String>,
    },
    SetGlobalCommands {
        app: String,
    },
    SetGuildCommands {
        app: String,
        guild: String,
    },
    InteractionCallback {
        id: String,
        token: String,
    },
    Unknown,
}

impl Route {
    pub(super) fn parse(method: &Method, path: &str) -> Route {
        let Some(rest) = path.strip_prefix("/api/v10/") else {
            return Route::Unknown;
        };
        let segs: Vec<String> = rest.split('/').map(|s| s.replace("%40", "@")).collect();
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        let o = |x: &str| x.to_string();
        match (method.as_str(), s.as_slice()) {
            ("POST", ["channels", c, "messages"]) => Route::CreateMessage { channel: o(c) },
            ("GET", ["channels", c, "messages"]) => Route::GetMessages { channel: o(c) },
            ("PUT", ["channels", c, "pins", id])
            | ("PUT", ["channels", c, "messages", "pins", id]) => Route::PinMessage {
                channel: o(c),
                id: o(id),
            },
            ("PATCH", ["channels", c, "messages", id]) => Route::EditMessage {
                channel: o(c),
                id: o(id),
            },
            ("POST", ["webhooks", app, token]) => Route::CreateFollowup {
                app: o(app),
                token: o(token),
            },
            ("PATCH", ["webhooks", app, token, "messages", "@original"]) => Route::EditOriginal {
                app: o(app),
                token: o(token),
            },
            ("PATCH", ["webhooks", app, token, "messages", id]) => Route::EditFollowup {
                app: o(app),
                token: o(token),
                id: o(id),
            },
            ("GET", ["applications", app, "commands"]) => Route::GetCommands {
                app: o(app),
                guild: None,
            },
            ("GET", ["applications", app, "guilds", g, "commands"]) => Route::GetCommands {
                app: o(app),
                guild: Some(o(g)),
            },
            ("PUT", ["applications", app, "commands"]) => Route::SetGlobalCommands { app: o(app) },
            ("PUT", ["applications", app, "guilds", g, "commands"]) => Route::SetGuildCommands {
                app: o(app),
                guild: o(g),
            },
            ("POST", ["interactions", id, token, "callback"]) => Route::InteractionCallback {
                id: o(id),
                token: o(token),
            },
            _ => Route::Unknown,
        }
    }

    pub(super) fn name(&self) -> &'static str {
        match self {
            Route::CreateMessage { .. } => "create_message",
            Route::GetMessages { .. } => "get_messages",
            Route::EditMessage { .. } => "edit_message",
            Route::PinMessage { .. } => "pin_message",
            Route::CreateFollowup { .. } => "create_followup",
            Route::EditOriginal { .. } => "edit_original",
            Route::EditFollowup { .. } => "edit_followup",
            Route::GetCommands { .. } => "get_commands",
            Route::SetGlobalCommands { .. } => "set_global_commands",
            Route::SetGuildCommands { .. } => "set_guild_commands",
            Route::InteractionCallback { .. } => "interaction_callback",
            Route::Unknown => "unknown",
        }
    }

    /// Bot-token routes; webhook and interaction routes authenticate by their token.
    pub(super) fn needs_bot_auth(&self) -> bool {
        !matches!(
            self,
            Route::CreateFollowup { .. }
                | Route::EditOriginal { .. }
                | Route::EditFollowup { .. }
                | Route::InteractionCallback { .. }
        )
    }
}

// ---------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------

pub(super) async fn handle(
    shared: Arc<Shared>,
    (method, uri, headers, body): Incoming,
) -> Response {
    match respond(&shared, &method, &uri, &headers, &body) {
        Some(response) => response,
        // A scripted `Hang`: hold the request until the stand-in is dropped.
        None => std::future::pending().await,
    }
}

/// Handle one request; `None` means "never answer" (a scripted `Hang`).
pub(super) fn respond(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let path = uri.path().to_string();
    let route = Route::parse(method, &path);
    let mut call = Call {
        method: format!(
            "{} {}",
            method,
            path.strip_prefix("/api/v10").unwrap_or(&path)
        ),
        route: route.name().to_string(),
        body: Value::Null,
        files: Vec::new(),
        auth_ok: false,
        valid: true,
        answered: 200,
        deduplicated: false,
        error: None,
        headers: header_pairs(headers),
        at: Instant::now(),
    };
    let expected = format!("Bot {}", shared.token);
    let bot_auth = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&expected);
    call.auth_ok = bot_auth || !route.needs_bot_auth();

    if route == Route::Unknown {
        call.valid = false;
        return Some(finish(
            shared,
            call,
            Err(api_error(404, 0, "404: Not Found")),
        ));
    }

    // Body: JSON, multipart (payload_json + files[n]), or the query string for GET.
    let (args, files) = match parse_body(method, uri.query(), headers, body) {
        Ok(parsed) => parsed,
        Err(raw) => {
            call.body = raw;
            call.valid = false;
            return Some(finish(
                shared,
                call,
                Err(api_error(
                    400,
                    50109,
                    "The request body contains invalid JSON.",
                )),
            ));
        }
    };
    call.body = args.clone();
    call.files = files.clone();

    let mut world = shared.world.lock().unwrap();
    let checked = check(&world, &shared.app_id, &route, &args, &files);
    if !call.auth_ok {
        call.valid = checked.as_ref().err().is_none_or(|r| r.valid);
        drop(world);
        return Some(finish(
            shared,
            call,
            Err(api_error(401, 0, "401: Unauthorized")),
        ));
    }
    if let Err(reject) = checked {
        call.valid = reject.valid;
        drop(world);
        return Some(finish(shared, call, Err(reject)));
    }
    match world
        .pop_failure(route.name())
        .filter(|f| *f != Failure::Pass)
    {
        None | Some(Failure::Pass) => {
            let answer = apply(&mut world, shared, &route, &args, &files, &mut call);
            drop(world);
            Some(finish(shared, call, answer))
        }
        Some(Failure::ReplyAfterApplying) => {
            let _ = apply(&mut world, shared, &route, &args, &files, &mut call);
            drop(world);
            Some(finish(shared, call, Err(server_error())))
        }
        Some(Failure::HoldAfterApplying) => {
            let _ = apply(&mut world, shared, &route, &args, &files, &mut call);
            drop(world);
            call.answered = 0;
            call.error = Some("held after applying".into());
            shared.recorder.push(call);
            None
        }
        Some(Failure::Refuse(message)) => {
            drop(world);
            Some(finish(
                shared,
                call,
                Err(Reject {
                    status: 400,
                    body: json!({ "code": 50035, "message": message }),
                    valid: true,
                }),
            ))
        }
        Some(Failure::ServerError) => {
            drop(world);
            Some(finish(shared, call, Err(server_error())))
        }
        Some(Failure::RateLimited { retry_after_secs }) => {
            drop(world);
            call.answered = 429;
            call.error = Some("You are being rate limited.".into());
            shared.recorder.push(call);
            let reset = chrono::Utc::now().timestamp() as u64 + retry_after_secs;
            Some(json_response(
                429,
                &[
                    ("retry-after", retry_after_secs.to_string()),
                    ("x-ratelimit-scope", "user".to_string()),
                    ("x-ratelimit-limit", "5".to_string()),
                    ("x-ratelimit-remaining", "0".to_string()),
                    ("x-ratelimit-reset", reset.to_string()),
                    ("x-ratelimit-reset-after", format!("{retry_after_secs}.000")),
                    ("x-ratelimit-bucket", format!("standin-{}", route.name())),
                ],
                &json!({
                    "message": "You are being rate limited.",
                    "retry_after": retry_after_secs as f64,
                    "global": false,
                }),
            ))
        }
        Some(Failure::Hang) => {
            drop(world);
            call.answered = 0;
            call.error = Some("hang".into());
            shared.recorder.push(call);
            None
        }
    }
}

pub(super) fn server_error() -> Reject {
    Reject {
        status: 500,
        body: json!({ "code": 0, "message": "500: Internal Server Error" }),
        valid: true,
    }
}

/// Success answers: status and JSON body (`Null` for 204).
pub(super) type Answer = Result<(u16, Value), Reject>;

pub(super) fn finish(shared: &Shared, mut call: Call, answer: Answer) -> Response {
    let response = match answer {
        Ok((status, body)) => {
            call.answered = status;
            if body.is_null() {
                text_response(status, "")
            } else {
                json_response(status, &[], &body)
            }
        }
        Err(reject) => {
            call.answered = reject.status;
            let message = reject.body["message"].as_str().unwrap_or("").to_string();
            call.error = Some(match reject.body.get("errors") {
                Some(errors) => format!("{message}: {errors}"),
                None => message,
            });
            json_response(reject.status, &[], &reject.body)
        }
    };
    shared.recorder.push(call);
    response
}
