//! A job's outcome, as its worker reported it: a `JobQueue` that passes every call through and
//! remembers how the job ended, for the provisioner metrics (Coder's `success` / `failed`).

use super::queue::{Acquired, JobQueue};
use crate::events::Subscription;
use crate::model::JobStatus;
use crate::store::{BuildCompletion, ImportOutcome, LeaseState, LogBatch, StoreResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

const UNKNOWN: u8 = 0;
const SUCCEEDED: u8 = 1;
const FAILED: u8 = 2;

pub struct Outcome {
    inner: Arc<dyn JobQueue>,
    ended: AtomicU8,
}

impl Outcome {
    pub fn new(inner: Arc<dyn JobQueue>) -> Outcome {
        Outcome {
            inner,
            ended: AtomicU8::new(UNKNOWN),
        }
    }

    /// `success` when the job was reported succeeded; `failed` otherwise (failed, canceled, or
    /// never reported), as Coder's runner labels it.
    pub fn status(&self) -> &'static str {
        match self.ended.load(Ordering::Relaxed) {
            SUCCEEDED => "success",
            _ => "failed",
        }
    }

    fn set(&self, succeeded: bool) {
        let v = if succeeded { SUCCEEDED } else { FAILED };
        self.ended.store(v, Ordering::Relaxed);
    }
}

impl JobQueue for Outcome {
    fn acquire(&self, worker_id: &str, wait: Duration) -> StoreResult<Option<Acquired>> {
        self.inner.acquire(worker_id, wait)
    }

    fn watch_cancel(&self, job_id: &str) -> Subscription {
        self.inner.watch_cancel(job_id)
    }

    fn heartbeat(&self, job_id: &str, worker_id: &str, renew: bool) -> StoreResult<LeaseState> {
        self.inner.heartbeat(job_id, worker_id, renew)
    }

    fn append_logs(
        &self,
        job_id: &str,
        worker_id: &str,
        batch: &LogBatch,
    ) -> StoreResult<LeaseState> {
        self.inner.append_logs(job_id, worker_id, batch)
    }

    fn complete_import(
        &self,
        job_id: &str,
        worker_id: &str,
        outcome: &ImportOutcome,
        logs: &LogBatch,
    ) -> StoreResult<()> {
        self.inner
            .complete_import(job_id, worker_id, outcome, logs)?;
        self.set(matches!(outcome, ImportOutcome::Valid { .. }));
        Ok(())
    }

    fn complete_dry_run(
        &self,
        job_id: &str,
        worker_id: &str,
        resources: &[crate::model::WorkspaceResource],
        logs: &LogBatch,
    ) -> StoreResult<()> {
        self.inner
            .complete_dry_run(job_id, worker_id, resources, logs)?;
        self.set(true);
        Ok(())
    }

    fn complete_build(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<Option<JobStatus>> {
        let status = self.inner.complete_build(job_id, worker_id, done, logs)?;
        self.set(status == Some(JobStatus::Succeeded));
        Ok(status)
    }

    fn complete_build_and_take(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<(Option<JobStatus>, Option<Acquired>)> {
        let (status, next) = self
            .inner
            .complete_build_and_take(job_id, worker_id, done, logs)?;
        self.set(status == Some(JobStatus::Succeeded));
        Ok((status, next))
    }

    fn fail(&self, job_id: &str, worker_id: &str, error: &str, logs: &LogBatch) -> StoreResult<()> {
        let out = self.inner.fail(job_id, worker_id, error, logs);
        self.set(false);
        out
    }

    fn release(&self, job_id: &str, worker_id: &str) -> StoreResult<()> {
        self.inner.release(job_id, worker_id)
    }

    fn wake_idle(&self) {
        self.inner.wake_idle()
    }
}
