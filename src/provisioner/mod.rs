//! The provisioner: the job queue over SQLite, a pool of worker threads, and the step runner.
//!
//! Workers take the oldest pending job with one atomic UPDATE (so no job is taken twice),
//! woken at once by `notify` when a job is queued (a 1 s poll is only the fallback). On start,
//! jobs a previous process left running are failed; a sweeper fails jobs that stop beating.

pub mod archive;
mod build_job;
pub mod control;
mod import_job;
pub mod logbus;
pub mod logwriter;
pub mod render;
pub mod runner;

use crate::Config;
use crate::store::{JOB_BUILD, JobRow, Store};
use control::{JobControl, StopReason};
use logbus::LogBus;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use build_job::workspace_dir;

pub const SERVER_STOPPED_ERROR: &str = "kiln stopped while this job was running (the server was killed or restarted); the job did not finish";

#[derive(Default)]
struct Queue {
    /// Bumped for every job queued; a worker that saw an older value looks again.
    generation: u64,
    stopping: bool,
}

pub struct Engine {
    pub store: Store,
    pub config: Config,
    pub bus: Arc<LogBus>,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Wakes the sweeper on shutdown (kept apart so `notify` always reaches a worker).
    sweeper_wake: Condvar,
    running: Mutex<HashMap<String, Arc<JobControl>>>,
    busy: AtomicUsize,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    /// Recovers what a previous process left, then starts the workers and the sweeper.
    pub fn start(store: Store, config: Config) -> Arc<Engine> {
        let engine = Arc::new(Engine {
            store,
            config,
            bus: Arc::new(LogBus::default()),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            sweeper_wake: Condvar::new(),
            running: Mutex::new(HashMap::new()),
            busy: AtomicUsize::new(0),
            threads: Mutex::new(Vec::new()),
        });
        engine.recover();
        let mut threads = engine.threads.lock().unwrap();
        for n in 0..engine.config.workers {
            let e = engine.clone();
            let worker_id = crate::api::new_id();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("kiln-worker-{n}"))
                    .spawn(move || e.worker_loop(&worker_id))
                    .expect("spawn worker"),
            );
        }
        let e = engine.clone();
        threads.push(
            std::thread::Builder::new()
                .name("kiln-sweeper".into())
                .spawn(move || e.sweeper_loop())
                .expect("spawn sweeper"),
        );
        drop(threads);
        engine
    }

    /// Fails the jobs a previous process left running: no worker of ours holds them.
    fn recover(&self) {
        match self.store.unfinished_jobs(None) {
            Ok(jobs) => {
                for job in jobs {
                    log::warn!("job {} was interrupted by a restart: failing it", job.id);
                    if let Err(e) = self.store.abandon_job(&job.id, SERVER_STOPPED_ERROR) {
                        log::error!("cannot fail interrupted job {}: {e}", job.id);
                    }
                }
            }
            Err(e) => log::error!("cannot look for interrupted jobs: {e}"),
        }
    }

    /// A job was queued: wake an idle worker.
    pub fn notify(&self) {
        let mut q = self.queue.lock().unwrap();
        q.generation += 1;
        self.wake.notify_one();
    }

    /// A job's log writer; its heartbeat beats well within the hung-job timeout.
    pub(crate) fn log_writer(&self, job: &JobRow) -> logwriter::LogWriter {
        let every =
            (self.config.hung_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        logwriter::LogWriter::new(self.store.clone(), self.bus.clone(), job, every)
    }

    /// Stops a running job's work, if this process runs it.
    pub fn cancel(&self, job_id: &str) {
        if let Some(c) = self.running.lock().unwrap().get(job_id) {
            c.stop(StopReason::Cancel);
        }
    }

    /// Shutdown has begun: no new jobs start.
    pub fn is_stopping(&self) -> bool {
        self.queue.lock().unwrap().stopping
    }

    pub fn workers_total(&self) -> usize {
        self.config.workers
    }

    pub fn workers_busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    fn worker_loop(self: Arc<Self>, worker_id: &str) {
        let mut seen = 0;
        loop {
            {
                let q = self.queue.lock().unwrap();
                if q.stopping {
                    return;
                }
                seen = q.generation.max(seen);
            }
            match self.store.take_next_job(worker_id) {
                Ok(Some(job)) => {
                    if self.queue.lock().unwrap().stopping {
                        // Shutdown began while this job was being taken: leave it queued
                        // for the next start.
                        let _ = self.store.release_job(&job.id);
                        return;
                    }
                    self.run_job(job);
                    continue;
                }
                Ok(None) => {}
                Err(e) => log::error!("taking a job: {e}"),
            }
            let q = self.queue.lock().unwrap();
            if q.stopping {
                return;
            }
            if q.generation == seen {
                let _ = self.wake.wait_timeout(q, Duration::from_secs(1)).unwrap();
            }
        }
    }

    fn run_job(&self, job: JobRow) {
        self.busy.fetch_add(1, Ordering::SeqCst);
        let control = Arc::new(JobControl::default());
        self.running
            .lock()
            .unwrap()
            .insert(job.id.clone(), control.clone());
        // A cancel may have landed between taking the job and registering it.
        if let Ok(Some(j)) = self.store.job(&job.id)
            && j.canceled_at.is_some()
        {
            control.stop(StopReason::Cancel);
        }
        let started = Instant::now();
        let result = if job.kind == JOB_BUILD {
            build_job::run(self, &job, &control)
        } else {
            import_job::run(self, &job)
        };
        if let Err(e) = result {
            log::error!("job {} failed in the store: {e}", job.id);
            let _ = self
                .store
                .abandon_job(&job.id, &format!("internal error: {e}"));
        }
        self.running.lock().unwrap().remove(&job.id);
        self.bus.publish(&job.id);
        self.busy.fetch_sub(1, Ordering::SeqCst);
        log::debug!(
            "job {} ({}) done in {:?}",
            job.id,
            job.kind,
            started.elapsed()
        );
    }

    /// Fails running jobs whose heartbeat stopped for the hung timeout.
    fn sweeper_loop(self: Arc<Self>) {
        let every = (self.config.hung_timeout / 4)
            .clamp(Duration::from_millis(200), Duration::from_secs(30));
        loop {
            {
                let q = self.queue.lock().unwrap();
                let (q, _) = self
                    .sweeper_wake
                    .wait_timeout_while(q, every, |q| !q.stopping)
                    .unwrap();
                if q.stopping {
                    return;
                }
            }
            let cutoff = crate::model::Time::now()
                .plus_millis(-(self.config.hung_timeout.as_millis() as i64));
            let Ok(jobs) = self.store.unfinished_jobs(Some(cutoff)) else {
                continue;
            };
            for job in jobs {
                log::warn!(
                    "job {} has no heartbeat for {:?}: failing it",
                    job.id,
                    self.config.hung_timeout
                );
                let error = format!(
                    "the job made no progress for {}s (the hung-job timeout); its worker is gone or stuck",
                    self.config.hung_timeout.as_secs()
                );
                let _ = self.store.abandon_job(&job.id, &error);
                if let Some(c) = self.running.lock().unwrap().get(&job.id) {
                    c.stop(StopReason::Abandoned);
                }
                self.bus.publish(&job.id);
            }
        }
    }

    /// Stops taking jobs, lets running ones finish for `grace`, then cancels the rest and
    /// waits for the workers: nothing is left `running`.
    pub fn shutdown(&self, grace: Duration) {
        {
            let mut q = self.queue.lock().unwrap();
            q.stopping = true;
            self.wake.notify_all();
            self.sweeper_wake.notify_all();
        }
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
