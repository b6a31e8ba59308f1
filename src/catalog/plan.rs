//! The DR plan: the guide's `disaster-recovery-plan.yaml`, unchanged. drbot uses its
//! metadata (version, owner, next review), the roles and the recovery priority; the other
//! sections (scope, activation criteria, communication channels) are accepted as they are.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use serde::Deserialize;

use super::error::ContinuityError;
use super::units::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct PriorityTier {
    pub tier: u32,
    pub services: Vec<String>,
    pub target_rto: Duration,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanRole {
    /// The key in the file: `incident_commander`, `communications_lead`…
    pub key: String,
    pub name: Option<String>,
    pub responsibilities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DrPlan {
    pub version: Option<String>,
    pub owner: Option<String>,
    pub last_updated: Option<NaiveDate>,
    pub next_review: Option<NaiveDate>,
    pub roles: Vec<PlanRole>,
    /// In recovery order: tier 1 first.
    pub recovery_priority: Vec<PriorityTier>,
}

#[derive(Deserialize)]
struct RawPlan {
    #[serde(default)]
    metadata: Option<RawMetadata>,
    #[serde(default)]
    roles_and_responsibilities: BTreeMap<String, RawRole>,
    #[serde(default)]
    recovery_priority: Vec<RawTier>,
}

#[derive(Deserialize)]
struct RawMetadata {
    #[serde(default)]
    version: Option<serde_yaml::Value>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    last_updated: Option<NaiveDate>,
    #[serde(default)]
    next_review: Option<NaiveDate>,
}

#[derive(Deserialize)]
struct RawRole {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    responsibilities: Vec<String>,
}

#[derive(Deserialize)]
struct RawTier {
    tier: u32,
    services: Vec<String>,
    target_rto: Span,
    action: String,
}

fn scalar(v: serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl DrPlan {
    pub fn parse(text: &str, file: &str) -> Result<DrPlan, ContinuityError> {
        let invalid = |message: String| ContinuityError::Invalid {
            file: file.to_string(),
            message,
        };
        let raw: RawPlan = serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if raw.recovery_priority.is_empty() {
            return Err(invalid(
                "recovery_priority: missing or empty; list the tiers with tier, services, target_rto and action".into(),
            ));
        }
        let mut recovery_priority: Vec<PriorityTier> = Vec::new();
        for (i, t) in raw.recovery_priority.into_iter().enumerate() {
            if recovery_priority.iter().any(|o| o.tier == t.tier) {
                let at = super::services::line_of(text, &format!("tier: {}", t.tier), 1)
                    .map_or(String::new(), |l| format!(" at line {l}"));
                return Err(invalid(format!(
                    "recovery_priority[{i}].tier: tier {} is listed twice{at}",
                    t.tier
                )));
            }
            recovery_priority.push(PriorityTier {
                tier: t.tier,
                services: t.services.iter().map(|s| s.trim().to_string()).collect(),
                target_rto: t.target_rto.0,
                action: t.action,
            });
        }
        recovery_priority.sort_by_key(|t| t.tier);
        let meta = raw.metadata;
        Ok(DrPlan {
            version: meta
                .as_ref()
                .and_then(|m| m.version.clone())
                .and_then(scalar),
            owner: meta.as_ref().and_then(|m| m.owner.clone()),
            last_updated: meta.as_ref().and_then(|m| m.last_updated),
            next_review: meta.as_ref().and_then(|m| m.next_review),
            roles: raw
                .roles_and_responsibilities
                .into_iter()
                .map(|(key, r)| PlanRole {
                    key,
                    name: r.name,
                    responsibilities: r.responsibilities,
                })
                .collect(),
            recovery_priority,
        })
    }

    /// The tier that lists `service`.
    pub fn tier_of(&self, service: &str) -> Option<&PriorityTier> {
        self.recovery_priority
            .iter()
            .find(|t| t.services.iter().any(|s| s.eq_ignore_ascii_case(service)))
    }
}
