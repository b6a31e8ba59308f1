//! The patch formats of the Kubernetes stand-in (`k8s_api/`): JSON merge patch (RFC 7386)
//! and JSON patch (RFC 6902) with JSON pointers (RFC 6901), as kube-apiserver applies them.

use serde_json::{Value, json};

/// RFC 7386.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            let map = target.as_object_mut().expect("object");
            for (key, value) in fields {
                if value.is_null() {
                    map.remove(key);
                } else {
                    merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn pointer_tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("JSON pointer must start with '/': {path}"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn array_index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if allow_end && token == "-" {
        return Ok(len);
    }
    let index: usize = token
        .parse()
        .map_err(|_| format!("invalid array index: {token}"))?;
    let limit = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if (allow_end && index <= limit) || (!allow_end && index < len) {
        Ok(index)
    } else {
        Err(format!("array index {index} out of bounds"))
    }
}

fn pointer_add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let tokens = pointer_tokens(path)?;
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    let parent = parent_mut(doc, parents, path)?;
    match parent {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(last, items.len(), true)?;
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!(
            "add operation: parent of {path} is not a container"
        )),
    }
}

fn pointer_remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let tokens = pointer_tokens(path)?;
    let (last, parents) = tokens
        .split_last()
        .ok_or("remove operation: cannot remove the whole document")?;
    let parent = parent_mut(doc, parents, path)?;
    match parent {
        Value::Object(map) => map.remove(last).ok_or_else(|| {
            format!("remove operation does not apply: doc is missing path: \"{path}\"")
        }),
        Value::Array(items) => {
            let index = array_index(last, items.len(), false)?;
            Ok(items.remove(index))
        }
        _ => Err(format!(
            "remove operation does not apply: doc is missing path: \"{path}\""
        )),
    }
}

fn parent_mut<'a>(
    doc: &'a mut Value,
    parents: &[String],
    path: &str,
) -> Result<&'a mut Value, String> {
    let mut node = doc;
    for token in parents {
        node = match node {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => {
                let index = array_index(token, items.len(), false)?;
                items.get_mut(index)
            }
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: \"{path}\""))?;
    }
    Ok(node)
}

/// RFC 6902 (add, remove, replace, move, copy, test), all or nothing.
pub fn json_patch(doc: &mut Value, ops: &[Value]) -> Result<(), String> {
    let mut work = doc.clone();
    for op in ops {
        let kind = op["op"].as_str().ok_or("operation without \"op\"")?;
        let path = op["path"].as_str().ok_or("operation without \"path\"")?;
        match kind {
            "add" => pointer_add(
                &mut work,
                path,
                op.get("value").cloned().ok_or("add without value")?,
            )?,
            "remove" => {
                pointer_remove(&mut work, path)?;
            }
            "replace" => {
                let value = op.get("value").cloned().ok_or("replace without value")?;
                pointer_remove(&mut work, path).map_err(|_| {
                    format!("replace operation does not apply: doc is missing key: {path}")
                })?;
                pointer_add(&mut work, path, value)?;
            }
            "move" => {
                let from = op["from"].as_str().ok_or("move without from")?;
                let value = pointer_remove(&mut work, from)?;
                pointer_add(&mut work, path, value)?;
            }
            "copy" => {
                let from = op["from"].as_str().ok_or("copy without from")?;
                let value = work.pointer(from).cloned().ok_or_else(|| {
                    format!("copy operation does not apply: doc is missing from path: {from}")
                })?;
                pointer_add(&mut work, path, value)?;
            }
            "test" => {
                let expected = op.get("value").ok_or("test without value")?;
                if work.pointer(path) != Some(expected) {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    *doc = work;
    Ok(())
}
