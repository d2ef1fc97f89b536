//! The job queue: one FIFO (by `seq`) for imports and builds, with the worker leases of
//! `crate::store::jobs`. Several writers take, cancel and end jobs at once on PostgreSQL, so:
//! a job is taken by an update conditional on it still being pending (a taker that loses the
//! race tries the next match), so no job is taken twice; a cancel locks the job's row while it
//! decides, and writes only if the job is still in the state it decided on; every write a
//! worker makes is conditional on `worker_id = <it> AND completed_at IS NULL`, and every write
//! for a job nobody runs is conditional on the fact that made it stale (`job_end.rs`), so a
//! write decided from an older read never lands on a job that moved on.

use super::job_end::{Holder, JobEnd, complete_build_in, end_in, insert_resources};
use super::job_rows::{JOB_COLUMNS, NewJob, job_from_row};
use super::logs::{RENEW_LEASE, lease};
use super::{Conn, Db, Stmt, Value, params};
use crate::domain::jobs::cancel_decision;
use crate::domain::provisioner_tags::{from_json, matches};
use crate::domain::{CancelAction, CancelRefusal};
use crate::events::Topic;
use crate::model::{JobStatus, Time, WorkspaceResource, new_id};
use crate::store::{
    BuildCompletion, ImportOutcome, JOB_DRY_RUN, JobRow, JobStore, LeaseState, LogBatch, NewDryRun,
    Stale, StoreError, StoreResult,
};

/// A job waiting for a worker: not started, not ended, not canceled.
const PENDING: &str = "started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL";

/// Whether any job waits (read from the pending index, however long the queue).
pub const ANY_PENDING: &str = "SELECT EXISTS (SELECT 1 FROM provisioner_jobs \
     WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL)";

/// Every pending job's `seq`, oldest first.
pub const PENDING_SEQS: &str = "SELECT seq FROM provisioner_jobs \
     WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL ORDER BY seq";

pub static JOB_BY_ID: Stmt =
    Stmt::new(|_| format!("SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.id = ?1"));

/// The job a cancel decides on, locked until it is written.
static JOB_TO_CANCEL: Stmt = Stmt::new(|d| {
    format!(
        "SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.id = ?1{}",
        (d.for_update)("")
    )
});

/// The smallest tag set (JSON text) of a pending job after `?1`: walking the pending jobs'
/// distinct tag sets one index probe each (the pending-tags index), however many jobs share one.
pub const NEXT_PENDING_TAGS: &str = "SELECT tags FROM provisioner_jobs \
     WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL AND tags > ?1 \
     ORDER BY tags LIMIT 1";

/// The oldest pending job whose tags are `?1` (its key, as `Dialect::take_key` names it, and
/// its place in the queue).
pub static OLDEST_WITH_TAGS: Stmt = Stmt::new(|d| {
    format!(
        "SELECT {}, seq FROM provisioner_jobs WHERE {PENDING} AND tags = ?1 ORDER BY seq LIMIT 1",
        d.take_key
    )
});

/// Takes the chosen job (`?3`: its key) for worker `?2` at time `?1` if it is still pending:
/// on PostgreSQL a row another taker is updating makes this one wait for it and re-check
/// (READ COMMITTED), so no job is taken twice.
pub static TAKE_JOB: Stmt = Stmt::new(|d| {
    format!(
        "UPDATE provisioner_jobs SET started_at = ?1, updated_at = ?1, worker_id = ?2 \
         WHERE {} = ?3 AND {PENDING} \
         RETURNING {}",
        d.take_key,
        JOB_COLUMNS.replace("j.", "")
    )
});

/// Running jobs (started, not completed) that `filter` (over `?1`) picks.
fn running(filter: &str) -> String {
    format!(
        "SELECT {JOB_COLUMNS} FROM provisioner_jobs j \
         WHERE j.started_at IS NOT NULL AND j.completed_at IS NULL AND {filter}"
    )
}

static STALE: Stmt = Stmt::new(|_| running("j.updated_at < ?1"));
static OF_SERVER: Stmt = Stmt::new(|_| {
    running("j.worker_id IN (SELECT id FROM provisioner_daemons WHERE server_id = ?1)")
});
static QUEUED_BEFORE: Stmt = Stmt::new(|_| {
    format!(
        "SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.{} AND j.created_at < ?1",
        PENDING.replace(" AND ", " AND j.")
    )
});

