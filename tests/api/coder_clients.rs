//! Coder's own clients, unchanged: the requests Coder's Go CLI makes for `create`, `start`,
//! `restart` and `templates push`, replayed one by one and each answer read as codersdk
//! decodes it (UUIDs, times, exact statuses); template-version dry runs with Coder's checks and
//! messages; and the small contract details those clients depend on (the version header,
//! Go's zero values in requests).

use crate::common::fixtures::*;
use crate::common::schema::assert_valid;
use crate::common::{Client, Kiln, Resp, TestApp};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// What Go's `uuid.UUID` accepts: a UUID string (the zero one too), `null` or nothing; never
/// `""`, which fails the whole command.
fn assert_go_uuid(v: &Value, what: &str) {
    match v {
        Value::Null => {}
        Value::String(s) => assert!(uuid::Uuid::parse_str(s).is_ok(), "{what}: {s:?} is no UUID"),
        other => panic!("{what}: {other} is no UUID"),
    }
}

/// Every id of a `codersdk.ProvisionerJob` decodes in Go.
fn assert_go_job(job: &Value) {
    assert_valid("codersdk.ProvisionerJob", job);
    for field in ["id", "file_id", "organization_id", "initiator_id"] {
        assert_go_uuid(&job[field], field);
    }
    assert_go_uuid(&job["metadata"]["template_id"], "metadata.template_id");
    assert_go_uuid(
        &job["input"]["template_version_id"],
        "input.template_version_id",
    );
}

