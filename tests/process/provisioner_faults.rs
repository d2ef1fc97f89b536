//! External provisioners when things go wrong, over real processes: a daemon killed with
//! kill -9 mid-job (its job fails within the lease, the other daemon goes on), a deleted key
//! (its daemons are cut off and their job fails), and the server killed and restarted while a
//! daemon runs (the daemon reconnects and its completion is delivered; cut off for the lease,
//! it stops its job itself).
//!
//! Process: daemons are processes of their own, killed and restarted with the server; the server
//! is killed, restarted and stopped by SIGTERM, and logs are read.

use crate::common::daemon::*;
use crate::common::fixtures::*;
use crate::common::{Client, Kiln, TestServer};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn alive(marker: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A template whose start step sleeps (`marker`) unless `flag` exists.
async fn sleepy(owner: &Client, name: &str, marker: &str, flag: &str) -> String {
    let step = json!([{"run": format!("echo started; [ -e {flag} ] || {marker}")}]);
    template(owner, name, manifest(step, json!([]))).await
}

async fn wait_started(owner: &Client, build: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = owner
            .get(&format!("/api/v2/workspacebuilds/{build}/logs"))
            .await
            .text();
        if logs.contains("started") {
            return;
        }
        assert!(Instant::now() < deadline, "the step never started: {logs}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn errors_in_log(owner: &Client, build: &str, needle: &str) -> usize {
    let logs: Value = owner
        .get(&format!("/api/v2/workspacebuilds/{build}/logs"))
        .await
        .json();
    logs.as_array()
        .unwrap()
        .iter()
        .filter(|l| l["output"].as_str().unwrap_or("").contains(needle))
        .count()
}

#[actix_web::test]
async fn a_daemon_killed_mid_job_fails_it_within_the_lease_and_the_other_goes_on() {
    let s = TestServer::start_with_args(&["--workers", "0", "--provisioner-lease", "2s"]);
    let owner = s.owner().await;
    let key = new_key(&owner, "farm", json!({})).await;
    let url = s.url("");
    let mut a = Daemon::start(&url, &key, "alpha", &[]);
    let mut b = Daemon::start(&url, &key, "beta", &[]);
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("quick").display().to_string();
    let marker = format!("sleep 30.{}1", std::process::id());
    let t = sleepy(&owner, "sleepy", &marker, &flag).await;
    let (ws, build) = workspace(&owner, &t, "dev", json!([])).await;
    wait_started(&owner, &build).await;
    let holder = get_build(&owner, &build).await["job"]["worker_id"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = daemons(&owner).await;
    let holder_name = listed.iter().find(|d| d["id"] == holder.as_str()).unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        listed.iter().find(|d| d["id"] == holder.as_str()).unwrap()["status"],
        "busy"
    );
    let (victim, survivor) = if holder_name == "alpha" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    victim.kill();
    let killed = Instant::now();
    let done = finished(&owner, &build).await;
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "failed {took:?} after the kill"
    );
    assert_eq!(done["job"]["status"], "failed", "{done}");
    let error = done["job"]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("provisioner daemon \"{holder_name}\""))
            && error.contains("sent no update for 2s"),
        "{error}"
    );
    assert_eq!(errors_in_log(&owner, &build, "sent no update").await, 1);
    // The step died with its daemon (its guard kills it).
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive(&marker) {
        assert!(
            Instant::now() < deadline,
            "the killed daemon's step still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The workspace builds again, on the other daemon.
    std::fs::write(&flag, "").unwrap();
    let again = new_build(&owner, &ws, "start").await;
    let again = finished(&owner, again["id"].as_str().unwrap()).await;
    assert_eq!(again["job"]["status"], "succeeded", "{again}");
    let survivor_id = daemons(&owner)
        .await
        .into_iter()
        .find(|d| d["name"] == survivor.name.as_str())
        .unwrap()["id"]
        .clone();
    assert_eq!(again["job"]["worker_id"], survivor_id);
    let offline = daemons(&owner)
        .await
        .into_iter()
        .find(|d| d["name"] == holder_name.as_str())
        .unwrap();
    assert_eq!(offline["status"], "offline", "{offline}");
    assert!(survivor.terminate().success());
}

#[actix_web::test]
async fn deleting_a_key_cuts_its_daemons_off_and_fails_their_job() {
    let s = TestServer::start_with_args(&["--workers", "0"]);
    let owner = s.owner().await;
    let key = new_key(&owner, "doomed", json!({})).await;
    let mut d = Daemon::start(&s.url(""), &key, "runner", &[]);
    let marker = format!("sleep 30.{}2", std::process::id());
    let t = sleepy(&owner, "sleepy", &marker, "/nonexistent/flag").await;
    let (_, build) = workspace(&owner, &t, "dev", json!([])).await;
    wait_started(&owner, &build).await;
    let r = owner.request(
        "DELETE",
        "/api/v2/organizations/coder/provisionerkeys/doomed",
    );
    assert_eq!(owner.send(r, None).await.status, 204);
    let deleted = Instant::now();
    let done = finished(&owner, &build).await;
    assert_eq!(done["job"]["status"], "failed", "{done}");
    assert!(
        done["job"]["error"]
            .as_str()
            .unwrap()
            .contains("the provisioner key \"doomed\" was deleted"),
        "{done}"
    );
    while alive(&marker) {
        assert!(
            deleted.elapsed() < Duration::from_secs(2),
            "the step still runs after its key was deleted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = d.exited_within(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| !s.success()),
        "the daemon stops once its key is refused: {status:?}\n{}",
        d.log()
    );
    assert!(d.log().contains("refused"), "{}", d.log());
    assert!(daemons(&owner).await.is_empty());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[actix_web::test]
async fn a_server_restart_loses_no_finished_job_and_a_cut_off_daemon_stops_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let args = [
        "--workers",
        "0",
        "--provisioner-lease",
        "3s",
        "--address",
        addr.as_str(),
    ];
    let mut s = TestServer::start_in(dir.path(), &args);
    let owner = s.owner().await;
    let key = new_key(&owner, "farm", json!({})).await;
    let url = format!("http://{addr}");
    let mut d = Daemon::start(&url, &key, "runner", &[]);
    // 1. A job that ends while the server is down: its completion is delivered after.
    let short = json!([{"run": "echo started; sleep 1"}]);
    let t = template(&owner, "short", manifest(short, json!([]))).await;
    let (ws, build) = workspace(&owner, &t, "dev", json!([])).await;
    wait_started(&owner, &build).await;
    s.kill();
    std::thread::sleep(Duration::from_millis(2000));
    let s = TestServer::start_in(dir.path(), &args);
    let owner = s.login("owner@example.com", "owner-password").await;
    let done = finished(&owner, &build).await;
    assert_eq!(done["job"]["status"], "succeeded", "{done}\n{}", d.log());
    // The daemon takes new work from the restarted server.
    let next = new_build(&owner, &ws, "stop").await;
    let next = finished(&owner, next["id"].as_str().unwrap()).await;
    assert_eq!(next["job"]["status"], "succeeded", "{next}");
    // 2. Cut off for the lease, the daemon stops its job; the server fails it.
    let marker = format!("sleep 30.{}3", std::process::id());
    let long = json!([{"run": format!("echo started; {marker}")}]);
    let t = template(&owner, "long", manifest(long, json!([]))).await;
    let (_, build) = workspace(&owner, &t, "cut", json!([])).await;
    wait_started(&owner, &build).await;
    let mut s = s;
    s.kill();
    let cut = Instant::now();
    while alive(&marker) {
        assert!(
            cut.elapsed() < Duration::from_secs(5),
            "the cut-off daemon still runs its step"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        cut.elapsed() >= Duration::from_secs(2),
        "stopped before its lease ran out"
    );
    let s = TestServer::start_in(dir.path(), &args);
    let owner = s.login("owner@example.com", "owner-password").await;
    let done = finished(&owner, &build).await;
    assert_eq!(done["job"]["status"], "failed", "{done}");
    assert!(
        done["job"]["error"]
            .as_str()
            .unwrap()
            .contains("sent no update for 3s"),
        "{done}"
    );
    assert!(d.terminate().success(), "{}", d.log());
}

#[actix_web::test]
async fn sigterm_gives_the_running_job_its_grace_then_cancels_it_and_exits_0() {
    let s = TestServer::start_with_args(&["--workers", "0"]);
    let owner = s.owner().await;
    let key = new_key(&owner, "farm", json!({})).await;
    let mut d = Daemon::start(&s.url(""), &key, "runner", &["--shutdown-grace", "1"]);
    let marker = format!("sleep 30.{}4", std::process::id());
    let t = sleepy(&owner, "sleepy", &marker, "/nonexistent/flag").await;
    let (_, build) = workspace(&owner, &t, "dev", json!([])).await;
    wait_started(&owner, &build).await;
    let signaled = Instant::now();
    let status = d.terminate();
    assert!(status.success(), "{status:?}\n{}", d.log());
    assert!(
        signaled.elapsed() < Duration::from_secs(4),
        "{:?}",
        signaled.elapsed()
    );
    assert!(!alive(&marker), "the step was stopped");
    assert!(d.log().contains("1 job(s) were running"), "{}", d.log());
    let done = finished(&owner, &build).await;
    assert_eq!(done["job"]["status"], "failed", "{done}");
    assert_eq!(
        done["job"]["error"],
        "kiln was shut down before this job finished; the job was canceled"
    );
}
