//! `POST /slack/commands` and `POST /slack/interactions`: verify Slack's v0 signature over
//! the raw body, refuse replays, hand the command to the engine, answer within Slack's 3 s.
//! [`run_command`] and [`block_actions`] are shared with Socket Mode (`socket_mode.rs`).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use slack_morphism::prelude::*;
use tracing::warn;

use super::{Ack, Panicked, Server, engine_failure, outcome_of, verb_of};
use crate::app::Reply;
use crate::chat::slack::{
    ACTION_CANCEL, ACTION_CHECK, ACTION_CONFIRM, Slack, checklist_blocks, clip,
};
use crate::command::Command;
use crate::incident::Actor;
use crate::incident::Caller;

pub(super) const PLATFORM: &str = "slack";

#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    Missing,
    Stale,
    BadSignature,
}

impl Rejection {
    fn reason(&self) -> &'static str {
        match self {
            Rejection::Missing => "missing_signature",
            Rejection::Stale => "stale",
            Rejection::BadSignature => "bad_signature",
        }
    }
}

/// Slack's request signing: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`, compared in
/// constant time, with the timestamp within `window` seconds of `now`.
pub fn verify(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    window: i64,
) -> Result<(), Rejection> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(ts), Some(sig)) = (
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
    ) else {
        return Err(Rejection::Missing);
    };
    let ts_value: i64 = ts.parse().map_err(|_| Rejection::Missing)?;
    let expected = sig
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(Rejection::BadSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| Rejection::BadSignature)?;
    mac.update(b"v0:");
    mac.update(ts.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| Rejection::BadSignature)?;
    // Checked after the signature so a forged request learns nothing about the clock.
    if (now - ts_value).abs() > window {
        return Err(Rejection::Stale);
    }
    Ok(())
}

fn check(s: &Server, headers: &HeaderMap, body: &[u8]) -> Result<Arc<Slack>, Box<Response>> {
    let (Some(slack), Some(secret)) = (&s.slack, &s.slack_secret) else {
        return Err(Box::new(
            (
                StatusCode::NOT_FOUND,
                "Slack is not configured on this drbot\n",
            )
                .into_response(),
        ));
    };
    if let Err(r) = verify(secret, headers, body, s.now_unix(), s.replay_window) {
        s.metrics.rejected(PLATFORM, r.reason());
        warn!(reason = r.reason(), "refused a Slack request");
        return Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                "invalid or stale Slack signature\n",
            )
                .into_response(),
        ));
    }
    Ok(slack.clone())
}

fn bad_request(s: &Server, what: &str) -> Response {
    s.metrics.rejected(PLATFORM, "malformed");
    (StatusCode::BAD_REQUEST, format!("{what}\n")).into_response()
}

/// A slash command as Slack sends it: the form of `POST /slack/commands`, or the payload
/// of a Socket Mode `slash_commands` envelope.
#[derive(Deserialize)]
pub(super) struct SlashCommand {
    command: String,
    #[serde(default)]
    text: String,
    channel_id: String,
    user_id: String,
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    trigger_id: String,
    #[serde(default)]
    response_url: String,
}

impl From<SlackCommandEvent> for SlashCommand {
    fn from(ev: SlackCommandEvent) -> Self {
        SlashCommand {
            command: ev.command.to_string(),
            text: ev.text.unwrap_or_default(),
            channel_id: ev.channel_id.to_string(),
            user_id: ev.user_id.to_string(),
            // slack-morphism does not carry the legacy `user_name`; the id stands in for it.
            user_name: String::new(),
            trigger_id: ev.trigger_id.to_string(),
            response_url: ev.response_url.0.to_string(),
        }
    }
}

fn ephemeral(text: &str) -> Value {
    json!({ "response_type": "ephemeral", "text": clip(text, 39_000) })
}

/// The JSON Slack shows for a reply: ephemeral for the sender, in-channel for changes, with
/// tick buttons under a checklist.
async fn render(s: &Server, channel: &str, cmd: Option<&Command>, reply: &Reply) -> Value {
    match reply {
        Reply::Private(text) => {
            if let Some(Command::Checklist { section }) = cmd
                && let Ok(Some((incident, open))) =
                    s.app.open_checklist(channel, section.as_deref()).await
                && !open.is_empty()
            {
                let blocks = checklist_blocks(text, incident, &open);
                return json!({
                    "response_type": "ephemeral",
                    "text": clip(text, 39_000),
                    "blocks": serde_json::to_value(blocks).unwrap_or(Value::Null),
                });
            }
            ephemeral(text)
        }
        Reply::Public(text) => json!({ "response_type": "in_channel", "text": clip(text, 39_000) }),
        Reply::File { name, .. } => ephemeral(&format!("Uploading `{name}` to this channel…")),
    }
}

