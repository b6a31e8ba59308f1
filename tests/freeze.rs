//! Freezes against the Kubernetes API stand-in serving each Argo CD release drbot supports
//! (v2.14.21, v3.0.23 and v3.5.1 CRDs, pruning like a real API server), and Flux.
//!
//! Argo CD before 3.1 has no `syncWindows[].description` (pruned) and no
//! `syncPolicy.automated.enabled`: drbot finds its deny window by its identity, and turns
//! auto-sync off by removing `automated` when told the version.

mod support;

use chrono::{DateTime, Utc};
use drbot::clock::ManualClock;
use drbot::cluster::kube::{FREEZE_ANNOTATION, Kube};
use drbot::cluster::{Cluster, ClusterError};
use drbot::config::KubernetesSettings;
use drbot::incident::{OperationKind, OperationSpec, Outcome};
use serde_json::{Value, json};
use support::crd_release::{ArgoCd, Releases};
use support::engine::{self, frozen_parts, kube_settings};
use support::k8s_api::K8sApi;
use support::recovery::{app_project, kustomization, t};

/// Every Argo CD release the stand-in serves, with the `kubernetes.argocd_version` that
/// names it.
const ARGOCD: [(ArgoCd, &str); 3] = [
    (ArgoCd::V2_14, "2.14"),
    (ArgoCd::V3_0, "3.0"),
    (ArgoCd::V3_5, "3.5"),
];

fn t0() -> DateTime<Utc> {
    t("2026-02-08T10:00:00Z")
}

fn argocd(release: ArgoCd) -> K8sApi {
    K8sApi::start_with(Releases {
        argocd: release,
        ..Releases::default()
    })
}

fn kube(api: &K8sApi, settings: &KubernetesSettings, clock: &ManualClock) -> Kube {
    engine::kube(api, settings, None, clock)
}

/// Nothing refused; what was pruned from drbot's writes (seeds excluded).
fn pruned_writes(api: &K8sApi) -> Vec<String> {
    assert!(api.schemas_loaded(), "the CRD schemas must be loaded");
    assert!(api.invalid().is_empty(), "{:#?}", api.invalid());
    api.pruned()
        .into_iter()
        .filter(|p| p.verb != "put")
        .map(|p| format!("{} {}/{}: {}", p.verb, p.resource, p.name, p.path))
        .collect()
}

fn no_invalid(api: &K8sApi) {
    assert_eq!(pruned_writes(api), Vec::<String>::new());
}

// ---- helpers -------------------------------------------------------------------------------

fn spec(kind: OperationKind, name: &str) -> OperationSpec {
    let mut s = OperationSpec::new("op1", kind, name);
    s.reason = Some("INC-1 orders wiped".into());
    s
}

async fn freeze(k: &Kube, name: &str) -> Value {
    let s = spec(OperationKind::Freeze, name);
    k.launch(&s).await.expect("launch freeze");
    let o = k.observe(&s).await.expect("observe freeze");
    assert_eq!(o.done, Some(Outcome::Succeeded), "{}", o.detail);
    o.result.expect("prior")
}

async fn unfreeze(k: &Kube, prior: &Value) {
    let mut s = spec(OperationKind::Unfreeze, "drbot-inc1-op9-unfreeze");
    s.prior = Some(prior.clone());
    k.launch(&s).await.expect("launch unfreeze");
    let o = k.observe(&s).await.expect("observe unfreeze");
    assert_eq!(o.done, Some(Outcome::Succeeded), "{}", o.detail);
    assert_eq!(o.result.as_ref(), Some(prior));
}

/// drbot's window as the freeze records it: its `HashIdentity` fields.
fn drbot_window() -> Value {
    json!({"kind": "deny", "schedule": "* * * * *", "duration": "24h", "applications": ["*"],
           "namespaces": [], "clusters": [], "timeZone": "UTC", "andOperator": false})
}

