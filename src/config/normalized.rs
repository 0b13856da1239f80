//! The normalized model as text: the effective settings (defaults filled
//! in, inheritance resolved) in a keepalived-like `key value` / `{ }` layout.

use std::fmt::Write;

use serde_json::Value;

use super::model::Config;

pub fn to_json(config: &Config) -> String {
    serde_json::to_string_pretty(config).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub fn to_text(config: &Config) -> String {
    let mut out = String::new();
    match serde_json::to_value(config) {
        Ok(Value::Object(map)) => {
            for (k, v) in &map {
                write_entry(&mut out, 0, k, v);
            }
        }
        Ok(other) => write_entry(&mut out, 0, "config", &other),
        Err(e) => {
            let _ = writeln!(out, "# cannot render: {e}");
        }
    }
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("none".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if s.is_empty() || s.contains(char::is_whitespace) => {
            Some(format!("{s:?}"))
        }
        Value::String(s) => Some(s.clone()),
        Value::Array(a) if a.is_empty() => Some("{}".into()),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            Some(a.iter().filter_map(scalar).collect::<Vec<_>>().join(" "))
        }
        _ => None,
    }
}

fn write_entry(out: &mut String, depth: usize, key: &str, v: &Value) {
    let pad = "    ".repeat(depth);
    if let Some(s) = scalar(v) {
        let _ = writeln!(out, "{pad}{key} {s}");
        return;
    }
    match v {
        Value::Object(map) => {
            let _ = writeln!(out, "{pad}{key} {{");
            for (k, v) in map {
                write_entry(out, depth + 1, k, v);
            }
            let _ = writeln!(out, "{pad}}}");
        }
        Value::Array(items) => {
            // A list of blocks: one block per item, named after the list.
            for item in items {
                let label = item
                    .get("name")
                    .and_then(Value::as_str)
                    .map(|n| format!("{key} {n}"))
                    .unwrap_or_else(|| key.to_string());
                write_entry(out, depth, &label, item);
            }
        }
        _ => {}
    }
}
