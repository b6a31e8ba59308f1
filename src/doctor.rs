//! `drbot doctor`: whether this install can do what the SOP needs, before the night it is
//! needed. One line per check, pass or fail, and for a failure what to do about it.

use hyper::Method;
use serde::Serialize;
use serde_json::Value;

use crate::chat::http::HttpClient;
use crate::chat::manifest;
use crate::clock::Clock;
use crate::cluster::kube::Kube;
use crate::cluster::kube::access::{self, Needed};
use crate::config::{Settings, WebAuth, WebSettings};
use crate::store::Store;

mod paging;
mod tracker;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// What to do when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: true,
        detail: detail.into(),
        fix: None,
    }
}

fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: false,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// Where the Discord `/dr` command is registered.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub discord_guild: Option<String>,
}

/// Run every check that applies to `settings` (a failed load is reported by the caller).
pub async fn run(
    settings: &Settings,
    clock: std::sync::Arc<dyn Clock>,
    opts: &Options,
) -> Vec<Check> {
    let mut checks = vec![pass("settings", "loaded; no unknown keys")];
    checks.extend(database(settings).await);
    if settings.slack.bot_token.is_some() {
        checks.extend(slack(settings).await);
    }
    if settings.discord.bot_token.is_some() {
        checks.extend(discord(settings, opts).await);
    }
    checks.extend(continuity(settings, clock.now().date_naive()));
    checks.extend(web(&settings.web).await);
    checks.extend(paging::paging(&settings.paging).await);
    checks.extend(tracker::tracker(&settings.tracker).await);
    match settings.cluster.backend.as_str() {
        "kubernetes" => checks.extend(kubernetes(settings, clock).await),
        _ => checks.push(pass(
            "cluster",
            "sandbox: a simulated cluster, nothing real is changed (set cluster.backend = \"kubernetes\" for production)",
        )),
    }
    checks
}

/// The URL without its password, for messages.
fn shown_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

async fn database(settings: &Settings) -> Vec<Check> {
    let url = shown_url(&settings.database.url);
    let opened = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        Store::open(&settings.database.url),
    )
    .await
    .unwrap_or_else(|_| {
        Err(crate::store::StoreError::Corrupt(
            "no answer within 10 s".into(),
        ))
    });
    let store = match opened {
        Ok(store) => store,
        Err(e) => {
            tracing::warn!(error = %e, "doctor: database");
            return vec![fail(
                "database",
                format!("cannot connect to {url}: {e}"),
                "check database.url (DRBOT__DATABASE__URL), that the server is up and reachable from here, and the credentials",
            )];
        }
    };
    let mut checks = vec![pass("database", format!("{url} reachable"))];
    checks.push(match store.pending_migrations().await {
        Ok(pending) if pending.is_empty() => pass("migrations", "schema is current"),
        // One process owns a SQLite file and migrates it at start.
        Ok(pending) if store.backend() == crate::store::Backend::Sqlite => pass(
            "migrations",
            format!(
                "{} migration(s) to apply; drbot applies them when it starts on this SQLite file",
                pending.len()
            ),
        ),
        Ok(pending) => fail(
            "migrations",
            format!("{} migration(s) not applied: {pending:?}", pending.len()),
            "run `drbot migrate` (the Helm chart does it in an init container)",
        ),
        Err(e) => fail(
            "migrations",
            format!("cannot read the applied migrations: {e}"),
            "run `drbot migrate`",
        ),
    });
    store.close().await;
    checks
}

