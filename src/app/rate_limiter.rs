//! The counter behind every rate limit: Coder's (go-chi/httprate's sliding window). Windows
//! follow one another from the limiter's start (httprate's from the clock's :00, which is the
//! same limit at another phase); a key's rate is its count in the current window plus its
//! count in the previous one weighted by the part of the previous window that is still within
//! the last `window`. A request is let through while that rate, rounded, plus one is at most
//! the limit; only requests let through are counted.
//!
//! Memory is bounded: only the current and the previous window's counts are kept (older keys
//! are forgotten when a window ends), each window holds at most `MAX_KEYS` keys (a key beyond
//! is let through uncounted until the window ends: at most about 18 MB a limiter, reached only
//! by some 4,000 new callers or paths a second), and a key is a 64-bit hash with a key of the
//! process's own (no caller can make two keys collide on purpose).

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Keys counted per window, over all shards.
pub const MAX_KEYS: usize = 1 << 18;
const SHARDS: usize = 16;

/// What a limiter says of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub limit: u32,
    /// Requests left in the window once this one is counted (0 when refused).
    pub remaining: u32,
    /// When the current window ends (seconds since the epoch): Coder's `X-Ratelimit-Reset`.
    pub reset: u64,
    /// `Some`: refused; a request is let through again after this long (whole seconds, at
    /// least 1), if no other is counted meanwhile.
    pub retry_after: Option<u64>,
}

/// One rate limit: `limit` requests per `window` and key.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    /// When the first window started, and that time in milliseconds since the epoch.
    origin: Instant,
    origin_ms: u128,
    keys: RandomState,
    shards: Vec<Mutex<Shard>>,
    /// The window every shard was last moved to (each is moved when the window changes, so
    /// a shard no request reaches forgets its keys too).
    window_number: AtomicU64,
}

#[derive(Default)]
struct Shard {
    /// The current window's number (time since the epoch divided by the window).
    window: u64,
    current: Counts,
    previous: Counts,
    /// Whether the current window met `MAX_KEYS` (said once in the log).
    full: bool,
}

/// Keys are hashes already: the map takes them as they are.
type Counts = HashMap<u64, u32, BuildHasherDefault<AsIs>>;

#[derive(Default)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            limit: limit.max(1),
            window: window.max(Duration::from_millis(1)),
            origin: Instant::now(),
            origin_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
            keys: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            window_number: AtomicU64::new(0),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Counts a request of `key` now, unless it is over the limit.
    pub fn check(&self, key: impl Hash) -> Verdict {
        self.check_at(self.keys.hash_one(key), self.origin.elapsed())
    }

    /// `now`: the time since the first window started.
    fn check_at(&self, key: u64, now: Duration) -> Verdict {
        let window_ms = self.window.as_millis().max(1);
        let now_ms = now.as_millis();
        let number = (now_ms / window_ms) as u64;
        let offset = (now_ms % window_ms) as f64 / window_ms as f64;
        let reset = (self.origin_ms + (u128::from(number) + 1) * window_ms).div_ceil(1000) as u64;
        let limit = self.limit;
        if self.window_number.fetch_max(number, Ordering::Relaxed) < number {
            for shard in &self.shards {
                shard.lock().unwrap_or_else(|e| e.into_inner()).roll(number);
            }
        }
        let mut shard = self.shards[key as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard.roll(number);
        let previous = shard.previous.get(&key).copied().unwrap_or(0);
        let current = shard.current.get(&key).copied().unwrap_or(0);
        let rate = f64::from(previous) * (1.0 - offset) + f64::from(current);
        let rounded = rate.round() as u64;
        if rounded + 1 > u64::from(limit) {
            return Verdict {
                limit,
                remaining: 0,
                reset,
                retry_after: Some(self.wait(previous, current, offset)),
            };
        }
        let room = shard.current.len() < MAX_KEYS / SHARDS;
        match shard.current.get_mut(&key) {
            Some(n) => *n += 1,
            None if room => {
                shard.current.insert(key, 1);
            }
            None => {
                if !shard.full {
                    shard.full = true;
                    log::warn!(
                        "rate limit: over {MAX_KEYS} callers in one window; the others are not counted until it ends"
                    );
                }
            }
        }
        Verdict {
            limit,
            remaining: (u64::from(limit) - rounded - 1) as u32,
            reset,
            retry_after: None,
        }
    }

    /// How long until a key with these counts is let through (nothing else counted): its rate
    /// must fall under `limit - 0.5` (rounded, plus one, at most the limit).
    fn wait(&self, previous: u32, current: u32, offset: f64) -> u64 {
        let (p, c, l) = (
            f64::from(previous),
            f64::from(current),
            f64::from(self.limit),
        );
        let room = l - 0.5 - c;
        // Later in this window, as the previous window's share fades.
        let at = if room > 0.0 && p > 0.0 {
            Some(1.0 - room / p).filter(|at| *at < 1.0)
        } else {
            None
        };
        let windows = match at {
            Some(at) => (at - offset).max(0.0),
            // In the next window, where this window's count is the previous one.
            None => {
                let at = if c > l - 0.5 {
                    1.0 - (l - 0.5) / c
                } else {
                    0.0
                };
                1.0 - offset + at
            }
        };
        let seconds = windows * self.window.as_secs_f64();
        // A little over, so a client that waits exactly this long is let through.
        (seconds + 0.001).ceil().max(1.0) as u64
    }
}

