//! Discord REST side: channel posts and edits, the pinned status message, interaction
//! follow-ups, file attachments, command registration. Our own small client (see
//! ARCHITECTURE.md); posts carry the outbox id as an enforced nonce, so Discord itself
//! drops a retried post that already went through.

use hyper::Method;
use serde_json::{Value, json};
use tracing::warn;

use super::http::{HttpClient, HttpError, Response};
use super::slack::clip;
use super::{ChatSink, DeliveryError, Outgoing, Platform};
use crate::config::DiscordSettings;
use crate::incident::IncidentId;
use crate::incident::post::{Post, PostKind};
use futures_util::future::BoxFuture;

const MAX_CONTENT: usize = 2000;
const MAX_EMBED_DESCRIPTION: usize = 4096;

pub struct Discord {
    http: HttpClient,
    base: String,
    authorization: String,
    application_id: String,
    operators: Vec<String>,
}

/// Component custom ids: `dr:confirm:{incident}:{preview}`, `dr:cancel:…`, `dr:check:{incident}:{item}`.
pub fn custom_id(action: &str, incident: IncidentId, target: &str) -> String {
    format!("dr:{action}:{incident}:{target}")
}

fn failure(e: HttpError) -> DeliveryError {
    DeliveryError::retryable(format!("Discord: {e}"))
}

fn refusal(resp: &Response) -> DeliveryError {
    let body = resp.json().unwrap_or(Value::Null);
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message");
    match resp.status {
        429 => DeliveryError {
            retryable: true,
            message: "Discord rate limit (429)".into(),
            retry_after: body
                .get("retry_after")
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| std::time::Duration::from_secs_f64(s.min(3600.0)))
                .or(resp.retry_after),
        },
        s if s >= 500 => DeliveryError::retryable(format!("Discord answered HTTP {s}")),
        s => DeliveryError::permanent(format!("Discord refused the call (HTTP {s}: {message})")),
    }
}

impl Discord {
    pub fn new(settings: &DiscordSettings) -> Option<Discord> {
        Some(Discord {
            http: HttpClient::default(),
            base: format!("{}/api/v10", settings.api_url.trim_end_matches('/')),
            authorization: format!("Bot {}", settings.bot_token.as_deref()?),
            application_id: settings.application_id.clone()?,
            operators: settings.operators.clone(),
        })
    }

    /// Whether a member may launch: listed by user id or holding a listed role.
    pub fn is_operator(&self, user: &str, roles: &[String]) -> bool {
        self.operators
            .iter()
            .any(|o| o == user || roles.iter().any(|r| r == o))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        authorized: bool,
    ) -> Result<Response, DeliveryError> {
        let url = format!("{}{path}", self.base);
        let auth = [("authorization", self.authorization.as_str())];
        let headers: &[(&str, &str)] = if authorized { &auth } else { &[] };
        let resp = match body {
            Some(body) => self.http.json(method, &url, headers, body).await,
            None => self.http.send(method, &url, headers, None).await,
        }
        .map_err(failure)?;
        if resp.ok() {
            Ok(resp)
        } else {
            Err(refusal(&resp))
        }
    }

