//! How the shared statements are spelled on SQLite (`DIALECT`), and rusqlite's errors as the
//! store's.

use crate::store::StoreError;
use crate::store::sql::{Dialect, Value};

pub static DIALECT: Dialect = Dialect {
    // How placeholders are written.
    index: 0,
    dollar_placeholders: false,

    // Fragments: how the shared statements spell what the databases spell differently.
    // SQLite's parameters take any type.
    cast: |param, _| param.to_string(),
    // Users' emails and usernames are NOCASE columns (their unique indexes too), and
    // `workspaces_owner_name` indexes names NOCASE.
    nocase_eq: |column, param| format!("{column} = {param} COLLATE NOCASE"),
    nocase_order: |column| format!("{column} COLLATE NOCASE"),
    // SQLite's default collation (BINARY).
    bytes_order: |column| column.to_string(),
    // Booleans are integers; the partial indexes say `deleted = 0`.
    is_false: |column| format!("{column} = 0"),
    // The one writer's transaction holds the database's write lock: nothing changes what it
    // read before it commits.
    for_update: |_| String::new(),
    row_key: "rowid",
    // A JSON array of the texts (`json_each` of a parameter reads no table).
    texts: |param, alias| {
        (
            format!("json_each({param}) {alias}"),
            format!("{alias}.value"),
        )
    },
    in_texts: |column, param| format!("{column} IN (SELECT value FROM json_each({param}))"),
    text_position: "instr",
    // A negative LIMIT.
    no_limit: Value::Int(-1),

    // How the database runs transactions.
    // `BEGIN IMMEDIATE` takes the database's write lock, also against other processes.
    writes_serialized: true,

    // What differs in one statement, or the whole statement where it differs throughout.
    // `max + 1` in the inserting statement: the one writer numbers jobs in commit order (with
    // concurrent writers the unique `seq` would refuse the second of two).
    next_job_seq: Some("(SELECT coalesce(max(seq), 0) + 1 FROM provisioner_jobs)"),
    // Along the unique index on `seq` (the pending index's key).
    take_key: "seq",
    // One row, kept by the `pending_jobs` triggers of migration 9.
    pending_count: "SELECT count FROM pending_jobs WHERE id = 1",
    // The pending count less the pending jobs behind the job, counted along the pending index
    // from it to the end: a new job's answer reads a row and an index entry.
    queue_position: "SELECT p.count - (SELECT count(*) FROM provisioner_jobs \
         WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL AND seq > ?1), \
         p.count FROM pending_jobs p WHERE p.id = 1",
    // A statement per line: each a step of a prepared statement, no round trip to save.
    insert_log_lines: None,
    version_order: "rowid",
    // Users first, along their name index (NOCASE; CROSS JOIN keeps that order), then each
    // user's workspaces along `workspaces_owner_name` (names NOCASE).
    workspace_list_from: "users u CROSS JOIN workspaces w ON u.id = w.owner_id",
    workspace_list_order: "u.username, w.name COLLATE NOCASE",
    // One statement stepped only as far as the caller visits, backwards along the
    // `created_at` index; the rowid breaks ties in creation order.
    recent_builds_tie: "wb.rowid",
    recent_builds_paged: false,
    commit_probe_table: "CREATE TABLE IF NOT EXISTS commit_probe \
         (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)",
    // The main file; the WAL comes and goes with checkpoints.
    database_size: "SELECT p.page_count * s.page_size FROM pragma_page_count() p, pragma_page_size() s",
};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(err, msg)
                if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::Conflict(msg.clone().unwrap_or_default())
            }
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            // SQLITE_FULL: a write found no room on the disk (SQLite's word for ENOSPC).
            rusqlite::Error::SqliteFailure(err, _) if err.code == rusqlite::ErrorCode::DiskFull => {
                StoreError::DiskFull(e.to_string())
            }
            // The -shm file (the WAL's index) could not grow: SQLite's I/O error for the same.
            rusqlite::Error::SqliteFailure(err, _)
                if err.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE =>
            {
                StoreError::DiskFull(format!("{e}: the database's -shm file cannot grow"))
            }
            // Another process held the write lock past the busy timeout, or a write met an I/O
            // error: nothing was stored, and the write may succeed when tried again.
            rusqlite::Error::SqliteFailure(err, _)
                if matches!(
                    err.code,
                    rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::SystemIoFailure
                ) =>
            {
                StoreError::Busy(format!("database: {e}"))
            }
            _ => StoreError::Unavailable(format!("database: {e}")),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Unavailable(format!("database pool: {e}"))
    }
}

/// Statements each connection keeps prepared: more than kiln has, so that a connection that
/// runs them in turn never evicts one it is about to run again (rusqlite keeps 16 by default).
pub const STATEMENT_CACHE: usize = 256;

/// Runs one statement through the connection's statement cache. (`Connection::execute`
/// parses and plans its SQL again on every call.)
pub fn exec<P: rusqlite::Params>(
    conn: &rusqlite::Connection,
    sql: &str,
    params: P,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}
