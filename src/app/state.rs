//! The incident as it stands: what is remembered, brought up to date from the store as far
//! as the caller needs.

use super::{App, AppError};
use crate::incident::{Event, Incident, IncidentId};
use crate::store::ActiveIncident;

impl App {
    pub(super) async fn load(
        &self,
        id: IncidentId,
    ) -> Result<(Vec<Event>, Option<Incident>), AppError> {
        let events = self.store.events(id).await?;
        let state = Incident::fold(&events);
        if let Some(s) = &state {
            self.memo.remember(s);
            self.memo.confirm(s);
        }
        Ok((events, state))
    }

    /// The channel's open incident as it stands. The remembered id saves the lookup while
    /// its timeline still says open; once it says resolved (here or on another replica) the
    /// store is asked which incident, if any, is open now.
    pub(super) async fn open_incident(
        &self,
        channel: &str,
        trust: Trust,
    ) -> Result<Option<Incident>, AppError> {
        if let Some(id) = self.memo.open_in(channel)
            && let Some(state) = self.state_as(id, trust).await?
            && state.is_open()
        {
            return Ok(Some(state));
        }
        let open = match self.store.open_incident_in(channel).await? {
            Some(id) => self.state_as(id, trust).await?,
            None => None,
        };
        self.memo.set_open(channel, open.as_ref().map(|s| s.id));
        Ok(open)
    }

    /// The state of an incident the store listed as active: what is remembered when it is as
    /// far along as the store said, without a read; otherwise brought up to date.
    pub(super) async fn active_state(
        &self,
        active: ActiveIncident,
    ) -> Result<Option<Incident>, AppError> {
        if let Some(state) = self.memo.state(active.id)
            && state.seq >= active.seq
        {
            return Ok(Some(state));
        }
        self.state(active.id).await
    }

    /// The incident as remembered, without asking the store for anything newer, when `trust`
    /// allows; otherwise as it stands.
    pub(super) async fn state_as(
        &self,
        id: IncidentId,
        trust: Trust,
    ) -> Result<Option<Incident>, AppError> {
        match (trust, self.memo.state(id)) {
            (Trust::Remembered, Some(state)) => Ok(Some(state)),
            _ => self.state(id).await,
        }
    }

    /// The incident as it stands: the remembered fold plus the events stored since.
    pub(super) async fn state(&self, id: IncidentId) -> Result<Option<Incident>, AppError> {
        let (mut state, in_store) = match self.memo.state(id) {
            Some(state) => (state, false),
            None => match self.memo.durable(id) {
                Some(state) => (state, true),
                None => return Ok(self.load(id).await?.1),
            },
        };
        let newer = self.store.events_after(id, state.seq).await?;
        for event in &newer {
            state.apply(event);
        }
        if in_store || !newer.is_empty() {
            self.memo.remember(&state);
        }
        if in_store && !newer.is_empty() {
            self.memo.confirm(&state);
        }
        Ok(Some(state))
    }
}

/// For readers outside the commands (the web view): only what is in the store, never a
/// commit still in flight.
impl App {
    /// The incident as the store holds it. `last_seq`, when the caller read it from the
    /// incidents table, saves asking for newer events when the remembered fold has them all.
    /// The first read folds the timeline as a stream, so a long one never sits in memory.
    pub async fn stored_state(
        &self,
        id: IncidentId,
        last_seq: Option<i64>,
    ) -> Result<Option<Incident>, AppError> {
        let Some(mut state) = self.memo.durable(id) else {
            let mut events = std::pin::pin!(self.store.stream_events(id));
            let mut state: Option<Incident> = None;
            while let Some(event) = futures_util::StreamExt::next(&mut events).await {
                let event = event?;
                match &mut state {
                    Some(s) => s.apply(&event),
                    None => state = Incident::from_declared(&event),
                }
            }
            if let Some(s) = &state {
                self.memo.remember(s);
                self.memo.confirm(s);
            }
            return Ok(state);
        };
        if last_seq.is_some_and(|seq| state.seq >= seq) {
            return Ok(Some(state));
        }
        let newer = self.store.events_after(id, state.seq).await?;
        if !newer.is_empty() {
            for event in &newer {
                state.apply(event);
            }
            self.memo.confirm(&state);
        }
        Ok(Some(state))
    }

    /// Every incident as the store holds it, newest first.
    pub async fn stored_states(&self) -> Result<Vec<Incident>, AppError> {
        let mut all = Vec::new();
        for row in self.store.all_incidents().await? {
            if let Some(state) = self.stored_state(row.id, Some(row.seq)).await? {
                all.push(state);
            }
        }
        Ok(all)
    }
}

/// What a command is decided on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Trust {
    /// What is remembered, without asking the store for anything newer: that read cost a
    /// PostgreSQL command a round trip of its own. A commit decided on it is checked by its
    /// expected sequence number; an answer given from it is checked before it goes out.
    Remembered,
    /// What is remembered plus what the store holds after it.
    Read,
}
