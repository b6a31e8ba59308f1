//! The application service: loads an incident's events, asks `decide`, and commits the events
//! with the posts and operations they cause in one transaction. The scheduler side (`tick`)
//! launches queued operations, watches running ones, keeps the update cadence, and the outbox
//! worker (`deliver`) sends posts. All I/O is here or in the adapters; decisions are pure.
//!
//! This file holds the `App` and its wiring; the work is beside it in `app/`: the command
//! path (`command.rs`), the incident as it stands (`state.rs`, over `memo.rs`), the commit
//! (`commit.rs`), the scheduler pass (`scheduler.rs`), the outbox worker (`outbox.rs`) and
//! drills and tabletops (`drills.rs`).

use std::sync::Arc;

mod command;
mod commit;
mod drills;
mod memo;
mod outbox;
mod reach;
mod scheduler;
mod state;

pub use command::parse_line;
pub use drills::DrillConfig;
pub use memo::Memo;
pub use outbox::DeliveryStats;
pub use reach::PageChange;
pub use scheduler::TickReport;

use chrono::{DateTime, Duration, Utc};

use crate::chat::ChatSink;
use crate::clock::Clock;
use crate::cluster::kube::Kube;
use crate::cluster::sandbox::{Sandbox, SandboxConfig};
use crate::cluster::{Cluster, ClusterError};
use crate::config::Settings;
use crate::decide::posts::Render;
use crate::incident::Policy;
use crate::sop::Runbook;
use crate::store::{Store, StoreError};

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

pub struct App {
    pub store: Store,
    pub cluster: Arc<dyn Cluster>,
    pub clock: Arc<dyn Clock>,
    pub runbook: Runbook,
    pub policy: Policy,
    /// The service catalog and DR plan, loaded at start.
    pub continuity: crate::catalog::Continuity,
    /// Drill reminders, clusters to report, the tabletop directory.
    pub drills: DrillConfig,
    pub memo: Memo,
    /// This process among the replicas: the claim token on the operations it watches, the
    /// prefix of its outbox claims.
    pub replica: String,
    pub deliveries: DeliveryStats,
    /// Notified when a commit that queued posts is durable: the outbox has work.
    pub outbox_ready: tokio::sync::Notify,
    /// Notified when a commit of this process is durable: the web view's live pages read on.
    pub timeline_changed: tokio::sync::Notify,
    /// Where publications go (`[statuspage]`); `None`: no status page.
    pub statuspage: Option<Arc<dyn ChatSink>>,
    /// Where pages go (`[paging]`); `None`: no paging.
    pub pager: Option<Arc<crate::chat::pager::Pager>>,
    /// Where follow-ups are filed (`[tracker]`); `None`: no tracker.
    pub tracker: Option<Arc<crate::chat::tracker::Tracker>>,
    /// When this process last read the follow-up tickets' states back.
    followups_read: std::sync::Mutex<Option<DateTime<Utc>>>,
    /// How often follow-up tickets' states are read back (`[tracker] refresh_minutes`).
    pub followup_refresh: Duration,
    /// How long a page is tried before the channel is told to call instead.
    pub page_give_up: Duration,
    /// The web view's public address (`[web] public_url`): posts link to incident pages.
    pub public_url: Option<String>,
    claims: std::sync::atomic::AtomicU64,
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

/// Tries at one change before it is given up as contended.
const MAX_ATTEMPTS: usize = 5;
/// What a chat user sees when the database (or anything inside drbot) failed; the log has
/// the detail.
pub const COULD_NOT_RECORD: &str = "drbot could not record this; nothing was changed, try again.";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runbook(#[from] crate::sop::RunbookError),
    #[error("cluster backend: {0}")]
    Cluster(#[from] ClusterError),
    #[error("[continuity] {0}")]
    Continuity(#[from] crate::catalog::ContinuityError),
}

impl App {
    /// Wire the pieces the settings name.
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<App, BuildError> {
        let store = Store::connect(&settings.database.url).await?;
        let runbook = match &settings.runbook.path {
            Some(path) => Runbook::load(std::path::Path::new(path))?,
            None => Runbook::embedded(),
        };
        let continuity = crate::catalog::Continuity::load(
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
            paging: crate::incident::PagingPolicy {
                provider: settings.paging.provider().map(|p| p.name().to_string()),
                targets: settings.paging.targets(),
                auto: settings.paging.auto_targets(),
                fallback: settings.paging.fallbacks(),
            },
            tracker: settings.tracker.kind().map(|k| k.name().to_string()),
        };
        let statuspage = crate::chat::statuspage::Statuspage::new(&settings.statuspage)
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
            timeline_changed: tokio::sync::Notify::new(),
            statuspage,
            pager: crate::chat::pager::Pager::new(&settings.paging).map(Arc::new),
            tracker: crate::chat::tracker::Tracker::new(&settings.tracker).map(Arc::new),
            followups_read: Default::default(),
            followup_refresh: Duration::minutes(settings.tracker.refresh_minutes),
            page_give_up: Duration::minutes(settings.paging.give_up_minutes),
            public_url: settings.web.public_url.clone(),
            claims: Default::default(),
        })
    }

    fn render(&self, now: DateTime<Utc>) -> Render<'_> {
        Render {
            runbook: &self.runbook,
            two_person_severities: &self.policy.two_person_severities,
            now,
            continuity: &self.continuity,
            public_url: self.public_url.as_deref(),
        }
    }
}
