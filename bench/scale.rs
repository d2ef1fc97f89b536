//! kiln at scale (`bash bench/run.sh --scale`, or `bench/scale.sh`): the same figures on an
//! empty database and on one filled through kiln's own store code (`fill.rs`: by default the
//! issue's year of data, 1,000,000 builds over 100,000 workspaces and 1,000 users, 10,000
//! pending jobs and 10,000,000 log lines; `--fill-fraction` for a quicker run), printed side
//! by side with their ratio and the goal (1.5x). It asserts nothing.
//!
//! Reads are timed one at a time on one keep-alive connection (`--samples` each): the cost of
//! one request, which is what data could make grow. POST to job started is timed with idle
//! workers once the queue has drained.

#[allow(dead_code)]
mod client;
mod fill;

use clap::Parser;
use client::{Api, percentile, sign_in, wait_ready};
use kiln::events::Hub;
use kiln::store::Store;
use kiln::store::postgres::PgStore;
use kiln::store::sqlite::SqliteStore;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The kiln binary to benchmark.
    #[arg(long, default_value = "target/release/kiln")]
    kiln: PathBuf,
    /// Fraction of the full data set to fill (1.0: a million builds).
    #[arg(long, default_value_t = 1.0)]
    fill_fraction: f64,
    /// Requests timed for each read figure.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Builds timed for POST to job started.
    #[arg(long, default_value_t = 100)]
    builds: usize,
    /// Run on this PostgreSQL database (`bench/run.sh --postgres --scale` starts a scratch
    /// cluster and passes it).
    #[arg(long)]
    database: Option<String>,
    /// Use this data folder (new or empty) and keep it afterwards.
    #[arg(long)]
    keep: Option<PathBuf>,
}

/// Builds of the measured workspace and other workspaces of the bench user, made through the
/// API before anything is measured. Each other workspace queues a build when the reads are
/// timed: more than the status page lists (100), so the overview lists as many queued jobs
/// on the empty database as on the filled one, and a full page of `owner:me`.
const SETUP_BUILDS: usize = 30;
const SETUP_WORKSPACES: usize = 101;

/// A kiln server process on a data folder.
struct Proc {
    child: Child,
    base: String,
}

