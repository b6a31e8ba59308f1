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
//! schema does not declare are errors: the API server would prune them, and for us an
//! unknown field is a typo.
//!
//! Not checked: `x-kubernetes-validations` (CEL), `default` (defaulting, not validation),
//! other formats, and patterns the engine cannot parse (reported once on stderr).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value};

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
    /// Loads /work/shared/reference/crds (path: CARGO_MANIFEST_DIR/../shared/reference/crds).
    /// None when the folder is absent, printing "CRD schemas not found: schema checks
    /// skipped"; but if env DRBOT_REQUIRE_CRDS=1, panics instead.
    pub fn load() -> Option<Crds> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/crds");
        let index = INDEX
            .get_or_init(|| Index::read(&dir).map(Arc::new))
            .clone();
        match index {
            Some(index) => Some(Crds { index }),
            None => {
                if std::env::var("DRBOT_REQUIRE_CRDS").as_deref() == Ok("1") {
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

    /// Errors as JSON-path strings ("spec.initialData.restore.fromBackup.pointInTimeRecovery.restoreToTimestamp: expected string").
    /// Uses apiVersion + kind of the object; an unknown kind or a version that is not served
    /// is an error.
    pub fn validate(&self, object: &serde_json::Value) -> Result<(), Vec<String>> {
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
        let Some(file) = self
            .index
            .files
            .iter()
            .find(|f| f.group == group && f.kind == kind)
        else {
            let known: Vec<String> = self
                .index
                .files
                .iter()
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
        let files = paths.into_iter().map(CrdFile::index).collect();
        Some(Index {
            dir: dir.to_path_buf(),
            files,
        })
    }
}

impl CrdFile {
    /// Reads only the head of the file (everything before `spec.versions`) for its group and
    /// kind; the schemas wait until a resource of that kind is validated.
    fn index(path: PathBuf) -> CrdFile {
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
        CrdFile {
            group: get("/spec/group"),
            kind: get("/spec/names/kind"),
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

// ---- patterns ----------------------------------------------------------------------------

/// Whether `text` contains a match of `pattern`; `None` when the engine cannot parse it
/// (reported once).
fn pattern_matches(pattern: &str, text: &str) -> Option<bool> {
    static UNSUPPORTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let nodes = match Regex::parse(pattern) {
        Ok(nodes) => nodes,
        Err(why) => {
            let mut seen = UNSUPPORTED.lock().unwrap_or_else(|e| e.into_inner());
            if seen.insert(pattern.to_string()) {
                eprintln!("pattern {pattern:?} not checked: {why}");
            }
            return None;
        }
    };
    let chars: Vec<char> = text.chars().collect();
    Some((0..=chars.len()).any(|start| matches_at(&nodes, &chars, start, &|_| true)))
}

#[derive(Debug)]
enum Node {
    Char(char),
    Any,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Start,
    End,
    Group(Vec<Vec<Node>>),
    Repeat {
        node: Box<Node>,
        min: usize,
        max: Option<usize>,
    },
}

struct Regex {
    chars: Vec<char>,
    pos: usize,
}

const DIGIT: &[(char, char)] = &[('0', '9')];
const WORD: &[(char, char)] = &[('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')];
const SPACE: &[(char, char)] = &[(' ', ' '), ('\t', '\r')];

impl Regex {
    fn parse(pattern: &str) -> Result<Vec<Node>, String> {
        let mut r = Regex {
            chars: pattern.chars().collect(),
            pos: 0,
        };
        let alternatives = r.alternatives()?;
        if r.pos != r.chars.len() {
            return Err(format!("unexpected {:?} at {}", r.chars[r.pos], r.pos));
        }
        Ok(vec![Node::Group(alternatives)])
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Result<char, String> {
        let c = self.peek().ok_or("unexpected end")?;
        self.pos += 1;
        Ok(c)
    }

    fn alternatives(&mut self) -> Result<Vec<Vec<Node>>, String> {
        let mut alternatives = vec![self.sequence()?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alternatives.push(self.sequence()?);
        }
        Ok(alternatives)
    }

    fn sequence(&mut self) -> Result<Vec<Node>, String> {
        let mut nodes = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            nodes.push(self.quantified(atom)?);
        }
        Ok(nodes)
    }

    fn atom(&mut self) -> Result<Node, String> {
        Ok(match self.next()? {
            '(' => {
                if self.peek() == Some('?') {
                    self.pos += 1;
                    if self.next()? != ':' {
                        return Err("only (?: groups are supported".into());
                    }
                }
                let alternatives = self.alternatives()?;
                if self.next()? != ')' {
                    return Err("unclosed group".into());
                }
                Node::Group(alternatives)
            }
            '[' => self.class()?,
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '\\' => self.escape()?,
            c @ ('*' | '+' | '?' | '{') => return Err(format!("nothing to repeat before {c:?}")),
            c => Node::Char(c),
        })
    }

    fn escape(&mut self) -> Result<Node, String> {
        let class = |negated, ranges: &[(char, char)]| Node::Class {
            negated,
            ranges: ranges.to_vec(),
        };
        Ok(match self.next()? {
            'd' => class(false, DIGIT),
            'D' => class(true, DIGIT),
            'w' => class(false, WORD),
            'W' => class(true, WORD),
            's' => class(false, SPACE),
            'S' => class(true, SPACE),
            'n' => Node::Char('\n'),
            't' => Node::Char('\t'),
            c if c.is_ascii_punctuation() => Node::Char(c),
            c => return Err(format!("unsupported escape \\{c}")),
        })
    }

    fn class(&mut self) -> Result<Node, String> {
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self
                .next()
                .map_err(|_| "unclosed character class".to_string())?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                match self.next()? {
                    'd' => {
                        ranges.extend_from_slice(DIGIT);
                        continue;
                    }
                    'w' => {
                        ranges.extend_from_slice(WORD);
                        continue;
                    }
                    's' => {
                        ranges.extend_from_slice(SPACE);
                        continue;
                    }
                    'n' => '\n',
                    't' => '\t',
                    e if e.is_ascii_punctuation() => e,
                    e => return Err(format!("unsupported escape \\{e} in a class")),
                }
            } else {
                c
            };
            let is_range = self.peek() == Some('-') && self.chars.get(self.pos + 1) != Some(&']');
            if is_range {
                self.pos += 1;
                let mut hi = self.next()?;
                if hi == '\\' {
                    hi = self.next()?;
                }
                if hi < lo {
                    return Err(format!("bad range {lo}-{hi}"));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Node::Class { negated, ranges })
    }

    fn number(&mut self) -> Option<usize> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.chars[start..self.pos]
            .iter()
            .collect::<String>()
            .parse()
            .ok()
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                self.pos += 1;
                let min = self.number().ok_or("bad {n,m}")?;
                let max = if self.peek() == Some(',') {
                    self.pos += 1;
                    self.number()
                } else {
                    Some(min)
                };
                if self.peek() != Some('}') {
                    return Err("bad {n,m}".into());
                }
                (min, max)
            }
            _ => return Ok(atom),
        };
        self.pos += 1;
        if matches!(self.peek(), Some('?' | '+')) {
            return Err("lazy and possessive quantifiers are not supported".into());
        }
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
        })
    }
}

fn single(node: &Node, c: char) -> bool {
    match node {
        Node::Char(x) => *x == c,
        Node::Any => c != '\n',
        Node::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
        }
        _ => false,
    }
}

