//! The application service: loads an incident's events, asks `decide`, and commits the events
//! with the posts and operations they cause in one transaction. The scheduler side (`tick`)
//! launches queued operations, watches running ones, keeps the update cadence, and the outbox
//! worker (`deliver`) sends posts. All I/O is here or in the adapters; decisions are pure.

use std::sync::Arc;

mod drills;
pub use drills::DrillConfig;

use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

use crate::chat::{ChatSink, DeliveryError, Outgoing, Platform};
use crate::clock::Clock;
use crate::cluster::kube::Kube;
use crate::cluster::sandbox::{Sandbox, SandboxConfig};
use crate::cluster::{Cluster, ClusterError, ProbeContext};
use crate::command::{self, Command, grammar};
use crate::config::Settings;
use crate::incident::cadence::{self, Due};
use crate::incident::decide::{
    Caller, Ctx, Draft, Facts, Policy, Refusal, decide, draft_operation,
};
use crate::incident::messages::{self, Render};
use crate::incident::state::Pending;
use crate::incident::{Actor, Event, EventKind, Incident, IncidentId, OperationSpec, Outcome};
use crate::sop::Runbook;
use crate::store::{
    ActiveIncident, Chain, Commit, GiveUp, NewEvent, NewPost, OperationChange, OutboxRow,
    Projection, Store, StoreError, Target,
};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored operation {0} is unreadable: {1}")]
    BadOperation(String, serde_json::Error),
    #[error("the incident kept changing under this command; try again")]
    Contention,
}

/// What a command answers to the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Only for the sender: refusals, usage, help, views.
    Private(String),
    /// An incident change, fit for the channel.
    Public(String),
    /// A file (timeline export).
    File { name: String, content: Vec<u8> },
}

impl Reply {
    pub fn text(&self) -> &str {
        match self {
            Reply::Private(t) | Reply::Public(t) => t,
            Reply::File { name, .. } => name,
        }
    }
}

/// What one scheduler pass did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub launched: usize,
    pub progressed: usize,
    pub finished: usize,
    pub updates: usize,
    pub reminders: usize,
    pub summaries: usize,
    /// RTO threshold posts (50 % and 100 % of an affected service's RTO).
    pub rto_posts: usize,
    /// Reminders of a status page update promised to customers (`comms-due:<draft>`).
    pub comms_reminders: usize,
}

pub struct App {
    pub store: Store,
    pub cluster: Arc<dyn Cluster>,
    pub clock: Arc<dyn Clock>,
    pub runbook: Runbook,
    pub policy: Policy,
    /// The service catalog and DR plan, loaded at start.
    pub continuity: crate::continuity::Continuity,
    /// Drill reminders, clusters to report, the tabletop directory.
    pub drills: DrillConfig,
    pub memo: Memo,
    /// This process among the replicas: the claim token on the operations it watches, the
    /// prefix of its outbox claims.
    pub replica: String,
    pub deliveries: DeliveryStats,
    /// Notified when a commit that queued posts is durable: the outbox has work.
    pub outbox_ready: tokio::sync::Notify,
    /// Where publications go (`[statuspage]`); `None`: no status page.
    pub statuspage: Option<Arc<dyn ChatSink>>,
    claims: std::sync::atomic::AtomicU64,
}

/// Outbox and operation-claim counters, for `/metrics`.
#[derive(Default)]
pub struct DeliveryStats {
    counts: std::sync::Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>,
}

