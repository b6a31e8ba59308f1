//! `[web]`: the read-only incident web view (`src/server/web/`) and who may look at it.

use serde::Deserialize;

/// The web view's listener and its access rule. Off while `listen` is unset.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// Address of the web view's own listener; unset = no web view.
    pub listen: Option<String>,
    /// How people reach the page (`https://drbot.example.com`): links and the cookie's
    /// `Secure` flag follow it.
    pub public_url: Option<String>,
    /// `token` (viewer tokens exchanged at `/login`), `proxy` (an authenticating proxy in
    /// front) or `none` (loopback only).
    pub auth: String,
    /// Secret viewer tokens (`DRBOT__WEB__TOKENS`, comma-separated). Never logged or shown.
    #[serde(deserialize_with = "super::string_list")]
    pub tokens: Vec<String>,
    /// The header the proxy names the signed-in person in.
    pub proxy_header: String,
    /// Addresses of the proxy: the header is believed from these peers only.
    #[serde(deserialize_with = "super::string_list")]
    pub proxy: Vec<String>,
    /// Who may look behind the proxy: `alice@example.com` or `@example.com`.
    #[serde(deserialize_with = "super::string_list")]
    pub allow: Vec<String>,
    /// How long a login lasts.
    pub session_hours: i64,
    /// Secret that signs the login cookie (`DRBOT__WEB__COOKIE_KEY`, 32 characters or more).
    /// Every replica given the same key accepts the others' logins, and a restart keeps them;
    /// unset, each process makes its own and a restart signs everyone out.
    pub cookie_key: Option<String>,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            listen: None,
            public_url: None,
            auth: "token".into(),
            tokens: Vec::new(),
            proxy_header: "X-Forwarded-Email".into(),
            proxy: Vec::new(),
            allow: Vec::new(),
            session_hours: 12,
            cookie_key: None,
        }
    }
}

/// Who may look, as `[web] auth` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebAuth {
    Token,
    Proxy,
    None,
}

impl WebSettings {
    pub fn auth_mode(&self) -> Option<WebAuth> {
        match self.auth.as_str() {
            "token" => Some(WebAuth::Token),
            "proxy" => Some(WebAuth::Proxy),
            "none" => Some(WebAuth::None),
            _ => None,
        }
    }