/// Backtracking: whether `nodes` match at `i` with the continuation `k` accepting the end.
fn matches_at(nodes: &[Node], s: &[char], i: usize, k: &dyn Fn(usize) -> bool) -> bool {
    let Some((first, rest)) = nodes.split_first() else {
        return k(i);
    };
    match first {
        Node::Start => i == 0 && matches_at(rest, s, i, k),
        Node::End => i == s.len() && matches_at(rest, s, i, k),
        Node::Group(alternatives) => alternatives
            .iter()
            .any(|alt| matches_at(alt, s, i, &|j| matches_at(rest, s, j, k))),
        Node::Repeat { node, min, max } => repeat(node, *min, *max, 0, rest, s, i, k),
        one => i < s.len() && single(one, s[i]) && matches_at(rest, s, i + 1, k),
    }
}

#[allow(clippy::too_many_arguments)]
fn repeat(
    node: &Node,
    min: usize,
    max: Option<usize>,
    count: usize,
    rest: &[Node],
    s: &[char],
    i: usize,
    k: &dyn Fn(usize) -> bool,
) -> bool {
    if max.is_none_or(|m| count < m) {
        let more = matches_at(std::slice::from_ref(node), s, i, &|j| {
            (j != i || count < min) && repeat(node, min, max, count + 1, rest, s, j, k)
        });
        if more {
            return true;
        }
    }
    count >= min && matches_at(rest, s, i, k)
}
