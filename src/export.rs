//! Timeline export: a postmortem-ready Markdown document, a JSON document and a CSV table.
//!
//! Timelines can be very long (automatic progress events, months-long incidents), so nothing
//! here holds the events in memory: the incident state is folded in a first streaming pass
//! over the store, and the rows are written in a second one. The writers are synchronous and
//! take one event at a time, so they can be fed from the store or from a slice alike.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::pin::pin;

use chrono::{DateTime, Datelike, SecondsFormat, TimeDelta, Timelike, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::command::{ExportFormat, Role};
use crate::incident::checklist::{ItemState, checklist_item_state};
use crate::incident::decide::incident_ref;
use crate::incident::state::Operation;
use crate::incident::{
    Actor, Event, EventKind, Incident, IncidentId, OperationKind, OperationSpec, Outcome, Plan,
};
use crate::sop::{ChecklistItem, ChecklistSection, Runbook};
use crate::store::{Store, StoreError};

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
    pub continuity: &'a crate::continuity::Continuity,
    pub now: DateTime<Utc>,
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
    let none = crate::continuity::Continuity::default();
    let impact = Impact {
        continuity: &none,
        now: DateTime::<Utc>::MIN_UTC,
    };
    export_with(store, incident, format, runbook, impact, out).await
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
            // Folded only when a catalog could make the summary rows say something.
            let mut state = impact
                .continuity
                .catalog
                .is_some()
                .then(|| Incident::from_declared(&first))
                .flatten();
            let mut csv = CsvWriter::begin(&mut out)?;
            csv.event(&first)?;
            while let Some(event) = events.next().await {
                let event = event?;
                if let Some(s) = &mut state {
                    s.apply(&event);
                }
                csv.event(&event)?;
            }
            if let Some(s) = &state {
                csv.impact(s, impact)?;
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
    let none = crate::continuity::Continuity::default();
    let impact = Impact {
        continuity: &none,
        now: DateTime::<Utc>::MIN_UTC,
    };
    write_timeline_with(events, format, runbook, impact, out)
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
            let mut csv = CsvWriter::begin(&mut out)?;
            for event in events {
                csv.event(event)?;
            }
            if impact.continuity.catalog.is_some()
                && let Some(s) = Incident::fold(events)
            {
                csv.impact(&s, impact)?;
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

/// The folded incident plus what a summary needs that the state does not keep.
#[derive(Debug, Clone)]
pub struct Overview {
    pub incident: Incident,
    pub event_count: u64,
    pub first_seq: i64,
    pub last_seq: i64,
    /// Display names by actor id: roles only record ids. Bounded by the people involved.
    names: HashMap<String, String>,
}

impl Overview {
    /// Start from the first event, which must be the declaration.
    pub fn start(first: &Event) -> Option<Overview> {
        let incident = Incident::from_declared(first)?;
        let mut overview = Overview {
            incident,
            event_count: 1,
            first_seq: first.seq,
            last_seq: first.seq,
            names: HashMap::new(),
        };
        overview.remember(&first.actor);
        Some(overview)
    }

    pub fn apply(&mut self, event: &Event) {
        self.incident.apply(event);
        self.event_count += 1;
        self.last_seq = event.seq;
        self.remember(&event.actor);
    }

    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Overview> {
        let mut events = events.into_iter();
        let mut overview = Overview::start(events.next()?)?;
        for event in events {
            overview.apply(event);
        }
        Some(overview)
    }

    fn remember(&mut self, actor: &Actor) {
        if actor.is_drbot() || self.names.get(&actor.id) == Some(&actor.name) {
            return;
        }
        self.names.insert(actor.id.clone(), actor.name.clone());
    }

    /// `Alice (U123)` when the id was seen acting, the bare id otherwise.
    fn person(&self, id: &str) -> String {
        match self.names.get(id) {
            Some(name) if name != id => format!("{name} ({id})"),
            _ => id.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared formatting

/// A UTC time as RFC 3339 with milliseconds and `Z`, written without allocating.
#[derive(Debug, Clone, Copy)]
struct Ts(DateTime<Utc>);

impl Ts {
    /// The fixed-width form, built by hand: every row has two times and `fmt` machinery
    /// showed up as a sizeable share of an export's time.
    fn encode(self) -> Option<[u8; 24]> {
        let t = self.0.naive_utc();
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        // Leap seconds (nanosecond ≥ 10⁹) need chrono's general formatter.
        let nanos = Some(t.nanosecond()).filter(|n| *n < 1_000_000_000)?;
        let mut b = *b"0000-00-00T00:00:00.000Z";
        digits(&mut b[0..4], year);
        digits(&mut b[5..7], t.month());
        digits(&mut b[8..10], t.day());
        digits(&mut b[11..13], t.hour());
        digits(&mut b[14..16], t.minute());
        digits(&mut b[17..19], t.second());
        digits(&mut b[20..23], nanos / 1_000_000);
        Some(b)
    }

    fn write(self, out: &mut impl Write) -> io::Result<()> {
        match self.encode() {
            Some(b) => out.write_all(&b),
            None => write!(out, "{self}"),
        }
    }
}

fn digits(slot: &mut [u8], mut value: u32) {
    for d in slot.iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.encode() {
            Some(b) => f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?),
            None => f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true)),
        }
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.encode() {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).map_err(serde::ser::Error::custom)?),
            None => s.collect_str(self),
        }
    }
}

fn ts(t: Option<DateTime<Utc>>) -> Option<Ts> {
    t.map(Ts)
}

