//! Live streams per user: a user holds at most `--max-streams-per-user` follows, watches and
//! status pages at once; one more is refused with 429 in Coder's shape while other users are
//! still served, and a place comes back when a stream closes.

use crate::common::fixtures::*;
use crate::common::{Client, Kiln, TestApp};
use serde_json::json;
use std::time::{Duration, Instant};

const TOO_MANY: &str = "You have too many live streams open (at most 3 at once).";

/// Opens a live stream and keeps it (the response is not read).
async fn hold(c: &Client, path: &str) -> Box<dyn std::any::Any> {
    let r = c
        .request("GET", path)
        .insert_header(("Accept", "text/event-stream"))
        .send()
        .await
        .expect("stream request");
    assert_eq!(r.status().as_u16(), 200, "{path}");
    Box::new(r)
}

#[actix_web::test]
async fn a_user_holds_at_most_their_share_of_live_streams() {
    let s = TestApp::start_with_args(&["--max-streams-per-user", "3"]);
    let owner = s.owner().await;
    let mia = s.user(&owner, "mia", &[]).await;
    let t = template(&owner, "base", quick()).await;
    let (ws, build) = workspace(&mia, &t, "dev", json!([])).await;
    finished(&mia, &build).await;
    let watch = format!("/api/v2/workspaces/{ws}/watch");
    let events = "/api/v2/kiln/events";
    let mut held = vec![hold(&mia, events).await, hold(&mia, &watch).await];
    held.push(hold(&mia, events).await);
    // A fourth of any kind is refused, before anything is streamed.
    for path in [
        events.to_string(),
        watch.clone(),
        format!("/api/v2/workspacebuilds/{build}/logs?follow=true"),
    ] {
        let r = mia.get(&path).await;
        r.expect_error(429, TOO_MANY, None);
        assert!(r.json()["detail"].as_str().unwrap().contains("Close some"));
    }
    // Other users are served meanwhile, the refused one too for what is not a stream.
    let _owners = hold(&owner, events).await;
    mia.get(&format!("/api/v2/workspacebuilds/{build}/logs"))
        .await
        .expect(200, LOGS);
    // A closed stream gives its place back (once the server sees the connection gone).
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = mia
            .request("GET", events)
            .insert_header(("Accept", "text/event-stream"))
            .send()
            .await
            .expect("stream request");
        if r.status().as_u16() == 200 {
            break;
        }
        assert_eq!(r.status().as_u16(), 429);
        assert!(
            Instant::now() < deadline,
            "the closed stream's place never came back"
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}
