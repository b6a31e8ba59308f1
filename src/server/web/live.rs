//! Live pages: Server-Sent Events carrying each new timeline event (`event: timeline`,
//! `id: {seq}`) and the panels above the timeline (`event: panel`).
//!
//! One feed per watched incident reads the store for all the pages open on it, and renders
//! each event once. It reads when a commit of this process lands (`App::timeline_changed`)
//! and every second, which brings another replica's commits within that second and moves
//! the RTO bars on as time passes. A page resumes from its last event: the `after` its page
//! was rendered with, then the `Last-Event-ID` its browser sends on reconnecting; whatever
//! was committed in between comes from the store, so nothing is missed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::Event as SseEvent;
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::{broadcast, watch};
use tracing::warn;

use super::incident::{event_row, panels};
use crate::app::{App, AppError};
use crate::incident::{Event, Incident, IncidentId};

/// How often the feeds read the store without being woken: another replica's commits
/// arrive within this.
const TICK: Duration = Duration::from_secs(1);
/// Batches a slow page may fall behind before it reads what it missed from the store.
const BACKLOG: usize = 64;
/// A page that missed more events than this is told to reload (it shows the latest page
/// with links to older ones) rather than sent them all.
pub const MAX_REPLAY: usize = 2_000;

pub struct Live {
    app: Arc<App>,
    feeds: Mutex<HashMap<IncidentId, Arc<Feed>>>,
}

/// One watched incident: its state as of the last event sent, and the pages listening.
struct Feed {
    pages: broadcast::Sender<Arc<Batch>>,
    shown: tokio::sync::Mutex<Shown>,
}

struct Shown {
    state: Incident,
    panel: Arc<str>,
}

/// What one read of the store brought: events rendered once for every page.
struct Batch {
    events: Vec<(i64, Arc<str>)>,
    panel: Option<Arc<str>>,
}

pub type Frames = BoxStream<'static, Result<SseEvent, Infallible>>;

impl Live {
    pub fn new(app: Arc<App>) -> Arc<Live> {
        Arc::new(Live {
            app,
            feeds: Mutex::default(),
        })
    }

