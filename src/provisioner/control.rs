//! What a worker listens to while it runs a job: a cancel request or the server shutting down.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// A user canceled the build: it ends `canceled`.
    Cancel,
    /// The server is shutting down and the grace period is over: the job fails.
    Shutdown,
    /// The hung-job sweeper already failed the job: stop the work.
    Abandoned,
}

#[derive(Default)]
pub struct JobControl {
    stop: AtomicU8,
    lock: Mutex<()>,
    wake: Condvar,
}

impl JobControl {
    pub fn stop(&self, reason: StopReason) {
        let code = match reason {
            StopReason::Cancel => 1,
            StopReason::Shutdown => 2,
            StopReason::Abandoned => 3,
        };
        let _ = self
            .stop
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
        let _guard = self.lock.lock().unwrap();
        self.wake.notify_all();
    }

    pub fn stopped(&self) -> Option<StopReason> {
        match self.stop.load(Ordering::SeqCst) {
            1 => Some(StopReason::Cancel),
            2 => Some(StopReason::Shutdown),
            3 => Some(StopReason::Abandoned),
            _ => None,
        }
    }

    /// Sleeps up to `d`, waking at once when the job is stopped. True when it was.
    pub fn sleep(&self, d: Duration) -> bool {
        let guard = self.lock.lock().unwrap();
        let _ = self
            .wake
            .wait_timeout_while(guard, d, |_| self.stopped().is_none())
            .unwrap();
        self.stopped().is_some()
    }
}
