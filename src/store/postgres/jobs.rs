//! The job queue on PostgreSQL, with the worker leases of `crate::store::jobs`. Several servers
//! take, cancel and end jobs at once here, so: a job is taken by an update conditional on it
//! still being pending (of the oldest pending jobs, the first the taker's tags match; a taker
//! that loses the race to another re-checks the row and tries the next), so no job is taken
//! twice; a cancel locks the job's row while it
//! decides; every write a worker makes is conditional on `worker_id = <it> AND completed_at IS
//! NULL`, and every write for a job nobody runs is conditional on the fact that made it stale
//! (re-checked by PostgreSQL on the locked row, so two sweepers never both end it).

use super::PgStore;
use super::job_end::{Holder, JobEnd, apply_build_end, insert_resources};
use super::job_rows::{JOB_COLUMNS, NewJob, insert_job, job_from_row};
use super::pool::Tx;
use crate::domain::jobs::cancel_decision;
use crate::domain::provisioner_tags::{from_json, matches};
use crate::domain::{CancelAction, CancelRefusal};
use crate::events::Topic;
use crate::model::{JobStatus, Time, new_id};
use crate::store::{
    BuildCompletion, ImportOutcome, JOB_DRY_RUN, JobRow, JobStore, LeaseState, LogBatch, NewDryRun,
    Stale, StoreError, StoreResult,
};
use postgres::types::ToSql;

use crate::store::TAKE_WINDOW;
const PENDING: &str = "started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL";

/// Whether any job waits (read from the pending index, however long the queue).
pub(super) const ANY_PENDING: &str = "SELECT EXISTS (SELECT 1 FROM provisioner_jobs \
     WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL)";
/// `(position, size)` of the pending job `$1` (its `seq`).
pub(super) const QUEUE_POSITION: &str = "SELECT count(*) FILTER (WHERE seq <= $1), count(*) \
     FROM provisioner_jobs \
     WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL";

/// Every pending job's `seq`, oldest first.
pub(super) const PENDING_SEQS: &str = "SELECT seq FROM provisioner_jobs \
     WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL ORDER BY seq";

/// The oldest pending jobs, with their tags: a taker takes the first its tags match.
pub(super) fn take_candidates() -> String {
    format!(
        "SELECT id, tags FROM provisioner_jobs WHERE {PENDING} ORDER BY seq LIMIT {TAKE_WINDOW}"
    )
}

/// Takes the chosen job (`$3`: its id) for worker `$2` at time `$1` if it is still pending: a
/// row another taker is updating makes this one wait for it and re-check (READ COMMITTED),
/// so no job is taken twice.
pub(super) fn take_job() -> String {
    format!(
        "UPDATE provisioner_jobs SET started_at = $1, updated_at = $1, worker_id = $2 \
         WHERE id = $3 AND {PENDING} \
         RETURNING {}",
        JOB_COLUMNS.replace("j.", "")
    )
}

fn lease(canceled: Option<bool>) -> LeaseState {
    match canceled {
        None => LeaseState::Lost,
        Some(true) => LeaseState::CancelRequested,
        Some(false) => LeaseState::Held,
    }
}

impl PgStore {
    fn running_jobs(&self, filter: &str, param: &(dyn ToSql + Sync)) -> StoreResult<Vec<JobRow>> {
        let mut conn = self.conn()?;
        let rows = conn.query(
            format!(
                "SELECT {JOB_COLUMNS} FROM provisioner_jobs j \
                 WHERE j.started_at IS NOT NULL AND j.completed_at IS NULL AND {filter}"
            )
            .as_str(),
            &[param],
        )?;
        Ok(rows.iter().map(|r| job_from_row(r, 0)).collect())
    }
}

impl JobStore for PgStore {
    fn job(&self, id: &str) -> StoreResult<Option<JobRow>> {
        let mut conn = self.conn()?;
        let row = conn.query_opt(
            format!("SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.id = $1").as_str(),
            &[&id],
        )?;
        Ok(row.map(|r| job_from_row(&r, 0)))
    }

