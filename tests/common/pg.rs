//! A throwaway PostgreSQL cluster for the tests of one test binary: initdb on a temporary folder,
//! one postmaster listening only on a unix socket inside it, started on first use and shared by
//! every test of the binary; each test takes a database of its own (`fresh_database`).
//!
//! Nothing outlives the test binary:
//! - at a normal exit (all tests passed or not) an `atexit` handler stops the postmaster (fast
//!   shutdown) and removes the folder;
//! - if the binary is killed, the postmaster gets SIGKILL from the kernel (a parent-death
//!   signal, set by `setpriv --pdeathsig` after it changed to the postgres user). That signal
//!   follows the death of the *thread* that spawned the postmaster, so the postmaster is spawned
//!   from a thread of its own that waits on it for the whole life of the process (test threads
//!   end with their test). Its backends end on their own once the postmaster is gone. The folder
//!   such a binary leaves is removed by the next cluster started on this machine.
//!
//! initdb and postgres refuse to run as root: as root (CI) they run as the `postgres` system
//! user; as any other user they run as that user.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where Debian's `postgresql` package puts the server and client programs.
pub const BIN: &str = "/usr/lib/postgresql/15/bin";

/// The clusters' folders are `/tmp/kiln-pg-<pid>-<random>`: /tmp, whatever TMPDIR says, since
/// the postgres user must reach the folder (and a unix socket's path must stay short).
const TMP: &str = "/tmp";
const PREFIX: &str = "kiln-pg-";

/// Set (and notified) once a postmaster has exited.
type Exited = Arc<(Mutex<Option<ExitStatus>>, Condvar)>;

struct Cluster {
    /// The folder: `data/` (the cluster), the socket, `postmaster.log`.
    root: PathBuf,
    /// The running postmaster (a new one after `restart`) and when it exits.
    postmaster: Mutex<(i32, Exited)>,
    /// The TCP port, when it serves TLS (`serve_tls`).
    tls_port: Option<u16>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// A cluster that also listens on TCP, with TLS only (`serve_tls`).
struct Tls {
    cert_pem: String,
    key_pem: String,
    port: u16,
}

static TLS: OnceLock<Tls> = OnceLock::new();

/// Makes this binary's cluster listen on 127.0.0.1 too, with `ssl = on` and only `hostssl` in
/// `pg_hba.conf` (TCP without TLS is refused), its certificate and key given as PEM. Call it
/// before the cluster's first use; returns the TCP port.
pub fn serve_tls(cert_pem: &str, key_pem: &str) -> u16 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let t = TLS.get_or_init(|| Tls {
        cert_pem: cert_pem.to_string(),
        key_pem: key_pem.to_string(),
        port,
    });
    assert_eq!(
        cluster().tls_port,
        Some(t.port),
        "serve_tls must come before the cluster's first use"
    );
    t.port
}

/// The cluster's port: its unix socket is named after it.
fn port() -> u16 {
    TLS.get().map_or(5432, |t| t.port)
}

fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(e) => panic!("the test PostgreSQL cluster did not start: {e}"),
    }
}

/// The folder holding the cluster's unix socket (libpq's `host=`).
pub fn socket_dir() -> &'static Path {
    &cluster().root
}

/// A new empty database on the shared cluster; returns its libpq connection string.
pub fn fresh_database() -> String {
    let name = format!("kiln_{}", uuid::Uuid::new_v4().simple());
    psql("postgres", &format!("CREATE DATABASE {name}"));
    conn_string(&name)
}

/// The libpq connection string for database `name` on the shared cluster.
pub fn conn_string(name: &str) -> String {
    format!(
        "host={} port={} user=postgres dbname={name}",
        socket_dir().display(),
        port()
    )
}

/// The database name in a connection string `fresh_database` returned.
pub fn database_name(conn: &str) -> &str {
    conn.split_whitespace()
        .find_map(|kv| kv.strip_prefix("dbname="))
        .unwrap_or_else(|| panic!("no dbname in {conn:?}"))
}

