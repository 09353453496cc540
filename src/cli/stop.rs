//! `berth stop NAME [--timeout N]`: the stop signal, then SIGKILL to every
//! process of the container after the timeout.

use std::process::ExitCode;

use clap::Args;

use std::path::Path;

use super::containers;
use crate::host::runtime::Runtime;

/// Arguments of `berth stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Container name
    pub name: String,
    /// Seconds to wait before killing (default: the manifest's stop_timeout)
    #[arg(long, short = 't')]
    pub timeout: Option<u32>,
}

/// Stop the container and wait until it is down.
pub fn run(root: &Path, args: &StopArgs) -> anyhow::Result<ExitCode> {
    Runtime::current().stop(&containers::dir(root, &args.name), args.timeout)?;
    Ok(ExitCode::SUCCESS)
}
