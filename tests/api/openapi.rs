//! `GET /swagger/doc.json` does not drift from the code: every route of the router is in the
//! document, every documented operation is served and no other method is, the served document
//! keeps every definition of the repository's copy of Coder's (compared with an outside copy of
//! it when `KILN_CODER_SWAGGER` names one), and the answers of a walk through the API validate
//! against the document's own schemas.

use crate::common::fixtures::*;
use crate::common::{Kiln, Resp, TestApp};
use regex::Regex;
use serde_json::{Value, json};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `/api/v2/templateversions/{version}` → `/api/v2/templateversions/{}`: the router and Coder
/// name some parameters differently (`{version}` / `{templateversion}`); the routes are equal.
fn shape(path: &str) -> String {
    Regex::new(r"\{[^}]*\}")
        .unwrap()
        .replace_all(path, "{}")
        .into_owned()
}

async fn served_document(s: &TestApp) -> Value {
    let r = s.anon().get("/swagger/doc.json").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json; charset=utf-8")
    );
    let doc = r.json();
    assert_eq!(doc["swagger"], "2.0");
    assert_eq!(doc["basePath"], "/");
    doc
}

/// Whether the router answered "no such route" (its JSON 404 under `/api/v2` and for an
/// unmatched method of a known resource; actix's empty 404 elsewhere).
fn route_not_found(r: &Resp) -> bool {
    r.status == 404
        && (r.body.is_empty()
            || serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| {
                v["message"] == NOT_FOUND && v.get("detail").is_none_or(|d| d == "")
            }))
}

#[actix_web::test]
async fn every_route_is_documented_and_only_documented_operations_are_served() {
    let s = TestApp::start();
    // With a first user, the open routes answer 200 and the others 401 to a caller without a
    // token: neither is the router's "no such route".
    s.owner().await;
    let doc = served_document(&s).await;
    let paths = doc["paths"].as_object().unwrap();
    let documented: Vec<String> = paths.keys().map(|p| shape(p)).collect();
    let routes = kiln::api::routes::patterns();
    for route in &routes {
        assert!(
            documented.contains(&shape(route)),
            "the route {route} is not in /swagger/doc.json"
        );
    }
    let route_shapes: Vec<String> = routes.iter().map(|r| shape(r)).collect();
    let params = Regex::new(r"\{[^}]*\}").unwrap();
    let mut probed = 0;
    for (path, item) in paths {
        assert!(
            route_shapes.contains(&shape(path)),
            "{path} is documented but the router has no such route"
        );
        let value = if path.starts_with("/static/") {
            "app.js"
        } else {
            "1"
        };
        let concrete = params.replace_all(path, value).into_owned();
        for method in METHODS {
            let documented = item.get(method.to_ascii_lowercase()).is_some();
            let r = s.anon().method_json(method, &concrete, json!({})).await;
            let served = !route_not_found(&r);
            assert_eq!(
                served,
                documented,
                "{method} {path}: documented {documented}, but the server answered {} {}",
                r.status,
                r.text()
            );
            probed += 1;
        }
    }
    assert!(probed >= 5 * 60, "{probed}");
}

