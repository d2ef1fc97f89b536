//! Following one job's logs: every line once, in id order, then the end once the job has
//! completed (see `api/logs/answer.rs`). A follower subscribes to the job's `Topic::Logs` notices first,
//! then takes lines from the job's shared tail (`tail.rs`), or from the store when it is
//! behind the tail; a connection that takes nothing for too long is cut off. While the
//! database cannot be reached, a follower waits and reads on from its last line.

use super::line::Line;
use super::tail::Tails;
use super::tail::{Tail, Taken};
use super::{PAGE, off_the_async_threads};
use crate::events::{LiveEvents, Subscription, Topic};
use crate::store::{LogRow, Store, StoreResult};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lines a follower takes from its job's shared tail at once: what it holds while its
/// connection is slow (about 20 KB of JSON with typical lines).
const CHUNK: usize = 100;
/// A follower whose connection takes nothing for this long is cut off (`KILN_FOLLOW_STALL_MS`
/// overrides it): a WebSocket one at once (its task ends and lets go of what it holds), an
/// SSE / NDJSON one when its connection next takes data (the stream breaks off; until then it
/// holds one chunk and the server's write buffer).
const DEFAULT_SEND_STALL: Duration = Duration::from_secs(10);

pub fn send_stall() -> Duration {
    static STALL: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *STALL.get_or_init(|| {
        std::env::var("KILN_FOLLOW_STALL_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&ms| ms > 0)
            .map_or(DEFAULT_SEND_STALL, Duration::from_millis)
    })
}
/// A follower with nothing to send re-checks the job this often, and WebSocket / SSE
/// followers get a keep-alive.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// A follower with nothing new looks at the store this often even without a notice (one may
/// have been lost between servers).
const BACKUP_LOOK: Duration = Duration::from_secs(2);

/// Why a follower was cut off (an SSE client may resume with `Last-Event-ID`).
pub const CUT_OFF: &str = "the follower's connection took nothing for too long: cut off";

/// Reads up to `limit` lines with ids in (`after`, `before`) (and, when asked, whether the
/// job has completed, read first: every line of a completed job is already stored) off the
/// async workers.
pub async fn read_page(
    store: &Arc<dyn Store>,
    job_id: &Arc<str>,
    (after, before, limit): (i64, Option<i64>, i64),
    with_completion: bool,
) -> StoreResult<(bool, Vec<LogRow>)> {
    let (store, job_id) = (store.clone(), job_id.clone());
    off_the_async_threads(move || {
        let completed =
            with_completion && store.job(&job_id)?.is_none_or(|j| j.completed_at.is_some());
        let page = store.logs(&job_id, after, before, limit)?;
        Ok((completed, page))
    })
    .await
}

/// What a follower has for its transport next.
pub enum Step {
    Logs(Vec<Arc<Line>>),
    /// Nothing new for a while (time for a keep-alive).
    Idle,
    /// Every line was sent and the job has completed.
    End,
}

#[derive(Clone, Copy)]
enum Phase {
    /// Mark the notices as seen, check the job, read the first page.
    Start,
    /// A full page came: read on. `last_pass`: the job had completed when the pass began.
    Paging { last_pass: bool },
    /// The store held nothing more when read.
    Drained { last_pass: bool },
}

/// Follows one job's logs. `next` takes and returns the follower, so a transport can keep
/// one `next` in flight across other events without losing what it read.
pub struct Follower {
    store: Arc<dyn Store>,
    pub job_id: Arc<str>,
    sub: Subscription,
    /// The job's shared tail and this follower's key in it; none with `before` (such a
    /// follower reads the store itself).
    tail: Option<(Arc<Tail>, u64)>,
    /// The read of the tail that follows the last notice seen.
    want: u64,
    last: i64,
    before: Option<i64>,
    phase: Phase,
    /// When the follower last had something for its transport.
    quiet_since: Instant,
    /// Since when the database could not be reached, while it cannot.
    unreachable_since: Option<Instant>,
    /// Counted in `kiln_live_followers` while it lives.
    _counted: crate::metrics::Follower,
    /// The place among its user's live streams it holds while it lives.
    _permit: Option<crate::app::streams::StreamPermit>,
}

impl Follower {
    /// Subscribes to the job's notices now, before anything is read from the store.
    pub fn new(
        store: &Arc<dyn Store>,
        events: &dyn LiveEvents,
        tails: &Tails,
        job_id: Arc<str>,
        after: i64,
        before: Option<i64>,
    ) -> Follower {
        let sub = events.subscribe(&Topic::Logs(job_id.to_string()));
        let tail = before.is_none().then(|| {
            let tail = tails.get(store, &job_id);
            let key = tail.join(after);
            (tail, key)
        });
        Follower {
            store: store.clone(),
            job_id,
            sub,
            tail,
            want: 0,
            last: after,
            before,
            phase: Phase::Start,
            quiet_since: Instant::now(),
            unreachable_since: None,
            _counted: crate::metrics::global().follower(),
            _permit: None,
        }
    }

    /// The follower, holding `permit` (a place among its user's live streams) while it lives.
    pub fn holding(mut self, permit: crate::app::streams::StreamPermit) -> Follower {
        self._permit = Some(permit);
        self
    }

    pub async fn next(mut self) -> (Follower, Step) {
        loop {
            let (last_pass, read_completion) = match self.phase {
                Phase::Drained { last_pass: true } => return (self, Step::End),
                Phase::Drained { last_pass: false } => {
                    let keepalive_in = KEEPALIVE.saturating_sub(self.quiet_since.elapsed());
                    let wait = keepalive_in.min(BACKUP_LOOK);
                    let changed = tokio::time::timeout(wait, self.sub.changed()).await;
                    self.phase = Phase::Start;
                    if changed.is_err() && self.quiet_since.elapsed() >= KEEPALIVE {
                        // Quiet for a while: the transport may send a keep-alive.
                        self.quiet_since = Instant::now();
                        return (self, Step::Idle);
                    }
                    continue;
                }
                Phase::Start => {
                    // Changes from here on wake the next wait.
                    self.sub.mark_seen();
                    if let Some((t, _)) = &self.tail {
                        self.want = t.next_read();
                    }
                    (false, true)
                }
                Phase::Paging { last_pass } => (last_pass, false),
            };
            let (completed, rows, more) = match self.read(read_completion).await {
                Ok(r) => {
                    if let Some(since) = self.unreachable_since.take() {
                        log::info!(
                            "following the logs of job {}: the database is back after {:?}",
                            self.job_id,
                            since.elapsed()
                        );
                    }
                    r
                }
                Err(e) if e.is_transient() => {
                    // The database is away: look again from the last line sent, with
                    // keep-alives meanwhile.
                    if self.unreachable_since.is_none() {
                        log::warn!("following the logs of job {}: {e}; waiting", self.job_id);
                        self.unreachable_since = Some(Instant::now());
                    }
                    tokio::time::sleep(BACKUP_LOOK).await;
                    self.phase = Phase::Start;
                    if self.quiet_since.elapsed() >= KEEPALIVE {
                        self.quiet_since = Instant::now();
                        return (self, Step::Idle);
                    }
                    continue;
                }
                Err(e) => {
                    log::error!("following the logs of job {}: {e}", self.job_id);
                    return (self, Step::End);
                }
            };
            let last_pass = last_pass || completed;
            self.phase = if more {
                Phase::Paging { last_pass }
            } else {
                Phase::Drained { last_pass }
            };
            if let Some(l) = rows.last() {
                self.last = l.row.id;
                self.quiet_since = Instant::now();
                return (self, Step::Logs(rows));
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Some((tail, key)) = &self.tail {
            tail.leave(*key);
        }
    }
}

impl Follower {
    /// Whether the job has completed (when asked; looked at after the last notice seen), then
    /// lines after the last one sent: a chunk from the tail when it holds them, else a chunk
    /// from the store (a follower behind what the tail holds reads at its own pace), and
    /// whether there may be more right after them.
    async fn read(&mut self, with_completion: bool) -> StoreResult<(bool, Vec<Arc<Line>>, bool)> {
        let Some((tail, key)) = &self.tail else {
            let (completed, rows) = read_page(
                &self.store,
                &self.job_id,
                (self.last, self.before, PAGE),
                with_completion,
            )
            .await?;
            let full = rows.len() as i64 == PAGE;
            let lines = rows.into_iter().map(|r| Arc::new(Line::new(r))).collect();
            return Ok((completed, lines, full));
        };
        let completed = with_completion && tail.refresh(&self.store, self.want).await?;
        match tail.take(*key, self.last, CHUNK) {
            Taken::Lines(lines, more) => Ok((completed, lines, more)),
            Taken::Behind => {
                // Older lines than the tail holds (a follower from an old id, or one that fell
                // far behind): read on from the store, a chunk at a time, until the tail has
                // them.
                let range = (self.last, None, CHUNK as i64);
                let (_, rows) = read_page(&self.store, &self.job_id, range, false).await?;
                let full = rows.len() == CHUNK;
                let lines = rows.into_iter().map(|r| Arc::new(Line::new(r))).collect();
                Ok((completed, lines, full))
            }
        }
    }
}
