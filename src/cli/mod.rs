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
    // Hidden runtime modes go before clap: the monitor stays small and the
    // one-shot start path pays nothing for argument parsing.
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("__monitor") => return crate::host::runtime::monitor_main(&args[1..]),
        Some("__run") => return crate::host::runtime::run_main(&args[1..]),
        _ => {}
    }
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
