//! `berth rm NAME [--force]`: delete a stopped container (with `--force`, stop
//! it first). One `apply` created loses everything: writable layer, cgroup,
//! interfaces and its record, so the next `apply` creates it afresh. Otherwise
//! only its runtime state is deleted.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use std::path::Path;

use super::{containers, Global};
use crate::exec::Host;
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
pub fn run(global: &Global, root: &Path, args: &RmArgs) -> anyhow::Result<ExitCode> {
    let dir = containers::dir(root, &args.name);
    let (status, _) = state::status(&dir)?;
    let stopped = matches!(status, Status::Stopped { .. } | Status::Missing);
    if !args.force && !stopped {
        bail!(
            "container `{}` is running; stop it first or use --force",
            args.name
        );
    }
    if let Some((_, state, mut host)) = containers::applied(global, root, &args.name)? {
        host.remove(&args.name).map_err(|e| {
            anyhow::anyhow!("remove `{}`: {}", args.name, crate::exec::chain(e.as_ref()))
        })?;
        state.remove(&args.name)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Status::Missing = status {
        bail!("no container `{}` in `{}`", args.name, dir.display());
    }
    Runtime::current().remove(&dir)?;
    Ok(ExitCode::SUCCESS)
}