    fn message_id(resp: &Response) -> Result<String, DeliveryError> {
        resp.json()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| DeliveryError::retryable("Discord's reply had no message id"))
    }

    /// Create a message; the outbox id as an enforced nonce makes Discord answer a retry
    /// with the message the first try created.
    async fn create(
        &self,
        channel: &str,
        body: &Value,
        nonce: &str,
    ) -> Result<String, DeliveryError> {
        let mut body = body.clone();
        body["nonce"] = json!(nonce);
        body["enforce_nonce"] = json!(true);
        let resp = self
            .call(
                Method::POST,
                &format!("/channels/{channel}/messages"),
                Some(&body),
                true,
            )
            .await?;
        Self::message_id(&resp)
    }

    async fn status(&self, channel: &str, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        let body = message(out.post, out.incident, None);
        // The first status message of an incident takes the incident's nonce, so whichever
        // status post creates it, a retry or a takeover by another replica gets that message
        // back from Discord instead of a second one. A replacement for a deleted one takes
        // the post's own nonce (the incident's would return the deleted message).
        let mut nonce = match out.incident {
            Some(incident) => format!("s{incident}"),
            None => out.outbox_id.to_string(),
        };
        if let Some(id) = out.status_message {
            match self
                .call(
                    Method::PATCH,
                    &format!("/channels/{channel}/messages/{id}"),
                    Some(&body),
                    true,
                )
                .await
            {
                Ok(_) => return Ok(id.to_string()),
                // Deleted by someone: post a new one below.
                Err(e) if e.message.contains("HTTP 404") => nonce = out.outbox_id.to_string(),
                Err(e) => return Err(e),
            }
        }
        let id = self.create(channel, &body, &nonce).await?;
        // The message exists now: a failed pin must not make the outbox post it again.
        if let Err(e) = self
            .call(
                Method::PUT,
                &format!("/channels/{channel}/messages/pins/{id}"),
                None,
                true,
            )
            .await
        {
            warn!(channel, error = %e, "status message posted but not pinned");
        }
        Ok(id)
    }

    /// Replace the deferred answer to an interaction (within its 15-minute token life).
    pub async fn edit_original(&self, token: &str, body: &Value) -> Result<(), DeliveryError> {
        self.call(
            Method::PATCH,
            &format!(
                "/webhooks/{}/{token}/messages/@original",
                self.application_id
            ),
            Some(body),
            false,
        )
        .await
        .map(|_| ())
    }

    /// Post a file to a channel as an attachment.
    pub async fn upload(
        &self,
        channel: &str,
        name: &str,
        content: Vec<u8>,
    ) -> Result<(), DeliveryError> {
        let boundary = "drbot-boundary-7d1c5e0f3a";
        let payload = json!({
            "content": format!("Timeline export `{name}`"),
            "attachments": [{"id": 0, "filename": name}],
        });
        let mut body = Vec::with_capacity(content.len() + 512);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\
                 Content-Type: application/json\r\n\r\n{payload}\r\n--{boundary}\r\n\
                 Content-Disposition: form-data; name=\"files[0]\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let url = format!("{}/channels/{channel}/messages", self.base);
        let resp = self
            .http
            .send(
                Method::POST,
                &url,
                &[("authorization", self.authorization.as_str())],
                Some((&content_type, body)),
            )
            .await
            .map_err(failure)?;
        if resp.ok() {
            Ok(())
        } else {
            Err(refusal(&resp))
        }
    }

    /// Register the `/dr` command globally or for one guild (guild commands apply at once).
    pub async fn register_commands(
        &self,
        guild: Option<&str>,
        commands: &Value,
    ) -> Result<(), DeliveryError> {
        let path = match guild {
            Some(g) => format!("/applications/{}/guilds/{g}/commands", self.application_id),
            None => format!("/applications/{}/commands", self.application_id),
        };
        self.call(Method::PUT, &path, Some(commands), true)
            .await
            .map(|_| ())
    }
}

impl ChatSink for Discord {
    fn deliver<'a>(&'a self, out: Outgoing<'a>) -> BoxFuture<'a, Result<String, DeliveryError>> {
        Box::pin(async move {
            let (platform, channel) = Platform::of(out.channel);
            if platform != Platform::Discord {
                return Err(DeliveryError::permanent("not a Discord channel"));
            }
            if out.post.kind == PostKind::Status {
                return self.status(channel, &out).await;
            }
            let reply_to = out.status_message.filter(|_| out.post.in_thread);
            let body = message(out.post, out.incident, reply_to);
            self.create(channel, &body, &out.outbox_id.to_string())
                .await
        })
    }
}

/// The Discord message for a post: status as an embed, previews with Confirm/Cancel.
pub fn message(post: &Post, incident: Option<IncidentId>, reply_to: Option<&str>) -> Value {
    let mut body = if post.kind == PostKind::Status {
        let mut lines = post.text.lines();
        let title = clip(lines.next().unwrap_or("Incident status"), 250);
        let description = clip(&lines.collect::<Vec<_>>().join("\n"), MAX_EMBED_DESCRIPTION);
        json!({ "content": "", "embeds": [{ "title": title, "description": description }] })
    } else {
        json!({ "content": clip(&post.plain(), MAX_CONTENT) })
    };
    if let Some(id) = reply_to {
        body["message_reference"] = json!({ "message_id": id, "fail_if_not_exists": false });
    }
    if let (Some(preview), Some(incident)) = (&post.preview, incident) {
        body["components"] = json!([{
            "type": 1,
            "components": [
                { "type": 2, "style": 3, "label": format!("Confirm {preview}"),
                  "custom_id": custom_id("confirm", incident, preview) },
                { "type": 2, "style": 4, "label": "Cancel",
                  "custom_id": custom_id("cancel", incident, preview) },
            ]
        }]);
    }
    body
}

/// Action rows of tick buttons for open checklist items (Discord: 5 rows of 5 at most).
pub fn checklist_components(incident: IncidentId, open: &[(String, String)]) -> Value {
    let rows: Vec<Value> = open
        .chunks(5)
        .take(5)
        .map(|row| {
            json!({
                "type": 1,
                "components": row.iter().map(|(id, _)| json!({
                    "type": 2, "style": 1, "label": format!("Tick {id}"),
                    "custom_id": custom_id("check", incident, id),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(rows)
}
