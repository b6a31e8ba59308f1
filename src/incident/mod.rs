//! The incident core: events, the state as a fold of them, and the contract `decide` and the
//! features speak (context, caller, drafts, refusals, posts). Nothing here reads a clock,
//! touches the network, or knows a chat platform; nothing here imports a feature.

pub mod customer;
pub mod decision;
pub mod event;
pub mod exercise;
pub mod impact;
pub mod post;
pub mod reach;
pub mod state;

use chrono::{DateTime, SecondsFormat, Utc};

pub use decision::{Caller, Ctx, Decision, Draft, Facts, PagingPolicy, Policy, Refusal};
pub use event::{
    Actor, Event, EventKind, IncidentId, OperationKind, OperationSpec, Outcome, Plan,
    RecoveryWindow,
};
pub use post::{Post, PostKind};
pub use state::Incident;

/// Times as drbot writes them everywhere: RFC 3339, whole seconds, `Z`.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The incident's web page under the web view's public address.
pub fn incident_url(public_url: &str, id: i64) -> String {
    format!(
        "{}/incidents/{}",
        public_url.trim_end_matches('/'),
        incident_ref(id)
    )
}

/// At most `max` characters (not bytes), ending in `…` when cut.
pub fn clip_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Display id of an incident.
pub fn incident_ref(id: i64) -> String {
    format!("INC-{id}")
}

/// `12 m 30 s`, `1 h 05 m`.
pub fn duration_text(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h} h {m:02} m")
    } else if m > 0 {
        format!("{m} m {s:02} s")
    } else {
        format!("{s} s")
    }
}
