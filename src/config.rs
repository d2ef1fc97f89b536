//! What the operator chose on the command line.

use crate::store::Durability;
use std::path::PathBuf;
use std::time::Duration;

/// The server's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub workers: usize,
    pub durability: Durability,
    /// A running job with no heartbeat for this long is failed.
    pub hung_timeout: Duration,
    /// How long running jobs may go on after SIGINT/SIGTERM before they are canceled.
    pub shutdown_grace: Duration,
    pub max_upload_bytes: usize,
}

impl Config {
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("kiln.db")
    }
}
