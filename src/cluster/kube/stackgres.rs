//! StackGres: restores into a new SGCluster, latest or point in time (SOP §7, §8), the base
//! backups and the recoverable window, the restored cluster watched until its primary is Ready.

use super::*;

pub(super) struct BaseBackup {
    pub(super) name: String,
    pub(super) status: String,
    pub(super) ended: Option<DateTime<Utc>>,
    pub(super) pg_major: Option<String>,
    pub(super) failure: Option<String>,
    pub(super) object: Value,
}

impl BaseBackup {
    pub(super) fn read(v: &Value) -> BaseBackup {
        BaseBackup {
            name: name_of(v).to_string(),
            status: text(v, "/status/process/status")
                .unwrap_or("Pending")
                .to_string(),
            ended: time_at(v, "/status/process/timing/end"),
            pg_major: text(v, "/status/backupInformation/postgresVersion").and_then(pg_major),
            failure: text(v, "/status/process/failure").map(str::to_string),
            object: v.clone(),
        }
    }

    pub(super) fn completed(&self) -> bool {
        self.status == "Completed" && self.ended.is_some()
    }
}

/// The source cluster an SGBackup belongs to (`orders`, or `db.orders` for a copy).
pub(super) fn backup_cluster(v: &Value) -> &str {
    let c = text(v, "/spec/sgCluster").unwrap_or("");
    c.rsplit_once('.').map_or(c, |(_, name)| name)
}

