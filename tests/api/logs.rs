//! Job logs over real HTTP and WebSocket: the stored lines (JSON and text), their query
//! errors, and following a job in each style (WebSocket, Server-Sent Events, NDJSON) before it
//! starts, while it runs, after it ends and while it completes: every line exactly once, in
//! order, then the end. (The cap on a job's log is in `log_caps.rs`.)

use crate::common::fixtures::{finished, get_build, steps, template, workspace};
use crate::common::follow::*;
use crate::common::schema::assert_valid;
use crate::common::{Kiln, TestApp};
use serde_json::{Value, json};
use std::time::Duration;

#[actix_web::test]
async fn stored_logs_json_text_filters_and_errors() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let start = json!([{"log": "one"}, {"log": "two", "level": "warn"}, {"run": "echo three; echo four >&2"}]);
    let t = template(&owner, "t", steps(start, json!([]))).await;
    let (_, b) = workspace(&owner, &t, "dev", json!([])).await;
    finished(&owner, &b).await;
    let path = logs_path(&b);
    let all = stored(&owner, &path).await;
    let ids: Vec<i64> = all.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ordered by id: {ids:?}"
    );
    let stages: Vec<&str> = all
        .iter()
        .filter(|l| l["output"] == "")
        .map(|l| l["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "Setting up",
            "Planning infrastructure",
            "Starting workspace",
            "Cleaning Up"
        ]
    );
    let work: Vec<(&str, &str, &str)> = all
        .iter()
        .filter(|l| l["log_source"] == "provisioner")
        .map(|l| {
            (
                l["output"].as_str().unwrap(),
                l["log_level"].as_str().unwrap(),
                l["stage"].as_str().unwrap(),
            )
        })
        .collect();
    let mut sorted = work.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("four", "error", "Starting workspace"),
            ("one", "info", "Starting workspace"),
            ("three", "info", "Starting workspace"),
            ("two", "warn", "Starting workspace"),
        ]
    );
    assert!(
        all.iter()
            .filter(|l| l["output"] == "")
            .all(|l| l["log_source"] == "provisioner_daemon")
    );

    // after / before are log ids.
    let (a, z) = (ids[2], ids[ids.len() - 2]);
    let after = stored(&owner, &format!("{path}?after={a}")).await;
    assert_eq!(after.as_slice(), &all[3..]);
    let before = stored(&owner, &format!("{path}?before={z}")).await;
    assert_eq!(before.as_slice(), &all[..ids.len() - 2]);
    let both = stored(&owner, &format!("{path}?after={a}&before={z}")).await;
    assert_eq!(both.as_slice(), &all[3..ids.len() - 2]);
    assert_eq!(
        stored(&owner, &format!("{path}?after={}", ids[ids.len() - 1])).await,
        Vec::<Value>::new()
    );
    // follow=false is no follow.
    assert_eq!(stored(&owner, &format!("{path}?follow=false")).await, all);

    // Text.
    let r = owner.get(&format!("{path}?format=text")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), all.len());
    for (line, l) in lines.iter().zip(&all) {
        let expected = format!(
            "{} [{}] {}: {}",
            l["created_at"].as_str().unwrap(),
            l["log_level"].as_str().unwrap(),
            l["stage"].as_str().unwrap(),
            l["output"].as_str().unwrap()
        );
        assert_eq!(*line, expected);
        assert!(
            line.as_bytes()[26] == b'Z',
            "RFC 3339 with microseconds: {line}"
        );
    }

    // Errors.
    for field in ["after", "before"] {
        for bad in ["abc", "1.5"] {
            let e = owner
                .get(&format!("{path}?{field}={bad}"))
                .await
                .expect_error(
                    400,
                    &format!("Query param \"{field}\" must be an integer."),
                    None,
                );
            assert_eq!(
                e["validations"],
                json!([{"field": field, "detail": "Must be an integer"}])
            );
        }
    }
    let e = owner.get(&format!("{path}?format=xml")).await.expect_error(
        400,
        "Query parameters have invalid values.",
        None,
    );
    assert_eq!(e["validations"][0]["field"], "format");
}

