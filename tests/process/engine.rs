//! The provisioner when kiln itself goes away or drops privileges: a server killed in the
//! middle of a job (the job fails at the next start, what was accepted is kept), a graceful
//! shutdown (SIGTERM: the running step gets its grace, then nothing is left running), and steps
//! run as another OS user that cannot read kiln's data.
//!
//! Process: the server is killed and restarted on its data, stopped by SIGTERM with its log
//! read, and run as root with `--step-user` (a step reads its parent's /proc entry).

use crate::common::fixtures::{outputs, template, wait_job, workspace};
use crate::common::{Kiln, TestServer};
use serde_json::json;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn a_killed_server_fails_the_interrupted_job_and_keeps_everything_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(dir.path(), &["--workers", "1"]);
    let owner = s.owner().await;
    let tid = template(&owner, "slow", json!({"steps": {"start": [{"log": "going"}, {"run": "sleep 30"}], "stop": [{"log": "stopped"}]}})).await;
    let (ws1, build1) = workspace(&owner, &tid, "one", json!([])).await;
    let (_, build2) = workspace(&owner, &tid, "two", json!([])).await;
    // Wait until the first build runs (the second waits in the queue behind it).
    wait_job(&owner, &build1, "running").await;
    let b2 = owner
        .get(&format!("/api/v2/workspacebuilds/{build2}"))
        .await
        .json();
    assert_eq!(b2["job"]["status"], "pending", "{b2}");
    let token = owner.token().to_string();
    s.kill();

    let s = TestServer::start_in(dir.path(), &["--workers", "1"]);
    let owner = s.client(&token);
    let b1 = owner.wait_build(&build1).await;
    assert_eq!(b1["job"]["status"], "failed");
    assert_eq!(
        b1["job"]["error"],
        "kiln stopped while this job was running (the server was killed or restarted); the job did not finish"
    );
    let lines = outputs(&owner, &build1).await;
    assert_eq!(lines.last().unwrap(), b1["job"]["error"].as_str().unwrap());
    // The queued build survived the crash and runs now (its sleep is long: check it started).
    wait_job(&owner, &build2, "running").await;
    drop(s);
    // New builds work after a restart: workspace one can stop.
    let s = TestServer::start_in(dir.path(), &["--workers", "2"]);
    let owner = s.client(&token);
    let r = owner
        .post(
            &format!("/api/v2/workspaces/{ws1}/builds"),
            json!({"transition": "stop"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = owner.wait_build(r.json()["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "stopped");
}

#[actix_web::test]
async fn graceful_shutdown_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(dir.path(), &["--shutdown-grace", "1"]);
    let owner = s.owner().await;
    let t = template(
        &owner,
        "slow",
        json!({"steps": {"start": [{"run": "echo $$ > $KILN_WORKSPACE_DIR/pid; sleep 60"}]}}),
    )
    .await;
    let (ws, build) = workspace(&owner, &t, "one", json!([])).await;
    let pid_file = dir.path().join("workspaces").join(&ws).join("pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file)
            && text.ends_with('\n')
        {
            break text.trim().parse::<u32>().expect("a pid");
        }
        assert!(Instant::now() < deadline, "the step never started");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    let token = owner.token().to_string();
    let started = Instant::now();
    let status = s.terminate();
    assert!(status.success(), "{status:?}; the log:\n{}", s.log());
    assert!(
        started.elapsed().as_secs() < 8,
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the step's process is gone"
    );
    assert!(s.log().contains("shutting down"));

    drop(s);

    // A server on the same data, running no jobs, shows what the shutdown left: the job was
    // completed before the exit (a job left running would be failed with another error on
    // this start), and nothing is running or queued.
    let s = TestServer::start_in(dir.path(), &["--workers", "0"]);
    let owner = s.client(&token);
    let b = owner
        .get(&format!("/api/v2/workspacebuilds/{build}"))
        .await
        .expect(200, "codersdk.WorkspaceBuild");
    assert_eq!(b["status"], "failed", "{b}");
    assert_eq!(b["job"]["status"], "failed", "{b}");
    assert_eq!(
        b["job"]["error"],
        "kiln was shut down before this job finished; the job was canceled"
    );
    assert!(b["job"]["completed_at"].is_string(), "{b}");
    let lines = outputs(&owner, &build).await;
    assert_eq!(
        lines.last().map(String::as_str),
        b["job"]["error"].as_str(),
        "{lines:?}"
    );
    let v = owner.get("/api/v2/kiln/overview").await.json();
    assert_eq!(v["workers"], json!({"busy": 0, "total": 0}), "{v}");
    assert_eq!(v["queue"], json!([]), "{v}");
}

#[actix_web::test]
async fn steps_run_as_the_step_user_and_cannot_read_kilns_data() {
    // SAFETY: a plain system call.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: --step-user needs kiln to run as root");
        return;
    }
    let s = TestServer::start_with_args(&["--step-user", "nobody"]);
    let owner = s.owner().await;
    let probe = "id -u; \
        cat \"$KILN_WORKSPACE_DIR/../../kiln.db\" >/dev/null 2>&1 && echo db-read || echo db-denied; \
        cat \"$KILN_WORKSPACE_DIR/../../server-id\" >/dev/null 2>&1 && echo id-read || echo id-denied; \
        ls \"$KILN_WORKSPACE_DIR/../..\" >/dev/null 2>&1 && echo data-listed || echo data-unlisted; \
        tr '\\0' '\\n' < /proc/$PPID/environ >/dev/null 2>&1 && echo environ-read || echo environ-denied; \
        touch made-here && echo cwd-writable; \
        n=$(cat \"$KILN_STATE_FILE\"); echo $((${n:-0}+1)) > \"$KILN_STATE_FILE\"; \
        echo x >> \"$KILN_WORKSPACE_DIR/kept\"; wc -l < \"$KILN_WORKSPACE_DIR/kept\"";
    let t = template(
        &owner,
        "confined",
        json!({"steps": {"start": [{"run": probe}], "stop": [{"run": probe}], "delete": [{"log": "bye"}]}}),
    )
    .await;
    let (ws, build) = workspace(&owner, &t, "c", json!([])).await;
    let b = owner.wait_build(&build).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    let out = outputs(&owner, &build).await;
    let nobody = String::from_utf8(
        std::process::Command::new("id")
            .args(["-u", "nobody"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for want in [
        nobody.trim(),
        "db-denied",
        "id-denied",
        "data-unlisted",
        "environ-denied",
        "cwd-writable",
        "1",
    ] {
        assert!(out.iter().any(|l| l == want), "{want}: {out:?}");
    }
    // The state the step wrote comes back; the workspace folder stays the step user's.
    let r = owner
        .post(
            &format!("/api/v2/workspaces/{ws}/builds"),
            json!({"transition": "stop"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let stop = r.json()["id"].as_str().unwrap().to_string();
    let b = owner.wait_build(&stop).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    let out = outputs(&owner, &stop).await;
    assert!(
        out.iter().any(|l| l == "2"),
        "the workspace folder keeps its files: {out:?}"
    );
    let state = owner
        .get(&format!("/api/v2/workspacebuilds/{stop}/state"))
        .await;
    assert_eq!(state.body, b"2\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(s.dir.join("kiln.db").as_path())
            .map(|m| m.uid())
            .unwrap_or(0),
        0
    );
}
