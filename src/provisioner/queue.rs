//! The queue seam: what a worker needs to take jobs, keep its lease, be told of a cancel and
//! report the end. Workers see `JobQueue` only, never the store: everything a job needs comes
//! with it (`Acquired`). `LocalQueue` is the server's implementation, over the store and the
//! live events; it also gives up the jobs nobody runs any more (`recover`, `sweep`).
//!
//! - Wake-up: queuing a job publishes `Topic::Queue` (the store does, once committed), which
//!   wakes workers blocked in `acquire`.
//! - Cancel: a cancel request publishes `Topic::Cancel(job)`, which wakes the job's worker to
//!   look at its lease at once; the lease check every second (`heartbeat`) is the fallback, so
//!   a cancel reaches a worker wherever it runs.
//! - Leases: a job records the worker holding it, and the worker's heartbeat keeps it. A job
//!   whose heartbeat is older than the hung timeout is given up; at start-up, so are the jobs
//!   this server's workers held before a restart, and no other.

use crate::domain::builds::ttl_ms;
use crate::events::{LiveEvents, Subscription, Topic};
use crate::model::manifest::Manifest;
use crate::model::{JobStatus, Transition, WorkspaceBuildParameter, WorkspaceResource};
use crate::store::{
    BuildCompletion, BuildRow, ImportOutcome, JOB_BUILD, JOB_DRY_RUN, JobRow, LeaseState, LogBatch,
    Stale, Store, StoreResult,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A job no worker takes for this long is failed (Coder's pending-job reaper).
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const PENDING_ERROR: &str = "no worker took this job within 30 minutes of its creation (are any workers running? `--workers 0` runs none); the job was failed";

pub const SERVER_STOPPED_ERROR: &str = "kiln stopped while this job was running (the server was killed or restarted); the job did not finish";

/// A job a worker took, with everything it needs to run it.
pub struct Acquired {
    pub job: JobRow,
    pub work: Work,
    /// The provisioner its template version names (`echo` or `terraform`), for the metrics.
    pub provisioner: String,
}

pub enum Work {
    /// Validate a template archive.
    Import {
        archive: Vec<u8>,
    },
    Build(Box<BuildWork>),
    /// Plan a template version's resources with given parameters, running nothing.
    DryRun(Box<DryRunWork>),
    /// The job cannot run (what it is for is gone): fail it with this error.
    Broken(String),
}

/// A dry run: what it checks and plans, all read by the server (`LocalQueue::dry_run_work`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DryRunWork {
    /// The version's manifest, or why there is none.
    pub manifest: Result<Manifest, String>,
    /// The values sent (`rich_parameter_values`), in order.
    pub parameters: Vec<WorkspaceBuildParameter>,
    pub workspace_name: String,
    /// The user who asked (the workspace's owner to be).
    pub owner_name: String,
}

/// A workspace build to run.
pub struct BuildWork {
    pub build: BuildRow,
    /// The version's manifest, or why there is none.
    pub manifest: Result<Manifest, String>,
    pub parameters: Vec<(String, String)>,
    /// The template archive and the state the build starts from: only loaded when the build
    /// runs steps (empty otherwise).
    pub archive: Vec<u8>,
    pub state: Vec<u8>,
    /// The TTL of a start build (its deadline is set from it on success).
    pub ttl_ms: Option<i64>,
}

impl BuildWork {
    /// Whether the build runs the steps of its transition.
    pub fn runs_steps(&self) -> bool {
        runs_steps(&self.build, self.manifest.as_ref().ok())
    }
}

fn runs_steps(build: &BuildRow, manifest: Option<&Manifest>) -> bool {
    !build.orphan && manifest.is_some_and(|m| !m.steps.for_transition(build.transition).is_empty())
}

/// What a worker needs from the queue.
pub trait JobQueue: Send + Sync {
    /// Takes the oldest pending job for `worker_id`, waiting up to `wait` for one to be queued
    /// (it may return `None` earlier, when woken with nothing to take).
    fn acquire(&self, worker_id: &str, wait: Duration) -> StoreResult<Option<Acquired>>;

    /// Cancel notices for a job: subscribe when the job is taken.
    fn watch_cancel(&self, job_id: &str) -> Subscription;

    /// Looks at the lease (`renew`: and keeps it).
    fn heartbeat(&self, job_id: &str, worker_id: &str, renew: bool) -> StoreResult<LeaseState>;

    /// Appends log lines (and keeps the lease).
    fn append_logs(
        &self,
        job_id: &str,
        worker_id: &str,
        batch: &LogBatch,
    ) -> StoreResult<LeaseState>;

    fn complete_import(
        &self,
        job_id: &str,
        worker_id: &str,
        outcome: &ImportOutcome,
        logs: &LogBatch,
    ) -> StoreResult<()>;

    /// Ends a dry run with the resources it planned.
    fn complete_dry_run(
        &self,
        job_id: &str,
        worker_id: &str,
        resources: &[WorkspaceResource],
        logs: &LogBatch,
    ) -> StoreResult<()>;

    /// Returns the job's final status; `None` when the worker no longer held it.
    fn complete_build(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<Option<JobStatus>>;

    /// `complete_build`, then the worker's next job when one is pending (as `acquire` would
    /// take it, without waiting): a queue may take it in the same commit as the completion.
    fn complete_build_and_take(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<(Option<JobStatus>, Option<Acquired>)> {
        Ok((self.complete_build(job_id, worker_id, done, logs)?, None))
    }

    fn fail(&self, job_id: &str, worker_id: &str, error: &str, logs: &LogBatch) -> StoreResult<()>;

    /// Gives a job back before any work began (the worker is shutting down).
    fn release(&self, job_id: &str, worker_id: &str) -> StoreResult<()>;

    /// Wakes this process's workers blocked in `acquire` (they look, and see they must stop).
    fn wake_idle(&self);
}

/// The server's queue, over its store and live events.
pub struct LocalQueue {
    store: Arc<dyn Store>,
    events: Arc<dyn LiveEvents>,
}

impl LocalQueue {
    pub fn new(store: Arc<dyn Store>, events: Arc<dyn LiveEvents>) -> LocalQueue {
        LocalQueue { store, events }
    }

    /// What a dry run plans: its version's manifest and the values it was given.
    pub fn dry_run_work(&self, job: &JobRow) -> StoreResult<DryRunWork> {
        let input = job.input_json();
        let version_id = input["template_version_id"].as_str().unwrap_or_default();
        let manifest = match self.store.template_version(version_id)? {
            None => Err("the dry run's template version no longer exists".to_string()),
            Some(v) => v
                .imported_manifest()
                .ok_or_else(|| "the template version has no imported manifest".to_string()),
        };
        let owner_name = self
            .store
            .user_by_id(&job.initiator_id)?
            .map(|u| u.username)
            .unwrap_or_default();
        Ok(DryRunWork {
            manifest,
            parameters: serde_json::from_value(input["rich_parameter_values"].clone())
                .unwrap_or_default(),
            workspace_name: input["workspace_name"].as_str().unwrap_or_default().into(),
            owner_name,
        })
    }

    fn work_for(&self, job: &JobRow) -> StoreResult<Work> {
        if job.kind == JOB_DRY_RUN {
            return Ok(Work::DryRun(Box::new(self.dry_run_work(job)?)));
        }
        if job.kind != JOB_BUILD {
            let archive = self.store.file(&job.file_id)?.map(|f| f.data);
            return Ok(Work::Import {
                archive: archive.unwrap_or_default(),
            });
        }
        let Some(build) = self.store.build_by_job(&job.id)? else {
            return Ok(Work::Broken(
                "the job's workspace build does not exist".into(),
            ));
        };
        let version = self.store.template_version(&build.template_version_id)?;
        let manifest = match &version {
            None => Err("the build's template version no longer exists".to_string()),
            Some(v) => v
                .imported_manifest()
                .ok_or_else(|| "the template version has no imported manifest".to_string()),
        };
        let parameters = self.store.build_parameters(&build.id)?;
        let (archive, state) = if runs_steps(&build, manifest.as_ref().ok()) {
            let file_id = version.map(|v| v.file_id).unwrap_or_default();
            let archive = self.store.file(&file_id)?.map(|f| f.data);
            (
                archive.unwrap_or_default(),
                self.store.build_state(&build.id)?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let ttl = if build.transition == Transition::Start {
            let workspace_ttl = self
                .store
                .workspace(&build.workspace_id)?
                .and_then(|w| w.ttl_ms);
            let default_ttl = self
                .store
                .template(&build.template_id)?
                .map_or(0, |t| t.default_ttl_ms);
            ttl_ms(workspace_ttl, default_ttl)
        } else {
            None
        };
        Ok(Work::Build(Box::new(BuildWork {
            build,
            manifest,
            parameters,
            archive,
            state,
            ttl_ms: ttl,
        })))
    }

    fn take(&self, worker_id: &str) -> StoreResult<Option<Acquired>> {
        let Some(job) = self.store.take_next_job(worker_id)? else {
            return Ok(None);
        };
        self.acquired(job).map(Some).map_err(|(e, _)| e)
    }

    /// A job taken, with what it needs; on an error, also the job's id.
    fn acquired(&self, job: JobRow) -> Result<Acquired, (crate::store::StoreError, String)> {
        let prepared = self
            .work_for(&job)
            .and_then(|work| Ok((self.provisioner_of(&job, &work)?, work)));
        match prepared {
            Ok((provisioner, work)) => Ok(Acquired {
                job,
                work,
                provisioner,
            }),
            Err(e) => Err((e, job.id)),
        }
    }

    /// The provisioner of the job's template version (`echo` when it is gone).
    fn provisioner_of(&self, job: &JobRow, work: &Work) -> StoreResult<String> {
        let version_id = match work {
            Work::Build(b) => b.build.template_version_id.clone(),
            _ => serde_json::from_str::<serde_json::Value>(&job.input)
                .ok()
                .and_then(|v| v["template_version_id"].as_str().map(str::to_string))
                .unwrap_or_default(),
        };
        Ok(self
            .store
            .template_version(&version_id)?
            .map(|v| v.provisioner)
            .filter(|p| p == "echo" || p == "terraform")
            .unwrap_or_else(|| "echo".to_string()))
    }

    /// Start-up: ends what is left on this machine of the steps a previous kiln on `data_dir`
    /// ran and removes its jobs' folders (`procs::recover`), then fails the jobs this server's
    /// workers held when it stopped (none of them runs now, nor does any of their processes).
    /// Jobs of other workers are left to their leases (`sweep`).
    pub fn recover(&self, server_id: &str, data_dir: &Path) -> StoreResult<()> {
        super::procs::recover(&data_dir.join("jobs"));
        for job in self.store.jobs_of_server(server_id)? {
            let holder = job.worker_id.as_deref().unwrap_or_default();
            if self
                .store
                .abandon_job(&job.id, Stale::HeldBy(holder), SERVER_STOPPED_ERROR)?
            {
                log::warn!("job {} was interrupted by a restart: failed it", job.id);
            }
        }
        Ok(())
    }

    /// Fails the running jobs whose heartbeat stopped for `hung_timeout`: their worker is gone
    /// or stuck (a live worker keeps its heartbeat well within it); and the pending jobs no
    /// worker took for `PENDING_TIMEOUT`. Each is failed by one server only: the write checks
    /// that it is still stale. Returns how many.
    pub fn sweep(&self, hung_timeout: Duration) -> StoreResult<usize> {
        let now = crate::model::Time::now();
        let cutoff = now.plus_millis(-(hung_timeout.as_millis() as i64));
        let error = format!(
            "the job made no progress for {}s (the hung-job timeout); its worker is gone or stuck",
            hung_timeout.as_secs()
        );
        let mut failed = 0;
        for job in self.store.stale_jobs(cutoff)? {
            if self
                .store
                .abandon_job(&job.id, Stale::HeartbeatBefore(cutoff), &error)?
            {
                log::warn!(
                    "job {} has no heartbeat for {hung_timeout:?}: failed it",
                    job.id
                );
                // Its worker, if it still runs somewhere, looks at its lease and stops.
                self.events.publish(&Topic::Cancel(job.id.clone()));
                failed += 1;
            }
        }
        let queued_before = now.plus_millis(-(PENDING_TIMEOUT.as_millis() as i64));
        for job in self.store.pending_jobs_queued_before(queued_before)? {
            if self
                .store
                .abandon_job(&job.id, Stale::QueuedBefore(queued_before), PENDING_ERROR)?
            {
                log::warn!(
                    "job {} waited {PENDING_TIMEOUT:?} in the queue: failed it",
                    job.id
                );
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// Fails the running jobs of external daemons whose last update is older than `lease`:
    /// the daemon is gone or cut off (and stops the job itself once it could not update for
    /// the lease). Returns how many.
    pub fn sweep_remote(&self, lease: Duration) -> StoreResult<usize> {
        let cutoff = crate::model::Time::now().plus_millis(-(lease.as_millis() as i64));
        let mut failed = 0;
        for job in self.store.stale_remote_jobs(cutoff)? {
            let daemon = job
                .worker_id
                .as_deref()
                .and_then(|id| self.store.daemon(id).ok().flatten())
                .map_or_else(|| "?".to_string(), |d| d.name);
            let error = format!(
                "the provisioner daemon {daemon:?} running this job sent no update for {}s (its lease): it was stopped, killed or cut off from the server; the job was failed",
                lease.as_secs_f64()
            );
            if self
                .store
                .abandon_job(&job.id, Stale::HeartbeatBefore(cutoff), &error)?
            {
                log::warn!("job {}: {error}", job.id);
                self.events.publish(&Topic::Cancel(job.id.clone()));
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// Marks this server's built-in workers as seen (the daemons listing shows them online).
    pub fn touch_workers(&self, worker_ids: &[String]) {
        for id in worker_ids {
            let _ = self.store.touch_daemon(id);
        }
    }

    /// Requests a cancel (`domain::jobs`); the store publishes the notices that reach the
    /// job's worker and its followers.
    pub fn cancel(
        &self,
        job_id: &str,
        expect: Option<JobStatus>,
    ) -> StoreResult<Result<crate::domain::CancelAction, crate::domain::CancelRefusal>> {
        self.store.cancel_job(job_id, expect)
    }
}

impl JobQueue for LocalQueue {
    fn acquire(&self, worker_id: &str, wait: Duration) -> StoreResult<Option<Acquired>> {
        // Subscribe before looking, so a job queued after the look wakes the wait.
        let queued = self.events.subscribe(&Topic::Queue);
        if let Some(a) = self.take(worker_id)? {
            return Ok(Some(a));
        }
        // While it waits, a build queued may be taken for this worker in the commit that
        // creates it (the store's hand-off); the queue's notice wakes it either way.
        self.store.wait_for_job(worker_id);
        let woken = queued.wait(wait);
        if let Some(job) = self.store.end_wait_for_job(worker_id) {
            return self.acquired(job).map(Some).map_err(|(e, _)| e);
        }
        if !woken {
            return Ok(None);
        }
        queued.take_change();
        self.take(worker_id)
    }

    fn watch_cancel(&self, job_id: &str) -> Subscription {
        self.events.subscribe(&Topic::Cancel(job_id.to_string()))
    }

    fn heartbeat(&self, job_id: &str, worker_id: &str, renew: bool) -> StoreResult<LeaseState> {
        self.store.heartbeat(job_id, worker_id, renew)
    }

    fn append_logs(
        &self,
        job_id: &str,
        worker_id: &str,
        batch: &LogBatch,
    ) -> StoreResult<LeaseState> {
        self.store.append_logs(job_id, worker_id, batch)
    }

    fn complete_import(
        &self,
        job_id: &str,
        worker_id: &str,
        outcome: &ImportOutcome,
        logs: &LogBatch,
    ) -> StoreResult<()> {
        self.store
            .complete_import(job_id, worker_id, outcome, logs)
            .map(drop)
    }

    fn complete_dry_run(
        &self,
        job_id: &str,
        worker_id: &str,
        resources: &[WorkspaceResource],
        logs: &LogBatch,
    ) -> StoreResult<()> {
        self.store
            .complete_dry_run(job_id, worker_id, resources, logs)
            .map(drop)
    }

    fn complete_build(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<Option<JobStatus>> {
        self.store.complete_build(job_id, worker_id, done, logs)
    }

    fn complete_build_and_take(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<(Option<JobStatus>, Option<Acquired>)> {
        let (status, next) = self
            .store
            .complete_build_and_take(job_id, worker_id, done, logs)?;
        let Some(job) = next else {
            return Ok((status, None));
        };
        match self.acquired(job) {
            Ok(a) => Ok((status, Some(a))),
            Err((e, next_id)) => {
                // What the job needs could not be read: give it back to the queue (the
                // completion stands).
                log::warn!("preparing the next job after {job_id}: {e}");
                let _ = self.store.release_job(&next_id, worker_id);
                Ok((status, None))
            }
        }
    }

    fn fail(&self, job_id: &str, worker_id: &str, error: &str, logs: &LogBatch) -> StoreResult<()> {
        self.store
            .fail_job(job_id, worker_id, error, logs)
            .map(drop)
    }

    fn release(&self, job_id: &str, worker_id: &str) -> StoreResult<()> {
        self.store.release_job(job_id, worker_id)
    }

    fn wake_idle(&self) {
        self.events.publish(&Topic::Queue);
    }
}
