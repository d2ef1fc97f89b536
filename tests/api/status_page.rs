//! The status page over real HTTP: the embedded files, `GET /api/v2/kiln/overview` and the live
//! `GET /api/v2/kiln/events`, over a scene of templates, workspaces and builds made through the
//! API and run by the server's one worker.

use crate::common::fixtures::{
    finished, get_build, micros, new_build, template, wait_job, workspace,
};
use crate::common::{Client, Kiln, TestApp, tar_of};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn serves_the_page_and_every_module_it_imports() {
    let s = TestApp::start_with_args(&["--workers", "0"]);
    let anon = s.anon();
    let r = anon.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    assert!(r.header("content-security-policy").is_some());
    let html = r.text();
    assert!(html.contains(r#"<script type="module" src="/static/app.js">"#));
    assert!(html.contains(r#"href="/static/style.css""#));

    // Follow the imports from app.js: every module the page needs is embedded.
    let mut todo = vec!["app.js".to_string()];
    let mut seen = BTreeSet::new();
    while let Some(file) = todo.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let r = anon.get(&format!("/static/{file}")).await;
        assert_eq!(r.status, 200, "{file}");
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("text/javascript; charset=utf-8"),
            "{file}"
        );
        for line in r.text().lines() {
            if let Some(rest) = line.split(" from './").nth(1) {
                todo.push(rest.split('\'').next().unwrap().to_string());
            }
        }
    }
    assert!(seen.len() >= 8, "{seen:?}");

    let r = anon.get("/static/style.css").await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/css; charset=utf-8")
    );
    let r = anon.get("/static/favicon.svg").await;
    assert_eq!(r.header("content-type").as_deref(), Some("image/svg+xml"));

    // Unchanged files answer 304 to a revalidation.
    let etag = r.header("etag").unwrap();
    let req = anon
        .request("GET", "/static/favicon.svg")
        .insert_header(("If-None-Match", etag.as_str()));
    let r = anon.send(req, None).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());

    for missing in [
        "/static/nope.js",
        "/static/index.html",
        "/static/..%2FCargo.toml",
    ] {
        let r = anon.get(missing).await;
        assert_eq!(r.status, 404, "{missing}");
    }
    let r = anon.post("/", json!({})).await;
    assert_eq!(r.status, 404);
}

#[actix_web::test]
async fn overview_and_events_need_a_session() {
    let s = TestApp::start_with_args(&["--workers", "0"]);
    for path in ["/api/v2/kiln/overview", "/api/v2/kiln/events"] {
        let r = s.anon().get(path).await;
        assert_eq!(r.status, 401, "{path}");
    }
    let r = s.anon().get("/api/v2/kiln/nothing-here").await;
    assert_eq!(r.status, 404);
}

#[actix_web::test]
async fn the_page_learns_who_is_there_in_one_request_that_never_fails() {
    let s = TestApp::start_with_args(&["--workers", "0"]);
    let r = s.anon().get("/api/v2/kiln/session").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"has_first_user": false, "user": null}));
    let owner = s.owner().await;
    let r = s.anon().get("/api/v2/kiln/session").await;
    assert_eq!(r.json(), json!({"has_first_user": true, "user": null}));
    // A bad or ended session reads as nobody signed in.
    let r = s
        .client("0123456789-abcdefghijklmnopqrstuv")
        .get("/api/v2/kiln/session")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["user"], Value::Null);
    let r = owner.get("/api/v2/kiln/session").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["has_first_user"], true);
    assert_eq!(v["user"], owner.get("/api/v2/users/me").await.json());
    crate::common::schema::assert_valid("codersdk.User", &v["user"]);
}

fn assert_empty_overview(v: &Value, workers: u64) {
    assert!(v["version"].as_str().unwrap().starts_with('v'), "{v}");
    assert!(v["started_at"].as_str().unwrap().ends_with('Z'), "{v}");
    assert!(v["uptime_seconds"].as_i64().unwrap() >= 0);
    assert_eq!(v["workers"], json!({"busy": 0, "total": workers}));
    assert_eq!(v["queue"], json!([]));
    assert_eq!(v["queue_size"], 0);
    assert_eq!(v["builds"], json!([]));
}

