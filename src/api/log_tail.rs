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
//! Memory is bounded: the tail holds the last `window()` lines; older ones are dropped, and
//! a follower that needs them (one that starts from an old id) reads them from the store
//! itself. The tail goes away with its last follower.

use super::{ApiError, ApiResult};
use crate::api::State;
use crate::store::LogRow;
use actix_web::web;
use bytestring::ByteString;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Lines a tail holds by default (`KILN_FOLLOW_WINDOW` overrides it): a follower further
/// behind the live end than this reads from the store itself.
pub const DEFAULT_WINDOW: usize = 10_000;

/// Lines held per followed job: `KILN_FOLLOW_WINDOW` when set to a positive number, else
/// `DEFAULT_WINDOW`.
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

/// One log line with its JSON, encoded once for every follower.
pub struct Line {
    pub row: LogRow,
    pub json: ByteString,
}

impl Line {
    pub fn new(row: LogRow) -> Line {
        let json = serde_json::to_string(&super::log_format::log_json(&row)).unwrap_or_default();
        Line {
            row,
            json: json.into(),
        }
    }
}

/// The tails of the jobs followed now, by job id.
#[derive(Default)]
pub struct Tails {
    map: Mutex<HashMap<Arc<str>, Weak<Tail>>>,
}

impl Tails {
    /// The job's tail, shared with its other followers (made when it has none).
    pub fn get(&self, job_id: &Arc<str>) -> Arc<Tail> {
        let mut map = self.map.lock().unwrap();
        if let Some(t) = map.get(job_id).and_then(Weak::upgrade) {
            return t;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let t = Arc::new(Tail {
            job_id: job_id.clone(),
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
    pub async fn refresh(&self, state: &State, want: u64) -> ApiResult<bool> {
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
            let (completed, lines) = read_to_end(state, &self.job_id, after).await?;
            let mut h = self.held.lock().unwrap();
            for line in lines {
                h.last = line.row.id;
                h.lines.push_back(line);
            }
            while h.lines.len() > self.window {
                if let Some(old) = h.lines.pop_front() {
                    h.base = old.row.id;
                }
            }
            h.done = n;
            h.completed = completed;
        }
    }

    /// Up to `max` held lines after id `after`.
    pub fn take(&self, after: i64, max: usize) -> Taken {
        let h = self.held.lock().unwrap();
        if after < h.base {
            return Taken::Behind;
        }
        let from = h.lines.partition_point(|l| l.row.id <= after);
        let lines: Vec<_> = h.lines.range(from..).take(max).cloned().collect();
        let more = from + lines.len() < h.lines.len();
        Taken::Lines(lines, more)
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        // The last follower of the job is gone: give what the followers' buffers took back to
        // the system (glibc keeps freed memory otherwise).
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim takes no pointers.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Whether the job has completed (read first), then every line after `after`, page by page,
/// encoded off the async workers.
async fn read_to_end(
    state: &State,
    job_id: &Arc<str>,
    after: i64,
) -> ApiResult<(bool, Vec<Arc<Line>>)> {
    let (state, job_id) = (state.clone(), job_id.clone());
    let page = super::log_format::PAGE;
    web::block(move || -> ApiResult<(bool, Vec<Arc<Line>>)> {
        let completed = state
            .store
            .job(&job_id)?
            .is_none_or(|j| j.completed_at.is_some());
        let (mut lines, mut after) = (Vec::new(), after);
        loop {
            let rows = state.store.logs(&job_id, after, None, page)?;
            let full = rows.len() as i64 == page;
            after = rows.last().map_or(after, |r| r.id);
            lines.extend(rows.into_iter().map(|r| Arc::new(Line::new(r))));
            if !full {
                return Ok((completed, lines));
            }
        }
    })
    .await
    .map_err(|e| ApiError::internal("Internal error reading job logs.", e))?
}