    fn register_workers(&self, server_id: &str, count: usize) -> StoreResult<Vec<String>> {
        let names: Vec<String> = (0..count).map(|n| format!("built-in-{n}")).collect();
        self.write(
            |tx| {
                let now = Time::now();
                names
                    .iter()
                    .map(|name| {
                        let row = tx.query_one(
                            "INSERT INTO provisioner_daemons (id, server_id, name, created_at, last_seen_at) \
                             VALUES ($1, $2, $3, $4, $4) \
                             ON CONFLICT (server_id, name) DO UPDATE SET last_seen_at = excluded.last_seen_at \
                             RETURNING id",
                            &[&new_id(), &server_id, name, &now],
                        )?;
                        Ok(row.get(0))
                    })
                    .collect()
            },
            |_| vec![],
        )
    }

    fn take_next_job(&self, worker_id: &str) -> StoreResult<Option<JobRow>> {
        // An idle worker looks often: an empty queue costs a read, not a write.
        let any: bool = self.conn()?.query_one(ANY_PENDING, &[])?.get(0);
        if !any {
            return Ok(None);
        }
        // The oldest pending jobs are read without a lock and the first whose tags the
        // worker matches (`domain::provisioner_tags`) is taken by a conditional update: a row
        // another taker is updating makes this one wait for it, then re-check that it is still
        // pending (READ COMMITTED), so no job is taken twice; a lost race tries the next one.
        self.write(
            |tx| {
                let worker_tags = tx
                    .query_opt(
                        "SELECT tags FROM provisioner_daemons WHERE id = $1",
                        &[&worker_id],
                    )?
                    .map(|r| from_json(r.get::<_, &str>(0)))
                    .unwrap_or_default();
                let candidates = tx.query(take_candidates().as_str(), &[])?;
                for c in &candidates {
                    if !matches(&worker_tags, &from_json(c.get::<_, &str>(1))) {
                        continue;
                    }
                    let id: &str = c.get(0);
                    let row =
                        tx.query_opt(take_job().as_str(), &[&Time::now(), &worker_id, &id])?;
                    if let Some(r) = row {
                        return Ok(Some(job_from_row(&r, 0)));
                    }
                }
                Ok(None)
            },
            |job| match job {
                Some(_) => vec![Topic::Overview],
                None => vec![],
            },
        )
    }

    fn pending_job_count(&self) -> StoreResult<i64> {
        let mut conn = self.conn()?;
        let row = conn.query_one(
            format!("SELECT count(*) FROM provisioner_jobs WHERE {PENDING}").as_str(),
            &[],
        )?;
        Ok(row.get(0))
    }

    fn daemon_count(&self) -> StoreResult<i64> {
        let mut conn = self.conn()?;
        let row = conn.query_one("SELECT count(*) FROM provisioner_daemons", &[])?;
        Ok(row.get(0))
    }

    fn queue_position(&self, job: &JobRow) -> StoreResult<(i64, i64)> {
        if job.status() != JobStatus::Pending {
            return Ok((0, 0));
        }
        let mut conn = self.conn()?;
        let row = conn.query_one(QUEUE_POSITION, &[&job.seq])?;
        Ok((row.get(0), row.get(1)))
    }