#[actix_web::test]
async fn overview_shape_with_empty_tables() {
    let s = TestApp::start_with_args(&["--workers", "2"]);
    let owner = s.owner().await;
    let member = s.user(&owner, "mary", &[]).await;
    for client in [&owner, &member] {
        let r = client.get("/api/v2/kiln/overview").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json; charset=utf-8")
        );
        assert_empty_overview(&r.json(), 2);
    }
    // The database's size, for those who manage templates only.
    let v = owner.get("/api/v2/kiln/overview").await.json();
    let bytes = v["database_bytes"].as_i64().unwrap_or_default();
    assert!(bytes > 4096, "a database with its schema: {v}");
    let v = member.get("/api/v2/kiln/overview").await.json();
    assert!(v.get("database_bytes").is_none(), "{v}");
    let r = owner.get("/api/v2/kiln/overview?status=sleeping").await;
    r.assert_error(400, "Query parameters have invalid values.", None);
    assert_eq!(r.json()["validations"][0]["field"], "status");
    let r = owner.get("/api/v2/kiln/overview?status=").await;
    assert_eq!(r.status, 200);
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn job_of(build: &Value) -> String {
    build["job"]["id"].as_str().unwrap().to_string()
}

async fn cancel(c: &Client, build_id: &str, expect_status: &str) {
    let r = c
        .patch(
            &format!("/api/v2/workspacebuilds/{build_id}/cancel?expect_status={expect_status}"),
            json!({}),
        )
        .await
        .expect(200, "codersdk.Response");
    assert_eq!(r, json!({"message": "Job has been marked as canceled..."}));
}

/// What the scene made through the API, on a server with one worker: builds that completed
/// (succeeded, failed), one that holds the worker (a 60 s stop), one canceled while pending, and
/// four pending jobs queued behind the busy worker.
struct Scene {
    owner: Client,
    member: Client,
    /// owner's `dev` #1 (start, a log step): succeeded, so its build status is `running`.
    dev_first: String,
    /// owner's `web` #1 (start, a `fail` step): failed.
    web_failed: String,
    /// owner's `dev` #2 (stop, a 60 s sleep): holds the only worker.
    dev_stopping: String,
    /// owner's `web` #2 (start): canceled while pending.
    web_canceled: String,
    /// owner's `later` #1 (start, a 60 s sleep): pending, first in the queue.
    later: String,
    /// A template version whose import is pending: second in the queue.
    import: Value,
    /// member's `mine` #1 (start): pending, third in the queue.
    mine: String,
    /// owner's `api` #1 (start): pending, fourth in the queue.
    api: String,
}

impl Scene {
    /// Every build, newest first.
    fn builds_newest_first(&self) -> Vec<String> {
        [
            &self.api,
            &self.mine,
            &self.later,
            &self.web_canceled,
            &self.dev_stopping,
            &self.web_failed,
            &self.dev_first,
        ]
        .map(String::clone)
        .to_vec()
    }

    fn import_job(&self) -> String {
        job_of(&self.import)
    }

    /// The job id of a build, read through the API.
    async fn job(&self, build_id: &str) -> String {
        job_of(&get_build(&self.owner, build_id).await)
    }
}