#[tokio::test]
async fn a_deny_window_of_this_incident_is_not_added_twice() {
    // Argo CD 3.1 and later keep the description that names the incident.
    let api = K8sApi::start();
    let mut project = app_project();
    let original = project["spec"]["syncWindows"].clone();
    project["spec"]["syncWindows"].as_array_mut().unwrap().push(
        json!({"kind": "deny", "schedule": "* * * * *", "duration": "24h",
                     "applications": ["*"], "manualSync": false, "timeZone": "UTC",
                     "description": "drbot freeze drbot-inc1-op1-freeze: earlier attempt"}),
    );
    api.put(project);
    let clock = ManualClock::new(t0());
    let settings = KubernetesSettings::default();
    let k = kube(&api, &settings, &clock);

    let prior = freeze(&k, "drbot-inc1-op1-freeze").await;
    assert_eq!(
        prior,
        json!({"argocd_appproject/argocd/default": {"syncWindow": drbot_window(), "added": true}})
    );
    let windows =
        api.get("appprojects", "argocd", "default").unwrap()["spec"]["syncWindows"].clone();
    assert_eq!(windows.as_array().unwrap().len(), 2, "{windows}");

    // Launching again (a restart) changes nothing and keeps the recorded state.
    let patches = api.requests_to("patch", "appprojects").len();
    let again = k
        .launch(&spec(OperationKind::Freeze, "drbot-inc1-op1-freeze"))
        .await
        .expect("relaunch");
    assert!(again.already_existed);
    assert_eq!(api.requests_to("patch", "appprojects").len(), patches);
    assert_eq!(freeze(&k, "drbot-inc1-op1-freeze").await, prior);
    // Another incident's freeze leaves this one's target to it.
    let other = spec(OperationKind::Freeze, "drbot-inc2-op1-freeze");
    let plan = k.plan(&other).await.expect("plan");
    assert!(
        plan.summary[0].contains("already frozen by drbot-inc1-op1-freeze"),
        "{:?}",
        plan.summary
    );

    unfreeze(&k, &prior).await;
    let after = api.get("appprojects", "argocd", "default").unwrap();
    assert_eq!(after["spec"]["syncWindows"], original);
    assert!(
        after["metadata"]["annotations"]
            .get(FREEZE_ANNOTATION)
            .is_none()
    );
    // The sandbox's recorded state is refused by name.
    let mut foreign = spec(OperationKind::Unfreeze, "drbot-inc1-op9-unfreeze");
    foreign.prior = Some(json!({"argocd_appproject/default": {"syncWindows": []}}));
    match k.plan(&foreign).await {
        Err(ClusterError::Invalid(m)) => assert!(m.contains("unknown freeze target"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    no_invalid(&api);
}

fn application(name: &str, automated: Option<Value>) -> Value {
    let mut spec = json!({
        "project": "default",
        "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
        "source": {"repoURL": "https://git.example.net/fleet.git", "path": name, "targetRevision": "main"},
    });
    if let Some(a) = automated {
        spec["syncPolicy"] = json!({"automated": a, "syncOptions": ["CreateNamespace=true"]});
    }
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": spec,
    })
}

async fn auto_sync_round_trip(release: ArgoCd, version: &str) -> Vec<Value> {
    let api = argocd(release);
    api.put(application(
        "web",
        Some(json!({"prune": true, "selfHeal": true})),
    ));
    api.put(application(
        "api",
        Some(json!({"enabled": true, "selfHeal": false})),
    ));
    api.put(application("manual", None));
    let before: Vec<Value> = ["web", "api", "manual"]
        .iter()
        .map(|n| frozen_parts(&api.get("applications", "argocd", n).unwrap()))
        .collect();
    let settings = KubernetesSettings {
        freeze_mode: vec!["argocd-auto-sync".into()],
        argocd_version: version.into(),
        ..KubernetesSettings::default()
    };
    let clock = ManualClock::new(t0());
    let k = kube(&api, &settings, &clock);
    let prior = freeze(&k, "drbot-inc1-op1-freeze").await;
    let frozen: Vec<Value> = ["web", "api", "manual"]
        .iter()
        .map(|n| api.get("applications", "argocd", n).unwrap()["spec"]["syncPolicy"].clone())
        .collect();
    assert_eq!(
        prior.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "argocd_application/argocd/api",
            "argocd_application/argocd/web"
        ]
    );
    unfreeze(&k, &prior).await;
    let after: Vec<Value> = ["web", "api", "manual"]
        .iter()
        .map(|n| frozen_parts(&api.get("applications", "argocd", n).unwrap()))
        .collect();
    assert_eq!(after, before);
    no_invalid(&api);
    frozen
}

