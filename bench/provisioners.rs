//! External provisioners' benchmark; `bench/provisioners.sh` builds and runs it. In one run, on
//! this machine, it prints (asserting nothing):
//!
//! 1. no-op builds end to end (POST to job succeeded, one build per workspace) and their queue
//!    wait (job created to job started), with 3 built-in workers, then with `--workers 0` and
//!    3 `kiln provisioner start` processes;
//! 2. the hand-off with idle workers (job created to job started, builds one at a time) in
//!    both setups;
//! 3. cancel to stopped on a remote job: from the cancel's answer until the step's process is
//!    gone.

#[allow(dead_code)]
mod client;

use clap::Parser;
use client::{Api, percentile, sign_in, start_server, wait_ready};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The kiln binary to benchmark.
    #[arg(long, default_value = "target/release/kiln")]
    kiln: PathBuf,
    /// Workspaces (and builds) of part 1, per setup.
    #[arg(long, default_value_t = 300)]
    builds: usize,
    /// POSTs in flight in part 1.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    /// Builds timed one at a time in part 2, per setup.
    #[arg(long, default_value_t = 50)]
    samples: usize,
    /// Cancels timed in part 3.
    #[arg(long, default_value_t = 5)]
    cancels: usize,
}

fn micros_of(rfc3339: &str) -> i64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn queue_wait(b: &Value) -> Duration {
    let created = micros_of(b["job"]["created_at"].as_str().unwrap());
    let started = micros_of(b["job"]["started_at"].as_str().unwrap());
    Duration::from_micros((started - created).max(0) as u64)
}

