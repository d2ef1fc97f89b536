//! The live-events seam: "look again" notices that tell log followers, idle workers, running
//! jobs and the status page that something they watch has changed in the store.
//!
//! A notice carries no data. Whoever receives one reads the store itself, from its own cursor,
//! so a notice can be lost, doubled or merged with the next one without losing or repeating
//! anything. The rule for every watcher: subscribe first, then read the store, then wait.
//!
//! Notices are published by the store when (never before) the change they announce is
//! committed. `Hub` is the in-process implementation; a backend shared by several processes
//! relays the same topics between them (e.g. PostgreSQL's LISTEN/NOTIFY) into its local hub.

mod hub;
mod topic;

pub use hub::{Hub, Subscription};
pub use topic::Topic;

/// Publishes and delivers notices.
pub trait LiveEvents: Send + Sync {
    /// Tells every subscriber of `topic` (in every process sharing the store) to look again.
    /// Call it once the change is committed.
    fn publish(&self, topic: &Topic);

    /// A subscription to `topic`: notices published from now on wake it.
    fn subscribe(&self, topic: &Topic) -> Subscription;

    /// Tells every subscriber in this process to look again, whatever it watches: notices
    /// may have been lost (a relay between processes was down).
    fn wake_all(&self);
}

impl LiveEvents for Hub {
    fn publish(&self, topic: &Topic) {
        self.notify(topic);
    }

    fn subscribe(&self, topic: &Topic) -> Subscription {
        Hub::subscribe(self, topic)
    }

    fn wake_all(&self) {
        self.notify_all();
    }
}
