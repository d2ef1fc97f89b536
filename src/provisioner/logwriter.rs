//! A job's log: lines are buffered and written in batches (one transaction each), then
//! followers are told. Enforces the 1 MiB cap of output per job.

use super::logbus::LogBus;
use crate::model::Time;
use crate::store::{JobRow, LogBatch, NewLog, Store, StoreResult};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const LOG_CAP_BYTES: i64 = 1 << 20;
pub const OVERFLOW_MESSAGE: &str = "Provisioner logs exceeded the max size of 1MB. Will not continue to write provisioner logs for workspace build.";
/// A batch is written once it holds this many lines, or once its oldest line is this old.
const BATCH_LINES: usize = 2000;
const BATCH_AGE: Duration = Duration::from_millis(15);

pub const SOURCE_DAEMON: &str = "provisioner_daemon";
pub const SOURCE_PROVISIONER: &str = "provisioner";

pub struct LogWriter {
    store: Store,
    bus: Arc<LogBus>,
    job_id: String,
    debug: bool,
    stage: String,
    buf: Vec<NewLog>,
    oldest: Option<Instant>,
    length: i64,
    overflowed: bool,
    last_write: Instant,
    heartbeat_every: Duration,
}

impl LogWriter {
    /// The log of `job`, picking up its accounting where it stands. Without log lines, the
    /// job's heartbeat still moves every `heartbeat_every`.
    pub fn new(store: Store, bus: Arc<LogBus>, job: &JobRow, heartbeat_every: Duration) -> Self {
        LogWriter {
            store,
            bus,
            job_id: job.id.clone(),
            debug: job.log_level == "debug",
            stage: String::new(),
            buf: Vec::new(),
            oldest: None,
            length: job.logs_length,
            overflowed: job.logs_overflowed,
            last_write: Instant::now(),
            heartbeat_every,
        }
    }

    /// Starts a stage: later lines carry its name; a marker line (empty output) opens it.
    pub fn stage(&mut self, name: &str) -> StoreResult<()> {
        self.stage = name.to_string();
        self.push(SOURCE_DAEMON, "info", String::new());
        self.tick()
    }

    pub fn current_stage(&self) -> &str {
        &self.stage
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
            return;
        }
        let size = output.len() as i64;
        let (level, output) = if self.length + size > LOG_CAP_BYTES {
            self.overflowed = true;
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

    /// Writes the batch when it is due, and moves the heartbeat when nothing was written
    /// for a while. Call it often.
    pub fn tick(&mut self) -> StoreResult<()> {
        let due =
            self.buf.len() >= BATCH_LINES || self.oldest.is_some_and(|t| t.elapsed() >= BATCH_AGE);
        if due {
            self.flush()?;
        } else if self.last_write.elapsed() >= self.heartbeat_every {
            self.store.heartbeat(&self.job_id)?;
            self.last_write = Instant::now();
        }
        Ok(())
    }

    /// Writes what is buffered now.
    pub fn flush(&mut self) -> StoreResult<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let batch = self.take();
        self.store.append_logs(&self.job_id, &batch)?;
        self.last_write = Instant::now();
        self.bus.publish(&self.job_id);
        Ok(())
    }

    /// What is buffered, for the caller to write in its own transaction (the job's
    /// completion), so a short job costs one commit less.
    pub fn take(&mut self) -> LogBatch {
        self.oldest = None;
        LogBatch {
            lines: std::mem::take(&mut self.buf),
            length: self.length,
            overflowed: self.overflowed,
        }
    }
}
