//! The calls Coder's clients make around the builds: templates by name, a version's parts,
//! a user's organizations, the sign-in methods, agent logs. Every body is checked against
//! Coder's schemas.

use crate::common::fixtures::{NOT_FOUND, SIGNED_OUT, manifest, quick, template, workspace};
use crate::common::{Kiln, TestApp, tar_of};
use serde_json::{Value, json};

#[actix_web::test]
async fn templates_by_name_and_all_of_them() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let member = s.user(&owner, "mia", &[]).await;
    let a = template(&owner, "alpha", quick()).await;
    let b = template(&owner, "beta", quick()).await;

    let all = member
        .get("/api/v2/templates")
        .await
        .expect(200, "[]codersdk.Template");
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.as_str(), b.as_str()], "by name");

    let t = member
        .get("/api/v2/organizations/coder/templates/beta")
        .await
        .expect(200, "codersdk.Template");
    assert_eq!(t["id"], b.as_str());
    let org = t["organization_id"].as_str().unwrap();
    let by_id = member
        .get(&format!("/api/v2/organizations/{org}/templates/alpha"))
        .await
        .expect(200, "codersdk.Template");
    assert_eq!(by_id["id"], a.as_str());
    member
        .get("/api/v2/organizations/coder/templates/gamma")
        .await
        .expect_error(404, NOT_FOUND, None);
    member
        .get("/api/v2/organizations/nope/templates/alpha")
        .await
        .expect_error(404, NOT_FOUND, None);

    let active = t["active_version_id"].as_str().unwrap();
    let v = owner
        .get(&format!("/api/v2/templateversions/{active}"))
        .await
        .json();
    let name = v["name"].as_str().unwrap();
    let by_name = member
        .get(&format!(
            "/api/v2/organizations/coder/templates/beta/versions/{name}"
        ))
        .await
        .expect(200, "codersdk.TemplateVersion");
    assert_eq!(by_name, v);
    member
        .get("/api/v2/organizations/coder/templates/beta/versions/nope")
        .await
        .expect_error(404, "No template version found by name \"nope\".", None);
    s.anon()
        .get("/api/v2/templates")
        .await
        .expect_error(401, SIGNED_OUT, None);
}

#[actix_web::test]
async fn a_versions_resources_and_empty_lists() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let member = s.user(&owner, "mia", &[]).await;
    let m = manifest(json!([]), json!([]));
    let v = owner
        .import_version(tar_of(&[("kiln.json", &m.to_string())]), None)
        .await;
    let id = v["id"].as_str().unwrap();
    let path = format!("/api/v2/templateversions/{id}/resources");
    let r = member
        .get(&path)
        .await
        .expect(200, "[]codersdk.WorkspaceResource");
    // `disk` exists after start and after stop, `vm` after start only.
    let seen: Vec<(String, String)> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap().to_string(),
                x["workspace_transition"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("disk".to_string(), "start".to_string()),
            ("disk".into(), "stop".into()),
            ("vm".into(), "start".into())
        ]
    );
    let vm = r
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "vm")
        .unwrap();
    assert_eq!(vm["job_id"], v["job"]["id"]);
    assert_eq!(
        vm["metadata"][0],
        json!({"key": "region", "value": "eu", "sensitive": false})
    );
    let agent = &vm["agents"][0];
    assert_eq!(agent["resource_id"], vm["id"]);
    assert_eq!(agent["apps"].as_array().unwrap().len(), 2);
    // The same answer each time: ids and times do not change between reads.
    assert_eq!(member.get(&path).await.json(), r);

    for part in ["variables", "external-auth", "presets"] {
        let r = member
            .get(&format!("/api/v2/templateversions/{id}/{part}"))
            .await;
        assert_eq!(r.status, 200, "{part}: {}", r.text());
        assert_eq!(r.json(), json!([]), "{part}");
    }
    for (part, def) in [
        ("variables", "[]codersdk.TemplateVersionVariable"),
        ("external-auth", "[]codersdk.TemplateVersionExternalAuth"),
        ("presets", "[]codersdk.Preset"),
    ] {
        member
            .get(&format!("/api/v2/templateversions/{id}/{part}"))
            .await
            .expect(200, def);
    }
    member
        .get("/api/v2/templateversions/not-a-uuid/resources")
        .await
        .expect_error(400, "Invalid UUID \"not-a-uuid\".", None);
    member
        .get(&format!(
            "/api/v2/templateversions/{}/presets",
            uuid::Uuid::new_v4()
        ))
        .await
        .expect_error(404, NOT_FOUND, None);
}