/// A cancel's write: only if the job is still in the state the decision was made on.
fn cancel(set: &str, was: &str) -> String {
    format!(
        "UPDATE provisioner_jobs SET {set} WHERE id = ?1 AND {was} \
         AND completed_at IS NULL AND canceled_at IS NULL AND error = ''"
    )
}

static CANCEL_PENDING: Stmt = Stmt::new(|_| {
    cancel(
        "canceled_at = ?2, completed_at = ?2, updated_at = ?2",
        "started_at IS NULL",
    )
});
static STOP_RUNNING: Stmt = Stmt::new(|_| {
    cancel(
        "canceled_at = ?2, updated_at = ?2",
        "started_at IS NOT NULL",
    )
});

const DAEMON_BY_NAME: &str =
    "SELECT id FROM provisioner_daemons WHERE server_id = ?1 AND name = ?2";

const REGISTER_WORKER: &str = "INSERT INTO provisioner_daemons \
     (id, server_id, name, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4) \
     ON CONFLICT (server_id, name) DO UPDATE SET last_seen_at = excluded.last_seen_at \
     RETURNING id";

/// Takes, for `worker_id`, the oldest pending job whose tags it matches
/// (`domain::provisioner_tags`), however many jobs it cannot take stand ahead, in the caller's
/// transaction. The pending jobs' distinct tag sets are few (a template version's tags, a
/// user's scope) and read from an index, a probe each; the oldest job of each set the worker
/// matches is a probe more; the oldest of those is taken. The update repeats the pending test,
/// so a job another worker took, or a cancel completed, after it was read is not taken: the
/// next candidate is tried, then the sets are read again.
pub fn take_in(c: &mut dyn Conn, worker_id: &str) -> StoreResult<Option<JobRow>> {
    let worker_tags = c
        .query_opt(
            "SELECT tags FROM provisioner_daemons WHERE id = ?1",
            params![worker_id],
            |r| Ok(from_json(r.str(0)?)),
        )?
        .unwrap_or_default();
    for _ in 0..TAKE_ROUNDS {
        let mut candidates = Vec::new();
        let mut after = String::new();
        while let Some(tags) = c.query_opt(NEXT_PENDING_TAGS, params![after], |r| {
            r.str(0).map(String::from)
        })? {
            if matches(&worker_tags, &from_json(&tags)) {
                let oldest = c.query_opt(&OLDEST_WITH_TAGS, params![tags], |r| {
                    Ok((r.get::<i64>(1)?, r.owned(0)?))
                })?;
                candidates.extend(oldest);
            }
            after = tags;
        }
        if candidates.is_empty() {
            return Ok(None);
        }
        candidates.sort_by_key(|(seq, _)| *seq);
        for (_, key) in &candidates {
            let job = c.query_opt(&TAKE_JOB, params![Time::now(), worker_id, key], |r| {
                job_from_row(r, 0)
            })?;
            if job.is_some() {
                return Ok(job);
            }
        }
    }
    Ok(None)
}

/// How many times a taker reads the candidates again after losing each to other takers.
const TAKE_ROUNDS: usize = 4;

/// Ends job `job_id` in one transaction (`end_in`); followers and the overview are told, and
/// the queue when `queued_a_job` says the end queued one. `None` when the job was not (or no
/// longer) the holder's.
fn end_job<T>(
    db: &impl Db,
    job_id: &str,
    end: JobEnd,
    mut then: impl FnMut(&mut dyn Conn, bool, Time) -> StoreResult<T>,
    mut queued_a_job: impl FnMut(&T) -> bool,
) -> StoreResult<Option<T>> {
    db.write(
        |c| end_in(c, job_id, &end, db.log_cap().get(), &mut then),
        |out| match out {
            Some(t) if queued_a_job(t) => {
                vec![Topic::Logs(job_id.into()), Topic::Overview, Topic::Queue]
            }
            Some(_) => vec![Topic::Logs(job_id.into()), Topic::Overview],
            None => vec![],
        },
    )
}

/// The topics a `complete_build` (and its take) tells: followers and the overview when the
/// build ended, the queue when its end queued a follow-up, the overview when a job was taken.
pub fn completion_topics(job_id: &str, ended: Option<(JobStatus, bool)>, took: bool) -> Vec<Topic> {
    let mut topics = match ended {
        Some(_) => vec![Topic::Logs(job_id.into()), Topic::Overview],
        None if took => vec![Topic::Overview],
        None => vec![],
    };
    if let Some((_, true)) = ended {
        topics.push(Topic::Queue);
    }
    topics
}

