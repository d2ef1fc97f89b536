//! Cancel and racing creates over real HTTP: pending and running builds, permissions, the
//! spec's 400 / 403 / 412 answers, the stopped process; and 20 simultaneous POSTs.

use crate::common::fixtures::*;
use crate::common::schema::assert_valid;
use crate::common::{Client, Kiln, TestApp};
use serde_json::json;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn racing_creates_make_exactly_one_build() {
    let s = TestApp::start();
    let owner = s.owner().await;
    // Builds stay active for the whole race.
    let slow = json!([{"sleep_ms": 1500}]);
    let t = template(&owner, "t", manifest(slow.clone(), slow)).await;
    let (ws, first) = workspace(&owner, &t, "dev", json!([])).await;
    finished(&owner, &first).await;
    for transition in ["stop", "start"] {
        let posts = (0..20).map(|_| post_build(&owner, &ws, json!({"transition": transition})));
        let answers = futures_util::future::join_all(posts).await;
        let mut created = Vec::new();
        for r in &answers {
            match r.status {
                201 => created.push(r.expect(201, BUILD)),
                _ => {
                    r.expect_error(409, "A workspace build is already active.", None);
                }
            }
        }
        assert_eq!(created.len(), 1, "exactly one of 20 racing POSTs wins");
        finished(&owner, created[0]["id"].as_str().unwrap()).await;
    }
    let list = owner
        .get(&format!("/api/v2/workspaces/{ws}/builds"))
        .await
        .expect(200, BUILDS);
    let numbers: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["build_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![3, 2, 1]);
}

/// A server with one worker and the template of a build that keeps it busy for a minute.
/// Import every other template before `occupy`: imports queue behind the busy build.
async fn one_worker() -> (TestApp, Client, String) {
    let s = TestApp::start_with_args(&["--workers", "1"]);
    let owner = s.owner().await;
    let t = template(
        &owner,
        "busy",
        manifest(json!([{"sleep_ms": 60000}]), json!([])),
    )
    .await;
    (s, owner, t)
}

/// Starts the busy build and waits until it runs; returns its id.
async fn occupy(owner: &Client, busy_template: &str) -> String {
    let (_, busy) = workspace(owner, busy_template, "busy", json!([])).await;
    for _ in 0..500 {
        if get_build(owner, &busy).await["job"]["status"] == "running" {
            return busy;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the busy build never started");
}

#[actix_web::test]
async fn cancel_a_pending_build() {
    let (s, owner, busy_t) = one_worker().await;
    let member = s.user(&owner, "mia", &[]).await;
    let t = template(&owner, "quick", quick()).await;
    let busy = occupy(&owner, &busy_t).await;
    let (ws, pending) = workspace(&member, &t, "dev", json!([])).await;
    let b = get_build(&member, &pending).await;
    assert_eq!(b["status"], "pending");
    assert_eq!(b["job"]["queue_position"], 1);
    assert_eq!(b["job"]["queue_size"], 1);
    assert_eq!(b["matched_provisioners"]["count"], 1);
    assert_eq!(b["matched_provisioners"]["available"], 0);
    // A follower of the pending build ends when it is canceled.
    let follower = {
        let member = member.clone();
        let path = format!("/api/v2/workspacebuilds/{pending}/logs?follow");
        actix_web::rt::spawn(async move {
            let mut res = member.request("GET", &path).send().await.unwrap();
            assert_eq!(res.status(), 200);
            let body = res.body().limit(1 << 20);
            let body = actix_web::rt::time::timeout(Duration::from_secs(20), body).await;
            body.expect("the follow ends").expect("a body").to_vec()
        })
    };
    let cancel = format!("/api/v2/workspacebuilds/{pending}/cancel");
    member
        .patch(&format!("{cancel}?expect_status=canceled"), json!({}))
        .await
        .expect_error(
            400,
            "Invalid expect_status \"canceled\". Only 'running' or 'pending' are allowed.",
            None,
        );
    member
        .patch(&format!("{cancel}?expect_status=running"), json!({}))
        .await
        .expect_error(412, "Job is not in the expected state.", None);
    let r = member
        .patch(&format!("{cancel}?expect_status=pending"), json!({}))
        .await
        .expect(200, "codersdk.Response");
    assert_eq!(r, json!({"message": "Job has been marked as canceled..."}));
    let b = get_build(&member, &pending).await;
    assert_eq!(b["status"], "canceled");
    assert_eq!(b["job"]["status"], "canceled");
    assert!(b["job"].get("started_at").is_none(), "{b}");
    assert!(b["job"]["canceled_at"].is_string() && b["job"]["completed_at"].is_string());
    assert_eq!(b["job"]["queue_position"], 0);
    member
        .patch(&cancel, json!({}))
        .await
        .expect_error(400, "Job has already completed!", None);
    assert!(
        follower.await.unwrap().is_empty(),
        "no logs for a build that never ran"
    );
    // It never runs: free the worker and let it run a newer build. The worker takes jobs
    // oldest first, so had the canceled job been runnable, it would have started before.
    owner
        .patch(&format!("/api/v2/workspacebuilds/{busy}/cancel"), json!({}))
        .await
        .expect(200, "codersdk.Response");
    let done = finished(&owner, &busy).await;
    assert_eq!(done["status"], "canceled");
    let newer = new_build(&member, &ws, "start").await;
    let newer = finished(&member, newer["id"].as_str().unwrap()).await;
    assert_eq!(newer["status"], "running", "{newer}");
    let b = get_build(&member, &pending).await;
    assert!(b["job"].get("started_at").is_none(), "{b}");
    let logs = member
        .get(&format!("/api/v2/workspacebuilds/{pending}/logs"))
        .await
        .expect(200, "[]codersdk.ProvisionerJobLog");
    assert_eq!(logs, json!([]));
}

#[actix_web::test]
async fn cancel_permission_follows_the_template_setting() {
    let (s, owner, busy_t) = one_worker().await;
    let member = s.user(&owner, "mia", &[]).await;
    // A template whose builds members may not cancel.
    let v = owner
        .import_version(
            crate::common::tar_of(&[("kiln.json", &quick().to_string())]),
            None,
        )
        .await;
    assert_valid("codersdk.TemplateVersion", &v);
    let r = owner
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "strict", "template_version_id": v["id"], "allow_user_cancel_workspace_jobs": false}),
        )
        .await;
    let t = r.expect(201, "codersdk.Template");
    let busy = occupy(&owner, &busy_t).await;
    let (_, pending) = workspace(&member, t["id"].as_str().unwrap(), "dev", json!([])).await;
    let cancel = format!("/api/v2/workspacebuilds/{pending}/cancel");
    let denied = "User is not allowed to cancel workspace builds. Owner role is required.";
    // A template admin reads every build but acts on no other user's workspace (Coder's
    // RBAC: a cancel updates the workspace): refused, whatever the template allows.
    let admin = s.user(&owner, "tom", &["template-admin"]).await;
    let (_, allowed) = workspace(&member, &busy_t, "loose", json!([])).await;
    for build in [&pending, &allowed] {
        let b = admin
            .get(&format!("/api/v2/workspacebuilds/{build}"))
            .await
            .expect(200, "codersdk.WorkspaceBuild");
        assert_eq!(b["job"]["status"], "pending", "{b}");
        for query in ["", "?expect_status=pending"] {
            admin
                .patch(
                    &format!("/api/v2/workspacebuilds/{build}/cancel{query}"),
                    json!({}),
                )
                .await
                .expect_error(403, denied, None);
        }
    }
    member
        .patch(
            &format!("/api/v2/workspacebuilds/{allowed}/cancel"),
            json!({}),
        )
        .await
        .expect(200, "codersdk.Response");
    member
        .patch(&cancel, json!({}))
        .await
        .expect_error(403, denied, None);
    member
        .patch(&format!("{cancel}?expect_status=running"), json!({}))
        .await
        .expect_error(403, denied, None);
    // expect_status=pending is always allowed; then the owner gets the 400.
    member
        .patch(&format!("{cancel}?expect_status=pending"), json!({}))
        .await
        .expect(200, "codersdk.Response");
    owner
        .patch(&cancel, json!({}))
        .await
        .expect_error(400, "Job has already completed!", None);
    owner
        .patch(&format!("/api/v2/workspacebuilds/{busy}/cancel"), json!({}))
        .await
        .expect(200, "codersdk.Response");
}

