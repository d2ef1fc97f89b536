//! Retention: a thread that keeps the database from growing without end. Always, as Coder's
//! dbpurge: API keys that expired over a week ago, and provisioner daemons not seen for a week
//! (never this server's own workers). With `--retain-build-logs`: the logs of builds that ended
//! longer ago, a small batch per transaction, never those of a workspace's latest build; the
//! builds themselves, their states and resources stay.

use crate::model::Time;
use crate::provisioner::sweeper::Ticker;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Log lines removed per transaction: small enough that no other write waits on one for long.
const BATCH: i64 = 1000;
/// Batches per look at most; the rest waits for the next look.
const BATCHES: usize = 100;
/// Expired API keys and silent daemons are removed this long after (Coder's dbpurge).
const PURGE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often it looks (Coder's dbpurge: every 10 minutes), or a tenth of the log retention
/// when that is shorter (at least 200 ms).
const EVERY: Duration = Duration::from_secs(600);

pub struct Retention(Ticker);

impl Retention {
    pub fn start(
        store: Arc<dyn Store>,
        server_id: String,
        keep_logs: Option<Duration>,
    ) -> Retention {
        let every = keep_logs.map_or(EVERY, |keep| {
            (keep / 10).clamp(Duration::from_millis(200), EVERY)
        });
        Retention(Ticker::start("kiln-retention", every, move || {
            if let Some(keep) = keep_logs {
                purge_build_logs(&*store, keep);
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
