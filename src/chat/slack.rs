//! Slack Web API side: posts, the pinned status message (`chat.update`), file upload v2,
//! replies to `response_url`, operator groups. Block Kit rendering lives here too.
//!
//! Every post carries message metadata naming its outbox row. A retry after a failure first
//! looks for that metadata in the channel's recent history, so a post whose reply was lost
//! (timeout, 5xx after applying) is recorded, not posted twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::warn;

use super::http::{CALL_TIMEOUT, HttpClient, connector};
use super::{ChatSink, DeliveryError, Outgoing, Platform};
use crate::config::SlackSettings;
use crate::incident::IncidentId;
use crate::incident::post::{Post, PostKind};
use futures_util::future::BoxFuture;

const METADATA_EVENT: &str = "drbot_post";
const GROUP_CACHE: Duration = Duration::from_secs(300);
/// How far back a status message created by an unrecorded earlier try is looked for.
const STATUS_LOOKBACK: chrono::Duration = chrono::Duration::hours(24);
/// Slack truncates `text` above 40 000 characters; a section's text stops at 3 000.
const MAX_TEXT: usize = 39_000;
const MAX_SECTION: usize = 2_900;
/// Slack allows 50 blocks; headroom for the header, labels and buttons.
const MAX_SECTIONS: usize = 40;

pub struct Slack {
    client: SlackHyperClient,
    token: SlackApiToken,
    http: HttpClient,
    operators: Vec<String>,
    groups: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    last_post: Mutex<HashMap<String, Instant>>,
    interval: Duration,
}

fn slack_error(e: SlackClientError) -> DeliveryError {
    match e {
        SlackClientError::RateLimitError(r) => DeliveryError {
            retryable: true,
            message: "Slack rate limit (429)".into(),
            retry_after: r.retry_after.or(Some(Duration::from_secs(1))),
        },
        SlackClientError::ApiError(api) => {
            // Errors that another try cannot fix: the operator must act (invite the bot,
            // fix the token or the scopes).
            let permanent = matches!(
                api.code.as_str(),
                "channel_not_found"
                    | "not_in_channel"
                    | "is_archived"
                    | "invalid_auth"
                    | "not_authed"
                    | "account_inactive"
                    | "token_revoked"
                    | "missing_scope"
                    | "invalid_arguments"
                    | "invalid_blocks"
                    | "msg_too_long"
            );
            DeliveryError {
                retryable: !permanent,
                message: format!("Slack API error: {}", api.code),
                retry_after: None,
            }
        }
        SlackClientError::HttpError(h) => {
            DeliveryError::retryable(format!("Slack answered HTTP {}", h.status_code.as_u16()))
        }
        other => DeliveryError::retryable(format!("Slack call failed: {}", kind_of(&other))),
    }
}

/// Error kinds without their bodies (which may echo request content).
fn kind_of(e: &SlackClientError) -> &'static str {
    match e {
        SlackClientError::HttpProtocolError(_) => "protocol error",
        SlackClientError::EndOfStream(_) => "connection closed",
        SlackClientError::SystemError(_) => "system error",
        SlackClientError::ProtocolError(_) => "unreadable reply",
        _ => "error",
    }
}

async fn timed<T>(
    call: impl Future<Output = Result<T, SlackClientError>>,
) -> Result<T, DeliveryError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(r) => r.map_err(slack_error),
        Err(_) => Err(DeliveryError::retryable(
            "Slack did not answer in time; the next try checks whether the post went through",
        )),
    }
}

impl Slack {
    pub fn new(settings: &SlackSettings) -> Option<Slack> {
        let token = settings.bot_token.clone()?;
        let api_url = settings.api_url.trim_end_matches('/');
        let connector =
            SlackClientHyperConnector::with_connector(connector()).with_slack_api_url(api_url);
        Some(Slack {
            client: SlackClient::new(connector),
            token: SlackApiToken::new(token.into()),
            http: HttpClient::default(),
            operators: settings.operators.clone(),
            groups: Mutex::new(HashMap::new()),
            last_post: Mutex::new(HashMap::new()),
            interval: Duration::from_millis(settings.post_interval_ms),
        })
    }

