//! Retention (`--retain-build-logs`): a thread that removes the logs of builds that ended
//! longer ago than the retention, a small batch per transaction, never those of a workspace's
//! latest build. The builds themselves, their states and resources stay.

use crate::model::Time;
use crate::provisioner::sweeper::Ticker;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Lines removed per transaction: small enough that no other write waits on one for long.
const BATCH: i64 = 1000;
/// Batches per look at most; the rest waits for the next look.
const BATCHES: usize = 100;

pub struct Retention(Ticker);

impl Retention {
    /// Looks every tenth of `keep` (between 200 ms and 10 minutes).
    pub fn start(store: Arc<dyn Store>, keep: Duration) -> Retention {
        let every = (keep / 10).clamp(Duration::from_millis(200), Duration::from_secs(600));
        Retention(Ticker::start("kiln-retention", every, move || {
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
        }))
    }

    pub fn stop(&self) {
        self.0.stop();
    }
}
