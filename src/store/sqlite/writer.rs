//! Group commit: every write of kiln goes through one connection, and writes that arrive while
//! another is committing share the next commit (one fsync for many), each inside a savepoint
//! of its own so a failing write rolls back alone.
//!
//! Each caller runs its own closure on its own thread, holding the writer's lock, in the
//! transaction that is open. When it is done and no other writer is queued behind it, it
//! commits; otherwise it leaves the transaction open for the next one and waits until the
//! commit that covers its write has happened. So a write returns only once it is durable, an
//! idle server commits at once, and a busy one commits in batches.
//!
//! A batch can also fail as a whole, and then every write in it hears of it: when its COMMIT
//! fails, and when SQLite itself rolls the whole transaction back in the middle of a write (it
//! does so on a full disk, `SQLITE_FULL`, and on some I/O errors, rather than keep a
//! statement's partial changes). The connection stays usable either way: the next write begins
//! a new batch, so writes work again as soon as the disk does.

use super::dialect::exec;
use crate::store::{StoreError, StoreResult};
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

struct Inner {
    conn: Connection,
    /// The batch the open transaction belongs to (0: none yet).
    batch: u64,
    open: bool,
    /// Writes made in the open batch so far.
    members: usize,
    /// The last batch that has ended (committed, or failed as a whole).
    ended: u64,
    /// Batches that failed as a whole: the error, and how many of their writes have yet to
    /// take it (the last one removes the entry).
    failed: HashMap<u64, (StoreError, usize)>,
}

impl Inner {
    fn begin(&mut self) -> StoreResult<()> {
        if !self.conn.is_autocommit() {
            // A transaction a failure left behind (its ROLLBACK failed too): end it first.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        exec(&self.conn, "BEGIN IMMEDIATE", [])?;
        self.open = true;
        self.batch += 1;
        self.members = 0;
        Ok(())
    }

    /// Runs `f` in a savepoint of the open transaction: its changes are kept when it succeeds
    /// and undone alone when it fails. The transaction is gone afterwards (autocommit) when
    /// SQLite rolled it back, or the savepoint could not be ended.
    fn run<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        exec(&self.conn, "SAVEPOINT w", [])?;
        let out = f(&self.conn);
        if self.conn.is_autocommit() {
            // SQLite rolled the whole transaction back: there is no savepoint left to end.
            return out;
        }
        let ended = if out.is_ok() {
            exec(&self.conn, "RELEASE w", []).map(drop)
        } else {
            self.conn.execute_batch("ROLLBACK TO w; RELEASE w")
        };
        if let Err(e) = ended {
            // The savepoint cannot be ended, so what `f` left is unknown: the whole batch goes.
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        out
    }

    /// Ends the open batch; `result` is its outcome, for every write in it.
    fn end(&mut self, result: StoreResult<()>) {
        self.open = false;
        self.ended = self.batch;
        if let Err(e) = result {
            self.failed.insert(self.batch, (e, self.members));
        }
    }

    /// The outcome of `batch` for one of its writes (`Ok` when it committed).
    fn take_outcome(&mut self, batch: u64) -> StoreResult<()> {
        let Some((error, left)) = self.failed.get_mut(&batch) else {
            return Ok(());
        };
        let error = error.clone();
        *left -= 1;
        if *left == 0 {
            self.failed.remove(&batch);
        }
        Err(error)
    }
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
                members: 0,
                ended: 0,
                failed: HashMap::new(),
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

    /// Runs `f` atomically in the shared transaction and returns once it is committed. An
    /// error means nothing of `f` was stored.
    pub fn write<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut g = self.lock();
        self.queued.fetch_sub(1, Ordering::SeqCst);
        if !g.open {
            g.begin()?;
        }
        let my_batch = g.batch;
        g.members += 1;
        let out = g.run(f);
        self.writes.fetch_add(1, Ordering::Relaxed);
        if g.conn.is_autocommit() {
            // The transaction was rolled back in the middle of this write (by SQLite, on a full
            // disk or an I/O error): the writes before it in the batch are gone too.
            let cause = match &out {
                Err(e) => e.clone(),
                Ok(_) => {
                    StoreError::Unavailable("database: the transaction was rolled back".into())
                }
            };
            g.end(Err(cause));
            self.committed.notify_all();
        } else if self.queued.load(Ordering::SeqCst) == 0 {
            self.commits.fetch_add(1, Ordering::Relaxed);
            // Nobody behind: commit this batch now (everyone in it is waiting for this).
            let commit_started = std::time::Instant::now();
            let result = exec(&g.conn, "COMMIT", []).map(drop);
            crate::metrics::global().commit("sqlite", commit_started.elapsed(), g.members);
            let result = result.map_err(|e| match e.into() {
                StoreError::Unavailable(why) => {
                    StoreError::Unavailable(format!("commit failed: {why}"))
                }
                e => e,
            });
            if result.is_err() && !g.conn.is_autocommit() {
                let _ = g.conn.execute_batch("ROLLBACK");
            }
            g.end(result);
            self.committed.notify_all();
        } else {
            // The last writer of the batch commits it.
            while g.ended < my_batch {
                g = self.committed.wait(g).unwrap_or_else(|e| e.into_inner());
            }
        }
        g.take_outcome(my_batch)?;
        out
    }

