//! `drbot doctor` for `[tracker]`: harmless calls only.

use super::Check;
use crate::config::TrackerSettings;

/// The tracker's checks (none when no tracker is configured).
pub async fn tracker(settings: &TrackerSettings) -> Vec<Check> {
    let _ = settings;
    Vec::new()
}
