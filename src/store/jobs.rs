//! The provisioner job queue: one FIFO for template imports and workspace builds, with leases.
//!
//! A worker takes a job (`take_next_job`) and holds it: the job records the worker's id, and
//! the worker keeps its lease by touching the job (heartbeats, log batches). Every write a
//! worker makes to its job is conditional on still holding it, so a job that was given up
//! (`abandon_job`) is never written by its old worker again. The server-side queue logic that
//! uses these (wake-up, cancel delivery, lease expiry) is `crate::provisioner::queue`.

use super::error::StoreResult;
use super::lease::LeaseState;
use super::logs::LogBatch;
use crate::domain::{CancelAction, CancelRefusal};
use crate::model::{JobStatus, Time, WorkspaceResource};

pub const JOB_BUILD: &str = "workspace_build";
pub const JOB_IMPORT: &str = "template_version_import";
/// A template version's dry run: the resources a workspace of it would have, with given
/// parameters, planned without running any step.
pub const JOB_DRY_RUN: &str = "template_version_dry_run";

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct JobRow {
    pub id: String,
    /// Creation order: the queue's FIFO key.
    pub seq: i64,
    pub created_at: Time,
    pub updated_at: Time,
    pub started_at: Option<Time>,
    pub completed_at: Option<Time>,
    pub canceled_at: Option<Time>,
    pub error: String,
    pub error_code: String,
    pub organization_id: String,
    pub initiator_id: String,
    pub file_id: String,
    pub kind: String,
    /// JSON: `{"workspace_build_id": ...}` or `{"template_version_id": ...}`.
    pub input: String,
    /// The worker holding (or that last held) the job.
    pub worker_id: Option<String>,
    pub log_level: String,
    pub logs_length: i64,
    pub logs_overflowed: bool,
    /// What a daemon's tags must include to take it (`domain::provisioner_tags`).
    pub tags: crate::domain::provisioner_tags::Tags,
}

impl JobRow {
    pub fn status(&self) -> JobStatus {
        JobStatus::derive(
            self.started_at,
            self.completed_at,
            self.canceled_at,
            &self.error,
        )
    }

    /// The id inside `input` (`workspace_build_id` or `template_version_id`).
    pub fn input_id(&self) -> String {
        let input = self.input_json();
        ["workspace_build_id", "template_version_id"]
            .iter()
            .find_map(|k| input[k].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// `input` as JSON (null when it is not).
    pub fn input_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.input).unwrap_or(serde_json::Value::Null)
    }
}

/// How a build's job ended, written in one transaction by `complete_build`.
#[derive(Debug, Default)]
pub struct BuildCompletion {
    /// Non-empty: the job failed with this error (logged as its last line too).
    pub error: String,
    /// The new state (kept only when the job succeeded).
    pub new_state: Option<Vec<u8>>,
    /// The resources that exist after the build (kept only when the job succeeded).
    pub resources: Vec<WorkspaceResource>,
    /// The TTL of a start build: its deadline is the completion time plus this.
    pub ttl_ms: Option<i64>,
    /// What the job did and when (stages and steps).
    pub timings: Vec<Timing>,
}

/// One stage or step of a job, with its real start and end.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Timing {
    /// Coder's stage word: `init`, `plan` or `apply`.
    pub stage: String,
    pub source: String,
    /// `stage` for a stage; the step's kind (`log`, `sleep`, `fail`, `run`) for a step.
    pub action: String,
    /// The stage's name, or `step N`.
    pub resource: String,
    pub started_at: Time,
    pub ended_at: Time,
}

impl BuildCompletion {
    /// The job's final status, once it ended (canceled or not).
    pub fn final_status(&self, ended_canceled: bool) -> JobStatus {
        match (self.error.is_empty(), ended_canceled) {
            (false, _) => JobStatus::Failed,
            (true, true) => JobStatus::Canceled,
            (true, false) => JobStatus::Succeeded,
        }
    }
}

/// How a template version's import ended.
#[derive(serde::Serialize, serde::Deserialize)]
pub enum ImportOutcome {
    /// The validated manifest (JSON text) and readme.
    Valid { manifest: String, readme: String },
    /// The template is not valid: the job fails with this error.
    Invalid(String),
}

impl ImportOutcome {
    /// The job's error (empty when valid), and the manifest and readme to keep.
    pub fn parts(&self) -> (&str, Option<(&str, &str)>) {
        match self {
            ImportOutcome::Valid { manifest, readme } => ("", Some((manifest, readme))),
            ImportOutcome::Invalid(error) => (error, None),
        }
    }
}

/// A dry run to queue: a job of the version's import file, organization and tags.
pub struct NewDryRun<'a> {
    pub id: &'a str,
    pub version_id: &'a str,
    pub organization_id: &'a str,
    pub initiator_id: &'a str,
    pub file_id: &'a str,
    /// `{"template_version_id", "workspace_name", "rich_parameter_values"}`.
    pub input: serde_json::Value,
}

/// Which unfinished job `abandon_job` may give up: the condition is checked by the write
/// itself, so a live worker's job is never taken from it.
#[derive(Clone, Copy, Debug)]
pub enum Stale<'a> {
    /// Its lease expired: no heartbeat since this time.
    HeartbeatBefore(Time),
    /// It is held by this worker, which is known not to run (this server's worker from its
    /// previous run).
    HeldBy(&'a str),
    /// It is still pending, queued before this time: no worker took it.
    QueuedBefore(Time),
}

pub trait JobStore {
    fn job(&self, id: &str) -> StoreResult<Option<JobRow>>;

