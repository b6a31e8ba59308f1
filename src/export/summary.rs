//! The sections of the Markdown postmortem before its timeline: summary, key times, time to
//! restore, RTO, PITR target and the SOP checklist.

use std::io::{self, Write};

use chrono::{DateTime, Utc};

use super::Overview;
use super::format::{Ts, human, last_successful_restore, outcome_word, time_to_restore};
use super::format::{md, md_actor};
use crate::command::Role;
use crate::features::checklist::{ItemState, checklist_item_state};
use crate::incident::state::Operation;
use crate::incident::{Actor, Incident, OperationKind, Outcome};
use crate::sop::{ChecklistItem, ChecklistSection, Runbook};

pub(super) fn write_summary(o: &mut impl Write, overview: &Overview) -> io::Result<()> {
    let inc = &overview.incident;
    o.write_all(b"## Summary\n\n")?;
    writeln!(o, "- **Severity:** {}", inc.severity.to_uppercase())?;
    o.write_all(b"- **Type:** ")?;
    match (&inc.incident_type, inc.classified_at) {
        (Some(t), Some(at)) => {
            md(o, t)?;
            write!(o, " (classified {})", Ts(at))?;
        }
        (Some(t), None) => md(o, t)?,
        (None, _) => o.write_all(b"unclassified")?,
    }
    o.write_all(b"\n- **Channel:** ")?;
    md(o, &inc.channel)?;
    o.write_all(b"\n- **Declared by:** ")?;
    md_actor(o, &inc.declared_by)?;
    writeln!(o, " at {}", Ts(inc.declared_at))?;
    o.write_all(b"- **Status:** ")?;
    match (inc.resolved_at, &inc.resolved_by) {
        (Some(at), Some(by)) => {
            write!(o, "resolved at {} by ", Ts(at))?;
            md_actor(o, by)?;
        }
        (Some(at), None) => write!(o, "resolved at {}", Ts(at))?,
        (None, _) => o.write_all(b"open")?,
    }
    if let Some(halt) = &inc.halt {
        o.write_all(b"; HALTED: ")?;
        md(o, &halt.reason)?;
    }
    o.write_all(b"\n- **Roles:**")?;
    if inc.roles.is_empty() {
        o.write_all(b" none")?;
    }
    // SOP order (commander first), then roles the SOP does not name.
    let mut roles: Vec<_> = inc.roles.iter().collect();
    roles.sort_by_key(|(role, _)| {
        let known = Role::parse(role);
        (known.is_none(), known)
    });
    for (i, (role, user)) in roles.into_iter().enumerate() {
        o.write_all(if i == 0 { b" " } else { b"; " })?;
        let title = match Role::parse(role) {
            Some(r) => r.title(),
            None => role,
        };
        md(o, title)?;
        o.write_all(b": ")?;
        md(o, &overview.person(user))?;
    }
    writeln!(
        o,
        "\n- **Events:** {} (seq {}–{})\n",
        overview.event_count, overview.first_seq, overview.last_seq
    )
}

