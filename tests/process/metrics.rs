//! `--prometheus-address`: `/metrics` on its own listener, parsed with a real exposition-format
//! parser (`openmetrics-parser`'s Prometheus text grammar). The counters move with the work done (requests by route
//! pattern, builds by status, the queue wait, jobs running, log lines, commits), and no label
//! carries a token, an id or a raw path.
//!
//! Process: the metrics registry is process-wide (an in-process server would count every other
//! test's requests), and the server's log is read.

use crate::common::fixtures::*;
use crate::common::follow::{follow_ws, logs_path, stored};
use crate::common::{Kiln, TestServer};
use openmetrics_parser::PrometheusValue;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn metrics_server() -> (TestServer, String) {
    let s = TestServer::start_with_args(&["--prometheus-address", "127.0.0.1:0"]);
    let log = s.log();
    let at = log
        .find("metrics on http://")
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{log}"));
    let rest = &log[at + "metrics on ".len()..];
    let url = rest[..rest.find('\n').unwrap_or(rest.len())]
        .trim()
        .to_string();
    assert!(url.ends_with("/metrics"), "{url}");
    (s, url)
}

/// One series of a scrape: a histogram's value is its count of observations.
struct Sample {
    metric: String,
    labels: HashMap<String, String>,
    value: f64,
}

struct Scrape {
    samples: Vec<Sample>,
}

async fn scrape(url: &str) -> Scrape {
    let mut res = awc::Client::default()
        .get(url)
        .send()
        .await
        .expect("scrape");
    assert_eq!(res.status().as_u16(), 200);
    let content_type = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let body = res.body().limit(16 << 20).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let exposition = openmetrics_parser::prometheus::parse_prometheus(&text)
        .unwrap_or_else(|e| panic!("the exposition format does not parse: {e:?}\n{text}"));
    let mut samples = Vec::new();
    for (name, family) in &exposition.families {
        for s in family.iter_samples() {
            let labels = s
                .get_labelset()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let value = match &s.value {
                PrometheusValue::Unknown(n) | PrometheusValue::Gauge(n) => n.as_f64(),
                PrometheusValue::Counter(c) => c.value.as_f64(),
                PrometheusValue::Histogram(h) => h.count.map_or_else(
                    || {
                        h.buckets
                            .iter()
                            .find(|b| b.upper_bound.is_infinite())
                            .map_or(0.0, |b| b.count.as_f64())
                    },
                    |c| c as f64,
                ),
                PrometheusValue::Summary(_) => 0.0,
            };
            samples.push(Sample {
                metric: name.clone(),
                labels,
                value,
            });
        }
    }
    Scrape { samples }
}

fn matches(s: &Sample, name: &str, labels: &[(&str, &str)]) -> bool {
    s.metric == name
        && labels
            .iter()
            .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
}

/// The sum of the matching samples' values (a histogram counts its observations).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| matches(s, name, labels))
        .map(|s| s.value)
        .sum()
}

