//! Short-lived read caches the HTTP layer consults before the store: checked API keys
//! (`sessions`), completed builds' JSON (`builds`) and the queue's order for
//! `queue_position` (`queue_ranks`), each emptied on the store's notices; and when each
//! external daemon was last marked as seen (`seen_daemons`).

pub mod builds;
pub mod queue_ranks;
pub mod seen_daemons;
pub mod sessions;
