//! WATCH: list items, bookmarks, and the newline-delimited event stream.

use super::*;

impl Call<'_> {
    pub(super) fn watch(&self) -> Result<Response, Reply> {
        let selectors = self.selectors()?;
        let res = self.res();
        let bookmarks = matches!(self.param("allowWatchBookmarks"), Some("true" | "1"));
        let initial_events = matches!(self.param("sendInitialEvents"), Some("true" | "1"));
        let timeout = self
            .param("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map_or(Duration::from_secs(1800), Duration::from_secs);
        let from = self.param("resourceVersion").unwrap_or("");
        let world = self.shared.world.lock().unwrap();
        let mut lines = Vec::new();
        let cursor;
        let mut closed = false;
        match from.parse::<u64>() {
            Ok(rv) if rv > 0 && !initial_events => {
                if rv < world.compacted {
                    lines.push(watch_line(
                        "ERROR",
                        &status_body(
                            410,
                            "Expired",
                            &format!("too old resource version: {rv} ({})", world.compacted),
                            None,
                        ),
                    ));
                    closed = true;
                }
                cursor = rv;
            }
            _ if from.is_empty() || from == "0" || initial_events => {
                // Synthetic ADDED for the current state, then changes.
                for ((p, ns, _), object) in &world.objects {
                    if *p == res.plural && self.in_scope(ns) && selectors.matches(object) {
                        lines.push(watch_line("ADDED", object));
                    }
                }
                cursor = world.rv;
                if initial_events {
                    lines.push(watch_line("BOOKMARK", &bookmark(res, cursor, true)));
                }
            }
            _ => {
                return Err(Reply::bad_request(format!(
                    "invalid resource version: {from}"
                )));
            }
        }
        drop(world);
        let state = Watch {
            shared: self.shared.clone(),
            res,
            namespace: self.target.namespace.clone(),
            selectors,
            cursor,
            pending: lines.into(),
            closed,
            bookmarks,
            deadline: tokio::time::Instant::now() + timeout,
        };
        let stream = futures_util::stream::unfold(state, Watch::next);
        Ok(axum::http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("cache-control", "no-cache, private")
            .body(Body::from_stream(stream))
            .expect("watch response"))
    }
}

/// List items: custom resources carry apiVersion/kind, core list items do not (as the
/// real server's typed lists).
pub(super) fn list_item(res: &Resource, object: &Value) -> Value {
    let mut item = object.clone();
    if !res.custom
        && let Some(map) = item.as_object_mut()
    {
        map.remove("apiVersion");
        map.remove("kind");
    }
    item
}

pub(super) fn bookmark(res: &Resource, rv: u64, initial_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": metadata})
}

pub(super) fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// An open watch: sends queued lines, then events after `cursor`, then waits.
pub(super) struct Watch {
    pub(super) shared: Arc<Shared>,
    pub(super) res: &'static Resource,
    pub(super) namespace: Option<String>,
    pub(super) selectors: Selectors,
    pub(super) cursor: u64,
    pub(super) pending: VecDeque<Bytes>,
    pub(super) closed: bool,
    pub(super) bookmarks: bool,
    pub(super) deadline: tokio::time::Instant,
}

impl Watch {
    pub(super) async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Watch)> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some((Ok(line), self));
            }
            if self.closed {
                return None;
            }
            let shared = self.shared.clone();
            let notified = shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.collect();
            if !self.pending.is_empty() {
                continue;
            }
            let every = *shared.bookmark_every.lock().unwrap();
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(self.deadline) => return None,
                _ = tokio::time::sleep(every), if self.bookmarks => {
                    let mark = bookmark(self.res, self.cursor, false);
                    self.pending.push_back(watch_line("BOOKMARK", &mark));
                }
            }
        }
    }

    /// Queue the events after the cursor that this watch sees.
    pub(super) fn collect(&mut self) {
        let world = self.shared.world.lock().unwrap();
        if self.cursor < world.compacted {
            self.pending.push_back(watch_line(
                "ERROR",
                &status_body(410, "Expired", "too old resource version", None),
            ));
            self.closed = true;
            return;
        }
        let start = world.events.partition_point(|e| e.rv <= self.cursor);
        for event in &world.events[start..] {
            if event.resource.plural != self.res.plural {
                continue;
            }
            if let Some(ns) = &self.namespace
                && *ns != event.namespace
            {
                continue;
            }
            let now_matches = self.selectors.matches(&event.object);
            let was_matching = event
                .previous
                .as_ref()
                .is_some_and(|p| self.selectors.matches(p));
            let kind = match (event.kind, was_matching, now_matches) {
                ("MODIFIED", true, false) => "DELETED",
                ("MODIFIED", false, true) => "ADDED",
                ("MODIFIED", false, false) => continue,
                (_, _, false) => continue,
                (kind, _, true) => kind,
            };
            self.pending.push_back(watch_line(kind, &event.object));
        }
        self.cursor = world.rv;
    }
}
