//! The provisioner over real HTTP and real processes: steps, parameters, state, failures,
//! timeouts, a crash in the middle of a job, and graceful shutdown.

mod common;
use common::schema::assert_valid;
use common::{Client, TestServer};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A log line as (log_source, log_level, stage, output).
type Line = (String, String, String, String);

/// The build's stored log lines, read through `GET /api/v2/workspacebuilds/{id}/logs`.
async fn log_lines(c: &Client, build_id: &str) -> Vec<Line> {
    let logs = c
        .get(&format!("/api/v2/workspacebuilds/{build_id}/logs"))
        .await
        .expect(200, "[]codersdk.ProvisionerJobLog");
    logs.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let field = |k: &str| l[k].as_str().unwrap().to_string();
            (
                field("log_source"),
                field("log_level"),
                field("stage"),
                field("output"),
            )
        })
        .collect()
}

/// The build's non-empty log outputs, in order.
async fn outputs(c: &Client, build_id: &str) -> Vec<String> {
    log_lines(c, build_id)
        .await
        .into_iter()
        .map(|l| l.3)
        .filter(|o| !o.is_empty())
        .collect()
}

fn build_id(workspace: &Value) -> String {
    workspace["latest_build"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Polls a build until its job has `status`; returns the build.
async fn wait_job(c: &Client, build_id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let b = c
            .get(&format!("/api/v2/workspacebuilds/{build_id}"))
            .await
            .json();
        if b["job"]["status"] == status {
            return b;
        }
        assert!(
            Instant::now() < deadline,
            "build {build_id} never reached job status {status:?}: {b}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_build_runs_its_steps_with_parameters_and_reports_resources() {
    let s = TestServer::start();
    let owner = s.owner().await;
    let t = owner
        .template(
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
        .workspace(
            t["id"].as_str().unwrap(),
            "dev",
            json!([{"name": "region", "value": "us"}, {"name": "motto", "value": "$(touch /tmp/kiln-pwned) {{param.region}}"}]),
        )
        .await;
    assert_eq!(w["latest_build"]["build_number"], 1);
    assert_eq!(w["latest_build"]["transition"], "start");
    let b = owner.wait_build(&build_id(&w)).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    assert_eq!(b["status"], "running");
    assert_eq!(b["daily_cost"], 4);
    let out = outputs(&owner, &build_id(&w)).await;
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
    let lines = log_lines(&owner, &build_id(&w)).await;
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
    let s = TestServer::start();
    let owner = s.owner().await;
    let t = owner
        .template(
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
    let w = owner
        .workspace(t["id"].as_str().unwrap(), "st", json!([]))
        .await;
    let ws = w["id"].as_str().unwrap().to_string();
    owner.wait_build(&build_id(&w)).await;
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
    let s = TestServer::start();
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
        let t = owner
            .template(&format!("t{i}"), json!({"steps": {"start": steps}}))
            .await;
        let w = owner
            .workspace(t["id"].as_str().unwrap(), &format!("w{i}"), json!([]))
            .await;
        let started = Instant::now();
        let b = owner.wait_build(&build_id(&w)).await;
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
    let s = TestServer::start();
    let owner = s.owner().await;
    let t = owner
        .template(
            "long",
            json!({"steps": {"start": [{"run": "head -c 300000 /dev/zero | tr '\\0' a; echo; seq 5000"}]}}),
        )
        .await;
    let w = owner
        .workspace(t["id"].as_str().unwrap(), "long", json!([]))
        .await;
    let b = owner.wait_build(&build_id(&w)).await;
    assert_eq!(b["job"]["status"], "succeeded");
    let out = outputs(&owner, &build_id(&w)).await;
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
async fn a_killed_server_fails_the_interrupted_job_and_keeps_everything_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(dir.path(), &["--workers", "1"]);
    let owner = s.owner().await;
    let t = owner
        .template("slow", json!({"steps": {"start": [{"log": "going"}, {"run": "sleep 30"}], "stop": [{"log": "stopped"}]}}))
        .await;
    let tid = t["id"].as_str().unwrap().to_string();
    let w1 = owner.workspace(&tid, "one", json!([])).await;
    let w2 = owner.workspace(&tid, "two", json!([])).await;
    // Wait until the first build runs (the second waits in the queue behind it).
    wait_job(&owner, &build_id(&w1), "running").await;
    let b2 = owner
        .get(&format!("/api/v2/workspacebuilds/{}", build_id(&w2)))
        .await
        .json();
    assert_eq!(b2["job"]["status"], "pending", "{b2}");
    let token = owner.token().to_string();
    s.kill();

    let s = TestServer::start_in(dir.path(), &["--workers", "1"]);
    let owner = s.client(&token);
    let b1 = owner.wait_build(&build_id(&w1)).await;
    assert_eq!(b1["job"]["status"], "failed");
    assert_eq!(
        b1["job"]["error"],
        "kiln stopped while this job was running (the server was killed or restarted); the job did not finish"
    );
    let lines = outputs(&owner, &build_id(&w1)).await;
    assert_eq!(lines.last().unwrap(), b1["job"]["error"].as_str().unwrap());
    // The queued build survived the crash and runs now (its sleep is long: check it started).
    wait_job(&owner, &build_id(&w2), "running").await;
    drop(s);
    // New builds work after a restart: workspace one can stop.
    let s = TestServer::start_in(dir.path(), &["--workers", "2"]);
    let owner = s.client(&token);
    let ws1 = w1["id"].as_str().unwrap();
    let r = owner
        .post(
            &format!("/api/v2/workspaces/{ws1}/builds"),
            json!({"transition": "stop"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let b = owner.wait_build(r.json()["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "stopped");
}

#[actix_web::test]
async fn graceful_shutdown_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(dir.path(), &["--shutdown-grace", "1"]);
    let owner = s.owner().await;
    let t = owner
        .template(
            "slow",
            json!({"steps": {"start": [{"run": "echo $$ > $KILN_WORKSPACE_DIR/pid; sleep 60"}]}}),
        )
        .await;
    let w = owner
        .workspace(t["id"].as_str().unwrap(), "one", json!([]))
        .await;
    let pid_file = dir
        .path()
        .join("workspaces")
        .join(w["id"].as_str().unwrap())
        .join("pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file)
            && text.ends_with('\n')
        {
            break text.trim().parse::<u32>().expect("a pid");
        }
        assert!(Instant::now() < deadline, "the step never started");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    let token = owner.token().to_string();
    let build = build_id(&w);
    let started = Instant::now();
    let status = s.terminate();
    assert!(status.success(), "{status:?}; the log:\n{}", s.log());
    assert!(
        started.elapsed().as_secs() < 8,
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the step's process is gone"
    );
    assert!(s.log().contains("shutting down"));

    drop(s);

    // A server on the same data, running no jobs, shows what the shutdown left: the job was
    // completed before the exit (a job left running would be failed with another error on
    // this start), and nothing is running or queued.
    let s = TestServer::start_in(dir.path(), &["--workers", "0"]);
    let owner = s.client(&token);
    let b = owner
        .get(&format!("/api/v2/workspacebuilds/{build}"))
        .await
        .expect(200, "codersdk.WorkspaceBuild");
    assert_eq!(b["status"], "failed", "{b}");
    assert_eq!(b["job"]["status"], "failed", "{b}");
    assert_eq!(
        b["job"]["error"],
        "kiln was shut down before this job finished; the job was canceled"
    );
    assert!(b["job"]["completed_at"].is_string(), "{b}");
    let lines = outputs(&owner, &build).await;
    assert_eq!(
        lines.last().map(String::as_str),
        b["job"]["error"].as_str(),
        "{lines:?}"
    );
    let v = owner.get("/api/v2/kiln/overview").await.json();
    assert_eq!(v["workers"], json!({"busy": 0, "total": 0}), "{v}");
    assert_eq!(v["queue"], json!([]), "{v}");
}

#[actix_web::test]
async fn many_builds_on_few_workers_all_finish_in_order_of_creation() {
    let s = TestServer::start_with_args(&["--workers", "2"]);
    let owner = s.owner().await;
    let t = owner
        .template("quick", json!({"steps": {"start": [{"log": "hi"}]}}))
        .await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let w = owner
            .workspace(t["id"].as_str().unwrap(), &format!("q{i}"), json!([]))
            .await;
        ids.push(build_id(&w));
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
    let s = TestServer::start();
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
        let w = owner
            .workspace(t["id"].as_str().unwrap(), name, json!([]))
            .await;
        let b = owner.wait_build(&build_id(&w)).await;
        assert_eq!(
            b["job"]["status"],
            "succeeded",
            "{name}: {b} {:?}",
            outputs(&owner, &build_id(&w)).await
        );
    }
}

#[actix_web::test]
async fn steps_run_as_the_step_user_and_cannot_read_kilns_data() {
    // SAFETY: a plain system call.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: --step-user needs kiln to run as root");
        return;
    }
    let s = TestServer::start_with_args(&["--step-user", "nobody"]);
    let owner = s.owner().await;
    let probe = "id -u; \
        cat \"$KILN_WORKSPACE_DIR/../../kiln.db\" >/dev/null 2>&1 && echo db-read || echo db-denied; \
        cat \"$KILN_WORKSPACE_DIR/../../server-id\" >/dev/null 2>&1 && echo id-read || echo id-denied; \
        ls \"$KILN_WORKSPACE_DIR/../..\" >/dev/null 2>&1 && echo data-listed || echo data-unlisted; \
        tr '\\0' '\\n' < /proc/$PPID/environ >/dev/null 2>&1 && echo environ-read || echo environ-denied; \
        touch made-here && echo cwd-writable; \
        n=$(cat \"$KILN_STATE_FILE\"); echo $((${n:-0}+1)) > \"$KILN_STATE_FILE\"; \
        echo x >> \"$KILN_WORKSPACE_DIR/kept\"; wc -l < \"$KILN_WORKSPACE_DIR/kept\"";
    let t = owner
        .template(
            "confined",
            json!({"steps": {"start": [{"run": probe}], "stop": [{"run": probe}], "delete": [{"log": "bye"}]}}),
        )
        .await;
    let w = owner
        .workspace(t["id"].as_str().unwrap(), "c", json!([]))
        .await;
    let ws = w["id"].as_str().unwrap().to_string();
    let b = owner.wait_build(&build_id(&w)).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    let out = outputs(&owner, &build_id(&w)).await;
    let nobody = String::from_utf8(
        std::process::Command::new("id")
            .args(["-u", "nobody"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for want in [
        nobody.trim(),
        "db-denied",
        "id-denied",
        "data-unlisted",
        "environ-denied",
        "cwd-writable",
        "1",
    ] {
        assert!(out.iter().any(|l| l == want), "{want}: {out:?}");
    }
    // The state the step wrote comes back; the workspace folder stays the step user's.
    let r = owner
        .post(
            &format!("/api/v2/workspaces/{ws}/builds"),
            json!({"transition": "stop"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let stop = r.json()["id"].as_str().unwrap().to_string();
    let b = owner.wait_build(&stop).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    let out = outputs(&owner, &stop).await;
    assert!(
        out.iter().any(|l| l == "2"),
        "the workspace folder keeps its files: {out:?}"
    );
    let state = owner
        .get(&format!("/api/v2/workspacebuilds/{stop}/state"))
        .await;
    assert_eq!(state.body, b"2\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(s.dir.join("kiln.db").as_path())
            .map(|m| m.uid())
            .unwrap_or(0),
        0
    );
}
