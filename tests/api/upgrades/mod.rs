//! Upgrades (kiln issue 31): a database written by any earlier schema version of kiln opens in
//! this one, migrates, and reads back identical through the API, on both stores.
//!
//! `tests/fixtures/upgrades/` holds, for every schema version that was ever the latest on main,
//! a small database written by the newest kiln of that version (`sqlite-vN.db`; a plain
//! `pg_dump`, `postgres-vN.sql`) and what that kiln's API answered about it (`<name>.json`),
//! both made by `make.sh` there. The tests need only these files: no old binary, no git
//! history. Fields a later kiln added to an answer are ignored; every recorded field must be
//! there and equal.

mod fixture;
mod read_back;

use crate::common::pg;
use fixture::{
    block_hash, blocks, fixtures, fixtures_named, latest, obstacle, place, snapshot, start, store,
};
use read_back::{build_again, read_back, read_back_after_restart};
use std::path::Path;

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

/// Blocks are append-only: a database at version N never runs blocks 1..=N again, so an edit of
/// a block that has reached main never reaches the databases already past it. Each fixture
/// recorded its kiln's blocks (`migration_blocks`); the current ones must run the same SQL.
#[actix_web::test]
async fn no_migration_block_changed_after_it_shipped() {
    let (_, _, schema) = store();
    let now = blocks(schema);
    for f in fixtures() {
        let then = f.record["migration_blocks"].as_array().unwrap();
        assert_eq!(then.len(), f.version as usize, "{}", f.name);
        for (i, hash) in then.iter().enumerate() {
            assert_eq!(
                hash.as_str(),
                Some(block_hash(&now[i].1).as_str()),
                "{}: migration block {} is not what it was when {} shipped it: add a new block \
                 instead of editing this one",
                f.name,
                i + 1,
                f.record["commit"]
            );
        }
    }
}

#[actix_web::test]
async fn each_earlier_database_migrates_and_reads_back_identical() {
    let all = fixtures();
    assert!(!all.is_empty());
    for f in &all {
        let dir = tempfile::tempdir().unwrap();
        let conn = place(f, dir.path());
        let app = start(dir.path(), &conn);
        let (owner, member) = read_back(&app, f).await;
        build_again(&owner, &member, f).await;
        drop(app);
        // Once migrated, it opens again as it is and still reads back the same.
        let app = start(dir.path(), &conn);
        read_back_after_restart(&app, f).await;
    }
}

/// Runs `sql` on the fixture's database, not through kiln: the file itself (SQLite), psql.
fn run_sql(dir: &Path, conn: &Option<String>, sql: &str) {
    match conn {
        Some(c) => {
            pg::psql(pg::database_name(c), sql);
        }
        None => {
            let db = rusqlite::Connection::open(dir.join("kiln.db")).unwrap();
            db.execute_batch(sql).unwrap();
            db.close().unwrap();
        }
    }
}

/// A migration that fails part-way leaves each earlier database as it was: the newest block
/// finds the name of the last table, index or column it makes already taken (`obstacle`), so
/// every earlier block and the first statements of the newest have run when it fails. kiln refuses to start, and the database is
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
        run_sql(dir.path(), &conn, &obstacle.add);
        let before = snapshot(dir.path(), &conn);
        let path = dir.path().to_path_buf();
        let c2 = conn.clone();
        let failed = std::panic::catch_unwind(move || start(&path, &c2))
            .map(drop)
            .expect_err("kiln started on a database whose migration fails");
        let msg = failed.downcast_ref::<String>().cloned().unwrap_or_default();
        // SQLite: "table x already exists", "duplicate column name: c"; PostgreSQL: "relation
        // \"x\" already exists", "column \"c\" of relation \"t\" already exists".
        assert!(
            msg.contains(&obstacle.name)
                && (msg.contains("already exists") || msg.contains("duplicate column")),
            "{}: {msg}",
            f.name
        );
        let after = snapshot(dir.path(), &conn);
        assert!(before.0 == after.0, "{}: the database changed", f.name);
        assert_eq!(before.1, after.1, "{}", f.name);
        if conn.is_none() {
            assert!(
                before
                    .1
                    .starts_with(&format!("user_version {}\n", f.version))
            );
        } else {
            let v = pg::psql(
                pg::database_name(conn.as_ref().unwrap()),
                "SELECT version FROM kiln_schema",
            );
            assert_eq!(v.trim(), f.version.to_string(), "{}", f.name);
        }

        run_sql(dir.path(), &conn, &obstacle.remove);
        let app = start(dir.path(), &conn);
        read_back(&app, f).await;
        tried += 1;
    }
    assert!(tried > 0, "no fixture below the newest schema version");
}

/// Migration blocks were edited after they reached main (SQLite 10 and 11, PostgreSQL 9 and
/// 10: `template_versions.archived` was added to block 10 / 9 five minutes later, the per-uploader
/// files to block 11 / 10 two minutes later). A database made by a kiln in between is at the
/// block's version without the edit, so no migration ever adds it: its templates' versions
/// cannot be read (no `archived` column), or another user's upload of the same bytes is refused
/// (files still unique by hash). kiln repairs such databases as it migrates them (each store's
/// `migrate.rs`); these fixtures (`<store>-v<N>-<commit>`) are from those commits.
#[actix_web::test]
async fn databases_made_between_edits_of_a_shipped_migration_block() {
    let all = fixtures_named(true);
    assert!(!all.is_empty());
    for f in &all {
        let dir = tempfile::tempdir().unwrap();
        let conn = place(f, dir.path());
        let app = start(dir.path(), &conn);
        let (owner, member) = read_back(&app, f).await;
        build_again(&owner, &member, f).await;
    }
}
