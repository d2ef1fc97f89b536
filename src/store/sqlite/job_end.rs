//! How a job ends, in the open transaction: who must still hold it, its error, its last log
//! lines, and what the end writes beside them (`end_in`); a build's end (`complete_build_in`)
//! is shared by `complete_build` and `complete_build_and_take`.

use super::Tx;
use super::build_end::apply_build_end;
use super::dialect::optional;
use super::logs::{append_lines, insert_log};
use crate::model::{JobStatus, Time};
use crate::store::{BuildCompletion, LogBatch, Stale, StoreResult};
use rusqlite::params;

/// Who must still hold a job for it to be ended.
pub(super) enum Holder<'a> {
    Worker(&'a str),
    Stale(Stale<'a>),
}

/// How a job ends: see `SqliteStore::end_job`.
pub(super) struct JobEnd<'a> {
    pub(super) holder: Holder<'a>,
    /// Empty: the job completes (succeeded, or canceled when a cancel was requested).
    pub(super) error: &'a str,
    /// With an error: a requested cancel still wins (the job ends canceled, not failed).
    pub(super) cancel_wins: bool,
    /// The job's last lines, written before its end's own line.
    pub(super) logs: &'a LogBatch,
}

/// Ends job `job_id` in the open transaction if `end.holder` still holds it and it is not
/// completed: the statement that decides also writes (`completed_at`, and the error unless the
/// job ends canceled), so a job that moved on since it was read is left alone. Then the last
/// lines, the end's own line (the error, or a warning when the job ends canceled) and
/// `then(tx, ended_canceled, now)`. `None` when the job was not (or no longer) the holder's.
pub(super) fn end_in<T>(
    tx: &Tx,
    job_id: &str,
    end: &JobEnd,
    then: impl FnOnce(&Tx, bool, Time) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let (condition, value) = match &end.holder {
        Holder::Worker(w) | Holder::Stale(Stale::HeldBy(w)) => {
            ("started_at IS NOT NULL AND worker_id = ?5", w.to_string())
        }
        Holder::Stale(Stale::HeartbeatBefore(t)) => (
            "started_at IS NOT NULL AND updated_at < ?5",
            t.0.to_string(),
        ),
        Holder::Stale(Stale::QueuedBefore(t)) => (
            "started_at IS NULL AND canceled_at IS NULL AND created_at < ?5",
            t.0.to_string(),
        ),
    };
    let now = Time::now();
    let canceled: Option<bool> = optional(
        tx.prepare_cached(&format!(
            "UPDATE provisioner_jobs SET completed_at = ?2, updated_at = ?2, \
             error = CASE WHEN ?3 = '' OR (?4 AND canceled_at IS NOT NULL) THEN error ELSE ?3 END \
             WHERE id = ?1 AND completed_at IS NULL AND {condition} \
             RETURNING canceled_at IS NOT NULL"
        ))?
        .query_row(
            params![job_id, now, end.error, end.cancel_wins, value],
            |r| r.get(0),
        ),
    )?;
    let Some(canceled) = canceled else {
        return Ok(None);
    };
    let ended_canceled = canceled && (end.cancel_wins || end.error.is_empty());
    append_lines(tx, job_id, end.logs)?;
    if !end.error.is_empty() {
        let level = if ended_canceled { "warn" } else { "error" };
        insert_log(
            tx,
            job_id,
            now,
            "provisioner_daemon",
            level,
            "Cleaning Up",
            end.error,
        )?;
    }
    then(tx, ended_canceled, now).map(Some)
}

/// A build job's end (`complete_build`) in the open transaction: its final status and whether
/// a follow-up build was queued; `None` when the worker no longer held it.
pub(super) fn complete_build_in(
    tx: &Tx,
    job_id: &str,
    worker_id: &str,
    done: &BuildCompletion,
    logs: &LogBatch,
) -> StoreResult<Option<(JobStatus, bool)>> {
    let end = JobEnd {
        holder: Holder::Worker(worker_id),
        error: &done.error,
        cancel_wins: false,
        logs,
    };
    end_in(tx, job_id, &end, |tx, canceled, now| {
        let status = done.final_status(canceled);
        let queued = apply_build_end(tx, job_id, status, done, now)?;
        Ok((status, queued))
    })
}
