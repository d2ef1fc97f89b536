//! Job leases over real HTTP: a job that keeps its heartbeat is never failed as hung. (A
//! restarted server, and another server's job, are in `tests/process/leases.rs`.)

use crate::common::fixtures::{template, workspace};
use crate::common::{Kiln, TestApp};
use serde_json::json;

#[actix_web::test]
async fn a_job_that_keeps_its_heartbeat_outlives_the_hung_timeout() {
    let s = TestApp::start_with_args(&["--workers", "1", "--hung-timeout", "1"]);
    let owner = s.owner().await;
    // A 3 s sleep, three times the hung timeout: its worker's heartbeat keeps it alive.
    let t = template(
        &owner,
        "slow",
        json!({"steps": {"start": [{"sleep_ms": 3000}]}}),
    )
    .await;
    let (_, build) = workspace(&owner, &t, "busy", json!([])).await;
    let b = owner.wait_build(&build).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    assert!(b["job"].get("error").is_none(), "{b}");
}
