//! `drbot doctor` for `[paging]`: harmless calls only (no event is sent: a test page would
//! wake someone).

use hyper::Method;

use super::{Check, fail, pass};
use crate::chat::http::HttpClient;
use crate::chat::pager::rest_headers;
use crate::config::{PagingProvider, PagingSettings, target_name};

/// `docs/events-API-v2/02-Trigger-Events.md`: "the 32 character Integration Key".
const PAGERDUTY_KEY_LEN: usize = 32;

/// The paging provider's checks (none when paging is off).
pub async fn paging(settings: &PagingSettings) -> Vec<Check> {
    let Some(provider) = settings.provider() else {
        return Vec::new();
    };
    let mut checks = route_checks(settings, provider);
    if let Some(key) = settings
        .api_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        checks.push(rest_key(&settings.api_url, key).await);
    } else if !settings.oncall.is_empty() {
        checks.push(fail(
            "paging rest key",
            "paging.oncall is set but paging.api_key is not: /dr oncall cannot ask PagerDuty",
            "set paging.api_key (DRBOT__PAGING__API_KEY) to a read-only PagerDuty REST key",
        ));
    }
    checks.push(webhook_check(settings));
    checks
}

/// One check per route: the key has the provider's shape. Names the target, never the key.
fn route_checks(settings: &PagingSettings, provider: PagingProvider) -> Vec<Check> {
    settings
        .routes
        .iter()
        .map(|(name, key)| {
            let target = target_name(name);
            let check = format!("paging route {target}");
            let key = key.trim();
            match provider {
                PagingProvider::PagerDuty
                    if key.chars().count() == PAGERDUTY_KEY_LEN
                        && key.chars().all(|c| c.is_ascii_alphanumeric()) =>
                {
                    pass(
                        check,
                        format!("{target}: an Events API v2 integration key (32 characters)"),
                    )
                }
                PagingProvider::PagerDuty => fail(
                    check,
                    format!("{target}: the key is not a PagerDuty integration key (32 letters and digits)"),
                    format!("copy the Integration Key of the service's Events API v2 integration into paging.routes.{target}"),
                ),
                // Opsgenie's key format is not documented in what we have: presence only
                // (unverified beyond that).
                PagingProvider::Opsgenie if !key.is_empty() && !key.contains(char::is_whitespace) => {
                    pass(check, format!("{target}: an Opsgenie integration key is set (its shape is not checked)"))
                }
                PagingProvider::Opsgenie => fail(
                    check,
                    format!("{target}: the key is empty or has spaces"),
                    format!("copy the API key of the Opsgenie (or JSM) API integration into paging.routes.{target}"),
                ),
            }
        })
        .collect()
}

/// `GET /abilities` (PagerDuty/api-schema `reference/REST/openapiv3.json`, `listAbilities`):
/// a read that changes nothing. That a read-only key may make it is unverified.
async fn rest_key(api_url: &str, key: &str) -> Check {
    const NAME: &str = "paging rest key";
    let headers = rest_headers(key);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let url = format!("{}/abilities", api_url.trim_end_matches('/'));
    match HttpClient::default()
        .send(Method::GET, &url, &headers, None)
        .await
    {
        Ok(r) if r.ok() => pass(NAME, "REST key accepted"),
        Ok(r) if r.status == 401 => fail(
            NAME,
            "PagerDuty refused the REST key (401)",
            "set paging.api_key (DRBOT__PAGING__API_KEY) to a valid PagerDuty REST API key (read-only is enough), the key alone without `Token token=`",
        ),
        Ok(r) => fail(
            NAME,
            format!("PagerDuty answered GET /abilities with HTTP {}", r.status),
            "check paging.api_url (https://api.pagerduty.com, or the EU one) and try again",
        ),
        Err(e) => fail(
            NAME,
            format!("could not ask PagerDuty: {e}"),
            "check paging.api_url and that this host can reach it",
        ),
    }
}

fn webhook_check(settings: &PagingSettings) -> Check {
    let secrets = settings
        .webhook_secrets
        .iter()
        .filter(|s| !s.trim().is_empty())
        .count();
    if secrets == 0 {
        pass(
            "paging webhook",
            "acknowledgements will not come back: set paging.webhook_secrets and point a V3 webhook subscription at /pagerduty/webhook",
        )
    } else {
        pass(
            "paging webhook",
            format!(
                "{secrets} signing secret(s) set: /pagerduty/webhook checks X-PagerDuty-Signature"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(provider: &str, routes: &[(&str, &str)]) -> PagingSettings {
        PagingSettings {
            provider: Some(provider.into()),
            routes: routes
                .iter()
                .map(|(t, k)| (t.to_string(), k.to_string()))
                .collect(),
            ..PagingSettings::default()
        }
    }

    #[test]
    fn a_short_pagerduty_key_fails_without_being_shown() {
        let key = "R0UT1NGKEY000000000000000000001";
        let s = settings(
            "pagerduty",
            &[("dr-lead", key), ("ic", "R0UT1NGKEY0000000000000000000001")],
        );
        let checks = route_checks(&s, PagingProvider::PagerDuty);
        assert_eq!(checks.len(), 2);
        let bad = checks.iter().find(|c| c.name == "paging route dr-lead");
        assert!(bad.is_some_and(|c| !c.ok));
        assert!(checks.iter().any(|c| c.name == "paging route ic" && c.ok));
        for c in &checks {
            assert!(!c.detail.contains("R0UT1NG"), "a key in a detail");
            assert!(
                !c.fix.as_deref().unwrap_or_default().contains("R0UT1NG"),
                "a key in a fix"
            );
        }
    }

    #[test]
    fn without_secrets_the_webhook_check_says_acknowledgements_will_not_come_back() {
        let s = settings("pagerduty", &[]);
        let c = webhook_check(&s);
        assert!(c.ok && c.detail.contains("acknowledgements will not come back"));
    }
}