fn jobs(db: &impl Db, sql: &Stmt, param: Value) -> StoreResult<Vec<JobRow>> {
    db.read(|c| c.query(sql, &[param], |r| job_from_row(r, 0)))
}

/// A worker's end of its job: see `end_in`.
fn worker_end<'a>(worker_id: &'a str, error: &'a str, logs: &'a LogBatch) -> JobEnd<'a> {
    JobEnd {
        holder: Holder::Worker(worker_id),
        error,
        cancel_wins: true,
        logs,
    }
}

impl<D: Db> JobStore for D {
    fn job(&self, id: &str) -> StoreResult<Option<JobRow>> {
        self.read(|c| c.query_opt(&JOB_BY_ID, params![id], |r| job_from_row(r, 0)))
    }

    fn register_workers(&self, server_id: &str, count: usize) -> StoreResult<Vec<String>> {
        let names: Vec<String> = (0..count).map(|n| format!("built-in-{n}")).collect();
        if self.one_server() {
            // A restart finds its workers registered: a read, no commit at start-up. (Where
            // other servers list them, the write marks them seen.)
            let known: Vec<Option<String>> = self.read(|c| {
                names
                    .iter()
                    .map(|name| c.query_opt(DAEMON_BY_NAME, params![server_id, name], |r| r.get(0)))
                    .collect()
            })?;
            if let Some(ids) = known.into_iter().collect::<Option<Vec<String>>>() {
                return Ok(ids);
            }
        }
        self.write(
            |c| {
                let now = Time::now();
                names
                    .iter()
                    .map(|name| {
                        c.query_one(
                            REGISTER_WORKER,
                            params![new_id(), server_id, name, now],
                            |r| r.get(0),
                        )
                    })
                    .collect()
            },
            |_| vec![],
        )
    }

    fn take_next_job(&self, worker_id: &str) -> StoreResult<Option<JobRow>> {
        // Idle workers look often: an empty queue costs a read, not a write.
        let any: bool = self.read(|c| c.query_one(ANY_PENDING, &[], |r| r.get(0)))?;
        if !any {
            return Ok(None);
        }
        self.write(
            |c| take_in(c, worker_id),
            |job| match job {
                Some(_) => vec![Topic::Overview],
                None => vec![],
            },
        )
    }

    fn wait_for_job(&self, worker_id: &str) {
        self.wait_for_hand_off(worker_id);
    }

    fn end_wait_for_job(&self, worker_id: &str) -> Option<JobRow> {
        self.end_wait_for_hand_off(worker_id)
    }

    fn pending_job_count(&self) -> StoreResult<i64> {
        self.read(|c| c.query_one(c.dialect().pending_count, &[], |r| r.get(0)))
    }

    fn daemon_count(&self) -> StoreResult<i64> {
        self.read(|c| {
            c.query_one("SELECT count(*) FROM provisioner_daemons", &[], |r| {
                r.get(0)
            })
        })
    }

