//! Tabletop exercises (the SRE guide's `tabletop-exercise.yaml`): a scenario whose injects
//! are posted at T+N minutes, answers recorded as notes, and a summary at the end with the
//! time from each inject to its first answer. Pure: the file's text and the clock come in.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::decide::{Ctx, Decision, Facts, Refusal};
use super::event::{Event, EventKind};
use super::state::Incident;
use crate::command::Command;

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

/// One inject of the scenario, as recorded on the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inject {
    /// As written: `T+5min`.
    pub time: String,
    pub minutes: i64,
    pub event: String,
    pub question: String,
}

/// A loaded exercise: what `TabletopStarted` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exercise {
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facilitator: Option<String>,
    pub injects: Vec<Inject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discussion: Vec<String>,
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

fn format_offset(minutes: i64) -> String {
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

/// What the scheduler owes a tabletop now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Post inject `n` (1-based); dedupe key `inject:<n>`.
    Inject(usize),
    /// The last inject's answer time is over: end with the summary.
    End,
}

impl Due {
    pub fn key(&self) -> String {
        match self {
            Due::Inject(n) => format!("inject:{n}"),
            Due::End => "tabletop-end".into(),
        }
    }
    pub fn event(&self) -> EventKind {
        match self {
            Due::Inject(n) => EventKind::InjectPosted { n: *n },
            Due::End => EventKind::TabletopEnded { automatic: true },
        }
    }
    /// Everything the pass commits for it (the end resolves the drill incident too).
    pub fn events(&self) -> Vec<EventKind> {
        match self {
            Due::Inject(_) => vec![self.event()],
            Due::End => end_events(true),
        }
    }
}

pub fn due(s: &Incident, now: DateTime<Utc>) -> Option<Due> {
    let t = s.tabletop.as_ref().filter(|t| !t.ended && s.is_open())?;
    let next = t.posted.len();
    match t.due_at(next) {
        Some(at) if at <= now => Some(Due::Inject(next + 1)),
        Some(_) => None,
        None => {
            let last = t.posted.last().copied().unwrap_or(t.started_at);
            (now >= last + Duration::minutes(CLOSE_AFTER_LAST)).then_some(Due::End)
        }
    }
}

/// The channel post for a tabletop event.
pub fn post_text(s: &Incident, event: &Event) -> Option<String> {
    let t = s.tabletop.as_ref()?;
    match &event.kind {
        EventKind::TabletopStarted { scenario } => {
            let mut text = format!(
                "TABLETOP EXERCISE (DRILL, INC-{}): {}\nNo system is touched: this is a walk through the plan.\nScenario: {}\n{} injects follow on the clock, the first now and the last at {}. Answer each with `/dr note <answer>`; `/dr tabletop end` ends it and posts the summary.",
                s.id,
                scenario.name,
                scenario.description,
                scenario.injects.len(),
                scenario.injects.last().map_or("T+0", |i| i.time.as_str()),
            );
            if !scenario.participants.is_empty() {
                text.push_str(&format!(
                    "\nParticipants: {}",
                    scenario.participants.join(", ")
                ));
            }
            Some(text)
        }
        EventKind::InjectPosted { n } => {
            let inject = t.scenario.injects.get(n.checked_sub(1)?)?;
            let next = match t.scenario.injects.get(*n) {
                Some(i) => format!("Next inject at {}.", i.time),
                None => format!(
                    "This is the last inject; the exercise ends {CLOSE_AFTER_LAST} minutes from now or on `/dr tabletop end`."
                ),
            };
            Some(format!(
                "INJECT {n}/{} at {}: {}\nQuestion: {}\nAnswer with `/dr note <answer>`. {next}",
                t.scenario.injects.len(),
                inject.time,
                inject.event,
                inject.question
            ))
        }
        EventKind::TabletopEnded { .. } => Some(summary(t, event.at())),
        _ => None,
    }
}

/// Time from each inject to the first answer after it, and the discussion questions.
pub fn summary(t: &Tabletop, now: DateTime<Utc>) -> String {
    let mut out = format!(
        "TABLETOP SUMMARY: {} (ran {}).\nTime from each inject to the first answer:\n",
        t.scenario.name,
        super::drills::duration_text(now - t.started_at)
    );
    let mut answered = 0;
    for (i, inject) in t.scenario.injects.iter().enumerate() {
        let line = match (t.posted.get(i), t.answers.get(i).cloned().flatten()) {
            (Some(posted), Some((at, who))) => {
                answered += 1;
                format!(
                    "{} (posted {}): first answer after {} by {who}",
                    inject.time,
                    posted.format("%H:%MZ"),
                    super::drills::duration_text(at - *posted)
                )
            }
            (Some(posted), None) => format!(
                "{} (posted {}): NO ANSWER",
                inject.time,
                posted.format("%H:%MZ")
            ),
            (None, _) => format!("{}: not reached", inject.time),
        };
        out.push_str(&format!("  {}. {line}\n", i + 1));
    }
    out.push_str(&format!(
        "{answered} of {} injects answered. The answers are on the timeline (`/dr timeline export md`).",
        t.scenario.injects.len()
    ));
    if !t.scenario.discussion.is_empty() {
        out.push_str("\nDiscuss now:");
        for q in &t.scenario.discussion {
            out.push_str(&format!("\n  - {q}"));
        }
    }
    out
}

