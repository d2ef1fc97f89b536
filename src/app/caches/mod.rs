//! Short-lived read caches the HTTP layer consults before the store: checked API keys
//! (`sessions`), completed builds' JSON (`builds`) and the queue's order for
//! `queue_position` (`queue_ranks`). Each one empties itself on the store's notices.

pub mod builds;
pub mod queue_ranks;
pub mod sessions;
