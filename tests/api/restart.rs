//! `on_success` in POST builds: a stop that carries the start to queue when it succeeds
//! (Coder's server-side restart).

use crate::common::fixtures::{BUILD, BUILDS, manifest, template, workspace};
use crate::common::{Client, Kiln, TestApp};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn with_size() -> Value {
    // `manifest` declares the parameters `region` and `size` (both mutable).
    manifest(json!([{"log": "up"}]), json!([{"sleep_ms": 300}]))
}

async fn builds_of(c: &Client, ws: &str) -> Vec<Value> {
    c.get(&format!("/api/v2/workspaces/{ws}/builds"))
        .await
        .expect(200, BUILDS)
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until the workspace's builds satisfy `done`.
async fn until(c: &Client, ws: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let b = builds_of(c, ws).await;
        if done(&b) {
            return b;
        }
        assert!(Instant::now() < deadline, "never happened: {b:?}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ended(b: &Value) -> bool {
    matches!(
        b["job"]["status"].as_str(),
        Some("succeeded" | "failed" | "canceled")
    )
}

#[actix_web::test]
async fn a_stop_that_succeeds_queues_its_start_by_itself() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(&owner, "base", with_size()).await;
    let (ws, first) = workspace(&owner, &t, "dev", json!([{"name": "size", "value": "3"}])).await;
    owner.wait_build(&first).await;

    let r = owner
        .post(
            &format!("/api/v2/workspaces/{ws}/builds"),
            json!({"transition": "stop", "reason": "cli",
                   "on_success": {"transition": "start",
                                  "rich_parameter_values": [{"name": "size", "value": "5"}]}}),
        )
        .await;
    let stop = r.expect(201, BUILD);
    assert_eq!(stop["transition"], "stop");
    // The client goes away; the server finishes the restart.
    let b = until(&owner, &ws, |b| b.len() == 3 && ended(&b[0])).await;
    let start = &b[0];
    assert_eq!(start["build_number"], 3);
    assert_eq!(start["transition"], "start");
    assert_eq!(start["job"]["status"], "succeeded", "{start}");
    assert_eq!(start["reason"], "cli");
    assert_eq!(start["initiator_id"], stop["initiator_id"]);
    assert_eq!(start["template_version_id"], stop["template_version_id"]);
    assert_eq!(b[1]["job"]["status"], "succeeded");
    let params = owner
        .get(&format!(
            "/api/v2/workspacebuilds/{}/parameters",
            start["id"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(
        params,
        json!([{"name": "region", "value": "eu"}, {"name": "size", "value": "5"}])
    );
}

#[actix_web::test]
async fn a_stop_that_fails_or_is_canceled_queues_nothing() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let failing = template(
        &owner,
        "failing",
        manifest(json!([]), json!([{"fail": "no"}])),
    )
    .await;
    let slow = template(
        &owner,
        "slow",
        manifest(json!([]), json!([{"sleep_ms": 20000}])),
    )
    .await;
    let restart = json!({"transition": "stop", "on_success": {"transition": "start"}});
    for (t, cancel) in [(failing, false), (slow, true)] {
        let (ws, first) = workspace(&owner, &t, &format!("w-{cancel}"), json!([])).await;
        owner.wait_build(&first).await;
        let stop = owner
            .post(&format!("/api/v2/workspaces/{ws}/builds"), restart.clone())
            .await
            .expect(201, BUILD);
        if cancel {
            let id = stop["id"].as_str().unwrap();
            until(&owner, &ws, |b| b[0]["job"]["status"] == "running").await;
            let r = owner
                .patch(&format!("/api/v2/workspacebuilds/{id}/cancel"), json!({}))
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
        let b = until(&owner, &ws, |b| ended(&b[0])).await;
        assert_eq!(b.len(), 2, "no start was queued: {b:?}");
        let want = if cancel { "canceled" } else { "failed" };
        assert_eq!(b[0]["job"]["status"], want);
        // A moment later still nothing.
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(builds_of(&owner, &ws).await.len(), 2);
    }
}

#[actix_web::test]
async fn on_success_is_checked_field_by_field() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(&owner, "base", with_size()).await;
    let (ws, first) = workspace(&owner, &t, "dev", json!([])).await;
    owner.wait_build(&first).await;
    let path = format!("/api/v2/workspaces/{ws}/builds");
    let cases = [
        (
            json!({"transition": "start", "on_success": {"transition": "start"}}),
            "on_success",
            "on_success is only allowed on a build with transition \"stop\"",
        ),
        (
            json!({"transition": "stop", "on_success": {"transition": "stop"}}),
            "on_success.transition",
            "Validation failed for tag \"oneof\" with value: \"stop\"",
        ),
        (
            json!({"transition": "stop", "on_success": {}}),
            "on_success.transition",
            "Validation failed for tag \"required\" with value: \"\"",
        ),
        (
            json!({"transition": "stop", "on_success": {"transition": "start", "template_version_id": "x"}}),
            "on_success.template_version_id",
            "kiln does not support this field in on_success",
        ),
        (
            json!({"transition": "stop", "on_success": "start"}),
            "on_success",
            "on_success must be an object",
        ),
    ];
    for (body, field, detail) in cases {
        let r = owner.post(&path, body.clone()).await;
        let v = r.expect_error(400, "Validation failed.", None);
        let found = v["validations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["field"] == field && x["detail"] == detail);
        assert!(found, "{body}: {v}");
    }
    let r = owner
        .post(
            &path,
            json!({"transition": "stop", "on_success": {"transition": "start",
                   "rich_parameter_values": [{"name": "size", "value": "big"}]}}),
        )
        .await;
    r.expect_error(400, "Unable to validate parameter \"size\"", None);
    assert_eq!(builds_of(&owner, &ws).await.len(), 1, "nothing was queued");
    // null is absent, as in Go.
    let r = owner
        .post(&path, json!({"transition": "stop", "on_success": null}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[actix_web::test]
async fn gos_zero_values_in_on_success_mean_not_given() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(&owner, "base", with_size()).await;
    let (ws, first) = workspace(&owner, &t, "dev", json!([])).await;
    owner.wait_build(&first).await;
    // What Coder's newest `coder restart` sends: every field of its struct, the unset ones
    // as Go's zero values.
    let r = owner
        .post(
            &format!("/api/v2/workspaces/{ws}/builds"),
            json!({"transition": "stop", "template_version_id": "00000000-0000-0000-0000-000000000000",
                   "on_success": {"transition": "start", "rich_parameter_values": null,
                                  "template_version_id": "00000000-0000-0000-0000-000000000000",
                                  "template_version_preset_id": "", "log_level": "",
                                  "dry_run": false, "orphan": false}}),
        )
        .await;
    r.expect(201, BUILD);
    let b = until(&owner, &ws, |b| b.len() == 3 && ended(&b[0])).await;
    assert_eq!(b[0]["transition"], "start");
    assert_eq!(b[0]["job"]["status"], "succeeded", "{}", b[0]);
}
