//! The postmortem's pages and follow-ups: who was paged and what became of it, and each
//! follow-up with its ticket and the state last read back from the tracker (SOP 9.8.4).

use std::io::{self, Write};

use super::format::{Ts, md};
use crate::incident::Incident;
use crate::incident::reach::target_title;

pub(super) fn write_pages(o: &mut impl Write, inc: &Incident) -> io::Result<()> {
    let pages = &inc.reach.pages;
    if pages.is_empty() {
        return Ok(());
    }
    o.write_all(b"## Pages\n\n| target | paged at (UTC) | why | outcome | dedup key |\n|---|---|---|---|---|\n")?;
    for p in pages {
        o.write_all(b"| ")?;
        md(o, &target_title(&p.target))?;
        o.write_all(b" | ")?;
        Ts(p.requested_at).write(o)?;
        o.write_all(b" | ")?;
        md(o, &p.reason)?;
        o.write_all(b" | ")?;
        md(o, p.status.word())?;
        if let Some(detail) = &p.detail {
            o.write_all(b": ")?;
            md(o, detail)?;
        }
        o.write_all(b" | `")?;
        md(o, &p.dedup_key)?;
        o.write_all(b"` |\n")?;
    }
    o.write_all(b"\n")
}

pub(super) fn write_followups(o: &mut impl Write, inc: &Incident) -> io::Result<()> {
    let r = &inc.reach;
    o.write_all(b"## Follow-ups (SOP 9.8.4)\n\n")?;
    if r.followups.is_empty() && r.waiver.is_none() {
        return o.write_all(b"None recorded.\n\n");
    }
    if !r.followups.is_empty() {
        o.write_all(
            b"| # | ticket | state | action | owner | due |\n|---:|---|---|---|---|---|\n",
        )?;
        for f in &r.followups {
            write!(o, "| {} | ", f.number)?;
            match (&f.key, &f.url) {
                (Some(key), Some(url)) => {
                    o.write_all(b"[")?;
                    md(o, key)?;
                    o.write_all(b"](")?;
                    md(o, url)?;
                    o.write_all(b")")?;
                }
                (Some(key), None) => md(o, key)?,
                (None, _) => o.write_all(b"not filed")?,
            }
            o.write_all(b" | ")?;
            let state = match (&f.state, &f.failed, &f.key) {
                (Some(state), _, _) => state.as_str(),
                (None, Some(why), None) => why.as_str(),
                (None, _, Some(_)) => "filed",
                (None, _, None) => "filing",
            };
            md(o, state)?;
            o.write_all(b" | ")?;
            md(o, &f.text)?;
            o.write_all(b" | ")?;
            md(o, f.owner.as_deref().unwrap_or(""))?;
            o.write_all(b" | ")?;
            if let Some(due) = f.due {
                write!(o, "{due}")?;
            }
            o.write_all(b" |\n")?;
        }
    }
    if let Some(w) = &r.waiver {
        o.write_all(b"\nNo follow-up needed, recorded by ")?;
        md(o, &w.by.name)?;
        o.write_all(b" at ")?;
        Ts(w.at).write(o)?;
        o.write_all(b": ")?;
        md(o, &w.reason)?;
        o.write_all(b"\n")?;
    }
    o.write_all(b"\n")
}
