//! drbot: runs the team's disaster-recovery SOP from the incident channel.
//!
//! Modules in layers, each importing only layers below it (ARCHITECTURE.md, "Layers";
//! `tests/layers.rs` keeps it so). The domain, pure and synchronous:
//! 1. `clock`, `sop`, `catalog`, `command`: the time source, the team's documents as data,
//!    the grammar and its plain types.
//! 2. `incident`: the core: events, the state as their fold, the decision contract, posts.
//! 3. `features`: what extends an incident (checklist, cadence, continuity, customer
//!    comms, drills, tabletop), each on the core alone.
//! 4. `decide`: a command in, events or a refusal out; the posts each event causes.
//!
//! The adapters, at the edges:
//! 5. `config`, `documents`: settings and the documents read from disk.
//! 6. `chat`, `cluster`, `store`: outbound ports and their adapters.
//! 7. `export`: the postmortem writers.
//! 8. `app`, `doctor`: the command path, scheduler and outbox; the pre-flight checks.
//! 9. `server`: the inbound adapters (Slack, Discord, the local console).

pub mod catalog;
pub mod clock;
pub mod command;
pub mod sop;

pub mod incident;

pub mod features;

pub mod decide;

pub mod config;
pub mod documents;

pub mod chat;
pub mod cluster;
pub mod store;

pub mod export;

pub mod app;
pub mod doctor;

pub mod server;
