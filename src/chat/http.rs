//! A small HTTP client for the calls no SDK makes for us: Discord REST and Slack's
//! `response_url`. Plain http is allowed so stand-ins on 127.0.0.1 can take the calls.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Longest a platform call may take; after that the outcome is unknown (see ARCHITECTURE.md).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Response bodies larger than this are cut off: platform replies are small.
const MAX_RESPONSE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request timed out after {0:?}; it may or may not have been applied")]
    Timeout(Duration),
    #[error("could not reach {0}")]
    Connect(String),
    #[error("bad request: {0}")]
    Build(String),
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// Slack's `x-oauth-scopes`: the scopes the token has.
    pub oauth_scopes: Option<String>,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

pub fn connector() -> HttpsConnector<HttpConnector> {
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build()
}

#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector()),
        }
    }
}

impl HttpClient {
    /// Send one request. `headers` must not be logged by callers: they carry tokens.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, HttpError> {
        let mut req = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header("content-type", content_type);
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|e| HttpError::Build(e.to_string()))?;
        let host = req.uri().host().unwrap_or_default().to_string();
        let call = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|_| HttpError::Connect(host.clone()))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.min(3600.0)));
            let oauth_scopes = resp
                .headers()
                .get("x-oauth-scopes")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|_| HttpError::Connect(host.clone()))?
                .to_bytes();
            Ok(Response {
                status,
                retry_after,
                oauth_scopes,
                body,
            })
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| HttpError::Timeout(CALL_TIMEOUT))?
    }

    pub async fn json(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Result<Response, HttpError> {
        let bytes = serde_json::to_vec(body).map_err(|e| HttpError::Build(e.to_string()))?;
        self.send(method, url, headers, Some(("application/json", bytes)))
            .await
    }
}

/// Percent-encode one URL part (a path segment or a query value): only RFC 3986 §2.3
/// unreserved characters stay, so a value from data can neither add a path segment nor end
/// the query parameter it sits in.
pub fn path_segment(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
