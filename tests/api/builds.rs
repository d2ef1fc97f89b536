//! The workspace builds API over real HTTP: reading builds (by id and by number), listing and
//! paging them, the authorization matrix, parameters, resources and state. Every JSON body
//! fetched is checked against Coder's swagger (tests/common/schema.rs).

use crate::common::fixtures::*;
use crate::common::{Kiln, TestApp};
use serde_json::{Value, json};
use std::time::Duration;

#[actix_web::test]
async fn a_build_by_id_and_by_number() {
    let s = TestApp::start();
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
    let s = TestApp::start();
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
    let s = TestApp::start();
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
    let s = TestApp::start();
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
    let s = TestApp::start();
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
    let s = TestApp::start();
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

/// Microseconds since the epoch, now.
fn now_micros() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64
}

#[actix_web::test]
async fn agent_status_turns_to_timeout_after_its_connection_timeout() {
    const TIMEOUT_S: i64 = 2;
    let s = TestApp::start();
    let owner = s.owner().await;
    let m = json!({"resources": [{"name": "vm", "type": "kiln_instance",
        "agents": [{"name": "main", "connection_timeout_seconds": TIMEOUT_S}]}]});
    let t = template(&owner, "t", m).await;
    let (_, first) = workspace(&owner, &t, "dev", json!([])).await;
    let b = finished(&owner, &first).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    let agent = &b["resources"][0]["agents"][0];
    assert_eq!(agent["connection_timeout_seconds"], TIMEOUT_S, "{agent}");
    let created = micros(&agent["created_at"]);
    let times_out = created + TIMEOUT_S * 1_000_000;

    // Right after the build: `connecting`. The answer was made before it arrived, so when it
    // arrives before created_at + timeout, the agent had not timed out yet.
    let b = get_build(&owner, &first).await;
    let answered = now_micros();
    assert!(
        answered < times_out,
        "this machine is too slow for the test: the build's answer came {} ms after the agent \
         was created, past its {TIMEOUT_S} s connection timeout",
        (answered - created) / 1000
    );
    let agent = &b["resources"][0]["agents"][0];
    assert_eq!(agent["status"], "connecting", "{agent}");
    assert_eq!(agent["health"]["healthy"], false, "{agent}");

    // Once created_at + timeout has passed: `timeout`.
    let wait = times_out - now_micros() + 100_000;
    actix_web::rt::time::sleep(Duration::from_micros(wait.max(0) as u64)).await;
    assert!(now_micros() > times_out);
    let b = get_build(&owner, &first).await;
    let agent = &b["resources"][0]["agents"][0];
    assert_eq!(agent["status"], "timeout", "{agent}");
    assert_eq!(agent["health"]["healthy"], false, "{agent}");
}

#[test]
fn the_schema_check_is_not_vacuous() {
    use crate::common::schema::validates;
    let ok = json!({"id": "9d7f5e4c-1f2a-4b3c-8d9e-0a1b2c3d4e5f", "status": "running",
        "created_at": "2026-11-28T10:15:22.123456Z", "deadline": null, "reason": "cli",
        "build_number": 1, "job": {"status": "pending"}});
    assert!(validates(BUILD, &ok));
    // Coder sends "" for a user without an avatar; anything else must be a URI.
    let user = |avatar: &str| json!({"id": "9d7f5e4c-1f2a-4b3c-8d9e-0a1b2c3d4e5f", "username": "u", "avatar_url": avatar});
    assert!(validates("codersdk.MinimalUser", &user("")));
    assert!(validates(
        "codersdk.MinimalUser",
        &user("https://example.com/a.png")
    ));
    assert!(!validates("codersdk.MinimalUser", &user("not a uri")));
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
