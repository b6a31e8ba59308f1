//! The backup report (`/dr backups`) and the checks behind `/dr verify` (SOP §6.3.6, §9).

use super::*;

impl Kube {
    pub(super) async fn backups_now(&self) -> BackupsReport {
        let mut lines = Vec::new();
        let mut ok = true;
        let velero_ns = self.settings.velero_namespace.as_str();
        match self.velero_backups().await {
            Ok(backups) => {
                let completed: Vec<&VeleroBackup> =
                    backups.iter().filter(|b| b.completed()).collect();
                match completed.first() {
                    Some(newest) => lines.push(format!(
                        "Velero: {} backups ({} Completed), newest Completed {} at {}",
                        backups.len(),
                        completed.len(),
                        newest.name,
                        newest.when().map_or_else(|| "?".into(), fmt)
                    )),
                    None => {
                        ok = false;
                        lines.push(format!(
                            "Velero: no Completed backup in namespace {velero_ns} ({} backups)",
                            backups.len()
                        ));
                    }
                }
                let newest_ok = completed.first().and_then(|b| b.when());
                for b in backups
                    .iter()
                    .filter(|b| !b.completed() && b.when() >= newest_ok)
                    .take(3)
                {
                    lines.push(format!(
                        "Velero: {} {} ({} warnings, {} errors)",
                        b.name, b.phase, b.warnings, b.errors
                    ));
                }
            }
            Err(e) => {
                ok = false;
                lines.push(format!("Velero backups: {e}"));
            }
        }
        match self
            .list(Kind::StorageLocation, Some(velero_ns), None)
            .await
        {
            Ok(bsls) => {
                if bsls.is_empty() {
                    ok = false;
                    lines.push("Velero: no BackupStorageLocation".into());
                }
                for bsl in &bsls {
                    let phase = text(bsl, "/status/phase").unwrap_or("unknown");
                    ok &= phase == "Available";
                    let message = text(bsl, "/status/message")
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default();
                    lines.push(format!("Velero BSL {}: {phase}{message}", name_of(bsl)));
                }
            }
            Err(e) => {
                ok = false;
                lines.push(format!("Velero BackupStorageLocations: {e}"));
            }
        }
        match self.list(Kind::Schedule, Some(velero_ns), None).await {
            Ok(schedules) => {
                if schedules.is_empty() {
                    lines.push("Velero: no Schedule".into());
                }
                for s in &schedules {
                    lines.push(describe_schedule(s));
                }
            }
            Err(e) => lines.push(format!("Velero Schedules: {e}")),
        }
        let db_ns = self.settings.database_namespace.as_str();
        match self.list(Kind::SgBackup, Some(db_ns), None).await {
            Ok(all) => {
                let mut clusters: BTreeSet<String> = BTreeSet::new();
                for b in &all {
                    clusters.insert(backup_cluster(b).to_string());
                }
                if clusters.is_empty() {
                    lines.push(format!("StackGres: no SGBackup in namespace {db_ns}"));
                }
                for cluster in clusters {
                    let mut mine: Vec<BaseBackup> = all
                        .iter()
                        .filter(|b| backup_cluster(b) == cluster)
                        .map(BaseBackup::read)
                        .collect();
                    mine.sort_by_key(|b| std::cmp::Reverse(b.ended));
                    let done: Vec<&BaseBackup> = mine.iter().filter(|b| b.completed()).collect();
                    match done.first() {
                        Some(newest) => lines.push(format!(
                            "{db_ns}/{cluster}: {} SGBackups ({} Completed), newest {} (ended {})",
                            mine.len(),
                            done.len(),
                            newest.name,
                            newest.ended.map_or_else(|| "?".into(), fmt)
                        )),
                        None => {
                            ok = false;
                            lines.push(format!(
                                "{db_ns}/{cluster}: {} SGBackups, none Completed",
                                mine.len()
                            ));
                        }
                    }
                    for f in mine.iter().filter(|b| b.status == "Failed").take(2) {
                        lines.push(format!(
                            "{db_ns}/{cluster}: SGBackup {} Failed: {}",
                            f.name,
                            f.failure.as_deref().unwrap_or("no message")
                        ));
                    }
                }
            }
            Err(e) => {
                ok = false;
                lines.push(format!("StackGres SGBackups: {e}"));
            }
        }
        match &self.offsite {
            Some(offsite) => {
                let report = offsite.report().await;
                ok &= report.ok;
                lines.extend(report.lines);
            }
            None => {
                ok = false;
                lines.push(
                    "offsite storage is not configured (offsite.bucket): the PITR window and the offsite copies cannot be checked".into(),
                );
            }
        }
        BackupsReport { ok, lines }
    }

