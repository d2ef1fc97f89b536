//! kiln's benchmark driver; `bench/run.sh` builds and runs it. It starts a release `kiln
//! server` on a scratch data dir and prints, asserting nothing:
//!
//! 1. `GET /api/v2/workspacebuilds/{id}` (2 resources, 1 agent, 2 apps) and a page of 25
//!    such workspaces (`GET /api/v2/workspaces?limit=25`) next to `GET /healthz` (run before
//!    and after them) at 50 connections: requests/s, p99 and their ratios (wrk when installed,
//!    else a built-in closed-loop client);
//! 2. no-op builds end to end (POST to job succeeded, one build per workspace, many
//!    workspaces): builds/s, next to single-row committed SQLite transactions per second with
//!    the same durability, measured on the same disk in the same run;
//! 3. POST-to-job-started latency with idle workers (median, p99);
//! 4. a step writing 100,000 lines (`seq 100000`, under the 1 MiB cap): time until every line
//!    is stored and until a live WebSocket follower has received them all.

mod client;
mod cross;

use awc::ws::Frame;
use clap::Parser;
use client::{Api, Server, load, percentile, sign_in, start_server, store_writes, wait_ready};
use futures_util::StreamExt;
use kiln::events::Hub;
use kiln::store::Store;
use kiln::store::postgres::PgStore;
use kiln::store::sqlite::SqliteStore;
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
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
    /// The server's --durability (full or normal; SQLite only).
    #[arg(long, default_value = "full")]
    durability: String,
    /// Run the server on this PostgreSQL database (`bench/run.sh --postgres` starts a scratch
    /// cluster and passes it); adds the figures across two servers.
    #[arg(long)]
    database: Option<String>,
}

pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

pub fn micros_of(rfc3339: &str) -> i64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 time");
    (t.unix_timestamp_nanos() / 1000) as i64
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Two resources (one with an agent and two apps); steps as given.
pub fn manifest(start: Value, stop: Value) -> Value {
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
        "== 1. reads vs GET /healthz, 50 connections, {seconds} s each (/healthz before and after)"
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
    // A page of 25 workspaces, each with a finished build like the one above.
    for i in 1..25 {
        let (_, b) = api.workspace(&t, &format!("read-{i}")).await;
        api.wait_build(&b, Duration::from_millis(2)).await;
    }
    let list_path = "/api/v2/workspaces?limit=25";
    let health_url = format!("{}/healthz", api.base);
    let before = load(&health_url, &api.token, seconds).await;
    let get = load(
        &format!("{}/api/v2/workspacebuilds/{build}", api.base),
        &api.token,
        seconds,
    )
    .await;
    let list = load(&format!("{}{list_path}", api.base), &api.token, seconds).await;
    let after = load(&health_url, &api.token, seconds).await;
    let health = (before.rps + after.rps) / 2.0;
    println!("   tool: {}", get.tool);
    let row = |name: &str, l: &client::Load| {
        println!("   {name:<34} {:>9.0} req/s  p99 {}", l.rps, ms(l.p99));
    };
    row("GET /healthz (before)", &before);
    row("GET /api/v2/workspacebuilds/{id}", &get);
    row(&format!("GET {list_path}"), &list);
    row("GET /healthz (after)", &after);
    println!(
        "   ratio build/healthz: {:.2} (goal >= 0.9); workspace page/healthz: {:.2} (goal >= 0.5)",
        get.rps / health,
        list.rps / health
    );
}

/// Waits until the server has no pending or running job (read through kiln's store).
async fn drained(store: &Arc<dyn Store>, every: Duration) {
    loop {
        // Off the async thread: the PostgreSQL driver blocks on a runtime of its own.
        let s = store.clone();
        let (pending, running) = actix_web::web::block(move || {
            (s.pending_job_count().unwrap(), s.busy_job_count().unwrap())
        })
        .await
        .unwrap();
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
    let store = open_store(server, args);
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

    let (writes_before, commits_before) = store_writes(server).await;
    println!("   {n} workspaces ready and idle: POSTing a stop to each");
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
    let (writes_after, commits_after) = store_writes(server).await;
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
    let commits = 2000;
    let (what, took) = match &args.database {
        Some(db) => {
            let db = db.clone();
            let took = std::thread::spawn(move || {
                let probe =
                    PgStore::open(&db, Arc::new(Hub::new())).expect("the benchmark's database");
                probe.commit_probe(commits).unwrap()
            })
            .join()
            .unwrap();
            ("PostgreSQL", took)
        }
        None => {
            let durability = if args.durability == "normal" {
                kiln::store::Durability::Normal
            } else {
                kiln::store::Durability::Full
            };
            let scratch = tempfile::Builder::new()
                .prefix("kiln-commit-probe")
                .tempdir_in(std::env::temp_dir())
                .unwrap();
            let probe = SqliteStore::open(
                &scratch.path().join("probe.db"),
                durability,
                Arc::new(Hub::new()),
            )
            .unwrap();
            ("SQLite", probe.commit_probe(commits).unwrap())
        }
    };
    let rate = commits as f64 / took.as_secs_f64();
    let builds_per_s = n as f64 / elapsed.as_secs_f64();
    println!(
        "   store: {:.2} writes and {:.2} commits a build ({:.1} writes a commit)",
        (writes_after - writes_before) / n as f64,
        (commits_after - commits_before) / n as f64,
        (writes_after - writes_before) / (commits_after - commits_before).max(1.0)
    );
    println!(
        "   raw {what}: {rate:.0} single-row committed transactions/s; {builds_per_s:.0} builds/s next to it: a no-op build costs {:.2} commits' time (goal <= 1: builds/s >= the raw commit rate)",
        rate / builds_per_s
    );
}

/// The server's store, opened beside it to watch its queue (on a thread of its own: the
/// PostgreSQL driver blocks on a runtime of its own, which an async thread must not).
fn open_store(server: &Server, args: &Args) -> Arc<dyn Store> {
    let database = args.database.clone();
    let path = server.dir.path().join("kiln.db");
    std::thread::spawn(move || -> Arc<dyn Store> {
        match database {
            Some(db) => {
                Arc::new(PgStore::open(&db, Arc::new(Hub::new())).expect("the server's database"))
            }
            None => Arc::new(
                SqliteStore::open(&path, kiln::store::Durability::Normal, Arc::new(Hub::new()))
                    .expect("open the server's store to watch its queue"),
            ),
        }
    })
    .join()
    .unwrap()
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
        "   POST to job started: median {}, p99 {} (goal median <= 0.4 ms); the POST alone: median {}, p99 {}",
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
        let server = start_server(
            &args.kiln,
            args.workers,
            &args.durability,
            args.database.as_deref(),
        );
        wait_ready(&server.base).await;
        let api = sign_in(&server.base).await;
        part1(&api, args.seconds).await;
        part2(&api, &server, &args).await;
        part3(&api, &args).await;
        part4(&api).await;
        if let Some(db) = &args.database {
            cross::part5(&api, &server, &args.kiln, db).await;
        }
    });
}
