//! A job's end, as its worker reports it: a `JobQueue` that passes every call through and
//! remembers how the job ended, for the provisioner metrics (Coder's `success` / `failed`).
//!
//! It is also patient with the store: an end (completed or failed) that met an unreachable
//! database (`StoreError::Unreachable`: nothing was stored) is tried again until it is stored,
//! so a job is never failed because its database connection went away. At shutdown the end is
//! tried for `give_up_after` more at most, then left for the next start's recovery (or another
//! server's sweeper), which fails the job once. The lines and the lease in between are the log
//! writer's (`logwriter.rs`).

use super::queue::{Acquired, JobQueue};
use crate::events::Subscription;
use crate::model::JobStatus;
use crate::store::{BuildCompletion, ImportOutcome, LeaseState, LogBatch, StoreResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

const UNKNOWN: u8 = 0;
const SUCCEEDED: u8 = 1;
const FAILED: u8 = 2;

/// The pause between two tries of a job's end: growing from the first to the last.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LAST_PAUSE: Duration = Duration::from_secs(5);

pub struct Outcome {
    inner: Arc<dyn JobQueue>,
    ended: AtomicU8,
    /// The engine is shutting down: an end is given up after `give_up_after`.
    stopping: Arc<AtomicBool>,
    give_up_after: Duration,
}

impl Outcome {
    pub fn new(
        inner: Arc<dyn JobQueue>,
        stopping: Arc<AtomicBool>,
        give_up_after: Duration,
    ) -> Outcome {
        Outcome {
            inner,
            ended: AtomicU8::new(UNKNOWN),
            stopping,
            give_up_after,
        }
    }

    /// Runs `end` until it is stored, or fails for another reason than an unreachable
    /// database, or the engine stops and `give_up_after` has passed.
    fn until_stored<T>(
        &self,
        job_id: &str,
        mut end: impl FnMut() -> StoreResult<T>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let mut pause = FIRST_PAUSE;
        let mut tries = 0u32;
        loop {
            match end() {
                Err(e) if e.is_transient() => {
                    if tries == 0 {
                        log::warn!(
                            "job {job_id}: its end could not be stored ({e}); trying again until it is"
                        );
                    }
                    if self.stopping.load(Ordering::SeqCst)
                        && started.elapsed() >= self.give_up_after
                    {
                        log::error!(
                            "job {job_id}: giving up storing its end at shutdown; the next start ends it"
                        );
                        return Err(e);
                    }
                    tries += 1;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(LAST_PAUSE);
                }
                other => {
                    if tries > 0 && other.is_ok() {
                        log::info!("job {job_id}: its end was stored after {tries} retries");
                    }
                    return other;
                }
            }
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
        self.until_stored(job_id, || {
            self.inner.complete_import(job_id, worker_id, outcome, logs)
        })?;
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
        self.until_stored(job_id, || {
            self.inner
                .complete_dry_run(job_id, worker_id, resources, logs)
        })?;
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
        let status = self.until_stored(job_id, || {
            self.inner.complete_build(job_id, worker_id, done, logs)
        })?;
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
        let (status, next) = self.until_stored(job_id, || {
            self.inner
                .complete_build_and_take(job_id, worker_id, done, logs)
        })?;
        self.set(status == Some(JobStatus::Succeeded));
        Ok((status, next))
    }

    fn fail(&self, job_id: &str, worker_id: &str, error: &str, logs: &LogBatch) -> StoreResult<()> {
        let out = self.until_stored(job_id, || self.inner.fail(job_id, worker_id, error, logs));
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
