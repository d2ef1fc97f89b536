//! Versioned migrations from the top-level `schema.sql` (the embedded store's schema, in the
//! binary), tracked by `PRAGMA user_version`.

use crate::store::StoreResult;
use rusqlite::{Connection, OptionalExtension};

const SCHEMA: &str = include_str!("../../../schema.sql");

fn migrations() -> Vec<(u32, String)> {
    crate::store::numbered_blocks(SCHEMA)
}

/// The schema version this kiln migrates a database to.
pub fn latest() -> u32 {
    migrations().last().map_or(0, |(n, _)| *n)
}

fn latest_len() -> usize {
    migrations().len()
}

/// What two blocks gained after they had shipped, for a database made between a block and its
/// edit (it was already at that version, so no block would add them): block 10's
/// `template_versions.archived`, and block 11's files unique per uploader (the table rebuilt
/// as that block rebuilds it). Each only where it is missing; run with every migration to the
/// latest schema.
fn repair(tx: &Connection) -> rusqlite::Result<()> {
    let archived: bool = tx.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('template_versions') WHERE name = 'archived'",
        [],
        |r| r.get(0),
    )?;
    if !archived {
        log::info!("repairing the schema: template versions' archived column");
        tx.execute_batch(
            "ALTER TABLE template_versions ADD COLUMN archived INTEGER NOT NULL DEFAULT 0",
        )?;
    }
    let files: String = tx.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'files'",
        [],
        |r| r.get(0),
    )?;
    if !files.contains("UNIQUE (hash, created_by)") {
        log::info!("repairing the schema: files unique per uploader");
        let block = SCHEMA
            .split("-- migration ")
            .find(|b| b.starts_with("11\n"))
            .and_then(|b| b.find("CREATE TABLE files_by_uploader").map(|at| &b[at..]))
            .expect("block 11 rebuilds the files table");
        tx.execute_batch(block)?;
    }
    Ok(())
}

/// Brings the schema up to date in one exclusive transaction (one commit, however many
/// blocks run). The version is read inside it, so two processes opening the same file at once
/// migrate it once.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    migrate_with(conn, &migrations())
}

/// `migrate` over the given blocks (`(version, sql)`, numbered 1, 2, 3...).
///
/// Foreign keys are not enforced while the blocks run (SQLite's way to rebuild a table that
/// others refer to: a new table, the rows copied, the old one dropped, the new one renamed);
/// where they were enforced, every reference is checked before the commit, and a dangling one
/// rolls the whole migration back.
fn migrate_with(conn: &mut Connection, migrations: &[(u32, String)]) -> StoreResult<()> {
    // The pragma is a no-op inside a transaction: set before, restored after.
    let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let migrated = migrate_unenforced(conn, migrations, enforced);
    if enforced {
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
    }
    migrated
}

