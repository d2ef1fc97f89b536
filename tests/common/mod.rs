//! Test helpers: a real `kiln server` process on a free port with a fresh data dir, and a small
//! HTTP client over awc.
//!
//! The store: SQLite (`<data-dir>/kiln.db`) unless `KILN_TEST_STORE=postgres`, which gives every
//! server a PostgreSQL database (`--database`) of its own on a throwaway cluster (`pg`), the same
//! one again for a restart on the same data dir.
#![allow(dead_code)]

pub mod builds;
pub mod cli;
pub mod daemon;
pub mod follow;
pub mod lifecycle;
pub mod mount;
pub mod pg;
pub mod schema;
pub mod world;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Whether the servers keep their data in PostgreSQL (`KILN_TEST_STORE=postgres`) rather than
/// in SQLite.
pub fn postgres_mode() -> bool {
    std::env::var("KILN_TEST_STORE").is_ok_and(|v| v == "postgres")
}

/// PostgreSQL mode: the database of each data dir (a server restarted on a data dir finds its
/// data again; servers sharing a database have one entry each).
static DATABASES: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());

fn database_for(dir: &Path) -> String {
    DATABASES
        .lock()
        .unwrap()
        .entry(dir.to_path_buf())
        .or_insert_with(pg::fresh_database)
        .clone()
}

pub struct TestServer {
    child: Child,
    pub addr: String,
    pub dir: PathBuf,
    /// PostgreSQL mode: the `--database` connection string.
    pub database: Option<String>,
    _tmp: Option<tempfile::TempDir>,
    log: Arc<Mutex<String>>,
}

impl TestServer {
    /// A server on a fresh temporary data dir.
    pub fn start() -> TestServer {
        Self::start_with_args(&[])
    }

    pub fn start_with_args(args: &[&str]) -> TestServer {
        Self::start_with_env(args, &[])
    }

