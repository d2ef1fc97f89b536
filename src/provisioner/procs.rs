//! The processes of `run` steps, and what becomes of them when a step ends or kiln dies.
//!
//! - Every `run` step's shell leads a process group of its own. Its processes carry two
//!   environment entries that mark them as the job's (`KILN_WORKSPACE_ID=...`,
//!   `KILN_BUILD_NUMBER=...`: one build of one workspace), inherited by whatever they start.
//! - While a job runs steps, its record `<data-dir>/jobs/<job-id>.procs` holds the marks and,
//!   for each step started, the group and its leader's start time (`/proc/<pid>/stat`). The
//!   data dir is the machine's own, so a record names processes of this machine only.
//! - When a step ends (exit, failure, cancel, timeout, shutdown), the runner kills its group
//!   while the leader is not yet reaped (so the group id is surely the step's), then every
//!   process that still carries the marks (one that left the group, e.g. with `setsid`).
//! - A guard per step (`/bin/sh` reading a pipe only kiln writes) kills the group, then the
//!   marked processes, when the pipe closes without kiln saying the step is over: kiln died.
//!   It starts before the step and learns the step's group once the step runs, so kiln dying
//!   at any moment of a step's start is covered (before the group is told, the marks are).
//! - At start-up (`recover`), before the interrupted jobs are failed, kiln kills what the
//!   records name: a recorded group only while it is still the step's (its leader has the
//!   recorded start time, or a member carries the marks: a group id is not reused while a
//!   member lives), and every marked process. Then it removes everything in `jobs/`.
//!
//! A process that both leaves the group and drops the marks from its environment escapes all
//! of this.

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment entries (`NAME=value`) every process of one job's steps carries.
pub type Marks = [String; 2];

/// How long a sweep keeps killing and looking before it gives up on what is left.
const SWEEP_FOR: Duration = Duration::from_secs(5);
/// The guard's `$0`, so it can be told apart in `ps`.
pub const GUARD_NAME: &str = "kiln-step-guard";
/// `$1`, `$2`: the marks. The first line kiln writes is the step's group, the second "done":
/// then it exits quietly. When the pipe closes before "done" it kills the group (if told)
/// and every marked process, looking again while a look found one (a marked shell the group
/// kill did not reach may have started another). A look is two `grep`s over every
/// `/proc/*/environ`, not one per process: on a busy machine that is the difference between
/// milliseconds and seconds.
const GUARD_SCRIPT: &str = r#"read -r g; [ "$g" = done ] && exit 0
read -r word; [ "$word" = done ] && exit 0
case $g in ''|*[!0-9]*) ;; *) kill -9 -"$g" 2>/dev/null ;; esac
n=0
while [ $n -lt 5 ]; do
  m=$(grep -lzxF -e "$1" /proc/[0-9]*/environ 2>/dev/null)
  [ -n "$m" ] && m=$(grep -lzxF -e "$2" $m 2>/dev/null)
  [ -z "$m" ] && exit 0
  for e in $m; do p=${e#/proc/}; kill -9 "${p%/environ}" 2>/dev/null; done
  n=$((n + 1))
done
exit 0"#;

/// A job's record of its step processes, in `<data-dir>/jobs/<job-id>.procs`.
pub struct Record {
    path: PathBuf,
    marks: Marks,
}

impl Record {
    /// Writes the record (before the first step starts, so even a step kiln did not get to
    /// record is found by its marks).
    pub fn create(path: PathBuf, marks: Marks) -> io::Result<Record> {
        std::fs::write(&path, format!("mark {}\nmark {}\n", marks[0], marks[1]))?;
        Ok(Record { path, marks })
    }

    pub fn marks(&self) -> &Marks {
        &self.marks
    }

    /// Adds a step's group (its leader's pid) and the leader's start time.
    pub fn add_group(&self, pgid: i32, start: u64) {
        let line = format!("group {pgid} {start}\n");
        let written = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            // The marks are recorded: a restart still finds the processes that keep them.
            log::warn!(
                "cannot record a step's process group in {:?}: {e}",
                self.path
            );
        }
    }
}

/// What a record names.
#[derive(Debug, Default, PartialEq)]
struct Target {
    marks: Vec<String>,
    groups: Vec<(i32, u64)>,
}

fn parse_record(text: &str) -> Target {
    let mut t = Target::default();
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("mark", m)) if m.contains('=') => t.marks.push(m.to_string()),
            Some(("group", g)) => {
                if let Some((Ok(pgid), Ok(start))) = g
                    .split_once(' ')
                    .map(|(p, s)| (p.parse::<i32>(), s.parse::<u64>()))
                    && pgid > 1
                {
                    t.groups.push((pgid, start));
                }
            }
            // A line cut short by a crash: ignored.
            _ => {}
        }
    }
    t
}

