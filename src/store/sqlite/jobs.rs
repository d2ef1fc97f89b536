//! The job queue: one FIFO (by `seq`) for imports and builds, with the worker leases of
//! `crate::store::jobs`. Every write a worker makes to its job is conditional on
//! `worker_id = <it> AND completed_at IS NULL`, and every write made for a job nobody runs is
//! conditional on the fact that made it stale: the condition is re-checked by the statement
//! that writes, so a write decided from an older read never lands on a job that moved on.

use super::build_end::insert_resources;
use super::dialect::{exec, optional};
use super::job_end::{Holder, JobEnd, complete_build_in, end_in};
use super::job_rows::{JOB_COLUMNS, NewJob, PENDING, insert_job, job_from_row};
use super::{SqliteStore, Tx};
use crate::domain::jobs::cancel_decision;
use crate::domain::{CancelAction, CancelRefusal};
use crate::events::Topic;
use crate::model::{JobStatus, Time, new_id};
use crate::store::{
    BuildCompletion, ImportOutcome, JOB_DRY_RUN, JobRow, JobStore, LeaseState, LogBatch, NewDryRun,
    Stale, StoreError, StoreResult,
};
use rusqlite::params;

/// Whether any job waits (read from the pending index, however long the queue).
pub(super) const ANY_PENDING: &str = "SELECT EXISTS (SELECT 1 FROM provisioner_jobs \
     WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL)";
/// `(position, size)` of the pending job `?1` (its `seq`): the pending count (one row, kept by
/// the `pending_jobs` triggers of migration 9) less the pending jobs behind it, counted along
/// the pending index from it to the end (a new job's answer reads a row and an index entry).
pub(super) const QUEUE_POSITION: &str = "SELECT p.count - (SELECT count(*) FROM provisioner_jobs \
     WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL AND seq > ?1), \
     p.count FROM pending_jobs p WHERE p.id = 1";
/// How many jobs wait (one row, kept by the `pending_jobs` triggers).
const PENDING_COUNT: &str = "SELECT count FROM pending_jobs WHERE id = 1";

/// Every pending job's `seq`, oldest first.
pub(super) const PENDING_SEQS: &str = "SELECT seq FROM provisioner_jobs \
     WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL ORDER BY seq";

impl SqliteStore {
    /// Ends job `job_id` in one transaction (`end_in`); followers and the overview are told.
    /// `None` when the job was not (or no longer) the holder's.
    fn end_job<T>(
        &self,
        job_id: &str,
        end: JobEnd,
        then: impl FnOnce(&Tx, bool, Time) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let out = self.write(|tx| end_in(tx, job_id, &end, then))?;
        if out.is_some() {
            self.publish(&[Topic::Logs(job_id.into()), Topic::Overview]);
        }
        Ok(out)
    }

