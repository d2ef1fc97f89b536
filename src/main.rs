//! The `kiln` command line. Everything else lives in the library.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use kiln::store::Durability;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "A small build server that speaks Coder's workspace builds API (/api/v2), and its command-line client."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API, the status page and the provisioner workers.
    Server(ServerArgs),
    /// External provisioner daemons: run a kiln server's jobs on this machine.
    #[command(subcommand)]
    Provisioner(ProvisionerCommand),
    /// The client commands (`src/cli/`).
    #[command(flatten)]
    Client(kiln::cli::Command),
}

#[derive(Subcommand)]
enum ProvisionerCommand {
    // Its help is the args struct's own (src/provisioner/remote/mod.rs).
    Start(kiln::provisioner::remote::ProvisionerArgs),
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Address to serve plain HTTP on (host:port). Port 0 picks a free port; the log says
    /// which. Empty turns plain HTTP off (with --tls-enable).
    #[arg(long, env = "KILN_ADDRESS", default_value = "127.0.0.1:3000")]
    address: String,

    /// Serve HTTPS too, on --tls-address, with --tls-cert-file and --tls-key-file. The
    /// session cookie is Secure on answers over HTTPS.
    #[arg(long, env = "KILN_TLS_ENABLE")]
    tls_enable: bool,

    /// Address to serve HTTPS on (host:port; port 0 picks a free port).
    #[arg(long, env = "KILN_TLS_ADDRESS", default_value = "127.0.0.1:3443")]
    tls_address: String,

    /// The server's certificate, with its chain (PEM).
    #[arg(long, env = "KILN_TLS_CERT_FILE")]
    tls_cert_file: Option<PathBuf>,

    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "KILN_TLS_KEY_FILE")]
    tls_key_file: Option<PathBuf>,

    /// The oldest TLS version HTTPS accepts: tls12 or tls13.
    #[arg(long, env = "KILN_TLS_MIN_VERSION", default_value = "tls12")]
    tls_min_version: kiln::tls::MinVersion,

    /// Mark the session cookie Secure on every answer, plain HTTP too: for a server behind a
    /// proxy that ends TLS.
    #[arg(long, env = "KILN_SECURE_AUTH_COOKIE")]
    secure_auth_cookie: bool,

    /// Let users rename their workspaces (PATCH /workspaces/{id}), as Coder's flag does.
    #[arg(long, env = "KILN_ALLOW_WORKSPACE_RENAMES")]
    allow_workspace_renames: bool,

    /// Run the steps of builds as this unprivileged OS user (kiln must run as root): they
    /// reach their job's and workspace's folders, not kiln's database, keys or memory.
    #[arg(long, env = "KILN_STEP_USER")]
    step_user: Option<String>,

    /// Folder for the database (kiln.db), the server's id and the workspace folders; created if
    /// missing. One kiln server at a time uses it.
    #[arg(long, env = "KILN_DATA_DIR", default_value = "./kiln-data")]
    data_dir: PathBuf,

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
    database: Option<String>,

    /// A file holding the --database connection string (readable by kiln's user alone).
    #[arg(long, env = "KILN_DATABASE_FILE")]
    database_file: Option<PathBuf>,

    /// Provisioner worker threads: how many jobs run at once. 0 queues jobs without running
    /// them (to inspect or move a queue).
    #[arg(long, env = "KILN_WORKERS", default_value_t = 3, value_parser = clap::value_parser!(u16).range(0..=256))]
    workers: u16,

    /// Commit durability: `full` waits for the disk on every commit; `normal` may lose the
    /// last commits on power loss (never on a crash of kiln alone).
    #[arg(long, env = "KILN_DURABILITY", value_enum, default_value_t = DurabilityArg::Full)]
    durability: DurabilityArg,

    /// Seconds without a heartbeat after which a running job is failed as hung.
    #[arg(long, env = "KILN_HUNG_TIMEOUT", default_value_t = 300)]
    hung_timeout: u64,

    /// Seconds running jobs may go on after SIGINT/SIGTERM before they are canceled.
    #[arg(long, env = "KILN_SHUTDOWN_GRACE", default_value_t = 10)]
    shutdown_grace: u64,

    /// Largest template upload accepted, in bytes (larger answers 413).
    #[arg(long, env = "KILN_MAX_UPLOAD_BYTES", default_value_t = 10 * 1024 * 1024)]
    max_upload_bytes: usize,

    /// How often the lifecycle executor stops workspaces past their deadline and starts those
    /// whose autostart schedule has come (e.g. 500ms, 2s, 1m).
    #[arg(long, env = "KILN_AUTOBUILD_POLL_INTERVAL", default_value = "1m", value_parser = kiln::config::parse_duration)]
    autobuild_poll_interval: Duration,

    /// Serve Prometheus metrics at /metrics on this address (host:port; Coder's default is
    /// 127.0.0.1:2112). Off unless set.
    #[arg(long, env = "KILN_PROMETHEUS_ADDRESS")]
    prometheus_address: Option<String>,
    /// How long an external provisioner daemon's job may go without an update before it is
    /// failed (a daemon killed or cut off); daemons stop a job they could not update for it.
    /// Keep it well under --hung-timeout.
    #[arg(long, env = "KILN_PROVISIONER_LEASE", default_value = "30s", value_parser = kiln::config::parse_duration)]
    provisioner_lease: Duration,
}

