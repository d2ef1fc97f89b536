//! Start-up in one place: `Server::build` opens the data folder and the store, gives up the
//! jobs this server held before a restart, and starts the workers, the hung-job sweeper and
//! the lifecycle executor; `run_until_stopped` serves the HTTP (and HTTPS, and metrics)
//! listeners until SIGINT or SIGTERM, then shuts down gracefully. The binary and the tests
//! start kiln the same way.

use crate::app::state::AppState;
use crate::config::args::ServerArgs;
use crate::config::{Config, ConfigOption, RateLimits};
use crate::store::Store;
use crate::{api, app, data_dir, events, metrics, model, provisioner, store};
use actix_web::{App, HttpServer, web};
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// Opens the data folder and the store in it, gives up the jobs this server held before a
/// restart, and starts the workers, the hung-job sweeper and the lifecycle executor.
fn open_state(config: Config) -> Result<Arc<AppState>, Box<dyn std::error::Error>> {
    let data_dir = data_dir::DataDir::open(&config.data_dir)?;
    if let Some(user) = &config.step_user {
        user.open_data_dir(&config.data_dir).map_err(|e| {
            format!(
                "--step-user: cannot open the data directory's jobs to {}: {e}",
                user.name
            )
        })?;
    }
    let connections = app::streams::connection_budget(raise_open_file_limit());
    let hub = Arc::new(events::Hub::new());
    let store: Arc<dyn Store> = match &config.database {
        Some(database) => Arc::new(store::postgres::PgStore::open(database, hub.clone())?),
        None => Arc::new(store::sqlite::SqliteStore::open(
            &config.database_path(),
            config.durability,
            hub.clone(),
        )?),
    };
    store.set_log_cap(config.max_job_log);
    let queue = Arc::new(provisioner::queue::LocalQueue::new(
        store.clone(),
        hub.clone(),
    ));
    let worker_ids = store.register_workers(&data_dir.server_id, config.workers)?;
    let m = metrics::global();
    m.http.set_routes(&api::routes::patterns());
    let counted = store.clone();
    m.count_daemons_with(Box::new(move || counted.daemon_count().ok()));
    queue.recover(&data_dir.server_id, &config.data_dir)?;
    let sweeper = provisioner::sweeper::Sweeper::start(
        queue.clone(),
        config.hung_timeout,
        config.provisioner_lease,
        // Only other servers read when this one's workers were last seen.
        if store.shared_by_servers() {
            worker_ids.clone()
        } else {
            Vec::new()
        },
    );
    let autobuild =
        app::lifecycle::Autobuilder::start(store.clone(), config.autobuild_poll_interval);
    let retention = app::retention::Retention::start(
        store.clone(),
        data_dir.server_id.clone(),
        app::retention::Keep {
            build_logs: config.retain_build_logs,
            builds: config.retain_builds,
            every: config.retention_interval,
        },
    );
    let engine = provisioner::Engine::start(
        queue.clone(),
        provisioner::EngineConfig {
            worker_ids,
            data_dir: config.data_dir.clone(),
            hung_timeout: config.hung_timeout,
            step_user: config.step_user.clone(),
        },
    );
    let config_streams_per_user = config.max_streams_per_user;
    let store_for_feed = store.clone();
    Ok(Arc::new(AppState {
        store,
        events: hub.clone(),
        queue,
        engine,
        sweeper,
        autobuild,
        retention,
        config,
        started_at: model::Time::now(),
        sessions: Default::default(),
        builds: app::caches::builds::BuildCache::new(&*hub),
        queue_ranks: app::caches::queue_ranks::QueueRanks::new(&*hub),
        tails: Default::default(),
        seen_daemons: Default::default(),
        overview_feed: app::caches::overview_feed::OverviewFeed::start(store_for_feed, hub.clone()),
        streams: app::streams::Streams::new(
            config_streams_per_user,
            app::streams::stream_budget(connections),
        ),
        connections,
        data_dir,
    }))
}

pub const REQUEST_HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
pub const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(60);

/// Where the server listens: plain HTTP, HTTPS (`--tls-*`), or both; at least one.
pub struct Listeners {
    pub http: Option<TcpListener>,
    pub https: Option<(TcpListener, rustls::ServerConfig)>,
}

