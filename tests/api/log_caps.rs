//! The cap on a job's stored log (`--max-job-log-bytes`, `domain::log_budget`): each line
//! costs its output plus 64 bytes, so a flood of empty lines fills it like any other output;
//! a log past it keeps its head, exactly one marker line saying what was dropped there, and
//! its tail (the end of a failed build included); `logs_overflowed` is set on the job. The
//! same for a build run by the server's workers and for the lines a provisioner daemon sends.

use crate::common::daemon::*;
use crate::common::fixtures::*;
use crate::common::follow::{logs_path, stored};
use crate::common::{Client, Kiln, TestApp};
use serde_json::{Value, json};

/// The cap the tests run with: the least there is, so that they stay quick.
const CAP: i64 = 128 << 10;
const OVERHEAD: i64 = 64;
/// The marker's room in the cap, and the tail's share.
const MARKER_ROOM: i64 = 256;

fn head_limit(cap: i64) -> i64 {
    cap - cap / 4 - MARKER_ROOM
}

/// A server whose job logs are capped at `cap` bytes, with `more` flags.
fn server(cap: i64, more: &[&str]) -> TestApp {
    let cap = cap.to_string();
    let mut args = vec!["--max-job-log-bytes", cap.as_str()];
    args.extend_from_slice(more);
    TestApp::start_with_args(&args)
}

fn output(l: &Value) -> &str {
    l["output"].as_str().unwrap()
}

/// What stored lines cost under the cap's rule.
fn cost(lines: &[Value]) -> i64 {
    lines
        .iter()
        .map(|l| output(l).len() as i64 + OVERHEAD)
        .sum()
}

/// Where the one marker line is (there must be exactly one).
fn the_marker(all: &[Value]) -> usize {
    let at: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, l)| output(l).starts_with("Log output exceeded"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "exactly one marker: {at:?}");
    let marker = &all[at[0]];
    assert_eq!(marker["log_level"], "warn", "{marker}");
    assert_eq!(marker["log_source"], "provisioner_daemon", "{marker}");
    at[0]
}

