//! Following a job as Coder's CLI does: each stage as it begins (`==> ⧗ Stage`) and when it
//! ends with its elapsed time (`=== ✔ Stage [12ms]`, `✘` when the job failed in it), the log
//! lines in between (the first stage is `Queued`, from the job's creation to its first line), read from the NDJSON stream of `…/logs?follow`. Ctrl-C once cancels the
//! job and goes on following until it ends; a second one leaves at once.

use super::http::{CliResult, Client};
use super::term::{self, Paint};
use serde_json::Value;
use std::io::BufRead;
use std::sync::mpsc;
use std::time::Duration;

/// The job's stages and lines as they are printed.
pub struct Render {
    paint: Paint,
    stage: Option<(String, Option<jiff::Timestamp>)>,
}

fn at(v: &Value, key: &str) -> Option<jiff::Timestamp> {
    v[key].as_str().and_then(|s| s.parse().ok())
}

impl Render {
    pub fn new(paint: Paint) -> Render {
        Render { paint, stage: None }
    }

    /// Opens the `Queued` stage at the job's creation (`job` a ProvisionerJob).
    pub fn queued(&mut self, job: &Value) {
        println!("{}", self.paint.bold("==> ⧗ Queued"));
        self.stage = Some(("Queued".into(), at(job, "created_at")));
    }

    /// One log line (a ProvisionerJobLog).
    pub fn line(&mut self, log: &Value) {
        let stage = log["stage"].as_str().unwrap_or_default();
        let when = at(log, "created_at");
        if self.stage.as_ref().is_none_or(|(s, _)| s != stage) {
            self.end_stage(when, true);
            println!("{}", self.paint.bold(&format!("==> ⧗ {stage}")));
            self.stage = Some((stage.to_string(), when));
        }
        let output = log["output"].as_str().unwrap_or_default();
        if output.is_empty() {
            return;
        }
        let p = self.paint;
        let text = match log["log_level"].as_str().unwrap_or_default() {
            "error" => p.red(output),
            "warn" => p.yellow(output),
            "debug" | "trace" => p.dim(output),
            _ => output.to_string(),
        };
        println!("{text}");
    }

    /// Closes the current stage at `end` (its elapsed time since its first line).
    pub fn end_stage(&mut self, end: Option<jiff::Timestamp>, ok: bool) {
        let Some((stage, began)) = self.stage.take() else {
            return;
        };
        let ms = match (began, end) {
            (Some(b), Some(e)) => e.duration_since(b).as_millis().max(0),
            _ => 0,
        };
        let mark = if ok {
            self.paint.green("✔")
        } else {
            self.paint.red("✘")
        };
        println!("=== {mark} {stage} [{ms}ms]");
    }
}

/// Where a job is read: its log stream, the resource holding it (`job` inside), and its
/// cancel; `job` is the ProvisionerJob as last seen.
pub struct Job {
    pub job: Value,
    pub logs: String,
    pub resource: String,
    pub cancel: Option<String>,
}

/// How a followed job ended: the resource (build or version) as last read.
pub struct Ended {
    pub resource: Value,
    pub status: String,
}

fn terminal(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "canceled")
}

/// Follows `job` until it ends, printing as it goes.
pub fn follow(c: &Client, job: &Job, paint: Paint) -> CliResult<Ended> {
    if job.cancel.is_some() {
        term::catch_interrupts();
    }
    let mut render = Render::new(paint);
    render.queued(&job.job);
    let mut last_id = 0i64;
    let mut canceled = false;
    loop {
        let path = format!("{}?follow&after={last_id}", job.logs);
        let reader = c.stream(&path)?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let Ok(log) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    last_id = last_id.max(log["id"].as_i64().unwrap_or(0));
                    render.line(&log);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Some(cancel) = &job.cancel {
                let n = term::interrupts();
                if n >= 1 && !canceled {
                    canceled = true;
                    eprintln!("Canceling... (Ctrl-C again to leave without waiting)");
                    c.call("PATCH", cancel, Some(&serde_json::json!({})))
                        .map_err(|e| e.with("the cancel was refused"))?;
                }
                if n >= 2 {
                    eprintln!("Interrupted again: the cancel was sent; not waiting for the end.");
                    std::process::exit(130);
                }
            }
        }
        let resource = c.get(&job.resource)?;
        let status = resource["job"]["status"].as_str().unwrap_or("").to_string();
        if terminal(&status) {
            render.end_stage(at(&resource["job"], "completed_at"), status == "succeeded");
            return Ok(Ended { resource, status });
        }
        // The stream ended early (a server restart, a proxy): pick up after the last line.
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Prints a stored job's lines (a JSON array of logs) the same way, and closes its last stage
/// when the job has ended.
pub fn print_stored(logs: &Value, job: &Value, paint: Paint) {
    let mut render = Render::new(paint);
    render.queued(job);
    for l in logs.as_array().into_iter().flatten() {
        render.line(l);
    }
    let status = job["status"].as_str().unwrap_or("");
    if terminal(status) {
        render.end_stage(at(job, "completed_at"), status == "succeeded");
    }
}
