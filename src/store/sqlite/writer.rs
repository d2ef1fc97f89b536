//! Group commit: every write of kiln goes through one connection, and writes that arrive while
//! another is committing share the next commit (one fsync for many), each inside a savepoint
//! of its own so a failing write rolls back alone.
//!
//! Each caller runs its own closure on its own thread, holding the writer's lock, in the
//! transaction that is open. When it is done and no other writer is queued behind it, it
//! commits; otherwise it leaves the transaction open for the next one and waits until the
//! commit that covers its write has happened. So a write returns only once it is durable, an
//! idle server commits at once, and a busy one commits in batches.

use crate::store::{StoreError, StoreResult};
use rusqlite::Connection;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

struct Inner {
    conn: Connection,
    /// The batch the open transaction belongs to (0: none yet).
    batch: u64,
    open: bool,
    /// The last batch whose commit has finished.
    committed: u64,
    /// Recent batches whose commit failed.
    errors: Vec<(u64, String)>,
}

pub struct Writer {
    inner: Mutex<Inner>,
    /// Writers waiting for the lock: while there are any, the holder does not commit.
    queued: AtomicUsize,
    committed: Condvar,
    /// Counters for benchmarks: writes run and commits made.
    pub writes: AtomicUsize,
    pub commits: AtomicUsize,
}

impl Writer {
    pub fn new(conn: Connection) -> Writer {
        Writer {
            inner: Mutex::new(Inner {
                conn,
                batch: 0,
                open: false,
                committed: 0,
                errors: Vec::new(),
            }),
            queued: AtomicUsize::new(0),
            committed: Condvar::new(),
            writes: AtomicUsize::new(0),
            commits: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` atomically in the shared transaction and returns once it is committed.
    pub fn write<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut g = self.lock();
        self.queued.fetch_sub(1, Ordering::SeqCst);
        if !g.open {
            g.conn.execute_batch("BEGIN IMMEDIATE")?;
            g.open = true;
            g.batch += 1;
        }
        let my_batch = g.batch;
        let out = match g.conn.execute_batch("SAVEPOINT w") {
            Err(e) => Err(e.into()),
            Ok(()) => {
                let out = f(&g.conn);
                let end = if out.is_ok() {
                    "RELEASE w"
                } else {
                    "ROLLBACK TO w; RELEASE w"
                };
                match g.conn.execute_batch(end) {
                    Ok(()) => out,
                    Err(e) => Err(e.into()),
                }
            }
        };
        self.writes.fetch_add(1, Ordering::Relaxed);
        if self.queued.load(Ordering::SeqCst) == 0 {
            self.commits.fetch_add(1, Ordering::Relaxed);
            // Nobody behind: commit this batch now (everyone in it is waiting for this).
            let result = g.conn.execute_batch("COMMIT");
            if result.is_err() {
                let _ = g.conn.execute_batch("ROLLBACK");
            }
            g.open = false;
            g.committed = my_batch;
            if let Err(e) = result {
                g.errors.push((my_batch, e.to_string()));
                let excess = g.errors.len().saturating_sub(16);
                g.errors.drain(..excess);
            }
            self.committed.notify_all();
        } else {
            // The last writer of the batch commits it.
            while g.committed < my_batch {
                g = self.committed.wait(g).unwrap_or_else(|e| e.into_inner());
            }
        }
        if let Some((_, error)) = g.errors.iter().find(|(b, _)| *b == my_batch) {
            return Err(StoreError::Unavailable(format!("commit failed: {error}")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn writer(dir: &tempfile::TempDir) -> (Arc<Writer>, std::path::PathBuf) {
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)",
        )
        .unwrap();
        (Arc::new(Writer::new(conn)), path)
    }

    #[test]
    fn concurrent_writes_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let (w, path) = writer(&dir);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        w.write(|c| {
                            c.execute("INSERT INTO t (v) VALUES (?1)", [format!("{t}-{i}")])?;
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 400);
        assert_eq!(w.writes.load(Ordering::Relaxed), 400);
    }

    #[test]
    fn writes_queued_behind_a_write_share_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (w, path) = writer(&dir);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        // The first write holds the transaction until seven more are queued behind it.
        let first = {
            let w = w.clone();
            std::thread::spawn(move || {
                w.write(|c| {
                    c.execute("INSERT INTO t (v) VALUES ('first')", [])?;
                    started_tx.send(()).unwrap();
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                    while w.queued.load(Ordering::SeqCst) < 7 {
                        assert!(std::time::Instant::now() < deadline, "writers never queued");
                        std::thread::yield_now();
                    }
                    Ok(())
                })
                .unwrap();
            })
        };
        started_rx.recv().unwrap();
        let others: Vec<_> = (0..7)
            .map(|i| {
                let w = w.clone();
                std::thread::spawn(move || {
                    w.write(|c| {
                        c.execute("INSERT INTO t (v) VALUES (?1)", [format!("w{i}")])?;
                        Ok(())
                    })
                    .unwrap();
                })
            })
            .collect();
        first.join().unwrap();
        for t in others {
            t.join().unwrap();
        }
        assert_eq!(w.writes.load(Ordering::Relaxed), 8);
        assert_eq!(
            w.commits.load(Ordering::Relaxed),
            1,
            "one commit for the eight"
        );
        let n: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 8, "all durable");
    }

    #[test]
    fn a_failing_write_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (w, path) = writer(&dir);
        w.write(|c| {
            c.execute("INSERT INTO t (v) VALUES ('a')", [])?;
            Ok(())
        })
        .unwrap();
        // Inserts one row, then fails on a duplicate: nothing of it stays.
        let err = w.write(|c| {
            c.execute("INSERT INTO t (v) VALUES ('b')", [])?;
            c.execute("INSERT INTO t (v) VALUES ('a')", [])?;
            Ok(())
        });
        assert!(matches!(err, Err(StoreError::Conflict(_))));
        w.write(|c| {
            c.execute("INSERT INTO t (v) VALUES ('c')", [])?;
            Ok(())
        })
        .unwrap();
        let rows: Vec<String> = {
            let c = Connection::open(&path).unwrap();
            let mut s = c.prepare("SELECT v FROM t ORDER BY id").unwrap();
            s.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(rows, ["a", "c"]);
    }
}
