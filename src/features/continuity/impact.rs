//! An incident's business impact, derived from its timeline: which services are affected
//! (named, or pulled in through their dependencies), when the impact began, which RTO
//! thresholds were announced, and what was achieved against the targets. Pure.

use chrono::{DateTime, Duration, Utc};

use crate::catalog::{Catalog, Service};
use crate::incident::event::{EventKind, OperationKind};
use crate::incident::impact::{Affected, ContinuityState, PulledIn};
use crate::incident::state::Incident;

/// RTO thresholds announced to the incident commander and the comms lead, in percent.
pub const THRESHOLDS: [u8; 2] = [50, 100];

/// When the impact began: `since=` or the earliest back-dated note, else the declaration.
pub fn onset(s: &Incident) -> DateTime<Utc> {
    s.continuity
        .earliest_before_declared
        .map_or(s.declared_at, |e| e.min(s.declared_at))
}

/// What `/dr impact a,b` (or `declare … services=a,b`) adds, as event fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewImpact {
    pub services: Vec<String>,
    pub infrastructure: Vec<String>,
    pub pulled_in: Vec<PulledIn>,
}

impl NewImpact {
    pub fn into_event(self) -> EventKind {
        EventKind::ServicesAffected {
            services: self.services,
            infrastructure: self.infrastructure,
            pulled_in: self.pulled_in,
        }
    }
}

/// Resolve named services and infrastructure against the catalog, following dependencies:
/// every service that depends on something affected is affected too (transitively).
/// Unknown names are refused with the list of known ones; nothing new is refused too.
pub fn resolve(
    catalog: &Catalog,
    current: &ContinuityState,
    names: &[String],
) -> Result<NewImpact, String> {
    if names.is_empty() {
        return Err(format!(
            "Name the affected services: `/dr impact <service>[,<service>…]`. Known: {}",
            known(catalog)
        ));
    }
    let mut unknown = Vec::new();
    let mut new = NewImpact::default();
    // Everything affected so far, services and infrastructure, for following dependencies.
    let mut down: Vec<String> = current
        .services
        .iter()
        .map(|a| a.name.clone())
        .chain(current.infrastructure.iter().cloned())
        .collect();
    let is_down = |down: &[String], n: &str| down.iter().any(|d| d.eq_ignore_ascii_case(n));
    for name in names {
        if let Some(svc) = catalog.service(name) {
            if !is_down(&down, &svc.name) && !new.services.contains(&svc.name) {
                new.services.push(svc.name.clone());
                down.push(svc.name.clone());
            }
        } else if let Some(dep) = catalog.dependency(name) {
            if !is_down(&down, dep) && !new.infrastructure.iter().any(|i| i == dep) {
                new.infrastructure.push(dep.to_string());
                down.push(dep.to_string());
            }
        } else {
            unknown.push(name.clone());
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "Unknown service or dependency: {}. Known: {}",
            unknown.join(", "),
            known(catalog)
        ));
    }
    loop {
        let mut added = false;
        for svc in &catalog.services {
            if is_down(&down, &svc.name) {
                continue;
            }
            if let Some(via) = svc.dependencies.iter().find(|d| is_down(&down, d)) {
                new.pulled_in.push(PulledIn {
                    service: svc.name.clone(),
                    via: via.clone(),
                });
                down.push(svc.name.clone());
                added = true;
            }
        }
        if !added {
            break;
        }
    }
    if new == NewImpact::default() {
        return Err(format!(
            "{} already recorded as affected; `/dr status` shows them.",
            names.join(", ")
        ));
    }
    Ok(new)
}

fn known(catalog: &Catalog) -> String {
    let services: Vec<&str> = catalog.services.iter().map(|s| s.name.as_str()).collect();
    let infra = catalog.infrastructure();
    let mut out = format!("services {}", services.join(", "));
    if !infra.is_empty() {
        out.push_str(&format!("; dependencies {}", infra.join(", ")));
    }
    out
}

/// When `percent` of `service`'s RTO is reached.
pub fn threshold_at(s: &Incident, service: &Service, percent: u8) -> DateTime<Utc> {
    onset(s) + Duration::seconds(service.rto.num_seconds() * i64::from(percent) / 100)
}

