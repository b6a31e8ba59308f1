//! What a commit writes, as statements with their values: built once, then run by the SQLite
//! writer, by the PostgreSQL writer's savepoint path, and written out as the PostgreSQL batch
//! script, so that all three run the same statements in the same order and read a refusal the
//! same way.

use std::borrow::Cow;

use super::{
    Commit, Committed, GiveUp, OperationChange, StoreError, Target, fmt_time, refuse_nul, sql,
};
use crate::incident::IncidentId;

/// A value bound to a statement.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Arg<'a> {
    Int(i64),
    Text(Cow<'a, str>),
    Null,
    Bool(bool),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(value: &'a str) -> Self {
        Arg::Text(Cow::Borrowed(value))
    }
}

impl From<String> for Arg<'_> {
    fn from(value: String) -> Self {
        Arg::Text(Cow::Owned(value))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(value: Option<&'a str>) -> Self {
        value.map_or(Arg::Null, Arg::from)
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(value: Option<String>) -> Self {
        value.map_or(Arg::Null, Arg::from)
    }
}

/// What a unique-key violation of a statement means to the caller.
#[derive(Debug, Clone, Copy)]
pub(super) enum OnUnique<'a> {
    /// The open incident of this channel (a key naming `channel`), or a concurrent
    /// declaration that took the id first.
    Declare {
        channel: &'a str,
    },
    /// Only the open-incident-per-channel index can object to a projection update; the
    /// channel is the one the sequence claim returned.
    Reopen,
    Request {
        key: &'a str,
    },
    /// A keyed event: the key was used before (a key naming `dedupe_key`), or someone else
    /// appended.
    KeyedEvent {
        key: &'a str,
    },
    /// Only the sequence key is left to collide: someone else appended.
    Appended,
    Queue {
        operation: &'a str,
        backend: &'a str,
        object_name: &'a str,
    },
}

impl OnUnique<'_> {
    /// The error for a violation of the key `which` (a constraint name or the message that
    /// names it); `claimed` is the channel the sequence claim returned.
    pub(super) fn error(&self, which: &str, claimed: Option<&str>) -> StoreError {
        match *self {
            OnUnique::Declare { channel } if which.contains("channel") => {
                StoreError::OpenIncidentExists(channel.to_owned())
            }
            OnUnique::Declare { .. } | OnUnique::Appended => StoreError::Conflict,
            OnUnique::Reopen => {
                StoreError::OpenIncidentExists(claimed.unwrap_or_default().to_owned())
            }
            OnUnique::Request { key } => StoreError::Duplicate(format!("request {key}")),
            OnUnique::KeyedEvent { key } if which.contains("dedupe_key") => {
                StoreError::Duplicate(key.to_owned())
            }
            OnUnique::KeyedEvent { .. } => StoreError::Conflict,
            OnUnique::Queue {
                backend,
                object_name,
                ..
            } if which.contains("object_name") => {
                StoreError::Duplicate(format!("{backend} object {object_name}"))
            }
            OnUnique::Queue { operation, .. } => {
                StoreError::Duplicate(format!("operation {operation}"))
            }
        }
    }
}

/// A statement that must change a row, and what it means when it changes none.
#[derive(Debug, Clone, Copy)]
pub(super) enum MustChange<'a> {
    /// The sequence claim (it returns the incident's channel): someone else appended, unless
    /// the incident does not exist, which the runner asks with [`sql::INCIDENT_EXISTS`].
    Sequence(IncidentId),
    /// An outbox give-up: another worker holds the row now.
    Claim(i64),
    /// An operation's progress.
    Queued {
        operation: &'a str,
        incident: IncidentId,
    },
}

impl MustChange<'_> {
    /// The incident whose existence [`MustChange::error`] needs, for the sequence claim.
    pub(super) fn incident_to_look_up(&self) -> Option<IncidentId> {
        match *self {
            MustChange::Sequence(id) => Some(id),
            _ => None,
        }
    }

    /// The error when the statement changed no row; `exists` is only asked for the sequence
    /// claim.
    pub(super) fn error(&self, exists: bool) -> StoreError {
        match *self {
            // Retrying could never help: say so rather than report a conflict.
            MustChange::Sequence(id) if !exists => {
                StoreError::Corrupt(format!("incident {id} does not exist"))
            }
            MustChange::Sequence(_) => StoreError::Conflict,
            MustChange::Claim(outbox) => StoreError::LeaseLost(format!("outbox row {outbox}")),
            MustChange::Queued {
                operation,
                incident,
            } => StoreError::Corrupt(format!(
                "operation {operation} of incident {incident} was never queued"
            )),
        }
    }
}

