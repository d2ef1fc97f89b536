//! `RemoteQueue`: the queue seam (`JobQueue`) over kiln's provisioner protocol, so the
//! daemon's `Engine` runs remote jobs with the server's own runner, unchanged.
//!
//! - A job taken (`acquire`, a long poll) gets an updater thread that sends an update every
//!   250 ms (renewing the lease every second) and keeps the answer: `heartbeat` reads it, so
//!   the runner's lease checks cost nothing, and a cancel or a lost job (the answer says so,
//!   or no update got through for the lease) wakes the runner at once through the job's local
//!   cancel subscription (`watch_cancel`): its processes stop within a second.
//! - Log batches go up at once (`append_logs`), retried while the server cannot be reached,
//!   until the lease runs out.
//! - Completions and failures are retried until the server acknowledges them (they are
//!   idempotent there); one it refuses (the job was failed meanwhile) is dropped.

use super::client::{CallError, Client};
use super::wire::*;
use crate::events::{Hub, Subscription, Topic};
use crate::model::JobStatus;
use crate::provisioner::queue::{Acquired, JobQueue};
use crate::store::{BuildCompletion, ImportOutcome, LeaseState, LogBatch, StoreError, StoreResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a running job's updater calls the server.
pub const UPDATE_EVERY: Duration = Duration::from_millis(250);
/// The updater renews the lease on every this many updates.
const RENEW_EACH: u32 = 4;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// What the daemon knows of a job it runs.
struct Held {
    state: Mutex<LeaseState>,
    /// The last time an update got through.
    reached: Mutex<Instant>,
    done: AtomicBool,
}

pub struct RemoteQueue {
    client: Arc<Client>,
    lease: Duration,
    hub: Arc<Hub>,
    jobs: Mutex<HashMap<String, Arc<Held>>>,
    /// The server refused the key: the daemon stops.
    pub key_refused: AtomicBool,
    /// Shutting down: completions are retried for a bounded time only.
    pub stopping: AtomicBool,
    unreachable_since: Mutex<Option<Instant>>,
}

fn unavailable(e: CallError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RemoteQueue {
    pub fn new(client: Arc<Client>, lease: Duration) -> Arc<RemoteQueue> {
        Arc::new(RemoteQueue {
            client,
            lease,
            hub: Arc::new(Hub::new()),
            jobs: Mutex::new(HashMap::new()),
            key_refused: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            unreachable_since: Mutex::new(None),
        })
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.jobs.lock().unwrap().len()
    }

    fn held(&self, job_id: &str) -> Option<Arc<Held>> {
        self.jobs.lock().unwrap().get(job_id).cloned()
    }

    /// Keeps what an answer says of a job, and wakes its runner when it must stop.
    fn learn(&self, job_id: &str, state: LeaseState) {
        if let Some(h) = self.held(job_id) {
            *h.reached.lock().unwrap() = Instant::now();
            let mut s = h.state.lock().unwrap();
            if *s != state {
                *s = state;
                if state != LeaseState::Held {
                    self.hub.notify(&Topic::Cancel(job_id.to_string()));
                }
            }
        }
    }

    /// No answer: once none got through for the lease, the job is lost here too (the server
    /// fails it), so its processes stop and no job runs in two places.
    fn unanswered(&self, job_id: &str) {
        if let Some(h) = self.held(job_id)
            && h.reached.lock().unwrap().elapsed() >= self.lease
        {
            let mut s = h.state.lock().unwrap();
            if *s != LeaseState::Lost {
                log::warn!(
                    "job {job_id}: no update reached the server for {:?} (the lease): stopping it",
                    self.lease
                );
                *s = LeaseState::Lost;
                self.hub.notify(&Topic::Cancel(job_id.to_string()));
            }
        }
    }

    fn answer(
        &self,
        job_id: &str,
        r: Result<Option<UpdateResponse>, CallError>,
    ) -> Option<LeaseState> {
        match r {
            Ok(Some(u)) => {
                let state = match u.state.as_str() {
                    "canceled" => LeaseState::CancelRequested,
                    "held" => LeaseState::Held,
                    _ => LeaseState::Lost,
                };
                self.learn(job_id, state);
                Some(state)
            }
            Ok(None) => Some(LeaseState::Held),
            Err(CallError::Unreachable(why) | CallError::Tls(why)) => {
                log::debug!("job {job_id}: update: {why}");
                self.unanswered(job_id);
                None
            }
            Err(CallError::KeyRefused(why)) => {
                log::error!("job {job_id}: the provisioner key was refused ({why}): stopping it");
                self.key_refused.store(true, Ordering::SeqCst);
                self.learn(job_id, LeaseState::Lost);
                Some(LeaseState::Lost)
            }
            Err(CallError::Refused(_, why)) => {
                log::warn!("job {job_id}: {why}: stopping it");
                self.learn(job_id, LeaseState::Lost);
                Some(LeaseState::Lost)
            }
        }
    }

    fn start_updater(self: &Arc<Self>, job_id: &str, worker_id: &str) {
        let held = Arc::new(Held {
            state: Mutex::new(LeaseState::Held),
            reached: Mutex::new(Instant::now()),
            done: AtomicBool::new(false),
        });
        self.jobs
            .lock()
            .unwrap()
            .insert(job_id.to_string(), held.clone());
        let q = self.clone();
        let (job_id, worker_id) = (job_id.to_string(), worker_id.to_string());
        let spawned = std::thread::Builder::new()
            .name("kiln-updater".into())
            .spawn(move || {
                let mut n = 0u32;
                while !held.done.load(Ordering::SeqCst) {
                    std::thread::sleep(UPDATE_EVERY);
                    if held.done.load(Ordering::SeqCst) {
                        return;
                    }
                    n += 1;
                    let req = UpdateRequest {
                        daemon_id: worker_id.clone(),
                        renew: n.is_multiple_of(RENEW_EACH),
                        logs: WireLogs::default(),
                    };
                    let path = format!("/jobs/{job_id}/update");
                    q.answer(&job_id, q.client.call(&path, &req, CALL_TIMEOUT));
                    if *held.state.lock().unwrap() == LeaseState::Lost {
                        // Nothing more to tell the server: the runner sees `Lost` and stops.
                        q.forget(&job_id);
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            log::error!("cannot start the updater of job: {e}");
        }
    }

    /// Whether the job is no longer this daemon's (the server said so, or could not be reached
    /// for the lease): its end is not sent, the server has ended it or does at its lease.
    fn given_up(&self, job_id: &str) -> bool {
        let lost = self
            .held(job_id)
            .is_none_or(|h| *h.state.lock().unwrap() == LeaseState::Lost);
        if lost {
            log::warn!("job {job_id}: no longer this daemon's; its end is not sent");
            self.forget(job_id);
        }
        lost
    }

    /// The job ended here: its updater stops.
    fn forget(&self, job_id: &str) {
        if let Some(h) = self.jobs.lock().unwrap().remove(job_id) {
            h.done.store(true, Ordering::SeqCst);
        }
    }

    fn backoff(&self, tries: &mut u32) {
        *tries += 1;
        let wait = Duration::from_millis(100 * 2u64.pow((*tries).min(5))).min(RETRY_MAX);
        std::thread::sleep(wait);
    }

    /// Sends an ending (`complete`/`fail`) until the server acknowledges it: `Some(status)`,
    /// or `None` when it refuses (the job is not this daemon's any more: dropped).
    fn end(&self, job_id: &str, path: &str, body: &impl serde::Serialize) -> Option<JobStatus> {
        let mut tries = 0;
        let started = Instant::now();
        loop {
            match self
                .client
                .call::<CompleteResponse>(path, body, CALL_TIMEOUT)
            {
                Ok(answer) => {
                    if tries > 0 {
                        log::info!("job {job_id}: its end was acknowledged after {tries} retries");
                    }
                    return Some(answer.map_or(JobStatus::Succeeded, |a| a.status));
                }
                Err(CallError::Unreachable(why) | CallError::Tls(why)) => {
                    if tries == 0 {
                        log::warn!(
                            "job {job_id}: its end could not be sent ({why}); retrying until it is"
                        );
                    }
                    if self.stopping.load(Ordering::SeqCst) && started.elapsed() > self.lease {
                        log::error!(
                            "job {job_id}: giving up sending its end at shutdown; the server fails it at its lease"
                        );
                        return None;
                    }
                    self.backoff(&mut tries);
                }
                Err(e) => {
                    log::warn!("job {job_id}: the server refused its end ({e}); dropping it");
                    if matches!(e, CallError::KeyRefused(_)) {
                        self.key_refused.store(true, Ordering::SeqCst);
                    }
                    return None;
                }
            }
        }
    }

    /// Acquire through `Arc` (the updater needs one).
    pub fn acquire_arc(
        self: &Arc<Self>,
        worker_id: &str,
        wait: Duration,
    ) -> StoreResult<Option<Acquired>> {
        let req = AcquireRequest {
            daemon_id: worker_id.to_string(),
            wait_ms: wait.as_millis() as u64,
        };
        match self
            .client
            .call::<AcquiredJob>("/acquire", &req, wait + CALL_TIMEOUT)
        {
            Ok(Some(job)) => {
                self.reachable();
                let acquired = job.into_acquired().map_err(StoreError::Unavailable)?;
                self.start_updater(&acquired.job.id, worker_id);
                log::info!("took job {} ({})", acquired.job.id, acquired.job.kind);
                Ok(Some(acquired))
            }
            Ok(None) => {
                self.reachable();
                Ok(None)
            }
            Err(CallError::Unreachable(why) | CallError::Tls(why)) => {
                let mut since = self.unreachable_since.lock().unwrap();
                let first = since.is_none();
                let since = *since.get_or_insert_with(Instant::now);
                if first {
                    log::warn!("the server cannot be reached ({why}); retrying with backoff");
                }
                // Back off: 250 ms at first, up to 5 s while it stays down.
                let down = since.elapsed();
                std::thread::sleep(
                    (down / 4).clamp(Duration::from_millis(250), Duration::from_secs(5)),
                );
                Ok(None)
            }
            Err(e) => {
                if matches!(e, CallError::KeyRefused(_)) {
                    self.key_refused.store(true, Ordering::SeqCst);
                }
                std::thread::sleep(wait);
                Err(unavailable(e))
            }
        }
    }

    fn reachable(&self) {
        if self.unreachable_since.lock().unwrap().take().is_some() {
            log::info!("the server is reachable again");
        }
    }
}

/// The engine holds the queue as `Arc<dyn JobQueue>`; this wrapper gives `acquire` its `Arc`.
pub struct Shared(pub Arc<RemoteQueue>);

impl JobQueue for Shared {
    fn acquire(&self, worker_id: &str, wait: Duration) -> StoreResult<Option<Acquired>> {
        self.0.acquire_arc(worker_id, wait)
    }

    fn watch_cancel(&self, job_id: &str) -> Subscription {
        self.0.hub.subscribe(&Topic::Cancel(job_id.to_string()))
    }

    fn heartbeat(&self, job_id: &str, _worker_id: &str, _renew: bool) -> StoreResult<LeaseState> {
        // The updater keeps it fresh (every 250 ms), and renews the lease.
        Ok(self
            .0
            .held(job_id)
            .map_or(LeaseState::Lost, |h| *h.state.lock().unwrap()))
    }

    fn append_logs(
        &self,
        job_id: &str,
        worker_id: &str,
        batch: &LogBatch,
    ) -> StoreResult<LeaseState> {
        let req = UpdateRequest {
            daemon_id: worker_id.to_string(),
            renew: true,
            logs: WireLogs::from(batch),
        };
        let path = format!("/jobs/{job_id}/update");
        let mut tries = 0;
        loop {
            if let Some(state) = self
                .0
                .answer(job_id, self.0.client.call(&path, &req, CALL_TIMEOUT))
            {
                return Ok(state);
            }
            if self.heartbeat(job_id, worker_id, false)? == LeaseState::Lost {
                return Ok(LeaseState::Lost);
            }
            self.0.backoff(&mut tries);
        }
    }

    fn complete_import(
        &self,
        job_id: &str,
        worker_id: &str,
        outcome: &ImportOutcome,
        logs: &LogBatch,
    ) -> StoreResult<()> {
        if self.0.given_up(job_id) {
            return Ok(());
        }
        let req = CompleteRequest {
            daemon_id: worker_id.to_string(),
            result: WireResult::import(outcome),
            logs: WireLogs::from(logs),
        };
        self.0
            .end(job_id, &format!("/jobs/{job_id}/complete"), &req);
        self.0.forget(job_id);
        Ok(())
    }

    fn complete_dry_run(
        &self,
        job_id: &str,
        worker_id: &str,
        resources: &[crate::model::WorkspaceResource],
        logs: &LogBatch,
    ) -> StoreResult<()> {
        if self.0.given_up(job_id) {
            return Ok(());
        }
        let req = CompleteRequest {
            daemon_id: worker_id.to_string(),
            result: WireResult::DryRun {
                resources: resources.to_vec(),
            },
            logs: WireLogs::from(logs),
        };
        self.0
            .end(job_id, &format!("/jobs/{job_id}/complete"), &req);
        self.0.forget(job_id);
        Ok(())
    }

    fn complete_build(
        &self,
        job_id: &str,
        worker_id: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<Option<JobStatus>> {
        if self.0.given_up(job_id) {
            return Ok(None);
        }
        let req = CompleteRequest {
            daemon_id: worker_id.to_string(),
            result: WireResult::build(done),
            logs: WireLogs::from(logs),
        };
        let status = self
            .0
            .end(job_id, &format!("/jobs/{job_id}/complete"), &req);
        self.0.forget(job_id);
        if let Some(s) = status {
            log::info!("job {job_id} ended: {s:?}");
        }
        Ok(status)
    }

    fn fail(&self, job_id: &str, worker_id: &str, error: &str, logs: &LogBatch) -> StoreResult<()> {
        if self.0.given_up(job_id) {
            return Ok(());
        }
        let req = FailRequest {
            daemon_id: worker_id.to_string(),
            error: error.to_string(),
            logs: WireLogs::from(logs),
        };
        self.0.end(job_id, &format!("/jobs/{job_id}/fail"), &req);
        self.0.forget(job_id);
        log::info!("job {job_id} failed: {error}");
        Ok(())
    }

    fn release(&self, job_id: &str, worker_id: &str) -> StoreResult<()> {
        let req = ReleaseRequest {
            daemon_id: worker_id.to_string(),
        };
        let r = self.0.client.call::<serde_json::Value>(
            &format!("/jobs/{job_id}/release"),
            &req,
            CALL_TIMEOUT,
        );
        self.0.forget(job_id);
        r.map(drop).map_err(unavailable)
    }

    fn wake_idle(&self) {}
}
