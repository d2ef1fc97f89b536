//! What every request handler can reach.

use super::build_cache::BuildCache;
use super::session_cache::SessionCache;
use crate::config::Config;
use crate::data_dir::DataDir;
use crate::events::LiveEvents;
use crate::model::Time;
use crate::provisioner::Engine;
use crate::provisioner::queue::LocalQueue;
use crate::provisioner::sweeper::Sweeper;
use crate::store::Store;
use actix_web::web;
use std::sync::Arc;
use std::time::Duration;

/// Everything a request handler can reach.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub events: Arc<dyn LiveEvents>,
    pub queue: Arc<LocalQueue>,
    pub engine: Arc<Engine>,
    pub(crate) sweeper: Sweeper,
    /// The lifecycle executor (`autobuild.rs`).
    pub(crate) autobuild: super::autobuild::Autobuilder,
    pub config: Config,
    pub started_at: Time,
    /// Recently checked API keys (`api/session_cache.rs`).
    pub sessions: SessionCache,
    /// Recently read completed builds (`api/build_cache.rs`).
    pub builds: BuildCache,
    /// The queue's order, for ranking pending jobs (`api/queue_ranks.rs`).
    pub queue_ranks: super::queue_ranks::QueueRanks,
    /// The shared tails of the jobs being followed (`api/log_tail.rs`).
    pub(crate) tails: super::log_tail::Tails,
    /// Held for the server's lifetime: no other kiln uses the folder meanwhile.
    pub data_dir: DataDir,
}

pub type State = web::Data<AppState>;

impl AppState {
    /// Stops the lifecycle executor and taking jobs, gives running ones `grace`, then stops
    /// them and the sweeper.
    pub fn shutdown(&self, grace: Duration) {
        self.autobuild.stop();
        self.engine.shutdown(grace);
        self.sweeper.stop();
    }
}
