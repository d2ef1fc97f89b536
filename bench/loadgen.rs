//! kiln's benchmark driver; `bench/run.sh` builds and runs it. It starts a release `kiln
//! server` on a scratch data dir and prints, asserting nothing:
//!
//! 1. `GET /api/v2/workspacebuilds/{id}` (2 resources, 1 agent, 2 apps) next to `GET /healthz`
//!    at 50 connections: requests/s, p99 and their ratio (wrk when installed, else a built-in
//!    closed-loop client);
//! 2. no-op builds end to end (POST to job succeeded, one build per workspace, many
//!    workspaces): builds/s, next to single-row committed SQLite transactions per second with
//!    the same durability, measured on the same disk in the same run;
//! 3. POST-to-job-started latency with idle workers (median, p99);
//! 4. a step writing 100,000 lines (`seq 100000`, under the 1 MiB cap): time until every line
//!    is stored and until a live WebSocket follower has received them all.

use awc::ws::Frame;
use clap::Parser;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
struct Args {
    /// The kiln binary to benchmark.
    #[arg(long, default_value = "target/release/kiln")]
    kiln: PathBuf,
    /// Seconds of load for each endpoint of part 1.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Workspaces (and builds) of part 2.
    #[arg(long, default_value_t = 600)]
    builds: usize,
    /// POSTs in flight in part 2.
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Builds timed one at a time in part 3.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Provisioner workers of the server.
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// The server's --durability (full or normal).
    #[arg(long, default_value = "full")]
    durability: String,
}

struct Server {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn micros_of(rfc3339: &str) -> i64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 time");
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A tar archive with `kiln.json` = `manifest`.
fn template_tar(manifest: &Value) -> Vec<u8> {
    let text = manifest.to_string();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "kiln.json", text.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

#[derive(Clone)]
struct Api {
    base: String,
    token: String,
    client: awc::Client,
}

impl Api {
    async fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .insert_header(("Coder-Session-Token", self.token.as_str()));
        if body.is_some() {
            req = req.insert_header(("Content-Type", "application/json"));
        }
        let mut res = match body {
            Some(b) => req.send_body(b).await,
            None => req.send().await,
        }
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        let bytes = res.body().limit(64 << 20).await.unwrap();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (res.status().as_u16(), v)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.send("GET", path, None).await;
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(body.to_string().into_bytes()))
            .await
    }

