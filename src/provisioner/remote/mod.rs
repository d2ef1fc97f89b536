//! `kiln provisioner start`: an external provisioner daemon. It registers with a kiln server
//! under a provisioner key, then runs the server's own `Engine` and runner over `RemoteQueue`
//! (the queue seam over HTTP): jobs of its organization and tags, with the same environment
//! variables, state file and log stages as the server's built-in workers. It keeps no
//! database; its workspace folders live under `--data-dir`. The protocol is in
//! `docs/provisioners.md`; the server side is `api/provisioners/protocol.rs`.

pub mod client;
pub mod queue;
pub mod wire;

use crate::domain::provisioner_tags::Tags;
use crate::provisioner::{Engine, EngineConfig};
use client::{CallError, Client};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wire::{RegisterRequest, RegisterResponse};

/// `kiln provisioner start`'s flags.
#[derive(clap::Args, Debug)]
#[command(
    about = "Take jobs from a kiln server and run them on this machine (see docs/provisioners.md)",
    long_about = "Run provisioner jobs for a kiln server from this machine.\n\n\
        Create a key on the server first (POST /api/v2/organizations/coder/provisionerkeys as the \
        owner, with the tags this daemon serves); the daemon takes the jobs of that key's \
        organization whose tags the key's tags include, runs their steps here, streams their logs and reports their results. It keeps \
        no database: only the workspaces' folders, under --data-dir. SIGINT/SIGTERM lets \
        running jobs finish for --shutdown-grace, then cancels them, and exits 0."
)]
pub struct ProvisionerArgs {
    /// The kiln server (http://host:port, or https://host:port: its certificate is checked
    /// against the system's roots and --ca-file).
    #[arg(long, env = "KILN_URL")]
    pub url: String,

    /// The provisioner key (shown once when it was created).
    #[arg(long, env = "KILN_PROVISIONER_DAEMON_KEY", hide_env_values = true)]
    pub key: String,

    /// This daemon's name in the server's daemons listing (default: the host name). With
    /// --workers N > 1, each worker registers as NAME-0, NAME-1, ...
    #[arg(long, env = "KILN_PROVISIONER_NAME")]
    pub name: Option<String>,

    /// Refused: a daemon authenticated by a provisioner key (the only way kiln has) carries
    /// exactly the key's tags, as in Coder. Create the key with the tags the daemon serves.
    #[arg(long = "tag", env = "KILN_PROVISIONER_TAGS", value_delimiter = ',', value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,

    /// Jobs this daemon runs at once.
    #[arg(long, env = "KILN_PROVISIONER_WORKERS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,

    /// Folder for the jobs' unpacked templates and the workspaces' folders.
    #[arg(
        long,
        env = "KILN_PROVISIONER_DATA_DIR",
        default_value = "./kiln-provisioner"
    )]
    pub data_dir: PathBuf,

    /// Seconds running jobs may go on after SIGINT/SIGTERM before they are canceled.
    #[arg(long, env = "KILN_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace: u64,

    /// An https:// server: a PEM file of CA certificates its certificate may chain to, trusted
    /// besides the system's roots. An untrusted certificate stops the daemon at start.
    #[arg(long, env = "KILN_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// Run the steps of jobs as this unprivileged OS user (the daemon must run as root): they
    /// reach their job's and workspace's folders, not the daemon's key or memory.
    #[arg(long, env = "KILN_STEP_USER")]
    pub step_user: Option<String>,
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("invalid tag {text:?}: use key=value")),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "provisioner".into())
}

