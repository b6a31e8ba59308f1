//! What drbot changed in the sandbox, and how it is kept in a file that outlives drbot.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::MutexGuard;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Sandbox;
use crate::cluster::ClusterError;
use crate::incident::OperationKind;

/// The recorded-state keys of the two freeze targets.
pub(super) const ARGO_KEY: &str = "argocd_appproject/default";
pub(super) const FLUX_KEY: &str = "flux_kustomization/flux-system/apps";

/// The freeze targets as they stand now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct GitOps {
    #[serde(default)]
    pub(super) argocd_sync_windows: Vec<Value>,
    #[serde(default)]
    pub(super) flux_suspend: bool,
}

impl GitOps {
    pub(super) fn snapshot(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            ARGO_KEY.into(),
            json!({ "syncWindows": self.argocd_sync_windows }),
        );
        m.insert(FLUX_KEY.into(), json!({ "suspend": self.flux_suspend }));
        Value::Object(m)
    }
}

/// What drbot changed in the sandbox: the only part of the world that is not derived from
/// the clock.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct State {
    #[serde(default = "state_version")]
    pub(super) version: u32,
    #[serde(default)]
    pub(super) objects: BTreeMap<String, Record>,
    #[serde(default)]
    pub(super) gitops: GitOps,
}

fn state_version() -> u32 {
    1
}

impl State {
    pub(super) fn new() -> State {
        State {
            version: state_version(),
            ..State::default()
        }
    }
}

/// An object drbot created, with what observing it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) name: String,
    pub(super) kind: OperationKind,
    pub(super) created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) namespace: Option<String>,
    /// Source database cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) backup: Option<String>,
    /// Where WAL replay stops: the PITR target, or the archive's end at launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) replay_to: Option<DateTime<Utc>>,
    /// Freeze: the targets' state before it, for the unfreeze.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) prior: Option<Value>,
    /// Unfreeze: the state it put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) put_back: Option<Value>,
}

pub(super) fn load(path: &Path) -> Result<State, ClusterError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            ClusterError::Unavailable(format!(
                "sandbox state file {} is not valid: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::new()),
        Err(e) => Err(ClusterError::Unavailable(format!(
            "cannot read sandbox state file {}: {e}",
            path.display()
        ))),
    }
}

/// Temp file + rename, so a crash leaves either the old state or the new one.
pub(super) fn save(path: &Path, state: &State) -> Result<(), ClusterError> {
    let fail = |what: &str, e: std::io::Error| {
        ClusterError::Unavailable(format!(
            "cannot {what} sandbox state file {}: {e}",
            path.display()
        ))
    };
    let bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| ClusterError::Unavailable(format!("cannot encode sandbox state: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sandbox-state.json".into());
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        fail("replace", e)
    })
}

impl Sandbox {
    /// The simulated cluster as it stands. With a state file, the file is the cluster: it is
    /// read again each time, so several drbot replicas see one cluster, as they would a real
    /// one (an unreadable file leaves the last state read).
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = &self.config.state_file
            && let Ok(current) = load(path)
        {
            *state = current;
        }
        state
    }

    /// Held while a launch reads, changes and writes the state file, so two replicas
    /// launching at once cannot lose each other's object.
    pub(super) fn file_lock(&self) -> Result<Option<fs::File>, ClusterError> {
        let Some(path) = &self.config.state_file else {
            return Ok(None);
        };
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let fail = |e: std::io::Error| {
            ClusterError::Unavailable(format!(
                "cannot lock sandbox state file {}: {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(fail)?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(fail)?;
        file.lock().map_err(fail)?;
        Ok(Some(file))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[tokio::test]
    async fn state_file_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("sandbox.json");
        let c = clock();
        let config = SandboxConfig {
            state_file: Some(path.clone()),
            ..SandboxConfig::default()
        };
        let first = Sandbox::new(config.clone(), Arc::new(c.clone())).expect("sandbox");
        let s = latest("orders-i3-op4");
        first.launch(&s).await.expect("launch");
        first
            .launch(&spec(OperationKind::Freeze, "drbot-inc3-op1-freeze"))
            .await
            .expect("launch");
        drop(first);

        c.advance(Duration::minutes(10));
        let second = Sandbox::new(config, Arc::new(c.clone())).expect("sandbox");
        let again = second.launch(&s).await.expect("launch");
        assert!(again.already_existed);
        assert_eq!(second.created_objects(), 0);
        assert_eq!(
            second.lock().objects["orders-i3-op4"].created_at,
            t("2026-02-08T10:00:00Z")
        );
        c.advance(Duration::minutes(2));
        assert_eq!(
            second.observe(&s).await.expect("observe").done,
            Some(Outcome::Succeeded)
        );
        assert!(
            second.lock().gitops.flux_suspend,
            "the freeze is still applied"
        );
        // No temporary file left behind; the lock file that replicas share stays.
        let mut leftovers: Vec<_> = fs::read_dir(path.parent().expect("dir"))
            .expect("read dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        leftovers.sort();
        assert_eq!(
            leftovers,
            vec![
                std::ffi::OsString::from("sandbox.json"),
                std::ffi::OsString::from("sandbox.json.lock")
            ]
        );
    }

    #[tokio::test]
    async fn a_corrupt_state_file_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sandbox.json");
        fs::write(&path, "not json").expect("write");
        let config = SandboxConfig {
            state_file: Some(path),
            ..SandboxConfig::default()
        };
        let r = Sandbox::new(config, Arc::new(clock()));
        assert!(matches!(r, Err(ClusterError::Unavailable(m)) if m.contains("not valid")));
        let bad = SandboxConfig {
            speed: 0.0,
            ..SandboxConfig::default()
        };
        assert!(matches!(
            Sandbox::new(bad, Arc::new(clock())),
            Err(ClusterError::Invalid(_))
        ));
    }
}