    /// Whether `user` may launch: listed by id, or a member of a listed user group (`S…`).
    pub async fn is_operator(&self, user: &str) -> bool {
        if self.operators.iter().any(|o| o == user) {
            return true;
        }
        for group in self.operators.iter().filter(|o| o.starts_with('S')) {
            if self.group_members(group).await.iter().any(|m| m == user) {
                return true;
            }
        }
        false
    }

    async fn group_members(&self, group: &str) -> Vec<String> {
        let mut cache = self.groups.lock().await;
        if let Some((at, members)) = cache.get(group)
            && at.elapsed() < GROUP_CACHE
        {
            return members.clone();
        }
        let session = self.client.open_session(&self.token);
        let req = SlackApiUserGroupsUsersListRequest::new(group.to_string().into());
        match timed(session.usergroups_users_list(&req)).await {
            Ok(resp) => {
                let members: Vec<String> = resp.users.iter().map(|u| u.to_string()).collect();
                cache.insert(group.to_string(), (Instant::now(), members.clone()));
                members
            }
            Err(e) => {
                warn!(group, error = %e, "could not read operator group; using the last known members");
                cache.get(group).map(|(_, m)| m.clone()).unwrap_or_default()
            }
        }
    }

    /// Answer a slash command or a button later, through its `response_url`.
    pub async fn respond(
        &self,
        response_url: &str,
        body: &serde_json::Value,
    ) -> Result<(), DeliveryError> {
        let resp = self
            .http
            .json(Method::POST, response_url, &[], body)
            .await
            .map_err(|e| DeliveryError::retryable(e.to_string()))?;
        if resp.ok() {
            Ok(())
        } else {
            Err(DeliveryError::retryable(format!(
                "response_url answered HTTP {}",
                resp.status
            )))
        }
    }

