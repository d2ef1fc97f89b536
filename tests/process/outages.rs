//! A server killed while its PostgreSQL database refuses connections: once both are back,
//! the jobs it held are failed exactly once, by its next start, and nothing of them runs.
//! (Dropped and refused connections under a live server are in `tests/api/outages.rs`.)
//! Process: the server is killed and started again on its data folder. These tests run with
//! `KILN_TEST_STORE=postgres`; with SQLite they say they were skipped.

use crate::common::fixtures::{finished, manifest, outputs, template, wait_job, workspace};
use crate::common::{Kiln, TestServer, pg, postgres_mode};
use serde_json::json;

#[actix_web::test]
async fn a_server_killed_while_its_database_is_away_fails_its_jobs_once_when_both_return() {
    if !postgres_mode() {
        eprintln!("skipped: a database outage is played on PostgreSQL (KILN_TEST_STORE=postgres)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(dir.path(), &[]);
    let owner = s.owner().await;
    let steps = json!([{"run": "echo started; sleep 60; echo never"}]);
    let t = template(&owner, "t", manifest(steps, json!([]))).await;
    let (_, build) = workspace(&owner, &t, "dev", json!([])).await;
    wait_job(&owner, &build, "running").await;
    let db = s.pg_database().to_string();
    pg::allow_connections(&db, false);
    // The server notices meanwhile (its job's writes wait), then is killed.
    actix_web::rt::time::sleep(std::time::Duration::from_secs(1)).await;
    s.kill();
    pg::allow_connections(&db, true);
    let s = TestServer::start_in(dir.path(), &[]);
    let owner = s.client(owner.token());
    let done = finished(&owner, &build).await;
    assert_eq!(done["job"]["status"], "failed", "{done}");
    assert_eq!(
        done["job"]["error"],
        "kiln stopped while this job was running (the server was killed or restarted); the job \
         did not finish"
    );
    let lines = outputs(&owner, &build).await;
    assert!(!lines.iter().any(|l| l == "never"), "{lines:?}");
    let ends = lines
        .iter()
        .filter(|l| l.contains("kiln stopped while this job was running"))
        .count();
    assert_eq!(ends, 1, "failed exactly once: {lines:?}");
}
