//! The in-process hub: one channel per watched topic, created by the first subscriber and
//! dropped with the last. A channel counts notices; a subscriber remembers the count it saw.
//! Async watchers (log followers, the status page) wait on a `tokio::sync::watch`; blocking
//! ones (worker threads) wait on a condition variable. Both see every notice published after
//! they subscribed.

use super::topic::Topic;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Past this many topics, subscribing first forgets the channels nobody holds any more.
const PRUNE_AT: usize = 1024;

struct Channel {
    /// Notices published so far.
    seq: AtomicU64,
    /// Local wake-ups that are not notices (`Subscription::poke`).
    pokes: AtomicU64,
    lock: Mutex<()>,
    wake: Condvar,
    tx: watch::Sender<u64>,
}

impl Channel {
    fn new() -> Channel {
        Channel {
            seq: AtomicU64::new(0),
            pokes: AtomicU64::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            tx: watch::channel(0).0,
        }
    }

    fn bump(&self, counter: &AtomicU64) -> u64 {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.wake.notify_all();
        n
    }
}

#[derive(Default)]
struct Inner {
    channels: Mutex<HashMap<Topic, Weak<Channel>>>,
}

/// In-process notices (see the module documentation). Cloning shares the hub.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Hub {
    pub fn new() -> Hub {
        Hub::default()
    }

    /// Wakes the subscribers of `topic` in this process; nothing when there are none.
    pub fn notify(&self, topic: &Topic) {
        let channel = self
            .inner
            .channels
            .lock()
            .unwrap()
            .get(topic)
            .and_then(Weak::upgrade);
        if let Some(c) = channel {
            let n = c.bump(&c.seq);
            c.tx.send_replace(n);
        }
    }

    /// Wakes every subscriber in this process, whatever its topic.
    pub fn notify_all(&self) {
        let channels: Vec<_> = {
            let map = self.inner.channels.lock().unwrap();
            map.values().filter_map(Weak::upgrade).collect()
        };
        for c in channels {
            let n = c.bump(&c.seq);
            c.tx.send_replace(n);
        }
    }

    pub fn subscribe(&self, topic: &Topic) -> Subscription {
        let mut map = self.inner.channels.lock().unwrap();
        if map.len() >= PRUNE_AT {
            // Entries whose last subscriber raced with a notice stay behind: drop them.
            map.retain(|_, w| w.strong_count() > 0);
        }
        let channel = match map.get(topic).and_then(Weak::upgrade) {
            Some(c) => c,
            None => {
                let c = Arc::new(Channel::new());
                map.insert(topic.clone(), Arc::downgrade(&c));
                c
            }
        };
        Subscription {
            hub: self.inner.clone(),
            topic: topic.clone(),
            rx: channel.tx.subscribe(),
            seen_seq: AtomicU64::new(channel.seq.load(Ordering::SeqCst)),
            seen_pokes: AtomicU64::new(channel.pokes.load(Ordering::SeqCst)),
            channel,
        }
    }

    /// Subscriptions alive now, over every topic.
    pub fn subscriber_count(&self) -> usize {
        let map = self.inner.channels.lock().unwrap();
        map.values()
            .filter_map(Weak::upgrade)
            .map(|c| c.tx.receiver_count())
            .sum()
    }
}

/// One watcher's registration. Dropping it releases the channel when it was the last one.
pub struct Subscription {
    hub: Arc<Inner>,
    topic: Topic,
    channel: Arc<Channel>,
    rx: watch::Receiver<u64>,
    /// What the blocking side has seen (`has_changed`, `take_change`, `wait`).
    seen_seq: AtomicU64,
    seen_pokes: AtomicU64,
}

impl Subscription {
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// Async: waits for the next notice not yet seen by `changed`.
    pub async fn changed(&mut self) {
        // The sender lives as long as the channel, which this subscription holds.
        let _ = self.rx.changed().await;
    }

    /// Async: forget what was published so far (the next `changed` waits for a new notice).
    pub fn mark_seen(&mut self) {
        self.rx.borrow_and_update();
    }

