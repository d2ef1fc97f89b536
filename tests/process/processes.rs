//! What becomes of the processes a `run` step starts, over real HTTP and real processes: a
//! step's daemons end with the step (exit, cancel, timeout, shutdown), a kill -9 of kiln takes
//! them with it, a restart kills what outlived kiln before it fails the job, and the template
//! unpacked for a job is removed after every job.
//!
//! A process "of the step" is one whose environment holds the workspace's `KILN_WORKSPACE_ID`;
//! zombies count as gone.
//!
//! Process: kiln is killed (its step processes must go with it), restarted and stopped by
//! SIGTERM, and the step processes are found in /proc.

use crate::common::fixtures::{steps, template, workspace};
use crate::common::{Client, Kiln, TestServer};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const STOPPED: &str = "kiln stopped while this job was running (the server was killed or restarted); the job did not finish";
const SHUT_DOWN: &str = "kiln was shut down before this job finished; the job was canceled";

/// Starts two daemons (one in the step's process group, one in a session of its own), writes
/// the pids (the shell's, `nohup`'s and `setsid`'s) and then `ready`.
const DAEMONS: &str = "# daemons\n\
    W=\"$KILN_WORKSPACE_DIR\"\n\
    echo $$ > \"$W/pid\"\n\
    nohup sleep 60 >/dev/null 2>&1 &\n\
    echo $! > \"$W/nohup\"\n\
    setsid sleep 60 >/dev/null 2>&1 &\n\
    echo $! > \"$W/setsid\"\n\
    pwd > \"$W/cwd\"\n\
    echo ok > \"$W/ready\"\n";

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The live processes whose environment holds `entry` exactly.
fn with_env(entry: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|v| v == entry.as_bytes()) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// The processes of the workspace's steps.
fn step_processes(ws: &str) -> Vec<u32> {
    with_env(&format!("KILN_WORKSPACE_ID={ws}"))
}

async fn until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after {secs}s");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The entries of `<data-dir>/jobs` (none when the folder is missing).
fn job_folder_entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir.join("jobs")) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

struct Ws {
    id: String,
    build: String,
    folder: PathBuf,
}

impl Ws {
    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.folder.join(name)).ok()
    }

    fn pid(&self, name: &str) -> u32 {
        let text = self.read(name).unwrap_or_default();
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: {text:?}"))
    }

    /// Waits until the step wrote `ready`; returns the step's pids (shell, nohup, setsid).
    async fn ready(&self) -> [u32; 3] {
        until("the step is ready", 30, || {
            self.read("ready").as_deref() == Some("ok\n")
        })
        .await;
        [self.pid("pid"), self.pid("nohup"), self.pid("setsid")]
    }

    /// `ready`, and the step's processes run.
    async fn running(&self) -> [u32; 3] {
        let pids = self.ready().await;
        for p in pids {
            assert!(alive(p), "process {p} runs");
        }
        pids
    }
}

/// A template whose start runs `start`, and a workspace of it (its first build queued).
async fn step_workspace(s: &TestServer, c: &Client, name: &str, start: Value) -> Ws {
    let t = template(c, name, steps(start, json!([]))).await;
    let (id, build) = workspace(c, &t, name, json!([])).await;
    Ws {
        folder: s.dir.join("workspaces").join(&id),
        build,
        id,
    }
}

fn run(command: &str) -> Value {
    json!({"run": command})
}

/// The build's job (status, error) once it ended.
async fn ended(c: &Client, build: &str) -> (String, String) {
    let b = c.wait_build(build).await;
    let field = |k: &str| b["job"][k].as_str().unwrap_or("").to_string();
    (field("status"), field("error"))
}

fn assert_gone(ws: &Ws, pids: &[u32]) {
    for p in pids {
        assert!(!alive(*p), "process {p} of the step still runs");
    }
    assert_eq!(
        step_processes(&ws.id),
        Vec::<u32>::new(),
        "processes of the step"
    );
}

#[actix_web::test]
async fn daemons_a_step_leaves_behind_end_with_the_step() {
    let s = TestServer::start();
    let c = s.owner().await;
    let ws = step_workspace(&s, &c, "leaves", json!([run(DAEMONS), {"log": "next"}])).await;
    assert_eq!(
        ended(&c, &ws.build).await,
        ("succeeded".into(), String::new())
    );
    let pids = [ws.pid("pid"), ws.pid("nohup"), ws.pid("setsid")];
    // Gone when the job is reported done: the step's end took them.
    assert_gone(&ws, &pids);
}

