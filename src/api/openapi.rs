//! `GET /swagger/doc.json`: the OpenAPI (Swagger 2.0) document of every route kiln serves, and
//! `GET /swagger`, which redirects to it. On by default (see the README).
//!
//! Made once from two embedded files: Coder's document for the builds API
//! (`openapi/coder-swagger-builds.json`, the repository's copy of Coder's schemas for these
//! paths, which the tests validate bodies against too), of which only the operations kiln
//! serves are kept (`x-coder-operations` in `openapi/kiln.json`), and kiln's own paths
//! and notes (`openapi/kiln.json`: the follow streams, `/api/v2/kiln/*`, `/healthz`, the
//! status page). Paths are full (`basePath` `/`). `tests/api/openapi.rs` checks that every route
//! of the router is documented, that every documented operation is served and no other, and
//! that the answers of a walk through the API validate against the document.
//!
//! A new route: add it with `res(...)` as usual; if Coder's document has the operation, name
//! it in `x-coder-operations` (`"METHOD /api/v2/path"`), otherwise describe it under `paths`
//! in `kiln.json` (a path item there is merged over Coder's, operation by operation).

use crate::api::reply::JSON;
use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::web::Bytes;
use serde_json::{Map, Value};
use std::sync::OnceLock;

const CODER: &str = include_str!("openapi/coder-swagger-builds.json");
const KILN: &str = include_str!("openapi/kiln.json");
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

pub async fn redirect() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/swagger/doc.json"))
        .finish()
}

pub async fn doc() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, JSON))
        .body(document_bytes().clone())
}

fn document_bytes() -> &'static Bytes {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    DOC.get_or_init(|| Bytes::from(serde_json::to_vec(&document()).unwrap_or_default()))
}

/// The served document.
pub fn document() -> Value {
    let coder: Value = serde_json::from_str(CODER).expect("the embedded Coder document is JSON");
    let kiln: Value = serde_json::from_str(KILN).expect("openapi/kiln.json is JSON");
    let base_path = coder["basePath"].as_str().unwrap_or("/api/v2");
    let mut paths = Map::new();
    for op in kiln["x-coder-operations"].as_array().into_iter().flatten() {
        let Some((method, path)) = op.as_str().and_then(|o| o.split_once(' ')) else {
            continue;
        };
        let method = method.to_ascii_lowercase();
        let Some(coder_path) = path.strip_prefix(base_path) else {
            continue;
        };
        if let Some(operation) = coder["paths"][coder_path].get(&method) {
            let item = paths
                .entry(path.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            item[method.as_str()] = operation.clone();
        }
    }
    // kiln's additions to Coder's operations (`x-operation-extensions`): `parameters` are
    // appended, `responses` merged by status, other keys set.
    for (op, extra) in kiln["x-operation-extensions"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let Some((method, path)) = op.split_once(' ') else {
            continue;
        };
        let Some(operation) = paths
            .get_mut(path)
            .and_then(|item| item.get_mut(method.to_ascii_lowercase()))
        else {
            continue;
        };
        for (key, value) in extra.as_object().into_iter().flatten() {
            match key.as_str() {
                "parameters" => {
                    let extra = value.as_array().cloned().unwrap_or_default();
                    match operation
                        .get_mut("parameters")
                        .and_then(Value::as_array_mut)
                    {
                        Some(params) => params.extend(extra),
                        None => operation["parameters"] = Value::Array(extra),
                    }
                }
                // By status; `null` removes one Coder lists but kiln never answers.
                "responses" => {
                    for (status, response) in value.as_object().into_iter().flatten() {
                        if response.is_null() {
                            if let Some(r) = operation["responses"].as_object_mut() {
                                r.remove(status);
                            }
                        } else {
                            operation["responses"][status.as_str()] = response.clone();
                        }
                    }
                }
                _ => operation[key.as_str()] = value.clone(),
            }
        }
    }
    for (path, item) in kiln["paths"].as_object().into_iter().flatten() {
        let entry = paths
            .entry(path.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        for (key, value) in item.as_object().into_iter().flatten() {
            entry[key.as_str()] = value.clone();
        }
    }
    let mut definitions = coder["definitions"].clone();
    correct(&mut definitions, &kiln);
    for (name, schema) in kiln["definitions"].as_object().into_iter().flatten() {
        definitions[name.as_str()] = schema.clone();
    }
    serde_json::json!({
        "swagger": "2.0",
        "info": kiln["info"],
        "basePath": "/",
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": coder["securityDefinitions"],
        "x-kiln": kiln["x-kiln"],
        "paths": paths,
        "definitions": definitions,
    })
}

/// kiln's corrections to Coder's definitions (`x-definition-corrections` in `kiln.json`):
/// where Coder's annotations say less than its servers answer (and kiln answers), the served
/// document says what kiln answers. Each replaces the value at a JSON pointer of a definition
/// (`null` removes it).
pub fn correct(definitions: &mut Value, kiln: &Value) {
    for c in kiln["x-definition-corrections"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let (Some(def), Some(pointer)) = (c["definition"].as_str(), c["pointer"].as_str()) else {
            continue;
        };
        let Some((parent, last)) = pointer.rsplit_once('/') else {
            continue;
        };
        let Some(target) = definitions
            .get_mut(def)
            .and_then(|d| d.pointer_mut(parent))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if c["value"].is_null() {
            target.remove(last);
        } else {
            target.insert(last.to_string(), c["value"].clone());
        }
    }
}

/// kiln's own additions to the document (for the tests, which apply the same corrections).
pub fn kiln_notes() -> Value {
    serde_json::from_str(KILN).expect("openapi/kiln.json is JSON")
}

/// The operations the document names: `("get", "/api/v2/users/{user}")`, ...
pub fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for m in METHODS {
            if item.get(m).is_some() {
                out.push((m.to_string(), path.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_named_coder_operation_exists_in_coders_document() {
        let kiln: serde_json::Value = serde_json::from_str(super::KILN).unwrap();
        let doc = super::document();
        let ops = super::operations(&doc);
        for op in kiln["x-coder-operations"].as_array().unwrap() {
            let (m, p) = op.as_str().unwrap().split_once(' ').unwrap();
            assert!(
                ops.contains(&(m.to_ascii_lowercase(), p.to_string())),
                "{op} is not in Coder's document"
            );
        }
        for op in kiln["x-operation-extensions"].as_object().unwrap().keys() {
            let (m, p) = op.split_once(' ').unwrap();
            assert!(
                ops.contains(&(m.to_ascii_lowercase(), p.to_string())),
                "{op} (extended) is not a documented operation"
            );
        }
    }
}
