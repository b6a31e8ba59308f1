//! Formatting the writers share: times, durations, outcomes and event descriptions.

use std::fmt;
use std::io::{self, Write};

use chrono::{DateTime, Datelike, SecondsFormat, TimeDelta, Timelike, Utc};
use serde::Serialize;
use serde::ser::Serializer;

use crate::incident::state::Operation;
use crate::incident::{Actor, Event, Incident, Outcome};

/// A UTC time as RFC 3339 with milliseconds and `Z`, written without allocating.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ts(pub(super) DateTime<Utc>);

impl Ts {
    /// The fixed-width form, built by hand: every row has two times and `fmt` machinery
    /// showed up as a sizeable share of an export's time.
    fn encode(self) -> Option<[u8; 24]> {
        let t = self.0.naive_utc();
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        // Leap seconds (nanosecond ≥ 10⁹) need chrono's general formatter.
        let nanos = Some(t.nanosecond()).filter(|n| *n < 1_000_000_000)?;
        let mut b = *b"0000-00-00T00:00:00.000Z";
        digits(&mut b[0..4], year);
        digits(&mut b[5..7], t.month());
        digits(&mut b[8..10], t.day());
        digits(&mut b[11..13], t.hour());
        digits(&mut b[14..16], t.minute());
        digits(&mut b[17..19], t.second());
        digits(&mut b[20..23], nanos / 1_000_000);
        Some(b)
    }

    pub(super) fn write(self, out: &mut impl Write) -> io::Result<()> {
        match self.encode() {
            Some(b) => out.write_all(&b),
            None => write!(out, "{self}"),
        }
    }
}

pub(super) fn digits(slot: &mut [u8], mut value: u32) {
    for d in slot.iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.encode() {
            Some(b) => f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?),
            None => f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true)),
        }
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.encode() {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).map_err(serde::ser::Error::custom)?),
            None => s.collect_str(self),
        }
    }
}

pub(super) fn ts(t: Option<DateTime<Utc>>) -> Option<Ts> {
    t.map(Ts)
}

pub(super) fn seconds(d: TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// `1h 05m 03s`, `4m 10s`, `12s`: how postmortems quote durations.
pub(super) fn human(d: TimeDelta) -> String {
    let sign = if d < TimeDelta::zero() { "-" } else { "" };
    let total = d.num_seconds().unsigned_abs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{sign}{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{sign}{m}m {s:02}s")
    } else {
        format!("{sign}{s}s")
    }
}

pub(super) fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
    }
}

/// Time to restore: from the human go-ahead to the backend reporting completion.
pub(super) fn time_to_restore(op: &Operation) -> Option<TimeDelta> {
    let finished = op.finished.as_ref()?;
    op.spec
        .kind
        .is_restore()
        .then(|| finished.at - op.confirmed_at)
}

/// The restore that ended the outage: the last successful one to finish.
pub(super) fn last_successful_restore(incident: &Incident) -> Option<(&Operation, DateTime<Utc>)> {
    incident
        .operations
        .iter()
        .filter(|o| o.spec.kind.is_restore() && o.succeeded())
        .filter_map(|o| o.finished.as_ref().map(|f| (o, f.at)))
        .max_by_key(|(_, at)| *at)
}

/// `event`'s description, written into `line` (a buffer each writer reuses for every row).
pub(super) fn describe<'a>(line: &'a mut String, event: &Event) -> &'a str {
    line.clear();
    // Writing into a String cannot fail.
    let _ = event.kind.write_description(line);
    line
}

/// Text inside a table cell or a list item: `|` and `\` escaped so a cell cannot end
/// early, line breaks as `<br>` so a row cannot.
pub(super) fn md(out: &mut impl Write, text: &str) -> io::Result<()> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let replacement: &[u8] = match bytes[i] {
            b'|' => b"\\|",
            b'\\' => b"\\\\",
            b'\n' => b"<br>",
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => b"",
            b'\r' => b"<br>",
            _ => {
                i += 1;
                continue;
            }
        };
        out.write_all(&bytes[start..i])?;
        out.write_all(replacement)?;
        i += 1;
        start = i;
    }
    out.write_all(&bytes[start..])
}

pub(super) fn md_actor(out: &mut impl Write, actor: &Actor) -> io::Result<()> {
    if actor.is_drbot() {
        return out.write_all(b"drbot");
    }
    md(out, &actor.name)?;
    out.write_all(b" (")?;
    md(out, &actor.platform)?;
    out.write_all(b")")
}