impl DeliveryStats {
    fn count(&self, platform: &'static str, what: &'static str) {
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

/// A name for this process that no other replica shares: the pod name in Kubernetes.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "drbot".into());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{host}-{}-{started:x}", std::process::id())
}

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
    fn hold_request(&self, key: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let held = Arc::new(tokio::sync::Mutex::new(()));
        let guard = held.clone().try_lock_owned().ok()?;
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), held);
        Some(guard)
    }

    fn request_in_flight(&self, key: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn release_request(&self, key: &str) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    fn channel(&self, channel: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(channel.to_string())
            .or_default()
            .clone()
    }

    fn state(&self, id: IncidentId) -> Option<Incident> {
        kept(&self.states, id)
    }

    /// Drop what is remembered of an incident (a commit built on it failed): the next use
    /// reads it again from the store.
    fn forget(&self, id: IncidentId) {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    fn open_in(&self, channel: &str) -> Option<IncidentId> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            .copied()
    }

    fn set_open(&self, channel: &str, id: Option<IncidentId>) {
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

    fn remember(&self, state: &Incident) {
        newest(&self.states, state, state.pending);
    }

    /// `state` is in the store: what is decided on it needs only the sequence check.
    fn confirm(&self, state: &Incident) {
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

    fn durable(&self, id: IncidentId) -> Option<Incident> {
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

/// Progress is posted when the phase changes or the percentage moves by this much.
const PROGRESS_STEP: u8 = 25;
const MAX_ATTEMPTS: usize = 5;
const ALREADY_HANDLED: &str =
    "This request was already received and handled; nothing was done twice. See `/dr status`.";
/// Posts one claim takes; the rest wait for the next round.
const DELIVERY_BATCH: i64 = 200;
/// Claim rounds in one delivery pass (each takes the next post of every channel).
const DELIVERY_ROUNDS: usize = 64;
/// A send is abandoned after this (and counted as maybe delivered); the lease outlasts it.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const OUTBOX_LEASE: Duration = Duration::seconds(60);
/// Renewed on every scheduler pass (each second): a dead replica's watch is taken over
/// within this plus one pass.
const OPERATION_LEASE: Duration = Duration::seconds(10);
/// Delivery bounds: retryable failures give up at the 10th attempt or once the post is 30
/// minutes old, whichever comes first; permanent ones (bot not in the channel, bad token) at
/// the 3rd, two minutes apart, so an operator has a moment to fix the cause.
const RETRY_LIMIT: i64 = 10;
const RETRY_WINDOW: Duration = Duration::minutes(30);
const PERMANENT_LIMIT: i64 = 3;
const PERMANENT_BACKOFF: Duration = Duration::minutes(2);
/// What a chat user sees when the database (or anything inside drbot) failed; the log has
/// the detail.
pub const COULD_NOT_RECORD: &str = "drbot could not record this; nothing was changed, try again.";

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

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runbook(#[from] crate::sop::RunbookError),
    #[error("cluster backend: {0}")]
    Cluster(#[from] ClusterError),
    #[error("[continuity] {0}")]
    Continuity(#[from] crate::continuity::ContinuityError),
}

impl App {
    /// Wire the pieces the settings name.
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<App, BuildError> {
        let store = Store::connect(&settings.database.url).await?;
        let runbook = match &settings.runbook.path {
            Some(path) => Runbook::load(std::path::Path::new(path))?,
            None => Runbook::embedded(),
        };
        let continuity = crate::continuity::Continuity::load(
            settings.continuity.catalog.as_deref(),
            settings.continuity.plan.as_deref(),
            &settings.continuity.clusters,
        )?;
        let sandbox = &settings.sandbox;
        let cluster: Arc<dyn Cluster> = match settings.cluster.backend.as_str() {
            "kubernetes" => Arc::new(Kube::connect(settings, clock.clone()).await?),
            _ => Arc::new(Sandbox::new(
                SandboxConfig {
                    speed: sandbox.speed,
                    state_file: (!sandbox.state_file.is_empty())
                        .then(|| sandbox.state_file.clone().into()),
                    database_namespaces: sandbox.database_namespaces.clone(),
                },
                clock.clone(),
            )?),
        };
        let safety = &settings.safety;
        let policy = Policy {
            two_person_severities: safety.two_person_severities.clone(),
            preview_ttl: Duration::minutes(safety.preview_ttl_minutes),
            default_zone: safety
                .default_zone
                .as_deref()
                .and_then(crate::command::timestamp::parse_zone),
            // The sandbox's database cluster, so a first run needs no configuration.
            default_cluster: safety
                .default_cluster
                .clone()
                .or_else(|| (cluster.backend() == "sandbox").then(|| "orders".to_string())),
            drill_namespace: safety.drill_namespace.clone(),
            status_page: settings.statuspage.enabled(),
        };
        let statuspage = crate::comms::statuspage::Statuspage::new(&settings.statuspage)
            .map(|s| Arc::new(s) as Arc<dyn ChatSink>);
        Ok(App {
            store,
            cluster,
            clock,
            runbook,
            drills: DrillConfig::from_settings(settings, &policy),
            policy,
            continuity,
            memo: Memo::default(),
            replica: replica_name(),
            deliveries: DeliveryStats::default(),
            outbox_ready: tokio::sync::Notify::new(),
            statuspage,
            claims: Default::default(),
        })
    }

    fn render(&self, now: DateTime<Utc>) -> Render<'_> {
        Render {
            runbook: &self.runbook,
            two_person_severities: &self.policy.two_person_severities,
            now,
            continuity: &self.continuity,
        }
    }

    async fn load(&self, id: IncidentId) -> Result<(Vec<Event>, Option<Incident>), AppError> {
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
    async fn open_incident(
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
    async fn active_state(&self, active: ActiveIncident) -> Result<Option<Incident>, AppError> {
        if let Some(state) = self.memo.state(active.id)
            && state.seq >= active.seq
        {
            return Ok(Some(state));
        }
        self.state(active.id).await
    }

    /// The incident as remembered, without asking the store for anything newer, when `trust`
    /// allows; otherwise as it stands.
    async fn state_as(&self, id: IncidentId, trust: Trust) -> Result<Option<Incident>, AppError> {
        match (trust, self.memo.state(id)) {
            (Trust::Remembered, Some(state)) => Ok(Some(state)),
            _ => self.state(id).await,
        }
    }

    /// The incident as it stands: the remembered fold plus the events stored since.
    async fn state(&self, id: IncidentId) -> Result<Option<Incident>, AppError> {
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

    /// Handle one `/dr …` line from `channel`.
    pub async fn handle(
        &self,
        channel: &str,
        caller: &Caller,
        line: &str,
    ) -> Result<Reply, AppError> {
        self.handle_request(channel, caller, line, None).await
    }

    /// Handle a line that arrived with the platform's request id (`key`): a redelivery of a
    /// request that already changed something is answered, not done again.
    pub async fn handle_request(
        &self,
        channel: &str,
        caller: &Caller,
        line: &str,
        key: Option<&str>,
    ) -> Result<Reply, AppError> {
        match parse_line(line) {
            Ok(cmd) => self.handle_command(channel, caller, &cmd, key).await,
            Err(reply) => Ok(reply),
        }
    }

    /// Handle an already parsed command (buttons build theirs directly).
    pub async fn handle_command(
        &self,
        channel: &str,
        caller: &Caller,
        cmd: &Command,
        key: Option<&str>,
    ) -> Result<Reply, AppError> {
        if let Command::Help { verb } = cmd {
            return Ok(Reply::Private(grammar::help(verb.as_deref())));
        }
        if let Command::Drills = cmd {
            return Ok(Reply::Private(self.drills_view().await?));
        }
        let a = &caller.actor;
        if channel.contains('\0') {
            return Ok(Reply::Private(nul_refusal("the channel id")));
        }
        if a.id.contains('\0') || a.name.contains('\0') || a.platform.contains('\0') {
            return Ok(Reply::Private(nul_refusal("your user name")));
        }
        if key.is_some_and(|k| k.contains('\0')) {
            return Ok(Reply::Private(nul_refusal("the request id")));
        }
        let lock = self.memo.channel(channel);
        let mut key = key;
        let mut trust = Trust::Remembered;
        for _ in 0..MAX_ATTEMPTS {
            // The channel's turn lasts until the decision is queued for the writer, not until
            // it is durable: the next command of the channel is decided on top of it and
            // rides in the same group commit (its `expected_seq` check fails if this one
            // does not land).
            let mut turn = lock.lock().await;
            if let Some(first) = key.and_then(|k| self.memo.request_in_flight(k)) {
                drop(turn);
                drop(first.lock().await);
                turn = lock.lock().await;
            }
            let attempted = self.attempt(channel, caller, cmd, key, trust).await;
            // An answer from what is remembered is given only once the store has nothing
            // newer; a commit checks that itself, by its expected sequence number.
            if let Ok((Step::Done(_) | Step::Viewed(_), Some((id, seq)))) = &attempted
                && trust == Trust::Remembered
                && !self.store.events_after(*id, *seq).await?.is_empty()
            {
                trust = Trust::Read;
                continue;
            }
            let step = attempted.map(|(step, _)| step);
            // A redelivery that is decided again and queued fails on its key at commit
            // (`Duplicate` below); one refused or answered from state is told here.
            if let (Ok(Step::Done(_)), Some(k)) = (&step, key)
                && self.store.request_seen(k).await?
            {
                return Ok(Reply::Private(ALREADY_HANDLED.into()));
            }
            let held = match (&step, key) {
                (Ok(Step::Queued(..)), Some(k)) => self.memo.hold_request(k),
                _ => None,
            };
            drop(turn);
            let outcome = match step {
                Ok(Step::Done(reply) | Step::Viewed(reply)) => Ok(Attempt::Done(reply)),
                Ok(Step::Queued(queued, then_retry)) => {
                    let landed = queued.landed(self).await;
                    if let (Some(k), Some(held)) = (key, held) {
                        self.memo.release_request(k);
                        drop(held);
                    }
                    landed.map(|(after, stored)| match then_retry {
                        true => Attempt::Again,
                        false => Attempt::Done(Reply::Public(messages::reply_for(&after, &stored))),
                    })
                }
                Err(e) => Err(e),
            };
            match outcome {
                Err(AppError::Store(StoreError::Conflict)) => trust = Trust::Read,
                Err(AppError::Store(StoreError::Duplicate(_))) if key.is_some() => {
                    return Ok(Reply::Private(ALREADY_HANDLED.into()));
                }
                Err(AppError::Store(StoreError::Unstorable(what))) => {
                    return Ok(Reply::Private(nul_refusal(what)));
                }
                Err(AppError::Store(StoreError::OpenIncidentExists(_))) => {
                    return Ok(Reply::Private(
                        "An incident was opened in this channel a moment ago; see `/dr status`."
                            .into(),
                    ));
                }
                Ok(Attempt::Done(reply)) => return Ok(reply),
                // The key is spent on the commit that opened the drill incident.
                Ok(Attempt::Again) => key = None,
                Err(e) => return Err(e),
            }
        }
        Err(AppError::Contention)
    }

    /// One try at a command, on state as far as `trust` allows; with the state it was decided
    /// on (incident and sequence number), to check an answer given from it.
    async fn attempt(
        &self,
        channel: &str,
        caller: &Caller,
        cmd: &Command,
        key: Option<&str>,
        trust: Trust,
    ) -> Result<(Step, Option<(IncidentId, i64)>), AppError> {
        let open = self.open_incident(channel, trust).await?;
        let shown = match (open.as_ref().map(|s| s.id), cmd) {
            (None, Command::Timeline | Command::TimelineExport(_) | Command::Comms(_)) => {
                self.store.latest_incident_in(channel).await?
            }
            (id, _) => id,
        };
        let (events, state) = match (shown, cmd) {
            (Some(id), Command::Timeline) => self.load(id).await?,
            (Some(id), _) if open.as_ref().is_some_and(|s| s.id == id) => (Vec::new(), open),
            (Some(id), _) => (Vec::new(), self.state_as(id, trust).await?),
            (None, _) => (Vec::new(), None),
        };
        let basis = state.as_ref().map(|s| (s.id, s.seq));
        let step = self
            .decide_step(channel, caller, cmd, key, state, &events)
            .await?;
        Ok((step, basis))
    }

    /// `cmd` decided on `state`: answered from it, refused, or queued for the writer.
    async fn decide_step(
        &self,
        channel: &str,
        caller: &Caller,
        cmd: &Command,
        key: Option<&str>,
        state: Option<Incident>,
        events: &[Event],
    ) -> Result<Step, AppError> {
        let now = self.clock.now();
        let render = self.render(now);
        if let Some(view) = self.view(cmd, state.as_ref(), events, &render).await {
            return Ok(Step::Viewed(view));
        }
        let state = state.filter(|s| s.is_open() || matches!(cmd, Command::Comms(_)));
        let ctx = Ctx {
            channel,
            runbook: &self.runbook,
            policy: &self.policy,
            now,
            continuity: &self.continuity,
        };
        let spec = match draft_operation(state.as_ref(), cmd, caller, &ctx) {
            Ok(spec) => spec,
            Err(Refusal(why)) => return Ok(Step::Done(Reply::Private(why))),
        };
        let facts = match self.gather(cmd, spec.as_ref(), state.as_ref()).await {
            Ok(facts) => facts,
            Err(e) => return Ok(Step::Done(Reply::Private(cluster_refusal(&e)))),
        };
        let decision = match decide(state.as_ref(), cmd, caller, &ctx, &facts) {
            Ok(d) => d,
            Err(Refusal(why)) => return Ok(Step::Done(Reply::Private(why))),
        };
        if decision.events.is_empty() {
            return Ok(Step::Done(Reply::Private("Nothing to do.".into())));
        }
        let target = match &state {
            Some(s) => Target::Existing {
                id: s.id,
                expected_seq: s.seq,
            },
            None => Target::New {
                id: self.store.next_incident_id().await?,
                channel: channel.to_string(),
                platform: caller.actor.platform.clone(),
            },
        };
        let drafts: Vec<(Draft, Option<String>)> =
            decision.events.into_iter().map(|d| (d, None)).collect();
        let queued = self.queue_commit(
            target,
            state,
            &caller.actor,
            drafts,
            now,
            Alongside {
                request_key: key,
                gave_up: None,
            },
        )?;
        Ok(Step::Queued(Box::new(queued), decision.then_retry))
    }

    /// The open incident of a channel and its open checklist items (id, text), in SOP order:
    /// what chat adapters turn into tick buttons. `section` narrows it like `/dr checklist`.
    pub async fn open_checklist(
        &self,
        channel: &str,
        section: Option<&str>,
    ) -> Result<Option<(IncidentId, Vec<(String, String)>)>, AppError> {
        let Some(id) = self.store.open_incident_in(channel).await? else {
            return Ok(None);
        };
        let Some(state) = self.state(id).await? else {
            return Ok(None);
        };
        let open = self
            .runbook
            .checklist_items()
            .filter(|(sec, item)| section.is_none_or(|want| want == sec.id || want == item.id))
            .filter(|(sec, item)| {
                crate::incident::checklist::checklist_item_state(&state, sec, item).is_open()
            })
            .map(|(_, item)| (item.id.clone(), item.text.clone()))
            .collect();
        Ok(Some((id, open)))
    }

    /// How far behind its update cadence the most overdue open incident is (zero if none).
    pub async fn cadence_lag(&self) -> Result<Duration, AppError> {
        let now = self.clock.now();
        let mut lag = Duration::zero();
        for active in self.store.active_incidents().await? {
            if let Some(state) = self.active_state(active).await?
                && let Some(due) = cadence::next_due(&state, &self.runbook.cadence)
            {
                lag = lag.max(now - due);
            }
        }
        Ok(lag)
    }

    /// Whether `incident` is the open incident of `channel` (a button must not act on another).
    pub async fn is_open_incident(
        &self,
        channel: &str,
        incident: IncidentId,
    ) -> Result<bool, AppError> {
        Ok(self.store.open_incident_in(channel).await? == Some(incident))
    }

    /// Read-only commands answer from state without writing.
    async fn view(
        &self,
        cmd: &Command,
        state: Option<&Incident>,
        events: &[Event],
        r: &Render<'_>,
    ) -> Option<Reply> {
        let need = || {
            Reply::Private("There is no incident in this channel. Open one with `/dr declare <sev1..sev4> [infra|data|combined] <title>`.".into())
        };
        let open = state.filter(|s| s.is_open());
        Some(match cmd {
            Command::Status => {
                open.map_or_else(need, |s| Reply::Private(messages::status_view(s, r)))
            }
            Command::Path => open.map_or_else(need, |s| Reply::Private(messages::path_view(s, r))),
            Command::Checklist { section } => open.map_or_else(need, |s| {
                Reply::Private(messages::checklist_view(s, r, section.as_deref()))
            }),
            Command::Timeline => match state {
                Some(_) => Reply::Private(messages::timeline_view(events, 30)),
                None => need(),
            },
            Command::TimelineExport(format) => match state {
                Some(s) => {
                    let mut content = Vec::new();
                    if let Err(e) = crate::export::export_with(
                        &self.store,
                        s.id,
                        *format,
                        &self.runbook,
                        crate::export::Impact {
                            continuity: &self.continuity,
                            now: r.now,
                        },
                        &mut content,
                    )
                    .await
                    {
                        warn!(incident = s.id, error = %e, "export failed");
                        return Some(Reply::Private(
                            "The export could not be read from the database; nothing was changed, try again.".into(),
                        ));
                    }
                    Reply::File {
                        name: format!("INC-{}-timeline.{}", s.id, format.extension()),
                        content,
                    }
                }
                None => need(),
            },
            _ => return None,
        })
    }

    /// I/O a decision needs: the backend's plan for a launch, probe results, the backup report.
    async fn gather(
        &self,
        cmd: &Command,
        spec: Option<&OperationSpec>,
        state: Option<&Incident>,
    ) -> Result<Facts, ClusterError> {
        let mut facts = Facts {
            backend: self.cluster.backend().to_string(),
            ..Facts::default()
        };
        if let Some(spec) = spec {
            facts.plan = Some(self.cluster.plan(spec).await?);
        }
        match (cmd, state) {
            (Command::Backups, Some(_)) => {
                let report = self.cluster.backups().await?;
                facts.backups = Some((report.ok, report.lines));
            }
            (Command::TabletopStart { file }, None) => {
                facts.exercise = Some(self.load_exercise(file));
            }
            (Command::Verify { section }, Some(s)) => {
                let ctx = ProbeContext {
                    recovered_at: s.recovered_at(),
                    restored_objects: s
                        .operations
                        .iter()
                        .filter(|o| o.spec.kind.restores_database() && o.succeeded())
                        .map(|o| o.spec.object_name.clone())
                        .collect(),
                };
                for (sec, item) in self.runbook.checklist_items() {
                    let Some(probe) = &item.probe else { continue };
                    if section
                        .as_deref()
                        .is_some_and(|want| want != sec.id && want != item.id)
                    {
                        continue;
                    }
                    let result = self.cluster.probe(probe, &ctx).await?;
                    facts.probes.push((
                        item.id.clone(),
                        probe.clone(),
                        result.passed,
                        result.evidence,
                    ));
                }
            }
            _ => {}
        }
        Ok(facts)
    }

    /// Append events (and the posts and operation changes they cause) in one transaction.
    /// Returns the state after them and the stored events.
    async fn commit(
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
    fn queue_commit(
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
                    messages::may_change_status(
                        &d.kind,
                        d.occurred_at.unwrap_or(now),
                        s.declared_at,
                    )
                })
            })
            .map(|s| messages::Post::status(s, &render).text);
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
            for post in messages::posts_for(s, &event, &render) {
                let body = serde_json::to_string(&post).unwrap_or_default();
                posts.push(NewPost {
                    channel: channel.clone(),
                    body,
                    created_at: now,
                    status: false,
                });
            }
            if let Some(publication) = crate::comms::publication_post(s, &event) {
                posts.push(NewPost {
                    channel: crate::comms::STATUSPAGE_CHANNEL.to_string(),
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
            let status = messages::Post::status(&after, &render);
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

    /// One scheduler pass: launch queued operations, watch running ones, keep the cadence.
    pub async fn tick(&self) -> Result<TickReport, AppError> {
        let mut report = TickReport::default();
        // Two rounds: what was just launched is observed at once (a freeze is done instantly).
        for _ in 0..2 {
            let launched_before = report.launched;
            let now = self.clock.now();
            let claimed = self
                .store
                .claim_operations(&self.replica, now, now + OPERATION_LEASE)
                .await?;
            for row in claimed {
                self.deliveries.count("operations", "claimed");
                if row.taken_over {
                    self.deliveries.count("operations", "takeover");
                    info!(incident = row.incident, operation = %row.operation, "took over an operation whose replica stopped renewing its claim");
                }
                let spec: OperationSpec = serde_json::from_str(&row.spec)
                    .map_err(|e| AppError::BadOperation(row.operation.clone(), e))?;
                if let Err(e) = self
                    .advance_operation(row.incident, &spec, &mut report)
                    .await
                {
                    warn!(incident = row.incident, operation = %row.operation, error = %e, "operation step failed; will retry");
                }
            }
            if report.launched == launched_before {
                break;
            }
        }
        // Side by side, so the incidents' updates share group commits. Each incident is looked
        // at once (a remembered fold as new as the store's costs no read), and the keepers
        // pass that view along, brought up to date by what each commits.
        let active = self.store.active_incidents().await?;
        let kept = futures_util::future::join_all(active.into_iter().map(|active| async move {
            let mut kept = TickReport::default();
            let Some(mut state) = self.active_state(active).await? else {
                return Ok(kept);
            };
            self.keep_cadence(&mut state, &mut kept).await?;
            self.keep_rto(&mut state, &mut kept).await?;
            self.keep_tabletop(&mut state).await?;
            self.keep_comms_promise(&mut state, &mut kept)
                .await
                .map(|()| kept)
        }))
        .await;
        for one in kept {
            let one = one?;
            report.updates += one.updates;
            report.reminders += one.reminders;
            report.summaries += one.summaries;
            report.rto_posts += one.rto_posts;
            report.comms_reminders += one.comms_reminders;
        }
        self.remind_drills().await?;
        Ok(report)
    }

    async fn advance_operation(
        &self,
        incident: IncidentId,
        spec: &OperationSpec,
        report: &mut TickReport,
    ) -> Result<(), AppError> {
        let Some(state) = self.state(incident).await? else {
            return Ok(());
        };
        let Some(op) = state.operation(&spec.id) else {
            return Ok(());
        };
        if op.finished.is_some() {
            return Ok(());
        }
        let target = Target::Existing {
            id: incident,
            expected_seq: state.seq,
        };
        let mut drafts: Vec<EventKind> = Vec::new();
        if op.launched_at.is_none() {
            match self.cluster.launch(spec).await {
                Ok(launched) => {
                    if launched.already_existed {
                        info!(incident, operation = %spec.id, object = %launched.object, "object already existed; adopting it");
                    }
                    drafts.push(EventKind::OperationLaunched {
                        operation: spec.id.clone(),
                        object: launched.object,
                    });
                    report.launched += 1;
                }
                Err(ClusterError::Invalid(why)) => {
                    drafts.push(EventKind::OperationFinished {
                        operation: spec.id.clone(),
                        outcome: Outcome::Failed,
                        phase: "NotLaunched".into(),
                        detail: why,
                        result: None,
                    });
                    report.finished += 1;
                }
                Err(e @ ClusterError::Unavailable(_)) => {
                    warn!(incident, operation = %spec.id, error = %e, "launch failed; retrying next pass");
                    return Ok(());
                }
            }
        } else {
            let seen = match self.cluster.observe(spec).await {
                Ok(seen) => seen,
                Err(e) => {
                    warn!(incident, operation = %spec.id, error = %e, "could not observe operation");
                    return Ok(());
                }
            };
            if let Some(outcome) = seen.done {
                drafts.push(EventKind::OperationFinished {
                    operation: spec.id.clone(),
                    outcome,
                    phase: seen.phase,
                    detail: seen.detail,
                    result: seen.result,
                });
                report.finished += 1;
            } else if seen.phase != op.phase
                || seen.percent >= op.percent.saturating_add(PROGRESS_STEP)
            {
                drafts.push(EventKind::OperationProgressed {
                    operation: spec.id.clone(),
                    phase: seen.phase,
                    percent: seen.percent,
                    detail: seen.detail,
                });
                report.progressed += 1;
            }
        }
        if drafts.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let drafts = drafts.into_iter().map(|k| (Draft::from(k), None)).collect();
        match self
            .commit(
                target,
                Some(state),
                &Actor::drbot(),
                drafts,
                now,
                Alongside::default(),
            )
            .await
        {
            Ok(_) | Err(AppError::Store(StoreError::Conflict)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn keep_cadence(
        &self,
        state: &mut Incident,
        report: &mut TickReport,
    ) -> Result<(), AppError> {
        // A pass may owe a reminder and then, once posted, nothing more; look until quiet.
        let landed = self
            .commit_owed(state, 3, |state, now| {
                let due = cadence::due_work(state, &self.runbook.cadence, now)?;
                let (kind, key) = match &due {
                    Due::Update { slots } => {
                        let text = messages::automatic_update(state, &self.render(now), slots);
                        let last = slots.iter().max().copied().unwrap_or(now);
                        (
                            EventKind::UpdatePosted {
                                text,
                                automatic: true,
                                slots: slots.clone(),
                            },
                            format!("update:{}", last.to_rfc3339()),
                        )
                    }
                    Due::Reminder { slot } => (
                        EventKind::ReminderSent { slot: *slot },
                        format!("reminder:{}", slot.to_rfc3339()),
                    ),
                    Due::FinalSummary => {
                        (EventKind::FinalSummaryPosted, "final-summary".to_string())
                    }
                };
                Some((vec![(Draft::from(kind), Some(key))], due))
            })
            .await?;
        for due in landed {
            match due {
                Due::Update { .. } => report.updates += 1,
                Due::Reminder { .. } => report.reminders += 1,
                Due::FinalSummary => report.summaries += 1,
            }
        }
        Ok(())
    }

    /// RTO threshold posts owed at this moment (50 % and 100 % of each affected service's
    /// RTO), computed from the persisted state; each carries `rto:<service>:<percent>`, so a
    /// second replica's commit is refused whole and a restart neither skips nor repeats one.
    async fn keep_rto(
        &self,
        state: &mut Incident,
        report: &mut TickReport,
    ) -> Result<(), AppError> {
        let Some(catalog) = self.continuity.catalog.as_ref() else {
            return Ok(());
        };
        let landed = self
            .commit_owed(state, 3, |state, now| {
                let due = crate::continuity::impact::due_thresholds(state, catalog, now);
                let count = due.len();
                let drafts: Vec<_> = due
                    .into_iter()
                    .map(|(service, percent, _)| {
                        let rto_seconds =
                            catalog.service(&service).map_or(0, |s| s.rto.num_seconds());
                        let key = format!("rto:{service}:{percent}");
                        (
                            Draft::from(EventKind::RtoThreshold {
                                service,
                                percent,
                                rto_seconds,
                            }),
                            Some(key),
                        )
                    })
                    .collect();
                (count > 0).then_some((drafts, count))
            })
            .await?;
        report.rto_posts += landed.iter().sum::<usize>();
        Ok(())
    }

    /// Remind the comms lead once when the update promised to customers in the last
    /// publication falls due (dedupe key `comms-due:<draft>`, like the cadence slots).
    async fn keep_comms_promise(
        &self,
        state: &mut Incident,
        report: &mut TickReport,
    ) -> Result<(), AppError> {
        let landed = self
            .commit_owed(state, MAX_ATTEMPTS, |state, now| {
                let (draft, due) = state.comms.due(now)?;
                let kind = EventKind::CommsReminderSent {
                    draft: draft.id.clone(),
                    due,
                };
                let key = format!("comms-due:{}", draft.id);
                Some((vec![(Draft::from(kind), Some(key))], ()))
            })
            .await?;
        report.comms_reminders += landed.len();
        Ok(())
    }

    /// Commit what the scheduler owes the incident, as `owed` reads it from `state`, until
    /// nothing is owed or `attempts` are spent; `state` follows each commit that lands. Each
    /// commit carries its dedupe keys, so one another replica made first is refused whole, and
    /// the state is read again. Returns the tags of the commits that landed.
    pub(super) async fn commit_owed<T>(
        &self,
        state: &mut Incident,
        attempts: usize,
        mut owed: impl FnMut(&Incident, DateTime<Utc>) -> Option<(Vec<(Draft, Option<String>)>, T)>,
    ) -> Result<Vec<T>, AppError> {
        let id = state.id;
        let mut landed = Vec::new();
        for _ in 0..attempts {
            let now = self.clock.now();
            let Some((drafts, tag)) = owed(state, now) else {
                break;
            };
            let target = Target::Existing {
                id,
                expected_seq: state.seq,
            };
            match self
                .commit(
                    target,
                    Some(state.clone()),
                    &Actor::drbot(),
                    drafts,
                    now,
                    Alongside::default(),
                )
                .await
            {
                Ok((after, _)) => {
                    *state = after;
                    landed.push(tag);
                }
                // Another worker posted it, or the incident moved on: look again.
                Err(AppError::Store(StoreError::Duplicate(_) | StoreError::Conflict)) => {
                    match self.state(id).await? {
                        Some(fresh) => *state = fresh,
                        None => break,
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(landed)
    }

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

    /// Send one claimed row and record what happened under its claim; `true` if delivered.
    async fn deliver_row(&self, sink: &dyn ChatSink, row: &OutboxRow) -> Result<bool, AppError> {
        let platform = Platform::of(&row.channel).0.name();
        self.deliveries.count(platform, "claimed");
        if row.taken_over() {
            self.deliveries.count(platform, "takeover");
            info!(outbox = row.id, channel = %row.channel, "taking over a post whose send was never recorded; checking the channel before posting");
        }
        let Ok(post) = serde_json::from_str::<messages::Post>(&row.body) else {
            // Only a bug writes one; holding the channel for it would lose everything after.
            tracing::error!(outbox = row.id, "unreadable post body; skipped");
            self.store
                .record_delivery(row, self.clock.now(), "skipped: unreadable body")
                .await?;
            return Ok(false);
        };
        let status_message = match row.incident {
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
        post: &messages::Post,
        platform: &'static str,
        e: DeliveryError,
    ) -> Result<bool, AppError> {
        let now = self.clock.now();
        let attempts = row.attempts + 1;
        self.deliveries.count(platform, "failed");
        warn!(outbox = row.id, channel = %row.channel, attempts, error = %e, "delivery failed");
        let spent = match e.retryable {
            true => attempts >= RETRY_LIMIT || now - row.created_at >= RETRY_WINDOW,
            false => attempts >= PERMANENT_LIMIT,
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
    /// says so and the notice to the channel.
    async fn give_up(
        &self,
        incident: IncidentId,
        row: &OutboxRow,
        post: &messages::Post,
        platform: &'static str,
        attempts: i64,
        e: &DeliveryError,
    ) -> Result<(), AppError> {
        let excerpt = crate::chat::slack::clip(post.plain().lines().next().unwrap_or(""), 160);
        for _ in 0..MAX_ATTEMPTS {
            let Some(state) = self.state(incident).await? else {
                return Ok(());
            };
            let now = self.clock.now();
            let target = Target::Existing {
                id: incident,
                expected_seq: state.seq,
            };
            let kind = EventKind::DeliveryGaveUp {
                outbox: row.id,
                post: post.kind.label().to_string(),
                excerpt: excerpt.clone(),
                attempts,
                error: e.message.clone(),
            };
            let gave_up = GiveUp {
                outbox: row.id,
                claim_token: row.claim_token.clone(),
                error: e.message.clone(),
            };
            let key = format!("gave-up:{}", row.id);
            match self
                .commit(
                    target,
                    Some(state),
                    &Actor::drbot(),
                    vec![(Draft::from(kind), Some(key))],
                    now,
                    Alongside {
                        request_key: None,
                        gave_up: Some(gave_up),
                    },
                )
                .await
            {
                Ok(_) => {
                    self.deliveries.count(platform, "gave_up");
                    tracing::error!(outbox = row.id, channel = %row.channel, attempts, error = %e, "gave up delivering a post; it is on the timeline and the channel was told");
                    return Ok(());
                }
                Err(AppError::Store(StoreError::Conflict)) => continue,
                Err(AppError::Store(StoreError::LeaseLost(_) | StoreError::Duplicate(_))) => {
                    self.deliveries.count(platform, "lease_lost");
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Err(AppError::Contention)
    }
}

/// What a commit writes besides the events and what they cause.
#[derive(Default)]
struct Alongside<'a> {
    /// The chat request that caused it (see [`Commit::request_key`]).
    request_key: Option<&'a str>,
    /// The outbox row it gives up (see [`Commit::gave_up`]).
    gave_up: Option<GiveUp>,
}

/// What a command is decided on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trust {
    /// What is remembered, without asking the store for anything newer: that read cost a
    /// PostgreSQL command a round trip of its own. A commit decided on it is checked by its
    /// expected sequence number; an answer given from it is checked before it goes out.
    Remembered,
    /// What is remembered plus what the store holds after it.
    Read,
}

enum Attempt {
    Done(Reply),
    /// The command opened a drill incident first; decide it again.
    Again,
}

/// How one try at a command ended while the channel's turn was held.
enum Step {
    /// Answered from the state (a view): nothing is ever stored for it, its request key
    /// included, so a redelivery is simply answered again.
    Viewed(Reply),
    /// Refused or answered without a commit.
    Done(Reply),
    /// Committed on landing; `true`: then decide the command again.
    Queued(Box<Queued>, bool),
}

/// A commit handed to the writer, with the state it leads to.
struct Queued {
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
    async fn landed(self, app: &App) -> Result<(Incident, Vec<Event>), AppError> {
        match self.durable.await {
            Ok(_) => {
                if self.has_posts {
                    app.outbox_ready.notify_one();
                }
                app.memo.confirm(&self.after);
                Ok((self.after, self.stored))
            }
            Err(e) => {
                app.memo.forget(self.after.id);
                Err(e.into())
            }
        }
    }
}

/// A `/dr` line as a command, or the answer that says why it is not one.
pub fn parse_line(line: &str) -> Result<Command, Reply> {
    if line.contains('\0') {
        return Err(Reply::Private(nul_refusal("the command")));
    }
    command::parse(line).map_err(|usage| Reply::Private(usage.to_string()))
}

/// PostgreSQL cannot store NUL; both backends refuse it the same way, before anything is written.
fn nul_refusal(what: &str) -> String {
    format!(
        "drbot cannot record {what}: it contains a NUL character (\\0). Nothing was changed; \
         send it again without that character."
    )
}

fn cluster_refusal(e: &ClusterError) -> String {
    match e {
        ClusterError::Invalid(why) => format!("Refused: {why}"),
        ClusterError::Unavailable(why) => format!(
            "The cluster backend did not answer ({why}). Nothing was changed; try again, or `/dr escalate` if it stays down."
        ),
    }
}
