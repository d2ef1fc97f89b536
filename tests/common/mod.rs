//! Test helpers shared by kiln's test binaries:
//! - `app::TestApp`: kiln in-process on a real port with a fresh data dir (`tests/api`);
//! - `server::TestServer`: kiln as a real `kiln server` process (`tests/process`);
//! - `Kiln`: what a test does with either (its URL, clients, the first user and more users);
//! - `Client`/`Resp`: a small HTTP client over awc;
//! - `fixtures`: manifests, templates, workspaces, builds, every body checked against the
//!   swagger (the one place for them);
//! - `follow`: a job's logs, stored and followed in each style; `schema`: Coder's swagger;
//! - `pg`: the throwaway PostgreSQL cluster; `world`: rows made through the store traits;
//! - `cli`, `daemon`, `mount`: the `kiln` client, provisioner daemons and tmpfs mounts of the
//!   process tests.
//!
//! The store: SQLite (`<data-dir>/kiln.db`) unless `KILN_TEST_STORE=postgres`, which gives every
//! server a PostgreSQL database (`--database`) of its own on a throwaway cluster (`pg`), the same
//! one again for a server started again on the same data dir.
#![allow(dead_code)]

pub mod app;
pub mod cli;
pub mod daemon;
pub mod fixtures;
pub mod follow;
pub mod mount;
pub mod pg;
pub mod schema;
pub mod server;
pub mod world;

#[allow(unused_imports)]
pub use app::TestApp;
#[allow(unused_imports)]
pub use server::{Starting, TestServer};

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Whether the servers keep their data in PostgreSQL (`KILN_TEST_STORE=postgres`) rather than
/// in SQLite.
pub fn postgres_mode() -> bool {
    std::env::var("KILN_TEST_STORE").is_ok_and(|v| v == "postgres")
}

/// Tests of servers sharing one database run with `KILN_TEST_STORE=postgres` (two servers
/// cannot share an SQLite file): with SQLite they say they were skipped, and pass.
pub fn two_servers_skipped() -> bool {
    if !postgres_mode() {
        eprintln!("skipped: two servers share a database with KILN_TEST_STORE=postgres");
        return true;
    }
    false
}

/// PostgreSQL mode: the database of each data dir (a server started again on a data dir finds
/// its data again; servers sharing a database have one entry each).
static DATABASES: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());

fn database_for(dir: &Path) -> String {
    DATABASES
        .lock()
        .unwrap()
        .entry(dir.to_path_buf())
        .or_insert_with(pg::fresh_database)
        .clone()
}

/// Makes `dir`'s server use `database` (servers sharing one database).
fn register_database(dir: &Path, database: &str) {
    DATABASES
        .lock()
        .unwrap()
        .insert(dir.to_path_buf(), database.to_string());
}

/// A kiln server a test reaches over HTTP, in-process (`TestApp`) or a process (`TestServer`).
#[allow(async_fn_in_trait)]
pub trait Kiln {
    /// `host:port` of its plain HTTP listener.
    fn address(&self) -> &str;

    /// Its data dir.
    fn dir(&self) -> &Path;

    /// PostgreSQL mode: its `--database` connection string.
    fn database(&self) -> Option<&str>;

    /// The SQLite file (SQLite mode only).
    fn db_path(&self) -> PathBuf {
        assert!(
            self.database().is_none(),
            "db_path: this server keeps its data in PostgreSQL (KILN_TEST_STORE=postgres), not \
             in kiln.db; see pg_database()"
        );
        self.dir().join("kiln.db")
    }

    /// The PostgreSQL database's name (PostgreSQL mode only), for `pg::psql` and `pg::dump`.
    fn pg_database(&self) -> &str {
        let db = self
            .database()
            .expect("pg_database: this server keeps its data in SQLite (kiln.db)");
        pg::database_name(db)
    }

    /// The arguments that name its store (for a kiln started by hand on its data):
    /// `--database <conn>` in PostgreSQL mode, none with SQLite.
    fn store_args(&self) -> Vec<String> {
        match self.database() {
            Some(db) => vec!["--database".into(), db.to_string()],
            None => vec![],
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address(), path)
    }

    /// A client with no token.
    fn anon(&self) -> Client {
        Client {
            base: self.url(""),
            token: None,
        }
    }

    fn client(&self, token: &str) -> Client {
        Client {
            base: self.url(""),
            token: Some(token.to_string()),
        }
    }

    /// Creates the first user (owner) and returns a client with its session token.
    async fn owner(&self) -> Client {
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

    async fn login(&self, email: &str, password: &str) -> Client {
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
    async fn user(&self, owner: &Client, username: &str, roles: &[&str]) -> Client {
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

    /// Waits for a build to end; returns it.
    pub async fn wait_build(&self, build_id: &str) -> Value {
        self.wait_for(
            &format!("/api/v2/workspacebuilds/{build_id}"),
            "/job/status",
        )
        .await
    }
}