/// The SRE guide's files load as drbot will load them at start, the DR plan's review is not
/// overdue, and the tabletop directory exists; nothing configured, nothing checked.
fn continuity(settings: &Settings, today: chrono::NaiveDate) -> Vec<Check> {
    let c = &settings.continuity;
    let named = |p: &Option<String>| p.as_deref().is_some_and(|p| !p.trim().is_empty());
    let mut checks = Vec::new();
    if named(&c.catalog) || named(&c.plan) || !c.clusters.is_empty() {
        match crate::catalog::Continuity::load(c.catalog.as_deref(), c.plan.as_deref(), &c.clusters)
        {
            Err(e) => checks.push(fail(
                "continuity",
                e.to_string(),
                "fix the file or the [continuity] setting named; drbot refuses to start until then",
            )),
            Ok(loaded) => {
                if let Some(catalog) = &loaded.catalog {
                    checks.push(pass(
                        "service catalog",
                        format!(
                            "{} services; {} database cluster(s) mapped to a service",
                            catalog.services.len(),
                            loaded.clusters.len()
                        ),
                    ));
                }
                if let Some(plan) = &loaded.plan {
                    let review = crate::features::drills::review_line(plan.next_review, today);
                    checks.push(match (plan.next_review, review) {
                        (Some(due), Some(line)) if due < today => fail(
                            "DR plan",
                            line,
                            "review the plan with its owner and set next_review to the next date",
                        ),
                        (_, Some(line)) => pass("DR plan", line),
                        (_, None) => pass("DR plan", "loaded; it names no next_review date"),
                    });
                }
            }
        }
    }
    if let Some(dir) = settings
        .tabletop
        .dir
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        checks.push(if std::path::Path::new(dir).is_dir() {
            pass("tabletop", format!("exercises are read from under {dir}"))
        } else {
            fail(
                "tabletop",
                format!("tabletop.dir {dir} is not a directory"),
                "create it and put the exercise files there, or unset tabletop.dir",
            )
        });
    }
    checks
}

/// The web view's settings, when `web.listen` turns it on: who may look, that its address
/// can be bound here, and its public URL. Token values and the cookie key are never shown.
pub async fn web(web: &WebSettings) -> Vec<Check> {
    let Some(listen) = web.listen.as_deref() else {
        return Vec::new();
    };
    let Ok(addr) = listen.parse::<std::net::SocketAddr>() else {
        return vec![fail(
            "web listen",
            format!("web.listen {listen:?} is not an address"),
            "set web.listen (DRBOT__WEB__LISTEN) to an IP and port like 127.0.0.1:8081 or 0.0.0.0:8081, or unset it to turn the web view off",
        )];
    };
    let mut checks = vec![web_auth(web, addr)];
    checks.push(web_bind(addr).await);
    checks.push(web_public_url(web, addr));
    checks
}

fn web_auth(web: &WebSettings, addr: std::net::SocketAddr) -> Check {
    const NAME: &str = "web auth";
    let loopback = addr.ip().is_loopback();
    match web.auth_mode() {
        None => fail(
            NAME,
            format!("web.auth {:?} is not a mode", web.auth),
            "set web.auth to \"token\" (viewer tokens), \"proxy\" (behind oauth2-proxy) or \"none\" (loopback listen only)",
        ),
        Some(WebAuth::None) if !loopback => fail(
            NAME,
            format!("web.auth = \"none\" on {addr}: anyone who reaches it reads every incident"),
            "use web.auth = \"token\" or \"proxy\", or listen on 127.0.0.1 (none is for the console demo)",
        ),
        Some(WebAuth::None) => pass(
            NAME,
            format!("none: nobody is asked, on loopback {addr} only"),
        ),
        Some(WebAuth::Token) => web_token_auth(web),
        Some(WebAuth::Proxy) => web_proxy_auth(web, addr),
    }
}

fn web_token_auth(web: &WebSettings) -> Check {
    const NAME: &str = "web auth";
    let tokens = web.tokens.iter().filter(|t| !t.trim().is_empty()).count();
    if tokens == 0 {
        return fail(
            NAME,
            "token: no viewer token in web.tokens, so nobody can sign in",
            "set DRBOT__WEB__TOKENS to one or more tokens, comma-separated (e.g. `openssl rand -hex 24`); the chart's secrets.webTokens does",
        );
    }
    match web.cookie_key.as_deref().map(|k| k.chars().count()) {
        None => fail(
            NAME,
            format!(
                "token: {tokens} viewer token(s), but no web.cookie_key: each process signs logins with a key of its own, so a login fails on the other replicas and a restart signs everyone out"
            ),
            "set DRBOT__WEB__COOKIE_KEY to 32 or more characters (e.g. `openssl rand -hex 32`), the same on every replica; the chart's secrets.webCookieKey does",
        ),
        Some(n) if n < 32 => fail(
            NAME,
            format!("token: web.cookie_key has {n} characters, fewer than 32"),
            "set DRBOT__WEB__COOKIE_KEY to 32 or more characters (e.g. `openssl rand -hex 32`)",
        ),
        Some(_) => pass(
            NAME,
            format!("token: {tokens} viewer token(s); logins signed with web.cookie_key"),
        ),
    }
}

