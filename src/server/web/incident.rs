//! `/incidents/{id}`: the incident as it stands and the latest page of its timeline.

use std::fmt::{self, Write};

use chrono::{DateTime, Utc};

use super::html::{Esc, Time, elapsed};
use super::rto;
use crate::app::{App, AppError};
use crate::decide::posts;
use crate::features::checklist::{self, ItemState};
use crate::features::{cadence, continuity};
use crate::incident::{Event, Incident, IncidentId, Outcome, incident_ref};

/// Timeline events on one page; older ones are a link away.
pub const PAGE: usize = 500;

/// The incident as the store holds it, and one page of its timeline.
pub struct Loaded {
    pub state: Incident,
    /// Up to [`PAGE`] events before `before` (or the latest), oldest first.
    pub events: Vec<Event>,
    /// Whether older events than those on the page exist.
    pub older: bool,
    /// Whether this is the latest page, which live updates extend.
    pub latest: bool,
}

/// The remembered fold (brought up to date) and one page read by its own query: a long
/// timeline is never read whole for a page.
pub async fn load(
    app: &App,
    id: IncidentId,
    before: Option<i64>,
) -> Result<Option<Loaded>, AppError> {
    let Some(state) = app.stored_state(id, None).await? else {
        return Ok(None);
    };
    let mut events = app.store.events_before(id, before, PAGE + 1).await?;
    let older = events.len() > PAGE;
    if older {
        events.remove(0);
    }
    Ok(Some(Loaded {
        latest: before.is_none_or(|b| b > state.seq),
        state,
        events,
        older,
    }))
}

pub fn render(out: &mut String, app: &App, page: &Loaded, now: DateTime<Utc>) -> fmt::Result {
    let s = &page.state;
    let id = incident_ref(s.id);
    write!(
        out,
        "<h1>{id}: {}{}</h1>",
        Esc(&s.title),
        if s.drill {
            " <span class=\"badge\">DRILL</span>"
        } else {
            ""
        }
    )?;
    panels(out, app, s, now)?;
    timeline(out, &id, page)?;
    write!(
        out,
        "<p>Export: <a href=\"/incidents/{id}/export.md\">Markdown</a> · \
         <a href=\"/incidents/{id}/export.json\">JSON</a> · <a href=\"/incidents/{id}/export.csv\">CSV</a></p>"
    )
}

/// Everything above the timeline that an event can change, in one element the live stream
/// replaces whole (`event: panel`).
pub fn panels(out: &mut String, app: &App, s: &Incident, now: DateTime<Utc>) -> fmt::Result {
    out.push_str("<div id=\"live\">");
    header(out, s, now)?;
    rto::bars(out, s, &app.continuity, now)?;
    impact(out, app, s, now)?;
    operations(out, s)?;
    super::reach::pages(out, s)?;
    super::reach::followups(out, s)?;
    checklist_section(out, app, s)?;
    cadence_section(out, app, s)?;
    comms(out, s)?;
    out.push_str("</div>");
    Ok(())
}

fn header(out: &mut String, s: &Incident, now: DateTime<Utc>) -> fmt::Result {
    write!(
        out,
        "<dl><dt>severity</dt><dd>{}</dd><dt>type</dt><dd>{}</dd><dt>phase</dt><dd>{}</dd>\
         <dt>declared</dt><dd>{} by {}</dd>",
        Esc(&s.severity.to_uppercase()),
        Esc(s.incident_type.as_deref().unwrap_or("unclassified")),
        Esc(&posts::phase(s)),
        Time(s.declared_at),
        Esc(&s.declared_by.name),
    )?;
    match s.resolved_at {
        Some(at) => write!(
            out,
            "<dt>resolved</dt><dd>{} (after {})</dd>",
            Time(at),
            elapsed(at - s.declared_at)
        )?,
        None => write!(
            out,
            "<dt>elapsed</dt><dd>{}</dd>",
            elapsed(now - s.declared_at)
        )?,
    }
    for (role, who) in &s.roles {
        write!(out, "<dt>{}</dt><dd>{}</dd>", Esc(role), Esc(who))?;
    }
    match &s.freeze {
        Some(f) => write!(
            out,
            "<dt>freeze</dt><dd>frozen since {} ({})</dd>",
            Time(f.since),
            Esc(&f.operation)
        )?,
        None => out.push_str("<dt>freeze</dt><dd>not frozen</dd>"),
    }
    if let Some(h) = &s.halt {
        write!(
            out,
            "<dt>halted</dt><dd class=\"halted\">HALTED {} by {}: {}</dd>",
            Time(h.at),
            Esc(&h.by.name),
            Esc(&h.reason)
        )?;
    }
    out.push_str("</dl>");
    Ok(())
}