    /// The listen address, when the web view is on.
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.as_deref().and_then(|l| l.parse().ok())
    }

    /// The proxy's addresses, parsed (validated at load).
    pub fn proxy_addrs(&self) -> Vec<std::net::IpAddr> {
        self.proxy
            .iter()
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }

    /// The settings for `drbot console --web <listen>`: on a loopback address with no viewer
    /// token configured, nobody is asked (the newcomer's demo); otherwise `[web] auth` holds.
    pub fn for_console(&self, listen: &str) -> Result<WebSettings, String> {
        let mut web = self.clone();
        web.listen = Some(listen.to_string());
        if web.auth == "token"
            && web.tokens.is_empty()
            && web.listen_addr().is_some_and(|a| a.ip().is_loopback())
        {
            web.auth = "none".into();
        }
        web.validate()?;
        Ok(web)
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        let Some(mode) = self.auth_mode() else {
            return Err(format!(
                "web.auth must be `token`, `proxy` or `none`, not {:?}",
                self.auth
            ));
        };
        if let Some(url) = &self.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err("web.public_url must be an http(s) URL".into());
        }
        let h = &self.proxy_header;
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!(
                "web.proxy_header {h:?} must be a header name like X-Forwarded-Email"
            ));
        }
        if !(1..=24 * 30).contains(&self.session_hours) {
            return Err("web.session_hours must be between 1 and 720".into());
        }
        if self
            .cookie_key
            .as_ref()
            .is_some_and(|k| k.chars().count() < 32)
        {
            return Err(
                "web.cookie_key must be 32 characters or more (e.g. `openssl rand -hex 32`)".into(),
            );
        }
        let Some(listen) = &self.listen else {
            return Ok(());
        };
        let Some(addr) = self.listen_addr() else {
            return Err(format!(
                "web.listen {listen:?} must be an address like 127.0.0.1:8081"
            ));
        };
        match mode {
            WebAuth::None if !addr.ip().is_loopback() => Err(format!(
                "web.auth = \"none\" lets anyone who reaches {listen} read every incident: it is accepted only on a loopback address (127.0.0.1, ::1); use `token` or `proxy`"
            )),
            WebAuth::Token if !self.tokens.iter().any(|t| !t.trim().is_empty()) => Err(
                "web.auth = \"token\" needs at least one viewer token in web.tokens (DRBOT__WEB__TOKENS)".into(),
            ),
            WebAuth::Proxy if self.allow.is_empty() => Err(
                "web.auth = \"proxy\" needs web.allow: the addresses or @domains that may look".into(),
            ),
            WebAuth::Proxy if self.proxy.is_empty() => Err(
                "web.auth = \"proxy\" needs web.proxy: the proxy's address, the only peer whose header is believed".into(),
            ),
            WebAuth::Proxy => match self.proxy.iter().find(|p| p.trim().parse::<std::net::IpAddr>().is_err()) {
                Some(bad) => Err(format!("web.proxy entry {bad:?} must be an IP address like 127.0.0.1")),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(None, Some(env)).map_err(|e| e.to_string())
    }

    #[test]
    fn the_web_view_is_off_until_listen_is_set() {
        let s = load(&[]).unwrap();
        assert!(s.web.listen.is_none());
        assert_eq!(s.web.proxy_header, "X-Forwarded-Email");
        assert_eq!(s.web.auth, "token");
    }

    #[test]
    fn tokens_and_lists_come_from_the_environment() {
        let s = load(&[
            ("DRBOT__WEB__LISTEN", "0.0.0.0:8081"),
            ("DRBOT__WEB__TOKENS", "first-token,second-token"),
        ])
        .unwrap();
        assert_eq!(s.web.tokens, vec!["first-token", "second-token"]);
        let s = load(&[
            ("DRBOT__WEB__LISTEN", "127.0.0.1:8081"),
            ("DRBOT__WEB__AUTH", "proxy"),
            ("DRBOT__WEB__PROXY", "127.0.0.1"),
            ("DRBOT__WEB__ALLOW", "@example.com,bob@other.org"),
        ])
        .unwrap();
        assert_eq!(s.web.allow, vec!["@example.com", "bob@other.org"]);
        assert_eq!(s.web.proxy_addrs().len(), 1);
    }

    #[test]
    fn each_auth_mode_needs_what_makes_it_safe() {
        const LAN: (&str, &str) = ("DRBOT__WEB__LISTEN", "0.0.0.0:8081");
        for (pairs, named) in [
            (&[LAN, ("DRBOT__WEB__AUTH", "none")][..], "loopback"),
            (&[LAN][..], "web.tokens"),
            (&[LAN, ("DRBOT__WEB__AUTH", "proxy")][..], "web.allow"),
            (
                &[
                    LAN,
                    ("DRBOT__WEB__AUTH", "proxy"),
                    ("DRBOT__WEB__ALLOW", "@x.org"),
                ][..],
                "web.proxy",
            ),
            (
                &[
                    LAN,
                    ("DRBOT__WEB__AUTH", "proxy"),
                    ("DRBOT__WEB__ALLOW", "@x.org"),
                    ("DRBOT__WEB__PROXY", "proxy.local"),
                ][..],
                "IP address",
            ),
            (&[LAN, ("DRBOT__WEB__AUTH", "basic")][..], "web.auth"),
            (&[("DRBOT__WEB__LISTEN", "localhost")][..], "web.listen"),
            (
                &[("DRBOT__WEB__PROXY_HEADER", "X Email:")][..],
                "web.proxy_header",
            ),
            (
                &[("DRBOT__WEB__PUBLIC_URL", "drbot.example.com")][..],
                "web.public_url",
            ),
            (&[("DRBOT__WEB__COOKIE_KEY", "short")][..], "web.cookie_key"),
        ] {
            let e = load(pairs)
                .err()
                .unwrap_or_else(|| panic!("accepted {pairs:?}"));
            assert!(e.contains(named), "{e}");
        }
        let s = load(&[
            ("DRBOT__WEB__LISTEN", "127.0.0.1:8081"),
            ("DRBOT__WEB__AUTH", "none"),
        ])
        .unwrap();
        assert!(s.web.listen_addr().unwrap().ip().is_loopback());
    }

    #[test]
    fn the_console_opens_loopback_without_tokens_but_nothing_else() {
        let s = load(&[]).unwrap();
        assert_eq!(s.web.for_console("127.0.0.1:8081").unwrap().auth, "none");
        let e = s.web.for_console("0.0.0.0:8081").err().unwrap();
        assert!(e.contains("web.tokens"), "{e}");
        let s = load(&[("DRBOT__WEB__TOKENS", "t1")]).unwrap();
        assert_eq!(s.web.for_console("127.0.0.1:8081").unwrap().auth, "token");
    }
}
