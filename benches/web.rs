//! The incident web view (issue 24, "Fast"): the release `drbot serve` with its web listener
//! (`[web] listen` on loopback, `[web] auth = "none"`) over a SQLite file seeded beforehand
//! through the store API with 1 000 incidents: INC-1, the 100 000-event timeline of the export
//! bench (resolved), and 999 short ones (declared, a commander, a note, an update; two in three
//! resolved, one in seven a drill, the open ones updated a minute before the bench so no
//! cadence reminder fires during it).
//!
//! Each of three runs starts the server afresh on that file (so each run has a cold first
//! request) and measures, from this process, in this order:
//! - `live`: 200 live pages of one open incident (INC-2): 200 SSE connections, each on its
//!   own HTTP/1 connection, opened from the `data-stream` of the rendered page, each having
//!   received its first `panel` frame. Then one `/dr note` through the signed Slack endpoint
//!   into INC-2's channel; the time from that command's HTTP answer to the last of the 200
//!   pages receiving the `event: timeline` frame of the note (found by its text), and the
//!   server's VmRSS after all 200 have received it minus before they were opened, per page.
//!   It goes first, one second after ready, so that the allocator returning what the GETs
//!   below freed does not blur a figure of a few KiB per page. Targets: every page within
//!   1 s; under 64 KiB per open page.
//! - `page`: `GET /incidents/INC-1` on one keep-alive connection. The first request is shown
//!   apart as "cold": it folds the 100 000-event timeline once, which the server then
//!   remembers. Then 200 sequential GETs, the cold one NOT among them: their p99, and the
//!   body's size. Targets: p99 < 50 ms, body < 2 MB.
//! - `list`: `GET /incidents` likewise: a cold first request (it folds the short timelines
//!   not read yet; INC-1's and INC-2's folds are remembered from the pages above), then 200
//!   sequential GETs. Target: p99 < 50 ms.
//!
//! Latencies are taken on the client and include reading each body (the client runs on one
//! thread and does nothing else meanwhile); the server's CPU time (from /proc) is shown
//! next to them, and memory is the server process's own. Targets are judged on the median of
//! the three runs; every run's figures are shown, with the load average. No env knobs (the
//! sizes are fixed so figures compare across commits) but `DRBOT_LOG`, passed to the server.
//! Exits non-zero when a target is missed.

mod support;

use support::server::{Endpoint, Pool, Server, start_server, start_sink, stop, wait_ready};
use support::{cpu_ms, load_average, proc_status_kib, timeline};

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use drbot::incident::{Actor, EventKind};
use drbot::store::{Chain, Commit, NewEvent, Projection, Store, Target};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

const RUNS: usize = 3;
const GETS: usize = 200;
const PAGES: usize = 200;
/// Incidents besides INC-1.
const SHORT: usize = 999;
const TARGET_P99: Duration = Duration::from_millis(50);
const TARGET_BODY: usize = 2_000_000;
const TARGET_LIVE: Duration = Duration::from_secs(1);
const TARGET_PAGE_KIB: f64 = 64.0;
/// The open incident the live pages watch: the first short one.
const LIVE_INCIDENT: &str = "INC-2";
const LIVE_CHANNEL: &str = "C100000";
/// Before the memory baseline.
const SETTLE: Duration = Duration::from_secs(1);
/// Bounds on waits that only a broken server would reach.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------------
// Seeding, before the server starts.

fn operator(n: usize) -> Actor {
    Actor::new(
        "slack",
        &format!("U{:05}", n % 40),
        &format!("Operator {}", n % 40),
    )
}