impl Shard {
    /// Moves to window `number`: the current counts become the previous ones when it is the
    /// next window, and are forgotten when it is later still. Never back (a request whose
    /// time was read just before the window changed counts in the new one).
    fn roll(&mut self, number: u64) {
        if number <= self.window {
            return;
        }
        self.previous = if number == self.window + 1 {
            std::mem::take(&mut self.current)
        } else {
            Counts::default()
        };
        self.current = Counts::default();
        self.full = false;
        self.window = number;
    }
}

/// A duration as Go writes it (`time.Duration.String`): Coder's 429 message names its window
/// this way (`1m0s`).
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    let fraction = |whole: u128, part: u128, digits: usize| {
        let mut s = whole.to_string();
        if part > 0 {
            let f = format!("{part:0digits$}");
            s.push('.');
            s.push_str(f.trim_end_matches('0'));
        }
        s
    };
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", fraction(nanos / 1_000, nanos % 1_000, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", fraction(nanos / 1_000_000, nanos % 1_000_000, 6));
    }
    let secs = nanos / 1_000_000_000;
    let seconds = format!("{}s", fraction(secs % 60, nanos % 1_000_000_000, 9));
    let (minutes, hours) = ((secs / 60) % 60, secs / 3600);
    match (hours, secs / 60) {
        (0, 0) => seconds,
        (0, _) => format!("{minutes}m{seconds}"),
        _ => format!("{hours}h{minutes}m{seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn at(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    /// A limiter whose first window started at the epoch.
    fn limiter(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            origin_ms: 0,
            ..RateLimiter::new(limit, window)
        }
    }

    #[test]
    fn a_window_lets_the_limit_through_then_refuses() {
        let l = limiter(3, MINUTE);
        let t = at(600.0);
        for left in [2, 1, 0] {
            let v = l.check_at(1, t);
            assert_eq!((v.remaining, v.retry_after), (left, None));
            assert_eq!(v.reset, 660);
        }
        // In the next window, this one's 3 weigh under 2.5 once a sixth of it has passed.
        let v = l.check_at(1, t);
        assert_eq!(v.retry_after, Some(71));
        assert_eq!(v.remaining, 0);
        // Another key has its own count.
        assert_eq!(l.check_at(2, t).retry_after, None);
    }

    #[test]
    fn the_previous_window_fades() {
        let l = limiter(4, MINUTE);
        for _ in 0..4 {
            assert_eq!(l.check_at(1, at(659.0)).retry_after, None);
        }
        // At 660 + 15: the previous 4 weigh 3 (rate 3, plus one: 4, let through).
        assert_eq!(l.check_at(1, at(675.0)).retry_after, None);
        // Now 3 + 1 = 4: refused until the previous share is under 2.5 (at 660 + 22.5).
        let v = l.check_at(1, at(675.0));
        assert_eq!(v.retry_after, Some(8));
        assert!(l.check_at(1, at(682.4)).retry_after.is_some());
        assert_eq!(l.check_at(1, at(683.0)).retry_after, None);
    }

    #[test]
    fn waiting_the_retry_after_is_enough() {
        for (limit, start) in [(1, 0.0), (3, 0.01), (60, 30.0), (60, 59.99), (2, 59.0)] {
            let l = limiter(limit, MINUTE);
            let t0 = 6000.0 + start;
            let mut now = t0;
            while l.check_at(7, at(now)).retry_after.is_none() {
                now += 0.001;
            }
            let wait = l.check_at(7, at(now)).retry_after.unwrap() as f64;
            assert!(
                l.check_at(7, at(now + wait)).retry_after.is_none(),
                "limit {limit}, start {start}: still refused after {wait} s"
            );
        }
    }

    #[test]
    fn old_windows_are_forgotten() {
        let l = limiter(1, MINUTE);
        for key in 0..100 {
            l.check_at(key, at(60.0));
        }
        l.check_at(1000, at(200.0));
        let kept: usize = l
            .shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap();
                s.current.len() + s.previous.len()
            })
            .sum();
        assert_eq!(kept, 1);
        // The earlier keys start afresh.
        assert_eq!(l.check_at(5, at(200.0)).retry_after, None);
    }

    #[test]
    fn durations_as_go_writes_them() {
        assert_eq!(go_duration(MINUTE), "1m0s");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_secs(86400)), "24h0m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
    }
}
