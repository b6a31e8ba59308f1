//! Tabletop exercises (the SRE guide's `tabletop-exercise.yaml`): a scenario whose injects
//! are posted at T+N minutes, answers recorded as notes, and a summary at the end with the
//! time from each inject to its first answer. Pure: the file's text and the clock come in.

use chrono::{DateTime, Duration, Utc};

use crate::command::Command;
use crate::incident::event::{Event, EventKind};
use crate::incident::exercise::*;
use crate::incident::state::Incident;
use crate::incident::{Ctx, Decision, Facts, Refusal};

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
        crate::incident::duration_text(now - t.started_at)
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
                    crate::incident::duration_text(at - *posted)
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