    /// Imports `manifest` and makes a template named `name` of it; returns its id.
    async fn template(&self, name: &str, manifest: Value) -> String {
        let mut res = self
            .client
            .post(format!("{}/api/v2/files", self.base))
            .insert_header(("Coder-Session-Token", self.token.as_str()))
            .insert_header(("Content-Type", "application/x-tar"))
            .send_body(template_tar(&manifest))
            .await
            .unwrap();
        let file: Value = res.json().await.unwrap();
        let (_, v) = self
            .post(
                "/api/v2/organizations/coder/templateversions",
                json!({"storage_method": "file", "file_id": file["hash"], "provisioner": "echo"}),
            )
            .await;
        let version = v["id"].as_str().unwrap().to_string();
        loop {
            let v = self
                .get(&format!("/api/v2/templateversions/{version}"))
                .await;
            match v["job"]["status"].as_str().unwrap() {
                "succeeded" => break,
                "pending" | "running" => actix_web::rt::time::sleep(Duration::from_millis(5)).await,
                other => panic!("import {other}: {v}"),
            }
        }
        let (status, t) = self
            .post(
                "/api/v2/organizations/coder/templates",
                json!({"name": name, "template_version_id": version}),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        t["id"].as_str().unwrap().to_string()
    }

    /// Creates a workspace; returns (workspace id, first build id).
    async fn workspace(&self, template: &str, name: &str) -> (String, String) {
        let (status, w) = self
            .post(
                "/api/v2/users/me/workspaces",
                json!({"template_id": template, "name": name}),
            )
            .await;
        assert_eq!(status, 201, "{w}");
        (
            w["id"].as_str().unwrap().to_string(),
            w["latest_build"]["id"].as_str().unwrap().to_string(),
        )
    }

    async fn wait_build(&self, id: &str, every: Duration) -> Value {
        loop {
            let b = self.get(&format!("/api/v2/workspacebuilds/{id}")).await;
            if b["job"]["completed_at"].is_string() {
                return b;
            }
            actix_web::rt::time::sleep(every).await;
        }
    }
}

fn start_server(args: &Args) -> Server {
    let dir = tempfile::Builder::new()
        .prefix("kiln-bench")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    let port = free_port();
    let child = Command::new(&args.kiln)
        .arg("server")
        .args(["--address", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--workers", &args.workers.to_string()])
        .args(["--durability", &args.durability])
        // Request logging off: the figures are the API's, not the log's.
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", args.kiln.display()));
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir,
    }
}

async fn wait_ready(base: &str) {
    let client = awc::Client::default();
    for _ in 0..500 {
        if let Ok(res) = client.get(format!("{base}/healthz")).send().await
            && res.status() == 200
        {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("kiln did not start");
}

async fn sign_in(base: &str) -> Api {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .connector(awc::Connector::new().limit(0))
        .finish();
    let mut api = Api {
        base: base.to_string(),
        token: String::new(),
        client,
    };
    let body =
        json!({"email": "bench@example.com", "username": "bench", "password": "bench-password-1"});
    let (status, v) = api.post("/api/v2/users/first", body).await;
    assert_eq!(status, 201, "{v}");
    let (_, v) = api
        .post(
            "/api/v2/users/login",
            json!({"email": "bench@example.com", "password": "bench-password-1"}),
        )
        .await;
    api.token = v["session_token"].as_str().unwrap().to_string();
    api
}

/// (requests/s, p99) for `url` at `conns` connections for `seconds`.
struct Load {
    rps: f64,
    p99: Duration,
    tool: &'static str,
}

fn parse_wrk_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

fn wrk(url: &str, token: &str, conns: usize, seconds: u64) -> Option<Load> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{conns}"),
            &format!("-d{seconds}s"),
            "--latency",
        ])
        .args(["-H", &format!("Coder-Session-Token: {token}")])
        .arg(url)
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| parse_wrk_duration(v.trim()))?;
    if text.contains("Non-2xx") {
        eprintln!("wrk saw errors:\n{text}");
    }
    Some(Load {
        rps,
        p99,
        tool: "wrk -t2",
    })
}

/// The built-in closed-loop client: `conns` tasks, each sending its next request when the
/// previous one is answered.
async fn closed_loop(url: &str, token: &str, conns: usize, seconds: u64) -> Load {
    let client = awc::Client::builder()
        .connector(awc::Connector::new().limit(conns))
        .timeout(Duration::from_secs(30))
        .finish();
    let end = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (client, url, token) = (client.clone(), url.to_string(), token.to_string());
            actix_web::rt::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    let mut res = client
                        .get(&url)
                        .insert_header(("Coder-Session-Token", token.as_str()))
                        .send()
                        .await
                        .expect("request");
                    let _ = res.body().limit(16 << 20).await.expect("body");
                    assert_eq!(res.status(), 200);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    Load {
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p99: percentile(&all, 0.99),
        tool: "built-in client (wrk not installed)",
    }
}

async fn load(url: &str, token: &str, seconds: u64) -> Load {
    match wrk(url, token, 50, seconds) {
        Some(l) => l,
        None => closed_loop(url, token, 50, seconds).await,
    }
}

/// Two resources (one with an agent and two apps); steps as given.
fn manifest(start: Value, stop: Value) -> Value {
    json!({
        "resources": [
            {"name": "vm", "type": "kiln_instance", "daily_cost": 3,
             "metadata": [{"key": "size", "value": "large"}],
             "agents": [{"name": "main", "apps": [
                 {"slug": "web", "url": "http://localhost:8080/{{workspace.name}}"},
                 {"slug": "term", "command": "bash"}]}]},
            {"name": "disk", "type": "kiln_disk", "transitions": ["start", "stop"], "daily_cost": 1}
        ],
        "steps": {"start": start, "stop": stop, "delete": []}
    })
}

