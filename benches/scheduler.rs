//! The scheduler with many open incidents: 1 000 incidents declared in 1 000 channels on
//! SQLite, each with its update cadence running, then `App::tick` passes timed on a fixed
//! (manual) clock.
//!
//! What is measured, on a freshly built `App` (nothing remembered, as after a restart):
//! - the first pass (nothing is due yet: the clock stands at the declarations);
//! - steady passes where nothing is due (median and max over `DRBOT_BENCH_PASSES`);
//! - one pass after the clock moved 16 minutes on, so every incident owes its first update
//!   (the pass posts them all), then steady passes again at that time;
//! - the process's VmHWM (peak RSS) with every incident loaded and ticked.
//!
//! Targets (issue 10): a pass with nothing due under 20 ms (the median of the steady passes,
//! both before and after the update round); VmHWM under 100 MiB. Run with
//! `cargo bench --bench scheduler`; it exits non-zero when a target is missed, or when the
//! update round did not post exactly one update per incident.
//!
//! Env knobs: `DRBOT_BENCH_INCIDENTS` (default 1000), `DRBOT_BENCH_PASSES` (steady passes per
//! round, default 20). The targets are fixed.

mod support;

use support::env_number;

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use drbot::app::{App, Reply, TickReport};
use drbot::clock::ManualClock;
use drbot::config::Settings;
use drbot::incident::Actor;
use drbot::incident::Caller;

const INCIDENTS: u64 = 1_000;
const PASSES: u64 = 20;
const MAX_IDLE_PASS: Duration = Duration::from_millis(20);
const MAX_HWM_KIB: u64 = 100 * 1024;
/// Past the first cadence slot (15 minutes after declaration) and its reminder.
const ADVANCE: TimeDelta = TimeDelta::minutes(16);

fn proc_status_kib(field: &str) -> Option<u64> {
    support::proc_status_kib("self", field)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn operator() -> Caller {
    Caller {
        actor: Actor::new("slack", "U1", "bench"),
        operator: true,
    }
}

async fn build(url: &str, clock: &ManualClock) -> App {
    let env: HashMap<String, String> = [
        ("DRBOT__DATABASE__URL".to_string(), url.to_string()),
        ("DRBOT__SANDBOX__STATE_FILE".to_string(), String::new()),
    ]
    .into_iter()
    .collect();
    let settings = Settings::load_from(None, Some(env)).expect("bench settings");
    App::build(&settings, Arc::new(clock.clone()))
        .await
        .expect("build the app")
}

async fn declare_all(app: &App, incidents: u64) {
    let caller = operator();
    for i in 0..incidents {
        let channel = format!("C{:05}", i + 1);
        let line = format!("declare sev2 infra \"bench incident {}\"", i + 1);
        match app.handle(&channel, &caller, &line).await {
            Ok(Reply::Public(_)) => {}
            Ok(other) => panic!("declare in {channel} answered: {}", other.text()),
            Err(e) => panic!("declare in {channel}: {e}"),
        }
    }
}

async fn timed_tick(app: &App) -> (Duration, TickReport) {
    let started = Instant::now();
    let report = app.tick().await.expect("a scheduler pass");
    (started.elapsed(), report)
}

fn posted(report: &TickReport) -> usize {
    report.updates + report.reminders + report.summaries
}

/// Steady passes: their times sorted, and what they posted in all.
async fn steady(app: &App, passes: u64) -> (Vec<Duration>, usize) {
    let mut times = Vec::new();
    let mut posts = 0;
    for _ in 0..passes {
        let (time, report) = timed_tick(app).await;
        times.push(time);
        posts += posted(&report);
    }
    times.sort_unstable();
    (times, posts)
}

fn median(sorted: &[Duration]) -> Duration {
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// The allocator `drbot` itself runs on (`src/main.rs`), so VmHWM is the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    support::block_on(bench())
}

async fn bench() -> ExitCode {
    let incidents = env_number("DRBOT_BENCH_INCIDENTS", INCIDENTS, 1..=100_000);
    let passes = env_number("DRBOT_BENCH_PASSES", PASSES, 1..=10_000);
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let declared: DateTime<Utc> = "2026-02-08T10:00:00Z".parse().expect("a fixed start");
    let clock = ManualClock::new(declared);

    let started = Instant::now();
    {
        let app = build(&url, &clock).await;
        declare_all(&app, incidents).await;
        app.store.close().await;
    }
    println!(
        "setup: {incidents} incidents declared in {incidents} channels in {:.2?}",
        started.elapsed()
    );

    // A fresh process's view: nothing folded yet.
    let app = build(&url, &clock).await;
    let (first, first_report) = timed_tick(&app).await;
    let (idle, idle_posts) = steady(&app, passes).await;
    clock.advance(ADVANCE);
    let (due, due_report) = timed_tick(&app).await;
    let (after, after_posts) = steady(&app, passes).await;
    let hwm = proc_status_kib("VmHWM:");
    let rss = proc_status_kib("VmRSS:");
    app.store.close().await;

    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\n| scheduler pass ({incidents} open incidents) | passes | median (ms) | max (ms) | posted |"
    );
    let _ = writeln!(
        out,
        "|--------------------------------------|-------:|------------:|---------:|-------:|"
    );
    let mut row = |name: &str, times: &[Duration], posts: usize| {
        let _ = writeln!(
            out,
            "| {name:<36} | {:>6} | {:>11.2} | {:>8.2} | {posts:>6} |",
            times.len(),
            ms(median(times)),
            ms(times.last().copied().unwrap_or_default()),
        );
    };
    row("first pass, fresh app", &[first], posted(&first_report));
    row("nothing due", &idle, idle_posts);
    row(
        &format!("every incident due (+{} min)", ADVANCE.num_minutes()),
        &[due],
        posted(&due_report),
    );
    row("nothing due, after the updates", &after, after_posts);

    let mib = |k: Option<u64>| k.map_or("n/a".into(), |k| format!("{:.1}", k as f64 / 1024.0));
    let mut checks: Vec<(String, String, String, bool)> = Vec::new();
    for (name, times) in [("idle pass", &idle), ("idle pass after updates", &after)] {
        let m = median(times);
        checks.push((
            format!("{name}, median"),
            format!("< {} ms", MAX_IDLE_PASS.as_millis()),
            format!("{:.2} ms", ms(m)),
            m < MAX_IDLE_PASS,
        ));
    }
    checks.push((
        "process VmHWM".into(),
        format!("< {} MiB", MAX_HWM_KIB / 1024),
        format!("{} MiB (VmRSS {})", mib(hwm), mib(rss)),
        hwm.is_some_and(|k| k < MAX_HWM_KIB),
    ));
    checks.push((
        "updates posted by the due pass".into(),
        format!("= {incidents}"),
        due_report.updates.to_string(),
        due_report.updates as u64 == incidents,
    ));
    let _ = writeln!(
        out,
        "\n| check                           | target     | measured               | result |"
    );
    let _ = writeln!(
        out,
        "|---------------------------------|------------|------------------------|--------|"
    );
    for (name, target, measured, ok) in &checks {
        let _ = writeln!(
            out,
            "| {name:<31} | {target:<10} | {measured:<22} | {:<6} |",
            if *ok { "pass" } else { "FAIL" }
        );
    }
    if checks.iter().all(|c| c.3) {
        let _ = writeln!(out, "ok");
        ExitCode::SUCCESS
    } else {
        let _ = writeln!(out, "FAILED: a target was missed");
        ExitCode::FAILURE
    }
}
