//! Running the `kiln` client as a person would: a plain process (pipes, no terminal) or on a
//! pseudo-terminal (`openpty`) for prompts and colour. Each `Cli` has its own config folder
//! (`XDG_CONFIG_HOME`) and none of the caller's `KILN_URL`, `KILN_TOKEN` or `NO_COLOR`.

use super::{Client, Kiln, TestServer};
use serde_json::Value;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Cli {
    config: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// A finished command: exit code, stdout, stderr.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts exit code 0 and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "{self:#?}");
        &self.stdout
    }

    pub fn lines(&self) -> Vec<String> {
        plain_lines(&self.stdout)
    }
}

/// The lines of `text` with every stage time (`[12ms]`) written `[Nms]`.
pub fn plain_lines(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\[\d+ms\]").unwrap();
    text.replace("\r\n", "\n")
        .lines()
        .map(|l| re.replace_all(l, "[Nms]").into_owned())
        .collect()
}

/// Kills a child with the test's thread, should the test die first.
fn die_with_parent(cmd: &mut Command) {
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

impl Cli {
    pub fn new() -> Cli {
        Cli {
            config: tempfile::tempdir().unwrap(),
            env: vec![],
        }
    }

    /// An environment variable for every later command.
    pub fn with_env(mut self, k: &str, v: &str) -> Cli {
        self.env.push((k.into(), v.into()));
        self
    }

    /// `$XDG_CONFIG_HOME/kiln/session.json`.
    pub fn session_file(&self) -> PathBuf {
        self.config.path().join("kiln/session.json")
    }

    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.args(args)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env_remove("KILN_URL")
            .env_remove("KILN_TOKEN")
            .env_remove("NO_COLOR");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        die_with_parent(&mut cmd);
        cmd
    }

    /// `kiln templates push NAME -d DIR`, which must succeed.
    pub fn push_template(&self, name: &str, dir: &tempfile::TempDir) {
        self.run(&[
            "templates",
            "push",
            name,
            "-d",
            dir.path().to_str().unwrap(),
        ])
        .ok();
    }

    /// Runs to the end without a terminal (stdin empty).
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let o = self
            .command(args, env)
            .stdin(Stdio::null())
            .output()
            .expect("run kiln");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Starts a command without a terminal; its output is collected as it comes.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self
            .command(args, &[])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kiln");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// Starts a command on a new pseudo-terminal (stdin, stdout and stderr), its controlling
    /// terminal.
    pub fn pty(&self, args: &[&str], env: &[(&str, &str)]) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        let slave = unsafe { File::from_raw_fd(slave) };
        let master = unsafe { File::from_raw_fd(master) };
        let child = {
            let mut cmd = self.command(args, env);
            cmd.stdin(slave.try_clone().unwrap())
                .stdout(slave.try_clone().unwrap())
                .stderr(slave);
            unsafe {
                cmd.pre_exec(|| {
                    libc::setsid();
                    libc::ioctl(0, libc::TIOCSCTTY, 0);
                    Ok(())
                });
            }
            cmd.spawn().expect("start kiln on a terminal")
            // `cmd` (and its copies of the terminal's side) goes here, so the reader sees
            // the end once the child is gone.
        };
        let out = collect(master.try_clone().unwrap());
        Pty { child, master, out }
    }
}

fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

fn wait_text(buf: &Arc<Mutex<Vec<u8>>>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !text(buf).contains(what) {
        assert!(
            Instant::now() < deadline,
            "{what:?} never came; so far: {:?}",
            text(buf)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kiln did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A client command running without a terminal.
pub struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Running {
    pub fn wait_stdout(&self, what: &str) {
        wait_text(&self.stdout, what)
    }

    pub fn wait_stderr(&self, what: &str) {
        wait_text(&self.stderr, what)
    }

    pub fn signal(&self, sig: libc::c_int) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    pub fn wait(mut self) -> Out {
        let code = wait_exit(&mut self.child);
        // The readers stop at the pipes' ends, just after the exit.
        let deadline = Instant::now() + Duration::from_secs(5);
        while (Arc::strong_count(&self.stdout) > 1 || Arc::strong_count(&self.stderr) > 1)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        Out {
            code,
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
        }
    }
}

/// A client command on a pseudo-terminal.
pub struct Pty {
    child: Child,
    master: File,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    /// Waits until the terminal shows `what`.
    pub fn expect(&self, what: &str) {
        wait_text(&self.out, what)
    }

    /// Types a line.
    pub fn send_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// Waits for the exit: the code and everything the terminal showed (`\r\n` as `\n`).
    pub fn wait(mut self) -> (i32, String) {
        let code = wait_exit(&mut self.child);
        let deadline = Instant::now() + Duration::from_secs(5);
        // The reader stops at the terminal's end (EIO) once the child is gone.
        while Arc::strong_count(&self.out) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        (code, text(&self.out).replace("\r\n", "\n"))
    }
}

/// A signed-in client (`kiln login --token`) for the owner of `s`.
pub async fn signed_in(s: &TestServer) -> (Cli, Client) {
    let owner = s.owner().await;
    let cli = Cli::new();
    let url = s.url("");
    let out = cli.run(&["login", &url, "--token", owner.token()]);
    assert_eq!(
        out.lines()[0],
        format!("Welcome to kiln, owner! You are signed in to {url}.")
    );
    (cli, owner)
}

/// A template folder holding `manifest` as kiln.json.
pub fn template_dir(manifest: &Value) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("kiln.json"), manifest.to_string()).unwrap();
    d
}

/// The lines of a build that runs each stage with `lines` in its transition's stage.
pub fn build_lines(transition_stage: &str, lines: &[&str]) -> Vec<String> {
    let mut v = vec![
        "==> ⧗ Queued".to_string(),
        "=== ✔ Queued [Nms]".into(),
        "==> ⧗ Setting up".into(),
        "=== ✔ Setting up [Nms]".into(),
        "==> ⧗ Planning infrastructure".into(),
        "=== ✔ Planning infrastructure [Nms]".into(),
        format!("==> ⧗ {transition_stage}"),
    ];
    v.extend(lines.iter().map(|l| l.to_string()));
    v.extend([
        format!("=== ✔ {transition_stage} [Nms]"),
        "==> ⧗ Cleaning Up".into(),
        "=== ✔ Cleaning Up [Nms]".into(),
    ]);
    v
}
