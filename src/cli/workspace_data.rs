//! `kiln builds`, `kiln logs` and `kiln state pull|push`.

use super::follow::{self, Job};
use super::http::{CliError, CliResult, Client};
use super::shared::{client, split_name, workspace};
use super::table::{self, Output, s};
use super::term;
use super::workspaces::follow_build;
use base64::Engine;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub struct BuildsArgs {
    /// The workspace: NAME (yours) or OWNER/NAME.
    pub name: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Args)]
pub struct LogsArgs {
    /// The workspace: NAME (yours) or OWNER/NAME.
    pub name: String,
    /// The build's number (the latest build otherwise).
    #[arg(short = 'n', long = "build")]
    pub build: Option<i64>,
    /// Follow the logs until the build ends (the exit code says whether it succeeded).
    #[arg(short = 'f', long)]
    pub follow: bool,
}

#[derive(Subcommand)]
pub enum StateCommand {
    /// Write a build's state (the latest build's unless -b) to FILE, or to stdout.
    #[command(
        after_help = "Example:\n  kiln state pull dev state.json\n  kiln state pull dev -b 2 > old.json"
    )]
    Pull(PullArgs),
    /// Start a build with the state in FILE (or, with --no-build, replace the latest build's
    /// state in place).
    #[command(
        after_help = "Example:\n  kiln state push dev state.json\n  kiln state push dev state.json --no-build"
    )]
    Push(PushArgs),
}

#[derive(Args)]
pub struct PullArgs {
    /// The workspace: NAME (yours) or OWNER/NAME.
    pub name: String,
    /// The build's number.
    #[arg(short = 'b', long = "build")]
    pub build: Option<i64>,
    /// Where to write the state (stdout when absent).
    pub file: Option<PathBuf>,
}

#[derive(Args)]
pub struct PushArgs {
    /// The workspace: NAME (yours) or OWNER/NAME.
    pub name: String,
    /// The state to push.
    pub file: PathBuf,
    /// Replace the latest build's state without starting a build.
    #[arg(long)]
    pub no_build: bool,
}

/// The build of `name` numbered `number`, or its latest build.
fn find_build(c: &Client, name: &str, number: Option<i64>) -> CliResult<(Value, String)> {
    let w = workspace(c, name)?;
    let full = format!("{}/{}", s(&w, "/owner_name"), s(&w, "/name"));
    let Some(n) = number else {
        return Ok((w["latest_build"].clone(), full));
    };
    let (owner, ws) = split_name(name)?;
    let b = c.get(&format!("/api/v2/users/{owner}/workspace/{ws}/builds/{n}"))?;
    Ok((b, full))
}

pub fn builds(a: BuildsArgs) -> CliResult<i32> {
    let c = client()?;
    let w = workspace(&c, &a.name)?;
    let builds = c.get(&format!("/api/v2/workspaces/{}/builds", s(&w, "/id")))?;
    if a.output == Output::Json {
        table::print_json(&builds);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = builds
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            vec![
                s(b, "/build_number"),
                s(b, "/transition"),
                s(b, "/job/status"),
                s(b, "/initiator_name"),
                s(b, "/reason"),
                s(b, "/template_version_name"),
                table::time(b, "/created_at"),
            ]
        })
        .collect();
    table::print(
        &[
            "BUILD",
            "TRANSITION",
            "STATUS",
            "INITIATOR",
            "REASON",
            "VERSION",
            "CREATED AT",
        ],
        &rows,
    );
    Ok(0)
}

pub fn logs(a: LogsArgs) -> CliResult<i32> {
    let c = client()?;
    let (b, _) = find_build(&c, &a.name, a.build)?;
    let id = s(&b, "/id");
    let paint = term::Paint(term::colour());
    if a.follow {
        let ended = follow::follow(
            &c,
            &Job {
                job: b["job"].clone(),
                logs: format!("/api/v2/workspacebuilds/{id}/logs"),
                resource: format!("/api/v2/workspacebuilds/{id}"),
                cancel: None,
            },
            paint,
        )?;
        return Ok(if ended.status == "succeeded" { 0 } else { 1 });
    }
    let logs = c.get(&format!("/api/v2/workspacebuilds/{id}/logs"))?;
    follow::print_stored(&logs, &b["job"], paint);
    Ok(0)
}

pub fn state(cmd: StateCommand) -> CliResult<i32> {
    let c = client()?;
    match cmd {
        StateCommand::Pull(a) => {
            let (b, _) = find_build(&c, &a.name, a.build)?;
            let bytes = c.get_bytes(&format!("/api/v2/workspacebuilds/{}/state", s(&b, "/id")))?;
            match &a.file {
                Some(f) => std::fs::write(f, &bytes)
                    .map_err(|e| CliError::new(format!("cannot write {}: {e}", f.display())))?,
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&bytes)?;
                    out.flush()?;
                }
            }
            Ok(0)
        }
        StateCommand::Push(a) => {
            let bytes = std::fs::read(&a.file)
                .map_err(|e| CliError::new(format!("cannot read {}: {e}", a.file.display())))?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let w = workspace(&c, &a.name)?;
            let full = format!("{}/{}", s(&w, "/owner_name"), s(&w, "/name"));
            let latest = &w["latest_build"];
            if a.no_build {
                c.call(
                    "PUT",
                    &format!("/api/v2/workspacebuilds/{}/state", s(latest, "/id")),
                    Some(&json!({"state": encoded})),
                )?;
                println!(
                    "Replaced the state of build {} of {full} ({} bytes).",
                    s(latest, "/build_number"),
                    bytes.len()
                );
                return Ok(0);
            }
            let b = c.post(
                &format!("/api/v2/workspaces/{}/builds", s(&w, "/id")),
                &json!({"transition": latest["transition"], "state": encoded}),
            )?;
            follow_build(&c, &full, &b)
        }
    }
}
