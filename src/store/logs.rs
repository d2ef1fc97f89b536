//! Job logs: appended in batches by the workers, read by id ranges.

use super::{Store, StoreResult};
use crate::model::Time;
use rusqlite::params;

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

pub fn insert_log_tx(
    tx: &super::Tx,
    job_id: &str,
    at: Time,
    source: &str,
    level: &str,
    stage: &str,
    output: &str,
) -> StoreResult<i64> {
    tx.prepare_cached(
        "INSERT INTO provisioner_job_logs (job_id, created_at, source, level, stage, output) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![job_id, at, source, level, stage, output])?;
    Ok(tx.last_insert_rowid())
}

/// Lines to append to a job's log, with the job's log accounting after them.
#[derive(Debug, Default)]
pub struct LogBatch {
    pub lines: Vec<NewLog>,
    /// Bytes of output stored for the job so far, these lines included.
    pub length: i64,
    pub overflowed: bool,
}

/// Appends a batch inside the caller's transaction, moving the job's heartbeat with it.
/// Returns the id of the last line written (0 when none).
pub fn append_logs_tx(tx: &super::Tx, job_id: &str, batch: &LogBatch) -> StoreResult<i64> {
    let mut last = 0;
    for l in &batch.lines {
        last = insert_log_tx(
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
        "UPDATE provisioner_jobs SET updated_at = ?2, logs_length = ?3, logs_overflowed = ?4 WHERE id = ?1",
    )?
    .execute(params![job_id, Time::now(), batch.length, batch.overflowed])?;
    Ok(last)
}

impl Store {
    /// Appends a batch of lines in one transaction.
    pub fn append_logs(&self, job_id: &str, batch: &LogBatch) -> StoreResult<i64> {
        self.write(|tx| append_logs_tx(tx, job_id, batch))
    }

    /// Logs of a job with `after < id < before`, in id order, at most `limit`.
    pub fn logs(
        &self,
        job_id: &str,
        after: i64,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<LogRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, created_at, source, level, stage, output FROM provisioner_job_logs \
             WHERE job_id = ?1 AND id > ?2 AND id < ?3 ORDER BY id LIMIT ?4",
        )?;
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
}