fn web_proxy_auth(web: &WebSettings, addr: std::net::SocketAddr) -> Check {
    const NAME: &str = "web auth";
    let header = &web.proxy_header;
    if web.proxy.is_empty() {
        return fail(
            NAME,
            format!("proxy: web.proxy is empty, so {header} is believed from nobody"),
            "set web.proxy to the authenticating proxy's IP address (127.0.0.1 for the chart's oauth2-proxy sidecar)",
        );
    }
    if let Some(bad) = web
        .proxy
        .iter()
        .find(|p| p.trim().parse::<std::net::IpAddr>().is_err())
    {
        return fail(
            NAME,
            format!("proxy: web.proxy entry {bad:?} is not an IP address"),
            "list the proxy's IP addresses in web.proxy (like 127.0.0.1), not host names",
        );
    }
    if web.allow.iter().all(|a| a.trim().is_empty()) {
        return fail(
            NAME,
            "proxy: web.allow is empty, so nobody may look",
            "set web.allow to the addresses (alice@example.com) or @domains that may look",
        );
    }
    let proxies = web.proxy_addrs();
    // A loopback listener is out of reach of any proxy outside this host (or pod).
    if addr.ip().is_loopback()
        && let Some(far) = proxies.iter().find(|p| !p.is_loopback())
    {
        return fail(
            NAME,
            format!(
                "proxy: web.listen {addr} is loopback only, but the proxy {far} is not on this host: its requests cannot arrive"
            ),
            "run the proxy beside drbot (the chart's oauth2-proxy sidecar, web.proxy = [\"127.0.0.1\"]), or listen where the proxy reaches",
        );
    }
    let from: Vec<String> = proxies.iter().map(|p| p.to_string()).collect();
    pass(
        NAME,
        format!(
            "proxy: {header} believed from {} only; {} allow entr{}",
            from.join(", "),
            web.allow.len(),
            if web.allow.len() == 1 { "y" } else { "ies" }
        ),
    )
}

/// Binds the address and lets go. Taken already: a drbot whose `/healthz` answers is the
/// web view itself (doctor beside a running server); anything else is in the way.
async fn web_bind(addr: std::net::SocketAddr) -> Check {
    const NAME: &str = "web listen";
    let err = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            drop(listener);
            return pass(NAME, format!("{addr} can be bound"));
        }
        Err(e) => e,
    };
    match err.kind() {
        std::io::ErrorKind::AddrInUse => {
            if web_healthz(addr).await {
                pass(
                    NAME,
                    format!("{addr} is in use by a running drbot web view (/healthz answers ok)"),
                )
            } else {
                fail(
                    NAME,
                    format!("{addr} is in use by another process"),
                    "stop what listens there (`ss -ltnp` names it) or choose another port in web.listen",
                )
            }
        }
        std::io::ErrorKind::AddrNotAvailable => fail(
            NAME,
            format!("{} is no address of this host", addr.ip()),
            "listen on 0.0.0.0 (every interface), 127.0.0.1 (behind a sidecar) or an address this host has",
        ),
        std::io::ErrorKind::PermissionDenied => fail(
            NAME,
            format!("binding {addr} is not permitted"),
            "use a port of 1024 or above (the chart uses 8081)",
        ),
        _ => fail(
            NAME,
            format!("binding {addr}: {err}"),
            "choose another address in web.listen",
        ),
    }
}