    /// A server on a fresh temporary data dir, with environment variables set for it.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = Self::spawn_in_env(&dir, args, env).ready();
        s._tmp = Some(tmp);
        s
    }

    /// A second server on the database of `other` (PostgreSQL mode only), with a data dir of its
    /// own, as on another machine.
    pub fn start_sharing(other: &TestServer, args: &[&str]) -> TestServer {
        let Some(database) = &other.database else {
            panic!(
                "TestServer::start_sharing needs KILN_TEST_STORE=postgres: with SQLite two \
                 servers cannot share a database (one kiln per data folder); skip the test \
                 unless common::postgres_mode()"
            )
        };
        let tmp = tempfile::tempdir().unwrap();
        DATABASES
            .lock()
            .unwrap()
            .insert(tmp.path().to_path_buf(), database.clone());
        let mut s = Self::start_in(tmp.path(), args);
        s._tmp = Some(tmp);
        s
    }

    /// Two servers started at the same moment on one new, empty database (PostgreSQL mode only),
    /// each with a data dir of its own: both migrate it at once.
    pub fn start_two_at_once(args: &[&str]) -> (TestServer, TestServer) {
        assert!(
            postgres_mode(),
            "TestServer::start_two_at_once needs KILN_TEST_STORE=postgres"
        );
        let database = pg::fresh_database();
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        for d in &dirs {
            DATABASES
                .lock()
                .unwrap()
                .insert(d.path().to_path_buf(), database.clone());
        }
        let [one, two] = dirs;
        let (a, b) = (
            Self::spawn_in(one.path(), args),
            Self::spawn_in(two.path(), args),
        );
        let (mut a, mut b) = (a.ready(), b.ready());
        a._tmp = Some(one);
        b._tmp = Some(two);
        (a, b)
    }

    /// A server on `dir` (kept by the caller, e.g. across a restart; in PostgreSQL mode the
    /// same dir means the same database).
    pub fn start_in(dir: &Path, args: &[&str]) -> TestServer {
        Self::spawn_in(dir, args).ready()
    }

    /// A server process on `dir`, started but not yet waited for (`Starting::ready`).
    pub fn spawn_in(dir: &Path, args: &[&str]) -> Starting {
        Self::spawn_in_env(dir, args, &[])
    }

    fn spawn_in_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Starting {
        let database = postgres_mode().then(|| database_for(dir));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.arg("server");
        // A test may choose the address (a restart on the same port); port 0 otherwise.
        if !args.contains(&"--address") {
            cmd.args(["--address", "127.0.0.1:0"]);
        }
        cmd.arg("--data-dir").arg(dir).env_remove("KILN_DATABASE");
        if let Some(db) = &database {
            cmd.args(["--database", db]);
        }
        // Killed with this thread (the test's), should the test binary die without its drops.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kiln");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        let reader = std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let addr = line[i + "listening on http://".len()..].trim().to_string();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Starting {
            child,
            rx,
            dir: dir.to_path_buf(),
            database,
            log,
            reader,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client with no token.
    pub fn anon(&self) -> Client {
        Client {
            base: self.url(""),
            token: None,
        }
    }

    pub fn client(&self, token: &str) -> Client {
        Client {
            base: self.url(""),
            token: Some(token.to_string()),
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }

    /// The SQLite file (SQLite mode only).
    pub fn db_path(&self) -> PathBuf {
        assert!(
            self.database.is_none(),
            "db_path: this server keeps its data in PostgreSQL (KILN_TEST_STORE=postgres), not \
             in kiln.db; see pg_database()"
        );
        self.dir.join("kiln.db")
    }

    /// The PostgreSQL database's name (PostgreSQL mode only), for `pg::psql` and `pg::dump`.
    pub fn pg_database(&self) -> &str {
        let db = self
            .database
            .as_deref()
            .expect("pg_database: this server keeps its data in SQLite (kiln.db)");
        pg::database_name(db)
    }

    /// The arguments that name this server's store (for a kiln started by hand on its data):
    /// `--database <conn>` in PostgreSQL mode, none with SQLite.
    pub fn store_args(&self) -> Vec<String> {
        match &self.database {
            Some(db) => vec!["--database".into(), db.clone()],
            None => vec![],
        }
    }

    /// Creates the first user (owner) and returns a client with its session token.
    pub async fn owner(&self) -> Client {
        let r = self
            .anon()
            .post(
                "/api/v2/users/first",
                serde_json::json!({"email": "owner@example.com", "username": "owner", "password": "owner-password"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        self.login("owner@example.com", "owner-password").await
    }

    pub async fn login(&self, email: &str, password: &str) -> Client {
        let r = self
            .anon()
            .post(
                "/api/v2/users/login",
                serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        self.client(r.json()["session_token"].as_str().unwrap())
    }

    /// Creates a user with `roles` (as the owner) and returns a client signed in as it.
    pub async fn user(&self, owner: &Client, username: &str, roles: &[&str]) -> Client {
        let orgs = owner.get("/api/v2/organizations").await.json();
        let org_id = orgs[0]["id"].as_str().unwrap().to_string();
        let email = format!("{username}@example.com");
        let r = owner
            .post(
                "/api/v2/users",
                serde_json::json!({"email": email, "username": username, "password": "member-password", "organization_ids": [org_id]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        if !roles.is_empty() {
            let r = owner
                .put(
                    &format!("/api/v2/users/{username}/roles"),
                    serde_json::json!({"roles": roles}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
        self.login(&email, "member-password").await
    }
}

/// A server process that was started and has not yet said where it listens.
pub struct Starting {
    child: Child,
    rx: std::sync::mpsc::Receiver<String>,
    dir: PathBuf,
    database: Option<String>,
    log: Arc<Mutex<String>>,
    /// The thread reading the process's stderr into `log`.
    reader: std::thread::JoinHandle<()>,
}

impl Starting {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL, wherever the start-up is; returns what it logged.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.reader.join();
        self.log.lock().unwrap().clone()
    }

    /// Waits for a process that does not start to exit (within 20 s): its status and its
    /// whole log.
    pub fn exit(mut self) -> (std::process::ExitStatus, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let _ = self.reader.join();
                return (status, self.log.lock().unwrap().clone());
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("kiln did not exit: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the server listens.
    pub fn ready(self) -> TestServer {
        let addr = self
            .rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("kiln did not start: {}", self.log.lock().unwrap()));
        TestServer {
            child: self.child,
            addr,
            dir: self.dir,
            database: self.database,
            _tmp: None,
            log: self.log,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Asserts an error body: status, message and (when given) detail.
    pub fn assert_error(&self, status: u16, message: &str, detail: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.text());
        let v = self.json();
        assert_eq!(v["message"], message, "{}", self.text());
        if let Some(d) = detail {
            assert_eq!(v["detail"], d, "{}", self.text());
        }
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/json; charset=utf-8")
        );
    }
}

#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub token: Option<String>,
}

impl Client {
    pub fn token(&self) -> &str {
        self.token.as_deref().unwrap()
    }

    pub fn request(&self, method: &str, path: &str) -> awc::ClientRequest {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish();
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.insert_header(("Coder-Session-Token", t.as_str()));
        }
        req
    }

    pub async fn send(&self, req: awc::ClientRequest, body: Option<Vec<u8>>) -> Resp {
        let mut res = match body {
            Some(b) => req.send_body(b).await,
            None => req.send().await,
        }
        .expect("request failed");
        let body = res.body().limit(64 << 20).await.expect("body").to_vec();
        Resp {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.request("GET", path), None).await
    }

    pub async fn method_json(&self, method: &str, path: &str, body: Value) -> Resp {
        let req = self
            .request(method, path)
            .insert_header(("Content-Type", "application/json"));
        self.send(req, Some(serde_json::to_vec(&body).unwrap()))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.method_json("POST", path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.method_json("PUT", path, body).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.method_json("PATCH", path, body).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
        let req = self
            .request("POST", path)
            .insert_header(("Content-Type", content_type));
        self.send(req, Some(body)).await
    }
}

/// A tar archive holding `files` (path, content) at its root.
pub fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

pub const TERMINAL: [&str; 3] = ["succeeded", "failed", "canceled"];

impl Client {
    /// GETs `path` until `pointer` (a JSON pointer) holds a terminal job status; returns the body.
    pub async fn wait_for(&self, path: &str, pointer: &str) -> Value {
        for _ in 0..600 {
            let v = self.get(path).await.json();
            if TERMINAL.contains(&v.pointer(pointer).and_then(Value::as_str).unwrap_or("")) {
                return v;
            }
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{path} did not finish: {}", self.get(path).await.text());
    }

    /// Uploads a template archive and imports it as a new version; returns the version once
    /// its import job has ended.
    pub async fn import_version(&self, archive: Vec<u8>, template_id: Option<&str>) -> Value {
        let r = self
            .post_raw("/api/v2/files", "application/x-tar", archive)
            .await;
        assert!(r.status == 201 || r.status == 200, "{}", r.text());
        let file_id = r.json()["hash"].as_str().unwrap().to_string();
        let mut body = serde_json::json!({"storage_method": "file", "file_id": file_id, "provisioner": "echo"});
        if let Some(t) = template_id {
            body["template_id"] = t.into();
        }
        let r = self
            .post("/api/v2/organizations/coder/templateversions", body)
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        self.wait_for(&format!("/api/v2/templateversions/{id}"), "/job/status")
            .await
    }

    /// Imports `manifest` (a kiln.json value) and makes a template of it named `name`.
    pub async fn template(&self, name: &str, manifest: Value) -> Value {
        let v = self
            .import_version(tar_of(&[("kiln.json", &manifest.to_string())]), None)
            .await;
        assert_eq!(v["job"]["status"], "succeeded", "{v}");
        let r = self
            .post(
                "/api/v2/organizations/coder/templates",
                serde_json::json!({"name": name, "template_version_id": v["id"]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    }

    /// Creates a workspace of `template_id` for the caller; returns the Workspace.
    pub async fn workspace(&self, template_id: &str, name: &str, params: Value) -> Value {
        let r = self
            .post(
                "/api/v2/users/me/workspaces",
                serde_json::json!({"template_id": template_id, "name": name, "rich_parameter_values": params}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    }

    /// Waits for a build to end; returns it.
    pub async fn wait_build(&self, build_id: &str) -> Value {
        self.wait_for(
            &format!("/api/v2/workspacebuilds/{build_id}"),
            "/job/status",
        )
        .await
    }
}