    /// Upload a file to a channel (files v2: get URL, send bytes, complete).
    pub async fn upload(
        &self,
        channel: &str,
        name: &str,
        content: Vec<u8>,
    ) -> Result<(), DeliveryError> {
        let session = self.client.open_session(&self.token);
        let url = timed(session.get_upload_url_external(
            &SlackApiFilesGetUploadUrlExternalRequest::new(name.to_string(), content.len()),
        ))
        .await?;
        timed(
            session.files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(
                url.upload_url.clone(),
                content,
                content_type(name).into(),
            )),
        )
        .await?;
        timed(
            session.files_complete_upload_external(
                &SlackApiFilesCompleteUploadExternalRequest::new(vec![
                    SlackApiFilesComplete::new(url.file_id).with_title(name.to_string()),
                ])
                .with_channel_id(channel.to_string().into()),
            ),
        )
        .await?;
        Ok(())
    }

    /// Keep to about one message per second per channel.
    async fn pace(&self, channel: &str) {
        let wait = {
            let mut last = self.last_post.lock().await;
            let now = Instant::now();
            let next = last
                .get(channel)
                .map_or(now, |t| (*t + self.interval).max(now));
            last.insert(channel.to_string(), next);
            next
        };
        tokio::time::sleep_until(wait).await;
    }

    /// The newest message of ours in the channel's recent history whose metadata has every
    /// `(key, value)` of `want`.
    async fn find_posted(
        &self,
        channel: &str,
        since: chrono::DateTime<chrono::Utc>,
        want: &[(&str, String)],
    ) -> Option<String> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiConversationsHistoryRequest::new()
            .with_channel(channel.to_string().into())
            .with_oldest(format!("{}.000000", since.timestamp()).into())
            .with_include_all_metadata(true)
            .with_limit(200);
        let history = match timed(session.conversations_history(&req)).await {
            Ok(h) => h,
            Err(e) => {
                warn!(channel, error = %e, "could not read history to check an earlier try");
                return None;
            }
        };
        history
            .messages
            .iter()
            .find(|m| {
                m.content.metadata.as_ref().is_some_and(|md| {
                    md.event_type == METADATA_EVENT
                        && md.event_payload.as_ref().is_some_and(|p| {
                            want.iter()
                                .all(|(k, v)| p.get(*k).is_some_and(|got| got == v))
                        })
                })
            })
            .map(|m| m.origin.ts.to_string())
    }

    async fn post(&self, channel: &str, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        if out.earlier_sends > 0
            && let Some(ts) = self
                .find_posted(
                    channel,
                    out.created_at - chrono::Duration::minutes(1),
                    &[("outbox", out.outbox_id.to_string())],
                )
                .await
        {
            return Ok(ts);
        }
        let mut content = content(out.post, out.incident);
        let mut payload = HashMap::from([("outbox".to_string(), out.outbox_id.to_string())]);
        if let Some(incident) = out.incident {
            payload.insert("incident".into(), incident.to_string());
        }
        payload.insert("kind".into(), out.post.kind.label().to_string());
        content.metadata = Some(SlackMessageMetadata {
            event_type: METADATA_EVENT.into(),
            event_payload: Some(payload),
        });
        let mut req = SlackApiChatPostMessageRequest::new(channel.to_string().into(), content);
        if out.post.in_thread
            && let Some(ts) = out.status_message
        {
            req = req.with_thread_ts(ts.to_string().into());
        }
        self.pace(channel).await;
        let session = self.client.open_session(&self.token);
        let posted = timed(session.chat_post_message(&req)).await?;
        Ok(posted.ts.to_string())
    }

    /// Edit the status message `ts` to show `out`'s content.
    async fn edit_status(
        &self,
        channel: &str,
        ts: &str,
        out: &Outgoing<'_>,
    ) -> Result<(), DeliveryError> {
        let req = SlackApiChatUpdateRequest::new(
            channel.to_string().into(),
            content(out.post, out.incident),
            ts.to_string().into(),
        );
        self.pace(channel).await;
        let session = self.client.open_session(&self.token);
        timed(session.chat_update(&req)).await.map(|_| ())
    }

    async fn pin(&self, channel: &str, ts: &str) {
        let session = self.client.open_session(&self.token);
        let pin = SlackApiPinsAddRequest::new(channel.to_string().into(), ts.to_string().into());
        // The message exists now: a failed pin must not make the outbox post it again.
        match timed(session.pins_add(&pin)).await {
            Ok(_) => {}
            Err(e) if e.message.contains("already_pinned") => {}
            Err(e) => warn!(channel, error = %e, "status message posted but not pinned"),
        }
    }

    async fn status(&self, channel: &str, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        if let Some(ts) = out.status_message {
            match self.edit_status(channel, ts, out).await {
                Ok(()) => return Ok(ts.to_string()),
                // Someone deleted the status message: post a new one below.
                Err(e) if e.message.contains("message_not_found") => {}
                Err(e) => return Err(e),
            }
        } else if (out.status_in_doubt || out.earlier_sends > 0)
            && let Some(incident) = out.incident
            && let Some(ts) = self
                .find_posted(
                    channel,
                    out.created_at - STATUS_LOOKBACK,
                    &[
                        ("incident", incident.to_string()),
                        ("kind", PostKind::Status.label().to_string()),
                    ],
                )
                .await
        {
            // An earlier try created it and its answer was lost: bring that one up to date.
            self.edit_status(channel, &ts, out).await?;
            self.pin(channel, &ts).await;
            return Ok(ts);
        }
        let ts = self.post(channel, out).await?;
        self.pin(channel, &ts).await;
        Ok(ts)
    }
}

impl ChatSink for Slack {
    fn deliver<'a>(&'a self, out: Outgoing<'a>) -> BoxFuture<'a, Result<String, DeliveryError>> {
        Box::pin(async move {
            let (platform, channel) = Platform::of(out.channel);
            if platform != Platform::Slack {
                return Err(DeliveryError::permanent("not a Slack channel"));
            }
            match out.post.kind {
                PostKind::Status => self.status(channel, &out).await,
                _ => self.post(channel, &out).await,
            }
        })
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("json") => "application/json",
        Some("csv") => "text/csv",
        _ => "text/markdown",
    }
}

