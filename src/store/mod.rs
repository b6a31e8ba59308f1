//! Durable storage (sqlx, SQLite or PostgreSQL): the append-only timeline, the outbox of
//! messages to deliver, the queue of operations to launch and watch, and a small projection
//! of each incident for lookups. Everything one decision causes is committed in one transaction.

use chrono::{DateTime, Utc};

use crate::incident::{Actor, Event, EventKind, IncidentId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else appended to the incident first; reload and decide again.
    #[error("the incident changed concurrently; retry")]
    Conflict,
    /// A row with this dedupe key exists: the work was already done (cadence slot, reminder…).
    #[error("already recorded: {0}")]
    Duplicate(String),
    /// Another incident is already open in this channel.
    #[error("an incident is already open in channel {0}")]
    OpenIncidentExists(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("unsupported database URL {0}: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An event to append; the store assigns the incident and the sequence number.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub recorded_at: DateTime<Utc>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub actor: Actor,
    pub kind: EventKind,
    /// Unique per incident when set: a second append with the same key fails with
    /// [`StoreError::Duplicate`] (one post per cadence slot, one reminder, one summary).
    pub dedupe_key: Option<String>,
}

/// A message to post to a channel, delivered later by the outbox worker.
#[derive(Debug, Clone)]
pub struct NewPost {
    pub channel: String,
    /// JSON of the neutral message.
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub enum OperationChange {
    /// A confirmed launch: queued for the worker.
    Queue {
        operation: String,
        kind: String,
        object_name: String,
        backend: String,
        spec: String,
    },
    Launched {
        operation: String,
        at: DateTime<Utc>,
    },
    Finished {
        operation: String,
        at: DateTime<Utc>,
    },
}

/// The incident row kept in step with the events (for lookups without a fold).
#[derive(Debug, Clone)]
pub struct Projection {
    pub severity: String,
    pub incident_type: Option<String>,
    pub title: String,
    pub drill: bool,
    pub declared_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub final_summary_posted: bool,
}

#[derive(Debug, Clone)]
pub enum Target {
    /// Append to an incident whose last seen sequence number is `expected_seq`.
    Existing { id: IncidentId, expected_seq: i64 },
    /// Create the incident (its first event is the declaration).
    New { channel: String, platform: String },
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub target: Target,
    pub events: Vec<NewEvent>,
    pub posts: Vec<NewPost>,
    pub operations: Vec<OperationChange>,
    pub projection: Projection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub incident: IncidentId,
    /// Sequence numbers given to the events, in order.
    pub seqs: Vec<i64>,
}

/// A queued or running operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRow {
    pub incident: IncidentId,
    pub operation: String,
    pub kind: String,
    pub object_name: String,
    pub backend: String,
    /// JSON of the `OperationSpec`.
    pub spec: String,
    /// `queued`, `launched` or `finished`.
    pub status: String,
    pub launched_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub incident: Option<IncidentId>,
    pub channel: String,
    pub body: String,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    pub id: IncidentId,
    pub channel: String,
    pub platform: String,
    pub severity: String,
    pub incident_type: Option<String>,
    pub title: String,
    pub drill: bool,
    pub declared_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub final_summary_posted: bool,
    pub last_seq: i64,
}

pub struct Store {
    backend: Backend,
}

impl Store {
    /// Connect, create the SQLite file if needed (WAL, synchronous=FULL), run migrations.
    pub async fn connect(_url: &str) -> Result<Store, StoreError> {
        todo!()
    }
    pub fn backend(&self) -> Backend {
        self.backend
    }
    pub async fn commit(&self, _commit: Commit) -> Result<Committed, StoreError> {
        todo!()
    }
    pub async fn incident(&self, _id: IncidentId) -> Result<Option<IncidentRow>, StoreError> {
        todo!()
    }
    /// The open incident in a channel, if any.
    pub async fn open_incident_in(&self, _channel: &str) -> Result<Option<IncidentId>, StoreError> {
        todo!()
    }
    /// The newest incident of a channel, open or resolved.
    pub async fn latest_incident_in(&self, _channel: &str) -> Result<Option<IncidentId>, StoreError> {
        todo!()
    }
    /// Incidents the scheduler must look at: open, or resolved with the final summary owed.
    pub async fn active_incidents(&self) -> Result<Vec<IncidentId>, StoreError> {
        todo!()
    }
    pub async fn events(&self, _incident: IncidentId) -> Result<Vec<Event>, StoreError> {
        todo!()
    }
    /// Events in order without loading them all (exports of very long timelines).
    pub fn stream_events(
        &self,
        _incident: IncidentId,
    ) -> impl futures_util::Stream<Item = Result<Event, StoreError>> + Send + '_ {
        futures_util::stream::empty()
    }
    /// Operations with status `queued` or `launched`.
    pub async fn unfinished_operations(&self) -> Result<Vec<OperationRow>, StoreError> {
        todo!()
    }
    /// Undelivered outbox rows whose next attempt is due, oldest first.
    pub async fn due_posts(&self, _now: DateTime<Utc>, _limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        todo!()
    }
    pub async fn mark_delivered(&self, _id: i64, _at: DateTime<Utc>, _receipt: &str) -> Result<(), StoreError> {
        todo!()
    }
    pub async fn mark_failed(&self, _id: i64, _next_attempt: DateTime<Utc>, _error: &str) -> Result<(), StoreError> {
        todo!()
    }
    /// Undelivered posts (all channels): depth for metrics and for draining before exit.
    pub async fn pending_posts(&self) -> Result<i64, StoreError> {
        todo!()
    }
}
