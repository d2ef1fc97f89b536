//! What a worker listens to while it runs a job: a reason to stop (set here by the engine, or
//! by the worker itself once its lease says so), and the job's cancel notices, which tell it
//! to look at its lease now rather than at the next heartbeat.

use crate::events::Subscription;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// A user canceled the build: it ends `canceled`.
    Cancel,
    /// The server is shutting down and the grace period is over: the job fails.
    Shutdown,
    /// The job is no longer this worker's (it was given up as hung): stop, write nothing.
    Abandoned,
}

pub struct JobControl {
    stop: AtomicU8,
    /// Cancel notices for the job (`Topic::Cancel`).
    notices: Subscription,
}

impl JobControl {
    pub fn new(notices: Subscription) -> JobControl {
        JobControl {
            stop: AtomicU8::new(0),
            notices,
        }
    }

    /// Stops the job's work for `reason` (the first reason given wins).
    pub fn stop(&self, reason: StopReason) {
        let code = match reason {
            StopReason::Cancel => 1,
            StopReason::Shutdown => 2,
            StopReason::Abandoned => 3,
        };
        let _ = self
            .stop
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
        self.notices.poke();
    }

    pub fn stopped(&self) -> Option<StopReason> {
        match self.stop.load(Ordering::SeqCst) {
            1 => Some(StopReason::Cancel),
            2 => Some(StopReason::Shutdown),
            3 => Some(StopReason::Abandoned),
            _ => None,
        }
    }

    /// Whether a cancel notice came since the last call: time to look at the lease.
    pub fn take_notice(&self) -> bool {
        self.notices.take_change()
    }

    /// Sleeps up to `d`, waking at once when the job is stopped or a notice comes.
    pub fn wait(&self, d: Duration) {
        if self.stopped().is_none() {
            self.notices.wait(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Hub, Topic};
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_stop_wakes_a_waiting_worker_and_the_first_reason_wins() {
        let hub = Hub::new();
        let control = Arc::new(JobControl::new(hub.subscribe(&Topic::Cancel("j".into()))));
        let c = control.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            c.stop(StopReason::Shutdown);
            c.stop(StopReason::Cancel);
        });
        let started = Instant::now();
        control.wait(Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
        assert_eq!(control.stopped(), Some(StopReason::Shutdown));
        assert!(!control.take_notice(), "a stop is no notice");
    }

    #[test]
    fn a_notice_wakes_the_worker_to_look_at_its_lease() {
        let hub = Hub::new();
        let control = JobControl::new(hub.subscribe(&Topic::Cancel("j".into())));
        hub.notify(&Topic::Cancel("other".into()));
        assert!(!control.take_notice());
        hub.notify(&Topic::Cancel("j".into()));
        let started = Instant::now();
        control.wait(Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(control.take_notice());
        assert!(!control.take_notice());
        assert_eq!(control.stopped(), None, "a notice alone stops nothing");
    }
}
