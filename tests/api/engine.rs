//! The provisioner over real HTTP: steps, parameters, state, failures, timeouts, long and many
//! lines, jobs taken oldest first by few workers, and the example templates. (A server killed
//! in the middle of a job, graceful shutdown and steps as another OS user are in
//! `tests/process/engine.rs`.)

use crate::common::fixtures::{WORKSPACE, log_lines, outputs, template, workspace};
use crate::common::schema::assert_valid;
use crate::common::{Kiln, TestApp};
use serde_json::json;
use std::time::Instant;

#[actix_web::test]
async fn a_build_runs_its_steps_with_parameters_and_reports_resources() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(
        &owner,
        "params",
            json!({
                "parameters": [
                    {"name": "region", "default_value": "eu", "mutable": true},
                    {"name": "motto", "default_value": "x", "mutable": true}
                ],
                "resources": [
                    {"name": "vm", "type": "kiln_vm", "daily_cost": 3,
                     "metadata": [{"key": "region", "value": "{{param.region}}"}, {"key": "secret", "value": "s3", "sensitive": true}],
                     "agents": [{"name": "main", "apps": [{"slug": "web", "url": "http://{{workspace.name}}.{{owner.name}}/{{build.number}}"}]}]},
                    {"name": "disk", "type": "kiln_disk", "transitions": ["start", "stop"], "daily_cost": 1},
                    {"name": "gone", "type": "kiln_x", "transitions": ["stop"]}
                ],
                "steps": {"start": [
                    {"log": "hello {{param.region}} from {{workspace.name}}"},
                    {"run": "echo region=$KILN_PARAM_REGION ws=$KILN_WORKSPACE_NAME n=$KILN_BUILD_NUMBER t=$KILN_TRANSITION; echo oops >&2"},
                    {"run": "printf '%s\\n' \"$KILN_PARAM_MOTTO\""}
                ]}
            }),
        )
        .await;
    // A parameter value with shell syntax reaches the command as data, never as code.
    let w = owner
        .post(
            "/api/v2/users/me/workspaces",
            json!({"template_id": t, "name": "dev", "rich_parameter_values": [{"name": "region", "value": "us"}, {"name": "motto", "value": "$(touch /tmp/kiln-pwned) {{param.region}}"}]}),
        )
        .await
        .expect(201, WORKSPACE);
    assert_eq!(w["latest_build"]["build_number"], 1);
    assert_eq!(w["latest_build"]["transition"], "start");
    let build = w["latest_build"]["id"].as_str().unwrap();
    let b = owner.wait_build(build).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    assert_eq!(b["status"], "running");
    assert_eq!(b["daily_cost"], 4);
    let out = outputs(&owner, build).await;
    assert!(out.contains(&"hello us from dev".to_string()), "{out:?}");
    assert!(
        out.contains(&"region=us ws=dev n=1 t=start".to_string()),
        "{out:?}"
    );
    assert!(
        out.contains(&"$(touch /tmp/kiln-pwned) {{param.region}}".to_string()),
        "{out:?}"
    );
    assert!(!std::path::Path::new("/tmp/kiln-pwned").exists());
    let lines = log_lines(&owner, build).await;
    assert!(lines.contains(&(
        "provisioner".into(),
        "error".into(),
        "Starting workspace".into(),
        "oops".into()
    )));
    let stages: Vec<_> = lines
        .iter()
        .filter(|l| l.0 == "provisioner_daemon" && l.3.is_empty())
        .map(|l| l.2.as_str())
        .collect();
    assert_eq!(
        stages,
        [
            "Setting up",
            "Planning infrastructure",
            "Starting workspace",
            "Cleaning Up"
        ]
    );

    let res = b["resources"].as_array().unwrap();
    let names: Vec<_> = res.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["disk", "vm"]);
    let vm = &res[1];
    assert_eq!(
        vm["metadata"][0],
        json!({"key": "region", "value": "us", "sensitive": false})
    );
    let agent = &vm["agents"][0];
    assert_eq!(agent["status"], "connecting");
    assert_eq!(agent["lifecycle_state"], "created");
    assert_eq!(agent["apps"][0]["url"], "http://dev.owner/1");
    assert_eq!(agent["resource_id"], vm["id"]);
}