#[actix_web::test]
async fn daemons_that_keep_the_steps_output_open_end_with_it_and_nothing_is_lost() {
    let s = TestServer::start();
    let c = s.owner().await;
    let step = "echo $$ > \"$KILN_WORKSPACE_DIR/pid\"\n\
        sleep 60 &\n\
        echo $! > \"$KILN_WORKSPACE_DIR/nohup\"\n\
        setsid sleep 60 &\n\
        echo $! > \"$KILN_WORKSPACE_DIR/setsid\"\n\
        seq 3";
    let ws = step_workspace(&s, &c, "open", json!([run(step), {"log": "next"}])).await;
    assert_eq!(
        ended(&c, &ws.build).await,
        ("succeeded".into(), String::new())
    );
    assert_gone(&ws, &[ws.pid("pid"), ws.pid("nohup"), ws.pid("setsid")]);
    let logs = c
        .get(&format!("/api/v2/workspacebuilds/{}/logs", ws.build))
        .await
        .json();
    let out: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["log_source"] == "provisioner")
        .map(|l| l["output"].as_str().unwrap())
        .collect();
    assert_eq!(out, ["1", "2", "3", "next"]);
}

#[actix_web::test]
async fn a_canceled_step_leaves_no_process() {
    let s = TestServer::start();
    let c = s.owner().await;
    // The shell closes its output first: the cancel still reaches it.
    let step = format!("{DAEMONS}exec >/dev/null 2>&1\nsleep 60");
    let ws = step_workspace(&s, &c, "cancel", json!([run(&step)])).await;
    let pids = ws.running().await;
    let r = c
        .patch(
            &format!("/api/v2/workspacebuilds/{}/cancel", ws.build),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        ended(&c, &ws.build).await,
        ("canceled".into(), String::new())
    );
    assert_gone(&ws, &pids);
}

#[actix_web::test]
async fn a_step_that_times_out_leaves_no_process() {
    let s = TestServer::start();
    let c = s.owner().await;
    let step = json!({"run": format!("{DAEMONS}sleep 60"), "timeout_s": 2});
    let ws = step_workspace(&s, &c, "timeout", json!([step])).await;
    let pids = ws.ready().await;
    assert_eq!(
        ended(&c, &ws.build).await,
        (
            "failed".into(),
            "step 1: command timed out after 2s: # daemons".into()
        )
    );
    assert_gone(&ws, &pids);
}

#[actix_web::test]
async fn a_graceful_shutdown_leaves_no_process_of_a_running_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(dir.path(), &["--shutdown-grace", "1"]);
    let c = s.owner().await;
    let ws = step_workspace(
        &s,
        &c,
        "shutdown",
        json!([run(&format!("{DAEMONS}sleep 60"))]),
    )
    .await;
    let pids = ws.running().await;
    let status = s.terminate();
    assert!(status.success(), "{status:?}; the log:\n{}", s.log());
    assert_gone(&ws, &pids);
    let token = c.token().to_string();
    drop(s);
    let s = TestServer::start_in(dir.path(), &["--workers", "0"]);
    let c = s.client(&token);
    assert_eq!(
        ended(&c, &ws.build).await,
        ("failed".into(), SHUT_DOWN.into())
    );
    assert_eq!(job_folder_entries(dir.path()), Vec::<String>::new());
}

#[actix_web::test]
async fn a_killed_server_takes_its_step_processes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(dir.path(), &[]);
    let c = s.owner().await;
    let step = format!("{DAEMONS}sleep 3\necho late >> \"$W/late\"");
    let ws = step_workspace(&s, &c, "killed", json!([run(&step)])).await;
    let pids = ws.running().await;
    let token = c.token().to_string();
    s.kill();
    // Without a restart: the step's processes end with kiln, so `late` is never written.
    until("the step's processes end with kiln", 30, || {
        pids.iter().all(|p| !alive(*p)) && step_processes(&ws.id).is_empty()
    })
    .await;
    assert_eq!(ws.read("late"), None, "the step went on after kiln died");

    let s = TestServer::start_in(dir.path(), &[]);
    let c = s.client(&token);
    assert_eq!(
        ended(&c, &ws.build).await,
        ("failed".into(), STOPPED.into())
    );
    assert_eq!(job_folder_entries(dir.path()), Vec::<String>::new());
    assert_eq!(ws.read("late"), None);
}

