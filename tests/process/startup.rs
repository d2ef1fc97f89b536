//! Start-up: a fresh start logs no error; a data folder that is read-only is refused in one line;
//! a server killed (SIGKILL) at any moment of its start-up, or in the middle of a schema
//! migration, leaves a folder the next start opens cleanly, with its data and the current schema.
//!
//! Process: servers are killed at chosen moments of their start-up, their logs read, their
//! /proc entries looked at (what they hide of their command line and environment).

use crate::common::fixtures::{quick, template, workspace};
use crate::common::mount::Tmpfs;
use crate::common::{Kiln, Starting, TestServer, postgres_mode};
use std::path::Path;
use std::time::{Duration, Instant};

const SQLITE_SCHEMA: &str = include_str!("../../schema.sql");
const PG_SCHEMA: &str = include_str!("../../src/store/postgres/schema.sql");

/// The lines of a log that report an error or a panic.
fn errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" ERROR ") || l.contains("panicked"))
        .collect()
}

fn assert_clean(log: &str, what: &str) {
    let bad = errors(log);
    assert!(
        bad.is_empty(),
        "{what}: the log has errors: {bad:#?}\n{log}"
    );
}

/// The schema version this kiln writes (its schema file's number of blocks).
fn latest_version() -> u32 {
    let schema = if postgres_mode() {
        PG_SCHEMA
    } else {
        SQLITE_SCHEMA
    };
    schema
        .lines()
        .filter(|l| l.trim().starts_with("-- migration "))
        .count() as u32
}

/// The schema version of the store of `dir` (no server running on it).
fn version_of(s: &TestServer) -> u32 {
    if postgres_mode() {
        let out = crate::common::pg::psql(s.pg_database(), "SELECT version FROM kiln_schema");
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("kiln_schema: {out:?}"))
    } else {
        rusqlite::Connection::open(s.db_path())
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }
}

/// A data folder (kept by the caller) holding the owner and a workspace whose first build
/// succeeded; returns the build's id. The server that made them is stopped.
async fn folder_with_data(dir: &Path) -> String {
    let mut s = TestServer::start_in(dir, &[]);
    let owner = s.owner().await;
    let t = template(&owner, "t", quick()).await;
    let (_, build) = workspace(&owner, &t, "dev", serde_json::json!([])).await;
    let b = owner.wait_build(&build).await;
    assert_eq!(b["job"]["status"], "succeeded", "{b}");
    assert!(s.terminate().success());
    build
}

/// A normal start on `dir`: it serves cleanly, and the owner and `build` are there.
async fn check_clean_start(dir: &Path, build: &str, what: &str) -> TestServer {
    let s = TestServer::start_in(dir, &[]);
    let owner = s.login("owner@example.com", "owner-password").await;
    let b = owner
        .get(&format!("/api/v2/workspacebuilds/{build}"))
        .await
        .expect(200, "codersdk.WorkspaceBuild");
    assert_eq!(b["job"]["status"], "succeeded", "{what}: {b}");
    assert_eq!(s.anon().get("/healthz").await.status, 200);
    assert_clean(&s.log(), what);
    s
}

/// Kills `p` as soon as its log holds `line` (or after 20 s); returns its log.
fn kill_on_line(p: Starting, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.log().contains(line) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    p.kill()
}

#[actix_web::test]
async fn a_fresh_start_logs_no_error() {
    // The race this guards against (pool connections opening at once on a new file) showed in
    // a few starts out of a hundred: many starts, a few at a time.
    let (rounds, at_once) = if postgres_mode() { (3, 3) } else { (25, 4) };
    for round in 0..rounds {
        let dirs: Vec<_> = (0..at_once).map(|_| tempfile::tempdir().unwrap()).collect();
        let starting: Vec<_> = dirs
            .iter()
            .map(|d| TestServer::spawn_in(d.path(), &[]))
            .collect();
        for (i, p) in starting.into_iter().enumerate() {
            let s = p.ready();
            assert_eq!(s.anon().get("/healthz").await.status, 200);
            let r = s.anon().get("/api/v2/users/first").await;
            assert_eq!(r.status, 404, "{}", r.text());
            let log = s.log();
            assert!(log.contains("migrating to"), "{log}");
            assert_clean(&log, &format!("fresh start {round}.{i}"));
        }
    }
}

