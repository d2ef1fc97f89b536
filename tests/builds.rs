//! The workspace builds API over real HTTP: reading builds, listing and paging them, the
//! authorization matrix, cancel, parameters, resources, state, and racing creates. Every JSON
//! body fetched is checked against Coder's swagger (tests/common/schema.rs).

mod common;
use common::schema::assert_valid;
use common::{Client, TestServer};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const NOT_FOUND: &str = "Resource not found or you do not have access to this resource";
const BUILD: &str = "codersdk.WorkspaceBuild";
const BUILDS: &str = "[]codersdk.WorkspaceBuild";

/// Two resources (sorted: `disk`, `vm`), one agent with two apps, two parameters.
fn manifest(start: Value, stop: Value) -> Value {
    json!({
        "parameters": [
            {"name": "region", "type": "string", "default_value": "eu", "mutable": true,
             "options": [{"name": "EU", "value": "eu"}, {"name": "US", "value": "us"}]},
            {"name": "size", "type": "number", "default_value": "2", "mutable": true}
        ],
        "resources": [
            {"name": "vm", "type": "kiln_instance", "daily_cost": 3,
             "metadata": [{"key": "region", "value": "{{param.region}}"}],
             "agents": [{"name": "main", "apps": [
                 {"slug": "web", "url": "http://localhost/{{workspace.name}}"},
                 {"slug": "term", "command": "bash"}]}]},
            {"name": "disk", "type": "kiln_disk", "transitions": ["start", "stop"], "daily_cost": 1}
        ],
        "steps": {"start": start, "stop": stop, "delete": []}
    })
}

fn quick() -> Value {
    manifest(
        json!([{"log": "hello {{param.region}}"}]),
        json!([{"log": "bye"}]),
    )
}

/// A template (checked) named `name` made by `c`.
async fn template(c: &Client, name: &str, manifest: Value) -> String {
    let t = c.template(name, manifest).await;
    assert_valid("codersdk.Template", &t);
    t["id"].as_str().unwrap().to_string()
}

/// A workspace (checked); returns (workspace id, first build id).
async fn workspace(c: &Client, template_id: &str, name: &str, params: Value) -> (String, String) {
    let w = c.workspace(template_id, name, params).await;
    assert_valid("codersdk.Workspace", &w);
    (
        w["id"].as_str().unwrap().to_string(),
        w["latest_build"]["id"].as_str().unwrap().to_string(),
    )
}

/// Waits for the build to end; returns it (checked).
async fn finished(c: &Client, build_id: &str) -> Value {
    let b = c.wait_build(build_id).await;
    assert_valid(BUILD, &b);
    b
}

async fn get_build(c: &Client, id: &str) -> Value {
    c.get(&format!("/api/v2/workspacebuilds/{id}"))
        .await
        .expect(200, BUILD)
}

async fn post_build(c: &Client, workspace_id: &str, body: Value) -> common::Resp {
    c.post(&format!("/api/v2/workspaces/{workspace_id}/builds"), body)
        .await
}

/// Queues a build and returns it (checked).
async fn new_build(c: &Client, workspace_id: &str, transition: &str) -> Value {
    post_build(c, workspace_id, json!({"transition": transition}))
        .await
        .expect(201, BUILD)
}

