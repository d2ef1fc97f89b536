//! Job logs: appended in batches by the worker holding the job, read by id ranges. Log ids
//! grow with each line (SQLite's rowid, PostgreSQL's identity column); a job's lines are
//! written by the one worker holding it, one transaction after the other, so within a job ids
//! grow in commit order and a follower's "after this id" cursor never skips a line.

use super::{Conn, Db, Value, params};
use crate::events::Topic;
use crate::model::Time;
use crate::store::{LeaseState, LogBatch, LogRow, LogStore, StoreResult};

/// A job's lines after id `?2` and before `?3`, at most `?4`.
pub const LOGS_AFTER: &str = "SELECT id, created_at, source, level, stage, output \
     FROM provisioner_job_logs WHERE job_id = ?1 AND id > ?2 AND id < ?3 ORDER BY id LIMIT ?4";

/// Moves the heartbeat of job `?1` to `?3` while worker `?2` holds it: whether a cancel was
/// requested, no row when the worker lost the job.
pub const RENEW_LEASE: &str = "UPDATE provisioner_jobs SET updated_at = ?3 \
     WHERE id = ?1 AND worker_id = ?2 AND completed_at IS NULL \
     RETURNING canceled_at IS NOT NULL";

/// What a worker learns from the answer of `RENEW_LEASE` (or the same read): `None` when it
/// no longer holds the job, else whether a cancel was requested.
pub fn lease(canceled: Option<bool>) -> LeaseState {
    match canceled {
        None => LeaseState::Lost,
        Some(true) => LeaseState::CancelRequested,
        Some(false) => LeaseState::Held,
    }
}

/// Up to `?2` log lines of the builds whose job ended before `?1`, except each workspace's
/// latest build (along `provisioner_job_logs_job` and the builds' unique workspace and number).
const PURGE_BUILD_LOGS: &str = "DELETE FROM provisioner_job_logs WHERE id IN (\
     SELECT l.id FROM workspace_builds b \
     JOIN provisioner_jobs j ON j.id = b.job_id \
     JOIN provisioner_job_logs l ON l.job_id = b.job_id \
     WHERE j.completed_at < ?1 \
     AND b.build_number < (SELECT max(b2.build_number) FROM workspace_builds b2 \
     WHERE b2.workspace_id = b.workspace_id) \
     LIMIT ?2)";

const INSERT_LOG: &str = "INSERT INTO provisioner_job_logs \
     (job_id, created_at, source, level, stage, output) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

pub fn insert_log(
    c: &mut dyn Conn,
    job_id: &str,
    at: Time,
    source: &str,
    level: &str,
    stage: &str,
    output: &str,
) -> StoreResult<()> {
    c.execute(
        INSERT_LOG,
        params![job_id, at, source, level, stage, output],
    )?;
    Ok(())
}

/// Appends a batch's lines and the job's log accounting inside the caller's transaction, for a
/// job the caller has checked is still held.
pub fn append_lines(c: &mut dyn Conn, job_id: &str, batch: &LogBatch) -> StoreResult<()> {
    if batch.lines.is_empty() {
        return Ok(());
    }
    match c.dialect().insert_log_lines {
        // The lines in one statement, from one array per column (`?2`..`?6`).
        Some(sql) => {
            let times: Vec<i64> = batch.lines.iter().map(|l| l.created_at.0).collect();
            let sources: Vec<&str> = batch.lines.iter().map(|l| l.source).collect();
            let levels: Vec<&str> = batch.lines.iter().map(|l| l.level.as_str()).collect();
            let stages: Vec<&str> = batch.lines.iter().map(|l| l.stage.as_str()).collect();
            let outputs: Vec<&str> = batch.lines.iter().map(|l| l.output.as_str()).collect();
            c.execute(
                sql,
                params![
                    job_id,
                    Value::Ints(&times),
                    Value::Texts(&sources),
                    Value::Texts(&levels),
                    Value::Texts(&stages),
                    Value::Texts(&outputs),
                ],
            )?;
        }
        None => {
            for l in &batch.lines {
                insert_log(
                    c,
                    job_id,
                    l.created_at,
                    l.source,
                    &l.level,
                    &l.stage,
                    &l.output,
                )?;
            }
        }
    }
    c.execute(
        "UPDATE provisioner_jobs SET logs_length = ?2, logs_overflowed = ?3 WHERE id = ?1",
        params![job_id, batch.length, batch.overflowed],
    )?;
    Ok(())
}

impl<D: Db> LogStore for D {
    fn append_logs(
        &self,
        job_id: &str,
        worker_id: &str,
        batch: &LogBatch,
    ) -> StoreResult<LeaseState> {
        self.write(
            |c| {
                // The heartbeat moves only while the worker holds the job; otherwise nothing
                // is written.
                let canceled =
                    c.query_opt(RENEW_LEASE, params![job_id, worker_id, Time::now()], |r| {
                        r.get(0)
                    })?;
                let lease = lease(canceled);
                if lease != LeaseState::Lost {
                    append_lines(c, job_id, batch)?;
                }
                Ok(lease)
            },
            |lease| match lease {
                LeaseState::Lost => vec![],
                _ => vec![Topic::Logs(job_id.into())],
            },
        )
    }

    fn logs(
        &self,
        job_id: &str,
        after: i64,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<LogRow>> {
        self.read(|c| {
            c.query(
                LOGS_AFTER,
                params![job_id, after, before.unwrap_or(i64::MAX), limit],
                |r| {
                    Ok(LogRow {
                        id: r.get(0)?,
                        created_at: r.get(1)?,
                        source: r.get(2)?,
                        level: r.get(3)?,
                        stage: r.get(4)?,
                        output: r.get(5)?,
                    })
                },
            )
        })
    }

    fn release_memory(&self) {
        self.release_page_caches();
    }

    fn purge_build_logs(&self, ended_before: Time, limit: i64) -> StoreResult<u64> {
        self.write(
            |c| c.execute(PURGE_BUILD_LOGS, params![ended_before, limit]),
            |_| vec![],
        )
    }
}