impl Kube {
    /// Base backups of `cluster` in `namespace`, newest end first (unfinished last).
    pub(super) async fn base_backups(
        &self,
        namespace: &str,
        cluster: &str,
    ) -> Result<Vec<BaseBackup>, ClusterError> {
        let mut out: Vec<BaseBackup> = self
            .list(Kind::SgBackup, Some(namespace), None)
            .await?
            .iter()
            .filter(|b| backup_cluster(b) == cluster)
            .map(BaseBackup::read)
            .collect();
        out.sort_by(|a, b| b.ended.cmp(&a.ended).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    pub(super) async fn known_clusters(&self, namespace: &str) -> String {
        match self.list(Kind::SgCluster, Some(namespace), None).await {
            Ok(list) if list.is_empty() => "none".into(),
            Ok(list) => list
                .iter()
                .map(|c| name_of(c).to_string())
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("unknown ({e})"),
        }
    }

    /// The recoverable window from the offsite bucket (the source of truth), or why there is
    /// none. An unreachable bucket is an error (worth retrying).
    pub(super) async fn window(
        &self,
        cluster: &str,
    ) -> Result<Result<walg::Window, String>, ClusterError> {
        let Some(offsite) = &self.offsite else {
            return Ok(Err(
                "offsite storage is not configured (offsite.bucket), so the recoverable window is unknown".into(),
            ));
        };
        match offsite.window(cluster).await {
            Ok(w) => Ok(Ok(w)),
            Err(ClusterError::Invalid(why)) => Ok(Err(why)),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn prepare_database(
        &self,
        spec: &OperationSpec,
    ) -> Result<Prepared, ClusterError> {
        let req = self.restore_request(spec).await?;
        let backups = self.base_backups(&req.source_ns, &req.source).await?;
        let window = match self.window(&req.source).await {
            Ok(w) => w,
            Err(e) if !req.pitr => Err(e.to_string()),
            Err(e) => return Err(e),
        };
        let window_lines = window_lines(&window);
        let recovery_window = window.as_ref().ok().map(walg::Window::recovery_window);
        let chosen = chosen_backup(spec, &req, &backups)?;
        let mut blocked = match (req.target, &window) {
            (Some(t), Ok(w)) => target_refused(spec, w, t, chosen),
            _ => None,
        };
        let Some(chosen) = chosen else {
            let why = match req.target {
                Some(t) => format!(
                    "no Completed SGBackup of {} ended before {}",
                    req.source,
                    fmt(t)
                ),
                None => format!("no Completed SGBackup of {}", req.source),
            };
            let mut summary = vec![why.clone()];
            summary.extend(window_lines);
            let mut prepared = Prepared::applying(summary, Vec::new(), &why, false);
            prepared.plan.window = recovery_window;
            prepared.blocked = Some(blocked.unwrap_or(why));
            return Ok(prepared);
        };
        let restore = database_restore(spec, &req, chosen)?;
        // Backups resume with the source's configuration, under a path StackGres gives the new
        // cluster. The SGObjectStorage it names is in the source's namespace, so a cluster
        // restored into another one (a drill) gets none.
        let source_backups = manifests::resumed_backups(&req.source_obj);
        let backups = if req.namespace == req.source_ns {
            source_backups.clone()
        } else {
            Vec::new()
        };
        let steps = restore_steps(&restore, &backups, chosen);
        // Another namespace: StackGres reads the backup's storage Secrets there.
        let missing_secrets = if req.namespace == req.source_ns {
            Vec::new()
        } else {
            self.missing_storage_secrets(&chosen.object, &req.namespace, &req.source_ns)
                .await?
        };
        if blocked.is_none() && !missing_secrets.is_empty() {
            blocked = Some(missing_secrets.join("; "));
        }
        let mut summary = restore_summary(&restore, chosen, window.as_ref().ok());
        summary.push(describe_resumed_backups(
            (&req.source, &req.source_ns),
            &req.namespace,
            &source_backups,
            &backups,
        ));
        summary.extend(window_lines);
        if let Some(why) = &blocked {
            summary.push(format!("cannot be launched: {why}"));
        }
        summary.extend(backup_copy_note(
            &chosen.name,
            &req.namespace,
            &req.source_ns,
        ));
        let existing = self.existing_restore(spec, &req.namespace).await?;
        summary.extend(existing.as_ref().map(|c| {
            format!(
                "SGCluster {} already exists (created {}): confirming reports it and creates nothing",
                spec.object_name,
                text(c, "/metadata/creationTimestamp").unwrap_or("?")
            )
        }));
        let mut prepared = Prepared::applying(summary, steps, "", existing.is_some());
        prepared.plan.backup = Some(chosen.name.clone());
        prepared.plan.window = recovery_window;
        prepared.blocked = blocked;
        Ok(prepared)
    }

    /// The checks on what a database restore names, before anything is listed: the source
    /// cluster exists, the new one has a valid name, is not the source, and a drill stays out
    /// of the production namespaces.
    async fn restore_request(&self, spec: &OperationSpec) -> Result<RestoreRequest, ClusterError> {
        let source_ns = self.settings.database_namespace.clone();
        let Some(source) = spec.cluster.clone() else {
            return Err(ClusterError::Invalid(format!(
                "no database cluster given; known in {source_ns}: {}",
                self.known_clusters(&source_ns).await
            )));
        };
        check_cluster_name(&spec.object_name)?;
        let namespace = spec.namespace.clone().unwrap_or_else(|| source_ns.clone());
        let drill = matches!(
            spec.kind,
            OperationKind::DrillLatest | OperationKind::DrillPitr
        );
        if drill && self.database_namespaces().contains(&namespace) {
            return Err(ClusterError::Invalid(format!(
                "drills restore into a non-production namespace, and {namespace} holds production databases (kubernetes.database_namespace / database_namespaces); set safety.drill_namespace"
            )));
        }
        check_not_in_place(&spec.object_name, &namespace, &source, &source_ns)?;
        let pitr = matches!(spec.kind, OperationKind::Pitr | OperationKind::DrillPitr);
        let target = restore_target(pitr, spec.target)?;
        let Some(source_obj) = self.get(Kind::SgCluster, &source_ns, &source).await? else {
            return Err(ClusterError::Invalid(format!(
                "unknown cluster {source} in namespace {source_ns}; known: {}",
                self.known_clusters(&source_ns).await
            )));
        };
        Ok(RestoreRequest {
            source_ns,
            source,
            source_obj,
            namespace,
            pitr,
            target,
        })
    }

    /// The SGCluster a launch would create, if it exists already; only drbot's own is adopted.
    async fn existing_restore(
        &self,
        spec: &OperationSpec,
        namespace: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let existing = self
            .get(Kind::SgCluster, namespace, &spec.object_name)
            .await?;
        if let Some(c) = &existing
            && label(c, MANAGED_BY) != Some("drbot")
        {
            return Err(ClusterError::Invalid(format!(
                "SGCluster {namespace}/{} exists and was not created by drbot: drbot will not adopt it",
                spec.object_name
            )));
        }
        Ok(existing)
    }

    /// The primary pod of an SGCluster: label `role=primary`, or `master` where Patroni's major
    /// is below 4 (`PatroniMember.getLabelRole`, StackGres ≥ 1.15; 1.14 knew only `master`).
    pub(super) async fn primary_pod(
        &self,
        cluster: &Value,
    ) -> Result<(Vec<Value>, Option<Value>), ClusterError> {
        let name = name_of(cluster);
        let namespace = text(cluster, "/metadata/namespace").unwrap_or_default();
        let selector = text(cluster, "/status/labelSelector")
            .map(str::to_string)
            .unwrap_or_else(|| format!("app=StackGresCluster,stackgres.io/cluster-name={name}"));
        let pods = self
            .list(Kind::Pod, Some(namespace), Some(&selector))
            .await?;
        let primary = pods
            .iter()
            .find(|p| matches!(label(p, "role"), Some("primary" | "master")))
            .cloned();
        Ok((pods, primary))
    }

    pub(super) async fn observe_database(
        &self,
        spec: &OperationSpec,
    ) -> Result<Observation, ClusterError> {
        let namespace = spec
            .namespace
            .clone()
            .unwrap_or_else(|| self.settings.database_namespace.clone());
        let Some(cluster) = self
            .get(Kind::SgCluster, &namespace, &spec.object_name)
            .await?
        else {
            return Ok(Observation {
                phase: "Missing".into(),
                percent: 0,
                detail: format!(
                    "SGCluster {namespace}/{} does not exist (deleted after launch?)",
                    spec.object_name
                ),
                done: Some(Outcome::Failed),
                result: None,
            });
        };
        Ok(self.cluster_progress(&cluster).await?.0)
    }

    /// Where a restored cluster stands, and its primary pod's name once Ready.
    pub(super) async fn cluster_progress(
        &self,
        cluster: &Value,
    ) -> Result<(Observation, Option<String>), ClusterError> {
        let name = name_of(cluster).to_string();
        let namespace = text(cluster, "/metadata/namespace").unwrap_or_default();
        let from = "/spec/initialData/restore/fromBackup";
        let backup = text(cluster, &format!("{from}/name")).unwrap_or("?");
        let recovered_to = text(
            cluster,
            &format!("{from}/pointInTimeRecovery/restoreToTimestamp"),
        );
        let bootstrapped = condition_true(cluster, "Bootstrapped");
        let (pods, primary) = self.primary_pod(cluster).await?;
        if bootstrapped && let Some(p) = primary.as_ref().filter(|p| pod_ready(p)) {
            let pod = name_of(p).to_string();
            let instances = cluster.pointer("/spec/instances").cloned();
            return Ok((
                Observation::succeeded(
                    "Bootstrapped",
                    format!("primary {pod} Ready"),
                    json!({
                        "cluster": format!("{namespace}/{name}"),
                        "primary": pod,
                        "endpoint": format!("{name}.{namespace}.svc:5432"),
                        "instances": instances,
                        "fromBackup": backup,
                        "recoveredTo": recovered_to,
                        "readyAt": fmt(self.clock.now()),
                    }),
                ),
                Some(pod),
            ));
        }
        let pod_states: Vec<String> = pods.iter().map(pod_state).collect();
        let (phase, percent, detail) = if bootstrapped {
            (
                "Bootstrapped",
                90,
                match &primary {
                    Some(p) => format!(
                        "bootstrapped; waiting for primary {} to be Ready",
                        pod_state(p)
                    ),
                    None => "bootstrapped; no primary pod yet".to_string(),
                },
            )
        } else if pods.is_empty() {
            (
                "Pending",
                0,
                "waiting for the StackGres operator to create the pods".to_string(),
            )
        } else {
            let replay = match recovered_to {
                Some(t) => format!(", then replaying WAL to {t}"),
                None => ", then replaying all archived WAL".to_string(),
            };
            (
                "Restoring",
                10,
                format!(
                    "restoring base backup {backup}{replay}; pods: {}",
                    join_limited(&pod_states, 4)
                ),
            )
        };
        // StackGres never writes `Failed=True`: its failures are Events and crash loops.
        if let Some(t) = self.restore_trouble(cluster, &pods, &detail).await? {
            return Ok((
                Observation {
                    phase: t.phase.into(),
                    percent,
                    detail: t.detail,
                    done: Some(Outcome::Failed),
                    result: None,
                },
                None,
            ));
        }
        Ok((
            Observation {
                phase: phase.into(),
                percent,
                detail,
                done: None,
                result: None,
            },
            None,
        ))
    }
}

/// A database restore's source and destination, checked ([`Kube::restore_request`]).
struct RestoreRequest {
    source_ns: String,
    source: String,
    source_obj: Value,
    /// Where the new cluster goes.
    namespace: String,
    pitr: bool,
    target: Option<DateTime<Utc>>,
}

/// The plan's lines on the recoverable window, or on why there is none.
fn window_lines(window: &Result<walg::Window, String>) -> Vec<String> {
    let w = match window {
        Ok(w) => w,
        Err(why) => return vec![format!("no recoverable window: {why}")],
    };
    let mut lines = vec![format!(
        "PITR window {} from the offsite bucket (oldest base backup {} finished … targets before the last archived commit, in segment {})",
        w.range(),
        w.oldest_backup,
        w.last_commit.segment
    )];
    lines.extend(w.gaps.iter().map(walg::Gap::describe));
    lines
}

/// The SGBackup to restore from: the named one, which must be Completed and end before the
/// target, or else the newest that does.
fn chosen_backup<'a>(
    spec: &OperationSpec,
    req: &RestoreRequest,
    backups: &'a [BaseBackup],
) -> Result<Option<&'a BaseBackup>, ClusterError> {
    let Some(name) = &spec.backup else {
        return Ok(newest_backup_before(
            backups,
            req.target,
            |b| b.completed(),
            |b| b.ended,
        ));
    };
    let b = backups.iter().find(|b| &b.name == name).ok_or_else(|| {
        let known: Vec<String> = backups.iter().map(|b| b.name.clone()).collect();
        ClusterError::Invalid(format!(
            "unknown SGBackup {name} of {}; known (newest first): {}",
            req.source,
            known_names(&known)
        ))
    })?;
    if !b.completed() {
        return Err(ClusterError::Invalid(format!(
            "SGBackup {name} is {}: StackGres restores only from a Completed backup",
            b.status
        )));
    }
    check_ended_before(name, b.ended, req.target)?;
    Ok(Some(b))
}

/// Why the window refuses target `t`, if it does. StackGres replays from the named backup only
/// (`RESTORE_BACKUP_NAME` = its `status.internalName`, SG RestoreConfigMap.java ~88-90): a
/// target past a WAL gap after it fails even when a later backup bridges the gap.
fn target_refused(
    spec: &OperationSpec,
    window: &walg::Window,
    t: DateTime<Utc>,
    chosen: Option<&BaseBackup>,
) -> Option<String> {
    walg::check_target(window, t).err().or_else(|| {
        let named = spec.backup.as_ref().and(chosen)?;
        let internal = text(&named.object, "/status/internalName")?;
        walg::check_target_from(window, internal, t)
            .err()
            .map(|e| format!("SGBackup {}: {e}", named.name))
    })
}

/// The new cluster's shape: the backup's PostgreSQL major, the source's instances and volume.
fn database_restore(
    spec: &OperationSpec,
    req: &RestoreRequest,
    chosen: &BaseBackup,
) -> Result<DatabaseRestore, ClusterError> {
    let source = &req.source;
    let postgres_version = chosen
        .pg_major
        .clone()
        .or_else(|| text(&req.source_obj, "/spec/postgres/version").and_then(pg_major))
        .ok_or_else(|| {
            ClusterError::Invalid(format!(
                "the PostgreSQL major of SGBackup {} is unknown (no status.backupInformation.postgresVersion) and SGCluster {source} names none",
                chosen.name
            ))
        })?;
    let instances = req
        .source_obj
        .pointer("/spec/instances")
        .and_then(Value::as_u64)
        .map_or(1, |n| n.clamp(1, u64::from(u32::MAX)) as u32);
    let volume_size = text(&req.source_obj, "/spec/pods/persistentVolume/size")
        .unwrap_or("")
        .to_string();
    check_volume_size(&volume_size)?;
    Ok(DatabaseRestore {
        name: spec.object_name.clone(),
        namespace: req.namespace.clone(),
        source_namespace: req.source_ns.clone(),
        source_cluster: source.clone(),
        backup: chosen.name.clone(),
        postgres_version,
        instances,
        volume_size,
        target: req.target,
    })
}

/// The objects a launch creates, in order: the SGCluster, after a copy of the SGBackup when
/// restoring into another namespace.
fn restore_steps(restore: &DatabaseRestore, backups: &[Value], chosen: &BaseBackup) -> Vec<Step> {
    manifests::sgcluster_restore_with_backups(restore, backups)
        .into_iter()
        .map(|(_, mut doc)| {
            let kind = if doc["kind"] == "SGBackup" {
                // A copy is the object as it is, status included: the operator restores
                // only from a backup whose status says Completed.
                if let Some(status) = chosen.object.get("status") {
                    doc["status"] = status.clone();
                }
                Kind::SgBackup
            } else {
                Kind::SgCluster
            };
            Step {
                kind,
                create: true,
                doc,
                undo: None,
            }
        })
        .collect()
}

/// The plan's first lines: what is created from what, recovered to when, and its shape.
fn restore_summary(
    restore: &DatabaseRestore,
    chosen: &BaseBackup,
    window: Option<&walg::Window>,
) -> Vec<String> {
    let DatabaseRestore {
        name,
        namespace,
        source_namespace,
        source_cluster: source,
        postgres_version,
        instances,
        volume_size,
        target,
        ..
    } = restore;
    let mut summary = vec![
        format!(
            "new SGCluster {namespace}/{name} restored from {source_namespace}/{source} (the source is not touched)"
        ),
        format!(
            "from backup {} (ended {})",
            chosen.name,
            chosen.ended.map_or_else(|| "?".into(), fmt)
        ),
    ];
    let archived = window.map(|w| w.end);
    match target {
        Some(t) => {
            summary.push(format!(
                "recover to {} (pointInTimeRecovery.restoreToTimestamp)",
                manifests::timestamp(*t)
            ));
            if let Some(end) = archived
                && *t > end
            {
                summary.push(format!(
                    "the target is after the newest archived WAL ({})",
                    fmt(end)
                ));
            }
        }
        None => summary.push(match archived {
            Some(end) => format!(
                "replay all archived WAL (the offsite bucket has it up to {})",
                fmt(end)
            ),
            None => "replay all archived WAL".into(),
        }),
    }
    summary.push(format!(
        "PostgreSQL {postgres_version} (the backup's major), {instances} instances, {volume_size} (as {source})"
    ));
    summary
}

/// What a restored cluster does about backups, for the plan.
pub(super) fn describe_resumed_backups(
    (source, source_namespace): (&str, &str),
    namespace: &str,
    source_backups: &[Value],
    backups: &[Value],
) -> String {
    let storages = |list: &[Value]| -> String {
        list.iter()
            .filter_map(|b| b.get("sgObjectStorage").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if source_backups.is_empty() {
        return format!(
            "WARNING: {source} has no spec.configurations.backups, so neither has the new cluster: it archives no WAL and takes no backups until one is added"
        );
    }
    if backups.is_empty() {
        return format!(
            "no spec.configurations.backups: SGObjectStorage {} of {source} is in namespace {source_namespace}, not {namespace}, so the new cluster archives no WAL and takes no backups",
            storages(source_backups)
        );
    }
    let each: Vec<String> = backups
        .iter()
        .map(|b| {
            let field = |k: &str| {
                b.get(k).map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            };
            let mut parts = vec![format!(
                "SGObjectStorage {}",
                field("sgObjectStorage").unwrap_or_default()
            )];
            parts.push(match field("cronSchedule") {
                Some(cron) => format!("base backups '{cron}'"),
                None => "no scheduled base backups".into(),
            });
            if let Some(retention) = field("retention") {
                parts.push(format!("retention {retention}"));
            }
            parts.join(", ")
        })
        .collect();
    format!(
        "backups resume with the configuration of {source} ({}); the path is left to StackGres, which gives the new cluster its own, so it never writes into the WAL archive of {source}",
        each.join("; ")
    )
}
