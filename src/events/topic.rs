//! What a notice is about: the topics subscribers watch.

/// What a notice is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A job was queued or put back in the queue: idle workers look for work.
    Queue,
    /// A job's log grew, or the job changed state (canceled, completed).
    Logs(String),
    /// Cancel was requested for a running job: whoever runs it stops its work.
    Cancel(String),
    /// Something the status page's overview shows changed: jobs, builds or workspaces.
    Overview,
    /// A completed build changed (its state was replaced): cached copies are stale.
    Builds,
}
