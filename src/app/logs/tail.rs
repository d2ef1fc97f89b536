//! A followed job's shared tail: the recent lines of its log, read from the store once for
//! all the followers of the job in this process, and each line's JSON encoded once.
//!
//! Reads are single flight. A follower that has seen a notice asks for a read that *started*
//! after it looked (`want`); the first to ask reads the store (the job's completion first,
//! then every page after the last line held), the others wait for that read and take the
//! lines from memory. So with 1,000 followers a notice costs one read, not 1,000, and the
//! rule of the live-events seam holds for each follower: its notice is followed by a read
//! of the store that began after it (a notice from another server leads to a read here too).
//!
//! The tail holds the lines a follower of the job has still to take, so followers that fall
//! behind the live end (a burst of lines faster than their connections) take them from memory
//! too, not each from the store: each follower's place is kept (`join`, `take`, `leave`), and
//! lines every follower has taken are dropped but for the last `KEEP`. Memory is bounded: never
//! more than `window()` lines; a follower behind those (one that starts from an old id, or a
//! slow one far behind) reads the store itself, a chunk at a time, until it reaches them. The
//! tail goes away with its last follower.

use super::line::Line;
use super::{PAGE, off_the_async_threads};
use crate::store::{Store, StoreResult};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// The most lines a tail holds by default (`KILN_FOLLOW_WINDOW` overrides it), about 45 MB
/// with all three transports' bytes made: a follower further behind the live end than this
/// reads from the store itself.
pub const DEFAULT_WINDOW: usize = 50_000;
/// Lines held after every follower has taken them, for followers that join a little behind
/// (an SSE client resuming with `Last-Event-ID`).
const KEEP: usize = 1_000;

/// The most lines held per followed job: `KILN_FOLLOW_WINDOW` when set to a positive number,
/// else `DEFAULT_WINDOW`.
pub fn window() -> usize {
    static WINDOW: OnceLock<usize> = OnceLock::new();
    *WINDOW.get_or_init(|| {
        std::env::var("KILN_FOLLOW_WINDOW")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_WINDOW)
    })
}

/// The tails of the jobs followed now, by job id.
#[derive(Default)]
pub struct Tails {
    map: Mutex<HashMap<Arc<str>, Weak<Tail>>>,
}

impl Tails {
    /// The job's tail, shared with its other followers (made when it has none).
    pub fn get(&self, store: &Arc<dyn Store>, job_id: &Arc<str>) -> Arc<Tail> {
        let mut map = self.map.lock().unwrap();
        if let Some(t) = map.get(job_id).and_then(Weak::upgrade) {
            return t;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let t = Arc::new(Tail {
            job_id: job_id.clone(),
            store: Some(store.clone()),
            held: Mutex::new(Held::default()),
            reading: tokio::sync::Mutex::new(()),
            window: window(),
        });
        map.insert(job_id.clone(), Arc::downgrade(&t));
        t
    }
}

#[derive(Default)]
struct Held {
    /// Lines with ids in (`base`, `last`], in id order.
    lines: VecDeque<Arc<Line>>,
    /// Every line up to here was read; those after `base` are held.
    base: i64,
    last: i64,
    /// Reads started, and the number of the last one that read the store to its end.
    started: u64,
    done: u64,
    /// Whether the job had completed when that read began.
    completed: bool,
    /// The last id each follower took (or asked after), by follower.
    places: HashMap<u64, i64>,
    next_place: u64,
}

impl Held {
    /// Drops the oldest lines that every follower has taken, but for the last `KEEP`, and any
    /// beyond `window` lines.
    fn trim(&mut self, window: usize) {
        let slowest = self.places.values().min().copied().unwrap_or(i64::MAX);
        let keep = KEEP.min(window);
        while self.lines.len() > window
            || (self.lines.len() > keep && self.lines.front().is_some_and(|l| l.row.id <= slowest))
        {
            if let Some(old) = self.lines.pop_front() {
                self.base = old.row.id;
            }
        }
    }
}

/// What `Tail::take` found after an id.
pub enum Taken {
    /// Lines after the id (at most as many as asked), possibly none, and whether more are held
    /// after them.
    Lines(Vec<Arc<Line>>, bool),
    /// The lines right after the id are no longer held.
    Behind,
}

pub struct Tail {
    job_id: Arc<str>,
    /// Asked to give back its cached pages once the tail's last follower is gone (none in
    /// unit tests).
    store: Option<Arc<dyn Store>>,
    held: Mutex<Held>,
    /// Held while reading the store: one read at a time.
    reading: tokio::sync::Mutex<()>,
    window: usize,
}

impl Tail {
    /// The number a read must have to follow what the caller looked at so far: call it
    /// after marking the notices seen.
    pub fn next_read(&self) -> u64 {
        self.held.lock().unwrap().started + 1
    }

    /// Waits for a read numbered `want` or later to finish (doing it when nobody is); returns
    /// whether the job had completed when that read began. Every line stored before it began
    /// is then held or was dropped from the window.
    pub async fn refresh(&self, store: &Arc<dyn Store>, want: u64) -> StoreResult<bool> {
        loop {
            {
                let h = self.held.lock().unwrap();
                if h.done >= want {
                    return Ok(h.completed);
                }
            }
            let _reading = self.reading.lock().await;
            let (n, after) = {
                let mut h = self.held.lock().unwrap();
                if h.done >= want {
                    return Ok(h.completed);
                }
                h.started += 1;
                (h.started, h.last)
            };
            let (completed, lines) = read_to_end(store, &self.job_id, after).await?;
            let mut h = self.held.lock().unwrap();
            for line in lines {
                h.last = line.row.id;
                h.lines.push_back(line);
            }
            h.trim(self.window);
            h.done = n;
            h.completed = completed;
        }
    }

