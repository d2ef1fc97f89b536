//! Checks JSON bodies against Coder's published schema, the copy the repository keeps and the
//! server embeds (`src/api/openapi/coder-swagger-builds.json`), with the spec's section 7
//! corrections: every non-required property may also be `null`, and `WorkspaceBuild.reason`
//! takes every `codersdk.BuildReason` value.

use super::Resp;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Coder's schema for the builds paths and those around them, as the repository keeps it.
pub const SWAGGER: &str = include_str!("../../src/api/openapi/coder-swagger-builds.json");

/// Go's `format:"uri"` is documentation: Coder sends `""` for "none" (a user without an
/// avatar), so an empty string is accepted wherever a `uri` is; any other value must be one.
fn allow_empty_uri(schema: &mut Value) {
    match schema {
        Value::Object(map) if map.get("format").and_then(Value::as_str) == Some("uri") => {
            *schema = json!({"anyOf": [schema.take(), {"type": "string", "maxLength": 0}]});
        }
        Value::Object(map) => map.values_mut().for_each(allow_empty_uri),
        Value::Array(items) => items.iter_mut().for_each(allow_empty_uri),
        _ => {}
    }
}

/// Wraps every non-required property schema `S` as `{"anyOf": [S, {"type": "null"}]}`,
/// recursively.
fn allow_null(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let required: Vec<String> = map
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            for (key, value) in map.iter_mut() {
                match (key.as_str(), value) {
                    ("properties", Value::Object(props)) => {
                        for (name, prop) in props.iter_mut() {
                            allow_null(prop);
                            if !required.contains(name) {
                                *prop = json!({"anyOf": [prop.take(), {"type": "null"}]});
                            }
                        }
                    }
                    (_, value) => allow_null(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(allow_null),
        _ => {}
    }
}

/// The corrections every check applies to Coder's definitions (section 7 of the spec, and
/// what Go's JSON does): see the module's documentation.
pub fn relax(defs: &mut Value) {
    // kiln's corrections of Coder's annotations (the served document has them too): the
    // reasons a build takes, the provisioners a template reports.
    kiln::api::openapi::correct(defs, &kiln::api::openapi::kiln_notes());
    allow_null(defs);
    allow_empty_uri(defs);
}

fn definitions() -> &'static Value {
    static DEFS: OnceLock<Value> = OnceLock::new();
    DEFS.get_or_init(|| {
        let swagger: Value = serde_json::from_str(SWAGGER).expect("Coder's schema is JSON");
        let mut defs = swagger["definitions"].clone();
        assert!(defs.is_object(), "Coder's schema has no definitions");
        relax(&mut defs);
        defs
    })
}

type Validator = Arc<jsonschema::Validator>;

/// The validator of `def`: `codersdk.X`, or `[]codersdk.X` for an array of them.
fn validator(def: &str) -> Validator {
    static CACHE: OnceLock<Mutex<HashMap<String, Validator>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap().get(def) {
        return v.clone();
    }
    let (name, array) = match def.strip_prefix("[]") {
        Some(inner) => (inner, true),
        None => (def, false),
    };
    let defs = definitions();
    assert!(
        defs.get(name).is_some(),
        "no definition {name} in the swagger"
    );
    let reference = json!({"$ref": format!("#/definitions/{name}")});
    let schema = if array {
        json!({"type": "array", "items": reference, "definitions": defs})
    } else {
        json!({"$ref": reference["$ref"], "definitions": defs})
    };
    let v = Arc::new(
        jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("schema of {def} does not compile: {e}")),
    );
    cache.lock().unwrap().insert(def.to_string(), v.clone());
    v
}

/// Whether `value` matches `def`.
pub fn validates(def: &str, value: &Value) -> bool {
    validator(def).is_valid(value)
}

/// Panics with every violation when `value` does not match `def`.
pub fn assert_valid(def: &str, value: &Value) {
    let v = validator(def);
    let errors: Vec<String> = v
        .iter_errors(value)
        .map(|e| format!("{} (at {})", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "body does not match {def}:\n{}\nbody: {value}",
        errors.join("\n")
    );
}

/// The body as JSON, checked: a 2xx body against `def`, any other against `codersdk.Response`.
pub fn checked(resp: &Resp, def: &str) -> Value {
    let v = resp.json();
    if (200..300).contains(&resp.status) {
        assert_valid(def, &v);
    } else {
        assert_valid("codersdk.Response", &v);
    }
    v
}

impl Resp {
    /// Asserts the status and returns the body, checked against `def`.
    pub fn expect(&self, status: u16, def: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        checked(self, def)
    }

    /// Asserts an error (status, message, detail when given) and checks its body's shape.
    pub fn expect_error(&self, status: u16, message: &str, detail: Option<&str>) -> Value {
        self.assert_error(status, message, detail);
        checked(self, "codersdk.Response")
    }
}
