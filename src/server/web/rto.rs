//! The RTO picture: one SVG bar per affected service, and the worst margin for the list.
//!
//! A bar runs from the impact's onset to now (or the resolution) against the service's RTO
//! deadline (onset + RTO, `features::continuity::impact`). It is drawn on the server, so it
//! reads with JavaScript off; the state is also written as text and in `data-state`, never
//! by colour alone.

use std::fmt::{self, Write};

use chrono::{DateTime, TimeDelta, Utc};

use super::html::{Esc, Time, elapsed};
use crate::catalog::Continuity;
use crate::features::continuity::impact::{self, ServiceReport};
use crate::incident::Incident;

const WIDTH: i64 = 600;
const HEIGHT: i64 = 22;

/// Time left before the deadline (negative: past it), for the service closest to it.
/// `None` when no affected service has an RTO in the catalog.
pub fn worst_margin(s: &Incident, c: &Continuity, now: DateTime<Utc>) -> Option<TimeDelta> {
    let end = s.resolved_at.unwrap_or(now);
    impact::reports(s, c.catalog.as_ref())
        .iter()
        .filter_map(|r| r.deadline.map(|d| d - end))
        .min()
}

/// `1 h 05 m left`, `breached by 12 m` (or, resolved: `met with 10 m to spare`, `missed by …`).
pub fn margin_text(margin: TimeDelta, resolved: bool) -> String {
    match (margin >= TimeDelta::zero(), resolved) {
        (true, false) => format!("{} left", elapsed(margin)),
        (false, false) => format!("breached by {}", elapsed(-margin)),
        (true, true) => format!("met, {} to spare", elapsed(margin)),
        (false, true) => format!("missed by {}", elapsed(-margin)),
    }
}

/// The section of bars, or nothing when no service is affected.
pub fn bars(out: &mut String, s: &Incident, c: &Continuity, now: DateTime<Utc>) -> fmt::Result {
    let reports = impact::reports(s, c.catalog.as_ref());
    if reports.is_empty() {
        return Ok(());
    }
    write!(
        out,
        "<h2>Recovery time</h2><p class=\"muted\">Impact began {}.</p><ul class=\"rto\">",
        Time(impact::onset(s))
    )?;
    let end = s.resolved_at.unwrap_or(now);
    for r in &reports {
        bar(out, s, r, end)?;
    }
    out.push_str("</ul>");
    Ok(())
}

fn bar(out: &mut String, s: &Incident, r: &ServiceReport, end: DateTime<Utc>) -> fmt::Result {
    let name = &r.affected.name;
    let onset = impact::onset(s);
    write!(out, "<li><b>{}</b>", Esc(name))?;
    if let Some(via) = &r.affected.via {
        write!(out, " <span class=\"muted\">(through {})</span>", Esc(via))?;
    }
    let (Some(service), Some(deadline)) = (r.service, r.deadline) else {
        out.push_str(" <span class=\"muted\">— not in the service catalog: no RTO to measure against</span></li>");
        return Ok(());
    };
    let breached = end > deadline;
    let state = if breached { "breached" } else { "ok" };
    let margin = margin_text(deadline - end, s.resolved_at.is_some());
    write!(
        out,
        " <span class=\"muted\">{} tier, RTO {}</span> — <span class=\"rto-{state}\">{}</span>",
        Esc(&service.tier),
        elapsed(service.rto),
        Esc(&margin)
    )?;
    // The scale fits the later of the deadline and now, with a little room after it.
    let span = ((end.max(deadline) - onset).num_seconds() * 11 / 10).max(1);
    let x = |t: DateTime<Utc>| (t - onset).num_seconds().clamp(0, span) * WIDTH / span;
    let (now_x, deadline_x) = (x(end), x(deadline));
    write!(
        out,
        "<svg class=\"rto\" data-service=\"{service}\" data-state=\"{state}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         role=\"img\" aria-label=\"{service}: {margin}\"><title>{service}: {margin}; deadline {deadline_t}</title>\
         <rect class=\"track\" x=\"0\" y=\"4\" width=\"{WIDTH}\" height=\"14\"/>\
         <rect class=\"elapsed {state}\" x=\"0\" y=\"4\" width=\"{now_x}\" height=\"14\"/>\
         <line class=\"deadline\" x1=\"{deadline_x}\" y1=\"0\" x2=\"{deadline_x}\" y2=\"{HEIGHT}\"/></svg>",
        service = Esc(name),
        margin = Esc(&margin),
        deadline_t = deadline.format("%Y-%m-%d %H:%M:%SZ"),
    )?;
    write!(out, "<span class=\"muted\">deadline {}", Time(deadline))?;
    match r.rpo_achieved {
        Some(lost) => write!(
            out,
            "; RPO {} against {} achieved ({})",
            elapsed(service.rpo),
            elapsed(lost),
            if lost <= service.rpo { "met" } else { "missed" }
        )?,
        None => write!(
            out,
            "; RPO {} (achieved: known once a database restore succeeds)",
            elapsed(service.rpo)
        )?,
    }
    out.push_str("</span></li>");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_read_as_an_on_call_would_say_them() {
        assert_eq!(margin_text(TimeDelta::minutes(65), false), "1 h 05 m left");
        assert_eq!(
            margin_text(TimeDelta::minutes(-12), false),
            "breached by 12 m"
        );
        assert_eq!(
            margin_text(TimeDelta::minutes(10), true),
            "met, 10 m to spare"
        );
        assert_eq!(margin_text(TimeDelta::minutes(-3), true), "missed by 3 m");
    }
}
