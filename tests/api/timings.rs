//! `GET /workspacebuilds/{build}/timings`: the stages and steps a build's job went through,
//! with the times they really began and ended.

use crate::common::fixtures::{NOT_FOUND, manifest, micros, template, workspace};
use crate::common::{Kiln, TestApp};
use serde_json::json;

#[actix_web::test]
async fn a_builds_timings_are_its_stages_and_steps_as_they_ran() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let steps = json!([{"log": "hello"}, {"sleep_ms": 250}, {"run": "echo hi"}]);
    let t = template(&owner, "base", manifest(steps, json!([]))).await;
    let (_, id) = workspace(&owner, &t, "dev", json!([])).await;
    let b = owner.wait_build(&id).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");

    let v = owner
        .get(&format!("/api/v2/workspacebuilds/{id}/timings"))
        .await
        .expect(200, "codersdk.WorkspaceBuildTimings");
    assert_eq!(v["agent_script_timings"], json!([]));
    assert_eq!(v["agent_connection_timings"], json!([]));
    let rows = v["provisioner_timings"].as_array().unwrap();
    let seen: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["stage"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
                r["resource"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("init", "stage", "Setting up"),
            ("plan", "stage", "Planning infrastructure"),
            ("apply", "stage", "Starting workspace"),
            ("apply", "log", "step 1"),
            ("apply", "sleep", "step 2"),
            ("apply", "run", "step 3"),
        ]
    );
    let started = micros(&b["job"]["started_at"]);
    let completed = micros(&b["job"]["completed_at"]);
    for r in rows {
        assert_eq!(r["job_id"], b["job"]["id"]);
        assert_eq!(r["source"], "kiln");
        let (from, to) = (micros(&r["started_at"]), micros(&r["ended_at"]));
        assert!(
            started <= from && from <= to && to <= completed,
            "{r} in {b}"
        );
    }
    // The stages follow one another; the sleep really took its time.
    for pair in rows[..3].windows(2) {
        assert!(micros(&pair[0]["ended_at"]) <= micros(&pair[1]["started_at"]));
    }
    let sleep = &rows[4];
    assert!(
        micros(&sleep["ended_at"]) - micros(&sleep["started_at"]) >= 250_000,
        "{sleep}"
    );
    // The steps ran inside their stage.
    let apply = &rows[2];
    for step in &rows[3..] {
        assert!(micros(&apply["started_at"]) <= micros(&step["started_at"]));
        assert!(micros(&step["ended_at"]) <= micros(&apply["ended_at"]));
    }
}

#[actix_web::test]
async fn a_running_build_has_no_timings_yet_and_others_cannot_see_them() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let mia = s.user(&owner, "mia", &[]).await;
    let slow = manifest(json!([{"sleep_ms": 3000}]), json!([]));
    let t = template(&owner, "slow", slow).await;
    let (_, id) = workspace(&owner, &t, "dev", json!([])).await;
    let path = format!("/api/v2/workspacebuilds/{id}/timings");
    let v = owner
        .get(&path)
        .await
        .expect(200, "codersdk.WorkspaceBuildTimings");
    assert_eq!(
        v["provisioner_timings"],
        json!([]),
        "written when the job ends"
    );
    mia.get(&path).await.expect_error(404, NOT_FOUND, None);
    owner
        .get(&format!(
            "/api/v2/workspacebuilds/{}/timings",
            uuid::Uuid::new_v4()
        ))
        .await
        .expect_error(404, NOT_FOUND, None);
    owner
        .get("/api/v2/workspacebuilds/nope/timings")
        .await
        .expect_error(400, "Invalid UUID \"nope\".", None);
}
