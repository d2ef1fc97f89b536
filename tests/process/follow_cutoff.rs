//! A follower that connects and never reads is cut off (its connection ends before the log
//! does, without the proper end), while other followers of the same job still get every line
//! once, in order, then the end. The server runs with a short stall limit
//! (`KILN_FOLLOW_STALL_MS`, long enough for a busy test client that does read); the job
//! writes far more than socket buffers hold (the stalled clients keep the default receive
//! buffer: with a tiny one, the reopened window reaches the server only after minutes of
//! zero-window probing).
//!
//! Process: `KILN_FOLLOW_STALL_MS` is read once per process.

use crate::common::fixtures::{template, workspace};
use crate::common::follow::*;
use crate::common::{Kiln, TestServer};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::Duration;

const LINES: usize = 60_000;

/// Opens a follow of `path` on a raw connection and sends the request; nothing is read from
/// it until `read_all`.
fn never_reads(base: &str, token: &str, path: &str, websocket: bool) -> std::net::TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let upgrade = if websocket {
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    } else {
        ""
    };
    write!(
        s,
        "GET {path}?follow HTTP/1.1\r\nHost: {addr}\r\nCoder-Session-Token: {token}\r\n{upgrade}\r\n"
    )
    .unwrap();
    s
}

/// Everything the connection delivers until the server closes it.
fn read_all(mut s: std::net::TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the connection was not closed: {e}"),
        }
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[actix_web::test]
async fn a_follower_that_never_reads_is_cut_off_and_the_others_get_every_line() {
    // The whole log is kept: 60,000 lines cost some 4 MiB against the log cap.
    let s = TestServer::start_with_env(
        &["--max-job-log-bytes", "16777216"],
        &[("KILN_FOLLOW_STALL_MS", "20000")],
    );
    let owner = s.owner().await;
    let manifest =
        json!({"steps": {"start": [{"run": format!("seq {LINES}")}], "stop": [], "delete": []}});
    let t = template(&owner, "t", manifest).await;
    let (_, build) = workspace(&owner, &t, "dev", json!([])).await;
    let path = format!("/api/v2/workspacebuilds/{build}/logs");

    let stalled_ndjson = never_reads(&s.url(""), owner.token(), &path, false);
    let stalled_ws = never_reads(&s.url(""), owner.token(), &path, true);
    let spawn = |style| actix_web::rt::spawn(follow(owner.clone(), path.clone(), style));
    let tasks = [Style::WebSocket, Style::Ndjson].map(spawn);
    let mut got = Vec::new();
    for t in tasks {
        match t.await {
            Ok(f) => got.push(f),
            Err(e) => panic!(
                "a reading follower failed: {e}; the server's log:\n{}",
                s.log()
            ),
        }
    }
    let [ws, nd]: [Followed; 2] = got.try_into().unwrap();
    let all: Vec<Value> = owner.get(&path).await.json().as_array().unwrap().clone();
    let numbers = all
        .iter()
        .filter(|l| l["log_source"] == "provisioner")
        .count();
    assert_eq!(numbers, LINES);
    assert_complete(&ws, &all, "WebSocket");
    assert_complete(&nd, &all, "NDJSON");

    // Well past the stall limit, the stalled followers read what they were sent.
    actix_web::rt::time::sleep(Duration::from_secs(22)).await;
    let nd_got = actix_web::rt::task::spawn_blocking(move || read_all(stalled_ndjson));
    let ws_got = actix_web::rt::task::spawn_blocking(move || read_all(stalled_ws));
    let (nd_got, ws_got) = (nd_got.await.unwrap(), ws_got.await.unwrap());

    assert!(nd_got.starts_with(b"HTTP/1.1 200"), "NDJSON answer");
    assert!(
        !nd_got.ends_with(b"\r\n0\r\n\r\n"),
        "the stalled NDJSON stream broke off before its end"
    );
    assert!(count(&nd_got, b"\"output\":\"") < all.len());

    assert!(ws_got.starts_with(b"HTTP/1.1 101"), "WebSocket upgrade");
    // Close 1000 "done" (0x03e8): sent only after the last line.
    assert_eq!(count(&ws_got, b"\x03\xe8done"), 0, "no proper end");
    assert!(count(&ws_got, b"\"output\":\"") < all.len());
}
