//! The outbox worker: claims due posts (any number of replicas at once), sends them in
//! commit order per channel, records each send, backs off on failures and gives up within
//! bounds, telling the incident's timeline and channel.

use chrono::Duration;
use tracing::{info, warn};

use super::commit::Alongside;
use super::{App, AppError, MAX_ATTEMPTS};
use crate::chat::{ChatSink, DeliveryError, Outgoing, Platform};
use crate::incident::Draft;
use crate::incident::Post;
use crate::incident::{Actor, EventKind, IncidentId};
use crate::store::{GiveUp, OutboxRow, StoreError, Target};

/// Posts one claim takes; the rest wait for the next round.
const DELIVERY_BATCH: i64 = 200;
/// Claim rounds in one delivery pass (each takes the next post of every channel).
const DELIVERY_ROUNDS: usize = 64;
/// A send is abandoned after this (and counted as maybe delivered); the lease outlasts it.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const OUTBOX_LEASE: Duration = Duration::seconds(60);
/// Delivery bounds: retryable failures give up at the 10th attempt or once the post is 30
/// minutes old, whichever comes first; permanent ones (bot not in the channel, bad token) at
/// the 3rd, two minutes apart, so an operator has a moment to fix the cause.
const RETRY_LIMIT: i64 = 10;
const RETRY_WINDOW: Duration = Duration::minutes(30);
const PERMANENT_LIMIT: i64 = 3;
const PERMANENT_BACKOFF: Duration = Duration::minutes(2);

/// Outbox and operation-claim counters, for `/metrics`.
#[derive(Default)]
pub struct DeliveryStats {
    counts: std::sync::Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>,
}

impl DeliveryStats {
    pub(super) fn count(&self, platform: &'static str, what: &'static str) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((platform, what))
            .or_default() += 1;
    }

    /// ((platform or `operations`, what), count): `claimed`, `delivered`, `failed`,
    /// `takeover`, `gave_up`, `lease_lost`.
    pub fn snapshot(&self) -> Vec<((&'static str, &'static str), u64)> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    pub fn get(&self, platform: &str, what: &str) -> u64 {
        self.snapshot()
            .into_iter()
            .find(|((p, w), _)| *p == platform && *w == what)
            .map_or(0, |(_, n)| n)
    }
}