/// The `n`th short incident (0-based; INC-{n + 2}): its events and its projection.
fn short_incident(n: usize, now: DateTime<Utc>) -> (Vec<NewEvent>, Projection) {
    let open = n.is_multiple_of(3);
    let drill = n.is_multiple_of(7);
    let severity = ["sev1", "sev2", "sev3", "sev4"][n % 4];
    let kind = ["data", "infra", "app"][n % 3];
    let title = format!(
        "{kind} incident {n}: orders service degraded in region {}",
        n % 5
    );
    // Open ones are recent and were updated a minute ago; resolved ones are older, newest
    // first by id as real ones would be.
    let declared = if open {
        now - TimeDelta::minutes(20 + (n % 30) as i64)
    } else {
        now - TimeDelta::hours((SHORT - n) as i64)
    };
    let updated = if open {
        now - TimeDelta::minutes(1)
    } else {
        declared + TimeDelta::minutes(15)
    };
    let who = operator(n);
    let mut kinds = vec![
        (
            declared,
            EventKind::Declared {
                channel: format!("slack:C1{n:05}"),
                severity: severity.into(),
                incident_type: Some(kind.into()),
                title: title.clone(),
                drill,
            },
        ),
        (
            declared + TimeDelta::seconds(30),
            EventKind::RoleAssigned {
                role: "ic".into(),
                user: who.id.clone(),
            },
        ),
        (
            declared + TimeDelta::minutes(5),
            EventKind::NoteAdded {
                text: format!("error rate {} % on checkout, investigating", n % 50),
            },
        ),
        (
            updated,
            EventKind::UpdatePosted {
                text: "Investigating elevated errors on checkout.\nNext update in 30 minutes."
                    .into(),
                automatic: false,
                slots: Vec::new(),
            },
        ),
    ];
    let resolved_at = (!open).then(|| declared + TimeDelta::minutes(45));
    if let Some(at) = resolved_at {
        // With its final summary posted, as a resolved incident is once the outbox caught
        // up: otherwise the server's scheduler would post 666 summaries during the runs.
        kinds.push((at, EventKind::Resolved));
        kinds.push((at, EventKind::FinalSummaryPosted));
    }
    let events = kinds
        .into_iter()
        .map(|(recorded_at, kind)| NewEvent {
            recorded_at,
            occurred_at: None,
            actor: who.clone(),
            kind,
            dedupe_key: None,
        })
        .collect();
    let projection = Projection {
        severity: severity.into(),
        incident_type: Some(kind.into()),
        title,
        drill,
        declared_at: declared,
        resolved_at,
        final_summary_posted: resolved_at.is_some(),
    };
    (events, projection)
}

async fn seed(url: &str) {
    let store = Store::connect(url).await.expect("open the bench store");
    let big = timeline::fill(&store).await;
    assert_eq!(big, 1, "the long timeline is INC-1");
    let now = Utc::now();
    for n in 0..SHORT {
        let (events, projection) = short_incident(n, now);
        store
            .commit(Commit {
                target: Target::New {
                    id: store.next_incident_id().await.expect("next id"),
                    channel: format!("slack:C1{n:05}"),
                    platform: "slack".into(),
                },
                events,
                posts: Vec::new(),
                operations: Vec::new(),
                projection,
                request_key: None,
                gave_up: None,
                chain: Chain::root(),
            })
            .await
            .expect("commit a short incident");
    }
    store.close().await;
}

// ---------------------------------------------------------------------------------------------
// Sequential GETs.

struct Gets {
    cold: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    body: usize,
    /// Server CPU time per warm request, ms (10 ms ticks over the 200).
    cpu_per_get: Option<f64>,
    /// What the first answer held.
    first: String,
}

