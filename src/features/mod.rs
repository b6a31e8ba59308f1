//! What extends an incident, each feature on the core alone (never on a sibling): the SOP
//! checklist, the update cadence, business continuity, customer communication, quarterly
//! drills, tabletop exercises, paging and follow-ups. Pure like the core.

pub mod cadence;
pub mod checklist;
pub mod comms;
pub mod continuity;
pub mod drills;
pub mod paging;
pub mod tabletop;
