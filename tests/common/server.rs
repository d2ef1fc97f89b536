//! kiln as a process: a real `kiln server` on a free port with a fresh data dir, for the
//! tests that need one (they kill or restart it, read its log, look at it in /proc, give it
//! environment variables, or need a process-wide setting of their own).

use super::{Kiln, database_for, pg, postgres_mode, register_database};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct TestServer {
    child: Child,
    pub addr: String,
    pub dir: PathBuf,
    /// PostgreSQL mode: the `--database` connection string.
    pub database: Option<String>,
    _tmp: Option<tempfile::TempDir>,
    log: Arc<Mutex<String>>,
}

impl TestServer {
    /// A server on a fresh temporary data dir.
    pub fn start() -> TestServer {
        Self::start_with_args(&[])
    }

    pub fn start_with_args(args: &[&str]) -> TestServer {
        Self::start_with_env(args, &[])
    }

    /// A server on a fresh temporary data dir, with environment variables set for it.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = Self::spawn_in_env(&dir, args, env).ready();
        s._tmp = Some(tmp);
        s
    }

    /// A second server on the database of `other` (PostgreSQL mode only), with a data dir of its
    /// own, as on another machine.
    pub fn start_sharing(other: &TestServer, args: &[&str]) -> TestServer {
        let Some(database) = &other.database else {
            panic!(
                "TestServer::start_sharing needs KILN_TEST_STORE=postgres: with SQLite two \
                 servers cannot share a database (one kiln per data folder); skip the test \
                 unless common::postgres_mode()"
            )
        };
        let tmp = tempfile::tempdir().unwrap();
        register_database(tmp.path(), database);
        let mut s = Self::start_in(tmp.path(), args);
        s._tmp = Some(tmp);
        s
    }

    /// Two servers started at the same moment on one new, empty database (PostgreSQL mode only),
    /// each with a data dir of its own: both migrate it at once.
    pub fn start_two_at_once(args: &[&str]) -> (TestServer, TestServer) {
        assert!(
            postgres_mode(),
            "TestServer::start_two_at_once needs KILN_TEST_STORE=postgres"
        );
        let database = pg::fresh_database();
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        for d in &dirs {
            register_database(d.path(), &database);
        }
        let [one, two] = dirs;
        let (a, b) = (
            Self::spawn_in(one.path(), args),
            Self::spawn_in(two.path(), args),
        );
        let (mut a, mut b) = (a.ready(), b.ready());
        a._tmp = Some(one);
        b._tmp = Some(two);
        (a, b)
    }

    /// A server on `dir` (kept by the caller, e.g. across a restart; in PostgreSQL mode the
    /// same dir means the same database).
    pub fn start_in(dir: &Path, args: &[&str]) -> TestServer {
        Self::spawn_in(dir, args).ready()
    }

    /// A server process on `dir`, started but not yet waited for (`Starting::ready`).
    pub fn spawn_in(dir: &Path, args: &[&str]) -> Starting {
        Self::spawn_in_env(dir, args, &[])
    }

    fn spawn_in_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Starting {
        let database = postgres_mode().then(|| database_for(dir));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.arg("server");
        // A test may choose the address (a restart on the same port); port 0 otherwise.
        if !args.contains(&"--address") {
            cmd.args(["--address", "127.0.0.1:0"]);
        }
        cmd.arg("--data-dir").arg(dir).env_remove("KILN_DATABASE");
        // Tests send many requests at once: no rate limit unless the test sets one.
        if !args.iter().any(|a| a.contains("rate-limit")) {
            cmd.arg("--dangerous-disable-rate-limits");
        }
        if let Some(db) = &database {
            cmd.args(["--database", db]);
        }
        // Killed with this thread (the test's), should the test binary die without its drops.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kiln");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        let reader = std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let addr = line[i + "listening on http://".len()..].trim().to_string();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Starting {
            child,
            rx,
            dir: dir.to_path_buf(),
            database,
            log,
            reader,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }
}

/// A server process that was started and has not yet said where it listens.
pub struct Starting {
    child: Child,
    rx: std::sync::mpsc::Receiver<String>,
    dir: PathBuf,
    database: Option<String>,
    log: Arc<Mutex<String>>,
    /// The thread reading the process's stderr into `log`.
    reader: std::thread::JoinHandle<()>,
}

impl Starting {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL, wherever the start-up is; returns what it logged.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.reader.join();
        self.log.lock().unwrap().clone()
    }

    /// Waits for a process that does not start to exit (within 20 s): its status and its
    /// whole log.
    pub fn exit(mut self) -> (std::process::ExitStatus, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let _ = self.reader.join();
                return (status, self.log.lock().unwrap().clone());
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("kiln did not exit: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the server listens.
    pub fn ready(self) -> TestServer {
        let addr = self
            .rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("kiln did not start: {}", self.log.lock().unwrap()));
        TestServer {
            child: self.child,
            addr,
            dir: self.dir,
            database: self.database,
            _tmp: None,
            log: self.log,
        }
    }
}

impl Kiln for TestServer {
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

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
