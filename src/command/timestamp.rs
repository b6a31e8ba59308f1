//! Timestamp forms accepted by `pitr`, `drill pitr` and `note at=` (spec §3).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// A timestamp as typed: either with a zone, or a wall-clock time that still needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeInput {
    Zoned(DateTime<FixedOffset>),
    /// No zone given: refused unless a default zone is configured.
    Naive(NaiveDateTime),
}

impl TimeInput {
    /// Resolve to UTC, using `default_zone` for wall-clock input.
    pub fn resolve(&self, default_zone: Option<FixedOffset>) -> Option<DateTime<Utc>> {
        match self {
            TimeInput::Zoned(t) => Some(t.with_timezone(&Utc)),
            TimeInput::Naive(n) => default_zone
                .and_then(|z| z.from_local_datetime(n).single())
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

impl std::fmt::Display for TimeInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeInput::Zoned(t) => write!(f, "{}", t.to_rfc3339()),
            TimeInput::Naive(n) => write!(f, "{}", n.format("%Y-%m-%d %H:%M:%S")),
        }
    }
}

/// Parse one of: RFC 3339 (`2026-02-08T09:55:00Z`, `2026-02-08T09:55Z`, `…+01:00`),
/// `2026-02-08 09:55 UTC`, and the same without a zone (→ [`TimeInput::Naive`]).
pub fn parse_timestamp(input: &str) -> Option<TimeInput> {
    let s = input.trim();
    if s.is_empty() || s.len() > 40 {
        return None;
    }
    let (body, zone) = split_zone(s);
    let body = body.trim_end();
    let (date, time) = body.split_once(['T', 't', ' '])?;
    let date = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").ok()?;
    let time = parse_time(time.trim())?;
    let naive = NaiveDateTime::new(date, time);
    match zone {
        None => Some(TimeInput::Naive(naive)),
        Some(offset) => offset
            .from_local_datetime(&naive)
            .single()
            .map(TimeInput::Zoned),
    }
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(s, f).ok())
}

/// Split a trailing zone designator off: `Z`, ` UTC`, `+01:00`, `-0500`.
fn split_zone(s: &str) -> (&str, Option<FixedOffset>) {
    let utc = FixedOffset::east_opt(0);
    for suffix in [" UTC", " utc", " Z", "Z", "z"] {
        if let Some(body) = s.strip_suffix(suffix) {
            return (body, utc);
        }
    }
    // A numeric offset: the last '+' or a '-' that follows the time part.
    if let Some(pos) = s.rfind(['+', '-']) {
        let has_time_before = s[..pos].contains(':');
        if has_time_before && let Some(offset) = parse_offset(s[pos..].trim()) {
            return (&s[..pos], Some(offset));
        }
    }
    (s, None)
}

fn parse_offset(s: &str) -> Option<FixedOffset> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// Parse a configured default zone: `UTC`, `Z`, `+01:00`, `-05:00`.
pub fn parse_zone(s: &str) -> Option<FixedOffset> {
    match s.trim() {
        "UTC" | "utc" | "Z" | "z" => FixedOffset::east_opt(0),
        other => parse_offset(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn accepts_the_spec_forms() {
        let want = utc("2026-02-08T09:55:00Z");
        for input in [
            "2026-02-08T09:55:00Z",
            "2026-02-08T09:55Z",
            "2026-02-08T10:55:00+01:00",
            "2026-02-08T10:55+0100",
            "2026-02-08 09:55 UTC",
            "2026-02-08 09:55:00 UTC",
            "2026-02-08T04:55:00-05:00",
        ] {
            let t = parse_timestamp(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(t.resolve(None), Some(want), "{input}");
        }
        let frac = parse_timestamp("2026-02-08T09:55:00.250Z").unwrap();
        assert_eq!(frac.resolve(None).unwrap().timestamp_subsec_millis(), 250);
    }

    #[test]
    fn no_zone_needs_a_default() {
        let t = parse_timestamp("2026-02-08 09:55").unwrap();
        assert!(matches!(t, TimeInput::Naive(_)));
        assert_eq!(t.resolve(None), None);
        let plus_one = parse_zone("+01:00");
        assert_eq!(t.resolve(plus_one), Some(utc("2026-02-08T08:55:00Z")));
        assert!(matches!(
            parse_timestamp("2026-02-08T09:55"),
            Some(TimeInput::Naive(_))
        ));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "yesterday",
            "2026-02-30T09:55Z",
            "2026-02-08T25:00Z",
            "2026-02-08",
            "09:55Z",
            "2026-02-08T09:55+25:00",
            "2026-02-08T09:55:00ZZ",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }
}