#[actix_web::test]
async fn a_build_by_id_and_by_number() {
    let s = TestServer::start();
    let owner = s.owner().await;
    let t = template(&owner, "full", quick()).await;
    let (ws, first) = workspace(
        &owner,
        &t,
        "dev",
        json!([{"name": "region", "value": "us"}]),
    )
    .await;
    let b = finished(&owner, &first).await;
    assert_eq!(b["status"], "running");
    assert_eq!(b["job"]["status"], "succeeded");
    assert_eq!(b["build_number"], 1);
    assert_eq!(b["transition"], "start");
    assert_eq!(b["workspace_id"], ws.as_str());
    assert_eq!(b["workspace_name"], "dev");
    assert_eq!(b["workspace_owner_name"], "owner");
    assert_eq!(b["initiator_name"], "owner");
    assert_eq!(b["reason"], "initiator");
    assert_eq!(b["daily_cost"], 4);
    assert!(
        b["template_version_name"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
    );
    assert_eq!(b["template_version_preset_id"], Value::Null);
    assert_eq!(b["max_deadline"], Value::Null);
    assert_eq!(b["matched_provisioners"]["count"], 0);
    assert_eq!(b["job"]["input"]["workspace_build_id"], first.as_str());
    assert_eq!(b["job"]["type"], "workspace_build");
    let names: Vec<_> = b["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("disk"), json!("vm")]);
    let vm = &b["resources"][1];
    assert_eq!(
        vm["metadata"],
        json!([{"key": "region", "value": "us", "sensitive": false}])
    );
    assert_eq!(vm["agents"].as_array().unwrap().len(), 1);
    assert_eq!(vm["agents"][0]["apps"].as_array().unwrap().len(), 2);
    assert_eq!(vm["agents"][0]["status"], "connecting");
    assert_eq!(vm["agents"][0]["lifecycle_state"], "created");

    // The same build by owner (me, name, id), workspace name and number.
    for user in ["me", "owner", b["workspace_owner_id"].as_str().unwrap()] {
        let v = owner
            .get(&format!("/api/v2/users/{user}/workspace/dev/builds/1"))
            .await
            .expect(200, BUILD);
        assert_eq!(v["id"], first.as_str());
    }
    // The workspace name is matched regardless of case, as Coder does.
    let v = owner
        .get("/api/v2/users/me/workspace/DEV/builds/1")
        .await
        .expect(200, BUILD);
    assert_eq!(v["id"], first.as_str());

    owner
        .get("/api/v2/users/me/workspace/dev/builds/7")
        .await
        .expect_error(404, "Workspace \"dev\" Build 7 does not exist.", None);
    owner
        .get("/api/v2/users/me/workspace/dev/builds/abc")
        .await
        .expect_error(
            400,
            "Failed to parse build number as integer.",
            Some("strconv.ParseInt: parsing \"abc\": invalid syntax"),
        );
    owner
        .get("/api/v2/users/me/workspace/dev/builds/2147483648")
        .await
        .expect_error(
            400,
            "Failed to parse build number as integer.",
            Some("strconv.ParseInt: parsing \"2147483648\": value out of range"),
        );
    owner
        .get("/api/v2/users/me/workspace/nope/builds/1")
        .await
        .expect_error(404, NOT_FOUND, None);
    owner
        .get("/api/v2/users/nobody/workspace/dev/builds/1")
        .await
        .expect_error(404, NOT_FOUND, None);

    // Bad and unknown ids, unknown methods.
    let r = owner.get("/api/v2/workspacebuilds/nope").await;
    let e = r.expect_error(400, "Invalid UUID \"nope\".", None);
    assert!(!e["detail"].as_str().unwrap().is_empty());
    let unknown = uuid::Uuid::new_v4();
    for path in ["", "/parameters", "/resources", "/logs", "/state"] {
        owner
            .get(&format!("/api/v2/workspacebuilds/{unknown}{path}"))
            .await
            .expect_error(404, NOT_FOUND, None);
    }
    owner
        .patch(
            &format!("/api/v2/workspacebuilds/{unknown}/cancel"),
            json!({}),
        )
        .await
        .expect_error(404, NOT_FOUND, None);
    let r = owner
        .send(
            owner.request("DELETE", &format!("/api/v2/workspacebuilds/{first}")),
            None,
        )
        .await;
    r.expect_error(404, NOT_FOUND, None);
    s.anon()
        .get(&format!("/api/v2/workspacebuilds/{first}"))
        .await
        .expect_error(
            401,
            "You are signed out or your session has expired. Please sign in again to continue.",
            None,
        );
}

#[actix_web::test]
async fn parameters_resources_and_their_errors() {
    let s = TestServer::start();
    let owner = s.owner().await;
    let start = json!([{"log": "starting"}, {"sleep_ms": 700}]);
    let t = template(&owner, "slow", manifest(start, json!([]))).await;
    let (_, first) = workspace(&owner, &t, "dev", json!([{"name": "size", "value": "5"}])).await;
    // Not completed yet.
    owner
        .get(&format!("/api/v2/workspacebuilds/{first}/resources"))
        .await
        .expect_error(400, "Job hasn't completed!", None);
    // Parameters are there from the start, in declared order, defaults resolved.
    let p = owner
        .get(&format!("/api/v2/workspacebuilds/{first}/parameters"))
        .await
        .expect(200, "[]codersdk.WorkspaceBuildParameter");
    assert_eq!(
        p,
        json!([{"name": "region", "value": "eu"}, {"name": "size", "value": "5"}])
    );
    finished(&owner, &first).await;
    let r = owner
        .get(&format!("/api/v2/workspacebuilds/{first}/resources"))
        .await
        .expect(200, "[]codersdk.WorkspaceResource");
    let names: Vec<_> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("disk"), json!("vm")]);
    assert_eq!(r[1]["agents"][0]["apps"][0]["url"], "http://localhost/dev");
}

