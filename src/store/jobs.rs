//! The provisioner job queue: one FIFO (by `seq`) for imports and builds.

use super::{Store, StoreResult, optional};
use crate::model::{JobStatus, Time};
use rusqlite::{Row, params};

pub const JOB_BUILD: &str = "workspace_build";
pub const JOB_IMPORT: &str = "template_version_import";

#[derive(Clone, Debug)]
pub struct JobRow {
    pub id: String,
    pub seq: i64,
    pub created_at: Time,
    pub updated_at: Time,
    pub started_at: Option<Time>,
    pub completed_at: Option<Time>,
    pub canceled_at: Option<Time>,
    pub error: String,
    pub error_code: String,
    pub organization_id: String,
    pub initiator_id: String,
    pub file_id: String,
    pub kind: String,
    pub input: String,
    pub worker_id: Option<String>,
    pub log_level: String,
    pub logs_length: i64,
    pub logs_overflowed: bool,
}

impl JobRow {
    pub fn status(&self) -> JobStatus {
        JobStatus::derive(
            self.started_at,
            self.completed_at,
            self.canceled_at,
            &self.error,
        )
    }

    /// The id inside `input` (`workspace_build_id` or `template_version_id`).
    pub fn input_id(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.input)
            .ok()
            .and_then(|v| v.as_object()?.values().next()?.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

pub const JOB_COLUMNS: &str = "j.id, j.seq, j.created_at, j.updated_at, j.started_at, j.completed_at, \
    j.canceled_at, j.error, j.error_code, j.organization_id, j.initiator_id, j.file_id, j.type, \
    j.input, j.worker_id, j.log_level, j.logs_length, j.logs_overflowed";

/// Reads a job from `r`, starting at column `at` (so joins can put it anywhere).
pub fn job_from_row(r: &Row, at: usize) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(at)?,
        seq: r.get(at + 1)?,
        created_at: r.get(at + 2)?,
        updated_at: r.get(at + 3)?,
        started_at: r.get(at + 4)?,
        completed_at: r.get(at + 5)?,
        canceled_at: r.get(at + 6)?,
        error: r.get(at + 7)?,
        error_code: r.get(at + 8)?,
        organization_id: r.get(at + 9)?,
        initiator_id: r.get(at + 10)?,
        file_id: r.get(at + 11)?,
        kind: r.get(at + 12)?,
        input: r.get(at + 13)?,
        worker_id: r.get(at + 14)?,
        log_level: r.get(at + 15)?,
        logs_length: r.get(at + 16)?,
        logs_overflowed: r.get(at + 17)?,
    })
}

pub struct NewJob<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub initiator_id: &'a str,
    pub file_id: &'a str,
    pub kind: &'a str,
    pub input: serde_json::Value,
    pub log_level: &'a str,
}

/// Inserts a pending job at the end of the queue, inside the caller's transaction.
pub fn insert_job(tx: &super::Tx, job: &NewJob, now: Time) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO provisioner_jobs (id, seq, created_at, updated_at, organization_id, initiator_id, \
         file_id, type, input, log_level) \
         VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM provisioner_jobs), ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        job.id,
        now,
        job.organization_id,
        job.initiator_id,
        job.file_id,
        job.kind,
        job.input.to_string(),
        job.log_level
    ])?;
    Ok(())
}

/// What a cancel request found, under the job's lock.
#[derive(Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    NotFound,
    AlreadyCompleted,
    AlreadyCanceling,
    /// `expect_status` was given and the job is in another state.
    NotExpected,
    /// A pending job is now canceled: it will never run.
    CanceledPending,
    /// A running job is now canceling: its worker must stop it.
    CancelingRunning,
}

/// Writes `error` as the job's last log line and completes it, inside the caller's transaction.
pub fn fail_job_tx(tx: &super::Tx, job_id: &str, stage: &str, error: &str) -> StoreResult<()> {
    let now = Time::now();
    super::insert_log_tx(tx, job_id, now, "provisioner_daemon", "error", stage, error)?;
    tx.execute(
        "UPDATE provisioner_jobs SET completed_at = ?2, updated_at = ?2, error = ?3 \
         WHERE id = ?1 AND completed_at IS NULL",
        params![job_id, now, error],
    )?;
    Ok(())
}

