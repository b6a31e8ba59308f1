//! CSV: one RFC 4180 row per event, then the business-impact rows.

use std::io::{self, Write};

use super::data::Data;
use super::format::{Ts, describe};
use super::{CSV_HEADER, Impact};
use crate::incident::{Event, Incident};

/// RFC 4180 CSV, one row per event; `data` holds the payload as compact JSON.
pub struct CsvWriter<W: Write> {
    out: W,
    /// Reused for each row's JSON payload, which must be quoted before it is written.
    data: Vec<u8>,
    /// Reused for each event's description.
    line: String,
}

impl<W: Write> CsvWriter<W> {
    pub fn begin(mut out: W) -> io::Result<Self> {
        out.write_all(CSV_HEADER.as_bytes())?;
        out.write_all(b"\r\n")?;
        Ok(CsvWriter {
            out,
            data: Vec::with_capacity(1024),
            line: String::new(),
        })
    }

    pub fn event(&mut self, event: &Event) -> io::Result<()> {
        let out = &mut self.out;
        write!(out, "{},", event.seq)?;
        Ts(event.recorded_at).write(out)?;
        out.write_all(b",")?;
        if let Some(t) = event.occurred_at {
            Ts(t).write(out)?;
        }
        out.write_all(b",")?;
        csv_field(out, &event.actor.platform)?;
        out.write_all(b",")?;
        csv_field(out, &event.actor.id)?;
        out.write_all(b",")?;
        csv_field(out, &event.actor.name)?;
        out.write_all(b",")?;
        out.write_all(event.kind.name().as_bytes())?;
        out.write_all(b",")?;
        csv_field(out, describe(&mut self.line, event))?;
        out.write_all(b",")?;
        self.data.clear();
        serde_json::to_writer(&mut self.data, &Data(&event.kind))?;
        let data = std::str::from_utf8(&self.data).map_err(io::Error::other)?;
        csv_field(out, data)?;
        out.write_all(b"\r\n")
    }

    /// Business-impact summary rows after the events: no sequence number or time, actor
    /// drbot, kind `revenue_at_risk` or `service_targets`.
    pub fn impact(&mut self, incident: &Incident, impact: Impact<'_>) -> io::Result<()> {
        for (kind, summary, data) in
            crate::features::continuity::view::csv_rows(incident, impact.continuity, impact.now)
        {
            let out = &mut self.out;
            write!(out, ",,,drbot,drbot,drbot,{kind},")?;
            csv_field(out, &summary)?;
            out.write_all(b",")?;
            csv_field(out, &data)?;
            out.write_all(b"\r\n")?;
        }
        Ok(())
    }

    pub fn finish(self) -> io::Result<W> {
        Ok(self.out)
    }
}

/// A field quoted only when it must be: it holds a comma, a quote, CR or LF.
fn csv_field(out: &mut impl Write, field: &str) -> io::Result<()> {
    if !field
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        return out.write_all(field.as_bytes());
    }
    out.write_all(b"\"")?;
    for (i, part) in field.split('"').enumerate() {
        if i > 0 {
            out.write_all(b"\"\"")?;
        }
        out.write_all(part.as_bytes())?;
    }
    out.write_all(b"\"")
}

/// A CSV export: the rows, then the business-impact rows of the incident folded beside them
/// (only when a catalog could make those rows say something).
pub(super) struct CsvExport<'a, W: Write> {
    csv: CsvWriter<W>,
    impact: Impact<'a>,
    fold: Fold,
}

enum Fold {
    Skipped,
    Unstarted,
    /// Boxed: one per export, and it keeps the enum as small as its empty variants.
    Folding(Box<Incident>),
}

impl<'a, W: Write> CsvExport<'a, W> {
    pub(super) fn begin(out: W, impact: Impact<'a>) -> io::Result<Self> {
        Ok(CsvExport {
            csv: CsvWriter::begin(out)?,
            impact,
            fold: match impact.continuity.catalog {
                Some(_) => Fold::Unstarted,
                None => Fold::Skipped,
            },
        })
    }

    pub(super) fn event(&mut self, event: &Event) -> io::Result<()> {
        match &mut self.fold {
            Fold::Skipped => {}
            // A timeline that does not start with its declaration has no summary rows.
            Fold::Unstarted => {
                self.fold = Incident::from_declared(event)
                    .map_or(Fold::Skipped, |state| Fold::Folding(Box::new(state)));
            }
            Fold::Folding(state) => state.apply(event),
        }
        self.csv.event(event)
    }

    pub(super) fn finish(mut self) -> io::Result<W> {
        if let Fold::Folding(state) = &self.fold {
            self.csv.impact(state, self.impact)?;
        }
        self.csv.finish()
    }
}