async fn get_ok(web: &Pool, path: &str) -> Bytes {
    match web.get(path).await {
        Ok((StatusCode::OK, body)) => body,
        Ok((status, body)) => panic!(
            "GET {path}: {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ),
        Err(e) => panic!("GET {path}: {e}"),
    }
}

/// One cold GET, then `GETS` timed ones, all on one keep-alive connection.
async fn gets(web: &Pool, pid: &str, path: &str) -> Gets {
    let started = Instant::now();
    let first = get_ok(web, path).await;
    let cold = started.elapsed();
    let cpu = cpu_ms(pid);
    let mut times = Vec::with_capacity(GETS);
    let mut body = 0;
    for _ in 0..GETS {
        let started = Instant::now();
        let answer = get_ok(web, path).await;
        times.push(started.elapsed());
        body = body.max(answer.len());
    }
    let cpu_per_get = cpu_ms(pid)
        .zip(cpu)
        .map(|(after, before)| (after - before) as f64 / GETS as f64);
    times.sort_unstable();
    let rank = |q: f64| times[((q * GETS as f64).ceil() as usize).clamp(1, GETS) - 1];
    Gets {
        cold,
        p50: rank(0.50),
        p99: rank(0.99),
        max: rank(1.0),
        body,
        cpu_per_get,
        first: String::from_utf8_lossy(&first).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Live pages: one SSE connection each.

/// One Server-Sent Event as it came: its `event:`, `id:` and `data:` fields.
#[derive(Default)]
struct Frame {
    event: String,
    id: String,
    data: String,
}

/// Splits a stream of chunks into events (blank-line separated; axum writes `\n` endings).
#[derive(Default)]
struct Frames {
    pending: Vec<u8>,
}

impl Frames {
    fn feed(&mut self, chunk: &[u8]) -> Vec<Frame> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.pending.drain(..end + 2).collect();
            let mut frame = Frame::default();
            for line in String::from_utf8_lossy(&block).lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    frame.event = v.to_string();
                } else if let Some(v) = line.strip_prefix("id: ") {
                    frame.id = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    frame.data.push_str(v);
                }
            }
            // A keep-alive comment has no field.
            if !frame.event.is_empty() || !frame.data.is_empty() {
                out.push(frame);
            }
        }
        out
    }
}

enum Heard {
    /// The first `panel` frame: the page is live.
    Open,
    /// The note's timeline frame, when it came.
    Note(Instant, String),
    Failed(String),
}

/// One live page: open the stream, report it open, report the frame whose data holds `tag`,
/// then hold the connection until `release`.
async fn live_page(
    addr: SocketAddr,
    path: String,
    tag: String,
    heard: mpsc::UnboundedSender<Heard>,
    mut release: watch::Receiver<bool>,
) {
    let result: Result<(), String> = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::builder()
            .method(Method::GET)
            .uri(&path)
            .header("host", addr.to_string())
            .header("accept", "text/event-stream")
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        if response.status() != StatusCode::OK {
            return Err(format!("GET {path}: {}", response.status()));
        }
        let mut body = response.into_body();
        let mut frames = Frames::default();
        let mut open = false;
        loop {
            let chunk = tokio::select! {
                chunk = body.frame() => chunk,
                _ = release.wait_for(|r| *r) => return Ok(()),
            };
            let Some(chunk) = chunk else {
                return Err("the stream ended".into());
            };
            let chunk = chunk.map_err(|e| e.to_string())?;
            let Some(data) = chunk.data_ref() else {
                continue;
            };
            for frame in frames.feed(data) {
                if frame.event == "panel" && !open {
                    open = true;
                    let _ = heard.send(Heard::Open);
                } else if frame.event == "timeline" && frame.data.contains(&tag) {
                    let _ = heard.send(Heard::Note(Instant::now(), frame.id));
                }
            }
        }
    }
    .await;
    if let Err(e) = result {
        let _ = heard.send(Heard::Failed(e));
    }
}

struct Live {
    /// From the note's HTTP answer to the last page receiving it.
    last: Duration,
    median: Duration,
    /// Server VmRSS, KiB: before opening the pages, once open, once all received the note.
    rss: [i64; 3],
    per_page_kib: f64,
    seq: String,
}

/// Wait for `count` reports of the kind `pick` accepts; the failures stop the bench.
async fn wait_heard<T>(
    heard: &mut mpsc::UnboundedReceiver<Heard>,
    count: usize,
    timeout: Duration,
    what: &str,
    mut pick: impl FnMut(Heard) -> Option<T>,
) -> Vec<T> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        match tokio::time::timeout_at(deadline, heard.recv()).await {
            Ok(Some(Heard::Failed(e))) => panic!("a live page failed: {e}"),
            Ok(Some(h)) => got.extend(pick(h)),
            Ok(None) => panic!("every live page stopped"),
            Err(_) => panic!("{what}: {} of {count} within {timeout:?}", got.len()),
        }
    }
    got
}

