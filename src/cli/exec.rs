//! `berth exec NAME [-t] -- CMD...`: run a command in a running container and
//! pass on its exit code (126/127 when it cannot run or is not found).

use std::process::ExitCode;

use clap::Args;

use std::path::Path;

use super::containers;
use crate::host::runtime::exec;

/// Arguments of `berth exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Container name
    pub name: String,
    /// Allocate a pseudo-terminal
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// The command and its arguments
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Run the command; its exit code becomes ours.
pub fn run(root: &Path, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let code = exec::exec(&containers::dir(root, &args.name), &args.command, args.tty)?;
    Ok(ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)))
}
