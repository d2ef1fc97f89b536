//! Pending jobs' places in the queue (`queue_position`, `queue_size`), kept as one snapshot of
//! the queue's order so that ranking a job costs a binary search instead of counting the
//! queue: a page of 25 pending builds, the status page and repeated reads of one pending
//! build share one read of the pending index.
//!
//! One job ranked while the snapshot is stale (the queue changed since it was read) is
//! counted in the store instead (`Store::queue_position`): while builds are queued and taken
//! every millisecond, each answer would otherwise read the whole pending index into a new
//! snapshot, one request at a time, for the next change to drop it.
//!
//! Every change to the set of pending jobs (a job queued, taken, released, canceled or ended)
//! is announced by the store as `Topic::Overview`, from any process sharing it; a notice drops
//! the snapshot and the next ranking reads the order again. A snapshot also expires after
//! `TTL`, so a change made another way (an edit of the database file) shows within that time.

use crate::events::{LiveEvents, Subscription, Topic};
use crate::model::JobStatus;
use crate::store::{JobRow, Store, StoreResult};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(1);

struct Snapshot {
    /// The pending jobs' `seq`, oldest first.
    seqs: Arc<Vec<i64>>,
    read_at: Instant,
}

pub struct QueueRanks {
    snapshot: Mutex<Option<Snapshot>>,
    changes: Subscription,
}

/// The queue's order as read at one moment: ranks any number of jobs.
#[derive(Clone)]
pub struct QueueOrder(Arc<Vec<i64>>);

impl QueueOrder {
    /// `(position, size)` of a pending job (1-based); `(0, 0)` when the job is not pending. A
    /// pending job missing from the order (queued by another server whose notice has not
    /// arrived yet) is ranked last.
    pub fn rank(&self, job: &JobRow) -> (i64, i64) {
        if job.status() != JobStatus::Pending {
            return (0, 0);
        }
        let size = self.0.len() as i64;
        match self.0.binary_search(&job.seq) {
            Ok(i) => (i as i64 + 1, size),
            // Not in the order read: it came after, so it is behind every job there.
            Err(_) => (size + 1, size + 1),
        }
    }

    /// Jobs waiting for a worker.
    pub fn size(&self) -> i64 {
        self.0.len() as i64
    }
}

impl QueueRanks {
    pub fn new(events: &dyn LiveEvents) -> QueueRanks {
        QueueRanks {
            snapshot: Mutex::new(None),
            changes: events.subscribe(&Topic::Overview),
        }
    }

    /// The queue's order now: the snapshot when nothing changed since it was read, else a
    /// fresh read (one at a time: callers arriving meanwhile wait for it and share it).
    /// Blocking: call on the blocking pool.
    pub fn order(&self, store: &dyn Store) -> StoreResult<QueueOrder> {
        let mut snapshot = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        // Taken before the read: a change committed during it drops the next look's snapshot.
        let changed = self.changes.take_change();
        if let Some(s) = snapshot.as_ref()
            && !changed
            && s.read_at.elapsed() < TTL
        {
            return Ok(QueueOrder(s.seqs.clone()));
        }
        let seqs = Arc::new(store.pending_seqs()?);
        *snapshot = Some(Snapshot {
            seqs: seqs.clone(),
            read_at: Instant::now(),
        });
        Ok(QueueOrder(seqs))
    }

    /// `(position, size)` of one job; `(0, 0)` when it is not pending (no read then). From
    /// the snapshot when it is fresh, else counted in the store (no snapshot is read for one).
    pub fn rank(&self, store: &dyn Store, job: &JobRow) -> StoreResult<(i64, i64)> {
        if job.status() != JobStatus::Pending {
            return Ok((0, 0));
        }
        if let Some(order) = self.fresh() {
            return Ok(order.rank(job));
        }
        store.queue_position(job)
    }

    /// Jobs waiting for a worker: the snapshot's count when it is fresh, else the store's
    /// (a maintained row on SQLite), without reading the queue's order for it.
    pub fn size(&self, store: &dyn Store) -> StoreResult<i64> {
        match self.fresh() {
            Some(order) => Ok(order.size()),
            None => store.pending_job_count(),
        }
    }

    /// The order to rank a list of jobs by: one read of the queue when two or more of them are
    /// pending, else none (`rank` each).
    pub fn order_for<'j>(
        &self,
        store: &dyn Store,
        jobs: impl IntoIterator<Item = &'j JobRow>,
    ) -> StoreResult<Option<QueueOrder>> {
        let pending = jobs
            .into_iter()
            .filter(|j| j.status() == JobStatus::Pending)
            .take(2)
            .count();
        if pending < 2 {
            return Ok(None);
        }
        self.order(store).map(Some)
    }

    /// The snapshot, when nothing changed since it was read and it has not expired. A change
    /// seen here is left for `order` to see too.
    fn fresh(&self) -> Option<QueueOrder> {
        let snapshot = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        let s = snapshot.as_ref()?;
        (!self.changes.has_changed() && s.read_at.elapsed() < TTL)
            .then(|| QueueOrder(s.seqs.clone()))
    }
}
