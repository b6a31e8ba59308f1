//! What `decide` takes and gives: the context, the caller, the facts gathered beforehand,
//! the events it drafts or the refusal it answers. Features that decide a verb of their own
//! speak the same contract.

use chrono::{DateTime, Duration, FixedOffset, Utc};

use super::event::{Actor, EventKind, Plan};
use super::exercise::Exercise;
use crate::catalog::Continuity;
use crate::command::TimeInput;
use crate::sop::Runbook;

use super::fmt_time;

/// Safety settings from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Severities whose launches need a second operator to confirm.
    pub two_person_severities: Vec<String>,
    pub preview_ttl: Duration,
    /// Zone for timestamps typed without one; `None` refuses them.
    pub default_zone: Option<FixedOffset>,
    /// Database cluster restored when a command names none.
    pub default_cluster: Option<String>,
    /// Non-production namespace drills restore into (SOP §10).
    pub drill_namespace: String,
    /// A status page is configured: `/dr comms publish` can send.
    pub status_page: bool,
    /// `[paging]`: no provider = no paging.
    pub paging: PagingPolicy,
    /// The tracker follow-ups are filed in (`GitHub`, `Jira`); `None`: SOP 9.8.4 is ticked
    /// by hand.
    pub tracker: Option<String>,
}

/// What `decide` knows of `[paging]` (never a routing key).
#[derive(Debug, Clone, Default)]
pub struct PagingPolicy {
    /// `PagerDuty` or `Opsgenie`; `None`: paging is off.
    pub provider: Option<String>,
    /// Targets with a route, sorted.
    pub targets: Vec<String>,
    /// Severity → targets a declaration or a raise pages.
    pub auto: std::collections::BTreeMap<String, Vec<String>>,
    /// Target → whom to call when a page cannot be delivered.
    pub fallback: std::collections::BTreeMap<String, String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            two_person_severities: vec!["sev1".into()],
            preview_ttl: Duration::minutes(10),
            default_zone: None,
            default_cluster: None,
            drill_namespace: "dr-drill".into(),
            status_page: false,
            paging: PagingPolicy::default(),
            tracker: None,
        }
    }
}

pub struct Ctx<'a> {
    /// Channel the command came from (incidents live in their channel).
    pub channel: &'a str,
    pub runbook: &'a Runbook,
    pub policy: &'a Policy,
    pub now: DateTime<Utc>,
    /// The service catalog and DR plan (issue 11), as data.
    pub continuity: &'a Continuity,
}

/// The person issuing a command; the adapter decides whether they are an operator.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub operator: bool,
}

/// Results of I/O gathered before deciding.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub backend: String,
    pub plan: Option<Plan>,
    /// (item id, probe name, passed, evidence) for `verify`.
    pub probes: Vec<(String, String, bool, String)>,
    /// (all good, report lines) for `backups`.
    pub backups: Option<(bool, Vec<String>)>,
    /// The exercise file for `tabletop start`, or why it could not be loaded.
    pub exercise: Option<Result<Exercise, String>>,
}

/// An event to append, with the time it happened when that is not "now".
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub kind: EventKind,
    pub occurred_at: Option<DateTime<Utc>>,
}

impl From<EventKind> for Draft {
    fn from(kind: EventKind) -> Self {
        Draft {
            kind,
            occurred_at: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub events: Vec<Draft>,
    /// The command should be decided again once these events are stored (a drill in a
    /// channel without an incident first opens a drill incident).
    pub then_retry: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// A refusal as a `Result`, for early returns.
pub fn refuse<T>(msg: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(msg.into()))
}

/// Resolve a typed timestamp to UTC, refusing one without a zone unless a default is set.
pub fn resolve_time(
    input: &TimeInput,
    ctx: &Ctx,
) -> Result<(DateTime<Utc>, Option<String>), Refusal> {
    let Some(t) = input.resolve(ctx.policy.default_zone) else {
        return refuse(format!(
            "`{input}` has no time zone. Add one: `{}Z` for UTC or an offset like `+01:00`.",
            match input {
                TimeInput::Naive(n) => n.format("%Y-%m-%dT%H:%M").to_string(),
                TimeInput::Zoned(z) => z.to_rfc3339(),
            }
        ));
    };
    let echo = match (input, ctx.policy.default_zone) {
        (TimeInput::Naive(_), Some(zone)) => Some(format!(
            "`{input}` has no zone; read it in the configured zone {zone}: {}",
            fmt_time(t)
        )),
        _ => None,
    };
    Ok((t, echo))
}
