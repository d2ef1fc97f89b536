//! External provisioners over real HTTP, without daemons: keys (Coder's endpoints and errors),
//! the provisioner daemons' protocol spoken by hand (its refusals of bad keys and bad input),
//! and a daemon that cannot choose what a version runs. (Real `kiln provisioner start` daemons
//! are in `tests/process/provisioners.rs`, faults in `tests/process/provisioner_faults.rs`.)

use crate::common::daemon::*;
use crate::common::fixtures::*;
use crate::common::{Client, Kiln, TestApp};
use serde_json::{Value, json};

const KEYS: &str = "/api/v2/organizations/coder/provisionerkeys";

#[actix_web::test]
async fn provisioner_keys_have_coders_endpoints_and_errors() {
    let s = TestApp::start_with_args(&["--workers", "2"]);
    let owner = s.owner().await;
    let secret = new_key(&owner, "farm", json!({"os": "linux"})).await;
    assert_eq!(secret.len(), 43, "{secret}");
    // Names: case-insensitive uniqueness, required, at most 64 characters, not reserved.
    owner
        .post(KEYS, json!({"name": "FARM"}))
        .await
        .expect_error(
            409,
            "Provisioner key with name 'FARM' already exists in organization",
            None,
        );
    let v = owner
        .post(KEYS, json!({"name": ""}))
        .await
        .expect_error(400, "Name is required", None);
    assert_eq!(v["validations"][0]["field"], "name");
    owner
        .post(KEYS, json!({"name": "x".repeat(65)}))
        .await
        .expect_error(400, "Name must be at most 64 characters", None);
    owner
        .post(KEYS, json!({"name": "Built-In"}))
        .await
        .expect_error(400, "Name cannot be reserved name 'Built-In'", None);
    owner
        .post_raw(KEYS, "application/json", b"[1]".to_vec())
        .await
        .expect_error(400, "Request body must be valid JSON.", None);
    // The list: no secret, Coder's shape.
    let list = owner
        .get(KEYS)
        .await
        .expect(200, "[]codersdk.ProvisionerKey");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "farm");
    assert_eq!(list[0]["tags"], json!({"os": "linux"}));
    assert!(!list[0].to_string().contains(&secret));
    // Owner only.
    let member = s.user(&owner, "member", &[]).await;
    member.get(KEYS).await.expect_error(403, "Forbidden.", None);
    member
        .post(KEYS, json!({"name": "mine"}))
        .await
        .expect_error(403, "Forbidden.", None);
    let r = member.request("DELETE", &format!("{KEYS}/farm"));
    member
        .send(r, None)
        .await
        .expect_error(403, "Forbidden.", None);
    member
        .get("/api/v2/organizations/coder/provisionerdaemons")
        .await
        .expect_error(403, "Forbidden.", None);
    for path in [
        "/api/v2/organizations/nope/provisionerkeys",
        "/api/v2/organizations/nope/provisionerdaemons",
    ] {
        owner.get(path).await.expect_error(404, NOT_FOUND, None);
    }
    // Delete by name; then it is gone.
    let r = owner.request("DELETE", &format!("{KEYS}/farm"));
    assert_eq!(owner.send(r, None).await.status, 204);
    let r = owner.request("DELETE", &format!("{KEYS}/farm"));
    owner.send(r, None).await.expect_error(404, NOT_FOUND, None);
    assert_eq!(owner.get(KEYS).await.json(), json!([]));
    // The built-in workers are listed as daemons, idle, untagged.
    let listed = daemons(&owner).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    for d in &listed {
        assert_daemon(d);
        assert_eq!(d["status"], "idle", "{d}");
        assert_eq!(d["key_name"], "built-in");
        assert_eq!(d["tags"], json!({"scope": "organization", "owner": ""}));
    }
}

/// POSTs to the protocol with `key` (or none) and a user's token (when `user` is given).
async fn call(
    s: &TestApp,
    path: &str,
    key: Option<&str>,
    user: Option<&Client>,
    body: Value,
) -> crate::common::Resp {
    let c = user.cloned().unwrap_or_else(|| s.anon());
    let mut req = c
        .request("POST", &format!("/api/v2/provisionerd{path}"))
        .insert_header(("Content-Type", "application/json"));
    if let Some(k) = key {
        req = req.insert_header((KEY_HEADER, k));
    }
    c.send(req, Some(body.to_string().into_bytes())).await
}

