//! Prometheus text exposition, by hand: a few counters and one histogram need no library.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the acknowledgement latency buckets.
const ACK_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; ACK_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    commands: Mutex<BTreeMap<(&'static str, String, &'static str), u64>>,
    ack: Mutex<BTreeMap<&'static str, Histogram>>,
    rejected: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Shared with the accept loop, which has no access to the handlers' state.
    pub connections: Arc<Connections>,
}

/// Why a connection was closed or a request refused for being slow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// The request head did not arrive in time (from connect, or from its first byte).
    Header,
    /// A keep-alive connection sent nothing after its last response.
    Idle,
    /// The request body did not arrive in time (answered 408).
    Body,
}

/// Which connection was closed to keep the edge answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// The oldest connection with no request in progress, to make room for a new one.
    Idle,
    /// The new connection itself: every open one was serving a request.
    New,
}

/// Connection-level counters, updated by the accept loop and the body deadline.
#[derive(Default)]
pub struct Connections {
    open: AtomicU64,
    limit: AtomicU64,
    shed: [AtomicU64; 2],
    timeouts: [AtomicU64; 3],
    accept_errors: AtomicU64,
}

impl Connections {
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit as u64, Ordering::Relaxed);
    }

    pub fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn shed(&self, which: Shed) {
        self.shed[which as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn timed_out(&self, phase: Timeout) {
        self.timeouts[phase as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn accept_failed(&self) {
        self.accept_errors.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        head(
            out,
            "drbot_http_connections_open",
            "gauge",
            "Client connections open now.",
        );
        let _ = writeln!(out, "drbot_http_connections_open {}", get(&self.open));
        head(
            out,
            "drbot_http_connections_limit",
            "gauge",
            "Most client connections kept open (http.max_connections, lowered to fit the file limit).",
        );
        let _ = writeln!(out, "drbot_http_connections_limit {}", get(&self.limit));
        by_label(
            out,
            ("drbot_http_connections_shed_total", "closed"),
            "Connections closed at the limit: the oldest idle one, or the new one when all were busy.",
            [(Shed::Idle, "idle"), (Shed::New, "new")]
                .map(|(which, label)| (label, get(&self.shed[which as usize]))),
        );
        by_label(
            out,
            ("drbot_http_timeouts_total", "phase"),
            "Connections closed (header, idle) or requests answered 408 (body) for being too slow.",
            [
                (Timeout::Header, "header"),
                (Timeout::Idle, "idle"),
                (Timeout::Body, "body"),
            ]
            .map(|(phase, label)| (label, get(&self.timeouts[phase as usize]))),
        );
        head(
            out,
            "drbot_http_accept_errors_total",
            "counter",
            "Failed accepts (out of file descriptors, mostly).",
        );
        let _ = writeln!(
            out,
            "drbot_http_accept_errors_total {}",
            get(&self.accept_errors)
        );
    }
}

/// Gauges read from the store at scrape time.
pub struct Gauges {
    pub outbox_depth: i64,
    pub outbox_oldest: Option<Duration>,
    pub cadence_lag: Duration,
    /// The engine's delivery counters: ((platform or `operations`, event), count).
    pub deliveries: Vec<((&'static str, &'static str), u64)>,
}

/// A metric's HELP and TYPE lines.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A counter with one label (`(name, label)`), a sample for each value of the label.
fn by_label<'l>(
    out: &mut String,
    (name, label): (&str, &str),
    help: &str,
    samples: impl IntoIterator<Item = (&'l str, u64)>,
) {
    head(out, name, "counter", help);
    for (value, n) in samples {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// A command answered: `verb` from the grammar (or `invalid`), `outcome` what it did.
    pub fn command(&self, platform: &'static str, verb: &str, outcome: &'static str) {
        *lock(&self.commands)
            .entry((platform, verb.to_string(), outcome))
            .or_default() += 1;
    }

    /// A request refused before any command ran (bad signature, stale, malformed…).
    pub fn rejected(&self, platform: &'static str, reason: &'static str) {
        *lock(&self.rejected).entry((platform, reason)).or_default() += 1;
    }

    pub fn ack(&self, platform: &'static str, took: Duration) {
        let secs = took.as_secs_f64();
        let mut all = lock(&self.ack);
        let h = all.entry(platform).or_default();
        for (i, bound) in ACK_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        head(
            &mut out,
            "drbot_commands_total",
            "counter",
            "Commands answered, by platform, verb and outcome.",
        );
        for ((platform, verb, outcome), n) in lock(&self.commands).iter() {
            let _ = writeln!(
                out,
                "drbot_commands_total{{platform=\"{platform}\",verb=\"{verb}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        head(
            &mut out,
            "drbot_requests_rejected_total",
            "counter",
            "Requests refused before reaching the engine.",
        );
        for ((platform, reason), n) in lock(&self.rejected).iter() {
            let _ = writeln!(
                out,
                "drbot_requests_rejected_total{{platform=\"{platform}\",reason=\"{reason}\"}} {n}"
            );
        }
        head(
            &mut out,
            "drbot_ack_seconds",
            "histogram",
            "Time from request received to HTTP answer.",
        );
        for (platform, h) in lock(&self.ack).iter() {
            for (bound, n) in ACK_BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "drbot_ack_seconds_bucket{{platform=\"{platform}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "drbot_ack_seconds_bucket{{platform=\"{platform}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "drbot_ack_seconds_sum{{platform=\"{platform}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "drbot_ack_seconds_count{{platform=\"{platform}\"}} {}",
                h.count
            );
        }
        head(
            &mut out,
            "drbot_outbox_depth",
            "gauge",
            "Posts waiting for delivery.",
        );
        let _ = writeln!(out, "drbot_outbox_depth {}", g.outbox_depth);
        head(
            &mut out,
            "drbot_outbox_oldest_seconds",
            "gauge",
            "Age of the oldest undelivered post.",
        );
        let _ = writeln!(
            out,
            "drbot_outbox_oldest_seconds {}",
            g.outbox_oldest.unwrap_or_default().as_secs_f64()
        );
        head(
            &mut out,
            "drbot_outbox_total",
            "counter",
            "Outbox rows claimed, delivered, failed, taken over from a stopped worker, given up, or finished after the claim was lost, by platform.",
        );
        for ((platform, event), n) in g.deliveries.iter().filter(|((p, _), _)| *p != "operations") {
            let _ = writeln!(
                out,
                "drbot_outbox_total{{platform=\"{platform}\",event=\"{event}\"}} {n}"
            );
        }
        head(
            &mut out,
            "drbot_operation_claims_total",
            "counter",
            "Operation watches claimed (renewals included) and taken over from a replica that stopped.",
        );
        for ((_, event), n) in g.deliveries.iter().filter(|((p, _), _)| *p == "operations") {
            let _ = writeln!(out, "drbot_operation_claims_total{{event=\"{event}\"}} {n}");
        }
        head(
            &mut out,
            "drbot_cadence_lag_seconds",
            "gauge",
            "How far the most overdue incident update is behind.",
        );
        let _ = writeln!(
            out,
            "drbot_cadence_lag_seconds {}",
            g.cadence_lag.as_secs_f64()
        );
        self.connections.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.command("slack", "declare", "public");
        m.command("slack", "declare", "public");
        m.rejected("discord", "bad_signature");
        m.ack("slack", Duration::from_millis(3));
        m.ack("slack", Duration::from_millis(30));
        m.connections.set_limit(192);
        m.connections.opened();
        m.connections.opened();
        m.connections.closed();
        m.connections.shed(Shed::Idle);
        m.connections.timed_out(Timeout::Body);
        let text = m.render(&Gauges {
            outbox_depth: 4,
            outbox_oldest: Some(Duration::from_secs(7)),
            cadence_lag: Duration::ZERO,
            deliveries: vec![(("slack", "gave_up"), 1), (("operations", "takeover"), 2)],
        });
        assert!(text.contains("drbot_outbox_total{platform=\"slack\",event=\"gave_up\"} 1\n"));
        assert!(text.contains("drbot_operation_claims_total{event=\"takeover\"} 2\n"));
        assert!(text.contains(
            "drbot_commands_total{platform=\"slack\",verb=\"declare\",outcome=\"public\"} 2"
        ));
        assert!(text.contains(
            "drbot_requests_rejected_total{platform=\"discord\",reason=\"bad_signature\"} 1"
        ));
        assert!(text.contains("drbot_ack_seconds_bucket{platform=\"slack\",le=\"0.005\"} 1"));
        assert!(text.contains("drbot_ack_seconds_bucket{platform=\"slack\",le=\"0.05\"} 2"));
        assert!(text.contains("drbot_ack_seconds_count{platform=\"slack\"} 2"));
        assert!(text.contains("drbot_outbox_depth 4\n"));
        assert!(text.contains("drbot_outbox_oldest_seconds 7\n"));
        assert!(text.contains("drbot_http_connections_open 1\n"));
        assert!(text.contains("drbot_http_connections_limit 192\n"));
        assert!(text.contains("drbot_http_connections_shed_total{closed=\"idle\"} 1\n"));
        assert!(text.contains("drbot_http_connections_shed_total{closed=\"new\"} 0\n"));
        assert!(text.contains("drbot_http_timeouts_total{phase=\"body\"} 1\n"));
        assert!(text.contains("drbot_http_timeouts_total{phase=\"header\"} 0\n"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
