//! Who may look: viewer tokens (a bearer header, or a signed cookie from `/login`), an
//! authenticating proxy's header from the proxy's own address, or nobody asked (loopback).

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::http::{HeaderMap, HeaderName, header};
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{KeyInit, Mac};

use crate::config::{WebAuth, WebSettings};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub const COOKIE: &str = "drbot_web";
/// Wrong guesses from one address before each further one costs a wait.
const FREE_FAILURES: u32 = 3;
/// The wait after a wrong guess doubles up to this.
const MAX_WAIT_SECONDS: i64 = 300;
/// Addresses remembered for backoff; past this the ones no longer waiting are forgotten.
const MAX_TRACKED: usize = 10_000;

pub enum Access {
    Token(Vec<String>),
    Proxy {
        header: HeaderName,
        proxies: Vec<IpAddr>,
        allow: Vec<String>,
    },
    Open,
}

/// Why a request gets no page.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No credential, or a wrong or expired one.
    SignIn,
    /// Too many wrong tokens from this address: wait this many seconds.
    SlowDown(i64),
    /// Signed in at the proxy, but not on the allow-list, or the header came from elsewhere.
    NotAllowed,
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    until: DateTime<Utc>,
}

pub struct Guard {
    pub access: Access,
    key: [u8; 32],
    pub secure: bool,
    session: TimeDelta,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read a cookie signing key from /dev/urandom: {0}")]
pub struct KeyError(std::io::Error);

impl Guard {
    pub fn new(settings: &WebSettings) -> Result<Guard, KeyError> {
        let key = match &settings.cookie_key {
            // Replicas sharing the configured key accept each other's logins.
            Some(secret) => {
                let digest = <sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes());
                let mut key = [0u8; 32];
                key.copy_from_slice(&digest);
                key
            }
            // A key per process: a restart signs everyone out, which a read-only view can afford.
            None => {
                let mut key = [0u8; 32];
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut key))
                    .map_err(KeyError)?;
                key
            }
        };
        let access = match settings.auth_mode() {
            Some(WebAuth::Proxy) => Access::Proxy {
                header: HeaderName::try_from(settings.proxy_header.as_str())
                    .unwrap_or(HeaderName::from_static("x-forwarded-email")),
                proxies: settings.proxy_addrs(),
                allow: settings.allow.iter().map(|a| a.to_lowercase()).collect(),
            },
            Some(WebAuth::None) => Access::Open,
            _ => Access::Token(
                settings
                    .tokens
                    .iter()
                    .filter(|t| !t.trim().is_empty())
                    .cloned()
                    .collect(),
            ),
        };
        Ok(Guard {
            access,
            key,
            secure: settings
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
            session: TimeDelta::hours(settings.session_hours),
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the request may see pages.
    pub fn check(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        match &self.access {
            Access::Open => Ok(()),
            Access::Proxy {
                header,
                proxies,
                allow,
            } => {
                // Anyone who reaches the listener past the proxy could send the header.
                if !proxies.contains(&peer) {
                    return Err(Refusal::NotAllowed);
                }
                let who = headers
                    .get(header)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_lowercase())
                    .unwrap_or_default();
                if allowed(&who, allow) {
                    Ok(())
                } else {
                    Err(Refusal::NotAllowed)
                }
            }
            Access::Token(_) => {
                if let Some(bearer) = bearer(headers) {
                    return self.try_token(peer, bearer, now);
                }
                match cookie(headers) {
                    Some(c) if self.cookie_valid(c, now) => Ok(()),
                    _ => Err(Refusal::SignIn),
                }
            }
        }
    }

    /// A viewer token given at `/login` or as a bearer: right, wrong, or too soon after
    /// wrong ones (then it is not even compared).
    pub fn try_token(&self, peer: IpAddr, given: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        let Access::Token(tokens) = &self.access else {
            return Err(Refusal::SignIn);
        };
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = failures.get(&peer)
            && f.until > now
        {
            return Err(Refusal::SlowDown((f.until - now).num_seconds().max(1)));
        }
        // Every token is compared, so the time taken says nothing about which came close.
        let right = tokens.iter().fold(false, |hit, t| {
            super::super::same_secret(given.as_bytes(), t.as_bytes()) | hit
        });
        if right {
            failures.remove(&peer);
            return Ok(());
        }
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, f| f.until > now);
        }
        let f = failures.entry(peer).or_insert(Failures {
            count: 0,
            until: now,
        });
        f.count += 1;
        if f.count >= FREE_FAILURES {
            let wait = 1i64 << (f.count - FREE_FAILURES).min(9);
            f.until = now + TimeDelta::seconds(wait.min(MAX_WAIT_SECONDS));
        }
        Err(Refusal::SignIn)
    }

    /// The cookie a successful login sets.
    pub fn session_cookie(&self, now: DateTime<Utc>) -> String {
        let expires = (now + self.session).timestamp();
        format!(
            "{COOKIE}={expires}.{}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
            self.sign(expires),
            self.session.num_seconds(),
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The cookie that ends a session.
    pub fn cleared_cookie(&self) -> String {
        format!(
            "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
            if self.secure { "; Secure" } else { "" }
        )
    }

    fn mac(&self, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"drbot-web-session:");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    fn sign(&self, expires: i64) -> String {
        hex::encode(self.mac(expires).finalize().into_bytes())
    }

    fn cookie_valid(&self, value: &str, now: DateTime<Utc>) -> bool {
        let Some((expires, sig)) = value.split_once('.') else {
            return false;
        };
        let (Ok(expires), Ok(sig)) = (expires.parse::<i64>(), hex::decode(sig)) else {
            return false;
        };
        // `verify_slice` compares in constant time.
        self.mac(expires).verify_slice(&sig).is_ok() && now.timestamp() < expires
    }
}

fn allowed(who: &str, allow: &[String]) -> bool {
    let Some((_, domain)) = who.rsplit_once('@') else {
        return false;
    };
    !domain.is_empty()
        && allow
            .iter()
            .any(|a| a == who || a.strip_prefix('@').is_some_and(|d| d == domain))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// A browser's POST from another site (CSRF): `Sec-Fetch-Site` when sent, else `Origin`
/// against the `Host` it was sent to. Clients that send neither are not browsers.
pub fn cross_site(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (get("origin"), get("host")) {
        (None, _) => false,
        (Some(origin), Some(host)) => {
            let bare = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            bare != Some(host)
        }
        (Some(_), None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(auth: &str) -> Guard {
        let settings = WebSettings {
            listen: Some("127.0.0.1:0".into()),
            auth: auth.into(),
            tokens: vec!["viewer-token-1".into()],
            proxy: vec!["10.0.0.5".into()],
            allow: vec!["@example.com".into(), "bob@other.org".into()],
            ..Default::default()
        };
        Guard::new(&settings).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_cookie_holds_until_it_expires_and_cannot_be_forged() {
        let g = guard("token");
        let now = at("2026-02-08T10:00:00Z");
        let set = g.session_cookie(now);
        let value = set
            .strip_prefix("drbot_web=")
            .and_then(|v| v.split(';').next())
            .unwrap();
        assert!(g.cookie_valid(value, now + TimeDelta::hours(11)));
        assert!(!g.cookie_valid(value, now + TimeDelta::hours(12)));
        let (expires, sig) = value.split_once('.').unwrap();
        let later = expires.parse::<i64>().unwrap() + 86_400;
        assert!(!g.cookie_valid(&format!("{later}.{sig}"), now));
        assert!(!g.cookie_valid("garbage", now));
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(
            !set.contains("Secure"),
            "plain http unless public_url is https"
        );
        let https = Guard::new(&WebSettings {
            public_url: Some("https://drbot.example.com".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(https.session_cookie(now).ends_with("; Secure"));
    }

    #[test]
    fn replicas_with_one_cookie_key_accept_each_others_logins() {
        let now = at("2026-02-08T10:00:00Z");
        let value = |g: &Guard| {
            let set = g.session_cookie(now);
            set.strip_prefix("drbot_web=")
                .and_then(|v| v.split(';').next())
                .unwrap()
                .to_string()
        };
        let keyed = || {
            Guard::new(&WebSettings {
                cookie_key: Some("k".repeat(40)),
                ..Default::default()
            })
            .unwrap()
        };
        let (a, b) = (keyed(), keyed());
        assert!(b.cookie_valid(&value(&a), now));
        let other = Guard::new(&WebSettings {
            cookie_key: Some("o".repeat(40)),
            ..Default::default()
        })
        .unwrap();
        assert!(!other.cookie_valid(&value(&a), now));
        let (c, d) = (guard("token"), guard("token"));
        assert!(
            !d.cookie_valid(&value(&c), now),
            "unkeyed: one process each"
        );
    }

    #[test]
    fn wrong_tokens_cost_a_growing_wait_and_the_right_one_resets_it() {
        let g = guard("token");
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let now = at("2026-02-08T10:00:00Z");
        for _ in 0..FREE_FAILURES {
            assert_eq!(g.try_token(peer, "wrong", now), Err(Refusal::SignIn));
        }
        assert_eq!(
            g.try_token(peer, "viewer-token-1", now),
            Err(Refusal::SlowDown(1))
        );
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(g.try_token(other, "viewer-token-1", now), Ok(()));
        let later = now + TimeDelta::seconds(1);
        assert_eq!(g.try_token(peer, "wrong", later), Err(Refusal::SignIn));
        assert_eq!(
            g.try_token(peer, "viewer-token-1", later),
            Err(Refusal::SlowDown(2))
        );
        let after = later + TimeDelta::seconds(2);
        assert_eq!(g.try_token(peer, "viewer-token-1", after), Ok(()));
        assert_eq!(g.try_token(peer, "wrong", after), Err(Refusal::SignIn));
    }

    #[test]
    fn the_proxy_header_counts_only_from_the_proxy_and_for_the_allowed() {
        let g = guard("proxy");
        let now = at("2026-02-08T10:00:00Z");
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let with = |who: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-email", who.parse().unwrap());
            h
        };
        assert_eq!(g.check(proxy, &with("Alice@Example.com"), now), Ok(()));
        assert_eq!(g.check(proxy, &with("bob@other.org"), now), Ok(()));
        for who in ["carol@other.org", "x@example.com.evil", "example.com", ""] {
            assert_eq!(g.check(proxy, &with(who), now), Err(Refusal::NotAllowed));
        }
        let elsewhere: IpAddr = "10.0.0.6".parse().unwrap();
        assert_eq!(
            g.check(elsewhere, &with("alice@example.com"), now),
            Err(Refusal::NotAllowed)
        );
    }

    #[test]
    fn posts_from_other_sites_are_told_apart() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert!(!cross_site(&h(&[("sec-fetch-site", "same-origin")])));
        assert!(cross_site(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&h(&[("sec-fetch-site", "same-site")])));
        assert!(!cross_site(&h(&[
            ("origin", "http://a:1"),
            ("host", "a:1")
        ])));
        assert!(cross_site(&h(&[
            ("origin", "https://evil.example"),
            ("host", "a:1")
        ])));
        assert!(!cross_site(&h(&[("host", "a:1")])));
    }
}