    fn pending_seqs(&self) -> StoreResult<Vec<i64>> {
        let mut conn = self.conn()?;
        let rows = conn.query(PENDING_SEQS, &[])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn release_job(&self, job_id: &str, worker_id: &str) -> StoreResult<()> {
        self.write(
            |tx| {
                Ok(tx.execute(
                    "UPDATE provisioner_jobs SET started_at = NULL, worker_id = NULL \
                     WHERE id = $1 AND worker_id = $2 AND completed_at IS NULL AND canceled_at IS NULL",
                    &[&job_id, &worker_id],
                )?)
            },
            |released| match released {
                0 => vec![],
                _ => vec![Topic::Queue, Topic::Overview],
            },
        )?;
        Ok(())
    }

    fn heartbeat(&self, job_id: &str, worker_id: &str, renew: bool) -> StoreResult<LeaseState> {
        let row = if renew {
            self.write(
                |tx| {
                    Ok(tx.query_opt(
                        "UPDATE provisioner_jobs SET updated_at = $3 \
                         WHERE id = $1 AND worker_id = $2 AND completed_at IS NULL \
                         RETURNING canceled_at IS NOT NULL",
                        &[&job_id, &worker_id, &Time::now()],
                    )?)
                },
                |_| vec![],
            )?
        } else {
            self.conn()?.query_opt(
                "SELECT canceled_at IS NOT NULL FROM provisioner_jobs \
                 WHERE id = $1 AND worker_id = $2 AND completed_at IS NULL",
                &[&job_id, &worker_id],
            )?
        };
        Ok(lease(row.map(|r| r.get(0))))
    }

    fn cancel_job(
        &self,
        job_id: &str,
        expect: Option<JobStatus>,
    ) -> StoreResult<Result<CancelAction, CancelRefusal>> {
        let job = job_id.to_string();
        // The job's row is locked while the decision is made and applied.
        self.write(
            |tx| {
                let row = tx
                    .query_opt(
                        format!(
                            "SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.id = $1 FOR UPDATE"
                        )
                        .as_str(),
                        &[&job_id],
                    )?
                    .ok_or(StoreError::NotFound)?;
                let action = match cancel_decision(job_from_row(&row, 0).status(), expect) {
                    Ok(a) => a,
                    Err(refusal) => return Ok(Err(refusal)),
                };
                let set = match action {
                    CancelAction::CancelPending => {
                        "canceled_at = $2, completed_at = $2, updated_at = $2"
                    }
                    CancelAction::StopRunning => "canceled_at = $2, updated_at = $2",
                };
                tx.execute(
                    format!("UPDATE provisioner_jobs SET {set} WHERE id = $1").as_str(),
                    &[&job_id, &Time::now()],
                )?;
                Ok(Ok(action))
            },
            |outcome| match outcome {
                Ok(CancelAction::CancelPending) => vec![Topic::Logs(job.clone()), Topic::Overview],
                Ok(CancelAction::StopRunning) => vec![
                    Topic::Cancel(job.clone()),
                    Topic::Logs(job.clone()),
                    Topic::Overview,
                ],
                Err(_) => vec![],
            },
        )
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
        let import_end = |tx: &mut Tx, _: bool, now: Time| {
            if let Some((manifest, readme)) = manifest {
                tx.execute(
                    "UPDATE template_versions SET manifest = $2, readme = $3, updated_at = $4 \
                     WHERE job_id = $1",
                    &[&job_id, &manifest, &readme, &now],
                )?;
            }
            Ok(())
        };
        let ended = self.end_job(job_id, end, import_end, |_| false)?;
        Ok(ended.is_some())
    }

    fn insert_dry_run(&self, job: &NewDryRun) -> StoreResult<()> {
        self.write(
            |tx| {
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
            },
            |_| vec![Topic::Queue, Topic::Overview],
        )
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
        let plan = |tx: &mut Tx, canceled: bool, _: Time| match canceled {
            true => Ok(()),
            false => insert_resources(tx, job_id, resources),
        };
        let ended = self.end_job(job_id, end, plan, |_| false)?;
        Ok(ended.is_some())
    }

    fn complete_build(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<Option<JobStatus>> {
        let end = JobEnd {
            holder: Holder::Worker(worker_id),
            error: &done.error,
            cancel_wins: false,
            logs,
        };
        let ended = self.end_job(
            job_id,
            end,
            |tx, canceled, now| {
                let status = done.final_status(canceled);
                let queued = apply_build_end(tx, job_id, status, done, now)?;
                Ok((status, queued))
            },
            |(_, queued)| *queued,
        )?;
        Ok(ended.map(|(status, _)| status))
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
        Ok(self
            .end_job(job_id, end, |_, _, _| Ok(()), |_| false)?
            .is_some())
    }

    fn stale_jobs(&self, before: Time) -> StoreResult<Vec<JobRow>> {
        self.running_jobs("j.updated_at < $1", &before)
    }

    fn pending_jobs_queued_before(&self, before: Time) -> StoreResult<Vec<JobRow>> {
        let rows = self.conn()?.query(
            format!(
                "SELECT {JOB_COLUMNS} FROM provisioner_jobs j \
                 WHERE j.started_at IS NULL AND j.completed_at IS NULL AND j.canceled_at IS NULL \
                 AND j.created_at < $1"
            )
            .as_str(),
            &[&before],
        )?;
        Ok(rows.iter().map(|r| job_from_row(r, 0)).collect())
    }

    fn jobs_of_server(&self, server_id: &str) -> StoreResult<Vec<JobRow>> {
        self.running_jobs(
            "j.worker_id IN (SELECT id FROM provisioner_daemons WHERE server_id = $1)",
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
        Ok(self
            .end_job(job_id, end, |_, _, _| Ok(()), |_| false)?
            .is_some())
    }
}
