//! Fixtures of the workspace schedule tests (`tests/lifecycle.rs`): templates with a default
//! TTL, workspaces, waiting for a build number, and the next minute as a schedule, every body
//! checked against the swagger.

use super::builds::finished;
use super::{Client, Resp, tar_of};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const WORKSPACE: &str = "codersdk.Workspace";

pub fn steps(start: Value, stop: Value) -> Value {
    json!({"steps": {"start": start, "stop": stop, "delete": []}})
}

pub fn quick() -> Value {
    steps(json!([{"log": "up"}]), json!([{"log": "down"}]))
}

/// A template of `manifest` with Coder's `default_ttl_ms` (any positive value, as in Coder).
pub async fn template(c: &Client, name: &str, manifest: Value, default_ttl_ms: i64) -> String {
    let v = c
        .import_version(tar_of(&[("kiln.json", &manifest.to_string())]), None)
        .await;
    assert_eq!(v["job"]["status"], "succeeded", "{v}");
    let t = c
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": name, "template_version_id": v["id"], "default_ttl_ms": default_ttl_ms}),
        )
        .await
        .expect(201, "codersdk.Template");
    t["id"].as_str().unwrap().to_string()
}

/// A workspace made by `c` for `owner` (`me` or a username); returns (id, first build id).
pub async fn workspace(c: &Client, owner: &str, body: Value) -> (String, String) {
    let w = c
        .post(&format!("/api/v2/users/{owner}/workspaces"), body)
        .await
        .expect(201, WORKSPACE);
    let id = w["id"].as_str().unwrap().to_string();
    (id, w["latest_build"]["id"].as_str().unwrap().to_string())
}

pub async fn get_workspace(c: &Client, id: &str) -> Value {
    c.get(&format!("/api/v2/workspaces/{id}"))
        .await
        .expect(200, WORKSPACE)
}

/// Waits until the workspace's latest build is number `n` and has ended; returns it.
pub async fn wait_build_number(c: &Client, ws: &str, n: i64, within: Duration) -> Value {
    let until = Instant::now() + within;
    loop {
        let latest = get_workspace(c, ws).await["latest_build"].clone();
        if latest["build_number"] == n {
            return finished(c, latest["id"].as_str().unwrap()).await;
        }
        assert!(
            latest["build_number"].as_i64() < Some(n),
            "past {n}: {latest}"
        );
        assert!(
            Instant::now() < until,
            "no build {n} in {within:?}: {latest}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn build_count(c: &Client, ws: &str) -> usize {
    c.get(&format!("/api/v2/workspaces/{ws}/builds"))
        .await
        .expect(200, "[]codersdk.WorkspaceBuild")
        .as_array()
        .unwrap()
        .len()
}

pub fn secs_between(a: &Value, b: &Value) -> f64 {
    let t = |v: &Value| {
        let s = v.as_str().unwrap();
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp_nanos() as f64
            / 1e9
    };
    t(b) - t(a)
}

/// The next whole minute in UTC (one more when this one is about to end), as a schedule.
pub fn next_minute_schedule(prefix: &str) -> (String, Instant) {
    let now = time::OffsetDateTime::now_utc();
    let mut at = now
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap()
        + time::Duration::minutes(1);
    if (at - now).whole_seconds() < 12 {
        at += time::Duration::minutes(1);
    }
    let wait = Duration::from_secs_f64((at - now).as_seconds_f64());
    (
        format!("{prefix}{} {} * * *", at.minute(), at.hour()),
        Instant::now() + wait,
    )
}

pub async fn put(c: &Client, ws: &str, what: &str, body: Value) -> Resp {
    c.put(&format!("/api/v2/workspaces/{ws}/{what}"), body)
        .await
}

pub fn validation(v: &Value, field: &str, detail: &str) {
    assert_eq!(
        v["validations"],
        json!([{"field": field, "detail": detail}]),
        "{v}"
    );
}