/// `--durability`, as the command line spells it.
#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
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

fn main() {
    // Log lines only for the long-running commands: the client's output stays its own.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Server(mut args) => {
            init_log();
            let options = matches
                .subcommand_matches("server")
                .map(server_options)
                .unwrap_or_default();
            database(&mut args).and_then(|()| serve(args, options))
        }
        Command::Provisioner(ProvisionerCommand::Start(args)) => {
            init_log();
            // A step on this machine runs as the daemon's user: the key leaves what it can read.
            kiln::secrets::hide(&[&args.key], &["KILN_PROVISIONER_DAEMON_KEY"]);
            kiln::provisioner::remote::run(args).map_err(Into::into)
        }
        Command::Client(cmd) => std::process::exit(kiln::cli::run(cmd)),
    };
    if let Err(e) = result {
        log::error!("{e}");
        std::process::exit(1);
    }
}

fn init_log() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}

/// The database's connection string, from --database or --database-file, then hidden from
/// this process's command line and environment (a step runs as kiln's user and could read
/// them in /proc).
fn database(args: &mut ServerArgs) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(path) = &args.database_file {
        args.database = Some(kiln::secrets::read_file(path)?);
    }
    if let Some(database) = &args.database {
        kiln::secrets::hide(&[database], &["KILN_DATABASE"]);
    }
    Ok(())
}

/// Every flag of `kiln server` as it was set: its help, environment variable, default, value
/// and where the value came from. Secrets (`--database`) show no value.
fn server_options(matches: &clap::ArgMatches) -> Vec<kiln::config::ConfigOption> {
    let command = Cli::command();
    let Some(server) = command.find_subcommand("server") else {
        return Vec::new();
    };
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
            kiln::config::ConfigOption {
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

fn serve(
    args: ServerArgs,
    options: Vec<kiln::config::ConfigOption>,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = kiln::config::Config {
        data_dir: args.data_dir,
        database: args.database.filter(|d| !d.trim().is_empty()),
        workers: args.workers as usize,
        durability: args.durability.into(),
        hung_timeout: Duration::from_secs(args.hung_timeout),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        max_upload_bytes: args.max_upload_bytes,
        autobuild_poll_interval: args.autobuild_poll_interval,
        prometheus_address: args.prometheus_address.filter(|a| !a.trim().is_empty()),
        provisioner_lease: args.provisioner_lease,
        secure_auth_cookie: args.secure_auth_cookie,
        allow_workspace_renames: args.allow_workspace_renames,
        options,
        step_user: args
            .step_user
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(kiln::provisioner::step_user::StepUser::lookup)
            .transpose()?,
    };
    let bind = |address: &str| {
        TcpListener::bind(address).map_err(|e| format!("cannot listen on {address}: {e}"))
    };
    let http = match args.address.trim() {
        "" if !args.tls_enable => {
            return Err(
                "--address is empty: give an address, or serve HTTPS (--tls-enable)".into(),
            );
        }
        "" => None,
        address => Some(bind(address)?),
    };
    let https = if args.tls_enable {
        let (Some(cert), Some(key)) = (&args.tls_cert_file, &args.tls_key_file) else {
            return Err("--tls-enable needs --tls-cert-file and --tls-key-file".into());
        };
        let tls = kiln::tls::server_config(cert, key, args.tls_min_version)?;
        Some((bind(&args.tls_address)?, tls))
    } else {
        None
    };
    let server = kiln::startup::Server::build(config, kiln::startup::Listeners { http, https })?;
    actix_web::rt::System::new().block_on(server.run_until_stopped())?;
    Ok(())
}
