//! The guide's units: durations like `"15 minutes"`, `"24 hours"`, `"0 minutes"`, `"1 hour"`,
//! `"2 days"`, and money like `"$50,000"` or `"$0"`.

use std::fmt;

use chrono::Duration;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// How durations are written, for error messages.
pub const DURATION_FORMS: &str = "\"15 minutes\", \"1 hour\", \"24 hours\" or \"2 days\"";

/// `"<n> <unit>"` with seconds, minutes, hours, days or weeks (singular, plural or short).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().ok()?;
    if n > 100_000 {
        return None;
    }
    let minutes = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => return Some(Duration::seconds(n)),
        "m" | "min" | "mins" | "minute" | "minutes" => n,
        "h" | "hr" | "hrs" | "hour" | "hours" => n * 60,
        "d" | "day" | "days" => n * 24 * 60,
        "w" | "week" | "weeks" => n * 7 * 24 * 60,
        _ => return None,
    };
    Some(Duration::minutes(minutes))
}

/// `$50,000`, `$0`, `$1,500.50`, `50000`: whole cents.
pub fn parse_money(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text.strip_prefix('$').unwrap_or(text).trim();
    let digits: String = text.chars().filter(|c| *c != ',').collect();
    if digits.is_empty() {
        return None;
    }
    let (whole, cents) = match digits.split_once('.') {
        Some((w, c)) if !c.is_empty() && c.len() <= 2 => (w, c),
        Some(_) => return None,
        None => (digits.as_str(), ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !cents.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let cents: u64 = format!("{cents:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(cents)
}

/// Cents as `$12,345` (rounded to the dollar).
pub fn money_words(cents: u64) -> String {
    let dollars = (cents + 50) / 100;
    let digits = dollars.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("${out}")
}

/// `30 min`, `4 h`, `1 h 30 min`, `2 d`, `45 s`.
pub fn span_words(d: Duration) -> String {
    let secs = d.num_seconds().max(0);
    if (1..60).contains(&secs) {
        return format!("{secs} s");
    }
    let minutes = secs / 60;
    if minutes >= 48 * 60 && minutes % (24 * 60) == 0 {
        return format!("{} d", minutes / (24 * 60));
    }
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// A duration field of the guide's files (`rto`, `rpo`, `target_rto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span(#[serde(with = "minutes")] pub Duration);

mod minutes {
    pub fn serialize<S: serde::Serializer>(d: &chrono::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a duration like {DURATION_FORMS}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                parse_duration(v).map(Span).ok_or_else(|| {
                    E::custom(format!(
                        "`{v}` is not a duration; write it like {DURATION_FORMS}"
                    ))
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// A money field (`revenue_impact_per_hour`), in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Money(pub u64);

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an amount like \"$50,000\" or \"$0\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
                parse_money(v).map(Money).ok_or_else(|| {
                    E::custom(format!(
                        "`{v}` is not an amount; write it like \"$50,000\" or \"$0\""
                    ))
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                v.checked_mul(100)
                    .map(Money)
                    .ok_or_else(|| E::custom("amount too large"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("an amount cannot be negative"))
                    .and_then(|v| self.visit_u64(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_durations_parse() {
        let m = Duration::minutes;
        assert_eq!(parse_duration("15 minutes"), Some(m(15)));
        assert_eq!(parse_duration("24 hours"), Some(m(24 * 60)));
        assert_eq!(parse_duration("0 minutes"), Some(m(0)));
        assert_eq!(parse_duration("5 minutes"), Some(m(5)));
        assert_eq!(parse_duration("1 hour"), Some(m(60)));
        assert_eq!(parse_duration("2 days"), Some(m(2 * 24 * 60)));
        assert_eq!(parse_duration("4 hours"), Some(m(240)));
        assert_eq!(parse_duration("30min"), Some(m(30)));
        assert_eq!(parse_duration(" 1 Hour "), Some(m(60)));
    }

    #[test]
    fn bad_durations_do_not() {
        for bad in [
            "",
            "minutes",
            "5",
            "5 minuts",
            "-5 minutes",
            "five minutes",
            "1.5 hours",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn money_parses_and_prints() {
        assert_eq!(parse_money("$50,000"), Some(5_000_000));
        assert_eq!(parse_money("$0"), Some(0));
        assert_eq!(parse_money("$500"), Some(50_000));
        assert_eq!(parse_money("$1,500.5"), Some(150_050));
        assert_eq!(parse_money("10000"), Some(1_000_000));
        for bad in ["", "$", "$abc", "$-5", "$1.234", "50 dollars"] {
            assert_eq!(parse_money(bad), None, "{bad}");
        }
        assert_eq!(money_words(0), "$0");
        assert_eq!(money_words(166_667), "$1,667");
        assert_eq!(money_words(500_000_000), "$5,000,000");
    }

    #[test]
    fn spans_read_well() {
        assert_eq!(span_words(Duration::minutes(30)), "30 min");
        assert_eq!(span_words(Duration::minutes(90)), "1 h 30 min");
        assert_eq!(span_words(Duration::hours(4)), "4 h");
        assert_eq!(span_words(Duration::hours(48)), "2 d");
        assert_eq!(span_words(Duration::hours(24)), "24 h");
        assert_eq!(span_words(Duration::zero()), "0 min");
        assert_eq!(span_words(Duration::seconds(45)), "45 s");
    }
}