/// One statement of a commit.
#[derive(Debug)]
pub(super) struct Step<'a> {
    pub(super) text: Cow<'static, str>,
    pub(super) args: Vec<Arg<'a>>,
    /// `None`: a violation is passed on as the database's error.
    pub(super) unique: Option<OnUnique<'a>>,
    pub(super) must_change: Option<MustChange<'a>>,
}

impl<'a> Step<'a> {
    fn new(text: impl Into<Cow<'static, str>>, args: Vec<Arg<'a>>) -> Self {
        Step {
            text: text.into(),
            args,
            unique: None,
            must_change: None,
        }
    }

    fn unique(mut self, on: OnUnique<'a>) -> Self {
        self.unique = Some(on);
        self
    }

    fn must_change(mut self, what: MustChange<'a>) -> Self {
        self.must_change = Some(what);
        self
    }

    /// The sequence claim returns the incident's channel, for [`OnUnique::Reopen`].
    pub(super) fn returns_channel(&self) -> bool {
        matches!(self.must_change, Some(MustChange::Sequence(_)))
    }
}

/// How a plan inserts the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EventInserts {
    /// Keyed events one by one, so that a violation names the key that was already used;
    /// the rest in inserts of [`sql::EVENT_CHUNKS`] rows, whose prepared statements are
    /// cached.
    Chunked,
    /// One insert of every event, its values written in (the batch script, which learns
    /// nothing from a violation but that one happened).
    One,
}

/// Everything a commit writes, and what it returns once that is durable.
#[derive(Debug)]
pub(super) struct Plan<'a> {
    pub(super) steps: Vec<Step<'a>>,
    pub(super) committed: Committed,
}

