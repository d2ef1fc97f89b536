//! Reads for the status page: the queue, busy workers, recent builds, and a cheap marker that
//! moves whenever any of them may have changed.

use super::error::StoreResult;
use super::jobs::JobRow;
use crate::model::overview::{BuildFacts, QueuedJob};

/// A pending job with the owner of its workspace (none for template imports), so the caller
/// can decide who may see it.
#[derive(Clone, Debug)]
pub struct QueueRow {
    pub job: QueuedJob,
    pub workspace_owner_id: Option<String>,
}

/// The head of the queue as read oldest first, each job numbered by its place (1-based).
pub fn numbered(mut head: Vec<QueueRow>) -> Vec<QueueRow> {
    for (i, row) in head.iter_mut().enumerate() {
        row.job.position = i as i64 + 1;
    }
    head
}

/// What moves whenever a job, build or workspace changes: the newest job, the jobs in flight
/// and the latest update time of each table. Two equal markers mean nothing the overview shows
/// has changed in between. Every value is read from an index, so the marker costs the same
/// however many rows the tables hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeMarker {
    /// The newest job's `seq` (a job was queued).
    pub last_job: Option<i64>,
    /// Jobs started and not completed (a job taken, released or ended).
    pub jobs_running: i64,
    pub jobs_updated_at: Option<i64>,
    pub builds_updated_at: Option<i64>,
    pub workspaces_updated_at: Option<i64>,
}

pub trait OverviewStore {
    fn overview_change_marker(&self) -> StoreResult<ChangeMarker>;

    /// Whether the database can be reached: false from the moment a statement gave up because
    /// it could not (`StoreError::Unreachable`) until one reaches it again. Always true for an
    /// embedded database.
    fn database_reachable(&self) -> bool;

    /// The database's size on disk, in bytes.
    fn database_size(&self) -> StoreResult<i64>;

    /// Jobs a worker has started and not completed (running or canceling).
    fn busy_job_count(&self) -> StoreResult<i64>;

    /// The first `limit` pending jobs, oldest first, with their 1-based positions in the queue.
    fn pending_queue(&self, limit: i64) -> StoreResult<Vec<QueueRow>>;

    /// Walks builds newest first (of workspaces owned by `owner_id` when given), handing each
    /// to `visit` until it returns false or the builds run out.
    fn scan_recent_builds(
        &self,
        owner_id: Option<&str>,
        visit: &mut dyn FnMut(BuildFacts) -> bool,
    ) -> StoreResult<()>;

    /// Walks an organization's jobs (imports and builds) newest first, handing each to `visit`
    /// until it returns false or the jobs run out.
    fn scan_recent_jobs(
        &self,
        organization_id: &str,
        visit: &mut dyn FnMut(JobRow) -> bool,
    ) -> StoreResult<()>;
}
