//! The incident page's pages and follow-ups: who was paged and what became of it, and each
//! follow-up with its ticket (a link only when the tracker gave an http(s) address).

use std::fmt::{self, Write};

use super::html::{Esc, Time};
use crate::incident::Incident;
use crate::incident::reach::target_title;

pub fn pages(out: &mut String, s: &Incident) -> fmt::Result {
    if s.reach.pages.is_empty() {
        return Ok(());
    }
    out.push_str(
        "<h2>Pages</h2><table><thead><tr><th>target</th><th>paged</th><th>why</th>\
         <th>outcome</th></tr></thead><tbody>",
    );
    for p in &s.reach.pages {
        write!(
            out,
            "<tr data-page=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}",
            Esc(&p.target),
            Esc(&target_title(&p.target)),
            Time(p.requested_at),
            Esc(&p.reason),
            Esc(p.status.word()),
        )?;
        if let Some(detail) = &p.detail {
            write!(out, ": {}", Esc(detail))?;
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>");
    Ok(())
}

pub fn followups(out: &mut String, s: &Incident) -> fmt::Result {
    let r = &s.reach;
    if r.followups.is_empty() && r.waiver.is_none() {
        return Ok(());
    }
    out.push_str("<h2>Follow-ups</h2><ul>");
    for f in &r.followups {
        write!(out, "<li data-followup=\"{}\">#{} ", f.number, f.number)?;
        match (&f.key, &f.url) {
            (Some(key), Some(url)) if url.starts_with("https://") || url.starts_with("http://") => {
                write!(out, "<a href=\"{}\">{}</a> ", Esc(url), Esc(key))?
            }
            (Some(key), _) => write!(out, "{} ", Esc(key))?,
            (None, _) => {}
        }
        let state = match (&f.state, &f.failed, &f.key) {
            (Some(state), _, _) => state.as_str(),
            (None, Some(why), None) => why.as_str(),
            (None, _, Some(_)) => "filed",
            (None, _, None) => "filing",
        };
        write!(out, "[{}] {}", Esc(state), Esc(&f.text))?;
        if let Some(owner) = &f.owner {
            write!(out, " — owner {}", Esc(owner))?;
        }
        if let Some(due) = f.due {
            write!(out, " — due {due}")?;
        }
        out.push_str("</li>");
    }
    if let Some(w) = &r.waiver {
        write!(
            out,
            "<li>No follow-up needed ({}, {}): {}</li>",
            Esc(&w.by.name),
            Time(w.at),
            Esc(&w.reason)
        )?;
    }
    out.push_str("</ul>");
    Ok(())
}