#[actix_web::test]
async fn an_import_is_canceled_as_coder_cancels_it() {
    // No worker: the import stays pending.
    let s = TestApp::start_with_args(&["--workers", "0"]);
    let owner = s.owner().await;
    let member = s.user(&owner, "mia", &[]).await;
    let r = owner
        .post_raw(
            "/api/v2/files",
            "application/x-tar",
            tar_of(&[("kiln.json", "{}")]),
        )
        .await;
    let file = r.json()["hash"].as_str().unwrap().to_string();
    let v = owner
        .post(
            "/api/v2/organizations/coder/templateversions",
            json!({"storage_method": "file", "file_id": file, "provisioner": "echo"}),
        )
        .await
        .expect(201, "codersdk.TemplateVersion");
    let id = v["id"].as_str().unwrap();
    assert_eq!(v["job"]["status"], "pending");
    for part in ["resources", "variables"] {
        member
            .get(&format!("/api/v2/templateversions/{id}/{part}"))
            .await
            .expect_error(403, "Job hasn't completed!", None);
    }
    let cancel = format!("/api/v2/templateversions/{id}/cancel");
    let r = member.patch(&cancel, json!({})).await;
    assert_eq!(r.status, 403, "{}", r.text());
    owner
        .patch(&cancel, json!({}))
        .await
        .expect(200, "codersdk.Response");
    let v: Value = owner
        .get(&format!("/api/v2/templateversions/{id}"))
        .await
        .json();
    assert_eq!(v["job"]["status"], "canceled", "{v}");
    owner
        .patch(&cancel, json!({}))
        .await
        .expect_error(400, "Job has already completed!", None);
}

#[actix_web::test]
async fn a_users_organizations_and_the_sign_in_methods() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let member = s.user(&owner, "mia", &[]).await;
    let orgs = member
        .get("/api/v2/users/me/organizations")
        .await
        .expect(200, "[]codersdk.Organization");
    let all = owner.get("/api/v2/organizations").await.json();
    assert_eq!(orgs, all);
    assert_eq!(orgs[0]["name"], "coder");
    owner
        .get("/api/v2/users/mia/organizations")
        .await
        .expect(200, "[]codersdk.Organization");
    member
        .get("/api/v2/users/nobody/organizations")
        .await
        .expect_error(404, NOT_FOUND, None);

    // Asked by the sign-in page, before any session.
    let m = s
        .anon()
        .get("/api/v2/users/authmethods")
        .await
        .expect(200, "codersdk.AuthMethods");
    assert_eq!(m["password"], json!({"enabled": true}));
    assert_eq!(m["github"]["enabled"], false);
    assert_eq!(m["oidc"]["enabled"], false);
}

#[actix_web::test]
async fn agent_logs_are_empty_and_a_follow_ends_at_once() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(&owner, "base", quick()).await;
    let (_, first) = workspace(&owner, &t, "one", json!([])).await;
    let b = owner.wait_build(&first).await;
    let agent = b["resources"][1]["agents"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v2/workspaceagents/{agent}/logs");
    let logs = owner
        .get(&path)
        .await
        .expect(200, "[]codersdk.WorkspaceAgentLog");
    assert_eq!(logs, json!([]));
    s.anon()
        .get(&path)
        .await
        .expect_error(401, SIGNED_OUT, None);
    owner
        .get("/api/v2/workspaceagents/nope/logs")
        .await
        .expect_error(400, "Invalid UUID \"nope\".", None);
    // An agent no build made, or one of a workspace the caller cannot read: Coder's 404.
    const NO_AGENT: &str = "Agent doesn't exist with that id, or you do not have access to it.";
    owner
        .get("/api/v2/workspaceagents/3b241101-e2bb-4255-8caf-4136c566a962/logs")
        .await
        .expect_error(404, NO_AGENT, None);
    let member = s.user(&owner, "mallory", &[]).await;
    member.get(&path).await.expect_error(404, NO_AGENT, None);

    let url = s.url(&format!("{path}?follow")).replacen("http", "ws", 1);
    let (_res, mut ws) = awc::Client::new()
        .ws(url)
        .header("Coder-Session-Token", owner.token())
        .connect()
        .await
        .expect("the follow is a WebSocket");
    use futures_util::StreamExt;
    match ws.next().await {
        Some(Ok(awc::ws::Frame::Close(Some(reason)))) => {
            assert_eq!(reason.code, awc::ws::CloseCode::Normal)
        }
        other => panic!("expected a normal close, got {other:?}"),
    }
}

