//! Live streams (log followers over SSE, NDJSON or WebSocket, workspace watches, the status
//! page's events, dynamic parameters): each holds a connection, a file descriptor and a
//! subscription for as long as the client keeps it. A user may hold at most `per_user` at once
//! (a dashboard tab holds a handful), and the server at most `total`, a share of the
//! connections its open-file limit allows, so streams never take the descriptors kiln needs
//! for its own work (the database, the steps' processes and their logs) or for ordinary
//! requests. A stream holds a `StreamPermit` for its life; dropping it gives the place back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why a stream was not opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamRefusal {
    /// The user holds `limit` streams already.
    User { limit: usize },
    /// The server holds `limit` streams already.
    Server { limit: usize },
}

#[derive(Default)]
struct Open {
    by_user: HashMap<String, usize>,
    total: usize,
}

struct Inner {
    per_user: usize,
    total: usize,
    open: Mutex<Open>,
}

/// The streams open now (cloning shares them).
#[derive(Clone)]
pub struct Streams {
    inner: Arc<Inner>,
}

impl Streams {
    pub fn new(per_user: usize, total: usize) -> Streams {
        Streams {
            inner: Arc::new(Inner {
                per_user,
                total,
                open: Mutex::new(Open::default()),
            }),
        }
    }

    /// A place for one more stream of `user_id`, or why not.
    pub fn open(&self, user_id: &str) -> Result<StreamPermit, StreamRefusal> {
        let inner = &self.inner;
        let mut open = inner.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= inner.total {
            return Err(StreamRefusal::Server { limit: inner.total });
        }
        let mine = open.by_user.entry(user_id.to_string()).or_default();
        if *mine >= inner.per_user {
            return Err(StreamRefusal::User {
                limit: inner.per_user,
            });
        }
        *mine += 1;
        open.total += 1;
        Ok(StreamPermit {
            streams: self.inner.clone(),
            user_id: user_id.to_string(),
        })
    }

    /// Streams open now, over every user.
    #[cfg(test)]
    fn count(&self) -> usize {
        self.inner.open.lock().map_or(0, |o| o.total)
    }
}

/// One stream's place, given back when dropped.
pub struct StreamPermit {
    streams: Arc<Inner>,
    user_id: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_user.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                open.by_user.remove(&self.user_id);
            }
        }
    }
}

/// How many connections the server serves at once, from the open-file limit: all but
/// `RESERVED` descriptors, kept for kiln's own work.
pub fn connection_budget(open_file_limit: u64) -> usize {
    (open_file_limit.saturating_sub(RESERVED) as usize).max(MIN_CONNECTIONS)
}

/// How many streams the server holds at once: half of its connections, so ordinary
/// requests always find room.
pub fn stream_budget(connections: usize) -> usize {
    (connections / 2).max(1)
}

/// Descriptors kept out of the connections' budget: the database (SQLite's files, or a pool
/// of PostgreSQL connections), listeners, and the running steps' pipes and logs.
const RESERVED: u64 = 256;
const MIN_CONNECTIONS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_and_total_places_come_back_when_dropped() {
        let s = Streams::new(2, 3);
        let a1 = s.open("a").unwrap();
        let _a2 = s.open("a").unwrap();
        assert_eq!(s.open("a").err(), Some(StreamRefusal::User { limit: 2 }));
        let _b1 = s.open("b").unwrap();
        assert_eq!(s.open("c").err(), Some(StreamRefusal::Server { limit: 3 }));
        drop(a1);
        assert_eq!(s.count(), 2);
        let _c1 = s.open("c").unwrap();
        assert_eq!(s.open("a").err(), Some(StreamRefusal::Server { limit: 3 }));
    }

    #[test]
    fn budgets_follow_the_open_file_limit() {
        assert_eq!(connection_budget(1024), 768);
        assert_eq!(connection_budget(100), 64);
        assert_eq!(stream_budget(768), 384);
    }
}
