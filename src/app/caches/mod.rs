//! Short-lived read caches the HTTP layer consults before the store: checked API keys
//! (`sessions`), completed builds' JSON (`builds`) and the queue's order for
//! `queue_position` (`queue_ranks`), each emptied on the store's notices; and when each
//! external daemon was last marked as seen (`seen_daemons`); the status pages' shared change
//! feed and overviews (`overview_feed`, over `shared_views`).

pub mod builds;
pub mod overview_feed;
pub mod queue_ranks;
pub mod seen_daemons;
pub mod sessions;
pub mod shared_views;
