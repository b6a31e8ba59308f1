//! The event log and the incidents: reads of timelines and incident rows, and the chat
//! requests already seen.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::Lite;
use super::rows::{all, col, decode_event, exec, optional};
use crate::incident::{Event, IncidentId};
use crate::store::rows::corrupt;
use crate::store::{ActiveIncident, IncidentRow, StoreError, fmt_time, rows, sql};

/// Events one read of a long timeline brings at a time.
const STREAM_CHUNK: i64 = 2_000;

impl Lite {
    pub(in crate::store) fn next_incident_id(&self) -> Result<IncidentId, StoreError> {
        self.read(|c| {
            Ok(c.prepare_cached(sql::NEXT_INCIDENT_ID)?
                .query_row([], |r| r.get(0))?)
        })
    }

    pub(in crate::store) fn incident(
        &self,
        id: IncidentId,
    ) -> Result<Option<IncidentRow>, StoreError> {
        self.read(|c| optional(c, sql::INCIDENT, [id], |r| rows::incident(r)))
    }

    pub(in crate::store) fn id_query(
        &self,
        sql_text: &str,
        channel: &str,
    ) -> Result<Option<IncidentId>, StoreError> {
        self.read(|c| optional(c, sql_text, [channel], |r| col(r, "id")))
    }

    pub(in crate::store) fn ids(&self, sql_text: &str) -> Result<Vec<IncidentId>, StoreError> {
        self.read(|c| all(c, sql_text, [], |r| col(r, "id")))
    }

    pub(in crate::store) fn incident_seqs(
        &self,
        sql_text: &str,
    ) -> Result<Vec<ActiveIncident>, StoreError> {
        self.read(|c| all(c, sql_text, [], |r| rows::active_incident(r)))
    }

    pub(in crate::store) fn events_before(
        &self,
        incident: IncidentId,
        before: i64,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        self.read(|c| {
            all(
                c,
                &sql::EVENTS_BEFORE,
                params![incident, before, limit],
                decode_event,
            )
        })
    }

    pub(in crate::store) async fn events(
        &self,
        incident: IncidentId,
    ) -> Result<Vec<Event>, StoreError> {
        self.read_long(move |c| all(c, &sql::EVENTS, [incident], decode_event))
            .await
    }

    pub(in crate::store) fn events_after(
        &self,
        incident: IncidentId,
        after: i64,
    ) -> Result<Vec<Event>, StoreError> {
        if self.appended.nothing_after(incident, after) {
            return Ok(Vec::new());
        }
        self.read(|c| {
            all(
                c,
                &sql::EVENTS_AFTER,
                params![incident, after],
                decode_event,
            )
        })
    }

    /// A long timeline in chunks of [`STREAM_CHUNK`] events, read ahead on a blocking thread
    /// while the receiver works through the previous chunk (an export formats one chunk
    /// while the next is read and decoded: on two cores that halves its time). Each chunk is
    /// its own read, so no snapshot is held for the whole export; a bad row is reported and
    /// the rest still come; dropping the receiver stops the reading.
    pub(in crate::store) fn events_ahead(
        &self,
        incident: IncidentId,
    ) -> tokio::sync::mpsc::Receiver<Result<Vec<Result<Event, StoreError>>, StoreError>> {
        let (chunks, ahead) = tokio::sync::mpsc::channel(1);
        if self.closed.load(Ordering::Acquire) {
            let _ = chunks.try_send(Err(StoreError::Closed));
            return ahead;
        }
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let mut after = 0;
            loop {
                let chunk = all(
                    &readers.get(),
                    &sql::EVENTS_CHUNK,
                    params![incident, after, STREAM_CHUNK],
                    |r| Ok((r.get(1).map_err(|e| corrupt("seq", e))?, decode_event(r))),
                );
                // A short chunk is the last one.
                let (rows, next) = match chunk {
                    Ok(chunk) => {
                        let full = chunk.len() as i64 == STREAM_CHUNK;
                        let last = chunk.last().map(|(seq, _): &(i64, _)| *seq);
                        let rows = chunk.into_iter().map(|(_, ev)| ev).collect();
                        (Ok(rows), last.filter(|_| full))
                    }
                    Err(e) => (Err(e), None),
                };
                if chunks.blocking_send(rows).is_err() {
                    return;
                }
                match next {
                    Some(seq) => after = seq,
                    None => return,
                }
            }
        });
        ahead
    }

    pub(in crate::store) fn request_seen(&self, key: &str) -> Result<bool, StoreError> {
        self.read(|c| Ok(optional(c, sql::REQUEST_SEEN, [key], |_| Ok(()))?.is_some()))
    }

    pub(in crate::store) async fn forget_requests(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.write(move |c| Ok(exec(c, sql::FORGET_REQUESTS, [fmt_time(before)])? as u64))
            .await
    }
}