pub(super) fn write_key_times(o: &mut impl Write, inc: &Incident) -> io::Result<()> {
    let mut rows: Vec<(DateTime<Utc>, String, String)> = Vec::new();
    let who = |a: &Actor| {
        if a.is_drbot() {
            "drbot".to_string()
        } else {
            format!("{} ({})", a.name, a.platform)
        }
    };
    rows.push((inc.declared_at, "Declared".into(), who(&inc.declared_by)));
    if let Some(at) = inc.classified_at {
        let t = inc.incident_type.as_deref().unwrap_or("?");
        rows.push((at, "Classified".into(), format!("as {t}")));
    }
    for op in &inc.operations {
        let name = format!("{} {}", op.spec.id, op.spec.kind.label());
        rows.push((
            op.confirmed_at,
            format!("{name} confirmed"),
            who(&op.confirmed_by),
        ));
        if let Some(at) = op.launched_at {
            rows.push((at, format!("{name} launched"), op.spec.object_name.clone()));
        }
        if let Some(f) = &op.finished {
            let what = match (op.spec.kind, f.outcome) {
                (OperationKind::Freeze, Outcome::Succeeded) => format!("Frozen ({name} finished)"),
                (OperationKind::Unfreeze, Outcome::Succeeded) => {
                    format!("Unfrozen ({name} finished)")
                }
                _ => format!("{name} finished"),
            };
            let mut detail = outcome_word(f.outcome).to_string();
            if !f.detail.is_empty() {
                detail.push_str(": ");
                detail.push_str(&f.detail);
            }
            rows.push((f.at, what, detail));
        }
    }
    if let Some(at) = inc.resolved_at {
        let by = inc.resolved_by.as_ref().map(who).unwrap_or_default();
        rows.push((at, "Resolved".into(), by));
    }
    // Stable: same-instant milestones keep their logical order (confirmed before launched).
    rows.sort_by_key(|(at, _, _)| *at);
    o.write_all(b"## Key times\n\n| milestone | time (UTC) | by / detail |\n|---|---|---|\n")?;
    for (at, what, detail) in &rows {
        o.write_all(b"| ")?;
        md(o, what)?;
        write!(o, " | {} | ", Ts(*at))?;
        md(o, detail)?;
        o.write_all(b" |\n")?;
    }
    o.write_all(b"\n")
}

pub(super) fn write_time_to_restore(
    o: &mut impl Write,
    inc: &Incident,
    continuity: &crate::catalog::Continuity,
) -> io::Result<()> {
    o.write_all(b"## Time to restore per operation\n\n")?;
    let restores: Vec<&Operation> = inc
        .operations
        .iter()
        .filter(|op| op.spec.kind.is_restore())
        .collect();
    if restores.is_empty() {
        return o.write_all(b"No restore was launched.\n\n");
    }
    o.write_all(
        b"Measured from confirmation to completion.\n\n\
          | operation | kind | object | confirmed | finished | time to restore | outcome |\n\
          |---|---|---|---|---|---:|---|\n",
    )?;
    // A drill's time to restore against the RTO target of the service whose data the
    // cluster holds (SOP §10.2 records it).
    let mut against_rto = Vec::new();
    for op in restores {
        let service = op
            .spec
            .cluster
            .as_deref()
            .and_then(|c| continuity.service_of_cluster(c));
        if inc.drill
            && let Some(service) = service
            && let Some(line) = time_to_restore(op)
                .and_then(|ttr| crate::features::drills::rto_comparison(ttr, Some(service.rto)))
        {
            let cluster = op.spec.cluster.as_deref().unwrap_or_default();
            against_rto.push((
                format!("{} ({cluster}, service {})", op.spec.id, service.name),
                line,
            ));
        }
        o.write_all(b"| ")?;
        md(o, &op.spec.id)?;
        write!(o, " | {} | ", op.spec.kind.label())?;
        md(o, &op.spec.object_name)?;
        write!(o, " | {} | ", Ts(op.confirmed_at))?;
        match (&op.finished, time_to_restore(op)) {
            (Some(f), Some(ttr)) => {
                write!(
                    o,
                    "{} | {} | {}",
                    Ts(f.at),
                    human(ttr),
                    outcome_word(f.outcome)
                )?;
                if !f.detail.is_empty() {
                    o.write_all(b": ")?;
                    md(o, &f.detail)?;
                }
            }
            _ => {
                o.write_all(b"\xe2\x80\x94 | \xe2\x80\x94 | running (")?;
                md(o, &op.phase)?;
                write!(o, ", {}%)", op.percent)?;
            }
        }
        o.write_all(b" |\n")?;
    }
    o.write_all(b"\n")?;
    if !against_rto.is_empty() {
        o.write_all(b"Drill time to restore against the RTO target:\n\n")?;
        for (id, line) in &against_rto {
            o.write_all(b"- ")?;
            md(o, id)?;
            writeln!(o, ": {line}")?;
        }
        o.write_all(b"\n")?;
    }
    Ok(())
}

