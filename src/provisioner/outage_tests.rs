//! The engine's side of an unreachable database, with a queue that fails as told: lines wait
//! and are written once, in order, when it returns; the job is not failed; it is given up only
//! after the hung-job timeout without a write; its end is tried until it is stored.

use super::control::{JobControl, StopReason};
use super::logwriter::{LogWriter, SOURCE_PROVISIONER};
use super::outcome::Outcome;
use super::queue::{Acquired, JobQueue};
use crate::events::{Hub, Subscription, Topic};
use crate::model::{JobStatus, Time, WorkspaceResource};
use crate::store::{
    BuildCompletion, ImportOutcome, JobRow, LeaseState, LogBatch, StoreError, StoreResult,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A queue that answers `Unreachable` while `down`, and keeps what reached it.
#[derive(Default)]
struct Flaky {
    down: AtomicBool,
    refused: AtomicUsize,
    lines: Mutex<Vec<String>>,
    ended: Mutex<Vec<String>>,
    hub: Hub,
}

impl Flaky {
    fn up(&self) -> StoreResult<()> {
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Unreachable("connection refused".into()));
        }
        Ok(())
    }

    fn keep(&self, logs: &LogBatch) {
        let mut lines = self.lines.lock().unwrap();
        lines.extend(logs.lines.iter().map(|l| l.output.clone()));
    }
}

impl JobQueue for Flaky {
    fn acquire(&self, _: &str, _: Duration) -> StoreResult<Option<Acquired>> {
        self.up().map(|()| None)
    }

    fn watch_cancel(&self, job_id: &str) -> Subscription {
        self.hub.subscribe(&Topic::Cancel(job_id.into()))
    }

    fn heartbeat(&self, _: &str, _: &str, _: bool) -> StoreResult<LeaseState> {
        self.up().map(|()| LeaseState::Held)
    }

    fn append_logs(&self, _: &str, _: &str, batch: &LogBatch) -> StoreResult<LeaseState> {
        self.up()?;
        self.keep(batch);
        Ok(LeaseState::Held)
    }

    fn complete_import(
        &self,
        _: &str,
        _: &str,
        _: &ImportOutcome,
        _: &LogBatch,
    ) -> StoreResult<()> {
        unreachable!()
    }

    fn complete_dry_run(
        &self,
        _: &str,
        _: &str,
        _: &[WorkspaceResource],
        _: &LogBatch,
    ) -> StoreResult<()> {
        unreachable!()
    }

    fn complete_build(
        &self,
        job_id: &str,
        _: &str,
        done: &BuildCompletion,
        logs: &LogBatch,
    ) -> StoreResult<Option<JobStatus>> {
        self.up()?;
        self.keep(logs);
        self.ended
            .lock()
            .unwrap()
            .push(format!("{job_id}: {:?}", done.error));
        Ok(Some(JobStatus::Succeeded))
    }

    fn fail(&self, _: &str, _: &str, _: &str, _: &LogBatch) -> StoreResult<()> {
        unreachable!()
    }

    fn release(&self, _: &str, _: &str) -> StoreResult<()> {
        unreachable!()
    }

    fn wake_idle(&self) {}
}

fn job() -> JobRow {
    JobRow {
        id: "j".into(),
        seq: 1,
        created_at: Time::now(),
        updated_at: Time::now(),
        started_at: Some(Time::now()),
        completed_at: None,
        canceled_at: None,
        error: String::new(),
        error_code: String::new(),
        organization_id: "o".into(),
        initiator_id: "u".into(),
        file_id: "f".into(),
        kind: crate::store::JOB_BUILD.into(),
        input: "{}".into(),
        worker_id: Some("w".into()),
        log_level: String::new(),
        logs_length: 0,
        logs_overflowed: false,
        tags: Default::default(),
    }
}

fn writer(queue: &Arc<Flaky>, hung_timeout: Duration) -> (LogWriter, Arc<JobControl>) {
    let control = Arc::new(JobControl::new(queue.watch_cancel("j")));
    let q: Arc<dyn JobQueue> = queue.clone();
    let log = LogWriter::new(q, control.clone(), &job(), "w", hung_timeout);
    (log, control)
}

/// Adds a line every 10 ms for `d`.
fn log_for(log: &mut LogWriter, d: Duration, n: &mut usize) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        *n += 1;
        log.line(SOURCE_PROVISIONER, "info", format!("line {n}"))
            .unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn lines_wait_while_the_database_is_unreachable_and_are_written_once_in_order() {
    let queue = Arc::new(Flaky::default());
    let (mut log, control) = writer(&queue, Duration::from_secs(300));
    let mut n = 0;
    log_for(&mut log, Duration::from_millis(100), &mut n);
    queue.down.store(true, Ordering::SeqCst);
    log_for(&mut log, Duration::from_millis(1200), &mut n);
    assert!(queue.refused.load(Ordering::SeqCst) > 0, "the writer tried");
    assert_eq!(control.stopped(), None, "the job goes on");
    let before = queue.lines.lock().unwrap().len();
    assert!(before < n, "lines wait: {before} of {n} written");
    queue.down.store(false, Ordering::SeqCst);
    log_for(&mut log, Duration::from_millis(6000), &mut n);
    log.flush().unwrap();
    let lines = queue.lines.lock().unwrap().clone();
    let expected: Vec<String> = (1..=n).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, expected, "every line once, in order");
    assert_eq!(control.stopped(), None);
}

#[test]
fn a_job_is_given_up_only_after_the_hung_timeout_without_a_write() {
    let queue = Arc::new(Flaky::default());
    let (mut log, control) = writer(&queue, Duration::from_millis(1500));
    queue.down.store(true, Ordering::SeqCst);
    let mut n = 0;
    log_for(&mut log, Duration::from_millis(700), &mut n);
    assert_eq!(
        control.stopped(),
        None,
        "within the timeout the job goes on"
    );
    log_for(&mut log, Duration::from_millis(2500), &mut n);
    assert_eq!(control.stopped(), Some(StopReason::Abandoned));
}

#[test]
fn a_jobs_end_is_tried_until_the_database_returns() {
    let queue = Arc::new(Flaky::default());
    queue.down.store(true, Ordering::SeqCst);
    let stopping = Arc::new(AtomicBool::new(false));
    let outcome = Arc::new(Outcome::new(
        queue.clone(),
        stopping,
        Duration::from_secs(5),
    ));
    let q = queue.clone();
    let back = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        q.down.store(false, Ordering::SeqCst);
    });
    let done = BuildCompletion::default();
    let status = outcome.complete_build("j", "w", &done, &LogBatch::default());
    back.join().unwrap();
    assert_eq!(status, Ok(Some(JobStatus::Succeeded)));
    assert!(queue.refused.load(Ordering::SeqCst) >= 2, "tried again");
    assert_eq!(queue.ended.lock().unwrap().len(), 1, "stored once");
}

#[test]
fn at_shutdown_a_jobs_end_is_given_up_after_a_few_seconds() {
    let queue = Arc::new(Flaky::default());
    queue.down.store(true, Ordering::SeqCst);
    let stopping = Arc::new(AtomicBool::new(true));
    let outcome = Outcome::new(queue.clone(), stopping, Duration::from_millis(500));
    let started = Instant::now();
    let status =
        outcome.complete_build("j", "w", &BuildCompletion::default(), &LogBatch::default());
    assert!(
        matches!(status, Err(StoreError::Unreachable(_))),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(queue.ended.lock().unwrap().is_empty());
}
