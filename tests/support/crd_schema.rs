//! Validation of custom resources against the upstream CRDs' OpenAPI v3 structural schemas
//! (`shared/reference/crds`), so a manifest drbot prints is known to be accepted by the API
//! server before any cluster sees it.
//!
//! Enforced: `type`, `properties`, `required`, `additionalProperties` (bool or schema),
//! `items`, `enum`, `nullable`, `x-kubernetes-preserve-unknown-fields`,
//! `x-kubernetes-int-or-string`, `anyOf`/`oneOf`/`allOf`/`not`, `minimum`/`maximum` (with
//! `exclusiveMinimum`/`exclusiveMaximum`), `multipleOf`, `minLength`/`maxLength`,
//! `minItems`/`maxItems`, `uniqueItems`, `minProperties`/`maxProperties`, `format`
//! (`date-time` as RFC 3339, `int32`/`int64` ranges, `byte` as base64), `pattern` (a small
//! backtracking engine: groups, alternation, classes, `\d\w\s`, `* + ? {n,m}`, anchors),
//! `x-kubernetes-list-type` `set`/`map` uniqueness, and `metadata` as ObjectMeta. Fields a
//! schema does not declare are errors here ([`Crds::validate`], `fieldValidation=Strict`);
//! the stand-in first prunes them as a real API server does ([`Crds::prune`], see
//! `crd_release.rs`) and records what it pruned, so tests can still say "nothing drbot
//! writes is pruned". Older releases' CRDs (`crds/older/`) are chosen per kind with
//! [`Releases`].
//!
//! Not checked: `x-kubernetes-validations` (CEL), `default` (defaulting, not validation),
//! other formats, and patterns the engine cannot parse (reported once on stderr).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use super::crd_pattern::pattern_matches;
use super::crd_release::{self, Releases};

/// The CRDs of a folder, by (group/version, kind).
pub struct Crds {
    index: Arc<Index>,
}

struct Index {
    dir: PathBuf,
    files: Vec<CrdFile>,
}

struct CrdFile {
    path: PathBuf,
    group: String,
    kind: String,
    /// The upstream tag of a file in `older/` (from its name); `None` for the newest.
    release: Option<String>,
    /// The versions with their schemas, parsed on first use (some files are 400 KB).
    versions: OnceLock<Vec<Version>>,
}

struct Version {
    name: String,
    served: bool,
    schema: Value,
}

static INDEX: OnceLock<Option<Arc<Index>>> = OnceLock::new();

