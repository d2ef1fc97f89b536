//! The `kiln` command-line client: the same binary as the server, talking to a kiln (or Coder)
//! over its API with a small synchronous HTTP client. `Command` holds the client's
//! subcommands (flattened into `kiln`'s own by `main.rs`); `run` executes one and returns the
//! process's exit code.

pub mod config;
pub mod follow;
pub mod http;
mod session;
pub mod table;
mod templates;
pub mod term;
mod workspace_data;
mod workspaces;

use clap::{Args, Subcommand};
use http::{CliError, CliResult, Client};
use serde_json::Value;

#[derive(Subcommand)]
pub enum Command {
    /// Sign in to a kiln server and keep its URL and session token.
    #[command(
        after_help = "Example:\n  kiln login http://127.0.0.1:3000\n  kiln login http://127.0.0.1:3000 --token \"$TOKEN\"\n  kiln login http://127.0.0.1:3000 --first-user-username you \\\n      --first-user-email you@example.com --first-user-password a-long-password"
    )]
    Login(session::LoginArgs),
    /// End the session on the server and forget it here.
    #[command(after_help = "Example:\n  kiln logout")]
    Logout,
    /// Push, list and inspect templates.
    #[command(
        subcommand,
        after_help = "Example:\n  kiln templates push hello -d examples/hello\n  kiln templates list"
    )]
    Templates(templates::TemplatesCommand),
    /// Create a workspace from a template and follow its first build.
    #[command(after_help = "Example:\n  kiln create dev -t hello --parameter region=us --yes")]
    Create(workspaces::CreateArgs),
    /// List workspaces (yours; every one you may see with -a).
    #[command(after_help = "Example:\n  kiln list -a --search status:running")]
    List(workspaces::ListArgs),
    /// Show a workspace.
    #[command(after_help = "Example:\n  kiln show dev\n  kiln show alice/dev -o json")]
    Show(workspaces::ShowArgs),
    /// Start a workspace and follow the build.
    #[command(after_help = "Example:\n  kiln start dev --parameter greeting=Hi")]
    Start(workspaces::BuildArgs),
    /// Stop a workspace and follow the build.
    #[command(after_help = "Example:\n  kiln stop dev")]
    Stop(workspaces::BuildArgs),
    /// Stop then start a workspace, following both builds.
    #[command(after_help = "Example:\n  kiln restart dev --parameter region=eu")]
    Restart(workspaces::BuildArgs),
    /// Delete a workspace and follow the build (--orphan forgets it without running the steps).
    #[command(after_help = "Example:\n  kiln delete dev\n  kiln delete alice/broken --orphan")]
    Delete(workspaces::BuildArgs),
    /// Cancel a workspace's running or pending build.
    #[command(after_help = "Example:\n  kiln cancel dev")]
    Cancel(NameArg),
    /// List a workspace's builds, newest first.
    #[command(after_help = "Example:\n  kiln builds dev -o json")]
    Builds(workspace_data::BuildsArgs),
    /// Print a build's logs (the latest build unless -n), or follow them with -f.
    #[command(after_help = "Example:\n  kiln logs dev\n  kiln logs dev -n 3\n  kiln logs dev -f")]
    Logs(workspace_data::LogsArgs),
    /// Read or replace a workspace's build state.
    #[command(
        subcommand,
        after_help = "Example:\n  kiln state pull dev state.json\n  kiln state push dev state.json"
    )]
    State(workspace_data::StateCommand),
}

#[derive(Args)]
pub struct NameArg {
    /// The workspace: NAME (yours) or OWNER/NAME.
    pub name: String,
}

/// Runs a client command; the process's exit code (errors printed on stderr).
pub fn run(cmd: Command) -> i32 {
    // `kiln list | head` ends quietly, as command-line tools do.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let result = match cmd {
        Command::Login(a) => session::login(a),
        Command::Logout => session::logout(),
        Command::Templates(t) => templates::run(t),
        Command::Create(a) => workspaces::create(a),
        Command::List(a) => workspaces::list(a),
        Command::Show(a) => workspaces::show(a),
        Command::Start(a) => workspaces::build(a, "start"),
        Command::Stop(a) => workspaces::build(a, "stop"),
        Command::Restart(a) => workspaces::restart(a),
        Command::Delete(a) => workspaces::build(a, "delete"),
        Command::Cancel(a) => workspaces::cancel(a),
        Command::Builds(a) => workspace_data::builds(a),
        Command::Logs(a) => workspace_data::logs(a),
        Command::State(s) => workspace_data::state(s),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let paint = term::Paint(unsafe { libc::isatty(2) == 1 } && term::colour());
            let mut lines = e.lines.iter();
            if let Some(first) = lines.next() {
                eprintln!("{} {first}", paint.red("error:"));
            }
            for l in lines {
                eprintln!("{l}");
            }
            1
        }
    }
}

/// A client for the signed-in server (or `KILN_URL` / `KILN_TOKEN`).
pub(crate) fn client() -> CliResult<Client> {
    config::current()?.client()
}

/// `OWNER/NAME` or `NAME` (the caller's: `me`).
pub(crate) fn split_name(name: &str) -> CliResult<(String, String)> {
    match name.split_once('/') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => {
            Ok((o.to_string(), n.to_string()))
        }
        None if !name.is_empty() => Ok(("me".into(), name.to_string())),
        _ => Err(CliError::new(format!(
            "{name:?} is not a workspace name: NAME or OWNER/NAME"
        ))),
    }
}

/// A workspace by `OWNER/NAME` or `NAME`.
pub(crate) fn workspace(c: &Client, name: &str) -> CliResult<Value> {
    let (owner, ws) = split_name(name)?;
    c.get(&format!("/api/v2/users/{owner}/workspace/{ws}"))
}

/// The caller's first organization's name (the default one, `coder`, on kiln).
pub(crate) fn organization(c: &Client) -> CliResult<String> {
    let orgs = c.get("/api/v2/users/me/organizations")?;
    orgs[0]["name"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CliError::new("you are a member of no organization"))
}

/// `k=v` pairs as Coder's rich parameter values.
pub(crate) fn parameters(pairs: &[String]) -> CliResult<Vec<Value>> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok(serde_json::json!({"name": k.trim(), "value": v}))
            }
            _ => Err(CliError::new(format!(
                "--parameter {p:?}: expected NAME=VALUE"
            ))),
        })
        .collect()
}
