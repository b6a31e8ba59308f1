//! The SOP as data: severities, incident types and their recovery paths, steps, the
//! post-recovery checklist, the cadence policy and message templates.
//!
//! The default runbook is embedded; a team can point `runbook.path` at its own file.

use std::collections::HashSet;

use chrono::Duration;
use serde::Deserialize;

const DEFAULT_RUNBOOK: &str = include_str!("default_runbook.toml");

#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    #[error("cannot read runbook {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("runbook is not valid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("runbook is inconsistent: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    pub name: String,
    pub severities: Vec<SeverityDef>,
    pub types: Vec<TypeDef>,
    pub sections: Vec<Section>,
    pub checklist: Vec<ChecklistSection>,
    pub cadence: CadencePolicy,
    pub templates: Templates,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityDef {
    pub id: String,
    pub label: String,
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeDef {
    pub id: String,
    pub label: String,
    pub description: String,
    /// Sections of the recovery path, in order.
    pub sections: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub id: String,
    pub title: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    pub text: String,
    /// The `/dr` action that carries out this step, if drbot can.
    pub action: Option<Action>,
    /// An event that completes this step without a human tick.
    pub auto: Option<String>,
}

/// Actions that touch the cluster or the backups; the recovery path decides which are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Freeze,
    Backups,
    InfraRestore,
    RestoreLatest,
    Pitr,
    Verify,
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Freeze => "freeze",
            Action::Backups => "backups",
            Action::InfraRestore => "infra restore",
            Action::RestoreLatest => "restore latest",
            Action::Pitr => "pitr",
            Action::Verify => "verify",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistSection {
    pub id: String,
    pub title: String,
    pub required: bool,
    pub items: Vec<ChecklistItem>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub if_applicable: bool,
    /// Automatic probe `/dr verify` runs for this item.
    pub probe: Option<String>,
    /// Event that ticks this item (`resolve` items are satisfied by resolving itself).
    pub auto: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CadencePolicy {
    pub bands: Vec<CadenceBand>,
    pub reminder_before_minutes: i64,
    pub final_summary_within_minutes: i64,
    pub final_summary_after_minutes: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CadenceBand {
    /// Incident age (minutes) below which this band applies; the last band has none.
    pub until_minutes: Option<i64>,
    pub every_minutes: i64,
}

impl CadencePolicy {
    /// Interval to the next update for an incident of the given age (at the last update).
    pub fn interval_at_age(&self, age: Duration) -> Duration {
        let minutes = age.num_minutes();
        let band = self
            .bands
            .iter()
            .find(|b| b.until_minutes.is_none_or(|until| minutes < until))
            .or(self.bands.last())
            .expect("validated: at least one band");
        Duration::minutes(band.every_minutes)
    }
    pub fn reminder_before(&self) -> Duration {
        Duration::minutes(self.reminder_before_minutes)
    }
    pub fn final_summary_after(&self) -> Duration {
        Duration::minutes(self.final_summary_after_minutes)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Templates {
    pub declaration: String,
    pub automatic_update: String,
    pub no_change: String,
    pub reminder: String,
    pub resolution: String,
    pub final_summary: String,
}

/// Fill `{name}` placeholders; unknown ones stay as written so a typo is visible, not silent.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let key = &after[..end];
                match values.iter().find(|(k, _)| *k == key) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(key);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.trim_end().to_string()
}

impl Runbook {
    pub fn embedded() -> Runbook {
        Runbook::from_toml(DEFAULT_RUNBOOK).expect("the embedded runbook is valid (tested)")
    }

    pub fn from_toml(text: &str) -> Result<Runbook, RunbookError> {
        let runbook: Runbook = toml::from_str(text)?;
        runbook.validate()?;
        Ok(runbook)
    }

    fn validate(&self) -> Result<(), RunbookError> {
        let invalid = |m: String| Err(RunbookError::Invalid(m));
        if self.severities.is_empty() || self.types.is_empty() {
            return invalid("needs at least one severity and one incident type".into());
        }
        let mut ids = HashSet::new();
        for id in self
            .sections
            .iter()
            .flat_map(|s| s.steps.iter().map(|st| &st.id))
            .chain(self.checklist.iter().map(|c| &c.id))
            .chain(
                self.checklist
                    .iter()
                    .flat_map(|c| c.items.iter().map(|i| &i.id)),
            )
        {
            if !ids.insert(id.as_str()) {
                return invalid(format!("id {id} is used twice"));
            }
        }
        for t in &self.types {
            for s in &t.sections {
                if self.section(s).is_none() {
                    return invalid(format!("type {} names unknown section {s}", t.id));
                }
            }
        }
        let bands = &self.cadence.bands;
        if bands.is_empty() || bands.last().is_some_and(|b| b.until_minutes.is_some()) {
            return invalid("cadence needs bands, the last one without until_minutes".into());
        }
        if bands.iter().any(|b| b.every_minutes <= 0) {
            return invalid("cadence intervals must be positive".into());
        }
        let c = &self.cadence;
        if c.final_summary_after_minutes < 0
            || c.final_summary_after_minutes > c.final_summary_within_minutes
        {
            return invalid(
                "final_summary_after_minutes must be within final_summary_within_minutes".into(),
            );
        }
        Ok(())
    }

    pub fn severity(&self, id: &str) -> Option<&SeverityDef> {
        self.severities
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(id))
    }

    pub fn incident_type(&self, id: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.id.eq_ignore_ascii_case(id))
    }

    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }

    /// The steps of the recovery path for an incident type, in order.
    pub fn path(&self, type_id: &str) -> impl Iterator<Item = (&Section, &Step)> {
        self.incident_type(type_id)
            .into_iter()
            .flat_map(|t| t.sections.iter())
            .filter_map(|s| self.section(s))
            .flat_map(|s| s.steps.iter().map(move |st| (s, st)))
    }

    /// Whether the recovery path of this incident type contains a step carried out by `action`.
    pub fn path_allows(&self, type_id: &str, action: Action) -> bool {
        self.path(type_id).any(|(_, st)| st.action == Some(action))
    }

    /// The section of the path (if any) that holds `action`, for messages.
    pub fn step_for(&self, type_id: &str, action: Action) -> Option<&Step> {
        self.path(type_id)
            .map(|(_, st)| st)
            .find(|st| st.action == Some(action))
    }

    pub fn checklist_item(&self, id: &str) -> Option<(&ChecklistSection, &ChecklistItem)> {
        self.checklist
            .iter()
            .flat_map(|s| s.items.iter().map(move |i| (s, i)))
            .find(|(_, i)| i.id == id)
    }

    pub fn step(&self, id: &str) -> Option<(&Section, &Step)> {
        self.sections
            .iter()
            .flat_map(|s| s.steps.iter().map(move |st| (s, st)))
            .find(|(_, st)| st.id == id)
    }

    pub fn checklist_items(&self) -> impl Iterator<Item = (&ChecklistSection, &ChecklistItem)> {
        self.checklist
            .iter()
            .flat_map(|s| s.items.iter().map(move |i| (s, i)))
    }

    pub fn type_labels(&self) -> Vec<&str> {
        self.types.iter().map(|t| t.id.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_runbook_loads_with_sop_numbering() {
        let rb = Runbook::embedded();
        assert_eq!(rb.severities.len(), 4);
        assert!(rb.step("6.3.1").is_some());
        assert!(rb.step("8.2.2").is_some());
        assert!(rb.checklist_item("9.3.2").is_some());
        let (section, item) = rb.checklist_item("9.5.1").unwrap();
        assert!(!section.required && !item.if_applicable);
        let path: Vec<_> = rb.path("combined").map(|(s, _)| s.id.as_str()).collect();
        assert_eq!(path.first(), Some(&"5"));
        assert!(path.contains(&"6") && path.contains(&"8") && !path.contains(&"7"));
    }

    #[test]
    fn recovery_paths_allow_only_their_actions() {
        let rb = Runbook::embedded();
        assert!(rb.path_allows("data", Action::Pitr));
        assert!(!rb.path_allows("infra", Action::Pitr));
        assert!(rb.path_allows("infra", Action::InfraRestore));
        assert!(rb.path_allows("infra", Action::RestoreLatest));
        assert!(!rb.path_allows("data", Action::InfraRestore));
        assert!(rb.path_allows("combined", Action::InfraRestore));
        assert!(rb.path_allows("combined", Action::Pitr));
        assert!(rb.path_allows("data", Action::Freeze));
    }

    #[test]
    fn duplicate_ids_and_bad_cadence_are_rejected() {
        let dup = DEFAULT_RUNBOOK.replace("id = \"9.1.2\"", "id = \"9.1.1\"");
        assert!(
            matches!(Runbook::from_toml(&dup), Err(RunbookError::Invalid(m)) if m.contains("9.1.1"))
        );
        let bad = DEFAULT_RUNBOOK.replace(
            "{ every_minutes = 60 }",
            "{ until_minutes = 9, every_minutes = 60 }",
        );
        assert!(Runbook::from_toml(&bad).is_err());
        assert!(matches!(
            Runbook::from_toml("name = 1"),
            Err(RunbookError::Parse(_))
        ));
    }

    #[test]
    fn cadence_bands_are_half_open() {
        let c = Runbook::embedded().cadence;
        assert_eq!(
            c.interval_at_age(Duration::minutes(0)),
            Duration::minutes(15)
        );
        assert_eq!(
            c.interval_at_age(Duration::minutes(59)),
            Duration::minutes(15)
        );
        assert_eq!(
            c.interval_at_age(Duration::minutes(60)),
            Duration::minutes(30)
        );
        assert_eq!(
            c.interval_at_age(Duration::minutes(239)),
            Duration::minutes(30)
        );
        assert_eq!(
            c.interval_at_age(Duration::minutes(240)),
            Duration::minutes(60)
        );
    }

    #[test]
    fn fill_replaces_known_and_keeps_unknown_placeholders() {
        assert_eq!(fill("{a} and {b} {", &[("a", "x")]), "x and {b} {");
    }
}
