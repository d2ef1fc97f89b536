//! The fixtures of every test binary: manifests, templates, workspaces, builds and waiting for
//! them, every body checked against the swagger. One of each: a test that needs something
//! else says so in its own module.

use super::schema::assert_valid;
use super::{Client, Resp, tar_of};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const NOT_FOUND: &str = "Resource not found or you do not have access to this resource";
pub const SIGNED_OUT: &str =
    "You are signed out or your session has expired. Please sign in again to continue.";
pub const BUILD: &str = "codersdk.WorkspaceBuild";
pub const BUILDS: &str = "[]codersdk.WorkspaceBuild";
pub const WORKSPACE: &str = "codersdk.Workspace";
pub const LOGS: &str = "[]codersdk.ProvisionerJobLog";

/// A manifest of steps alone (no parameters, no resources); `delete` does nothing.
pub fn steps(start: Value, stop: Value) -> Value {
    json!({"steps": {"start": start, "stop": stop, "delete": []}})
}

/// Two resources (sorted: `disk`, `vm`), one agent with two apps, two parameters.
pub fn manifest(start: Value, stop: Value) -> Value {
    json!({
        "parameters": [
            {"name": "region", "type": "string", "default_value": "eu", "mutable": true,
             "options": [{"name": "EU", "value": "eu"}, {"name": "US", "value": "us"}]},
            {"name": "size", "type": "number", "default_value": "2", "mutable": true}
        ],
        "resources": [
            {"name": "vm", "type": "kiln_instance", "daily_cost": 3,
             "metadata": [{"key": "region", "value": "{{param.region}}"}],
             "agents": [{"name": "main", "apps": [
                 {"slug": "web", "url": "http://localhost/{{workspace.name}}"},
                 {"slug": "term", "command": "bash"}]}]},
            {"name": "disk", "type": "kiln_disk", "transitions": ["start", "stop"], "daily_cost": 1}
        ],
        "steps": {"start": start, "stop": stop, "delete": []}
    })
}

/// `manifest` with a start and a stop that each log a line.
pub fn quick() -> Value {
    manifest(
        json!([{"log": "hello {{param.region}}"}]),
        json!([{"log": "bye"}]),
    )
}

/// Uploads `manifest` as a template archive (kiln.json alone); returns the file's hash.
pub async fn upload(c: &Client, manifest: &Value) -> String {
    let archive = tar_of(&[("kiln.json", &manifest.to_string())]);
    let r = c
        .post_raw("/api/v2/files", "application/x-tar", archive)
        .await;
    r.json()["hash"].as_str().unwrap().to_string()
}

/// Imports `manifest` (a kiln.json value) as a new version; returns the version once its
/// import succeeded.
pub async fn version(c: &Client, manifest: &Value) -> Value {
    let v = c
        .import_version(tar_of(&[("kiln.json", &manifest.to_string())]), None)
        .await;
    assert_eq!(v["job"]["status"], "succeeded", "{v}");
    v
}

/// A template (checked) named `name` made by `c` of `manifest`; returns its id.
pub async fn template(c: &Client, name: &str, manifest: Value) -> String {
    template_with(c, name, manifest, json!({})).await
}

