//! The team's documents read from disk: the runbook, the service catalog and the DR plan.
//! Their parsers are pure (`sop`, `catalog`); the reading lives here, at the edge.

use std::collections::BTreeMap;
use std::path::Path;

use crate::catalog::{Catalog, Continuity, ContinuityError, DrPlan};
use crate::sop::{Runbook, RunbookError};

impl Runbook {
    pub fn load(path: &Path) -> Result<Runbook, RunbookError> {
        let text = std::fs::read_to_string(path).map_err(|source| RunbookError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Runbook::from_toml(&text)
    }
}

fn read(path: &str) -> Result<(String, String), ContinuityError> {
    std::fs::read_to_string(Path::new(path))
        .map(|text| (text, path.to_string()))
        .map_err(|source| ContinuityError::Read {
            file: path.to_string(),
            source,
        })
}

impl Continuity {
    /// Load what the settings name (paths absolute, or relative to the working directory,
    /// like `runbook.path`); nothing named loads nothing.
    pub fn load(
        catalog: Option<&str>,
        plan: Option<&str>,
        clusters: &BTreeMap<String, String>,
    ) -> Result<Continuity, ContinuityError> {
        let named = |p: Option<&str>| p.filter(|p| !p.trim().is_empty()).map(read);
        let catalog = match named(catalog) {
            Some(read) => {
                let (text, file) = read?;
                Some(Catalog::parse(&text, &file)?)
            }
            None => None,
        };
        let plan = match named(plan) {
            Some(read) => {
                let (text, file) = read?;
                Some(DrPlan::parse(&text, &file)?)
            }
            None => None,
        };
        Continuity::new(catalog, plan, clusters)
    }
}