/// Builds the scene on a server started with `--workers 1`.
async fn scene(s: &TestApp) -> Scene {
    let owner = s.owner().await;
    let member = s.user(&owner, "mary", &[]).await;
    // Imported while the worker is idle. `app` starts at once and stops slowly.
    let app = template(
        &owner,
        "app",
        json!({"steps": {"start": [{"log": "up {{workspace.name}}"}], "stop": [{"sleep_ms": 60000}]}}),
    )
    .await;
    let failing = template(
        &owner,
        "failing",
        json!({"steps": {"start": [{"fail": "boom"}]}}),
    )
    .await;
    let slow = template(
        &owner,
        "slow",
        json!({"steps": {"start": [{"sleep_ms": 60000}]}}),
    )
    .await;

    // Builds that complete before the worker is taken.
    let (dev, dev_first) = workspace(&owner, &app, "dev", json!([])).await;
    let b = finished(&owner, &dev_first).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    assert_eq!(b["status"], "running", "{b}");
    let (web, web_failed) = workspace(&owner, &failing, "web", json!([])).await;
    let b = finished(&owner, &web_failed).await;
    assert_eq!(b["status"], "failed", "{b}");
    assert_eq!(b["job"]["error"], "boom");

    // The long stop takes the only worker.
    let dev_stopping = id_of(&new_build(&owner, &dev, "stop").await);
    let b = wait_job(&owner, &dev_stopping, "running").await;
    assert_eq!(b["status"], "stopping", "{b}");

    // Queued behind it, then canceled: it is `canceled` at once and leaves the queue.
    let pending = new_build(&owner, &web, "start").await;
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["job"]["queue_position"], 1, "{pending}");
    let web_canceled = id_of(&pending);
    cancel(&owner, &web_canceled, "pending").await;
    let b = get_build(&owner, &web_canceled).await;
    assert_eq!(b["status"], "canceled", "{b}");
    assert_eq!(b["job"]["queue_position"], 0, "{b}");
    assert!(b["job"].get("started_at").is_none(), "{b}");

    // Four pending jobs, in this order: a build, an import, the member's build, a build.
    let (_, later) = workspace(&owner, &slow, "later", json!([])).await;
    let r = owner
        .post_raw(
            "/api/v2/files",
            "application/x-tar",
            tar_of(&[("kiln.json", r#"{"steps": {}}"#)]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let import = owner
        .post(
            "/api/v2/organizations/coder/templateversions",
            json!({"storage_method": "file", "file_id": r.json()["hash"], "provisioner": "echo"}),
        )
        .await
        .expect(201, "codersdk.TemplateVersion");
    assert_eq!(import["job"]["status"], "pending", "{import}");
    assert_eq!(import["job"]["type"], "template_version_import");
    let (_, mine) = workspace(&member, &app, "mine", json!([])).await;
    let (_, api) = workspace(&owner, &app, "api", json!([])).await;

    let sc = Scene {
        owner,
        member,
        dev_first,
        web_failed,
        dev_stopping,
        web_canceled,
        later,
        import,
        mine,
        api,
    };
    // The API agrees: positions among all four pending jobs, the member's too.
    for (id, position) in [(&sc.later, 1), (&sc.mine, 3), (&sc.api, 4)] {
        let b = get_build(&sc.owner, id).await;
        assert_eq!(b["status"], "pending", "{b}");
        assert_eq!(b["job"]["queue_position"], position, "{b}");
        assert_eq!(b["job"]["queue_size"], 4, "{b}");
    }
    let v = sc
        .owner
        .get(&format!(
            "/api/v2/templateversions/{}",
            sc.import["id"].as_str().unwrap()
        ))
        .await
        .expect(200, "codersdk.TemplateVersion");
    assert_eq!(v["job"]["queue_position"], 2, "{v}");
    let b = get_build(&sc.member, &sc.mine).await;
    assert_eq!(b["job"]["queue_position"], 3, "{b}");
    sc
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_string())
        .collect()
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// An overview row shows the build as the API does: same names, numbers, status word and job
/// times; `started_at`, `completed_at` only once set, `duration_ms` only when both are.
fn assert_row_is_build(row: &Value, b: &Value) {
    let what = format!("row {row}\nbuild {b}");
    assert_eq!(row["id"], b["id"], "{what}");
    assert_eq!(row["workspace_id"], b["workspace_id"], "{what}");
    assert_eq!(row["workspace_name"], b["workspace_name"], "{what}");
    assert_eq!(row["owner_name"], b["workspace_owner_name"], "{what}");
    assert_eq!(row["initiator_name"], b["initiator_name"], "{what}");
    assert_eq!(row["build_number"], b["build_number"], "{what}");
    assert_eq!(row["transition"], b["transition"], "{what}");
    assert_eq!(row["status"], b["status"], "{what}");
    assert_eq!(row["created_at"], b["created_at"], "{what}");
    let job = &b["job"];
    assert_eq!(row.get("started_at"), job.get("started_at"), "{what}");
    assert_eq!(row.get("completed_at"), job.get("completed_at"), "{what}");
    let mut expected: BTreeSet<&str> = [
        "id",
        "workspace_id",
        "workspace_name",
        "owner_name",
        "build_number",
        "transition",
        "status",
        "initiator_name",
        "created_at",
    ]
    .into();
    for key in ["started_at", "completed_at"] {
        if job.get(key).is_some() {
            expected.insert(key);
        }
    }
    if let (Some(start), Some(end)) = (job.get("started_at"), job.get("completed_at")) {
        expected.insert("duration_ms");
        let ms = row["duration_ms"].as_i64().expect("duration_ms");
        assert!(ms >= 0, "{what}");
        assert_eq!(ms, (micros(end) - micros(start)) / 1000, "{what}");
    }
    assert_eq!(keys(row), expected, "{what}");
}

/// Every row matches its build as `c` reads it, and the rows are newest first.
async fn assert_rows_are_builds(c: &Client, rows: &Value) {
    let rows = rows.as_array().unwrap();
    for row in rows {
        assert_row_is_build(row, &get_build(c, row["id"].as_str().unwrap()).await);
    }
    let created: Vec<i64> = rows.iter().map(|r| micros(&r["created_at"])).collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {rows:?}"
    );
}

/// A queue entry of a workspace build, checked against the API's build.
async fn assert_queued_build(c: &Client, entry: &Value, build_id: &str, position: i64) {
    let b = get_build(c, build_id).await;
    let what = format!("entry {entry}\nbuild {b}");
    assert_eq!(entry["job_id"], b["job"]["id"], "{what}");
    assert_eq!(entry["type"], "workspace_build", "{what}");
    assert_eq!(entry["position"], position, "{what}");
    assert_eq!(entry["created_at"], b["job"]["created_at"], "{what}");
    assert_eq!(entry["workspace_name"], b["workspace_name"], "{what}");
    assert_eq!(entry["build_number"], b["build_number"], "{what}");
    let expected: BTreeSet<&str> = [
        "job_id",
        "type",
        "position",
        "created_at",
        "workspace_name",
        "build_number",
    ]
    .into();
    assert_eq!(keys(entry), expected, "{what}");
}

fn assert_queued_import(entry: &Value, version: &Value, position: i64) {
    let what = format!("entry {entry}\nversion {version}");
    assert_eq!(entry["job_id"], version["job"]["id"], "{what}");
    assert_eq!(entry["type"], "template_version_import", "{what}");
    assert_eq!(entry["position"], position, "{what}");
    assert_eq!(entry["created_at"], version["job"]["created_at"], "{what}");
    assert_eq!(entry["template_version_name"], version["name"], "{what}");
    let expected: BTreeSet<&str> = [
        "job_id",
        "type",
        "position",
        "created_at",
        "template_version_name",
    ]
    .into();
    assert_eq!(keys(entry), expected, "{what}");
}

fn positions(queue: &Value) -> Vec<i64> {
    queue
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["position"].as_i64().unwrap())
        .collect()
}

async fn overview(c: &Client, query: &str) -> Value {
    let r = c.get(&format!("/api/v2/kiln/overview{query}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The builds of an overview filtered by `status`, as ids.
async fn filtered(c: &Client, status: &str) -> Vec<String> {
    ids(
        &overview(c, &format!("?status={status}")).await["builds"],
        "id",
    )
}

#[actix_web::test]
async fn overview_lists_the_queue_and_builds() {
    let s = TestApp::start_with_args(&["--workers", "1"]);
    let sc = scene(&s).await;
    let owner = &sc.owner;
    let v = overview(owner, "").await;
    assert_eq!(v["workers"], json!({"busy": 1, "total": 1}));

    // Every pending job, oldest first, with its position.
    let queue = &v["queue"];
    assert_eq!(positions(queue), [1, 2, 3, 4], "{queue}");
    assert_eq!(v["queue_size"], 4);
    assert_queued_build(owner, &queue[0], &sc.later, 1).await;
    assert_queued_import(&queue[1], &sc.import, 2);
    assert_queued_build(owner, &queue[2], &sc.mine, 3).await;
    assert_queued_build(owner, &queue[3], &sc.api, 4).await;
    assert_eq!(queue[2]["workspace_name"], "mine");
    assert_eq!(queue[3]["workspace_name"], "api");
    let canceled_job = sc.job(&sc.web_canceled).await;
    assert!(
        !ids(queue, "job_id").contains(&canceled_job),
        "a canceled build is not queued: {queue}"
    );

    // Every build, newest first, as the API shows it.
    let builds = &v["builds"];
    assert_eq!(ids(builds, "id"), sc.builds_newest_first(), "{builds}");
    assert_rows_are_builds(owner, builds).await;
    let statuses: Vec<&str> = builds
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "pending", "pending", "pending", "canceled", "stopping", "failed", "running"
        ]
    );
    let stopping = &builds[4];
    assert_eq!(stopping["workspace_name"], "dev");
    assert_eq!(stopping["build_number"], 2);
    assert_eq!(stopping["transition"], "stop");
    assert!(stopping["started_at"].is_string(), "{stopping}");
    assert!(stopping.get("completed_at").is_none(), "{stopping}");
    assert!(stopping.get("duration_ms").is_none(), "{stopping}");
    let canceled = &builds[3];
    assert!(canceled.get("started_at").is_none(), "{canceled}");
    assert!(canceled["completed_at"].is_string(), "{canceled}");
    assert!(canceled.get("duration_ms").is_none(), "{canceled}");
    for done in [&builds[5], &builds[6]] {
        assert!(done["duration_ms"].as_i64().unwrap() >= 0, "{done}");
    }
    assert_eq!(builds[6]["owner_name"], "owner");
    assert_eq!(builds[1]["owner_name"], "mary");
    assert_eq!(builds[1]["initiator_name"], "mary");
    for pending in &builds.as_array().unwrap()[..3] {
        assert!(pending.get("started_at").is_none(), "{pending}");
    }
}

#[actix_web::test]
async fn the_status_filter_keeps_the_order_and_uses_the_derived_words() {
    let s = TestApp::start_with_args(&["--workers", "1"]);
    let sc = scene(&s).await;
    let owner = &sc.owner;
    assert_eq!(filtered(owner, "failed").await, [sc.web_failed.as_str()]);
    assert_eq!(
        filtered(owner, "pending").await,
        [sc.api.as_str(), sc.mine.as_str(), sc.later.as_str()]
    );
    // A succeeded start is `running`; the running stop is `stopping`.
    assert_eq!(filtered(owner, "running").await, [sc.dev_first.as_str()]);
    assert_eq!(
        filtered(owner, "stopping").await,
        [sc.dev_stopping.as_str()]
    );
    assert_eq!(
        filtered(owner, "canceled").await,
        [sc.web_canceled.as_str()]
    );
    for none in ["starting", "stopped", "canceling", "deleting", "deleted"] {
        assert_eq!(filtered(owner, none).await, Vec::<String>::new(), "{none}");
    }
    // The filter applies to the builds, not to the queue.
    let v = overview(owner, "?status=failed").await;
    assert_eq!(positions(&v["queue"]), [1, 2, 3, 4]);
    assert_eq!(v["workers"], json!({"busy": 1, "total": 1}));
    let r = owner.get("/api/v2/kiln/overview?status=succeeded").await;
    r.assert_error(400, "Query parameters have invalid values.", None);
    assert_eq!(r.json()["validations"][0]["field"], "status");
}

#[actix_web::test]
async fn members_see_their_own_builds_and_positions_among_all_jobs() {
    let s = TestApp::start_with_args(&["--workers", "1"]);
    let sc = scene(&s).await;
    let member = &sc.member;
    let v = overview(member, "").await;
    assert_eq!(ids(&v["builds"], "id"), [sc.mine.as_str()]);
    assert_rows_are_builds(member, &v["builds"]).await;
    assert_eq!(v["builds"][0]["owner_name"], "mary");
    assert_eq!(v["workers"], json!({"busy": 1, "total": 1}));
    // Their own build and the template import, at their places among all four pending jobs.
    let queue = &v["queue"];
    assert_eq!(
        ids(queue, "job_id"),
        [sc.import_job(), sc.job(&sc.mine).await],
        "{queue}"
    );
    assert_queued_import(&queue[0], &sc.import, 2);
    assert_queued_build(member, &queue[1], &sc.mine, 3).await;
    assert_eq!(filtered(member, "pending").await, [sc.mine.as_str()]);
    assert_eq!(filtered(member, "running").await, Vec::<String>::new());
    assert_eq!(filtered(member, "failed").await, Vec::<String>::new());
    // The owner's builds are not theirs to read, in the overview or the API.
    get_build(member, &sc.mine).await;
    member
        .get(&format!("/api/v2/workspacebuilds/{}", sc.api))
        .await
        .expect_error(404, crate::common::fixtures::NOT_FOUND, None);
}

#[actix_web::test]
async fn template_admins_see_every_build_in_the_overview() {
    let s = TestApp::start_with_args(&["--workers", "1"]);
    let sc = scene(&s).await;
    let tina = s.user(&sc.owner, "tina", &["template-admin"]).await;
    // The API lets a template admin read every workspace's builds...
    for id in sc.builds_newest_first() {
        get_build(&tina, &id).await;
    }
    // ...so the overview shows them all, and every queue entry, exactly as to the owner.
    let owners = overview(&sc.owner, "").await;
    let theirs = overview(&tina, "").await;
    assert_eq!(ids(&theirs["builds"], "id"), sc.builds_newest_first());
    assert_eq!(theirs["builds"], owners["builds"]);
    assert_eq!(theirs["queue"], owners["queue"]);
    assert_eq!(theirs["workers"], owners["workers"]);
    assert_eq!(
        overview(&tina, "?status=pending").await["builds"],
        overview(&sc.owner, "?status=pending").await["builds"]
    );

    // The events stream too, and a change in the member's workspace reaches them.
    let mut events = Events::open(&tina, "/api/v2/kiln/events").await;
    let first = events
        .next_overview(Duration::from_secs(3))
        .await
        .expect("a first overview at once");
    assert_eq!(first["builds"], owners["builds"]);
    assert_eq!(first["queue"], owners["queue"]);
    cancel(&sc.member, &sc.mine, "pending").await;
    let mine = sc.mine.clone();
    let next = events
        .overview_where(Duration::from_secs(3), |v| {
            v["builds"][1]["id"] == mine.as_str() && v["builds"][1]["status"] == "canceled"
        })
        .await;
    assert_eq!(positions(&next["queue"]), [1, 2, 3]);
}

type EventChunk = Result<actix_web::web::Bytes, awc::error::PayloadError>;

/// Reads Server-Sent Events from a streaming response.
struct Events {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = EventChunk>>>,
    buffer: String,
}

impl Events {
    async fn open(client: &Client, path: &str) -> Events {
        let response = client
            .request("GET", path)
            .insert_header(("Accept", "text/event-stream"))
            .send()
            .await
            .expect("events request");
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers().get("content-type").unwrap();
        assert_eq!(content_type.to_str().unwrap(), "text/event-stream");
        Events {
            body: Box::pin(response),
            buffer: String::new(),
        }
    }

    /// The next event as (name, data), skipping comments; `None` if none comes `within` or the
    /// stream ends.
    async fn next(&mut self, within: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if !name.is_empty() {
                    return Some((name, data));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = actix_web::rt::time::timeout(left, self.body.next())
                .await
                .ok()??;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.expect("event stream")));
        }
    }

    async fn next_overview(&mut self, within: Duration) -> Option<Value> {
        let (name, data) = self.next(within).await?;
        assert_eq!(name, "overview", "{data}");
        Some(serde_json::from_str(&data).unwrap())
    }

    /// Reads overviews until one satisfies `wanted` (the server may push states in between);
    /// panics when none does `within`.
    async fn overview_where(&mut self, within: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        let mut last = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_overview(left).await {
                Some(v) if wanted(&v) => return v,
                Some(v) => last = Some(v),
                None => panic!("no such overview within {within:?}; the last one: {last:?}"),
            }
        }
    }
}