async fn live(web: &Pool, web_addr: SocketAddr, slack: &Endpoint, pid: &str, run: usize) -> Live {
    let page = get_ok(web, &format!("/incidents/{LIVE_INCIDENT}")).await;
    let page = String::from_utf8_lossy(&page);
    let path = page
        .split("data-stream=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the live incident's page has a data-stream")
        .replace("&amp;", "&");
    let tag = format!("webbench{}run{run}", std::process::id());
    // Start-up's own allocations (migrations check, the scheduler's first pass) settle first.
    tokio::time::sleep(SETTLE).await;
    let rss = || proc_status_kib(pid, "VmRSS:").expect("server VmRSS") as i64;
    let rss_before = rss();

    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let (release_tx, release) = watch::channel(false);
    let mut pages = Vec::with_capacity(PAGES);
    for _ in 0..PAGES {
        pages.push(tokio::spawn(live_page(
            web_addr,
            path.clone(),
            tag.clone(),
            heard_tx.clone(),
            release.clone(),
        )));
    }
    wait_heard(&mut heard, PAGES, OPEN_TIMEOUT, "pages open", |h| {
        matches!(h, Heard::Open).then_some(())
    })
    .await;
    let rss_open = rss();

    let text = format!("note {tag} checked the replica");
    let trigger = format!("bench.web.{tag}");
    match support::server::slash(slack, LIVE_CHANNEL, &text, &trigger).await {
        Ok((StatusCode::OK, body)) if String::from_utf8_lossy(&body).contains("in_channel") => {}
        Ok((status, body)) => panic!(
            "/dr note answered {status}: {}",
            String::from_utf8_lossy(&body)
        ),
        Err(e) => panic!("/dr note: {e}"),
    }
    let answered = Instant::now();
    let mut received = wait_heard(
        &mut heard,
        PAGES,
        RECEIVE_TIMEOUT,
        "pages that received the note",
        |h| match h {
            Heard::Note(at, id) => Some((at, id)),
            _ => None,
        },
    )
    .await;
    let rss_after = rss();
    let _ = release_tx.send(true);
    for page in pages {
        let _ = page.await;
    }

    let seq = received[0].1.clone();
    assert!(
        received.iter().all(|(_, id)| *id == seq),
        "every page got the note under one id"
    );
    // A page may hear the note before its command's answer reaches this process: zero then.
    received.sort_unstable_by_key(|(at, _)| *at);
    let since = |at: Instant| at.saturating_duration_since(answered);
    Live {
        last: since(received[PAGES - 1].0),
        median: since(received[PAGES / 2].0),
        rss: [rss_before, rss_open, rss_after],
        per_page_kib: (rss_after - rss_before) as f64 / PAGES as f64,
        seq,
    }
}

// ---------------------------------------------------------------------------------------------

struct Run {
    page: Gets,
    list: Gets,
    list_rows: usize,
    live: Live,
    load: String,
}