    fn queue_position(&self, job: &JobRow) -> StoreResult<(i64, i64)> {
        if job.status() != JobStatus::Pending {
            return Ok((0, 0));
        }
        self.read(|c| {
            c.query_one(c.dialect().queue_position, params![job.seq], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
    }

    fn pending_seqs(&self) -> StoreResult<Vec<i64>> {
        self.read(|c| c.query(PENDING_SEQS, &[], |r| r.get(0)))
    }

    fn release_job(&self, job_id: &str, worker_id: &str) -> StoreResult<()> {
        self.write(
            |c| {
                c.execute(
                    "UPDATE provisioner_jobs SET started_at = NULL, worker_id = NULL \
                     WHERE id = ?1 AND worker_id = ?2 AND completed_at IS NULL \
                     AND canceled_at IS NULL",
                    params![job_id, worker_id],
                )
            },
            |released| match released {
                0 => vec![],
                _ => vec![Topic::Queue, Topic::Overview],
            },
        )?;
        Ok(())
    }

    fn heartbeat(&self, job_id: &str, worker_id: &str, renew: bool) -> StoreResult<LeaseState> {
        let canceled = if renew {
            self.write(
                |c| {
                    c.query_opt(RENEW_LEASE, params![job_id, worker_id, Time::now()], |r| {
                        r.get(0)
                    })
                },
                |_| vec![],
            )?
        } else {
            self.read(|c| {
                c.query_opt(
                    "SELECT canceled_at IS NOT NULL FROM provisioner_jobs \
                     WHERE id = ?1 AND worker_id = ?2 AND completed_at IS NULL",
                    params![job_id, worker_id],
                    |r| r.get(0),
                )
            })?
        };
        Ok(lease(canceled))
    }

    fn cancel_job(
        &self,
        job_id: &str,
        expect: Option<JobStatus>,
    ) -> StoreResult<Result<CancelAction, CancelRefusal>> {
        // Decide from the job as read (locked on PostgreSQL), then write only if the job is
        // still in the state the decision was made on; if it moved on (a worker took it, it
        // completed), decide again.
        self.write(
            |c| loop {
                let job = c
                    .query_opt(&JOB_TO_CANCEL, params![job_id], |r| job_from_row(r, 0))?
                    .ok_or(StoreError::NotFound)?;
                let action = match cancel_decision(job.status(), expect) {
                    Ok(a) => a,
                    Err(refusal) => return Ok(Err(refusal)),
                };
                let sql = match action {
                    CancelAction::CancelPending => &CANCEL_PENDING,
                    CancelAction::StopRunning => &STOP_RUNNING,
                };
                if c.execute(sql, params![job_id, Time::now()])? == 1 {
                    return Ok(Ok(action));
                }
            },
            |outcome| match outcome {
                Ok(CancelAction::CancelPending) => {
                    vec![Topic::Logs(job_id.into()), Topic::Overview]
                }
                Ok(CancelAction::StopRunning) => vec![
                    Topic::Cancel(job_id.into()),
                    Topic::Logs(job_id.into()),
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
        let import_end = |c: &mut dyn Conn, _: bool, now: Time| {
            if let Some((manifest, readme)) = manifest {
                c.execute(
                    "UPDATE template_versions SET manifest = ?2, readme = ?3, updated_at = ?4 \
                     WHERE job_id = ?1",
                    params![job_id, manifest, readme, now],
                )?;
            }
            Ok(())
        };
        let end = worker_end(worker_id, error, logs);
        Ok(end_job(self, job_id, end, import_end, |_| false)?.is_some())
    }

    fn insert_dry_run(&self, job: &NewDryRun) -> StoreResult<()> {
        self.write(
            |c| {
                super::job_rows::insert_job(
                    c,
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
        resources: &[WorkspaceResource],
        logs: &LogBatch,
    ) -> StoreResult<bool> {
        let plan = |c: &mut dyn Conn, canceled: bool, _: Time| match canceled {
            true => Ok(()),
            false => insert_resources(c, job_id, resources),
        };
        let end = worker_end(worker_id, "", logs);
        Ok(end_job(self, job_id, end, plan, |_| false)?.is_some())
    }

    fn complete_build(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<Option<JobStatus>> {
        let ended = self.write(
            |c| complete_build_in(c, job_id, worker_id, done, logs, self.log_cap().get()),
            |ended| completion_topics(job_id, *ended, false),
        )?;
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
        let end = worker_end(worker_id, error, logs);
        Ok(end_job(self, job_id, end, |_, _, _| Ok(()), |_| false)?.is_some())
    }

    fn stale_jobs(&self, before: Time) -> StoreResult<Vec<JobRow>> {
        jobs(self, &STALE, Value::Int(before.0))
    }

    fn pending_jobs_queued_before(&self, before: Time) -> StoreResult<Vec<JobRow>> {
        jobs(self, &QUEUED_BEFORE, Value::Int(before.0))
    }

    fn jobs_of_server(&self, server_id: &str) -> StoreResult<Vec<JobRow>> {
        jobs(self, &OF_SERVER, Value::Text(server_id))
    }

    fn abandon_job(&self, job_id: &str, stale: Stale, error: &str) -> StoreResult<bool> {
        let end = JobEnd {
            holder: Holder::Stale(stale),
            error,
            cancel_wins: true,
            logs: &LogBatch::default(),
        };
        Ok(end_job(self, job_id, end, |_, _, _| Ok(()), |_| false)?.is_some())
    }
}
