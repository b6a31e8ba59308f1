//! The heart: events, state as a fold of events, `decide`, cadence and the checklist.
//! Nothing here reads a clock, touches the network, or knows a chat platform.

pub mod cadence;
pub mod checklist;
pub mod decide;
pub mod drills;
pub mod event;
pub mod messages;
pub mod state;
pub mod tabletop;

#[cfg(test)]
mod tests;

pub use decide::{Caller, Ctx, Decision, Draft, Facts, Policy, Refusal, decide, draft_operation};
pub use event::{
    Actor, Event, EventKind, IncidentId, OperationKind, OperationSpec, Outcome, Plan,
    RecoveryWindow,
};
pub use state::Incident;
