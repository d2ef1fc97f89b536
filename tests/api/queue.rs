//! The queue's fairness: a worker takes the oldest pending job it can take, however many jobs it
//! cannot take stand ahead of it (Coder filters tags inside its acquire query).

use crate::common::daemon::*;
use crate::common::fixtures::*;
use crate::common::{Client, Kiln, TestApp};
use serde_json::{Value, json};
use std::time::Duration;

/// POSTs `body` to the daemons' protocol at `path` with provisioner key `key`.
async fn protocol(s: &TestApp, path: &str, key: &str, body: Value) -> Value {
    let c = s.anon();
    let req = c
        .request("POST", &format!("/api/v2/provisionerd{path}"))
        .insert_header(("Content-Type", "application/json"))
        .insert_header((KEY_HEADER, key));
    let r = c.send(req, Some(body.to_string().into_bytes())).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

/// A template whose version carries `provisioner_tags` {"pool": "secure"}: a daemon of a key
/// with that tag takes the import once (by hand) and never comes back, so the template's
/// builds wait for a daemon nobody runs.
async fn template_nobody_serves(s: &TestApp, owner: &Client) -> String {
    let key = new_key(owner, "secure", json!({"pool": "secure"})).await;
    let daemon = protocol(s, "/register", &key, json!({"name": "gone"})).await["daemon_id"]
        .as_str()
        .unwrap()
        .to_string();
    let file = upload(owner, &quick()).await;
    let v = owner
        .post(
            "/api/v2/organizations/coder/templateversions",
            json!({"storage_method": "file", "file_id": file, "provisioner": "echo",
                "provisioner_tags": {"pool": "secure"}}),
        )
        .await
        .expect(201, "codersdk.TemplateVersion");
    let a = protocol(
        s,
        "/acquire",
        &key,
        json!({"daemon_id": daemon, "wait_ms": 5000}),
    )
    .await;
    assert_eq!(a["work"]["kind"], "import", "{a}");
    let job = a["job"]["id"].as_str().unwrap();
    let done = protocol(
        s,
        &format!("/jobs/{job}/complete"),
        &key,
        json!({"daemon_id": daemon, "logs": {"lines": [], "length": 0, "overflowed": false},
            "result": {"kind": "import", "outcome": {"Valid": {"manifest": "", "readme": ""}}}}),
    )
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    owner
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "secure", "template_version_id": v["id"]}),
        )
        .await
        .expect(201, "codersdk.Template")["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[actix_web::test]
async fn a_worker_takes_the_oldest_job_it_can_however_many_it_cannot_stand_ahead() {
    let s = TestApp::start_with_args(&["--workers", "2"]);
    let owner = s.owner().await;
    let plain = template(&owner, "plain", quick()).await;
    let secure = template_nobody_serves(&s, &owner).await;
    // More pending builds than a worker ever looked through, none of which it may take.
    let mut stuck = Vec::new();
    for n in 0..130 {
        let (_, b) = workspace(&owner, &secure, &format!("s{n}"), json!([])).await;
        stuck.push(b);
    }
    // Behind them, two builds any built-in worker may take: each runs, oldest first.
    let (_, first) = workspace(
        &owner,
        &plain,
        "p1",
        json!([{"name": "region", "value": "eu"}]),
    )
    .await;
    let (_, second) = workspace(
        &owner,
        &plain,
        "p2",
        json!([{"name": "region", "value": "eu"}]),
    )
    .await;
    let a = wait_job_within(&owner, &first, "succeeded", Duration::from_secs(60)).await;
    let b = wait_job_within(&owner, &second, "succeeded", Duration::from_secs(60)).await;
    assert!(
        micros(&a["job"]["started_at"]) <= micros(&b["job"]["started_at"]),
        "the older build starts first: {a} {b}"
    );
    // The builds nobody may take are still waiting, in their order.
    let last = get_build(&owner, stuck.last().unwrap()).await;
    assert_eq!(last["job"]["status"], "pending", "{last}");
    let oldest = get_build(&owner, &stuck[0]).await;
    assert_eq!(oldest["job"]["status"], "pending", "{oldest}");
    assert_eq!(oldest["job"]["tags"]["pool"], "secure", "{oldest}");
}
