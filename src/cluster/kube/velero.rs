//! Velero: the backups to restore from and the Restore, watched to completion (SOP §6.3.5).

use super::*;

pub(super) struct VeleroBackup {
    pub(super) name: String,
    pub(super) phase: String,
    pub(super) started: Option<DateTime<Utc>>,
    pub(super) completed: Option<DateTime<Utc>>,
    pub(super) warnings: i64,
    pub(super) errors: i64,
    pub(super) location: Option<String>,
}

impl VeleroBackup {
    pub(super) fn read(v: &Value) -> VeleroBackup {
        VeleroBackup {
            name: name_of(v).to_string(),
            phase: text(v, "/status/phase").unwrap_or("New").to_string(),
            started: time_at(v, "/status/startTimestamp"),
            completed: time_at(v, "/status/completionTimestamp"),
            warnings: int(v, "/status/warnings"),
            errors: int(v, "/status/errors"),
            location: text(v, "/spec/storageLocation").map(str::to_string),
        }
    }

    pub(super) fn when(&self) -> Option<DateTime<Utc>> {
        self.completed.or(self.started)
    }

    pub(super) fn completed(&self) -> bool {
        self.phase == "Completed"
    }
}

impl Kube {
    /// Newest first.
    pub(super) async fn velero_backups(&self) -> Result<Vec<VeleroBackup>, ClusterError> {
        let mut out: Vec<VeleroBackup> = self
            .list(Kind::Backup, Some(&self.settings.velero_namespace), None)
            .await?
            .iter()
            .map(VeleroBackup::read)
            .collect();
        out.sort_by(|a, b| b.when().cmp(&a.when()).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    pub(super) async fn prepare_infra(
        &self,
        spec: &OperationSpec,
    ) -> Result<Prepared, ClusterError> {
        let velero_ns = self.settings.velero_namespace.as_str();
        let backups = self.velero_backups().await?;
        let known = || {
            let names: Vec<String> = backups.iter().map(|b| b.name.clone()).collect();
            known_names(&names)
        };
        let chosen = match &spec.backup {
            Some(name) => {
                let b = backups.iter().find(|b| &b.name == name).ok_or_else(|| {
                    ClusterError::Invalid(format!(
                        "unknown Velero backup {name} in namespace {velero_ns}; known (newest first): {}",
                        known()
                    ))
                })?;
                if !matches!(b.phase.as_str(), "Completed" | "PartiallyFailed") {
                    return Err(ClusterError::Invalid(format!(
                        "Velero backup {name} is {}: restore from a Completed (or PartiallyFailed) backup",
                        b.phase
                    )));
                }
                b
            }
            None => backups.iter().find(|b| b.completed()).ok_or_else(|| {
                ClusterError::Invalid(format!(
                    "no Completed Velero backup in namespace {velero_ns} to restore from (backups: {})",
                    known()
                ))
            })?,
        };
        let excluded = if spec.exclude_database_namespaces {
            self.database_namespaces()
        } else {
            Vec::new()
        };
        // Resolved before anything is shown: Velero fails a Restore whose namespace lists
        // share an item (restore_scope.rs).
        let scope = RestoreScope::resolve(&spec.include_namespaces, &excluded, Some(DATABASES))?;
        let mut summary = vec![format!(
            "Velero Restore {velero_ns}/{} from backup {} ({} {})",
            spec.object_name,
            chosen.name,
            chosen.phase,
            chosen.when().map_or_else(|| "time unknown".into(), fmt)
        )];
        if !chosen.completed() {
            summary.push(format!(
                "that backup is {} ({} warnings, {} errors): some objects may be missing",
                chosen.phase, chosen.warnings, chosen.errors
            ));
        }
        summary.extend(scope.summary());
        if let Some(location) = &chosen.location {
            match self.get(Kind::StorageLocation, velero_ns, location).await? {
                Some(bsl) => {
                    let phase = text(&bsl, "/status/phase").unwrap_or("unknown");
                    if phase != "Available" {
                        summary.push(format!(
                            "WARNING: BackupStorageLocation {location} is {phase}: Velero refuses restores until it is Available"
                        ));
                    }
                }
                None => summary.push(format!(
                    "WARNING: BackupStorageLocation {location} of that backup does not exist"
                )),
            }
        }
        summary.push(VELERO_RESTORE_POLICY.into());
        let existing = self
            .get(Kind::Restore, velero_ns, &spec.object_name)
            .await?;
        if let Some(r) = &existing {
            check_adoptable(r, velero_ns, &spec.object_name, spec.backup.as_deref())?;
            summary.push(format!(
                "Restore {} already exists (drbot's, from backup {}, phase {}): confirming reports it and creates nothing",
                spec.object_name,
                text(r, "/spec/backupName").unwrap_or("?"),
                text(r, "/status/phase").unwrap_or("New")
            ));
        }
        let doc = manifests::velero_restore(&spec.object_name, velero_ns, &chosen.name, &scope);
        let steps = vec![Step {
            kind: Kind::Restore,
            create: true,
            doc,
            undo: None,
        }];
        let mut prepared = Prepared::applying(summary, steps, "", existing.is_some());
        prepared.plan.backup = Some(chosen.name.clone());
        Ok(prepared)
    }

    pub(super) async fn observe_velero(
        &self,
        spec: &OperationSpec,
    ) -> Result<Observation, ClusterError> {
        let ns = self.settings.velero_namespace.as_str();
        let Some(r) = self.get(Kind::Restore, ns, &spec.object_name).await? else {
            return Ok(Observation {
                phase: "Missing".into(),
                percent: 0,
                detail: format!(
                    "Restore {ns}/{} does not exist (deleted after launch?)",
                    spec.object_name
                ),
                done: Some(Outcome::Failed),
                result: None,
            });
        };
        let phase = text(&r, "/status/phase").unwrap_or("New").to_string();
        let items = int(&r, "/status/progress/itemsRestored");
        let total = int(&r, "/status/progress/totalItems");
        let warnings = int(&r, "/status/warnings");
        let errors = int(&r, "/status/errors");
        let progress = if total > 0 {
            format!("{items}/{total} items restored")
        } else {
            "no item count yet".to_string()
        };
        let running_percent = if total > 0 {
            1 + ((items.clamp(0, total) as f64 / total as f64) * 98.0).floor() as u8
        } else {
            1
        };
        let outcome = match phase.as_str() {
            "Completed" => Some(Outcome::Succeeded),
            "PartiallyFailed" | "Failed" | "FailedValidation" => Some(Outcome::Failed),
            _ => None,
        };
        let Some(outcome) = outcome else {
            let (percent, detail) = match phase.as_str() {
                "New" => (0, "waiting for the Velero server to pick it up".to_string()),
                "InProgress" => (running_percent, progress),
                "WaitingForPluginOperations"
                | "WaitingForPluginOperationsPartiallyFailed"
                | "Finalizing"
                | "FinalizingPartiallyFailed" => (
                    99,
                    format!("{progress}; {phase}: waiting for volume data and plugin operations"),
                ),
                other => (
                    running_percent,
                    format!("{progress}; phase {other} is unknown to drbot: still watching"),
                ),
            };
            let detail = if warnings > 0 || errors > 0 {
                format!("{detail}, {warnings} warnings, {errors} errors so far")
            } else {
                detail
            };
            return Ok(Observation {
                phase,
                percent,
                detail,
                done: None,
                result: None,
            });
        };
        let mut detail = format!("{progress}, {warnings} warnings, {errors} errors");
        if let Some(reason) = text(&r, "/status/failureReason") {
            detail.push_str(&format!("; failure: {reason}"));
        }
        let validation: Vec<Value> = r
            .pointer("/status/validationErrors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !validation.is_empty() {
            let each: Vec<String> = validation
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            detail.push_str(&format!("; validation errors: {}", each.join("; ")));
        }
        if warnings > 0 || errors > 0 || outcome == Outcome::Failed {
            detail.push_str(&format!(
                " (details: velero restore describe {} --details)",
                spec.object_name
            ));
        }
        Ok(Observation {
            phase: phase.clone(),
            percent: if outcome == Outcome::Succeeded {
                100
            } else {
                running_percent.min(99)
            },
            detail,
            done: Some(outcome),
            result: Some(json!({
                "restore": spec.object_name,
                "backupName": text(&r, "/spec/backupName"),
                "phase": phase,
                "itemsRestored": items,
                "totalItems": total,
                "warnings": warnings,
                "errors": errors,
                "failureReason": text(&r, "/status/failureReason"),
                "validationErrors": validation,
                "startTimestamp": text(&r, "/status/startTimestamp"),
                "completionTimestamp": text(&r, "/status/completionTimestamp"),
            })),
        })
    }
}
