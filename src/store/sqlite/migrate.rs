//! Versioned migrations from `schema.sql` (embedded), tracked by `PRAGMA user_version`.

use crate::store::{StoreError, StoreResult};
use rusqlite::Connection;

const SCHEMA: &str = include_str!("schema.sql");

fn migrations() -> Vec<(u32, String)> {
    crate::store::numbered_blocks(SCHEMA)
}

/// The schema version this binary writes.
pub fn latest_version() -> u32 {
    migrations().len() as u32
}

/// Brings the schema up to date in one exclusive transaction (one commit, however many
/// blocks run). The version is read inside it, so two processes opening the same file at once
/// migrate it once.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let latest = latest_version();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    let current: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > latest {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {current}, newer than this kiln ({latest}); \
             use a newer kiln"
        )));
    }
    if current == latest {
        return Ok(());
    }
    for (_, sql) in migrations().into_iter().skip(current as usize) {
        tx.execute_batch(&sql)?;
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
        assert_eq!(version, latest_version());
        conn.execute_batch(&format!("PRAGMA user_version = {}", latest_version() + 1))
            .unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        assert!(err.contains("newer than this kiln"), "{err}");
    }
}