/// The logs of a job followed the way Coder's CLI follows them: a WebSocket on `?follow`,
/// signed in by the session cookie alone (no header, no Origin), until the server closes it
/// with `done` once the job has ended.
async fn follow_as_the_cli(s: &TestApp, c: &Client, path: &str) -> Vec<Value> {
    let url = s
        .url(&format!("{path}?follow"))
        .replacen("http://", "ws://", 1);
    let (_, mut conn) = awc::Client::new()
        .ws(url)
        .header("Cookie", format!("coder_session_token={}", c.token()))
        .connect()
        .await
        .expect("WebSocket upgrade");
    let mut lines = Vec::new();
    loop {
        let frame = actix_web::rt::time::timeout(Duration::from_secs(30), conn.next())
            .await
            .expect("a frame within 30 s");
        match frame {
            Some(Ok(awc::ws::Frame::Text(bytes))) => {
                let line: Value = serde_json::from_slice(&bytes).unwrap();
                assert_valid("codersdk.ProvisionerJobLog", &line);
                lines.push(line);
            }
            Some(Ok(awc::ws::Frame::Close(reason))) => {
                assert_eq!(reason.unwrap().description.as_deref(), Some("done"));
                return lines;
            }
            Some(Ok(awc::ws::Frame::Ping(_))) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn outputs(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["output"].as_str().unwrap().to_string())
        .filter(|o| !o.is_empty())
        .collect()
}

/// A template whose parameter `region` has options, and whose start leaves a `vm` whose
/// metadata shows the region and the workspace's name.
fn preview_manifest() -> Value {
    json!({
        "parameters": [{"name": "region", "type": "string", "default_value": "eu", "mutable": true,
            "options": [{"name": "EU", "value": "eu"}, {"name": "US", "value": "us"}]}],
        "resources": [{"name": "vm", "type": "kiln_instance",
            "metadata": [{"key": "where", "value": "{{param.region}}/{{workspace.name}}"}],
            "agents": [{"name": "main"}]}],
        "steps": {"start": [{"run": "touch \"$KILN_WORKSPACE_DIR/ran\""}], "stop": [{"log": "bye"}]}
    })
}

/// A template version whose import job stays pending (the server's workers are off).
async fn unfinished_version(owner: &Client) -> Value {
    let upload = owner
        .post_raw(
            "/api/v2/files",
            "application/x-tar",
            crate::common::tar_of(&[("kiln.json", &preview_manifest().to_string())]),
        )
        .await;
    // 201 for a new file, 200 when the same bytes were uploaded before (as Coder).
    assert!([200, 201].contains(&upload.status), "{}", upload.text());
    let file = upload.expect(upload.status, "codersdk.UploadResponse")["hash"].clone();
    owner
        .post(
            "/api/v2/organizations/coder/templateversions",
            json!({"storage_method": "file", "file_id": file, "provisioner": "terraform"}),
        )
        .await
        .expect(201, "codersdk.TemplateVersion")
}

async fn dry_run(c: &Client, version: &str, body: Value) -> Resp {
    c.post(&format!("/api/v2/templateversions/{version}/dry-run"), body)
        .await
}

async fn wait_dry_run(c: &Client, version: &str, job: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let j = c
            .get(&format!("/api/v2/templateversions/{version}/dry-run/{job}"))
            .await
            .expect(200, "codersdk.ProvisionerJob");
        if ["succeeded", "failed", "canceled"].contains(&j["status"].as_str().unwrap()) {
            return j;
        }
        assert!(Instant::now() < deadline, "the dry run did not end: {j}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_dry_run_checks_the_parameters_and_plans_a_start_running_nothing() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let member = s.user(&owner, "alice", &[]).await;
    let t = template(&owner, "preview", preview_manifest()).await;
    let version = active_version(&owner, &t).await;

    let r = dry_run(
        &member,
        &version,
        json!({"workspace_name": "dev", "rich_parameter_values": [{"name": "region", "value": "us"}]}),
    )
    .await;
    let job = r.expect(201, "codersdk.ProvisionerJob");
    assert_go_job(&job);
    assert_eq!(job["type"], "template_version_dry_run");
    assert_eq!(job["input"], json!({"template_version_id": version}));
    assert_eq!(
        (job["queue_position"].clone(), job["queue_size"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(
        job["initiator_id"],
        member.get("/api/v2/users/me").await.json()["id"]
    );
    let id = job["id"].as_str().unwrap().to_string();
    let base = format!("/api/v2/templateversions/{version}/dry-run/{id}");

    // As the CLI: matched provisioners, then the job's log to its end, then the job.
    let mp = member
        .get(&format!("{base}/matched-provisioners"))
        .await
        .expect(200, "codersdk.MatchedProvisioners");
    assert!(mp["count"].as_i64().unwrap() >= 1, "{mp}");
    let lines = follow_as_the_cli(&s, &member, &format!("{base}/logs")).await;
    let out = outputs(&lines);
    assert!(
        out.iter()
            .any(|l| l.starts_with("Checking 1 parameter value(s)")),
        "{out:?}"
    );
    assert!(
        out.contains(&"Parameter \"region\": given, valid".to_string()),
        "{out:?}"
    );
    let j = wait_dry_run(&member, &version, &id).await;
    assert_eq!(j["status"], "succeeded", "{j}");
    assert_go_job(&j);

    // The plan: what a start would leave, with the values given; no step ran.
    let resources = member
        .get(&format!("{base}/resources"))
        .await
        .expect(200, "[]codersdk.WorkspaceResource");
    let vm = &resources[0];
    assert_eq!(vm["name"], "vm");
    assert_eq!(vm["job_id"], id.as_str());
    assert_eq!(vm["metadata"][0]["value"], "us/dev");
    assert_eq!(vm["agents"][0]["status"], "connecting");
    assert!(
        !s.dir.join("workspaces").exists()
            || std::fs::read_dir(s.dir.join("workspaces"))
                .unwrap()
                .next()
                .is_none()
    );
    // Stored logs, as JSON.
    let stored = member
        .get(&format!("{base}/logs"))
        .await
        .expect(200, "[]codersdk.ProvisionerJobLog");
    assert_eq!(stored.as_array().unwrap().len(), lines.len());

    // A value the template refuses fails the dry run with the build's words.
    let r = dry_run(
        &member,
        &version,
        json!({"workspace_name": "dev", "rich_parameter_values": [{"name": "region", "value": "mars"}]}),
    )
    .await;
    let bad = r.expect(201, "codersdk.ProvisionerJob")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let j = wait_dry_run(&member, &version, &bad).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .starts_with("Unable to validate parameter \"region\": "),
        "{j}"
    );
    let r = member
        .get(&format!(
            "/api/v2/templateversions/{version}/dry-run/{bad}/resources"
        ))
        .await;
    assert_eq!(r.expect(200, "[]codersdk.WorkspaceResource"), json!([]));
}

#[actix_web::test]
async fn dry_run_routes_refuse_as_coder_does() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let alice = s.user(&owner, "alice", &[]).await;
    let bob = s.user(&owner, "bob", &[]).await;
    let t = template(&owner, "preview", preview_manifest()).await;
    let version = active_version(&owner, &t).await;
    let other = template(&owner, "other", preview_manifest()).await;
    let other_version = active_version(&owner, &other).await;
    let job = dry_run(&alice, &version, json!({"workspace_name": "dev"}))
        .await
        .expect(201, "codersdk.ProvisionerJob")["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_dry_run(&alice, &version, &job).await;
    let at =
        |v: &str, j: &str, tail: &str| format!("/api/v2/templateversions/{v}/dry-run/{j}{tail}");
    alice.get(&at(&version, "nope", "")).await.expect_error(
        400,
        "Job ID \"nope\" must be a valid UUID.",
        None,
    );
    let unknown = "4d3b8d06-2f1e-4a0e-9f35-2d1f0b0c9a11";
    alice.get(&at(&version, unknown, "")).await.expect_error(
        404,
        &format!("Provisioner job \"{unknown}\" not found."),
        None,
    );
    // Another version's dry run, another user's, a job that is no dry run: 403.
    alice
        .get(&at(&other_version, &job, ""))
        .await
        .expect_error(403, "Forbidden.", None);
    bob.get(&at(&version, &job, "/resources"))
        .await
        .expect_error(403, "Forbidden.", None);
    let v = owner
        .get(&format!("/api/v2/templateversions/{version}"))
        .await
        .json();
    alice
        .get(&at(&version, v["job"]["id"].as_str().unwrap(), ""))
        .await
        .expect_error(403, "Forbidden.", None);
    // The owner reads everyone's.
    assert_eq!(owner.get(&at(&version, &job, "")).await.status, 200);
    // A completed dry run cannot be canceled.
    alice
        .patch(&at(&version, &job, "/cancel"), json!({}))
        .await
        .expect_error(400, "Job has already completed.", None);

    // On a server whose workers are off: a version whose import has not finished (425), and
    // a dry run that stays pending (canceled at once).
    let dir = tempfile::tempdir().unwrap();
    let (version, token) = {
        let s = TestApp::start_in(dir.path(), &[]);
        let owner = s.owner().await;
        let t = template(&owner, "preview", preview_manifest()).await;
        let v = active_version(&owner, &t).await;
        (v, owner.token().to_string())
    };
    let idle = TestApp::start_in(dir.path(), &["--workers", "0"]);
    let owner = idle.client(&token);
    let unfinished = unfinished_version(&owner).await;
    dry_run(
        &owner,
        unfinished["id"].as_str().unwrap(),
        json!({"workspace_name": "dev"}),
    )
    .await
    .expect_error(425, "Template version import job hasn't completed!", None);
    let pending = dry_run(&owner, &version, json!({"workspace_name": "dev"}))
        .await
        .expect(201, "codersdk.ProvisionerJob");
    assert_eq!(pending["status"], "pending");
    let id = pending["id"].as_str().unwrap();
    let r = owner
        .patch(&at(&version, id, "/cancel"), json!({}))
        .await
        .expect(200, "codersdk.Response");
    assert_eq!(r["message"], "Job has been marked as canceled.");
    let j = owner.get(&at(&version, id, "")).await.json();
    assert_eq!(j["status"], "canceled", "{j}");
    owner
        .patch(&at(&version, id, "/cancel"), json!({}))
        .await
        .expect_error(400, "Job has already completed.", None);
    owner
        .get(&at(&version, id, "/resources"))
        .await
        .expect(200, "[]codersdk.WorkspaceResource");
}

#[actix_web::test]
async fn every_answer_names_kilns_version_as_coders_do() {
    let s = TestApp::start();
    let version = s.anon().get("/api/v2/buildinfo").await.json()["version"]
        .as_str()
        .unwrap()
        .to_string();
    // Coder's `login` reads it on the 404 of /users/first; the CLI on any first answer.
    let first = s.anon().get("/api/v2/users/first").await;
    assert_eq!(first.status, 404);
    assert_eq!(
        first.header("x-coder-build-version").as_deref(),
        Some(version.as_str())
    );
    let owner = s.owner().await;
    let refused = s.anon().get("/api/v2/users/me").await;
    assert_eq!(refused.status, 401);
    let forged = s
        .anon()
        .request("POST", "/api/v2/users/me/keys")
        .insert_header(("Cookie", format!("coder_session_token={}", owner.token())))
        .insert_header(("Origin", "http://evil.example"));
    let forged = s.anon().send(forged, Some(b"{}".to_vec())).await;
    assert_eq!(forged.status, 403);
    for r in [
        &refused,
        &forged,
        &owner.get("/api/v2/users/me").await,
        &s.anon().get("/healthz").await,
        &s.anon().get("/api/v2/nope").await,
    ] {
        assert_eq!(
            r.header("x-coder-build-version").as_deref(),
            Some(version.as_str())
        );
    }
}

#[actix_web::test]
async fn templates_push_of_a_new_template_decodes_in_go() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let file = owner
        .post_raw(
            "/api/v2/files",
            "application/x-tar",
            crate::common::tar_of(&[("kiln.json", &quick().to_string())]),
        )
        .await
        .json()["hash"]
        .clone();
    // As Go sends it: the template it has not got as the zero UUID.
    let v = owner
        .post(
            "/api/v2/organizations/coder/templateversions",
            json!({"name": "", "message": "", "template_id": "00000000-0000-0000-0000-000000000000",
                   "storage_method": "file", "file_id": file, "provisioner": "terraform",
                   "tags": {}, "user_variable_values": []}),
        )
        .await
        .expect(201, "codersdk.TemplateVersion");
    assert_go_job(&v["job"]);
    assert_eq!(
        v["job"]["metadata"]["template_id"],
        "00000000-0000-0000-0000-000000000000"
    );
    let id = v["id"].as_str().unwrap();
    let v = owner
        .wait_for(&format!("/api/v2/templateversions/{id}"), "/job/status")
        .await;
    assert_go_job(&v["job"]);
    let t = owner
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "pushed", "template_version_id": id}),
        )
        .await
        .expect(201, "codersdk.Template");
    let v = owner
        .get(&format!("/api/v2/templateversions/{id}"))
        .await
        .json();
    assert_eq!(v["job"]["metadata"]["template_id"], t["id"]);
}

#[actix_web::test]
async fn presets_and_secrets_kiln_has_not_are_refused_never_dropped() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(&owner, "base", quick()).await;
    let preset = "6f1a1c1e-2b7d-4d0e-9a54-0f1c2b3d4e5f";
    let r = owner
        .post(
            "/api/v2/users/me/workspaces",
            json!({"name": "dev", "template_id": t, "template_version_preset_id": preset}),
        )
        .await;
    let v = r.expect_error(400, "Validation failed.", None);
    assert_eq!(v["validations"][0]["field"], "template_version_preset_id");
    // Go's zero UUID is no preset.
    let w = owner
        .post(
            "/api/v2/users/me/workspaces",
            json!({"name": "dev", "template_id": t, "template_version_preset_id": "00000000-0000-0000-0000-000000000000"}),
        )
        .await
        .expect(201, "codersdk.Workspace");
    owner
        .wait_build(w["latest_build"]["id"].as_str().unwrap())
        .await;
    let builds = format!("/api/v2/workspaces/{}/builds", w["id"].as_str().unwrap());
    for (body, field) in [
        (
            json!({"transition": "stop", "template_version_preset_id": preset}),
            "template_version_preset_id",
        ),
        (
            json!({"transition": "stop", "secrets": [{"name": "TOKEN", "value": "s3cret"}]}),
            "secrets",
        ),
    ] {
        let v = owner
            .post(&builds, body)
            .await
            .expect_error(400, "Validation failed.", None);
        assert_eq!(v["validations"][0]["field"], field, "{v}");
    }
    let r = owner
        .post(
            &builds,
            json!({"transition": "stop", "secrets": [], "template_version_preset_id": ""}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// The checks Coder's dashboard sends right after sign-in (`site/src/modules/permissions`).
fn dashboard_checks(org: &str) -> Value {
    json!({"checks": {
        "viewAllUsers": {"object": {"resource_type": "user"}, "action": "read"},
        "updateUsers": {"object": {"resource_type": "user"}, "action": "update"},
        "createUser": {"object": {"resource_type": "user"}, "action": "create"},
        "createTemplates": {"object": {"resource_type": "template", "any_org": true}, "action": "create"},
        "updateTemplates": {"object": {"resource_type": "template"}, "action": "update"},
        "viewDeploymentConfig": {"object": {"resource_type": "deployment_config"}, "action": "read"},
        "editDeploymentConfig": {"object": {"resource_type": "deployment_config"}, "action": "update"},
        "viewAnyGroup": {"object": {"resource_type": "group"}, "action": "read"},
        "viewAllLicenses": {"object": {"resource_type": "license"}, "action": "read"},
        "createWorkspaceInAnyOrganization": {"object": {"resource_type": "workspace", "any_org": true, "owner_id": "me"}, "action": "create"},
        "viewProvisioners": {"object": {"resource_type": "provisioner_daemon", "organization_id": org}, "action": "read"},
        "viewOtherOrgTemplates": {"object": {"resource_type": "template", "organization_id": "9d0f1c6e-1b1a-4c8e-8f3e-2a6d9c1b0e7f"}, "action": "read"}
    }})
}

#[actix_web::test]
async fn authcheck_answers_from_kilns_rules() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let admin = s.user(&owner, "tom", &["template-admin"]).await;
    let member = s.user(&owner, "alice", &[]).await;
    let org = owner.get("/api/v2/organizations/coder").await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = |c: &Client| {
        let c = c.clone();
        let body = dashboard_checks(&org);
        async move {
            c.post("/api/v2/authcheck", body)
                .await
                .expect(200, "codersdk.AuthorizationResponse")
        }
    };
    let o = answer(&owner).await;
    assert_eq!(
        o,
        json!({"viewAllUsers": true, "updateUsers": true, "createUser": true, "createTemplates": true,
               "updateTemplates": true, "viewDeploymentConfig": true, "editDeploymentConfig": false,
               "viewAnyGroup": false, "viewAllLicenses": false, "createWorkspaceInAnyOrganization": true,
               "viewProvisioners": true, "viewOtherOrgTemplates": false})
    );
    let a = answer(&admin).await;
    assert_eq!(
        (
            a["createTemplates"].clone(),
            a["createUser"].clone(),
            a["viewProvisioners"].clone()
        ),
        (json!(true), json!(false), json!(true))
    );
    let m = answer(&member).await;
    assert_eq!(m["createTemplates"], false);
    assert_eq!(m["createWorkspaceInAnyOrganization"], true);
    assert_eq!(m["viewDeploymentConfig"], false);

    // A stored object: its own owner counts, whatever the client says of it.
    let t = template(&owner, "base", quick()).await;
    let (ws, _) = workspace(&owner, &t, "dev", json!([])).await;
    let on = |id: &str, owner_id: &str| {
        json!({"checks": {"update": {"object": {"resource_type": "workspace", "resource_id": id, "owner_id": owner_id}, "action": "update"},
                          "read": {"object": {"resource_type": "workspace", "resource_id": id}, "action": "read"}}})
    };
    let r = member.post("/api/v2/authcheck", on(&ws, "me")).await.json();
    assert_eq!(r, json!({"update": false, "read": false}));
    let r = admin.post("/api/v2/authcheck", on(&ws, "")).await.json();
    assert_eq!(r, json!({"update": false, "read": true}));
    let r = owner.post("/api/v2/authcheck", on(&ws, "")).await.json();
    assert_eq!(r, json!({"update": true, "read": true}));
    let unknown = "3b241101-e2bb-4255-8caf-4136c566a962";
    let r = owner
        .post("/api/v2/authcheck", on(unknown, ""))
        .await
        .json();
    assert_eq!(r, json!({"update": false, "read": false}));

    // Coder's refusals.
    owner
        .post(
            "/api/v2/authcheck",
            json!({"checks": {"x": {"object": {}, "action": "read"}}}),
        )
        .await
        .expect_error(
            400,
            "Object's \"resource_type\" field must be defined for key \"x\".",
            None,
        );
    owner
        .post("/api/v2/authcheck", json!({"checks": {"x": {"object": {"resource_type": "workspace", "resource_id": "nope"}, "action": "read"}}}))
        .await
        .expect_error(400, "Object \"nope\" id is not a valid uuid.", None);
    owner
        .post("/api/v2/authcheck", json!({"checks": {"x": {"object": {"resource_type": "file", "resource_id": unknown}, "action": "read"}}}))
        .await
        .expect_error(400, "Object type \"file\" does not support \"resource_id\" field.", None);
    let many: serde_json::Map<String, Value> = (0..11)
        .map(|i| (format!("k{i}"), json!({"object": {"resource_type": "workspace", "resource_id": unknown}, "action": "read"})))
        .collect();
    owner
        .post("/api/v2/authcheck", json!({"checks": many}))
        .await
        .expect_error(
            400,
            "Endpoint only supports using \"resource_id\" field 10 times, found 11 usages. Remove 1 objects with this field set.",
            None,
        );
    s.anon()
        .post("/api/v2/authcheck", dashboard_checks(&org))
        .await
        .assert_error(
            401,
            "You are signed out or your session has expired. Please sign in again to continue.",
            None,
        );
}

#[actix_web::test]
async fn a_users_own_account_as_coders_dashboard_manages_it() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let alice = s.user(&owner, "alice", &[]).await;
    let alice_id = alice.get("/api/v2/users/me").await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Roles one may be given: kiln's site roles, assignable by the owner only.
    let roles = owner
        .get("/api/v2/users/roles")
        .await
        .expect(200, "[]codersdk.AssignableRoles");
    let names: Vec<_> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, [json!("owner"), json!("template-admin")]);
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["assignable"] == true && r["built_in"] == true)
    );
    let theirs = alice.get("/api/v2/users/roles").await.json();
    assert!(
        theirs
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["assignable"] == false)
    );

    // Login type: one's own only, even for an owner.
    let lt = alice
        .get("/api/v2/users/me/login-type")
        .await
        .expect(200, "codersdk.UserLoginType");
    assert_eq!(lt, json!({"login_type": "password"}));
    owner
        .get("/api/v2/users/alice/login-type")
        .await
        .expect_error(
            403,
            "You are not authorized to view this user's login type.",
            None,
        );

    // Profile: username and name, Coder's validations and conflict.
    let u = alice
        .put(
            "/api/v2/users/me/profile",
            json!({"username": "alice2", "name": "Alice Liddell"}),
        )
        .await
        .expect(200, "codersdk.User");
    assert_eq!(
        (u["username"].clone(), u["name"].clone()),
        (json!("alice2"), json!("Alice Liddell"))
    );
    alice
        .put(
            "/api/v2/users/me/profile",
            json!({"username": "OWNER", "name": ""}),
        )
        .await
        .expect_error(409, "A user with this username already exists.", None);
    let v = alice
        .put(
            "/api/v2/users/me/profile",
            json!({"username": "", "name": " padded "}),
        )
        .await
        .expect_error(400, "Validation failed.", None);
    let fields: Vec<_> = v["validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["field"].clone())
        .collect();
    assert_eq!(fields, [json!("username"), json!("name")]);
    alice
        .put(
            "/api/v2/users/owner/profile",
            json!({"username": "boss", "name": ""}),
        )
        .await
        .expect_error(403, "Forbidden.", None);

    // Password: Coder's checks in order; the change ends every key of the user.
    let token = alice
        .post("/api/v2/users/me/keys", json!({}))
        .await
        .expect(201, "codersdk.GenerateAPIKeyResponse")["key"]
        .as_str()
        .unwrap()
        .to_string();
    let pw = "/api/v2/users/me/password";
    alice
        .put(pw, json!({"password": "An0ther-Password!"}))
        .await
        .expect_error(400, "Old password is required.", None);
    let v = alice
        .put(
            pw,
            json!({"old_password": "member-password", "password": "aaaaaa"}),
        )
        .await
        .expect_error(400, "Invalid password.", None);
    assert_eq!(v["validations"][0]["field"], "password");
    alice
        .put(
            pw,
            json!({"old_password": "wrong-Password-1", "password": "An0ther-Password!"}),
        )
        .await
        .expect_error(400, "Old password is incorrect.", None);
    alice
        .put(
            pw,
            json!({"old_password": "member-password", "password": "member-password"}),
        )
        .await
        .expect_error(400, "New password cannot match old password.", None);
    let r = alice
        .put(
            pw,
            json!({"old_password": "member-password", "password": "An0ther-Password!"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    for t in [alice.token(), token.as_str()] {
        assert_eq!(s.client(t).get("/api/v2/users/me").await.status, 401);
    }
    let again = s.login("alice@example.com", "An0ther-Password!").await;
    assert_eq!(
        again.get("/api/v2/users/me").await.json()["id"],
        alice_id.as_str()
    );
    // The owner sets another's without the old one; a member cannot see to another's.
    let r = owner
        .put(
            &format!("/api/v2/users/{alice_id}/password"),
            json!({"password": "Third-Password-3"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let alice = s.login("alice@example.com", "Third-Password-3").await;
    alice
        .put(
            "/api/v2/users/owner/password",
            json!({"password": "Owned-Password-4"}),
        )
        .await
        .expect_error(
            404,
            "Resource not found or you do not have access to this resource",
            None,
        );

    // A password's strength, asked with no session.
    let r = s
        .anon()
        .post(
            "/api/v2/users/validate-password",
            json!({"password": "password"}),
        )
        .await
        .expect(200, "codersdk.ValidateUserPasswordResponse");
    assert_eq!(
        r,
        json!({"valid": false, "details": "insecure password, try including more special characters, using uppercase letters, using numbers or using a longer password"})
    );
    let r = s
        .anon()
        .post(
            "/api/v2/users/validate-password",
            json!({"password": "SomeSecurePassword!"}),
        )
        .await
        .json();
    assert_eq!(r, json!({"valid": true, "details": ""}));
}

#[actix_web::test]
async fn organization_members_with_no_organization_roles() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let alice = s.user(&owner, "alice", &["template-admin"]).await;
    let org = owner.get("/api/v2/organizations/coder").await.json();
    let org_id = org["id"].as_str().unwrap();
    let members = alice
        .get("/api/v2/organizations/coder/members")
        .await
        .expect(200, "[]codersdk.OrganizationMemberWithUserData");
    let names: Vec<_> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].clone())
        .collect();
    assert_eq!(names, [json!("alice"), json!("owner")]);
    for m in members.as_array().unwrap() {
        assert_eq!(m["organization_id"], org_id);
        assert_eq!(m["roles"], json!([]));
        assert_go_uuid(&m["user_id"], "user_id");
    }
    assert_eq!(members[0]["global_roles"][0]["name"], "template-admin");
    let one = alice
        .get(&format!("/api/v2/organizations/{org_id}/members/owner"))
        .await
        .expect(200, "codersdk.OrganizationMemberWithUserData");
    assert_eq!(one["username"], "owner");
    alice
        .get("/api/v2/organizations/coder/members/nobody")
        .await
        .expect_error(
            404,
            "Resource not found or you do not have access to this resource",
            None,
        );
    let roles = alice
        .get("/api/v2/organizations/coder/members/roles")
        .await
        .expect(200, "[]codersdk.AssignableRoles");
    assert_eq!(roles, json!([]));

    // Roles: never one's own; the owner may set none (organization-member is implied).
    let put = |c: &Client, user: &str, roles: Value| {
        let c = c.clone();
        let path = format!("/api/v2/organizations/coder/members/{user}/roles");
        async move { c.put(&path, json!({"roles": roles})).await }
    };
    put(&owner, "owner", json!([])).await.expect_error(
        400,
        "You cannot change your own organization roles.",
        None,
    );
    put(&alice, "owner", json!([]))
        .await
        .expect_error(403, "Forbidden.", None);
    let m = put(&owner, "alice", json!(["organization-member"]))
        .await
        .expect(200, "codersdk.OrganizationMember");
    assert_eq!(m["roles"], json!([]));
    put(&owner, "alice", json!(["organization-admin"]))
        .await
        .expect_error(
            400,
            "\"organization-admin\" is not a supported organization role",
            None,
        );
}

#[actix_web::test]
async fn coder_tokens_create_list_view_and_remove() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let alice = s.user(&owner, "alice", &[]).await;
    // `coder tokens create`: the config first, then the token with the longest lifetime.
    let cfg = alice
        .get("/api/v2/users/me/keys/tokens/tokenconfig")
        .await
        .expect(200, "codersdk.TokenConfig");
    assert_eq!(
        cfg["max_token_lifetime"],
        json!(3_155_760_000_000_000_000i64)
    );
    let owner_cfg = owner
        .get("/api/v2/users/me/keys/tokens/tokenconfig")
        .await
        .json();
    assert_eq!(
        owner_cfg["max_token_lifetime"],
        json!(604_800_000_000_000i64)
    );
    let made = alice
        .post(
            "/api/v2/users/me/keys/tokens",
            json!({"lifetime": cfg["max_token_lifetime"], "token_name": "ci"}),
        )
        .await
        .expect(201, "codersdk.GenerateAPIKeyResponse");
    let token = made["key"].as_str().unwrap().to_string();
    let id = token.split('-').next().unwrap().to_string();
    assert_eq!(
        s.client(&token).get("/api/v2/users/me").await.json()["username"],
        "alice"
    );
    alice
        .post("/api/v2/users/me/keys/tokens", json!({"token_name": "ci"}))
        .await
        .expect_error(409, "A token with name \"ci\" already exists.", None);
    let unnamed = alice
        .post("/api/v2/users/me/keys/tokens", json!({}))
        .await
        .expect(201, "codersdk.GenerateAPIKeyResponse");
    assert!(unnamed["key"].is_string());
    // Coder's refusals: a lifetime past the user's limit, a scope kiln does not grant.
    owner
        .post(
            "/api/v2/users/me/keys/tokens",
            json!({"lifetime": 604_800_000_000_001i64}),
        )
        .await
        .expect_error(
            400,
            "Failed to validate create API key request.",
            Some("lifetime must be less than 168h0m0s"),
        );
    alice
        .post("/api/v2/users/me/keys/tokens", json!({"lifetime": -1}))
        .await
        .expect_error(
            400,
            "Failed to validate create API key request.",
            Some("lifetime must be positive number greater than 0"),
        );
    alice
        .post(
            "/api/v2/users/me/keys/tokens",
            json!({"scope": "application_connect"}),
        )
        .await
        .expect_error(400, "Failed to create API key.", None);

    // `coder tokens list`: named tokens only (not sessions), with the owner's name.
    let listed = alice
        .get("/api/v2/users/me/keys/tokens")
        .await
        .expect(200, "[]codersdk.APIKey");
    let names: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["token_name"].clone())
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert_eq!(names[0], "ci");
    assert_eq!(listed[0]["username"], "alice");
    assert_eq!(listed[0]["lifetime_seconds"], json!(3_155_760_000i64));
    assert_eq!(listed[0]["login_type"], "token");
    let everyone = owner
        .get("/api/v2/users/me/keys/tokens?include_all=true")
        .await
        .json();
    assert_eq!(everyone.as_array().unwrap().len(), 2);
    let own_only = alice
        .get("/api/v2/users/me/keys/tokens?include_all=true")
        .await
        .json();
    assert_eq!(own_only.as_array().unwrap().len(), 2);
    let mine = owner.get("/api/v2/users/me/keys/tokens").await.json();
    assert_eq!(mine, json!([]));

    // `coder tokens view` and `remove`: by name, else by id.
    let by_name = alice
        .get("/api/v2/users/me/keys/tokens/ci")
        .await
        .expect(200, "codersdk.APIKey");
    assert_eq!(by_name["id"], id.as_str());
    let by_id = alice
        .get(&format!("/api/v2/users/me/keys/{id}"))
        .await
        .expect(200, "codersdk.APIKey");
    assert_eq!(by_id["token_name"], "ci");
    alice
        .get("/api/v2/users/me/keys/tokens/nope")
        .await
        .expect_error(
            404,
            "Resource not found or you do not have access to this resource",
            None,
        );
    let bob = s.user(&owner, "bob", &[]).await;
    bob.get(&format!("/api/v2/users/me/keys/{id}"))
        .await
        .expect_error(
            404,
            "Resource not found or you do not have access to this resource",
            None,
        );
    let r = alice
        .send(
            alice.request("DELETE", &format!("/api/v2/users/me/keys/{id}")),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(s.client(&token).get("/api/v2/users/me").await.status, 401);
}

#[actix_web::test]
async fn templates_and_versions_change_as_coders_dashboard_changes_them() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let member = s.user(&owner, "alice", &[]).await;
    let v = version(&owner, &quick()).await;
    let t = owner
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "base", "template_version_id": v["id"]}),
        )
        .await
        .expect(201, "codersdk.Template");
    let id = t["id"].as_str().unwrap().to_string();
    let path = format!("/api/v2/templates/{id}");
    // The dashboard sends its whole form back: unchanged fields kiln lacks are fine.
    let mut form = t.clone();
    form["display_name"] = json!("Base image");
    form["default_ttl_ms"] = json!(3_600_000);
    let body: Value = json!({
        "name": form["name"], "display_name": form["display_name"], "description": form["description"],
        "icon": form["icon"], "default_ttl_ms": form["default_ttl_ms"],
        "allow_user_cancel_workspace_jobs": form["allow_user_cancel_workspace_jobs"],
        "activity_bump_ms": t["activity_bump_ms"], "failure_ttl_ms": 0,
        "update_workspace_last_used_at": false, "require_active_version": false
    });
    let u = owner
        .patch(&path, body.clone())
        .await
        .expect(200, "codersdk.Template");
    assert_eq!(u["display_name"], "Base image");
    assert_eq!(u["default_ttl_ms"], 3_600_000);
    // The same again: nothing changed, 304 with no body.
    let r = owner.patch(&path, body).await;
    assert_eq!((r.status, r.body.len()), (304, 0));
    let v = owner
        .patch(&path, json!({"failure_ttl_ms": 120000}))
        .await
        .expect_error(400, "Invalid request to update template metadata!", None);
    assert_eq!(v["validations"][0]["field"], "failure_ttl_ms");
    owner
        .patch(&path, json!({"default_ttl_ms": -1}))
        .await
        .expect_error(400, "Invalid request to update template metadata!", None);
    member
        .patch(&path, json!({"display_name": "x"}))
        .await
        .expect_error(403, "Forbidden.", None);
    template(&owner, "other", quick()).await;
    owner
        .patch(&path, json!({"name": "other"}))
        .await
        .expect_error(409, "Template with name \"other\" already exists.", None);

    // A version's name and message; the version before one; archiving.
    let first = t["active_version_id"].as_str().unwrap().to_string();
    let second = owner
        .import_version(
            crate::common::tar_of(&[("kiln.json", &quick().to_string())]),
            Some(&id),
        )
        .await;
    let second_id = second["id"].as_str().unwrap().to_string();
    let v = owner
        .patch(
            &format!("/api/v2/templateversions/{first}"),
            json!({"name": "v1", "message": "the first"}),
        )
        .await
        .expect(200, "codersdk.TemplateVersion");
    assert_eq!(
        (v["name"].clone(), v["message"].clone()),
        (json!("v1"), json!("the first"))
    );
    owner
        .patch(
            &format!("/api/v2/templateversions/{second_id}"),
            json!({"name": "v1"}),
        )
        .await
        .expect_error(
            400,
            "template version name must be unique for a template",
            None,
        );
    owner
        .patch(
            &format!("/api/v2/templateversions/{second_id}"),
            json!({"name": "v2"}),
        )
        .await
        .expect(200, "codersdk.TemplateVersion");
    let prev = owner
        .get("/api/v2/organizations/coder/templates/base/versions/v2/previous")
        .await
        .expect(200, "codersdk.TemplateVersion");
    assert_eq!(prev["id"], first.as_str());
    owner
        .get("/api/v2/organizations/coder/templates/base/versions/v1/previous")
        .await
        .expect_error(404, "No previous template version found for \"v1\".", None);
    owner
        .get("/api/v2/organizations/coder/templates/base/versions/v9/previous")
        .await
        .expect_error(404, "No template version found by name \"v9\".", None);
    // The active version cannot be archived; the other can, and leaves the list.
    owner
        .post(
            &format!("/api/v2/templateversions/{first}/archive"),
            json!({}),
        )
        .await
        .expect_error(400, "Internal error fetching template version.", None);
    let r = owner
        .post(
            &format!("/api/v2/templateversions/{second_id}/archive"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!(format!("template version \"{second_id}\" archived"))
    );
    owner
        .post(
            &format!("/api/v2/templateversions/{second_id}/archive"),
            json!({}),
        )
        .await
        .expect_error(400, "Template version already archived", None);
    let listed = owner.get(&format!("{path}/versions")).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let all = owner
        .get(&format!("{path}/versions?include_archived=true"))
        .await
        .json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|v| v["archived"] == true)
    );
    let r = owner
        .post(
            &format!("/api/v2/templateversions/{second_id}/unarchive"),
            json!({}),
        )
        .await;
    assert_eq!(
        r.json(),
        json!(format!("template version \"{second_id}\" unarchived"))
    );

    // Deleting: refused while a workspace uses it.
    let (ws, first) = workspace(&member, &id, "dev", json!([])).await;
    owner
        .send(owner.request("DELETE", &path), None)
        .await
        .expect_error(
            400,
            "All workspaces must be deleted before a template can be removed.",
            None,
        );
    member.wait_build(&first).await;
    let del = member
        .post(
            &format!("/api/v2/workspaces/{ws}/builds"),
            json!({"transition": "delete"}),
        )
        .await
        .expect(201, "codersdk.WorkspaceBuild");
    member.wait_build(del["id"].as_str().unwrap()).await;
    let r = owner.send(owner.request("DELETE", &path), None).await;
    assert_eq!(
        r.expect(200, "codersdk.Response")["message"],
        "Template has been deleted!"
    );
    owner.get(&path).await.expect_error(
        404,
        "Resource not found or you do not have access to this resource",
        None,
    );
}