impl App {
    /// Send due posts through `sink` (only `channel`'s when given). Each round claims the
    /// next post of every channel and the newest status post of every incident, then sends
    /// them side by side, each channel in commit order; a failure holds its channel back until
    /// its retry, so nothing overtakes it. Any number of replicas may run this at once.
    pub async fn deliver_to(
        &self,
        sink: &dyn ChatSink,
        channel: Option<&str>,
    ) -> Result<usize, AppError> {
        let mut sent = 0;
        for _ in 0..DELIVERY_ROUNDS {
            let now = self.clock.now();
            let token = format!(
                "{}/{}",
                self.replica,
                self.claims
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let rows = self
                .store
                .claim_posts(&token, now, now + OUTBOX_LEASE, DELIVERY_BATCH, channel)
                .await?;
            if rows.is_empty() {
                break;
            }
            let mut lanes: Vec<(&str, Vec<OutboxRow>)> = Vec::new();
            for row in &rows {
                match lanes.iter_mut().find(|(c, _)| *c == row.channel) {
                    Some((_, rows)) => rows.push(row.clone()),
                    None => lanes.push((&row.channel, vec![row.clone()])),
                }
            }
            let results =
                futures_util::future::join_all(lanes.into_iter().map(|(_, rows)| async {
                    let mut sent = 0;
                    for row in rows {
                        if self.deliver_row(sink, &row).await? {
                            sent += 1;
                        }
                    }
                    Ok::<usize, AppError>(sent)
                }))
                .await;
            let mut progress = 0;
            for r in results {
                progress += r?;
            }
            sent += progress;
            if progress == 0 {
                break;
            }
        }
        Ok(sent)
    }

    /// Send the pages and follow-up tickets waiting in their lanes (for a process that
    /// delivers channel by channel, as the console does).
    pub async fn deliver_reach(&self) -> Result<usize, AppError> {
        let mut sent = 0;
        if let Some(pager) = &self.pager {
            for target in &self.policy.paging.targets {
                let lane = format!("{}{target}", crate::incident::post::PAGER_LANE);
                sent += self.deliver_to(&**pager, Some(&lane)).await?;
            }
        }
        if let Some(tracker) = &self.tracker {
            sent += self
                .deliver_to(&**tracker, Some(crate::incident::post::TRACKER_LANE))
                .await?;
        }
        Ok(sent)
    }

    /// Send one claimed row and record what happened under its claim; `true` if delivered.
    async fn deliver_row(&self, sink: &dyn ChatSink, row: &OutboxRow) -> Result<bool, AppError> {
        let platform = Platform::of(&row.channel).0.name();
        self.deliveries.count(platform, "claimed");
        if row.taken_over() {
            self.deliveries.count(platform, "takeover");
            info!(outbox = row.id, channel = %row.channel, "taking over a post whose send was never recorded; checking the channel before posting");
        }
        let Ok(post) = serde_json::from_str::<Post>(&row.body) else {
            // Only a bug writes one; holding the channel for it would lose everything after.
            tracing::error!(outbox = row.id, "unreadable post body; skipped");
            self.store
                .record_delivery(row, self.clock.now(), "skipped: unreadable body")
                .await?;
            return Ok(false);
        };
        let lane = Platform::of(&row.channel).0;
        let status_message = match row.incident {
            Some(_) if matches!(lane, Platform::Pager | Platform::Tracker) => None,
            // A publication updates the incident's Statuspage incident once one was created.
            Some(id) if platform == "statuspage" => self.store.statuspage_incident(id).await?,
            Some(id) => self.store.status_message(id).await?,
            None => None,
        };
        let out = Outgoing {
            outbox_id: row.id,
            incident: row.incident,
            channel: &row.channel,
            post: &post,
            status_message: status_message.as_deref(),
            earlier_sends: row.earlier_sends,
            status_in_doubt: row.status_in_doubt,
            created_at: row.created_at,
            now: self.clock.now(),
        };
        let result = match tokio::time::timeout(SEND_TIMEOUT, sink.deliver(out)).await {
            Ok(result) => result,
            Err(_) => Err(DeliveryError::retryable(
                "no answer in time; the next try checks whether the post went through",
            )),
        };
        let receipt = match result {
            Ok(receipt) => receipt,
            Err(e) => return self.delivery_failed(row, &post, platform, e).await,
        };
        // A page or a ticket is on the timeline (and told in the channel) before its row is
        // marked sent: after a crash between the two, the resend merges into the open alert
        // or finds the ticket, and the event's key keeps the channel from hearing it twice.
        if let (Some(incident), Some(kind)) = (row.incident, delivered_event(&post, &receipt)) {
            let key = format!("delivered:{}", row.id);
            self.commit_drbot_event(incident, kind, key, None).await?;
        }
        if self
            .store
            .record_delivery(row, self.clock.now(), &receipt)
            .await?
        {
            self.deliveries.count(platform, "delivered");
            Ok(true)
        } else {
            self.deliveries.count(platform, "lease_lost");
            warn!(outbox = row.id, channel = %row.channel, "delivered after the claim expired; the new holder will find the post instead of sending it again");
            Ok(false)
        }
    }

    async fn delivery_failed(
        &self,
        row: &OutboxRow,
        post: &Post,
        platform: &'static str,
        e: DeliveryError,
    ) -> Result<bool, AppError> {
        let now = self.clock.now();
        let attempts = row.attempts + 1;
        self.deliveries.count(platform, "failed");
        warn!(outbox = row.id, channel = %row.channel, attempts, error = %e, "delivery failed");
        // Someone waits on a page: it is given up within minutes, and at once when the
        // provider refused it, so the channel calls the person instead.
        let paging = Platform::of(&row.channel).0 == Platform::Pager;
        let window = if paging {
            self.page_give_up
        } else {
            RETRY_WINDOW
        };
        let spent = match e.retryable {
            true => attempts >= RETRY_LIMIT || now - row.created_at >= window,
            false => paging || attempts >= PERMANENT_LIMIT,
        };
        if spent && let Some(incident) = row.incident {
            return self
                .give_up(incident, row, post, platform, attempts, &e)
                .await
                .map(|()| false);
        }
        let backoff = match (e.retry_after, e.retryable) {
            (Some(after), _) => Duration::from_std(after).unwrap_or(Duration::seconds(1)),
            (None, true) => Duration::seconds(1i64 << row.attempts.clamp(0, 8)),
            (None, false) => PERMANENT_BACKOFF,
        };
        if !self
            .store
            .record_failure(row, now + backoff, &e.message)
            .await?
        {
            self.deliveries.count(platform, "lease_lost");
        }
        Ok(false)
    }

    /// Stop trying: the row is given up in the same transaction as the timeline event that
    /// says so and the notice to the channel (for a page: whom to call instead).
    async fn give_up(
        &self,
        incident: IncidentId,
        row: &OutboxRow,
        post: &Post,
        platform: &'static str,
        attempts: i64,
        e: &DeliveryError,
    ) -> Result<(), AppError> {
        let kind = match (&post.page, &post.followup) {
            (Some(page), _) => {
                // Whoever holds the role now, unless the settings name someone.
                let state = self.state(incident).await?;
                let fallback = crate::features::paging::fallback(
                    state.as_ref(),
                    &self.policy,
                    &self.continuity,
                    &page.target,
                );
                EventKind::PageNotDelivered {
                    target: page.target.clone(),
                    action: page.action,
                    dedup_key: page.dedup_key.clone(),
                    error: e.message.clone(),
                    fallback,
                }
            }
            (None, Some(followup)) => EventKind::FollowupNotFiled {
                number: followup.number,
                error: e.message.clone(),
            },
            (None, None) => EventKind::DeliveryGaveUp {
                outbox: row.id,
                post: post.kind.label().to_string(),
                excerpt: crate::chat::slack::clip(post.plain().lines().next().unwrap_or(""), 160),
                attempts,
                error: e.message.clone(),
            },
        };
        let gave_up = GiveUp {
            outbox: row.id,
            claim_token: row.claim_token.clone(),
            error: e.message.clone(),
        };
        let key = format!("gave-up:{}", row.id);
        if self
            .commit_drbot_event(incident, kind, key, Some(gave_up))
            .await?
        {
            self.deliveries.count(platform, "gave_up");
            tracing::error!(outbox = row.id, channel = %row.channel, attempts, error = %e, "gave up delivering; it is on the timeline and the channel was told");
        } else {
            self.deliveries.count(platform, "lease_lost");
        }
        Ok(())
    }

    /// Commit one event of drbot's own under `key` (and give up `gave_up`'s row with it);
    /// `false` when the key was committed before or the row's claim was lost.
    pub(super) async fn commit_drbot_event(
        &self,
        incident: IncidentId,
        kind: EventKind,
        key: String,
        gave_up: Option<GiveUp>,
    ) -> Result<bool, AppError> {
        for _ in 0..MAX_ATTEMPTS {
            let Some(state) = self.state(incident).await? else {
                return Ok(false);
            };
            let target = Target::Existing {
                id: incident,
                expected_seq: state.seq,
            };
            match self
                .commit(
                    target,
                    Some(state),
                    &Actor::drbot(),
                    vec![(Draft::from(kind.clone()), Some(key.clone()))],
                    self.clock.now(),
                    Alongside {
                        request_key: None,
                        gave_up: gave_up.clone(),
                    },
                )
                .await
            {
                Ok(_) => return Ok(true),
                Err(AppError::Store(StoreError::Conflict)) => continue,
                Err(AppError::Store(StoreError::LeaseLost(_) | StoreError::Duplicate(_))) => {
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        Err(AppError::Contention)
    }
}

/// The timeline event a delivered page or ticket makes (none for other posts).
fn delivered_event(post: &Post, receipt: &str) -> Option<EventKind> {
    if let Some(page) = &post.page {
        return Some(EventKind::PageDelivered {
            target: page.target.clone(),
            action: page.action,
            dedup_key: page.dedup_key.clone(),
        });
    }
    let followup = post.followup.as_ref()?;
    let (key, url) = crate::chat::tracker::parse_receipt(receipt);
    Some(EventKind::FollowupFiled {
        number: followup.number,
        key,
        url,
    })
}
