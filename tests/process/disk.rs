//! A full disk: the data folder on a small tmpfs that the test fills while a build runs and
//! its log is followed. kiln refuses every write with Coder's error shape (507, naming the
//! cause) and stores nothing of it, keeps serving reads, stops the running job's command, fails
//! the job with the cause once it can write again, and writes again without a restart; what it
//! acknowledged before is there after the space is freed and after a restart.
//!
//! SQLite only: with PostgreSQL the database is not in the data folder.
//!
//! Process: the server is killed and restarted on the tmpfs (mounted as root), and its log is
//! read.

use crate::common::fixtures::{build_count, finished, manifest, quick, template, workspace};
use crate::common::follow::{Style, assert_complete, follow};
use crate::common::mount::Tmpfs;
use crate::common::{Client, Kiln, TestServer, postgres_mode, tar_of};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DISK_FULL: &str = "The server's disk is full.";
const DISK_FULL_DETAIL: &str =
    "Nothing was stored (database or disk is full); free space on the server.";
const JOB_ERROR: &str = "the server's disk is full (database or disk is full): kiln could not \
                         store this job's progress, so it was stopped";

/// Hands the database's spare room back to the disk: a checkpoint that truncates its WAL (as
/// `sqlite3 kiln.db 'PRAGMA wal_checkpoint(TRUNCATE)'` would), so its next commit needs new
/// space.
fn checkpoint(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint could not finish");
}

/// Takes every free byte of the disk of `dir` with one file; returns it.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let zeros = vec![0u8; 64 * 1024];
    for size in [zeros.len(), 4096, 1] {
        loop {
            match f.write(&zeros[..size]) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let mut more = std::fs::File::create(dir.join("one-more")).unwrap();
    let err = more.write_all(&zeros).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "the disk is full");
    std::fs::remove_file(dir.join("one-more")).unwrap();
    path
}

/// Whether a process runs whose command line holds `marker`.
fn running_with(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
        std::fs::read(p.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
    })
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn job_of(c: &Client, build: &str) -> Value {
    let b = c.get(&format!("/api/v2/workspacebuilds/{build}")).await;
    assert_eq!(b.status, 200, "{}", b.text());
    b.json()["job"].clone()
}

async fn logs_of(c: &Client, build: &str) -> Vec<Value> {
    let r = c
        .get(&format!("/api/v2/workspacebuilds/{build}/logs"))
        .await;
    r.expect(200, "[]codersdk.ProvisionerJobLog")
        .as_array()
        .unwrap()
        .clone()
}

async fn new_workspace(c: &Client, template: &str, name: &str) -> crate::common::Resp {
    c.post(
        "/api/v2/users/me/workspaces",
        json!({"template_id": template, "name": name}),
    )
    .await
}

/// What was refused is not there, and what was acknowledged is.
async fn check_stored(c: &Client, refused: &[String], done_ws: &str, builds: usize) {
    for name in refused {
        let r = c.get(&format!("/api/v2/users/me/workspace/{name}")).await;
        assert_eq!(r.status, 404, "{name} was refused, yet: {}", r.text());
    }
    assert_eq!(build_count(c, done_ws).await, builds);
}