#[actix_web::test]
async fn workspace_names_updates_and_remembered_parameters() {
    let s = TestApp::start_with_args(&["--allow-workspace-renames"]);
    let owner = s.owner().await;
    let alice = s.user(&owner, "alice", &[]).await;
    let t = template(&owner, "base", quick()).await;
    let (ws, b1) = workspace(
        &alice,
        &t,
        "dev",
        json!([{"name": "region", "value": "us"}]),
    )
    .await;
    alice.wait_build(&b1).await;
    let path = format!("/api/v2/workspaces/{ws}");
    let w = alice.get(&path).await.json();
    assert_eq!(w["allow_renames"], true);
    // Rename: Coder's answers.
    let r = alice.patch(&path, json!({"name": "dev"})).await;
    assert_eq!(r.status, 204);
    let r = alice.patch(&path, json!({"name": "box"})).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(alice.get(&path).await.json()["name"], "box");
    let v = alice
        .patch(&path, json!({}))
        .await
        .expect_error(400, "Validation failed.", None);
    assert_eq!(
        v["validations"][0]["detail"],
        "Validation failed for tag \"username\" with value: \"\""
    );
    let (_, b2) = workspace(&alice, &t, "other", json!([])).await;
    alice.wait_build(&b2).await;
    alice
        .patch(&path, json!({"name": "other"}))
        .await
        .expect_error(409, "Workspace \"other\" already exists.", None);
    let bob = s.user(&owner, "bob", &[]).await;
    bob.patch(&path, json!({"name": "mine"}))
        .await
        .expect_error(
            404,
            "Resource not found or you do not have access to this resource",
            None,
        );
    // Automatic updates.
    let r = alice
        .put(
            &format!("{path}/autoupdates"),
            json!({"automatic_updates": "always"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(alice.get(&path).await.json()["automatic_updates"], "always");
    alice
        .put(
            &format!("{path}/autoupdates"),
            json!({"automatic_updates": "sometimes"}),
        )
        .await
        .expect_error(400, "Invalid request", None);
    // The values last given to the template's parameters.
    let filled = alice
        .get(&format!(
            "/api/v2/users/me/autofill-parameters?template_id={t}"
        ))
        .await
        .expect(200, "[]codersdk.UserParameter");
    let region = filled
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "region")
        .cloned();
    assert_eq!(
        region.map(|p| p["value"].clone()),
        Some(json!("eu")),
        "{filled}"
    );
    let v = alice
        .get("/api/v2/users/me/autofill-parameters")
        .await
        .expect_error(400, "Invalid query parameters.", None);
    assert_eq!(
        v["validations"][0]["detail"],
        "Query param \"template_id\" is required and cannot be empty"
    );
    // A server without the flag refuses renames, as Coder's default.
    let plain = TestApp::start();
    let o = plain.owner().await;
    let t2 = template(&o, "base", quick()).await;
    let (w2, b) = workspace(&o, &t2, "dev", json!([])).await;
    o.wait_build(&b).await;
    o.patch(&format!("/api/v2/workspaces/{w2}"), json!({"name": "box"}))
        .await
        .expect_error(400, "Workspace renames are not allowed.", None);
}

#[actix_web::test]
async fn the_dashboards_first_calls_regions_and_deployment_config() {
    let s = TestApp::start_with_args(&["--workers", "2", "--allow-workspace-renames"]);
    let owner = s.owner().await;
    let member = s.user(&owner, "alice", &[]).await;
    let regions = member
        .get("/api/v2/regions")
        .await
        .expect(200, "codersdk.RegionsResponse-codersdk_Region");
    let primary = &regions["regions"][0];
    assert_eq!(primary["name"], "primary");
    assert_eq!(primary["healthy"], true);
    assert_eq!(primary["path_app_url"], s.url("").trim_end_matches('/'));
    let examples = member
        .get("/api/v2/templates/examples")
        .await
        .expect(200, "[]codersdk.TemplateExample");
    assert_eq!(examples, json!([]));

    let cfg = owner
        .get("/api/v2/deployment/config")
        .await
        .expect(200, "codersdk.DeploymentConfig");
    assert_eq!(cfg["config"]["provisioner"]["daemons"], 2);
    assert_eq!(cfg["config"]["allow_workspace_renames"], true);
    assert_eq!(cfg["config"]["http_address"], "127.0.0.1:0");
    let option = |flag: &str| {
        cfg["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["flag"] == flag)
            .cloned()
            .unwrap_or_else(|| panic!("no option {flag}: {cfg}"))
    };
    let workers = option("workers");
    assert_eq!(
        (workers["value"].clone(), workers["value_source"].clone()),
        (json!("2"), json!("flag"))
    );
    assert_eq!(workers["env"], "KILN_WORKERS");
    let lease = option("provisioner-lease");
    assert_eq!(
        (lease["value"].clone(), lease["value_source"].clone()),
        (json!("30s"), json!("default"))
    );
    assert_eq!(option("database")["value"], "");
    member
        .get("/api/v2/deployment/config")
        .await
        .expect_error(403, "Forbidden.", None);
}

#[actix_web::test]
async fn dynamic_parameters_as_coders_create_form_reads_them() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let alice = s.user(&owner, "alice", &[]).await;
    let alice_id = alice.get("/api/v2/users/me").await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = template(&owner, "preview", preview_manifest()).await;
    let version = active_version(&owner, &t).await;
    let evaluate = format!("/api/v2/templateversions/{version}/dynamic-parameters/evaluate");
    // One request: id 0, each parameter with its value and what is wrong with it.
    let r = alice
        .post(
            &evaluate,
            json!({"id": 7, "owner_id": alice_id, "inputs": {"region": "mars"}}),
        )
        .await
        .expect(200, "codersdk.DynamicParametersResponse");
    assert_eq!(r["id"], 0);
    assert_eq!(r["diagnostics"], json!([]));
    let region = &r["parameters"][0];
    assert_eq!(region["name"], "region");
    assert_eq!(region["form_type"], "radio");
    assert_eq!(region["value"], json!({"value": "mars", "valid": true}));
    assert_eq!(region["diagnostics"][0]["severity"], "error");
    let r = alice
        .post(&evaluate, json!({"id": 1, "inputs": {"region": "us"}}))
        .await
        .json();
    assert_eq!(r["parameters"][0]["diagnostics"], json!([]));
    let r = alice
        .post(
            &evaluate,
            json!({"id": 1, "owner_id": "3b241101-e2bb-4255-8caf-4136c566a962", "inputs": {}}),
        )
        .await
        .expect(200, "codersdk.DynamicParametersResponse");
    assert_eq!(r["parameters"], Value::Null);
    assert_eq!(r["diagnostics"][0]["extra"]["code"], "owner_not_found");

    // Over a WebSocket: an answer at once (id -1), then one per request, ids growing.
    let url = s
        .url(&format!(
            "/api/v2/templateversions/{version}/dynamic-parameters?user_id={alice_id}"
        ))
        .replacen("http://", "ws://", 1);
    let (_, mut conn) = awc::Client::new()
        .ws(url)
        .header("Coder-Session-Token", alice.token())
        .connect()
        .await
        .expect("WebSocket upgrade");
    use futures_util::SinkExt;
    macro_rules! next {
        () => {{
            loop {
                let frame = actix_web::rt::time::timeout(Duration::from_secs(10), conn.next())
                    .await
                    .expect("an answer")
                    .expect("open")
                    .expect("a frame");
                if let awc::ws::Frame::Text(bytes) = frame {
                    let v: Value = serde_json::from_slice(&bytes).unwrap();
                    assert_valid("codersdk.DynamicParametersResponse", &v);
                    break v;
                }
            }
        }};
    }
    let first = next!();
    assert_eq!(first["id"], -1);
    assert_eq!(first["parameters"][0]["value"]["value"], "eu");
    for (id, want) in [(1, 1), (1, 2), (10, 10)] {
        conn.send(awc::ws::Message::Text(
            json!({"id": id, "owner_id": "00000000-0000-0000-0000-000000000000", "inputs": {"region": "us"}})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        let v = next!();
        assert_eq!(v["id"], want);
        assert_eq!(v["parameters"][0]["value"]["value"], "us");
    }

    // Before the import has finished: 425.
    let dir = tempfile::tempdir().unwrap();
    let token = {
        let s = TestApp::start_in(dir.path(), &[]);
        s.owner().await.token().to_string()
    };
    let idle = TestApp::start_in(dir.path(), &["--workers", "0"]);
    let owner = idle.client(&token);
    let v = unfinished_version(&owner).await;
    owner
        .post(
            &format!(
                "/api/v2/templateversions/{}/dynamic-parameters/evaluate",
                v["id"].as_str().unwrap()
            ),
            json!({"id": 1, "inputs": {}}),
        )
        .await
        .expect_error(425, "Template version job has not finished", None);
}

/// A time as Go's `time.Time` decodes it: RFC 3339.
fn assert_go_time(v: &Value, what: &str) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {v} is no time"));
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{what}: {s:?}: {e}"));
}

/// A workspace and its latest build, as codersdk decodes them.
fn assert_go_workspace(w: &Value) {
    assert_valid("codersdk.Workspace", w);
    for f in [
        "id",
        "owner_id",
        "organization_id",
        "template_id",
        "template_active_version_id",
    ] {
        assert_go_uuid(&w[f], f);
    }
    assert_go_time(&w["created_at"], "created_at");
    let b = &w["latest_build"];
    for f in ["id", "workspace_id", "template_version_id", "initiator_id"] {
        assert_go_uuid(&b[f], f);
    }
    assert_go_job(&b["job"]);
}

#[actix_web::test]
async fn coders_cli_create_start_restart_stop_delete_request_by_request() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let alice = s.user(&owner, "alice", &[]).await;
    template(&owner, "preview", preview_manifest()).await;
    template(&owner, "other", quick()).await;

    // `coder create dev -t preview --parameter region=us -y`
    alice
        .get("/api/v2/users/me/workspace/dev?include_deleted=false")
        .await
        .expect_error(
            404,
            "Resource not found or you do not have access to this resource",
            None,
        );
    let found = alice
        .get("/api/v2/templates?q=exact_name%3A%22preview%22")
        .await
        .expect(200, "[]codersdk.Template");
    assert_eq!(
        found.as_array().unwrap().len(),
        1,
        "exactly the one named: {found}"
    );
    let t = &found[0];
    let version = t["active_version_id"].as_str().unwrap().to_string();
    alice
        .get(&format!("/api/v2/templateversions/{version}"))
        .await
        .expect(200, "codersdk.TemplateVersion");
    let presets = alice
        .get(&format!("/api/v2/templateversions/{version}/presets"))
        .await
        .json();
    assert_eq!(presets, json!([]));
    alice
        .get(&format!(
            "/api/v2/templateversions/{version}/rich-parameters"
        ))
        .await
        .expect(200, "[]codersdk.TemplateVersionParameter");
    alice
        .get(&format!("/api/v2/templateversions/{version}/external-auth"))
        .await
        .expect(200, "[]codersdk.TemplateVersionExternalAuth");
    let params = json!([{"name": "region", "value": "us"}]);
    let job = dry_run(
        &alice,
        &version,
        json!({"workspace_name": "dev", "rich_parameter_values": params}),
    )
    .await
    .expect(201, "codersdk.ProvisionerJob");
    let job = job["id"].as_str().unwrap().to_string();
    let base = format!("/api/v2/templateversions/{version}/dry-run/{job}");
    alice
        .get(&format!("{base}/matched-provisioners"))
        .await
        .expect(200, "codersdk.MatchedProvisioners");
    follow_as_the_cli(&s, &alice, &format!("{base}/logs")).await;
    assert_eq!(alice.get(&base).await.json()["status"], "succeeded");
    alice
        .get(&format!("{base}/resources"))
        .await
        .expect(200, "[]codersdk.WorkspaceResource");
    // Go sends every field of CreateWorkspaceRequest, the unset ones as zero values.
    let w = alice
        .post(
            "/api/v2/users/me/workspaces",
            json!({"template_id": t["id"], "template_version_id": "00000000-0000-0000-0000-000000000000",
                   "name": "dev", "autostart_schedule": null, "ttl_ms": null,
                   "rich_parameter_values": params, "automatic_updates": "",
                   "template_version_preset_id": "00000000-0000-0000-0000-000000000000"}),
        )
        .await
        .expect(201, "codersdk.Workspace");
    assert_go_workspace(&w);
    let build = w["latest_build"]["id"].as_str().unwrap().to_string();
    follow_as_the_cli(&s, &alice, &format!("/api/v2/workspacebuilds/{build}/logs")).await;
    let b = alice
        .get(&format!("/api/v2/workspacebuilds/{build}"))
        .await
        .expect(200, "codersdk.WorkspaceBuild");
    assert_eq!(b["job"]["status"], "succeeded");

    // `coder stop dev`, then `coder start dev` (its dry run, then the build).
    let ws = w["id"].as_str().unwrap().to_string();
    let builds = format!("/api/v2/workspaces/{ws}/builds");
    let go_build = |transition: &str| {
        json!({"template_version_id": "00000000-0000-0000-0000-000000000000", "transition": transition,
               "rich_parameter_values": null, "log_level": "", "reason": "cli",
               "template_version_preset_id": "00000000-0000-0000-0000-000000000000"})
    };
    let stop = alice
        .post(&builds, go_build("stop"))
        .await
        .expect(201, "codersdk.WorkspaceBuild");
    follow_as_the_cli(
        &s,
        &alice,
        &format!(
            "/api/v2/workspacebuilds/{}/logs",
            stop["id"].as_str().unwrap()
        ),
    )
    .await;
    let w = alice
        .get("/api/v2/users/me/workspace/dev?include_deleted=false")
        .await
        .json();
    assert_go_workspace(&w);
    assert_eq!(w["latest_build"]["status"], "stopped");
    dry_run(
        &alice,
        &version,
        json!({"workspace_name": "dev", "rich_parameter_values": null}),
    )
    .await
    .expect(201, "codersdk.ProvisionerJob");
    let start = alice
        .post(&builds, go_build("start"))
        .await
        .expect(201, "codersdk.WorkspaceBuild");
    follow_as_the_cli(
        &s,
        &alice,
        &format!(
            "/api/v2/workspacebuilds/{}/logs",
            start["id"].as_str().unwrap()
        ),
    )
    .await;

    // `coder restart dev` (newest): one stop carrying the start, then the next build by number.
    let mut restart = go_build("stop");
    restart["on_success"] = json!({"transition": "start", "rich_parameter_values": null,
        "template_version_id": "00000000-0000-0000-0000-000000000000", "template_version_preset_id": ""});
    let stop = alice
        .post(&builds, restart)
        .await
        .expect(201, "codersdk.WorkspaceBuild");
    let next = stop["build_number"].as_i64().unwrap() + 1;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = alice
            .get(&format!("/api/v2/users/me/workspace/dev/builds/{next}"))
            .await;
        if r.status == 200 && r.json()["job"]["status"] == "succeeded" {
            assert_eq!(r.json()["transition"], "start");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restart's start did not come: {}",
            r.text()
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }

    // `coder delete dev -y`.
    let mut delete = go_build("delete");
    delete["orphan"] = json!(false);
    let d = alice
        .post(&builds, delete)
        .await
        .expect(201, "codersdk.WorkspaceBuild");
    follow_as_the_cli(
        &s,
        &alice,
        &format!("/api/v2/workspacebuilds/{}/logs", d["id"].as_str().unwrap()),
    )
    .await;
    alice
        .get("/api/v2/users/me/workspace/dev?include_deleted=false")
        .await
        .expect_error(
            404,
            "Resource not found or you do not have access to this resource",
            None,
        );

    // `coder users list` (the owner).
    let users = owner
        .get("/api/v2/users?q=&limit=0")
        .await
        .expect(200, "codersdk.GetUsersResponse");
    assert_eq!(users["count"], 2);
    for u in users["users"].as_array().unwrap() {
        assert_go_uuid(&u["id"], "id");
        assert_go_time(&u["created_at"], "created_at");
    }
}
