//! The engine as a library, built from settings as the binary builds it, and the operator the
//! tests talk to it as.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use drbot::app::App;
use drbot::clock::ManualClock;
use drbot::cluster::Cluster;
use drbot::cluster::kube::Kube;
use drbot::cluster::offsite::Offsite;
use drbot::config::{KubernetesSettings, Settings};
use drbot::incident::{Actor, Caller, Event, EventKind, Outcome, Plan};
use serde_json::{Value, json};

use super::k8s_api::K8sApi;

/// The channel [`say`] speaks in.
pub const CHANNEL: &str = "ops";

/// Settings on the database at `url`, the simulated cluster's state in `state_file` (empty: kept
/// in memory), then `extra` on top.
pub fn settings(url: String, state_file: String, extra: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = [
        ("DRBOT__DATABASE__URL".to_string(), url),
        ("DRBOT__SANDBOX__STATE_FILE".to_string(), state_file),
    ]
    .into_iter()
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::load_from(None, Some(env)).expect("settings")
}

/// The SQLite database file in `dir`, as a database URL.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("drbot.db").display())
}

/// The engine on `settings`.
pub async fn build(settings: &Settings, clock: &ManualClock) -> App {
    App::build(settings, Arc::new(clock.clone()))
        .await
        .expect("app")
}

/// The engine on SQLite in `dir`, the simulated cluster in memory, `extra` settings on top.
pub async fn sqlite_app(dir: &Path, clock: &ManualClock, extra: &[(&str, &str)]) -> App {
    build(&settings(sqlite_url(dir), String::new(), extra), clock).await
}

/// [`sqlite_app`] driving `cluster` instead of the simulated one.
pub async fn app_with_cluster(
    dir: &Path,
    cluster: impl Cluster + 'static,
    clock: &ManualClock,
    extra: &[(&str, &str)],
) -> App {
    let mut app = sqlite_app(dir, clock, extra).await;
    app.cluster = Arc::new(cluster);
    app
}

/// An operator on the console.
pub fn alice() -> Caller {
    Caller {
        actor: Actor::new("console", "alice", "alice"),
        operator: true,
    }
}

/// `line` from [`alice`] in [`CHANNEL`]; the reply's text.
pub async fn say(app: &App, line: &str) -> String {
    app.handle(CHANNEL, &alice(), line)
        .await
        .expect("handle")
        .text()
        .to_string()
}

/// The first incident's events.
pub async fn events(app: &App) -> Vec<Event> {
    app.store.events(1).await.expect("events")
}

/// The finish of an operation, once it has one: outcome, phase, detail and result.
pub async fn finished(app: &App, op: &str) -> Option<(Outcome, String, String, Option<Value>)> {
    events(app).await.into_iter().find_map(|e| match e.kind {
        EventKind::OperationFinished {
            operation,
            outcome,
            phase,
            detail,
            result,
        } if operation == op => Some((outcome, phase, detail, result)),
        _ => None,
    })
}

/// The plan a preview showed.
pub async fn previewed_plan(app: &App, preview: &str) -> Plan {
    events(app)
        .await
        .into_iter()
        .find_map(|e| match e.kind {
            EventKind::LaunchPreviewed {
                preview: p, plan, ..
            } if p == preview => Some(plan),
            _ => None,
        })
        .expect("preview")
}

/// The `kubernetes` backend's settings the cluster tests share: both freeze modes, two database
/// namespaces.
pub fn kube_settings() -> KubernetesSettings {
    KubernetesSettings {
        freeze_mode: vec!["argocd-window".into(), "flux".into()],
        database_namespaces: vec!["db".into(), "pg-analytics".into()],
        timeout_seconds: 10,
        ..KubernetesSettings::default()
    }
}

/// What a freeze must leave exactly as it found: the spec and the annotations (an empty
/// annotation map is no map, as the API server stores it).
pub fn frozen_parts(object: &Value) -> Value {
    let annotations = match &object["metadata"]["annotations"] {
        Value::Object(m) if m.is_empty() => Value::Null,
        other => other.clone(),
    };
    json!({"spec": object["spec"], "annotations": annotations})
}

/// The `kubernetes` backend talking to the stand-in `api`.
pub fn kube(
    api: &K8sApi,
    settings: &KubernetesSettings,
    offsite: Option<Offsite>,
    clock: &ManualClock,
) -> Kube {
    Kube::new(api.client(), settings, offsite, Arc::new(clock.clone())).expect("kube backend")
}
