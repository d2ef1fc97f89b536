//! Job leases over real servers: a job records the worker that holds it; a killed server's
//! job, seen by the next server on its data, is failed only once its lease has expired (the
//! hung-job timeout); a second server on one data folder is refused. Processes: a server is
//! killed, and a second `kiln server` is run to see it refused.

use crate::common::fixtures::{get_build, template, wait_job, workspace};
use crate::common::{Kiln, TestServer};
use serde_json::json;
use std::time::{Duration, Instant};

const HUNG_ERROR_3S: &str =
    "the job made no progress for 3s (the hung-job timeout); its worker is gone or stuck";

#[actix_web::test]
async fn another_servers_job_is_failed_only_once_its_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--workers", "1", "--hung-timeout", "3"];
    let mut a = TestServer::start_in(dir.path(), &args);
    let owner = a.owner().await;
    let t = template(
        &owner,
        "slow",
        json!({"steps": {"start": [{"log": "going"}, {"sleep_ms": 60000}]}}),
    )
    .await;
    let (_, id) = workspace(&owner, &t, "dev", json!([])).await;
    let running = wait_job(&owner, &id, "running").await;
    let worker = running["job"]["worker_id"].as_str().unwrap().to_string();
    let token = owner.token().to_string();
    a.kill();
    let killed = Instant::now();

    // The next server on this database is another one (as a second machine sharing it would
    // be): its id, kept in the data folder, is new.
    let id_file = dir.path().join("server-id");
    let old_id = std::fs::read_to_string(&id_file).expect("the server keeps its id");
    assert!(uuid::Uuid::parse_str(old_id.trim()).is_ok(), "{old_id:?}");
    std::fs::write(&id_file, format!("{}\n", uuid::Uuid::new_v4())).unwrap();
    let b = TestServer::start_in(dir.path(), &args);
    let owner = b.client(&token);
    // At start-up it leaves the job alone: its holder's lease has not expired yet.
    let now = get_build(&owner, &id).await;
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "the new server took too long to start to check this: {:?}",
        killed.elapsed()
    );
    assert_eq!(now["job"]["status"], "running", "{now}");
    assert_eq!(now["job"]["worker_id"], worker.as_str());

    // Once the lease expires, the sweeper fails it.
    let b1 = owner.wait_build(&id).await;
    assert!(
        killed.elapsed() >= Duration::from_secs(2),
        "failed {:?} after the kill, before its lease (3 s) could expire",
        killed.elapsed()
    );
    assert_eq!(b1["job"]["status"], "failed", "{b1}");
    assert_eq!(b1["job"]["error"], HUNG_ERROR_3S);
    let logs = owner
        .get(&format!("/api/v2/workspacebuilds/{id}/logs"))
        .await
        .json();
    let last = logs.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["output"], HUNG_ERROR_3S);
    assert_eq!(last["log_level"], "error");
}

#[actix_web::test]
async fn a_second_server_on_the_same_data_folder_is_refused() {
    let s = TestServer::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["server", "--address", "127.0.0.1:0", "--data-dir"])
        .arg(&s.dir)
        .args(s.store_args())
        .env_remove("KILN_DATABASE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "another kiln server is using the data directory {}",
            s.dir.display()
        )),
        "{stderr}"
    );
    // The first server is unharmed.
    assert_eq!(s.anon().get("/healthz").await.status, 200);
}