/// Registers one daemon per worker, retrying with backoff while the server is down.
fn register(
    client: &Client,
    names: &[String],
    tags: &Tags,
    stop: &std::sync::mpsc::Receiver<()>,
) -> Result<Vec<RegisterResponse>, String> {
    let mut out = Vec::new();
    for name in names {
        let req = RegisterRequest {
            name: name.clone(),
            tags: tags.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        let mut wait = Duration::from_millis(250);
        loop {
            match client.call::<RegisterResponse>("/register", &req, Duration::from_secs(10)) {
                Ok(Some(r)) => {
                    out.push(r);
                    break;
                }
                Ok(None) => return Err("the server answered register with no body".into()),
                Err(CallError::Unreachable(why)) => {
                    log::warn!("cannot register yet ({why}); retrying in {wait:?}");
                    if stop.recv_timeout(wait).is_ok() {
                        return Err("stopped before registering".into());
                    }
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(format!("registering {name:?}: {e}")),
            }
        }
    }
    Ok(out)
}

/// Sends `()` on SIGINT or SIGTERM.
fn signals() -> std::sync::mpsc::Receiver<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("kiln-signals".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async {
                use actix_web::rt::signal::unix::{SignalKind, signal};
                let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
                tokio::select! {
                    _ = actix_web::rt::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            });
            let _ = tx.send(());
        })
        .expect("spawn the signal thread");
    rx
}

/// Runs the daemon until SIGINT/SIGTERM (Ok) or until its key is refused (Err).
pub fn run(args: ProvisionerArgs) -> Result<(), String> {
    if !args.tags.is_empty() {
        return Err(
            "tags are not allowed when using a provisioner key: a daemon carries exactly \
             its key's tags (create a key with them: POST \
             /api/v2/organizations/{organization}/provisionerkeys {\"name\", \"tags\"})"
                .into(),
        );
    }
    let stop = signals();
    // The jobs' templates, states and workspaces: the daemon's user's alone, as a server's.
    crate::data_dir::private_dir(&args.data_dir)?;
    let step_user = match args.step_user.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(name) => {
            let user = crate::provisioner::step_user::StepUser::lookup(name)?;
            user.open_data_dir(&args.data_dir).map_err(|e| {
                format!(
                    "--step-user: cannot open {} to {name}: {e}",
                    args.data_dir.display()
                )
            })?;
            Some(user)
        }
        None => None,
    };
    // What a previous daemon on this folder left running is ended first.
    let leftover = crate::provisioner::procs::recover(&args.data_dir.join("jobs"));
    if leftover > 0 {
        log::warn!("ended {leftover} process group(s) a previous daemon on this folder left");
    }
    let name = args.name.clone().unwrap_or_else(host_name);
    let names: Vec<String> = if args.workers == 1 {
        vec![name]
    } else {
        (0..args.workers).map(|n| format!("{name}-{n}")).collect()
    };
    let tags = Tags::new();
    let client = Arc::new(Client::new(&args.url, &args.key, args.ca_file.as_deref())?);
    let registered = match register(&client, &names, &tags, &stop) {
        Ok(r) => r,
        Err(e) if e.starts_with("stopped") => return Ok(()),
        Err(e) => return Err(e),
    };
    let lease = Duration::from_millis(registered[0].lease_ms.max(1000));
    log::info!(
        "kiln provisioner {} registered with {} as {} (tags {:?}, lease {lease:?})",
        env!("CARGO_PKG_VERSION"),
        args.url,
        names.join(", "),
        registered[0].tags
    );
    let remote = queue::RemoteQueue::new(client, lease);
    let engine = Engine::start(
        Arc::new(queue::Shared(remote.clone())),
        EngineConfig {
            worker_ids: registered.iter().map(|r| r.daemon_id.clone()).collect(),
            data_dir: args.data_dir.clone(),
            hung_timeout: lease,
            step_user,
        },
    );
    let refused = loop {
        if stop.recv_timeout(Duration::from_millis(100)).is_ok() {
            break false;
        }
        if remote.key_refused.load(Ordering::SeqCst) && remote.running() == 0 {
            break true;
        }
    };
    let grace = Duration::from_secs(args.shutdown_grace);
    let running = engine.workers_busy();
    if !refused {
        log::info!("shutting down: no new jobs; {running} running job(s) get {grace:?} to finish");
    }
    remote.stopping.store(true, Ordering::SeqCst);
    let started = Instant::now();
    engine.shutdown(grace);
    if refused {
        return Err(
            "the server refused this daemon's provisioner key (it was deleted?): stopped".into(),
        );
    }
    log::info!(
        "stopped after {:?}: {running} job(s) were running at the signal",
        started.elapsed()
    );
    Ok(())
}