fn present(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> bool {
    scrape.samples.iter().any(|s| matches(s, name, labels))
}

/// Scrapes until `value` of `name` is `want` (or panics after 10 s).
async fn until(url: &str, name: &str, labels: &[(&str, &str)], want: f64) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = scrape(url).await;
        if value(&s, name, labels) == want {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} stayed {} (want {want})",
            value(&s, name, labels)
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

const REQUESTS: &str = "coderd_api_requests_processed_total";
const BUILDS_TOTAL: &str = "coderd_workspace_builds_total";
const QUEUE_WAIT: &str = "coderd_provisioner_job_queue_wait_seconds";
const JOBS_CURRENT: &str = "coderd_provisionerd_jobs_current";

#[actix_web::test]
async fn the_counters_move_with_the_work_done() {
    let (s, url) = metrics_server();
    let first = scrape(&url).await;
    assert_eq!(value(&first, "coderd_provisionerd_num_daemons", &[]), 3.0);
    assert!(value(&first, "kiln_uptime_seconds", &[]) > 0.0);
    assert_eq!(value(&first, BUILDS_TOTAL, &[]), 0.0);
    assert_eq!(value(&first, QUEUE_WAIT, &[]), 0.0);

    let owner = s.owner().await;
    let good = template(&owner, "good", quick()).await;
    let failing = manifest(json!([{"run": "echo going; exit 3"}]), json!([]));
    let bad = template(&owner, "bad", failing).await;
    let slow = manifest(json!([{"run": "sleep 3"}]), json!([]));
    let slow = template(&owner, "slow", slow).await;
    let (dev, dev_build) = workspace(&owner, &good, "dev", json!([])).await;
    let (_, bad_build) = workspace(&owner, &bad, "broken", json!([])).await;
    assert_eq!(
        finished(&owner, &dev_build).await["job"]["status"],
        "succeeded"
    );
    assert_eq!(
        finished(&owner, &bad_build).await["job"]["status"],
        "failed"
    );
    let version = get_build(&owner, &dev_build).await["template_version_name"]
        .as_str()
        .unwrap()
        .to_string();

    // A running job shows in jobs_current, and is gone from it once it ended.
    let (_, slow_build) = workspace(&owner, &slow, "slow", json!([])).await;
    until(&url, JOBS_CURRENT, &[("provisioner", "echo")], 1.0).await;
    assert_eq!(
        finished(&owner, &slow_build).await["job"]["status"],
        "succeeded"
    );
    until(&url, JOBS_CURRENT, &[("provisioner", "echo")], 0.0).await;

    // Requests: exactly the ones made, under the route pattern.
    let read = [
        ("code", "200"),
        ("method", "GET"),
        ("path", "/api/v2/workspacebuilds/{workspacebuild}"),
    ];
    let before = value(&scrape(&url).await, REQUESTS, &read);
    for _ in 0..3 {
        get_build(&owner, &dev_build).await;
    }
    let secret = "not-a-real-token-0123456789";
    let r = owner
        .get(&format!(
            "/api/v2/no-such-route/{secret}?coder_session_token={secret}"
        ))
        .await;
    assert_eq!(r.status, 404);
    let r = s.anon().get("/api/v2/users/me").await;
    assert_eq!(r.status, 401);
    // A WebSocket follow of a finished build: counted while open, 0 once closed.
    let followed = follow_ws(&owner, &format!("/api/v2/workspacebuilds/{dev_build}/logs")).await;
    assert!(followed.ended);
    let ws = [("path", "/api/v2/workspacebuilds/{workspacebuild}/logs")];
    let after = until(&url, "coderd_api_concurrent_websockets", &ws, 0.0).await;
    assert!(present(&after, "coderd_api_concurrent_websockets", &ws));

    assert_eq!(value(&after, REQUESTS, &read) - before, 3.0);
    let unmatched = [("code", "404"), ("method", "GET"), ("path", "unmatched")];
    assert_eq!(value(&after, REQUESTS, &unmatched), 1.0);
    let me = [("code", "401"), ("path", "/api/v2/users/{user}")];
    assert_eq!(value(&after, REQUESTS, &me), 1.0);
    let created = [
        ("code", "201"),
        ("method", "POST"),
        ("path", "/api/v2/users/{user}/workspaces"),
    ];
    assert_eq!(value(&after, REQUESTS, &created), 3.0);
    let latency = [
        ("method", "GET"),
        ("path", "/api/v2/workspacebuilds/{workspacebuild}"),
    ];
    assert!(
        value(&after, "coderd_api_request_latencies_seconds", &latency)
            >= value(&after, REQUESTS, &read)
    );
    assert_eq!(value(&after, "coderd_api_concurrent_requests", &[]), 0.0);

    // Builds by outcome, with Coder's labels.
    let dev_start = [
        ("workspace_owner", "owner"),
        ("workspace_name", "dev"),
        ("template_name", "good"),
        ("template_version", version.as_str()),
        ("workspace_transition", "start"),
        ("status", "success"),
    ];
    assert_eq!(value(&after, BUILDS_TOTAL, &dev_start), 1.0);
    let broken = [("workspace_name", "broken"), ("status", "failed")];
    assert_eq!(value(&after, BUILDS_TOTAL, &broken), 1.0);
    assert_eq!(value(&after, BUILDS_TOTAL, &[]), 3.0);
    let timings = "coderd_provisionerd_workspace_build_timings_seconds";
    assert_eq!(value(&after, timings, &[("status", "success")]), 2.0);
    assert_eq!(value(&after, timings, &[("status", "failed")]), 1.0);

    // The queue wait of every job, by type; job timings by outcome.
    let builds = [
        ("provisioner_type", "echo"),
        ("job_type", "workspace_build"),
        ("transition", "start"),
        ("build_reason", "initiator"),
    ];
    assert_eq!(value(&after, QUEUE_WAIT, &builds), 3.0);
    let imports = [
        ("job_type", "template_version_import"),
        ("transition", ""),
        ("build_reason", ""),
    ];
    assert_eq!(value(&after, QUEUE_WAIT, &imports), 3.0);
    let jobs = "coderd_provisionerd_job_timings_seconds";
    assert_eq!(
        value(
            &after,
            jobs,
            &[("provisioner", "echo"), ("status", "success")]
        ),
        5.0
    );
    assert_eq!(value(&after, jobs, &[("status", "failed")]), 1.0);

    // kiln's own.
    assert!(value(&after, "kiln_job_log_lines_written_total", &[]) >= 6.0);
    assert_eq!(value(&after, "kiln_job_log_lines_dropped_total", &[]), 0.0);
    let store = if crate::common::postgres_mode() {
        "postgres"
    } else {
        "sqlite"
    };
    assert!(value(&after, "kiln_store_commit_seconds", &[("store", store)]) >= 10.0);
    assert!(value(&after, "kiln_store_writes_per_commit", &[("store", store)]) >= 10.0);
    assert_eq!(value(&after, "kiln_live_followers", &[]), 0.0);

    // No label carries a token, an id, or a raw path.
    let patterns = kiln::api::routes::patterns();
    for sample in &after.samples {
        for (k, v) in sample.labels.iter() {
            assert!(
                !v.contains(secret) && !v.contains(owner.token()),
                "{} {k}={v}",
                sample.metric
            );
            assert!(
                !v.contains(&dev_build) && !v.contains(&dev) && !v.contains(&good),
                "{} {k}={v}",
                sample.metric
            );
            if k == "path" {
                assert!(
                    v == "unmatched" || patterns.contains(v),
                    "{} path={v} is not a route pattern",
                    sample.metric
                );
            }
        }
    }
}

#[actix_web::test]
async fn a_live_follower_is_counted_while_it_is_open() {
    let (s, url) = metrics_server();
    let owner = s.owner().await;
    let res = owner
        .request("GET", "/api/v2/kiln/events")
        .send()
        .await
        .expect("the events stream");
    assert_eq!(res.status().as_u16(), 200);
    until(&url, "kiln_live_followers", &[], 1.0).await;
    drop(res);
}

#[actix_web::test]
async fn metrics_are_off_unless_an_address_is_given() {
    let s = TestServer::start();
    assert!(!s.log().contains("metrics on"), "{}", s.log());
    // The API has no /metrics of its own.
    let r = s.anon().get("/metrics").await;
    assert_eq!(r.status, 404);
}

#[actix_web::test]
async fn log_lines_past_the_cap_are_counted_as_dropped() {
    let (s, url) = metrics_server();
    let owner = s.owner().await;
    // 200,001 lines of 7 bytes, 71 bytes each under the log cap's rule (14 MB): more than the
    // 1 MiB a job's log may hold, which keeps about 15,000 of them.
    let chatty = manifest(json!([{"run": "seq 1000000 1200000"}]), json!([]));
    let t = template(&owner, "chatty", chatty).await;
    let (_, build) = workspace(&owner, &t, "loud", json!([])).await;
    let b = finished(&owner, &build).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    assert_eq!(b["job"]["logs_overflowed"], true, "{b}");
    let m = scrape(&url).await;
    let written = value(&m, "kiln_job_log_lines_written_total", &[]);
    let dropped = value(&m, "kiln_job_log_lines_dropped_total", &[]);
    // Every line was stored as it came (the stages' lines and the import's come on top), those
    // of the log's rolling tail dropped again as later lines took their place; the log's
    // marker counts every line dropped.
    assert!(
        (200_001.0..200_100.0).contains(&written),
        "{written} written"
    );
    let logs = stored(&owner, &logs_path(&build)).await;
    let marker = logs
        .iter()
        .filter_map(|l| {
            l["output"]
                .as_str()?
                .strip_prefix("Log output exceeded 1 MiB: ")
        })
        .next()
        .expect("the marker");
    let counted: f64 = marker[..marker.find(' ').unwrap()]
        .replace(',', "")
        .parse()
        .unwrap();
    assert_eq!(dropped, counted, "{marker}");
    assert!(
        (180_000.0..190_000.0).contains(&dropped),
        "{dropped} dropped"
    );
}
