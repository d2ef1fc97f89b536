//! What the operator chose on the command line.

pub mod args;

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
    /// How often the lifecycle executor looks for workspaces to stop or start on schedule.
    pub autobuild_poll_interval: Duration,
    /// Where `/metrics` is served (its own listener); `None`: no metrics endpoint, and the API
    /// does not record its requests.
    pub prometheus_address: Option<String>,
    /// An external provisioner daemon's job with no update for this long is failed, and the
    /// daemon stops the job once it could not reach the server for this long.
    pub provisioner_lease: Duration,
    /// The logs of builds that ended longer ago than this are removed, except each workspace's
    /// latest build's (`--retain-build-logs`); `None`: kept for ever, as Coder does.
    pub retain_build_logs: Option<Duration>,
    /// Each workspace keeps its N newest builds (`--retain-builds`); `None`: every build.
    pub retain_builds: Option<u32>,
    /// How often retention looks (`--retention-interval`).
    pub retention_interval: Duration,
    /// The session cookie is `Secure` on every answer, not only over HTTPS
    /// (`--secure-auth-cookie`: behind a proxy that ends TLS).
    pub secure_auth_cookie: bool,
    /// Whether workspaces may be renamed (`--allow-workspace-renames`; off by default, as
    /// Coder's: a workspace's name is in its folder's and its agents' names).
    pub allow_workspace_renames: bool,
    /// Live streams (follows, watches, status pages) one user may hold at once
    /// (`--max-streams-per-user`).
    pub max_streams_per_user: usize,
    /// Every server flag as it was set, for `GET /deployment/config` (secrets blanked).
    pub options: Vec<ConfigOption>,
    /// Who `run` steps run as (`--step-user`, kiln as root); kiln's own user when `None`.
    pub step_user: Option<crate::provisioner::step_user::StepUser>,
    /// The cap on every job's stored log (`--max-job-log-bytes`, `domain::log_budget`).
    pub max_job_log: crate::domain::log_budget::LogCap,
    /// Requests allowed per window (`--api-rate-limit`, `--login-rate-limit`, ...).
    pub rate_limits: RateLimits,
}

/// The rate limits (`--api-rate-limit`, `--login-rate-limit`, `--files-rate-limit`,
/// `--rate-limit-window`, `--dangerous-disable-rate-limits`): each a number of requests per
/// `window`, `None` when off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Every API request, per user (per client address when signed out) and path.
    pub api: Option<u32>,
    /// Sign-in, password checks and changes, per client address and path, and sign-in per
    /// account.
    pub login: Option<u32>,
    /// File uploads and downloads, per user and path.
    pub files: Option<u32>,
    pub window: Duration,
}

impl RateLimits {
    /// Coder's defaults: 512 API requests, 60 sign-ins and 12 files a minute.
    pub const CODER: RateLimits = RateLimits {
        api: Some(512),
        login: Some(60),
        files: Some(12),
        window: Duration::from_secs(60),
    };

    /// None at all (`--dangerous-disable-rate-limits`).
    pub const OFF: RateLimits = RateLimits {
        api: None,
        login: None,
        files: None,
        window: Duration::from_secs(60),
    };

    /// A flag's number as a limit: 0 or negative is none (as Coder's `RateLimit` takes it).
    pub fn limit(n: i64) -> Option<u32> {
        (n > 0).then(|| n.min(u32::MAX as i64) as u32)
    }
}

/// One server flag as the operator set it (Coder's `serpent.Option` in its answer).
#[derive(Clone, Debug, Default)]
pub struct ConfigOption {
    /// The flag's name as help shows it (`tls-address`).
    pub flag: String,
    pub env: String,
    pub description: String,
    pub default: String,
    /// The value in use (empty for a secret, as Coder blanks them).
    pub value: String,
    /// `flag`, `env` or `default` (Coder's `value_source`); empty when not set at all.
    pub source: String,
}

impl Config {
    /// The SQLite file, when no `database` is given.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(crate::data_dir::DATABASE_FILE)
    }

    /// The database, for the log: the SQLite file, or PostgreSQL without any password.
    pub fn database_label(&self) -> String {
        match &self.database {
            None => self.database_path().display().to_string(),
            Some(_) => "PostgreSQL (--database)".to_string(),
        }
    }
}

/// A duration as Go writes them (Coder's flags take these): a sequence of numbers with units
/// `ms`, `s`, `m`, `h` (`500ms`, `2s`, `1m`, `1h30m`, `1.5s`). Zero and negative refuse.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (use e.g. 500ms, 2s, 1m, 1h, 90d)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    if total <= 0.0 || !total.is_finite() {
        return Err(format!("the duration must be positive: {text:?}"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_writes_them() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        // Days, beyond Go's units, for retentions.
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86400)));
        for bad in ["", "5", "1x", "ms", "0s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
