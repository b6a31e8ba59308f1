//! SOP §10.1: a full restore test and a PITR test at least once per quarter, per database
//! cluster. Pure: the drill results and today's date come in, the verdicts and text go out.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::incident::duration_text;
use crate::incident::event::{IncidentId, OperationKind};
use crate::incident::state::Incident;

/// A calendar quarter (UTC dates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quarter {
    pub year: i32,
    /// 1..=4
    pub q: u32,
}

impl Quarter {
    pub fn of(day: NaiveDate) -> Quarter {
        Quarter {
            year: day.year(),
            q: day.month0() / 3 + 1,
        }
    }
    /// Its first day.
    pub fn start(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, (self.q - 1) * 3 + 1, 1).unwrap_or(NaiveDate::MIN)
    }
    pub fn next(self) -> Quarter {
        if self.q == 4 {
            Quarter {
                year: self.year + 1,
                q: 1,
            }
        } else {
            Quarter {
                year: self.year,
                q: self.q + 1,
            }
        }
    }
    pub fn previous(self) -> Quarter {
        if self.q == 1 {
            Quarter {
                year: self.year - 1,
                q: 4,
            }
        } else {
            Quarter {
                year: self.year,
                q: self.q - 1,
            }
        }
    }
    /// Its last day.
    pub fn last_day(self) -> NaiveDate {
        self.next().start().pred_opt().unwrap_or(NaiveDate::MIN)
    }
    /// Days from `today` to the quarter's end, today included (1 on its last day).
    pub fn days_left(self, today: NaiveDate) -> i64 {
        (self.next().start() - today).num_days()
    }
    pub fn contains(self, day: NaiveDate) -> bool {
        Quarter::of(day) == self
    }
    /// `2026Q4`
    pub fn label(self) -> String {
        format!("{}Q{}", self.year, self.q)
    }
}

/// The two drills SOP §10.1 requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DrillKind {
    /// A full restore of the latest backup (`/dr drill latest`).
    Full,
    /// A point-in-time restore (`/dr drill pitr`).
    Pitr,
}

impl DrillKind {
    pub const ALL: [DrillKind; 2] = [DrillKind::Full, DrillKind::Pitr];
    pub fn of(kind: OperationKind) -> Option<DrillKind> {
        match kind {
            OperationKind::DrillLatest => Some(DrillKind::Full),
            OperationKind::DrillPitr => Some(DrillKind::Pitr),
            _ => None,
        }
    }
    /// For keys: `full`, `pitr`.
    pub fn id(self) -> &'static str {
        match self {
            DrillKind::Full => "full",
            DrillKind::Pitr => "pitr",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            DrillKind::Full => "Full restore drill",
            DrillKind::Pitr => "PITR drill",
        }
    }
    pub fn command(self) -> &'static str {
        match self {
            DrillKind::Full => "/dr drill latest",
            DrillKind::Pitr => "/dr drill pitr <timestamp>",
        }
    }
}

/// One finished drill restore, from a drill incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillRun {
    pub cluster: String,
    pub kind: DrillKind,
    pub incident: IncidentId,
    pub finished_at: DateTime<Utc>,
    /// From confirmation to completion, as the export measures it.
    pub time_to_restore: chrono::Duration,
    pub succeeded: bool,
}

/// The finished drill restores of an incident (none unless it is a drill).
pub fn runs_of(s: &Incident, default_cluster: Option<&str>) -> Vec<DrillRun> {
    if !s.drill {
        return Vec::new();
    }
    s.operations
        .iter()
        .filter_map(|op| {
            let kind = DrillKind::of(op.spec.kind)?;
            let finished = op.finished.as_ref()?;
            let cluster = op
                .spec
                .cluster
                .clone()
                .or_else(|| default_cluster.map(str::to_owned))?;
            Some(DrillRun {
                cluster,
                kind,
                incident: s.id,
                finished_at: finished.at,
                time_to_restore: finished.at - op.confirmed_at,
                succeeded: op.succeeded(),
            })
        })
        .collect()
}

/// Where this quarter's requirement stands for one cluster and drill kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// A drill succeeded this quarter.
    Met { on: NaiveDate },
    /// Not yet this quarter; the last quarter's (if any) was done.
    Due { days_left: i64 },
    /// Not yet this quarter, and the previous quarter went without one as well.
    Overdue { days_left: i64 },
}

/// The verdict for one cluster and kind: the last successful drill and the requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub cluster: String,
    pub kind: DrillKind,
    /// The last successful drill.
    pub last: Option<DrillRun>,
    /// The last attempt, when it failed after the last success.
    pub failed_since: Option<DrillRun>,
    pub requirement: Requirement,
}