/// The one line a start that fails logs, and its exit code.
fn failed_start(dir: &Path) -> String {
    let (status, log) = TestServer::spawn_in(dir, &[]).exit();
    assert_eq!(status.code(), Some(1), "{log}");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {log}");
    assert!(!log.contains("panicked"), "{log}");
    let (_, message) = lines[0]
        .split_once(" ERROR kiln] ")
        .unwrap_or_else(|| panic!("an error line: {log}"));
    message.to_string()
}

#[actix_web::test]
async fn a_read_only_data_dir_is_refused_in_one_line() {
    let Some(mount) = Tmpfs::mount("4m") else {
        return;
    };
    let dir = &mount.dir;
    let mut s = TestServer::start_in(dir, &[]);
    s.owner().await;
    assert!(s.terminate().success());
    mount.remount("ro");

    // A folder holding a previous server's data, and a folder that is yet to be made.
    assert_eq!(
        failed_start(dir),
        format!(
            "cannot use the data directory {}: cannot open kiln.lock for writing: Read-only file \
             system (os error 30)",
            dir.display()
        )
    );
    let new = dir.join("new");
    assert_eq!(
        failed_start(&new),
        format!(
            "cannot create the data directory {}: Read-only file system (os error 30)",
            new.display()
        )
    );

    // Writable again: the data is there.
    mount.remount("rw");
    let s = TestServer::start_in(dir, &[]);
    s.login("owner@example.com", "owner-password").await;
    assert_clean(&s.log(), "the start after the remount");
}

#[actix_web::test]
async fn a_server_killed_during_start_up_starts_cleanly_next_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let build = folder_with_data(dir).await;
    for ms in [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 15, 20, 50, 100] {
        let p = TestServer::spawn_in(dir, &[]);
        std::thread::sleep(Duration::from_millis(ms));
        let log = p.kill();
        let reached = log.lines().last().unwrap_or("(nothing logged)");
        eprintln!("killed after {ms} ms: {reached}");
        let mut s = check_clean_start(dir, &build, &format!("killed after {ms} ms")).await;
        // Killed once it serves, too: the next start is as clean.
        s.kill();
    }
    let s = check_clean_start(dir, &build, "the last start").await;
    assert_eq!(version_of(&s), latest_version());
}

#[actix_web::test]
async fn a_server_killed_while_it_creates_the_schema_starts_cleanly_next_time() {
    let (rounds, latest) = (6, latest_version());
    let mut inside = 0;
    for round in 0..rounds {
        let tmp = tempfile::tempdir().unwrap();
        let p = TestServer::spawn_in(tmp.path(), &[]);
        // Killed at once when it says it migrates, or a little later.
        let log = if round < 3 {
            kill_on_line(p, "migrating to")
        } else {
            std::thread::sleep(Duration::from_millis(2 * round));
            p.kill()
        };
        let s = TestServer::start_in(tmp.path(), &[]);
        let what = format!("round {round}, after: {log}");
        assert_eq!(version_of(&s), latest, "{what}");
        // Either the killed server's migration committed whole, or the next one does it all.
        let next = s.log();
        let migrated = next.lines().find(|l| l.contains("migrated from version"));
        if let Some(line) = migrated {
            assert!(
                line.ends_with(&format!("migrated from version 0 to {latest}")),
                "{what}\n{next}"
            );
            inside += usize::from(log.contains("migrating to"));
        }
        s.owner().await;
        assert_clean(&s.log(), &what);
    }
    eprintln!("{inside} of {rounds} kills landed inside the migration's transaction");
}