async fn web_healthz(addr: std::net::SocketAddr) -> bool {
    let mut probe = addr;
    if probe.ip().is_unspecified() {
        probe.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let url = format!("http://{probe}/healthz");
    let client = HttpClient::default();
    let call = client.send(Method::GET, &url, &[], None);
    match tokio::time::timeout(std::time::Duration::from_secs(3), call).await {
        Ok(Ok(resp)) => resp.ok() && resp.body.trim_ascii() == b"ok",
        _ => false,
    }
}

fn web_public_url(web: &WebSettings, addr: std::net::SocketAddr) -> Check {
    const NAME: &str = "web public_url";
    let Some(url) = web.public_url.as_deref().filter(|u| !u.trim().is_empty()) else {
        return pass(
            NAME,
            "unset: chat messages carry no link to the incident page (set web.public_url to how people reach it)",
        );
    };
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(h) if !h.is_empty() && !h.contains(char::is_whitespace) => {}
        _ => {
            return fail(
                NAME,
                format!("{url:?} is not an http(s) URL"),
                "set web.public_url to how people reach the page, like https://drbot-web.example.com",
            );
        }
    }
    if url.starts_with("http://") && !addr.ip().is_loopback() {
        return pass(
            NAME,
            format!(
                "{url}: plain http, so the login cookie is not Secure (put https in front and name it here)"
            ),
        );
    }
    pass(
        NAME,
        format!("{url}: chat messages link to the incident page"),
    )
}

async fn slack(settings: &Settings) -> Vec<Check> {
    let token = settings.slack.bot_token.clone().unwrap_or_default();
    let url = format!("{}/auth.test", settings.slack.api_url.trim_end_matches('/'));
    let auth = format!("Bearer {token}");
    let resp = HttpClient::default()
        .send(
            Method::POST,
            &url,
            &[("authorization", auth.as_str())],
            None,
        )
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            return vec![fail(
                "slack",
                format!("auth.test: {e}"),
                "check slack.api_url and that Slack is reachable from here (egress 443)",
            )];
        }
    };
    let body = resp.json().unwrap_or(Value::Null);
    if body["ok"] != true {
        let error = body["error"].as_str().unwrap_or("no answer").to_string();
        return vec![fail(
            "slack",
            format!("auth.test refused the bot token: {error}"),
            "set slack.bot_token (DRBOT__SLACK__BOT_TOKEN) to the app's Bot User OAuth Token (xoxb-…)",
        )];
    }
    let mut checks = vec![pass(
        "slack",
        format!(
            "auth.test: bot {} in workspace {}",
            body["user"].as_str().unwrap_or("?"),
            body["team"].as_str().unwrap_or("?")
        ),
    )];
    let granted: Vec<String> = resp
        .oauth_scopes
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let missing: Vec<&str> = manifest::SLACK_BOT_SCOPES
        .iter()
        .copied()
        .filter(|s| !granted.iter().any(|g| g == s))
        .collect();
    checks.push(if missing.is_empty() {
        pass("slack scopes", manifest::SLACK_BOT_SCOPES.join(", "))
    } else {
        fail(
            "slack scopes",
            format!("the token lacks {}", missing.join(", ")),
            "add them under OAuth & Permissions (or recreate the app from commands/slack-app-manifest.json) and reinstall the app",
        )
    });
    checks
}

/// The first place `actual` differs from `expected`, looking only at what `expected` says
/// (Discord adds ids, versions and defaults of its own).
fn first_difference(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e.iter().find_map(|(k, v)| {
            let here = format!("{path}.{k}");
            match a.get(k) {
                Some(got) => first_difference(v, got, &here),
                None => Some(format!("{here} missing")),
            }
        }),
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (v, got))| first_difference(v, got, &format!("{path}[{i}]"))),
        (Value::Array(e), Value::Array(a)) => Some(format!(
            "{path}: {} entries registered, {} expected",
            a.len(),
            e.len()
        )),
        (e, a) if e == a => None,
        (e, a) => Some(format!("{path}: registered {a}, expected {e}")),
    }
}

