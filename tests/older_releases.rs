//! Every manifest drbot creates for Velero and StackGres, against the older releases' CRDs
//! too (Velero 1.14, StackGres 1.15): accepted, and what a real API server would prune.

mod support;

use chrono::{DateTime, Utc};
use drbot::cluster::manifests;
use drbot::cluster::restore_scope::RestoreScope;
use serde_json::{Value, json};
use support::crd_release::{Releases, StackGres, Velero};
use support::crd_schema::Crds;
use support::recovery::orders_restore;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

/// Everything drbot creates: a Velero Restore with each namespace filter, and the
/// SGCluster restores (latest and PITR, with resumed backups, into another namespace with
/// its SGBackup copy).
fn manifests() -> Vec<Value> {
    let ns = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let scope = |asked: &[String], excluded: &[String]| {
        RestoreScope::resolve(asked, excluded, Some("databases")).expect("a valid scope")
    };
    let mut out = vec![
        manifests::velero_restore("r-all", "velero", "nightly", &scope(&[], &[])),
        manifests::velero_restore("r-ex", "velero", "nightly", &scope(&[], &ns(&["db"]))),
        manifests::velero_restore("r-in", "velero", "nightly", &scope(&ns(&["shop"]), &[])),
    ];
    let backups = json!([{"sgObjectStorage": "offsite", "cronSchedule": "0 3 * * *",
        "retention": 7, "compression": "lz4", "path": "orders/16"}]);
    let source = json!({"spec": {"configurations": {"backups": backups}}});
    for (namespace, target) in [("db", None), ("dr-drill", Some(t("2026-02-08T09:55:00Z")))] {
        let r = orders_restore("orders-restore", namespace, target);
        let resumed = manifests::resumed_backups(&source);
        for (_, doc) in manifests::sgcluster_restore_with_backups(&r, &resumed) {
            out.push(doc);
        }
    }
    out
}

/// (kind/name: pruned path) for every manifest under `releases`; panics on a refusal.
fn pruned_under(crds: &Crds, releases: &Releases) -> Vec<String> {
    let mut out = Vec::new();
    for mut doc in manifests() {
        let label = format!(
            "{}/{}",
            doc["kind"].as_str().unwrap_or("?"),
            doc["metadata"]["name"].as_str().unwrap_or("?")
        );
        for path in crds.prune(&mut doc, releases) {
            out.push(format!("{label}: {path}"));
        }
        if let Err(errors) = crds.validate_with(&doc, releases) {
            panic!("{label} refused under {releases:?}: {errors:?}");
        }
    }
    out
}

#[test]
fn velero_and_stackgres_manifests_on_every_release() {
    let Some(crds) = Crds::load() else {
        return;
    };
    let older = Releases {
        velero: Velero::V1_14,
        stackgres: StackGres::V1_15,
        ..Releases::default()
    };
    // The older files really are the ones used.
    for doc in manifests() {
        let want = match doc["kind"].as_str() {
            Some("Restore") => "v1.14.1",
            _ => "1.15.2",
        };
        assert_eq!(crds.release_of(&doc, &older).as_deref(), Some(want));
        assert_eq!(crds.release_of(&doc, &Releases::default()), None);
    }
    // Accepted everywhere, and nothing pruned: Velero 1.14 knows existingResourcePolicy,
    // itemOperationTimeout, restorePVs and the namespace filters; StackGres 1.15 knows every
    // SGCluster restore field (initialData.restore.fromBackup.name / pointInTimeRecovery,
    // downloadDiskConcurrency, configurations.backups[]) and the SGBackup copy's spec.
    for releases in [Releases::default(), older] {
        assert_eq!(
            pruned_under(&crds, &releases),
            Vec::<String>::new(),
            "{releases:?}"
        );
    }
    // Velero 1.14 also has includeClusterResources (restores of cluster-scoped resources
    // with a namespace filter), and a misspelt field is pruned under both, so the check
    // above is not vacuous (no preserve-unknown-fields over these specs).
    for releases in [Releases::default(), older] {
        let scope = RestoreScope::resolve(&[], &["db".to_string()], None).expect("a scope");
        let mut restore = manifests::velero_restore("r", "velero", "nightly", &scope);
        assert_eq!(restore["spec"]["includeClusterResources"], json!(true));
        restore["spec"]["backupNme"] = json!("typo");
        assert_eq!(crds.prune(&mut restore, &releases), ["spec.backupNme"]);
        let mut cluster = manifests().pop().expect("an SGCluster");
        cluster["spec"]["initialData"]["restore"]["fromBackup"]["nmae"] = json!("typo");
        assert_eq!(
            crds.prune(&mut cluster, &releases),
            ["spec.initialData.restore.fromBackup.nmae"]
        );
    }
}