/// The HTTP server on `listeners`. Signals are left to the caller (see `main.rs`).
pub fn build_server(
    listeners: Listeners,
    state: Arc<AppState>,
) -> std::io::Result<actix_web::dev::Server> {
    let metrics_on = state.config.prometheus_address.is_some();
    // Connections past the open-file budget wait in the listen queue instead of failing
    // kiln's own work with "Too many open files": each worker serves its share.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_worker = (state.connections / workers).max(1);
    // The server's own limits (each server counts on its own, as each of Coder's replicas).
    let limits = web::Data::new(api::extract::limits::Limits::new(&state.config.rate_limits));
    let rate_limited = limits.rate_limited();
    let data = web::Data::from(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(limits.clone())
            // Innermost: after the forged-request guard (as in Coder), counted in the metrics.
            .wrap(actix_web::middleware::Condition::new(
                rate_limited,
                actix_web::middleware::from_fn(api::middleware::rate_limit::limit),
            ))
            .wrap(actix_web::middleware::Condition::new(
                metrics_on,
                actix_web::middleware::from_fn(api::middleware::metrics::record),
            ))
            .wrap(actix_web::middleware::from_fn(api::middleware::csrf::guard))
            .wrap(api::middleware::access_log::logger())
            // Every answer names kiln's version, as Coder's do (its CLI reads the first one).
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((api::meta::BUILD_VERSION_HEADER, api::meta::version())),
            )
            .configure(api::routes::configure)
    })
    .disable_signals()
    .workers(workers)
    .max_connections(per_worker)
    // A request's head must arrive within 10 s of the connection (or of the previous
    // answer); a connection is kept for 60 s between requests, so clients that reuse
    // connections (as Coder's do: its server keeps them) rarely meet one being closed.
    .client_request_timeout(REQUEST_HEAD_TIMEOUT)
    .keep_alive(KEEP_ALIVE)
    .shutdown_timeout(5);
    if let Some(listener) = listeners.http {
        server = server.listen(listener)?;
    }
    if let Some((listener, tls)) = listeners.https {
        server = server.listen_rustls_0_23(listener, tls)?;
    }
    Ok(server.run())
}

