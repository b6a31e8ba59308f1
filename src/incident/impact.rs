//! The services an incident affects, as its timeline records them: the part of the state
//! the business-impact feature reads (`features::continuity`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::event::EventKind;
pub use super::event::PulledIn;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    pub name: String,
    /// Set when it was pulled in through a dependency.
    pub via: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// The part of the incident's state this module derives (see `Incident::apply`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContinuityState {
    pub services: Vec<Affected>,
    /// Named dependencies that are not services (`postgresql-primary`).
    pub infrastructure: Vec<String>,
    /// The earliest back-dated moment before the declaration (`declare … since=`, a note
    /// with `at=`): when things went bad.
    pub earliest_before_declared: Option<DateTime<Utc>>,
    /// (service, percent) → when it was announced.
    pub thresholds: BTreeMap<(String, u8), DateTime<Utc>>,
}

impl ContinuityState {
    /// Fold one event in; `at` is its time, `declared_at` the incident's.
    pub fn apply(&mut self, kind: &EventKind, at: DateTime<Utc>, declared_at: DateTime<Utc>) {
        match kind {
            EventKind::ServicesAffected {
                services,
                infrastructure,
                pulled_in,
            } => {
                for name in services {
                    self.add(name, None, at);
                }
                for p in pulled_in {
                    self.add(&p.service, Some(&p.via), at);
                }
                for i in infrastructure {
                    if !self
                        .infrastructure
                        .iter()
                        .any(|o| o.eq_ignore_ascii_case(i))
                    {
                        self.infrastructure.push(i.clone());
                    }
                }
            }
            EventKind::RtoThreshold {
                service, percent, ..
            } => {
                self.thresholds
                    .entry((service.clone(), *percent))
                    .or_insert(at);
            }
            EventKind::NoteAdded { .. }
                if at < declared_at && self.earliest_before_declared.is_none_or(|e| at < e) =>
            {
                self.earliest_before_declared = Some(at);
            }
            _ => {}
        }
    }

    fn add(&mut self, name: &str, via: Option<&str>, at: DateTime<Utc>) {
        if !self.is_affected(name) {
            self.services.push(Affected {
                name: name.to_string(),
                via: via.map(str::to_string),
                recorded_at: at,
            });
        }
    }

    pub fn is_affected(&self, name: &str) -> bool {
        self.services
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(name))
    }

    pub fn announced(&self, service: &str, percent: u8) -> Option<DateTime<Utc>> {
        self.thresholds
            .get(&(service.to_string(), percent))
            .copied()
    }
}