impl<'a> Plan<'a> {
    pub(super) fn of(commit: &'a Commit, events_as: EventInserts) -> Result<Plan<'a>, StoreError> {
        let Commit {
            target,
            events,
            posts,
            operations,
            projection: p,
            request_key,
            gave_up,
            chain: _,
        } = commit;
        refuse_nul(target, events, posts, p, request_key.as_deref())?;
        let count = i64::try_from(events.len())
            .map_err(|_| StoreError::Corrupt("too many events in one commit".into()))?;
        // The projection's columns, in the order both the insert and the update take them.
        let projection: [Arg<'a>; 7] = [
            p.severity.as_str().into(),
            p.incident_type.as_deref().into(),
            p.title.as_str().into(),
            Arg::Bool(p.drill),
            fmt_time(p.declared_at).into(),
            p.resolved_at.map(fmt_time).into(),
            Arg::Bool(p.final_summary_posted),
        ];
        let mut steps = Vec::with_capacity(4 + events.len() + posts.len() + operations.len());
        let (id, first_seq) = match target {
            Target::New {
                id,
                channel,
                platform,
            } => {
                let mut args = vec![
                    Arg::Int(*id),
                    channel.as_str().into(),
                    platform.as_str().into(),
                ];
                args.extend(projection);
                args.push(Arg::Int(count));
                steps.push(
                    Step::new(sql::INSERT_INCIDENT, args).unique(OnUnique::Declare {
                        channel: channel.as_str(),
                    }),
                );
                (*id, 1)
            }
            Target::Existing { id, expected_seq } => {
                let claim = vec![
                    Arg::Int(expected_seq + count),
                    Arg::Int(*id),
                    Arg::Int(*expected_seq),
                ];
                steps.push(
                    Step::new(sql::CLAIM_SEQUENCE, claim).must_change(MustChange::Sequence(*id)),
                );
                let mut args = Vec::from(projection);
                args.push(Arg::Int(*id));
                steps.push(Step::new(sql::UPDATE_PROJECTION, args).unique(OnUnique::Reopen));
                (*id, expected_seq + 1)
            }
        };
        let at = fmt_time(events.first().map_or(p.declared_at, |e| e.recorded_at));
        if let Some(key) = request_key {
            let args = vec![key.as_str().into(), Arg::Int(id), at.clone().into()];
            steps.push(Step::new(sql::INSERT_REQUEST, args).unique(OnUnique::Request { key }));
        }
        if let Some(GiveUp {
            outbox,
            claim_token,
            error,
        }) = gave_up
        {
            let args = vec![
                at.into(),
                error.as_str().into(),
                Arg::Int(*outbox),
                claim_token.as_str().into(),
            ];
            steps.push(Step::new(sql::GIVE_UP, args).must_change(MustChange::Claim(*outbox)));
        }
        let seqs: Vec<i64> = (first_seq..).take(events.len()).collect();
        event_steps(
            &mut steps,
            id,
            events.iter().zip(seqs.iter().copied()),
            events_as,
        )?;
        for post in posts {
            let created = fmt_time(post.created_at);
            let args = vec![
                Arg::Int(id),
                post.channel.as_str().into(),
                post.body.as_str().into(),
                created.clone().into(),
                created.into(),
                if post.status { "status" } else { "post" }.into(),
            ];
            steps.push(Step::new(sql::INSERT_POST, args));
        }
        for change in operations {
            steps.push(operation_step(id, change));
        }
        Ok(Plan {
            steps,
            committed: Committed { incident: id, seqs },
        })
    }
}

fn event_steps<'a>(
    steps: &mut Vec<Step<'a>>,
    id: IncidentId,
    events: impl Iterator<Item = (&'a super::NewEvent, i64)>,
    how: EventInserts,
) -> Result<(), StoreError> {
    let args = |(ev, seq): (&'a super::NewEvent, i64)| -> Result<[Arg<'a>; 10], StoreError> {
        let data = serde_json::to_string(&ev.kind)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode event: {e}")))?;
        Ok([
            Arg::Int(id),
            Arg::Int(seq),
            fmt_time(ev.recorded_at).into(),
            ev.occurred_at.map(fmt_time).into(),
            ev.actor.platform.as_str().into(),
            ev.actor.id.as_str().into(),
            ev.actor.name.as_str().into(),
            ev.kind.name().into(),
            data.into(),
            ev.dedupe_key.as_deref().into(),
        ])
    };
    if how == EventInserts::One {
        let rows: Vec<_> = events.collect();
        if !rows.is_empty() {
            let text = sql::event_insert_sql(rows.len());
            let mut all = Vec::with_capacity(rows.len() * sql::EVENT_COLUMNS);
            for row in rows {
                all.extend(args(row)?);
            }
            steps.push(Step::new(text, all));
        }
        return Ok(());
    }
    let (keyed, plain): (Vec<_>, Vec<_>) = events.partition(|(ev, _)| ev.dedupe_key.is_some());
    for row in keyed {
        let key = row.0.dedupe_key.as_deref().unwrap_or_default();
        let step = Step::new(sql::event_insert(1), args(row)?.into());
        steps.push(step.unique(OnUnique::KeyedEvent { key }));
    }
    let mut rest = plain.into_iter();
    for size in sql::EVENT_CHUNKS {
        while rest.len() >= size {
            let mut all = Vec::with_capacity(size * sql::EVENT_COLUMNS);
            for row in rest.by_ref().take(size) {
                all.extend(args(row)?);
            }
            steps.push(Step::new(sql::event_insert(size), all).unique(OnUnique::Appended));
        }
    }
    Ok(())
}

fn operation_step(id: IncidentId, change: &OperationChange) -> Step<'_> {
    let (operation, status, text, at) = match change {
        OperationChange::Queue {
            operation,
            kind,
            object_name,
            backend,
            spec,
        } => {
            let args = vec![
                Arg::Int(id),
                operation.as_str().into(),
                kind.as_str().into(),
                object_name.as_str().into(),
                backend.as_str().into(),
                spec.as_str().into(),
            ];
            return Step::new(sql::QUEUE_OPERATION, args).unique(OnUnique::Queue {
                operation,
                backend,
                object_name,
            });
        }
        OperationChange::Launched { operation, at } => {
            (operation, "launched", sql::OPERATION_LAUNCHED, at)
        }
        OperationChange::Finished { operation, at } => {
            (operation, "finished", sql::OPERATION_FINISHED, at)
        }
    };
    let args = vec![
        status.into(),
        fmt_time(*at).into(),
        Arg::Int(id),
        operation.as_str().into(),
    ];
    Step::new(text, args).must_change(MustChange::Queued {
        operation,
        incident: id,
    })
}
