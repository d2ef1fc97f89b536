//! The status page over real HTTP: the embedded files, `GET /api/v2/kiln/overview` and the live
//! `GET /api/v2/kiln/events`, with rows written straight into the server's database.

mod common;
mod status_rows;

use common::{Client, TestServer};
use futures_util::StreamExt;
use serde_json::Value;
use status_rows::{JobFacts, Rows, now_micros};
use std::collections::BTreeSet;
use std::time::Duration;

#[actix_web::test]
async fn serves_the_page_and_every_module_it_imports() {
    let s = TestServer::start_with_args(&["--workers", "0"]);
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
    let r = anon.post("/", serde_json::json!({})).await;
    assert_eq!(r.status, 404);
}

#[actix_web::test]
async fn overview_and_events_need_a_session() {
    let s = TestServer::start_with_args(&["--workers", "0"]);
    for path in ["/api/v2/kiln/overview", "/api/v2/kiln/events"] {
        let r = s.anon().get(path).await;
        assert_eq!(r.status, 401, "{path}");
    }
    let r = s.anon().get("/api/v2/kiln/nothing-here").await;
    assert_eq!(r.status, 404);
}

fn assert_empty_overview(v: &Value, workers: u64) {
    assert!(v["version"].as_str().unwrap().starts_with('v'), "{v}");
    assert!(v["started_at"].as_str().unwrap().ends_with('Z'), "{v}");
    assert!(v["uptime_seconds"].as_i64().unwrap() >= 0);
    assert_eq!(
        v["workers"],
        serde_json::json!({"busy": 0, "total": workers})
    );
    assert_eq!(v["queue"], serde_json::json!([]));
    assert_eq!(v["builds"], serde_json::json!([]));
}

#[actix_web::test]
async fn overview_shape_with_empty_tables() {
    let s = TestServer::start_with_args(&["--workers", "2"]);
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
    let r = owner.get("/api/v2/kiln/overview?status=sleeping").await;
    r.assert_error(400, "Query parameters have invalid values.", None);
    assert_eq!(r.json()["validations"][0]["field"], "status");
    let r = owner.get("/api/v2/kiln/overview?status=").await;
    assert_eq!(r.status, 200);
}

/// The owner's and a member's workspaces, with builds in several states and a busy worker.
struct Scene {
    owner_dev_first: String,
    owner_dev_running: String,
    owner_web_failed: String,
    owner_api_pending: String,
    member_pending: String,
    import_job: String,
}

