//! How the shared statements are spelled on PostgreSQL (`DIALECT`), and the driver's errors
//! as the store's.

use crate::store::StoreError;
use crate::store::sql::{Dialect, Value};
use std::error::Error;

pub static DIALECT: Dialect = Dialect {
    // How placeholders are written.
    index: 1,
    dollar_placeholders: true,

    // Fragments: how the shared statements spell what the databases spell differently.
    cast: |param, ty| format!("{param}::{ty}"),
    // Along the unique indexes on `lower(...)`; ordered by bytes (`"C"`), as SQLite orders.
    nocase_eq: |column, param| format!("lower({column}) = lower({param})"),
    nocase_order: |column| format!("lower({column}) COLLATE \"C\""),
    bytes_order: |column| format!("{column} COLLATE \"C\""),
    is_false: |column| format!("NOT {column}"),
    for_update: |of| match of {
        "" => " FOR UPDATE".to_string(),
        of => format!(" FOR UPDATE OF {of}"),
    },
    row_key: "id",
    texts: |param, alias| {
        (
            format!("unnest({param}::text[]) {alias}"),
            alias.to_string(),
        )
    },
    in_texts: |column, param| format!("{column} = ANY({param}::text[])"),
    text_position: "strpos",
    // LIMIT NULL.
    no_limit: Value::Null,

    // How the database runs transactions.
    // Concurrent transactions (READ COMMITTED), of this server and others.
    writes_serialized: false,

    // What differs in one statement, or the whole statement where it differs throughout.
    // An identity column: concurrent inserts never collide.
    next_job_seq: None,
    // The primary key.
    take_key: "id",
    // Counted along the pending index.
    pending_count: "SELECT count(*) FROM provisioner_jobs \
         WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL",
    queue_position: "SELECT count(*) FILTER (WHERE seq <= $1), count(*) FROM provisioner_jobs \
         WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL",
    // One statement for the batch (one round trip): unnest keeps the arrays' order, and the
    // identity values follow it.
    insert_log_lines: Some(
        "INSERT INTO provisioner_job_logs (job_id, created_at, source, level, stage, output) \
         SELECT $1, t, s, l, st, o \
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) \
         WITH ORDINALITY AS x(t, s, l, st, o, n) ORDER BY n",
    ),
    // An identity column (`pos`), as rows have no rowid.
    version_order: "pos",
    // Along `users_username_order` (`lower(username) COLLATE "C"`) and
    // `workspaces_owner_name`.
    workspace_list_from: "workspaces w JOIN users u ON u.id = w.owner_id",
    workspace_list_order: "lower(u.username) COLLATE \"C\", lower(w.name) COLLATE \"C\"",
    // Pages (growing) rather than one unbounded statement: with a LIMIT the planner walks the
    // `created_at` index backwards instead of sorting every build. The job's `seq` breaks
    // ties in creation order.
    recent_builds_tie: "j.seq",
    recent_builds_paged: true,
    commit_probe_table: "CREATE TABLE IF NOT EXISTS commit_probe \
         (id BIGINT GENERATED ALWAYS AS IDENTITY, at BIGINT NOT NULL)",
    database_size: "SELECT pg_database_size(current_database())",
};

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
            let what = e
                .as_db_error()
                .and_then(|d| d.constraint())
                .unwrap_or("unique")
                .to_string();
            return StoreError::Conflict(what);
        }
        if e.code() == Some(&postgres::error::SqlState::DISK_FULL) {
            return StoreError::DiskFull(error_chain(&e));
        }
        if connection_lost(&e) {
            return StoreError::Unreachable(error_chain(&e));
        }
        StoreError::Unavailable(format!("database: {}", error_chain(&e)))
    }
}

/// Whether `e` says the connection is gone: closed or reset under the statement, or ended by
/// the server (shutting down, restarting, the session terminated). The statement did not
/// finish, and PostgreSQL keeps nothing of a transaction whose connection is gone.
fn connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        // Class 08: connection exceptions; 57P01-57P03: admin or crash shutdown, cannot
        // connect now.
        let code = code.code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// An error with its causes, on one line: `error connecting to server: Connection refused`.
pub(super) fn error_chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}