    /// Read on for every watched incident until `stopped`.
    pub async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.app.timeline_changed.notified() => {}
                _ = tick.tick() => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
            for (id, feed) in self.watched() {
                if let Err(e) = self.advance(id, &feed).await {
                    warn!(incident = id, error = %e, "web view: live read");
                }
            }
        }
    }

    /// Feeds with a page listening; the others are dropped.
    fn watched(&self) -> Vec<(IncidentId, Arc<Feed>)> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds.retain(|_, feed| feed.pages.receiver_count() > 0);
        feeds.iter().map(|(id, f)| (*id, f.clone())).collect()
    }

    async fn advance(&self, id: IncidentId, feed: &Feed) -> Result<(), AppError> {
        let mut shown = feed.shown.lock().await;
        let newer = self.app.store.events_after(id, shown.state.seq).await?;
        let mut events = Vec::with_capacity(newer.len());
        for event in &newer {
            shown.state.apply(event);
            events.push((event.seq, row(event)));
        }
        let panel = self.panel(&shown.state);
        let changed = panel != shown.panel;
        if events.is_empty() && !changed {
            return Ok(());
        }
        if changed {
            shown.panel = panel.clone();
        }
        // No page listening is not an error: the feed is dropped at the next read.
        let _ = feed.pages.send(Arc::new(Batch {
            events,
            panel: changed.then_some(panel),
        }));
        Ok(())
    }

    fn panel(&self, state: &Incident) -> Arc<str> {
        let mut html = String::new();
        let _ = panels(&mut html, &self.app, state, self.app.clock.now());
        html.into()
    }

    /// The incident's feed and a place among its pages; `None` for an unknown incident.
    async fn join(
        &self,
        id: IncidentId,
    ) -> Result<Option<(Arc<Feed>, broadcast::Receiver<Arc<Batch>>)>, AppError> {
        if let Some(joined) = self.joined(id) {
            return Ok(Some(joined));
        }
        let Some(state) = self.app.stored_state(id, None).await? else {
            return Ok(None);
        };
        let panel = self.panel(&state);
        let feed = Arc::new(Feed {
            pages: broadcast::channel(BACKLOG).0,
            shown: tokio::sync::Mutex::new(Shown { state, panel }),
        });
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        // Another page may have started the feed meanwhile: join that one.
        let feed = feeds.entry(id).or_insert(feed).clone();
        let pages = feed.pages.subscribe();
        Ok(Some((feed, pages)))
    }

    fn joined(&self, id: IncidentId) -> Option<(Arc<Feed>, broadcast::Receiver<Arc<Batch>>)> {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        let feed = feeds.get(&id)?.clone();
        let pages = feed.pages.subscribe();
        Some((feed, pages))
    }

    /// The stream of one page that has seen every event up to `after`: what it missed, the
    /// panels as they stand, then each new event as it lands. `None`: no such incident.
    pub async fn page(
        self: &Arc<Self>,
        id: IncidentId,
        after: i64,
        mut stopped: watch::Receiver<bool>,
    ) -> Result<Option<Frames>, AppError> {
        // Join before reading what was missed: an event is then either in the read or in a
        // batch after it (both, at worst, and the duplicate is skipped by its number).
        let Some((feed, pages)) = self.join(id).await? else {
            return Ok(None);
        };
        let (known, panel) = {
            let shown = feed.shown.lock().await;
            (shown.state.seq, shown.panel.clone())
        };
        // An id from the future (a forged or stale header) cannot skip what is to come: the
        // page resumes from the newest event this process has seen.
        let after = after.clamp(0, known);
        let missed = self.app.store.events_after(id, after).await?;
        let mut first = Vec::with_capacity(missed.len().min(MAX_REPLAY) + 1);
        let mut sent = after;
        if missed.len() > MAX_REPLAY {
            first.push(SseEvent::default().event("reload").data(format!(
                "{} events were missed; reload for the latest",
                missed.len()
            )));
        } else {
            for event in &missed {
                first.push(timeline_frame(event.seq, &row(event)));
                sent = event.seq;
            }
        }
        first.push(panel_frame(&panel));
        let live = self.clone();
        let rest = stream::unfold((pages, sent), move |(mut pages, mut sent)| {
            let live = live.clone();
            async move {
                loop {
                    let frames = match pages.recv().await {
                        Ok(batch) => frames(&batch, &mut sent),
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            // Too slow for the backlog: read what it missed instead.
                            let missed = live.app.store.events_after(id, sent).await.ok()?;
                            missed
                                .iter()
                                .map(|e| {
                                    sent = e.seq;
                                    timeline_frame(e.seq, &row(e))
                                })
                                .collect()
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    };
                    if !frames.is_empty() {
                        let frames = stream::iter(frames.into_iter().map(Ok));
                        return Some((frames, (pages, sent)));
                    }
                }
            }
        })
        .flatten();
        let stop = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        Ok(Some(
            stream::iter(first.into_iter().map(Ok))
                .chain(rest)
                .take_until(stop)
                .boxed(),
        ))
    }
}

fn row(event: &Event) -> Arc<str> {
    let mut html = String::new();
    let _ = event_row(&mut html, event);
    html.into()
}

/// The frames of a batch this page has not had yet.
fn frames(batch: &Batch, sent: &mut i64) -> Vec<SseEvent> {
    let mut out = Vec::with_capacity(batch.events.len() + 1);
    for (seq, html) in &batch.events {
        if *seq > *sent {
            out.push(timeline_frame(*seq, html));
            *sent = *seq;
        }
    }
    if let Some(panel) = &batch.panel {
        out.push(panel_frame(panel));
    }
    out
}

fn timeline_frame(seq: i64, html: &str) -> SseEvent {
    SseEvent::default()
        .event("timeline")
        .id(seq.to_string())
        .data(sendable(html))
}

fn panel_frame(html: &str) -> SseEvent {
    SseEvent::default().event("panel").data(sendable(html))
}

/// SSE cannot carry a carriage return (axum refuses one); escaped text has none, and this
/// keeps it so whatever the markup.
fn sendable(html: &str) -> std::borrow::Cow<'_, str> {
    if html.contains('\r') {
        html.replace('\r', "").into()
    } else {
        html.into()
    }
}
