//! `POST /discord/interactions`: verify Ed25519 over `timestamp ‖ body`, refuse stale
//! timestamps, answer PING, turn `/dr` subcommands and button clicks into engine commands,
//! and answer within Discord's 3 s (type 4, or deferred type 5 then an edit).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use serenity::all::Interaction;
use serenity::interactions_endpoint::Verifier;
use tracing::warn;

use super::{Ack, Panicked, Server, engine_failure, outcome_of, verb_of};
use crate::app::Reply;
use crate::chat::discord::{Discord, checklist_components};
use crate::chat::manifest;
use crate::chat::slack::clip;
use crate::command::Command;
use crate::incident::Actor;
use crate::incident::Caller;

const PLATFORM: &str = "discord";
const EPHEMERAL: u64 = 64;

/// Discord's signature check plus our own replay window (Discord specifies none).
pub fn verify(
    key: &[u8; 32],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    window: i64,
) -> Result<(), &'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(sig), Some(ts)) = (
        header("x-signature-ed25519"),
        header("x-signature-timestamp"),
    ) else {
        return Err("missing_signature");
    };
    let verifier = Verifier::try_new(*key).map_err(|_| "bad_key")?;
    verifier
        .verify(sig, ts, body)
        .map_err(|_| "bad_signature")?;
    let ts: i64 = ts.parse().map_err(|_| "bad_signature")?;
    if (now - ts).abs() > window {
        return Err("stale");
    }
    Ok(())
}

fn message(text: &str, private: bool, components: Option<Value>) -> Value {
    let mut data =
        json!({ "content": clip(text, 2000), "allowed_mentions": { "parse": ["users"] } });
    if private {
        data["flags"] = json!(EPHEMERAL);
    }
    if let Some(c) = components {
        data["components"] = c;
    }
    data
}

fn bad_request(s: &Server, what: &str) -> Response {
    s.metrics.rejected(PLATFORM, "malformed");
    (StatusCode::BAD_REQUEST, format!("{what}\n")).into_response()
}

/// Who pressed or typed: member in a guild, user in a DM; and their roles.
fn who(member: Option<&serenity::all::Member>, user: &serenity::all::User) -> (Actor, Vec<String>) {
    let user = member.map(|m| &m.user).unwrap_or(user);
    let roles = member
        .map(|m| m.roles.iter().map(|r| r.to_string()).collect())
        .unwrap_or_default();
    let name = user
        .global_name
        .clone()
        .unwrap_or_else(|| user.name.clone());
    (
        Actor {
            platform: PLATFORM.into(),
            id: user.id.to_string(),
            name,
        },
        roles,
    )
}

pub async fn interaction(
    State(s): State<Arc<Server>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let (Some(discord), Some(key)) = (&s.discord, &s.discord_key) else {
        return (
            StatusCode::NOT_FOUND,
            "Discord is not configured on this drbot\n",
        )
            .into_response();
    };
    if let Err(reason) = verify(key, &headers, &body, s.now_unix(), s.replay_window) {
        s.metrics.rejected(PLATFORM, reason);
        warn!(reason, "refused a Discord request");
        return (StatusCode::UNAUTHORIZED, "invalid request signature\n").into_response();
    }
    let Ok(raw) = serde_json::from_slice::<Value>(&body) else {
        return bad_request(&s, "body is not JSON");
    };
    if raw.get("type").and_then(Value::as_u64) == Some(1) {
        return Json(json!({ "type": 1 })).into_response();
    }
    let Ok(interaction) = serde_json::from_value::<Interaction>(raw.clone()) else {
        return bad_request(&s, "unreadable interaction");
    };
    let answer = match interaction {
        Interaction::Ping(_) => Json(json!({ "type": 1 })).into_response(),
        Interaction::Command(cmd) => {
            let options = raw.pointer("/data/options").cloned().unwrap_or(Value::Null);
            let line = match manifest::discord_line(&options) {
                Ok(line) => line,
                Err(why) => {
                    s.metrics.command(PLATFORM, "invalid", "answered");
                    return Json(json!({ "type": 4, "data": message(&why, true, None) }))
                        .into_response();
                }
            };
            let from = who(cmd.member.as_deref(), &cmd.user);
            let request = Request::new(discord, from, cmd.channel_id, cmd.id, &cmd.token);
            respond(&s, discord.clone(), request, Pressed::Line(line)).await
        }
        Interaction::Component(c) => {
            let from = who(c.member.as_ref(), &c.user);
            let request = Request::new(discord, from, c.channel_id, c.id, &c.token);
            respond(
                &s,
                discord.clone(),
                request,
                Pressed::Button(c.data.custom_id.clone()),
            )
            .await
        }
        _ => Json(json!({ "type": 4, "data": message("drbot only answers `/dr`.", true, None) }))
            .into_response(),
    };
    s.metrics.ack(PLATFORM, started.elapsed());
    answer
}

