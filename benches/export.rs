//! Export of a 100 000-event timeline from SQLite, per format: wall time and peak memory.
//!
//! Measures, for each format (Markdown, JSON, CSV), to a file and to a sink, three runs each:
//! wall time, process CPU time, peak live heap (a counting global allocator, every thread),
//! allocations per event and VmHWM; a plain read of the store's event stream is shown for reference.
//!
//! Targets (issue 10): every export of 100 000 events under 300 ms of wall time and under
//! 64 MiB of peak heap. Run with `cargo bench --bench export`; it exits non-zero when any run
//! misses a target, so CI can run it as a regression check. No env knobs: the timeline size and
//! the number of runs are fixed so figures compare across commits.

mod support;

use support::timeline::{BATCH, EVENTS, fill};

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use drbot::command::ExportFormat;
use drbot::export::export;
use drbot::incident::IncidentId;
use drbot::sop::Runbook;
use drbot::store::Store;
use futures_util::StreamExt;

const RUNS: usize = 3;
const MAX_TIME: Duration = Duration::from_millis(300);
const MAX_HEAP: usize = 64 * 1024 * 1024;

/// Counts live heap bytes and their high-water mark, for every thread (the store reads and
/// decodes chunks on a blocking thread, and that memory is part of what an export costs), and
/// the number of allocations. Each thread keeps its own running delta and adds it to the
/// shared total once it passes `FLUSH` bytes either way: shared counters touched on every
/// allocation by two threads would bounce their cache line between the cores and cost the
/// export more than the allocations themselves. The peak is therefore exact to within `FLUSH`
/// bytes per thread.
/// It wraps mimalloc, the allocator `drbot` itself runs on (`src/main.rs`).
struct Counting;

static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
const FLUSH: isize = 64 * 1024;

thread_local! {
    // (bytes not yet added to CURRENT, allocations not yet added to ALLOCATIONS)
    static PENDING: Cell<(isize, usize)> = const { Cell::new((0, 0)) };
}

