//! The commit: events, the posts and operation changes they cause, and the projection, built
//! here and handed to the store's writer in one transaction.

use chrono::{DateTime, Utc};

use super::{App, AppError};
use crate::decide::posts;
use crate::incident::Draft;
use crate::incident::Post;
use crate::incident::state::Pending;
use crate::incident::{Actor, Event, EventKind, Incident};
use crate::store::{
    Chain, Commit, GiveUp, NewEvent, NewPost, OperationChange, Projection, StoreError, Target,
};

fn projection(s: &Incident) -> Projection {
    Projection {
        severity: s.severity.clone(),
        incident_type: s.incident_type.clone(),
        title: s.title.clone(),
        drill: s.drill,
        declared_at: s.declared_at,
        resolved_at: s.resolved_at,
        final_summary_posted: s.final_summary_posted,
    }
}

impl App {
    /// Append events (and the posts and operation changes they cause) in one transaction.
    /// Returns the state after them and the stored events.
    pub(super) async fn commit(
        &self,
        target: Target,
        before: Option<Incident>,
        actor: &Actor,
        drafts: Vec<(Draft, Option<String>)>,
        now: DateTime<Utc>,
        alongside: Alongside<'_>,
    ) -> Result<(Incident, Vec<Event>), AppError> {
        self.queue_commit(target, before, actor, drafts, now, alongside)?
            .landed(self)
            .await
    }

    /// Build the commit and queue it for the writer now; the state after it is remembered at
    /// once, so the next decision can build on it while this one is being made durable.
    pub(super) fn queue_commit(
        &self,
        target: Target,
        before: Option<Incident>,
        actor: &Actor,
        drafts: Vec<(Draft, Option<String>)>,
        now: DateTime<Utc>,
        alongside: Alongside<'_>,
    ) -> Result<Queued, AppError> {
        let Alongside {
            request_key,
            gave_up,
        } = alongside;
        let (id, mut seq) = match &target {
            Target::Existing { id, expected_seq } => (*id, *expected_seq),
            Target::New { id, .. } => (*id, 0),
        };
        let channel = match (&before, &target) {
            (Some(s), _) => s.channel.clone(),
            (None, Target::New { channel, .. }) => channel.clone(),
            (None, Target::Existing { .. }) => String::new(),
        };
        let render = self.render(now);
        let before_status = before
            .as_ref()
            .filter(|s| {
                drafts.iter().any(|(d, _)| {
                    posts::may_change_status(&d.kind, d.occurred_at.unwrap_or(now), s.declared_at)
                })
            })
            .map(|s| Post::status(s, &render).text);
        let status_may_change = before.is_none() || before_status.is_some();
        let chain = Chain::on(before.as_ref().and_then(|s| s.pending.0));
        let mut state = before;
        let mut stored = Vec::new();
        let mut new_events = Vec::new();
        let mut posts = Vec::new();
        let mut operations = Vec::new();
        for (draft, dedupe_key) in drafts {
            seq += 1;
            let event = Event {
                incident: id,
                seq,
                recorded_at: now,
                occurred_at: draft.occurred_at,
                actor: actor.clone(),
                kind: draft.kind,
            };
            match &mut state {
                Some(s) => s.apply(&event),
                None => state = Incident::from_declared(&event),
            }
            let Some(s) = &state else { continue };
            for post in posts::posts_for(s, &event, &render) {
                let body = serde_json::to_string(&post).unwrap_or_default();
                posts.push(NewPost {
                    channel: channel.clone(),
                    body,
                    created_at: now,
                    status: false,
                });
            }
            if let Some((lane, order)) =
                crate::features::paging::lane_post(s, &event, self.public_url.as_deref())
            {
                posts.push(NewPost {
                    channel: lane,
                    body: serde_json::to_string(&order).unwrap_or_default(),
                    created_at: now,
                    status: false,
                });
            }
            if let Some(publication) = crate::features::comms::publication_post(s, &event) {
                posts.push(NewPost {
                    channel: crate::features::comms::STATUSPAGE_CHANNEL.to_string(),
                    body: serde_json::to_string(&publication).unwrap_or_default(),
                    created_at: now,
                    status: false,
                });
            }
            match &event.kind {
                EventKind::LaunchConfirmed { operation, .. } => {
                    if let Some(op) = s.operation(operation) {
                        operations.push(OperationChange::Queue {
                            operation: operation.clone(),
                            kind: op.spec.kind.label().to_string(),
                            object_name: op.spec.object_name.clone(),
                            backend: op.backend.clone(),
                            spec: serde_json::to_string(&op.spec).unwrap_or_default(),
                        });
                    }
                }
                EventKind::OperationLaunched { operation, .. } => {
                    operations.push(OperationChange::Launched {
                        operation: operation.clone(),
                        at: now,
                    })
                }
                EventKind::OperationFinished { operation, .. } => {
                    operations.push(OperationChange::Finished {
                        operation: operation.clone(),
                        at: now,
                    })
                }
                _ => {}
            }
            new_events.push(NewEvent {
                recorded_at: event.recorded_at,
                occurred_at: event.occurred_at,
                actor: event.actor.clone(),
                kind: event.kind.clone(),
                dedupe_key,
            });
            stored.push(event);
        }
        let Some(mut after) = state else {
            return Err(AppError::Store(StoreError::Corrupt(
                "an incident must start with its declaration".into(),
            )));
        };
        after.pending = Pending(Some(chain.token));
        // The pinned status message follows every change it shows (a note changes nothing
        // there); the outbox sends only the newest of several pending.
        if status_may_change {
            let status = Post::status(&after, &render);
            if before_status.as_ref() != Some(&status.text) {
                posts.push(NewPost {
                    channel: channel.clone(),
                    body: serde_json::to_string(&status).unwrap_or_default(),
                    created_at: now,
                    status: true,
                });
            }
        }
        let has_posts = !posts.is_empty();
        let durable = self.store.submit(Commit {
            target,
            events: new_events,
            posts,
            operations,
            projection: projection(&after),
            request_key: request_key.map(str::to_owned),
            gave_up,
            chain,
        });
        self.memo.remember(&after);
        Ok(Queued {
            durable: Box::pin(durable),
            has_posts,
            after,
            stored,
        })
    }
}

/// What a commit writes besides the events and what they cause.
#[derive(Default)]
pub(super) struct Alongside<'a> {
    /// The chat request that caused it (see [`Commit::request_key`]).
    pub(super) request_key: Option<&'a str>,
    /// The outbox row it gives up (see [`Commit::gave_up`]).
    pub(super) gave_up: Option<GiveUp>,
}

/// A commit handed to the writer, with the state it leads to.
pub(super) struct Queued {
    durable:
        std::pin::Pin<Box<dyn Future<Output = Result<crate::store::Committed, StoreError>> + Send>>,
    has_posts: bool,
    after: Incident,
    stored: Vec<Event>,
}

impl Queued {
    /// Wait until the commit is durable. If it failed, what was remembered on top of it is
    /// dropped: anything decided on it fails its sequence check and is decided again, from
    /// the incident as it last stood in the store.
    pub(super) async fn landed(self, app: &App) -> Result<(Incident, Vec<Event>), AppError> {
        match self.durable.await {
            Ok(_) => {
                if self.has_posts {
                    app.outbox_ready.notify_one();
                }
                app.memo.confirm(&self.after);
                app.timeline_changed.notify_one();
                Ok((self.after, self.stored))
            }
            Err(e) => {
                app.memo.forget(self.after.id);
                Err(e.into())
            }
        }
    }
}