    fn job_query(&self, filter: &str, param: &dyn rusqlite::ToSql) -> StoreResult<Vec<JobRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM provisioner_jobs j \
             WHERE j.started_at IS NOT NULL AND j.completed_at IS NULL AND {filter}"
        ))?;
        let rows = stmt.query_map([param], |r| job_from_row(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl JobStore for SqliteStore {
    fn job(&self, id: &str) -> StoreResult<Option<JobRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.id = ?1"
        ))?;
        optional(stmt.query_row([id], |r| job_from_row(r, 0)))
    }

    fn register_workers(&self, server_id: &str, count: usize) -> StoreResult<Vec<String>> {
        let names: Vec<String> = (0..count).map(|n| format!("built-in-{n}")).collect();
        // A restart finds its workers registered: a read, no commit at start-up.
        let known: Vec<Option<String>> = {
            let conn = self.conn()?;
            let mut stmt = conn.prepare_cached(
                "SELECT id FROM provisioner_daemons WHERE server_id = ?1 AND name = ?2",
            )?;
            names
                .iter()
                .map(|name| optional(stmt.query_row(params![server_id, name], |r| r.get(0))))
                .collect::<StoreResult<_>>()?
        };
        if let Some(ids) = known.iter().cloned().collect::<Option<Vec<String>>>() {
            return Ok(ids);
        }
        self.write(|tx| {
            let now = Time::now();
            let mut stmt = tx.prepare_cached(
                "INSERT INTO provisioner_daemons (id, server_id, name, created_at, last_seen_at) \
                 VALUES (?1, ?2, ?3, ?4, ?4) \
                 ON CONFLICT (server_id, name) DO UPDATE SET last_seen_at = excluded.last_seen_at \
                 RETURNING id",
            )?;
            names
                .iter()
                .map(|name| {
                    Ok(stmt.query_row(params![new_id(), server_id, name, now], |r| r.get(0))?)
                })
                .collect()
        })
    }

    fn take_next_job(&self, worker_id: &str) -> StoreResult<Option<JobRow>> {
        // Idle workers look often: an empty queue costs a read, not a write.
        let any: bool = self
            .conn()?
            .prepare_cached(ANY_PENDING)?
            .query_row([], |r| r.get(0))?;
        if !any {
            return Ok(None);
        }
        let job = self.write(|tx| super::take::take_in(tx, worker_id))?;
        if job.is_some() {
            self.publish(&[Topic::Overview]);
        }
        Ok(job)
    }

    fn wait_for_job(&self, worker_id: &str) {
        self.handoff.wait(worker_id);
    }

    fn end_wait_for_job(&self, worker_id: &str) -> Option<JobRow> {
        self.handoff.end_wait(worker_id)
    }

    fn pending_job_count(&self) -> StoreResult<i64> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(PENDING_COUNT)?;
        Ok(stmt.query_row([], |r| r.get(0))?)
    }

    fn daemon_count(&self) -> StoreResult<i64> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT count(*) FROM provisioner_daemons")?;
        Ok(stmt.query_row([], |r| r.get(0))?)
    }

    fn queue_position(&self, job: &JobRow) -> StoreResult<(i64, i64)> {
        if job.status() != JobStatus::Pending {
            return Ok((0, 0));
        }
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(QUEUE_POSITION)?;
        Ok(stmt.query_row([job.seq], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    fn pending_seqs(&self) -> StoreResult<Vec<i64>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(PENDING_SEQS)?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn release_job(&self, job_id: &str, worker_id: &str) -> StoreResult<()> {
        let released = self.write(|tx| {
            Ok(exec(
                tx,
                "UPDATE provisioner_jobs SET started_at = NULL, worker_id = NULL \
                 WHERE id = ?1 AND worker_id = ?2 AND completed_at IS NULL AND canceled_at IS NULL",
                params![job_id, worker_id],
            )?)
        })?;
        if released > 0 {
            self.publish(&[Topic::Queue, Topic::Overview]);
        }
        Ok(())
    }

    fn heartbeat(&self, job_id: &str, worker_id: &str, renew: bool) -> StoreResult<LeaseState> {
        let canceled: Option<bool> = if renew {
            self.write(|tx| {
                optional(
                    tx.prepare_cached(
                        "UPDATE provisioner_jobs SET updated_at = ?3 \
                         WHERE id = ?1 AND worker_id = ?2 AND completed_at IS NULL \
                         RETURNING canceled_at IS NOT NULL",
                    )?
                    .query_row(params![job_id, worker_id, Time::now()], |r| r.get(0)),
                )
            })?
        } else {
            let conn = self.conn()?;
            let mut stmt = conn.prepare_cached(
                "SELECT canceled_at IS NOT NULL FROM provisioner_jobs \
                 WHERE id = ?1 AND worker_id = ?2 AND completed_at IS NULL",
            )?;
            optional(stmt.query_row(params![job_id, worker_id], |r| r.get(0)))?
        };
        Ok(match canceled {
            None => LeaseState::Lost,
            Some(true) => LeaseState::CancelRequested,
            Some(false) => LeaseState::Held,
        })
    }

    fn cancel_job(
        &self,
        job_id: &str,
        expect: Option<JobStatus>,
    ) -> StoreResult<Result<CancelAction, CancelRefusal>> {
        // Decide from the job as read, then write only if the job is still in the state the
        // decision was made on; if it moved on (a worker took it, it completed), decide again.
        let outcome = self.write(|tx| {
            loop {
                let job = optional(
                    tx.prepare_cached(&format!(
                        "SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.id = ?1"
                    ))?
                    .query_row([job_id], |r| job_from_row(r, 0)),
                )?
                .ok_or(StoreError::NotFound)?;
                let action = match cancel_decision(job.status(), expect) {
                    Ok(a) => a,
                    Err(refusal) => return Ok(Err(refusal)),
                };
                let now = Time::now();
                let (set, was) = match action {
                    CancelAction::CancelPending => (
                        "canceled_at = ?2, completed_at = ?2, updated_at = ?2",
                        "started_at IS NULL",
                    ),
                    CancelAction::StopRunning => (
                        "canceled_at = ?2, updated_at = ?2",
                        "started_at IS NOT NULL",
                    ),
                };
                let changed = tx
                    .prepare_cached(&format!(
                        "UPDATE provisioner_jobs SET {set} WHERE id = ?1 AND {was} \
                         AND completed_at IS NULL AND canceled_at IS NULL AND error = ''"
                    ))?
                    .execute(params![job_id, now])?;
                if changed == 1 {
                    return Ok(Ok(action));
                }
            }
        })?;
        match outcome {
            Ok(CancelAction::CancelPending) => {
                self.publish(&[Topic::Logs(job_id.into()), Topic::Overview]);
            }
            Ok(CancelAction::StopRunning) => self.publish(&[
                Topic::Cancel(job_id.into()),
                Topic::Logs(job_id.into()),
                Topic::Overview,
            ]),
            Err(_) => {}
        }
        Ok(outcome)
    }

    fn complete_import(
        &self,
        job_id: &str,
        worker_id: &str,
        outcome: &ImportOutcome,
        logs: &LogBatch,
    ) -> StoreResult<bool> {
        let (error, manifest) = outcome.parts();
        let end = JobEnd {
            holder: Holder::Worker(worker_id),
            error,
            cancel_wins: true,
            logs,
        };
        let ended = self.end_job(job_id, end, |tx, _, now| {
            if let Some((manifest, readme)) = manifest {
                exec(
                    tx,
                    "UPDATE template_versions SET manifest = ?2, readme = ?3, updated_at = ?4 \
                     WHERE job_id = ?1",
                    params![job_id, manifest, readme, now],
                )?;
            }
            Ok(())
        })?;
        Ok(ended.is_some())
    }

    fn insert_dry_run(&self, job: &NewDryRun) -> StoreResult<()> {
        self.write(|tx| {
            insert_job(
                tx,
                &NewJob {
                    id: job.id,
                    organization_id: job.organization_id,
                    initiator_id: job.initiator_id,
                    file_id: job.file_id,
                    kind: JOB_DRY_RUN,
                    input: job.input.clone(),
                    log_level: "info",
                    tags_of_version: Some(job.version_id),
                    tags: "{}".into(),
                },
                Time::now(),
            )
        })?;
        self.publish(&[Topic::Queue, Topic::Overview]);
        Ok(())
    }

    fn complete_dry_run(
        &self,
        job_id: &str,
        worker_id: &str,
        resources: &[crate::model::WorkspaceResource],
        logs: &LogBatch,
    ) -> StoreResult<bool> {
        let end = JobEnd {
            holder: Holder::Worker(worker_id),
            error: "",
            cancel_wins: true,
            logs,
        };
        let ended = self.end_job(job_id, end, |tx, canceled, _| match canceled {
            true => Ok(()),
            false => insert_resources(tx, job_id, resources),
        })?;
        Ok(ended.is_some())
    }

    fn complete_build(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<Option<JobStatus>> {
        let ended = self.write(|tx| complete_build_in(tx, job_id, worker_id, done, logs))?;
        if ended.is_some() {
            self.publish(&[Topic::Logs(job_id.into()), Topic::Overview]);
        }
        if let Some((_, true)) = ended {
            self.publish(&[Topic::Queue]);
        }
        Ok(ended.map(|(status, _)| status))
    }

    fn complete_build_and_take(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<(Option<JobStatus>, Option<JobRow>)> {
        self.complete_and_take(job_id, worker_id, done, logs)
    }

    fn fail_job(
        &self,
        job_id: &str,
        worker_id: &str,
        error: &str,
        logs: &LogBatch,
    ) -> StoreResult<bool> {
        let end = JobEnd {
            holder: Holder::Worker(worker_id),
            error,
            cancel_wins: true,
            logs,
        };
        Ok(self.end_job(job_id, end, |_, _, _| Ok(()))?.is_some())
    }

    fn stale_jobs(&self, before: Time) -> StoreResult<Vec<JobRow>> {
        self.job_query("j.updated_at < ?1", &before)
    }

    fn pending_jobs_queued_before(&self, before: Time) -> StoreResult<Vec<JobRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.{} AND j.created_at < ?1",
            PENDING.replace(" AND ", " AND j.")
        ))?;
        let rows = stmt.query_map([before], |r| job_from_row(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn jobs_of_server(&self, server_id: &str) -> StoreResult<Vec<JobRow>> {
        self.job_query(
            "j.worker_id IN (SELECT id FROM provisioner_daemons WHERE server_id = ?1)",
            &server_id,
        )
    }

    fn abandon_job(&self, job_id: &str, stale: Stale, error: &str) -> StoreResult<bool> {
        let end = JobEnd {
            holder: Holder::Stale(stale),
            error,
            cancel_wins: true,
            logs: &LogBatch::default(),
        };
        Ok(self.end_job(job_id, end, |_, _, _| Ok(()))?.is_some())
    }
}
