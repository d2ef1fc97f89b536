//! Small checks and descriptions of JSON values, shared by the shape pass and its steps.

use super::problems::Problems;
use serde_json::Value;

pub(super) const TRANSITIONS: [&str; 3] = ["start", "stop", "delete"];

/// A JSON string, else a problem at `path`.
pub(super) fn check_text(value: &Value, path: &str, out: &mut Problems) {
    if !value.is_string() {
        out.add(
            path,
            format!("expected text (a JSON string), found {}", describe(value)),
        );
    }
}

/// A JSON value for a message: scalars as written, containers by kind.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => compact(value),
        Value::Array(_) => "a list (JSON array)".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A value as compact JSON, shortened past 80 characters.
pub(super) fn compact(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 80 {
        return text;
    }
    let cut: String = text.chars().take(77).collect();
    format!("{cut}...")
}
