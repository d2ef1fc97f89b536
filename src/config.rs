//! What the operator chose on the command line.

use crate::store::Durability;
use std::path::PathBuf;
use std::time::Duration;

/// The server's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    /// A PostgreSQL database shared with other kiln servers (a `postgres://` URL or a libpq
    /// `key=value` string); `None`: the SQLite file `kiln.db` in `data_dir`.
    pub database: Option<String>,
    pub workers: usize,
    pub durability: Durability,
    /// A running job with no heartbeat for this long is failed.
    pub hung_timeout: Duration,
    /// How long running jobs may go on after SIGINT/SIGTERM before they are canceled.
    pub shutdown_grace: Duration,
    pub max_upload_bytes: usize,
}

impl Config {
    /// The SQLite file, when no `database` is given.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("kiln.db")
    }

    /// The database, for the log: the SQLite file, or PostgreSQL without any password.
    pub fn database_label(&self) -> String {
        match &self.database {
            None => self.database_path().display().to_string(),
            Some(_) => "PostgreSQL (--database)".to_string(),
        }
    }
}
