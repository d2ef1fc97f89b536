//! `kiln backup` of a running server's embedded database while two builds run and log, and
//! `kiln restore` of that copy into another data folder: the copy passes SQLite's integrity
//! check, holds every build acknowledged before it was taken with its logs and state, and the
//! builds that were running come back failed, not running. Restoring into a folder a server
//! uses is refused. Process: `kiln backup` and `kiln restore` are commands, and the server is
//! started again on the restored folder.

use crate::common::fixtures::{finished, manifest, outputs, template, wait_job, workspace};
use crate::common::{Kiln, TestServer, postgres_mode};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn kiln(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .env_remove("KILN_DATA_DIR")
        .output()
        .expect("run kiln");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn integrity(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[actix_web::test]
async fn a_backup_taken_while_builds_log_restores_every_acknowledged_build() {
    if postgres_mode() {
        eprintln!("skipped: kiln backup copies the embedded database (PostgreSQL: pg_dump)");
        return;
    }
    let s = TestServer::start();
    let owner = s.owner().await;
    let start = json!([
        {"run": "for i in $(seq 1 50); do echo done $i; done"},
        {"run": "printf '{\"kept\": %s}' \"$KILN_BUILD_NUMBER\" > \"$KILN_STATE_FILE\""}
    ]);
    let t = template(&owner, "kept", manifest(start, json!([]))).await;
    // Builds that logs all along, running when the copy is taken (two of the server's three
    // workers), and four that finish before it, with their lines and states.
    let busy = json!([{"run": "i=0; while true; do i=$((i+1)); echo busy $i; sleep 0.01; done"}]);
    let t2 = template(&owner, "busy", manifest(busy, json!([]))).await;
    let mut running = Vec::new();
    for name in ["busy1", "busy2"] {
        running.push(workspace(&owner, &t2, name, json!([])).await.1);
    }
    let mut kept = Vec::new();
    for name in ["kept1", "kept2", "kept3", "kept4"] {
        let (_, build) = workspace(&owner, &t, name, json!([])).await;
        assert_eq!(finished(&owner, &build).await["job"]["status"], "succeeded");
        let path = format!("/api/v2/workspacebuilds/{build}/state");
        let state = owner.get(&path).await.text();
        assert_eq!(state, "{\"kept\": 1}");
        kept.push((build.clone(), outputs(&owner, &build).await, path, state));
    }
    for build in &running {
        wait_job(&owner, build, "running").await;
    }

    let out = tempfile::tempdir().unwrap();
    let copy = out.path().join("kiln-backup.db");
    let copy_s = copy.to_str().unwrap();
    let data = s.dir().to_str().unwrap().to_string();
    let (ok, text) = kiln(&["backup", copy_s, "--data-dir", &data]);
    assert!(ok, "{text}");
    assert!(text.starts_with("backed up "), "{text}");
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "the copy holds secrets: readable by its owner alone"
    );
    assert_eq!(integrity(&copy), "ok");
    // The build goes on meanwhile, and a copy is never written over.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    for build in &running {
        let b = owner
            .get(&format!("/api/v2/workspacebuilds/{build}"))
            .await
            .json();
        assert_eq!(b["job"]["status"], "running");
    }
    let (ok, text) = kiln(&["backup", copy_s, "--data-dir", &data]);
    assert!(!ok && text.contains("cannot create"), "{text}");
    // Not into a folder a server uses.
    let (ok, text) = kiln(&["restore", copy_s, "--data-dir", &data]);
    assert!(
        !ok && text.contains("another kiln server is using the data directory"),
        "{text}"
    );
    let token = owner.token().to_string();
    drop(s);

    let restored = tempfile::tempdir().unwrap();
    let restored_s = restored.path().to_str().unwrap();
    let (ok, text) = kiln(&["restore", copy_s, "--data-dir", restored_s]);
    assert!(ok, "{text}");
    assert!(
        text.contains("2 job(s) running at the backup were failed"),
        "{text}"
    );
    assert_eq!(integrity(&restored.path().join("kiln.db")), "ok");
    let s = TestServer::start_in(restored.path(), &[]);
    let owner = s.client(&token);
    for (build, lines, state_path, state) in &kept {
        let b = finished(&owner, build).await;
        assert_eq!(b["job"]["status"], "succeeded", "{b}");
        assert_eq!(&outputs(&owner, build).await, lines);
        assert_eq!(&owner.get(state_path).await.text(), state);
    }
    for build in &running {
        let r = finished(&owner, build).await;
        assert_eq!(r["job"]["status"], "failed", "{r}");
        assert_eq!(
            r["job"]["error"],
            "kiln was restored from a backup taken while this job ran; the job did not finish there"
        );
        let busy_lines = outputs(&owner, build).await;
        assert!(
            busy_lines.iter().any(|l| l.starts_with("busy ")),
            "a running build's lines up to the copy are kept: {busy_lines:?}"
        );
    }
}