/// The guard of a step's process group: it kills the group and the marked processes when kiln
/// dies before `release`. Started before the step; `watch` tells it the step's group.
pub struct Guard {
    child: Child,
}

impl Guard {
    pub fn spawn(marks: &Marks) -> io::Result<Guard> {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(GUARD_SCRIPT)
            .arg(GUARD_NAME)
            .args(marks)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of kiln's group: a Ctrl-C meant for kiln does not end it.
            .process_group(0)
            .spawn()?;
        Ok(Guard { child })
    }

    /// The step runs as group `pgid`.
    pub fn watch(&mut self, pgid: i32) {
        if let Some(pipe) = self.child.stdin.as_mut() {
            let _ = pipe.write_all(format!("{pgid}\n").as_bytes());
        }
    }

    /// The step's processes are dealt with: the guard ends without doing anything.
    pub fn release(mut self) {
        if let Some(mut pipe) = self.child.stdin.take() {
            let _ = pipe.write_all(b"done\n");
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // Stopped or stuck: it is still kiln's child (not reaped), so the pid is the guard's.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The start time of process `pid` (clock ticks after boot), field 22 of `/proc/<pid>/stat`.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|s| s.start)
}

struct Stat {
    pgrp: i32,
    start: u64,
    zombie: bool,
}

fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything: count after it.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        zombie: matches!(fields.first(), Some(&"Z") | Some(&"X")),
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

fn pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Whether process `pid`'s environment holds every one of `marks` (a zombie's holds none).
fn carries(pid: i32, marks: &[String]) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    !marks.is_empty()
        && marks
            .iter()
            .all(|m| env.split(|&b| b == 0).any(|e| e == m.as_bytes()))
}

fn kill(pid: i32, signal: i32) {
    // SAFETY: kill(2) takes no pointers.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// One look at every process: kills the live processes that carry a target's marks and the
/// live members of a target's groups that are still its own. Returns how many it killed.
fn sweep_once(targets: &[Target]) -> usize {
    let need_groups = targets.iter().any(|t| !t.groups.is_empty());
    let mut procs = Vec::new();
    for pid in pids() {
        let marked = targets.iter().position(|t| carries(pid, &t.marks));
        let stat = if need_groups || marked.is_some() {
            match stat(pid) {
                Some(s) => Some(s),
                None => continue,
            }
        } else {
            None
        };
        procs.push((pid, marked, stat));
    }
    let mut killed = 0;
    for (i, t) in targets.iter().enumerate() {
        for &(pgid, start) in &t.groups {
            let in_group = |s: &Option<Stat>| s.as_ref().is_some_and(|s| s.pgrp == pgid);
            let ours = procs.iter().any(|(pid, marked, s)| {
                (*pid == pgid && s.as_ref().is_some_and(|s| s.start == start))
                    || (*marked == Some(i) && in_group(s))
            });
            let live = procs
                .iter()
                .filter(|(_, _, s)| in_group(s) && s.as_ref().is_some_and(|s| !s.zombie))
                .count();
            if ours && live > 0 {
                kill(-pgid, libc::SIGKILL);
                killed += live;
            }
        }
    }
    for (pid, marked, s) in &procs {
        if marked.is_some() && s.as_ref().is_some_and(|s| !s.zombie) {
            kill(*pid, libc::SIGKILL);
            killed += 1;
        }
    }
    killed
}

/// Kills what `targets` name until nothing of it is left (or SWEEP_FOR has passed).
fn sweep(targets: &[Target]) {
    let deadline = Instant::now() + SWEEP_FOR;
    loop {
        let killed = sweep_once(targets);
        if killed == 0 {
            return;
        }
        if Instant::now() >= deadline {
            log::warn!("{killed} step process(es) did not end after SIGKILL");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills every process that carries `marks` (what a step started and that left its group).
pub fn kill_marked(marks: &Marks) {
    sweep(&[Target {
        marks: marks.to_vec(),
        groups: Vec::new(),
    }]);
}

/// Start-up, before the interrupted jobs are failed: kills what the records in `jobs_dir` name
/// (processes of steps a previous kiln on this data dir ran), then removes everything in
/// `jobs_dir` (templates unpacked for jobs, state files, records). Returns how many records
/// there were.
pub fn recover(jobs_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(jobs_dir) else {
        return 0;
    };
    let entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    let targets: Vec<Target> = entries
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "procs"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| parse_record(&text))
        .collect();
    if !targets.is_empty() {
        log::warn!(
            "{} job(s) ran steps when kiln stopped: ending what is left of their processes",
            targets.len()
        );
        sweep(&targets);
    }
    for path in &entries {
        let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
        let removed = if is_dir {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        if let Err(e) = removed {
            log::warn!("cannot remove {}: {e}", path.display());
        }
    }
    targets.len()
}

#[cfg(test)]
mod tests;
