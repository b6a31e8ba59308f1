//! Markdown: a postmortem draft, its sections (see `summary`) then the event table.

use std::io::{self, Write};

use super::format::{Ts, describe, md, md_actor};
use super::summary::{
    write_checklist, write_key_times, write_pitr_target, write_rto, write_summary,
    write_time_to_restore,
};
use super::{Impact, Overview};
use crate::incident::Event;
use crate::incident::incident_ref;
use crate::sop::Runbook;

/// A postmortem draft: summary, key times, time to restore, RTO, PITR target, the §9
/// checklist, then every event as a table row.
pub struct MarkdownWriter<W: Write> {
    pub(super) out: W,
    /// Reused for each event's description.
    line: String,
}

impl<W: Write> MarkdownWriter<W> {
    /// The rows alone, for output whose header was written elsewhere.
    pub(super) fn rows(out: W) -> Self {
        MarkdownWriter {
            out,
            line: String::new(),
        }
    }

    /// Write everything that comes before the event table, and the table's header.
    pub fn begin(out: W, overview: &Overview, runbook: &Runbook) -> io::Result<Self> {
        MarkdownWriter::begin_with(out, overview, runbook, Impact::NONE)
    }

    /// [`MarkdownWriter::begin`] with the business-impact section after the RTO.
    pub fn begin_with(
        mut out: W,
        overview: &Overview,
        runbook: &Runbook,
        impact: Impact<'_>,
    ) -> io::Result<Self> {
        let inc = &overview.incident;
        let o = &mut out;
        o.write_all(b"# ")?;
        md(o, &incident_ref(inc.id))?;
        o.write_all(b": ")?;
        md(o, &inc.title)?;
        if inc.drill {
            o.write_all(b" (DRILL)")?;
        }
        o.write_all(b"\n\n")?;
        if inc.drill {
            o.write_all(
                b"> **DRILL**: no production system was affected; this incident is excluded \
                  from RTO statistics.\n\n",
            )?;
        }
        write_summary(o, overview)?;
        write_key_times(o, inc)?;
        write_time_to_restore(o, inc, impact.continuity)?;
        write_rto(o, inc)?;
        o.write_all(
            crate::features::continuity::view::markdown(inc, impact.continuity, impact.now)
                .as_bytes(),
        )?;
        write_pitr_target(o, inc)?;
        super::reach::write_pages(o, inc)?;
        super::reach::write_followups(o, inc)?;
        write_checklist(o, inc, runbook)?;
        o.write_all(b"## Timeline\n\n| # | time (UTC) | actor | event |\n|---:|---|---|---|\n")?;
        Ok(MarkdownWriter::rows(out))
    }

    pub fn event(&mut self, event: &Event) -> io::Result<()> {
        let o = &mut self.out;
        write!(o, "| {} | ", event.seq)?;
        Ts(event.at()).write(o)?;
        if let Some(at) = event.occurred_at
            && at != event.recorded_at
        {
            o.write_all(b" (recorded ")?;
            Ts(event.recorded_at).write(o)?;
            o.write_all(b")")?;
        }
        o.write_all(b" | ")?;
        md_actor(o, &event.actor)?;
        o.write_all(b" | ")?;
        md(o, describe(&mut self.line, event))?;
        o.write_all(b" |\n")
    }

    pub fn finish(self) -> io::Result<W> {
        Ok(self.out)
    }
}
