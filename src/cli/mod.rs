//! Subcommands. `main` parses arguments, runs one subcommand and maps its outcome
//! to an exit code: 0 ok, 1 an action failed, 2 bad usage or manifest.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod containers;
pub mod exec;
pub mod kill;
pub mod logs;
pub mod ls;
pub mod restart;
pub mod rm;
pub mod start;
pub mod status;
pub mod stop;

/// Declarative containers for routers.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a created container
    Start(start::StartArgs),
    /// Stop a container (stop signal, then kill after the timeout)
    Stop(stop::StopArgs),
    /// Stop and start a container
    Restart(restart::RestartArgs),
    /// Send a signal to a container's init
    Kill(kill::KillArgs),
    /// Remove a stopped container's runtime state
    Rm(rm::RmArgs),
    /// List containers
    Ls(ls::LsArgs),
    /// Show container status
    Status(status::StatusArgs),
    /// Run a command in a running container
    Exec(exec::ExecArgs),
    /// Print a container's output
    Logs(logs::LogsArgs),
}

/// Parse the command line, run, and return the exit code.
pub fn main() -> ExitCode {
    // Hidden runtime modes go before clap: the monitor stays small and the
    // one-shot start path pays nothing for argument parsing.
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("__monitor") => return crate::host::runtime::monitor_main(&args[1..]),
        Some("__run") => return crate::host::runtime::run_main(&args[1..]),
        _ => {}
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        None => Ok(ExitCode::SUCCESS),
        Some(Command::Start(a)) => start::run(a),
        Some(Command::Stop(a)) => stop::run(a),
        Some(Command::Restart(a)) => restart::run(a),
        Some(Command::Kill(a)) => kill::run(a),
        Some(Command::Rm(a)) => rm::run(a),
        Some(Command::Ls(a)) => ls::run(a),
        Some(Command::Status(a)) => status::run(a),
        Some(Command::Exec(a)) => exec::run(a),
        Some(Command::Logs(a)) => logs::run(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("berth: {err:#}");
            ExitCode::from(1)
        }
    }
}
