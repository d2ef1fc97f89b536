//! All SQL lives here. `Store` wraps an r2d2 pool of SQLite connections; each table family adds
//! its queries in its own module as `impl Store` blocks.

mod builds;
mod files;
mod jobs;
mod logs;
mod migrate;
mod status;
mod templates;
mod users;
mod workspaces;
mod writer;

pub use builds::*;
pub use files::*;
pub use jobs::*;
pub use logs::*;
pub use status::{ChangeMarker, QueueRow};
pub use templates::*;
pub use users::*;
pub use workspaces::*;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use std::path::Path;
use std::time::Duration;

pub type Conn = PooledConnection<SqliteConnectionManager>;

/// An error from the store: a database failure, or a constraint the caller may want to map.
#[derive(Debug)]
pub enum StoreError {
    Sqlite(rusqlite::Error),
    Pool(r2d2::Error),
    /// A UNIQUE constraint failed (duplicate name, a build number taken by a racing request).
    Conflict(String),
    /// The commit of a batch of writes failed (disk full, I/O error).
    Commit(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Sqlite(e) => write!(f, "database: {e}"),
            StoreError::Pool(e) => write!(f, "database pool: {e}"),
            StoreError::Conflict(what) => write!(f, "conflict: {what}"),
            StoreError::Commit(why) => write!(f, "commit failed: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(err, msg) = &e
            && err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        {
            return StoreError::Conflict(msg.clone().unwrap_or_default());
        }
        StoreError::Sqlite(e)
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Pool(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How hard SQLite works to make a commit durable (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// Every commit reaches the disk before it is acknowledged (default).
    Full,
    /// A power loss may forget the last commits; a crash of kiln alone loses nothing.
    Normal,
}

/// A connection inside the open write transaction (see `writer.rs`).
pub type Tx = rusqlite::Connection;

#[derive(Clone)]
pub struct Store {
    pool: Pool<SqliteConnectionManager>,
    writer: std::sync::Arc<writer::Writer>,
}

impl Store {
    /// Opens (creating if missing) the database file and brings its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> StoreResult<Store> {
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        let init = move |c: &mut rusqlite::Connection| {
            c.busy_timeout(Duration::from_secs(10))?;
            c.execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = {sync};"
            ))
        };
        let manager = SqliteConnectionManager::file(path).with_init(init);
        let pool = Pool::builder()
            .max_size(16)
            // Connections open on demand: start-up does not pay for sixteen.
            .min_idle(Some(2))
            .connection_timeout(Duration::from_secs(30))
            .build(manager)?;
        migrate::migrate(&mut *pool.get()?)?;
        let mut write_conn = rusqlite::Connection::open(path)?;
        init(&mut write_conn)?;
        Ok(Store {
            pool,
            writer: std::sync::Arc::new(writer::Writer::new(write_conn)),
        })
    }

    pub fn conn(&self) -> StoreResult<Conn> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` atomically and returns once it is durable. Writes are serialized through one
    /// connection and share commits when they arrive together (group commit, `writer.rs`).
    pub fn write<T>(&self, f: impl FnOnce(&Tx) -> StoreResult<T>) -> StoreResult<T> {
        self.writer.write(f)
    }

    /// `(writes, commits)` so far: how well writes share commits (benchmarks print it).
    pub fn write_stats(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.writer.writes.load(Relaxed),
            self.writer.commits.load(Relaxed),
        )
    }
}

impl Store {
    /// Benchmarks only, on a scratch store: commits `n` single-row transactions through
    /// `write` (same connection settings and durability as every write of kiln) and returns
    /// how long they took.
    pub fn commit_probe(&self, n: usize) -> StoreResult<Duration> {
        self.conn()?.execute_batch(
            "CREATE TABLE IF NOT EXISTS commit_probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)",
        )?;
        let started = std::time::Instant::now();
        for _ in 0..n {
            self.write(|tx| {
                tx.prepare_cached("INSERT INTO commit_probe (at) VALUES (?1)")?
                    .execute([crate::model::Time::now()])?;
                Ok(())
            })?;
        }
        Ok(started.elapsed())
    }
}

/// Turns "no row" into `None`.
pub(crate) fn optional<T>(r: rusqlite::Result<T>) -> StoreResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