impl Store {
    pub fn job(&self, id: &str) -> StoreResult<Option<JobRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.id = ?1"
        ))?;
        optional(stmt.query_row([id], |r| job_from_row(r, 0)))
    }

    /// Takes the oldest pending job for `worker_id`, atomically: no job is ever taken twice.
    pub fn take_next_job(&self, worker_id: &str) -> StoreResult<Option<JobRow>> {
        self.write(|tx| {
            let now = Time::now();
            let mut stmt = tx.prepare_cached(&format!(
                "UPDATE provisioner_jobs SET started_at = ?1, updated_at = ?1, worker_id = ?2 \
                 WHERE seq = (SELECT seq FROM provisioner_jobs \
                     WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL \
                     ORDER BY seq LIMIT 1) \
                 RETURNING {}",
                JOB_COLUMNS.replace("j.", "")
            ))?;
            optional(stmt.query_row(params![now, worker_id], |r| job_from_row(r, 0)))
        })
    }

    /// `(position, size)` of a pending job in the queue (1-based); `(0, 0)` when not pending.
    pub fn queue_position(&self, job: &JobRow) -> StoreResult<(i64, i64)> {
        if job.status() != JobStatus::Pending {
            return Ok((0, 0));
        }
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT count(*) FILTER (WHERE seq <= ?1), count(*) FROM provisioner_jobs \
             WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL",
        )?;
        Ok(stmt.query_row([job.seq], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    /// Puts a job a worker took back in the queue (it had not begun any work).
    pub fn release_job(&self, job_id: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE provisioner_jobs SET started_at = NULL, worker_id = NULL \
                 WHERE id = ?1 AND completed_at IS NULL AND canceled_at IS NULL",
                [job_id],
            )?;
            Ok(())
        })
    }

    /// Marks a running job as alive.
    pub fn heartbeat(&self, job_id: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE provisioner_jobs SET updated_at = ?2 WHERE id = ?1",
                params![job_id, Time::now()],
            )?;
            Ok(())
        })
    }

    /// Cancels a job under its lock (spec section 4: cancel checks 3 and 4).
    pub fn cancel_job(
        &self,
        job_id: &str,
        expect: Option<JobStatus>,
    ) -> StoreResult<CancelOutcome> {
        self.write(|tx| {
            let job = optional(tx.query_row(
                &format!("SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.id = ?1"),
                [job_id],
                |r| job_from_row(r, 0),
            ))?;
            let Some(job) = job else {
                return Ok(CancelOutcome::NotFound);
            };
            let status = job.status();
            if job.completed_at.is_some() {
                return Ok(CancelOutcome::AlreadyCompleted);
            }
            if job.canceled_at.is_some() {
                return Ok(CancelOutcome::AlreadyCanceling);
            }
            if expect.is_some_and(|e| e != status) {
                return Ok(CancelOutcome::NotExpected);
            }
            let now = Time::now();
            if status == JobStatus::Pending {
                tx.execute(
                    "UPDATE provisioner_jobs SET canceled_at = ?2, completed_at = ?2, updated_at = ?2 WHERE id = ?1",
                    params![job_id, now],
                )?;
                Ok(CancelOutcome::CanceledPending)
            } else {
                tx.execute(
                    "UPDATE provisioner_jobs SET canceled_at = ?2, updated_at = ?2 WHERE id = ?1",
                    params![job_id, now],
                )?;
                Ok(CancelOutcome::CancelingRunning)
            }
        })
    }

    /// Jobs that are started and not completed, updated before `before` (all when `None`).
    pub fn unfinished_jobs(&self, before: Option<Time>) -> StoreResult<Vec<JobRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM provisioner_jobs j \
             WHERE j.started_at IS NOT NULL AND j.completed_at IS NULL AND j.updated_at < ?1"
        ))?;
        let rows = stmt.query_map([before.unwrap_or(Time(i64::MAX))], |r| job_from_row(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Fails a job that no worker will finish (the server stopped, or it hung), logging why.
    /// A job whose cancel was requested ends canceled instead. No-op when already completed.
    pub fn abandon_job(&self, job_id: &str, error: &str) -> StoreResult<()> {
        self.write(|tx| {
            let canceled: Option<Option<Time>> = optional(tx.query_row(
                "SELECT canceled_at FROM provisioner_jobs WHERE id = ?1 AND completed_at IS NULL",
                [job_id],
                |r| r.get(0),
            ))?;
            match canceled {
                None => Ok(()),
                Some(Some(_)) => {
                    let now = Time::now();
                    super::insert_log_tx(tx, job_id, now, "provisioner_daemon", "warn", "Cleaning Up", error)?;
                    tx.execute(
                        "UPDATE provisioner_jobs SET completed_at = ?2, updated_at = ?2 WHERE id = ?1",
                        params![job_id, now],
                    )?;
                    Ok(())
                }
                Some(None) => fail_job_tx(tx, job_id, "Cleaning Up", error),
            }
        })
    }

    /// Jobs waiting for a worker, oldest first.
    pub fn pending_job_count(&self) -> StoreResult<i64> {
        let conn = self.conn()?;
        Ok(conn.query_row(
            "SELECT count(*) FROM provisioner_jobs \
             WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL",
            [],
            |r| r.get(0),
        )?)
    }
}