fn changed(bytes: isize, allocations: usize) {
    // A thread being torn down has no thread-locals left: count it directly.
    let flushed = PENDING.try_with(|pending| {
        let (delta, count) = pending.get();
        let (delta, count) = (delta + bytes, count + allocations);
        if delta.abs() >= FLUSH || count >= 1024 {
            pending.set((0, 0));
            Some((delta, count))
        } else {
            pending.set((delta, count));
            None
        }
    });
    if let Some((delta, count)) = flushed.unwrap_or(Some((bytes, allocations))) {
        let now = CURRENT.fetch_add(delta, Ordering::Relaxed) + delta;
        PEAK.fetch_max(now, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(count, Ordering::Relaxed);
    }
}

fn grew(bytes: usize) {
    changed(bytes as isize, 1);
}

fn shrank(bytes: usize) {
    changed(-(bytes as isize), 0);
}

// SAFETY: every call is forwarded unchanged to the binary's allocator; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) };
        shrank(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            changed(new_size as isize - layout.size() as isize, 1);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Start a new peak measurement from what is live now; returns that baseline.
fn reset_peak() -> usize {
    let now = CURRENT.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now.max(0) as usize
}

fn peak() -> usize {
    PEAK.load(Ordering::Relaxed).max(0) as usize
}

/// Reset the kernel's peak RSS so VmHWM covers one export only; false where not permitted.
fn reset_hwm() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of the whole process, in ms. Other processes on a shared machine
/// inflate wall time; this shows the export's own cost next to it.
fn cpu_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name start at field 3 (state); utime and
    // stime are fields 14 and 15, in clock ticks, which Linux fixes at 100 per second.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

struct Run {
    what: String,
    to: &'static str,
    time: Duration,
    cpu_ms: Option<u64>,
    peak: usize,
    over_baseline: usize,
    hwm_kib: Option<u64>,
    bytes: Option<u64>,
    allocations: usize,
}

async fn measure(
    store: &Store,
    incident: IncidentId,
    format: ExportFormat,
    runbook: &Runbook,
    file: Option<&Path>,
) -> Run {
    let hwm_reset = reset_hwm();
    let baseline = reset_peak();
    let cpu = cpu_ms();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let started = Instant::now();
    let result = match file {
        Some(path) => {
            let out = std::fs::File::create(path).expect("create the export file");
            export(store, incident, format, runbook, out).await
        }
        None => export(store, incident, format, runbook, std::io::sink()).await,
    };
    let time = started.elapsed();
    let cpu = cpu_ms().zip(cpu).map(|(after, before)| after - before);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    let peak = peak();
    result.expect("export");
    Run {
        what: format!("{format:?}").to_lowercase(),
        to: if file.is_some() { "file" } else { "sink" },
        time,
        cpu_ms: cpu,
        peak,
        over_baseline: peak - baseline,
        hwm_kib: hwm_reset.then(vm_hwm_kib).flatten(),
        bytes: file
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len()),
        allocations,
    }
}

/// One pass over the stream with no output: the store's share of every export.
async fn measure_read(store: &Store, incident: IncidentId) -> Run {
    let hwm_reset = reset_hwm();
    let baseline = reset_peak();
    let cpu = cpu_ms();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut events = std::pin::pin!(store.stream_events(incident));
    let mut count = 0;
    while let Some(event) = events.next().await {
        event.expect("read an event");
        count += 1;
    }
    let time = started.elapsed();
    let cpu = cpu_ms().zip(cpu).map(|(after, before)| after - before);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    let peak = peak();
    assert_eq!(count, EVENTS, "events streamed");
    Run {
        what: "(read)".into(),
        to: "-",
        time,
        cpu_ms: cpu,
        peak,
        over_baseline: peak - baseline,
        hwm_kib: hwm_reset.then(vm_hwm_kib).flatten(),
        bytes: None,
        allocations,
    }
}

/// Outside the timed part: the files really hold every event.
fn check_files(dir: &Path) {
    #[derive(serde::Deserialize)]
    struct Doc {
        schema: String,
        events: Vec<serde::de::IgnoredAny>,
    }
    let json = std::fs::File::open(dir.join("export.json")).expect("open the JSON export");
    let doc: Doc = serde_json::from_reader(std::io::BufReader::new(json)).expect("valid JSON");
    assert_eq!(doc.schema, "drbot.timeline/v1");
    assert_eq!(doc.events.len(), EVENTS, "JSON events");

    let md = std::fs::read_to_string(dir.join("export.md")).expect("read the Markdown export");
    let table = md.split("\n## Timeline\n").nth(1).expect("an event table");
    let rows = table.lines().filter(|l| l.starts_with("| ")).count();
    assert_eq!(rows, EVENTS + 1, "Markdown rows and the table header");

    let csv = std::fs::read_to_string(dir.join("export.csv")).expect("read the CSV export");
    // Notes hold a bare LF inside quotes; records end with CRLF.
    assert_eq!(
        csv.matches("\r\n").count(),
        EVENTS + 1,
        "CSV records and header"
    );
}

fn main() -> ExitCode {
    support::block_on(bench())
}

async fn bench() -> ExitCode {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::connect(&url).await.expect("open the bench store");
    let runbook = Runbook::embedded();

    let started = Instant::now();
    let incident = fill(&store).await;
    println!(
        "setup: {EVENTS} events in batches of {BATCH} committed in {:.2?}\n",
        started.elapsed()
    );

    let mut reads = Vec::new();
    for _ in 0..RUNS {
        reads.push(measure_read(&store, incident).await);
    }
    let mut runs = Vec::new();
    for format in [
        ExportFormat::Markdown,
        ExportFormat::Json,
        ExportFormat::Csv,
    ] {
        let path = dir.path().join(format!("export.{}", format.extension()));
        for file in [Some(path.as_path()), None] {
            for _ in 0..RUNS {
                runs.push(measure(&store, incident, format, &runbook, file).await);
            }
        }
    }
    check_files(dir.path());
    store.close().await;

    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "| format   | to   | run |  time (ms) | cpu (ms) | peak heap (MiB) | over baseline (MiB) | VmHWM (MiB) | output (MiB) | allocations/event |"
    );
    let _ = writeln!(
        out,
        "|----------|------|----:|-----------:|---------:|----------------:|--------------------:|------------:|-------------:|------------------:|"
    );
    let mut failed = false;
    let reference = reads.iter().map(|r| (r, false));
    for (i, (run, counts)) in reference.chain(runs.iter().map(|r| (r, true))).enumerate() {
        let slow = run.time >= MAX_TIME;
        let heavy = run.peak >= MAX_HEAP;
        failed |= counts && (slow || heavy);
        let _ = writeln!(
            out,
            "| {:<8} | {:<4} | {:>3} | {:>10.1} | {:>8} | {:>15.2} | {:>19.2} | {:>11} | {:>12} | {:>17.1} |{}",
            run.what,
            run.to,
            i % RUNS + 1,
            run.time.as_secs_f64() * 1000.0,
            run.cpu_ms.map_or("n/a".to_string(), |c| c.to_string()),
            mib(run.peak),
            mib(run.over_baseline),
            run.hwm_kib
                .map_or("n/a".to_string(), |k| format!("{:.1}", k as f64 / 1024.0)),
            run.bytes
                .map_or("-".to_string(), |b| format!("{:.1}", mib(b as usize))),
            run.allocations as f64 / EVENTS as f64,
            match (slow && counts, heavy && counts) {
                (false, false) => "",
                (true, false) => " SLOW",
                (false, true) => " HEAVY",
                (true, true) => " SLOW HEAVY",
            }
        );
    }
    let _ = writeln!(
        out,
        "\n(read): one pass over the store's stream with no output, for reference\n\
         targets: every export of {EVENTS} events under {} ms and {} MiB of heap",
        MAX_TIME.as_millis(),
        MAX_HEAP / (1024 * 1024)
    );
    if failed {
        let _ = writeln!(out, "FAILED: a target was missed");
        ExitCode::FAILURE
    } else {
        let _ = writeln!(out, "ok");
        ExitCode::SUCCESS
    }
}
