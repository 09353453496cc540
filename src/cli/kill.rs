//! `berth kill NAME [--signal SIG]`: send a signal to the container's init.

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;

use std::path::Path;

use super::containers;
use crate::host::runtime::{signal_number, Runtime};

/// Arguments of `berth kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Container name
    pub name: String,
    /// Signal name or number
    #[arg(long, short = 's', default_value = "SIGKILL")]
    pub signal: String,
}

/// Signal the init. The monitor then applies the restart policy.
pub fn run(root: &Path, args: &KillArgs) -> anyhow::Result<ExitCode> {
    let sig = signal_number(&args.signal)
        .ok_or_else(|| anyhow!("`{}` is not a signal; use e.g. SIGTERM or 15", args.signal))?;
    Runtime::current().kill(&containers::dir(root, &args.name), sig)?;
    Ok(ExitCode::SUCCESS)
}