pub async fn command(State(s): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    // Slack checks the certificate with an unsigned `ssl_check=1` POST and wants a 200;
    // Bolt answers it before verifying, and so do we (nothing is read further or stored).
    // Its pair needs no decoding, so a byte scan finds it without parsing every body twice.
    if body
        .split(|b| *b == b'&')
        .any(|pair| pair == b"ssl_check=1")
    {
        return StatusCode::OK.into_response();
    }
    let slack = match check(&s, &headers, &body) {
        Ok(slack) => slack,
        Err(r) => return *r,
    };
    let Ok(form) = serde_urlencoded::from_bytes::<SlashCommand>(&body) else {
        return bad_request(&s, "malformed slash command body");
    };
    if let Some(answer) = not_ours(&form) {
        return Json(answer).into_response();
    }
    let answer = run_command(&s, &slack, form).await;
    s.metrics.ack(PLATFORM, started.elapsed());
    Json(answer).into_response()
}

/// The answer to a slash command other than `/dr`, which drbot does not run.
fn not_ours(form: &SlashCommand) -> Option<Value> {
    (form.command != "/dr").then(|| {
        ephemeral(&format!(
            "drbot answers `/dr`, not `{}`. Try `/dr help`.",
            form.command
        ))
    })
}

/// Everything after a slash command is read, whichever way it came: run it within the
/// acknowledgement budget and return the answer Slack shows; a command still running then
/// goes on and sends its answer to `response_url`.
pub(super) async fn run_command(s: &Arc<Server>, slack: &Arc<Slack>, form: SlashCommand) -> Value {
    if let Some(answer) = not_ours(&form) {
        return answer;
    }
    let channel = format!("slack:{}", form.channel_id);
    // A redelivery (X-Slack-Retry-Num over HTTP, an unacknowledged Socket Mode envelope)
    // carries the same trigger id: it is recognised.
    let key = (!form.trigger_id.is_empty()).then(|| format!("slack:{}", form.trigger_id));
    let actor = Actor {
        platform: PLATFORM.into(),
        id: form.user_id.clone(),
        name: if form.user_name.is_empty() {
            form.user_id.clone()
        } else {
            form.user_name.clone()
        },
    };
    let parsed = crate::app::parse_line(&form.text);
    let verb = verb_of(&parsed);
    let response_url = form.response_url.clone();
    let work = {
        let (s, slack, channel) = (s.clone(), slack.clone(), channel.clone());
        Box::pin(async move {
            let caller = Caller {
                operator: slack.is_operator(&actor.id).await,
                actor,
            };
            let reply = match &parsed {
                Ok(cmd) => {
                    s.app
                        .handle_command(&channel, &caller, cmd, key.as_deref())
                        .await
                }
                Err(refusal) => Ok(refusal.clone()),
            };
            s.metrics.command(PLATFORM, &verb, outcome_of(&reply));
            s.after_command(&verb);
            let reply = reply.unwrap_or_else(|e| Reply::Private(engine_failure(&e)));
            if let Reply::File { name, content } = &reply {
                let (slack, channel, name, content) = (
                    slack.clone(),
                    form.channel_id.clone(),
                    name.clone(),
                    content.clone(),
                );
                let url = form.response_url.clone();
                s.spawn_tracked(async move {
                    if let Err(e) = slack.upload(&channel, &name, content).await {
                        warn!(error = %e, "export upload failed");
                        let _ = slack
                            .respond(&url, &ephemeral(&format!("Uploading `{name}` failed: {e}")))
                            .await;
                    }
                });
            }
            render(&s, &channel, parsed.as_ref().ok(), &reply).await
        })
    };
    match s.within_budget(work).await {
        Ack::Done(Ok(body)) => body,
        Ack::Done(Err(Panicked)) => ephemeral(
            "drbot hit an internal error on this command; nothing was half-done. Try again.",
        ),
        Ack::Late(rest) => {
            // Still working (a slow cluster): answer now, send the result to response_url.
            let (slack, url) = (slack.clone(), response_url);
            s.spawn_tracked(async move {
                if let Ok(body) = rest.await
                    && let Err(e) = slack.respond(&url, &body).await
                {
                    warn!(error = %e, "could not deliver a late reply");
                }
            });
            ephemeral("Working on it; the answer follows here.")
        }
    }
}

/// A button's value `{incident}:{target}`.
fn button_target(value: &str) -> Option<(i64, &str)> {
    let (incident, target) = value.split_once(':')?;
    let incident = incident.parse().ok()?;
    (!target.is_empty()).then_some((incident, target))
}

pub async fn interaction(
    State(s): State<Arc<Server>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let slack = match check(&s, &headers, &body) {
        Ok(slack) => slack,
        Err(r) => return *r,
    };
    #[derive(Deserialize)]
    struct Form {
        payload: String,
    }
    let Ok(form) = serde_urlencoded::from_bytes::<Form>(&body) else {
        return bad_request(&s, "malformed interaction body: expected payload=<json>");
    };
    let Ok(event) = serde_json::from_str::<SlackInteractionEvent>(&form.payload) else {
        return bad_request(&s, "unreadable interaction payload");
    };
    let SlackInteractionEvent::BlockActions(actions) = event else {
        // Nothing else is offered to users; acknowledge so Slack shows no error.
        return StatusCode::OK.into_response();
    };
    if let Err(what) = block_actions(&s, &slack, &actions) {
        return bad_request(&s, what);
    }
    s.metrics.ack(PLATFORM, started.elapsed());
    StatusCode::OK.into_response()
}