#[actix_web::test]
async fn state_is_carried_from_build_to_build_and_kept_when_a_build_fails() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(
        &owner,
        "state",
            json!({
                "parameters": [{"name": "fail", "default_value": "no", "mutable": true}],
                "steps": {
                    "start": [{"run": "n=$(cat $KILN_STATE_FILE); n=${n:-0}; echo $((n+1)) > $KILN_STATE_FILE; echo count=$((n+1)); echo hi >> $KILN_WORKSPACE_DIR/notes"},
                              {"run": "test $KILN_PARAM_FAIL = no"}],
                    "stop": [{"run": "echo stopping with $(cat $KILN_STATE_FILE); wc -l < $KILN_WORKSPACE_DIR/notes"}],
                    "delete": [{"log": "bye"}]
                }
            }),
        )
        .await;
    let (ws, first) = workspace(&owner, &t, "st", json!([])).await;
    owner.wait_build(&first).await;
    let mut last = String::new();
    for (transition, params) in [
        ("stop", json!([])),
        ("start", json!([])),
        ("stop", json!([])),
    ] {
        let r = owner
            .post(
                &format!("/api/v2/workspaces/{ws}/builds"),
                json!({"transition": transition, "rich_parameter_values": params}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let b = owner.wait_build(r.json()["id"].as_str().unwrap()).await;
        assert_eq!(b["job"]["status"], "succeeded", "{b}");
        last = b["id"].as_str().unwrap().to_string();
    }
    let out = outputs(&owner, &last).await;
    assert!(out.contains(&"stopping with 2".to_string()), "{out:?}");
    assert!(
        out.contains(&"2".to_string()),
        "the workspace folder keeps its files: {out:?}"
    );

    let state_of = |id: String| {
        let owner = owner.clone();
        async move {
            let r = owner
                .get(&format!("/api/v2/workspacebuilds/{id}/state"))
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.body
        }
    };
    assert_eq!(state_of(last.clone()).await, b"2\n");

    // A failing start: the state stays what it was.
    let r = owner
        .post(&format!("/api/v2/workspaces/{ws}/builds"), json!({"transition": "start", "rich_parameter_values": [{"name": "fail", "value": "yes"}]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = owner.wait_build(r.json()["id"].as_str().unwrap()).await;
    assert_eq!(b["job"]["status"], "failed");
    assert_eq!(b["job"]["error"], "step 2: command exited with status 1");
    assert_eq!(b["status"], "failed");
    let failed_id = b["id"].as_str().unwrap();
    assert_eq!(
        state_of(failed_id.to_string()).await,
        b"2\n",
        "the failed build keeps the state it started from"
    );
    // The error is the job's last log line too.
    let lines = log_lines(&owner, failed_id).await;
    assert_eq!(
        lines.last().unwrap().3,
        "step 2: command exited with status 1"
    );
    assert_eq!(lines.last().unwrap().1, "error");

    // Delete removes the workspace folder and the workspace.
    let r = owner
        .post(&format!("/api/v2/workspaces/{ws}/builds"), json!({"transition": "delete", "rich_parameter_values": [{"name": "fail", "value": "no"}]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = owner.wait_build(r.json()["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "deleted", "{b}");
    assert!(!s.dir.join("workspaces").join(&ws).exists());
    owner
        .get(&format!("/api/v2/workspaces/{ws}"))
        .await
        .assert_error(410, "Workspace was deleted.", None);
}

#[actix_web::test]
async fn failing_steps_timeouts_and_missing_commands_fail_the_build_clearly() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let cases = [
        (
            json!([{"fail": "no {{workspace.name}} today"}]),
            "no w0 today",
        ),
        (
            json!([{"run": "exit 3"}]),
            "step 1: command exited with status 3",
        ),
        (
            json!([{"log": "x"}, {"run": "no-such-command-here"}]),
            "step 2: command exited with status 127 (command not found)",
        ),
        (
            json!([{"run": "sleep 5", "timeout_s": 1}]),
            "step 1: command timed out after 1s: sleep 5",
        ),
    ];
    for (i, (steps, error)) in cases.into_iter().enumerate() {
        let t = template(&owner, &format!("t{i}"), json!({"steps": {"start": steps}})).await;
        let (_, build) = workspace(&owner, &t, &format!("w{i}"), json!([])).await;
        let started = Instant::now();
        let b = owner.wait_build(&build).await;
        assert_eq!(b["job"]["status"], "failed", "{b}");
        assert_eq!(b["job"]["error"], error);
        assert!(
            started.elapsed().as_secs() < 4,
            "the timeout stops the command"
        );
        assert!(b["resources"].as_array().unwrap().is_empty());
    }
}

#[actix_web::test]
async fn long_lines_and_many_lines_never_stall_a_job() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let t = template(
        &owner,
        "long",
        json!({"steps": {"start": [{"run": "head -c 300000 /dev/zero | tr '\\0' a; echo; seq 5000"}]}}),
    )
    .await;
    let (_, build) = workspace(&owner, &t, "long", json!([])).await;
    let b = owner.wait_build(&build).await;
    assert_eq!(b["job"]["status"], "succeeded");
    let out = outputs(&owner, &build).await;
    let long: usize = out
        .iter()
        .filter(|l| l.starts_with('a'))
        .map(|l| l.len())
        .sum();
    assert_eq!(long, 300_000, "a long line is split, not lost");
    assert!(out.iter().all(|l| l.len() <= 16 * 1024));
    assert_eq!(out.last().unwrap(), "5000");
}

#[actix_web::test]
async fn many_builds_on_few_workers_all_finish_in_order_of_creation() {
    let s = TestApp::start_with_args(&["--workers", "2"]);
    let owner = s.owner().await;
    let t = template(
        &owner,
        "quick",
        json!({"steps": {"start": [{"log": "hi"}]}}),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let (_, build) = workspace(&owner, &t, &format!("q{i}"), json!([])).await;
        ids.push(build);
    }
    let mut started = Vec::new();
    let mut workers = std::collections::BTreeSet::new();
    for id in &ids {
        let b = owner.wait_build(id).await;
        assert_valid("codersdk.WorkspaceBuild", &b);
        assert_eq!(b["job"]["status"], "succeeded", "{b}");
        started.push(b["job"]["started_at"].as_str().unwrap().to_string());
        let worker = b["job"]["worker_id"]
            .as_str()
            .unwrap_or_else(|| panic!("a completed job names its worker: {b}"));
        assert!(
            uuid::Uuid::parse_str(worker).is_ok(),
            "worker_id is a UUID: {worker}"
        );
        workers.insert(worker.to_string());
    }
    let mut sorted = started.clone();
    sorted.sort();
    assert_eq!(started, sorted, "jobs start oldest first");
    assert!(
        workers.len() <= 2,
        "two workers ran the 12 jobs, yet the jobs name {} workers: {workers:?}",
        workers.len()
    );
}

#[actix_web::test]
async fn the_example_templates_build() {
    let s = TestApp::start();
    let owner = s.owner().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in ["hello", "shell"] {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(root.join(name)).unwrap() {
            let p = entry.unwrap().path();
            files.push((
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
        let mut b = tar::Builder::new(Vec::new());
        for (path, content) in &files {
            let mut h = tar::Header::new_gnu();
            h.set_size(content.len() as u64);
            h.set_mode(if path.ends_with(".sh") { 0o755 } else { 0o644 });
            h.set_cksum();
            b.append_data(&mut h, path, content.as_bytes()).unwrap();
        }
        let v = owner.import_version(b.into_inner().unwrap(), None).await;
        assert_eq!(v["job"]["status"], "succeeded", "{v}");
        let r = owner
            .post(
                "/api/v2/organizations/coder/templates",
                json!({"name": name, "template_version_id": v["id"]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let t = r.json();
        let (_, build) = workspace(&owner, t["id"].as_str().unwrap(), name, json!([])).await;
        let b = owner.wait_build(&build).await;
        assert_eq!(
            b["job"]["status"],
            "succeeded",
            "{name}: {b} {:?}",
            outputs(&owner, &build).await
        );
    }
}