#[tokio::test]
async fn argocd_auto_sync_is_turned_off_and_put_back_exactly() {
    let frozen = auto_sync_round_trip(ArgoCd::V3_5, "3.5").await;
    assert_eq!(
        frozen[0]["automated"],
        json!({"prune": true, "selfHeal": true, "enabled": false})
    );
    assert_eq!(
        frozen[1]["automated"],
        json!({"enabled": false, "selfHeal": false})
    );
    assert!(frozen[2].is_null(), "no automated policy: untouched");

    // Before Argo CD 3.1 there is no `enabled`: `automated` goes, and comes back.
    for (release, version) in [(ArgoCd::V2_14, "2.14"), (ArgoCd::V3_0, "3.0")] {
        let frozen = auto_sync_round_trip(release, version).await;
        assert!(frozen[0].get("automated").is_none(), "{}", frozen[0]);
        assert_eq!(frozen[0]["syncOptions"], json!(["CreateNamespace=true"]));
    }
}

#[tokio::test]
async fn argocd_before_3_1_not_named_in_the_settings_is_reported() {
    // `kubernetes.argocd_version` left at 3.1 on an Argo CD 3.0 cluster: the schema prunes
    // `automated.enabled`, auto-sync stays on, and the freeze says what to set.
    let api = argocd(ArgoCd::V3_0);
    api.put(application("web", Some(json!({"prune": true}))));
    let settings = KubernetesSettings {
        freeze_mode: vec!["argocd-auto-sync".into()],
        ..KubernetesSettings::default()
    };
    let clock = ManualClock::new(t0());
    let k = kube(&api, &settings, &clock);
    let s = spec(OperationKind::Freeze, "drbot-inc1-op1-freeze");
    k.launch(&s).await.expect("launch");
    let o = k.observe(&s).await.expect("observe");
    assert_eq!(o.done, Some(Outcome::Failed), "{}", o.detail);
    assert!(
        o.detail.contains("set kubernetes.argocd_version"),
        "{}",
        o.detail
    );
    assert_eq!(
        pruned_writes(&api),
        ["patch applications/web: spec.syncPolicy.automated.enabled"]
    );
}

#[tokio::test]
async fn flux_suspend_records_and_puts_back_suspend_and_reason() {
    let api = K8sApi::start();
    api.put(kustomization("apps", json!({})));
    api.put(kustomization("infra", json!({"suspend": true})));
    let mut infra = api.get("kustomizations", "flux-system", "infra").unwrap();
    infra["metadata"]["annotations"]["suspend.toolkit.fluxcd.io/reason"] = json!("maintenance");
    api.put(infra);
    api.put(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "frontend", "namespace": "web"},
        "spec": {"interval": "5m", "suspend": false,
                 "chart": {"spec": {"chart": "frontend", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}}},
    }));
    let parts =
        |plural: &str, ns: &str, name: &str| frozen_parts(&api.get(plural, ns, name).unwrap());
    let before = [
        parts("kustomizations", "flux-system", "apps"),
        parts("kustomizations", "flux-system", "infra"),
        parts("helmreleases", "web", "frontend"),
    ];
    let settings = KubernetesSettings {
        freeze_mode: vec!["flux".into()],
        flux_kustomizations: vec!["flux-system/apps".into(), "flux-system/infra".into()],
        flux_helmreleases: vec!["web/frontend".into()],
        ..KubernetesSettings::default()
    };
    let clock = ManualClock::new(t0());
    let k = kube(&api, &settings, &clock);
    let plan = k
        .plan(&spec(OperationKind::Freeze, "drbot-inc1-op1-freeze"))
        .await
        .expect("plan");
    assert!(
        plan.summary
            .iter()
            .any(|l| l.contains("infra: already suspended (reason: maintenance)")),
        "{:?}",
        plan.summary
    );
    let prior = freeze(&k, "drbot-inc1-op1-freeze").await;
    assert_eq!(
        prior["flux_kustomization/flux-system/apps"],
        json!({"metadata": {"annotations": {"suspend.toolkit.fluxcd.io/reason": null}},
               "spec": {"suspend": null}})
    );
    assert_eq!(
        prior["flux_helmrelease/web/frontend"]["spec"]["suspend"],
        false
    );
    assert!(prior.get("flux_kustomization/flux-system/infra").is_none());
    for (plural, ns, name) in [
        ("kustomizations", "flux-system", "apps"),
        ("helmreleases", "web", "frontend"),
    ] {
        let o = api.get(plural, ns, name).unwrap();
        assert_eq!(o["spec"]["suspend"], true, "{name}");
        assert_eq!(
            o["metadata"]["annotations"]["suspend.toolkit.fluxcd.io/reason"],
            "drbot freeze drbot-inc1-op1-freeze: INC-1 orders wiped"
        );
    }
    unfreeze(&k, &prior).await;
    let after = [
        parts("kustomizations", "flux-system", "apps"),
        parts("kustomizations", "flux-system", "infra"),
        parts("helmreleases", "web", "frontend"),
    ];
    assert_eq!(after, before);
    assert!(
        after[0]["spec"].get("suspend").is_none(),
        "absent stays absent"
    );
    no_invalid(&api);
}

