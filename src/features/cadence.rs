//! Update cadence (spec §5): when updates fall due, when to remind, when the final summary is
//! owed. Pure functions of the incident's state and the time.

use chrono::{DateTime, Utc};

use crate::incident::state::Incident;
use crate::sop::CadencePolicy;

/// The next update's due time after `anchor` (the last update, or the declaration).
pub fn next_after(
    anchor: DateTime<Utc>,
    declared_at: DateTime<Utc>,
    policy: &CadencePolicy,
) -> DateTime<Utc> {
    anchor + policy.interval_at_age(anchor - declared_at)
}

/// When the next update is due; `None` once resolved.
pub fn next_due(state: &Incident, policy: &CadencePolicy) -> Option<DateTime<Utc>> {
    if !state.is_open() {
        return None;
    }
    let anchor = state.last_update_at.unwrap_or(state.declared_at);
    Some(next_after(anchor, state.declared_at, policy))
}

/// Work the scheduler owes an incident at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// An automatic update for these slots (more than one when drbot was down across slots).
    Update {
        slots: Vec<DateTime<Utc>>,
    },
    /// Remind the comms lead that the update for `slot` is coming.
    Reminder {
        slot: DateTime<Utc>,
    },
    FinalSummary,
}

/// Slots that are due and not yet covered by an update, oldest first.
pub fn missed_slots(
    state: &Incident,
    policy: &CadencePolicy,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut slots = Vec::new();
    let Some(mut due) = next_due(state, policy) else {
        return slots;
    };
    while due <= now {
        slots.push(due);
        due = next_after(due, state.declared_at, policy);
    }
    slots
}

pub fn due_work(state: &Incident, policy: &CadencePolicy, now: DateTime<Utc>) -> Option<Due> {
    if let Some(resolved_at) = state.resolved_at {
        let owed = !state.final_summary_posted && now >= resolved_at + policy.final_summary_after();
        return owed.then_some(Due::FinalSummary);
    }
    let slots = missed_slots(state, policy, now);
    if !slots.is_empty() {
        return Some(Due::Update { slots });
    }
    let next = next_due(state, policy)?;
    let remind = now >= next - policy.reminder_before() && state.last_reminder_slot != Some(next);
    remind.then_some(Due::Reminder { slot: next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::event::{Actor, Event, EventKind};
    use crate::sop::Runbook;

    fn t(hm: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-02-08T{hm}:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn incident(declared: &str) -> Incident {
        Incident::from_declared(&Event {
            incident: 1,
            seq: 1,
            recorded_at: t(declared),
            occurred_at: None,
            actor: Actor::new("console", "alice", "alice"),
            kind: EventKind::Declared {
                channel: "c".into(),
                severity: "sev1".into(),
                incident_type: Some("data".into()),
                title: "x".into(),
                drill: false,
            },
        })
        .unwrap()
    }

    fn post(state: &mut Incident, at: DateTime<Utc>, automatic: bool, slots: Vec<DateTime<Utc>>) {
        let seq = state.seq + 1;
        state.apply(&Event {
            incident: 1,
            seq,
            recorded_at: at,
            occurred_at: None,
            actor: Actor::drbot(),
            kind: EventKind::UpdatePosted {
                text: "u".into(),
                automatic,
                slots,
            },
        });
    }

    #[test]
    fn due_times_follow_the_bands_from_declaration() {
        let policy = Runbook::embedded().cadence;
        let mut s = incident("09:00");
        let mut seen = Vec::new();
        for _ in 0..14 {
            let due = next_due(&s, &policy).unwrap();
            seen.push(due.format("%H:%M").to_string());
            post(&mut s, due, true, vec![due]);
        }
        assert_eq!(
            seen,
            [
                "09:15", "09:30", "09:45", "10:00", "10:30", "11:00", "11:30", "12:00", "12:30",
                "13:00", "14:00", "15:00", "16:00", "17:00"
            ]
        );
    }

    #[test]
    fn a_human_update_resets_the_clock() {
        let policy = Runbook::embedded().cadence;
        let mut s = incident("09:00");
        post(&mut s, t("09:20"), false, vec![]);
        assert_eq!(next_due(&s, &policy), Some(t("09:35")));
        // Late in the first hour, the 15-minute band still applies to the next slot.
        post(&mut s, t("09:50"), false, vec![]);
        assert_eq!(next_due(&s, &policy), Some(t("10:05")));
    }

    #[test]
    fn reminder_before_due_then_update_when_due() {
        let policy = Runbook::embedded().cadence;
        let mut s = incident("09:00");
        assert_eq!(due_work(&s, &policy, t("09:11")), None);
        assert_eq!(
            due_work(&s, &policy, t("09:12")),
            Some(Due::Reminder { slot: t("09:15") })
        );
        s.apply(&Event {
            incident: 1,
            seq: 2,
            recorded_at: t("09:12"),
            occurred_at: None,
            actor: Actor::drbot(),
            kind: EventKind::ReminderSent { slot: t("09:15") },
        });
        assert_eq!(due_work(&s, &policy, t("09:14")), None);
        assert_eq!(
            due_work(&s, &policy, t("09:15")),
            Some(Due::Update {
                slots: vec![t("09:15")]
            })
        );
    }

    #[test]
    fn slots_missed_while_down_are_all_reported_once() {
        let policy = Runbook::embedded().cadence;
        let mut s = incident("09:00");
        let slots = missed_slots(&s, &policy, t("09:50"));
        assert_eq!(slots, vec![t("09:15"), t("09:30"), t("09:45")]);
        post(&mut s, t("09:50"), true, slots);
        assert_eq!(next_due(&s, &policy), Some(t("10:00")));
        assert!(missed_slots(&s, &policy, t("09:59")).is_empty());
    }

    #[test]
    fn final_summary_is_owed_after_resolution() {
        let policy = Runbook::embedded().cadence;
        let mut s = incident("09:00");
        s.apply(&Event {
            incident: 1,
            seq: 2,
            recorded_at: t("10:00"),
            occurred_at: None,
            actor: Actor::drbot(),
            kind: EventKind::Resolved,
        });
        assert_eq!(next_due(&s, &policy), None);
        assert_eq!(due_work(&s, &policy, t("10:29")), None);
        assert_eq!(due_work(&s, &policy, t("10:30")), Some(Due::FinalSummary));
        assert!(policy.final_summary_after_minutes <= policy.final_summary_within_minutes);
    }
}