async fn part1(api: &Api, seconds: u64) {
    println!(
        "== 1. GET /api/v2/workspacebuilds/{{id}} vs GET /healthz, 50 connections, {seconds} s each"
    );
    let t = api.template("read", manifest(json!([]), json!([]))).await;
    let (_, build) = api.workspace(&t, "read").await;
    let b = api.wait_build(&build, Duration::from_millis(5)).await;
    let agents = &b["resources"][1]["agents"];
    println!(
        "   build: {} resources, {} agent, {} apps, {} bytes of JSON",
        b["resources"].as_array().unwrap().len(),
        agents.as_array().unwrap().len(),
        agents[0]["apps"].as_array().unwrap().len(),
        b.to_string().len()
    );
    let health = load(&format!("{}/healthz", api.base), &api.token, seconds).await;
    let get = load(
        &format!("{}/api/v2/workspacebuilds/{build}", api.base),
        &api.token,
        seconds,
    )
    .await;
    println!("   tool: {}", get.tool);
    println!(
        "   GET /healthz:                 {:>9.0} req/s  p99 {}",
        health.rps,
        ms(health.p99)
    );
    println!(
        "   GET /api/v2/workspacebuilds:  {:>9.0} req/s  p99 {}",
        get.rps,
        ms(get.p99)
    );
    println!(
        "   ratio build/healthz: {:.2} (goal >= 0.5)",
        get.rps / health.rps
    );
}

/// Waits until the server has no pending or running job (read through kiln's store).
async fn drained(store: &kiln::store::Store, every: Duration) {
    loop {
        let pending = store.pending_job_count().unwrap();
        let running = store.unfinished_jobs(None).unwrap().len();
        if pending == 0 && running == 0 {
            return;
        }
        actix_web::rt::time::sleep(every).await;
    }
}