    /// Blocking: whether a notice came since the last blocking look, without waiting.
    pub fn has_changed(&self) -> bool {
        self.channel.seq.load(Ordering::SeqCst) != self.seen_seq.load(Ordering::SeqCst)
    }

    /// Blocking: like `has_changed`, and marks what came as seen.
    pub fn take_change(&self) -> bool {
        let seq = self.channel.seq.load(Ordering::SeqCst);
        self.seen_seq.swap(seq, Ordering::SeqCst) != seq
    }

    /// Blocking: waits up to `timeout` for a notice (or a poke) not yet seen here. True when
    /// one came; false on timeout. A notice it returns for stays visible to `take_change`.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let c = &self.channel;
        let mut guard = c.lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let seq = c.seq.load(Ordering::SeqCst);
            let pokes = c.pokes.load(Ordering::SeqCst);
            if seq != self.seen_seq.load(Ordering::SeqCst)
                || pokes != self.seen_pokes.swap(pokes, Ordering::SeqCst)
            {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = c
                .wake
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Wakes the blocking waiters of this subscription's channel in this process without
    /// publishing a notice: they return from `wait` and look at their own flags.
    pub fn poke(&self) {
        self.channel.bump(&self.channel.pokes);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut map = self.hub.channels.lock().unwrap();
        // Only this subscription (and no other) holds the channel: forget the topic.
        if Arc::strong_count(&self.channel) == 1
            && map
                .get(&self.topic)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.channel)))
        {
            map.remove(&self.topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_wakes_a_blocking_waiter_and_is_seen_once() {
        let hub = Hub::new();
        let sub = hub.subscribe(&Topic::Queue);
        assert!(
            !sub.wait(Duration::from_millis(10)),
            "nothing published yet"
        );
        let h = hub.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            h.notify(&Topic::Queue);
        });
        assert!(sub.wait(Duration::from_secs(5)));
        t.join().unwrap();
        assert!(sub.has_changed(), "waking does not consume the notice");
        assert!(sub.take_change());
        assert!(!sub.take_change(), "taken once");
        assert!(!sub.wait(Duration::from_millis(10)), "nothing new");
    }

    #[test]
    fn notices_reach_only_their_topic_and_only_later_subscribers_see_later_ones() {
        let hub = Hub::new();
        hub.notify(&Topic::Logs("a".into()));
        let a = hub.subscribe(&Topic::Logs("a".into()));
        let b = hub.subscribe(&Topic::Logs("b".into()));
        assert!(!a.has_changed(), "published before the subscription");
        hub.notify(&Topic::Logs("a".into()));
        assert!(a.has_changed());
        assert!(!b.has_changed());
    }

    #[test]
    fn a_poke_wakes_without_a_notice() {
        let hub = Hub::new();
        let sub = hub.subscribe(&Topic::Cancel("j".into()));
        sub.poke();
        assert!(sub.wait(Duration::from_secs(1)));
        assert!(!sub.has_changed(), "a poke is not a notice");
        assert!(!sub.wait(Duration::from_millis(10)), "the poke was seen");
    }

    #[test]
    fn channels_go_away_with_their_last_subscriber() {
        let hub = Hub::new();
        let one = hub.subscribe(&Topic::Overview);
        let two = hub.subscribe(&Topic::Overview);
        assert_eq!(hub.subscriber_count(), 2);
        drop(one);
        assert_eq!(hub.subscriber_count(), 1);
        drop(two);
        assert!(hub.inner.channels.lock().unwrap().is_empty());
        hub.notify(&Topic::Overview);
    }

    #[actix_web::test]
    async fn async_watchers_see_notices() {
        let hub = Hub::new();
        let mut sub = hub.subscribe(&Topic::Logs("j".into()));
        sub.mark_seen();
        let h = hub.clone();
        std::thread::spawn(move || h.notify(&Topic::Logs("j".into())));
        actix_web::rt::time::timeout(Duration::from_secs(5), sub.changed())
            .await
            .expect("the notice arrives");
    }
}