#[actix_web::test]
async fn events_push_the_overview_when_it_changes() {
    let s = TestApp::start_with_args(&["--workers", "1"]);
    let sc = scene(&s).await;
    let (owner, member) = (&sc.owner, &sc.member);
    let mut owner_events = Events::open(owner, "/api/v2/kiln/events").await;
    let mut member_events = Events::open(member, "/api/v2/kiln/events").await;

    let first = owner_events
        .next_overview(Duration::from_secs(3))
        .await
        .expect("a first overview at once");
    let now = overview(owner, "").await;
    assert_eq!(first["builds"], now["builds"]);
    assert_eq!(first["queue"], now["queue"]);
    assert_eq!(first["workers"], json!({"busy": 1, "total": 1}));
    assert_eq!(ids(&first["builds"], "id"), sc.builds_newest_first());
    assert_eq!(positions(&first["queue"]), [1, 2, 3, 4]);
    let member_first = member_events
        .next_overview(Duration::from_secs(3))
        .await
        .expect("a first overview for the member");
    assert_eq!(ids(&member_first["builds"], "id"), [sc.mine.as_str()]);
    assert_eq!(positions(&member_first["queue"]), [2, 3]);

    // Canceling the running stop frees the worker, which takes the oldest pending job: the
    // owner's slow `later` build. Pushed to the owner promptly.
    let asked = Instant::now();
    cancel(owner, &sc.dev_stopping, "running").await;
    let later = sc.later.clone();
    let next = owner_events
        .overview_where(Duration::from_secs(3), |v| {
            v["builds"][2]["id"] == later.as_str() && v["builds"][2]["status"] == "starting"
        })
        .await;
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "pushed after {:?}",
        asked.elapsed()
    );
    assert_eq!(next["workers"], json!({"busy": 1, "total": 1}));
    assert_eq!(next["builds"][4]["id"], sc.dev_stopping.as_str());
    assert_eq!(next["builds"][4]["status"], "canceled");
    let queue = &next["queue"];
    assert_eq!(positions(queue), [1, 2, 3], "{queue}");
    assert_eq!(
        ids(queue, "job_id"),
        [
            sc.import_job(),
            sc.job(&sc.mine).await,
            sc.job(&sc.api).await
        ]
    );
    assert_rows_are_builds(owner, &next["builds"]).await;
    let b = get_build(owner, &sc.later).await;
    assert_eq!(b["job"]["status"], "running", "{b}");

    // The member's view changed too: their entries moved up the queue.
    let member_next = member_events
        .overview_where(Duration::from_secs(3), |v| {
            v["workers"]["busy"] == 1 && positions(&v["queue"]) == [1, 2]
        })
        .await;
    assert_eq!(ids(&member_next["builds"], "id"), [sc.mine.as_str()]);

    // A new build of the owner's shows nothing new to the member: no event for them.
    let web = get_build(owner, &sc.web_failed).await["workspace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let quiet = new_build(owner, &web, "stop").await;
    let quiet_id = id_of(&quiet);
    let next = owner_events
        .overview_where(Duration::from_secs(3), |v| {
            v["builds"][0]["id"] == quiet_id.as_str()
        })
        .await;
    assert_eq!(next["builds"][0]["status"], "pending");
    assert_eq!(next["builds"][0]["build_number"], 3);
    assert_eq!(positions(&next["queue"]), [1, 2, 3, 4]);
    assert_eq!(next["queue"][3]["job_id"], job_of(&quiet).as_str());
    assert!(
        member_events
            .next(Duration::from_millis(1200))
            .await
            .is_none(),
        "the member's overview did not change"
    );

    // Signing out ends the stream at the next change.
    let r = member.post("/api/v2/users/logout", json!({})).await;
    assert_eq!(r.status, 200);
    cancel(owner, &quiet_id, "pending").await;
    let (name, _) = member_events
        .next(Duration::from_secs(3))
        .await
        .expect("signed-out event");
    assert_eq!(name, "signed-out");
    assert!(member_events.next(Duration::from_secs(2)).await.is_none());
    // The owner's stream goes on.
    let next = owner_events
        .overview_where(Duration::from_secs(3), |v| {
            v["builds"][0]["status"] == "canceled"
        })
        .await;
    assert_eq!(positions(&next["queue"]), [1, 2, 3]);
}