#[actix_web::test]
async fn a_full_disk_refuses_writes_keeps_what_it_acknowledged_and_recovers() {
    if postgres_mode() {
        eprintln!("skipped: with PostgreSQL the database is not on the data folder's disk");
        return;
    }
    let Some(disk) = Tmpfs::mount("32m") else {
        return;
    };
    let dir = disk.dir.clone();
    let mut s = TestServer::start_in(&dir, &[]);
    let owner = s.owner().await;
    let quick_t = template(&owner, "quick", quick()).await;
    let (done_ws, done_build) = workspace(&owner, &quick_t, "done", json!([])).await;
    let done = finished(&owner, &done_build).await;
    assert_eq!(done["job"]["status"], "succeeded", "{done}");
    let done_logs = logs_of(&owner, &done_build).await;

    // A build whose step writes a line every 50 ms until it is stopped, followed live.
    let marker = format!("kiln-disk-{}", uuid::Uuid::new_v4().simple());
    let script =
        format!(": {marker}; i=0; while :; do echo \"line $i\"; i=$((i+1)); sleep 0.05; done");
    let chatty_t = template(
        &owner,
        "chatty",
        manifest(json!([{ "run": script }]), json!([])),
    )
    .await;
    let (_, chatty) = workspace(&owner, &chatty_t, "chatty", json!([])).await;
    let path = format!("/api/v2/workspacebuilds/{chatty}/logs");
    let follower = actix_web::rt::spawn(follow(owner.clone(), path, Style::Ndjson));
    wait_until("the step's lines", || async {
        let logs = logs_of(&owner, &chatty).await;
        logs.iter().filter(|l| l["output"] == "line 3").count() == 1
    })
    .await;

    // The disk fills up.
    checkpoint(&s.db_path());
    let filler = fill(&dir);

    // Every write is refused, and none is stored: one at a time and many at once (sharing
    // commits), whatever it writes.
    let mut refused = vec!["refused".to_string()];
    new_workspace(&owner, &quick_t, "refused")
        .await
        .expect_error(507, DISK_FULL, Some(DISK_FULL_DETAIL));
    // A 4 MB upload does not fit SQLite's page cache: its own statement fails, and SQLite rolls
    // back the whole transaction, which it may share with the small writes beside it.
    let notes: String = (0..100_000).map(|i| format!("{marker} {i}\n")).collect();
    let big = tar_of(&[("kiln.json", &quick().to_string()), ("notes", &notes)]);
    let names: Vec<String> = (0..12).map(|i| format!("refused-{i}")).collect();
    let (answers, upload) = futures_util::join!(
        futures_util::future::join_all(names.iter().map(|n| new_workspace(&owner, &quick_t, n))),
        owner.post_raw("/api/v2/files", "application/x-tar", big.clone())
    );
    upload.expect_error(507, DISK_FULL, Some(DISK_FULL_DETAIL));
    for r in answers {
        r.expect_error(507, DISK_FULL, Some(DISK_FULL_DETAIL));
    }
    refused.extend(names);
    owner
        .post(
            &format!("/api/v2/workspaces/{done_ws}/builds"),
            json!({"transition": "stop"}),
        )
        .await
        .expect_error(507, DISK_FULL, Some(DISK_FULL_DETAIL));
    let upload = tar_of(&[("kiln.json", &quick().to_string()), ("notes", &marker)]);
    owner
        .post_raw("/api/v2/files", "application/x-tar", upload)
        .await
        .expect_error(507, DISK_FULL, Some(DISK_FULL_DETAIL));
    s.anon()
        .post(
            "/api/v2/users/login",
            json!({"email": "owner@example.com", "password": "owner-password"}),
        )
        .await
        .expect_error(507, DISK_FULL, Some(DISK_FULL_DETAIL));

    // Reads go on.
    assert_eq!(job_of(&owner, &done_build).await["status"], "succeeded");
    assert_eq!(logs_of(&owner, &done_build).await, done_logs);
    check_stored(&owner, &refused, &done_ws, 1).await;

    // The running job cannot store its log: its command is stopped at once, and the job
    // stays running until its failure can be stored.
    wait_until("the step's command to be stopped", || async {
        !running_with(&marker)
    })
    .await;
    assert_eq!(job_of(&owner, &chatty).await["status"], "running");

    // Space is freed: kiln writes again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    wait_until("the job to fail", || async {
        job_of(&owner, &chatty).await["status"] == "failed"
    })
    .await;
    let job = job_of(&owner, &chatty).await;
    assert_eq!(job["error"], JOB_ERROR, "{job}");
    let followed = actix_web::rt::time::timeout(Duration::from_secs(30), follower)
        .await
        .expect("the follower ends with the job")
        .unwrap();
    assert_complete(&followed, &logs_of(&owner, &chatty).await, "the follower");

    let r = owner
        .post_raw("/api/v2/files", "application/x-tar", big)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = new_workspace(&owner, &quick_t, "after").await;
    assert_eq!(r.status, 201, "{}", r.text());
    let after = r.json()["latest_build"]["id"].as_str().unwrap().to_string();
    assert_eq!(finished(&owner, &after).await["job"]["status"], "succeeded");
    let r = owner
        .post(
            &format!("/api/v2/workspaces/{done_ws}/builds"),
            json!({"transition": "stop"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let stop = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(finished(&owner, &stop).await["job"]["status"], "succeeded");
    check_stored(&owner, &refused, &done_ws, 2).await;
    assert!(!s.log().contains("panicked"), "{}", s.log());

    // After a restart, everything acknowledged is there, and nothing refused.
    assert!(s.terminate().success());
    let s = TestServer::start_in(&dir, &[]);
    let owner = s.login("owner@example.com", "owner-password").await;
    assert_eq!(logs_of(&owner, &done_build).await, done_logs);
    assert_eq!(job_of(&owner, &chatty).await["error"], JOB_ERROR);
    assert_eq!(job_of(&owner, &after).await["status"], "succeeded");
    check_stored(&owner, &refused, &done_ws, 2).await;
    assert!(!s.log().contains(" ERROR "), "{}", s.log());
}

/// Closes the SQLite file of `dir` as its last user would (a checkpoint, then its WAL and WAL
/// index removed), as a clean stop of kiln does when all its connections close.
fn close_cleanly(dir: &Path) {
    let conn = rusqlite::Connection::open(dir.join("kiln.db")).unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    drop(conn);
    for gone in ["kiln.db-wal", "kiln.db-shm"] {
        assert!(!dir.join(gone).exists(), "{gone} is left");
    }
}

#[actix_web::test]
async fn a_start_on_a_full_disk_serves_reads_or_says_why_it_cannot() {
    if postgres_mode() {
        eprintln!("skipped: with PostgreSQL the database is not on the data folder's disk");
        return;
    }
    let Some(disk) = Tmpfs::mount("8m") else {
        return;
    };
    let dir = disk.dir.clone();
    let mut s = TestServer::start_in(&dir, &[]);
    let owner = s.owner().await;
    let t = template(&owner, "quick", quick()).await;
    let (_, build) = workspace(&owner, &t, "dev", json!([])).await;
    assert_eq!(finished(&owner, &build).await["job"]["status"], "succeeded");

    // Killed: the database's WAL index stays, so the next start needs no new space. It serves
    // reads, and refuses writes.
    s.kill();
    let filler = fill(&dir);
    let mut s = TestServer::start_in(&dir, &[]);
    // Signing in writes a session: refused; the session made before still works.
    s.anon()
        .post(
            "/api/v2/users/login",
            json!({"email": "owner@example.com", "password": "owner-password"}),
        )
        .await
        .expect_error(507, DISK_FULL, Some(DISK_FULL_DETAIL));
    let owner = s.client(owner.token());
    assert_eq!(job_of(&owner, &build).await["status"], "succeeded");
    new_workspace(&owner, &t, "refused")
        .await
        .expect_error(507, DISK_FULL, Some(DISK_FULL_DETAIL));
    s.kill();
    std::fs::remove_file(&filler).unwrap();

    // Closed cleanly: the WAL index must be made anew, and there is no room for it. The start
    // is refused in one line.
    close_cleanly(&dir);
    let filler = fill(&dir);
    let (status, log) = TestServer::spawn_in(&dir, &[]).exit();
    assert_eq!(status.code(), Some(1), "{log}");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].ends_with(
            " ERROR kiln] the server's disk is full (disk I/O error: the database's -shm file \
             cannot grow)"
        ),
        "{log}"
    );

    std::fs::remove_file(&filler).unwrap();
    let s = TestServer::start_in(&dir, &[]);
    let owner = s.login("owner@example.com", "owner-password").await;
    assert_eq!(job_of(&owner, &build).await["status"], "succeeded");
    let r = owner.get("/api/v2/users/me/workspace/refused").await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(!s.log().contains(" ERROR "), "{}", s.log());
}
