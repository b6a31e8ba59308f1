//! The decisions of issue 11 §2–3, called from `incident::decide`: pure.

use crate::command::TimeInput;
use crate::incident::decision::resolve_time;
use crate::incident::event::EventKind;
use crate::incident::state::Incident;
use crate::incident::{Ctx, Draft, Refusal, fmt_time};

use super::impact;
use crate::incident::impact::ContinuityState;

/// What `declare … services=… since=…` adds after the declaration.
pub fn on_declare(
    services: &[String],
    since: Option<&TimeInput>,
    ctx: &Ctx,
) -> Result<Vec<Draft>, Refusal> {
    let mut drafts = Vec::new();
    if let Some(input) = since {
        let (t, _) = resolve_time(input, ctx)?;
        if t > ctx.now {
            return Err(Refusal(format!(
                "since={} is in the future (now {}). Give the moment things went bad, or leave since= out.",
                fmt_time(t),
                fmt_time(ctx.now)
            )));
        }
        if t < ctx.now {
            drafts.push(Draft {
                kind: EventKind::NoteAdded {
                    text: format!("impact began {} (declare since=)", fmt_time(t)),
                },
                occurred_at: Some(t),
            });
        }
    }
    if !services.is_empty() {
        let catalog = ctx.continuity.catalog().map_err(|why| {
            Refusal(format!(
                "{why}. Declare without services= or configure the catalog first."
            ))
        })?;
        let new =
            impact::resolve(catalog, &ContinuityState::default(), services).map_err(Refusal)?;
        drafts.push(new.into_event().into());
    }
    Ok(drafts)
}

/// `/dr impact a,b`.
pub fn impact(s: &Incident, services: &[String], ctx: &Ctx) -> Result<EventKind, Refusal> {
    let catalog = ctx
        .continuity
        .catalog()
        .map_err(|why| Refusal(format!("{why}.")))?;
    let new = impact::resolve(catalog, &s.continuity, services).map_err(Refusal)?;
    Ok(new.into_event())
}
