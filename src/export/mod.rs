//! Timeline export: a postmortem-ready Markdown document, a JSON document and a CSV table.
//!
//! Timelines can be very long (automatic progress events, months-long incidents), so nothing
//! here holds the events in memory: the incident state is folded in a first streaming pass
//! over the store, and the rows are written in a second one. The writers are synchronous and
//! take one event at a time, so they can be fed from the store or from a slice alike.

use std::io::{self, BufWriter, Write};
use std::pin::pin;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use crate::command::ExportFormat;
use crate::incident::incident_ref;
use crate::incident::{Event, IncidentId};
use crate::sop::Runbook;
use crate::store::{Store, StoreError};

mod csv;
mod data;
mod format;
mod json;
mod markdown;
mod overview;
mod reach;
mod summary;
#[cfg(test)]
mod tests;

use csv::CsvExport;
pub use csv::CsvWriter;
pub use json::JsonWriter;
pub use markdown::MarkdownWriter;
pub use overview::Overview;

/// Version of the JSON document; bump it when a field changes meaning or disappears.
pub const JSON_SCHEMA: &str = "drbot.timeline/v1";

pub const CSV_HEADER: &str =
    "seq,recorded_at,occurred_at,actor_platform,actor_id,actor_name,kind,summary,data";

/// Large enough that row-sized writes rarely reach the underlying file.
const BUFFER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no such incident: {}", incident_ref(*.0))]
    NoSuchIncident(IncidentId),
    /// A timeline always starts with its declaration; anything else is corrupt data.
    #[error("the timeline does not start with a declaration")]
    NotDeclared,
    #[error("cannot read the timeline: {0}")]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Io(#[from] io::Error),
}

/// What the business-impact parts of an export need: the catalog and plan, and the time an
/// open incident's revenue at risk is counted up to.
#[derive(Clone, Copy)]
pub struct Impact<'a> {
    pub continuity: &'a crate::catalog::Continuity,
    pub now: DateTime<Utc>,
}

impl Impact<'static> {
    /// No catalog and no plan: the export without business impact.
    const NONE: Impact<'static> = Impact {
        continuity: &crate::catalog::Continuity {
            catalog: None,
            plan: None,
            clusters: std::collections::BTreeMap::new(),
        },
        now: DateTime::<Utc>::MIN_UTC,
    };
}

/// Export the whole timeline of `incident` to `out`, streaming from the store.
///
/// One read of the timeline: Markdown and JSON fold it for the header while their rows go
/// to a temporary file, copied after the header, so the header and the rows always agree.
pub async fn export<W: Write>(
    store: &Store,
    incident: IncidentId,
    format: ExportFormat,
    runbook: &Runbook,
    out: W,
) -> Result<(), ExportError> {
    export_with(store, incident, format, runbook, Impact::NONE, out).await
}