async fn scene(s: &TestServer) -> (Client, Client, Rows, Scene) {
    let owner = s.owner().await;
    let member = s.user(&owner, "mary", &[]).await;
    let mut rows = Rows::open(&s.db_path());
    let owner_id = rows.user_id("owner");
    let mary = rows.user_id("mary");
    let t = now_micros() - 60_000_000;
    let template = rows.template("docker", &owner_id, JobFacts::succeeded(t, t + 1_000_000));
    let dev = rows.workspace(&owner_id, &template, "dev");
    let web = rows.workspace(&owner_id, &template, "web");
    let api = rows.workspace(&owner_id, &template, "api");
    let mine = rows.workspace(&mary, &template, "mine");
    let first = JobFacts::succeeded(t + 2_000_000, t + 4_500_000);
    let owner_dev_first = rows.build(&dev, &template, "start", &owner_id, first).id;
    let owner_web_failed = rows
        .build(
            &web,
            &template,
            "start",
            &owner_id,
            JobFacts::failed(t, t + 100_000),
        )
        .id;
    let owner_dev_running = rows
        .build(&dev, &template, "stop", &owner_id, JobFacts::running(t))
        .id;
    // Canceled before it ran: not in the queue.
    rows.build(
        &web,
        &template,
        "start",
        &owner_id,
        JobFacts::canceled_while_pending(t + 200_000),
    );
    let import_job = rows.job(
        "template_version_import",
        r#"{"template_version_id":"x"}"#,
        &owner_id,
        JobFacts::pending(),
    );
    let member_pending = rows
        .build(&mine, &template, "start", &mary, JobFacts::pending())
        .id;
    let owner_api_pending = rows
        .build(&api, &template, "start", &owner_id, JobFacts::pending())
        .id;
    let scene = Scene {
        owner_dev_first,
        owner_dev_running,
        owner_web_failed,
        owner_api_pending,
        member_pending,
        import_job,
    };
    (owner, member, rows, scene)
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn overview_lists_the_queue_and_builds_and_members_see_their_own() {
    let s = TestServer::start_with_args(&["--workers", "0"]);
    let (owner, member, _rows, sc) = scene(&s).await;

    let v = owner.get("/api/v2/kiln/overview").await.json();
    assert_eq!(v["workers"], serde_json::json!({"busy": 1, "total": 0}));
    let queue = &v["queue"];
    let positions: Vec<i64> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2, 3], "{queue}");
    assert_eq!(queue[0]["job_id"], sc.import_job.as_str());
    assert_eq!(queue[0]["type"], "template_version_import");
    assert!(queue[0].get("workspace_name").is_none(), "{queue}");
    assert_eq!(queue[1]["type"], "workspace_build");
    assert_eq!(queue[1]["workspace_name"], "mine");
    assert_eq!(queue[1]["build_number"], 1);
    assert_eq!(queue[2]["workspace_name"], "api");
    assert!(queue[2]["created_at"].as_str().unwrap().ends_with('Z'));

    let builds = &v["builds"];
    assert_eq!(builds.as_array().unwrap().len(), 6, "{builds}");
    assert_eq!(builds[0]["id"], sc.owner_api_pending.as_str());
    assert_eq!(builds[1]["id"], sc.member_pending.as_str());
    assert_eq!(builds[1]["owner_name"], "mary");
    assert_eq!(builds[1]["initiator_name"], "mary");
    let dev_running = &builds[3];
    assert_eq!(dev_running["id"], sc.owner_dev_running.as_str());
    assert_eq!(dev_running["workspace_name"], "dev");
    assert_eq!(dev_running["build_number"], 2);
    assert_eq!(dev_running["transition"], "stop");
    assert_eq!(dev_running["status"], "stopping");
    assert!(dev_running["started_at"].is_string());
    assert!(dev_running.get("completed_at").is_none());
    assert!(dev_running.get("duration_ms").is_none());
    assert_eq!(builds[2]["status"], "canceled");
    let first = &builds[5];
    assert_eq!(first["id"], sc.owner_dev_first.as_str());
    assert_eq!(first["status"], "running");
    assert_eq!(first["duration_ms"], 2500);
    assert_eq!(first["owner_name"], "owner");
    assert_eq!(builds[4]["id"], sc.owner_web_failed.as_str());
    assert_eq!(builds[4]["status"], "failed");

    // The status filter keeps the order and uses the derived words.
    let failed = owner
        .get("/api/v2/kiln/overview?status=failed")
        .await
        .json();
    assert_eq!(ids(&failed["builds"], "id"), [sc.owner_web_failed.as_str()]);
    let pending = owner
        .get("/api/v2/kiln/overview?status=pending")
        .await
        .json();
    assert_eq!(
        ids(&pending["builds"], "id"),
        [sc.owner_api_pending.clone(), sc.member_pending.clone()]
    );
    assert_eq!(pending["queue"].as_array().unwrap().len(), 3);

    // A member sees the builds of their own workspaces, and queue positions among all jobs.
    let v = member.get("/api/v2/kiln/overview").await.json();
    assert_eq!(ids(&v["builds"], "id"), [sc.member_pending.as_str()]);
    assert_eq!(v["workers"]["busy"], 1);
    let queue = &v["queue"];
    assert_eq!(ids(queue, "job_id").len(), 2, "{queue}");
    assert_eq!(queue[0]["type"], "template_version_import");
    assert_eq!(queue[1]["workspace_name"], "mine");
    assert_eq!(queue[1]["position"], 2);
    let v = member
        .get("/api/v2/kiln/overview?status=running")
        .await
        .json();
    assert_eq!(v["builds"], serde_json::json!([]));
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

    /// The next event as (name, data), skipping comments; `None` if none comes `within`.
    async fn next(&mut self, within: Duration) -> Option<(String, String)> {
        let deadline = std::time::Instant::now() + within;
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
            let left = deadline.saturating_duration_since(std::time::Instant::now());
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
}

