//! `kiln server`'s command line: every flag with its environment variable and default, and
//! how each was set (for `GET /deployment/config`). `startup::Server::from_args` turns them
//! into a `Config` and listeners.

use super::ConfigOption;
use crate::domain::log_budget::{DEFAULT_CAP, MIN_CAP};
use crate::store::Durability;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// `kiln server`'s flags, each also read from its environment variable.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// Address to serve plain HTTP on (host:port). Port 0 picks a free port; the log says
    /// which. Empty turns plain HTTP off (with --tls-enable).
    #[arg(long, env = "KILN_ADDRESS", default_value = "127.0.0.1:3000")]
    pub address: String,

    /// Serve HTTPS too, on --tls-address, with --tls-cert-file and --tls-key-file. The
    /// session cookie is Secure on answers over HTTPS.
    #[arg(long, env = "KILN_TLS_ENABLE")]
    pub tls_enable: bool,

    /// Address to serve HTTPS on (host:port; port 0 picks a free port).
    #[arg(long, env = "KILN_TLS_ADDRESS", default_value = "127.0.0.1:3443")]
    pub tls_address: String,

    /// The server's certificate, with its chain (PEM).
    #[arg(long, env = "KILN_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "KILN_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// The oldest TLS version HTTPS accepts: tls12 or tls13.
    #[arg(long, env = "KILN_TLS_MIN_VERSION", default_value = "tls12")]
    pub tls_min_version: crate::tls::MinVersion,

    /// Mark the session cookie Secure on every answer, plain HTTP too: for a server behind a
    /// proxy that ends TLS.
    #[arg(long, env = "KILN_SECURE_AUTH_COOKIE")]
    pub secure_auth_cookie: bool,

    /// Let users rename their workspaces (PATCH /workspaces/{id}), as Coder's flag does.
    #[arg(long, env = "KILN_ALLOW_WORKSPACE_RENAMES")]
    pub allow_workspace_renames: bool,

    /// Run the steps of builds as this unprivileged OS user (kiln must run as root): they
    /// reach their job's and workspace's folders, not kiln's database, keys or memory.
    #[arg(long, env = "KILN_STEP_USER")]
    pub step_user: Option<String>,

    /// Folder for the database (kiln.db), the server's id and the workspace folders; created if
    /// missing. One kiln server at a time uses it.
    #[arg(long, env = "KILN_DATA_DIR", default_value = "./kiln-data")]
    pub data_dir: PathBuf,

    /// A PostgreSQL database to keep everything in instead of kiln.db, shared by every kiln
    /// server that names it: a URL (postgres://user:password@host:5432/db?sslmode=verify-full)
    /// or a libpq string (host=/run/postgresql dbname=kiln user=kiln). kiln hides it from its
    /// command line and environment once read; --database-file keeps it out of both.
    #[arg(
        long,
        env = "KILN_DATABASE",
        hide_env_values = true,
        conflicts_with = "database_file"
    )]
    pub database: Option<String>,

    /// A file holding the --database connection string (readable by kiln's user alone).
    #[arg(long, env = "KILN_DATABASE_FILE")]
    pub database_file: Option<PathBuf>,

    /// Provisioner worker threads: how many jobs run at once. 0 queues jobs without running
    /// them (to inspect or move a queue).
    #[arg(long, env = "KILN_WORKERS", default_value_t = 3, value_parser = clap::value_parser!(u16).range(0..=256))]
    pub workers: u16,

    /// Commit durability: `full` waits for the disk on every commit; `normal` may lose the
    /// last commits on power loss (never on a crash of kiln alone).
    #[arg(long, env = "KILN_DURABILITY", value_enum, default_value_t = DurabilityArg::Full)]
    pub durability: DurabilityArg,

    /// Seconds without a heartbeat after which a running job is failed as hung.
    #[arg(long, env = "KILN_HUNG_TIMEOUT", default_value_t = 300)]
    pub hung_timeout: u64,

    /// Seconds running jobs may go on after SIGINT/SIGTERM before they are canceled.
    #[arg(long, env = "KILN_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace: u64,

    /// Live streams (log follows, workspace watches, status pages, dynamic parameters) one user
    /// may hold at once; one more answers 429. A browser tab holds a handful.
    #[arg(long, env = "KILN_MAX_STREAMS_PER_USER", default_value_t = 100)]
    pub max_streams_per_user: usize,

    /// Largest template upload accepted, in bytes (larger answers 413).
    #[arg(long, env = "KILN_MAX_UPLOAD_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// How often the lifecycle executor stops workspaces past their deadline and starts those
    /// whose autostart schedule has come (e.g. 500ms, 2s, 1m).
    #[arg(long, env = "KILN_AUTOBUILD_POLL_INTERVAL", default_value = "1m", value_parser = super::parse_duration)]
    pub autobuild_poll_interval: Duration,

    /// Serve Prometheus metrics at /metrics on this address (host:port; Coder's default is
    /// 127.0.0.1:2112). Off unless set.
    #[arg(long, env = "KILN_PROMETHEUS_ADDRESS")]
    pub prometheus_address: Option<String>,
    /// How long an external provisioner daemon's job may go without an update before it is
    /// failed (a daemon killed or cut off); daemons stop a job they could not update for it.
    /// Keep it well under --hung-timeout.
    #[arg(long, env = "KILN_PROVISIONER_LEASE", default_value = "30s", value_parser = super::parse_duration)]
    pub provisioner_lease: Duration,

    /// Remove the logs of builds that ended longer ago than this (e.g. 90d), except each
    /// workspace's latest build's; the builds themselves, their states and resources stay.
    /// Kept for ever when unset, as Coder keeps them.
    #[arg(long, env = "KILN_RETAIN_BUILD_LOGS", value_parser = super::parse_duration)]
    pub retain_build_logs: Option<Duration>,

    /// Keep each workspace's N newest builds: older ended builds are removed with their jobs,
    /// logs, resources and parameters (never a workspace's latest build, which holds its state,
    /// nor a build still running or queued). 0 keeps every build, as Coder does.
    #[arg(long, env = "KILN_RETAIN_BUILDS", default_value_t = 0)]
    pub retain_builds: u32,

    /// How often retention looks for what to remove (Coder's dbpurge: every 10 minutes).
    #[arg(long, env = "KILN_RETENTION_INTERVAL", default_value = "10m", value_parser = super::parse_duration)]
    pub retention_interval: Duration,

    /// The most a job's stored log may take, in bytes (1 MiB by default, as Coder's), each line
    /// counted as its output plus 64 bytes: a log that goes past it keeps its first lines, one
    /// line saying how many lines and bytes were dropped there, and its last lines (a quarter
    /// of the cap), the end of a failed build included. At least 131072 (128 KiB).
    #[arg(long, env = "KILN_MAX_JOB_LOG_BYTES", default_value_t = DEFAULT_CAP,
        value_parser = clap::value_parser!(i64).range(MIN_CAP..))]
    pub max_job_log_bytes: i64,
    // Rate limits, as Coder's (coderd/httpmw/ratelimit.go): counted per user (per client
    // address when signed out) and per path, over a sliding window, by each server on its own.
    /// Disable every rate limit (API, sign-in, files). Not for production.
    #[arg(long, env = "KILN_DANGEROUS_DISABLE_RATE_LIMITS")]
    pub dangerous_disable_rate_limits: bool,

    /// Requests per minute to one API path allowed per user, or per client address when
    /// signed out; 0 or negative means no limit. Owners may skip it with the header
    /// X-Coder-Bypass-Ratelimit: true.
    #[arg(
        long,
        env = "KILN_API_RATE_LIMIT",
        default_value_t = 512,
        allow_negative_numbers = true
    )]
    pub api_rate_limit: i64,

    /// Sign-in attempts per minute allowed per client address and per account (also password
    /// changes and checks); 0 or negative means no limit.
    #[arg(
        long,
        env = "KILN_LOGIN_RATE_LIMIT",
        default_value_t = 60,
        allow_negative_numbers = true
    )]
    pub login_rate_limit: i64,

    /// File uploads and downloads per minute allowed per user and path; 0 or negative means no
    /// limit.
    #[arg(
        long,
        env = "KILN_FILES_RATE_LIMIT",
        default_value_t = 12,
        allow_negative_numbers = true
    )]
    pub files_rate_limit: i64,

    /// The window the rate limits count over (Coder's is a minute): for tests.
    #[arg(long, env = "KILN_RATE_LIMIT_WINDOW", default_value = "1m", value_parser = super::parse_duration, hide = true)]
    pub rate_limit_window: Duration,
}