#[actix_web::test]
async fn the_protocol_takes_only_provisioner_keys_and_refuses_bad_input() {
    let s = TestApp::start_with_args(&["--workers", "0"]);
    let owner = s.owner().await;
    let key = new_key(&owner, "k", json!({"os": "linux"})).await;
    let nil = "00000000-0000-0000-0000-000000000000";
    let paths = [
        "/register".to_string(),
        "/acquire".into(),
        format!("/jobs/{nil}/update"),
        format!("/jobs/{nil}/complete"),
        format!("/jobs/{nil}/fail"),
        format!("/jobs/{nil}/release"),
    ];
    for p in &paths {
        // A user token of any role is no provisioner key.
        call(
            &s,
            p,
            None,
            Some(&owner),
            json!({"daemon_id": nil, "name": "x"}),
        )
        .await
        .expect_error(401, "Provisioner daemon key required.", None);
        call(&s, p, Some("not-a-key"), None, json!({}))
            .await
            .expect_error(401, "Provisioner daemon key invalid.", None);
        call(&s, p, Some(&key), None, json!([])).await.expect_error(
            400,
            "Request body must be valid JSON.",
            None,
        );
    }
    call(&s, "/register", Some(&key), None, json!({"name": ""}))
        .await
        .expect_error(400, "Validation failed.", None);
    // A daemon carries exactly its key's tags, as in Coder: naming its own is refused, even
    // the key's own.
    for tags in [json!({"pool": "secure"}), json!({"os": "linux"})] {
        let r = call(
            &s,
            "/register",
            Some(&key),
            None,
            json!({"name": "d", "tags": tags}),
        )
        .await;
        r.expect_error(
            403,
            "You aren't allowed to create provisioner daemons with scope \"\"",
            Some("tags are not allowed when using a provisioner key"),
        );
    }
    let r = owner
        .get("/api/v2/organizations/coder/provisionerdaemons")
        .await;
    assert_eq!(r.json(), json!([]), "nothing registered");
    let reg = call(&s, "/register", Some(&key), None, json!({"name": "d"})).await;
    assert_eq!(reg.status, 200, "{}", reg.text());
    let reg = reg.json();
    assert_eq!(
        reg["tags"],
        json!({"os": "linux", "scope": "organization", "owner": ""})
    );
    let daemon = reg["daemon_id"].as_str().unwrap();
    // A daemon of another key, or none: 403.
    let other = new_key(&owner, "other", json!({})).await;
    call(
        &s,
        "/acquire",
        Some(&other),
        None,
        json!({"daemon_id": daemon}),
    )
    .await
    .expect_error(
        403,
        "This provisioner daemon is not registered with this key.",
        None,
    );
    // Nothing queued: an empty answer after the wait.
    let r = call(
        &s,
        "/acquire",
        Some(&key),
        None,
        json!({"daemon_id": daemon, "wait_ms": 50}),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // A job this daemon does not hold.
    let pending = owner
        .post(
            "/api/v2/organizations/coder/templateversions",
            json!({"storage_method": "file", "file_id": upload(&owner, &quick()).await, "provisioner": "echo"}),
        )
        .await
        .json();
    let job = pending["job"]["id"].as_str().unwrap();
    for (p, body) in [
        ("update", json!({"daemon_id": daemon})),
        ("fail", json!({"daemon_id": daemon, "error": "x"})),
        ("release", json!({"daemon_id": daemon})),
        (
            "complete",
            json!({"daemon_id": daemon, "result": {"kind": "import", "outcome": {"Invalid": "x"}}}),
        ),
    ] {
        call(&s, &format!("/jobs/{job}/{p}"), Some(&key), None, body)
            .await
            .expect_error(409, "job is not held by this provisioner", None);
    }
    call(
        &s,
        "/jobs/nope/update",
        Some(&key),
        None,
        json!({"daemon_id": daemon}),
    )
    .await
    .expect_error(400, "Invalid UUID \"nope\".", None);
    call(
        &s,
        &format!("/jobs/{job}/fail"),
        Some(&key),
        None,
        json!({"daemon_id": daemon, "error": ""}),
    )
    .await
    .expect_error(400, "Validation failed.", None);
}

#[actix_web::test]
async fn a_daemon_cannot_choose_what_a_version_runs() {
    let s = TestApp::start_with_args(&["--workers", "0"]);
    let owner = s.owner().await;
    let key = new_key(&owner, "k", json!({})).await;
    let reg = call(&s, "/register", Some(&key), None, json!({"name": "fake"})).await;
    assert_eq!(reg.status, 200, "{}", reg.text());
    let daemon = reg.json()["daemon_id"].as_str().unwrap().to_string();
    // The archive the owner uploaded: its start step logs "legit", and it has a README.
    let legit = manifest(json!([{"log": "legit"}]), json!([{"log": "bye"}]));
    let archive = crate::common::tar_of(&[
        ("kiln.json", &legit.to_string()),
        ("README.md", "the archive's readme"),
    ]);
    let file = owner
        .post_raw("/api/v2/files", "application/x-tar", archive)
        .await
        .json()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let v = owner
        .post(
            "/api/v2/organizations/coder/templateversions",
            json!({"storage_method": "file", "file_id": file, "provisioner": "echo"}),
        )
        .await
        .expect(201, "codersdk.TemplateVersion");
    let version = v["id"].as_str().unwrap().to_string();
    // The daemon takes the import, logs lines of its own, and completes it with a manifest
    // of its own (a step that would run on the server) and a README of its own.
    let take = |kind: &'static str| {
        let (s, key, daemon) = (&s, key.clone(), daemon.clone());
        async move {
            let r = call(
                s,
                "/acquire",
                Some(&key),
                None,
                json!({"daemon_id": daemon, "wait_ms": 5000}),
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text());
            let a = r.json();
            assert_eq!(a["work"]["kind"], kind, "{a}");
            a
        }
    };
    let job = take("import").await["job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let forged_line = |output: &str| {
        json!({"lines": [{"created_at": "2026-01-01T00:00:00Z", "source": "provisioner",
            "level": "info", "stage": "Starting workspace", "output": output}],
            "length": output.len(), "overflowed": false})
    };
    let r = call(
        &s,
        &format!("/jobs/{job}/update"),
        Some(&key),
        None,
        json!({"daemon_id": daemon, "logs": forged_line("forged while running")}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let forged = manifest(
        json!([{"run": "echo planted > /tmp/kiln-planted"}]),
        json!([{"log": "bye"}]),
    );
    let r = call(
        &s,
        &format!("/jobs/{job}/complete"),
        Some(&key),
        None,
        json!({"daemon_id": daemon, "logs": forged_line("forged at the end"), "result": {"kind": "import",
            "outcome": {"Valid": {"manifest": forged.to_string(), "readme": "forged readme"}}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "succeeded");
    // The version keeps what the server read from the archive, and its log is the server's.
    let v = owner
        .get(&format!("/api/v2/templateversions/{version}"))
        .await
        .expect(200, "codersdk.TemplateVersion");
    assert_eq!(v["readme"], "the archive's readme", "{v}");
    let logs = owner
        .get(&format!("/api/v2/templateversions/{version}/logs"))
        .await
        .expect(200, "[]codersdk.ProvisionerJobLog");
    let text = logs.to_string();
    assert!(!text.contains("forged"), "{text}");
    assert!(text.contains("kiln.json is valid: "), "{text}");
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .all(|l| l["stage"] != "Starting workspace"),
        "{text}"
    );
    // A build of the version hands the daemon the archive's steps.
    let t = owner
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "real", "template_version_id": version}),
        )
        .await
        .expect(201, "codersdk.Template");
    let w = owner
        .post(
            "/api/v2/organizations/coder/members/me/workspaces",
            json!({"name": "w", "template_id": t["id"], "rich_parameter_values": [{"name": "region", "value": "eu"}]}),
        )
        .await;
    assert_eq!(w.status, 201, "{}", w.text());
    let a = take("build").await;
    let text = a["work"]["manifest"].to_string();
    assert!(text.contains("legit"), "{text}");
    assert!(!text.contains("planted"), "{text}");
}
