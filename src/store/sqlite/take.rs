//! The end of a worker's build and the take of its next job in the same commit
//! (`complete_build_and_take`: one fsync where there were two, for a worker that goes from one
//! job to the next).

use super::SqliteStore;
use super::conn::Lite;
use super::dialect::exec;
use crate::model::JobStatus;
use crate::store::sql::job_end::complete_build_in;
use crate::store::sql::jobs::{completion_topics, take_in};
use crate::store::{BuildCompletion, JobRow, LogBatch, StoreResult};

impl SqliteStore {
    /// `complete_build`, and in the same transaction (so the same commit) the take of the
    /// worker's next job. The take runs in a savepoint of its own: when it fails, the
    /// completion is kept and no job is taken.
    pub(super) fn complete_and_take_in_one_commit(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<(Option<JobStatus>, Option<JobRow>)> {
        let cap = self.log_cap.get();
        let (ended, next) = self.writer.write(|tx| {
            let ended = complete_build_in(&mut Lite(tx), job_id, worker_id, done, logs, cap)?;
            exec(tx, "SAVEPOINT take", [])?;
            let next = match take_in(&mut Lite(tx), worker_id) {
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
        self.publish(&completion_topics(job_id, ended, next.is_some()));
        Ok((ended.map(|(status, _)| status), next))
    }
}