#[actix_web::test]
async fn template_version_logs_use_the_same_endpoint() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let v = owner
        .import_version(crate::common::tar_of(&[("kiln.json", "{}")]), None)
        .await;
    assert_valid("codersdk.TemplateVersion", &v);
    let path = format!(
        "/api/v2/templateversions/{}/logs",
        v["id"].as_str().unwrap()
    );
    let all = stored(&owner, &path).await;
    assert_eq!(all[0]["stage"], "Setting up");
    assert!(
        all.iter()
            .any(|l| l["output"].as_str().unwrap().contains("kiln.json is valid"))
    );
    for style in STYLES {
        let f = follow(owner.clone(), path.clone(), style).await;
        assert_complete(&f, &all, &format!("{style:?}"));
    }
    owner.get(&format!("{path}?after=x")).await.expect_error(
        400,
        "Query param \"after\" must be an integer.",
        None,
    );
    owner
        .get("/api/v2/templateversions/nope/logs")
        .await
        .expect_error(400, "Invalid UUID \"nope\".", None);
    owner
        .get(&format!(
            "/api/v2/templateversions/{}/logs",
            uuid::Uuid::new_v4()
        ))
        .await
        .expect_error(
            404,
            "Resource not found or you do not have access to this resource",
            None,
        );
}