    // ---- probes --------------------------------------------------------------------------

    pub(super) async fn probe_now(
        &self,
        probe: &str,
        ctx: &ProbeContext,
    ) -> Result<ProbeResult, ClusterError> {
        match probe {
            "nodes_ready" => self.probe_nodes().await,
            "control_plane" => self.probe_control_plane().await,
            "core_namespaces" => self.probe_core_namespaces().await,
            "offsite_reachable" | "offsite_versioning" | "sample_backup_readable" => {
                Ok(self.probe_offsite(probe).await)
            }
            "velero_schedule_active" => self.probe_schedules().await,
            "velero_backup_after_recovery" => self.probe_velero_after(ctx).await,
            "database_writable" => self.probe_writable(ctx).await,
            "database_backups_resumed" => self.probe_backups_resumed(ctx).await,
            other => Err(ClusterError::Invalid(format!(
                "unknown probe {other}; known: {}",
                super::super::PROBES.join(", ")
            ))),
        }
    }

    pub(super) async fn probe_nodes(&self) -> Result<ProbeResult, ClusterError> {
        let nodes = self.list(Kind::Node, None, None).await?;
        let (ready, down): (Vec<&Value>, Vec<&Value>) =
            nodes.iter().partition(|n| condition_true(n, "Ready"));
        let names = |list: &[&Value]| -> Vec<String> {
            list.iter().map(|n| name_of(n).to_string()).collect()
        };
        if nodes.is_empty() {
            return Ok(fail("the API server lists no nodes".into()));
        }
        if !down.is_empty() {
            let each: Vec<String> = down
                .iter()
                .map(|n| {
                    let reason = condition(n, "Ready")
                        .and_then(|c| c.get("reason"))
                        .and_then(Value::as_str)
                        .unwrap_or("no Ready condition");
                    format!("{} ({reason})", name_of(n))
                })
                .collect();
            return Ok(fail(format!(
                "{}/{} nodes Ready; not Ready: {}",
                ready.len(),
                nodes.len(),
                join_limited(&each, 5)
            )));
        }
        Ok(pass(format!(
            "{}/{} nodes Ready: {}",
            ready.len(),
            nodes.len(),
            join_limited(&names(&ready), 10)
        )))
    }

    pub(super) async fn probe_control_plane(&self) -> Result<ProbeResult, ClusterError> {
        let version = self
            .timed(
                "reading the API server version",
                None,
                self.client.apiserver_version(),
            )
            .await?;
        let pods = self
            .list(Kind::Pod, Some("kube-system"), Some("tier=control-plane"))
            .await?;
        let troubled: Vec<String> = pods
            .iter()
            .filter(|p| !pod_ready(p) || pod_trouble(p).is_some())
            .map(pod_state)
            .collect();
        let answered = format!("API server {} answered", version.git_version);
        if !troubled.is_empty() {
            return Ok(fail(format!(
                "{answered}; control-plane pods not healthy: {}",
                join_limited(&troubled, 5)
            )));
        }
        Ok(pass(if pods.is_empty() {
            format!("{answered}; control-plane pods are not visible (a managed control plane)")
        } else {
            let names: Vec<String> = pods.iter().map(|p| name_of(p).to_string()).collect();
            format!(
                "{answered}; control-plane pods Ready: {}",
                join_limited(&names, 6)
            )
        }))
    }

