//! A tabletop exercise as the incident records it: the guide's `tabletop-exercise.yaml`
//! parsed (pure: the file's text comes in), and its fold from the timeline.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::event::{Event, EventKind};
pub use super::event::{Exercise, Inject};

/// The file as the guide writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    exercise: RawExercise,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExercise {
    name: String,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    facilitator: Option<String>,
    #[serde(default)]
    participants: Vec<String>,
    scenario: RawScenario,
    #[serde(default)]
    discussion_questions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    description: String,
    timeline: Vec<RawInject>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInject {
    time: Offset,
    event: String,
    question: String,
}

/// `T+0`, `T+5min`, `T+1hr`, `T+90 minutes`, `T+2h`.
#[derive(Debug, Clone, Copy)]
struct Offset(i64);

impl<'de> Deserialize<'de> for Offset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Offset, D::Error> {
        let text = String::deserialize(d)?;
        parse_offset(&text).map(Offset).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "time {text:?} is not an offset like \"T+0\", \"T+15min\" or \"T+1hr\""
            ))
        })
    }
}

/// Minutes after the start.
pub fn parse_offset(text: &str) -> Option<i64> {
    let rest = text.trim().strip_prefix(['T', 't'])?.trim_start();
    let rest = rest.strip_prefix('+')?.trim();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n: i64 = digits.parse().ok()?;
    let unit = rest[digits.len()..].trim().to_ascii_lowercase();
    let factor = match unit.as_str() {
        "" if n == 0 => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 1,
        "h" | "hr" | "hrs" | "hour" | "hours" => 60,
        _ => return None,
    };
    n.checked_mul(factor).filter(|m| *m <= 7 * 24 * 60)
}

/// What is wrong with a file, naming where (line, field) when the parser knows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

/// Parse the guide's `tabletop-exercise.yaml` shape.
pub fn load(name: &str, text: &str) -> Result<Exercise, LoadError> {
    let file: File = serde_yaml::from_str(text).map_err(|e| {
        let mut msg = e.to_string();
        if let Some(at) = e.location()
            && !msg.contains("line ")
        {
            msg.push_str(&format!(" at line {} column {}", at.line(), at.column()));
        }
        LoadError(format!("{name}: {msg}"))
    })?;
    let ex = file.exercise;
    let _ = (&ex.date, &ex.duration);
    if ex.scenario.timeline.is_empty() {
        return Err(LoadError(format!(
            "{name}: exercise.scenario.timeline is empty; add injects with time, event and question"
        )));
    }
    let mut injects = Vec::new();
    let mut last = 0;
    for (i, raw) in ex.scenario.timeline.into_iter().enumerate() {
        if raw.time.0 < last {
            return Err(LoadError(format!(
                "{name}: exercise.scenario.timeline[{i}].time comes before the inject above it; list injects in time order"
            )));
        }
        last = raw.time.0;
        injects.push(Inject {
            time: format_offset(raw.time.0),
            minutes: raw.time.0,
            event: raw.event.trim().to_string(),
            question: raw.question.trim().to_string(),
        });
    }
    Ok(Exercise {
        name: ex.name.trim().to_string(),
        description: ex.scenario.description.trim().to_string(),
        participants: ex.participants,
        facilitator: ex.facilitator,
        injects,
        discussion: ex.discussion_questions,
    })
}

pub fn format_offset(minutes: i64) -> String {
    match minutes {
        0 => "T+0".into(),
        m if m % 60 == 0 => format!("T+{}hr", m / 60),
        m => format!("T+{m}min"),
    }
}

/// After the last inject, answers are taken this long before the exercise ends by itself.
pub const CLOSE_AFTER_LAST: i64 = 30;

/// A running or finished exercise, folded from the incident's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tabletop {
    pub scenario: Exercise,
    pub started_at: DateTime<Utc>,
    /// When each inject was posted, in order.
    pub posted: Vec<DateTime<Utc>>,
    /// The first answer (note) after each posted inject and before the next: when and who.
    pub answers: Vec<Option<(DateTime<Utc>, String)>>,
    pub ended: bool,
}

impl Tabletop {
    pub fn due_at(&self, n: usize) -> Option<DateTime<Utc>> {
        let inject = self.scenario.injects.get(n)?;
        Some(self.started_at + Duration::minutes(inject.minutes))
    }
}

/// Fold one event into the incident's tabletop (called from `Incident::apply`).
pub fn apply(s: &mut Option<Tabletop>, event: &Event) {
    match &event.kind {
        EventKind::TabletopStarted { scenario } => {
            *s = Some(Tabletop {
                scenario: scenario.clone(),
                started_at: event.at(),
                posted: Vec::new(),
                answers: Vec::new(),
                ended: false,
            });
        }
        EventKind::InjectPosted { n } => {
            if let Some(t) = s
                && *n == t.posted.len() + 1
            {
                t.posted.push(event.at());
                t.answers.push(None);
            }
        }
        EventKind::NoteAdded { .. } if !event.actor.is_drbot() => {
            if let Some(t) = s
                && !t.ended
                && let Some(slot) = t.answers.last_mut()
                && slot.is_none()
            {
                *slot = Some((event.at(), event.actor.name.clone()));
            }
        }
        EventKind::TabletopEnded { .. } => {
            if let Some(t) = s {
                t.ended = true;
            }
        }
        _ => {}
    }
}
