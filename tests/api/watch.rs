//! `GET /workspaces/{workspace}/watch` (SSE) and `…/watch-ws` (WebSocket): the workspace at
//! once, then again each time it or its latest build changes.

use crate::common::fixtures::{NOT_FOUND, quick, template, workspace};
use crate::common::schema::assert_valid;
use crate::common::{Client, Kiln, TestApp};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

/// Reads SSE events until `done` says a workspace is the one awaited; returns every one seen.
async fn watch_sse(c: &Client, id: &str, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut res = c
        .request("GET", &format!("/api/v2/workspaces/{id}/watch"))
        .send()
        .await
        .expect("watch");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let (mut buf, mut seen) = (String::new(), Vec::new());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(chunk)) = actix_web::rt::time::timeout(
        deadline.saturating_duration_since(std::time::Instant::now()),
        res.next(),
    )
    .await
    {
        buf.push_str(std::str::from_utf8(&chunk.expect("chunk")).unwrap());
        while let Some(at) = buf.find("\n\n") {
            let event: String = buf.drain(..at + 2).collect();
            let mut lines = event.lines();
            match lines.next() {
                Some("event: data") => {
                    let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
                    let w: Value = serde_json::from_str(data).unwrap();
                    assert_valid("codersdk.Workspace", &w);
                    let finished = done(&w);
                    seen.push(w);
                    if finished {
                        return seen;
                    }
                }
                Some("event: ping") => {}
                other => panic!("unexpected event {other:?} in {event:?}"),
            }
        }
    }
    panic!("the watch ended before the awaited change: {seen:?}");
}

fn stopped(w: &Value) -> bool {
    w["latest_build"]["transition"] == "stop" && w["latest_build"]["status"] == "stopped"
}

#[actix_web::test]
async fn the_sse_watch_sends_the_workspace_and_each_change() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(&owner, "base", quick()).await;
    let (id, first) = workspace(&owner, &t, "dev", json!([])).await;
    owner.wait_build(&first).await;

    let watcher = {
        let owner = owner.clone();
        let id = id.clone();
        actix_web::rt::spawn(async move { watch_sse(&owner, &id, stopped).await })
    };
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let r = owner
        .post(
            &format!("/api/v2/workspaces/{id}/builds"),
            json!({"transition": "stop"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let seen = watcher.await.unwrap();
    assert_eq!(
        seen[0]["latest_build"]["transition"], "start",
        "the workspace as it was first"
    );
    assert!(stopped(seen.last().unwrap()));
    for pair in seen.windows(2) {
        assert_ne!(pair[0], pair[1], "a workspace is sent only when it changed");
    }
}

#[actix_web::test]
async fn the_websocket_watch_sends_server_sent_events_as_json() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(&owner, "base", quick()).await;
    let (id, first) = workspace(&owner, &t, "dev", json!([])).await;
    owner.wait_build(&first).await;

    let url = s
        .url(&format!("/api/v2/workspaces/{id}/watch-ws"))
        .replacen("http", "ws", 1);
    let (_, mut ws) = awc::Client::new()
        .ws(url)
        .header("Coder-Session-Token", owner.token())
        .connect()
        .await
        .expect("WebSocket upgrade");
    let mut first = true;
    loop {
        let frame = actix_web::rt::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a change within 30 s")
            .expect("open")
            .expect("frame");
        let awc::ws::Frame::Text(bytes) = frame else {
            continue;
        };
        let event: Value = serde_json::from_slice(&bytes).unwrap();
        assert_valid("codersdk.ServerSentEvent", &event);
        assert_eq!(event["type"], "data");
        assert_valid("codersdk.Workspace", &event["data"]);
        if first {
            first = false;
            let r = owner
                .post(
                    &format!("/api/v2/workspaces/{id}/builds"),
                    json!({"transition": "stop"}),
                )
                .await;
            assert_eq!(r.status, 201);
        } else if stopped(&event["data"]) {
            break;
        }
    }
}

#[actix_web::test]
async fn a_watch_of_a_workspace_one_cannot_see_is_refused() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let mia = s.user(&owner, "mia", &[]).await;
    let t = template(&owner, "base", quick()).await;
    let (id, _) = workspace(&owner, &t, "dev", json!([])).await;
    for path in [
        format!("/api/v2/workspaces/{id}/watch"),
        format!("/api/v2/workspaces/{id}/watch-ws"),
    ] {
        mia.get(&path).await.expect_error(404, NOT_FOUND, None);
        assert_eq!(s.anon().get(&path).await.status, 401);
    }
    owner
        .get("/api/v2/workspaces/nope/watch")
        .await
        .expect_error(400, "Invalid UUID \"nope\".", None);
}
