//! `/incidents`: open incidents first, then the most recent resolved ones.

use std::fmt::{self, Write};

use chrono::{DateTime, Utc};

use super::html::{Esc, Time, elapsed};
use super::rto;
use crate::app::{App, AppError};
use crate::decide::posts;
use crate::features::cadence;
use crate::incident::{Incident, incident_ref};

/// Resolved incidents listed at most (newest first); open ones are always all listed.
const RECENT: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateFilter {
    Open,
    Resolved,
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filter {
    pub state: StateFilter,
    /// `Some(true)`: drills only; `Some(false)`: real incidents only.
    pub drill: Option<bool>,
}

pub const ACCEPTED: &str =
    "state=open|resolved|all and drill=yes|no, e.g. /incidents?state=open&drill=no";

impl Filter {
    /// The query string, or why it is refused.
    pub fn parse(query: Option<&str>) -> Result<Filter, String> {
        let mut f = Filter {
            state: StateFilter::All,
            drill: None,
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|_| "unreadable query".to_string())?;
        for (key, value) in pairs {
            match (key.as_str(), value.as_str()) {
                ("state", "open") => f.state = StateFilter::Open,
                ("state", "resolved") => f.state = StateFilter::Resolved,
                ("state", "all") => f.state = StateFilter::All,
                ("drill", "yes") => f.drill = Some(true),
                ("drill", "no") => f.drill = Some(false),
                _ => return Err(format!("{key}={value} is not a filter")),
            }
        }
        Ok(f)
    }

    fn keeps(&self, s: &Incident) -> bool {
        let state = match self.state {
            StateFilter::Open => s.is_open(),
            StateFilter::Resolved => !s.is_open(),
            StateFilter::All => true,
        };
        state && self.drill.is_none_or(|d| d == s.drill)
    }
}

/// Every incident the filter keeps: open first, then resolved, newest first in each.
pub async fn incidents(app: &App, filter: Filter) -> Result<Vec<Incident>, AppError> {
    let (mut open, mut resolved): (Vec<Incident>, Vec<Incident>) = app
        .stored_states()
        .await?
        .into_iter()
        .filter(|s| filter.keeps(s))
        .partition(Incident::is_open);
    resolved.truncate(RECENT);
    open.append(&mut resolved);
    Ok(open)
}

pub fn render(out: &mut String, app: &App, list: &[Incident], now: DateTime<Utc>) -> fmt::Result {
    out.push_str(
        "<h1>Incidents</h1><p class=\"muted\">Filter: <a href=\"/incidents?state=open\">open</a> · \
         <a href=\"/incidents?state=resolved\">resolved</a> · <a href=\"/incidents\">all</a> · \
         <a href=\"/incidents?drill=no\">real only</a> · <a href=\"/incidents?drill=yes\">drills</a></p>",
    );
    if list.is_empty() {
        out.push_str("<p>No incidents.</p>");
        return Ok(());
    }
    out.push_str(
        "<table><thead><tr><th>id</th><th>title</th><th>severity</th><th>type</th><th>phase</th>\
         <th>declared</th><th>commander</th><th>elapsed</th><th>worst RTO margin</th><th>next update due</th></tr></thead><tbody>",
    );
    for s in list {
        let id = incident_ref(s.id);
        let until = s.resolved_at.unwrap_or(now);
        write!(
            out,
            "<tr><td class=\"id\"><a href=\"/incidents/{id}\">{id}</a></td><td>{}{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>",
            Esc(&s.title),
            if s.drill {
                " <span class=\"badge\">DRILL</span>"
            } else {
                ""
            },
            Esc(&s.severity.to_uppercase()),
            Esc(s.incident_type.as_deref().unwrap_or("unclassified")),
            Esc(&posts::phase(s)),
            Time(s.declared_at),
            Esc(s.role("ic").unwrap_or("(unassigned)")),
            elapsed(until - s.declared_at),
            match rto::worst_margin(s, &app.continuity, now) {
                Some(m) => format!(
                    "<span class=\"rto-{}\">{}</span>",
                    if m < chrono::TimeDelta::zero() {
                        "breached"
                    } else {
                        "ok"
                    },
                    Esc(&rto::margin_text(m, !s.is_open()))
                ),
                None => "<span class=\"muted\">–</span>".to_string(),
            },
        )?;
        match cadence::next_due(s, &app.runbook.cadence).filter(|_| s.is_open()) {
            Some(due) => write!(out, "{}", Time(due))?,
            None => out.push_str("<span class=\"muted\">–</span>"),
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_read_strictly() {
        let f = Filter::parse(Some("state=open&drill=no")).unwrap();
        assert_eq!(f.state, StateFilter::Open);
        assert_eq!(f.drill, Some(false));
        assert_eq!(Filter::parse(None).unwrap().state, StateFilter::All);
        for bad in ["state=closed", "drill=maybe", "sort=id", "state"] {
            assert!(Filter::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
