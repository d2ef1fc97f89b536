//! Job logs: appended in batches by the worker holding the job, read by id ranges.

use super::error::StoreResult;
use super::lease::LeaseState;
use crate::domain::log_budget::LogCap;
use crate::model::Time;

#[derive(Clone, Debug)]
pub struct LogRow {
    pub id: i64,
    pub created_at: Time,
    pub source: String,
    pub level: String,
    pub stage: String,
    pub output: String,
}

#[derive(Clone, Debug)]
pub struct NewLog {
    pub created_at: Time,
    pub source: &'static str,
    pub level: String,
    pub stage: String,
    pub output: String,
}

/// Lines to append to a job's log. The store keeps the job's accounting and applies the cap
/// (`domain::log_budget`) as it writes them: what a worker or a daemon thinks of it is not
/// asked.
#[derive(Debug, Default)]
pub struct LogBatch {
    pub lines: Vec<NewLog>,
}

pub trait LogStore {
    /// Appends a batch in one transaction for the worker holding the job, moving its heartbeat
    /// with it, and tells followers. Nothing is written when the worker lost the job (`Lost`).
    /// Every write of a job's lines (these, and those its end writes) keeps its log within the
    /// store's cap (`set_log_cap`).
    fn append_logs(
        &self,
        job_id: &str,
        worker_id: &str,
        batch: &LogBatch,
    ) -> StoreResult<LeaseState>;

    /// Logs of a job with `after < id < before`, in id order, at most `limit`.
    fn logs(
        &self,
        job_id: &str,
        after: i64,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<LogRow>>;

    /// The cap on every job's stored log from now on (`--max-job-log-bytes`); Coder's 1 MiB
    /// until set.
    fn set_log_cap(&self, cap: LogCap);

    /// Gives back the memory the store keeps only for speed (pages of the database it has
    /// cached), as the last follower of a job leaves: a burst of logs written and followed
    /// leaves their pages cached otherwise. Later reads fetch what they need again. Nothing
    /// to give back by default.
    fn release_memory(&self) {}

    /// Removes up to `limit` log lines of builds whose job ended before `ended_before`, never
    /// those of a workspace's latest build; returns how many.
    fn purge_build_logs(&self, ended_before: Time, limit: i64) -> StoreResult<u64>;
}
