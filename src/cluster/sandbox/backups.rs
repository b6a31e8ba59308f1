//! The simulated world as a pure function of the clock: the offsite bucket, Velero's nightly
//! backups, the source database clusters with their base backups and WAL archive, and the
//! report that sums them up.

use chrono::{DateTime, Days, Duration, NaiveTime, Utc};

use super::Sandbox;
use crate::cluster::manifests::fmt;
use crate::cluster::{BackupsReport, ClusterError};
use crate::incident::RecoveryWindow;

pub(super) const VELERO_NAMESPACE: &str = "velero";
pub(super) const SCHEDULE: &str = "nightly";
pub(super) const SCHEDULE_CRON: &str = "0 2 * * *";
pub(super) const BSL: &str = "offsite";
pub(super) const BUCKET: &str = "s3://dr-offsite";

/// Backups reach back at least this far, so the PITR window always spans a full week.
pub(super) const COVERAGE_DAYS: i64 = 7;
pub(super) const VELERO_BACKUP_HOUR: u32 = 2;
pub(super) const VELERO_BACKUP_MINUTES: i64 = 7;
pub(super) const BASE_BACKUP_HOUR: u32 = 3;
/// Archiving trails the primary by about one WAL switch.
pub(super) const WAL_LAG_SECONDS: i64 = 60;

pub(super) struct SourceCluster {
    pub(super) name: &'static str,
    pub(super) instances: u32,
    pub(super) volume: &'static str,
    /// How long its nightly base backup runs.
    pub(super) backup_minutes: i64,
}

pub(super) const SOURCE_CLUSTERS: &[SourceCluster] = &[
    SourceCluster {
        name: "orders",
        instances: 2,
        volume: "20Gi",
        backup_minutes: 41,
    },
    SourceCluster {
        name: "payments",
        instances: 2,
        volume: "50Gi",
        backup_minutes: 23,
    },
];

pub(super) struct VeleroBackup {
    pub(super) name: String,
    pub(super) completed: bool,
    pub(super) finished: DateTime<Utc>,
    pub(super) warnings: u32,
    pub(super) errors: u32,
}

pub(super) struct BaseBackup {
    pub(super) name: String,
    pub(super) ended: DateTime<Utc>,
}

pub(super) fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

/// Finished daily runs, newest first, back to the first one that ended at least
/// [`COVERAGE_DAYS`] before `now`.
pub(super) fn daily_runs(
    now: DateTime<Utc>,
    hour: u32,
    took: Duration,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let at = NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN);
    let horizon = now - Duration::days(COVERAGE_DAYS);
    let mut runs = Vec::new();
    let mut day = Some(now.date_naive());
    while let Some(d) = day {
        let start = d.and_time(at).and_utc();
        let end = start + took;
        if end <= now {
            runs.push((start, end));
            if end <= horizon {
                break;
            }
        }
        day = d.checked_sub_days(Days::new(1));
    }
    runs
}

/// Newest first; the oldest one only partly succeeded, so the preflight has something to
/// point out.
pub(super) fn velero_backups(now: DateTime<Utc>) -> Vec<VeleroBackup> {
    let took = Duration::minutes(VELERO_BACKUP_MINUTES);
    let runs = daily_runs(now, VELERO_BACKUP_HOUR, took);
    let mut out: Vec<VeleroBackup> = runs
        .iter()
        .map(|&(start, end)| VeleroBackup {
            name: format!("{SCHEDULE}-{}", stamp(start)),
            completed: true,
            finished: end,
            warnings: 0,
            errors: 0,
        })
        .collect();
    if let Some(&(oldest, _)) = runs.last() {
        let start = oldest - Duration::days(1);
        out.push(VeleroBackup {
            name: format!("{SCHEDULE}-{}", stamp(start)),
            completed: false,
            finished: start + took + Duration::minutes(2),
            warnings: 3,
            errors: 1,
        });
    }
    out
}

pub(super) fn base_backups(cluster: &SourceCluster, now: DateTime<Utc>) -> Vec<BaseBackup> {
    daily_runs(
        now,
        BASE_BACKUP_HOUR,
        Duration::minutes(cluster.backup_minutes),
    )
    .into_iter()
    .map(|(start, end)| BaseBackup {
        name: format!("{}-{}", cluster.name, stamp(start)),
        ended: end,
    })
    .collect()
}