async fn part2(api: &Api, server: &Server, args: &Args) {
    let n = args.builds;
    println!(
        "== 2. no-op builds end to end, {n} workspaces, {} POSTs in flight, --workers {} --durability {}",
        args.in_flight, args.workers, args.durability
    );
    let t = api.template("noop", json!({})).await;
    let store = kiln::store::Store::open(
        &server.dir.path().join("kiln.db"),
        kiln::store::Durability::Normal,
    )
    .expect("open the server's store to watch its queue");
    // The workspaces (each with its first build), made ahead and left idle.
    let mut workspaces = Vec::with_capacity(n);
    let mut made = futures_util::stream::iter((0..n).map(|i| {
        let api = api.clone();
        let t = t.clone();
        async move { api.workspace(&t, &format!("w{i}")).await.0 }
    }))
    .buffer_unordered(args.in_flight);
    while let Some(id) = made.next().await {
        workspaces.push(id);
    }
    drained(&store, Duration::from_millis(5)).await;

    let started = Instant::now();
    let mut posts = futures_util::stream::iter(workspaces.iter().map(|ws| {
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
    let posted = started.elapsed();
    drained(&store, Duration::from_millis(2)).await;
    let elapsed = started.elapsed();
    // Check through the API that every build succeeded (not timed).
    let mut ok = 0;
    for id in &builds {
        let b = api.get(&format!("/api/v2/workspacebuilds/{id}")).await;
        ok += usize::from(b["job"]["status"] == "succeeded");
    }
    println!(
        "   {n} builds POSTed in {}, all done in {}: {:.0} builds/s (goal >= 300); {ok}/{n} succeeded",
        ms(posted),
        ms(elapsed),
        n as f64 / elapsed.as_secs_f64()
    );

    // Raw single-row committed transactions, same durability, same disk, same connection setup.
    let durability = if args.durability == "normal" {
        kiln::store::Durability::Normal
    } else {
        kiln::store::Durability::Full
    };
    let scratch = tempfile::Builder::new()
        .prefix("kiln-commit-probe")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    let probe = kiln::store::Store::open(&scratch.path().join("probe.db"), durability).unwrap();
    let commits = 2000;
    let took = probe.commit_probe(commits).unwrap();
    let rate = commits as f64 / took.as_secs_f64();
    println!(
        "   raw SQLite: {rate:.0} single-row committed transactions/s (--durability {}); a no-op build costs about {:.1} commits' time",
        args.durability,
        rate / (n as f64 / elapsed.as_secs_f64())
    );
}

async fn part3(api: &Api, args: &Args) {
    let n = args.samples;
    println!("== 3. POST to job started, idle workers, {n} builds one at a time");
    let t = api.template("latency", json!({})).await;
    let (ws, first) = api.workspace(&t, "latency").await;
    api.wait_build(&first, Duration::from_millis(2)).await;
    let mut samples = Vec::with_capacity(n);
    let mut post_only = Vec::with_capacity(n);
    for i in 0..n {
        let transition = if i % 2 == 0 { "stop" } else { "start" };
        let sent = now_micros();
        let t0 = Instant::now();
        let (status, b) = api
            .post(
                &format!("/api/v2/workspaces/{ws}/builds"),
                json!({"transition": transition}),
            )
            .await;
        post_only.push(t0.elapsed());
        assert_eq!(status, 201, "{b}");
        let done = api
            .wait_build(b["id"].as_str().unwrap(), Duration::from_millis(1))
            .await;
        let started = micros_of(done["job"]["started_at"].as_str().unwrap());
        samples.push(Duration::from_micros((started - sent).max(0) as u64));
    }
    samples.sort();
    post_only.sort();
    println!(
        "   POST to job started: median {}, p99 {} (goal median <= 5 ms); the POST alone: median {}, p99 {}",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
        ms(percentile(&post_only, 0.5)),
        ms(percentile(&post_only, 0.99))
    );
}

async fn part4(api: &Api) {
    println!(
        "== 4. a step writing 100,000 lines (seq 100000: 488,895 bytes, under the 1 MiB cap), followed live over WebSocket"
    );
    let t = api
        .template("lines", manifest(json!([]), json!([{"run": "seq 100000"}])))
        .await;
    let (ws, first) = api.workspace(&t, "lines").await;
    api.wait_build(&first, Duration::from_millis(5)).await;
    let sent = now_micros();
    let t0 = Instant::now();
    let (status, b) = api
        .post(
            &format!("/api/v2/workspaces/{ws}/builds"),
            json!({"transition": "stop"}),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let url = format!(
        "{}/api/v2/workspacebuilds/{id}/logs?follow",
        api.base.replacen("http://", "ws://", 1)
    );
    let (_, mut conn) = awc::Client::default()
        .ws(url)
        .max_frame_size(1 << 20)
        .header("Coder-Session-Token", api.token.as_str())
        .connect()
        .await
        .expect("WebSocket");
    let (mut lines, mut last_line_at, mut expected_next) = (0usize, Duration::ZERO, 1u64);
    let mut in_order = true;
    while let Some(frame) = conn.next().await {
        match frame.expect("frame") {
            Frame::Text(bytes) => {
                let v: Value = serde_json::from_slice(&bytes).unwrap();
                if v["log_source"] == "provisioner" {
                    lines += 1;
                    in_order &= v["output"].as_str() == Some(expected_next.to_string().as_str());
                    expected_next += 1;
                    last_line_at = t0.elapsed();
                }
            }
            Frame::Close(_) => break,
            _ => {}
        }
    }
    let ended = t0.elapsed();
    let done = api.wait_build(&id, Duration::from_millis(5)).await;
    let completed = micros_of(done["job"]["completed_at"].as_str().unwrap());
    let started = micros_of(done["job"]["started_at"].as_str().unwrap());
    println!(
        "   job {}: started {}, all lines stored and job completed {} after the POST",
        done["job"]["status"].as_str().unwrap(),
        ms(Duration::from_micros((started - sent).max(0) as u64)),
        ms(Duration::from_micros((completed - sent).max(0) as u64))
    );
    println!(
        "   follower: {lines} lines ({}), last one {} after the POST, end of stream {} (goal <= 2 s)",
        if in_order {
            "all in order"
        } else {
            "NOT in order"
        },
        ms(last_line_at),
        ms(ended)
    );
}

fn machine() -> String {
    let mut cpu = String::new();
    let _ = std::fs::File::open("/proc/cpuinfo").and_then(|mut f| f.read_to_string(&mut cpu));
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

fn main() {
    let args = Args::parse();
    println!("kiln benchmark: {}", machine());
    actix_web::rt::System::new().block_on(async {
        let server = start_server(&args);
        wait_ready(&server.base).await;
        let api = sign_in(&server.base).await;
        part1(&api, args.seconds).await;
        part2(&api, &server, &args).await;
        part3(&api, &args).await;
        part4(&api).await;
    });
}
