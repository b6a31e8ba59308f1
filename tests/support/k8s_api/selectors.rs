//! Label and field selectors of LIST and WATCH.

use super::*;

// ---------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub(super) enum LabelReq {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Clone, Debug)]
pub(super) struct Selectors {
    pub(super) labels: Vec<LabelReq>,
    /// (field path, equal?, value)
    pub(super) fields: Vec<(String, bool, String)>,
}

impl Selectors {
    pub(super) fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|r| match r {
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::Ne(k, v) => label(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
        });
        labels_ok
            && self.fields.iter().all(|(path, equal, value)| {
                let pointer = format!("/{}", path.replace('.', "/"));
                let actual = match object.pointer(&pointer) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                (actual == *value) == *equal
            })
    }
}

/// Split on commas outside parentheses.
pub(super) fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

pub(super) fn parse_label_selector(s: &str) -> Result<Vec<LabelReq>, String> {
    let mut reqs = Vec::new();
    for term in split_terms(s) {
        let req = if let Some((head, tail)) = term.split_once('(') {
            let words: Vec<&str> = head.split_whitespace().collect();
            let values = tail
                .strip_suffix(')')
                .ok_or_else(|| format!("{term}: missing ')'"))?
                .split(',')
                .map(|v| v.trim().to_string())
                .collect();
            match words.as_slice() {
                [key, "in"] => LabelReq::In(key.to_string(), values),
                [key, "notin"] => LabelReq::NotIn(key.to_string(), values),
                _ => {
                    return Err(format!(
                        "{term}: expected `key in (..)` or `key notin (..)`"
                    ));
                }
            }
        } else if let Some(key) = term.strip_prefix('!') {
            LabelReq::NotExists(key.trim().to_string())
        } else if let Some((k, v)) = term.split_once("!=") {
            LabelReq::Ne(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = term.split_once("==") {
            LabelReq::Eq(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = term.split_once('=') {
            LabelReq::Eq(k.trim().to_string(), v.trim().to_string())
        } else {
            LabelReq::Exists(term.to_string())
        };
        let key = match &req {
            LabelReq::Eq(k, _)
            | LabelReq::Ne(k, _)
            | LabelReq::In(k, _)
            | LabelReq::NotIn(k, _)
            | LabelReq::Exists(k)
            | LabelReq::NotExists(k) => k,
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("{term}: invalid label key"));
        }
        reqs.push(req);
    }
    Ok(reqs)
}

pub(super) fn parse_field_selector(
    res: &Resource,
    s: &str,
) -> Result<Vec<(String, bool, String)>, String> {
    let mut fields = Vec::new();
    for term in split_terms(s) {
        let (path, equal, value) = if let Some((k, v)) = term.split_once("!=") {
            (k, false, v)
        } else if let Some((k, v)) = term.split_once("==") {
            (k, true, v)
        } else if let Some((k, v)) = term.split_once('=') {
            (k, true, v)
        } else {
            return Err(format!(
                "invalid selector: '{s}'; can't understand '{term}'"
            ));
        };
        let path = path.trim();
        if !["metadata.name", "metadata.namespace"].contains(&path)
            && !res.selectable.contains(&path)
        {
            return Err(format!("field label not supported: {path}"));
        }
        fields.push((path.to_string(), equal, value.trim().to_string()));
    }
    Ok(fields)
}