#[actix_web::test]
async fn state_is_read_and_replaced_by_template_managers_only() {
    let s = TestServer::start();
    let owner = s.owner().await;
    let admin = s.user(&owner, "tadmin", &["template-admin"]).await;
    let member = s.user(&owner, "mia", &[]).await;
    let start =
        json!([{"run": "printf '{\"starts\": %s}' \"$KILN_BUILD_NUMBER\" > \"$KILN_STATE_FILE\""}]);
    let t = template(&owner, "stateful", manifest(start, json!([]))).await;
    let (ws, first) = workspace(&member, &t, "mine", json!([])).await;
    finished(&member, &first).await;
    let path = format!("/api/v2/workspacebuilds/{first}/state");
    for c in [&owner, &admin] {
        let r = c.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(r.text(), "{\"starts\": 1}");
    }
    member.get(&path).await.expect_error(404, NOT_FOUND, None);
    member
        .put(&path, json!({"state": "e30="}))
        .await
        .expect_error(404, NOT_FOUND, None);

    // Replace it (base64, as Go encodes []byte), then as an array of bytes, then empty it.
    let before = get_build(&owner, &first).await;
    let r = admin.put(&path, json!({"state": "eyJ4IjogMX0="})).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    let after = get_build(&owner, &first).await;
    assert_ne!(
        before["updated_at"], after["updated_at"],
        "the build was updated"
    );
    assert_eq!(owner.get(&path).await.text(), "{\"x\": 1}");
    let r = owner.put(&path, json!({"state": [123, 125]})).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(owner.get(&path).await.text(), "{}");
    // The next build starts from the pushed state and writes its own.
    let b = new_build(&member, &ws, "stop").await;
    finished(&member, b["id"].as_str().unwrap()).await;
    let stop_state = format!(
        "/api/v2/workspacebuilds/{}/state",
        b["id"].as_str().unwrap()
    );
    assert_eq!(owner.get(&stop_state).await.text(), "{}");
    let r = owner.put(&path, json!({})).await;
    assert_eq!(r.status, 204);
    let r = owner.get(&path).await;
    assert_eq!((r.status, r.body.len()), (200, 0));

    let r = owner
        .post_raw(&path, "application/json", b"{}".to_vec())
        .await;
    r.expect_error(404, NOT_FOUND, None);
    let r = owner
        .send(
            owner
                .request("PUT", &path)
                .insert_header(("Content-Type", "application/json")),
            Some(b"{nope".to_vec()),
        )
        .await;
    r.expect_error(400, "Request body must be valid JSON.", None);
    owner.put(&path, json!({"state": 5})).await.expect_error(
        400,
        "Request body must be valid JSON.",
        None,
    );
}

