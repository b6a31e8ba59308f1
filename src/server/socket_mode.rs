//! Slack Socket Mode (`slack.socket_mode = true`), for workspaces that cannot expose drbot
//! over HTTPS: drbot opens WebSocket connections to Slack itself (the URL comes from
//! `apps.connections.open`, called with the app-level `xapp-…` token) and receives slash
//! commands and button presses as envelopes.
//!
//! Each envelope is handled exactly as the HTTP routes handle a request (`slack.rs`): the
//! same request keys (`slack:{trigger_id}`, the button's action key), so an envelope Slack
//! redelivers is done once; the same time budget, with slow answers sent to `response_url`.
//! A command's answer travels back in the envelope's acknowledgement. There is no signature
//! to check: the connection itself is authenticated by the app token.
//!
//! Shutdown refuses new envelopes without acknowledging them (Slack redelivers them to
//! another connection), closes the connections and waits for the envelopes being handled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::http::StatusCode;
use serde_json::Value;
use slack_morphism::prelude::*;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::Server;
use super::slack::{PLATFORM, block_actions, run_command};
use crate::chat::http::connector;
use crate::chat::slack::Slack;
use crate::config::SlackSettings;

type CallbackError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What Socket Mode needs from the settings; `None` when it is off.
pub(super) struct SocketSettings {
    app_token: String,
    api_url: String,
}

impl SocketSettings {
    pub(super) fn from(settings: &SlackSettings) -> Option<SocketSettings> {
        if !settings.socket_mode {
            return None;
        }
        Some(SocketSettings {
            app_token: settings.app_token.clone()?,
            api_url: settings.api_url.trim_end_matches('/').to_string(),
        })
    }
}

/// The running listener; [`SocketMode::stop`] ends it.
pub(super) struct SocketMode {
    listener: Arc<SlackClientSocketModeListener<SlackClientHyperHttpsConnector>>,
    shared: Arc<Shared>,
    started: JoinHandle<()>,
}

/// Handed to the callbacks through the listener's user state.
struct Shared {
    server: Arc<Server>,
    slack: Arc<Slack>,
    stopping: AtomicBool,
    /// Each envelope being handled holds a read guard; stopping takes the write side.
    busy: RwLock<()>,
}

/// An envelope arrived while stopping: it is left unacknowledged for Slack to redeliver.
#[derive(Debug, thiserror::Error)]
#[error("drbot is stopping; Slack will redeliver this envelope")]
struct Stopping;

impl SocketMode {
    /// Connect in the background when Socket Mode is on and Slack is configured; returns at
    /// once. A wrong app token shows in the log (and the listener keeps retrying, as it does
    /// after any lost connection).
    pub(super) fn start(server: &Arc<Server>) -> Option<SocketMode> {
        let (Some(settings), Some(slack)) = (&server.slack_socket, &server.slack) else {
            return None;
        };
        let client = Arc::new(SlackClient::new(
            SlackClientHyperConnector::with_connector(connector())
                .with_slack_api_url(&settings.api_url),
        ));
        let shared = Arc::new(Shared {
            server: server.clone(),
            slack: slack.clone(),
            stopping: AtomicBool::new(false),
            busy: RwLock::new(()),
        });
        let environment = Arc::new(
            SlackClientEventsListenerEnvironment::new(client)
                .with_error_handler(on_error)
                .with_user_state(shared.clone()),
        );
        let callbacks = SlackSocketModeListenerCallbacks::new()
            .with_hello_events(on_hello)
            .with_command_events(on_command)
            .with_interaction_events(on_interaction)
            .with_push_events(on_push_event);
        let listener = Arc::new(SlackClientSocketModeListener::new(
            &SlackClientSocketModeConfig::new(),
            environment,
            callbacks,
        ));
        let token = SlackApiToken::new(settings.app_token.clone().into());
        let started = tokio::spawn({
            let listener = listener.clone();
            async move {
                match listener.listen_for(&token).await {
                    Ok(()) => listener.start().await,
                    Err(e) => warn!(error = %e, "Slack Socket Mode could not start"),
                }
            }
        });
        Some(SocketMode {
            listener,
            shared,
            started,
        })
    }

    /// Refuse new envelopes, close the connections, wait for the envelopes in hand.
    pub(super) async fn stop(self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = self.started.await;
        self.listener.shutdown().await;
        drop(self.shared.busy.write().await);
    }
}

async fn shared_of(state: &SlackClientEventsUserState) -> Result<Arc<Shared>, CallbackError> {
    state
        .read()
        .await
        .get_user_state::<Arc<Shared>>()
        .cloned()
        .ok_or_else(|| "Socket Mode listener has no drbot state".into())
}

