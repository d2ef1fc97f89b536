//! When this server last marked each external daemon as seen in the store, so that a daemon
//! polling every second costs a write only now and then.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct SeenDaemons(Mutex<HashMap<String, Instant>>);

impl SeenDaemons {
    /// Whether `daemon_id` is due to be marked again (not marked within `every`); if so, it
    /// counts as marked from now.
    pub fn due(&self, daemon_id: &str, every: Duration) -> bool {
        let mut seen = self.0.lock().unwrap();
        if seen.get(daemon_id).is_some_and(|t| t.elapsed() < every) {
            return false;
        }
        seen.insert(daemon_id.to_string(), Instant::now());
        true
    }
}
