//! Versioned migrations from `schema.sql` (embedded), tracked by `PRAGMA user_version`.

use crate::store::{StoreError, StoreResult};
use rusqlite::Connection;

const SCHEMA: &str = include_str!("../../../schema.sql");

/// The numbered blocks of schema.sql, in order: `(version, sql)`.
fn migrations() -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Vec::new();
    for line in SCHEMA.lines() {
        if let Some(n) = line.trim().strip_prefix("-- migration ") {
            let n: u32 = n.trim().parse().expect("schema.sql: bad migration number");
            out.push((n, String::new()));
        } else if let Some((_, sql)) = out.last_mut() {
            sql.push_str(line);
            sql.push('\n');
        }
    }
    for (i, (n, _)) in out.iter().enumerate() {
        assert_eq!(
            *n as usize,
            i + 1,
            "schema.sql: migrations must be numbered 1, 2, 3..."
        );
    }
    out
}

/// The schema version this binary writes.
pub fn latest_version() -> u32 {
    migrations().len() as u32
}

pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = latest_version();
    if current > latest {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {current}, newer than this kiln ({latest}); \
             use a newer kiln"
        )));
    }
    for (version, sql) in migrations().into_iter().skip(current as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
        tx.execute_batch(&sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))?;
        tx.commit()?;
        log::info!("database schema migrated to version {version}");
    }
    Ok(())
}