struct Daemons(Vec<(Child, tempfile::TempDir)>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for (c, _) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn start_daemons(args: &Args, api: &Api, n: usize) -> Daemons {
    let (status, k) = api
        .post(
            "/api/v2/organizations/coder/provisionerkeys",
            json!({"name": "bench"}),
        )
        .await;
    assert_eq!(status, 201, "{k}");
    let key = k["key"].as_str().unwrap().to_string();
    let mut out = Vec::new();
    for i in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(&args.kiln)
            .args(["provisioner", "start", "--url", &api.base, "--name"])
            .arg(format!("bench-{i}"))
            .arg("--data-dir")
            .arg(dir.path())
            .env("KILN_PROVISIONER_DAEMON_KEY", &key)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kiln provisioner");
        out.push((child, dir));
    }
    // Registered: listed as idle.
    for _ in 0..500 {
        let d = api
            .get("/api/v2/organizations/coder/provisionerdaemons")
            .await;
        let idle = d
            .as_array()
            .map_or(0, |a| a.iter().filter(|d| d["status"] == "idle").count());
        if idle == n {
            return Daemons(out);
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the daemons did not register");
}

/// Part 1 and 2 on one setup; returns builds/s.
async fn run_setup(args: &Args, api: &Api, label: &str) -> f64 {
    let t = api.template("noop", json!({})).await;
    let n = args.builds;
    let mut made = futures_util::stream::iter((0..n).map(|i| {
        let api = api.clone();
        let t = t.clone();
        async move { api.workspace(&t, &format!("w{i}")).await }
    }))
    .buffer_unordered(args.in_flight);
    let mut workspaces = Vec::with_capacity(n);
    while let Some((ws, first)) = made.next().await {
        workspaces.push((ws, first));
    }
    for (_, first) in &workspaces {
        api.wait_build(first, Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let mut posts = futures_util::stream::iter(workspaces.iter().map(|(ws, _)| {
        let api = api.clone();
        async move {
            let (status, b) = api
                .post(
                    &format!("/api/v2/workspaces/{ws}/builds"),
                    json!({"transition": "stop"}),
                )
                .await;
            assert_eq!(status, 201, "{b}");
            b["id"].as_str().unwrap().to_string()
        }
    }))
    .buffer_unordered(args.in_flight);
    let mut builds = Vec::with_capacity(n);
    while let Some(id) = posts.next().await {
        builds.push(id);
    }
    let mut waits = Vec::with_capacity(n);
    let mut ok = 0;
    for id in &builds {
        let b = api.wait_build(id, Duration::from_millis(2)).await;
        ok += usize::from(b["job"]["status"] == "succeeded");
        waits.push(queue_wait(&b));
    }
    let elapsed = started.elapsed();
    waits.sort();
    let rate = n as f64 / elapsed.as_secs_f64();
    println!(
        "   {label}: {n} no-op builds in {}: {rate:.0} builds/s ({ok}/{n} succeeded); queue wait median {}, p99 {}",
        ms(elapsed),
        ms(percentile(&waits, 0.5)),
        ms(percentile(&waits, 0.99))
    );
    // Part 2: one at a time, idle workers.
    let (ws, _) = &workspaces[0];
    let mut handoff = Vec::with_capacity(args.samples);
    for i in 0..args.samples {
        let transition = if i % 2 == 0 { "start" } else { "stop" };
        let (status, b) = api
            .post(
                &format!("/api/v2/workspaces/{ws}/builds"),
                json!({"transition": transition}),
            )
            .await;
        assert_eq!(status, 201, "{b}");
        let b = api
            .wait_build(b["id"].as_str().unwrap(), Duration::from_millis(1))
            .await;
        handoff.push(queue_wait(&b));
    }
    handoff.sort();
    println!(
        "   {label}: idle hand-off (job created to started), {} builds one at a time: median {}, p99 {} (goal median < 5 ms)",
        args.samples,
        ms(percentile(&handoff, 0.5)),
        ms(percentile(&handoff, 0.99))
    );
    rate
}

fn alive(marker: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

async fn cancels(args: &Args, api: &Api) {
    let mut took = Vec::new();
    for i in 0..args.cancels {
        let marker = format!("sleep 30.{}{i}", std::process::id());
        let t = api
            .template(
                &format!("sleepy{i}"),
                json!({"steps": {"start": [{"run": format!("echo started; {marker}")}], "stop": [], "delete": []}}),
            )
            .await;
        let (_, b) = api.workspace(&t, &format!("sleepy{i}")).await;
        while !alive(&marker) {
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        let (status, v) = api
            .send(
                "PATCH",
                &format!("/api/v2/workspacebuilds/{b}/cancel"),
                Some(b"{}".to_vec()),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let answered = Instant::now();
        while alive(&marker) {
            std::thread::sleep(Duration::from_millis(5));
        }
        took.push(answered.elapsed());
        api.wait_build(&b, Duration::from_millis(10)).await;
    }
    took.sort();
    println!(
        "   cancel to stopped on a remote job ({} cancels): median {}, max {} (goal < 1 s)",
        args.cancels,
        ms(percentile(&took, 0.5)),
        ms(*took.last().unwrap())
    );
}

fn main() {
    let args = Args::parse();
    actix_web::rt::System::new().block_on(async {
        println!(
            "== 1-2. no-op builds, {} workspaces, {} POSTs in flight; 3 built-in workers vs --workers 0 + 3 daemons",
            args.builds, args.in_flight
        );
        let built_in = {
            let server = start_server(&args.kiln, 3, "full", None);
            wait_ready(&server.base).await;
            let api = sign_in(&server.base).await;
            run_setup(&args, &api, "3 built-in workers").await
        };
        let server = start_server(&args.kiln, 0, "full", None);
        wait_ready(&server.base).await;
        let api = sign_in(&server.base).await;
        let _daemons = start_daemons(&args, &api, 3).await;
        let external = run_setup(&args, &api, "--workers 0 + 3 daemons").await;
        println!(
            "   external throughput is {:.0}% of built-in (goal >= 50%)",
            external / built_in * 100.0
        );
        println!("== 3. cancel to stopped, remote job");
        cancels(&args, &api).await;
    });
}
