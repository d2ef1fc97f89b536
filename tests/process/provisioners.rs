//! External provisioners over real processes: a `kiln server --workers 0` and `kiln provisioner
//! start` daemons. Jobs spread over daemons, tags and `matched_provisioners`, cancel of a
//! remote step, a daemon given tags with a key, and the daemon's key hidden from its steps.
//! Faults (kill -9, key deletion, server restart) are in `provisioner_faults.rs`.
//!
//! Process: daemons are processes of their own (their steps are found with `pgrep`, their
//! /proc entries read), and the binary is run to see a daemon refused.

use crate::common::daemon::*;
use crate::common::fixtures::*;
use crate::common::schema::assert_valid;
use crate::common::{Kiln, TestServer};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

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
            let file = upload(&owner, &quick()).await;
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