impl Crds {
    /// Loads /work/shared/reference/crds and its `older/` folder (path:
    /// CARGO_MANIFEST_DIR/../shared/reference/crds). None when the folder is absent, printing
    /// "CRD schemas not found: schema checks skipped"; but if env DRBOT_REQUIRE_CRDS=1,
    /// panics instead, also when a file of an older release [`Releases`] selects is missing.
    pub fn load() -> Option<Crds> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/crds");
        let index = INDEX
            .get_or_init(|| Index::read(&dir).map(Arc::new))
            .clone();
        let required = std::env::var("DRBOT_REQUIRE_CRDS").as_deref() == Ok("1");
        match index {
            Some(index) => {
                let missing: Vec<String> = Releases::all_older_tags()
                    .iter()
                    .filter(|(g, k, tag)| {
                        !index.files.iter().any(|f| {
                            f.group == *g && f.kind == *k && f.release.as_deref() == Some(*tag)
                        })
                    })
                    .map(|(g, k, tag)| format!("{g} {k} {tag}"))
                    .collect();
                if !missing.is_empty() {
                    if required {
                        panic!(
                            "older CRD releases missing in {}/older ({}) and DRBOT_REQUIRE_CRDS=1",
                            dir.display(),
                            missing.join(", ")
                        );
                    }
                    eprintln!(
                        "older CRD releases not found ({}): those releases are served with the newest schema",
                        missing.join(", ")
                    );
                }
                Some(Crds { index })
            }
            None => {
                if required {
                    panic!(
                        "CRD schemas not found in {} and DRBOT_REQUIRE_CRDS=1",
                        dir.display()
                    );
                }
                eprintln!("CRD schemas not found: schema checks skipped");
                None
            }
        }
    }

    /// The release of the file serving `object`'s kind under `releases` (`None`: newest).
    pub fn release_of(&self, object: &Value, releases: &Releases) -> Option<String> {
        let (group, kind) = group_kind(object)?;
        self.file(&group, &kind, releases)
            .and_then(|f| f.release.clone())
    }

    fn file(&self, group: &str, kind: &str, releases: &Releases) -> Option<&CrdFile> {
        let newest = || {
            self.index
                .files
                .iter()
                .find(|f| f.group == group && f.kind == kind && f.release.is_none())
        };
        match releases.tag(group, kind) {
            Some(tag) => self
                .index
                .files
                .iter()
                .find(|f| f.group == group && f.kind == kind && f.release.as_deref() == Some(tag))
                .or_else(newest),
            None => newest(),
        }
    }

    /// Prunes `object` as the API server does for the schema of its kind under `releases`;
    /// returns the paths dropped. An object whose schema cannot be found is left alone (the
    /// validation reports it).
    pub fn prune(&self, object: &mut Value, releases: &Releases) -> Vec<String> {
        match self.schema(object, releases) {
            Ok(schema) => {
                let schema = schema.clone();
                crd_release::prune(&schema, object)
            }
            Err(_) => Vec::new(),
        }
    }

    /// Errors as JSON-path strings ("spec.initialData.restore.fromBackup.pointInTimeRecovery.restoreToTimestamp: expected string").
    /// Uses apiVersion + kind of the object and the newest CRDs; an unknown kind or a version
    /// that is not served is an error.
    pub fn validate(&self, object: &serde_json::Value) -> Result<(), Vec<String>> {
        self.validate_with(object, &Releases::default())
    }

    /// [`Crds::validate`] against the CRDs `releases` selects.
    pub fn validate_with(&self, object: &Value, releases: &Releases) -> Result<(), Vec<String>> {
        let schema = self.schema(object, releases)?;
        let mut v = Validator {
            errors: Vec::new(),
            branch: false,
        };
        v.check(schema, object, "");
        if v.errors.is_empty() {
            Ok(())
        } else {
            Err(v.errors)
        }
    }

    fn schema(&self, object: &Value, releases: &Releases) -> Result<&Value, Vec<String>> {
        let field = |name: &str| object.get(name).and_then(Value::as_str);
        let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
            return Err(vec![
                "<root>: apiVersion and kind (strings) are required to find the schema".into(),
            ]);
        };
        let Some((group, version)) = api_version.split_once('/') else {
            return Err(vec![format!(
                "apiVersion: {api_version} has no group: a custom resource is group/version"
            )]);
        };
        let Some(file) = self.file(group, kind, releases) else {
            let known: Vec<String> = self
                .index
                .files
                .iter()
                .filter(|f| f.release.is_none())
                .map(|f| format!("{}/{}", f.group, f.kind))
                .collect();
            return Err(vec![format!(
                "kind: no CRD for {group} {kind} in {} (known: {})",
                self.index.dir.display(),
                known.join(", ")
            )]);
        };
        let versions = file.versions();
        let Some(schema) = versions
            .iter()
            .find(|v| v.name == version && v.served)
            .map(|v| &v.schema)
        else {
            let served: Vec<&str> = versions
                .iter()
                .filter(|v| v.served)
                .map(|v| v.name.as_str())
                .collect();
            return Err(vec![format!(
                "apiVersion: {version} is not a served version of {group} {kind} (served: {})",
                served.join(", ")
            )]);
        };
        Ok(schema)
    }
}

impl Index {
    fn read(dir: &Path) -> Option<Index> {
        let entries = std::fs::read_dir(dir).ok()?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return None;
        }
        let mut files: Vec<CrdFile> = paths
            .into_iter()
            .map(|p| CrdFile::index(p, false))
            .collect();
        // Older releases: `<group>_<plural>.<tag>.yaml`.
        if let Ok(entries) = std::fs::read_dir(dir.join("older")) {
            let mut older: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            older.sort();
            files.extend(older.into_iter().map(|p| CrdFile::index(p, true)));
        }
        Some(Index {
            dir: dir.to_path_buf(),
            files,
        })
    }
}

impl CrdFile {
    /// Reads only the head of the file (everything before `spec.versions`) for its group and
    /// kind; the schemas wait until a resource of that kind is validated.
    fn index(path: PathBuf, older: bool) -> CrdFile {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let head = text
            .find("\n  versions:")
            .and_then(|end| serde_yaml::from_str::<Value>(&text[..end]).ok())
            .filter(|h| h.pointer("/spec/names/kind").is_some())
            .unwrap_or_else(|| parse(&path, &text));
        let get = |pointer: &str| {
            head.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{} has no {pointer}", path.display()))
                .to_string()
        };
        assert_eq!(
            get("/kind"),
            "CustomResourceDefinition",
            "{} is not a CRD",
            path.display()
        );
        let release = older.then(|| {
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let after_group = file.split_once('_').map_or(file, |(_, rest)| rest);
            let tagged = after_group.split_once('.').map_or("", |(_, rest)| rest);
            tagged
                .trim_end_matches(".yaml")
                .trim_end_matches(".yml")
                .to_string()
        });
        CrdFile {
            group: get("/spec/group"),
            kind: get("/spec/names/kind"),
            release,
            path,
            versions: OnceLock::new(),
        }
    }

