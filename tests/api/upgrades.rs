//! Upgrades (kiln issue 31): a database written by any earlier schema version of kiln opens in
//! this one, migrates, and reads back identical through the API, on both stores.
//!
//! `tests/fixtures/upgrades/` holds, for every schema version that was ever the latest on main,
//! a small database written by the newest kiln of that version (`sqlite-vN.db`; a plain
//! `pg_dump`, `postgres-vN.sql`) and what that kiln's API answered about it (`<name>.json`),
//! both made by `make.sh` there. The tests need only these files: no old binary, no git
//! history. Fields a later kiln added to an answer are ignored; every recorded field must be
//! there and equal.

use crate::common::schema::assert_valid;
use crate::common::{Client, Kiln, TestApp, pg, postgres_mode};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;
use std::path::{Path, PathBuf};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upgrades");
const SQLITE_SCHEMA: &str = include_str!("../../schema.sql");
const POSTGRES_SCHEMA: &str = include_str!("../../src/store/postgres/schema.sql");

/// The store under test: its fixtures' prefix and file extension, and its schema.
fn store() -> (&'static str, &'static str, &'static str) {
    if postgres_mode() {
        ("postgres", "sql", POSTGRES_SCHEMA)
    } else {
        ("sqlite", "db", SQLITE_SCHEMA)
    }
}

/// The `-- migration N` blocks of a schema file, in order: (N, the block's text).
fn blocks(schema: &str) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Vec::new();
    for line in schema.lines() {
        if let Some(n) = line.strip_prefix("-- migration ") {
            out.push((n.trim().parse().expect("a migration number"), String::new()));
        } else if let Some((_, block)) = out.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

fn latest() -> u32 {
    blocks(store().2).last().map_or(0, |(n, _)| *n)
}

struct Fixture {
    name: String,
    version: u32,
    /// The database: kiln.db, or the SQL of a `pg_dump`.
    db: PathBuf,
    record: Value,
}

/// This store's fixtures `<store>-v<N>.<ext>`, by version.
fn fixtures() -> Vec<Fixture> {
    let (prefix, ext, _) = store();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(DIR).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let Some(version) = file
            .strip_prefix(&format!("{prefix}-v"))
            .and_then(|rest| rest.strip_suffix(&format!(".{ext}")))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let name = format!("{prefix}-v{version}");
        let record: Value = serde_json::from_slice(
            &std::fs::read(Path::new(DIR).join(format!("{name}.json")))
                .unwrap_or_else(|e| panic!("{name}.json: {e}")),
        )
        .unwrap();
        assert_eq!(record["schema_version"], version, "{name}.json");
        assert_eq!(record["store"], prefix, "{name}.json");
        out.push(Fixture {
            db: Path::new(DIR).join(&file),
            name,
            version,
            record,
        });
    }
    out.sort_by_key(|f| f.version);
    out
}

/// A fresh store holding the fixture's database: `dir/kiln.db` (SQLite), or a new database of
/// the test cluster the dump is restored into (PostgreSQL; its connection string is returned).
fn place(f: &Fixture, dir: &Path) -> Option<String> {
    if !postgres_mode() {
        std::fs::copy(&f.db, dir.join("kiln.db")).unwrap();
        return None;
    }
    let conn = pg::fresh_database();
    let out = std::process::Command::new(Path::new(pg::BIN).join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &conn, "-f"])
        .arg(&f.db)
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "restoring {}: {}",
        f.name,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(conn)
}

fn start(dir: &Path, conn: &Option<String>) -> TestApp {
    match conn {
        Some(c) => TestApp::start_in(dir, &["--database", c]),
        None => TestApp::start_in(dir, &[]),
    }
}

/// Asserts that everything `recorded` holds is in `current`, equal: objects may have more
/// fields now, arrays must have the same elements in the same order.
fn assert_recorded(at: &str, recorded: &Value, current: &Value) {
    match (recorded, current) {
        (Value::Object(r), Value::Object(c)) => {
            for (k, v) in r {
                let Some(cv) = c.get(k) else {
                    panic!("{at}.{k}: recorded {v}, missing now in {current}");
                };
                assert_recorded(&format!("{at}.{k}"), v, cv);
            }
        }
        (Value::Array(r), Value::Array(c)) => {
            assert_eq!(
                r.len(),
                c.len(),
                "{at}: {} recorded, {} now: {recorded} / {current}",
                r.len(),
                c.len()
            );
            for (i, (rv, cv)) in r.iter().zip(c).enumerate() {
                assert_recorded(&format!("{at}[{i}]"), rv, cv);
            }
        }
        _ => assert_eq!(recorded, current, "{at}"),
    }
}

