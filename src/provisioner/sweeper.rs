//! The server's hung-job sweeper: a thread that gives up the running jobs whose heartbeat
//! stopped for the hung timeout (`LocalQueue::sweep`), wherever their worker ran. `Ticker` is
//! the thread itself, also used by the lifecycle executor.

use super::queue::LocalQueue;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A named thread that runs `work` every `every` (the first time one `every` after the start)
/// until stopped; a run under way ends first.
pub struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Ticker {
    pub fn start(name: &str, every: Duration, mut work: impl FnMut() + Send + 'static) -> Ticker {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                loop {
                    let (lock, wake) = &*s;
                    let guard = lock.lock().unwrap();
                    let (guard, _) = wake
                        .wait_timeout_while(guard, every, |stopped| !*stopped)
                        .unwrap();
                    if *guard {
                        return;
                    }
                    drop(guard);
                    work();
                }
            })
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Ticker {
            stop,
            thread: Mutex::new(Some(thread)),
        }
    }

    pub fn stop(&self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap() = true;
        wake.notify_all();
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }
}

pub struct Sweeper(Ticker);

/// How often a server marks its built-in workers as seen.
const TOUCH_EVERY: Duration = Duration::from_secs(30);

impl Sweeper {
    /// Sweeps every quarter of the shorter of `hung_timeout` and the remote daemons' `lease`
    /// (between 200 ms and 30 s): hung jobs, remote jobs whose lease ran out, and marks this
    /// server's built-in workers (`worker_ids`) as seen.
    pub fn start(
        queue: Arc<LocalQueue>,
        hung_timeout: Duration,
        lease: Duration,
        worker_ids: Vec<String>,
    ) -> Sweeper {
        let every = (hung_timeout.min(lease) / 4)
            .clamp(Duration::from_millis(200), Duration::from_secs(30));
        let mut touched: Option<std::time::Instant> = None;
        Sweeper(Ticker::start("kiln-sweeper", every, move || {
            if let Err(e) = queue.sweep(hung_timeout) {
                log::error!("looking for hung jobs: {e}");
            }
            if let Err(e) = queue.sweep_remote(lease) {
                log::error!("looking for remote jobs past their lease: {e}");
            }
            if touched.is_none_or(|t| t.elapsed() >= TOUCH_EVERY) {
                queue.touch_workers(&worker_ids);
                touched = Some(std::time::Instant::now());
            }
        }))
    }

    pub fn stop(&self) {
        self.0.stop();
    }
}