    pub(super) async fn probe_core_namespaces(&self) -> Result<ProbeResult, ClusterError> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for ns in &self.settings.core_namespaces {
            let pods = self.list(Kind::Pod, Some(ns), None).await?;
            let healthy = |p: &&Value| {
                text(p, "/status/phase") == Some("Succeeded")
                    || (text(p, "/status/phase") == Some("Running") && pod_ready(p))
            };
            let sick: Vec<String> = pods.iter().filter(|p| !healthy(p)).map(pod_state).collect();
            let ok = pods.len() - sick.len();
            if pods.is_empty() {
                bad.push(format!("{ns}: no pods"));
            } else if sick.is_empty() {
                good.push(format!("{ns} {ok}/{} pods Ready", pods.len()));
            } else {
                bad.push(format!(
                    "{ns} {ok}/{} pods Ready, not: {}",
                    pods.len(),
                    join_limited(&sick, 4)
                ));
            }
        }
        Ok(if bad.is_empty() {
            pass(good.join(", "))
        } else {
            let mut all = bad;
            all.extend(good);
            fail(all.join("; "))
        })
    }

    pub(super) async fn probe_offsite(&self, probe: &str) -> ProbeResult {
        let Some(offsite) = &self.offsite else {
            return fail("not checked: offsite storage is not configured (offsite.bucket)".into());
        };
        let bucket = offsite.bucket();
        match probe {
            "offsite_reachable" => match offsite.reachable().await {
                Err(e) => fail(e.to_string()),
                Ok(()) => match offsite.velero_backups().await {
                    Ok(v) => pass(format!(
                        "s3://{bucket} reachable: {} Velero backups listed",
                        v.len()
                    )),
                    Err(e) => fail(format!("s3://{bucket} reachable but not listable: {e}")),
                },
            },
            "offsite_versioning" => match offsite.versioning().await {
                Ok(VersioningStatus::Enabled) => pass(format!("s3://{bucket} versioning Enabled")),
                Ok(v) => fail(format!(
                    "s3://{bucket} versioning {}: deleted or overwritten backups cannot be recovered",
                    v.label()
                )),
                Err(e) => fail(e.to_string()),
            },
            _ => match offsite.sample_readable().await {
                Ok(evidence) => pass(evidence),
                Err(e) => fail(e.to_string()),
            },
        }
    }

    pub(super) async fn probe_schedules(&self) -> Result<ProbeResult, ClusterError> {
        let ns = self.settings.velero_namespace.as_str();
        let schedules = self.list(Kind::Schedule, Some(ns), None).await?;
        if schedules.is_empty() {
            return Ok(fail(format!("no Velero Schedule in namespace {ns}")));
        }
        let lines: Vec<String> = schedules.iter().map(describe_schedule).collect();
        let active = |s: &Value| {
            s.pointer("/spec/paused").and_then(Value::as_bool) != Some(true)
                && text(s, "/status/phase") == Some("Enabled")
        };
        Ok(if schedules.iter().all(active) {
            pass(lines.join("; "))
        } else {
            fail(lines.join("; "))
        })
    }

    pub(super) async fn probe_velero_after(
        &self,
        ctx: &ProbeContext,
    ) -> Result<ProbeResult, ClusterError> {
        let Some(recovered) = ctx.recovered_at else {
            return Ok(fail(
                "no recovery recorded yet: a Velero backup must complete after the restores finish"
                    .into(),
            ));
        };
        let backups = self.velero_backups().await?;
        // A backup started before the recovery finished does not hold the recovered state.
        let after = backups
            .iter()
            .filter(|b| b.completed() && b.started.is_some_and(|s| s > recovered))
            .min_by_key(|b| b.completed);
        Ok(match after {
            Some(b) => pass(format!(
                "Velero backup {} Completed at {}, after the recovery at {}",
                b.name,
                b.when().map_or_else(|| "?".into(), fmt),
                fmt(recovered)
            )),
            None => {
                let running: Vec<String> = backups
                    .iter()
                    .filter(|b| !b.completed() && b.started.is_some_and(|s| s > recovered))
                    .map(|b| format!("{} {}", b.name, b.phase))
                    .collect();
                fail(format!(
                    "no Velero backup has completed since the recovery at {}{}; start one with `velero backup create --from-schedule <schedule>`",
                    fmt(recovered),
                    if running.is_empty() {
                        String::new()
                    } else {
                        format!(" (started since: {})", running.join(", "))
                    }
                ))
            }
        })
    }

    /// SGClusters among the incident's restored objects.
    pub(super) async fn restored_clusters(
        &self,
        ctx: &ProbeContext,
    ) -> Result<Vec<Value>, ClusterError> {
        if ctx.restored_objects.is_empty() {
            return Ok(Vec::new());
        }
        // Namespace by namespace: drbot may list SGClusters only where it restores them.
        let selector = format!("{MANAGED_BY}=drbot");
        let mut namespaces = self.database_namespaces();
        if !namespaces.contains(&self.drill_namespace) {
            namespaces.push(self.drill_namespace.clone());
        }
        let mut found = Vec::new();
        for ns in &namespaces {
            found.extend(
                self.list(Kind::SgCluster, Some(ns), Some(&selector))
                    .await?
                    .into_iter()
                    .filter(|c| ctx.restored_objects.iter().any(|o| o == name_of(c))),
            );
        }
        Ok(found)
    }

    pub(super) async fn probe_writable(
        &self,
        ctx: &ProbeContext,
    ) -> Result<ProbeResult, ClusterError> {
        let mut lines = Vec::new();
        for c in &self.restored_clusters(ctx).await? {
            lines.push(self.writable(c).await?);
        }
        Ok(each_restored_cluster(ctx, lines))
    }

    /// Whether a restored cluster's primary accepts writes.
    async fn writable(&self, c: &Value) -> Result<Result<String, String>, ClusterError> {
        let name = name_of(c);
        let (seen, primary) = self.cluster_progress(c).await?;
        let Some(primary) = primary else {
            return Ok(Err(format!(
                "{name} is not ready: {} ({})",
                seen.phase, seen.detail
            )));
        };
        Ok(match self.in_recovery(c).await {
            Ok(Ok(false)) => Ok(format!(
                "pg_is_in_recovery() = false on {name} (primary {primary})"
            )),
            Ok(Ok(true)) => Err(format!(
                "pg_is_in_recovery() = true on {name}: still replaying WAL, not accepting writes"
            )),
            Ok(Err(why)) => Err(format!(
                "not checked: {why}; SGCluster {name} Bootstrapped, primary {primary} Ready"
            )),
            Err(why) => Err(format!("not checked on {name}: {why}")),
        })
    }

    /// `pg_is_in_recovery()` on a cluster's primary service. `Ok(Err(_))` = not checked
    /// (no connection configured); `Err(_)` = the check failed.
    pub(super) async fn in_recovery(
        &self,
        cluster: &Value,
    ) -> Result<Result<bool, String>, String> {
        let Some(template) = &self.settings.postgres_dsn_template else {
            return Ok(Err(
                "no database connection configured (kubernetes.postgres_dsn_template)".into(),
            ));
        };
        let name = name_of(cluster);
        let namespace = text(cluster, "/metadata/namespace").unwrap_or_default();
        let mut dsn = template
            .replace("{cluster}", name)
            .replace("{namespace}", namespace);
        let mut secret_value = None;
        if dsn.contains("{password}") {
            let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
            let what = format!("reading Secret {namespace}/{name}");
            let secret = self
                .timed(
                    &what,
                    Some(Access::core_get("secrets", namespace)),
                    secrets.get_opt(name),
                )
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!("Secret {namespace}/{name} (StackGres credentials) not found")
                })?;
            let password = secret
                .data
                .as_ref()
                .and_then(|d| d.get("superuser-password"))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .ok_or_else(|| format!("Secret {namespace}/{name} has no superuser-password"))?;
            dsn = dsn.replace("{password}", &url_encode(&password));
            secret_value = Some(password);
        }
        let check = async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&dsn).await?;
            let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                .fetch_one(&mut conn)
                .await?;
            let _ = conn.close().await;
            Ok::<bool, sqlx::Error>(in_recovery)
        };
        let hide = |msg: String| match &secret_value {
            Some(p) if !p.is_empty() => msg.replace(p.as_str(), "***"),
            _ => msg,
        };
        match tokio::time::timeout(self.timeout, check).await {
            Ok(Ok(v)) => Ok(Ok(v)),
            Ok(Err(e)) => Err(hide(format!("cannot query {name} in {namespace}: {e}"))),
            Err(_) => Err(format!(
                "no answer from {name} in {namespace} within {} s",
                self.timeout.as_secs()
            )),
        }
    }

    pub(super) async fn probe_backups_resumed(
        &self,
        ctx: &ProbeContext,
    ) -> Result<ProbeResult, ClusterError> {
        let mut lines = Vec::new();
        for c in &self.restored_clusters(ctx).await? {
            lines.push(self.backups_resumed(c, ctx.recovered_at).await?);
        }
        Ok(each_restored_cluster(ctx, lines))
    }

    /// Whether a restored cluster took a base backup or archived WAL after `since`.
    async fn backups_resumed(
        &self,
        c: &Value,
        since: Option<DateTime<Utc>>,
    ) -> Result<Result<String, String>, ClusterError> {
        let name = name_of(c);
        let namespace = text(c, "/metadata/namespace").unwrap_or_default();
        let backups = self.base_backups(namespace, name).await?;
        let fresh = backups
            .iter()
            .find(|b| b.completed() && since.is_none_or(|s| b.ended.is_some_and(|e| e > s)));
        if let Some(b) = fresh {
            return Ok(Ok(format!(
                "SGBackup {} of {name} completed at {}",
                b.name,
                b.ended.map_or_else(|| "?".into(), fmt)
            )));
        }
        if let Some(found) = self.archived_wal(c, since).await {
            return Ok(Ok(found));
        }
        let configured = c
            .pointer("/spec/configurations/backups")
            .and_then(Value::as_array)
            .is_some_and(|b| !b.is_empty());
        let after = since
            .map(|s| format!(" since {}", fmt(s)))
            .unwrap_or_default();
        Ok(Err(if configured {
            format!("{name}: no Completed SGBackup and no WAL archived offsite{after} yet")
        } else {
            format!(
                "{name}: no Completed SGBackup{after}, and it has no spec.configurations.backups: StackGres neither archives WAL nor takes backups of it until one is added"
            )
        }))
    }

    /// The newest WAL segment a restored cluster archived to the offsite bucket (under its
    /// `status.backupPaths`) after `since`.
    pub(super) async fn archived_wal(
        &self,
        cluster: &Value,
        since: Option<DateTime<Utc>>,
    ) -> Option<String> {
        let offsite = self.offsite.as_ref()?;
        let paths = cluster.pointer("/status/backupPaths")?.as_array()?;
        for path in paths.iter().filter_map(Value::as_str) {
            let prefix = format!("{}/{}", path.trim_matches('/'), walg::WAL_DIR);
            let Ok(objects) = offsite.list(&prefix).await else {
                continue;
            };
            let newest = objects
                .iter()
                .filter(|o| since.is_none_or(|s| o.last_modified > s))
                .max_by_key(|o| o.last_modified);
            if let Some(o) = newest {
                return Some(format!(
                    "{} archived WAL: s3://{}/{} at {}",
                    name_of(cluster),
                    offsite.bucket(),
                    o.key,
                    fmt(o.last_modified)
                ));
            }
        }
        None
    }
}