    /// A new follower, whose lines after `after` are kept for it; its key for `take`.
    pub fn join(&self, after: i64) -> u64 {
        let mut h = self.held.lock().unwrap();
        h.next_place += 1;
        let key = h.next_place;
        h.places.insert(key, after);
        key
    }

    /// The follower is gone: nothing more is kept for it.
    pub fn leave(&self, key: u64) {
        self.held.lock().unwrap().places.remove(&key);
    }

    /// Up to `max` held lines after id `after`, for the follower `key` (whose place moves to
    /// the last of them).
    pub fn take(&self, key: u64, after: i64, max: usize) -> Taken {
        let mut h = self.held.lock().unwrap();
        if after < h.base {
            h.places.insert(key, after);
            return Taken::Behind;
        }
        let from = h.lines.partition_point(|l| l.row.id <= after);
        let lines: Vec<_> = h.lines.range(from..).take(max).cloned().collect();
        let more = from + lines.len() < h.lines.len();
        h.places
            .insert(key, lines.last().map_or(after, |l| l.row.id));
        Taken::Lines(lines, more)
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            trim_soon(store);
        }
    }
}

/// The last follower of a job is gone: a second later, once their connections have closed and
/// freed their write buffers too, the store gives back the pages it cached for the burst
/// (`LogStore::release_memory`) and the process gives what was freed back to the system
/// (glibc keeps freed memory otherwise). One at a time however many jobs end.
fn trim_soon(store: Arc<dyn Store>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static PENDING: AtomicBool = AtomicBool::new(false);
    if PENDING.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("kiln-trim".into())
        .spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(1));
            PENDING.store(false, Ordering::Release);
            store.release_memory();
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim takes no pointers.
            unsafe {
                libc::malloc_trim(0);
            }
        });
    if spawned.is_err() {
        PENDING.store(false, Ordering::Release);
    }
}

/// Whether the job has completed (read first), then every line after `after`, page by page,
/// encoded off the async workers.
async fn read_to_end(
    store: &Arc<dyn Store>,
    job_id: &Arc<str>,
    after: i64,
) -> StoreResult<(bool, Vec<Arc<Line>>)> {
    let (store, job_id) = (store.clone(), job_id.clone());
    off_the_async_threads(move || {
        let completed = store.job(&job_id)?.is_none_or(|j| j.completed_at.is_some());
        let (mut lines, mut after) = (Vec::new(), after);
        loop {
            let rows = store.logs(&job_id, after, None, PAGE)?;
            let full = rows.len() as i64 == PAGE;
            after = rows.last().map_or(after, |r| r.id);
            lines.extend(rows.into_iter().map(|r| Arc::new(Line::new(r))));
            if !full {
                return Ok((completed, lines));
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::logs::line::line;

    fn held(ids: std::ops::RangeInclusive<i64>) -> Held {
        let mut h = Held::default();
        for id in ids {
            h.lines.push_back(Arc::new(line(id, &id.to_string())));
            h.last = id;
        }
        h
    }

    fn ids(h: &Held) -> (i64, i64, usize) {
        (
            h.base,
            h.lines.front().map_or(0, |l| l.row.id),
            h.lines.len(),
        )
    }

    #[test]
    fn lines_are_kept_until_every_follower_took_them() {
        // The slowest follower took up to 1,500: the lines up to it go, the rest stay.
        let mut h = held(1..=5_000);
        h.places.insert(1, 4_000);
        h.places.insert(2, 1_500);
        h.trim(50_000);
        assert_eq!(ids(&h), (1_500, 1_501, 3_500));
        // Once it moves on, so does the tail; the last KEEP stay for late joiners.
        h.places.insert(2, 4_800);
        h.trim(50_000);
        assert_eq!(ids(&h), (4_000, 4_001, 1_000));
        // Nobody following: the last KEEP.
        let mut h = held(1..=5_000);
        h.trim(50_000);
        assert_eq!(ids(&h), (4_000, 4_001, 1_000));
    }

    #[test]
    fn the_window_bounds_the_tail_whoever_is_behind() {
        let mut h = held(1..=5_000);
        h.places.insert(1, 10);
        h.trim(2_000);
        assert_eq!(ids(&h), (3_000, 3_001, 2_000));
        // A window smaller than KEEP rules alone.
        let mut h = held(1..=5_000);
        h.trim(10);
        assert_eq!(ids(&h), (4_990, 4_991, 10));
    }

    #[test]
    fn a_follower_behind_the_tail_is_told_so_and_holds_it() {
        let t = Tail {
            job_id: "j".into(),
            store: None,
            held: Mutex::new(held(1..=100)),
            reading: tokio::sync::Mutex::new(()),
            window: 50_000,
        };
        t.held.lock().unwrap().base = 40;
        let key = t.join(0);
        assert!(matches!(t.take(key, 10, 5), Taken::Behind));
        assert_eq!(t.held.lock().unwrap().places[&key], 10);
        let Taken::Lines(lines, more) = t.take(key, 60, 5) else {
            panic!("lines after 60 are held");
        };
        let got: Vec<i64> = lines.iter().map(|l| l.row.id).collect();
        assert_eq!((got, more), (vec![61, 62, 63, 64, 65], true));
        assert_eq!(t.held.lock().unwrap().places[&key], 65);
        t.leave(key);
        assert!(t.held.lock().unwrap().places.is_empty());
    }
}