async fn discord(settings: &Settings, opts: &Options) -> Vec<Check> {
    let d = &settings.discord;
    let Some(app) = &d.application_id else {
        return vec![fail(
            "discord",
            "discord.application_id is not set",
            "set DRBOT__DISCORD__APPLICATION_ID to the application's id",
        )];
    };
    let base = format!("{}/api/v10", d.api_url.trim_end_matches('/'));
    let path = match &opts.discord_guild {
        Some(g) => format!("{base}/applications/{app}/guilds/{g}/commands"),
        None => format!("{base}/applications/{app}/commands"),
    };
    let auth = format!("Bot {}", d.bot_token.clone().unwrap_or_default());
    let resp = match HttpClient::default()
        .send(
            Method::GET,
            &path,
            &[("authorization", auth.as_str())],
            None,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return vec![fail(
                "discord",
                format!("reading the application's commands: {e}"),
                "check discord.api_url and that Discord is reachable from here (egress 443)",
            )];
        }
    };
    if !resp.ok() {
        return vec![fail(
            "discord",
            format!("reading the application's commands: HTTP {}", resp.status),
            "check discord.bot_token and discord.application_id",
        )];
    }
    let mut checks = vec![pass("discord", format!("application {app} reachable"))];
    let registered = resp.json().unwrap_or(Value::Null);
    let expected = manifest::discord_commands();
    let expected = match expected {
        Value::Array(list) => list,
        other => vec![other],
    };
    let register = match &opts.discord_guild {
        Some(g) => format!("drbot commands register-discord --guild {g}"),
        None => "drbot commands register-discord".to_string(),
    };
    let mut problem = None;
    for command in &expected {
        let name = &command["name"];
        let found = registered
            .as_array()
            .and_then(|list| list.iter().find(|c| c["name"] == *name));
        problem = match found {
            None => Some(format!(
                "/{} is not registered",
                name.as_str().unwrap_or("dr")
            )),
            Some(found) => {
                first_difference(command, found, "").map(|d| format!("/dr differs at {d}"))
            }
        };
        if problem.is_some() {
            break;
        }
    }
    checks.push(match problem {
        None => pass(
            "discord /dr",
            "registered as in commands/discord-commands.json",
        ),
        Some(p) => fail("discord /dr", p, format!("run `{register}`")),
    });
    checks
}

async fn kubernetes(settings: &Settings, clock: std::sync::Arc<dyn Clock>) -> Vec<Check> {
    let kube = match Kube::connect(settings, clock).await {
        Ok(k) => k,
        Err(e) => {
            return vec![fail(
                "kubernetes",
                e.to_string(),
                "set kubernetes.kubeconfig and kubernetes.context, or run drbot in the cluster with its service account",
            )];
        }
    };
    let mut checks = Vec::new();
    match kube.server_version().await {
        Ok(v) => checks.push(pass("kubernetes", format!("API server {v} reachable"))),
        Err(e) => {
            checks.push(fail(
                "kubernetes",
                e.to_string(),
                "check the kubeconfig's server address and that the API server is reachable from here (NetworkPolicy egress 443/6443)",
            ));
            return checks;
        }
    }
    checks.push(match kube.missing_resources().await {
        Ok(missing) if missing.is_empty() => pass(
            "custom resources",
            "Velero v1, StackGres v1, Argo CD v1alpha1, Flux kustomize v1 and helm v2 are served",
        ),
        Ok(missing) => fail(
            "custom resources",
            format!("not served: {}", missing.join(", ")),
            "install the operator (and its CRDs) at the version drbot uses, or turn off the freeze mode that needs it",
        ),
        Err(e) => fail("custom resources", e.to_string(), "check the API server"),
    });
    let needed = access::needed(settings);
    let mut denied: Vec<Needed> = Vec::new();
    for need in &needed {
        match kube.can(need).await {
            Ok(true) => {}
            Ok(false) => denied.push(need.clone()),
            Err(e) => {
                checks.push(fail(
                    "permissions",
                    e.to_string(),
                    "drbot needs to create selfsubjectaccessreviews (every authenticated identity may)",
                ));
                denied.clear();
                break;
            }
        }
    }
    for need in &denied {
        let place = need
            .namespace
            .as_deref()
            .map_or("cluster-wide".to_string(), |ns| format!("in {ns}"));
        let qualified = if need.group.is_empty() {
            need.resource.to_string()
        } else {
            format!("{}.{}", need.resource, need.group)
        };
        checks.push(fail(
            format!("permission {} {qualified} {place}", need.verb),
            "denied",
            format!(
                "grant it (the Helm chart's `{}` role does when its namespaces include this one); check with `kubectl auth can-i {} {qualified}{}`",
                need.scope,
                need.verb,
                need.namespace
                    .as_deref()
                    .map(|ns| format!(" -n {ns}"))
                    .unwrap_or_default()
            ),
        ));
    }
    if denied.is_empty() && !checks.iter().any(|c| c.name == "permissions") {
        checks.push(pass(
            "permissions",
            format!("all {} needed permissions granted", needed.len()),
        ));
    }
    checks.extend(drill_secrets(&kube).await);
    checks.extend(offsite(settings).await);
    checks
}

