//! Other servers' notices, relayed onto this server's hub: one connection that LISTENs on
//! `kiln_events`. It reconnects with backoff when the connection is lost, and after a
//! reconnect tells every local watcher to look again, since notices sent meanwhile are gone
//! (watchers read the store from their own cursors, so nothing is lost).

use super::tls::Connector;
use crate::events::{LiveEvents, Topic};
use postgres::fallible_iterator::FallibleIterator;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The channel every kiln server listens on; a notice's payload is `<origin> <topics>`, one
/// topic a line.
pub(super) const CHANNEL: &str = "kiln_events";

const LOOK_EVERY: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A topic as a notice's payload.
pub fn encode(topic: &Topic) -> String {
    match topic {
        Topic::Queue => "queue".into(),
        Topic::Logs(job) => format!("logs {job}"),
        Topic::Cancel(job) => format!("cancel {job}"),
        Topic::Overview => "overview".into(),
        Topic::Builds => "builds".into(),
    }
}

pub fn decode(text: &str) -> Option<Topic> {
    let (kind, arg) = text.split_once(' ').unwrap_or((text, ""));
    Some(match (kind, arg) {
        ("queue", "") => Topic::Queue,
        ("logs", job) if !job.is_empty() => Topic::Logs(job.into()),
        ("cancel", job) if !job.is_empty() => Topic::Cancel(job.into()),
        ("overview", "") => Topic::Overview,
        ("builds", "") => Topic::Builds,
        _ => return None,
    })
}

pub struct Relay {
    stop: Arc<AtomicBool>,
    connected: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    pub fn start(config: Connector, origin: String, events: Arc<dyn LiveEvents>) -> Relay {
        let stop = Arc::new(AtomicBool::new(false));
        let connected = Arc::new(AtomicBool::new(false));
        let (s, c) = (stop.clone(), connected.clone());
        let thread = std::thread::Builder::new()
            .name("kiln-pg-listen".into())
            .spawn(move || listen(&config, &origin, &*events, &s, &c))
            .expect("spawn the notice relay");
        Relay {
            stop,
            connected,
            thread: Some(thread),
        }
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn listen(
    config: &Connector,
    origin: &str,
    events: &dyn LiveEvents,
    stop: &AtomicBool,
    connected: &AtomicBool,
) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    while !stop.load(Ordering::SeqCst) {
        let client = config
            .connect()
            .and_then(|mut c| c.batch_execute(&format!("LISTEN {CHANNEL}")).map(|_| c));
        let mut client = match client {
            Ok(c) => c,
            Err(e) => {
                log::warn!(
                    "notices from other servers: cannot listen ({e}); retrying in {backoff:?}"
                );
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        connected.store(true, Ordering::SeqCst);
        if !first {
            log::info!("notices from other servers: listening again");
            events.wake_all();
        }
        first = false;
        'connected: while !stop.load(Ordering::SeqCst) {
            {
                let mut notifications = client.notifications();
                let mut iter = notifications.timeout_iter(LOOK_EVERY);
                loop {
                    match iter.next() {
                        Ok(Some(n)) => {
                            let Some((from, topics)) = n.payload().split_once(' ') else {
                                continue;
                            };
                            if from != origin {
                                for topic in topics.lines().filter_map(decode) {
                                    events.publish(&topic);
                                }
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            log::warn!("notices from other servers: connection lost ({e})");
                            break 'connected;
                        }
                    }
                }
            }
            if client.is_closed() {
                log::warn!("notices from other servers: connection closed");
                break;
            }
        }
        connected.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_travel_as_text() {
        for t in [
            Topic::Queue,
            Topic::Logs("j1".into()),
            Topic::Cancel("j2".into()),
            Topic::Overview,
            Topic::Builds,
        ] {
            assert_eq!(decode(&encode(&t)), Some(t));
        }
        assert_eq!(decode("logs "), None);
        assert_eq!(decode("nonsense"), None);
    }
}
