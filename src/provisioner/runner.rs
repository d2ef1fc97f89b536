//! Runs a transition's steps: log lines, sleeps, failures and shell commands.

use super::control::{JobControl, StopReason};
use super::logwriter::{LogWriter, SOURCE_PROVISIONER};
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

fn signal_group(child: &Child, signal: i32) {
    // The child leads its own process group, so -pid reaches every process it started.
    unsafe {
        libc::kill(-(child.id() as i32), signal);
    }
}

/// Stops a command's whole process group: SIGTERM, then SIGKILL after the grace period.
fn stop_group(child: &mut Child) {
    signal_group(child, libc::SIGTERM);
    let deadline = Instant::now() + KILL_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(POLL);
    }
    signal_group(child, libc::SIGKILL);
    let _ = child.wait();
}

fn run_command(
    index: usize,
    command: &str,
    timeout: Duration,
    ctx: &StepContext,
    log: &mut LogWriter,
    control: &JobControl,
) -> StoreResult<StepsOutcome> {
    let spawned = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env_clear()
        .envs(ctx.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&ctx.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Ok(StepsOutcome::Failed(format!(
                "step {index}: cannot start /bin/sh: {e}"
            )));
        }
    };
    let (tx, rx): (SyncSender<Output>, Receiver<Output>) = sync_channel(8192);
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    let readers = [
        std::thread::spawn(move || pump(out, tx, Output::Stdout)),
        std::thread::spawn(move || pump(err, tx2, Output::Stderr)),
    ];
    let started = Instant::now();
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    let mut leftovers_killed = false;
    let outcome = loop {
        let logged = match rx.recv_timeout(POLL) {
            Ok(Output::Stdout(l)) => log.line(SOURCE_PROVISIONER, "info", l),
            Ok(Output::Stderr(l)) => log.line(SOURCE_PROVISIONER, "error", l),
            Err(RecvTimeoutError::Disconnected) => {
                // Both pipes closed: the exit status decides.
                break match exited {
                    Some((status, _)) => exit_outcome(index, status),
                    None => match child.wait() {
                        Ok(status) => exit_outcome(index, status),
                        Err(e) => StepsOutcome::Failed(format!("step {index}: {e}")),
                    },
                };
            }
            Err(RecvTimeoutError::Timeout) => log.tick(),
        };
        if let Err(e) = logged {
            // The store refuses the log (a full disk): the job ends, and so does its command.
            stop_group(&mut child);
            return Err(e);
        }
        if let Some(reason) = control.stopped() {
            stop_group(&mut child);
            break StepsOutcome::Stopped(reason);
        }
        if started.elapsed() >= timeout {
            stop_group(&mut child);
            break StepsOutcome::Failed(format!(
                "step {index}: command timed out after {}s: {}",
                timeout.as_secs(),
                first_line(command)
            ));
        }
        match exited {
            None => {
                if let Ok(Some(status)) = child.try_wait() {
                    exited = Some((status, Instant::now()));
                }
            }
            // The shell is gone but something it started still holds the pipes open: stop
            // it, then keep reading until the pipes close (what is buffered is not lost).
            Some((_, at)) if !leftovers_killed && at.elapsed() > Duration::from_millis(200) => {
                signal_group(&child, libc::SIGKILL);
                leftovers_killed = true;
            }
            // A process that left the group still holds the pipes: give up on them.
            Some((status, at)) if at.elapsed() > Duration::from_secs(2) => {
                break exit_outcome(index, status);
            }
            Some(_) => {}
        }
    };
    drop(rx);
    for r in readers {
        if r.is_finished() {
            let _ = r.join();
        }
    }
    Ok(outcome)
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
