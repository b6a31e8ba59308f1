//! What a write must pass before it is stored: type checks, CRD pruning and
//! validation, object name rules, and the 422 `Invalid` answer.

use super::*;

impl Call<'_> {
    /// Kind/apiVersion of a body must be the resource's.
    pub(super) fn check_type(&self, body: &Value) -> Result<(), Reply> {
        let res = self.res();
        let Some(map) = body.as_object() else {
            return Err(Reply::bad_request(
                "the body of the request is not a JSON object",
            ));
        };
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if kind.is_empty() {
            return Err(Reply::bad_request(format!(
                "Object 'Kind' is missing in '{body}'"
            )));
        }
        if api_version != res.api_version() || kind != res.kind {
            return Err(Reply::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                res.api_version()
            )));
        }
        Ok(())
    }
}

impl Call<'_> {
    /// Prune (unless `fieldValidation=Strict`) and validate a custom resource about to be
    /// stored; the schema errors.
    pub(super) fn admit(&self, world: &mut World, verb: &str, object: &mut Value) -> Vec<String> {
        if !self.res().custom {
            return Vec::new();
        }
        let Some(crds) = self.shared.crds else {
            return Vec::new();
        };
        let releases = &self.shared.releases;
        if self.param("fieldValidation") != Some("Strict") {
            let res = self.res().plural;
            for path in crds.prune(object, releases) {
                world.pruned.push(Pruned::new(verb, res, object, path));
            }
        }
        crds.validate_with(object, releases)
            .err()
            .unwrap_or_default()
    }

    /// Record and answer a 422 `Invalid`.
    pub(super) fn refuse(
        &self,
        world: &mut World,
        verb: &str,
        name: &str,
        object: Value,
        errors: Vec<String>,
    ) -> Reply {
        let res = self.res();
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| {
                let mut cause = json!({"reason": "FieldValueInvalid", "message": e});
                if let Some((field, _)) = e.split_once(": ")
                    && !field.contains(' ')
                {
                    cause["field"] = json!(field);
                }
                cause
            })
            .collect();
        world.invalid.push(Invalid {
            verb: verb.to_string(),
            resource: res.plural.to_string(),
            namespace: self.namespace().to_string(),
            name: name.to_string(),
            object,
            errors: errors.clone(),
        });
        let mut details = json!({"name": name, "kind": res.kind, "causes": causes});
        if !res.group.is_empty() {
            details["group"] = json!(res.group);
        }
        Reply::fail(
            422,
            "Invalid",
            format!(
                "{} \"{name}\" is invalid: [{}]",
                res.group_kind(),
                errors.join(", ")
            ),
            Some(details),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Names and patches
// ---------------------------------------------------------------------------------------

/// Object name rules: DNS-1123 label for namespaces, DNS-1123 subdomain otherwise.
pub(super) fn name_errors(res: &Resource, name: &str) -> Vec<String> {
    let label = res.plural == "namespaces";
    let max = if label { 63 } else { 253 };
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (c == '.' && !label));
    let ends_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if name.len() <= max && chars_ok && ends_ok {
        Vec::new()
    } else {
        let rule = if label {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        };
        vec![format!("metadata.name: Invalid value: \"{name}\": {rule}")]
    }
}
