//! The load: signed `/dr` requests, their judged answers, and what the server and its
//! database say afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use drbot::incident::EventKind;
use drbot::store::Store;
use hyper::StatusCode;
use serde_json::Value;
use tokio::time::{Instant, MissedTickBehavior};

use super::support::server::{Endpoint, slash};
use super::*;

pub(super) fn channel(i: u64, channels: u64) -> String {
    format!("C{:04}", i % channels + 1)
}

pub(super) fn response_type(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["response_type"].as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(super) fn reply_text(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["text"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// What a 200 answer says: a note is posted in the channel (stored), a status is shown to
/// the sender; a late or failed command is answered 200 too.
pub(super) fn judge(note: bool, body: &[u8]) -> Outcome {
    let kind = response_type(body);
    let text = reply_text(body);
    if text.starts_with("Working on it") {
        Outcome::Late
    } else if text.starts_with("drbot could not complete")
        || text.starts_with("drbot hit an internal error")
    {
        Outcome::EngineFailed
    } else if (note && kind == "in_channel")
        || (!note && kind == "ephemeral" && !text.starts_with("There is no incident"))
    {
        Outcome::Ok
    } else {
        Outcome::WrongReply
    }
}

/// Print the first few failures, not thousands.
pub(super) fn report_failure(what: std::fmt::Arguments) {
    static PRINTED: AtomicU64 = AtomicU64::new(0);
    match PRINTED.fetch_add(1, Ordering::Relaxed) {
        0..5 => eprintln!("{what}"),
        5 => eprintln!("(further failures not shown)"),
        _ => {}
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Ok,
    /// 200 "Working on it": past the server's 2 s budget, the result follows later.
    Late,
    /// 200 with an engine failure (database, contention): nothing was done.
    EngineFailed,
    /// 200, but not the answer the command should get.
    WrongReply,
    Status(u16),
    Transport,
    Timeout,
}

impl Outcome {
    pub(super) fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Late => "late",
            Outcome::EngineFailed => "engine failure",
            Outcome::WrongReply => "wrong reply",
            Outcome::Status(_) => "non-200",
            Outcome::Transport => "transport",
            Outcome::Timeout => "timeout",
        }
    }
}

/// Send one command (waiting for a connection included) and judge the answer.
pub(super) async fn command(
    to: &Endpoint,
    channel: &str,
    text: &str,
    trigger: &str,
    note: bool,
) -> Outcome {
    let result = tokio::time::timeout(REQUEST_TIMEOUT, slash(to, channel, text, trigger)).await;
    match result {
        Ok(Ok((StatusCode::OK, body))) => {
            let outcome = judge(note, &body);
            if outcome != Outcome::Ok {
                report_failure(format_args!("{channel} {text}: {}", reply_text(&body)));
            }
            outcome
        }
        Ok(Ok((status, _))) => {
            report_failure(format_args!("{channel} {text}: HTTP {status}"));
            Outcome::Status(status.as_u16())
        }
        Ok(Err(e)) => {
            report_failure(format_args!("{channel} {text}: {e}"));
            Outcome::Transport
        }
        Err(_) => Outcome::Timeout,
    }
}

/// "3 (2 timeout, 1 transport)" for the failed outcomes among `outcomes`.
pub(super) fn describe_errors(outcomes: impl Iterator<Item = Outcome>) -> (usize, String) {
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for o in outcomes.filter(|o| *o != Outcome::Ok) {
        match kinds.iter_mut().find(|(k, _)| *k == o.label()) {
            Some((_, n)) => *n += 1,
            None => kinds.push((o.label(), 1)),
        }
    }
    let total: usize = kinds.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return (0, "0".into());
    }
    let detail: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    (total, format!("{total} ({})", detail.join(", ")))
}

pub(super) fn note_text(tag: &str, i: u64) -> String {
    format!("bench {tag} #{i}")
}

pub(super) struct Sample {
    pub(super) index: u64,
    pub(super) note: bool,
    pub(super) outcome: Outcome,
    /// From the time the request was due: what a caller waiting on a schedule sees.
    pub(super) from_intended: Duration,
    /// From the moment the generator fired it (waiting for a connection included).
    pub(super) from_sent: Duration,
    /// How late the generator fired it.
    pub(super) lag: Duration,
    pub(super) done: Instant,
}

pub(super) struct Plan {
    pub(super) rate: u64,
    pub(super) seconds: u64,
    pub(super) note_percent: u64,
    pub(super) channels: u64,
    /// In every note's text, to find this run's notes in the database.
    pub(super) tag: String,
}

/// Open loop: request i is due at start + i / rate, and fired then whatever came back before.
pub(super) async fn load(to: &Endpoint, plan: &Plan) -> (Vec<Sample>, Instant) {
    let total = plan.rate * plan.seconds;
    let period = Duration::from_secs_f64(1.0 / plan.rate as f64);
    let start = Instant::now() + Duration::from_millis(20);
    let mut ticks = tokio::time::interval_at(start, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let intended = ticks.tick().await;
        let fired = Instant::now();
        // Spread evenly: request i is a note when the running share crosses a whole note.
        let note = (i + 1) * plan.note_percent / 100 > i * plan.note_percent / 100;
        let text = if note {
            format!("note {}", note_text(&plan.tag, i))
        } else {
            "status".to_string()
        };
        let channel = channel(i, plan.channels);
        let trigger = format!("bench.{}.{i}", plan.tag);
        let to = to.clone();
        tasks.push(tokio::spawn(async move {
            let outcome = command(&to, &channel, &text, &trigger, note).await;
            let done = Instant::now();
            Sample {
                index: i,
                note,
                outcome,
                from_intended: done - intended,
                from_sent: done - fired,
                lag: fired - intended,
                done,
            }
        }));
    }
    let mut samples = Vec::with_capacity(total as usize);
    for task in tasks {
        samples.push(task.await.expect("a request task"));
    }
    (samples, start)
}

/// Nearest-rank percentiles of `values` (sorted here), in ms: p50, p90, p99, max.
pub(super) fn percentiles(mut values: Vec<Duration>) -> [f64; 4] {
    if values.is_empty() {
        return [f64::NAN; 4];
    }
    values.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
        ms(values[rank - 1])
    };
    [at(0.50), at(0.90), at(0.99), at(1.0)]
}