struct Request {
    channel: String,
    discord_channel: String,
    actor: Actor,
    operator: bool,
    key: String,
    token: String,
}

impl Request {
    /// A request from the user `from` (with their roles) by interaction `id` in `channel_id`.
    fn new(
        discord: &Discord,
        (actor, roles): (Actor, Vec<String>),
        channel_id: impl std::fmt::Display,
        id: impl std::fmt::Display,
        token: &str,
    ) -> Request {
        Request {
            channel: format!("discord:{channel_id}"),
            discord_channel: channel_id.to_string(),
            operator: discord.is_operator(&actor.id, &roles),
            actor,
            key: format!("discord:{id}"),
            token: token.to_owned(),
        }
    }
}

enum Pressed {
    Line(String),
    Button(String),
}

/// `dr:{action}:{incident}:{target}` back into a command, once the incident is checked.
async fn button_command(s: &Server, channel: &str, custom_id: &str) -> Result<Command, String> {
    let mut parts = custom_id.splitn(4, ':');
    let (Some("dr"), Some(action), Some(incident), Some(target)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("This button is not one of drbot's.".into());
    };
    let incident: i64 = incident
        .parse()
        .map_err(|_| "This button is not one of drbot's.".to_string())?;
    let cmd = match action {
        "confirm" => Command::Confirm { id: target.into() },
        "cancel" => Command::Cancel { id: target.into() },
        "check" => Command::Check {
            item: target.into(),
            note: None,
        },
        _ => return Err("This button is not one of drbot's.".into()),
    };
    match s.app.is_open_incident(channel, incident).await {
        Ok(true) => Ok(cmd),
        Ok(false) => Err(format!(
            "This button belongs to INC-{incident}, which is not the open incident here; nothing was done."
        )),
        Err(e) => Err(engine_failure(&e)),
    }
}

/// Run the command; answer type 4 if it finishes in time, else defer (type 5) and edit later.
async fn respond(s: &Arc<Server>, discord: Arc<Discord>, req: Request, what: Pressed) -> Response {
    let token = req.token.clone();
    let work = {
        let s = s.clone();
        let discord = discord.clone();
        Box::pin(async move {
            let caller = Caller {
                actor: req.actor,
                operator: req.operator,
            };
            let (parsed, reply) = match what {
                Pressed::Line(line) => {
                    let parsed = crate::app::parse_line(&line);
                    let reply = match &parsed {
                        Ok(cmd) => {
                            s.app
                                .handle_command(&req.channel, &caller, cmd, Some(&req.key))
                                .await
                        }
                        Err(refusal) => Ok(refusal.clone()),
                    };
                    let verb = verb_of(&parsed);
                    s.metrics.command(PLATFORM, &verb, outcome_of(&reply));
                    s.after_command(&verb);
                    (parsed.ok(), reply)
                }
                Pressed::Button(id) => match button_command(&s, &req.channel, &id).await {
                    Ok(cmd) => {
                        let reply = s
                            .app
                            .handle_command(&req.channel, &caller, &cmd, Some(&req.key))
                            .await;
                        s.metrics.command(PLATFORM, cmd.verb(), outcome_of(&reply));
                        s.kick();
                        (None, reply)
                    }
                    Err(why) => (None, Ok(Reply::Private(why))),
                },
            };
            let reply = reply.unwrap_or_else(|e| Reply::Private(engine_failure(&e)));
            match &reply {
                Reply::Private(text) => {
                    let mut components = None;
                    if let Some(Command::Checklist { section }) = &parsed
                        && let Ok(Some((incident, open))) =
                            s.app.open_checklist(&req.channel, section.as_deref()).await
                        && !open.is_empty()
                    {
                        components = Some(checklist_components(incident, &open));
                    }
                    message(text, true, components)
                }
                Reply::Public(text) => message(text, false, None),
                Reply::File { name, content } => {
                    let (channel, name2, content) =
                        (req.discord_channel.clone(), name.clone(), content.clone());
                    let d = discord.clone();
                    s.spawn_tracked(async move {
                        if let Err(e) = d.upload(&channel, &name2, content).await {
                            warn!(error = %e, "export upload failed");
                        }
                    });
                    message(&format!("Uploading `{name}` to this channel…"), true, None)
                }
            }
        })
    };
    match s.within_budget(work).await {
        Ack::Done(Ok(data)) => Json(json!({ "type": 4, "data": data })).into_response(),
        Ack::Done(Err(Panicked)) => Json(json!({ "type": 4, "data": message("drbot hit an internal error on this command; nothing was half-done. Try again.", true, None) })).into_response(),
        Ack::Late(rest) => {
            s.spawn_tracked(async move {
                if let Ok(data) = rest.await
                    && let Err(e) = discord.edit_original(&token, &data).await
                {
                    warn!(error = %e, "could not deliver a late reply");
                }
            });
            Json(json!({ "type": 5, "data": { "flags": EPHEMERAL } })).into_response()
        }
    }
}
