//! The SQL both stores run, written once: each table family's statements, row readers and
//! decide-then-write transactions (`files.rs`, `logs.rs`, `users.rs`, `templates.rs`,
//! `provisioners.rs`, `builds.rs`, `workspaces.rs`, `jobs.rs` with `job_end.rs` and
//! `job_rows.rs`, `overview.rs`), implementing the store traits for any backend (`Db`), and
//! the hot statements' list (`hot.rs`).
//!
//! A backend is a pool plus a dialect:
//! - `Db` (below): reads on a pooled connection, and writes as transactions whose notices are
//!   published once they are committed, plus the few things one backend does beyond that
//!   (SQLite's hand-off of a new job to an idle worker in its creating commit);
//! - `Conn` (`conn.rs`): a connection or an open transaction that runs a statement with neutral
//!   parameters and hands back neutral rows, each statement prepared once per connection;
//! - `Dialect` (`dialect.rs`): the fragments and the few whole statements the two databases
//!   spell differently, each backend's own in its `dialect.rs`.
//!
//! Writes that decide from what they read are written for a database with concurrent writers
//! (PostgreSQL): conditional statements that re-check what they decided from, row locks
//! (`FOR UPDATE`, nothing on SQLite, whose one writer holds the database), and unique
//! constraints that turn a lost race into `Conflict`. Each says so where it is made.

pub mod builds;
mod conn;
mod dialect;
mod files;
pub mod hot;
pub mod job_end;
pub mod job_rows;
pub mod jobs;
pub mod logs;
pub mod overview;
pub mod provisioners;
pub mod templates;
pub mod users;
mod value;
pub mod workspaces;

pub use conn::{Conn, Row, from_json, to_json};
pub use dialect::{Dialect, Sql, Stmt};
pub(crate) use value::params;
pub use value::{Owned, ToValue, Value};

use crate::domain::log_budget::LogCap;
use crate::events::Topic;
use crate::model::{JobStatus, Time};
use crate::store::{BuildCompletion, JobRow, JobStore, LogBatch, StoreResult};
use std::sync::atomic::{AtomicI64, Ordering};

/// A backend of the shared store: every store trait is implemented for it in this module.
pub trait Db: Send + Sync {
    /// Runs `f` on a connection of the pool, outside any write. A backend may run `f` again
    /// on another connection when the first was lost under it.
    fn read<T>(&self, f: impl FnMut(&mut dyn Conn) -> StoreResult<T>) -> StoreResult<T>;

    /// Runs `f` atomically; once it succeeded and is committed (durable), publishes the
    /// notices `topics` names for what it returned. A backend may run `f` (and `topics`) again
    /// in a new transaction when the first was rolled back with its lost connection. An error
    /// means nothing of `f` was stored, except `Unavailable` for a connection lost during the
    /// commit itself, after which nobody can tell.
    fn write<T>(
        &self,
        f: impl FnMut(&mut dyn Conn) -> StoreResult<T>,
        topics: impl FnMut(&T) -> Vec<Topic>,
    ) -> StoreResult<T>;

    /// `write` for a write that queues a build: SQLite takes the job, in the same commit, for
    /// an idle worker of this process (`sqlite/handoff.rs`).
    fn write_queueing<T>(
        &self,
        f: impl FnMut(&mut dyn Conn) -> StoreResult<T>,
        topics: impl FnMut(&T) -> Vec<Topic>,
    ) -> StoreResult<T> {
        self.write(f, topics)
    }

    /// A worker of this process waits for a job (`JobStore::wait_for_job`): SQLite may take
    /// one queued meanwhile for it (`sqlite/handoff.rs`).
    fn wait_for_hand_off(&self, _worker_id: &str) {}

    /// Ends that wait: the job taken for the worker meanwhile, if any.
    fn end_wait_for_hand_off(&self, _worker_id: &str) -> Option<JobRow> {
        None
    }

    /// `JobStore::complete_build_and_take`: in two commits, unless the backend makes them one
    /// (SQLite, `sqlite/take.rs`).
    fn complete_and_take(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<(Option<JobStatus>, Option<JobRow>)>
    where
        Self: JobStore + Sized,
    {
        crate::store::jobs::complete_then_take(self, job_id, worker_id, done, logs)
    }

    /// The cap the backend applies to every job's log (`LogStore::set_log_cap`).
    fn log_cap(&self) -> &LogCapCell;

    /// Gives back the pages of the database the backend caches (`LogStore::release_memory`).
    fn release_page_caches(&self) {}

    /// Whether one server alone uses the database (`ProvisionerStore::shared_by_servers`).
    fn one_server(&self) -> bool {
        false
    }

    /// `OverviewStore::database_reachable`.
    fn reachable(&self) -> bool {
        true
    }
}

/// Benchmarks only, on a scratch store: commits `n` single-row transactions into a scratch
/// table through `db`'s writes (the same path, connection settings and durability as every
/// write of kiln) and returns how long they took.
pub fn commit_probe(db: &impl Db, n: usize) -> StoreResult<std::time::Duration> {
    db.read(|c| c.execute(c.dialect().commit_probe_table, &[]).map(drop))?;
    let started = std::time::Instant::now();
    for _ in 0..n {
        db.write(
            |c| {
                c.execute(
                    "INSERT INTO commit_probe (at) VALUES (?1)",
                    params![Time::now()],
                )
                .map(drop)
            },
            |_| vec![],
        )?;
    }
    Ok(started.elapsed())
}

/// The cap a store applies to every job's log (`LogStore::set_log_cap`); Coder's 1 MiB until
/// set.
pub struct LogCapCell(AtomicI64);

impl Default for LogCapCell {
    fn default() -> LogCapCell {
        LogCapCell(AtomicI64::new(LogCap::default().bytes()))
    }
}

impl LogCapCell {
    pub fn get(&self) -> LogCap {
        LogCap::new(self.0.load(Ordering::Relaxed)).unwrap_or_default()
    }

    pub fn set(&self, cap: LogCap) {
        self.0.store(cap.bytes(), Ordering::Relaxed);
    }
}
