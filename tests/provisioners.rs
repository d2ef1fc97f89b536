//! External provisioners over real processes: a `kiln server --workers 0` and `kiln provisioner
//! start` daemons. Keys (Coder's endpoints and errors), the daemons listing, jobs spread over
//! daemons, tags and `matched_provisioners`, cancel of a remote step, and the protocol's
//! refusals. Faults (kill -9, key deletion, server restart) are in `provisioner_faults.rs`.

mod common;
use common::builds::*;
use common::daemon::*;
use common::schema::assert_valid;
use common::{Client, TestServer};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const KEYS: &str = "/api/v2/organizations/coder/provisionerkeys";

#[actix_web::test]
async fn provisioner_keys_have_coders_endpoints_and_errors() {
    let s = TestServer::start_with_args(&["--workers", "2"]);
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
    s: &TestServer,
    path: &str,
    key: Option<&str>,
    user: Option<&Client>,
    body: Value,
) -> common::Resp {
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
    let s = TestServer::start_with_args(&["--workers", "0"]);
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
            json!({"storage_method": "file", "file_id": upload(&owner).await, "provisioner": "echo"}),
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

async fn upload(c: &Client) -> String {
    let archive = common::tar_of(&[("kiln.json", &quick().to_string())]);
    let r = c
        .post_raw("/api/v2/files", "application/x-tar", archive)
        .await;
    r.json()["hash"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn a_farm_of_two_daemons_runs_every_job() {
    let s = TestServer::start_with_args(&["--workers", "0"]);
    let owner = s.owner().await;
    let key = new_key(&owner, "farm", json!({})).await;
    let url = s.url("");
    let _a = Daemon::start(&url, &key, "alpha", &[]);
    let _b = Daemon::start(&url, &key, "beta", &[]);
    let t = template(
        &owner,
        "slow",
        manifest(json!([{"sleep_ms": 400}]), json!([])),
    )
    .await;
    let mut builds = Vec::new();
    for n in 0..6 {
        let (_, b) = workspace(&owner, &t, &format!("w{n}"), json!([])).await;
        builds.push(b);
    }
    let listed = daemons(&owner).await;
    let ids: BTreeSet<String> = listed
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let mut used = BTreeSet::new();
    for b in &builds {
        let b = finished(&owner, b).await;
        assert_eq!(b["job"]["status"], "succeeded", "{b}");
        let worker = b["job"]["worker_id"].as_str().unwrap().to_string();
        assert!(ids.contains(&worker), "{worker} is not a listed daemon");
        used.insert(worker);
    }
    assert_eq!(used.len(), 2, "the jobs spread over both daemons");
    let listed = daemons(&owner).await;
    assert_eq!(listed.len(), 2);
    for d in &listed {
        assert_daemon(d);
        assert_eq!(d["key_name"], "farm");
        assert_eq!(d["status"], "idle", "{d}");
        assert!(d["current_job"].is_null());
        assert_eq!(d["previous_job"]["status"], "succeeded", "{d}");
        assert_eq!(d["previous_job"]["template_name"], "slow", "{d}");
    }
    let names: BTreeSet<_> = listed.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(["alpha", "beta"]));
    // The status page's overview shows them.
    let o = owner.get("/api/v2/kiln/overview").await.json();
    let shown: BTreeSet<_> = o["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["kind"], "external", "{d}");
            assert_eq!(d["status"], "idle", "{d}");
            assert!(d["last_seen_at"].is_string(), "{d}");
            d["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(shown, BTreeSet::from(["alpha".into(), "beta".into()]));
}

#[actix_web::test]
async fn tags_route_jobs_and_count_matched_provisioners() {
    let s = TestServer::start_with_args(&["--workers", "0"]);
    let owner = s.owner().await;
    let key = new_key(&owner, "farm", json!({})).await;
    let arm_key = new_key(&owner, "arm", json!({"os": "linux", "arch": "arm"})).await;
    let url = s.url("");
    let tagged = Daemon::start(&url, &arm_key, "linux-box", &[]);
    let _plain = Daemon::start(&url, &key, "plain-box", &[]);
    let listed = daemons(&owner).await;
    let id_of = |name: &str| {
        listed
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {listed:?}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (tagged_id, plain_id) = (id_of(&tagged.name), id_of("plain-box"));
    // A version with provisioner_tags: its import and its builds go to the tagged daemon.
    let version = |tags: Value| {
        let owner = owner.clone();
        async move {
            let file = upload(&owner).await;
            let r = owner
                .post(
                    "/api/v2/organizations/coder/templateversions",
                    json!({"storage_method": "file", "file_id": file, "provisioner": "echo", "provisioner_tags": tags}),
                )
                .await;
            r.expect(201, "codersdk.TemplateVersion")
        }
    };
    let v = version(json!({"os": "linux"})).await;
    assert_eq!(
        v["job"]["tags"],
        json!({"os": "linux", "scope": "organization", "owner": ""})
    );
    let v = owner
        .wait_for(
            &format!("/api/v2/templateversions/{}", v["id"].as_str().unwrap()),
            "/job/status",
        )
        .await;
    assert_eq!(v["job"]["status"], "succeeded", "{v}");
    assert_eq!(v["job"]["worker_id"], tagged_id.as_str());
    let t = owner
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "linux", "template_version_id": v["id"]}),
        )
        .await
        .expect(201, "codersdk.Template");
    for n in 0..3 {
        let (_, b) = workspace(
            &owner,
            t["id"].as_str().unwrap(),
            &format!("l{n}"),
            json!([]),
        )
        .await;
        let b = finished(&owner, &b).await;
        assert_eq!(b["job"]["worker_id"], tagged_id.as_str(), "{b}");
        assert_eq!(b["job"]["tags"]["os"], "linux");
    }
    // Untagged work goes only to the untagged daemon.
    for n in 0..3 {
        let t = template(&owner, &format!("plain{n}"), quick()).await;
        let (_, b) = workspace(&owner, &t, &format!("p{n}"), json!([])).await;
        assert_eq!(
            finished(&owner, &b).await["job"]["worker_id"],
            plain_id.as_str()
        );
    }
    // A job nobody can take stays pending and says so.
    let v = version(json!({"os": "windows"})).await;
    assert_eq!(v["job"]["status"], "pending");
    assert_eq!(v["matched_provisioners"]["count"], 0, "{v}");
    assert!(v["matched_provisioners"]["most_recently_seen"].is_null());
    let v = version(json!({"arch": "arm"})).await;
    let id = v["id"].as_str().unwrap();
    let v = owner
        .wait_for(&format!("/api/v2/templateversions/{id}"), "/job/status")
        .await;
    assert_eq!(v["job"]["worker_id"], tagged_id.as_str());
    // A pending untagged job matches the untagged daemon only, counted until it is offline
    // (not heard from for the lease): killed just now, it still counts, as idle.
    drop(_plain);
    // Its last long poll (an idle worker's, 1 s) ends first: a job queued while the server
    // still answers it would be handed to the dead daemon (docs/provisioners.md, "Limits").
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let v = version(json!({})).await;
    assert_valid("codersdk.TemplateVersion", &v);
    assert_eq!(v["job"]["status"], "pending", "{v}");
    let m = &v["matched_provisioners"];
    assert_eq!(
        (m["count"].as_i64(), m["available"].as_i64()),
        (Some(1), Some(1)),
        "{m}"
    );
    assert!(m["most_recently_seen"].is_string(), "{m}");
}

#[actix_web::test]
async fn cancel_stops_a_remote_step_within_a_second() {
    let s = TestServer::start_with_args(&["--workers", "0"]);
    let owner = s.owner().await;
    let key = new_key(&owner, "farm", json!({})).await;
    let d = Daemon::start(&s.url(""), &key, "runner", &[]);
    // A sleep no other test runs: 30 s and this process's id as a fraction.
    let marker = format!("sleep 30.{}", std::process::id());
    let step = json!([{"run": format!("echo started; {marker}")}]);
    let t = template(&owner, "sleepy", manifest(step, json!([]))).await;
    let (_, b) = workspace(&owner, &t, "dev", json!([])).await;
    // Wait for the step's output to reach the server.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = owner
            .get(&format!("/api/v2/workspacebuilds/{b}/logs"))
            .await
            .text();
        if logs.contains("started") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the step never started: {logs}\n{}",
            d.log()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(pgrep(&marker), "the remote step runs");
    let r = owner
        .patch(&format!("/api/v2/workspacebuilds/{b}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let canceled = Instant::now();
    while pgrep(&marker) {
        assert!(
            canceled.elapsed() < Duration::from_secs(1),
            "the remote step still runs 1 s after the cancel"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "cancel to stopped on a remote job: {:?}",
        canceled.elapsed()
    );
    let b = finished(&owner, &b).await;
    assert_eq!(b["job"]["status"], "canceled", "{b}");
}

fn pgrep(marker: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[actix_web::test]
async fn a_daemon_cannot_choose_what_a_version_runs() {
    let s = TestServer::start_with_args(&["--workers", "0"]);
    let owner = s.owner().await;
    let key = new_key(&owner, "k", json!({})).await;
    let reg = call(&s, "/register", Some(&key), None, json!({"name": "fake"})).await;
    assert_eq!(reg.status, 200, "{}", reg.text());
    let daemon = reg.json()["daemon_id"].as_str().unwrap().to_string();
    // The archive the owner uploaded: its start step logs "legit", and it has a README.
    let legit = manifest(json!([{"log": "legit"}]), json!([{"log": "bye"}]));
    let archive = common::tar_of(&[
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

#[test]
fn a_daemon_given_tags_with_a_key_is_refused_before_it_registers() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["provisioner", "start", "--url", "http://127.0.0.1:9"])
        .args(["--key", "some-key", "--tag", "pool=secure", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tags are not allowed when using a provisioner key"),
        "{err}"
    );
}

#[actix_web::test]
async fn the_daemons_key_is_not_left_where_its_steps_could_read_it() {
    let s = TestServer::start_with_args(&["--workers", "0"]);
    let owner = s.owner().await;
    let key = new_key(&owner, "k", json!({})).await;
    // One daemon takes the key from its environment, the other from its command line.
    let by_env = Daemon::start(&s.url(""), &key, "by-env", &[]);
    let by_flag = Daemon::start(&s.url(""), "", "by-flag", &["--key", &key]);
    for d in [&by_env, &by_flag] {
        for file in ["cmdline", "environ"] {
            let bytes = std::fs::read(format!("/proc/{}/{file}", d.pid())).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&key), "{} {file}: {text}", d.name);
        }
    }
    assert_eq!(daemons(&owner).await.len(), 2);
}
