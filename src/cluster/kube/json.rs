//! Reading and changing the JSON of API objects.

use super::*;

pub(super) fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

pub(super) fn time_at(v: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    text(v, pointer)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub(super) fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

pub(super) fn name_of(v: &Value) -> &str {
    text(v, "/metadata/name").unwrap_or("?")
}

pub(super) fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .and_then(|a| a.get(key))
}

pub(super) fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// The `status.conditions[]` entry of `kind`.
pub(super) fn condition<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

pub(super) fn condition_true(v: &Value, kind: &str) -> bool {
    condition(v, kind).and_then(|c| c.get("status").and_then(Value::as_str)) == Some("True")
}

/// Apply a JSON merge patch (RFC 7386) to `target`.
pub(super) fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// `base` with `extra`'s keys added, recursively; unlike [`merge`], nulls are kept (this builds
/// a patch, it does not apply one).
pub(super) fn overlay(base: &mut Value, extra: &Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => overlay(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, e) => *b = e.clone(),
    }
}

pub(super) fn set_annotation(doc: &mut Value, key: &str, value: Value) {
    overlay(
        doc,
        &json!({ "metadata": { "annotations": { key: value } } }),
    );
}

/// `(operation, prior)` of a freeze annotation.
pub(super) fn freeze_mark(v: &Value) -> Option<(String, Value)> {
    let raw = annotation(v, FREEZE_ANNOTATION)?.as_str()?;
    let parsed: Value = serde_json::from_str(raw).ok()?;
    let operation = parsed.get("operation")?.as_str()?.to_string();
    Some((
        operation,
        parsed.get("prior").cloned().unwrap_or(Value::Null),
    ))
}

/// `drbot-inc7` of `drbot-inc7-op3-freeze`: windows of any freeze of the same incident count
/// as this freeze's.
pub(super) fn incident_tag(object: &str) -> &str {
    match object.find("-op") {
        Some(i) if object.starts_with("drbot-inc") => &object[..i],
        _ => object,
    }
}

pub(super) fn pod_ready(pod: &Value) -> bool {
    condition_true(pod, "Ready")
}

/// Why a pod is not running well: the first waiting or terminated reason of its containers.
pub(super) fn pod_trouble(pod: &Value) -> Option<String> {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)?;
    statuses.iter().find_map(|c| {
        let restarts = c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        let reason =
            text(c, "/state/waiting/reason").or_else(|| text(c, "/state/terminated/reason"))?;
        Some(if restarts > 0 {
            format!("{reason}, {restarts} restarts")
        } else {
            reason.to_string()
        })
    })
}

pub(super) fn pod_state(pod: &Value) -> String {
    let phase = text(pod, "/status/phase").unwrap_or("Pending");
    let ready = if pod_ready(pod) { ", Ready" } else { "" };
    match pod_trouble(pod) {
        Some(t) => format!("{} {phase}{ready} ({t})", name_of(pod)),
        None => format!("{} {phase}{ready}", name_of(pod)),
    }
}

/// A PostgreSQL major from `server_version_num` (`160004` → `16`) or a version (`16.4`).
pub(super) fn pg_major(version: &str) -> Option<String> {
    let v = version.trim();
    if let Ok(n) = v.parse::<u64>()
        && n >= 100_000
    {
        return Some((n / 10_000).to_string());
    }
    let major = v.split('.').next()?;
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit())).then(|| major.to_string())
}

/// Percent-encode a password for a connection URL.
pub(super) fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn join_limited(items: &[String], max: usize) -> String {
    if items.len() <= max {
        items.join(", ")
    } else {
        format!("{} and {} more", items[..max].join(", "), items.len() - max)
    }
}

/// The names an error offers instead of an unknown one: the first eight, or `none`.
pub(super) fn known_names(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        join_limited(names, 8)
    }
}
