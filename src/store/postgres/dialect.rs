//! How kiln's types meet PostgreSQL: times as BIGINT microseconds, transitions as TEXT, and
//! the driver's errors as the store's.

use crate::model::{Time, Transition};
use crate::store::StoreError;
use crate::store::sql::{Dialect, Value};
use postgres::types::{FromSql, IsNull, ToSql, Type};
use std::error::Error;

type BoxError = Box<dyn Error + Sync + Send>;

pub static DIALECT: Dialect = Dialect {
    name: "postgres",
    index: 1,
    dollar_placeholders: true,
    // One statement for the batch (one round trip): unnest keeps the arrays' order, and the
    // identity values follow it.
    insert_log_lines: Some(
        "INSERT INTO provisioner_job_logs (job_id, created_at, source, level, stage, output) \
         SELECT $1, t, s, l, st, o \
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) \
         WITH ORDINALITY AS x(t, s, l, st, o, n) ORDER BY n",
    ),
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
    // LIMIT NULL.
    no_limit: Value::Null,
    text_position: "strpos",
    // Along `users_username_order` (`lower(username) COLLATE "C"`) and
    // `workspaces_owner_name`.
    workspace_list_from: "workspaces w JOIN users u ON u.id = w.owner_id",
    workspace_list_order: "lower(u.username) COLLATE \"C\", lower(w.name) COLLATE \"C\"",
    writes_serialized: false,
    // The primary key.
    take_key: "id",
    // Counted along the pending index.
    pending_count: "SELECT count(*) FROM provisioner_jobs \
         WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL",
    queue_position: "SELECT count(*) FILTER (WHERE seq <= $1), count(*) FROM provisioner_jobs \
         WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL",
    // An identity column: concurrent inserts never collide.
    next_job_seq: None,
    // An identity column (`pos`), as rows have no rowid.
    version_order: "pos",
    // Pages (growing) rather than one unbounded statement: with a LIMIT the planner walks the
    // `created_at` index backwards instead of sorting every build. The job's `seq` breaks
    // ties in creation order.
    recent_builds_tie: "j.seq",
    recent_builds_paged: true,
};

impl ToSql for Time {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty)
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        self.0.to_sql_checked(ty, out)
    }
}

impl<'a> FromSql<'a> for Time {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        i64::from_sql(ty, raw).map(Time)
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as FromSql>::accepts(ty)
    }
}

impl ToSql for Transition {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        self.as_str().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        self.as_str().to_sql_checked(ty, out)
    }
}

impl<'a> FromSql<'a> for Transition {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let s = <&str as FromSql>::from_sql(ty, raw)?;
        Transition::parse(s).ok_or_else(|| format!("not a transition: {s:?}").into())
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

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
        StoreError::Unavailable(format!("database: {}", error_chain(&e)))
    }
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