/// `--durability`, as the command line spells it.
#[derive(Clone, Copy, ValueEnum)]
pub enum DurabilityArg {
    /// Every commit reaches the disk before it is acknowledged (default).
    Full,
    /// A power loss may forget the last commits; a crash of kiln alone loses nothing.
    Normal,
}

impl From<DurabilityArg> for Durability {
    fn from(d: DurabilityArg) -> Durability {
        match d {
            DurabilityArg::Full => Durability::Full,
            DurabilityArg::Normal => Durability::Normal,
        }
    }
}

/// Every flag of `kiln server` as it was set: its help, environment variable, default, value
/// and where the value came from. Secrets (`--database`) show no value.
pub fn options(matches: &clap::ArgMatches) -> Vec<ConfigOption> {
    let server = ServerArgs::augment_args(clap::Command::new("server"));
    let text = |v: &[&std::ffi::OsStr]| {
        v.iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(",")
    };
    server
        .get_arguments()
        .filter(|a| a.get_long().is_some())
        .map(|a| {
            let id = a.get_id().as_str();
            let secret = id == "database";
            let value = matches
                .get_raw(id)
                .map(|v| text(&v.collect::<Vec<_>>()))
                .unwrap_or_default();
            ConfigOption {
                flag: a.get_long().unwrap_or_default().to_string(),
                env: a
                    .get_env()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                description: a.get_help().map(|h| h.to_string()).unwrap_or_default(),
                default: text(
                    &a.get_default_values()
                        .iter()
                        .map(|d| d.as_os_str())
                        .collect::<Vec<_>>(),
                ),
                value: if secret { String::new() } else { value },
                source: match matches.value_source(id) {
                    Some(clap::parser::ValueSource::CommandLine) => "flag",
                    Some(clap::parser::ValueSource::EnvVariable) => "env",
                    Some(clap::parser::ValueSource::DefaultValue) => "default",
                    _ => "",
                }
                .to_string(),
            }
        })
        .collect()
}

/// `kiln backup`: a consistent copy of a data folder's embedded database, taken while its
/// server runs (builds go on); restore it with `kiln restore`.
#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The file to write the copy to: a new file (it must not exist), readable by you alone.
    pub file: PathBuf,

    /// The data folder whose database (kiln.db) is copied; its server may be running.
    #[arg(long, env = "KILN_DATA_DIR", default_value = "./kiln-data")]
    pub data_dir: PathBuf,
}

/// `kiln restore`: puts a copy made by `kiln backup` back as a data folder's database.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The copy made by `kiln backup` (checked before anything is replaced).
    pub file: PathBuf,

    /// The data folder to restore into (created if missing); no kiln server may be using it.
    /// Its database is replaced; the jobs that were running when the copy was taken are failed.
    #[arg(long, env = "KILN_DATA_DIR", default_value = "./kiln-data")]
    pub data_dir: PathBuf,
}