/// The metrics listener (`--prometheus-address`): `GET /metrics` only, in the Prometheus text
/// format, encoded on the blocking pool (counting the daemons reads the store).
pub fn build_metrics_server(listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    async fn scrape() -> actix_web::HttpResponse {
        match web::block(metrics::encode).await {
            Ok(text) => actix_web::HttpResponse::Ok()
                .insert_header(("Content-Type", metrics::CONTENT_TYPE))
                .body(text),
            Err(_) => actix_web::HttpResponse::InternalServerError().finish(),
        }
    }
    Ok(HttpServer::new(|| {
        App::new()
            .route("/metrics", web::get().to(scrape))
            .default_service(web::to(|| async {
                actix_web::HttpResponse::NotFound().body("404 page not found\n")
            }))
    })
    .disable_signals()
    .workers(1)
    .client_request_timeout(REQUEST_HEAD_TIMEOUT)
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

/// A kiln server, built (its state open, its workers started) and ready to serve.
pub struct Server {
    state: Arc<AppState>,
    listeners: Listeners,
}

impl Server {
    /// Opens the state `config` names and takes the listeners it will serve on.
    pub fn build(
        config: Config,
        listeners: Listeners,
    ) -> Result<Server, Box<dyn std::error::Error>> {
        Ok(Server {
            state: open_state(config)?,
            listeners,
        })
    }

    /// The server `kiln server`'s flags describe: its settings, and its listeners bound.
    /// `options` says how each flag was set (`config::args::options`).
    pub fn from_args(
        args: ServerArgs,
        options: Vec<ConfigOption>,
    ) -> Result<Server, Box<dyn std::error::Error>> {
        let config = Config {
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
            retain_build_logs: args.retain_build_logs.filter(|d| !d.is_zero()),
            retain_builds: (args.retain_builds > 0).then_some(args.retain_builds),
            retention_interval: args
                .retention_interval
                .max(std::time::Duration::from_millis(100)),
            secure_auth_cookie: args.secure_auth_cookie,
            allow_workspace_renames: args.allow_workspace_renames,
            max_streams_per_user: args.max_streams_per_user.max(1),
            options,
            step_user: args
                .step_user
                .as_deref()
                .filter(|u| !u.trim().is_empty())
                .map(provisioner::step_user::StepUser::lookup)
                .transpose()?,
            max_job_log: crate::domain::log_budget::LogCap::new(args.max_job_log_bytes)?,
            rate_limits: if args.dangerous_disable_rate_limits {
                RateLimits::OFF
            } else {
                RateLimits {
                    api: RateLimits::limit(args.api_rate_limit),
                    login: RateLimits::limit(args.login_rate_limit),
                    files: RateLimits::limit(args.files_rate_limit),
                    window: args.rate_limit_window,
                }
            },
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
            let tls = crate::tls::server_config(cert, key, args.tls_min_version)?;
            Some((bind(&args.tls_address)?, tls))
        } else {
            None
        };
        Server::build(config, Listeners { http, https })
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Where plain HTTP is served, if it is.
    pub fn http_address(&self) -> Option<SocketAddr> {
        self.listeners
            .http
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(wait_for_signal()).await
    }

    /// Serves until `stop` completes, then shuts down gracefully: no new jobs, running jobs
    /// get `--shutdown-grace`, then the listeners close.
    pub async fn run_until(self, stop: impl Future<Output = ()> + 'static) -> std::io::Result<()> {
        let Server { state, listeners } = self;
        let http = listeners
            .http
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()?;
        let https = listeners
            .https
            .as_ref()
            .map(|(l, _)| l.local_addr())
            .transpose()?;
        let server = build_server(listeners, state.clone())?;
        let handle = server.handle();
        let metrics_server = match &state.config.prometheus_address {
            Some(address) => {
                let listener = TcpListener::bind(address).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}"))
                })?;
                log::info!("metrics on http://{}/metrics", listener.local_addr()?);
                Some(build_metrics_server(listener)?)
            }
            None => None,
        };
        let metrics_handle = metrics_server.as_ref().map(|s| s.handle());
        if let Some(s) = metrics_server {
            actix_web::rt::spawn(s);
        }
        if let Some(addr) = http {
            log::info!("kiln {} listening on http://{addr}", api::meta::version());
        }
        if let Some(addr) = https {
            log::info!("kiln {} listening on https://{addr}", api::meta::version());
        }
        log::info!("database: {}", state.config.database_label());
        let addr = match (https, http) {
            (Some(a), _) => format!("https://{a}"),
            (None, Some(a)) => format!("http://{a}"),
            (None, None) => unreachable!("main.rs refuses a server with no listener"),
        };
        let store = state.store.clone();
        let no_user = web::block(move || store.user_count().unwrap_or(0) == 0)
            .await
            .unwrap_or(false);
        if no_user {
            log::info!(
                "no user yet: open {addr}/ or run: curl -X POST {addr}/api/v2/users/first \
                 -d '{{\"email\":\"you@example.com\",\"username\":\"you\",\"password\":\"a-long-password\"}}'"
            );
        }
        let grace = state.config.shutdown_grace;
        actix_web::rt::spawn(async move {
            stop.await;
            log::info!("shutting down: no new jobs; running jobs get {grace:?} to finish");
            // Jobs end first, so live log followers see their end before the server closes.
            let _ = web::block(move || state.shutdown(grace)).await;
            if let Some(m) = metrics_handle {
                m.stop(true).await;
            }
            handle.stop(true).await;
            log::info!("stopped");
        });
        server.await
    }
}

async fn wait_for_signal() {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = actix_web::rt::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// Every connection, log follower and database file is a file descriptor: the soft limit
/// (often 1,024) is raised to the hard one, as Go's runtime does for Coder. Returns the limit
/// in force.
fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            let wanted = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
                log::warn!(
                    "could not raise the open-file limit from {}",
                    limit.rlim_cur
                );
            }
        }
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
    }
    limit.rlim_cur
}