/// StackGres reads a backup's object-storage Secrets in the restored cluster's namespace, so
/// a drill needs them in the drill namespace; drbot does not copy them.
async fn drill_secrets(kube: &Kube) -> Option<Check> {
    let name = "drill storage secrets";
    Some(match kube.drill_secrets().await {
        Ok(None) => return None,
        Ok(Some(missing)) if missing.is_empty() => pass(
            name,
            "the drill namespace holds the object-storage Secrets of every Completed SGBackup",
        ),
        Ok(Some(missing)) => fail(
            name,
            missing.join("; "),
            "copy each Secret into the drill namespace with the command given (a drill restore cannot start without them)",
        ),
        Err(e) => fail(
            name,
            e.to_string(),
            "drbot needs sgbackups list in the database namespace and secrets get in the drill namespace",
        ),
    })
}

async fn offsite(settings: &Settings) -> Vec<Check> {
    if !settings.offsite.enabled() {
        return vec![fail(
            "offsite",
            "no offsite bucket configured: the PITR window cannot be checked (SOP §6.2: the offsite bucket is the source of truth)",
            "set offsite.bucket, offsite.endpoint and the credentials",
        )];
    }
    let bucket = match crate::cluster::offsite::Offsite::new(&settings.offsite) {
        Ok(b) => b,
        Err(e) => return vec![fail("offsite", e.to_string(), "fix the [offsite] settings")],
    };
    if let Err(e) = bucket.reachable().await {
        return vec![fail(
            "offsite",
            e.to_string(),
            "check offsite.endpoint, the credentials and egress to the endpoint",
        )];
    }
    let mut checks = vec![pass(
        "offsite",
        format!("bucket {} reachable", bucket.bucket()),
    )];
    checks.push(match bucket.versioning().await {
        Ok(v) if v.label() == "Enabled" => pass("offsite versioning", "Enabled"),
        Ok(v) => fail(
            "offsite versioning",
            v.label().to_string(),
            "turn on versioning on the bucket (SOP §6.2), so a deleted or overwritten backup can be recovered",
        ),
        Err(e) => fail("offsite versioning", e.to_string(), "check the bucket's permissions"),
    });
    let clusters: Vec<String> = bucket.clusters().iter().map(|(c, _)| c.clone()).collect();
    for cluster in clusters {
        checks.push(match bucket.window(&cluster).await {
            Ok(w) => pass(
                format!("PITR window {cluster}"),
                format!("{} (from {})", w.range(), w.oldest_backup),
            ),
            Err(e) => fail(
                format!("PITR window {cluster}"),
                e.to_string(),
                "check that base backups and WAL of this cluster reach the bucket (offsite.clusters names its prefix)",
            ),
        });
    }
    checks
}

/// The report: one line per check (`text`) or a JSON array (`json`).
pub fn render(checks: &[Check], json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(checks).unwrap_or_default() + "\n";
    }
    let mut out = String::new();
    for c in checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        out.push_str(&format!("{mark} {}: {}", c.name, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("\n     fix: {fix}"));
        }
        out.push('\n');
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    out.push_str(&match failed {
        0 => format!("{} checks passed\n", checks.len()),
        n => format!("{n} of {} checks failed\n", checks.len()),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            shown_url("postgres://drbot:s3cret@db:5432/drbot"),
            "postgres://drbot@db:5432/drbot"
        );
        assert_eq!(shown_url("sqlite://drbot.db"), "sqlite://drbot.db");
    }

    #[test]
    fn differences_name_the_path() {
        let e = serde_json::json!({"name": "dr", "options": [{"name": "declare"}]});
        let same =
            serde_json::json!({"id": "1", "name": "dr", "options": [{"name": "declare", "x": 1}]});
        assert_eq!(first_difference(&e, &same, ""), None);
        let other = serde_json::json!({"name": "dr", "options": [{"name": "status"}]});
        assert_eq!(
            first_difference(&e, &other, "").as_deref(),
            Some(".options[0].name: registered \"status\", expected \"declare\"")
        );
    }
}
