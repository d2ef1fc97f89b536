//! Following a job's logs in each style (WebSocket, Server-Sent Events, NDJSON), every line
//! checked against the swagger.

use super::Client;
use super::schema::assert_valid;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;

const LOG: &str = "codersdk.ProvisionerJobLog";

#[derive(Clone, Copy, Debug)]
pub enum Style {
    WebSocket,
    Sse,
    Ndjson,
}

pub const STYLES: [Style; 3] = [Style::WebSocket, Style::Sse, Style::Ndjson];

/// What a follower received: the logs (each checked) and whether it saw the proper end.
#[derive(Debug)]
pub struct Followed {
    pub logs: Vec<Value>,
    pub ended: bool,
}

pub async fn follow(c: Client, path: String, style: Style) -> Followed {
    match style {
        Style::WebSocket => follow_ws(&c, &path).await,
        Style::Sse => follow_sse(&c, &path, None).await,
        Style::Ndjson => follow_ndjson(&c, &path).await,
    }
}

/// The logs of a build.
pub fn logs_path(build_id: &str) -> String {
    format!("/api/v2/workspacebuilds/{build_id}/logs")
}

/// The stored logs (no follow), checked.
pub async fn stored(c: &Client, path: &str) -> Vec<Value> {
    let r = c.get(path).await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json; charset=utf-8")
    );
    r.expect(200, "[]codersdk.ProvisionerJobLog")
        .as_array()
        .unwrap()
        .clone()
}

/// `path` with `flag` added to its query.
pub fn with(path: &str, flag: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{flag}")
}

pub fn parse_log(bytes: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)));
    assert_valid(LOG, &v);
    v
}

pub async fn follow_ws(c: &Client, path: &str) -> Followed {
    use awc::ws::{CloseCode, Frame, Message};
    let url = format!(
        "{}{}",
        c.base.replacen("http://", "ws://", 1),
        with(path, "follow")
    );
    let (_, mut conn) = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
        .ws(url)
        .header("Coder-Session-Token", c.token())
        .connect()
        .await
        .expect("WebSocket upgrade");
    let mut logs = Vec::new();
    while let Some(frame) = conn.next().await {
        match frame.expect("frame") {
            Frame::Text(bytes) => logs.push(parse_log(&bytes)),
            Frame::Ping(p) => conn.send(Message::Pong(p)).await.unwrap(),
            Frame::Close(reason) => {
                let reason = reason.expect("a close reason");
                assert_eq!(reason.code, CloseCode::Normal);
                assert_eq!(reason.description.as_deref(), Some("done"));
                return Followed { logs, ended: true };
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    Followed { logs, ended: false }
}

/// SSE: `event: log` / `id` / `data` per line, `event: end` at the end.
pub async fn follow_sse(c: &Client, path: &str, last_event_id: Option<i64>) -> Followed {
    let mut req = c
        .request("GET", &with(path, "follow"))
        .insert_header(("Accept", "text/event-stream"));
    if let Some(id) = last_event_id {
        req = req.insert_header(("Last-Event-ID", id.to_string()));
    }
    let mut res = req.send().await.expect("SSE request");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let (mut buf, mut logs, mut ended) = (String::new(), Vec::new(), false);
    while let Some(chunk) = res.next().await {
        buf.push_str(std::str::from_utf8(&chunk.expect("chunk")).unwrap());
        while let Some(at) = buf.find("\n\n") {
            let event: String = buf.drain(..at + 2).collect();
            let (mut kind, mut id, mut data) = (None, None, None);
            for line in event.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    kind = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.parse::<i64>().unwrap());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(v.to_string());
                }
            }
            match kind.as_deref() {
                Some("log") => {
                    let v = parse_log(data.unwrap().as_bytes());
                    assert_eq!(
                        Some(v["id"].as_i64().unwrap()),
                        id,
                        "the SSE id is the log id"
                    );
                    assert!(!ended, "a log after the end");
                    logs.push(v);
                }
                Some("end") => ended = true,
                None => assert!(event.starts_with(':'), "unexpected event {event:?}"),
                Some(other) => panic!("unexpected event {other}"),
            }
        }
    }
    assert!(buf.is_empty(), "a partial event at the end: {buf:?}");
    Followed { logs, ended }
}