async fn get(c: &Client, path: &str, def: Option<&str>) -> Value {
    let r = c.get(path).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    let v = r.json();
    if let Some(def) = def {
        assert_valid(def, &v);
    }
    v
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
}

fn lines(logs: &Value) -> Vec<String> {
    logs.as_array()
        .unwrap()
        .iter()
        .map(|l| str_of(l, "output").to_string())
        .collect()
}

/// Reads through the current API everything `f` recorded and compares it.
async fn read_back(app: &TestApp, f: &Fixture) -> Client {
    let rec = &f.record;
    let name = &f.name;
    let owner = app
        .login(str_of(&rec["owner"], "email"), str_of(&rec["owner"], "password"))
        .await;
    let member = app
        .login(
            str_of(&rec["member"], "email"),
            str_of(&rec["member"], "password"),
        )
        .await;
    let me = get(&member, "/api/v2/users/me", Some("codersdk.User")).await;
    assert_eq!(me["id"], rec["member"]["id"], "{name}: the member");

    // Users, with their roles' names.
    let mut users = get(&owner, "/api/v2/users", Some("codersdk.GetUsersResponse")).await["users"]
        .as_array()
        .unwrap()
        .clone();
    users.sort_by(|a, b| a["username"].as_str().cmp(&b["username"].as_str()));
    for u in &mut users {
        let mut roles: Vec<Value> = u["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].clone())
            .collect();
        roles.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        u["roles"] = Value::Array(roles);
    }
    assert_recorded(&format!("{name}: users"), &rec["users"], &Value::Array(users));

    // Tokens: each still signs its user in; the list where the old kiln had one.
    let owner_id = rec["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "owner")
        .unwrap()["id"]
        .clone();
    for key in [&rec["api_key"], &rec["named_key"]] {
        if let Some(key) = key.as_str() {
            let me = get(&app.client(key), "/api/v2/users/me", None).await;
            assert_eq!(me["id"], owner_id, "{name}: the token {key}");
        }
    }
    if !rec["tokens"].is_null() {
        let mut tokens = get(&owner, "/api/v2/users/me/keys/tokens", None)
            .await
            .as_array()
            .unwrap()
            .clone();
        tokens.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        assert_recorded(&format!("{name}: tokens"), &rec["tokens"], &Value::Array(tokens));
    }

    // Templates, their versions (each with its file and import logs).
    let org = str_of(rec, "organization_id");
    let templates = get(
        &owner,
        &format!("/api/v2/organizations/{org}/templates"),
        Some("[]codersdk.Template"),
    )
    .await;
    assert_recorded(&format!("{name}: templates"), &rec["templates"], &templates);
    let mut versions = Vec::new();
    for t in templates.as_array().unwrap() {
        let listed = get(
            &owner,
            &format!("/api/v2/templates/{}/versions", str_of(t, "id")),
            Some("[]codersdk.TemplateVersion"),
        )
        .await;
        for v in listed.as_array().unwrap() {
            let id = str_of(v, "id");
            let mut v = get(
                &owner,
                &format!("/api/v2/templateversions/{id}"),
                Some("codersdk.TemplateVersion"),
            )
            .await;
            let file = str_of(&v["job"], "file_id").to_string();
            let bytes = owner.get(&format!("/api/v2/files/{file}")).await;
            assert_eq!(bytes.status, 200, "{name}: file {file}");
            v["job_status"] = v["job"]["status"].clone();
            v["file_id"] = file.into();
            v["file_sha256"] = sha2::Sha256::digest(&bytes.body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into();
            v["logs"] = get(
                &owner,
                &format!("/api/v2/templateversions/{id}/logs"),
                Some("[]codersdk.ProvisionerJobLog"),
            )
            .await;
            versions.push(v);
        }
    }
    assert_recorded(&format!("{name}: versions"), &rec["versions"], &Value::Array(versions));

    // Workspaces, every build with its logs and state.
    let mut workspaces = get(&owner, "/api/v2/workspaces", Some("codersdk.WorkspacesResponse"))
        .await["workspaces"]
        .as_array()
        .unwrap()
        .clone();
    workspaces.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut builds = Vec::new();
    for w in &mut workspaces {
        w["latest_build_id"] = w["latest_build"]["id"].clone();
        let listed = get(
            &owner,
            &format!("/api/v2/workspaces/{}/builds", str_of(w, "id")),
            Some("[]codersdk.WorkspaceBuild"),
        )
        .await;
        for b in listed.as_array().unwrap() {
            let id = str_of(b, "id");
            let mut b = get(
                &owner,
                &format!("/api/v2/workspacebuilds/{id}"),
                Some("codersdk.WorkspaceBuild"),
            )
            .await;
            b["job_status"] = b["job"]["status"].clone();
            b["logs"] = get(
                &owner,
                &format!("/api/v2/workspacebuilds/{id}/logs"),
                Some("[]codersdk.ProvisionerJobLog"),
            )
            .await;
            let state = owner
                .get(&format!("/api/v2/workspacebuilds/{id}/state"))
                .await;
            assert_eq!(state.status, 200, "{name}: state of {id}");
            b["state_base64"] = base64::engine::general_purpose::STANDARD
                .encode(&state.body)
                .into();
            builds.push(b);
        }
    }
    assert_recorded(
        &format!("{name}: workspaces"),
        &rec["workspaces"],
        &Value::Array(workspaces),
    );
    assert_recorded(&format!("{name}: builds"), &rec["builds"], &Value::Array(builds));
    owner
}

/// A new build on an old workspace runs and succeeds on the migrated database.
async fn build_again(owner: &Client, f: &Fixture) {
    let rec = &f.record;
    let ws = rec["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "owner-ws")
        .unwrap();
    let ws_id = str_of(ws, "id");
    let last = rec["builds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["workspace_id"] == ws["id"])
        .map(|b| b["build_number"].as_i64().unwrap())
        .max()
        .unwrap();
    let r = owner
        .post(
            &format!("/api/v2/workspaces/{ws_id}/builds"),
            json!({"transition": "start", "rich_parameter_values": [{"name": "mode", "value": "ok"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}: a new build: {}", f.name, r.text());
    let id = str_of(&r.json(), "id").to_string();
    let b = owner.wait_build(&id).await;
    assert_eq!(b["job"]["status"], "succeeded", "{}: {b}", f.name);
    assert_eq!(b["build_number"], last + 1, "{}", f.name);
    let logs = get(owner, &format!("/api/v2/workspacebuilds/{id}/logs"), None).await;
    let out = lines(&logs);
    for want in [
        "template version two",
        "unicode: héllo wörld ✓ — 日本語 🚀",
        "out-line",
    ] {
        assert!(out.iter().any(|l| l == want), "{}: {want:?} in {out:?}", f.name);
    }
    let state = owner
        .get(&format!("/api/v2/workspacebuilds/{id}/state"))
        .await;
    assert_eq!(
        state.text(),
        format!("{{\"owner\":\"owner\",\"build\":{}}}", last + 1),
        "{}",
        f.name
    );
}

#[actix_web::test]
async fn every_schema_version_has_a_fixture() {
    let (prefix, ext, _) = store();
    let have: Vec<u32> = fixtures().iter().map(|f| f.version).collect();
    let want: Vec<u32> = (1..=latest()).collect();
    assert_eq!(
        have, want,
        "tests/fixtures/upgrades needs {prefix}-vN.{ext} for every schema version N: make the \
         missing ones with tests/fixtures/upgrades/make.sh (docs/development.md, \"Upgrade \
         fixtures\")"
    );
}

#[actix_web::test]
async fn each_earlier_database_migrates_and_reads_back_identical() {
    let all = fixtures();
    assert!(!all.is_empty());
    for f in &all {
        let dir = tempfile::tempdir().unwrap();
        let conn = place(f, dir.path());
        let app = start(dir.path(), &conn);
        let owner = read_back(&app, f).await;
        build_again(&owner, f).await;
        drop(app);
        // Once migrated, it opens again as it is and still reads back the same.
        let app = start(dir.path(), &conn);
        read_back_after_restart(&app, f).await;
    }
}

async fn read_back_after_restart(app: &TestApp, f: &Fixture) {
    let rec = &f.record;
    let owner = app
        .login(str_of(&rec["owner"], "email"), str_of(&rec["owner"], "password"))
        .await;
    for b in rec["builds"].as_array().unwrap() {
        let logs = get(
            &owner,
            &format!("/api/v2/workspacebuilds/{}/logs", str_of(b, "id")),
            None,
        )
        .await;
        assert_recorded(&format!("{}: logs after a restart", f.name), &b["logs"], &logs);
    }
}

/// The last object the newest migration block creates (`CREATE [UNIQUE] TABLE|INDEX name`, not
/// `IF NOT EXISTS`): a table of that name made beforehand makes that block fail part-way, after
/// every earlier block and statement of this migration has run.
fn obstacle() -> String {
    let (_, last) = blocks(store().2).pop().unwrap();
    let mut found = None;
    for stmt in last.split(';') {
        let words: Vec<String> = stmt
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .flat_map(|l| l.split_whitespace())
            .map(|w| w.to_string())
            .collect();
        let mut w = words.iter().map(String::as_str);
        if w.next().is_some_and(|x| x.eq_ignore_ascii_case("CREATE")) {
            let mut kind = w.next().unwrap_or("");
            if kind.eq_ignore_ascii_case("UNIQUE") {
                kind = w.next().unwrap_or("");
            }
            let name = w.next().unwrap_or("");
            if (kind.eq_ignore_ascii_case("TABLE") || kind.eq_ignore_ascii_case("INDEX"))
                && !name.eq_ignore_ascii_case("IF")
            {
                found = Some(name.to_string());
            }
        }
    }
    found.expect("the newest migration block creates a table or an index")
}

/// Everything the store holds, to compare before and after: SQLite, the file's bytes and, read
/// through SQLite (WAL included), its version, schema and every table's rows; PostgreSQL, a
/// `pg_dump` of the database.
fn snapshot(dir: &Path, conn: &Option<String>) -> (Vec<u8>, String) {
    if let Some(c) = conn {
        // pg_dump names a random key in its `\restrict` and `\unrestrict` lines.
        let dump = String::from_utf8(pg::dump(pg::database_name(c))).unwrap();
        let kept: Vec<&str> = dump
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect();
        return (kept.join("\n").into_bytes(), String::new());
    }
    let path = dir.join("kiln.db");
    let bytes = std::fs::read(&path).unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    let mut text = format!("user_version {version}\n");
    let mut tables = Vec::new();
    let mut q = db
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let rows = q
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
        })
        .unwrap();
    for row in rows {
        let (kind, name, sql) = row.unwrap();
        text.push_str(&format!("{kind} {name}: {}\n", sql.unwrap_or_default()));
        if kind == "table" {
            tables.push(name);
        }
    }
    for t in tables {
        let mut q = db.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = q.column_count();
        let mut rows = q.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let vals: Vec<String> = (0..n)
                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                .collect();
            text.push_str(&format!("{t}: {}\n", vals.join(", ")));
        }
    }
    (bytes, text)
}

/// A migration that fails part-way leaves each earlier database as it was: the newest block
/// meets a table named like the last object it creates, so every earlier block and the first
/// statements of the newest have run when it fails. kiln refuses to start, and the database is
/// byte-identical (SQLite: the file; and its version, schema and rows read through SQLite with
/// whatever WAL was left; PostgreSQL: a dump, with kiln_schema's version). Without the obstacle
/// the same database then migrates.
#[actix_web::test]
async fn a_migration_failing_part_way_leaves_each_earlier_database_as_it_was() {
    let obstacle = obstacle();
    let mut tried = 0;
    for f in fixtures().iter().filter(|f| f.version < latest()) {
        let dir = tempfile::tempdir().unwrap();
        let conn = place(f, dir.path());
        let add = format!("CREATE TABLE {obstacle} (x INTEGER)");
        match &conn {
            Some(c) => {
                pg::psql(pg::database_name(c), &add);
            }
            None => {
                let db = rusqlite::Connection::open(dir.path().join("kiln.db")).unwrap();
                db.execute_batch(&add).unwrap();
                db.close().unwrap();
            }
        }
        let before = snapshot(dir.path(), &conn);
        let path = dir.path().to_path_buf();
        let c2 = conn.clone();
        let failed = std::panic::catch_unwind(move || start(&path, &c2))
            .map(drop)
            .expect_err("kiln started on a database whose migration fails");
        let msg = failed
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            msg.contains(&obstacle) && msg.contains("already exists"),
            "{}: {msg}",
            f.name
        );
        let after = snapshot(dir.path(), &conn);
        assert!(before.0 == after.0, "{}: the database changed", f.name);
        assert_eq!(before.1, after.1, "{}", f.name);
        if conn.is_none() {
            assert!(before.1.starts_with(&format!("user_version {}\n", f.version)));
        } else {
            let v = pg::psql(
                pg::database_name(conn.as_ref().unwrap()),
                "SELECT version FROM kiln_schema",
            );
            assert_eq!(v.trim(), f.version.to_string(), "{}", f.name);
        }

        let drop_it = format!("DROP TABLE {obstacle}");
        match &conn {
            Some(c) => {
                pg::psql(pg::database_name(c), &drop_it);
            }
            None => {
                let db = rusqlite::Connection::open(dir.path().join("kiln.db")).unwrap();
                db.execute_batch(&drop_it).unwrap();
                db.close().unwrap();
            }
        }
        let app = start(dir.path(), &conn);
        read_back(&app, f).await;
        tried += 1;
    }
    assert!(tried > 0, "no fixture below the newest schema version");
}
