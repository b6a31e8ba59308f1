//! What the benches share: their env knobs, /proc readings and the runtime they run on.

#![allow(dead_code)]

pub mod server;
pub mod timeline;

use std::process::ExitCode;

/// Env var `name`, `default` when unset.
pub fn env_text(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// The machine's 1-minute load average.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "n/a".into())
}

/// User + system CPU time of a process, in ms (Linux fixes clock ticks at 100 per second).
pub fn cpu_ms(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10)
}

/// The integer in env var `name`, `default` when unset; a value outside `range` stops the
/// bench, as a typo in a knob must not pass for a measurement.
pub fn env_number(name: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> u64 {
    match std::env::var(name) {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if range.contains(&n) => n,
            _ => panic!("{name} must be an integer in {range:?}, not {v:?}"),
        },
        Err(_) => default,
    }
}

/// A `kB` field of `/proc/{pid}/status` (`pid` may be `self`).
pub fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Run `bench` to its end on a current-thread runtime.
pub fn block_on(bench: impl Future<Output = ExitCode>) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench)
}