pub(super) fn pass(evidence: String) -> ProbeResult {
    ProbeResult {
        passed: true,
        evidence,
    }
}

pub(super) fn fail(evidence: String) -> ProbeResult {
    ProbeResult {
        passed: false,
        evidence,
    }
}

/// A probe of the restored database clusters from one line each: passed when each one
/// passed (`Ok`); failed when the incident restored none.
fn each_restored_cluster(ctx: &ProbeContext, lines: Vec<Result<String, String>>) -> ProbeResult {
    if lines.is_empty() {
        return no_restored_cluster(ctx);
    }
    let passed = lines.iter().all(Result::is_ok);
    let evidence: Vec<String> = lines.into_iter().map(|l| l.unwrap_or_else(|e| e)).collect();
    ProbeResult {
        passed,
        evidence: evidence.join("; "),
    }
}

pub(super) fn no_restored_cluster(ctx: &ProbeContext) -> ProbeResult {
    fail(if ctx.restored_objects.is_empty() {
        "no restored objects in this incident: restore a database cluster first".into()
    } else {
        format!(
            "none of the restored objects ({}) is an SGCluster created by drbot",
            ctx.restored_objects.join(", ")
        )
    })
}

pub(super) fn describe_schedule(s: &Value) -> String {
    let paused = s.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    format!(
        "schedule {} ({}) {}, {}; last backup {}",
        name_of(s),
        text(s, "/spec/schedule").unwrap_or("?"),
        text(s, "/status/phase").unwrap_or("New"),
        if paused { "PAUSED" } else { "not paused" },
        text(s, "/status/lastBackup").unwrap_or("never")
    )
}