async fn run(dir: &std::path::Path, url: &str, api_url: &str, n: usize) -> Run {
    let web_addr = SocketAddr::from(([127, 0, 0, 1], support::server::free_port()));
    let mut server: Server = start_server(
        dir,
        url,
        api_url,
        100,
        &[
            ("DRBOT__WEB__LISTEN", web_addr.to_string()),
            ("DRBOT__WEB__AUTH", "none".to_string()),
        ],
    );
    let pid = server.child.id().to_string();
    wait_ready(&mut server).await;
    let web = Pool::new(web_addr, 1);
    web.fill().await;
    let slack = Endpoint {
        pool: Pool::new(server.addr, 1),
        response_url: format!("{}/response", api_url.trim_end_matches("/api")),
    };
    let load = load_average();

    // The live pages first: see the header.
    let live = live(&web, web_addr, &slack, &pid, n).await;
    let page = gets(&web, &pid, "/incidents/INC-1").await;
    assert!(
        page.first.contains("id=\"ev-100000\""),
        "INC-1's page shows its latest event"
    );
    let list = gets(&web, &pid, "/incidents").await;
    let list_rows = list.first.matches("<tr><td class=\"id\">").count();

    assert!(stop(&mut server).await, "drbot serve stops cleanly");
    Run {
        page,
        list,
        list_rows,
        live,
        load,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> ExitCode {
    support::block_on(bench())
}

async fn bench() -> ExitCode {
    println!(
        "host load average {} ({} cores)",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("web.db").display());
    let started = Instant::now();
    seed(&url).await;
    println!(
        "setup: INC-1 with {} events and {SHORT} short incidents seeded in {:.2?}",
        timeline::EVENTS,
        started.elapsed()
    );
    let (api_url, sink) = start_sink().await;
    let mut runs = Vec::with_capacity(RUNS);
    for n in 1..=RUNS {
        runs.push(run(dir.path(), &url, &api_url, n).await);
    }

    println!(
        "\n| run | load | page cold | page p50 / p99 / max | page body | list cold | list p50 / p99 / max | list rows | server CPU/GET page / list | live: last / median page | note id | VmRSS before / open / received | per page |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let cpu = |c: Option<f64>| c.map_or("n/a".into(), |c| format!("{c:.2} ms"));
    for (i, r) in runs.iter().enumerate() {
        println!(
            "| {} | {} | {:.1} ms | {:.2} / {:.2} / {:.2} ms | {:.0} KiB | {:.1} ms | {:.2} / {:.2} / {:.2} ms | {} | {} / {} | {:.1} / {:.1} ms | {} | {:.1} / {:.1} / {:.1} MiB | {:.1} KiB |",
            i + 1,
            r.load,
            ms(r.page.cold),
            ms(r.page.p50),
            ms(r.page.p99),
            ms(r.page.max),
            r.page.body as f64 / 1024.0,
            ms(r.list.cold),
            ms(r.list.p50),
            ms(r.list.p99),
            ms(r.list.max),
            r.list_rows,
            cpu(r.page.cpu_per_get),
            cpu(r.list.cpu_per_get),
            ms(r.live.last),
            ms(r.live.median),
            r.live.seq,
            r.live.rss[0] as f64 / 1024.0,
            r.live.rss[1] as f64 / 1024.0,
            r.live.rss[2] as f64 / 1024.0,
            r.live.per_page_kib,
        );
    }

    let of = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
    let page_p99 = of(&|r| ms(r.page.p99));
    let page_body = runs.iter().map(|r| r.page.body).max().unwrap_or(0);
    let list_p99 = of(&|r| ms(r.list.p99));
    let live_last = of(&|r| ms(r.live.last));
    let per_page = of(&|r| r.live.per_page_kib);
    let checks = [
        (
            format!(
                "/incidents/INC-1 ({} events), p99 of {GETS} warm GETs",
                timeline::EVENTS
            ),
            format!("< {} ms", TARGET_P99.as_millis()),
            format!("{page_p99:.2} ms (cold {:.1} ms)", of(&|r| ms(r.page.cold))),
            page_p99 < ms(TARGET_P99),
        ),
        (
            "/incidents/INC-1 body (largest)".into(),
            format!("< {} MB", TARGET_BODY / 1_000_000),
            format!("{:.0} KiB", page_body as f64 / 1024.0),
            page_body < TARGET_BODY,
        ),
        (
            format!(
                "/incidents ({} incidents), p99 of {GETS} warm GETs",
                SHORT + 1
            ),
            format!("< {} ms", TARGET_P99.as_millis()),
            format!("{list_p99:.2} ms (cold {:.1} ms)", of(&|r| ms(r.list.cold))),
            list_p99 < ms(TARGET_P99),
        ),
        (
            format!("{PAGES} live pages: the last one receives the note"),
            format!("< {} ms", TARGET_LIVE.as_millis()),
            format!("{live_last:.1} ms"),
            live_last < ms(TARGET_LIVE),
        ),
        (
            "server memory per open live page".into(),
            format!("< {TARGET_PAGE_KIB:.0} KiB"),
            format!("{per_page:.1} KiB"),
            per_page < TARGET_PAGE_KIB,
        ),
    ];
    println!("\n| check (median of {RUNS} runs) | target | measured | result |\n|---|---|---|---|");
    for (what, target, measured, ok) in &checks {
        println!(
            "| {what} | {target} | {measured} | {} |",
            if *ok { "pass" } else { "FAIL" }
        );
    }
    println!(
        "outbox: {} posts and updates delivered to the Slack sink (the notes' and whatever \
         the scheduler sent); host load average at the end {}",
        sink.delivered(),
        load_average()
    );
    if checks.iter().all(|c| c.3) {
        println!("ok");
        ExitCode::SUCCESS
    } else {
        println!("FAILED: a target was missed");
        ExitCode::FAILURE
    }
}
