//! Runs a transition's steps: log lines, sleeps, failures and shell commands.

use super::control::{JobControl, StopReason};
use super::logwriter::{LogWriter, SOURCE_PROVISIONER};
use super::procs::{self, Guard, Marks, Record};
use super::render::render;
use crate::model::manifest::Step;
use crate::store::StoreResult;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(3600);
/// After SIGTERM, a command's process group gets this long before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_millis(1500);
/// Longer output lines are split into pieces of this size.
const MAX_LINE_BYTES: usize = 16 * 1024;
const POLL: Duration = Duration::from_millis(10);

/// Where and with what a transition's steps run.
pub struct StepContext {
    /// `{{key}}` values for log texts.
    pub vars: HashMap<String, String>,
    /// The complete environment of `run` commands.
    pub env: Vec<(String, String)>,
    /// The folder commands run in (the extracted template).
    pub dir: PathBuf,
    /// The job's record of its step processes; `env` holds its marks.
    pub record: Record,
    /// `(uid, gid)` the steps run as (`--step-user`); kiln's own when `None`.
    pub user: Option<(u32, u32)>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StepsOutcome {
    Done,
    Failed(String),
    Stopped(StopReason),
}

pub fn run_steps(
    steps: &[Step],
    ctx: &StepContext,
    log: &mut LogWriter,
    control: &JobControl,
) -> StoreResult<StepsOutcome> {
    for (i, step) in steps.iter().enumerate() {
        if let Some(reason) = control.stopped() {
            return Ok(StepsOutcome::Stopped(reason));
        }
        let started = crate::model::Time::now();
        let outcome = match step {
            Step::Log { log: text, level } => {
                log.line(SOURCE_PROVISIONER, level, render(text, &ctx.vars))?;
                StepsOutcome::Done
            }
            Step::Sleep { sleep_ms } => sleep(*sleep_ms, log, control)?,
            Step::Fail { fail } => StepsOutcome::Failed(render(fail, &ctx.vars)),
            Step::Run { run, timeout_s } => {
                let timeout = timeout_s
                    .map(Duration::from_secs)
                    .unwrap_or(DEFAULT_RUN_TIMEOUT);
                run_command(i + 1, run, timeout, ctx, log, control)?
            }
        };
        let action = match step {
            Step::Log { .. } => "log",
            Step::Sleep { .. } => "sleep",
            Step::Fail { .. } => "fail",
            Step::Run { .. } => "run",
        };
        log.timings.step(i + 1, action, started);
        if outcome != StepsOutcome::Done {
            return Ok(outcome);
        }
    }
    Ok(StepsOutcome::Done)
}

fn sleep(ms: u64, log: &mut LogWriter, control: &JobControl) -> StoreResult<StepsOutcome> {
    // Followers see what came before the wait now, not after it.
    log.flush()?;
    let end = Instant::now() + Duration::from_millis(ms);
    loop {
        if let Some(reason) = control.stopped() {
            return Ok(StepsOutcome::Stopped(reason));
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(StepsOutcome::Done);
        }
        // Wakes early for a stop or a cancel notice; the tick keeps and looks at the lease.
        control.wait(left.min(log.tick_within()));
        log.tick()?;
    }
}

enum Output {
    Stdout(String),
    Stderr(String),
}

/// Reads `r` line by line into `tx`, splitting lines longer than MAX_LINE_BYTES.
fn pump(r: impl Read, tx: SyncSender<Output>, wrap: fn(String) -> Output) {
    let mut reader = BufReader::with_capacity(64 * 1024, r);
    let mut line: Vec<u8> = Vec::new();
    let send = |bytes: &mut Vec<u8>| {
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let text = String::from_utf8_lossy(bytes).into_owned();
        bytes.clear();
        tx.send(wrap(text)).is_ok()
    };
    loop {
        let buf = match reader.fill_buf() {
            Ok([]) | Err(_) => break,
            Ok(b) => b,
        };
        let room = MAX_LINE_BYTES - line.len();
        let window = &buf[..buf.len().min(room)];
        if let Some(pos) = window.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&window[..pos]);
            reader.consume(pos + 1);
            if !send(&mut line) {
                return;
            }
        } else {
            let n = window.len();
            line.extend_from_slice(window);
            reader.consume(n);
            if line.len() >= MAX_LINE_BYTES && !send(&mut line) {
                return;
            }
        }
    }
    if !line.is_empty() {
        send(&mut line);
    }
}

/// A step's running shell, leader of the step's process group. `finish` (or a drop, when the
/// job ends early) kills the whole group before the shell is reaped, so that the group id is
/// surely the step's, then every process that still carries the job's marks.
struct StepProcess<'a> {
    child: Child,
    pgid: i32,
    guard: Option<Guard>,
    marks: &'a Marks,
    finished: bool,
}

impl StepProcess<'_> {
    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) takes no pointers. The shell is not reaped before `finish`, so -pgid
        // reaches the step's group and no other.
        unsafe {
            libc::kill(-self.pgid, signal);
        }
    }

    /// Whether the shell exited; it is left unreaped (a zombie keeps its pid and group id).
    fn exited(&self) -> bool {
        // SAFETY: waitid writes into the siginfo_t we own.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            let r = libc::waitid(libc::P_PID, self.pgid as libc::id_t, &mut info, flags);
            r != 0 || info.si_pid() != 0
        }
    }

    /// SIGTERM to the group; waits up to the grace period for the shell (`finish` kills the
    /// rest).
    fn stop(&self) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + KILL_GRACE;
        while Instant::now() < deadline && !self.exited() {
            std::thread::sleep(POLL);
        }
    }

    /// Ends what is left of the step; returns the shell's exit status.
    fn finish(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.finished = true;
        self.signal(libc::SIGKILL);
        if let Some(guard) = self.guard.take() {
            guard.release();
        }
        let status = self.child.wait();
        procs::kill_marked(self.marks);
        status
    }
}