/// Chunked NDJSON: one log per line; the stream closes at the end.
pub async fn follow_ndjson(c: &Client, path: &str) -> Followed {
    let mut res = c
        .request("GET", &with(path, "follow=true"))
        .send()
        .await
        .expect("NDJSON request");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/x-ndjson"
    );
    let (mut buf, mut logs) = (Vec::<u8>::new(), Vec::new());
    while let Some(chunk) = res.next().await {
        buf.extend_from_slice(&chunk.expect("chunk"));
        while let Some(at) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=at).collect();
            logs.push(parse_log(&line[..line.len() - 1]));
        }
    }
    assert!(buf.is_empty(), "a partial line at the end");
    Followed { logs, ended: true }
}

/// Every line of `expected`, once, in order, then the end.
pub fn assert_complete(got: &Followed, expected: &[Value], what: &str) {
    assert!(got.ended, "{what}: no end");
    let ids = |v: &[Value]| {
        v.iter()
            .map(|l| l["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&got.logs), ids(expected), "{what}: ids");
    assert_eq!(got.logs, expected, "{what}: lines");
}

/// The job's log holds `line 1` to `line {n}`, each once and in order, and every follower got
/// every stored line once, then the end.
pub async fn every_line_once(
    c: &Client,
    path: &str,
    n: usize,
    followers: Vec<actix_web::rt::task::JoinHandle<Followed>>,
    across: &str,
) {
    let stored = c
        .get(path)
        .await
        .expect(200, "[]codersdk.ProvisionerJobLog");
    let stored = stored.as_array().unwrap().clone();
    let outputs: Vec<&str> = stored
        .iter()
        .filter_map(|l| l["output"].as_str())
        .filter(|o| o.starts_with("line "))
        .collect();
    let expected: Vec<String> = (1..=n).map(|i| format!("line {i}")).collect();
    assert_eq!(outputs, expected, "every line once, in order");
    for (f, style) in followers.into_iter().zip(STYLES) {
        let got = f.await.unwrap();
        assert_complete(
            &got,
            &stored,
            &format!("{style:?} follower across the {across}"),
        );
    }
}

/// Two servers on one database (PostgreSQL mode): A runs the jobs, B none; a build on A of a
/// template whose start runs `steps`, its log followed on B in every style from the start.
pub struct FollowedAcross {
    pub a: super::TestApp,
    pub b: super::TestApp,
    pub owner_a: Client,
    pub owner_b: Client,
    pub template: String,
    pub build: String,
    /// The build's logs path.
    pub path: String,
    pub followers: Vec<actix_web::rt::task::JoinHandle<Followed>>,
}

pub async fn build_followed_across(steps: Value) -> FollowedAcross {
    use super::Kiln;
    use super::fixtures::{manifest, template, workspace};
    let a = super::TestApp::start();
    let b = super::TestApp::start_sharing(&a, &["--workers", "0"]);
    let owner_a = a.owner().await;
    let owner_b = b.client(owner_a.token());
    let template = template(&owner_a, "t", manifest(steps, serde_json::json!([]))).await;
    let (_, build) = workspace(&owner_a, &template, "dev", serde_json::json!([])).await;
    let path = format!("/api/v2/workspacebuilds/{build}/logs");
    let followers = STYLES
        .iter()
        .map(|style| actix_web::rt::spawn(follow(owner_b.clone(), path.clone(), *style)))
        .collect();
    FollowedAcross {
        a,
        b,
        owner_a,
        owner_b,
        template,
        build,
        path,
        followers,
    }
}
