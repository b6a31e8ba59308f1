//! Business continuity from the team's SRE guide: the service catalog (tiers, RTO, RPO,
//! revenue impact, dependencies), the DR plan's recovery priority, and what an incident
//! means for each affected service. Loading reads files; everything else is pure.

pub mod catalog;
pub mod decide;
pub mod impact;
pub mod plan;
pub mod units;
pub mod view;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use catalog::{Catalog, Service};
pub use impact::{Affected, ContinuityState};
pub use plan::{DrPlan, PriorityTier};

/// Said whenever a feature needs the catalog and none is configured.
pub const NO_CATALOG: &str =
    "no service catalog configured; set [continuity] catalog = \"<file>\" in the drbot settings";
/// Said when the recovery order needs the DR plan and none is configured.
pub const NO_PLAN: &str =
    "no DR plan configured; set [continuity] plan = \"<file>\" in the drbot settings";

#[derive(Debug, thiserror::Error)]
pub enum ContinuityError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

/// The catalog and the plan, each optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Continuity {
    pub catalog: Option<Catalog>,
    pub plan: Option<DrPlan>,
    /// Database cluster → catalog service (`[continuity] clusters`), as the catalog spells it.
    pub clusters: BTreeMap<String, String>,
}

/// A settings path: absolute, or relative to the working directory (like `runbook.path`).
fn resolve(path: &str) -> PathBuf {
    PathBuf::from(path)
}

fn read(path: &Path) -> Result<(String, String), ContinuityError> {
    let file = path.display().to_string();
    std::fs::read_to_string(path)
        .map(|text| (text, file.clone()))
        .map_err(|source| ContinuityError::Read { file, source })
}

impl Continuity {
    /// Load what the settings name; nothing named loads nothing.
    pub fn load(
        catalog: Option<&str>,
        plan: Option<&str>,
        clusters: &BTreeMap<String, String>,
    ) -> Result<Continuity, ContinuityError> {
        let catalog = match catalog.filter(|p| !p.trim().is_empty()) {
            Some(p) => {
                let (text, file) = read(&resolve(p))?;
                Some(Catalog::parse(&text, &file)?)
            }
            None => None,
        };
        let plan = match plan.filter(|p| !p.trim().is_empty()) {
            Some(p) => {
                let (text, file) = read(&resolve(p))?;
                Some(DrPlan::parse(&text, &file)?)
            }
            None => None,
        };
        let clusters = map_clusters(catalog.as_ref(), clusters)?;
        Ok(Continuity {
            catalog,
            plan,
            clusters,
        })
    }

    /// The service whose data `cluster` holds: the `[continuity] clusters` entry, or the
    /// catalog service of the same name.
    pub fn service_of_cluster(&self, cluster: &str) -> Option<&Service> {
        let catalog = self.catalog.as_ref()?;
        match self.clusters.get(cluster) {
            Some(service) => catalog.service(service),
            None => catalog.service(cluster),
        }
    }

    /// The RTO target a restore of `cluster` is held to (SOP §10.2 records it for drills).
    pub fn cluster_rto(&self, cluster: &str) -> Option<chrono::Duration> {
        self.service_of_cluster(cluster).map(|s| s.rto)
    }

    pub fn catalog(&self) -> Result<&Catalog, String> {
        self.catalog.as_ref().ok_or_else(|| NO_CATALOG.to_string())
    }
}

/// Check every `[continuity] clusters` entry names a catalog service; a typo would otherwise
/// silently drop the drill's RTO comparison.
fn map_clusters(
    catalog: Option<&Catalog>,
    clusters: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ContinuityError> {
    if clusters.is_empty() {
        return Ok(BTreeMap::new());
    }
    let invalid = |message: String| ContinuityError::Invalid {
        file: "settings [continuity] clusters".into(),
        message,
    };
    let Some(catalog) = catalog else {
        return Err(invalid(format!(
            "{NO_CATALOG}; the clusters map names its services"
        )));
    };
    clusters
        .iter()
        .map(|(cluster, service)| match catalog.service(service) {
            Some(s) => Ok((cluster.clone(), s.name.clone())),
            None => Err(invalid(format!(
                "{cluster} = \"{service}\": the catalog has no service {service:?}; it lists {}",
                catalog
                    .services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests;
