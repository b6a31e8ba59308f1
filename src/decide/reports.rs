//! `/dr backups` and `/dr verify`: recording what the caller gathered from the cluster.

use super::{Input, events, open};
use crate::incident::decision::refuse;
use crate::incident::event::EventKind;
use crate::incident::{Decision, Refusal};

pub(super) fn backups(v: &Input) -> Result<Decision, Refusal> {
    let Input { facts, .. } = *v;
    // Reached only when the action checks passed (draft_operation returned None).
    let Some((ok, report)) = &facts.backups else {
        return refuse("The backup report is unavailable.");
    };
    events(vec![EventKind::BackupsChecked {
        backend: facts.backend.clone(),
        ok: *ok,
        report: report.clone(),
    }])
}

pub(super) fn verify(v: &Input) -> Result<Decision, Refusal> {
    let Input { state, facts, .. } = *v;
    open(state)?;
    if facts.probes.is_empty() {
        return refuse("No automatic probes apply to that section.");
    }
    events(
        facts
            .probes
            .iter()
            .map(|(item, probe, passed, evidence)| EventKind::ProbeRecorded {
                item: item.clone(),
                probe: probe.clone(),
                passed: *passed,
                evidence: evidence.clone(),
            })
            .collect(),
    )
}
