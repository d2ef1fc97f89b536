//! A job's log and lease: lines are buffered and written in batches (one transaction each),
//! which also keeps the lease; between batches the lease is renewed (every quarter of the hung
//! timeout, at most 5 s) and looked at (at most every second, and at once on a cancel notice).
//! What the lease says stops the work through the job's control. Every line goes to the
//! store, which keeps the job's log within its cap (`domain::log_budget`): the same rule for
//! the server's workers and for provisioner daemons, whose lines reach the store through the
//! server.
//!
//! While the database cannot be reached (`StoreError::Unreachable`), the steps go on: lines
//! wait here and are tried again with a growing pause, and nothing fails the job. Only when no
//! write has reached the store for the hung-job timeout is the job given up here (another
//! server may fail it as hung meanwhile), so it never runs in two places.

use super::control::{JobControl, StopReason};
use super::queue::JobQueue;
use super::timings::Timings;
use crate::model::Time;
use crate::store::{JobRow, LeaseState, LogBatch, NewLog, StoreError, StoreResult};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A batch is written once it holds this many lines, or once its oldest line is this old.
const BATCH_LINES: usize = 2000;
const BATCH_AGE: Duration = Duration::from_millis(15);
/// The lease is looked at least this often, so a cancel reaches the job within it.
const LEASE_CHECK: Duration = Duration::from_secs(1);

/// While the database cannot be reached: the pause before the next try, growing from the
/// first to the last, and how many lines may wait before the steps are held up (their output
/// is not read until the lines are written: nothing is dropped).
const OUTAGE_FIRST_PAUSE: Duration = Duration::from_millis(250);
const OUTAGE_LAST_PAUSE: Duration = Duration::from_secs(5);
const OUTAGE_HOLD_LINES: usize = 50 * BATCH_LINES;

pub const SOURCE_DAEMON: &str = "provisioner_daemon";
pub const SOURCE_PROVISIONER: &str = "provisioner";