#[tokio::test]
async fn a_freeze_refused_halfway_takes_back_what_it_changed() {
    for (release, _) in ARGOCD {
        refused_halfway(release).await;
    }
}

async fn refused_halfway(release: ArgoCd) {
    let api = argocd(release);
    api.put(app_project());
    api.put(kustomization("apps", json!({})));
    let before = frozen_parts(&api.get("appprojects", "argocd", "default").unwrap());
    let clock = ManualClock::new(t0());
    let k = kube(&api, &kube_settings(), &clock);
    api.fail_next("patch", "kustomizations", 403);
    let s = spec(OperationKind::Freeze, "drbot-inc1-op1-freeze");
    match k.launch(&s).await {
        Err(ClusterError::Invalid(m)) => {
            assert!(
                m.contains("missing permission: drbot may not patch kustomizations"),
                "{m}"
            );
            assert!(
                m.ends_with("put back as it was: Argo CD AppProject default"),
                "{m}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(api.requests_to("patch", "appprojects").len(), 2);
    assert_eq!(
        frozen_parts(&api.get("appprojects", "argocd", "default").unwrap()),
        before
    );
    // The next attempt freezes both.
    let prior = freeze(&k, "drbot-inc1-op1-freeze").await;
    assert_eq!(prior.as_object().map(|m| m.len()), Some(2));
    only_descriptions_pruned(&api, release);
}

/// On the newest release nothing drbot writes is pruned; before 3.1 only the description of
/// its deny window (it is told no version, so it sends one).
fn only_descriptions_pruned(api: &K8sApi, release: ArgoCd) {
    let pruned = pruned_writes(api);
    if release == ArgoCd::V3_5 {
        assert_eq!(pruned, Vec::<String>::new());
    } else {
        assert!(!pruned.is_empty());
        assert!(
            pruned.iter().all(
                |p| p.starts_with("patch appprojects/default: spec.syncWindows[")
                    && p.ends_with("].description")
            ),
            "{pruned:?}"
        );
    }
}

/// Someone else's window, added between the freeze and the unfreeze.
fn their_window() -> Value {
    json!({"kind": "allow", "schedule": "0 6 * * *", "duration": "2h", "applications": ["web"]})
}

/// Freeze, a second freeze, someone else's edit, a conflicting write and the unfreeze, on
/// one Argo CD release; `told` is whether `kubernetes.argocd_version` names it.
async fn window_round_trip(release: ArgoCd, version: &str, told: bool) {
    let api = argocd(release);
    api.put(app_project());
    let original =
        api.get("appprojects", "argocd", "default").unwrap()["spec"]["syncWindows"].clone();
    let mut settings = KubernetesSettings {
        freeze_mode: vec!["argocd-window".into()],
        ..KubernetesSettings::default()
    };
    if told {
        settings.argocd_version = version.into();
    }
    let clock = ManualClock::new(t0());
    let k = kube(&api, &settings, &clock);
    let case = format!("Argo CD {version}, told: {told}");

    // The freeze holds, whether or not the description survived.
    let prior = freeze(&k, "drbot-inc1-op1-freeze").await;
    assert_eq!(
        prior,
        json!({"argocd_appproject/argocd/default": {"syncWindow": drbot_window(), "added": true}}),
        "{case}"
    );
    let windows =
        api.get("appprojects", "argocd", "default").unwrap()["spec"]["syncWindows"].clone();
    assert_eq!(
        windows.as_array().map(Vec::len),
        Some(2),
        "{case}: {windows}"
    );
    let description = windows[1].get("description").and_then(Value::as_str);
    let pruned = pruned_writes(&api);
    match (release, told) {
        (ArgoCd::V3_5, _) => {
            assert!(
                description.is_some_and(|d| d.starts_with("drbot freeze drbot-inc1-op1-freeze"))
            );
            assert_eq!(pruned, Vec::<String>::new(), "{case}");
        }
        (_, false) => {
            assert_eq!(description, None, "{case}");
            assert_eq!(
                pruned,
                ["patch appprojects/default: spec.syncWindows[1].description"],
                "{case}"
            );
        }
        (_, true) => {
            assert_eq!(description, None, "{case}");
            assert_eq!(pruned, Vec::<String>::new(), "{case}: not sent at all");
        }
    }

    // A restart's launch and another incident's freeze add no second window.
    let patches = api.requests_to("patch", "appprojects").len();
    let again = k
        .launch(&spec(OperationKind::Freeze, "drbot-inc1-op1-freeze"))
        .await
        .expect("relaunch");
    assert!(again.already_existed, "{case}");
    let other = spec(OperationKind::Freeze, "drbot-inc2-op1-freeze");
    k.launch(&other).await.expect("second freeze");
    assert_eq!(
        api.requests_to("patch", "appprojects").len(),
        patches,
        "{case}"
    );
    assert_eq!(
        api.get("appprojects", "argocd", "default").unwrap()["spec"]["syncWindows"],
        windows,
        "{case}"
    );

    // Someone adds a window meanwhile; the first unfreeze write meets a conflict (the
    // project changed again): drbot reads it again and removes only its own window.
    let mut project = api.get("appprojects", "argocd", "default").unwrap();
    project["spec"]["syncWindows"]
        .as_array_mut()
        .unwrap()
        .push(their_window());
    api.put(project);
    api.fail_next("patch", "appprojects", 409);
    let before_unfreeze = api.requests_to("patch", "appprojects").len();
    unfreeze(&k, &prior).await;
    let after = api.get("appprojects", "argocd", "default").unwrap();
    let mut expected = original.as_array().cloned().unwrap_or_default();
    expected.push(their_window());
    assert_eq!(after["spec"]["syncWindows"], json!(expected), "{case}");
    assert!(
        after["metadata"]["annotations"]
            .get(FREEZE_ANNOTATION)
            .is_none()
    );
    let writes = api.requests_to("patch", "appprojects");
    assert_eq!(
        writes.len(),
        before_unfreeze + 2,
        "{case}: one conflict, one retry"
    );
    for w in &writes[before_unfreeze..] {
        assert!(
            w.body.pointer("/metadata/resourceVersion").is_some(),
            "{case}: every project write carries the resourceVersion it read: {}",
            w.body
        );
    }
}

#[tokio::test]
async fn the_deny_window_is_found_by_identity_on_every_argocd_release() {
    for (release, version) in ARGOCD {
        window_round_trip(release, version, false).await;
        window_round_trip(release, version, true).await;
    }
}

#[tokio::test]
async fn an_identical_deny_window_of_someone_else_is_neither_duplicated_nor_removed() {
    for (release, version) in ARGOCD {
        let api = argocd(release);
        let mut project = app_project();
        let theirs = json!({"kind": "deny", "schedule": "* * * * *", "duration": "24h",
                            "applications": ["*"], "timeZone": "UTC"});
        project["spec"]["syncWindows"] = json!([theirs]);
        api.put(project);
        let before = frozen_parts(&api.get("appprojects", "argocd", "default").unwrap());
        let settings = KubernetesSettings {
            freeze_mode: vec!["argocd-window".into()],
            ..KubernetesSettings::default()
        };
        let clock = ManualClock::new(t0());
        let k = kube(&api, &settings, &clock);
        let plan = k
            .plan(&spec(OperationKind::Freeze, "drbot-inc1-op1-freeze"))
            .await
            .expect("plan");
        assert!(
            plan.summary[0].contains("is not this freeze's")
                && plan.summary[0].contains("no duplicate is added"),
            "{version}: {:?}",
            plan.summary
        );
        let prior = freeze(&k, "drbot-inc1-op1-freeze").await;
        assert_eq!(
            prior["argocd_appproject/argocd/default"],
            json!({"syncWindow": drbot_window(), "added": false}),
            "{version}"
        );
        let frozen = api.get("appprojects", "argocd", "default").unwrap();
        assert_eq!(frozen["spec"]["syncWindows"], json!([theirs]), "{version}");
        let plan = k
            .plan(&{
                let mut s = spec(OperationKind::Unfreeze, "drbot-inc1-op9-unfreeze");
                s.prior = Some(prior.clone());
                s
            })
            .await
            .expect("unfreeze plan");
        assert!(
            plan.summary[0].contains("is not drbot's: left in place"),
            "{version}: {:?}",
            plan.summary
        );
        unfreeze(&k, &prior).await;
        assert_eq!(
            frozen_parts(&api.get("appprojects", "argocd", "default").unwrap()),
            before,
            "{version}"
        );
        no_invalid(&api);
    }
}

#[tokio::test]
async fn a_lost_freeze_annotation_does_not_duplicate_the_window() {
    // Something strips drbot's annotation (a `kubectl apply` of the project's annotations,
    // say) but leaves the window; before 3.1 the window has no description either.
    for (release, version) in ARGOCD {
        let api = argocd(release);
        api.put(app_project());
        let settings = KubernetesSettings {
            freeze_mode: vec!["argocd-window".into()],
            ..KubernetesSettings::default()
        };
        let clock = ManualClock::new(t0());
        let k = kube(&api, &settings, &clock);
        freeze(&k, "drbot-inc1-op1-freeze").await;
        let mut project = api.get("appprojects", "argocd", "default").unwrap();
        project["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(FREEZE_ANNOTATION);
        api.put(project);
        let prior = freeze(&k, "drbot-inc1-op2-freeze").await;
        let windows =
            api.get("appprojects", "argocd", "default").unwrap()["spec"]["syncWindows"].clone();
        assert_eq!(
            windows.as_array().map(Vec::len),
            Some(2),
            "{version}: {windows}"
        );
        // From 3.1 the description says the window is this incident's, so the unfreeze
        // removes it; before, it cannot be told from someone else's and is left in place.
        let added = release == ArgoCd::V3_5;
        assert_eq!(
            prior["argocd_appproject/argocd/default"]["added"], added,
            "{version}"
        );
        unfreeze(&k, &prior).await;
        let left = api.get("appprojects", "argocd", "default").unwrap()["spec"]["syncWindows"]
            .as_array()
            .map(Vec::len);
        assert_eq!(left, Some(if added { 1 } else { 2 }), "{version}");
    }
}

#[tokio::test]
async fn a_project_that_keeps_changing_is_given_up_on_after_a_few_attempts() {
    let api = argocd(ArgoCd::V3_5);
    api.put(app_project());
    let settings = KubernetesSettings {
        freeze_mode: vec!["argocd-window".into()],
        ..KubernetesSettings::default()
    };
    let clock = ManualClock::new(t0());
    let k = kube(&api, &settings, &clock);
    let prior = freeze(&k, "drbot-inc1-op1-freeze").await;
    for _ in 0..5 {
        api.fail_next("patch", "appprojects", 409);
    }
    let mut s = spec(OperationKind::Unfreeze, "drbot-inc1-op9-unfreeze");
    s.prior = Some(prior);
    match k.launch(&s).await {
        Err(ClusterError::Unavailable(m)) => {
            assert!(m.contains("changed under every one of 5 attempts"), "{m}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Nothing was written: the deny window is still there.
    let windows =
        api.get("appprojects", "argocd", "default").unwrap()["spec"]["syncWindows"].clone();
    assert_eq!(windows.as_array().map(Vec::len), Some(2));
}
