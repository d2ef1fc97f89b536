//! Tells live log followers that a job has new logs or has completed. Followers always read
//! the logs themselves from the store: the bus carries only "look again", so nothing is lost
//! or duplicated between the stored part and the live part.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

#[derive(Default)]
pub struct LogBus {
    channels: Mutex<HashMap<String, watch::Sender<u64>>>,
}

/// A follower's registration; dropping it releases the channel when it was the last one.
pub struct Subscription {
    bus: Arc<LogBus>,
    job_id: String,
    pub rx: watch::Receiver<u64>,
}

impl LogBus {
    /// Subscribe before reading the store, so no change after the read is missed.
    pub fn subscribe(self: &Arc<Self>, job_id: &str) -> Subscription {
        let mut map = self.channels.lock().unwrap();
        let rx = map
            .entry(job_id.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Subscription {
            bus: self.clone(),
            job_id: job_id.to_string(),
            rx,
        }
    }

    /// New logs were committed, or the job completed.
    pub fn publish(&self, job_id: &str) {
        if let Some(tx) = self.channels.lock().unwrap().get(job_id) {
            tx.send_modify(|n| *n += 1);
        }
    }

    pub fn follower_count(&self) -> usize {
        let map = self.channels.lock().unwrap();
        map.values().map(|tx| tx.receiver_count()).sum()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut map = self.bus.channels.lock().unwrap();
        if map
            .get(&self.job_id)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            map.remove(&self.job_id);
        }
    }
}
