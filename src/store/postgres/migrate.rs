//! Versioned migrations from `schema.sql` (embedded), recorded in `kiln_schema`. The whole
//! upgrade is one transaction holding an advisory lock, so servers that start at once on an
//! empty database migrate it once, and the others wait and find it done.

use crate::store::StoreResult;
use postgres::Client;

const SCHEMA: &str = include_str!("schema.sql");
/// The advisory lock key of kiln's migrations ("kiln" in ASCII).
const LOCK: i64 = 0x6b69_6c6e;

/// What two blocks gained after they had shipped (block 9: `template_versions.archived`;
/// block 10: files unique per uploader), for a database made between a block and its edit:
/// it was already at that version, so no block would add them. Written to do nothing where
/// they are there, and run with every migration.
const REPAIRS: &str = "\
    ALTER TABLE template_versions ADD COLUMN IF NOT EXISTS archived BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE files DROP CONSTRAINT IF EXISTS files_hash_key;
    CREATE UNIQUE INDEX IF NOT EXISTS files_hash_creator ON files (hash, created_by);";

fn migrations() -> Vec<(u32, String)> {
    crate::store::numbered_blocks(SCHEMA)
}

pub fn latest_version() -> u32 {
    migrations().len() as u32
}

pub fn migrate(client: &mut Client) -> StoreResult<()> {
    let latest = latest_version();
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS kiln_schema (version INTEGER NOT NULL)")?;
    let current: i32 = match tx.query_opt("SELECT version FROM kiln_schema", &[])? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO kiln_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    let current = current as u32;
    if !crate::store::needs_migration(current, latest)? {
        return Ok(());
    }
    for (_, sql) in migrations().into_iter().skip(current as usize) {
        tx.batch_execute(&sql)?;
    }
    tx.batch_execute(REPAIRS)?;
    tx.execute("UPDATE kiln_schema SET version = $1", &[&(latest as i32)])?;
    tx.commit()?;
    log::info!("database schema migrated from version {current} to {latest}");
    Ok(())
}
