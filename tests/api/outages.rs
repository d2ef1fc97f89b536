//! kiln on PostgreSQL rides through its database going away: connections dropped under it (a
//! restart or a failover ends them all), or new ones refused for a while. Requests answer
//! from fresh connections or, while none can be had, with Coder's error body and 503 within
//! seconds; a running job is never failed for it, and its lines are stored once, in order.
//! These tests run with `KILN_TEST_STORE=postgres`; with SQLite they say they were skipped,
//! but for SQLite's own case: another process holding the write lock.

use crate::common::fixtures::{BUILD, finished, manifest, template, workspace};
use crate::common::follow::{STYLES, build_followed_across, every_line_once, follow};
use crate::common::{Kiln, TestApp, pg, postgres_mode, two_servers_skipped};
use serde_json::json;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn a_job_and_its_followers_ride_through_the_database_dropping_every_connection_twice() {
    if two_servers_skipped() {
        return;
    }
    // The job runs on A and logs for about 3 s; the followers ask B.
    let run = build_followed_across(json!([
        {"sleep_ms": 300},
        {"run": "for i in $(seq 1 100); do echo line $i; sleep 0.03; done"},
        {"sleep_ms": 200}
    ]))
    .await;
    let (a, owner_a, owner_b, build) = (&run.a, &run.owner_a, &run.owner_b, &run.build);
    let db = pg::database_name(a.database().unwrap()).to_string();
    for _ in 0..2 {
        actix_web::rt::time::sleep(Duration::from_millis(900)).await;
        assert!(pg::drop_connections(&db) > 0, "the servers were connected");
        // At once, on both servers: a read answers from a fresh connection.
        for c in [owner_a, owner_b] {
            c.get(&format!("/api/v2/workspacebuilds/{build}"))
                .await
                .expect(200, BUILD);
        }
    }
    let done = finished(owner_a, build).await;
    assert_eq!(done["job"]["status"], "succeeded", "{done}");
    every_line_once(owner_b, &run.path, 100, run.followers, "drops").await;
}

#[actix_web::test]
async fn while_the_database_refuses_connections_requests_answer_503_and_the_job_waits_for_it() {
    if !postgres_mode() {
        eprintln!("skipped: a database outage is played on PostgreSQL (KILN_TEST_STORE=postgres)");
        return;
    }
    let kiln = TestApp::start();
    let owner = kiln.owner().await;
    let steps = json!([
        {"sleep_ms": 300},
        {"run": "for i in $(seq 1 60); do echo line $i; sleep 0.05; done"}
    ]);
    let t = template(&owner, "t", manifest(steps, json!([]))).await;
    let (_, build) = workspace(&owner, &t, "dev", json!([])).await;
    let path = format!("/api/v2/workspacebuilds/{build}/logs");
    let followers: Vec<_> = STYLES
        .iter()
        .map(|style| actix_web::rt::spawn(follow(owner.clone(), path.clone(), *style)))
        .collect();
    let db = pg::database_name(kiln.database().unwrap()).to_string();
    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    pg::allow_connections(&db, false);
    let asked = Instant::now();
    owner
        .get(&format!("/api/v2/workspacebuilds/{build}"))
        .await
        .assert_error(503, "The database cannot be reached.", None);
    let waited = asked.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "answered within seconds: {waited:?}"
    );
    let health = owner.get("/healthz").await;
    assert_eq!(health.status, 503, "{}", health.text());
    assert_eq!(health.text(), "the database cannot be reached");
    // The steps go on meanwhile; their lines wait.
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    pg::allow_connections(&db, true);
    let done = finished(&owner, &build).await;
    assert_eq!(done["job"]["status"], "succeeded", "{done}");
    let health = owner.get("/healthz").await;
    assert_eq!((health.status, health.text()), (200, "OK".to_string()));
    every_line_once(&owner, &path, 60, followers, "outage").await;
}

/// SQLite: another process holding the database's write lock past kiln's busy timeout (a
/// backup tool, a `sqlite3` shell left in a transaction) is a transient error, as a dropped
/// connection is on PostgreSQL: writes answer 503 meanwhile, and a running job keeps its lines
/// and ends by its own steps once the lock is gone.
#[actix_web::test]
async fn a_job_rides_through_another_process_holding_the_sqlite_write_lock() {
    if postgres_mode() {
        eprintln!("skipped: the SQLite write lock is SQLite's");
        return;
    }
    let s = TestApp::start();
    let owner = s.owner().await;
    let steps = json!([
        {"sleep_ms": 300},
        {"run": "for i in $(seq 1 30); do echo line $i; sleep 0.1; done"},
        {"sleep_ms": 200}
    ]);
    let t = template(&owner, "t", manifest(steps, json!([]))).await;
    let (_, build) = workspace(&owner, &t, "dev", json!([])).await;
    crate::common::fixtures::wait_job(&owner, &build, "running").await;
    let db = s.dir.join("kiln.db");
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    // Held until the refused write below has been answered (it may wait out the busy timeout
    // more than once: a session's check writes too), and at least 13 s.
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        let held = std::time::Instant::now();
        let _ = release_rx.recv_timeout(Duration::from_secs(120));
        std::thread::sleep(Duration::from_secs(13).saturating_sub(held.elapsed()));
        conn.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    // A write meanwhile: refused once the busy timeout ran out, nothing stored.
    let r = owner
        .post(
            "/api/v2/users/me/workspaces",
            json!({"template_id": t, "name": "meanwhile"}),
        )
        .await;
    r.expect_error(503, "The database is busy.", None);
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let b = finished(&owner, &build).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    let lines = crate::common::fixtures::outputs(&owner, &build).await;
    let want: Vec<String> = (1..=30).map(|i| format!("line {i}")).collect();
    let got: Vec<String> = lines
        .into_iter()
        .filter(|l| l.starts_with("line "))
        .collect();
    assert_eq!(got, want, "every line once, in order");
    let ws = owner.get("/api/v2/users/me/workspace/meanwhile").await;
    assert_eq!(ws.status, 404, "the refused write stored nothing");
}
