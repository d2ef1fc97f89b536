//! kiln: Coder's workspace builds API over a local SQLite file, with an in-process provisioner.
//! `build_app` wires the HTTP server for the binary and for tests.

pub mod api;
pub mod identity;
pub mod model;
pub mod provisioner;
pub mod store;

use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::{Durability, Store};

/// What the operator chose on the command line.
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

/// Everything a request handler can reach.
pub struct AppState {
    pub store: Store,
    pub config: Config,
    pub started_at: model::Time,
    pub engine: Arc<provisioner::Engine>,
    /// Recently checked API keys (`api/session_cache.rs`).
    pub sessions: api::session_cache::SessionCache,
}

pub type State = web::Data<AppState>;

/// Opens the store in `config.data_dir` (creating it) and returns the shared state.
pub fn open_state(config: Config) -> Result<Arc<AppState>, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        format!(
            "cannot create the data directory {}: {e}",
            config.data_dir.display()
        )
    })?;
    let store = Store::open(&config.database_path(), config.durability)?;
    let engine = provisioner::Engine::start(store.clone(), config.clone());
    Ok(Arc::new(AppState {
        store,
        config,
        started_at: model::Time::now(),
        engine,
        sessions: Default::default(),
    }))
}

/// The HTTP server on `listener`. Signals are left to the caller (see `main.rs`).
pub fn build_server(
    listener: TcpListener,
    state: Arc<AppState>,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::Logger::new("%r %s %Dms").log_target("kiln::http"))
            .configure(api::configure)
    })
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Serves until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(listener: TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let server = build_server(listener, state.clone())?;
    let handle = server.handle();
    log::info!("kiln {} listening on http://{addr}", api::meta_version());
    log::info!("database: {}", state.config.database_path().display());
    if state.store.user_count().unwrap_or(0) == 0 {
        log::info!(
            "no user yet: open http://{addr}/ or run: curl -X POST http://{addr}/api/v2/users/first \
             -d '{{\"email\":\"you@example.com\",\"username\":\"you\",\"password\":\"a-long-password\"}}'"
        );
    }
    let engine = state.engine.clone();
    let grace = state.config.shutdown_grace;
    actix_web::rt::spawn(async move {
        wait_for_signal().await;
        log::info!("shutting down: no new jobs; running jobs get {grace:?} to finish");
        // Jobs end first, so live log followers see their end before the server closes.
        let _ = web::block(move || engine.shutdown(grace)).await;
        handle.stop(true).await;
        log::info!("stopped");
    });
    server.await
}

async fn wait_for_signal() {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = actix_web::rt::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