/// Waits for a step to write its shell's pid (a whole line) into `pid_file`.
async fn wait_pid(pid_file: &std::path::Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(pid_file)
            && text.ends_with('\n')
            && let Ok(pid) = text.trim().parse::<u32>()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the step never started");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn cancel_a_running_command_stops_its_process() {
    let s = TestApp::start();
    let owner = s.owner().await;
    // Build 1 notes SIGTERM in a marker file and goes on (its `sleep` runs in the background so
    // the trap runs at once; a new one follows), so its job stays `canceling` until SIGKILL
    // (1.5 s later). Build 2 has no trap: SIGTERM ends it.
    let start = json!([
        {"log": "before"},
        {"run": concat!(
            "echo $$ > \"$KILN_WORKSPACE_DIR/pid\"; echo started; ",
            "if [ \"$KILN_BUILD_NUMBER\" = 1 ]; then ",
            "trap 'echo term > \"$KILN_WORKSPACE_DIR/got-term\"' TERM; ",
            "while :; do sleep 30 & wait $!; done; ",
            "else sleep 30; fi"
        )}
    ]);
    let t = template(&owner, "t", manifest(start, json!([]))).await;
    let (ws, build) = workspace(&owner, &t, "dev", json!([])).await;
    let pid_file = s.dir.join("workspaces").join(&ws).join("pid");
    let marker = s.dir.join("workspaces").join(&ws).join("got-term");
    let pid = wait_pid(&pid_file).await;
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists());
    let cancel = format!("/api/v2/workspacebuilds/{build}/cancel");
    owner
        .patch(&format!("{cancel}?expect_status=pending"), json!({}))
        .await
        .expect_error(412, "Job is not in the expected state.", None);
    let asked = Instant::now();
    owner
        .patch(&format!("{cancel}?expect_status=running"), json!({}))
        .await
        .expect(200, "codersdk.Response");
    // The command got SIGTERM and goes on: the job is `canceling` until SIGKILL, 1.5 s after
    // SIGTERM (read at once, well within that).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "the command never got SIGTERM after the cancel"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let b = get_build(&owner, &build).await;
    assert_eq!(b["job"]["status"], "canceling", "{b}");
    assert_eq!(b["status"], "canceling", "{b}");
    assert!(b["job"]["canceled_at"].is_string(), "{b}");
    assert!(b["job"].get("completed_at").is_none(), "{b}");
    owner.patch(&cancel, json!({})).await.expect_error(
        400,
        "Job has already been marked as canceled!",
        None,
    );
    assert!(proc_dir.exists(), "the command outlives SIGTERM");
    let b = finished(&owner, &build).await;
    let took = asked.elapsed();
    assert_eq!(b["status"], "canceled", "{b}");
    assert_eq!(b["job"]["status"], "canceled");
    assert!(b["job"].get("error").is_none(), "{b}");
    assert!(took < Duration::from_secs(4), "cancel took {took:?}");
    let deadline = Instant::now() + Duration::from_secs(3);
    while proc_dir.exists() {
        assert!(
            Instant::now() < deadline,
            "process {pid} survived the cancel"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    owner
        .patch(&cancel, json!({}))
        .await
        .expect_error(400, "Job has already completed!", None);
    let logs = owner
        .get(&format!("/api/v2/workspacebuilds/{build}/logs"))
        .await
        .expect(200, "[]codersdk.ProvisionerJobLog");
    let outputs: Vec<_> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["output"].as_str().unwrap().to_string())
        .collect();
    assert!(outputs.contains(&"started".to_string()), "{outputs:?}");
    assert!(
        outputs.iter().any(|o| o.contains("canceled")),
        "{outputs:?}"
    );
    // The workspace can build again; a plain `sleep` (no trap) ends at SIGTERM.
    // Remove the old pid file before the build starts: a fast worker writes the new one at once.
    std::fs::remove_file(&pid_file).expect("build 1 wrote its pid file");
    let next = new_build(&owner, &ws, "start").await;
    assert_eq!(next["build_number"], 2);
    let next_id = next["id"].as_str().unwrap();
    let pid = wait_pid(&pid_file).await;
    let asked = Instant::now();
    owner
        .patch(
            &format!("/api/v2/workspacebuilds/{next_id}/cancel"),
            json!({}),
        )
        .await
        .expect(200, "codersdk.Response");
    let b = finished(&owner, next_id).await;
    assert_eq!(b["status"], "canceled");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "took {:?}",
        asked.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            Instant::now() < deadline,
            "process {pid} survived the cancel"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `(queue_position, queue_size)` of each build, read twice (the second read is served from
/// what the first learned, so it shows whether a change was missed).
async fn ranks(c: &Client, builds: &[&str]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for _ in 0..2 {
        out.clear();
        for id in builds {
            let b = get_build(c, id).await;
            let job = &b["job"];
            out.push((
                job["queue_position"].as_i64().unwrap(),
                job["queue_size"].as_i64().unwrap(),
            ));
        }
    }
    out
}

#[actix_web::test]
async fn queue_positions_follow_every_change_to_the_queue() {
    let (_s, owner, busy_t) = one_worker().await;
    let busy = occupy(&owner, &busy_t).await;
    // Every queued build is a long one too: the one the worker takes next keeps it busy.
    let mut queued = Vec::new();
    for n in 0..3 {
        let (_, b) = workspace(&owner, &busy_t, &format!("q{n}"), json!([])).await;
        queued.push(b);
    }
    let [a, b, c] = [&*queued[0], &*queued[1], &*queued[2]];
    assert_eq!(ranks(&owner, &[a, b, c]).await, [(1, 3), (2, 3), (3, 3)]);
    // A pending job canceled: the ones behind move up at once.
    owner
        .patch(&format!("/api/v2/workspacebuilds/{a}/cancel"), json!({}))
        .await
        .expect(200, "codersdk.Response");
    assert_eq!(ranks(&owner, &[a, b, c]).await, [(0, 0), (1, 2), (2, 2)]);
    // A job queued: behind the others.
    let (_, d) = workspace(&owner, &busy_t, "q3", json!([])).await;
    assert_eq!(ranks(&owner, &[b, c, &d]).await, [(1, 3), (2, 3), (3, 3)]);
    // The worker freed takes the head of the queue: the rest move up as soon as it is taken.
    owner
        .patch(&format!("/api/v2/workspacebuilds/{busy}/cancel"), json!({}))
        .await
        .expect(200, "codersdk.Response");
    let deadline = Instant::now() + Duration::from_secs(20);
    while get_build(&owner, b).await["job"]["status"] == "pending" {
        assert!(
            Instant::now() < deadline,
            "the freed worker never took a job"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(ranks(&owner, &[b, c, &d]).await, [(0, 0), (1, 2), (2, 2)]);
}