/// Runs `sql` (one or more statements) on database `db` with psql; panics with psql's output if
/// it fails. Returns what psql printed (unaligned, tuples only).
pub fn psql(db: &str, sql: &str) -> String {
    let out = Command::new(Path::new(BIN).join("psql"))
        .arg("-h")
        .arg(socket_dir())
        .args(["-p", &port().to_string()])
        .args(["-U", "postgres", "-d", db, "-X", "-q", "-A", "-t"])
        .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql -d {db} -c {sql:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Ends every session on database `db` (`pg_terminate_backend`, as a restart or a failover
/// does); returns how many there were.
pub fn drop_connections(db: &str) -> usize {
    let killed = psql(
        "postgres",
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{db}'"
        ),
    );
    killed.trim().parse().unwrap()
}

/// Lets database `db` take new connections again (`true`), or refuses them and ends its
/// sessions (`false`): to its servers, the database is away.
pub fn allow_connections(db: &str, allow: bool) {
    psql(
        "postgres",
        &format!("ALTER DATABASE \"{db}\" WITH ALLOW_CONNECTIONS {allow}"),
    );
    if !allow {
        drop_connections(db);
    }
}

/// `pg_dump` of database `db` (plain SQL, data included): everything the database holds.
pub fn dump(db: &str) -> Vec<u8> {
    let out = Command::new(Path::new(BIN).join("pg_dump"))
        .arg("-h")
        .arg(socket_dir())
        .args(["-p", &port().to_string()])
        .args(["-U", "postgres", db])
        .stdin(Stdio::null())
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump {db} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A command that runs `program` as the postgres system user when we are root (initdb and
/// postgres refuse root), as ourselves otherwise. `pdeathsig`: SIGKILL once the spawning thread
/// ends (setpriv sets it after the change of user, which would clear it).
fn as_postgres(program: &str, pdeathsig: bool) -> Command {
    let program = Path::new(BIN).join(program);
    if unsafe { libc::geteuid() } != 0 {
        let mut c = Command::new(program);
        if pdeathsig {
            use std::os::unix::process::CommandExt;
            unsafe {
                c.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        return c;
    }
    let mut c = Command::new("setpriv");
    c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    if pdeathsig {
        c.args(["--pdeathsig", "SIGKILL"]);
    }
    c.arg(program);
    c
}

fn start() -> Result<Cluster, String> {
    let t0 = Instant::now();
    if !Path::new(BIN).join("initdb").exists() {
        return Err(format!(
            "{BIN}/initdb is missing: install PostgreSQL 15 (apt-get install -y postgresql)"
        ));
    }
    remove_stale_folders();
    let root = Path::new(TMP).join(format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
    let fail = |msg: String| {
        let _ = std::fs::remove_dir_all(&root);
        Err(msg)
    };
    if unsafe { libc::geteuid() } == 0 {
        let (uid, gid) = match postgres_user() {
            Some(ids) => ids,
            None => return fail("there is no postgres system user".into()),
        };
        if let Err(e) = std::os::unix::fs::chown(&root, Some(uid), Some(gid)) {
            return fail(format!("chown {}: {e}", root.display()));
        }
    }

    let data = root.join("data");
    let out = as_postgres("initdb", false)
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
        .arg("--no-sync")
        .current_dir(&root)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return fail(format!(
                "initdb failed ({}): {}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Err(e) => return fail(format!("run initdb: {e}")),
    }
    let (pid, exited) = match spawn_postmaster(&root) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let tls_port = TLS.get().map(|t| t.port);
    let cluster = Cluster {
        root,
        postmaster: Mutex::new((pid, exited)),
        tls_port,
    };
    // From here on the cluster is stopped and removed at exit, whatever happens next.
    unsafe { libc::atexit(stop_at_exit) };

    if let Err(e) = cluster.wait_ready() {
        cluster.stop();
        return Err(e);
    }
    if std::env::var_os("KILN_TEST_PG_VERBOSE").is_some() {
        eprintln!(
            "test PostgreSQL cluster at {} (pid {}) ready in {:?}",
            cluster.root.display(),
            cluster.postmaster.lock().unwrap().0,
            t0.elapsed()
        );
    }
    Ok(cluster)
}

/// Starts the cluster's postmaster in `root`: returns its pid and when it exits.
fn spawn_postmaster(root: &Path) -> Result<(i32, Exited), String> {
    let data = root.join("data");
    let log_path = root.join("postmaster.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("open {}: {e}", log_path.display()))?;
    let mut cmd = as_postgres("postgres", true);
    cmd.arg("-D").arg(&data).arg("-k").arg(root);
    if let Some(tls) = TLS.get() {
        tls_files(&data, tls)?;
        cmd.args(["-c", "listen_addresses=127.0.0.1", "-c", "ssl=on"])
            .args(["-c", &format!("port={}", tls.port)]);
    }
    for setting in [
        if TLS.get().is_some() {
            "ssl_min_protocol_version=TLSv1.2"
        } else {
            "listen_addresses="
        },
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        "max_connections=300",
        "shared_buffers=32MB",
        "log_min_messages=warning",
    ] {
        cmd.args(["-c", setting]);
    }
    cmd.current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));

    // The spawning thread waits on the postmaster for as long as the process lives: when it
    // ends (the process dies), the kernel sends the postmaster its parent-death SIGKILL.
    let exited: Exited = Arc::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let exited2 = exited.clone();
    std::thread::Builder::new()
        .name("postmaster".into())
        .spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(format!("run postgres: {e}")));
                    return;
                }
            };
            let _ = tx.send(Ok(child.id() as i32));
            let status = child.wait().expect("wait for the postmaster");
            let (lock, cv) = &*exited2;
            *lock.lock().unwrap() = Some(status);
            cv.notify_all();
        })
        .expect("spawn the postmaster thread");
    match rx.recv() {
        Ok(Ok(pid)) => Ok((pid, exited)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the postmaster thread died".into()),
    }
}

/// Stops the binary's cluster (fast shutdown: every session ends, connections are refused),
/// keeps it down for `down`, then starts it again on the same data and waits until it accepts
/// connections: a database restart, or an outage of `down`, as clients see it.
pub fn restart(down: Duration) {
    let c = cluster();
    c.stop_postmaster();
    std::thread::sleep(down);
    let started = spawn_postmaster(&c.root).expect("the test PostgreSQL cluster restarts");
    *c.postmaster.lock().unwrap() = started;
    c.wait_ready()
        .expect("the restarted cluster accepts connections");
}

/// The server's certificate and key in the cluster's folder (the key the postgres user's alone,
/// as postgres demands), and a `pg_hba.conf` that takes TCP over TLS only.
fn tls_files(data: &Path, tls: &Tls) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let write = |name: &str, text: &str, mode: u32| -> Result<(), String> {
        let path = data.join(name);
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        if unsafe { libc::geteuid() } == 0 {
            let (uid, gid) = postgres_user().ok_or("there is no postgres system user")?;
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", path.display()))?;
        }
        Ok(())
    };
    write("server.crt", &tls.cert_pem, 0o644)?;
    write("server.key", &tls.key_pem, 0o600)?;
    write(
        "pg_hba.conf",
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        0o600,
    )
}

impl Cluster {
    /// Waits (30 s at most) until the postmaster accepts connections.
    fn wait_ready(&self) -> Result<(), String> {
        let log_path = self.root.join("postmaster.log");
        let exited = self.postmaster.lock().unwrap().1.clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = *exited.0.lock().unwrap() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("postgres exited ({status}): {log}"));
            }
            let ready = Command::new(Path::new(BIN).join("pg_isready"))
                .arg("-h")
                .arg(&self.root)
                .args(["-p", &port().to_string()])
                .args(["-U", "postgres", "-d", "postgres", "-q", "-t", "1"])
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!(
                    "postgres did not accept connections in 30 s: {log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the cluster, then removes its folder.
    fn stop(&self) {
        self.stop_postmaster();
        let _ = std::fs::remove_dir_all(&self.root);
    }

    /// Fast shutdown (SIGINT: sessions are ended, no checkpoint wait to speak of with fsync off),
    /// SIGKILL if it takes more than 10 s.
    fn stop_postmaster(&self) {
        let (pid, exited) = {
            let p = self.postmaster.lock().unwrap_or_else(|e| e.into_inner());
            (p.0, p.1.clone())
        };
        let (lock, cv) = &*exited;
        let mut exited = lock.lock().unwrap_or_else(|e| e.into_inner());
        if exited.is_none() {
            unsafe { libc::kill(pid, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while exited.is_none() && Instant::now() < deadline {
                exited = cv
                    .wait_timeout(exited, Duration::from_millis(50))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if exited.is_none() {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let deadline = Instant::now() + Duration::from_secs(5);
                while exited.is_none() && Instant::now() < deadline {
                    exited = cv
                        .wait_timeout(exited, Duration::from_millis(50))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

extern "C" fn stop_at_exit() {
    if let Some(Ok(c)) = CLUSTER.get() {
        c.stop();
    }
}

/// The postgres system user's uid and gid.
fn postgres_user() -> Option<(u32, u32)> {
    let name = CString::new("postgres").unwrap();
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// Removes the folders of clusters whose test binary is gone (it was killed: its postmaster
/// died with it, but the folder stayed).
fn remove_stale_folders() {
    let Ok(entries) = std::fs::read_dir(TMP) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            // Its postmaster, if somehow still there, has no binary left to serve.
            if let Ok(text) = std::fs::read_to_string(entry.path().join("data/postmaster.pid"))
                && let Some(Ok(pm)) = text.lines().next().map(str::parse::<i32>)
                && postmaster_of(pm, &entry.path())
            {
                unsafe { libc::kill(pm, libc::SIGKILL) };
            }
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether process `pid` is a postgres serving the cluster in `root` (its command line names
/// the folder), so that a reused pid is never signalled.
fn postmaster_of(pid: i32, root: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(&*root.to_string_lossy()))
        .unwrap_or(false)
}
