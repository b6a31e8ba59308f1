//! What the benches share: their env knobs, /proc readings and the runtime they run on.

#![allow(dead_code)]

use std::process::ExitCode;

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
