//! A job's log for its followers: each line encoded once for every transport (`line`), the
//! recent lines shared by all the followers of a job in this process (`tail`), and one
//! follower's walk through the log until the job ends (`follower`).

pub mod follower;
pub mod line;
pub mod tail;

use crate::store::{StoreError, StoreResult};

/// Lines read from the store at once: the most a request holds in memory.
pub const PAGE: i64 = 1000;

/// Runs a store read on the blocking pool, so the async threads never wait on the database.
pub(crate) async fn off_the_async_threads<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Unavailable(format!("reading job logs: {e}")))?
}
