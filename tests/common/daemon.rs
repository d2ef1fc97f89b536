//! `kiln provisioner start` processes for the external-provisioner tests, and the owner's
//! provisioner keys.

use super::Client;
use super::schema::assert_valid;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const KEY_HEADER: &str = "Coder-Provisioner-Daemon-Key";

/// Creates a provisioner key (checked) and returns its secret.
pub async fn new_key(owner: &Client, name: &str, tags: Value) -> String {
    let r = owner
        .post(
            "/api/v2/organizations/coder/provisionerkeys",
            json!({"name": name, "tags": tags}),
        )
        .await;
    let v = r.expect(201, "codersdk.CreateProvisionerKeyResponse");
    v["key"].as_str().unwrap().to_string()
}

/// The daemons listing (checked).
pub async fn daemons(owner: &Client) -> Vec<Value> {
    owner
        .get("/api/v2/organizations/coder/provisionerdaemons")
        .await
        .expect(200, "[]codersdk.ProvisionerDaemon")
        .as_array()
        .unwrap()
        .clone()
}

pub struct Daemon {
    child: Child,
    pub name: String,
    _dir: tempfile::TempDir,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `kiln provisioner start` against `url` and waits until it registered.
    pub fn start(url: &str, key: &str, name: &str, extra: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.args([
            "provisioner",
            "start",
            "--url",
            url,
            "--name",
            name,
            "--data-dir",
        ])
        .arg(dir.path())
        .args(extra)
        .env("KILN_PROVISIONER_DAEMON_KEY", key)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start kiln provisioner");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = l.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let d = Daemon {
            child,
            name: name.to_string(),
            _dir: dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !d.log().contains("registered with") {
            assert!(
                Instant::now() < deadline,
                "daemon did not register:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }

    /// Waits up to `within` for the process to exit by itself.
    pub fn exited_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Asserts a daemon listing entry's invariants (Coder's shape was checked by `daemons`).
pub fn assert_daemon(d: &Value) {
    assert_valid("codersdk.ProvisionerDaemon", d);
    assert!(d["tags"]["scope"].is_string(), "{d}");
    assert!(d["tags"]["owner"].is_string(), "{d}");
}