pub(super) fn wal_archived_until(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::seconds(WAL_LAG_SECONDS)
}

/// Oldest complete base backup's end … newest archived WAL.
pub(super) fn recovery_window(
    cluster: &SourceCluster,
    now: DateTime<Utc>,
) -> Option<RecoveryWindow> {
    let oldest = base_backups(cluster, now).pop()?;
    Some(RecoveryWindow {
        start: oldest.ended,
        end: wal_archived_until(now),
    })
}

pub(super) fn known_clusters() -> String {
    SOURCE_CLUSTERS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn source_cluster(name: Option<&str>) -> Result<&'static SourceCluster, ClusterError> {
    let Some(name) = name else {
        return Err(ClusterError::Invalid(format!(
            "no database cluster given; known: {}",
            known_clusters()
        )));
    };
    SOURCE_CLUSTERS
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            ClusterError::Invalid(format!(
                "unknown cluster {name}; known: {}",
                known_clusters()
            ))
        })
}

impl Sandbox {
    pub(super) fn backups_now(&self) -> BackupsReport {
        let now = self.clock.now();
        let velero = velero_backups(now);
        let mut lines = vec![format!(
            "offsite bucket {BUCKET} reachable, versioning Enabled"
        )];
        let completed = velero.iter().filter(|b| b.completed).count();
        match velero.iter().find(|b| b.completed) {
            Some(newest) => lines.push(format!(
                "Velero: {} backups ({completed} Completed), newest Completed {} at {}",
                velero.len(),
                newest.name,
                fmt(newest.finished)
            )),
            None => lines.push("Velero: no Completed backup".into()),
        }
        for b in velero.iter().filter(|b| !b.completed) {
            lines.push(format!(
                "Velero: {} PartiallyFailed ({} warnings, {} error)",
                b.name, b.warnings, b.errors
            ));
        }
        lines.push(format!(
            "Velero BSL {BSL}: Available; schedule {SCHEDULE} ({SCHEDULE_CRON}) not paused"
        ));
        let ns = self.db_namespace();
        for cluster in SOURCE_CLUSTERS {
            let backups = base_backups(cluster, now);
            if let (Some(newest), Some(oldest)) = (backups.first(), backups.last()) {
                lines.push(format!(
                    "{ns}/{}: {} base backups, newest {} (ended {})",
                    cluster.name,
                    backups.len(),
                    newest.name,
                    fmt(newest.ended)
                ));
                lines.push(format!(
                    "{ns}/{}: oldest base backup {} (ended {})",
                    cluster.name,
                    oldest.name,
                    fmt(oldest.ended)
                ));
            }
            lines.push(format!(
                "{ns}/{}: WAL archived up to {}",
                cluster.name,
                fmt(wal_archived_until(now))
            ));
            if let Some(w) = recovery_window(cluster, now) {
                lines.push(format!(
                    "{ns}/{}: PITR window {} … {}",
                    cluster.name,
                    fmt(w.start),
                    fmt(w.end)
                ));
            }
        }
        BackupsReport { ok: true, lines }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::cluster::Cluster;

    #[tokio::test]
    async fn backups_report_is_short_and_complete() {
        let (_, sb) = sandbox_on_clock(1.0);
        let r = sb.backups().await.expect("backups");
        assert!(r.ok);
        let all = r.lines.join("\n");
        for expected in [
            "versioning Enabled",
            "newest Completed nightly-20260208020000 at 2026-02-08T02:07:00Z",
            "PartiallyFailed",
            "BSL offsite: Available",
            "db/orders: 8 base backups, newest orders-20260208030000 (ended 2026-02-08T03:41:00Z)",
            "db/orders: oldest base backup orders-20260201030000 (ended 2026-02-01T03:41:00Z)",
            "db/orders: WAL archived up to 2026-02-08T09:59:00Z",
            "db/payments: PITR window 2026-02-01T03:23:00Z … 2026-02-08T09:59:00Z",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
        assert!(r.lines.iter().all(|l| l.chars().count() <= 120), "{all}");
    }
}
