//! `berth rm NAME [--force]`: delete a stopped container's runtime state
//! (with `--force`, stop it at once first).

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use std::path::Path;

use super::containers;
use crate::host::runtime::{state, Runtime, Status};

/// Arguments of `berth rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Container name
    pub name: String,
    /// Stop it first if it runs
    #[arg(long, short = 'f')]
    pub force: bool,
}

/// Remove the container's runtime dir.
pub fn run(root: &Path, args: &RmArgs) -> anyhow::Result<ExitCode> {
    let dir = containers::dir(root, &args.name);
    let (status, _) = state::status(&dir)?;
    if let Status::Missing = status {
        bail!("no container `{}` in `{}`", args.name, dir.display());
    }
    if !args.force && !matches!(status, Status::Stopped { .. }) {
        bail!(
            "container `{}` is running; stop it first or use --force",
            args.name
        );
    }
    Runtime::current().remove(&dir)?;
    Ok(ExitCode::SUCCESS)
}