#[actix_web::test]
async fn a_server_killed_the_moment_a_step_starts_takes_its_processes_with_it() {
    // The step's first act starts a daemon in a session of its own; kiln is killed as soon as
    // its pid is written, when kiln may not have got past starting the step's shell.
    let step = "W=\"$KILN_WORKSPACE_DIR\"\n\
        setsid sleep 60 >/dev/null 2>&1 &\n\
        echo $! > \"$W/setsid.new\"; mv \"$W/setsid.new\" \"$W/setsid\"\n\
        sleep 60";
    let dir = tempfile::tempdir().unwrap();
    let mut token: Option<String> = None;
    for round in 0..3 {
        let mut s = TestServer::start_in(dir.path(), &[]);
        let c = match &token {
            None => s.owner().await,
            Some(t) => s.client(t.as_str()),
        };
        token = Some(c.token().to_string());
        let ws = step_workspace(&s, &c, &format!("early-{round}"), json!([run(step)])).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while ws.read("setsid").is_none() {
            assert!(
                Instant::now() < deadline,
                "round {round}: the step never started"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        s.kill();
        let daemon = ws.pid("setsid");
        until("the step's processes end with kiln", 30, || {
            !alive(daemon) && step_processes(&ws.id).is_empty()
        })
        .await;
    }
}

/// The processes whose command line is kiln's guard of a step of workspace `ws` (the guard is
/// told the marks on its command line, the step's group later on its pipe).
fn guards_of(ws: &str) -> Vec<u32> {
    let mark = format!("KILN_WORKSPACE_ID={ws}");
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        if args.contains(&&b"kiln-step-guard"[..]) && args.contains(&mark.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

#[actix_web::test]
async fn a_restart_kills_what_outlived_kiln_before_it_fails_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(dir.path(), &[]);
    let c = s.owner().await;
    let step = format!("{DAEMONS}sleep 3\necho late >> \"$W/late\"");
    let ws = step_workspace(&s, &c, "outlived", json!([run(&step)])).await;
    let pids = ws.running().await;
    // kiln and the guard that would take the step's processes with it both die at once: the
    // processes outlive them (as after a crash of the whole process tree).
    let guards = guards_of(&ws.id);
    assert_eq!(guards.len(), 1, "one guard for the step's group");
    unsafe { libc::kill(guards[0] as i32, libc::SIGKILL) };
    let token = c.token().to_string();
    s.kill();
    for p in pids {
        assert!(alive(p), "process {p} outlived kiln");
    }
    // Listening means recovered: what the dead kiln started is gone already, the job failed.
    let s = TestServer::start_in(dir.path(), &[]);
    assert_gone(&ws, &pids);
    let c = s.client(&token);
    assert_eq!(
        ended(&c, &ws.build).await,
        ("failed".into(), STOPPED.into())
    );
    assert_eq!(job_folder_entries(dir.path()), Vec::<String>::new());
    assert_eq!(ws.read("late"), None, "the step went on after kiln died");
}

#[actix_web::test]
async fn unpacked_templates_are_removed_after_every_job_and_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_in(dir.path(), &[]);
    let c = s.owner().await;
    let cases = [
        ("ok", json!([run(DAEMONS)]), "succeeded"),
        ("fails", json!([run(DAEMONS), {"fail": "no"}]), "failed"),
        (
            "times-out",
            json!([{"run": format!("{DAEMONS}sleep 60"), "timeout_s": 1}]),
            "failed",
        ),
        (
            "canceled",
            json!([run(&format!("{DAEMONS}sleep 60"))]),
            "canceled",
        ),
    ];
    for (name, steps, status) in cases {
        let ws = step_workspace(&s, &c, name, steps).await;
        ws.ready().await;
        let cwd = PathBuf::from(ws.read("cwd").unwrap().trim());
        assert!(cwd.starts_with(dir.path().join("jobs")), "{cwd:?}");
        if status == "canceled" {
            let path = format!("/api/v2/workspacebuilds/{}/cancel", ws.build);
            assert_eq!(c.patch(&path, json!({})).await.status, 200);
        }
        assert_eq!(ended(&c, &ws.build).await.0, status, "{name}");
        assert!(!cwd.exists(), "{name}: {cwd:?} was left");
        assert_eq!(
            job_folder_entries(dir.path()),
            Vec::<String>::new(),
            "{name}"
        );
    }
    // Interrupted jobs: kill -9 while three jobs run; the restart removes what they left.
    let mut running = Vec::new();
    for n in 0..3 {
        let steps = json!([run(&format!("{DAEMONS}sleep 60"))]);
        let ws = step_workspace(&s, &c, &format!("killed-{n}"), steps).await;
        ws.ready().await;
        running.push(ws);
    }
    assert!(!job_folder_entries(dir.path()).is_empty());
    let token = c.token().to_string();
    s.kill();
    let s = TestServer::start_in(dir.path(), &[]);
    assert_eq!(job_folder_entries(dir.path()), Vec::<String>::new());
    let c = s.client(&token);
    for ws in &running {
        assert_eq!(
            ended(&c, &ws.build).await,
            ("failed".into(), STOPPED.into())
        );
    }
}

#[actix_web::test]
async fn a_restarted_server_ends_only_what_its_own_jobs_started() {
    if !crate::common::postgres_mode() {
        return; // two servers on one database need PostgreSQL
    }
    let a = TestServer::start();
    let mut b = TestServer::start_sharing(&a, &["--workers", "0"]);
    let c = a.owner().await;
    let step = format!("{DAEMONS}while [ ! -e \"$W/go\" ]; do sleep 0.05; done");
    let ws = step_workspace(&a, &c, "on-a", json!([run(&step)])).await;
    let pids = ws.running().await;
    // B (no workers: the job is A's) dies and starts again on its own data dir.
    b.kill();
    let _b = TestServer::start_in(&b.dir.clone(), &["--workers", "0"]);
    for p in pids {
        assert!(alive(p), "process {p} of A's job was left alone");
    }
    std::fs::write(ws.folder.join("go"), "").unwrap();
    assert_eq!(
        ended(&c, &ws.build).await,
        ("succeeded".into(), String::new())
    );
    assert_gone(&ws, &pids);
}