fn seconds(d: TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// `1h 05m 03s`, `4m 10s`, `12s`: how postmortems quote durations.
fn human(d: TimeDelta) -> String {
    let sign = if d < TimeDelta::zero() { "-" } else { "" };
    let total = d.num_seconds().unsigned_abs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{sign}{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{sign}{m}m {s:02}s")
    } else {
        format!("{sign}{s}s")
    }
}

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
    }
}

/// Time to restore: from the human go-ahead to the backend reporting completion.
fn time_to_restore(op: &Operation) -> Option<TimeDelta> {
    let finished = op.finished.as_ref()?;
    op.spec
        .kind
        .is_restore()
        .then(|| finished.at - op.confirmed_at)
}

/// The restore that ended the outage: the last successful one to finish.
fn last_successful_restore(incident: &Incident) -> Option<(&Operation, DateTime<Utc>)> {
    incident
        .operations
        .iter()
        .filter(|o| o.spec.kind.is_restore() && o.succeeded())
        .filter_map(|o| o.finished.as_ref().map(|f| (o, f.at)))
        .max_by_key(|(_, at)| *at)
}

// ---------------------------------------------------------------------------------------------
// Event payloads as JSON
//
// The payload is written field by field rather than through `EventKind`'s own serde so that
// every time inside it has the export's format, and so that adding a field to an event fails
// to compile here instead of silently disappearing from exports.

struct Data<'a>(&'a EventKind);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            EventKind::Declared {
                channel,
                severity,
                incident_type,
                title,
                drill,
            } => {
                m.serialize_entry("channel", channel)?;
                m.serialize_entry("severity", severity)?;
                m.serialize_entry("incident_type", incident_type)?;
                m.serialize_entry("title", title)?;
                m.serialize_entry("drill", drill)?;
            }
            EventKind::SeverityChanged { from, to } => {
                m.serialize_entry("from", from)?;
                m.serialize_entry("to", to)?;
            }
            EventKind::Classified { from, to } => {
                m.serialize_entry("from", from)?;
                m.serialize_entry("to", to)?;
            }
            EventKind::RoleAssigned { role, user } => {
                m.serialize_entry("role", role)?;
                m.serialize_entry("user", user)?;
            }
            EventKind::Checked { item, note } => {
                m.serialize_entry("item", item)?;
                m.serialize_entry("note", note)?;
            }
            EventKind::Unchecked { item } => m.serialize_entry("item", item)?,
            EventKind::MarkedNotApplicable { item, reason } => {
                m.serialize_entry("item", item)?;
                m.serialize_entry("reason", reason)?;
            }
            EventKind::UpdatePosted {
                text,
                automatic,
                slots,
            } => {
                m.serialize_entry("text", text)?;
                m.serialize_entry("automatic", automatic)?;
                m.serialize_entry("slots", &Times(slots))?;
            }
            EventKind::ReminderSent { slot } => m.serialize_entry("slot", &Ts(*slot))?,
            EventKind::NoteAdded { text } => m.serialize_entry("text", text)?,
            EventKind::Escalated { reason } => m.serialize_entry("reason", reason)?,
            EventKind::Resumed | EventKind::Resolved | EventKind::FinalSummaryPosted => {}
            EventKind::ServicesAffected {
                services,
                infrastructure,
                pulled_in,
            } => {
                m.serialize_entry("services", services)?;
                m.serialize_entry("infrastructure", infrastructure)?;
                m.serialize_entry("pulled_in", pulled_in)?;
            }
            EventKind::RtoThreshold {
                service,
                percent,
                rto_seconds,
            } => {
                m.serialize_entry("service", service)?;
                m.serialize_entry("percent", percent)?;
                m.serialize_entry("rto_seconds", rto_seconds)?;
            }
            EventKind::TabletopStarted { scenario } => m.serialize_entry("scenario", scenario)?,
            EventKind::InjectPosted { n } => m.serialize_entry("n", n)?,
            EventKind::TabletopEnded { automatic } => m.serialize_entry("automatic", automatic)?,
            EventKind::CommsDrafted {
                draft,
                stage,
                status,
                statuspage_status,
                component_status,
                title,
                body,
                services,
                next_update_at,
            } => {
                m.serialize_entry("draft", draft)?;
                m.serialize_entry("stage", stage)?;
                m.serialize_entry("status", status)?;
                m.serialize_entry("statuspage_status", statuspage_status)?;
                m.serialize_entry("component_status", component_status)?;
                m.serialize_entry("title", title)?;
                m.serialize_entry("body", body)?;
                m.serialize_entry("services", services)?;
                m.serialize_entry("next_update_at", &next_update_at.map(Ts))?;
            }
            EventKind::CommsEdited {
                draft,
                body,
                warnings,
            } => {
                m.serialize_entry("draft", draft)?;
                m.serialize_entry("body", body)?;
                m.serialize_entry("warnings", warnings)?;
            }
            EventKind::CommsPublished { draft, warnings } => {
                m.serialize_entry("draft", draft)?;
                m.serialize_entry("warnings", warnings)?;
            }
            EventKind::CommsReminderSent { draft, due } => {
                m.serialize_entry("draft", draft)?;
                m.serialize_entry("due", &Ts(*due))?;
            }
            EventKind::DeliveryGaveUp {
                outbox,
                post,
                excerpt,
                attempts,
                error,
            } => {
                m.serialize_entry("outbox", outbox)?;
                m.serialize_entry("post", post)?;
                m.serialize_entry("excerpt", excerpt)?;
                m.serialize_entry("attempts", attempts)?;
                m.serialize_entry("error", error)?;
            }
            EventKind::LaunchPreviewed {
                preview,
                operation,
                plan,
                backend,
                expires_at,
                warnings,
            } => {
                m.serialize_entry("preview", preview)?;
                m.serialize_entry("operation", &Spec(operation))?;
                m.serialize_entry("plan", &PlanData(plan))?;
                m.serialize_entry("backend", backend)?;
                m.serialize_entry("expires_at", &Ts(*expires_at))?;
                m.serialize_entry("warnings", warnings)?;
            }
            EventKind::LaunchConfirmed { preview, operation } => {
                m.serialize_entry("preview", preview)?;
                m.serialize_entry("operation", operation)?;
            }
            EventKind::LaunchCancelled { preview } => m.serialize_entry("preview", preview)?,
            EventKind::OperationLaunched { operation, object } => {
                m.serialize_entry("operation", operation)?;
                m.serialize_entry("object", object)?;
            }
            EventKind::OperationProgressed {
                operation,
                phase,
                percent,
                detail,
            } => {
                m.serialize_entry("operation", operation)?;
                m.serialize_entry("phase", phase)?;
                m.serialize_entry("percent", percent)?;
                m.serialize_entry("detail", detail)?;
            }
            EventKind::OperationFinished {
                operation,
                outcome,
                phase,
                detail,
                result,
            } => {
                m.serialize_entry("operation", operation)?;
                m.serialize_entry("outcome", outcome)?;
                m.serialize_entry("phase", phase)?;
                m.serialize_entry("detail", detail)?;
                m.serialize_entry("result", result)?;
            }
            EventKind::BackupsChecked {
                backend,
                ok,
                report,
            } => {
                m.serialize_entry("backend", backend)?;
                m.serialize_entry("ok", ok)?;
                m.serialize_entry("report", report)?;
            }
            EventKind::ProbeRecorded {
                item,
                probe,
                passed,
                evidence,
            } => {
                m.serialize_entry("item", item)?;
                m.serialize_entry("probe", probe)?;
                m.serialize_entry("passed", passed)?;
                m.serialize_entry("evidence", evidence)?;
            }
        }
        m.end()
    }
}

