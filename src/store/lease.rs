//! Whether a worker still holds its job: what it learns each time it touches the job (a
//! heartbeat, a batch of logs).

/// What a worker learns when it touches its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// The worker holds the job; nothing asks it to stop.
    Held,
    /// The worker holds the job and a cancel was requested: stop the work.
    CancelRequested,
    /// The job is no longer the worker's (given up as stale, or completed): stop, write nothing.
    Lost,
}
