//! Copies of the database file: a consistent one of a live database (`VACUUM INTO`: one read
//! snapshot, while writers go on), checked before it is put back, and put back whole.

use crate::store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

fn failed(what: &str, path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {e}", path.display()))
}

/// Writes a consistent copy of database `db` (a running server's too) to `to`, which must
/// not exist: created empty and private (0600) first, then filled by `VACUUM INTO` and
/// flushed to disk. Returns its size in bytes.
pub fn backup(db: &Path, to: &Path) -> StoreResult<u64> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| failed("cannot open", db, e))?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(|e| failed("cannot open", db, e))?;
    // An empty file is what `VACUUM INTO` accepts besides none; made here, it is private.
    File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| failed("cannot create", to, e))?;
    let copied = conn
        .execute("VACUUM INTO ?1", [to.to_string_lossy()])
        .map_err(|e| failed("cannot copy the database into", to, e));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(to);
        return Err(e);
    }
    let file = File::open(to).map_err(|e| failed("cannot read", to, e))?;
    file.sync_all().map_err(|e| failed("cannot flush", to, e))?;
    Ok(file.metadata().map(|m| m.len()).unwrap_or(0))
}

/// Checks a copy before it is put back: an SQLite database whose `PRAGMA integrity_check` is
/// `ok`, of a schema this kiln knows (at most `latest`). Returns its schema version.
pub fn check_copy(file: &Path, latest: u32) -> StoreResult<u32> {
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| failed("cannot open", file, e))?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| failed("not a kiln database:", file, e))?;
    if check != "ok" {
        return Err(failed("the integrity check fails for", file, check));
    }
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| failed("cannot read the schema version of", file, e))?;
    if version == 0 {
        return Err(failed("not a kiln database:", file, "no schema"));
    }
    if version > latest {
        return Err(failed(
            "made by a newer kiln:",
            file,
            format!("schema version {version}, this kiln knows up to {latest}"),
        ));
    }
    Ok(version)
}

/// Puts copy `from` in place of database `db`, whole or not at all: copied beside it and
/// flushed, the old database's WAL and shared memory removed (they belong to the old file),
/// then renamed over it, and the folder flushed.
pub fn put_in_place(from: &Path, db: &Path) -> StoreResult<()> {
    let tmp = db.with_extension("db.restoring");
    let _ = std::fs::remove_file(&tmp);
    {
        let mut src = File::open(from).map_err(|e| failed("cannot read", from, e))?;
        let mut out = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| failed("cannot create", &tmp, e))?;
        std::io::copy(&mut src, &mut out).map_err(|e| failed("cannot write", &tmp, e))?;
        out.sync_all()
            .map_err(|e| failed("cannot flush", &tmp, e))?;
    }
    for ext in ["db-wal", "db-shm"] {
        let side = db.with_extension(ext);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed("cannot remove", &side, e)),
        }
    }
    std::fs::rename(&tmp, db).map_err(|e| failed("cannot replace", db, e))?;
    if let Some(dir) = db.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| failed("cannot flush", dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with_version(path: &Path, version: u32) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE t (x); PRAGMA user_version = {version};"
        ))
        .unwrap();
    }

    #[test]
    fn a_copy_is_checked_before_anything_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.db");
        db_with_version(&good, 3);
        assert_eq!(check_copy(&good, 5), Ok(3));
        let newer = dir.path().join("newer.db");
        db_with_version(&newer, 6);
        let e = check_copy(&newer, 5).unwrap_err().to_string();
        assert!(
            e.contains("made by a newer kiln") && e.contains("schema version 6"),
            "{e}"
        );
        let empty = dir.path().join("empty.db");
        db_with_version(&empty, 0);
        assert!(
            check_copy(&empty, 5)
                .unwrap_err()
                .to_string()
                .contains("no schema")
        );
        let text = dir.path().join("notes.txt");
        std::fs::write(
            &text,
            "not a database at all, but long enough to be read as one".repeat(80),
        )
        .unwrap();
        assert!(check_copy(&text, 5).is_err());
    }

    #[test]
    fn a_copy_replaces_the_database_and_its_old_wal_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kiln.db");
        db_with_version(&db, 1);
        std::fs::write(db.with_extension("db-wal"), b"old frames").unwrap();
        std::fs::write(db.with_extension("db-shm"), b"old index").unwrap();
        let copy = dir.path().join("copy.db");
        backup(&db, &copy).unwrap();
        let again = backup(&db, &copy).unwrap_err().to_string();
        assert!(again.contains("cannot create"), "{again}");
        put_in_place(&copy, &db).unwrap();
        assert!(!db.with_extension("db-wal").exists());
        assert!(!db.with_extension("db-shm").exists());
        assert_eq!(check_copy(&db, 1), Ok(1));
    }
}