#[actix_web::test]
async fn who_may_read_what() {
    let s = TestServer::start();
    let owner = s.owner().await;
    let admin = s.user(&owner, "tadmin", &["template-admin"]).await;
    let alice = s.user(&owner, "alice", &[]).await;
    let bob = s.user(&owner, "bob", &[]).await;
    let t = template(&owner, "t", quick()).await;
    let (ws, first) = workspace(&alice, &t, "dev", json!([])).await;
    finished(&alice, &first).await;

    let reads = [
        format!("/api/v2/workspacebuilds/{first}"),
        "/api/v2/users/alice/workspace/dev/builds/1".to_string(),
        format!("/api/v2/workspaces/{ws}/builds"),
        format!("/api/v2/workspacebuilds/{first}/parameters"),
        format!("/api/v2/workspacebuilds/{first}/resources"),
        format!("/api/v2/workspacebuilds/{first}/logs"),
    ];
    let defs = [
        BUILD,
        BUILD,
        BUILDS,
        "[]codersdk.WorkspaceBuildParameter",
        "[]codersdk.WorkspaceResource",
        "[]codersdk.ProvisionerJobLog",
    ];
    for (path, def) in reads.iter().zip(defs) {
        for c in [&owner, &admin, &alice] {
            c.get(path).await.expect(200, def);
        }
        bob.get(path).await.expect_error(404, NOT_FOUND, None);
    }
    alice
        .get("/api/v2/users/me/workspace/dev/builds/1")
        .await
        .expect(200, BUILD);
    // bob has no workspace of that name.
    bob.get("/api/v2/users/me/workspace/dev/builds/1")
        .await
        .expect_error(404, NOT_FOUND, None);
    // State: template managers only.
    let state = format!("/api/v2/workspacebuilds/{first}/state");
    for c in [&owner, &admin] {
        assert_eq!(c.get(&state).await.status, 200);
    }
    for c in [&alice, &bob] {
        c.get(&state).await.expect_error(404, NOT_FOUND, None);
    }
    // bob cannot cancel what he cannot read; cancel of a completed build.
    let cancel = format!("/api/v2/workspacebuilds/{first}/cancel");
    bob.patch(&cancel, json!({}))
        .await
        .expect_error(404, NOT_FOUND, None);
    alice
        .patch(&cancel, json!({}))
        .await
        .expect_error(400, "Job has already completed!", None);
}

#[actix_web::test]
async fn builds_of_a_deleted_workspace_stay_readable() {
    let s = TestServer::start();
    let owner = s.owner().await;
    let member = s.user(&owner, "mia", &[]).await;
    let t = template(&owner, "t", quick()).await;
    let (ws, first) = workspace(&member, &t, "dev", json!([])).await;
    finished(&member, &first).await;
    let del = new_build(&member, &ws, "delete").await;
    let del_id = del["id"].as_str().unwrap().to_string();
    let d = finished(&member, &del_id).await;
    assert_eq!(d["status"], "deleted");
    assert_eq!(
        member.get(&format!("/api/v2/workspaces/{ws}")).await.status,
        410
    );
    for id in [&first, &del_id] {
        get_build(&member, id).await;
        get_build(&owner, id).await;
    }
    let list = member
        .get(&format!("/api/v2/workspaces/{ws}/builds"))
        .await
        .expect(200, BUILDS);
    assert_eq!(list.as_array().unwrap().len(), 2);
    // By name, Coder looks up live workspaces only.
    member
        .get("/api/v2/users/me/workspace/dev/builds/1")
        .await
        .expect_error(404, NOT_FOUND, None);
}