fn migrate_unenforced(
    conn: &mut Connection,
    migrations: &[(u32, String)],
    check_references: bool,
) -> StoreResult<()> {
    let latest = migrations.len() as u32;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    let current: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if !crate::store::needs_migration(current, latest)? {
        return Ok(());
    }
    for (_, sql) in migrations.iter().skip(current as usize) {
        tx.execute_batch(sql)?;
    }
    if migrations.len() == latest_len() {
        repair(&tx)?;
    }
    if check_references {
        let dangling: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()?;
        if let Some(table) = dangling {
            return Err(crate::store::StoreError::Unavailable(format!(
                "migrating the database left a row of {table} referring to nothing; nothing was changed"
            )));
        }
    }
    tx.execute_batch(&format!("PRAGMA user_version = {latest}"))?;
    tx.commit()?;
    log::info!("database schema migrated from version {current} to {latest}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        let latest = migrations().len() as u32;
        assert_eq!(version, latest);
        conn.execute_batch(&format!("PRAGMA user_version = {}", latest + 1))
            .unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        assert!(err.contains("newer than this kiln"), "{err}");
    }

    fn blocks(sql: &[&str]) -> Vec<(u32, String)> {
        (1..).zip(sql.iter().map(|s| s.to_string())).collect()
    }

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// The blocks run in one transaction: a block that fails leaves the file as it was, at its
    /// old version, with nothing of the blocks before it (as a kill in the middle would).
    #[test]
    fn a_failing_block_leaves_the_old_version_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("m.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        let one = blocks(&["CREATE TABLE a (x); INSERT INTO a VALUES (1);"]);
        migrate_with(&mut conn, &one).unwrap();
        let three = blocks(&[
            "CREATE TABLE a (x); INSERT INTO a VALUES (1);",
            "CREATE TABLE b (x); INSERT INTO a VALUES (2);",
            "CREATE TABLE c (x); INSERT INTO nowhere VALUES (3);",
        ]);
        let err = migrate_with(&mut conn, &three).unwrap_err().to_string();
        assert!(err.contains("no such table: nowhere"), "{err}");
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
        assert_eq!(tables(&conn), ["a"]);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        // And the connection migrates again once the blocks are right.
        let fixed = blocks(&[&three[0].1, &three[1].1, "CREATE TABLE c (x);"]);
        migrate_with(&mut conn, &fixed).unwrap();
        assert_eq!(tables(&conn), ["a", "b", "c"]);
    }

    /// Migration 8 counts the live workspaces a file already holds, and its triggers keep the
    /// count from then on.
    #[test]
    fn the_live_workspaces_count_starts_from_the_rows_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("m.db")).unwrap();
        // Rows without their owners, templates and organization: only the count is looked at.
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        let all = migrations();
        migrate_with(&mut conn, &all[..7]).unwrap();
        let add = |conn: &Connection, id: &str, deleted: i64| {
            conn.execute(
                "INSERT INTO workspaces (id, organization_id, owner_id, template_id, name, \
                 deleted, created_at, updated_at, last_used_at) \
                 VALUES (?1, 'o', 'u', 't', ?1, ?2, 0, 0, 0)",
                rusqlite::params![id, deleted],
            )
            .unwrap();
        };
        add(&conn, "a", 0);
        add(&conn, "b", 1);
        add(&conn, "c", 0);
        migrate_with(&mut conn, &all[..8]).unwrap();
        let count = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count FROM live_workspaces", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&conn), 2);
        add(&conn, "d", 0);
        add(&conn, "e", 1);
        assert_eq!(count(&conn), 3);
        conn.execute_batch("UPDATE workspaces SET deleted = 1 WHERE id IN ('a', 'b')")
            .unwrap();
        assert_eq!(count(&conn), 2);
        conn.execute_batch("UPDATE workspaces SET deleted = 0 WHERE id = 'b'; DELETE FROM workspaces WHERE id IN ('c', 'e')")
            .unwrap();
        assert_eq!(count(&conn), 2);
    }
    /// Migration 9 counts the pending jobs a file already holds, and its triggers follow every
    /// change of a job's state from then on.
    #[test]
    fn the_pending_jobs_count_starts_from_the_rows_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("m.db")).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        let all = migrations();
        migrate_with(&mut conn, &all[..8]).unwrap();
        let add = |conn: &Connection, id: &str, seq: i64, started: Option<i64>| {
            conn.execute(
                "INSERT INTO provisioner_jobs (id, seq, created_at, updated_at, started_at, \
                 organization_id, initiator_id, file_id, type, input) \
                 VALUES (?1, ?2, 0, 0, ?3, 'o', 'u', 'f', 'workspace_build', '{}')",
                rusqlite::params![id, seq, started],
            )
            .unwrap();
        };
        add(&conn, "a", 1, None);
        add(&conn, "b", 2, Some(5));
        add(&conn, "c", 3, None);
        migrate_with(&mut conn, &all[..9]).unwrap();
        let count = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count FROM pending_jobs", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&conn), 2);
        add(&conn, "d", 4, None);
        add(&conn, "e", 5, Some(6));
        assert_eq!(count(&conn), 3);
        conn.execute_batch("UPDATE provisioner_jobs SET started_at = 7 WHERE id = 'a'")
            .unwrap();
        assert_eq!(count(&conn), 2);
        // Released, then canceled; an update that changes nothing pending; a delete.
        conn.execute_batch("UPDATE provisioner_jobs SET started_at = NULL WHERE id = 'a'")
            .unwrap();
        assert_eq!(count(&conn), 3);
        conn.execute_batch(
            "UPDATE provisioner_jobs SET canceled_at = 8 WHERE id = 'c'; \
             UPDATE provisioner_jobs SET completed_at = 9 WHERE id = 'b'; \
             DELETE FROM provisioner_jobs WHERE id = 'd'",
        )
        .unwrap();
        assert_eq!(count(&conn), 1);
        let position: (i64, i64) = conn
            .query_row(super::super::dialect::DIALECT.queue_position, [1], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(position, (1, 1));
    }

    /// Migration 11 rebuilds `files` (unique per hash and uploader) under enforced foreign
    /// keys: the rows and the jobs referring to them survive, the same bytes may then be
    /// stored once per uploader, and a reference left dangling rolls everything back.
    #[test]
    fn files_are_rebuilt_unique_per_uploader_with_their_references_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("m.db")).unwrap();
        let all = migrations();
        migrate_with(&mut conn, &all[..10]).unwrap();
        conn.execute_batch(
            "INSERT INTO organizations (id, name, display_name, created_at, updated_at) \
                 VALUES ('o', 'coder', 'Coder', 0, 0); \
             INSERT INTO users (id, email, username, login_type, created_at, updated_at, \
                 last_seen_at) VALUES ('u', 'u@x', 'u', 'password', 0, 0, 0), \
                 ('v', 'v@x', 'v', 'password', 0, 0, 0); \
             INSERT INTO files (id, hash, mimetype, data, created_by, created_at) \
                 VALUES ('f', 'h', 'application/x-tar', x'00', 'u', 0); \
             INSERT INTO provisioner_jobs (id, seq, created_at, updated_at, organization_id, \
                 initiator_id, file_id, type, input) \
                 VALUES ('j', 1, 0, 0, 'o', 'u', 'f', 'template_version_import', '{}');",
        )
        .unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        migrate_with(&mut conn, &all[..11]).unwrap();
        let enforced: bool = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert!(
            enforced,
            "foreign keys are enforced again after the migration"
        );
        let data: Vec<u8> = conn
            .query_row("SELECT data FROM files WHERE id = 'f'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(data, [0]);
        let insert = |id: &str, by: &str| {
            conn.execute(
                "INSERT INTO files (id, hash, mimetype, data, created_by, created_at) \
                 VALUES (?1, 'h', 'application/x-tar', x'00', ?2, 0)",
                rusqlite::params![id, by],
            )
        };
        insert("g", "v").unwrap();
        assert!(insert("k", "u").is_err(), "one file per hash and uploader");
        // The job still refers to its file: deleting the file is refused.
        assert!(
            conn.execute("DELETE FROM files WHERE id = 'f'", [])
                .is_err()
        );

        // A block that leaves a job's file dangling is rolled back whole.
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("n.db")).unwrap();
        migrate_with(&mut conn, &all[..1]).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let mut broken = all[..2].to_vec();
        broken[1].1.push_str(
            "INSERT INTO users (id, email, username, login_type, created_at, updated_at, \
                 last_seen_at) VALUES ('u', 'u@x', 'u', 'password', 0, 0, 0); \
             INSERT INTO api_keys (id, hashed_secret, user_id, login_type, created_at, \
                 expires_at, last_used) VALUES ('k', x'00', 'nobody', 'password', 0, 0, 0);",
        );
        let err = migrate_with(&mut conn, &broken).unwrap_err().to_string();
        assert!(err.contains("referring to nothing"), "{err}");
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
    }
}