/// The SQLite schema's blocks, in order.
fn sqlite_blocks() -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in SQLITE_SCHEMA.lines() {
        if line.trim().starts_with("-- migration ") {
            blocks.push(String::new());
        } else if let Some(b) = blocks.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    blocks
}

type Objects = std::collections::BTreeSet<(String, String, String)>;

/// The schema objects of a database: (type, name, definition). A table's definition is its
/// columns (as `PRAGMA table_info` gives them), so a column added and dropped again compares
/// equal whatever text SQLite keeps; other objects are their SQL.
fn objects(conn: &rusqlite::Connection) -> Objects {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%'",
        )
        .unwrap();
    let raw: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    raw.into_iter()
        .map(|(kind, name, sql)| {
            if kind != "table" {
                return (kind, name, sql);
            }
            let columns = table_columns(conn, &name).join(", ");
            (kind, name, columns)
        })
        .collect()
}

/// `name type notnull default pk` for each column of `table`, in order.
fn table_columns(conn: &rusqlite::Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .unwrap();
    stmt.query_map([], |r| {
        Ok(format!(
            "{} {} {} {:?} {}",
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, i64>(5)?
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The schema objects the first `n` blocks make.
fn objects_of_blocks(n: usize) -> Objects {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    for sql in &sqlite_blocks()[..n] {
        conn.execute_batch(sql).unwrap();
    }
    objects(&conn)
}

/// The columns of `table` as the first `n` blocks make it.
fn objects_of_blocks_columns(n: usize, table: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    for sql in &sqlite_blocks()[..n] {
        conn.execute_batch(sql).unwrap();
    }
    table_columns(&conn, table)
}

/// Turns a SQLite file at the latest version into one at the version before, as an older kiln
/// left it: drops what the last block adds (objects, or columns of a table it changed), and
/// checks that what remains is exactly the schema of the blocks before it.
fn downgrade(db: &Path) {
    let latest = latest_version() as usize;
    let (newest, older) = (objects_of_blocks(latest), objects_of_blocks(latest - 1));
    let conn = rusqlite::Connection::open(db).unwrap();
    assert_eq!(objects(&conn), newest);
    let older_tables: Vec<&String> = older
        .iter()
        .filter(|(kind, _, _)| kind == "table")
        .map(|(_, name, _)| name)
        .collect();
    for (kind, name, _) in newest.difference(&older) {
        if kind == "table" && older_tables.contains(&name) {
            // A table the last block changed: it may only have added columns, which go again.
            let before = objects_of_blocks_columns(latest - 1, name);
            for column in table_columns(&conn, name) {
                let column_name = column.split(' ').next().unwrap().to_string();
                if !before
                    .iter()
                    .any(|c| c.split(' ').next() == Some(column_name.as_str()))
                {
                    conn.execute_batch(&format!("ALTER TABLE {name} DROP COLUMN {column_name}"))
                        .unwrap();
                }
            }
            continue;
        }
        conn.execute_batch(&format!("DROP {kind} IF EXISTS {name}"))
            .unwrap();
    }
    conn.execute_batch(&format!("PRAGMA user_version = {}", latest - 1))
        .unwrap();
    assert_eq!(objects(&conn), older);
}

/// The version and objects of the SQLite file in `dir`, read from a copy (the file and its
/// WAL), so the next server finds the folder exactly as the killed one left it.
fn state_of_copy(dir: &Path) -> (u32, Objects) {
    let scratch = tempfile::tempdir().unwrap();
    for name in ["kiln.db", "kiln.db-wal", "kiln.db-shm"] {
        if dir.join(name).exists() {
            std::fs::copy(dir.join(name), scratch.path().join(name)).unwrap();
        }
    }
    let conn = rusqlite::Connection::open(scratch.path().join("kiln.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    (version, objects(&conn))
}

#[actix_web::test]
async fn a_server_killed_while_it_migrates_an_older_schema_starts_cleanly_next_time() {
    if postgres_mode() {
        eprintln!(
            "skipped: the older schema is made in a SQLite file (the PostgreSQL migration is \
             covered by the schema-creation test)"
        );
        return;
    }
    let fixture = tempfile::tempdir().unwrap();
    let build = folder_with_data(fixture.path()).await;
    downgrade(&fixture.path().join("kiln.db"));
    let latest = latest_version();
    let (newest, older) = (
        objects_of_blocks(latest as usize),
        objects_of_blocks(latest as usize - 1),
    );
    let rounds = 8;
    let mut inside = 0;
    for round in 0..rounds {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(fixture.path().join("kiln.db"), tmp.path().join("kiln.db")).unwrap();
        let p = TestServer::spawn_in(tmp.path(), &[]);
        let log = if round < 5 {
            kill_on_line(p, "migrating to")
        } else {
            std::thread::sleep(Duration::from_millis(round));
            p.kill()
        };
        // The file is whole, at the old version or the new one, never between.
        let (version, found) = state_of_copy(tmp.path());
        let what = format!("round {round}: version {version} after: {log}");
        if version == latest - 1 {
            assert_eq!(found, older, "{what}");
            if log.contains("migrating to") {
                inside += 1;
            }
        } else {
            assert_eq!(version, latest, "{what}");
            assert_eq!(found, newest, "{what}");
        }
        let s = check_clean_start(tmp.path(), &build, &what).await;
        assert_eq!(version_of(&s), latest, "{what}");
        if version < latest {
            let migrated = format!("migrated from version {version} to {latest}");
            assert!(s.log().contains(&migrated), "{what}\n{}", s.log());
        }
    }
    eprintln!("{inside} of {rounds} kills landed inside the migration's transaction");
}

#[test]
fn the_data_folder_and_database_are_kiln_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    let s = TestServer::start();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.dir), 0o700);
    for entry in std::fs::read_dir(&s.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path) & 0o077, 0, "{}", path.display());
        }
    }
    if !postgres_mode() {
        for file in ["kiln.db", "kiln.db-wal", "kiln.db-shm"] {
            assert_eq!(mode(&s.dir.join(file)), 0o600, "{file}");
        }
    }
}

#[test]
fn the_database_url_is_not_left_where_a_step_could_read_it() {
    if !postgres_mode() {
        eprintln!("skipped: --database is PostgreSQL's (KILN_TEST_STORE=postgres)");
        return;
    }
    const MARKER: &str = "kiln-hidden-marker";
    let conn = crate::common::pg::fresh_database();
    let db = crate::common::pg::database_name(&conn).to_string();
    let marked = format!("{conn} application_name={MARKER}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("database");
    std::fs::write(&file, format!("{marked}\n")).unwrap();
    let file = file.to_str().unwrap().to_string();
    for (args, env) in [
        (vec!["--database", marked.as_str()], None),
        (vec![], Some(marked.as_str())),
        (vec!["--database-file", file.as_str()], None),
    ] {
        let data = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.args(["server", "--address", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .args(&args)
            .env_remove("KILN_DATABASE")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(v) = env {
            cmd.env("KILN_DATABASE", v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("listening on http://") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{args:?} {env:?}: kiln did not start"));
        for what in ["cmdline", "environ"] {
            let bytes = std::fs::read(format!("/proc/{}/{what}", child.id())).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(MARKER), "{args:?} {env:?} {what}: {text}");
        }
        // It is the database the server uses.
        let used = crate::common::pg::psql(
            &db,
            &format!(
                "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = '{MARKER}'"
            ),
        );
        assert_eq!(used.trim(), "t", "{args:?} {env:?}");
        let _ = child.kill();
        let _ = child.wait();
    }
}