/// Cut `text` at a character boundary, saying it was cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(20);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n… (cut; see `/dr status`)", &text[..end])
}

/// Sections of at most `MAX_SECTION` characters, split at line ends.
fn sections(text: &str) -> Vec<SlackBlock> {
    let mut blocks = Vec::new();
    let mut chunk = String::new();
    for line in text.lines() {
        if !chunk.is_empty() && chunk.len() + line.len() + 1 > MAX_SECTION {
            blocks.push(section(&chunk));
            chunk.clear();
        }
        if !chunk.is_empty() {
            chunk.push('\n');
        }
        chunk.push_str(&clip(line, MAX_SECTION));
    }
    if !chunk.is_empty() {
        blocks.push(section(&chunk));
    }
    blocks.truncate(MAX_SECTIONS);
    blocks
}

fn section(text: &str) -> SlackBlock {
    SlackSectionBlock::new().with_text(md!("{}", text)).into()
}

fn button(
    label: &str,
    action: &str,
    value: String,
    style: SlackBlockButtonStyle,
) -> SlackActionBlockElement {
    SlackBlockButtonElement::new(pt!("{}", label))
        .with_action_id(action.to_string().into())
        .with_value(value)
        .with_style(style)
        .into()
}

/// Button action ids; the value names the incident and the target (`{incident}:{id}`), so a
/// button left over from an earlier incident in the channel is refused, never misapplied.
pub const ACTION_CONFIRM: &str = "dr_confirm";
pub const ACTION_CANCEL: &str = "dr_cancel";
pub const ACTION_CHECK: &str = "dr_check";

/// Block Kit for a channel post.
pub fn content(post: &Post, incident: Option<IncidentId>) -> SlackMessageContent {
    let mut blocks = Vec::new();
    if post.kind == PostKind::Status {
        let title = post.text.lines().next().unwrap_or("Incident status");
        blocks.push(SlackHeaderBlock::new(pt!("{}", clip(title, 140))).into());
        blocks.extend(sections(
            &post.text.lines().skip(1).collect::<Vec<_>>().join("\n"),
        ));
    } else {
        blocks.extend(sections(&post.text));
    }
    if post.sandbox {
        blocks.push(
            SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(
                SlackBlockMarkDownText::new(
                    "*SANDBOX*: simulated cluster, nothing real was changed".into(),
                ),
            )])
            .into(),
        );
    }
    if let (Some(preview), Some(incident)) = (&post.preview, incident) {
        blocks.push(
            SlackActionsBlock::new(vec![
                button(
                    &format!("Confirm {preview}"),
                    ACTION_CONFIRM,
                    format!("{incident}:{preview}"),
                    SlackBlockButtonStyle::Primary,
                ),
                button(
                    "Cancel",
                    ACTION_CANCEL,
                    format!("{incident}:{preview}"),
                    SlackBlockButtonStyle::Danger,
                ),
            ])
            .into(),
        );
    }
    SlackMessageContent::new()
        .with_text(clip(&post.plain(), MAX_TEXT))
        .with_blocks(blocks)
}

/// Block Kit for a reply with tick buttons for the open checklist items.
pub fn checklist_blocks(
    text: &str,
    incident: IncidentId,
    open: &[(String, String)],
) -> Vec<SlackBlock> {
    let mut blocks = sections(text);
    // Five buttons a row reads well; Slack allows 25 per actions block and 50 blocks.
    for row in open.chunks(5).take(45usize.saturating_sub(blocks.len())) {
        blocks.push(
            SlackActionsBlock::new(
                row.iter()
                    .map(|(id, _)| {
                        button(
                            &format!("Tick {id}"),
                            ACTION_CHECK,
                            format!("{incident}:{id}"),
                            SlackBlockButtonStyle::Primary,
                        )
                    })
                    .collect(),
            )
            .into(),
        );
    }
    blocks
}

/// Clone-able handle for the server.
pub type SharedSlack = Arc<Slack>;