#[actix_web::test]
async fn events_push_the_overview_when_it_changes() {
    let s = TestServer::start_with_args(&["--workers", "0"]);
    let (owner, member, mut rows, sc) = scene(&s).await;
    let mut owner_events = Events::open(&owner, "/api/v2/kiln/events").await;
    let mut member_events = Events::open(&member, "/api/v2/kiln/events").await;

    let first = owner_events
        .next_overview(Duration::from_secs(3))
        .await
        .expect("a first overview at once");
    assert_eq!(first["builds"].as_array().unwrap().len(), 6);
    assert_eq!(first["queue"].as_array().unwrap().len(), 3);
    let member_first = member_events
        .next_overview(Duration::from_secs(3))
        .await
        .expect("a first overview for the member");
    assert_eq!(member_first["builds"].as_array().unwrap().len(), 1);

    // A worker takes the owner's pending build: pushed to the owner promptly.
    let api_job: String = rows
        .conn
        .query_row(
            "SELECT job_id FROM workspace_builds WHERE id = ?1",
            [&sc.owner_api_pending],
            |r| r.get(0),
        )
        .unwrap();
    let started = std::time::Instant::now();
    rows.start_job(&api_job);
    let next = owner_events
        .next_overview(Duration::from_secs(3))
        .await
        .expect("an overview after the change");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(next["workers"]["busy"], 2);
    assert_eq!(next["builds"][0]["status"], "starting");
    assert_eq!(next["queue"].as_array().unwrap().len(), 2);

    // The member's view changed too (busy workers, queue positions).
    let member_next = member_events
        .next_overview(Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(member_next["workers"]["busy"], 2);
    assert_eq!(member_next["queue"][1]["position"], 2);

    // A new build of the owner's shows nothing new to the member: no event for them.
    let owner_id = rows.user_id("owner");
    let template = status_rows::Template {
        id: rows
            .conn
            .query_row("SELECT id FROM templates", [], |r| r.get(0))
            .unwrap(),
        version_id: rows
            .conn
            .query_row("SELECT active_version_id FROM templates", [], |r| r.get(0))
            .unwrap(),
    };
    let web: String = rows
        .conn
        .query_row("SELECT id FROM workspaces WHERE name = 'web'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let quiet = rows.build(
        &web,
        &template,
        "stop",
        &owner_id,
        JobFacts::succeeded(1, 2),
    );
    let next = owner_events
        .next_overview(Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(next["builds"][0]["id"], quiet.id.as_str());
    assert_eq!(next["builds"][0]["status"], "stopped");
    assert!(
        member_events
            .next(Duration::from_millis(1200))
            .await
            .is_none(),
        "the member's overview did not change"
    );

    // Signing out ends the stream at the next change.
    let r = member
        .post("/api/v2/users/logout", serde_json::json!({}))
        .await;
    assert_eq!(r.status, 200);
    rows.start_job(&sc.import_job);
    let (name, _) = member_events
        .next(Duration::from_secs(3))
        .await
        .expect("signed-out event");
    assert_eq!(name, "signed-out");
    assert!(member_events.next(Duration::from_secs(2)).await.is_none());
}

#[actix_web::test]
async fn events_honour_the_status_filter() {
    let s = TestServer::start_with_args(&["--workers", "0"]);
    let (owner, _member, _rows, sc) = scene(&s).await;
    let mut events = Events::open(&owner, "/api/v2/kiln/events?status=failed").await;
    let v = events.next_overview(Duration::from_secs(3)).await.unwrap();
    assert_eq!(ids(&v["builds"], "id"), [sc.owner_web_failed.as_str()]);
    let r = owner.get("/api/v2/kiln/events?status=nope").await;
    assert_eq!(r.status, 400);
}