/// The notes stored in `channel`'s open incident: (seq, text), in seq order. The engine keys
/// a Slack channel as `slack:<id>`; the bare id is tried too.
pub(super) async fn stored_notes(
    reader: &Store,
    channel: &str,
) -> Result<Vec<(i64, String)>, String> {
    let mut found = None;
    for key in [format!("slack:{channel}"), channel.to_string()] {
        found = reader
            .open_incident_in(&key)
            .await
            .map_err(|e| e.to_string())?;
        if found.is_some() {
            break;
        }
    }
    let Some(id) = found else {
        return Err(format!("no open incident in {channel}"));
    };
    let events = reader.events(id).await.map_err(|e| e.to_string())?;
    Ok(events
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::NoteAdded { text } => Some((e.seq, text)),
            _ => None,
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// What the server says about itself.

pub(super) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The Slack ack histogram: (upper bound in s, cumulative count), `+Inf` last.
pub(super) fn ack_buckets(text: &str) -> Vec<(f64, f64)> {
    let prefix = "drbot_ack_seconds_bucket{platform=\"slack\",le=\"";
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|rest| {
            let (bound, count) = rest.split_once("\"} ")?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            Some((bound, count.parse().ok()?))
        })
        .collect()
}

/// The bucket bound (ms) the server's own p99 falls under, over the requests between two
/// scrapes; and the share it answered within the target.
pub(super) fn server_side(before: &str, after: &str) -> Option<(f64, f64)> {
    let (b, a) = (ack_buckets(before), ack_buckets(after));
    let delta: Vec<(f64, f64)> = a
        .iter()
        .map(|(bound, n)| {
            let earlier = b.iter().find(|(x, _)| x == bound).map_or(0.0, |(_, m)| *m);
            (*bound, n - earlier)
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let p99 = delta.iter().find(|(_, n)| *n >= 0.99 * total)?.0 * 1000.0;
    let target = TARGET_P99.as_secs_f64();
    let within = delta
        .iter()
        .find(|(bound, _)| (*bound - target).abs() < 1e-9)
        .map_or(f64::NAN, |(_, n)| n / total * 100.0);
    Some((p99, within))
}
