//! `drbot doctor` for `[paging]`: harmless calls only.

use super::Check;
use crate::config::PagingSettings;

/// The paging provider's checks (none when paging is off).
pub async fn paging(settings: &PagingSettings) -> Vec<Check> {
    let _ = settings;
    Vec::new()
}