/// The marker's text for `lines` lines of `bytes` bytes dropped under cap `cap`.
fn marker(cap: i64, lines: usize, bytes: i64) -> String {
    format!(
        "Log output exceeded {}: {} {} ({}) dropped here; the last {} follow.",
        size(cap),
        thousands(lines),
        if lines == 1 { "line" } else { "lines" },
        size(bytes),
        size(cap / 4)
    )
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn size(bytes: i64) -> String {
    let units = [(1i64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in units {
        if bytes >= unit {
            return match bytes % unit {
                0 => format!("{} {name}", bytes / unit),
                _ => format!("{:.1} {name}", bytes as f64 / unit as f64),
            };
        }
    }
    format!("{bytes} B")
}

/// The head is full (the next line would not have fit) and so is the tail (the line before
/// it would not fit either), lines near their ends being alike.
fn assert_full(all: &[Value], at: usize, cap: i64) {
    let largest = |lines: &[Value]| lines.iter().map(|l| cost(std::slice::from_ref(l))).max();
    let head = cost(&all[..at]);
    assert!(head <= head_limit(cap), "head of {head} bytes");
    assert!(
        head + largest(&all[at - 10..at]).unwrap() > head_limit(cap),
        "the head holds the first lines up to its size: {head} bytes"
    );
    let tail = cost(&all[at + 1..]);
    assert!(tail <= cap / 4, "tail of {tail} bytes");
    assert!(
        tail + largest(&all[at + 1..at + 11]).unwrap() > cap / 4,
        "the tail holds the latest lines up to its size: {tail} bytes"
    );
}

#[actix_web::test]
async fn a_flood_of_empty_lines_keeps_head_marker_and_tail_within_the_cap() {
    let s = server(CAP, &[]);
    let owner = s.owner().await;
    let start = json!([{"run": "yes '' | head -n 300000"}, {"log": "done"}]);
    let t = template(&owner, "t", steps(start, json!([]))).await;
    let (_, b) = workspace(&owner, &t, "dev", json!([])).await;
    let done = finished(&owner, &b).await;
    assert_eq!(done["job"]["status"], "succeeded", "{done}");
    assert_eq!(done["job"]["logs_overflowed"], true, "{done}");
    let all = stored(&owner, &logs_path(&b)).await;
    assert!(cost(&all) <= CAP, "{} bytes stored", cost(&all));
    let at = the_marker(&all);
    assert_eq!(all[at]["stage"], "Starting workspace");
    assert_full(&all, at, CAP);
    // The head: the log's first lines, its stages and the step's first empty lines.
    let stages: Vec<&str> = all[..at]
        .iter()
        .filter(|l| l["log_source"] == "provisioner_daemon")
        .map(|l| l["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "Setting up",
            "Planning infrastructure",
            "Starting workspace"
        ]
    );
    let empty = |l: &&Value| l["log_source"] == "provisioner" && output(l).is_empty();
    assert!(all[..at].iter().rev().take(100).all(|l| empty(&l)));
    // The tail: the step's last empty lines, then the log's end.
    let tail = &all[at + 1..];
    let ends: Vec<(&str, &str)> = tail[tail.len() - 2..]
        .iter()
        .map(|l| (output(l), l["stage"].as_str().unwrap()))
        .collect();
    assert_eq!(ends, [("done", "Starting workspace"), ("", "Cleaning Up")]);
    assert!(tail[..tail.len() - 2].iter().all(|l| empty(&l)));
    // Every empty line of the step is stored or counted by the marker, a byte each.
    let kept = all.iter().filter(empty).count();
    let dropped = 300_000 - kept;
    assert_eq!(output(&all[at]), marker(CAP, dropped, dropped as i64));
}

#[actix_web::test]
async fn a_failed_build_keeps_the_end_of_its_log() {
    let s = server(CAP, &[]);
    let owner = s.owner().await;
    let start = json!([{"run": "seq 100000; echo 'error: the disk is full'; exit 3"}]);
    let t = template(&owner, "t", steps(start, json!([]))).await;
    let (_, b) = workspace(&owner, &t, "dev", json!([])).await;
    let done = finished(&owner, &b).await;
    assert_eq!(done["job"]["status"], "failed", "{done}");
    assert_eq!(done["job"]["logs_overflowed"], true, "{done}");
    let error = done["job"]["error"].as_str().unwrap();
    let all = stored(&owner, &logs_path(&b)).await;
    assert!(cost(&all) <= CAP, "{} bytes stored", cost(&all));
    let at = the_marker(&all);
    assert_full(&all, at, CAP);
    // The log ends with the step's last lines, its error, and the job's error.
    let last: Vec<(&str, &str, &str)> = all[all.len() - 3..]
        .iter()
        .map(|l| {
            (
                output(l),
                l["log_level"].as_str().unwrap(),
                l["log_source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        last,
        [
            ("100000", "info", "provisioner"),
            ("error: the disk is full", "info", "provisioner"),
            (error, "error", "provisioner_daemon")
        ]
    );
    // The numbers kept: 1 to h before the marker, k to 100,000 after it, none in between.
    let numbers = |lines: &[Value]| -> Vec<usize> {
        lines
            .iter()
            .filter_map(|l| output(l).parse::<usize>().ok())
            .collect()
    };
    let head = numbers(&all[..at]);
    let tail = numbers(&all[at + 1..]);
    assert_eq!(head, (1..=head.len()).collect::<Vec<_>>());
    let first = 100_000 - tail.len() + 1;
    assert_eq!(tail, (first..=100_000).collect::<Vec<_>>());
    let dropped = head.len() + 1..first;
    let bytes: i64 = dropped
        .clone()
        .map(|n| n.to_string().len() as i64 + 1)
        .sum();
    assert_eq!(output(&all[at]), marker(CAP, dropped.len(), bytes));
}

/// POSTs `body` to the provisioner daemons' protocol with `key`.
async fn call(s: &TestApp, path: &str, key: &str, body: Value) -> Value {
    let c = s.anon();
    let req = c
        .request("POST", &format!("/api/v2/provisionerd{path}"))
        .insert_header(("Content-Type", "application/json"))
        .insert_header((KEY_HEADER, key));
    let r = c.send(req, Some(body.to_string().into_bytes())).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

/// Lines as a daemon sends them.
fn wire(outputs: impl Iterator<Item = String>) -> Value {
    let lines: Vec<Value> = outputs
        .map(|o| {
            json!({"created_at": "2026-01-01T00:00:00Z", "source": "provisioner",
                "level": "info", "stage": "Starting workspace", "output": o})
        })
        .collect();
    json!({"lines": lines})
}

/// Takes the next job as `daemon`: it must be of `kind`.
async fn take(s: &TestApp, key: &str, daemon: &str, kind: &str) -> String {
    let a = call(
        s,
        "/acquire",
        key,
        json!({"daemon_id": daemon, "wait_ms": 5000}),
    )
    .await;
    assert_eq!(a["work"]["kind"], kind, "{a}");
    a["job"]["id"].as_str().unwrap().to_string()
}

/// A workspace whose first build a daemon took (the daemon took its version's import too):
/// (the build's id, the job's id).
async fn a_build_held_by(s: &TestApp, owner: &Client, key: &str, daemon: &str) -> (String, String) {
    let v = owner
        .post(
            "/api/v2/organizations/coder/templateversions",
            json!({"storage_method": "file", "file_id": upload(owner, &quick()).await, "provisioner": "echo"}),
        )
        .await
        .expect(201, "codersdk.TemplateVersion");
    let import = take(s, key, daemon, "import").await;
    let valid = json!({"Valid": {"manifest": "", "readme": ""}});
    let r = call(
        s,
        &format!("/jobs/{import}/complete"),
        key,
        json!({"daemon_id": daemon, "result": {"kind": "import", "outcome": valid}}),
    )
    .await;
    assert_eq!(r["status"], "succeeded", "{r}");
    let t = owner
        .post(
            "/api/v2/organizations/coder/templates",
            json!({"name": "t", "template_version_id": v["id"]}),
        )
        .await
        .expect(201, "codersdk.Template");
    let (_, build) = workspace(owner, t["id"].as_str().unwrap(), "w", json!([])).await;
    let job = take(s, key, daemon, "build").await;
    (build, job)
}

#[actix_web::test]
async fn a_daemons_lines_are_capped_the_same() {
    let s = server(CAP, &["--workers", "0"]);
    let owner = s.owner().await;
    let key = new_key(&owner, "k", json!({})).await;
    let reg = call(&s, "/register", &key, json!({"name": "d"})).await;
    let daemon = reg["daemon_id"].as_str().unwrap().to_string();
    let (build, job) = a_build_held_by(&s, &owner, &key, &daemon).await;
    // 60,000 lines of 11 bytes in 30 updates (4.5 MB under the rule), then its last line with
    // its failure.
    let sent = 60_000;
    let line = |i: usize| format!("line {i:06}");
    for from in (0..sent).step_by(2000) {
        let r = call(
            &s,
            &format!("/jobs/{job}/update"),
            &key,
            json!({"daemon_id": daemon, "logs": wire((from..from + 2000).map(line))}),
        )
        .await;
        assert_eq!(r["state"], "held", "{r}");
    }
    let last = wire(std::iter::once("the daemon's last line".to_string()));
    let r = call(
        &s,
        &format!("/jobs/{job}/fail"),
        &key,
        json!({"daemon_id": daemon, "error": "terraform apply failed", "logs": last}),
    )
    .await;
    assert_eq!(r["status"], "failed", "{r}");
    let done = get_build(&owner, &build).await;
    assert_eq!(done["job"]["status"], "failed", "{done}");
    assert_eq!(done["job"]["logs_overflowed"], true, "{done}");
    let all = stored(&owner, &logs_path(&build)).await;
    assert!(cost(&all) <= CAP, "{} bytes stored", cost(&all));
    let at = the_marker(&all);
    assert_eq!(all[at]["stage"], "Starting workspace");
    assert_full(&all, at, CAP);
    let outputs: Vec<&str> = all.iter().map(output).collect();
    // The head is the first lines sent, the tail the last ones, then the daemon's last line
    // and the job's error.
    let head: Vec<String> = (0..at).map(line).collect();
    assert_eq!(outputs[..at], head);
    let tail_len = all.len() - at - 3;
    let first = sent - tail_len;
    let tail: Vec<String> = (first..sent).map(line).collect();
    assert_eq!(outputs[at + 1..all.len() - 2], tail);
    assert_eq!(
        outputs[all.len() - 2..],
        ["the daemon's last line", "terraform apply failed"]
    );
    let dropped = first - at;
    assert_eq!(outputs[at], marker(CAP, dropped, dropped as i64 * 12));
}

/// Coder's 1 MiB by default.
#[actix_web::test]
async fn the_default_cap_is_one_mebibyte() {
    let s = TestApp::start();
    let owner = s.owner().await;
    // 20,000 lines of 70 bytes: 2.7 MB under the rule.
    let line = "x".repeat(70);
    let start = json!([{"run": format!("yes {line} | head -n 20000; echo after")}, {"log": "still running"}]);
    let t = template(&owner, "t", steps(start, json!([]))).await;
    let (_, b) = workspace(&owner, &t, "dev", json!([])).await;
    let done = finished(&owner, &b).await;
    assert_eq!(done["status"], "running", "the job goes on: {done}");
    assert_eq!(done["job"]["logs_overflowed"], true);
    let all = stored(&owner, &logs_path(&b)).await;
    let cap = 1 << 20;
    assert!(cost(&all) <= cap, "{} bytes stored", cost(&all));
    let at = the_marker(&all);
    assert_full(&all, at, cap);
    let xs = |lines: &[Value]| lines.iter().filter(|l| output(l) == line).count();
    let dropped = 20_000 - xs(&all[..at]) - xs(&all[at + 1..]);
    assert_eq!(output(&all[at]), marker(cap, dropped, dropped as i64 * 71));
    assert!(output(&all[at]).starts_with("Log output exceeded 1 MiB: "));
    let outputs: Vec<&str> = all.iter().map(output).collect();
    assert_eq!(outputs[outputs.len() - 3..], ["after", "still running", ""]);
    let flag = option(&owner, "max-job-log-bytes").await;
    assert_eq!(
        (&flag["value"], &flag["value_source"], &flag["env"]),
        (
            &json!("1048576"),
            &json!("default"),
            &json!("KILN_MAX_JOB_LOG_BYTES")
        )
    );
}

/// A flag of the deployment's config (`GET /deployment/config`).
async fn option(owner: &Client, flag: &str) -> Value {
    let cfg = owner
        .get("/api/v2/deployment/config")
        .await
        .expect(200, "codersdk.DeploymentConfig");
    cfg["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["flag"] == flag)
        .cloned()
        .unwrap_or_else(|| panic!("no option {flag}: {cfg}"))
}

#[actix_web::test]
async fn the_cap_is_a_flag_of_at_least_128_kib() {
    let s = server(CAP, &[]);
    let owner = s.owner().await;
    let flag = option(&owner, "max-job-log-bytes").await;
    assert_eq!(
        (&flag["value"], &flag["value_source"]),
        (&json!("131072"), &json!("flag"))
    );
    assert!(
        flag["description"]
            .as_str()
            .unwrap()
            .starts_with("The most a job's stored log may take, in bytes"),
        "{flag}"
    );
    let refused = std::panic::catch_unwind(|| server(CAP - 1, &[]))
        .err()
        .expect("a cap under 128 KiB is refused");
    let message = refused
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("invalid value '131071' for '--max-job-log-bytes")
            && message.contains("131071 is not in 131072.."),
        "{message}"
    );
}
