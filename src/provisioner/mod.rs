//! The provisioner: a pool of worker threads over the queue seam (`queue.rs`), the step
//! runner, and what a job produces.
//!
//! Each worker takes the oldest pending job (`JobQueue::acquire`, woken at once when one is
//! queued), runs it, and reports its end through the queue; it never sees the store. While a
//! job runs, its log writer keeps the lease and obeys it (a cancel, or a job given up as hung,
//! stops the work); on shutdown the engine stops what still runs after the grace period.

pub mod archive;
mod build_job;
mod checked_log;
pub mod control;
pub mod dry_run_job;
pub mod import_job;
pub mod logwriter;
#[cfg(test)]
mod outage_tests;
pub mod outcome;
pub mod plan;
pub mod procs;
pub mod queue;
pub mod remote;
pub mod render;
pub mod runner;
pub mod step_user;
pub mod sweeper;
pub mod timings;

use crate::store::{JOB_BUILD, LeaseState, LogBatch, StoreError};
use control::{JobControl, StopReason};
use queue::{Acquired, JobQueue, Work};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use build_job::workspace_dir;

/// How long an idle worker waits in `acquire` before it looks at the engine again.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// At shutdown, how long a job's end is tried while the database cannot be reached; then
/// the next start ends the job.
const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(5);
/// How often a job's failure is tried again while the disk is full.
const FAIL_RETRY: Duration = Duration::from_millis(200);

pub struct EngineConfig {
    /// One worker thread per id (registered with the store by the caller).
    pub worker_ids: Vec<String>,
    /// Where jobs unpack templates and workspaces keep their folders.
    pub data_dir: PathBuf,
    /// A job's lease is renewed well within this.
    pub hung_timeout: Duration,
    /// Who `run` steps run as (`--step-user`); kiln's own user when `None`.
    pub step_user: Option<step_user::StepUser>,
}

