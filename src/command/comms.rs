//! `/dr comms …`: the words of the customer-communication verbs.

use serde::{Deserialize, Serialize};

/// Which of the guide's templates a draft uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Initial,
    Update,
    Resolved,
}

impl Stage {
    pub const WORDS: &'static [&'static str] = &["initial", "update", "resolved"];

    pub fn parse(s: &str) -> Option<Stage> {
        match s.to_ascii_lowercase().as_str() {
            "initial" => Some(Stage::Initial),
            "update" => Some(Stage::Update),
            "resolved" => Some(Stage::Resolved),
            _ => None,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Stage::Initial => "initial",
            Stage::Update => "update",
            Stage::Resolved => "resolved",
        }
    }
}

/// `/dr comms …`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommsCommand {
    Draft(Stage),
    Edit { id: String, text: String },
    Publish { id: String },
}

impl CommsCommand {
    pub fn verb(&self) -> &'static str {
        match self {
            CommsCommand::Draft(_) => "comms draft",
            CommsCommand::Edit { .. } => "comms edit",
            CommsCommand::Publish { .. } => "comms publish",
        }
    }
}