#[actix_web::test]
async fn swagger_redirects_to_the_document() {
    let s = TestApp::start();
    let mut res = awc::Client::builder()
        .disable_redirects()
        .finish()
        .get(s.url("/swagger"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 302);
    assert_eq!(res.headers().get("location").unwrap(), "/swagger/doc.json");
    let _ = res.body().await;
}

#[test]
fn the_served_document_keeps_every_definition_of_coders_but_kilns_corrections() {
    let coder: Value = serde_json::from_str(crate::common::schema::SWAGGER).unwrap();
    let mut corrected = coder["definitions"].clone();
    kiln::api::openapi::correct(&mut corrected, &kiln::api::openapi::kiln_notes());
    let doc = kiln::api::openapi::document();
    for (name, schema) in corrected.as_object().unwrap() {
        assert_eq!(&doc["definitions"][name], schema, "{name}");
    }
    // What kiln answers: a template imported with the echo provisioner says so.
    assert_eq!(
        doc["definitions"]["codersdk.Template"]["properties"]["provisioner"]["enum"],
        json!(["terraform", "echo"])
    );
    let corrections = kiln::api::openapi::kiln_notes()["x-definition-corrections"].clone();
    for c in corrections.as_array().unwrap() {
        assert!(c["why"].as_str().is_some_and(|w| !w.is_empty()), "{c}");
    }
}

/// The repository keeps its own copy of Coder's document (`src/api/openapi/`); a developer who
/// has the upstream file names it in `KILN_CODER_SWAGGER` to check that the copy has not
/// drifted. Without it there is nothing to compare, and the test passes.
#[test]
fn the_kept_coder_document_matches_the_one_named_in_kiln_coder_swagger() {
    let Some(path) = std::env::var_os("KILN_CODER_SWAGGER").filter(|p| !p.is_empty()) else {
        return;
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("KILN_CODER_SWAGGER={}: {e}", path.to_string_lossy()));
    let upstream: Value = serde_json::from_str(&text).unwrap();
    let kept: Value = serde_json::from_str(crate::common::schema::SWAGGER).unwrap();
    assert!(
        upstream == kept,
        "src/api/openapi/coder-swagger-builds.json differs from {}: copy it again",
        path.to_string_lossy()
    );
}

/// Validates answers against the served document: the schema of the operation's response for
/// the status (Coder's error body for an undocumented refusal), with the checks' corrections.
struct Checker {
    doc: Value,
    definitions: Value,
    paths: Vec<(Regex, String)>,
    checked: usize,
}

impl Checker {
    fn new(doc: Value) -> Checker {
        let mut definitions = doc["definitions"].clone();
        crate::common::schema::relax(&mut definitions);
        let mut paths: Vec<(Regex, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(|p| {
                let re = Regex::new(r"\\\{[^}]*\\\}")
                    .unwrap()
                    .replace_all(&regex::escape(p), "[^/]+")
                    .into_owned();
                (Regex::new(&format!("^{re}$")).unwrap(), p.clone())
            })
            .collect();
        // A literal segment wins over a parameter (`/users/first` over `/users/{user}`).
        paths.sort_by_key(|(_, p)| p.matches('{').count());
        Checker {
            doc,
            definitions,
            paths,
            checked: 0,
        }
    }

    fn check(&mut self, method: &str, path: &str, r: &Resp) {
        let bare = path.split('?').next().unwrap();
        let (_, pattern) = self
            .paths
            .iter()
            .find(|(re, _)| re.is_match(bare))
            .unwrap_or_else(|| panic!("{bare} matches no documented path"));
        let op = &self.doc["paths"][pattern][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {pattern} is not documented");
        let status = r.status.to_string();
        let schema = match op["responses"].get(&status) {
            Some(resp) => resp["schema"].clone(),
            None if r.status >= 400 => json!({"$ref": "#/definitions/codersdk.Response"}),
            None => panic!(
                "{method} {pattern} answered {status}, which the document does not list: {}",
                r.text()
            ),
        };
        if schema.is_null() {
            return;
        }
        let mut full = schema.clone();
        full["definitions"] = self.definitions.clone();
        let v = jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&full)
            .unwrap_or_else(|e| panic!("the schema of {method} {pattern} {status}: {e}"));
        let body = r.json();
        let errors: Vec<String> = v
            .iter_errors(&body)
            .map(|e| format!("{e} (at {})", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match the document:\n{}\n{body}",
            errors.join("\n")
        );
        self.checked += 1;
    }
}

#[actix_web::test]
async fn the_answers_of_a_walk_validate_against_the_document() {
    let s = TestApp::start();
    let mut c = Checker::new(served_document(&s).await);
    let anon = s.anon();
    for path in [
        "/api/v2/users/first",
        "/api/v2/buildinfo",
        "/api/v2/kiln/session",
    ] {
        let r = anon.get(path).await;
        c.check("GET", path, &r);
    }
    let owner = s.owner().await;
    let r = anon.get("/api/v2/users/first").await;
    assert_eq!(r.status, 200);
    c.check("GET", "/api/v2/users/first", &r);
    let t = template(&owner, "walk", quick()).await;
    let (ws, build) = workspace(&owner, &t, "dev", json!([])).await;
    let b = finished(&owner, &build).await;
    let version = b["template_version_id"].as_str().unwrap().to_string();
    let job = b["job"]["id"].as_str().unwrap().to_string();
    let gets = [
        "/api/v2/users/me".to_string(),
        "/api/v2/users".to_string(),
        "/api/v2/users/me/roles".to_string(),
        "/api/v2/users/me/organizations".to_string(),
        "/api/v2/users/authmethods".to_string(),
        "/api/v2/organizations".to_string(),
        "/api/v2/organizations/coder".to_string(),
        "/api/v2/templates".to_string(),
        "/api/v2/organizations/coder/templates".to_string(),
        "/api/v2/organizations/coder/templates/walk".to_string(),
        format!("/api/v2/templates/{t}"),
        format!("/api/v2/templates/{t}/versions"),
        format!("/api/v2/templateversions/{version}"),
        format!("/api/v2/templateversions/{version}/rich-parameters"),
        format!("/api/v2/templateversions/{version}/resources"),
        format!("/api/v2/templateversions/{version}/variables"),
        format!("/api/v2/templateversions/{version}/external-auth"),
        format!("/api/v2/templateversions/{version}/presets"),
        format!("/api/v2/templateversions/{version}/logs"),
        "/api/v2/workspaces".to_string(),
        format!("/api/v2/workspaces/{ws}"),
        "/api/v2/users/me/workspace/dev".to_string(),
        format!("/api/v2/workspaces/{ws}/builds"),
        format!("/api/v2/workspaces/{ws}/resolve-autostart"),
        format!("/api/v2/workspacebuilds/{build}"),
        "/api/v2/users/me/workspace/dev/builds/1".to_string(),
        format!("/api/v2/workspacebuilds/{build}/logs"),
        format!("/api/v2/workspacebuilds/{build}/parameters"),
        format!("/api/v2/workspacebuilds/{build}/resources"),
        format!("/api/v2/workspacebuilds/{build}/timings"),
        "/api/v2/organizations/coder/provisionerjobs".to_string(),
        format!("/api/v2/organizations/coder/provisionerjobs/{job}"),
        "/api/v2/kiln/session".to_string(),
        "/api/v2/kiln/overview".to_string(),
        // Refusals: Coder's error body.
        "/api/v2/workspacebuilds/not-a-uuid".to_string(),
        format!("/api/v2/workspaces/{}", uuid::Uuid::new_v4()),
    ];
    for path in &gets {
        let r = owner.get(path).await;
        assert!(r.status < 500, "{path}: {}", r.text());
        c.check("GET", path, &r);
    }
    let r = post_build(&owner, &ws, json!({"transition": "stop"})).await;
    c.check("POST", &format!("/api/v2/workspaces/{ws}/builds"), &r);
    let stop = r.json()["id"].as_str().unwrap().to_string();
    finished(&owner, &stop).await;
    let path = format!("/api/v2/workspacebuilds/{stop}/cancel");
    let r = owner.patch(&path, json!({})).await;
    c.check("PATCH", &path, &r);
    let path = format!("/api/v2/workspaces/{ws}/ttl");
    let r = owner.put(&path, json!({"ttl_ms": 3_600_000})).await;
    c.check("PUT", &path, &r);
    let r = owner.post("/api/v2/users/me/keys", json!({})).await;
    c.check("POST", "/api/v2/users/me/keys", &r);
    let r = owner
        .post("/api/v2/users/me/workspaces", json!({"name": "bad name"}))
        .await;
    c.check("POST", "/api/v2/users/me/workspaces", &r);
    assert!(c.checked >= 40, "{}", c.checked);
}