pub struct Engine {
    queue: Arc<dyn JobQueue>,
    config: EngineConfig,
    running: Mutex<HashMap<String, Arc<JobControl>>>,
    busy: AtomicUsize,
    stopping: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    /// Starts the workers.
    pub fn start(queue: Arc<dyn JobQueue>, config: EngineConfig) -> Arc<Engine> {
        let stopping = Arc::new(AtomicBool::new(false));
        let engine = Arc::new(Engine {
            queue,
            config,
            running: Mutex::new(HashMap::new()),
            busy: AtomicUsize::new(0),
            stopping,
            threads: Mutex::new(Vec::new()),
        });
        let mut threads = engine.threads.lock().unwrap();
        for (n, worker_id) in engine.config.worker_ids.iter().enumerate() {
            let e = engine.clone();
            let worker_id = worker_id.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("kiln-worker-{n}"))
                    .spawn(move || e.worker_loop(&worker_id))
                    .expect("spawn worker"),
            );
        }
        drop(threads);
        engine
    }

    /// Shutdown has begun: no new jobs start.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub fn workers_total(&self) -> usize {
        self.config.worker_ids.len()
    }

    /// The ids of this engine's workers.
    pub fn worker_ids(&self) -> &[String] {
        &self.config.worker_ids
    }

    pub fn workers_busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    fn worker_loop(self: Arc<Self>, worker_id: &str) {
        // The job taken with the end of the previous one, if any.
        let mut next: Option<Acquired> = None;
        // Since when taking a job has met an unreachable database.
        let mut unreachable_since: Option<Instant> = None;
        while !self.is_stopping() {
            let taken = match next.take() {
                Some(job) => Ok(Some(job)),
                None => self.queue.acquire(worker_id, IDLE_WAIT),
            };
            if taken.is_ok()
                && let Some(since) = unreachable_since.take()
            {
                log::info!(
                    "worker {worker_id}: the database is reachable again after {:?}; taking jobs",
                    since.elapsed()
                );
            }
            match taken {
                Ok(Some(job)) => {
                    if self.is_stopping() {
                        // Shutdown began while this job was being taken: leave it queued
                        // for the next start.
                        let _ = self.queue.release(&job.job.id, worker_id);
                        return;
                    }
                    next = self.run_job(worker_id, job);
                }
                Ok(None) => {}
                Err(e) if e.is_transient() => {
                    if unreachable_since.is_none() {
                        log::warn!("worker {worker_id}: {e}; taking no job until it can be");
                        unreachable_since = Some(Instant::now());
                    }
                    std::thread::sleep(IDLE_WAIT);
                }
                Err(e) => {
                    log::error!("taking a job: {e}");
                    std::thread::sleep(IDLE_WAIT);
                }
            }
        }
        if let Some(job) = next {
            let _ = self.queue.release(&job.job.id, worker_id);
        }
    }

    /// Runs a job; returns the next one when the worker took it with this one's end.
    fn run_job(&self, worker_id: &str, acquired: Acquired) -> Option<Acquired> {
        let job = acquired.job;
        let build_facts = match &acquired.work {
            Work::Build(w) => Some((
                w.build.transition.as_str(),
                w.build.reason.clone(),
                w.build.workspace_owner_name.clone(),
                w.build.workspace_name.clone(),
                w.build.template_name.clone(),
                w.build.template_version_name.clone(),
            )),
            _ => None,
        };
        let (transition, reason) = build_facts
            .as_ref()
            .map_or(("", ""), |b| (b.0, b.1.as_str()));
        let facts = crate::metrics::JobFacts {
            job_type: &job.kind,
            provisioner: &acquired.provisioner,
            transition,
            build_reason: reason,
        };
        let waited_micros = job
            .started_at
            .unwrap_or_else(crate::model::Time::now)
            .micros()
            - job.created_at.micros();
        let metrics = crate::metrics::global();
        metrics.job_acquired(&facts, Duration::from_micros(waited_micros.max(0) as u64));
        // A job's end waits for an unreachable database to return (`outcome.rs`).
        let outcome = Arc::new(outcome::Outcome::new(
            self.queue.clone(),
            self.stopping.clone(),
            SHUTDOWN_PATIENCE,
        ));
        let queue: Arc<dyn JobQueue> = outcome.clone();
        self.busy.fetch_add(1, Ordering::SeqCst);
        let control = Arc::new(JobControl::new(queue.watch_cancel(&job.id)));
        self.running
            .lock()
            .unwrap()
            .insert(job.id.clone(), control.clone());
        // A cancel may have landed between taking the job and watching for it.
        if job.kind == JOB_BUILD {
            match queue.heartbeat(&job.id, worker_id, false) {
                Ok(LeaseState::CancelRequested) => control.stop(StopReason::Cancel),
                Ok(LeaseState::Lost) => control.stop(StopReason::Abandoned),
                Ok(LeaseState::Held) | Err(_) => {}
            }
        }
        let started = Instant::now();
        let log = logwriter::LogWriter::new(
            queue.clone(),
            control.clone(),
            &job,
            worker_id,
            self.config.hung_timeout,
        );
        let result = match acquired.work {
            Work::Build(work) => build_job::run(
                &self.config.data_dir,
                self.config.step_user.as_ref(),
                &*queue,
                &job,
                worker_id,
                *work,
                log,
                &control,
                !self.is_stopping(),
            ),
            Work::DryRun(work) => {
                dry_run_job::run(&*queue, &job, worker_id, &work, log).map(|()| None)
            }
            Work::Import { archive } => {
                import_job::run(&*queue, &job, worker_id, &archive, log).map(|()| None)
            }
            Work::Broken(error) => queue
                .fail(&job.id, worker_id, &error, &LogBatch::default())
                .map(|()| None),
        };
        let next = result.unwrap_or_else(|e| {
            log::error!("job {} failed in the store: {e}", job.id);
            self.fail_once_stored(&*outcome, &job.id, worker_id, &e);
            None
        });
        self.running.lock().unwrap().remove(&job.id);
        self.busy.fetch_sub(1, Ordering::SeqCst);
        let status = outcome.status();
        metrics.job_ended(&facts, status, started.elapsed());
        if let Some((transition, _, owner, name, template, version)) = &build_facts {
            let build = crate::metrics::BuildFacts {
                workspace_owner: owner,
                workspace_name: name,
                template_name: template,
                template_version: version,
                transition,
            };
            metrics.build_ended(&build, status, started.elapsed());
        }
        log::debug!(
            "job {} ({}) done in {:?}",
            job.id,
            job.kind,
            started.elapsed()
        );
        next
    }

    /// Fails a job whose work the store refused, with an error that names why. While the disk
    /// is full, the failure is tried again until it is stored, or until shutdown or the hung
    /// timeout (then the next start or the sweeper ends the job); while the database cannot
    /// be reached, `queue` (the job's `Outcome`) tries it again itself.
    fn fail_once_stored(
        &self,
        queue: &dyn JobQueue,
        job_id: &str,
        worker_id: &str,
        cause: &StoreError,
    ) {
        let error = match cause {
            StoreError::DiskFull(_) => {
                format!("{cause}: kiln could not store this job's progress, so it was stopped")
            }
            e => format!("internal error: {e}"),
        };
        let deadline = Instant::now() + self.config.hung_timeout;
        loop {
            match queue.fail(job_id, worker_id, &error, &LogBatch::default()) {
                Ok(()) => return,
                Err(StoreError::DiskFull(_))
                    if !self.is_stopping() && Instant::now() < deadline =>
                {
                    std::thread::sleep(FAIL_RETRY);
                }
                Err(e) => {
                    log::error!("job {job_id}: its failure could not be stored: {e}");
                    return;
                }
            }
        }
    }

    /// Stops taking jobs, lets running ones finish for `grace`, then stops the rest and waits
    /// for the workers: nothing is left `running`.
    pub fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        self.queue.wake_idle();
        let deadline = Instant::now() + grace;
        while self.workers_busy() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let running: Vec<_> = self.running.lock().unwrap().values().cloned().collect();
        if !running.is_empty() {
            log::warn!(
                "canceling {} job(s) still running after the grace period",
                running.len()
            );
        }
        for c in running {
            c.stop(StopReason::Shutdown);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap());
        for t in threads {
            let _ = t.join();
        }
    }
}