struct Times<'a>(&'a [DateTime<Utc>]);

impl Serialize for Times<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|t| Ts(*t)))
    }
}

struct Spec<'a>(&'a OperationSpec);

impl Serialize for Spec<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let OperationSpec {
            id,
            kind,
            object_name,
            reason,
            backup,
            cluster,
            namespace,
            target,
            include_namespaces,
            exclude_database_namespaces,
            prior,
        } = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", id)?;
        m.serialize_entry("kind", kind)?;
        m.serialize_entry("object_name", object_name)?;
        m.serialize_entry("reason", reason)?;
        m.serialize_entry("backup", backup)?;
        m.serialize_entry("cluster", cluster)?;
        m.serialize_entry("namespace", namespace)?;
        m.serialize_entry("target", &ts(*target))?;
        m.serialize_entry("include_namespaces", include_namespaces)?;
        m.serialize_entry("exclude_database_namespaces", exclude_database_namespaces)?;
        m.serialize_entry("prior", prior)?;
        m.end()
    }
}

struct PlanData<'a>(&'a Plan);

impl Serialize for PlanData<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Plan {
            summary,
            manifest,
            backup,
            window,
        } = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("summary", summary)?;
        m.serialize_entry("manifest", manifest)?;
        m.serialize_entry("backup", backup)?;
        match window {
            Some(w) => {
                #[derive(Serialize)]
                struct Window {
                    start: Ts,
                    end: Ts,
                }
                let window = Window {
                    start: Ts(w.start),
                    end: Ts(w.end),
                };
                m.serialize_entry("window", &window)?;
            }
            None => m.serialize_entry("window", &None::<()>)?,
        }
        m.end()
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

#[derive(Serialize)]
struct JsonIncident<'a> {
    id: IncidentId,
    #[serde(rename = "ref")]
    reference: String,
    channel: &'a str,
    title: &'a str,
    severity: &'a str,
    #[serde(rename = "type")]
    incident_type: Option<&'a str>,
    drill: bool,
    declared_at: Ts,
    declared_by: &'a Actor,
    classified_at: Option<Ts>,
    roles: &'a std::collections::BTreeMap<String, String>,
    resolved_at: Option<Ts>,
    resolved_by: Option<&'a Actor>,
    pitr_target: Option<Ts>,
    /// Declared → last successful restore finished; drills report it but are not counted.
    rto_seconds: Option<f64>,
    operations: Vec<JsonOperation<'a>>,
    /// Affected services with RTO and RPO achieved against their targets; revenue at risk.
    #[serde(skip_serializing_if = "Option::is_none")]
    business_impact: Option<crate::continuity::view::Report>,
}

#[derive(Serialize)]
struct JsonOperation<'a> {
    id: &'a str,
    kind: OperationKind,
    object: &'a str,
    backup: Option<&'a str>,
    target: Option<Ts>,
    requested_by: &'a Actor,
    confirmed_by: &'a Actor,
    confirmed_at: Ts,
    launched_at: Option<Ts>,
    finished_at: Option<Ts>,
    outcome: Option<Outcome>,
    phase: &'a str,
    detail: Option<&'a str>,
    time_to_restore_seconds: Option<f64>,
}

