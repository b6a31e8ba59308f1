//! The team's service catalog and DR plan (the SRE guide's business-continuity section) as
//! data: tiers, RTO, RPO, revenue impact, dependencies, recovery priority. Pure: the files'
//! text comes in (`crate::documents` reads them).

pub mod error;
pub mod plan;
pub mod services;
pub mod units;

use std::collections::BTreeMap;

pub use error::ContinuityError;
pub use plan::{DrPlan, PriorityTier};
pub use services::{Catalog, Service};

/// Said whenever a feature needs the catalog and none is configured.
pub const NO_CATALOG: &str =
    "no service catalog configured; set [continuity] catalog = \"<file>\" in the drbot settings";
/// Said when the recovery order needs the DR plan and none is configured.
pub const NO_PLAN: &str =
    "no DR plan configured; set [continuity] plan = \"<file>\" in the drbot settings";

/// The catalog and the plan, each optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Continuity {
    pub catalog: Option<Catalog>,
    pub plan: Option<DrPlan>,
    /// Database cluster → catalog service (`[continuity] clusters`), as the catalog spells it.
    pub clusters: BTreeMap<String, String>,
}

impl Continuity {
    /// The catalog and plan as parsed, with `[continuity] clusters` checked against the catalog.
    pub fn new(
        catalog: Option<Catalog>,
        plan: Option<DrPlan>,
        clusters: &BTreeMap<String, String>,
    ) -> Result<Continuity, ContinuityError> {
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
