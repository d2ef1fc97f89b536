//! What every request can reach: the store, the live events, the queue and the workers, the
//! lifecycle executor, the caches and the followed jobs' shared tails.

use super::caches::builds::BuildCache;
use super::caches::queue_ranks::QueueRanks;
use super::caches::seen_daemons::SeenDaemons;
use super::caches::sessions::SessionCache;
use super::lifecycle::Autobuilder;
use super::logs::tail::Tails;
use super::retention::Retention;
use crate::config::Config;
use crate::data_dir::DataDir;
use crate::events::LiveEvents;
use crate::model::Time;
use crate::provisioner::Engine;
use crate::provisioner::queue::LocalQueue;
use crate::provisioner::sweeper::Sweeper;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Everything a request handler can reach.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub events: Arc<dyn LiveEvents>,
    pub queue: Arc<LocalQueue>,
    pub engine: Arc<Engine>,
    pub(crate) sweeper: Sweeper,
    /// The lifecycle executor (`lifecycle.rs`).
    pub(crate) autobuild: Autobuilder,
    /// What the database does not keep for ever (`retention.rs`).
    pub(crate) retention: Retention,
    pub config: Config,
    pub started_at: Time,
    /// Recently checked API keys (`caches/sessions.rs`).
    pub sessions: SessionCache,
    /// Recently read completed builds (`caches/builds.rs`).
    pub builds: BuildCache,
    /// The queue's order, for ranking pending jobs (`caches/queue_ranks.rs`).
    pub queue_ranks: QueueRanks,
    /// The shared tails of the jobs being followed (`logs/tail.rs`).
    pub(crate) tails: Tails,
    /// When each external daemon was last marked as seen (`daemons.rs`).
    pub(crate) seen_daemons: SeenDaemons,
    /// What the status pages' event streams watch, read once for all of them
    /// (`caches/overview_feed.rs`).
    pub overview_feed: super::caches::overview_feed::OverviewFeed,
    /// The live streams open now, per user (`streams.rs`).
    pub streams: super::streams::Streams,
    /// How many connections the server serves at once (from the open-file limit).
    pub(crate) connections: usize,
    /// Held for the server's lifetime: no other kiln uses the folder meanwhile.
    pub data_dir: DataDir,
}

impl AppState {
    /// Stops the lifecycle executor and taking jobs, gives running ones `grace`, then stops
    /// them and the sweeper.
    pub fn shutdown(&self, grace: Duration) {
        self.autobuild.stop();
        self.retention.stop();
        self.engine.shutdown(grace);
        self.sweeper.stop();
        self.overview_feed.stop();
    }
}
