//! `decide`: a command, the incident's state, the caller and the time in; events or a refusal
//! out. Pure: no clock, no I/O. Facts that need I/O (a backend's plan, probe results, the
//! backup report) are gathered by the caller beforehand and passed in.

mod checks;
mod declare;
mod launch;
mod lifecycle;
mod notes;
pub mod posts;
mod reports;
mod roles;

pub use launch::draft_operation;

use crate::command::Command;
use crate::features::{paging, tabletop};
use crate::incident::decision::refuse;
use crate::incident::event::EventKind;
use crate::incident::state::Incident;
use crate::incident::{Caller, Ctx, Decision, Draft, Facts, Refusal, fmt_time, incident_ref};

/// The inputs every verb's rule reads besides its own words.
#[derive(Clone, Copy)]
pub(super) struct Input<'a> {
    pub state: Option<&'a Incident>,
    pub caller: &'a Caller,
    pub ctx: &'a Ctx<'a>,
    pub facts: &'a Facts,
}

/// A decision of events that happen now.
pub(super) fn events(list: Vec<EventKind>) -> Result<Decision, Refusal> {
    Ok(Decision {
        events: list.into_iter().map(Draft::from).collect(),
        then_retry: false,
    })
}

pub(super) fn open(state: Option<&Incident>) -> Result<&Incident, Refusal> {
    match state {
        Some(s) if s.is_open() => Ok(s),
        _ => refuse(
            "There is no open incident in this channel. Open one with `/dr declare <sev1..sev4> [infra|data|combined] <title>`.",
        ),
    }
}

pub(super) fn not_halted(s: &Incident) -> Result<(), Refusal> {
    match &s.halt {
        Some(h) => refuse(format!(
            "{} is HALTED (escalated by {} at {}: {}). Every action is refused until the incident commander runs `/dr resume`.",
            incident_ref(s.id),
            h.by.name,
            fmt_time(h.at),
            h.reason
        )),
        None => Ok(()),
    }
}

pub(super) fn ic_or_operator(s: &Incident, caller: &Caller, what: &str) -> Result<(), Refusal> {
    if caller.operator || s.is_ic(&caller.actor) {
        Ok(())
    } else {
        refuse(format!(
            "Only the incident commander or an operator can {what}. Ask <@{}>.",
            s.role("ic").unwrap_or("?")
        ))
    }
}

/// Decide what a command does to the incident.
pub fn decide(
    state: Option<&Incident>,
    cmd: &Command,
    caller: &Caller,
    ctx: &Ctx,
    facts: &Facts,
) -> Result<Decision, Refusal> {
    let v = Input {
        state,
        caller,
        ctx,
        facts,
    };
    if let Some(spec) = draft_operation(state, cmd, caller, ctx)? {
        let s = open(state)?;
        return launch::preview(s, cmd, spec, ctx, facts);
    }
    match cmd {
        Command::DrillLatest { .. } | Command::DrillPitr { .. } => declare::drill(&v, cmd),
        Command::Declare {
            severity,
            incident_type,
            title,
            services,
            since,
        } => declare::declare(&v, severity, incident_type, title, services, since),
        Command::Impact { services } => declare::impact(&v, services),
        Command::Severity(to) => roles::severity(&v, to),
        Command::Type(to) => roles::incident_type(&v, to),
        Command::Role { role, user } => roles::role(&v, role, user),
        Command::Check { item, note } => checks::check(&v, item, note),
        Command::Uncheck { item } => checks::uncheck(&v, item),
        Command::NotApplicable { item, reason } => checks::not_applicable(&v, item, reason),
        Command::Update { text } => notes::update(&v, text),
        Command::Note { text, at } => notes::note(&v, text, at),
        Command::Escalate { reason } => lifecycle::escalate(&v, reason),
        Command::Resume => lifecycle::resume(&v),
        Command::Resolve => lifecycle::resolve(&v),
        Command::Confirm { id } => launch::confirm(state, id, caller, ctx),
        Command::Cancel { id } => launch::cancel(&v, id),
        Command::Backups => reports::backups(&v),
        Command::Verify { .. } => reports::verify(&v),
        Command::Status
        | Command::Path
        | Command::Checklist { .. }
        | Command::Timeline
        | Command::TimelineExport(_)
        | Command::Help { .. }
        | Command::Drills => Ok(Decision::default()),
        Command::TabletopStart { .. } | Command::TabletopEnd => {
            tabletop::decide(state, cmd, ctx, facts)
        }
        // Also on a resolved incident: customers hear "Resolved" after the incident closes.
        Command::Page { target, message } => {
            paging::page(open(state)?, caller, ctx, target, message.as_deref())
        }
        Command::PageResolve { target } => paging::page_resolve(open(state)?, caller, ctx, target),
        Command::Followup { text, owner, due } => {
            paging::followup(open(state)?, ctx, text, owner.as_deref(), *due)
        }
        Command::FollowupWaive { reason } => paging::waive(open(state)?, caller, reason),
        Command::Oncall { .. } | Command::Followups => Ok(Decision::default()),
        Command::Comms(c) => match state {
            Some(s) => events(crate::features::comms::decide(
                s,
                c,
                caller,
                &crate::features::comms::CommsCtx {
                    now: ctx.now,
                    status_page: ctx.policy.status_page,
                    default_cluster: ctx.policy.default_cluster.as_deref(),
                },
            )?),
            None => open(state).map(|_| Decision::default()),
        },
        Command::Freeze { .. }
        | Command::Unfreeze
        | Command::InfraRestore { .. }
        | Command::RestoreLatest { .. }
        | Command::Pitr { .. } => unreachable!("launch verbs return from draft_operation"),
    }
}

#[cfg(test)]
mod tests;
