//! The benchmark's HTTP side: the server process, an API client, and the load tools (wrk,
//! or a built-in closed-loop client when wrk is missing).

use awc::http::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    /// The server's Prometheus endpoint (`--prometheus-address`).
    pub metrics: String,
}

impl Server {
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
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

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A tar archive with `kiln.json` = `manifest`.
pub fn template_tar(manifest: &Value) -> Vec<u8> {
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
pub struct Api {
    pub base: String,
    pub token: String,
    client: awc::Client,
}

impl Api {
    pub async fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
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

    pub async fn get(&self, path: &str) -> Value {
        let (status, v) = self.send("GET", path, None).await;
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(body.to_string().into_bytes()))
            .await
    }

    /// A session by its token (a client of its own: one per thread).
    #[allow(dead_code)]
    pub fn with_token(base: &str, token: &str) -> Api {
        Api {
            base: base.to_string(),
            token: token.to_string(),
            client: awc::Client::builder()
                .timeout(Duration::from_secs(60))
                .connector(awc::Connector::new().limit(0))
                .finish(),
        }
    }

    /// The same session, on another server (a replica on the same database).
    pub fn on(&self, base: &str) -> Api {
        Api {
            base: base.to_string(),
            token: self.token.clone(),
            client: self.client.clone(),
        }
    }

    /// Imports `manifest` and makes a template named `name` of it; returns its id.
    pub async fn template(&self, name: &str, manifest: Value) -> String {
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
    pub async fn workspace(&self, template: &str, name: &str) -> (String, String) {
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

    pub async fn wait_build(&self, id: &str, every: Duration) -> Value {
        loop {
            let b = self.get(&format!("/api/v2/workspacebuilds/{id}")).await;
            if b["job"]["completed_at"].is_string() {
                return b;
            }
            actix_web::rt::time::sleep(every).await;
        }
    }
}

/// A kiln server on a scratch data dir (and on `database` when given), without rate limits:
/// the benchmarks measure the API, not how it refuses a client over its limit.
pub fn start_server(
    kiln: &Path,
    workers: usize,
    durability: &str,
    database: Option<&str>,
) -> Server {
    start_server_with(
        kiln,
        workers,
        durability,
        database,
        &["--dangerous-disable-rate-limits"],
    )
}

/// `start_server` with `extra` flags of the caller's (its rate limits, say).
pub fn start_server_with(
    kiln: &Path,
    workers: usize,
    durability: &str,
    database: Option<&str>,
    extra: &[&str],
) -> Server {
    let dir = tempfile::Builder::new()
        .prefix("kiln-bench")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    let port = free_port();
    let metrics_port = free_port();
    let mut cmd = Command::new(kiln);
    cmd.arg("server");
    if let Some(db) = database {
        cmd.args(["--database", db]);
    }
    let child = cmd
        .args(["--address", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--workers", &workers.to_string()])
        .args(["--durability", durability])
        .args(extra)
        // Request logging off: the figures are the API's, not the log's.
        .env("RUST_LOG", "warn")
        // For the store's count of writes and commits.
        .env(
            "KILN_PROMETHEUS_ADDRESS",
            format!("127.0.0.1:{metrics_port}"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", kiln.display()));
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir,
        metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
    }
}

/// `(writes, commits)` the server's store has made so far, from its metrics
/// (`kiln_store_writes_per_commit`: one sample a commit, the writes it carried).
pub async fn store_writes(server: &Server) -> (f64, f64) {
    let body = awc::Client::default()
        .get(&server.metrics)
        .send()
        .await
        .expect("the server's metrics")
        .body()
        .limit(1 << 24)
        .await
        .expect("the metrics body");
    let text = String::from_utf8_lossy(&body);
    let sum_of = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (
        sum_of("kiln_store_writes_per_commit_sum"),
        sum_of("kiln_store_writes_per_commit_count"),
    )
}

pub async fn wait_ready(base: &str) {
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

pub async fn sign_in(base: &str) -> Api {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        // Idle connections are dropped before the server's 5 s keep-alive closes them: a
        // request sent on a connection the server is closing at that moment gets no answer.
        .connector(
            awc::Connector::new()
                .limit(0)
                .conn_keep_alive(Duration::from_secs(3)),
        )
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
pub struct Load {
    pub rps: f64,
    pub p99: Duration,
    pub tool: &'static str,
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

pub async fn load(url: &str, token: &str, seconds: u64) -> Load {
    match wrk(url, token, 50, seconds) {
        Some(l) => l,
        None => closed_loop(url, token, 50, seconds).await,
    }
}