pub fn standing(runs: &[DrillRun], cluster: &str, kind: DrillKind, today: NaiveDate) -> Standing {
    let mine = || {
        runs.iter()
            .filter(move |r| r.cluster == cluster && r.kind == kind)
    };
    let last = mine()
        .filter(|r| r.succeeded)
        .max_by_key(|r| r.finished_at)
        .cloned();
    let failed_since = mine()
        .filter(|r| !r.succeeded)
        .filter(|r| last.as_ref().is_none_or(|l| r.finished_at > l.finished_at))
        .max_by_key(|r| r.finished_at)
        .cloned();
    let quarter = Quarter::of(today);
    let days_left = quarter.days_left(today);
    let requirement = match &last {
        Some(l) if quarter.contains(l.finished_at.date_naive()) => Requirement::Met {
            on: l.finished_at.date_naive(),
        },
        Some(l) if quarter.previous().contains(l.finished_at.date_naive()) => {
            Requirement::Due { days_left }
        }
        Some(_) => Requirement::Overdue { days_left },
        None => Requirement::Due { days_left },
    };
    Standing {
        cluster: cluster.to_owned(),
        kind,
        last,
        failed_since,
        requirement,
    }
}

/// Clusters to report: the configured ones first, then any other seen in drills.
pub fn clusters(configured: &[String], runs: &[DrillRun]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in configured {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    let seen: BTreeSet<&String> = runs.iter().map(|r| &r.cluster).collect();
    for c in seen {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

/// A reminder owed: the requirement is not met and the quarter ends within `days_before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    /// Unique per cluster, kind and quarter: `drill-due:orders:pitr:2026Q4`.
    pub key: String,
    pub text: String,
}

pub fn reminders(
    clusters: &[String],
    runs: &[DrillRun],
    today: NaiveDate,
    days_before: i64,
) -> Vec<Reminder> {
    let quarter = Quarter::of(today);
    let days_left = quarter.days_left(today);
    if days_left > days_before {
        return Vec::new();
    }
    let mut out = Vec::new();
    for cluster in clusters {
        for kind in DrillKind::ALL {
            let s = standing(runs, cluster, kind, today);
            if matches!(s.requirement, Requirement::Met { .. }) {
                continue;
            }
            let last = match &s.last {
                Some(l) => format!("last one {}", l.finished_at.format("%Y-%m-%d")),
                None => "never done".to_string(),
            };
            out.push(Reminder {
                key: format!("drill-due:{cluster}:{}:{}", kind.id(), quarter.label()),
                text: format!(
                    "Drill due (SOP §10.1): {} of {cluster} not done in {} ({last}); the quarter ends in {} ({}). Run `{}` in a channel without an incident.",
                    kind.title(),
                    quarter.label(),
                    days(days_left),
                    quarter.last_day(),
                    kind.command(),
                ),
            });
        }
    }
    out
}

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

/// The drill's time to restore against the tier's RTO target, when one is known.
pub fn rto_comparison(
    time_to_restore: chrono::Duration,
    rto: Option<chrono::Duration>,
) -> Option<String> {
    let rto = rto?;
    Some(if time_to_restore <= rto {
        format!(
            "within the RTO target of {} ({} to spare)",
            duration_text(rto),
            duration_text(rto - time_to_restore)
        )
    } else {
        format!(
            "MISSES the RTO target of {} by {}",
            duration_text(rto),
            duration_text(time_to_restore - rto)
        )
    })
}

/// The DR plan's review date, flagged when it has passed.
pub fn review_line(next_review: Option<NaiveDate>, today: NaiveDate) -> Option<String> {
    let review = next_review?;
    let until = (review - today).num_days();
    Some(if until < 0 {
        format!(
            "DR plan review OVERDUE: it was due {review} ({} ago). Review the plan and set its next_review.",
            days(-until)
        )
    } else {
        format!("DR plan next review: {review} (in {}).", days(until))
    })
}

/// `/dr drills` and `drbot drills`: per cluster, the last drill of each kind and this
/// quarter's requirement.
pub fn view(
    configured: &[String],
    runs: &[DrillRun],
    today: NaiveDate,
    rto: &dyn Fn(&str) -> Option<chrono::Duration>,
    next_review: Option<NaiveDate>,
) -> String {
    let quarter = Quarter::of(today);
    let mut out = format!(
        "Drills (SOP §10.1: a full restore and a PITR restore per quarter). {} ends {} ({} left).\n",
        quarter.label(),
        quarter.last_day(),
        days(quarter.days_left(today))
    );
    let clusters = clusters(configured, runs);
    if clusters.is_empty() {
        out.push_str(
            "No database cluster is configured and no drill has run. Set safety.default_cluster or offsite.clusters, or run `/dr drill latest cluster=<name>`.\n",
        );
    }
    let mut todo = false;
    for cluster in &clusters {
        out.push_str(&format!("{cluster}:\n"));
        for kind in DrillKind::ALL {
            let s = standing(runs, cluster, kind, today);
            let last = match &s.last {
                Some(l) => {
                    let mut t = format!(
                        "last {} (INC-{}), time to restore {}",
                        l.finished_at.format("%Y-%m-%d %H:%MZ"),
                        l.incident,
                        duration_text(l.time_to_restore)
                    );
                    if let Some(c) = rto_comparison(l.time_to_restore, rto(cluster)) {
                        t.push_str(&format!(", {c}"));
                    }
                    t
                }
                None => "never done".into(),
            };
            let verdict = match s.requirement {
                Requirement::Met { on } => format!("met ({on})"),
                Requirement::Due { days_left } => {
                    todo = true;
                    format!("due, {} left", days(days_left))
                }
                Requirement::Overdue { days_left } => {
                    todo = true;
                    format!(
                        "OVERDUE: {} went without one; {} left in {}",
                        quarter.previous().label(),
                        days(days_left),
                        quarter.label()
                    )
                }
            };
            out.push_str(&format!(
                "  {}: {last}. {}: {verdict}.\n",
                kind.title(),
                quarter.label()
            ));
            if let Some(f) = &s.failed_since {
                out.push_str(&format!(
                    "    last attempt FAILED {} (INC-{}); see its timeline.\n",
                    f.finished_at.format("%Y-%m-%d %H:%MZ"),
                    f.incident
                ));
            }
        }
    }
    if let Some(line) = review_line(next_review, today) {
        out.push_str(&line);
        out.push('\n');
    }
    if todo {
        out.push_str(
            "Run `/dr drill latest` and `/dr drill pitr <timestamp>` in a channel without an incident (add cluster=<name> for another cluster).",
        );
    } else {
        out.push_str("Every required drill is done this quarter.");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn run(kind: DrillKind, at: &str, ok: bool) -> DrillRun {
        DrillRun {
            cluster: "orders".into(),
            kind,
            incident: 1,
            finished_at: at.parse().unwrap(),
            time_to_restore: chrono::Duration::minutes(12),
            succeeded: ok,
        }
    }

    #[test]
    fn quarter_boundaries() {
        assert_eq!(Quarter::of(day("2026-01-01")).label(), "2026Q1");
        assert_eq!(Quarter::of(day("2026-03-31")).label(), "2026Q1");
        assert_eq!(Quarter::of(day("2026-04-01")).label(), "2026Q2");
        assert_eq!(Quarter::of(day("2026-09-30")).label(), "2026Q3");
        assert_eq!(Quarter::of(day("2026-12-31")).label(), "2026Q4");
        let q4 = Quarter::of(day("2026-11-15"));
        assert_eq!(q4.start(), day("2026-10-01"));
        assert_eq!(q4.last_day(), day("2026-12-31"));
        assert_eq!(q4.next().label(), "2027Q1");
        assert_eq!(Quarter::of(day("2027-02-01")).previous().label(), "2026Q4");
        assert_eq!(Quarter::of(day("2024-02-29")).last_day(), day("2024-03-31"));
    }

    #[test]
    fn days_left_counts_today() {
        let q = Quarter::of(day("2026-12-31"));
        assert_eq!(q.days_left(day("2026-12-31")), 1);
        assert_eq!(q.days_left(day("2026-12-18")), 14);
        assert_eq!(q.days_left(day("2026-10-01")), 92);
        assert_eq!(
            Quarter::of(day("2026-03-01")).days_left(day("2026-03-01")),
            31
        );
    }

    #[test]
    fn met_due_overdue() {
        let today = day("2026-12-02");
        let none: Vec<DrillRun> = vec![];
        assert_eq!(
            standing(&none, "orders", DrillKind::Full, today).requirement,
            Requirement::Due { days_left: 30 }
        );
        let this = vec![run(DrillKind::Full, "2026-10-05T10:00:00Z", true)];
        assert_eq!(
            standing(&this, "orders", DrillKind::Full, today).requirement,
            Requirement::Met {
                on: day("2026-10-05")
            }
        );
        // Another kind or cluster does not count.
        assert_eq!(
            standing(&this, "orders", DrillKind::Pitr, today).requirement,
            Requirement::Due { days_left: 30 }
        );
        assert_eq!(
            standing(&this, "billing", DrillKind::Full, today).requirement,
            Requirement::Due { days_left: 30 }
        );
        let last_quarter = vec![run(DrillKind::Pitr, "2026-09-30T23:00:00Z", true)];
        assert_eq!(
            standing(&last_quarter, "orders", DrillKind::Pitr, today).requirement,
            Requirement::Due { days_left: 30 }
        );
        let older = vec![run(DrillKind::Pitr, "2026-06-30T23:00:00Z", true)];
        assert_eq!(
            standing(&older, "orders", DrillKind::Pitr, today).requirement,
            Requirement::Overdue { days_left: 30 }
        );
        // A failed drill does not meet it, and is named.
        let failed = vec![run(DrillKind::Full, "2026-11-01T10:00:00Z", false)];
        let s = standing(&failed, "orders", DrillKind::Full, today);
        assert_eq!(s.requirement, Requirement::Due { days_left: 30 });
        assert!(s.last.is_none() && s.failed_since.is_some());
    }

    #[test]
    fn reminders_only_in_the_last_days_and_only_for_what_is_missing() {
        let clusters = vec!["orders".to_string()];
        let runs = vec![run(DrillKind::Full, "2026-10-05T10:00:00Z", true)];
        assert!(reminders(&clusters, &runs, day("2026-12-17"), 14).is_empty());
        let due = reminders(&clusters, &runs, day("2026-12-18"), 14);
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].key, "drill-due:orders:pitr:2026Q4");
        assert!(due[0].text.contains("14 days"), "{}", due[0].text);
        assert!(due[0].text.contains("/dr drill pitr"), "{}", due[0].text);
        assert_eq!(reminders(&clusters, &[], day("2026-12-31"), 14).len(), 2);
        // The next quarter has keys of its own.
        let q1 = reminders(&clusters, &runs, day("2027-03-20"), 14);
        assert!(q1.iter().all(|r| r.key.ends_with(":2027Q1")), "{q1:?}");
    }

    #[test]
    fn view_of_a_fresh_install_and_after_both_drills() {
        let clusters = vec!["orders".to_string()];
        let today = day("2026-12-02");
        let fresh = view(&clusters, &[], today, &|_| None, None);
        assert_eq!(fresh.matches("never done").count(), 2, "{fresh}");
        assert!(fresh.contains("due, 30 days left"), "{fresh}");
        assert!(!fresh.contains("RTO"), "{fresh}");
        let runs = vec![
            run(DrillKind::Full, "2026-12-02T10:12:00Z", true),
            run(DrillKind::Pitr, "2026-12-02T10:40:00Z", true),
        ];
        let done = view(&clusters, &runs, today, &|_| None, None);
        assert_eq!(done.matches("met (2026-12-02)").count(), 2, "{done}");
        assert!(done.contains("time to restore 12 m 00 s"), "{done}");
        assert!(done.contains("Every required drill is done"), "{done}");
    }

    #[test]
    fn rto_and_review_only_when_known() {
        let ttr = chrono::Duration::minutes(12);
        assert_eq!(rto_comparison(ttr, None), None);
        let within = rto_comparison(ttr, Some(chrono::Duration::minutes(30))).unwrap();
        assert!(within.contains("within the RTO target of 30 m"), "{within}");
        let over = rto_comparison(ttr, Some(chrono::Duration::minutes(10))).unwrap();
        assert!(over.contains("MISSES") && over.contains("by 2 m"), "{over}");
        let today = day("2026-12-02");
        assert_eq!(review_line(None, today), None);
        let ahead = review_line(Some(day("2026-12-12")), today).unwrap();
        assert!(ahead.contains("in 10 days") && !ahead.contains("OVERDUE"));
        let late = review_line(Some(day("2026-11-30")), today).unwrap();
        assert!(
            late.contains("OVERDUE") && late.contains("2 days ago"),
            "{late}"
        );
        let runs = vec![run(DrillKind::Full, "2026-12-02T10:12:00Z", true)];
        let shown = view(
            &["orders".to_string()],
            &runs,
            today,
            &|_| Some(chrono::Duration::minutes(15)),
            Some(day("2026-11-30")),
        );
        assert!(shown.contains("within the RTO target of 15 m"), "{shown}");
        assert!(shown.contains("DR plan review OVERDUE"), "{shown}");
    }
}
