//! Job logs: appended in batches by the worker holding the job, read by id ranges.

use super::{SqliteStore, Tx};
use crate::events::Topic;
use crate::model::Time;
use crate::store::{LeaseState, LogBatch, LogRow, LogStore, StoreResult};
use rusqlite::params;

pub(super) fn insert_log(
    tx: &Tx,
    job_id: &str,
    at: Time,
    source: &str,
    level: &str,
    stage: &str,
    output: &str,
) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO provisioner_job_logs (job_id, created_at, source, level, stage, output) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![job_id, at, source, level, stage, output])?;
    Ok(())
}

/// Appends a batch's lines and the job's log accounting inside the caller's transaction, for
/// a job the caller has checked is still held.
pub(super) fn append_lines(tx: &Tx, job_id: &str, batch: &LogBatch) -> StoreResult<()> {
    if batch.lines.is_empty() {
        return Ok(());
    }
    for l in &batch.lines {
        insert_log(
            tx,
            job_id,
            l.created_at,
            l.source,
            &l.level,
            &l.stage,
            &l.output,
        )?;
    }
    tx.prepare_cached(
        "UPDATE provisioner_jobs SET logs_length = ?2, logs_overflowed = ?3 WHERE id = ?1",
    )?
    .execute(params![job_id, batch.length, batch.overflowed])?;
    Ok(())
}

/// A job's lines after id `?2` and before `?3`, at most `?4`.
pub(super) const LOGS_AFTER: &str = "SELECT id, created_at, source, level, stage, output \
     FROM provisioner_job_logs WHERE job_id = ?1 AND id > ?2 AND id < ?3 ORDER BY id LIMIT ?4";

impl LogStore for SqliteStore {
    fn append_logs(
        &self,
        job_id: &str,
        worker_id: &str,
        batch: &LogBatch,
    ) -> StoreResult<LeaseState> {
        let lease = self.write(|tx| {
            // The heartbeat moves only while the worker holds the job; otherwise nothing is
            // written.
            let canceled: Option<bool> = super::dialect::optional(
                tx.prepare_cached(
                    "UPDATE provisioner_jobs SET updated_at = ?3 \
                     WHERE id = ?1 AND worker_id = ?2 AND completed_at IS NULL \
                     RETURNING canceled_at IS NOT NULL",
                )?
                .query_row(params![job_id, worker_id, Time::now()], |r| r.get(0)),
            )?;
            let lease = match canceled {
                None => return Ok(LeaseState::Lost),
                Some(true) => LeaseState::CancelRequested,
                Some(false) => LeaseState::Held,
            };
            append_lines(tx, job_id, batch)?;
            Ok(lease)
        })?;
        if lease != LeaseState::Lost {
            self.publish(&[Topic::Logs(job_id.into())]);
        }
        Ok(lease)
    }

    fn logs(
        &self,
        job_id: &str,
        after: i64,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<LogRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(LOGS_AFTER)?;
        let rows = stmt.query_map(
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
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn release_memory(&self) {
        self.release_page_caches();
    }
}
