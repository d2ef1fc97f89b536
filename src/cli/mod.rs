//! The `kiln` command-line client: the same binary as the server, talking to a kiln (or Coder)
//! over its API with a small synchronous HTTP client. `Command` holds the client's
//! subcommands (flattened into `kiln`'s own by `main.rs`); `run` executes one and returns the
//! process's exit code.

pub mod config;
pub mod follow;
pub mod http;
mod session;
mod shared;
pub mod table;
mod templates;
pub mod term;
mod workspace_data;
mod workspaces;

use clap::Subcommand;
use shared::NameArg;

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
