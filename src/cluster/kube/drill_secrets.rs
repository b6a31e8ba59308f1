//! The object-storage Secrets a restore into another namespace needs there.
//!
//! StackGres reads the Secrets a backup's storage names in the namespace of the cluster being
//! restored, not the backup's source namespace, and refuses to reconcile without them ("Secret
//! X not found for SGBackup Y", "Key K not found in Secret X for SGBackup Y":
//! `ClusterRestoreBackupContextAppender.java` ~70-100 at 1.18.6; runbook
//! `doc/content/en/09-runbooks/03-restore-backup/_index.md` ~67). drbot does not copy them
//! (that would need `get` on every Secret of the production namespace and `create` in the
//! drill namespace); a drill requires them in the drill namespace and checks them with `get`
//! there only, at `/dr drill` and in `drbot doctor`, naming the command that copies them.

use super::*;

/// `(secret name, key)` pairs the backup's storage names, as `BackupEnvVarFactory.
/// streamStorageSecretReferences` lists them (1.18.6 ~65-115): S3 keys unless `useIAMRole`,
/// S3-compatible keys and CA, GCS service account JSON, Azure account and key, and the
/// sodium / OpenPGP encryption keys. Read from `status.sgBackupConfig.storage`.
pub(super) fn storage_secret_refs(backup: &Value) -> Vec<(String, String)> {
    let Some(storage) = backup.pointer("/status/sgBackupConfig/storage") else {
        return Vec::new();
    };
    let s3_iam = storage
        .pointer("/s3/awsCredentials/useIAMRole")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut paths: Vec<&str> = Vec::new();
    if !s3_iam {
        paths.extend([
            "/s3/awsCredentials/secretKeySelectors/accessKeyId",
            "/s3/awsCredentials/secretKeySelectors/secretAccessKey",
        ]);
    }
    paths.extend([
        "/s3Compatible/awsCredentials/secretKeySelectors/accessKeyId",
        "/s3Compatible/awsCredentials/secretKeySelectors/secretAccessKey",
        "/s3Compatible/awsCredentials/secretKeySelectors/caCertificate",
        "/gcs/gcpCredentials/secretKeySelectors/serviceAccountJSON",
        "/azureBlob/azureCredentials/secretKeySelectors/storageAccount",
        "/azureBlob/azureCredentials/secretKeySelectors/accessKey",
        "/encryption/sodium/key",
        "/encryption/openpgp/key",
        "/encryption/openpgp/keyPassphrase",
    ]);
    let mut out: Vec<(String, String)> = Vec::new();
    for p in paths {
        if let Some(sel) = storage.pointer(p)
            && let (Some(name), Some(key)) = (text(sel, "/name"), text(sel, "/key"))
        {
            let pair = (name.to_string(), key.to_string());
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    out
}

/// The command that copies Secret `name` from `from` into `to`, without the fields the API
/// server owns.
pub fn copy_secret_command(name: &str, from: &str, to: &str) -> String {
    format!(
        "kubectl get secret {name} -n {from} -o json | jq '{{apiVersion, kind, type, data, metadata: {{name: .metadata.name, namespace: \"{to}\"}}}}' | kubectl create -f -"
    )
}

impl Kube {
    /// What is missing in `namespace` for a restore from `backup` (whose Secrets live in
    /// `source_ns`): one line per Secret or key, each with its fix. Empty: all there.
    pub(super) async fn missing_storage_secrets(
        &self,
        backup: &Value,
        namespace: &str,
        source_ns: &str,
    ) -> Result<Vec<String>, ClusterError> {
        let refs = storage_secret_refs(backup);
        let mut names: Vec<&str> = refs.iter().map(|(n, _)| n.as_str()).collect();
        names.dedup();
        let backup_name = name_of(backup);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let mut missing = Vec::new();
        for name in names {
            let what = format!("reading Secret {namespace}/{name}");
            let access = Access::core_get("secrets", namespace);
            let found = self
                .timed(&what, Some(access), secrets.get_opt(name))
                .await?;
            let fix = copy_secret_command(name, source_ns, namespace);
            match found {
                None => missing.push(format!(
                    "Secret {name} (object storage of SGBackup {backup_name}) is not in namespace {namespace}, and StackGres reads it there: copy it with `{fix}`"
                )),
                Some(secret) => {
                    let has = |k: &str| {
                        secret.data.as_ref().is_some_and(|d| d.contains_key(k))
                            || secret.string_data.as_ref().is_some_and(|d| d.contains_key(k))
                    };
                    for (_, key) in refs.iter().filter(|(n, _)| n == name) {
                        if !has(key) {
                            missing.push(format!(
                                "Secret {namespace}/{name} has no key {key}, which SGBackup {backup_name} needs: copy it again with `kubectl delete secret {name} -n {namespace} && {fix}`"
                            ));
                        }
                    }
                }
            }
        }
        Ok(missing)
    }

    /// For `drbot doctor`: whether the drill namespace holds the storage Secrets of each
    /// Completed SGBackup in the database namespace. `None`: drills restore in place.
    pub async fn drill_secrets(&self) -> Result<Option<Vec<String>>, ClusterError> {
        let source_ns = self.settings.database_namespace.clone();
        let drill_ns = self.drill_namespace.clone();
        if drill_ns == source_ns {
            return Ok(None);
        }
        let backups = self.list(Kind::SgBackup, Some(&source_ns), None).await?;
        let mut seen: Vec<Vec<(String, String)>> = Vec::new();
        let mut missing = Vec::new();
        for b in backups.iter().filter(|b| BaseBackup::read(b).completed()) {
            let refs = storage_secret_refs(b);
            if seen.contains(&refs) {
                continue;
            }
            seen.push(refs);
            for line in self
                .missing_storage_secrets(b, &drill_ns, &source_ns)
                .await?
            {
                if !missing.contains(&line) {
                    missing.push(line);
                }
            }
        }
        Ok(Some(missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_follow_the_storage_kind_and_skip_iam() {
        let sel = |n: &str, k: &str| json!({"name": n, "key": k});
        let b = json!({"status": {"sgBackupConfig": {"storage": {
            "type": "s3",
            "s3": {"awsCredentials": {"secretKeySelectors": {
                "accessKeyId": sel("creds", "id"), "secretAccessKey": sel("creds", "secret")}}},
            "encryption": {"sodium": {"key": sel("enc", "k")}},
        }}}});
        assert_eq!(
            storage_secret_refs(&b),
            [("creds", "id"), ("creds", "secret"), ("enc", "k")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let mut iam = b.clone();
        iam["status"]["sgBackupConfig"]["storage"]["s3"]["awsCredentials"]["useIAMRole"] =
            json!(true);
        assert_eq!(storage_secret_refs(&iam).len(), 1);
        assert!(copy_secret_command("creds", "db", "dr-drill").contains("namespace: \"dr-drill\""));
    }
}