#[actix_web::test]
async fn listing_pages_and_filters() {
    let s = TestServer::start();
    let owner = s.owner().await;
    let t = template(&owner, "t", quick()).await;
    let (ws, first) = workspace(&owner, &t, "dev", json!([])).await;
    finished(&owner, &first).await;
    let mut ids = vec![first.clone()];
    for transition in ["stop", "start", "stop", "start"] {
        let b = new_build(&owner, &ws, transition).await;
        let id = b["id"].as_str().unwrap().to_string();
        finished(&owner, &id).await;
        ids.push(id);
    }
    let list = |q: &str| {
        let (owner, ws) = (owner.clone(), ws.clone());
        let q = q.to_string();
        async move {
            let v = owner
                .get(&format!("/api/v2/workspaces/{ws}/builds{q}"))
                .await
                .expect(200, BUILDS);
            v.as_array()
                .unwrap()
                .iter()
                .map(|b| b["build_number"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("").await, vec![5, 4, 3, 2, 1]);
    assert_eq!(list("?limit=0").await, vec![5, 4, 3, 2, 1]);
    assert_eq!(list("?limit=2").await, vec![5, 4]);
    assert_eq!(list("?limit=2&offset=2").await, vec![3, 2]);
    assert_eq!(list("?offset=4").await, vec![1]);
    assert_eq!(list("?offset=5").await, Vec::<i64>::new());
    assert_eq!(list("?offset=500").await, Vec::<i64>::new());
    assert_eq!(list("?limit=&offset=").await, vec![5, 4, 3, 2, 1]);
    // after_id: the builds newer than that one.
    assert_eq!(list(&format!("?after_id={}", ids[2])).await, vec![5, 4]);
    assert_eq!(
        list(&format!("?after_id={}&limit=1", ids[0])).await,
        vec![5]
    );
    assert_eq!(
        list(&format!("?after_id={}", ids[4])).await,
        Vec::<i64>::new()
    );
    // since: created strictly after.
    assert_eq!(
        list("?since=2000-01-01T00:00:00Z").await,
        vec![5, 4, 3, 2, 1]
    );
    assert_eq!(list("?since=2999-01-01T00:00:00Z").await, Vec::<i64>::new());
    let third = get_build(&owner, &ids[2]).await;
    let since = third["created_at"].as_str().unwrap();
    assert_eq!(list(&format!("?since={since}")).await, vec![5, 4]);
    let newest = get_build(&owner, &ids[4]).await;
    let since = newest["created_at"].as_str().unwrap();
    assert_eq!(list(&format!("?since={since}")).await, Vec::<i64>::new());

    // Errors.
    let base = format!("/api/v2/workspaces/{ws}/builds");
    let invalid = |q: &'static str, field: &'static str, detail: &'static str| {
        let (owner, base) = (owner.clone(), base.clone());
        async move {
            let e = owner.get(&format!("{base}{q}")).await.expect_error(
                400,
                "Query parameters have invalid values.",
                None,
            );
            assert_eq!(
                e["validations"],
                json!([{"field": field, "detail": detail}]),
                "{q}"
            );
        }
    };
    invalid(
        "?limit=-1",
        "limit",
        "Query param \"limit\" must be a valid 32-bit positive integer: value is negative",
    )
    .await;
    invalid(
        "?offset=-5",
        "offset",
        "Query param \"offset\" must be a valid 32-bit positive integer: value is negative",
    )
    .await;
    invalid("?limit=abc", "limit", "Query param \"limit\" must be a valid 32-bit positive integer: strconv.ParseInt: parsing \"abc\": invalid syntax").await;
    invalid("?limit=2147483648", "limit", "Query param \"limit\" must be a valid 32-bit positive integer: strconv.ParseInt: parsing \"2147483648\": value out of range").await;
    invalid(
        "?after_id=nope",
        "after_id",
        "Query param \"after_id\" must be a valid uuid",
    )
    .await;
    invalid("?limit=1&limit=2", "limit", "Query param \"limit\" provided more than once, found 2 times. Only provide 1 instance of this query param.").await;
    let e = owner
        .get(&format!("{base}?limit=-1&offset=x"))
        .await
        .expect_error(400, "Query parameters have invalid values.", None);
    assert_eq!(e["validations"].as_array().unwrap().len(), 2);
    let unknown = uuid::Uuid::new_v4();
    owner
        .get(&format!("{base}?after_id={unknown}"))
        .await
        .expect_error(
            400,
            &format!("Record at \"after_id\" (\"{unknown}\") does not exist."),
            None,
        );
    let e = owner
        .get(&format!("{base}?since=yesterday"))
        .await
        .expect_error(400, "bad `since` format, must be RFC3339", None);
    assert!(!e["detail"].as_str().unwrap().is_empty());
    owner
        .get("/api/v2/workspaces/nope/builds")
        .await
        .expect_error(400, "Invalid UUID \"nope\".", None);
    owner
        .get(&format!("/api/v2/workspaces/{unknown}/builds"))
        .await
        .expect_error(404, NOT_FOUND, None);
}

#[actix_web::test]
async fn racing_creates_make_exactly_one_build() {
    let s = TestServer::start();
    let owner = s.owner().await;
    // Builds stay active for the whole race.
    let slow = json!([{"sleep_ms": 1500}]);
    let t = template(&owner, "t", manifest(slow.clone(), slow)).await;
    let (ws, first) = workspace(&owner, &t, "dev", json!([])).await;
    finished(&owner, &first).await;
    for transition in ["stop", "start"] {
        let posts = (0..20).map(|_| post_build(&owner, &ws, json!({"transition": transition})));
        let answers = futures_util::future::join_all(posts).await;
        let mut created = Vec::new();
        for r in &answers {
            match r.status {
                201 => created.push(r.expect(201, BUILD)),
                _ => {
                    r.expect_error(409, "A workspace build is already active.", None);
                }
            }
        }
        assert_eq!(created.len(), 1, "exactly one of 20 racing POSTs wins");
        finished(&owner, created[0]["id"].as_str().unwrap()).await;
    }
    let list = owner
        .get(&format!("/api/v2/workspaces/{ws}/builds"))
        .await
        .expect(200, BUILDS);
    let numbers: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["build_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![3, 2, 1]);
}

/// A server with one worker and the template of a build that keeps it busy for a minute.
/// Import every other template before `occupy`: imports queue behind the busy build.
async fn one_worker() -> (TestServer, Client, String) {
    let s = TestServer::start_with_args(&["--workers", "1"]);
    let owner = s.owner().await;
    let t = template(
        &owner,
        "busy",
        manifest(json!([{"sleep_ms": 60000}]), json!([])),
    )
    .await;
    (s, owner, t)
}

/// Starts the busy build and waits until it runs; returns its id.
async fn occupy(owner: &Client, busy_template: &str) -> String {
    let (_, busy) = workspace(owner, busy_template, "busy", json!([])).await;
    for _ in 0..500 {
        if get_build(owner, &busy).await["job"]["status"] == "running" {
            return busy;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the busy build never started");
}

#[actix_web::test]
async fn cancel_a_pending_build() {
    let (s, owner, busy_t) = one_worker().await;
    let member = s.user(&owner, "mia", &[]).await;
    let t = template(&owner, "quick", quick()).await;
    let busy = occupy(&owner, &busy_t).await;
    let (_, pending) = workspace(&member, &t, "dev", json!([])).await;
    let b = get_build(&member, &pending).await;
    assert_eq!(b["status"], "pending");
    assert_eq!(b["job"]["queue_position"], 1);
    assert_eq!(b["job"]["queue_size"], 1);
    assert_eq!(b["matched_provisioners"]["count"], 1);
    assert_eq!(b["matched_provisioners"]["available"], 0);
    // A follower of the pending build ends when it is canceled.
    let follower = {
        let member = member.clone();
        let path = format!("/api/v2/workspacebuilds/{pending}/logs?follow");
        actix_web::rt::spawn(async move {
            let mut res = member.request("GET", &path).send().await.unwrap();
            assert_eq!(res.status(), 200);
            let body = res.body().limit(1 << 20);
            let body = actix_web::rt::time::timeout(Duration::from_secs(20), body).await;
            body.expect("the follow ends").expect("a body").to_vec()
        })
    };
    let cancel = format!("/api/v2/workspacebuilds/{pending}/cancel");
    member
        .patch(&format!("{cancel}?expect_status=canceled"), json!({}))
        .await
        .expect_error(
            400,
            "Invalid expect_status \"canceled\". Only 'running' or 'pending' are allowed.",
            None,
        );
    member
        .patch(&format!("{cancel}?expect_status=running"), json!({}))
        .await
        .expect_error(412, "Job is not in the expected state.", None);
    let r = member
        .patch(&format!("{cancel}?expect_status=pending"), json!({}))
        .await
        .expect(200, "codersdk.Response");
    assert_eq!(r, json!({"message": "Job has been marked as canceled..."}));
    let b = get_build(&member, &pending).await;
    assert_eq!(b["status"], "canceled");
    assert_eq!(b["job"]["status"], "canceled");
    assert!(b["job"].get("started_at").is_none(), "{b}");
    assert!(b["job"]["canceled_at"].is_string() && b["job"]["completed_at"].is_string());
    assert_eq!(b["job"]["queue_position"], 0);
    member
        .patch(&cancel, json!({}))
        .await
        .expect_error(400, "Job has already completed!", None);
    assert!(
        follower.await.unwrap().is_empty(),
        "no logs for a build that never ran"
    );
    // It never runs: free the worker and look again.
    owner
        .patch(&format!("/api/v2/workspacebuilds/{busy}/cancel"), json!({}))
        .await
        .expect(200, "codersdk.Response");
    let done = finished(&owner, &busy).await;
    assert_eq!(done["status"], "canceled");
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let b = get_build(&member, &pending).await;
    assert!(b["job"].get("started_at").is_none(), "{b}");
    let logs = member
        .get(&format!("/api/v2/workspacebuilds/{pending}/logs"))
        .await
        .expect(200, "[]codersdk.ProvisionerJobLog");
    assert_eq!(logs, json!([]));
}

#[actix_web::test]
async fn cancel_permission_follows_the_template_setting() {
    let (s, owner, busy_t) = one_worker().await;
    let member = s.user(&owner, "mia", &[]).await;
    // A template whose builds members may not cancel.
    let v = owner
        .import_version(common::tar_of(&[("kiln.json", &quick().to_string())]), None)
        .await;
    assert_valid("codersdk.TemplateVersion", &v);
    let r = owner
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "strict", "template_version_id": v["id"], "allow_user_cancel_workspace_jobs": false}),
        )
        .await;
    let t = r.expect(201, "codersdk.Template");
    let busy = occupy(&owner, &busy_t).await;
    let (_, pending) = workspace(&member, t["id"].as_str().unwrap(), "dev", json!([])).await;
    let cancel = format!("/api/v2/workspacebuilds/{pending}/cancel");
    let denied = "User is not allowed to cancel workspace builds. Owner role is required.";
    member
        .patch(&cancel, json!({}))
        .await
        .expect_error(403, denied, None);
    member
        .patch(&format!("{cancel}?expect_status=running"), json!({}))
        .await
        .expect_error(403, denied, None);
    // expect_status=pending is always allowed; then the owner gets the 400.
    member
        .patch(&format!("{cancel}?expect_status=pending"), json!({}))
        .await
        .expect(200, "codersdk.Response");
    owner
        .patch(&cancel, json!({}))
        .await
        .expect_error(400, "Job has already completed!", None);
    owner
        .patch(&format!("/api/v2/workspacebuilds/{busy}/cancel"), json!({}))
        .await
        .expect(200, "codersdk.Response");
}

#[actix_web::test]
async fn cancel_a_running_command_stops_its_process() {
    let s = TestServer::start();
    let owner = s.owner().await;
    // Build 1 ignores SIGTERM, so its job stays `canceling` until SIGKILL (1.5 s later).
    let start = json!([
        {"log": "before"},
        {"run": "echo $$ > \"$KILN_WORKSPACE_DIR/pid\"; [ \"$KILN_BUILD_NUMBER\" = 1 ] && trap '' TERM; echo started; sleep 30"}
    ]);
    let t = template(&owner, "t", manifest(start, json!([]))).await;
    let (ws, build) = workspace(&owner, &t, "dev", json!([])).await;
    let pid_file = s.dir.join("workspaces").join(&ws).join("pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file)
            && let Ok(pid) = text.trim().parse::<u32>()
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the step never started");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists());
    let cancel = format!("/api/v2/workspacebuilds/{build}/cancel");
    owner
        .patch(&format!("{cancel}?expect_status=pending"), json!({}))
        .await
        .expect_error(412, "Job is not in the expected state.", None);
    let asked = Instant::now();
    owner
        .patch(&format!("{cancel}?expect_status=running"), json!({}))
        .await
        .expect(200, "codersdk.Response");
    let b = get_build(&owner, &build).await;
    if b["job"]["status"] == "canceling" {
        assert_eq!(b["status"], "canceling");
        owner.patch(&cancel, json!({})).await.expect_error(
            400,
            "Job has already been marked as canceled!",
            None,
        );
    }
    let b = finished(&owner, &build).await;
    let took = asked.elapsed();
    assert_eq!(b["status"], "canceled", "{b}");
    assert_eq!(b["job"]["status"], "canceled");
    assert!(b["job"].get("error").is_none(), "{b}");
    assert!(took < Duration::from_secs(4), "cancel took {took:?}");
    let deadline = Instant::now() + Duration::from_secs(3);
    while proc_dir.exists() {
        assert!(
            Instant::now() < deadline,
            "process {pid} survived the cancel"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    owner
        .patch(&cancel, json!({}))
        .await
        .expect_error(400, "Job has already completed!", None);
    let logs = owner
        .get(&format!("/api/v2/workspacebuilds/{build}/logs"))
        .await
        .expect(200, "[]codersdk.ProvisionerJobLog");
    let outputs: Vec<_> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["output"].as_str().unwrap().to_string())
        .collect();
    assert!(outputs.contains(&"started".to_string()), "{outputs:?}");
    assert!(
        outputs.iter().any(|o| o.contains("canceled")),
        "{outputs:?}"
    );
    // The workspace can build again; a plain `sleep` (no trap) ends at SIGTERM.
    let next = new_build(&owner, &ws, "start").await;
    assert_eq!(next["build_number"], 2);
    let next_id = next["id"].as_str().unwrap();
    let _ = std::fs::remove_file(&pid_file);
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file)
            && let Ok(pid) = text.trim().parse::<u32>()
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the step never started");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    let asked = Instant::now();
    owner
        .patch(
            &format!("/api/v2/workspacebuilds/{next_id}/cancel"),
            json!({}),
        )
        .await
        .expect(200, "codersdk.Response");
    let b = finished(&owner, next_id).await;
    assert_eq!(b["status"], "canceled");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "took {:?}",
        asked.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            Instant::now() < deadline,
            "process {pid} survived the cancel"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[actix_web::test]
async fn agent_status_turns_to_timeout_after_its_connection_timeout() {
    let s = TestServer::start();
    let owner = s.owner().await;
    let m = json!({"resources": [{"name": "vm", "type": "kiln_instance",
        "agents": [{"name": "main", "connection_timeout_seconds": 1}]}]});
    let t = template(&owner, "t", m).await;
    let (_, first) = workspace(&owner, &t, "dev", json!([])).await;
    let b = finished(&owner, &first).await;
    let created = b["resources"][0]["agents"][0]["created_at"]
        .as_str()
        .unwrap()
        .to_string();
    let b = get_build(&owner, &first).await;
    let status = b["resources"][0]["agents"][0]["status"].clone();
    // `connecting` for a second after the agent was created (unless this machine is slow).
    assert!(status == "connecting" || status == "timeout", "{status}");
    actix_web::rt::time::sleep(Duration::from_millis(1200)).await;
    let b = get_build(&owner, &first).await;
    assert_eq!(
        b["resources"][0]["agents"][0]["status"], "timeout",
        "created {created}"
    );
    assert_eq!(b["resources"][0]["agents"][0]["health"]["healthy"], false);
}

#[test]
fn the_schema_check_is_not_vacuous() {
    use common::schema::validates;
    let ok = json!({"id": "9d7f5e4c-1f2a-4b3c-8d9e-0a1b2c3d4e5f", "status": "running",
        "created_at": "2026-11-28T10:15:22.123456Z", "deadline": null, "reason": "cli",
        "build_number": 1, "job": {"status": "pending"}});
    assert!(validates(BUILD, &ok));
    for (field, bad) in [
        ("status", json!("bogus")),
        ("created_at", json!("yesterday")),
        ("build_number", json!("1")),
        ("reason", json!("whim")),
        ("job", json!({"status": "waiting"})),
        ("resources", json!([{"agents": "none"}])),
    ] {
        let mut v = ok.clone();
        v[field] = bad;
        assert!(!validates(BUILD, &v), "{field} should be refused");
    }
}