#[actix_web::test]
async fn followers_before_start_while_running_and_after_the_end() {
    let s = TestApp::start_with_args(&["--workers", "1"]);
    let owner = s.owner().await;
    let busy_t = template(
        &owner,
        "busy",
        steps(json!([{"sleep_ms": 60000}]), json!([])),
    )
    .await;
    let start = json!([
        {"log": "one"}, {"sleep_ms": 400}, {"log": "two"},
        {"run": "seq 300"}, {"sleep_ms": 300}, {"log": "three"}
    ]);
    let t = template(&owner, "target", steps(start, json!([]))).await;
    // Keep the only worker busy, so the target build waits.
    let (_, busy) = workspace(&owner, &busy_t, "busy", json!([])).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while get_build(&owner, &busy).await["job"]["status"] != "running" {
        assert!(
            std::time::Instant::now() < deadline,
            "the busy build never started"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, b) = workspace(&owner, &t, "dev", json!([])).await;
    assert_eq!(get_build(&owner, &b).await["status"], "pending");
    let path = logs_path(&b);
    let mut followers = Vec::new();
    let spawn_all = |followers: &mut Vec<_>, when: &'static str| {
        for style in STYLES {
            let task = actix_web::rt::spawn(follow(owner.clone(), path.clone(), style));
            followers.push((format!("{when} {style:?}"), task));
        }
    };
    spawn_all(&mut followers, "pending");
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    owner
        .patch(&format!("/api/v2/workspacebuilds/{busy}/cancel"), json!({}))
        .await
        .expect(200, "codersdk.Response");
    // While it runs (after its first lines).
    loop {
        let v = get_build(&owner, &b).await;
        assert!(
            v["job"]["completed_at"].is_null(),
            "the build ended too soon"
        );
        if v["job"]["status"] == "running" && !stored(&owner, &path).await.is_empty() {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    spawn_all(&mut followers, "running");
    let done = finished(&owner, &b).await;
    assert_eq!(done["status"], "running");
    spawn_all(&mut followers, "ended");
    let all = stored(&owner, &path).await;
    let outputs: Vec<&str> = all
        .iter()
        .filter(|l| l["log_source"] == "provisioner")
        .map(|l| l["output"].as_str().unwrap())
        .collect();
    assert_eq!(outputs.len(), 303);
    assert_eq!(
        (outputs[0], outputs[1], outputs[2], outputs[302]),
        ("one", "two", "1", "three")
    );
    for (what, task) in followers {
        let f = task.await.unwrap();
        assert_complete(&f, &all, &what);
    }
}

#[actix_web::test]
async fn followers_that_connect_while_the_job_completes() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(
        &owner,
        "t",
        steps(
            json!([{"log": "a"}, {"run": "seq 50"}, {"log": "b"}]),
            json!([]),
        ),
    )
    .await;
    let (ws, first) = workspace(&owner, &t, "dev", json!([])).await;
    let mut builds = vec![first];
    for round in 0..6 {
        let b = builds.last().unwrap().clone();
        let path = logs_path(&b);
        let tasks: Vec<_> = STYLES
            .iter()
            .map(|&style| actix_web::rt::spawn(follow(owner.clone(), path.clone(), style)))
            .collect();
        finished(&owner, &b).await;
        let all = stored(&owner, &path).await;
        for (style, task) in STYLES.iter().zip(tasks) {
            assert_complete(
                &task.await.unwrap(),
                &all,
                &format!("round {round} {style:?}"),
            );
        }
        let transition = if round % 2 == 0 { "stop" } else { "start" };
        let next = owner
            .post(
                &format!("/api/v2/workspaces/{ws}/builds"),
                json!({"transition": transition}),
            )
            .await
            .expect(201, "codersdk.WorkspaceBuild");
        builds.push(next["id"].as_str().unwrap().to_string());
    }
}

#[actix_web::test]
async fn sse_resumes_after_last_event_id_and_text_follow() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(&owner, "t", steps(json!([{"run": "seq 20"}]), json!([]))).await;
    let (_, b) = workspace(&owner, &t, "dev", json!([])).await;
    finished(&owner, &b).await;
    let path = logs_path(&b);
    let all = stored(&owner, &path).await;
    let cut = all[5]["id"].as_i64().unwrap();
    let f = follow_sse(&owner, &path, Some(cut)).await;
    assert_complete(&f, &all[6..], "SSE after Last-Event-ID");
    // ?after works for every follow style.
    for style in STYLES {
        let f = follow(owner.clone(), format!("{path}?after={cut}"), style).await;
        assert_complete(&f, &all[6..], &format!("{style:?} after={cut}"));
    }
    // Text lines with follow.
    let mut res = owner
        .request("GET", &format!("{path}?follow&format=text"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "text/plain; charset=utf-8"
    );
    let body = res.body().await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(text.lines().count(), all.len());
    assert!(
        text.lines()
            .any(|l| l.ends_with("] Starting workspace: 20")),
        "{text}"
    );
}

#[actix_web::test]
async fn a_large_log_is_followed_completely() {
    // 20,000 lines cost 1.4 MB under the log cap's rule: a cap they fit in.
    let s = TestApp::start_with_args(&["--max-job-log-bytes", "4194304"]);
    let owner = s.owner().await;
    let t = template(&owner, "t", steps(json!([{"run": "seq 20000"}]), json!([]))).await;
    let (_, b) = workspace(&owner, &t, "dev", json!([])).await;
    let path = logs_path(&b);
    let (ws, nd) = futures_util::join!(
        follow(owner.clone(), path.clone(), Style::WebSocket),
        follow(owner.clone(), path.clone(), Style::Ndjson)
    );
    let all = stored(&owner, &path).await;
    let numbers: Vec<&str> = all
        .iter()
        .filter(|l| l["log_source"] == "provisioner")
        .map(|l| l["output"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), 20000);
    assert!(
        numbers
            .iter()
            .enumerate()
            .all(|(i, n)| *n == (i + 1).to_string())
    );
    assert_complete(&ws, &all, "WebSocket");
    assert_complete(&nd, &all, "NDJSON");
    // Paged stored reads join into one array, also as text.
    let text = owner.get(&format!("{path}?format=text")).await.text();
    assert_eq!(text.lines().count(), all.len());
}