/// Button presses, whichever way they came: checked now, done in the background, each
/// answered through the payload's `response_url`. `Err` names what the payload lacks.
pub(super) fn block_actions(
    s: &Arc<Server>,
    slack: &Arc<Slack>,
    actions: &SlackInteractionBlockActionsEvent,
) -> Result<(), &'static str> {
    let (Some(channel), Some(response_url)) = (
        actions.channel.as_ref().map(|c| c.id.to_string()),
        actions.response_url.as_ref().map(|u| u.0.to_string()),
    ) else {
        return Err("button press without channel or response_url");
    };
    let user = actions.user.as_ref();
    let actor = Actor {
        platform: PLATFORM.into(),
        id: user.map(|u| u.id.to_string()).unwrap_or_default(),
        name: user
            .and_then(|u| u.username.clone().or(u.name.clone()))
            .unwrap_or_else(|| "unknown".into()),
    };
    if actor.id.is_empty() {
        return Err("button press without a user");
    }
    let presses: Vec<(String, String, String)> = actions
        .actions
        .iter()
        .flatten()
        .map(|a| {
            (
                a.action_id.to_string(),
                a.value.clone().unwrap_or_default(),
                a.action_ts
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let channel = format!("slack:{channel}");
    let (server, slack) = (s.clone(), slack.clone());
    s.spawn_tracked(async move {
        let caller = Caller {
            operator: slack.is_operator(&actor.id).await,
            actor,
        };
        for (action, value, ts) in presses {
            let text = press(&server, &channel, &caller, &action, &value, &ts).await;
            let body = json!({ "response_type": "ephemeral", "replace_original": false, "text": clip(&text, 39_000) });
            if let Err(e) = slack.respond(&response_url, &body).await {
                warn!(error = %e, "could not answer a button press");
            }
        }
        server.kick();
    });
    Ok(())
}

/// One button press, as the command it stands for.
async fn press(
    s: &Server,
    channel: &str,
    caller: &Caller,
    action: &str,
    value: &str,
    action_ts: &str,
) -> String {
    let Some((incident, target)) = button_target(value) else {
        return "This button is not one of drbot's.".into();
    };
    let cmd = match action {
        ACTION_CONFIRM => Command::Confirm {
            id: target.to_string(),
        },
        ACTION_CANCEL => Command::Cancel {
            id: target.to_string(),
        },
        ACTION_CHECK => Command::Check {
            item: target.to_string(),
            note: None,
        },
        _ => return "This button is not one of drbot's.".into(),
    };
    match s.app.is_open_incident(channel, incident).await {
        Ok(true) => {}
        Ok(false) => {
            return format!(
                "This button belongs to INC-{incident}, which is not the open incident here; nothing was done."
            );
        }
        Err(e) => return engine_failure(&e),
    }
    // The same press delivered twice has the same action_ts: it is done once.
    let key = format!("slack:action:{}:{action_ts}:{value}", caller.actor.id);
    let reply = s
        .app
        .handle_command(channel, caller, &cmd, Some(&key))
        .await;
    s.metrics.command(PLATFORM, cmd.verb(), outcome_of(&reply));
    match reply {
        Ok(r) => r.text().to_string(),
        Err(e) => engine_failure(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, ts: i64, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{ts}:").as_bytes());
        mac.update(body);
        let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
        let mut h = HeaderMap::new();
        h.insert("x-slack-request-timestamp", ts.to_string().parse().unwrap());
        h.insert("x-slack-signature", sig.parse().unwrap());
        h
    }

    #[test]
    fn accepts_a_fresh_correct_signature_only() {
        let body = b"command=%2Fdr&text=status";
        let h = signed("s3cret", 1_000_000, body);
        assert_eq!(verify("s3cret", &h, body, 1_000_100, 300), Ok(()));
        assert_eq!(verify("s3cret", &h, body, 999_800, 300), Ok(()));
        assert_eq!(
            verify("s3cret", &h, body, 1_000_301, 300),
            Err(Rejection::Stale)
        );
        assert_eq!(
            verify("other", &h, body, 1_000_000, 300),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify("s3cret", &h, b"command=%2Fdr&text=resolve", 1_000_000, 300),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify("s3cret", &HeaderMap::new(), body, 1_000_000, 300),
            Err(Rejection::Missing)
        );
        let mut garbled = h.clone();
        garbled.insert("x-slack-signature", "v0=zz".parse().unwrap());
        assert_eq!(
            verify("s3cret", &garbled, body, 1_000_000, 300),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn button_values_name_incident_and_target() {
        assert_eq!(button_target("3:P2"), Some((3, "P2")));
        assert_eq!(button_target("3:9.1.1"), Some((3, "9.1.1")));
        assert_eq!(button_target("x:P2"), None);
        assert_eq!(button_target("3:"), None);
        assert_eq!(button_target("P2"), None);
    }
}