/// The id of the template's active version.
pub async fn active_version(c: &Client, template_id: &str) -> String {
    c.get(&format!("/api/v2/templates/{template_id}"))
        .await
        .expect(200, "codersdk.Template")["active_version_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `template`, with Coder's `default_ttl_ms` (any positive value, as in Coder).
pub async fn template_with_ttl(
    c: &Client,
    name: &str,
    manifest: Value,
    default_ttl_ms: i64,
) -> String {
    template_with(c, name, manifest, json!({"default_ttl_ms": default_ttl_ms})).await
}

/// `template`, with more fields of Coder's CreateTemplateRequest in `extra`.
async fn template_with(c: &Client, name: &str, manifest: Value, extra: Value) -> String {
    let v = version(c, &manifest).await;
    let mut body = json!({"name": name, "template_version_id": v["id"]});
    for (k, val) in extra.as_object().unwrap() {
        body[k] = val.clone();
    }
    let t = c
        .post("/api/v2/organizations/coder/templates", body)
        .await
        .expect(201, "codersdk.Template");
    t["id"].as_str().unwrap().to_string()
}

/// A workspace of `template_id` for `c` itself (checked); returns (workspace id, first build
/// id).
pub async fn workspace(
    c: &Client,
    template_id: &str,
    name: &str,
    params: Value,
) -> (String, String) {
    workspace_for(
        c,
        "me",
        json!({"template_id": template_id, "name": name, "rich_parameter_values": params}),
    )
    .await
}

/// A workspace made by `c` for `owner` (`me` or a username) of Coder's CreateWorkspaceRequest
/// `body` (checked); returns (workspace id, first build id).
pub async fn workspace_for(c: &Client, owner: &str, body: Value) -> (String, String) {
    let w = c
        .post(&format!("/api/v2/users/{owner}/workspaces"), body)
        .await
        .expect(201, WORKSPACE);
    (
        w["id"].as_str().unwrap().to_string(),
        w["latest_build"]["id"].as_str().unwrap().to_string(),
    )
}

pub async fn get_workspace(c: &Client, id: &str) -> Value {
    c.get(&format!("/api/v2/workspaces/{id}"))
        .await
        .expect(200, WORKSPACE)
}

/// Waits for the build to end; returns it (checked).
pub async fn finished(c: &Client, build_id: &str) -> Value {
    let b = c.wait_build(build_id).await;
    assert_valid(BUILD, &b);
    b
}

pub async fn get_build(c: &Client, id: &str) -> Value {
    c.get(&format!("/api/v2/workspacebuilds/{id}"))
        .await
        .expect(200, BUILD)
}

pub async fn post_build(c: &Client, workspace_id: &str, body: Value) -> Resp {
    c.post(&format!("/api/v2/workspaces/{workspace_id}/builds"), body)
        .await
}

/// Queues a build and returns it (checked).
pub async fn new_build(c: &Client, workspace_id: &str, transition: &str) -> Value {
    post_build(c, workspace_id, json!({"transition": transition}))
        .await
        .expect(201, BUILD)
}

/// Polls a build until its job has `status` (within 20 s); returns the build (checked).
pub async fn wait_job(c: &Client, build_id: &str, status: &str) -> Value {
    wait_job_within(c, build_id, status, Duration::from_secs(20)).await
}

/// Polls a build until its job has `status` within `within`; returns the build (checked).
pub async fn wait_job_within(c: &Client, build_id: &str, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let b = get_build(c, build_id).await;
        if b["job"]["status"] == status {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "build {build_id} never reached job status {status:?}: {b}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A log line as (log_source, log_level, stage, output).
pub type Line = (String, String, String, String);

/// The build's stored log lines, read through `GET /api/v2/workspacebuilds/{id}/logs`.
pub async fn log_lines(c: &Client, build_id: &str) -> Vec<Line> {
    let logs = c
        .get(&format!("/api/v2/workspacebuilds/{build_id}/logs"))
        .await
        .expect(200, LOGS);
    logs.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let field = |k: &str| l[k].as_str().unwrap().to_string();
            (
                field("log_source"),
                field("log_level"),
                field("stage"),
                field("output"),
            )
        })
        .collect()
}

/// The build's non-empty log outputs, in order.
pub async fn outputs(c: &Client, build_id: &str) -> Vec<String> {
    log_lines(c, build_id)
        .await
        .into_iter()
        .map(|l| l.3)
        .filter(|o| !o.is_empty())
        .collect()
}

/// The number of builds of the workspace.
pub async fn build_count(c: &Client, ws: &str) -> usize {
    c.get(&format!("/api/v2/workspaces/{ws}/builds"))
        .await
        .expect(200, BUILDS)
        .as_array()
        .unwrap()
        .len()
}

/// Microseconds since the epoch of an RFC 3339 time.
pub fn micros(t: &Value) -> i64 {
    let parsed = time::OffsetDateTime::parse(
        t.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {t}"));
    (parsed.unix_timestamp_nanos() / 1000) as i64
}
