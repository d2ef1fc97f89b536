//! Coder's dynamic parameters (`codersdk.PreviewParameter`) for a kiln.json's parameters: how
//! Coder's create form shows each one with the values typed so far, and what is wrong with
//! them, as diagnostics (the build would refuse the same values: `model::parameters`).

use crate::model::manifest::Parameter;
use crate::model::parameters::validate;
use serde_json::{Value, json};
use std::collections::HashMap;

/// `codersdk.NullHCLString`: a known string.
fn literal(s: &str) -> Value {
    json!({"value": s, "valid": true})
}

/// A diagnostic as Coder's preview writes them (`codersdk.FriendlyDiagnostic`).
pub fn diagnostic(severity: &str, summary: &str, detail: &str, code: &str) -> Value {
    json!({"severity": severity, "summary": summary, "detail": detail, "extra": {"code": code}})
}

/// The parameters, in kiln.json's order, each with its value (the input given, else its
/// default) and the diagnostics of that value.
pub fn preview(params: &[Parameter], inputs: &HashMap<String, String>) -> Vec<Value> {
    params
        .iter()
        .enumerate()
        .map(|(order, p)| {
            let value = inputs.get(&p.name).unwrap_or(&p.default_value);
            let mut diagnostics = Vec::new();
            if p.required && value.is_empty() && !inputs.contains_key(&p.name) {
                diagnostics.push(diagnostic(
                    "error",
                    "Required parameter not provided",
                    &format!("Parameter {:?} is required but not provided", p.name),
                    "",
                ));
            } else if let Err(why) = validate(p, value, None) {
                diagnostics.push(diagnostic("error", "Invalid parameter value", &why, ""));
            }
            let has_rule = !p.validation_error.is_empty()
                || !p.validation_regex.is_empty()
                || !p.validation_monotonic.is_empty()
                || p.validation_min.is_some()
                || p.validation_max.is_some();
            let validations: Vec<Value> = if has_rule {
                let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
                vec![json!({
                    "validation_error": p.validation_error,
                    "validation_regex": some(&p.validation_regex),
                    "validation_min": p.validation_min,
                    "validation_max": p.validation_max,
                    "validation_monotonic": some(&p.validation_monotonic),
                })]
            } else {
                Vec::new()
            };
            json!({
                "name": p.name,
                "display_name": p.display_name,
                "description": p.description,
                "type": p.kind,
                "form_type": p.form_type(),
                "styling": {},
                "mutable": p.mutable,
                "default_value": literal(&p.default_value),
                "icon": p.icon,
                "options": p.options.iter().map(|o| json!({
                    "name": o.name,
                    "description": o.description,
                    "value": literal(&o.value),
                    "icon": o.icon,
                })).collect::<Vec<_>>(),
                "validations": validations,
                "required": p.required,
                "order": order,
                "ephemeral": p.ephemeral,
                "value": literal(value),
                "diagnostics": diagnostics,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(v: Value) -> Parameter {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn values_given_are_checked_as_a_build_would_check_them() {
        let params = [
            param(json!({"name": "region", "default_value": "eu",
                "options": [{"name": "EU", "value": "eu"}, {"name": "US", "value": "us"}]})),
            param(
                json!({"name": "size", "type": "number", "default_value": "2",
                "validation_min": 1, "validation_max": 8}),
            ),
            param(json!({"name": "token", "required": true})),
        ];
        let shown = preview(&params, &HashMap::new());
        assert_eq!(shown[0]["form_type"], "radio");
        assert_eq!(shown[0]["value"], json!({"value": "eu", "valid": true}));
        assert_eq!(shown[1]["validations"][0]["validation_min"], 1);
        assert_eq!(shown[1]["validations"][0]["validation_regex"], Value::Null);
        assert_eq!(
            shown[2]["diagnostics"][0]["summary"],
            "Required parameter not provided"
        );
        let inputs = HashMap::from([
            ("region".to_string(), "mars".to_string()),
            ("size".to_string(), "9".to_string()),
            ("token".to_string(), "t".to_string()),
        ]);
        let shown = preview(&params, &inputs);
        for p in &shown[..2] {
            assert_eq!(p["diagnostics"][0]["severity"], "error", "{p}");
        }
        assert_eq!(shown[2]["diagnostics"], json!([]));
        assert_eq!(shown[1]["order"], 1);
    }
}
