//! JSON: a header object with the folded incident, then one event per line.

use std::io::{self, Write};

use serde::Serialize;

use super::data::Data;
use super::format::{Ts, describe, last_successful_restore, seconds, time_to_restore, ts};
use super::{Impact, JSON_SCHEMA};
use crate::incident::incident_ref;
use crate::incident::state::Operation;
use crate::incident::{Actor, Event, Incident, IncidentId, OperationKind, Outcome};

#[derive(Serialize)]
struct JsonIncident<'a> {
    id: IncidentId,
    #[serde(rename = "ref")]
    reference: String,
    channel: &'a str,
    title: &'a str,
    severity: &'a str,
    #[serde(rename = "type")]
    incident_type: Option<&'a str>,
    drill: bool,
    declared_at: Ts,
    declared_by: &'a Actor,
    classified_at: Option<Ts>,
    roles: &'a std::collections::BTreeMap<String, String>,
    resolved_at: Option<Ts>,
    resolved_by: Option<&'a Actor>,
    pitr_target: Option<Ts>,
    /// Declared → last successful restore finished; drills report it but are not counted.
    rto_seconds: Option<f64>,
    operations: Vec<JsonOperation<'a>>,
    /// Affected services with RTO and RPO achieved against their targets; revenue at risk.
    #[serde(skip_serializing_if = "Option::is_none")]
    business_impact: Option<crate::features::continuity::view::Report>,
    /// Pages sent, with their dedup keys and what became of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pages: Vec<JsonPage<'a>>,
    /// Follow-ups with their tickets and last-read states (SOP 9.8.4).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    followups: Vec<JsonFollowup<'a>>,
    /// The incident commander's reason for needing no follow-up.
    #[serde(skip_serializing_if = "Option::is_none")]
    followups_waived: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonPage<'a> {
    target: &'a str,
    dedup_key: &'a str,
    status: &'static str,
    requested_at: Ts,
    reason: &'a str,
}

#[derive(Serialize)]
struct JsonFollowup<'a> {
    number: u32,
    text: &'a str,
    owner: Option<&'a str>,
    due: Option<chrono::NaiveDate>,
    key: Option<&'a str>,
    url: Option<&'a str>,
    state: Option<&'a str>,
    done: bool,
    not_filed: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonOperation<'a> {
    id: &'a str,
    kind: OperationKind,
    object: &'a str,
    backup: Option<&'a str>,
    target: Option<Ts>,
    requested_by: &'a Actor,
    confirmed_by: &'a Actor,
    confirmed_at: Ts,
    launched_at: Option<Ts>,
    finished_at: Option<Ts>,
    outcome: Option<Outcome>,
    phase: &'a str,
    detail: Option<&'a str>,
    time_to_restore_seconds: Option<f64>,
}

impl<'a> JsonOperation<'a> {
    fn new(op: &'a Operation) -> Self {
        JsonOperation {
            id: &op.spec.id,
            kind: op.spec.kind,
            object: &op.spec.object_name,
            backup: op.backup.as_deref(),
            target: ts(op.spec.target),
            requested_by: &op.requested_by,
            confirmed_by: &op.confirmed_by,
            confirmed_at: Ts(op.confirmed_at),
            launched_at: ts(op.launched_at),
            finished_at: ts(op.finished.as_ref().map(|f| f.at)),
            outcome: op.finished.as_ref().map(|f| f.outcome),
            phase: &op.phase,
            detail: op.finished.as_ref().map(|f| f.detail.as_str()),
            time_to_restore_seconds: time_to_restore(op).map(seconds),
        }
    }
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    seq: i64,
    recorded_at: Ts,
    occurred_at: Option<Ts>,
    actor: &'a Actor,
    kind: &'static str,
    data: Data<'a>,
    summary: &'a str,
}

/// `{"schema": …, "incident": {…}, "events": [ … ]}`, one event per line.
pub struct JsonWriter<W: Write> {
    pub(super) out: W,
    first: bool,
    /// Reused for each event's description.
    line: String,
}

impl<W: Write> JsonWriter<W> {
    /// Write everything up to the opening of the `events` array.
    pub fn begin(out: W, incident: &Incident) -> io::Result<Self> {
        JsonWriter::begin_with(out, incident, Impact::NONE)
    }

    /// [`JsonWriter::begin`] with the business impact in the header.
    pub fn begin_with(mut out: W, incident: &Incident, impact: Impact<'_>) -> io::Result<Self> {
        let header = JsonIncident {
            id: incident.id,
            reference: incident_ref(incident.id),
            channel: &incident.channel,
            title: &incident.title,
            severity: &incident.severity,
            incident_type: incident.incident_type.as_deref(),
            drill: incident.drill,
            declared_at: Ts(incident.declared_at),
            declared_by: &incident.declared_by,
            classified_at: ts(incident.classified_at),
            roles: &incident.roles,
            resolved_at: ts(incident.resolved_at),
            resolved_by: incident.resolved_by.as_ref(),
            pitr_target: ts(incident.pitr_target),
            rto_seconds: last_successful_restore(incident)
                .map(|(_, at)| seconds(at - incident.declared_at)),
            operations: incident.operations.iter().map(JsonOperation::new).collect(),
            business_impact: crate::features::continuity::view::report(
                incident,
                impact.continuity,
                impact.now,
            ),
            pages: incident
                .reach
                .pages
                .iter()
                .map(|p| JsonPage {
                    target: &p.target,
                    dedup_key: &p.dedup_key,
                    status: p.status.word(),
                    requested_at: Ts(p.requested_at),
                    reason: &p.reason,
                })
                .collect(),
            followups: incident
                .reach
                .followups
                .iter()
                .map(|f| JsonFollowup {
                    number: f.number,
                    text: &f.text,
                    owner: f.owner.as_deref(),
                    due: f.due,
                    key: f.key.as_deref(),
                    url: f.url.as_deref(),
                    state: f.state.as_deref(),
                    done: f.done,
                    not_filed: f.failed.as_deref(),
                })
                .collect(),
            followups_waived: incident.reach.waiver.as_ref().map(|w| w.reason.as_str()),
        };
        write!(out, "{{\"schema\":\"{JSON_SCHEMA}\",\"incident\":")?;
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b",\"events\":[")?;
        Ok(JsonWriter::rows(out))
    }

    /// The rows alone, for output whose header was written elsewhere.
    pub(super) fn rows(out: W) -> Self {
        JsonWriter {
            out,
            first: true,
            line: String::new(),
        }
    }

    pub fn event(&mut self, event: &Event) -> io::Result<()> {
        self.out
            .write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        let row = JsonEvent {
            seq: event.seq,
            recorded_at: Ts(event.recorded_at),
            occurred_at: ts(event.occurred_at),
            actor: &event.actor,
            kind: event.kind.name(),
            data: Data(&event.kind),
            summary: describe(&mut self.line, event),
        };
        serde_json::to_writer(&mut self.out, &row)?;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"\n]}\n")?;
        Ok(self.out)
    }
}
