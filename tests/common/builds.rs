//! Fixtures shared by the builds tests: a template with two resources, workspaces, and
//! waiting for builds, every body checked against the swagger.

use super::schema::assert_valid;
use super::{Client, Resp};
use serde_json::{Value, json};

pub const NOT_FOUND: &str = "Resource not found or you do not have access to this resource";
pub const BUILD: &str = "codersdk.WorkspaceBuild";
pub const BUILDS: &str = "[]codersdk.WorkspaceBuild";

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

pub fn quick() -> Value {
    manifest(
        json!([{"log": "hello {{param.region}}"}]),
        json!([{"log": "bye"}]),
    )
}

/// A template (checked) named `name` made by `c`.
pub async fn template(c: &Client, name: &str, manifest: Value) -> String {
    let t = c.template(name, manifest).await;
    assert_valid("codersdk.Template", &t);
    t["id"].as_str().unwrap().to_string()
}

/// A workspace (checked); returns (workspace id, first build id).
pub async fn workspace(
    c: &Client,
    template_id: &str,
    name: &str,
    params: Value,
) -> (String, String) {
    let w = c.workspace(template_id, name, params).await;
    assert_valid("codersdk.Workspace", &w);
    (
        w["id"].as_str().unwrap().to_string(),
        w["latest_build"]["id"].as_str().unwrap().to_string(),
    )
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
