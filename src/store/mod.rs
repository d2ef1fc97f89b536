//! The storage boundary: what kiln keeps, as traits over neutral row types, one per table
//! family, and `Store`, all of them at once. `sql/` implements them once, each statement and
//! transaction written a single time, over a backend: `sqlite/`, an embedded SQLite file, or
//! `postgres/`, a PostgreSQL database that several kiln servers share. Nothing outside them
//! knows which database is behind the traits.
//!
//! Every write that changes what a watcher sees (a job queued, started, canceled or completed,
//! a log batch, a workspace) publishes the matching notice on the live-events seam
//! (`crate::events`) once it is committed: callers never announce the store's changes.
//!
//! Writes that decide from what they read (the next build number, taking the next job, cancel,
//! the first user, file dedup) are written to stay correct when two processes run them at once
//! on a database that does not serialize writes; `sql/` says how in a comment at each.

pub mod builds;
mod error;
pub mod files;
pub mod jobs;
mod lease;
pub mod logs;
pub mod overview;
pub mod postgres;
pub mod provisioners;
mod sql;
pub mod sqlite;
pub mod templates;
pub mod users;
pub mod workspaces;

pub use builds::*;
pub use error::{StoreError, StoreResult};
pub use files::*;
pub use jobs::*;
pub use lease::LeaseState;
pub use logs::*;
pub use overview::*;
pub use provisioners::*;
pub use templates::*;
pub use users::*;
pub use workspaces::*;

/// A parameter value of a hot query's sample.
#[derive(Clone, Copy, Debug)]
pub enum Sample {
    Text(&'static str),
    Int(i64),
    Null,
}

/// A statement kiln runs on every request of its kind (a build read, a page of builds, the
/// queue), as each store sends it, with sample parameters: what `tests/library/query_plans.rs` asks
/// the database to plan, to check that none reads a whole big table.
#[derive(Clone, Debug)]
pub struct HotQuery {
    pub name: &'static str,
    pub sql: String,
    pub params: Vec<Sample>,
}

impl HotQuery {
    pub fn new(name: &'static str, sql: impl Into<String>, params: &[Sample]) -> HotQuery {
        HotQuery {
            name,
            sql: sql.into(),
            params: params.to_vec(),
        }
    }
}

/// How hard the database works to make a commit durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every commit reaches the disk before it is acknowledged (default).
    Full,
    /// A power loss may forget the last commits; a crash of kiln alone loses nothing.
    Normal,
}

/// Everything kiln keeps.
pub trait Store:
    UserStore
    + FileStore
    + TemplateStore
    + WorkspaceStore
    + BuildStore
    + JobStore
    + LogStore
    + OverviewStore
    + ProvisionerStore
    + Send
    + Sync
{
}

impl<T> Store for T where
    T: UserStore
        + FileStore
        + TemplateStore
        + WorkspaceStore
        + BuildStore
        + JobStore
        + LogStore
        + OverviewStore
        + ProvisionerStore
        + Send
        + Sync
{
}

/// The numbered blocks of a schema file, in order: `(version, sql)`. A block starts at a line
/// `-- migration N`; blocks must be numbered 1, 2, 3...
pub(crate) fn numbered_blocks(schema: &str) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Vec::new();
    for line in schema.lines() {
        if let Some(n) = line.trim().strip_prefix("-- migration ") {
            let n: u32 = n.trim().parse().expect("schema: bad migration number");
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
            "schema: migrations must be numbered 1, 2, 3..."
        );
    }
    out
}

/// Whether a database at schema version `current` needs the migrations after it to reach
/// `latest` (logged when it does). A database newer than this kiln is refused.
pub(crate) fn needs_migration(current: u32, latest: u32) -> StoreResult<bool> {
    if current > latest {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {current}, newer than this kiln ({latest}); \
             use a newer kiln"
        )));
    }
    if current < latest {
        log::info!("database schema at version {current}: migrating to {latest}");
    }
    Ok(current < latest)
}