/// Slack's `hello` on each new connection. (Generic because slack-morphism does not export
/// the hello event's type by a usable path.)
async fn on_hello<Hello: Send>(
    _hello: Hello,
    _client: Arc<SlackHyperClient>,
    _state: SlackClientEventsUserState,
) {
    info!("connected to Slack over Socket Mode");
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> Result<SlackCommandEventResponse, CallbackError> {
    let shared = shared_of(&state).await?;
    let _busy = shared.busy.read().await;
    if shared.stopping.load(Ordering::SeqCst) {
        return Err(Stopping.into());
    }
    let started = Instant::now();
    let answer = run_command(&shared.server, &shared.slack, event.into()).await;
    shared.server.metrics.ack(PLATFORM, started.elapsed());
    Ok(command_response(answer))
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> Result<(), CallbackError> {
    let shared = shared_of(&state).await?;
    let _busy = shared.busy.read().await;
    if shared.stopping.load(Ordering::SeqCst) {
        return Err(Stopping.into());
    }
    let started = Instant::now();
    // Nothing but buttons is offered to users; anything else is acknowledged and dropped.
    if let SlackInteractionEvent::BlockActions(actions) = &event
        && let Err(what) = block_actions(&shared.server, &shared.slack, actions)
    {
        // Redelivery would not make it better: acknowledge it all the same.
        shared.server.metrics.rejected(PLATFORM, "malformed");
        warn!(what, "ignored a Socket Mode interaction");
    }
    shared.server.metrics.ack(PLATFORM, started.elapsed());
    Ok(())
}

/// drbot subscribes to no events; should the app be given some, they are acknowledged and
/// dropped rather than left for Slack to redeliver forever.
async fn on_push_event(
    event: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    _state: SlackClientEventsUserState,
) -> Result<(), CallbackError> {
    debug!(event_id = %event.event_id, "ignored a Slack event");
    Ok(())
}

/// Errors of the callbacks and of the connections. A failed callback's envelope is not
/// acknowledged (the status is not a success), so Slack delivers it again.
fn on_error(
    err: Box<dyn std::error::Error + Send + Sync + 'static>,
    _client: Arc<SlackHyperClient>,
    _state: SlackClientEventsUserState,
) -> StatusCode {
    if err.downcast_ref::<Stopping>().is_some() {
        debug!("left an envelope for Slack to redeliver: stopping");
    } else {
        warn!(error = %err, "Slack Socket Mode");
    }
    StatusCode::SERVICE_UNAVAILABLE
}

/// Our JSON answer (`response_type`, `text`, maybe `blocks`) as the acknowledgement payload.
fn command_response(answer: Value) -> SlackCommandEventResponse {
    match serde_json::from_value::<SlackCommandEventResponse>(answer.clone()) {
        Ok(response) => response,
        Err(e) => {
            warn!(error = %e, "answer did not fit a Socket Mode acknowledgement; sending its text only");
            let text = answer["text"].as_str().unwrap_or_default().to_string();
            SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text))
                .with_response_type(SlackMessageResponseType::Ephemeral)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::slack::checklist_blocks;
    use serde_json::json;

    #[test]
    fn answers_keep_their_kind_text_and_buttons_in_the_acknowledgement() {
        let public =
            command_response(json!({ "response_type": "in_channel", "text": "INC-1 declared" }));
        assert_eq!(
            serde_json::to_value(&public).unwrap(),
            json!({ "response_type": "in_channel", "text": "INC-1 declared" })
        );
        let blocks = checklist_blocks("Open items", 1, &[("9.1.1".into(), "Check".into())]);
        let answer = json!({
            "response_type": "ephemeral",
            "text": "Open items",
            "blocks": serde_json::to_value(&blocks).unwrap(),
        });
        let private = serde_json::to_value(command_response(answer.clone())).unwrap();
        assert_eq!(private, answer);
    }

    #[test]
    fn off_unless_switched_on_with_a_token() {
        let mut settings = SlackSettings {
            app_token: Some("xapp-1".into()),
            ..SlackSettings::default()
        };
        assert!(SocketSettings::from(&settings).is_none());
        settings.socket_mode = true;
        settings.api_url = "http://127.0.0.1:9/api/".into();
        let on = SocketSettings::from(&settings).unwrap();
        assert_eq!(on.api_url, "http://127.0.0.1:9/api");
        assert_eq!(on.app_token, "xapp-1");
    }
}
