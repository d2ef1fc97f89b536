//! Taking a job in the open transaction, alone (`take_next_job`) or in the same commit as the
//! end of the worker's previous build (`complete_build_and_take`: one fsync where there were
//! two, for a worker that goes from one job to the next).

use super::dialect::{exec, optional};
use super::job_end::complete_build_in;
use super::job_rows::{JOB_COLUMNS, PENDING, job_from_row};
use super::{SqliteStore, Tx};
use crate::domain::provisioner_tags::{from_json, matches};
use crate::events::Topic;
use crate::model::{JobStatus, Time};
use crate::store::{BuildCompletion, JobRow, LogBatch, StoreResult, TAKE_WINDOW};

use rusqlite::params;

/// The oldest pending jobs, with their tags: a taker takes the first its tags match.
pub(super) fn take_candidates() -> String {
    format!(
        "SELECT seq, tags FROM provisioner_jobs WHERE {PENDING} ORDER BY seq LIMIT {TAKE_WINDOW}"
    )
}

/// Takes the chosen job (`?3`: its seq) for worker `?2` at time `?1` if it is still pending.
pub(super) fn take_job() -> String {
    format!(
        "UPDATE provisioner_jobs SET started_at = ?1, updated_at = ?1, worker_id = ?2 \
         WHERE seq = ?3 AND {PENDING} \
         RETURNING {}",
        JOB_COLUMNS.replace("j.", "")
    )
}

/// Takes, for `worker_id`, the first of the oldest pending jobs whose tags it matches
/// (`domain::provisioner_tags`); the update repeats the pending test, so a job another worker
/// took, or a cancel completed, after it was chosen is not taken (a backend with concurrent
/// writers tries the next one).
pub(super) fn take_in(tx: &Tx, worker_id: &str) -> StoreResult<Option<JobRow>> {
    let worker_tags = optional(
        tx.prepare_cached("SELECT tags FROM provisioner_daemons WHERE id = ?1")?
            .query_row([worker_id], |r| r.get::<_, String>(0)),
    )?
    .map(|t| from_json(&t))
    .unwrap_or_default();
    let seq: Option<i64> = {
        let mut stmt = tx.prepare_cached(&take_candidates())?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut found = None;
        for row in rows {
            let (seq, tags) = row?;
            if matches(&worker_tags, &from_json(&tags)) {
                found = Some(seq);
                break;
            }
        }
        found
    };
    let Some(seq) = seq else { return Ok(None) };
    let mut stmt = tx.prepare_cached(&take_job())?;
    optional(stmt.query_row(params![Time::now(), worker_id, seq], |r| job_from_row(r, 0)))
}

impl SqliteStore {
    /// `complete_build`, and in the same transaction (so the same commit) the take of the
    /// worker's next job. The take runs in a savepoint of its own: when it fails, the
    /// completion is kept and no job is taken.
    pub(super) fn complete_and_take(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<(Option<JobStatus>, Option<JobRow>)> {
        let (ended, next) = self.write(|tx| {
            let ended = complete_build_in(tx, job_id, worker_id, done, logs)?;
            exec(tx, "SAVEPOINT take", [])?;
            let next = match take_in(tx, worker_id) {
                Ok(next) => {
                    exec(tx, "RELEASE take", [])?;
                    next
                }
                Err(e) => {
                    log::warn!("taking the next job after {job_id}: {e}");
                    tx.execute_batch("ROLLBACK TO take; RELEASE take")?;
                    None
                }
            };
            Ok((ended, next))
        })?;
        if ended.is_some() {
            self.publish(&[Topic::Logs(job_id.into()), Topic::Overview]);
        } else if next.is_some() {
            self.publish(&[Topic::Overview]);
        }
        if let Some((_, true)) = ended {
            self.publish(&[Topic::Queue]);
        }
        Ok((ended.map(|(status, _)| status), next))
    }
}
