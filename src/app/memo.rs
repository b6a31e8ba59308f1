//! What the process remembers between commands: the folded incidents, the channels' turns,
//! the requests in flight. The store stays the truth.

use std::sync::Arc;

use crate::incident::state::Pending;
use crate::incident::{Incident, IncidentId};

/// What the process remembers between commands; the store stays the truth.
#[derive(Default)]
pub struct Memo {
    /// Folded incidents by id, as last decided here. A command decides on one as it is; its
    /// commit's sequence check, or a read of the events after it before an answer given from
    /// it, makes sure another writer is never missed (see [`Trust`]).
    states: Folds,
    /// Each incident as it last stood in the store (read, or a commit landed), unlike
    /// `states`, which may lead by commits still in flight: when one of those fails, what it
    /// was built on is gone, and the next use starts from here instead of the whole timeline.
    durable: Folds,
    /// One command at a time per channel in this process: concurrent commands would only
    /// collide on the incident's sequence number and retry.
    channels: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Request keys whose commit is queued but not yet durable, each locked until it lands:
    /// a redelivery waits for the first delivery's outcome instead of being decided on it.
    requests: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The channel's open incident as last seen. Only an open one is remembered: one channel
    /// has at most one, so it stays right until that incident's own timeline says resolved,
    /// which `App::open_incident` reads before trusting it.
    open: std::sync::Mutex<std::collections::HashMap<String, IncidentId>>,
}

impl Memo {
    pub(super) fn hold_request(&self, key: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let held = Arc::new(tokio::sync::Mutex::new(()));
        let guard = held.clone().try_lock_owned().ok()?;
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), held);
        Some(guard)
    }

    pub(super) fn request_in_flight(&self, key: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    pub(super) fn release_request(&self, key: &str) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    pub(super) fn channel(&self, channel: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(channel.to_string())
            .or_default()
            .clone()
    }

    pub(super) fn state(&self, id: IncidentId) -> Option<Incident> {
        kept(&self.states, id)
    }

    /// Drop what is remembered of an incident (a commit built on it failed): the next use
    /// reads it again from the store.
    pub(super) fn forget(&self, id: IncidentId) {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub(super) fn open_in(&self, channel: &str) -> Option<IncidentId> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            .copied()
    }

    pub(super) fn set_open(&self, channel: &str, id: Option<IncidentId>) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match id {
            Some(id) => {
                open.insert(channel.to_string(), id);
            }
            None => {
                open.remove(channel);
            }
        }
    }

    pub(super) fn remember(&self, state: &Incident) {
        newest(&self.states, state, state.pending);
    }

    /// `state` is in the store: what is decided on it needs only the sequence check.
    pub(super) fn confirm(&self, state: &Incident) {
        newest(&self.durable, state, Pending(None));
        let Some(landed) = state.pending.0 else {
            return;
        };
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = states.get_mut(&state.id)
            && kept.pending.0 == Some(landed)
        {
            kept.pending = Pending(None);
        }
    }

    pub(super) fn durable(&self, id: IncidentId) -> Option<Incident> {
        kept(&self.durable, id)
    }
}

type Folds = std::sync::Mutex<std::collections::HashMap<IncidentId, Incident>>;

fn kept(folds: &Folds, id: IncidentId) -> Option<Incident> {
    folds
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned()
}

/// Keep `state`, as `pending`, unless a newer view is kept already (two tasks may race to
/// remember).
fn newest(folds: &Folds, state: &Incident, pending: Pending) {
    let mut kept = folds.lock().unwrap_or_else(|e| e.into_inner());
    if kept.get(&state.id).is_none_or(|s| s.seq < state.seq) {
        kept.insert(
            state.id,
            Incident {
                pending,
                ..state.clone()
            },
        );
    }
}