impl Drop for StepProcess<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.finish();
        }
    }
}

enum End {
    /// The shell exited: its status decides.
    Exited,
    Outcome(StepsOutcome),
}

fn run_command(
    index: usize,
    command: &str,
    timeout: Duration,
    ctx: &StepContext,
    log: &mut LogWriter,
    control: &JobControl,
) -> StoreResult<StepsOutcome> {
    // The guard first: kiln may die the moment the step's shell starts.
    let mut guard = match Guard::spawn(ctx.record.marks()) {
        Ok(g) => Some(g),
        Err(e) => {
            log::warn!("step {index}: cannot start the guard of its processes: {e}");
            None
        }
    };
    let mut shell = Command::new("/bin/sh");
    shell
        .arg("-c")
        .arg(command)
        .env_clear()
        .envs(ctx.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&ctx.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some((uid, gid)) = ctx.user {
        // std drops root's supplementary groups too when it changes the uid.
        shell.uid(uid).gid(gid);
    }
    let spawned = shell.spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            if let Some(g) = guard {
                g.release();
            }
            return Ok(StepsOutcome::Failed(format!(
                "step {index}: cannot start /bin/sh: {e}"
            )));
        }
    };
    let pgid = child.id() as i32;
    if let Some(start) = procs::start_time(pgid) {
        ctx.record.add_group(pgid, start);
    }
    if let Some(g) = guard.as_mut() {
        g.watch(pgid);
    }
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let mut step = StepProcess {
        child,
        pgid,
        guard,
        marks: ctx.record.marks(),
        finished: false,
    };
    let (tx, rx): (SyncSender<Output>, Receiver<Output>) = sync_channel(8192);
    let tx2 = tx.clone();
    let readers = [
        std::thread::spawn(move || pump(out, tx, Output::Stdout)),
        std::thread::spawn(move || pump(err, tx2, Output::Stderr)),
    ];
    let started = Instant::now();
    let mut exited: Option<Instant> = None;
    let mut last_output = started;
    let mut pipes_open = true;
    let mut closed_at: Option<Instant> = None;
    let mut leftovers_killed = false;
    let end = loop {
        if pipes_open {
            match rx.recv_timeout(POLL) {
                Ok(line) => {
                    last_output = Instant::now();
                    match line {
                        Output::Stdout(l) => log.line(SOURCE_PROVISIONER, "info", l)?,
                        Output::Stderr(l) => log.line(SOURCE_PROVISIONER, "error", l)?,
                    }
                }
                Err(RecvTimeoutError::Disconnected) => pipes_open = false,
                Err(RecvTimeoutError::Timeout) => log.tick()?,
            }
        } else {
            // Both pipes closed: the shell is exiting (look again soon), or closed them and goes
            // on (look as often as while reading). A stop wakes the wait.
            let soon = closed_at.get_or_insert_with(Instant::now).elapsed() < POLL * 5;
            control.wait(if soon { Duration::from_millis(1) } else { POLL });
            log.tick()?;
        }
        if let Some(reason) = control.stopped() {
            step.stop();
            break End::Outcome(StepsOutcome::Stopped(reason));
        }
        if started.elapsed() >= timeout {
            step.stop();
            break End::Outcome(StepsOutcome::Failed(format!(
                "step {index}: command timed out after {}s: {}",
                timeout.as_secs(),
                first_line(command)
            )));
        }
        if exited.is_none() && step.exited() {
            exited = Some(Instant::now());
        }
        match exited {
            Some(_) if !pipes_open => break End::Exited,
            // The shell is gone but the pipes are not closed yet: output still to read, or
            // something the shell started holds them. End what is left of the step, then keep
            // reading until the pipes close (what is buffered is not lost).
            Some(at) if !leftovers_killed && at.elapsed() > Duration::from_millis(200) => {
                step.signal(libc::SIGKILL);
                procs::kill_marked(step.marks);
                leftovers_killed = true;
            }
            // A process that escaped both still holds the pipes, and writes nothing: give up
            // on them.
            Some(at)
                if at.elapsed() > Duration::from_secs(2)
                    && last_output.elapsed() > Duration::from_secs(2) =>
            {
                break End::Exited;
            }
            _ => {}
        }
    };
    let status = step.finish();
    drop(rx);
    for r in readers {
        if r.is_finished() {
            let _ = r.join();
        }
    }
    Ok(match (end, status) {
        (End::Outcome(outcome), _) => outcome,
        (End::Exited, Ok(status)) => exit_outcome(index, status),
        (End::Exited, Err(e)) => StepsOutcome::Failed(format!("step {index}: {e}")),
    })
}

fn first_line(command: &str) -> String {
    let line = command.lines().next().unwrap_or("");
    if line.len() > 80 {
        format!("{}...", &line[..line.floor_char_boundary(80)])
    } else {
        line.to_string()
    }
}

fn exit_outcome(index: usize, status: std::process::ExitStatus) -> StepsOutcome {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => StepsOutcome::Done,
        (Some(127), _) => StepsOutcome::Failed(format!(
            "step {index}: command exited with status 127 (command not found)"
        )),
        (Some(code), _) => {
            StepsOutcome::Failed(format!("step {index}: command exited with status {code}"))
        }
        (None, Some(sig)) => {
            StepsOutcome::Failed(format!("step {index}: command was killed by signal {sig}"))
        }
        (None, None) => StepsOutcome::Failed(format!("step {index}: command ended abnormally")),
    }
}
