//! Part 5, with `--database`: two kiln servers on one PostgreSQL database. Server A runs the
//! jobs; server B (no workers) serves the follower and the cancel:
//! - a log line written by a job on A to the same line received by a WebSocket follower on B
//!   (from the line's `created_at`, same machine clock): median and p99;
//! - a cancel sent to B to the job's process gone on A.

use crate::client::{Api, Server, percentile, start_server, wait_ready};
use crate::{manifest, micros_of, ms, now_micros};
use awc::ws::Frame;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

pub async fn part5(a: &Api, server_a: &Server, kiln: &Path, database: &str) {
    println!(
        "== 5. across two servers on one database: jobs run on A, the follower and the cancel use B"
    );
    let server_b = start_server(kiln, 0, "full", Some(database));
    wait_ready(&server_b.base).await;
    let b = a.on(&server_b.base);
    log_delivery(a, &b).await;
    cancel_across(a, &b, server_a).await;
}

async fn log_delivery(a: &Api, b: &Api) {
    let lines = 400;
    let steps = json!([
        {"sleep_ms": 500},
        {"run": format!("for i in $(seq 1 {lines}); do echo $i; sleep 0.005; done")}
    ]);
    let t = a.template("cross-lines", manifest(steps, json!([]))).await;
    let (_, build) = a.workspace(&t, "cross-lines").await;
    let url = format!(
        "{}/api/v2/workspacebuilds/{build}/logs?follow",
        b.base.replacen("http://", "ws://", 1)
    );
    let (_, mut conn) = awc::Client::default()
        .ws(url)
        .max_frame_size(1 << 20)
        .header("Coder-Session-Token", b.token.as_str())
        .connect()
        .await
        .expect("WebSocket to B");
    let mut delays = Vec::new();
    while let Some(frame) = conn.next().await {
        match frame.expect("frame") {
            Frame::Text(bytes) => {
                let received = now_micros();
                let v: Value = serde_json::from_slice(&bytes).unwrap();
                if v["log_source"] == "provisioner" {
                    let written = micros_of(v["created_at"].as_str().unwrap());
                    delays.push(Duration::from_micros((received - written).max(0) as u64));
                }
            }
            Frame::Close(_) => break,
            _ => {}
        }
    }
    delays.sort();
    println!(
        "   log line written on A to received on B: {} lines, median {}, p99 {} (goal p99 < 100 ms)",
        delays.len(),
        ms(percentile(&delays, 0.5)),
        ms(percentile(&delays, 0.99))
    );
}

async fn cancel_across(a: &Api, b: &Api, server_a: &Server) {
    let start = json!([{"run": "echo $$ > \"$KILN_WORKSPACE_DIR/pid\"; sleep 60"}]);
    let t = a.template("cross-cancel", manifest(start, json!([]))).await;
    let mut took = Vec::new();
    for i in 0..5 {
        let (ws, build) = a.workspace(&t, &format!("cancel{i}")).await;
        let pid_file = server_a.dir.path().join("workspaces").join(&ws).join("pid");
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
            {
                break pid;
            }
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        };
        let asked = Instant::now();
        let (status, v) = b
            .send(
                "PATCH",
                &format!("/api/v2/workspacebuilds/{build}/cancel"),
                Some(b"{}".to_vec()),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        while Path::new(&format!("/proc/{pid}")).exists() {
            actix_web::rt::time::sleep(Duration::from_millis(2)).await;
        }
        took.push(asked.elapsed());
        a.wait_build(&build, Duration::from_millis(5)).await;
    }
    took.sort();
    println!(
        "   cancel sent to B to the process gone on A: median {}, worst {} over {} builds (goal < 1 s)",
        ms(percentile(&took, 0.5)),
        ms(*took.last().unwrap()),
        took.len()
    );
}
