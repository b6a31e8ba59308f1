//! The service catalog: the guide's `business-impact-analysis.yaml`, unchanged. Keys the
//! guide does not name are accepted and ignored; `dependencies` may name infrastructure
//! (`postgresql-primary`) as well as other services.

use chrono::Duration;
use serde::Deserialize;

use super::error::ContinuityError;
use super::units::{Money, Span};

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    /// `critical`, `high`, `medium`, `low` in the guide.
    pub tier: String,
    pub rpo: Duration,
    pub rto: Duration,
    pub data_classification: Option<String>,
    /// Cents per hour.
    pub revenue_per_hour: u64,
    pub dependencies: Vec<String>,
    pub backup_strategy: Option<String>,
    pub failover_strategy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    pub services: Vec<Service>,
}

#[derive(Deserialize)]
struct RawCatalog {
    services: Vec<RawService>,
}

#[derive(Deserialize)]
struct RawService {
    name: String,
    tier: String,
    rpo: Span,
    rto: Span,
    #[serde(default)]
    data_classification: Option<String>,
    #[serde(default)]
    revenue_impact_per_hour: Option<Money>,
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(default)]
    backup_strategy: Option<String>,
    #[serde(default)]
    failover_strategy: Option<String>,
}

/// 1-based line of the `nth` (0-based) line that contains `needle`, for semantic errors.
pub(super) fn line_of(text: &str, needle: &str, nth: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(nth)
        .map(|(i, _)| i + 1)
}

impl Catalog {
    /// Parse the file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Catalog, ContinuityError> {
        let invalid = |message: String| ContinuityError::Invalid {
            file: file.to_string(),
            message,
        };
        let raw: RawCatalog = serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if raw.services.is_empty() {
            return Err(invalid(
                "services: the list is empty; add at least one service with name, tier, rpo and rto".into(),
            ));
        }
        let mut services: Vec<Service> = Vec::with_capacity(raw.services.len());
        for (i, s) in raw.services.into_iter().enumerate() {
            let name = s.name.trim().to_string();
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ',') {
                let at =
                    line_of(text, "name:", i).map_or(String::new(), |l| format!(" at line {l}"));
                return Err(invalid(format!(
                    "services[{i}].name: `{}` is not a service name (one word, no commas){at}",
                    s.name
                )));
            }
            if services.iter().any(|o| o.name.eq_ignore_ascii_case(&name)) {
                let at = line_of(text, &format!("name: {name}"), 1)
                    .map_or(String::new(), |l| format!(" at line {l}"));
                return Err(invalid(format!(
                    "services[{i}].name: `{name}` is listed twice{at}; each service once"
                )));
            }
            if s.tier.trim().is_empty() {
                return Err(invalid(format!(
                    "services[{i}].tier: empty; use critical, high, medium or low"
                )));
            }
            services.push(Service {
                name,
                tier: s.tier.trim().to_string(),
                rpo: s.rpo.0,
                rto: s.rto.0,
                data_classification: s.data_classification,
                revenue_per_hour: s.revenue_impact_per_hour.map_or(0, |m| m.0),
                dependencies: s
                    .dependencies
                    .iter()
                    .map(|d| d.trim().to_string())
                    .collect(),
                backup_strategy: s.backup_strategy,
                failover_strategy: s.failover_strategy,
            });
        }
        Ok(Catalog { services })
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The name as the catalog spells it, if `name` is a dependency some service lists.
    pub fn dependency(&self, name: &str) -> Option<&str> {
        self.services
            .iter()
            .flat_map(|s| &s.dependencies)
            .find(|d| d.eq_ignore_ascii_case(name))
            .map(String::as_str)
    }

    /// Dependencies that are not services themselves (infrastructure), in first-seen order.
    pub fn infrastructure(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for d in self.services.iter().flat_map(|s| &s.dependencies) {
            if self.service(d).is_none() && !out.iter().any(|o| o.eq_ignore_ascii_case(d)) {
                out.push(d);
            }
        }
        out
    }
}

/// Rank for ordering the guide's tiers: critical first.
pub fn tier_rank(tier: &str) -> u8 {
    match tier.to_ascii_lowercase().as_str() {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        "low" => 3,
        _ => 4,
    }
}