    fn versions(&self) -> &[Version] {
        self.versions.get_or_init(|| {
            let text = std::fs::read_to_string(&self.path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", self.path.display()));
            let crd = parse(&self.path, &text);
            let versions = crd
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .unwrap_or_else(|| panic!("{} has no spec.versions", self.path.display()));
            versions
                .iter()
                .map(|v| Version {
                    name: v["name"].as_str().unwrap_or_default().to_string(),
                    served: v["served"].as_bool().unwrap_or(false),
                    schema: v
                        .pointer("/schema/openAPIV3Schema")
                        .cloned()
                        .unwrap_or_else(|| {
                            panic!(
                                "{} version {} has no openAPIV3Schema",
                                self.path.display(),
                                v["name"]
                            )
                        }),
                })
                .collect()
        })
    }
}

/// (group, kind) of a custom resource's `apiVersion` and `kind`.
fn group_kind(object: &Value) -> Option<(String, String)> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    let (group, _) = api_version.split_once('/')?;
    Some((group.to_string(), kind.to_string()))
}

fn parse(path: &Path, text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

// ---- validation --------------------------------------------------------------------------

struct Validator {
    errors: Vec<String>,
    /// Inside `anyOf`/`oneOf`/`allOf`/`not`: the branch constrains values, while the fields
    /// themselves were already checked against the enclosing schema.
    branch: bool,
}

fn join(path: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), simple) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Value::String(key.to_string())),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(v: &Value) -> bool {
    v.is_i64() || v.is_u64()
}