impl<'a> JsonOperation<'a> {
    fn new(op: &'a Operation) -> Self {
        JsonOperation {
            id: &op.spec.id,
            kind: op.spec.kind,
            object: &op.spec.object_name,
            backup: op.backup.as_deref(),
            target: ts(op.spec.target),
            requested_by: &op.requested_by,
            confirmed_by: &op.confirmed_by,
            confirmed_at: Ts(op.confirmed_at),
            launched_at: ts(op.launched_at),
            finished_at: ts(op.finished.as_ref().map(|f| f.at)),
            outcome: op.finished.as_ref().map(|f| f.outcome),
            phase: &op.phase,
            detail: op.finished.as_ref().map(|f| f.detail.as_str()),
            time_to_restore_seconds: time_to_restore(op).map(seconds),
        }
    }
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    seq: i64,
    recorded_at: Ts,
    occurred_at: Option<Ts>,
    actor: &'a Actor,
    kind: &'static str,
    data: Data<'a>,
    summary: &'a str,
}

/// `{"schema": …, "incident": {…}, "events": [ … ]}`, one event per line.
pub struct JsonWriter<W: Write> {
    out: W,
    first: bool,
    /// Reused for each event's description.
    line: String,
}

impl<W: Write> JsonWriter<W> {
    /// Write everything up to the opening of the `events` array.
    pub fn begin(out: W, incident: &Incident) -> io::Result<Self> {
        let none = crate::continuity::Continuity::default();
        let impact = Impact {
            continuity: &none,
            now: DateTime::<Utc>::MIN_UTC,
        };
        JsonWriter::begin_with(out, incident, impact)
    }

    /// [`JsonWriter::begin`] with the business impact in the header.
    pub fn begin_with(mut out: W, incident: &Incident, impact: Impact<'_>) -> io::Result<Self> {
        let header = JsonIncident {
            id: incident.id,
            reference: incident_ref(incident.id),
            channel: &incident.channel,
            title: &incident.title,
            severity: &incident.severity,
            incident_type: incident.incident_type.as_deref(),
            drill: incident.drill,
            declared_at: Ts(incident.declared_at),
            declared_by: &incident.declared_by,
            classified_at: ts(incident.classified_at),
            roles: &incident.roles,
            resolved_at: ts(incident.resolved_at),
            resolved_by: incident.resolved_by.as_ref(),
            pitr_target: ts(incident.pitr_target),
            rto_seconds: last_successful_restore(incident)
                .map(|(_, at)| seconds(at - incident.declared_at)),
            operations: incident.operations.iter().map(JsonOperation::new).collect(),
            business_impact: crate::continuity::view::report(
                incident,
                impact.continuity,
                impact.now,
            ),
        };
        write!(out, "{{\"schema\":\"{JSON_SCHEMA}\",\"incident\":")?;
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b",\"events\":[")?;
        Ok(JsonWriter::rows(out))
    }

    /// The rows alone, for output whose header was written elsewhere.
    fn rows(out: W) -> Self {
        JsonWriter {
            out,
            first: true,
            line: String::new(),
        }
    }

    pub fn event(&mut self, event: &Event) -> io::Result<()> {
        self.out
            .write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        let row = JsonEvent {
            seq: event.seq,
            recorded_at: Ts(event.recorded_at),
            occurred_at: ts(event.occurred_at),
            actor: &event.actor,
            kind: event.kind.name(),
            data: Data(&event.kind),
            summary: describe(&mut self.line, event),
        };
        serde_json::to_writer(&mut self.out, &row)?;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"\n]}\n")?;
        Ok(self.out)
    }
}

// ---------------------------------------------------------------------------------------------
// CSV

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
            crate::continuity::view::csv_rows(incident, impact.continuity, impact.now)
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

// ---------------------------------------------------------------------------------------------
// Markdown

/// A postmortem draft: summary, key times, time to restore, RTO, PITR target, the §9
/// checklist, then every event as a table row.
pub struct MarkdownWriter<W: Write> {
    out: W,
    /// Reused for each event's description.
    line: String,
}

impl<W: Write> MarkdownWriter<W> {
    /// The rows alone, for output whose header was written elsewhere.
    fn rows(out: W) -> Self {
        MarkdownWriter {
            out,
            line: String::new(),
        }
    }

    /// Write everything that comes before the event table, and the table's header.
    pub fn begin(out: W, overview: &Overview, runbook: &Runbook) -> io::Result<Self> {
        let none = crate::continuity::Continuity::default();
        let impact = Impact {
            continuity: &none,
            now: DateTime::<Utc>::MIN_UTC,
        };
        MarkdownWriter::begin_with(out, overview, runbook, impact)
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
            crate::continuity::view::markdown(inc, impact.continuity, impact.now).as_bytes(),
        )?;
        write_pitr_target(o, inc)?;
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

/// `event`'s description, written into `line` (a buffer each writer reuses for every row).
fn describe<'a>(line: &'a mut String, event: &Event) -> &'a str {
    line.clear();
    // Writing into a String cannot fail.
    let _ = event.kind.write_description(line);
    line
}

/// Text inside a table cell or a list item: `|` and `\` escaped so a cell cannot end
/// early, line breaks as `<br>` so a row cannot.
fn md(out: &mut impl Write, text: &str) -> io::Result<()> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let replacement: &[u8] = match bytes[i] {
            b'|' => b"\\|",
            b'\\' => b"\\\\",
            b'\n' => b"<br>",
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => b"",
            b'\r' => b"<br>",
            _ => {
                i += 1;
                continue;
            }
        };
        out.write_all(&bytes[start..i])?;
        out.write_all(replacement)?;
        i += 1;
        start = i;
    }
    out.write_all(&bytes[start..])
}

