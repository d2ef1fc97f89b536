//! The `kiln` command line. Everything else lives in the library.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "A small build server that speaks Coder's workspace builds API (/api/v2), and its command-line client."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API, the status page and the provisioner workers.
    Server(kiln::config::args::ServerArgs),
    /// Copy a data folder's embedded database (kiln.db) to FILE, while its server runs.
    Backup(kiln::config::args::BackupArgs),
    /// Put a copy made by `kiln backup` back into a data folder no server is using.
    Restore(kiln::config::args::RestoreArgs),
    /// External provisioner daemons: run a kiln server's jobs on this machine.
    #[command(subcommand)]
    Provisioner(ProvisionerCommand),
    /// The client commands (`src/cli/`).
    #[command(flatten)]
    Client(kiln::cli::Command),
}

#[derive(Subcommand)]
enum ProvisionerCommand {
    // Its help is the args struct's own (src/provisioner/remote/mod.rs).
    Start(kiln::provisioner::remote::ProvisionerArgs),
}

fn main() {
    // Log lines only for the long-running commands: the client's output stays its own.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Server(mut args) => {
            init_log();
            let options = matches
                .subcommand_matches("server")
                .map(kiln::config::args::options)
                .unwrap_or_default();
            database(&mut args).and_then(|()| serve(args, options))
        }
        Command::Provisioner(ProvisionerCommand::Start(args)) => {
            init_log();
            // A step on this machine runs as the daemon's user: the key leaves what it can read.
            kiln::secrets::hide(&[&args.key], &["KILN_PROVISIONER_DAEMON_KEY"]);
            kiln::provisioner::remote::run(args).map_err(Into::into)
        }
        Command::Backup(args) => {
            init_log();
            kiln::maintenance::backup(&args.data_dir, &args.file)
                .map(|done| println!("{done}"))
                .map_err(Into::into)
        }
        Command::Restore(args) => {
            init_log();
            kiln::maintenance::restore(&args.file, &args.data_dir)
                .map(|done| println!("{done}"))
                .map_err(Into::into)
        }
        Command::Client(cmd) => std::process::exit(kiln::cli::run(cmd)),
    };
    if let Err(e) = result {
        log::error!("{e}");
        std::process::exit(1);
    }
}

fn init_log() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}

/// The database's connection string, from --database or --database-file, then hidden from
/// this process's command line and environment (a step runs as kiln's user and could read
/// them in /proc).
fn database(args: &mut kiln::config::args::ServerArgs) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(path) = &args.database_file {
        args.database = Some(kiln::secrets::read_file(path)?);
    }
    if let Some(database) = &args.database {
        kiln::secrets::hide(&[database], &["KILN_DATABASE"]);
    }
    Ok(())
}

fn serve(
    args: kiln::config::args::ServerArgs,
    options: Vec<kiln::config::ConfigOption>,
) -> Result<(), Box<dyn std::error::Error>> {
    let server = kiln::startup::Server::from_args(args, options)?;
    actix_web::rt::System::new().block_on(server.run_until_stopped())?;
    Ok(())
}