/// `/dr tabletop start|end`: open the DRILL incident with the scenario, or end it with the
/// summary. The exercise was loaded by the caller (`facts.exercise`).
pub fn decide(
    state: Option<&Incident>,
    cmd: &Command,
    ctx: &Ctx,
    facts: &Facts,
) -> Result<Decision, Refusal> {
    let open = state.filter(|s| s.is_open());
    match cmd {
        Command::TabletopStart { .. } => {
            if let Some(s) = open {
                return Err(Refusal(format!(
                    "INC-{} is open here; a tabletop exercise runs in a channel without an incident. Use another channel, or resolve INC-{} first.",
                    s.id, s.id
                )));
            }
            let exercise = match &facts.exercise {
                Some(Ok(e)) => e.clone(),
                Some(Err(why)) => {
                    return Err(Refusal(format!(
                        "Cannot start the tabletop exercise: {why}\nNothing was opened. Fix the file and send `/dr tabletop start <file>` again."
                    )));
                }
                None => return Err(Refusal("The exercise file was not read; try again.".into())),
            };
            Ok(Decision {
                events: vec![
                    EventKind::Declared {
                        channel: ctx.channel.to_string(),
                        severity: "sev4".into(),
                        incident_type: None,
                        title: format!("Tabletop: {}", exercise.name),
                        drill: true,
                    }
                    .into(),
                    EventKind::TabletopStarted { scenario: exercise }.into(),
                ],
                then_retry: false,
            })
        }
        Command::TabletopEnd => match open {
            Some(s) if s.tabletop.as_ref().is_some_and(|t| !t.ended) => Ok(Decision {
                events: end_events(false).into_iter().map(Into::into).collect(),
                then_retry: false,
            }),
            _ => Err(Refusal(
                "No tabletop exercise is running in this channel. Start one with `/dr tabletop start <file>`.".into(),
            )),
        },
        _ => Ok(Decision::default()),
    }
}

/// The end of an exercise: the summary, and the drill incident resolved with it.
pub fn end_events(automatic: bool) -> Vec<EventKind> {
    vec![EventKind::TabletopEnded { automatic }, EventKind::Resolved]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("T+0"), Some(0));
        assert_eq!(parse_offset("T+5min"), Some(5));
        assert_eq!(parse_offset("T+1hr"), Some(60));
        assert_eq!(parse_offset("T+4hr"), Some(240));
        assert_eq!(parse_offset("T + 90 minutes"), Some(90));
        assert_eq!(parse_offset("T+2h"), Some(120));
        assert_eq!(parse_offset("T+5"), None);
        assert_eq!(parse_offset("5min"), None);
        assert_eq!(parse_offset("T+99999hr"), None);
        assert_eq!(format_offset(240), "T+4hr");
        assert_eq!(format_offset(15), "T+15min");
    }

    #[test]
    fn errors_name_line_and_field() {
        let missing = "exercise:\n  name: x\n  scenario:\n    description: d\n    timeline:\n      - time: \"T+0\"\n        event: e\n";
        let e = load("bad.yaml", missing).unwrap_err().0;
        assert!(e.contains("question") && e.contains("line"), "{e}");
        let bad_time = "exercise:\n  name: x\n  scenario:\n    description: d\n    timeline:\n      - time: \"soon\"\n        event: e\n        question: q\n";
        let e = load("bad.yaml", bad_time).unwrap_err().0;
        assert!(e.contains("\"soon\"") && e.contains("line 6"), "{e}");
        let unknown = "exercise:\n  name: x\n  scenaro: {}\n";
        let e = load("bad.yaml", unknown).unwrap_err().0;
        assert!(e.contains("scenaro") && e.contains("line 3"), "{e}");
        let order = "exercise:\n  name: x\n  scenario:\n    description: d\n    timeline:\n      - time: \"T+5min\"\n        event: e\n        question: q\n      - time: \"T+0\"\n        event: e\n        question: q\n";
        let e = load("bad.yaml", order).unwrap_err().0;
        assert!(e.contains("timeline[1].time"), "{e}");
    }
}
