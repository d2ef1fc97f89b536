//! `--retain-build-logs`: the logs of builds that ended longer ago than the retention are
//! removed, a workspace's latest build's never, nor a template version's import logs; the
//! builds themselves and their states stay.

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
    let start = json!([
        {"run": "echo start $KILN_BUILD_NUMBER; printf '{\"n\": %s}' $KILN_BUILD_NUMBER > $KILN_STATE_FILE"}
    ]);
    let stop = json!([{"run": "echo stop $KILN_BUILD_NUMBER"}]);
    let t = template(&owner, "t", manifest(start, stop)).await;
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