/// How often a worker renews a job's lease, for a given hung-job timeout.
fn renew_every(hung_timeout: Duration) -> Duration {
    (hung_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
}

pub struct LogWriter {
    queue: Arc<dyn JobQueue>,
    control: Arc<JobControl>,
    job_id: String,
    worker_id: String,
    debug: bool,
    stage: String,
    buf: Vec<NewLog>,
    oldest: Option<Instant>,
    renewed: Instant,
    checked: Instant,
    renew_every: Duration,
    /// No write reached the store for this long: the job is given up here.
    hung_timeout: Duration,
    outage: Option<Outage>,
    /// The job's stages and steps, with their times.
    pub timings: Timings,
}

/// The database cannot be reached: since when, and when to try again.
struct Outage {
    since: Instant,
    retry_at: Instant,
    pause: Duration,
}

impl LogWriter {
    /// The log of `job`, held by `worker_id`.
    pub fn new(
        queue: Arc<dyn JobQueue>,
        control: Arc<JobControl>,
        job: &JobRow,
        worker_id: &str,
        hung_timeout: Duration,
    ) -> Self {
        let now = Instant::now();
        LogWriter {
            queue,
            control,
            job_id: job.id.clone(),
            worker_id: worker_id.to_string(),
            debug: job.log_level == "debug",
            stage: String::new(),
            buf: Vec::new(),
            oldest: None,
            renewed: now,
            checked: now,
            renew_every: renew_every(hung_timeout),
            hung_timeout,
            outage: None,
            timings: Timings::default(),
        }
    }

    /// Starts a stage: later lines carry its name; a marker line (empty output) opens it.
    pub fn stage(&mut self, name: &str) -> StoreResult<()> {
        self.timings.stage(name);
        self.stage = name.to_string();
        self.push(SOURCE_DAEMON, "info", String::new());
        self.tick()
    }

    /// Adds a line; it is written with the next batch.
    pub fn line(
        &mut self,
        source: &'static str,
        level: &str,
        output: impl Into<String>,
    ) -> StoreResult<()> {
        if level == "debug" && !self.debug || level == "trace" {
            return Ok(());
        }
        self.push(source, level, output.into());
        self.tick()
    }

    fn push(&mut self, source: &'static str, level: &str, output: String) {
        self.buf.push(NewLog {
            created_at: Time::now(),
            source,
            level: level.to_string(),
            stage: self.stage.clone(),
            output,
        });
        self.oldest.get_or_insert_with(Instant::now);
    }

    /// How long a caller may wait between ticks without the lease lapsing or a cancel waiting.
    pub fn tick_within(&self) -> Duration {
        self.renew_every.min(LEASE_CHECK)
    }

    /// Writes the batch when it is due, and otherwise keeps and looks at the lease when that
    /// is due. Call it at least every `tick_within`.
    pub fn tick(&mut self) -> StoreResult<()> {
        if let Some(outage) = &self.outage {
            let wait = outage.retry_at.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                if self.buf.len() < OUTAGE_HOLD_LINES {
                    return Ok(());
                }
                std::thread::sleep(wait);
            }
            return match self.buf.is_empty() {
                true => self.touch(true),
                false => self.flush(),
            };
        }
        let due =
            self.buf.len() >= BATCH_LINES || self.oldest.is_some_and(|t| t.elapsed() >= BATCH_AGE);
        if due {
            return self.flush();
        }
        let renew = self.renewed.elapsed() >= self.renew_every;
        if renew || self.control.take_notice() || self.checked.elapsed() >= LEASE_CHECK {
            return self.touch(renew);
        }
        Ok(())
    }

    /// Looks at the lease, renewing it when `renew`.
    fn touch(&mut self, renew: bool) -> StoreResult<()> {
        match self.queue.heartbeat(&self.job_id, &self.worker_id, renew) {
            Ok(lease) => {
                self.reached(renew);
                self.obey(lease);
                Ok(())
            }
            Err(e) => self.unreached(e),
        }
    }

    /// Writes what is buffered now (kept for a later try while the database cannot be
    /// reached).
    pub fn flush(&mut self) -> StoreResult<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let batch = LogBatch {
            lines: std::mem::take(&mut self.buf),
        };
        match self
            .queue
            .append_logs(&self.job_id, &self.worker_id, &batch)
        {
            Ok(lease) => {
                self.oldest = None;
                self.reached(true);
                self.obey(lease);
                Ok(())
            }
            Err(e) => {
                // Back in front of any line added since.
                let mut lines = batch.lines;
                lines.append(&mut self.buf);
                self.buf = lines;
                self.unreached(e)
            }
        }
    }

    /// A write reached the store (and renewed the lease when `renewed`).
    fn reached(&mut self, renewed: bool) {
        self.checked = Instant::now();
        if renewed {
            self.renewed = self.checked;
        }
        if let Some(outage) = self.outage.take() {
            log::info!(
                "job {}: the database is reachable again after {:?}",
                self.job_id,
                outage.since.elapsed()
            );
        }
    }

    /// A write did not reach the store: an error unless it is one of an unreachable
    /// database, which is tried again later.
    fn unreached(&mut self, e: StoreError) -> StoreResult<()> {
        if !e.is_transient() {
            return Err(e);
        }
        let now = Instant::now();
        let outage = self.outage.get_or_insert_with(|| {
            log::warn!(
                "job {}: {e}; its steps go on and its log lines wait",
                self.job_id
            );
            Outage {
                since: now,
                retry_at: now,
                pause: OUTAGE_FIRST_PAUSE,
            }
        });
        outage.retry_at = now + outage.pause;
        outage.pause = (outage.pause * 2).min(OUTAGE_LAST_PAUSE);
        if self.renewed.elapsed() >= self.hung_timeout && self.control.stopped().is_none() {
            log::warn!(
                "job {}: no write reached the database for {:?} (the hung-job timeout): stopping it",
                self.job_id,
                self.hung_timeout
            );
            self.control.stop(StopReason::Abandoned);
        }
        Ok(())
    }

    fn obey(&self, lease: LeaseState) {
        match lease {
            LeaseState::Held => {}
            LeaseState::CancelRequested => self.control.stop(StopReason::Cancel),
            LeaseState::Lost => self.control.stop(StopReason::Abandoned),
        }
    }

    /// What is buffered, for the caller to write in its own transaction (the job's
    /// completion), so a short job costs one commit less.
    pub fn take(&mut self) -> LogBatch {
        self.oldest = None;
        LogBatch {
            lines: std::mem::take(&mut self.buf),
        }
    }
}
