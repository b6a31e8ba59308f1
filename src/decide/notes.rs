//! `/dr update` and `/dr note`: what people write on the timeline.

use super::{Input, events, open};
use crate::command::TimeInput;
use crate::incident::decision::{refuse, resolve_time};
use crate::incident::event::EventKind;
use crate::incident::{Decision, Draft, Refusal, fmt_time};

pub(super) fn update(v: &Input, text: &str) -> Result<Decision, Refusal> {
    let Input { state, .. } = *v;
    open(state)?;
    events(vec![EventKind::UpdatePosted {
        text: text.to_string(),
        automatic: false,
        slots: vec![],
    }])
}

pub(super) fn note(v: &Input, text: &str, at: &Option<TimeInput>) -> Result<Decision, Refusal> {
    let Input { state, ctx, .. } = *v;
    open(state)?;
    let occurred_at = match at {
        Some(input) => {
            let (t, _) = resolve_time(input, ctx)?;
            if t > ctx.now {
                return refuse(format!(
                    "A note cannot be dated in the future ({}).",
                    fmt_time(t)
                ));
            }
            Some(t)
        }
        None => None,
    };
    Ok(Decision {
        events: vec![Draft {
            kind: EventKind::NoteAdded {
                text: text.to_string(),
            },
            occurred_at,
        }],
        then_retry: false,
    })
}
