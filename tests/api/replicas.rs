//! Two kiln servers on one PostgreSQL database, as replicas behind a load balancer: every
//! request may land on either, and what one server does shows on the other (racing posts, a
//! follower, a cancel, a sign-out, the status page). These tests run with
//! `KILN_TEST_STORE=postgres` (two servers cannot share an SQLite file); with SQLite they say
//! they were skipped. (A server killed mid-job, two servers started at once, a cut notice
//! connection and a newer database are in `tests/process/replicas.rs`.)

use crate::common::fixtures::{
    BUILD, BUILDS, finished, manifest, post_build, template, wait_job_within, workspace,
};
use crate::common::follow::{STYLES, assert_complete, build_followed_across};
use crate::common::{Kiln, TestApp, two_servers_skipped};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[actix_web::test]
async fn racing_posts_across_two_servers_make_exactly_one_build() {
    if two_servers_skipped() {
        return;
    }
    let a = TestApp::start();
    let b = TestApp::start_sharing(&a, &[]);
    let owner_a = a.owner().await;
    let owner_b = b.client(owner_a.token());
    let slow = json!([{"sleep_ms": 1500}]);
    let t = template(&owner_a, "t", manifest(slow.clone(), slow)).await;
    let (ws, first) = workspace(&owner_a, &t, "dev", json!([])).await;
    finished(&owner_b, &first).await;
    let posts = (0..20).map(|i| {
        let c = if i % 2 == 0 { &owner_a } else { &owner_b };
        post_build(c, &ws, json!({"transition": "stop"}))
    });
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
    finished(&owner_a, created[0]["id"].as_str().unwrap()).await;
    let list = owner_b
        .get(&format!("/api/v2/workspaces/{ws}/builds"))
        .await
        .expect(200, BUILDS);
    let numbers: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["build_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1], "unique and gap-free");
}

#[actix_web::test]
async fn a_follower_on_one_server_gets_every_line_of_a_job_on_the_other() {
    if two_servers_skipped() {
        return;
    }
    // B runs no workers: every job runs on A; the followers ask B.
    let run = build_followed_across(json!([
        {"sleep_ms": 800},
        {"run": "for i in $(seq 1 300); do echo line $i; done; sleep 0.5; echo tail"},
        {"sleep_ms": 300}
    ]))
    .await;
    let done = finished(&run.owner_a, &run.build).await;
    assert_eq!(done["job"]["status"], "succeeded", "{done}");
    let stored = run
        .owner_b
        .get(&run.path)
        .await
        .expect(200, "[]codersdk.ProvisionerJobLog");
    let stored = stored.as_array().unwrap().clone();
    assert!(stored.iter().any(|l| l["output"] == "line 300"));
    for (f, style) in run.followers.into_iter().zip(STYLES) {
        let got = f.await.unwrap();
        assert_complete(
            &got,
            &stored,
            &format!("{style:?} follower on the other server"),
        );
    }
}

#[actix_web::test]
async fn a_cancel_sent_to_one_server_stops_the_job_running_on_the_other() {
    if two_servers_skipped() {
        return;
    }
    let a = TestApp::start();
    let b = TestApp::start_sharing(&a, &["--workers", "0"]);
    let owner_a = a.owner().await;
    let owner_b = b.client(owner_a.token());
    let start = json!([{"run": "echo $$ > \"$KILN_WORKSPACE_DIR/pid\"; sleep 60"}]);
    let t = template(&owner_a, "t", manifest(start, json!([]))).await;
    let (ws, build) = workspace(&owner_a, &t, "dev", json!([])).await;
    let pid_file = a.dir.join("workspaces").join(&ws).join("pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the step never started on A");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    let asked = Instant::now();
    owner_b
        .patch(
            &format!("/api/v2/workspacebuilds/{build}/cancel"),
            json!({}),
        )
        .await
        .expect(200, "codersdk.Response");
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    while proc_dir.exists() {
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "the process on A survived the cancel sent to B"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = asked.elapsed();
    let done = wait_job_within(&owner_b, &build, "canceled", Duration::from_secs(10)).await;
    assert_eq!(done["status"], "canceled");
    eprintln!("cancel on B stopped the process on A in {stopped:?}");
    assert!(stopped < Duration::from_secs(3), "{stopped:?}");
}

#[actix_web::test]
async fn signing_out_on_one_server_ends_the_session_on_the_other() {
    if two_servers_skipped() {
        return;
    }
    let a = TestApp::start();
    let b = TestApp::start_sharing(&a, &[]);
    let owner_a = a.owner().await;
    let owner_b = b.client(owner_a.token());
    assert_eq!(owner_b.get("/api/v2/users/me").await.status, 200);
    let r = owner_a.post("/api/v2/users/logout", json!({})).await;
    assert_eq!(r.status, 200);
    // B keeps a checked key for up to a second.
    let deadline = Instant::now() + Duration::from_millis(1500);
    loop {
        let r = owner_b.get("/api/v2/users/me").await;
        if r.status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B still accepts the signed-out session"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next `overview` event of an events stream, within `within`.
async fn next_overview(
    body: &mut (
             impl futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
             + Unpin
         ),
    buffer: &mut String,
    within: Duration,
) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if block.contains("event: overview") {
                let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
                return Some(serde_json::from_str(data).unwrap());
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = actix_web::rt::time::timeout(left, body.next())
            .await
            .ok()??;
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
}

#[actix_web::test]
async fn the_status_page_on_one_server_follows_builds_on_the_other() {
    if two_servers_skipped() {
        return;
    }
    let a = TestApp::start();
    let b = TestApp::start_sharing(&a, &["--workers", "0"]);
    let owner_a = a.owner().await;
    let owner_b = b.client(owner_a.token());
    let t = template(
        &owner_a,
        "t",
        manifest(json!([{"sleep_ms": 500}]), json!([])),
    )
    .await;
    let mut response = owner_b
        .request("GET", "/api/v2/kiln/events")
        .insert_header(("Accept", "text/event-stream"))
        .send()
        .await
        .unwrap();
    let mut buffer = String::new();
    let first = next_overview(&mut response, &mut buffer, Duration::from_secs(3))
        .await
        .expect("a first overview");
    assert_eq!(first["builds"], json!([]));
    let (_, build) = workspace(&owner_a, &t, "dev", json!([])).await;
    // B shows the build that A queued, runs and completes, without a reload.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.last().map(String::as_str) != Some("running") {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = next_overview(&mut response, &mut buffer, left)
            .await
            .unwrap_or_else(|| panic!("B's overview stopped at {seen:?}"));
        if let Some(row) = v["builds"].as_array().and_then(|b| b.first()) {
            assert_eq!(row["id"], build.as_str());
            seen.push(row["status"].as_str().unwrap().to_string());
        }
    }
    assert!(seen.contains(&"starting".to_string()), "{seen:?}");
}
