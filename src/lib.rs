//! drbot: runs the team's disaster-recovery SOP from the incident channel.

pub mod app;
pub mod chat;
pub mod clock;
pub mod cluster;
pub mod command;
pub mod comms;
pub mod config;
pub mod continuity;
pub mod doctor;
pub mod export;
pub mod incident;
pub mod server;
pub mod sop;
pub mod store;