fn md_actor(out: &mut impl Write, actor: &Actor) -> io::Result<()> {
    if actor.is_drbot() {
        return out.write_all(b"drbot");
    }
    md(out, &actor.name)?;
    out.write_all(b" (")?;
    md(out, &actor.platform)?;
    out.write_all(b")")
}

fn write_summary(o: &mut impl Write, overview: &Overview) -> io::Result<()> {
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

fn write_key_times(o: &mut impl Write, inc: &Incident) -> io::Result<()> {
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

fn write_time_to_restore(
    o: &mut impl Write,
    inc: &Incident,
    continuity: &crate::continuity::Continuity,
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
                .and_then(|ttr| crate::incident::drills::rto_comparison(ttr, Some(service.rto)))
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

fn write_rto(o: &mut impl Write, inc: &Incident) -> io::Result<()> {
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

fn write_pitr_target(o: &mut impl Write, inc: &Incident) -> io::Result<()> {
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
fn item_state(inc: &Incident, section: &ChecklistSection, item: &ChecklistItem) -> ItemState {
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

fn write_checklist(o: &mut impl Write, inc: &Incident, runbook: &Runbook) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::RecoveryWindow;
    use chrono::TimeZone;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    fn alice() -> Actor {
        Actor::new("slack", "U1", "Alice")
    }
    fn bob() -> Actor {
        Actor::new("slack", "U2", "Bob")
    }
    fn carol() -> Actor {
        Actor::new("discord", "D3", "Carol")
    }

    const NOTE: &str = "customer \"ACME\" reports, again:\nline two | pipe\\";

    struct Timeline {
        incident: IncidentId,
        events: Vec<Event>,
    }

    impl Timeline {
        fn new(incident: IncidentId) -> Self {
            Timeline {
                incident,
                events: Vec::new(),
            }
        }
        fn push(&mut self, at: DateTime<Utc>, actor: Actor, kind: EventKind) -> &mut Self {
            let seq = self.events.len() as i64 + 1;
            self.events.push(Event {
                incident: self.incident,
                seq,
                recorded_at: at,
                occurred_at: None,
                actor,
                kind,
            });
            self
        }
        fn backdate(&mut self, occurred_at: DateTime<Utc>) -> &mut Self {
            self.events.last_mut().unwrap().occurred_at = Some(occurred_at);
            self
        }
    }

    fn pitr_spec() -> OperationSpec {
        OperationSpec {
            id: "op1".into(),
            kind: OperationKind::Pitr,
            object_name: "drbot-inc7-op1-pitr".into(),
            reason: Some("bad migration at 08:31".into()),
            backup: None,
            cluster: Some("orders-db".into()),
            namespace: None,
            target: Some(t(-30)),
            include_namespaces: Vec::new(),
            exclude_database_namespaces: false,
            prior: None,
        }
    }

    /// A data incident restored by PITR, checked and resolved.
    fn incident() -> Vec<Event> {
        let mut tl = Timeline::new(7);
        tl.push(
            t(0),
            alice(),
            EventKind::Declared {
                channel: "#inc-orders".into(),
                severity: "sev1".into(),
                incident_type: None,
                title: "Orders DB corrupted".into(),
                drill: false,
            },
        )
        .push(
            t(2),
            alice(),
            EventKind::Classified {
                from: None,
                to: "data".into(),
            },
        )
        .push(
            t(3),
            alice(),
            EventKind::RoleAssigned {
                role: "dr-lead".into(),
                user: "U2".into(),
            },
        )
        .push(
            t(8),
            bob(),
            EventKind::LaunchPreviewed {
                preview: "P1".into(),
                operation: pitr_spec(),
                plan: Plan {
                    summary: vec!["restore orders-db to 08:30:00Z".into()],
                    manifest: "kind: SGCluster\n".into(),
                    backup: Some("orders-db-20250314-0600".into()),
                    window: Some(RecoveryWindow {
                        start: t(-180),
                        end: t(-1),
                    }),
                },
                backend: "sandbox".into(),
                expires_at: t(18),
                warnings: Vec::new(),
            },
        )
        .push(
            t(10) + TimeDelta::milliseconds(250),
            carol(),
            EventKind::LaunchConfirmed {
                preview: "P1".into(),
                operation: "op1".into(),
            },
        )
        .push(
            t(11),
            Actor::drbot(),
            EventKind::OperationLaunched {
                operation: "op1".into(),
                object: "drbot-inc7-op1-pitr".into(),
            },
        )
        .push(
            t(20),
            Actor::drbot(),
            EventKind::OperationProgressed {
                operation: "op1".into(),
                phase: "Restoring".into(),
                percent: 40,
                detail: String::new(),
            },
        )
        .push(t(31), alice(), EventKind::NoteAdded { text: NOTE.into() })
        .backdate(t(25))
        .push(
            t(47) + TimeDelta::milliseconds(250),
            Actor::drbot(),
            EventKind::OperationFinished {
                operation: "op1".into(),
                outcome: Outcome::Succeeded,
                phase: "Completed".into(),
                detail: String::new(),
                result: None,
            },
        )
        .push(
            t(50),
            bob(),
            EventKind::Checked {
                item: "9.1.1".into(),
                note: Some("all 12 nodes Ready".into()),
            },
        )
        .push(
            t(51),
            bob(),
            EventKind::MarkedNotApplicable {
                item: "9.5.1".into(),
                reason: "metrics never went down".into(),
            },
        )
        .push(t(60), alice(), EventKind::Resolved);
        tl.events
    }

    fn render(events: &[Event], format: ExportFormat) -> String {
        let mut out = Vec::new();
        write_timeline(events, format, &Runbook::embedded(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn assert_utc_millis(v: &serde_json::Value) {
        let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
        assert_eq!(s.len(), 24, "{s}");
        assert!(s.ends_with('Z') && s.as_bytes()[19] == b'.', "{s}");
        DateTime::parse_from_rfc3339(s).unwrap();
    }

    #[test]
    fn times_have_milliseconds_and_z() {
        let t = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(Ts(t).to_string(), "2025-01-02T03:04:05.000Z");
        let t = t + TimeDelta::microseconds(123_999);
        assert_eq!(Ts(t).to_string(), "2025-01-02T03:04:05.123Z");
        assert_eq!(
            serde_json::to_string(&Ts(t)).unwrap(),
            "\"2025-01-02T03:04:05.123Z\""
        );
        let far = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            Ts(far).to_string(),
            far.to_rfc3339_opts(SecondsFormat::Millis, true)
        );
        let early = Utc.with_ymd_and_hms(7, 8, 9, 1, 2, 3).unwrap();
        assert_eq!(Ts(early).to_string(), "0007-08-09T01:02:03.000Z");
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 1_500))
            .unwrap()
            .and_utc();
        assert_eq!(Ts(leap).to_string(), "2016-12-31T23:59:60.500Z");
        assert_eq!(human(TimeDelta::seconds(3723)), "1h 02m 03s");
        assert_eq!(human(TimeDelta::seconds(62)), "1m 02s");
        assert_eq!(human(TimeDelta::milliseconds(9_900)), "9s");
    }

    #[test]
    fn json_has_schema_incident_and_every_event_in_order() {
        let events = incident();
        let doc: serde_json::Value =
            serde_json::from_str(&render(&events, ExportFormat::Json)).unwrap();
        assert_eq!(doc["schema"], "drbot.timeline/v1");

        let inc = &doc["incident"];
        assert_eq!(inc["id"], 7);
        assert_eq!(inc["ref"], "INC-7");
        assert_eq!(inc["channel"], "#inc-orders");
        assert_eq!(inc["type"], "data");
        assert_eq!(inc["drill"], false);
        assert_eq!(inc["pitr_target"], "2025-03-14T08:30:00.000Z");
        assert_eq!(inc["resolved_at"], "2025-03-14T10:00:00.000Z");
        assert_eq!(inc["rto_seconds"], 47.0 * 60.0 + 0.25);
        let op = &inc["operations"][0];
        assert_eq!(inc["operations"].as_array().unwrap().len(), 1);
        assert_eq!(op["id"], "op1");
        assert_eq!(op["kind"], "pitr");
        assert_eq!(op["backup"], "orders-db-20250314-0600");
        assert_eq!(op["target"], "2025-03-14T08:30:00.000Z");
        assert_eq!(op["requested_by"]["name"], "Bob");
        assert_eq!(op["confirmed_by"]["platform"], "discord");
        assert_eq!(op["confirmed_at"], "2025-03-14T09:10:00.250Z");
        assert_eq!(op["outcome"], "succeeded");
        assert_eq!(op["phase"], "Completed");
        assert_eq!(op["time_to_restore_seconds"], 37.0 * 60.0);
        for key in ["declared_at", "resolved_at", "pitr_target"] {
            assert_utc_millis(&inc[key]);
        }
        for key in ["confirmed_at", "launched_at", "finished_at"] {
            assert_utc_millis(&op[key]);
        }

        let rows = doc["events"].as_array().unwrap();
        assert_eq!(rows.len(), events.len());
        for (row, event) in rows.iter().zip(&events) {
            assert_eq!(row["seq"], event.seq);
            assert_eq!(row["kind"], event.kind.name());
            assert_eq!(row["summary"], event.kind.describe());
            assert_eq!(row["actor"]["platform"], event.actor.platform);
            assert_eq!(row["actor"]["id"], event.actor.id);
            assert_eq!(row["actor"]["name"], event.actor.name);
            assert_utc_millis(&row["recorded_at"]);
            assert!(row["data"].is_object());
            assert!(row["data"].get("kind").is_none());
        }
        assert_eq!(rows[7]["occurred_at"], "2025-03-14T09:25:00.000Z");
        assert_eq!(rows[7]["data"]["text"], NOTE);
        assert!(rows[6]["occurred_at"].is_null());
        let preview = &rows[3]["data"];
        assert_eq!(preview["operation"]["target"], "2025-03-14T08:30:00.000Z");
        assert_eq!(preview["plan"]["window"]["end"], "2025-03-14T08:59:00.000Z");
        assert_eq!(preview["expires_at"], "2025-03-14T09:18:00.000Z");
        assert_eq!(rows[8]["data"]["outcome"], "succeeded");
    }

    /// RFC 4180, just enough to read our own output back.
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let (mut row, mut field) = (Vec::new(), String::new());
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut field)),
                (false, '\r') => {
                    assert_eq!(chars.next(), Some('\n'), "records end with CRLF");
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                (false, '\n') => panic!("bare LF outside quotes"),
                (false, c) => field.push(c),
            }
        }
        assert!(
            !quoted && field.is_empty() && row.is_empty(),
            "unterminated record"
        );
        rows
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines_and_round_trips() {
        let events = incident();
        let text = render(&events, ExportFormat::Csv);
        assert!(text.starts_with(&format!("{CSV_HEADER}\r\n")));
        assert!(
            text.contains("\"note: customer \"\"ACME\"\" reports, again:\nline two | pipe\\\"")
        );

        let rows = parse_csv(&text);
        assert_eq!(rows.len(), events.len() + 1);
        assert_eq!(rows[0].join(","), CSV_HEADER);
        for (row, event) in rows[1..].iter().zip(&events) {
            assert_eq!(row.len(), 9, "{row:?}");
            assert_eq!(row[0], event.seq.to_string());
            assert_eq!(row[1], Ts(event.recorded_at).to_string());
            assert_eq!(row[3], event.actor.platform);
            assert_eq!(row[4], event.actor.id);
            assert_eq!(row[5], event.actor.name);
            assert_eq!(row[6], event.kind.name());
            assert_eq!(row[7], event.kind.describe());
            let data: serde_json::Value = serde_json::from_str(&row[8]).unwrap();
            assert!(data.is_object());
        }
        let note = &rows[8];
        assert_eq!(note[2], "2025-03-14T09:25:00.000Z");
        assert_eq!(note[7], format!("note: {NOTE}"));
        let data: serde_json::Value = serde_json::from_str(&note[8]).unwrap();
        assert_eq!(data["text"], NOTE);
        assert_eq!(rows[1][2], "", "not back-dated: empty occurred_at");
    }

    #[test]
    fn markdown_is_a_postmortem_with_every_event() {
        let events = incident();
        let md = render(&events, ExportFormat::Markdown);
        assert!(md.starts_with("# INC-7: Orders DB corrupted\n"), "{md}");
        assert!(!md.contains("DRILL"));
        for line in [
            "- **Severity:** SEV1",
            "- **Type:** data (classified 2025-03-14T09:02:00.000Z)",
            "- **Channel:** #inc-orders",
            "- **Declared by:** Alice (slack) at 2025-03-14T09:00:00.000Z",
            "- **Status:** resolved at 2025-03-14T10:00:00.000Z by Alice (slack)",
            "- **Roles:** Incident commander: Alice (U1); DR lead: Bob (U2)",
            "- **Events:** 12 (seq 1–12)",
            "## Key times",
            "| Declared | 2025-03-14T09:00:00.000Z | Alice (slack) |",
            "| Classified | 2025-03-14T09:02:00.000Z | as data |",
            "| op1 pitr confirmed | 2025-03-14T09:10:00.250Z | Carol (discord) |",
            "| op1 pitr launched | 2025-03-14T09:11:00.000Z | drbot-inc7-op1-pitr |",
            "| op1 pitr finished | 2025-03-14T09:47:00.250Z | succeeded |",
            "| Resolved | 2025-03-14T10:00:00.000Z | Alice (slack) |",
            "## Time to restore per operation",
            "| op1 | pitr | drbot-inc7-op1-pitr | 2025-03-14T09:10:00.250Z | \
             2025-03-14T09:47:00.250Z | 37m 00s | succeeded |",
            "**RTO achieved:** 47m 00s (declared 2025-03-14T09:00:00.000Z → op1 pitr finished \
             2025-03-14T09:47:00.250Z)",
            "**PITR target:** 2025-03-14T08:30:00.000Z (op1, confirmed by Carol (discord))",
            "### 9.1 Platform & infrastructure",
            "### 9.5 Observability & alerting (if applicable)",
            "- [x] **9.1.1** Kubernetes cluster healthy (all nodes Ready) — Bob (slack), \
             2025-03-14T09:50:00.000Z: all 12 nodes Ready",
            "- [ ] **9.1.4** Network policies enforced and functioning",
            "- [-] **9.5.1** Metrics ingestion restored — n/a, Bob (slack), \
             2025-03-14T09:51:00.000Z: metrics never went down",
            "- [x] **9.3.1** Database restored using the correct method (latest backup or PITR) \
             — automatic, 2025-03-14T09:47:00.250Z: op1 pitr (drbot-inc7-op1-pitr)",
            "- [x] **9.3.2** PITR restore timestamp recorded — automatic: PITR target \
             2025-03-14T08:30:00Z",
            "- [x] **9.8.1** Incident resolved notification sent — Alice (slack), \
             2025-03-14T10:00:00.000Z: satisfied by resolving",
            "## Timeline\n\n| # | time (UTC) | actor | event |\n|---:|---|---|---|\n",
            "| 1 | 2025-03-14T09:00:00.000Z | Alice (slack) | declared SEV1 unclassified: \
             Orders DB corrupted |",
            "| 6 | 2025-03-14T09:11:00.000Z | drbot | op1 launched: drbot-inc7-op1-pitr |",
            "| 8 | 2025-03-14T09:25:00.000Z (recorded 2025-03-14T09:31:00.000Z) | Alice (slack) \
             | note: customer \"ACME\" reports, again:<br>line two \\| pipe\\\\ |",
            "| 12 | 2025-03-14T10:00:00.000Z | Alice (slack) | resolved |",
        ] {
            assert!(md.contains(line), "missing {line:?} in\n{md}");
        }
        let checklist_lines = md.lines().filter(|l| l.starts_with("- [")).count();
        assert_eq!(
            checklist_lines,
            Runbook::embedded().checklist_items().count()
        );
        let table = md.split("## Timeline").nth(1).unwrap();
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| #"))
            .collect();
        assert_eq!(rows.len(), events.len());
        for (row, event) in rows.iter().zip(&events) {
            assert!(row.starts_with(&format!("| {} | ", event.seq)), "{row}");
            // Every row has exactly the table's four cells.
            let unescaped = row.replace("\\\\", "").replace("\\|", "");
            assert_eq!(unescaped.matches('|').count(), 5, "{row}");
        }
    }

    #[test]
    fn markdown_without_successful_restore_and_for_drills() {
        let mut events = incident();
        events.truncate(8);
        let md = render(&events, ExportFormat::Markdown);
        assert!(md.contains("**RTO achieved:** not achieved: no successful restore\n"));
        assert!(md.contains("| op1 | pitr | drbot-inc7-op1-pitr | 2025-03-14T09:10:00.250Z | — | — | running (Restoring, 40%) |"));
        assert!(md.contains("- **Status:** open"));
        assert!(
            md.contains("- [ ] **9.8.1**"),
            "resolve items stay open until resolved"
        );

        let mut drill = incident();
        if let EventKind::Declared { drill, .. } = &mut drill[0].kind {
            *drill = true;
        }
        let md = render(&drill, ExportFormat::Markdown);
        assert!(md.starts_with("# INC-7: Orders DB corrupted (DRILL)\n"));
        assert!(md.contains("excluded from RTO statistics"));
        let json: serde_json::Value =
            serde_json::from_str(&render(&drill, ExportFormat::Json)).unwrap();
        assert_eq!(json["incident"]["drill"], true);
    }

    #[test]
    fn a_timeline_must_start_with_its_declaration() {
        let events = incident();
        let mut out = Vec::new();
        let err = write_timeline(
            &events[1..],
            ExportFormat::Json,
            &Runbook::embedded(),
            &mut out,
        );
        assert!(matches!(err, Err(ExportError::NotDeclared)));
    }

    async fn store_with(events: &[Event]) -> (tempfile::TempDir, Store, IncidentId) {
        use crate::store::{Chain, Commit, NewEvent, Projection, Target};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("export.db").display());
        let store = Store::connect(&url).await.unwrap();
        let state = Incident::fold(events).unwrap();
        let projection = Projection {
            severity: state.severity.clone(),
            incident_type: state.incident_type.clone(),
            title: state.title.clone(),
            drill: state.drill,
            declared_at: state.declared_at,
            resolved_at: state.resolved_at,
            final_summary_posted: state.final_summary_posted,
        };
        let new = |e: &Event| NewEvent {
            recorded_at: e.recorded_at,
            occurred_at: e.occurred_at,
            actor: e.actor.clone(),
            kind: e.kind.clone(),
            dedupe_key: None,
        };
        let mut target = Target::New {
            id: store.next_incident_id().await.expect("next id"),
            channel: state.channel.clone(),
            platform: "slack".into(),
        };
        // Several commits, as in production: one per decision.
        for chunk in events.chunks(5) {
            let done = store
                .commit(Commit {
                    target,
                    events: chunk.iter().map(new).collect(),
                    posts: Vec::new(),
                    operations: Vec::new(),
                    projection: projection.clone(),
                    request_key: None,
                    gave_up: None,
                    chain: Chain::root(),
                })
                .await
                .unwrap();
            target = Target::Existing {
                id: done.incident,
                expected_seq: *done.seqs.last().unwrap(),
            };
        }
        let Target::Existing { id, .. } = target else {
            unreachable!("at least one commit")
        };
        (dir, store, id)
    }

    /// The app runs exports on a multi-threaded runtime: the future must stay `Send`.
    #[test]
    fn export_can_be_spawned() {
        fn send<T: Send>(_: &T) {}
        fn check(store: &Store, runbook: &Runbook) {
            send(&export(store, 1, ExportFormat::Json, runbook, Vec::new()));
        }
        let _ = check;
    }

    #[tokio::test]
    async fn export_from_the_store_streams_the_same_document() {
        let events = incident();
        let (_dir, store, id) = store_with(&events).await;
        let stored = store.events(id).await.unwrap();
        assert_eq!(stored.len(), events.len());
        let runbook = Runbook::embedded();
        for format in [
            ExportFormat::Markdown,
            ExportFormat::Json,
            ExportFormat::Csv,
        ] {
            let mut streamed = Vec::new();
            export(&store, id, format, &runbook, &mut streamed)
                .await
                .unwrap();
            let mut expected = Vec::new();
            write_timeline(&stored, format, &runbook, &mut expected).unwrap();
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                String::from_utf8(expected).unwrap(),
                "{format:?}"
            );
        }
        let mut out = Vec::new();
        export(&store, id, ExportFormat::Json, &runbook, &mut out)
            .await
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["incident"]["ref"], format!("INC-{id}"));
        assert_eq!(doc["incident"]["pitr_target"], "2025-03-14T08:30:00.000Z");
        assert_eq!(doc["events"].as_array().unwrap().len(), events.len());

        for format in [
            ExportFormat::Markdown,
            ExportFormat::Json,
            ExportFormat::Csv,
        ] {
            let mut out = Vec::new();
            let err = export(&store, id + 1000, format, &runbook, &mut out).await;
            assert!(
                matches!(err, Err(ExportError::NoSuchIncident(n)) if n == id + 1000),
                "{format:?}: {err:?}"
            );
            assert!(out.is_empty(), "{format:?} wrote for an unknown incident");
        }
        store.close().await;
    }
}
