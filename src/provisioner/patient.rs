//! Patience with the store: a `JobQueue` that passes every call through, except that a job's
//! end (completed or failed) that met an unreachable database (`StoreError::Unreachable`:
//! nothing was stored) is tried again until it is stored. A job is never failed because its
//! database connection went away; its end is written when the database returns. At
//! shutdown the end is tried for a few seconds more at most, then left for the next start's
//! recovery (or another server's sweeper), which fails the job once.
//!
//! The lease and the log lines in between are the log writer's (`logwriter.rs`), which keeps
//! lines that could not be written and tries them again.

use super::queue::{Acquired, JobQueue};
use crate::events::Subscription;
use crate::model::{JobStatus, WorkspaceResource};
use crate::store::{BuildCompletion, ImportOutcome, LeaseState, LogBatch, StoreResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The pause between two tries of a job's end: growing from the first to the last.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LAST_PAUSE: Duration = Duration::from_secs(5);

pub struct Patient {
    inner: Arc<dyn JobQueue>,
    /// The engine is shutting down: give up after `give_up_after`.
    stopping: Arc<AtomicBool>,
    give_up_after: Duration,
}

impl Patient {
    pub fn new(
        inner: Arc<dyn JobQueue>,
        stopping: Arc<AtomicBool>,
        give_up_after: Duration,
    ) -> Patient {
        Patient {
            inner,
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
}

impl JobQueue for Patient {
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
        })
    }

    fn complete_dry_run(
        &self,
        job_id: &str,
        worker_id: &str,
        resources: &[WorkspaceResource],
        logs: &LogBatch,
    ) -> StoreResult<()> {
        self.until_stored(job_id, || {
            self.inner
                .complete_dry_run(job_id, worker_id, resources, logs)
        })
    }

    fn complete_build(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<Option<JobStatus>> {
        self.until_stored(job_id, || {
            self.inner.complete_build(job_id, worker_id, done, logs)
        })
    }

    fn complete_build_and_take(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<(Option<JobStatus>, Option<Acquired>)> {
        self.until_stored(job_id, || {
            self.inner
                .complete_build_and_take(job_id, worker_id, done, logs)
        })
    }

    fn fail(&self, job_id: &str, worker_id: &str, error: &str, logs: &LogBatch) -> StoreResult<()> {
        self.until_stored(job_id, || self.inner.fail(job_id, worker_id, error, logs))
    }

    fn release(&self, job_id: &str, worker_id: &str) -> StoreResult<()> {
        self.inner.release(job_id, worker_id)
    }

    fn wake_idle(&self) {
        self.inner.wake_idle()
    }
}
