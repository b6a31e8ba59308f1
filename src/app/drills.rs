//! SOP §10.1 drills and tabletop exercises on the engine: `/dr drills` and `drbot drills`
//! (drill results folded from the drill incidents' timelines), the "drill due" reminder (a
//! notice outside any incident, once per cluster, kind and quarter), tabletop files read from
//! under `[tabletop] dir`, and the scheduler's tabletop injects (`inject:<n>`).

use std::path::{Component, Path, PathBuf};

use tracing::warn;

use super::{App, AppError};
use crate::config::Settings;
use crate::features::drills::{self, DrillRun, Quarter};
use crate::features::tabletop;
use crate::incident::post::{Post, PostKind};
use crate::incident::{Draft, Policy};
use crate::incident::{Incident, exercise};
use crate::store::NewPost;

/// Largest exercise file read.
const MAX_EXERCISE_BYTES: u64 = 1 << 20;

/// What the drill and tabletop features need from the settings.
#[derive(Debug, Clone)]
pub struct DrillConfig {
    /// Where the "drill due" reminder goes; `None` = no reminder.
    pub channel: Option<String>,
    pub days_before: i64,
    /// The configured database clusters (the default one, then the offsite ones).
    pub clusters: Vec<String>,
    /// Tabletop files are read from under this directory.
    pub tabletop_dir: PathBuf,
}

impl DrillConfig {
    pub fn from_settings(settings: &Settings, policy: &Policy) -> DrillConfig {
        let mut clusters: Vec<String> = policy.default_cluster.iter().cloned().collect();
        for (name, _) in settings.offsite.cluster_prefixes().unwrap_or_default() {
            if !clusters.contains(&name) {
                clusters.push(name);
            }
        }
        DrillConfig {
            channel: settings
                .drills
                .channel
                .clone()
                .filter(|c| !c.trim().is_empty()),
            days_before: settings.drills.days_before_quarter_end,
            clusters,
            tabletop_dir: settings
                .tabletop
                .dir
                .clone()
                .filter(|d| !d.trim().is_empty())
                .map_or_else(|| PathBuf::from("."), PathBuf::from),
        }
    }
}

impl App {
    /// Every finished drill restore, from the drill incidents' timelines.
    pub async fn drill_runs(&self) -> Result<Vec<DrillRun>, AppError> {
        let mut runs = Vec::new();
        for id in self.store.drill_incidents().await? {
            if let Some(state) = self.state(id).await? {
                runs.extend(drills::runs_of(
                    &state,
                    self.policy.default_cluster.as_deref(),
                ));
            }
        }
        Ok(runs)
    }

    /// `/dr drills` and `drbot drills`.
    pub async fn drills_view(&self) -> Result<String, AppError> {
        let runs = self.drill_runs().await?;
        let today = self.clock.now().date_naive();
        let next_review = self.continuity.plan.as_ref().and_then(|p| p.next_review);
        Ok(drills::view(
            &self.drills.clusters,
            &runs,
            today,
            &|cluster| self.continuity.cluster_rto(cluster),
            next_review,
        ))
    }

    /// The "drill due" reminders owed now, each posted once (per cluster, kind and quarter)
    /// however many replicas run this. Returns how many this call queued.
    pub async fn remind_drills(&self) -> Result<usize, AppError> {
        let Some(channel) = &self.drills.channel else {
            return Ok(0);
        };
        let now = self.clock.now();
        let today = now.date_naive();
        if Quarter::of(today).days_left(today) > self.drills.days_before {
            return Ok(0);
        }
        let runs = self.drill_runs().await?;
        let clusters = drills::clusters(&self.drills.clusters, &runs);
        let mut queued = 0;
        for reminder in drills::reminders(&clusters, &runs, today, self.drills.days_before) {
            let post = Post {
                kind: PostKind::Notice,
                text: reminder.text,
                sandbox: false,
                in_thread: false,
                preview: None,
                publication: None,
                page: None,
                followup: None,
            };
            let post = NewPost {
                channel: channel.clone(),
                body: serde_json::to_string(&post).unwrap_or_default(),
                created_at: now,
                status: false,
            };
            if self.store.post_notice(&reminder.key, post).await? {
                queued += 1;
            }
        }
        if queued > 0 {
            self.outbox_ready.notify_one();
        }
        Ok(queued)
    }

    /// Post the tabletop injects that are due, and end the exercise after the last one.
    pub(super) async fn keep_tabletop(&self, state: &mut Incident) -> Result<(), AppError> {
        self.commit_owed(state, 8, |state, now| {
            let due = tabletop::due(state, now)?;
            let mut key = Some(due.key());
            let drafts = due
                .events()
                .into_iter()
                .map(|k| (Draft::from(k), key.take()))
                .collect();
            Some((drafts, ()))
        })
        .await
        .map(drop)
    }

    /// Read and check an exercise file for `/dr tabletop start`; the error says what to fix.
    pub(super) fn load_exercise(&self, file: &str) -> Result<exercise::Exercise, String> {
        let path = inside(&self.drills.tabletop_dir, file)?;
        let meta = std::fs::metadata(&path).map_err(|e| {
            format!(
                "cannot read {file} in the tabletop directory {} ({e}).",
                self.drills.tabletop_dir.display()
            )
        })?;
        if !meta.is_file() || meta.len() > MAX_EXERCISE_BYTES {
            return Err(format!(
                "{file} is not an exercise file (a YAML file of at most 1 MiB)."
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            warn!(file, error = %e, "could not read a tabletop file");
            format!("cannot read {file} ({e}).")
        })?;
        exercise::load(file, &text).map_err(|e| e.0)
    }
}

/// `file` under `dir`, refusing anything that leaves it (absolute paths, `..`, symlinks out).
fn inside(dir: &Path, file: &str) -> Result<PathBuf, String> {
    let escape = || {
        format!(
            "{file} is outside the tabletop directory; give a path relative to it (set by tabletop.dir), without `..`."
        )
    };
    let rel = Path::new(file);
    if file.trim().is_empty()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(escape());
    }
    let base = dir.canonicalize().map_err(|e| {
        format!(
            "the tabletop directory {} cannot be read ({e}); fix tabletop.dir.",
            dir.display()
        )
    })?;
    match base.join(rel).canonicalize() {
        Ok(real) if real.starts_with(&base) => Ok(real),
        Ok(_) => Err(escape()),
        Err(e) => Err(format!(
            "cannot read {file} in the tabletop directory {} ({e}).",
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ex")).unwrap();
        std::fs::write(dir.path().join("ex/a.yaml"), "x").unwrap();
        assert!(inside(dir.path(), "ex/a.yaml").is_ok());
        assert!(inside(dir.path(), "./ex/a.yaml").is_ok());
        for bad in ["../a.yaml", "ex/../../a.yaml", "/etc/passwd", ""] {
            let e = inside(dir.path(), bad).unwrap_err();
            assert!(e.contains("outside the tabletop directory"), "{bad}: {e}");
        }
        let missing = inside(dir.path(), "ex/none.yaml").unwrap_err();
        assert!(missing.contains("cannot read ex/none.yaml"), "{missing}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("b.yaml"), "x").unwrap();
        std::os::unix::fs::symlink(other.path().join("b.yaml"), dir.path().join("b.yaml")).unwrap();
        let e = inside(dir.path(), "b.yaml").unwrap_err();
        assert!(e.contains("outside"), "{e}");
    }
}
