//! A job's log and lease: lines are buffered and written in batches (one transaction each),
//! which also keeps the lease; between batches the lease is renewed (every quarter of the hung
//! timeout, at most 5 s) and looked at (at most every second, and at once on a cancel notice).
//! What the lease says stops the work through the job's control. Enforces the 1 MiB cap of
//! output per job.

use super::control::{JobControl, StopReason};
use super::queue::JobQueue;
use super::timings::Timings;
use crate::model::Time;
use crate::store::{JobRow, LeaseState, LogBatch, NewLog, StoreResult};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const LOG_CAP_BYTES: i64 = 1 << 20;
pub const OVERFLOW_MESSAGE: &str = "Provisioner logs exceeded the max size of 1MB. Will not continue to write provisioner logs for workspace build.";
/// A batch is written once it holds this many lines, or once its oldest line is this old.
const BATCH_LINES: usize = 2000;
const BATCH_AGE: Duration = Duration::from_millis(15);
/// The lease is looked at least this often, so a cancel reaches the job within it.
const LEASE_CHECK: Duration = Duration::from_secs(1);

pub const SOURCE_DAEMON: &str = "provisioner_daemon";
pub const SOURCE_PROVISIONER: &str = "provisioner";

/// How often a worker renews a job's lease, for a given hung-job timeout.
pub fn renew_every(hung_timeout: Duration) -> Duration {
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
    length: i64,
    overflowed: bool,
    renewed: Instant,
    checked: Instant,
    renew_every: Duration,
    /// The job's stages and steps, with their times.
    pub timings: Timings,
}

impl LogWriter {
    /// The log of `job`, held by `worker_id`, picking up its accounting where it stands.
    pub fn new(
        queue: Arc<dyn JobQueue>,
        control: Arc<JobControl>,
        job: &JobRow,
        worker_id: &str,
        renew_every: Duration,
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
            length: job.logs_length,
            overflowed: job.logs_overflowed,
            renewed: now,
            checked: now,
            renew_every,
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
        if self.overflowed {
            crate::metrics::global().log_lines(0, 1);
            return;
        }
        let size = output.len() as i64;
        let (level, output) = if self.length + size > LOG_CAP_BYTES {
            self.overflowed = true;
            crate::metrics::global().log_lines(0, 1);
            ("warn".to_string(), OVERFLOW_MESSAGE.to_string())
        } else {
            self.length += size;
            (level.to_string(), output)
        };
        self.buf.push(NewLog {
            created_at: Time::now(),
            source,
            level,
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
        let due =
            self.buf.len() >= BATCH_LINES || self.oldest.is_some_and(|t| t.elapsed() >= BATCH_AGE);
        if due {
            return self.flush();
        }
        let renew = self.renewed.elapsed() >= self.renew_every;
        if renew || self.control.take_notice() || self.checked.elapsed() >= LEASE_CHECK {
            let lease = self.queue.heartbeat(&self.job_id, &self.worker_id, renew)?;
            self.checked = Instant::now();
            if renew {
                self.renewed = self.checked;
            }
            self.obey(lease);
        }
        Ok(())
    }

    /// Writes what is buffered now.
    pub fn flush(&mut self) -> StoreResult<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let batch = self.take();
        let lease = self
            .queue
            .append_logs(&self.job_id, &self.worker_id, &batch)?;
        self.renewed = Instant::now();
        self.checked = self.renewed;
        self.obey(lease);
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
        crate::metrics::global().log_lines(self.buf.len() as u64, 0);
        LogBatch {
            lines: std::mem::take(&mut self.buf),
            length: self.length,
            overflowed: self.overflowed,
        }
    }
}