#[actix_web::test]
async fn events_honour_the_status_filter() {
    let s = TestApp::start_with_args(&["--workers", "1"]);
    let sc = scene(&s).await;
    let mut events = Events::open(&sc.owner, "/api/v2/kiln/events?status=failed").await;
    let v = events.next_overview(Duration::from_secs(3)).await.unwrap();
    assert_eq!(ids(&v["builds"], "id"), [sc.web_failed.as_str()]);
    assert_eq!(positions(&v["queue"]), [1, 2, 3, 4]);
    let mut events = Events::open(&sc.owner, "/api/v2/kiln/events?status=pending").await;
    let v = events.next_overview(Duration::from_secs(3)).await.unwrap();
    assert_eq!(
        ids(&v["builds"], "id"),
        [sc.api.as_str(), sc.mine.as_str(), sc.later.as_str()]
    );
    let r = sc.owner.get("/api/v2/kiln/events?status=nope").await;
    r.assert_error(400, "Query parameters have invalid values.", None);
    assert_eq!(r.json()["validations"][0]["field"], "status");
}

/// A long queue is listed by its head (`QUEUE_SHOWN` = 100 entries) and counted whole.
#[actix_web::test]
async fn overview_lists_the_head_of_a_long_queue() {
    let s = TestApp::start_with_args(&["--workers", "1"]);
    let owner = s.owner().await;
    let slow = template(
        &owner,
        "slow",
        json!({"steps": {"start": [{"sleep_ms": 60000}]}}),
    )
    .await;
    // The first build keeps the only worker busy; the next 101 wait.
    let mut builds = Vec::new();
    for i in 0..102 {
        builds.push(
            workspace(&owner, &slow, &format!("w{i}"), json!([]))
                .await
                .1,
        );
    }
    let v = overview(&owner, "").await;
    assert_eq!(v["queue_size"], 101, "{v}");
    let queue = &v["queue"];
    assert_eq!(positions(queue), (1..=100).collect::<Vec<i64>>());
    assert_queued_build(&owner, &queue[0], &builds[1], 1).await;
    assert_queued_build(&owner, &queue[99], &builds[100], 100).await;
    let last = get_build(&owner, &builds[101]).await;
    assert_eq!(last["job"]["queue_position"], 101, "{last}");
    assert_eq!(last["job"]["queue_size"], 101, "{last}");
}
