//! Job logs on PostgreSQL. Log ids come from an identity column; a job's lines are written by
//! the one worker holding it, one transaction after the other, so within a job ids grow in
//! commit order and a follower's "after this id" cursor never skips a line.

use super::PgStore;
use super::pool::Tx;
use crate::events::Topic;
use crate::model::Time;
use crate::store::{LeaseState, LogBatch, LogRow, LogStore, StoreResult};

pub(super) fn insert_log(
    tx: &mut Tx,
    job_id: &str,
    at: Time,
    source: &str,
    level: &str,
    stage: &str,
    output: &str,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO provisioner_job_logs (job_id, created_at, source, level, stage, output) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&job_id, &at, &source, &level, &stage, &output],
    )?;
    Ok(())
}

/// Appends a batch's lines and the job's log accounting inside the caller's transaction, for a
/// job the caller has checked is still held. The lines go in one statement.
pub(super) fn append_lines(tx: &mut Tx, job_id: &str, batch: &LogBatch) -> StoreResult<()> {
    if batch.lines.is_empty() {
        return Ok(());
    }
    let times: Vec<i64> = batch.lines.iter().map(|l| l.created_at.0).collect();
    let sources: Vec<&str> = batch.lines.iter().map(|l| l.source).collect();
    let levels: Vec<&str> = batch.lines.iter().map(|l| l.level.as_str()).collect();
    let stages: Vec<&str> = batch.lines.iter().map(|l| l.stage.as_str()).collect();
    let outputs: Vec<&str> = batch.lines.iter().map(|l| l.output.as_str()).collect();
    // unnest keeps the arrays' order, and the identity values follow it.
    tx.execute(
        "INSERT INTO provisioner_job_logs (job_id, created_at, source, level, stage, output) \
         SELECT $1, t, s, l, st, o FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) \
         WITH ORDINALITY AS x(t, s, l, st, o, n) ORDER BY n",
        &[&job_id, &times, &sources, &levels, &stages, &outputs],
    )?;
    tx.execute(
        "UPDATE provisioner_jobs SET logs_length = $2, logs_overflowed = $3 WHERE id = $1",
        &[&job_id, &batch.length, &batch.overflowed],
    )?;
    Ok(())
}

/// A job's lines after id `$2` and before `$3`, at most `$4`.
pub(super) const LOGS_AFTER: &str = "SELECT id, created_at, source, level, stage, output \
     FROM provisioner_job_logs WHERE job_id = $1 AND id > $2 AND id < $3 ORDER BY id LIMIT $4";

impl LogStore for PgStore {
    fn append_logs(
        &self,
        job_id: &str,
        worker_id: &str,
        batch: &LogBatch,
    ) -> StoreResult<LeaseState> {
        let job = job_id.to_string();
        self.write(
            |tx| {
                // The heartbeat moves only while the worker holds the job; otherwise nothing
                // is written.
                let row = tx.query_opt(
                    "UPDATE provisioner_jobs SET updated_at = $3 \
                     WHERE id = $1 AND worker_id = $2 AND completed_at IS NULL \
                     RETURNING canceled_at IS NOT NULL",
                    &[&job_id, &worker_id, &Time::now()],
                )?;
                let lease = match row.map(|r| r.get::<_, bool>(0)) {
                    None => return Ok(LeaseState::Lost),
                    Some(true) => LeaseState::CancelRequested,
                    Some(false) => LeaseState::Held,
                };
                append_lines(tx, job_id, batch)?;
                Ok(lease)
            },
            |lease| match lease {
                LeaseState::Lost => vec![],
                _ => vec![Topic::Logs(job.clone())],
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
        let rows = self.conn()?.query(
            LOGS_AFTER,
            &[&job_id, &after, &before.unwrap_or(i64::MAX), &limit],
        )?;
        Ok(rows
            .iter()
            .map(|r| LogRow {
                id: r.get(0),
                created_at: r.get(1),
                source: r.get(2),
                level: r.get(3),
                stage: r.get(4),
                output: r.get(5),
            })
            .collect())
    }
}
