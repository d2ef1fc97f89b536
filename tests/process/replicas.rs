//! Two kiln servers on one PostgreSQL database when one goes away or starts: a server killed
//! mid-job leaves its job to the survivor, two servers started at once on an empty database
//! both serve (one migrates it), followers lose nothing while the notice connection is cut, and
//! a database written by a newer kiln is refused. These tests run with
//! `KILN_TEST_STORE=postgres`; with SQLite they say they were skipped.
//!
//! Process: a server is killed, servers' logs are read, and the binary is run to see it
//! refuse a database.

use crate::common::fixtures::{finished, manifest, template, wait_job_within, workspace};
use crate::common::follow::{STYLES, assert_complete, follow};
use crate::common::{Kiln, TestServer, two_servers_skipped};
use serde_json::json;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn a_server_killed_mid_job_leaves_its_job_to_the_survivor() {
    if two_servers_skipped() {
        return;
    }
    let args = ["--hung-timeout", "2"];
    let mut a = TestServer::start_with_args(&args);
    let b_args = ["--hung-timeout", "2", "--workers", "0"];
    let b = TestServer::start_sharing(&a, &b_args);
    let owner_a = a.owner().await;
    let owner_b = b.client(owner_a.token());
    let t = template(
        &owner_a,
        "t",
        manifest(json!([{"sleep_ms": 60000}]), json!([])),
    )
    .await;
    let (_, build) = workspace(&owner_a, &t, "dev", json!([])).await;
    wait_job_within(&owner_b, &build, "running", Duration::from_secs(20)).await;
    a.kill();
    let killed = Instant::now();
    // B keeps serving, and fails the job once A's lease has expired.
    let done = wait_job_within(&owner_b, &build, "failed", Duration::from_secs(15)).await;
    assert!(
        killed.elapsed() >= Duration::from_millis(1200),
        "{:?}",
        killed.elapsed()
    );
    assert_eq!(
        done["job"]["error"],
        "the job made no progress for 2s (the hung-job timeout); its worker is gone or stuck"
    );
    let logs = owner_b
        .get(&format!("/api/v2/workspacebuilds/{build}/logs"))
        .await
        .json();
    let errors = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["log_level"] == "error")
        .count();
    assert_eq!(errors, 1, "failed once: {logs}");
}

#[actix_web::test]
async fn two_servers_started_at_once_on_an_empty_database_both_serve() {
    if two_servers_skipped() {
        return;
    }
    let (a, b) = TestServer::start_two_at_once(&[]);
    for s in [&a, &b] {
        assert!(
            !s.log().contains("ERROR"),
            "a server failed its start: {}",
            s.log()
        );
    }
    let owner = a.owner().await;
    let other = b.client(owner.token());
    let me = other.get("/api/v2/users/me").await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["username"], "owner");
    // One of them migrated the database; the other found it done.
    let migrated = [&a, &b]
        .iter()
        .filter(|s| s.log().contains("database schema migrated"))
        .count();
    assert_eq!(migrated, 1, "{}\n---\n{}", a.log(), b.log());
}

#[actix_web::test]
async fn followers_lose_nothing_while_the_notice_connection_is_cut() {
    if two_servers_skipped() {
        return;
    }
    let a = TestServer::start();
    let b = TestServer::start_sharing(&a, &["--workers", "0"]);
    let owner_a = a.owner().await;
    let owner_b = b.client(owner_a.token());
    let steps = json!([
        {"sleep_ms": 1000},
        {"run": "for i in $(seq 1 50); do echo line $i; sleep 0.02; done"},
        {"sleep_ms": 500}
    ]);
    let t = template(&owner_a, "t", manifest(steps, json!([]))).await;
    let (_, build) = workspace(&owner_a, &t, "dev", json!([])).await;
    let path = format!("/api/v2/workspacebuilds/{build}/logs");
    let follower = actix_web::rt::spawn(follow(owner_b.clone(), path.clone(), STYLES[0]));
    // Cut every server's LISTEN connection while the job runs.
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    let db = a.pg_database().to_string();
    let cut = crate::common::pg::psql(
        &db,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE query = 'LISTEN kiln_events' AND datname = current_database()",
    );
    assert_eq!(cut.trim(), "2", "both servers were listening");
    let done = finished(&owner_a, &build).await;
    assert_eq!(done["job"]["status"], "succeeded", "{done}");
    let stored = owner_b
        .get(&path)
        .await
        .expect(200, "[]codersdk.ProvisionerJobLog");
    let got = follower.await.unwrap();
    assert_complete(
        &got,
        stored.as_array().unwrap(),
        "a follower across the cut",
    );
    // The servers listen again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.log().contains("listening again") {
        assert!(
            Instant::now() < deadline,
            "B never listened again: {}",
            b.log()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_database_written_by_a_newer_kiln_is_refused() {
    if two_servers_skipped() {
        return;
    }
    let a = TestServer::start();
    let db = a.pg_database().to_string();
    let conn = crate::common::pg::conn_string(&db);
    drop(a);
    crate::common::pg::psql(&db, "UPDATE kiln_schema SET version = 99");
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "server",
            "--address",
            "127.0.0.1:0",
            "--database",
            &conn,
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the database has schema version 99, newer than this kiln"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