    /// Empties the connection's page cache, unless a batch is open (it is left alone then).
    pub fn release_memory(&self) {
        let g = self.lock();
        if !g.open
            && let Err(e) = g.conn.release_memory()
        {
            log::debug!("releasing the writer's page cache: {e}");
        }
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
        assert_eq!(rows(&path), ["a", "c"]);
    }

    /// The values in `t`, in order.
    fn rows(path: &std::path::Path) -> Vec<String> {
        let c = Connection::open(path).unwrap();
        let mut s = c.prepare("SELECT v FROM t ORDER BY id").unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn insert(c: &Connection, v: &str) -> StoreResult<()> {
        c.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
        Ok(())
    }

    /// Two writes in one batch: the first inserts `a` and keeps the transaction open until the
    /// second (`second`) is queued behind it, so the second commits both. Their results.
    fn one_batch(
        w: &Arc<Writer>,
        second: impl FnOnce(&Connection) -> StoreResult<()> + Send + 'static,
    ) -> (StoreResult<()>, StoreResult<()>) {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let first = {
            let w = w.clone();
            std::thread::spawn(move || {
                w.write(|c| {
                    insert(c, "a")?;
                    started_tx.send(()).unwrap();
                    while w.queued.load(Ordering::SeqCst) == 0 {
                        std::thread::yield_now();
                    }
                    Ok(())
                })
            })
        };
        started_rx.recv().unwrap();
        let w2 = w.clone();
        let second = std::thread::spawn(move || w2.write(second));
        (first.join().unwrap(), second.join().unwrap())
    }

    /// SQLite rolls the whole transaction back in the middle of a write (as on a full disk):
    /// the earlier write of the batch hears of it too, and the next write works.
    #[test]
    fn a_batch_rolled_back_by_sqlite_fails_every_write_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let (w, path) = writer(&dir);
        let full = StoreError::DiskFull("database or disk is full".into());
        let cause = full.clone();
        let (a, b) = one_batch(&w, move |c| {
            insert(c, "b")?;
            c.execute_batch("ROLLBACK")?;
            Err(cause)
        });
        assert_eq!(a, Err(full.clone()));
        assert_eq!(b, Err(full));
        assert!(rows(&path).is_empty());
        w.write(|c| insert(c, "c")).unwrap();
        assert_eq!(rows(&path), ["c"]);
        assert!(w.lock().failed.is_empty(), "every write took its error");
    }

    /// A COMMIT that fails (here a deferred foreign key) fails every write of its batch, and
    /// the writer goes on.
    #[test]
    fn a_failed_commit_is_reported_to_every_write_of_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (w, path) = writer(&dir);
        w.write(|c| {
            c.execute_batch(
                "CREATE TABLE child (parent INTEGER \
                 REFERENCES t (id) DEFERRABLE INITIALLY DEFERRED)",
            )?;
            Ok(())
        })
        .unwrap();
        w.lock()
            .conn
            .execute_batch("PRAGMA foreign_keys = ON")
            .unwrap();
        let (a, b) = one_batch(&w, |c| {
            c.execute("INSERT INTO child (parent) VALUES (999)", [])?;
            Ok(())
        });
        for result in [a, b] {
            let err = result.unwrap_err().to_string();
            assert!(err.starts_with("commit failed: "), "{err}");
            assert!(err.contains("FOREIGN KEY constraint failed"), "{err}");
        }
        assert!(rows(&path).is_empty());
        w.write(|c| insert(c, "c")).unwrap();
        assert_eq!(rows(&path), ["c"]);
    }

    /// A real SQLITE_FULL (the file at its page limit): the write fails as `DiskFull`, nothing
    /// of it stays, and once there is room again (the limit raised) writes work at once.
    #[test]
    fn a_full_database_fails_the_write_and_recovers_with_room() {
        let dir = tempfile::tempdir().unwrap();
        let (w, path) = writer(&dir);
        w.write(|c| insert(c, "kept")).unwrap();
        let pages: i64 = w
            .lock()
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        w.lock()
            .conn
            .execute_batch(&format!("PRAGMA max_page_count = {}", pages + 2))
            .unwrap();
        let big = "x".repeat(64 * 1024);
        let err = w.write(|c| insert(c, &big)).unwrap_err();
        assert!(matches!(err, StoreError::DiskFull(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the server's disk is full (database or disk is full)"
        );
        assert_eq!(rows(&path), ["kept"]);
        w.lock()
            .conn
            .execute_batch("PRAGMA max_page_count = 1000000")
            .unwrap();
        w.write(|c| insert(c, &big)).unwrap();
        assert_eq!(rows(&path).len(), 2);
    }
}
