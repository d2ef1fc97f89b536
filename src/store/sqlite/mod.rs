//! The store over an embedded SQLite file. Reads use a pool of connections; every write goes
//! through one connection with group commit (`writer.rs`), and notices are published once the
//! write is durable. The statements, row readers and transactions are the shared ones
//! (`store::sql`), run on these connections (`conn.rs`) as this dialect spells them
//! (`dialect.rs`); a job queued while one of this process's workers waits is handed to it in
//! the same commit (`handoff.rs`), and a worker's next job taken in the commit that ends its
//! build (`take.rs`).
//!
//! Concurrency: SQLite runs one write transaction at a time (`BEGIN IMMEDIATE` takes the
//! database's write lock, also against other processes), so each transaction sees every
//! committed write. Decisions are nevertheless written to hold without that, as a database
//! with concurrent writers needs: conditional updates that re-check what they decided from,
//! and unique constraints that turn a lost race into `Conflict` (`store::sql` says so where
//! each is made).

pub mod backup;
mod conn;
mod dialect;
mod handoff;
mod hot;
mod migrate;
mod take;
mod writer;

use crate::events::{LiveEvents, Topic};
use crate::model::JobStatus;
use crate::store::sql::LogCapCell;
use crate::store::sql::{Conn, Db};
use crate::store::{BuildCompletion, Durability, JobRow, LogBatch, StoreResult};
use conn::Lite;
pub use migrate::latest as schema_version;
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type Pooled = PooledConnection<SqliteConnectionManager>;

pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
    writer: writer::Writer,
    events: Arc<dyn LiveEvents>,
    handoff: handoff::Handoff,
    log_cap: LogCapCell,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file, brings its schema up to date, and
    /// publishes on `events` the notices of what it writes.
    pub fn open(
        path: &Path,
        durability: Durability,
        events: Arc<dyn LiveEvents>,
    ) -> StoreResult<SqliteStore> {
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        // `temp_store = MEMORY`: the journal each write's savepoint keeps (the pages it
        // changes, as they were, in case it rolls back alone; `writer.rs`) is held in memory
        // instead of a temporary file, which took two system calls a page.
        // `cache_size`: each connection keeps up to 16 MB of pages (SQLite's default is 2 MB).
        // A status page over a queue of 10,000 in a 2.5 GB file touches some 800 pages of
        // indexes and rows; with 2 MB a connection evicted them between two reads and read
        // them all again from the kernel (`pread`: 37 % of the read's time). The cache grows
        // only with the pages read, so a small database costs no more.
        let init = move |c: &mut rusqlite::Connection| {
            c.busy_timeout(Duration::from_secs(10))?;
            c.set_prepared_statement_cache_capacity(dialect::STATEMENT_CACHE);
            c.execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = {sync}; \
                 PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384;"
            ))
        };
        // The writer's connection first, alone: it turns a new file to WAL and migrates it
        // before any other connection is open. (Pool connections opening at once on a new file
        // raced for the journal mode change, and one lost with "database is locked", which the
        // busy timeout does not cover.)
        private_file(path)?;
        let mut write_conn = rusqlite::Connection::open(path)?;
        init(&mut write_conn)?;
        migrate::migrate(&mut write_conn)?;
        let manager = SqliteConnectionManager::file(path).with_init(init);
        let pool = Pool::builder()
            .max_size(16)
            // Connections open on demand: start-up does not pay for sixteen.
            .min_idle(Some(2))
            .connection_timeout(Duration::from_secs(30))
            .build(manager)?;
        Ok(SqliteStore {
            pool,
            writer: writer::Writer::new(write_conn),
            handoff: handoff::Handoff::default(),
            events,
            log_cap: LogCapCell::default(),
        })
    }

    fn conn(&self) -> StoreResult<Pooled> {
        Ok(self.pool.get()?)
    }

    /// Tells watchers about a committed write.
    fn publish(&self, topics: &[Topic]) {
        for t in topics {
            self.events.publish(t);
        }
    }

    /// `(writes, commits)` so far: how well writes share commits (benchmarks print it).
    pub fn write_stats(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.writer.writes.load(Relaxed),
            self.writer.commits.load(Relaxed),
        )
    }

    /// Benchmarks only, on a scratch store: commits `n` single-row transactions through the
    /// writer (`store::sql::commit_probe`) and returns how long they took.
    pub fn commit_probe(&self, n: usize) -> StoreResult<Duration> {
        crate::store::sql::commit_probe(self, n)
    }
}

impl Db for SqliteStore {
    fn read<T>(&self, mut f: impl FnMut(&mut dyn Conn) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.conn()?;
        f(&mut Lite(&conn))
    }

    /// Group commit (`writer.rs`): returns once the write is durable, then publishes.
    fn write<T>(
        &self,
        mut f: impl FnMut(&mut dyn Conn) -> StoreResult<T>,
        mut topics: impl FnMut(&T) -> Vec<Topic>,
    ) -> StoreResult<T> {
        let out = self.writer.write(|tx| f(&mut Lite(tx)))?;
        self.publish(&topics(&out));
        Ok(out)
    }

    /// Also hands the job to an idle worker of this process (`handoff.rs`).
    fn write_queueing<T>(
        &self,
        f: impl FnMut(&mut dyn Conn) -> StoreResult<T>,
        mut topics: impl FnMut(&T) -> Vec<Topic>,
    ) -> StoreResult<T> {
        let out = self.handoff.write(&self.writer, f)?;
        self.publish(&topics(&out));
        Ok(out)
    }

    fn wait_for_hand_off(&self, worker_id: &str) {
        self.handoff.wait(worker_id);
    }

    fn end_wait_for_hand_off(&self, worker_id: &str) -> Option<JobRow> {
        self.handoff.end_wait(worker_id)
    }

    /// In one commit (`take.rs`).
    fn complete_and_take(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<(Option<JobStatus>, Option<JobRow>)> {
        self.complete_and_take_in_one_commit(job_id, worker_id, done, logs)
    }

    /// One server uses a SQLite file (the data folder's lock), and it shows its own workers
    /// online whenever it lists them: marking them seen would be a write every 30 s that
    /// nobody reads.
    fn log_cap(&self) -> &LogCapCell {
        &self.log_cap
    }

    fn one_server(&self) -> bool {
        true
    }

    /// Empties the page cache of the writer's connection (between two batches) and of every
    /// pool connection idle now (`sqlite3_db_release_memory`); connections in use keep theirs.
    fn release_page_caches(&self) {
        self.writer.release_memory();
        let idle = self.pool.state().idle_connections;
        let held: Vec<Pooled> = (0..idle).map_while(|_| self.pool.try_get()).collect();
        for c in &held {
            if let Err(e) = c.release_memory() {
                log::debug!("releasing a connection's page cache: {e}");
            }
        }
    }
}

/// The database file is the owner's alone (0600): it holds password hashes, tokens' hashes,
/// states and logs. Made so before SQLite opens it (a new file is created empty, which SQLite
/// takes as a new database); SQLite gives its `-wal` and `-shm` files the same mode.
fn private_file(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| {
        crate::store::StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    let mode = file.metadata().map_err(fail)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
        for side in ["-wal", "-shm"] {
            let mut other = path.as_os_str().to_owned();
            other.push(side);
            let _ = std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600));
        }
    }
    Ok(())
}
