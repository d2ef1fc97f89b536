//! Retention: a thread that keeps the database from growing without end. Always, as Coder's
//! dbpurge: API keys that expired over a week ago, and provisioner daemons not seen for a week
//! (never this server's own workers). With `--retain-build-logs`: the logs of builds that ended
//! longer ago, a small batch per transaction, never those of a workspace's latest build; the
//! builds themselves, their states and resources stay. With `--retain-builds N`: each
//! workspace's builds older than its N newest, with their jobs, logs, resources and
//! parameters, a few builds per transaction, never the latest build (it holds the workspace's
//! state) nor a build whose job has not ended.

use crate::model::Time;
use crate::provisioner::sweeper::Ticker;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Log lines removed per transaction: small enough that no other write waits on one for long.
const BATCH: i64 = 1000;
/// Batches per look at most; the rest waits for the next look.
const BATCHES: usize = 100;
/// Old builds removed per transaction (each with up to a 1 MiB log).
const BUILD_BATCH: i64 = 20;
/// Expired API keys and silent daemons are removed this long after (Coder's dbpurge).
const PURGE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// What retention keeps, and how often it looks.
pub struct Keep {
    /// The logs of builds that ended within this long (`--retain-build-logs`).
    pub build_logs: Option<Duration>,
    /// Each workspace's newest builds (`--retain-builds`).
    pub builds: Option<u32>,
    /// How often it looks (`--retention-interval`, Coder's dbpurge: every 10 minutes); a
    /// tenth of the log retention when that is shorter (at least 200 ms).
    pub every: Duration,
}

pub struct Retention(Ticker);

impl Retention {
    pub fn start(store: Arc<dyn Store>, server_id: String, keep: Keep) -> Retention {
        let every = keep.build_logs.map_or(keep.every, |logs| {
            (logs / 10).clamp(Duration::from_millis(200), keep.every)
        });
        Retention(Ticker::start("kiln-retention", every, move || {
            if let Some(n) = keep.builds {
                purge_old_builds(&*store, n);
            }
            if let Some(logs) = keep.build_logs {
                purge_build_logs(&*store, logs);
            }
            let week_ago = Time::now().plus_millis(-(PURGE_AFTER.as_millis() as i64));
            match store.purge_expired_api_keys(week_ago) {
                Ok(0) => {}
                Ok(n) => log::info!("removed {n} API keys that expired over a week ago"),
                Err(e) => log::error!("removing expired API keys: {e}"),
            }
            match store.purge_old_daemons(week_ago, &server_id) {
                Ok(0) => {}
                Ok(n) => log::info!("removed {n} provisioner daemons not seen for a week"),
                Err(e) => log::error!("removing old provisioner daemons: {e}"),
            }
        }))
    }

    pub fn stop(&self) {
        self.0.stop();
    }
}

fn purge_old_builds(store: &dyn Store, keep: u32) {
    let mut removed = 0;
    for _ in 0..BATCHES {
        match store.purge_old_builds(i64::from(keep), BUILD_BATCH) {
            Ok(0) => break,
            Ok(n) => removed += n,
            Err(e) => {
                log::error!("removing old builds: {e}");
                break;
            }
        }
    }
    if removed > 0 {
        log::info!("removed {removed} builds older than their workspace's {keep} newest");
    }
}

fn purge_build_logs(store: &dyn Store, keep: Duration) {
    let before = Time::now().plus_millis(-(keep.as_millis() as i64));
    let mut removed = 0;
    for _ in 0..BATCHES {
        match store.purge_build_logs(before, BATCH) {
            Ok(0) => break,
            Ok(n) => removed += n,
            Err(e) => {
                log::error!("removing old build logs: {e}");
                break;
            }
        }
    }
    if removed > 0 {
        log::info!("removed {removed} log lines of builds that ended over {keep:?} ago");
    }
}
