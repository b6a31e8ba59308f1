//! `/dr severity`, `/dr type`, `/dr role`: classifying the incident and naming who does what.

use super::{Input, events, ic_or_operator, open};
use crate::command::Role;
use crate::incident::decision::refuse;
use crate::incident::event::EventKind;
use crate::incident::{Decision, Refusal, incident_ref};

pub(super) fn severity(v: &Input, to: &str) -> Result<Decision, Refusal> {
    let Input {
        state, caller, ctx, ..
    } = *v;
    let s = open(state)?;
    ic_or_operator(s, caller, "change the severity")?;
    if ctx.runbook.severity(to).is_none() {
        return refuse(format!("Unknown severity {to}."));
    }
    if s.severity == *to {
        return refuse(format!(
            "{} is already {}.",
            incident_ref(s.id),
            to.to_uppercase()
        ));
    }
    let mut list = vec![EventKind::SeverityChanged {
        from: s.severity.clone(),
        to: to.to_string(),
    }];
    list.extend(crate::features::paging::on_severity(s, to, ctx));
    events(list)
}

pub(super) fn incident_type(v: &Input, to: &str) -> Result<Decision, Refusal> {
    let Input {
        state, caller, ctx, ..
    } = *v;
    let s = open(state)?;
    ic_or_operator(s, caller, "classify the incident")?;
    if s.drill {
        return refuse("A drill incident keeps its type.");
    }
    if ctx.runbook.incident_type(to).is_none() {
        return refuse(format!("Unknown incident type {to}."));
    }
    if s.incident_type.as_deref() == Some(to) {
        return refuse(format!(
            "{} is already classified as {to}.",
            incident_ref(s.id)
        ));
    }
    events(vec![EventKind::Classified {
        from: s.incident_type.clone(),
        to: to.to_string(),
    }])
}

pub(super) fn role(v: &Input, role: &Role, user: &str) -> Result<Decision, Refusal> {
    let Input { state, caller, .. } = *v;
    let s = open(state)?;
    ic_or_operator(s, caller, "assign roles")?;
    if s.role(role.id()) == Some(user) {
        return refuse(format!("<@{user}> already holds {}.", role.id()));
    }
    events(vec![EventKind::RoleAssigned {
        role: role.id().into(),
        user: user.to_string(),
    }])
}
