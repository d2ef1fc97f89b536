//! PostgreSQL restarted, and stopped for 20 s, under two kiln servers while a build runs on one
//! and its log is followed on the other: requests answer 503 quickly while it is down and
//! normally a moment after it is back, the build ends by its own steps, and every follower gets
//! every line once.
//!
//! A test binary of its own: it stops and starts its throwaway cluster (`pg::restart`), which
//! would pull the database from under every other test sharing a binary's cluster. It runs with
//! `KILN_TEST_STORE=postgres`; with SQLite it says it was skipped.

mod common;
use common::fixtures::{BUILD, finished, template, workspace};
use common::follow::{build_followed_across, every_line_once};
use common::{Client, pg, two_servers_skipped};
use serde_json::json;
use std::time::{Duration, Instant};

/// Asks both servers for the build until each answers 200; returns how long that took.
async fn answered(clients: &[&Client], build: &str) -> Duration {
    let since = Instant::now();
    for c in clients {
        loop {
            let r = c.get(&format!("/api/v2/workspacebuilds/{build}")).await;
            if r.status == 200 {
                r.expect(200, BUILD);
                break;
            }
            assert_eq!(r.status, 503, "{}", r.text());
            assert!(since.elapsed() < Duration::from_secs(20), "{}", r.text());
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
    since.elapsed()
}

#[actix_web::test]
async fn builds_and_followers_ride_through_postgresql_restarting_and_stopping_for_20_s() {
    if two_servers_skipped() {
        return;
    }
    // About 36 s of lines: through a restart and a 20 s stop.
    let run = build_followed_across(json!([
        {"sleep_ms": 300},
        {"run": "for i in $(seq 1 300); do echo line $i; sleep 0.12; done"}
    ]))
    .await;
    let (owner_a, owner_b, build) = (&run.owner_a, &run.owner_b, run.build.as_str());
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;

    // A restart: every session ends, the database is back at once.
    actix_web::rt::task::spawn_blocking(|| pg::restart(Duration::ZERO))
        .await
        .unwrap();
    let back = answered(&[owner_a, owner_b], build).await;
    eprintln!("both servers answered {back:?} after the restart");
    assert!(
        back < Duration::from_secs(5),
        "answered {back:?} after the restart"
    );
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;

    // Stopped for 20 s: requests answer 503 within seconds meanwhile.
    let outage = actix_web::rt::task::spawn_blocking(|| pg::restart(Duration::from_secs(20)));
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    for c in [owner_a, owner_b] {
        let asked = Instant::now();
        c.get(&format!("/api/v2/workspacebuilds/{build}"))
            .await
            .assert_error(503, "The database cannot be reached.", None);
        eprintln!("503 during the outage in {:?}", asked.elapsed());
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "answered in {:?}",
            asked.elapsed()
        );
    }
    outage.await.unwrap();
    let back = answered(&[owner_a, owner_b], build).await;
    eprintln!("both servers answered {back:?} after the 20 s outage");
    assert!(
        back < Duration::from_secs(5),
        "answered {back:?} after the outage"
    );

    let done = finished(owner_a, build).await;
    assert_eq!(done["job"]["status"], "succeeded", "{done}");
    every_line_once(
        owner_b,
        &run.path,
        300,
        run.followers,
        "restart and the outage",
    )
    .await;
    // Both servers serve new templates and builds.
    let quick = template(owner_b, "quick", common::fixtures::quick()).await;
    let (_, again) = workspace(owner_b, &quick, "after", json!([])).await;
    let again = finished(owner_a, &again).await;
    assert_eq!(again["job"]["status"], "succeeded", "{again}");
}
