//! The folded incident plus the counts and names a summary needs.

use std::collections::HashMap;

use crate::incident::{Actor, Event, Incident};

/// The folded incident plus what a summary needs that the state does not keep.
#[derive(Debug, Clone)]
pub struct Overview {
    pub incident: Incident,
    pub event_count: u64,
    pub first_seq: i64,
    pub last_seq: i64,
    /// Display names by actor id: roles only record ids. Bounded by the people involved.
    names: HashMap<String, String>,
}

impl Overview {
    /// Start from the first event, which must be the declaration.
    pub fn start(first: &Event) -> Option<Overview> {
        let incident = Incident::from_declared(first)?;
        let mut overview = Overview {
            incident,
            event_count: 1,
            first_seq: first.seq,
            last_seq: first.seq,
            names: HashMap::new(),
        };
        overview.remember(&first.actor);
        Some(overview)
    }

    pub fn apply(&mut self, event: &Event) {
        self.incident.apply(event);
        self.event_count += 1;
        self.last_seq = event.seq;
        self.remember(&event.actor);
    }

    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Overview> {
        let mut events = events.into_iter();
        let mut overview = Overview::start(events.next()?)?;
        for event in events {
            overview.apply(event);
        }
        Some(overview)
    }

    fn remember(&mut self, actor: &Actor) {
        if actor.is_drbot() || self.names.get(&actor.id) == Some(&actor.name) {
            return;
        }
        self.names.insert(actor.id.clone(), actor.name.clone());
    }

    /// `Alice (U123)` when the id was seen acting, the bare id otherwise.
    pub(super) fn person(&self, id: &str) -> String {
        match self.names.get(id) {
            Some(name) if name != id => format!("{name} ({id})"),
            _ => id.to_string(),
        }
    }
}
