//! Self-tests of the Slack and Discord stand-ins and the webhook fixtures: real client
//! libraries talk to the stand-ins and parse the fixtures, so the other integration
//! tests can trust both.

#[path = "../support/mod.rs"]
mod support;

mod discord;
mod slack;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use support::discord_api::DiscordApi;
use support::http::{self as h, Part};
use support::slack_api::{self, Failure, SlackApi};

/// Safety net for waits; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(20);
const TOKEN: &str = "xoxb-standin-token";

fn slack_client(base: &str) -> SlackHyperClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    SlackClient::new(SlackClientHyperConnector::with_connector(https).with_slack_api_url(base))
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Authorization", format!("Bearer {token}")),
        (
            "Content-Type",
            "application/json; charset=utf-8".to_string(),
        ),
    ]
}
