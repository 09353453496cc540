//! Subcommands. `main` parses arguments, runs one subcommand and maps its outcome
//! to an exit code: 0 ok, 1 an action failed, 2 bad usage or manifest.

use std::process::ExitCode;

use clap::Parser;

/// Declarative containers for routers.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about)]
pub struct Cli {}

/// Parse the command line, run, and return the exit code.
pub fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