/// Thresholds reached by `now` and not yet announced, oldest first. None once resolved.
/// A zero RTO has only its 100 % threshold.
pub fn due_thresholds(
    s: &Incident,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> Vec<(String, u8, DateTime<Utc>)> {
    let mut due = Vec::new();
    if !s.is_open() {
        return due;
    }
    for a in &s.continuity.services {
        let Some(svc) = catalog.service(&a.name) else {
            continue;
        };
        for percent in THRESHOLDS {
            if percent < 100 && svc.rto.is_zero() {
                continue;
            }
            let at = threshold_at(s, svc, percent);
            if at <= now && s.continuity.announced(&svc.name, percent).is_none() {
                due.push((svc.name.clone(), percent, at));
            }
        }
    }
    due.sort_by_key(|(_, p, at)| (*at, *p));
    due
}

/// Revenue at risk from onset until `until` (cents), summed over affected services.
pub fn revenue_at_risk(s: &Incident, catalog: &Catalog, until: DateTime<Utc>) -> u64 {
    let secs = (until - onset(s)).num_seconds().max(0) as u128;
    let per_hour: u128 = s
        .continuity
        .services
        .iter()
        .filter_map(|a| catalog.service(&a.name))
        .map(|svc| u128::from(svc.revenue_per_hour))
        .sum();
    u64::try_from(per_hour * secs / 3600).unwrap_or(u64::MAX)
}

/// Revenue per hour of the affected services (cents).
pub fn revenue_rate(s: &Incident, catalog: &Catalog) -> u64 {
    s.continuity
        .services
        .iter()
        .filter_map(|a| catalog.service(&a.name))
        .map(|svc| svc.revenue_per_hour)
        .sum()
}

/// Data lost by the recovery: from the restore point to the onset.
#[derive(Debug, Clone, PartialEq)]
pub struct DataLoss {
    pub lost: Duration,
    /// The restore point: the PITR target, or the restored backup's end.
    pub point: DateTime<Utc>,
    /// `PITR op3 to 09:55Z`, `restore latest op2 from backup X (ended …)`.
    pub how: String,
}

/// The end of the backup a restore used, as both backends state it in the plan
/// (`from backup <name> (ended <time>)`).
fn backup_end(s: &Incident, operation: &str) -> Option<DateTime<Utc>> {
    let preview = s.previews.iter().find(|p| p.spec.id == operation)?;
    preview.plan.summary.iter().find_map(|line| {
        let rest = line.strip_prefix("from backup ")?;
        let ended = rest.split_once("(ended ")?.1.strip_suffix(')')?;
        DateTime::parse_from_rfc3339(ended.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// The data lost by the last successful database restore of the incident (drills excluded).
pub fn data_lost(s: &Incident) -> Option<DataLoss> {
    let op = s
        .operations
        .iter()
        .filter(|o| {
            matches!(
                o.spec.kind,
                OperationKind::Pitr | OperationKind::RestoreLatest
            )
        })
        .filter(|o| o.succeeded())
        .max_by_key(|o| o.finished.as_ref().map(|f| f.at))?;
    let (point, how) = match op.spec.kind {
        OperationKind::Pitr => {
            let t = op.spec.target?;
            (
                t,
                format!("PITR {} to {}", op.spec.id, crate::incident::fmt_time(t)),
            )
        }
        _ => {
            let end = backup_end(s, &op.spec.id)?;
            (
                end,
                format!(
                    "restore latest {} from backup {} (ended {})",
                    op.spec.id,
                    op.backup.as_deref().unwrap_or("?"),
                    crate::incident::fmt_time(end)
                ),
            )
        }
    };
    Some(DataLoss {
        lost: (onset(s) - point).max(Duration::zero()),
        point,
        how,
    })
}

/// One affected service against its targets, for status and export.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceReport<'a> {
    pub affected: &'a Affected,
    pub service: Option<&'a Service>,
    /// onset + RTO.
    pub deadline: Option<DateTime<Utc>>,
    /// Onset → resolution, once resolved.
    pub rto_achieved: Option<Duration>,
    pub rpo_achieved: Option<Duration>,
}

impl ServiceReport<'_> {
    pub fn rto_met(&self) -> Option<bool> {
        Some(self.rto_achieved? <= self.service?.rto)
    }
    pub fn rpo_met(&self) -> Option<bool> {
        Some(self.rpo_achieved? <= self.service?.rpo)
    }
}

pub fn reports<'a>(s: &'a Incident, catalog: Option<&'a Catalog>) -> Vec<ServiceReport<'a>> {
    let loss = data_lost(s);
    s.continuity
        .services
        .iter()
        .map(|a| {
            let service = catalog.and_then(|c| c.service(&a.name));
            ServiceReport {
                affected: a,
                service,
                deadline: service.map(|svc| threshold_at(s, svc, 100)),
                rto_achieved: s.resolved_at.map(|r| (r - onset(s)).max(Duration::zero())),
                rpo_achieved: loss.as_ref().map(|l| l.lost),
            }
        })
        .collect()
}
