//! Workspaces: creation with its first build, names, lookups, lists, deletion.

use crate::common::fixtures::{NOT_FOUND, WORKSPACE, template, version, wait_job, workspace};
use crate::common::{Kiln, TestApp, tar_of};
use serde_json::json;

#[actix_web::test]
async fn a_new_workspace_has_its_first_build_queued() {
    let s = TestApp::start_with_args(&["--workers", "1"]);
    let owner = s.owner().await;
    let v = version(
        &owner,
        &json!({"parameters": [{"name": "size", "type": "number", "default_value": "1", "mutable": true}],
               "steps": {"start": [{"sleep_ms": 1500}]}}),
    )
    .await;
    let t = owner
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "base", "template_version_id": v["id"]}),
        )
        .await
        .expect(201, "codersdk.Template");
    let tid = t["id"].as_str().unwrap();
    let create = |name: &str, params: serde_json::Value| {
        let (owner, body) = (
            owner.clone(),
            json!({"template_id": tid, "name": name, "rich_parameter_values": params}),
        );
        async move {
            owner
                .post("/api/v2/users/me/workspaces", body)
                .await
                .expect(201, WORKSPACE)
        }
    };
    let w1 = create("one", json!([{"name": "size", "value": "3"}])).await;
    // Once the first build holds the only worker, the second waits alone in the queue.
    wait_job(
        &owner,
        w1["latest_build"]["id"].as_str().unwrap(),
        "running",
    )
    .await;
    let w2 = create("two", json!([])).await;
    assert_eq!(w1["name"], "one");
    assert_eq!(w1["owner_name"], "owner");
    assert_eq!(w1["template_name"], "base");
    assert_eq!(w1["outdated"], false);
    let b2 = &w2["latest_build"];
    assert_eq!(b2["build_number"], 1);
    assert_eq!(b2["status"], "pending");
    assert_eq!(b2["job"]["queue_position"], 1, "{b2}");
    assert_eq!(b2["job"]["queue_size"], 1);
    assert_eq!(b2["matched_provisioners"]["count"], 1);
    assert_eq!(b2["reason"], "initiator");
    assert!(b2["deadline"].is_null());

    // By owner and name, case-insensitively as Coder does.
    let r = owner.get("/api/v2/users/me/workspace/one").await;
    assert_eq!(r.json()["id"], w1["id"]);
    assert_eq!(
        owner.get("/api/v2/users/owner/workspace/ONE").await.json()["id"],
        w1["id"]
    );
    owner
        .get("/api/v2/users/me/workspace/nope")
        .await
        .assert_error(404, NOT_FOUND, None);

    let done = owner
        .wait_build(w1["latest_build"]["id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "running");
    let r = owner
        .post(
            "/api/v2/users/me/workspaces",
            json!({"name": "one", "template_id": tid}),
        )
        .await;
    r.assert_error(409, "Workspace \"one\" already exists.", None);
    assert_eq!(r.json()["validations"][0]["field"], "name");
    let r = owner
        .post(
            "/api/v2/users/me/workspaces",
            json!({"name": "Not OK!", "template_id": tid}),
        )
        .await;
    r.assert_error(400, "Validation failed.", None);
    owner
        .post(
            "/api/v2/users/me/workspaces",
            json!({"name": "x", "template_id": tid, "template_version_id": t["active_version_id"]}),
        )
        .await
        .assert_error(
            400,
            "Only one of TemplateID or TemplateVersionID can be specified.",
            None,
        );
    owner
        .post("/api/v2/users/me/workspaces", json!({"name": "x"}))
        .await
        .assert_error(
            400,
            "Either TemplateID or TemplateVersionID must be specified.",
            None,
        );
    let r = owner
        .post("/api/v2/users/me/workspaces", json!({"name": "x", "template_id": tid, "rich_parameter_values": [{"name": "size", "value": "big"}]}))
        .await;
    r.assert_error(
        400,
        "Unable to validate parameter \"size\"",
        Some("value \"big\" is not a number"),
    );
}

#[actix_web::test]
async fn members_see_and_create_only_their_own_workspaces() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let mary = s.user(&owner, "mary", &[]).await;
    let bob = s.user(&owner, "bob", &[]).await;
    let t = template(&owner, "base", json!({})).await;
    let tid = t.as_str();
    let (id, _) = workspace(&mary, tid, "dev", json!([])).await;
    workspace(&bob, tid, "dev", json!([])).await;
    let org = "/api/v2/organizations/coder/members/me/workspaces";
    let r = bob
        .post(org, json!({"name": "dev2", "template_id": tid}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    let mine = mary.get("/api/v2/workspaces").await.json();
    assert_eq!(mine["count"], 1);
    assert_eq!(mine["workspaces"][0]["owner_name"], "mary");
    let all = owner.get("/api/v2/workspaces").await.json();
    assert_eq!(all["count"], 3);
    let bobs = owner.get("/api/v2/workspaces?q=owner:bob").await.json();
    assert_eq!(bobs["count"], 2);

    bob.get(&format!("/api/v2/workspaces/{id}"))
        .await
        .assert_error(404, NOT_FOUND, None);
    bob.get("/api/v2/users/mary/workspace/dev")
        .await
        .assert_error(404, NOT_FOUND, None);
    bob.post(
        &format!("/api/v2/workspaces/{id}/builds"),
        json!({"transition": "stop"}),
    )
    .await
    .assert_error(404, NOT_FOUND, None);
    bob.post(
        "/api/v2/users/mary/workspaces",
        json!({"name": "x", "template_id": tid}),
    )
    .await
    .assert_error(
        403,
        "You do not have permission to create workspaces for other users.",
        None,
    );
    // The owner may create one for a member.
    let r = owner
        .post(
            "/api/v2/users/mary/workspaces",
            json!({"name": "for-mary", "template_id": tid}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["owner_name"], "mary");
}

#[actix_web::test]
async fn a_deleted_workspace_is_gone_but_its_builds_stay_readable() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(
        &owner,
        "base",
        json!({"steps": {"delete": [{"log": "bye"}]}}),
    )
    .await;
    let (id, first) = workspace(&owner, &t, "dev", json!([])).await;
    owner.wait_build(&first).await;
    let r = owner
        .post(
            &format!("/api/v2/workspaces/{id}/builds"),
            json!({"transition": "delete"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let b = owner.wait_build(r.json()["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "deleted");
    owner
        .get(&format!("/api/v2/workspaces/{id}"))
        .await
        .assert_error(410, "Workspace was deleted.", None);
    let r = owner
        .get(&format!("/api/v2/workspaces/{id}?include_deleted=true"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["latest_build"]["status"], "deleted");
    assert_eq!(owner.get("/api/v2/workspaces").await.json()["count"], 0);
    owner
        .get("/api/v2/users/me/workspace/dev")
        .await
        .assert_error(404, NOT_FOUND, None);
    assert_eq!(
        owner
            .get(&format!(
                "/api/v2/workspacebuilds/{}",
                b["id"].as_str().unwrap()
            ))
            .await
            .status,
        200
    );
    owner
        .post(
            &format!("/api/v2/workspaces/{id}/builds"),
            json!({"transition": "start"}),
        )
        .await
        .assert_error(
            409,
            "Cannot start a deleted workspace!",
            Some("This workspace has been deleted and cannot be modified."),
        );
    // The name is free again.
    let (again, _) = workspace(&owner, &t, "dev", json!([])).await;
    assert_ne!(again, id);
}

#[actix_web::test]
async fn a_version_still_importing_cannot_be_built() {
    let s = TestApp::start_with_args(&["--workers", "1"]);
    let owner = s.owner().await;
    let tid = template(
        &owner,
        "base",
        json!({"steps": {"start": [{"sleep_ms": 60000}]}}),
    )
    .await;
    // Keep the only worker busy, so the next import waits in the queue, alone.
    let (_, busy) = workspace(&owner, &tid, "busy", json!([])).await;
    wait_job(&owner, &busy, "running").await;
    let file = owner
        .post_raw(
            "/api/v2/files",
            "application/x-tar",
            tar_of(&[("kiln.json", r#"{"steps": {}}"#)]),
        )
        .await
        .json()["hash"]
        .clone();
    let r = owner
        .post("/api/v2/organizations/coder/templateversions", json!({"storage_method": "file", "file_id": file, "provisioner": "echo", "template_id": tid}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["job"]["status"], "pending", "{v}");
    assert_eq!(v["job"]["queue_position"], 1, "{v}");
    assert_eq!(v["job"]["queue_size"], 1, "{v}");
    owner
        .post(
            "/api/v2/users/me/workspaces",
            json!({"name": "dev", "template_version_id": v["id"]}),
        )
        .await
        .assert_error(
            406,
            "The provided template version is pending. Wait for it to complete importing!",
            None,
        );
    owner
        .get(&format!(
            "/api/v2/templateversions/{}/rich-parameters",
            v["id"].as_str().unwrap()
        ))
        .await
        .assert_error(412, "Job hasn't completed!", None);
}
