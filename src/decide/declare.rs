//! `/dr declare`, a drill's own incident, and `/dr impact`: opening an incident and saying what it hits.

use super::{Input, events, open};
use crate::command::{Command, TimeInput};
use crate::incident::decision::refuse;
use crate::incident::event::EventKind;
use crate::incident::{Decision, Draft, Refusal, incident_ref};

pub(super) fn drill(v: &Input, cmd: &Command) -> Result<Decision, Refusal> {
    let Input { state, ctx, .. } = *v;
    if let Some(s) = state.filter(|s| s.is_open()) {
        return refuse(format!(
            "{} is open here; drills run in a channel without an incident.",
            incident_ref(s.id)
        ));
    }
    Ok(Decision {
        events: vec![
            EventKind::Declared {
                channel: ctx.channel.to_string(),
                severity: "sev4".into(),
                incident_type: Some("data".into()),
                title: format!("DR drill: {}", cmd.verb()),
                drill: true,
            }
            .into(),
        ],
        then_retry: true,
    })
}

pub(super) fn declare(
    v: &Input,
    severity: &str,
    incident_type: &Option<String>,
    title: &str,
    services: &[String],
    since: &Option<TimeInput>,
) -> Result<Decision, Refusal> {
    let Input { state, ctx, .. } = *v;
    if let Some(s) = state.filter(|s| s.is_open()) {
        return refuse(format!(
            "{} is already open in this channel ({} {}: {}). One incident per channel: resolve it first or declare in another channel.",
            incident_ref(s.id),
            s.severity.to_uppercase(),
            s.incident_type.as_deref().unwrap_or("unclassified"),
            s.title
        ));
    }
    if ctx.runbook.severity(severity).is_none() {
        return refuse(format!("Unknown severity {severity}."));
    }
    if let Some(t) = incident_type
        && ctx.runbook.incident_type(t).is_none()
    {
        return refuse(format!("Unknown incident type {t}."));
    }
    let title = if title.trim().is_empty() {
        "untitled incident".to_string()
    } else {
        title.to_string()
    };
    let mut drafts: Vec<Draft> = vec![
        EventKind::Declared {
            channel: ctx.channel.to_string(),
            severity: severity.to_string(),
            incident_type: incident_type.clone(),
            title,
            drill: false,
        }
        .into(),
    ];
    drafts.extend(crate::features::continuity::decide::on_declare(
        services,
        since.as_ref(),
        ctx,
    )?);
    drafts.extend(crate::features::paging::on_declare(severity, ctx));
    Ok(Decision {
        events: drafts,
        then_retry: false,
    })
}

pub(super) fn impact(v: &Input, services: &[String]) -> Result<Decision, Refusal> {
    let Input { state, ctx, .. } = *v;
    let s = open(state)?;
    events(vec![crate::features::continuity::decide::impact(
        s, services, ctx,
    )?])
}
