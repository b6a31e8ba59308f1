//! The page frame, escaping, and the stylesheet every page links to.

use std::fmt::{self, Write};

use chrono::{DateTime, Utc};

/// The one stylesheet, embedded in the binary (dark mode by `prefers-color-scheme`).
pub const STYLE: &str = include_str!("style.css");

/// Text made safe for HTML content and quoted attribute values.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'', '\r']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                // The live stream cannot carry a raw carriage return.
                b'\r' => "&#13;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// A UTC time the browser can read (`datetime`) and a person too.
pub struct Time(pub DateTime<Utc>);

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<time datetime=\"{}\">{}</time>",
            self.0.format("%Y-%m-%dT%H:%M:%SZ"),
            self.0.format("%Y-%m-%d %H:%M:%SZ")
        )
    }
}

/// `1 h 05 m`, `12 m`, `3 d 4 h`.
pub fn elapsed(d: chrono::TimeDelta) -> String {
    let m = d.num_minutes().max(0);
    match (m / 1440, m / 60 % 24, m % 60) {
        (0, 0, m) => format!("{m} m"),
        (0, h, m) => format!("{h} h {m:02} m"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// The script of every page: live updates, the time-zone switch. Pages read the same
/// without it.
pub const SCRIPT: &str = include_str!("live.js");

/// A whole page around `body` (already HTML); `signed_in` adds the sign-out button.
pub fn page(title: &str, body: &str, signed_in: bool) -> String {
    let mut out = String::with_capacity(body.len() + 768);
    let _ = write_page(&mut out, title, body, signed_in);
    out
}

fn write_page(out: &mut String, title: &str, body: &str, signed_in: bool) -> fmt::Result {
    write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{} · drbot</title><link rel=\"stylesheet\" href=\"/static/style.css\">\
         <script src=\"/static/live.js\" defer></script></head>\
         <body><header><a href=\"/incidents\">drbot</a> <a href=\"/incidents\">incidents</a> \
         <a href=\"/drills\">drills</a><span class=\"tools\">\
         <button type=\"button\" id=\"tz\" hidden>show local time</button>",
        Esc(title)
    )?;
    if signed_in {
        out.push_str(
            "<form method=\"post\" action=\"/logout\"><button type=\"submit\">sign out</button></form>",
        );
    }
    writeln!(out, "</span></header><main>{body}</main></body></html>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_shown_not_run() {
        assert_eq!(
            Esc("<script>alert('x')</script> & \"q\"").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(Esc("plain é").to_string(), "plain é");
    }

    #[test]
    fn elapsed_reads_like_a_clock() {
        use chrono::TimeDelta;
        assert_eq!(elapsed(TimeDelta::minutes(7)), "7 m");
        assert_eq!(elapsed(TimeDelta::minutes(65)), "1 h 05 m");
        assert_eq!(elapsed(TimeDelta::minutes(60 * 27)), "1 d 3 h");
        assert_eq!(elapsed(TimeDelta::minutes(-3)), "0 m");
    }
}