/// [`export`] with the business impact (revenue at risk, RTO and RPO achieved per affected
/// service). CSV gets it as summary rows after the events, folded while streaming.
pub async fn export_with<W: Write>(
    store: &Store,
    incident: IncidentId,
    format: ExportFormat,
    runbook: &Runbook,
    impact: Impact<'_>,
    out: W,
) -> Result<(), ExportError> {
    let mut out = BufWriter::with_capacity(BUFFER_BYTES, out);
    match format {
        ExportFormat::Csv => {
            let mut events = pin!(store.stream_events(incident));
            // The header waits for the first row so an unknown incident writes nothing.
            let first = match events.next().await {
                Some(event) => event?,
                None => return Err(ExportError::NoSuchIncident(incident)),
            };
            let mut csv = CsvExport::begin(&mut out, impact)?;
            csv.event(&first)?;
            while let Some(event) = events.next().await {
                csv.event(&event?)?;
            }
            csv.finish()?;
        }
        ExportFormat::Markdown | ExportFormat::Json => {
            // The header needs the whole incident, and the rows come after it. One read of
            // the store folds the incident and writes the rows, already formatted, to a
            // local file; then the header is written and the rows copied after it.
            let spill = Spill::create()?;
            let overview = fold_and_render(store, incident, format, &spill).await?;
            write_header(format, &mut out, &overview, runbook, impact)?;
            io::copy(&mut std::fs::File::open(&spill.path)?, &mut out)?;
            write_footer(format, &mut out)?;
        }
    }
    out.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

/// A temporary file removed when dropped, also on error.
struct Spill {
    path: std::path::PathBuf,
}

impl Spill {
    fn create() -> io::Result<Spill> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "drbot-export-{}-{}.jsonl",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Spill { path })
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The incident state and what the header needs beyond it, with every event's row written
/// to `spill` as the export will show it.
async fn fold_and_render(
    store: &Store,
    incident: IncidentId,
    format: ExportFormat,
    spill: &Spill,
) -> Result<Overview, ExportError> {
    let file = BufWriter::with_capacity(
        BUFFER_BYTES,
        std::fs::OpenOptions::new().write(true).open(&spill.path)?,
    );
    let mut rows = Rows::new(format, file);
    let mut events = pin!(store.stream_events(incident));
    let first = match events.next().await {
        Some(event) => event?,
        None => return Err(ExportError::NoSuchIncident(incident)),
    };
    let mut overview = Overview::start(&first).ok_or(ExportError::NotDeclared)?;
    rows.event(&first)?;
    while let Some(event) = events.next().await {
        let event = event?;
        overview.apply(&event);
        rows.event(&event)?;
    }
    rows.into_inner().flush()?;
    Ok(overview)
}

/// The row writer of a format whose header comes first but needs every event.
enum Rows<W: Write> {
    Markdown(MarkdownWriter<W>),
    Json(JsonWriter<W>),
}

impl<W: Write> Rows<W> {
    /// The rows alone: [`write_header`] comes before them, [`write_footer`] after.
    fn new(format: ExportFormat, out: W) -> Self {
        match format {
            ExportFormat::Json => Rows::Json(JsonWriter::rows(out)),
            _ => Rows::Markdown(MarkdownWriter::rows(out)),
        }
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        match self {
            Rows::Markdown(w) => w.event(event),
            Rows::Json(w) => w.event(event),
        }
    }

    fn into_inner(self) -> W {
        match self {
            Rows::Markdown(w) => w.out,
            Rows::Json(w) => w.out,
        }
    }
}

/// Everything before the rows of a Markdown or JSON export.
fn write_header(
    format: ExportFormat,
    out: &mut impl Write,
    overview: &Overview,
    runbook: &Runbook,
    impact: Impact<'_>,
) -> io::Result<()> {
    match format {
        ExportFormat::Json => JsonWriter::begin_with(out, &overview.incident, impact).map(drop),
        _ => MarkdownWriter::begin_with(out, overview, runbook, impact).map(drop),
    }
}

/// Everything after the rows: JSON closes its array and object.
fn write_footer(format: ExportFormat, out: &mut impl Write) -> io::Result<()> {
    match format {
        ExportFormat::Json => JsonWriter::rows(out).finish().map(drop),
        _ => Ok(()),
    }
}

/// Export a timeline already in memory (tests, small incidents); same output as [`export`].
pub fn write_timeline<W: Write>(
    events: &[Event],
    format: ExportFormat,
    runbook: &Runbook,
    out: W,
) -> Result<(), ExportError> {
    write_timeline_with(events, format, runbook, Impact::NONE, out)
}

/// [`write_timeline`] with the business impact; same output as [`export_with`].
pub fn write_timeline_with<W: Write>(
    events: &[Event],
    format: ExportFormat,
    runbook: &Runbook,
    impact: Impact<'_>,
    out: W,
) -> Result<(), ExportError> {
    let mut out = BufWriter::with_capacity(BUFFER_BYTES, out);
    match format {
        ExportFormat::Csv => {
            let mut csv = CsvExport::begin(&mut out, impact)?;
            for event in events {
                csv.event(event)?;
            }
            csv.finish()?;
        }
        ExportFormat::Markdown | ExportFormat::Json => {
            let overview = Overview::from_events(events).ok_or(ExportError::NotDeclared)?;
            write_header(format, &mut out, &overview, runbook, impact)?;
            let mut rows = Rows::new(format, &mut out);
            for event in events {
                rows.event(event)?;
            }
            write_footer(format, rows.into_inner())?;
        }
    }
    out.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}
