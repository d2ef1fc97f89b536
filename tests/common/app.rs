//! kiln in-process: a `TestApp` is a whole kiln server (store, workers, sweeper, lifecycle
//! executor, HTTP listener) started inside the test binary by `kiln::startup::Server`, the way
//! `kiln server` starts, on a real port of its own (127.0.0.1:0) with a fresh data dir. Tests
//! reach it over real HTTP and WebSockets, like any client.
//!
//! It runs on a thread of its own with its own actix System, until the `TestApp` is dropped:
//! then it shuts down gracefully (no new jobs, running jobs get `--shutdown-grace`, 0 unless the
//! test gives one, then the listeners close) and the thread is joined, so the data dir is free
//! again (a test may start another `TestApp` on it).
//!
//! What an in-process server cannot do is kept by the process tests (`TestServer`): its log
//! is not captured, and it shares the test binary's process (its environment, /proc entry,
//! metrics registry, and the settings the library reads once per process).

use super::{Kiln, database_for, postgres_mode, register_database};
use clap::{CommandFactory, FromArgMatches};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `kiln server`'s flags, parsed as the binary parses them.
#[derive(clap::Parser)]
#[command(name = "kiln")]
struct ServerCommand {
    #[command(flatten)]
    args: kiln::config::args::ServerArgs,
}

pub struct TestApp {
    /// `127.0.0.1:port`, where plain HTTP is served.
    pub addr: String,
    pub dir: PathBuf,
    /// PostgreSQL mode: the `--database` connection string.
    pub database: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    /// The server's state: it holds the data dir's lock and the store, and is dropped (by the
    /// HTTP workers' threads) shortly after the server has stopped.
    state: Weak<kiln::app::state::AppState>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestApp {
    /// A server on a fresh temporary data dir.
    pub fn start() -> TestApp {
        Self::start_with_args(&[])
    }

    /// A server on a fresh temporary data dir, with `kiln server` flags of the test's own.
    pub fn start_with_args(args: &[&str]) -> TestApp {
        let tmp = tempfile::tempdir().unwrap();
        let mut app = Self::start_in(tmp.path(), args);
        app._tmp = Some(tmp);
        app
    }

    /// A second server on the database of `other` (PostgreSQL mode only), with a data dir of
    /// its own, as on another machine.
    pub fn start_sharing(other: &TestApp, args: &[&str]) -> TestApp {
        let Some(database) = &other.database else {
            panic!(
                "TestApp::start_sharing needs KILN_TEST_STORE=postgres: with SQLite two servers \
                 cannot share a database (one kiln per data folder); skip the test unless \
                 common::postgres_mode()"
            )
        };
        let tmp = tempfile::tempdir().unwrap();
        register_database(tmp.path(), database);
        let mut app = Self::start_in(tmp.path(), args);
        app._tmp = Some(tmp);
        app
    }

    /// A server on `dir` (kept by the caller, e.g. for another server on the same data after
    /// this one is dropped; in PostgreSQL mode the same dir means the same database).
    pub fn start_in(dir: &Path, args: &[&str]) -> TestApp {
        let database = postgres_mode().then(|| database_for(dir));
        let mut argv: Vec<String> = vec!["kiln".into()];
        if !args.contains(&"--address") {
            argv.extend(["--address".into(), "127.0.0.1:0".into()]);
        }
        // The process tests' servers are killed at the end: nothing waits for running jobs.
        if !args.contains(&"--shutdown-grace") {
            argv.extend(["--shutdown-grace".into(), "0".into()]);
        }
        argv.extend(["--data-dir".into(), dir.display().to_string()]);
        // Tests send many requests at once: no rate limit unless the test sets one.
        if !args.iter().any(|a| a.contains("rate-limit")) {
            argv.push("--dangerous-disable-rate-limits".into());
        }
        if let Some(db) = database.as_ref().filter(|_| !args.contains(&"--database")) {
            argv.extend(["--database".into(), db.clone()]);
        }
        argv.extend(args.iter().map(|a| a.to_string()));
        let matches = ServerCommand::command()
            .try_get_matches_from(&argv)
            .unwrap_or_else(|e| panic!("kiln server {argv:?}: {e}"));
        let mut server = ServerCommand::from_arg_matches(&matches).unwrap().args;
        // The store is the test's: never one named in the test process's environment (as the
        // process tests remove KILN_DATABASE from their servers' environment).
        if !args.contains(&"--database") {
            server.database = database.clone();
        }
        if !args.contains(&"--database-file") {
            server.database_file = None;
        }
        let options = kiln::config::args::options(&matches);
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = env_logger::Builder::from_default_env()
                .is_test(true)
                .try_init();
        }
        // Start-up runs on the server's own thread: a test runs in an async runtime, where the
        // PostgreSQL store's blocking client cannot connect.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (started, start) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kiln".into())
            .spawn(move || {
                let server = match kiln::startup::Server::from_args(server, options) {
                    Ok(server) => server,
                    Err(e) => {
                        let _ = started.send(Err(e.to_string()));
                        return Ok(());
                    }
                };
                let addr = server
                    .http_address()
                    .expect("the server listens on plain HTTP");
                let _ = started.send(Ok((addr, Arc::downgrade(server.state()))));
                actix_web::rt::System::new().block_on(server.run_until(async move {
                    let _ = stopped.await;
                }))
            })
            .expect("a thread for the server");
        let (addr, state) = match start.recv() {
            Ok(Ok((addr, state))) => (addr.to_string(), state),
            Ok(Err(e)) => panic!("kiln did not start ({argv:?}): {e}"),
            Err(_) => panic!("kiln did not start ({argv:?}): its thread panicked"),
        };
        TestApp {
            addr,
            dir: dir.to_path_buf(),
            database,
            stop: Some(stop),
            thread: Some(thread),
            state,
            _tmp: None,
        }
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(thread) = self.thread.take() else {
            return;
        };
        let ended = thread.join();
        // The HTTP workers drop their share of the state on their own threads, just after the
        // server has stopped: wait for it, so the data dir is free for the next server.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.state.strong_count() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // The count falls to 0 before the state's fields are dropped (its store, its threads,
        // then the data dir's lock, last): wait until the lock is free too.
        while Instant::now() < deadline && kiln::data_dir::DataDir::open(&self.dir).is_err() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if std::thread::panicking() {
            return;
        }
        match ended {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("kiln {} stopped with an error: {e}", self.addr),
            Err(_) => panic!("kiln {} panicked", self.addr),
        }
        assert_eq!(
            self.state.strong_count(),
            0,
            "kiln {}: its state outlived the server by 10 s",
            self.addr
        );
    }
}

impl Kiln for TestApp {
    fn address(&self) -> &str {
        &self.addr
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shut_down();
    }
}