fn impact(out: &mut String, app: &App, s: &Incident, now: DateTime<Utc>) -> fmt::Result {
    let lines = continuity::view::status_lines(s, &app.continuity, now, s.is_open());
    if lines.is_empty() {
        return Ok(());
    }
    out.push_str("<h2>Business impact</h2><ul>");
    for line in lines {
        write!(out, "<li>{}</li>", Esc(&line))?;
    }
    out.push_str("</ul>");
    Ok(())
}

fn operations(out: &mut String, s: &Incident) -> fmt::Result {
    if s.operations.is_empty() {
        return Ok(());
    }
    out.push_str(
        "<h2>Operations</h2><table><thead><tr><th>id</th><th>what</th><th>phase</th>\
         <th>progress</th><th>confirmed</th><th>result</th></tr></thead><tbody>",
    );
    for op in &s.operations {
        write!(
            out,
            "<tr><td class=\"id\">{}</td><td>{}",
            Esc(&op.spec.id),
            Esc(op.spec.kind.label()),
        )?;
        what(out, s, op)?;
        write!(
            out,
            "</td><td>{}</td><td><progress max=\"100\" value=\"{}\"></progress> {}%",
            Esc(&op.phase),
            op.percent,
            op.percent,
        )?;
        if op.is_running() && !op.progress.is_empty() {
            write!(
                out,
                "<br><span class=\"muted\">{}</span>",
                Esc(&op.progress)
            )?;
        }
        write!(
            out,
            "</td><td>{} by {}</td><td>",
            Time(op.confirmed_at),
            Esc(&op.confirmed_by.name),
        )?;
        match &op.finished {
            None => out.push_str("running"),
            Some(f) => write!(
                out,
                "<span class=\"{}\">{}</span> {}: {}",
                match f.outcome {
                    Outcome::Succeeded => "rto-ok",
                    Outcome::Failed => "rto-breached",
                },
                match f.outcome {
                    Outcome::Succeeded => "succeeded",
                    Outcome::Failed => "failed",
                },
                Time(f.at),
                Esc(&f.detail)
            )?,
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>");
    Ok(())
}

/// What the operation acts on: the cluster and backup, and for a PITR its target against the
/// recoverable window it was checked against at the preview.
fn what(out: &mut String, s: &Incident, op: &crate::incident::state::Operation) -> fmt::Result {
    if let Some(cluster) = &op.spec.cluster {
        write!(out, " <span class=\"mono\">{}</span>", Esc(cluster))?;
    }
    if let Some(backup) = op.backup.as_ref().or(op.spec.backup.as_ref()) {
        write!(
            out,
            "<br><span class=\"muted\">backup {}</span>",
            Esc(backup)
        )?;
    }
    if let Some(target) = op.spec.target {
        write!(out, "<br>target {}", Time(target))?;
        let window = s
            .previews
            .iter()
            .find(|p| p.spec.id == op.spec.id)
            .and_then(|p| p.plan.window);
        if let Some(w) = window {
            write!(
                out,
                "<br><span class=\"muted\">checked against the recoverable window {} – {}</span>",
                Time(w.start),
                Time(w.end)
            )?;
        }
    }
    Ok(())
}

fn checklist_section(out: &mut String, app: &App, s: &Incident) -> fmt::Result {
    out.push_str("<h2>Checklist</h2>");
    for sec in &app.runbook.checklist {
        write!(
            out,
            "<h3>§{} {} <span class=\"muted\">({})</span></h3><ul class=\"checklist\">",
            Esc(&sec.id),
            Esc(&sec.title),
            if sec.required {
                "required"
            } else {
                "if applicable"
            }
        )?;
        for item in &sec.items {
            let state = checklist::checklist_item_state(s, sec, item);
            write!(
                out,
                "<li><span class=\"mono\">{}</span> {} {}",
                state.symbol(),
                Esc(&item.id),
                Esc(&item.text)
            )?;
            match &state {
                ItemState::Open => {}
                ItemState::Done { by, at, how } => {
                    out.push_str(" <span class=\"muted\">— ");
                    if let Some(by) = by {
                        write!(out, "{} ", Esc(&by.name))?;
                    }
                    if let Some(at) = at {
                        write!(out, "{} ", Time(*at))?;
                    }
                    write!(out, "{}</span>", Esc(how))?;
                }
                ItemState::NotApplicable { by, at, reason } => write!(
                    out,
                    " <span class=\"muted\">— n/a, {} {}: {}</span>",
                    Esc(&by.name),
                    Time(*at),
                    Esc(reason)
                )?,
            }
            out.push_str("</li>");
        }
        out.push_str("</ul>");
    }
    Ok(())
}

fn cadence_section(out: &mut String, app: &App, s: &Incident) -> fmt::Result {
    out.push_str("<h2>Update cadence</h2><dl><dt>last update</dt><dd>");
    match s.last_update_at {
        Some(at) => write!(out, "{}", Time(at))?,
        None => out.push_str("none yet"),
    }
    out.push_str("</dd><dt>next due</dt><dd>");
    match cadence::next_due(s, &app.runbook.cadence).filter(|_| s.is_open()) {
        Some(at) => write!(out, "{}", Time(at))?,
        None => out.push('–'),
    }
    out.push_str("</dd></dl>");
    Ok(())
}

fn comms(out: &mut String, s: &Incident) -> fmt::Result {
    if s.comms.drafts.is_empty() {
        return Ok(());
    }
    out.push_str("<h2>Customer updates</h2>");
    for d in &s.comms.drafts {
        write!(
            out,
            "<h3>{} <span class=\"muted\">{}</span></h3>",
            Esc(&d.id),
            Esc(d.stage.word())
        )?;
        match d.published_at {
            Some(at) => write!(out, "<p>published {}</p>", Time(at))?,
            None => out.push_str("<p class=\"muted\">draft, not published</p>"),
        }
        write!(out, "<pre>{}</pre>", Esc(&d.text()))?;
    }
    Ok(())
}

fn timeline(out: &mut String, id: &str, page: &Loaded) -> fmt::Result {
    out.push_str("<h2>Timeline</h2>");
    if page.older
        && let Some(first) = page.events.first()
    {
        write!(
            out,
            "<p><a href=\"/incidents/{id}?before={}\">older events</a></p>",
            first.seq
        )?;
    }
    out.push_str("<ol class=\"timeline\" role=\"log\"");
    if page.latest {
        // The stream resumes after the last event on the page: nothing committed between
        // this render and the stream's start is missed.
        write!(
            out,
            " data-stream=\"/incidents/{id}/stream?after={}\"",
            page.state.seq
        )?;
    }
    out.push('>');
    for e in &page.events {
        event_row(out, e)?;
    }
    out.push_str("</ol>");
    if !page.latest {
        write!(out, "<p><a href=\"/incidents/{id}\">latest events</a></p>")?;
    }
    Ok(())
}

/// One timeline entry, on the page and in the stream alike.
pub fn event_row(out: &mut String, e: &Event) -> fmt::Result {
    write!(
        out,
        "<li id=\"ev-{seq}\"><a class=\"permalink\" href=\"#ev-{seq}\">#{seq}</a> {} <b>{}</b> {}</li>",
        Time(e.at()),
        Esc(&e.actor.name),
        Esc(&e.kind.describe()),
        seq = e.seq,
    )
}

/// `?before={seq}`, or why the query is refused.
pub fn parse_query(query: Option<&str>) -> Result<Option<i64>, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| "unreadable query".to_string())?;
    let mut before = None;
    for (key, value) in pairs {
        match (key.as_str(), value.parse::<i64>()) {
            ("before", Ok(seq)) if seq > 0 => before = Some(seq),
            _ => return Err(format!("{key}={value} is not accepted")),
        }
    }
    Ok(before)
}