pub(super) fn write_rto(o: &mut impl Write, inc: &Incident) -> io::Result<()> {
    o.write_all(b"## RTO\n\n")?;
    match last_successful_restore(inc) {
        Some((op, at)) => {
            o.write_all(b"**RTO achieved:** ")?;
            write!(
                o,
                "{} (declared {} \u{2192} ",
                human(at - inc.declared_at),
                Ts(inc.declared_at)
            )?;
            md(o, &op.spec.id)?;
            writeln!(o, " {} finished {})", op.spec.kind.label(), Ts(at))?;
        }
        None => o.write_all(b"**RTO achieved:** not achieved: no successful restore\n")?,
    }
    if inc.drill {
        o.write_all(b"\nThis was a drill: it is excluded from RTO statistics.\n")?;
    }
    o.write_all(b"\n")
}

pub(super) fn write_pitr_target(o: &mut impl Write, inc: &Incident) -> io::Result<()> {
    o.write_all(b"## PITR target\n\n")?;
    match inc.pitr_target {
        Some(t) => {
            write!(o, "**PITR target:** {}", Ts(t))?;
            let op = inc
                .operations
                .iter()
                .rfind(|op| op.spec.kind == OperationKind::Pitr && op.spec.target == Some(t));
            if let Some(op) = op {
                o.write_all(b" (")?;
                md(o, &op.spec.id)?;
                o.write_all(b", confirmed by ")?;
                md_actor(o, &op.confirmed_by)?;
                o.write_all(b")")?;
            }
            o.write_all(b"\n")?;
        }
        None => o.write_all(b"**PITR target:** none (no point-in-time restore was confirmed)\n")?,
    }
    for op in &inc.operations {
        if let (OperationKind::DrillPitr, Some(t)) = (op.spec.kind, op.spec.target) {
            o.write_all(b"\nDrill PITR target ")?;
            md(o, &op.spec.id)?;
            writeln!(o, ": {}", Ts(t))?;
        }
    }
    o.write_all(b"\n")
}

/// Items satisfied by resolving are open until the incident resolves, then done by it.
pub(super) fn item_state(
    inc: &Incident,
    section: &ChecklistSection,
    item: &ChecklistItem,
) -> ItemState {
    let state = checklist_item_state(inc, section, item);
    match (&state, item.auto.as_deref(), inc.resolved_at) {
        (ItemState::Open, Some("resolve"), Some(at)) => ItemState::Done {
            by: inc.resolved_by.clone(),
            at: Some(at),
            how: "satisfied by resolving".into(),
        },
        _ => state,
    }
}

pub(super) fn write_checklist(
    o: &mut impl Write,
    inc: &Incident,
    runbook: &Runbook,
) -> io::Result<()> {
    o.write_all(b"## Checklist (SOP \xc2\xa79)\n")?;
    let mut current: Option<&str> = None;
    for (section, item) in runbook.checklist_items() {
        if current != Some(section.id.as_str()) {
            current = Some(&section.id);
            o.write_all(b"\n### ")?;
            md(o, &section.id)?;
            o.write_all(b" ")?;
            md(o, &section.title)?;
            if !section.required {
                o.write_all(b" (if applicable)")?;
            }
            o.write_all(b"\n\n")?;
        }
        let state = item_state(inc, section, item);
        write!(o, "- {} **", state.symbol())?;
        md(o, &item.id)?;
        o.write_all(b"** ")?;
        md(o, &item.text)?;
        match &state {
            ItemState::Open => {}
            ItemState::Done { by, at, how } => {
                o.write_all(b" \xe2\x80\x94 ")?;
                match by {
                    Some(by) => md_actor(o, by)?,
                    None => o.write_all(b"automatic")?,
                }
                if let Some(at) = at {
                    write!(o, ", {}", Ts(*at))?;
                }
                if how != "checked" {
                    o.write_all(b": ")?;
                    md(o, how)?;
                }
            }
            ItemState::NotApplicable { by, at, reason } => {
                o.write_all(b" \xe2\x80\x94 n/a, ")?;
                md_actor(o, by)?;
                write!(o, ", {}: ", Ts(*at))?;
                md(o, reason)?;
            }
        }
        o.write_all(b"\n")?;
    }
    o.write_all(b"\n")
}