#[actix_web::test]
async fn a_suspended_user_is_signed_out_at_once_and_can_come_back() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let admin = s.user(&owner, "uadmin", &["owner"]).await;
    let mia = s.user(&owner, "mia", &[]).await;
    assert_eq!(mia.get("/api/v2/users/me").await.status, 200);

    let r = mia
        .put("/api/v2/users/uadmin/status/suspend", json!({}))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    owner
        .put("/api/v2/users/me/status/suspend", json!({}))
        .await
        .expect_error(400, "You cannot suspend yourself.", None);
    owner
        .put("/api/v2/users/uadmin/status/suspend", json!({}))
        .await
        .expect_error(
            400,
            "You cannot suspend a user with the \"owner\" role. You must remove the role first.",
            None,
        );
    let _ = admin;

    let u = owner
        .put("/api/v2/users/mia/status/suspend", json!({}))
        .await
        .expect(200, "codersdk.User");
    assert_eq!(u["status"], "suspended");
    // Her session stops at once (the session was cached a moment ago).
    mia.get("/api/v2/users/me").await.expect_error(
        401,
        "User is not active (status = \"suspended\"). Contact an admin to reactivate your account.",
        None,
    );
    let r = s
        .anon()
        .post(
            "/api/v2/users/login",
            json!({"email": "mia@example.com", "password": "member-password"}),
        )
        .await;
    r.expect_error(
        401,
        "Your account is suspended. Contact an admin to reactivate your account.",
        None,
    );

    let u = owner
        .put("/api/v2/users/mia/status/activate", json!({}))
        .await
        .expect(200, "codersdk.User");
    assert_eq!(u["status"], "active");
    assert_eq!(mia.get("/api/v2/users/me").await.status, 200);
}

#[actix_web::test]
async fn a_user_is_deleted_once_their_workspaces_are_gone() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let mia = s.user(&owner, "mia", &[]).await;
    let t = template(&owner, "base", quick()).await;
    let (ws, first) = workspace(&mia, &t, "dev", json!([])).await;
    mia.wait_build(&first).await;

    let r = mia
        .method_json("DELETE", "/api/v2/users/owner", json!({}))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    owner
        .method_json("DELETE", "/api/v2/users/me", json!({}))
        .await
        .expect_error(403, "You cannot delete yourself!", None);
    owner
        .method_json("DELETE", "/api/v2/users/mia", json!({}))
        .await
        .expect_error(
            417,
            "You cannot delete a user that has workspaces. Delete their workspaces and try again!",
            None,
        );
    let del = owner
        .post(
            &format!("/api/v2/workspaces/{ws}/builds"),
            json!({"transition": "delete"}),
        )
        .await;
    assert_eq!(del.status, 201, "{}", del.text());
    owner.wait_build(del.json()["id"].as_str().unwrap()).await;

    let r = owner
        .method_json("DELETE", "/api/v2/users/mia", json!({}))
        .await
        .expect(200, "codersdk.Response");
    assert_eq!(r["message"], "User has been deleted!");
    // Gone everywhere: lookups, the list, her sessions; her builds still name her.
    owner
        .get("/api/v2/users/mia")
        .await
        .expect_error(404, NOT_FOUND, None);
    let users = owner.get("/api/v2/users").await.json();
    assert!(!users.to_string().contains("\"mia\""), "{users}");
    assert_eq!(mia.get("/api/v2/users/me").await.status, 401);
    let b = owner
        .get(&format!("/api/v2/workspacebuilds/{first}"))
        .await
        .json();
    assert_eq!(b["initiator_name"], "mia");
}