fn flag(s: &Map<String, Value>, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn usize_of(s: &Map<String, Value>, key: &str) -> Option<usize> {
    s.get(key)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

impl Validator {
    fn err(&mut self, path: &str, message: impl std::fmt::Display) {
        let path = if path.is_empty() { "<root>" } else { path };
        self.errors.push(format!("{path}: {message}"));
    }

    /// Errors of `value` against `schema`, without recording them.
    fn errors_of(schema: &Value, value: &Value, path: &str) -> Vec<String> {
        let mut sub = Validator {
            errors: Vec::new(),
            branch: true,
        };
        sub.check(schema, value, path);
        sub.errors
    }

    fn check(&mut self, schema: &Value, value: &Value, path: &str) {
        let Some(s) = schema.as_object() else {
            if schema == &Value::Bool(false) {
                self.err(path, "not allowed");
            }
            return;
        };
        if value.is_null() {
            if !flag(s, "nullable") {
                self.err(
                    path,
                    "null is not allowed here (the schema is not nullable)",
                );
            }
            return;
        }
        let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
        if flag(s, "x-kubernetes-int-or-string") {
            if !(is_integer(value) || value.is_string()) {
                self.err(
                    path,
                    format!("expected integer or string, got {}", type_name(value)),
                );
                return;
            }
        } else if let Some(t) = s.get("type").and_then(Value::as_str) {
            let ok = match t {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => is_integer(value),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                _ => true,
            };
            if !ok {
                self.err(path, format!("expected {t}, got {}", type_name(value)));
                return;
            }
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(short).collect();
            self.err(
                path,
                format!("{} is not one of [{}]", short(value), list.join(", ")),
            );
        }
        self.combinators(s, value, path);
        match value {
            Value::Object(m) => self.object(s, m, path, preserve),
            Value::Array(items) => self.array(s, items, path),
            Value::String(text) => self.string(s, text, path),
            Value::Number(_) => self.number(s, value, path),
            _ => {}
        }
    }

    fn combinators(&mut self, s: &Map<String, Value>, value: &Value, path: &str) {
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for branch in all {
                let errors = Validator::errors_of(branch, value, path);
                self.errors.extend(errors);
            }
        }
        if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
            let failures: Vec<Vec<String>> = any
                .iter()
                .map(|b| Validator::errors_of(b, value, path))
                .collect();
            if !failures.iter().any(Vec::is_empty) {
                let why: Vec<String> = failures.into_iter().flatten().collect();
                self.err(path, format!("matches none of anyOf ({})", why.join("; ")));
            }
        }
        if let Some(one) = s.get("oneOf").and_then(Value::as_array) {
            let matching = one
                .iter()
                .filter(|b| Validator::errors_of(b, value, path).is_empty())
                .count();
            if matching != 1 {
                self.err(
                    path,
                    format!("matches {matching} of the oneOf schemas, not exactly one"),
                );
            }
        }
        if let Some(not) = s.get("not")
            && Validator::errors_of(not, value, path).is_empty()
        {
            self.err(path, "matches a schema it must not (not)");
        }
    }

    fn object(
        &mut self,
        s: &Map<String, Value>,
        m: &Map<String, Value>,
        path: &str,
        preserve: bool,
    ) {
        let empty = Map::new();
        let properties = s
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        if let Some(required) = s.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !m.contains_key(name) {
                    self.err(&join(path, name), "required field missing");
                }
            }
        }
        for (key, v) in m {
            let p = join(path, key);
            // Every resource has these, whether its schema declares them or not.
            if path.is_empty() && !self.branch {
                match key.as_str() {
                    "metadata" => {
                        self.metadata(properties.get("metadata"), v);
                        continue;
                    }
                    "apiVersion" | "kind" if !properties.contains_key(key) => {
                        if !v.is_string() {
                            self.err(&p, format!("expected string, got {}", type_name(v)));
                        }
                        continue;
                    }
                    _ => {}
                }
            }
            match (properties.get(key), s.get("additionalProperties")) {
                (None, _) if self.branch => {}
                (Some(schema), _) => self.check(schema, v, &p),
                (None, Some(Value::Bool(true))) => {}
                (None, Some(additional @ Value::Object(_))) => self.check(additional, v, &p),
                (None, _) if preserve => {}
                (None, _) => self.err(&p, "unknown field"),
            }
        }
        if let Some(min) = usize_of(s, "minProperties")
            && m.len() < min
        {
            self.err(
                path,
                format!("has {} properties, fewer than {min}", m.len()),
            );
        }
        if let Some(max) = usize_of(s, "maxProperties")
            && m.len() > max
        {
            self.err(path, format!("has {} properties, more than {max}", m.len()));
        }
    }

    fn array(&mut self, s: &Map<String, Value>, items: &[Value], path: &str) {
        if let Some(schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                self.check(schema, item, &format!("{path}[{i}]"));
            }
        }
        if let Some(min) = usize_of(s, "minItems")
            && items.len() < min
        {
            self.err(path, format!("has {} items, fewer than {min}", items.len()));
        }
        if let Some(max) = usize_of(s, "maxItems")
            && items.len() > max
        {
            self.err(path, format!("has {} items, more than {max}", items.len()));
        }
        let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
        if flag(s, "uniqueItems") || list_type == Some("set") {
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                if !seen.insert(item.to_string()) {
                    self.err(
                        &format!("{path}[{i}]"),
                        format!("duplicate item {}", short(item)),
                    );
                }
            }
        }
        if list_type == Some("map") {
            let keys: Vec<&str> = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                let key: Vec<String> = keys.iter().map(|k| item[*k].to_string()).collect();
                if !seen.insert(key.clone()) {
                    self.err(
                        &format!("{path}[{i}]"),
                        format!("duplicate entry for key ({})", key.join(", ")),
                    );
                }
            }
        }
    }

    fn string(&mut self, s: &Map<String, Value>, text: &str, path: &str) {
        let len = text.chars().count();
        if let Some(min) = usize_of(s, "minLength")
            && len < min
        {
            self.err(path, format!("{len} characters, fewer than {min}"));
        }
        if let Some(max) = usize_of(s, "maxLength")
            && len > max
        {
            self.err(path, format!("{len} characters, more than {max}"));
        }
        if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
            && let Some(false) = pattern_matches(pattern, text)
        {
            self.err(
                path,
                format!(
                    "{} does not match pattern {pattern}",
                    Value::String(text.into())
                ),
            );
        }
        match s.get("format").and_then(Value::as_str) {
            Some("date-time") if chrono::DateTime::parse_from_rfc3339(text).is_err() => {
                self.err(
                    path,
                    format!(
                        "{} is not an RFC 3339 date-time",
                        Value::String(text.into())
                    ),
                );
            }
            Some("byte") if !is_base64(text) => {
                self.err(path, "not base64");
            }
            _ => {}
        }
    }

    fn number(&mut self, s: &Map<String, Value>, value: &Value, path: &str) {
        let Some(x) = value.as_f64() else { return };
        if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
            let exclusive = flag(s, "exclusiveMinimum");
            if x < min || (exclusive && x == min) {
                self.err(path, format!("{value} is below the minimum {min}"));
            }
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
            let exclusive = flag(s, "exclusiveMaximum");
            if x > max || (exclusive && x == max) {
                self.err(path, format!("{value} is above the maximum {max}"));
            }
        }
        if let Some(m) = s.get("multipleOf").and_then(Value::as_f64)
            && m > 0.0
            && (x / m).fract() != 0.0
        {
            self.err(path, format!("{value} is not a multiple of {m}"));
        }
        let range = match s.get("format").and_then(Value::as_str) {
            Some("int32") => Some((i64::from(i32::MIN), i64::from(i32::MAX))),
            Some("int64") => Some((i64::MIN, i64::MAX)),
            _ => None,
        };
        if let Some((lo, hi)) = range
            && is_integer(value)
            && !value.as_i64().is_some_and(|n| lo <= n && n <= hi)
        {
            self.err(path, format!("{value} is out of range for its format"));
        }
    }

    /// ObjectMeta as the API server checks it, then what the CRD adds (StackGres limits
    /// `metadata.name`).
    fn metadata(&mut self, crd_schema: Option<&Value>, value: &Value) {
        let path = "metadata";
        let Some(m) = value.as_object() else {
            self.err(path, format!("expected object, got {}", type_name(value)));
            return;
        };
        match (m.get("name"), m.get("generateName")) {
            (Some(Value::String(name)), _) => {
                if let Err(why) = dns_subdomain(name) {
                    self.err("metadata.name", why);
                }
            }
            (Some(other), _) => self.err(
                "metadata.name",
                format!("expected string, got {}", type_name(other)),
            ),
            (None, Some(_)) => {}
            (None, None) => self.err("metadata.name", "required field missing"),
        }
        for (key, v) in m {
            let p = join(path, key);
            match key.as_str() {
                "name" => {}
                "namespace" => match v.as_str() {
                    Some(ns) => {
                        if let Err(why) = dns_label(ns) {
                            self.err(&p, why);
                        }
                    }
                    None => self.err(&p, format!("expected string, got {}", type_name(v))),
                },
                "labels" | "annotations" => self.string_map(key, v, &p),
                "generateName" | "uid" | "resourceVersion" | "selfLink" => {
                    if !v.is_string() {
                        self.err(&p, format!("expected string, got {}", type_name(v)));
                    }
                }
                "generation" | "deletionGracePeriodSeconds" => {
                    if !is_integer(v) {
                        self.err(&p, format!("expected integer, got {}", type_name(v)));
                    }
                }
                "creationTimestamp" | "deletionTimestamp" => {
                    if !(v.is_null()
                        || v.as_str()
                            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()))
                    {
                        self.err(&p, "expected an RFC 3339 date-time");
                    }
                }
                "finalizers" => {
                    if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                        self.err(&p, "expected an array of strings");
                    }
                }
                "ownerReferences" | "managedFields" => {
                    if !v.as_array().is_some_and(|a| a.iter().all(Value::is_object)) {
                        self.err(&p, "expected an array of objects");
                    }
                }
                _ => self.err(&p, "unknown field"),
            }
        }
        let declared = crd_schema
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object);
        for (key, schema) in declared.into_iter().flatten() {
            if let Some(v) = m.get(key) {
                self.check(schema, v, &join(path, key));
            }
        }
    }

    fn string_map(&mut self, which: &str, value: &Value, path: &str) {
        let Some(m) = value.as_object() else {
            self.err(path, format!("expected object, got {}", type_name(value)));
            return;
        };
        let mut total = 0;
        for (key, v) in m {
            let p = join(path, key);
            if let Err(why) = qualified_name(key) {
                self.err(&p, format!("invalid key: {why}"));
            }
            let Some(text) = v.as_str() else {
                self.err(&p, format!("expected string, got {}", type_name(v)));
                continue;
            };
            total += key.len() + text.len();
            if which == "labels" && !label_value(text) {
                self.err(
                    &p,
                    "invalid label value (at most 63 characters: letters, digits, '-', '_', '.', starting and ending with a letter or digit)",
                );
            }
        }
        if which == "annotations" && total > 256 * 1024 {
            self.err(path, "annotations exceed 256 KiB in total");
        }
    }
}

fn dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a DNS label (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"
        ))
    }
}

fn dns_subdomain(s: &str) -> Result<(), String> {
    let ok = !s.is_empty() && s.len() <= 253 && s.split('.').all(|l| dns_label(l).is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a DNS subdomain (at most 253 characters, dot-separated DNS labels)"
        ))
    }
}

fn qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        dns_subdomain(p)?;
    }
    if name.is_empty() || name.len() > 63 || !label_value(name) {
        return Err(format!(
            "{name:?} is not a qualified name (at most 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

fn label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

fn is_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len().is_multiple_of(4)
        && s.len() - body.len() <= 2
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
}