    /// Registers the built-in workers of server `server_id` (`built-in-0`, `built-in-1`, ...)
    /// and returns their ids, the same ones across restarts of that server.
    fn register_workers(&self, server_id: &str, count: usize) -> StoreResult<Vec<String>>;

    /// Takes the oldest pending job for `worker_id`: never one taken by another worker, nor one
    /// canceled while pending.
    fn take_next_job(&self, worker_id: &str) -> StoreResult<Option<JobRow>>;

    /// This process's worker `worker_id` waits for a job: a backend may take a job queued
    /// meanwhile for it in the same commit as the job's creation (a hand-off), and tell it
    /// with the queue's notice. By default nothing is handed off.
    fn wait_for_job(&self, worker_id: &str) {
        let _ = worker_id;
    }

    /// Ends the wait `wait_for_job` began: the job taken for the worker meanwhile, if any (it
    /// is the worker's, as `take_next_job` would have given it).
    fn end_wait_for_job(&self, worker_id: &str) -> Option<JobRow> {
        let _ = worker_id;
        None
    }

    /// Jobs waiting for a worker.
    fn pending_job_count(&self) -> StoreResult<i64>;

    /// The provisioner daemons registered (every server's built-in workers).
    fn daemon_count(&self) -> StoreResult<i64>;

    /// `(position, size)` of a pending job in the queue (1-based); `(0, 0)` when not pending.
    fn queue_position(&self, job: &JobRow) -> StoreResult<(i64, i64)>;

    /// The `seq` of every pending job, oldest first: the queue's order in one read of the
    /// pending index, for callers that rank many jobs at once (`app/caches/queue_ranks.rs`).
    fn pending_seqs(&self) -> StoreResult<Vec<i64>>;

    /// Puts a job `worker_id` took back in the queue (it had not begun any work).
    fn release_job(&self, job_id: &str, worker_id: &str) -> StoreResult<()>;

    /// Tells whether `worker_id` still holds the job and whether a cancel was requested;
    /// with `renew`, also moves the job's heartbeat (its lease) to now.
    fn heartbeat(&self, job_id: &str, worker_id: &str, renew: bool) -> StoreResult<LeaseState>;

    /// Cancels a job (`domain::jobs::cancel_decision`, decided and applied atomically).
    /// `NotFound` for an unknown job.
    fn cancel_job(
        &self,
        job_id: &str,
        expect: Option<JobStatus>,
    ) -> StoreResult<Result<CancelAction, CancelRefusal>>;

    /// Ends `worker_id`'s import job in one transaction: the last logs, then the manifest and
    /// readme (valid) or the error (invalid). False when the worker no longer held it.
    fn complete_import(
        &self,
        job_id: &str,
        worker_id: &str,
        outcome: &ImportOutcome,
        logs: &LogBatch,
    ) -> StoreResult<bool>;

    /// Queues a dry run (its tags are its version's import job's).
    fn insert_dry_run(&self, job: &NewDryRun) -> StoreResult<()>;

    /// Ends `worker_id`'s dry run in one transaction: the last logs, the resources it planned,
    /// the job succeeded (canceled, when a cancel came first). False when the worker no longer
    /// held it.
    fn complete_dry_run(
        &self,
        job_id: &str,
        worker_id: &str,
        resources: &[WorkspaceResource],
        logs: &LogBatch,
    ) -> StoreResult<bool>;

    /// Ends `worker_id`'s build job in one transaction: the last logs and the job's end, and
    /// what the build's end changes (`domain::builds::build_end`). Returns the job's final
    /// status; `None` when the worker no longer held it.
    fn complete_build(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<Option<JobStatus>>;

    /// `complete_build`, then the take of `worker_id`'s next job (`take_next_job`), for a
    /// worker that goes on to its next job: a backend may make both in one commit. The
    /// completion stands whatever becomes of the take (a take that fails takes nothing).
    fn complete_build_and_take(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<(Option<JobStatus>, Option<JobRow>)> {
        complete_then_take(self, job_id, worker_id, done, logs)
    }

    /// Fails `worker_id`'s job with `error` (also its last log line), after `logs`. A job whose
    /// cancel was requested ends canceled instead. False when the worker no longer held it.
    fn fail_job(
        &self,
        job_id: &str,
        worker_id: &str,
        error: &str,
        logs: &LogBatch,
    ) -> StoreResult<bool>;

    /// Started, unfinished jobs whose heartbeat is older than `before`.
    fn stale_jobs(&self, before: Time) -> StoreResult<Vec<JobRow>>;

    /// Pending jobs queued before `before`.
    fn pending_jobs_queued_before(&self, before: Time) -> StoreResult<Vec<JobRow>>;

    /// Started, unfinished jobs held by the workers of server `server_id`.
    fn jobs_of_server(&self, server_id: &str) -> StoreResult<Vec<JobRow>>;

    /// Fails a job no live worker holds, logging why; a job whose cancel was requested ends
    /// canceled instead. False when it was completed meanwhile or `stale` no longer holds.
    fn abandon_job(&self, job_id: &str, stale: Stale, error: &str) -> StoreResult<bool>;
}

/// `complete_build`, then `take_next_job` in a commit of its own: `complete_build_and_take` of
/// a backend that does not make them one commit.
pub fn complete_then_take<S: JobStore + ?Sized>(
    store: &S,
    job_id: &str,
    worker_id: &str,
    done: &BuildCompletion,
    logs: &LogBatch,
) -> StoreResult<(Option<JobStatus>, Option<JobRow>)> {
    let status = store.complete_build(job_id, worker_id, done, logs)?;
    let next = store.take_next_job(worker_id).unwrap_or_else(|e| {
        log::warn!("taking the next job after {job_id}: {e}");
        None
    });
    Ok((status, next))
}