impl Drop for Proc {
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

/// Starts `kiln server` on `dir` with `workers` and returns it with the time from exec to
/// the first 200 from `/healthz`.
async fn start(args: &Args, dir: &Path, workers: usize) -> (Proc, Duration) {
    let port = free_port();
    let mut cmd = Command::new(&args.kiln);
    cmd.arg("server");
    if let Some(db) = &args.database {
        cmd.args(["--database", db]);
    }
    cmd.args(["--address", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .args(["--workers", &workers.to_string()])
        .args(["--durability", "full"])
        // The figures are the API's, not its rate limits'.
        .arg("--dangerous-disable-rate-limits")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let t0 = Instant::now();
    let child = cmd.spawn().expect("start kiln");
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::default();
    loop {
        if let Ok(res) = client.get(format!("{base}/healthz")).send().await
            && res.status() == 200
        {
            break;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            panic!("kiln did not start");
        }
        actix_web::rt::time::sleep(Duration::from_micros(500)).await;
    }
    let up = t0.elapsed();
    wait_ready(&base).await;
    (Proc { child, base }, up)
}

/// The store of the data folder (or database), opened beside (or without) the server, on a
/// thread of its own (the PostgreSQL driver must not run on an async thread).
fn open_store(args: &Args, dir: &Path) -> Arc<dyn Store> {
    let database = args.database.clone();
    let path = dir.join("kiln.db");
    std::thread::spawn(move || -> Arc<dyn Store> {
        match database {
            Some(db) => Arc::new(PgStore::open(&db, Arc::new(Hub::new())).expect("the database")),
            None => Arc::new(
                SqliteStore::open(&path, kiln::store::Durability::Normal, Arc::new(Hub::new()))
                    .expect("the server's store"),
            ),
        }
    })
    .join()
    .unwrap()
}

/// One set of figures: (name, p50, p99) of each read, then startup and POST to started.
#[derive(Default)]
struct Figures {
    rows: Vec<(String, Duration, Duration)>,
}

impl Figures {
    fn push(&mut self, name: &str, sorted: &[Duration]) {
        self.rows.push((
            name.to_string(),
            percentile(sorted, 0.5),
            percentile(sorted, 0.99),
        ));
    }
}

async fn time_gets(api: &Api, path: &str, n: usize) -> Vec<Duration> {
    // Warm-up (connection, caches), as a client that keeps reading would be.
    for _ in 0..5 {
        let (status, v) = api.send("GET", path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (status, _) = api.send("GET", path, None).await;
        out.push(t.elapsed());
        assert_eq!(status, 200);
    }
    out.sort();
    out
}

struct Setup {
    api: Api,
    workspace: String,
    first_build: String,
    /// The bench user's other workspaces (a full page of them even when nothing else exists).
    others: Vec<String>,
}

/// The next transition for a workspace whose latest build was `latest`.
fn next_transition(latest: &serde_json::Value) -> &'static str {
    if latest["transition"] == "stop" {
        "start"
    } else {
        "stop"
    }
}

/// The measured data: the bench user, a template, and one workspace with a finished build.
async fn setup(args: &Args, dir: &Path) -> Setup {
    let (server, _) = start(args, dir, 3).await;
    let api = sign_in(&server.base).await;
    let manifest = json!({
        "resources": [
            {"name": "vm", "type": "kiln_instance", "daily_cost": 3,
             "agents": [{"name": "main", "apps": [{"slug": "web", "url": "http://localhost:8080"}]}]},
            {"name": "disk", "type": "kiln_disk", "transitions": ["start", "stop"], "daily_cost": 1}
        ],
        "steps": {"start": [], "stop": [], "delete": []}
    });
    let template = api.template("scale", manifest).await;
    let (workspace, first_build) = api.workspace(&template, "measured").await;
    let mut latest = api.wait_build(&first_build, Duration::from_millis(2)).await;
    // The "empty" database holds what the figures read, so that both sides read as much: a
    // page of builds in the measured workspace, a page of the user's workspaces, and more
    // builds than the overview lists.
    for _ in 1..SETUP_BUILDS {
        let (status, b) = api
            .post(
                &format!("/api/v2/workspaces/{workspace}/builds"),
                json!({"transition": next_transition(&latest)}),
            )
            .await;
        assert_eq!(status, 201, "{b}");
        latest = api
            .wait_build(b["id"].as_str().unwrap(), Duration::from_millis(2))
            .await;
    }
    let mut others = Vec::new();
    for i in 0..SETUP_WORKSPACES {
        let (w, b) = api.workspace(&template, &format!("page-{i}")).await;
        api.wait_build(&b, Duration::from_millis(2)).await;
        others.push(w);
    }
    Setup {
        api,
        workspace,
        first_build,
        others,
    }
}

/// `deep`: the offset of the deep page (within the filled workspace's builds).
async fn measure(args: &Args, dir: &Path, s: &Setup, deep: usize) -> Figures {
    let mut f = Figures::default();
    // Reads, with no worker: a build queued now stays pending behind the whole queue.
    let (server, up) = start(args, dir, 0).await;
    let api = s.api.on(&server.base);
    let ws = &s.workspace;
    let (status, pending) = api
        .post(
            &format!("/api/v2/workspaces/{ws}/builds"),
            json!({"transition": "stop"}),
        )
        .await;
    assert_eq!(status, 201, "{pending}");
    let pending = pending["id"].as_str().unwrap().to_string();
    // A queue longer than the overview lists on both sides: the other workspaces' builds
    // wait too (behind the fill's pending jobs, when there are any).
    let mut queued = Vec::new();
    for w in &s.others {
        let latest = api.get(&format!("/api/v2/workspaces/{w}")).await;
        let (status, b) = api
            .post(
                &format!("/api/v2/workspaces/{w}/builds"),
                json!({"transition": next_transition(&latest["latest_build"])}),
            )
            .await;
        assert_eq!(status, 201, "{b}");
        queued.push(b["id"].as_str().unwrap().to_string());
    }
    let b = api.get(&format!("/api/v2/workspacebuilds/{pending}")).await;
    println!(
        "   queued build #{}: queue position {} of {}",
        b["build_number"], b["job"]["queue_position"], b["job"]["queue_size"]
    );
    let n = args.samples;
    let reads: [(&str, String); 10] = [
        (
            "GET build (finished)",
            format!("/api/v2/workspacebuilds/{}", s.first_build),
        ),
        (
            "GET build (pending: queue_position)",
            format!("/api/v2/workspacebuilds/{pending}"),
        ),
        (
            "a workspace's builds, first page of 25",
            format!("/api/v2/workspaces/{ws}/builds?limit=25"),
        ),
        (
            "a workspace's builds, deep ?offset=",
            format!("/api/v2/workspaces/{ws}/builds?limit=25&offset={deep}"),
        ),
        (
            "a workspace's builds, ?offset=1000000000",
            format!("/api/v2/workspaces/{ws}/builds?limit=25&offset=1000000000"),
        ),
        ("GET workspace", format!("/api/v2/workspaces/{ws}")),
        (
            "GET /workspaces?q=owner:me, page of 25",
            "/api/v2/workspaces?q=owner:me&limit=25".to_string(),
        ),
        (
            "GET /workspaces (everyone's), page of 25",
            "/api/v2/workspaces?limit=25".to_string(),
        ),
        (
            "GET /workspaces?offset=1000000000",
            "/api/v2/workspaces?limit=25&offset=1000000000".to_string(),
        ),
        ("status page overview", "/api/v2/kiln/overview".to_string()),
    ];
    for (name, path) in &reads {
        let t = time_gets(&api, path, n).await;
        f.push(name, &t);
    }
    bad_input(&api, &s.first_build, ws, &mut f).await;
    drop(server);
    // Writes, with idle workers: the queue drains first (the pending build is its last).
    let (server, _) = start(args, dir, 3).await;
    let api = s.api.on(&server.base);
    let t0 = Instant::now();
    let done = api.wait_build(&pending, Duration::from_millis(50)).await;
    for b in &queued {
        api.wait_build(b, Duration::from_millis(50)).await;
    }
    println!(
        "   queue drained in {:.1} s with 3 workers",
        t0.elapsed().as_secs_f64()
    );
    let mut tr = next_transition(&done);
    let mut started = Vec::with_capacity(args.builds);
    for _ in 0..args.builds {
        let sent_at = now_micros();
        let (status, b) = api
            .post(
                &format!("/api/v2/workspaces/{ws}/builds"),
                json!({"transition": tr}),
            )
            .await;
        assert_eq!(status, 201, "{b}");
        let done = api
            .wait_build(b["id"].as_str().unwrap(), Duration::from_millis(1))
            .await;
        let at = micros_of(done["job"]["started_at"].as_str().unwrap());
        started.push(Duration::from_micros((at - sent_at).max(0) as u64));
        tr = if tr == "stop" { "start" } else { "stop" };
    }
    started.sort();
    f.push("POST build to job started", &started);
    f.rows.push(("start-up to first 200".into(), up, up));
    drop(server);
    f
}

/// Bad input at scale: every build of the measured workspace at once (`?limit=0`: grows with
/// its builds by nature), and a build read while 1,000 requests for pages of workspaces are
/// in flight (the cost of a crowd on everyone else).
async fn bad_input(api: &Api, build: &str, ws: &str, f: &mut Figures) {
    let all = format!("/api/v2/workspaces/{ws}/builds?limit=0");
    let t = time_gets(api, &all, 10).await;
    let (_, v) = api.send("GET", &all, None).await;
    let n = v.as_array().map_or(0, Vec::len);
    f.push(&format!("?limit=0: all {n} builds (grows)"), &t);
    let build_path = format!("/api/v2/workspacebuilds/{build}");
    let alone = time_gets(api, &build_path, 200).await;
    f.push("GET build, alone (for the row below)", &alone);
    let crowd = futures_util::future::join_all((0..1000).map(|_| async {
        let t = Instant::now();
        let (status, _) = api.send("GET", "/api/v2/workspaces?limit=25", None).await;
        (status, t.elapsed())
    }));
    let reads = async {
        // The crowd's requests are sent first; then build reads, one at a time, meanwhile.
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        time_gets(api, &build_path, 200).await
    };
    let (answers, during) = futures_util::join!(crowd, reads);
    let refused = answers.iter().filter(|(s, _)| *s != 200).count();
    let mut waits: Vec<_> = answers.iter().map(|(_, d)| *d).collect();
    waits.sort();
    println!(
        "   1,000 concurrent workspace pages: {} refused, slowest answered in {}",
        refused,
        ms(*waits.last().unwrap())
    );
    f.push("GET build, during 1,000 concurrent pages", &during);
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn micros_of(rfc3339: &str) -> i64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 time");
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The fill's starting point, read from the store.
fn base_of(store: &Arc<dyn Store>, workspace: &str) -> fill::Base {
    let ws = store
        .workspace(workspace)
        .unwrap()
        .expect("the measured workspace");
    let t = store
        .template(&ws.template_id)
        .unwrap()
        .expect("its template");
    let v = store
        .template_version(&t.active_version_id)
        .unwrap()
        .expect("its version");
    fill::Base {
        organization_id: ws.organization_id.clone(),
        template_id: t.id.clone(),
        version_id: v.id.clone(),
        file_id: v.file_id.clone(),
        owner_id: ws.owner_id.clone(),
        focus_workspace: ws.id.clone(),
    }
}

/// The crowd of `bad_input` needs a descriptor per connection, here and in the servers
/// started from here.
fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

fn main() {
    raise_fd_limit();
    let args = Args::parse();
    println!("kiln at scale: {}", machine());
    let scratch = tempfile::Builder::new()
        .prefix("kiln-scale")
        .tempdir()
        .unwrap();
    let dir = args
        .keep
        .clone()
        .unwrap_or_else(|| scratch.path().to_path_buf());
    actix_web::rt::System::new().block_on(async {
        println!("== empty database");
        let s = setup(&args, &dir).await;
        let sizes = fill::Sizes::scaled(args.fill_fraction);
        let deep = sizes.focus_builds * 4 / 5;
        println!("   (the deep page: ?offset={deep})");
        let empty = measure(&args, &dir, &s, deep).await;
        println!("== filling ({sizes:?})");
        let store = open_store(&args, &dir);
        let workspace = s.workspace.clone();
        // Store calls stay off the async thread (the PostgreSQL driver blocks).
        let filler = std::thread::spawn(move || {
            let base = base_of(&store, &workspace);
            fill::fill(store, &base, sizes)
        });
        while !filler.is_finished() {
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
        filler.join().expect("the fill");
        print_db_size(&args, &dir);
        println!("== filled database");
        let full = measure(&args, &dir, &s, deep).await;
        println!(
            "== side by side (one request at a time; p50 / p99; ratios of p50s and of p99s; goal <= 1.5x on the p99s)"
        );
        println!(
            "   {:<42} {:>20} {:>20} {:>13}",
            "figure", "empty", "filled", "p50  p99"
        );
        for (e, f) in empty.rows.iter().zip(&full.rows) {
            let ratio = f.2.as_secs_f64() / e.2.as_secs_f64().max(1e-9);
            let single = e.0.starts_with("start-up");
            let cell = |p50: Duration, p99: Duration| {
                if single {
                    ms(p50)
                } else {
                    format!("{} / {}", ms(p50), ms(p99))
                }
            };
            let goal = if e.0.contains("(grows)") {
                "(no goal: every row)"
            } else if single {
                if f.1 < Duration::from_millis(200) {
                    "met (< 200 ms)"
                } else {
                    "NOT met (< 200 ms)"
                }
            } else if ratio <= 1.5 {
                "met"
            } else {
                "NOT met"
            };
            let ratio50 = f.1.as_secs_f64() / e.1.as_secs_f64().max(1e-9);
            println!(
                "   {:<42} {:>20} {:>20} {:>5.2}x {:>5.2}x  {goal}",
                e.0,
                cell(e.1, e.2),
                cell(f.1, f.2),
                ratio50,
                ratio
            );
        }
    });
}

fn print_db_size(args: &Args, dir: &Path) {
    if args.database.is_some() {
        return;
    }
    let size: u64 = ["kiln.db", "kiln.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!("   database file: {:.0} MB", size as f64 / 1e6);
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}
