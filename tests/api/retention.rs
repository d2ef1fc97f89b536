//! `--retain-build-logs`: the logs of builds that ended longer ago than the retention are
//! removed, a workspace's latest build's never, nor a template version's import logs; the
//! builds themselves and their states stay. `--retain-builds`: each workspace keeps its newest
//! builds.

use crate::common::fixtures::{
    active_version, finished, manifest, new_build, outputs, template, workspace,
};
use crate::common::{Kiln, TestApp};
use serde_json::json;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn old_build_logs_are_removed_but_never_a_workspaces_latest_builds() {
    let kiln = TestApp::start_with_args(&["--retain-build-logs", "1s"]);
    let owner = kiln.owner().await;
    let t = numbered_template(&owner).await;
    let (ws, first) = workspace(&owner, &t, "dev", json!([])).await;
    finished(&owner, &first).await;
    assert!(
        outputs(&owner, &first)
            .await
            .contains(&"start 1".to_string())
    );
    let second = new_build(&owner, &ws, "stop").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    finished(&owner, &second).await;
    let (_, solo) = workspace(&owner, &t, "solo", json!([])).await;
    finished(&owner, &solo).await;
    // The first build ended over a second ago: its lines go.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !outputs(&owner, &first).await.is_empty() {
        assert!(Instant::now() < deadline, "the first build's logs stayed");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    // Well past the retention, the latest builds keep theirs.
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        outputs(&owner, &second)
            .await
            .contains(&"stop 2".to_string())
    );
    assert!(
        outputs(&owner, &solo)
            .await
            .contains(&"start 1".to_string())
    );
    // The first build and its state stay; so do the version's import logs.
    let b = finished(&owner, &first).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    let state = owner
        .get(&format!("/api/v2/workspacebuilds/{first}/state"))
        .await;
    assert_eq!(state.text(), "{\"n\": 1}");
    let version = active_version(&owner, &t).await;
    let logs = owner
        .get(&format!("/api/v2/templateversions/{version}/logs"))
        .await
        .expect(200, "[]codersdk.ProvisionerJobLog");
    assert!(!logs.as_array().unwrap().is_empty(), "{logs}");
}

/// `--retain-builds N`: each workspace keeps its N newest builds; older ended ones are gone
/// from every read and listing with their logs, and the workspace, its latest build and its
/// state read as before. Build numbers go on from the latest.
#[actix_web::test]
async fn each_workspace_keeps_its_newest_builds() {
    let kiln = TestApp::start_with_args(&["--retain-builds", "2", "--retention-interval", "200ms"]);
    let owner = kiln.owner().await;
    let t = numbered_template(&owner).await;
    let (ws, first) = workspace(&owner, &t, "dev", json!([])).await;
    finished(&owner, &first).await;
    let mut builds = vec![first];
    for transition in ["stop", "start", "stop"] {
        let b = new_build(&owner, &ws, transition).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        finished(&owner, &b).await;
        builds.push(b);
    }
    let (solo_ws, solo) = workspace(&owner, &t, "solo", json!([])).await;
    finished(&owner, &solo).await;
    // Builds 1 and 2 go, with their logs.
    let deadline = Instant::now() + Duration::from_secs(20);
    for gone in &builds[..2] {
        while owner
            .get(&format!("/api/v2/workspacebuilds/{gone}"))
            .await
            .status
            != 404
        {
            assert!(Instant::now() < deadline, "build {gone} stayed");
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        let logs = owner
            .get(&format!("/api/v2/workspacebuilds/{gone}/logs"))
            .await;
        assert_eq!(logs.status, 404, "{}", logs.text());
    }
    owner
        .get("/api/v2/users/me/workspace/dev/builds/1")
        .await
        .expect_error(404, "Workspace \"dev\" Build 1 does not exist.", None);
    // The listing holds the two newest, newest first.
    let listed = owner
        .get(&format!("/api/v2/workspaces/{ws}/builds"))
        .await
        .expect(200, "[]codersdk.WorkspaceBuild");
    let numbers: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["build_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [4, 3]);
    // The workspace reads as before: its latest build, its state and the kept build's log.
    let w = owner
        .get(&format!("/api/v2/workspaces/{ws}"))
        .await
        .expect(200, crate::common::fixtures::WORKSPACE);
    assert_eq!(w["latest_build"]["id"], builds[3].as_str());
    let state = owner
        .get(&format!("/api/v2/workspacebuilds/{}/state", builds[3]))
        .await;
    assert_eq!(state.text(), "{\"n\": 3}");
    assert!(
        outputs(&owner, &builds[2])
            .await
            .contains(&"start 3".to_string())
    );
    // A workspace with fewer builds keeps them all; the next build is number 5.
    let s = finished(&owner, &solo).await;
    assert_eq!(s["build_number"], 1);
    let next = new_build(&owner, &ws, "start").await;
    assert_eq!(next["build_number"], 5);
    let next = finished(&owner, next["id"].as_str().unwrap()).await;
    assert_eq!(next["job"]["status"], "succeeded", "{next}");
    assert!(
        owner
            .get(&format!("/api/v2/workspaces/{solo_ws}/builds"))
            .await
            .json()
            .as_array()
            .unwrap()
            .len()
            == 1
    );
}

/// A template whose start logs `start N` and leaves the state `{"n": N}`, and whose stop logs
/// `stop N` (N: the build number).
async fn numbered_template(owner: &crate::common::Client) -> String {
    let start = json!([
        {"run": "echo start $KILN_BUILD_NUMBER; printf '{\"n\": %s}' $KILN_BUILD_NUMBER > $KILN_STATE_FILE"}
    ]);
    let stop = json!([{"run": "echo stop $KILN_BUILD_NUMBER"}]);
    template(owner, "t", manifest(start, stop)).await
}
