//! `berth rm NAME [--force]`: delete a stopped container (with `--force`, stop
//! it first). One `apply` created loses everything: writable layer, cgroup,
//! interfaces and its record, so the next `apply` creates it afresh. Otherwise
//! only its runtime state is deleted.

use std::process::ExitCode;

use super::args::{Cmd, Opt, Parsed, Pos};
use super::error::{bail, Error, Result};
use super::UsageError;

use std::path::Path;

use super::{containers, Global};
use crate::converge::Host;
use crate::host::runtime::{rundir, Runtime, Status};

/// `berth rm`'s table.
pub const CMD: Cmd = Cmd {
    args: &[Pos::required("NAME", "Container name")],
    opts: &[Opt::flag("force", "Stop it first if it runs").short('f')],
    ..Cmd::new("rm", "Remove a stopped container's runtime state")
};

/// Arguments of `berth rm`.
#[derive(Debug)]
pub struct RmArgs {
    /// Container name
    pub name: String,
    /// Stop it first if it runs
    pub force: bool,
}

impl RmArgs {
    /// Read from the parsed command line ([`CMD`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            name: p.required_arg(0)?,
            force: p.has("force"),
        })
    }
}

/// Remove the container's runtime dir.
pub fn run(global: &Global, root: &Path, args: &RmArgs) -> Result<ExitCode> {
    let dir = containers::dir(root, &args.name);
    let (status, _) = rundir::status(&dir)?;
    let stopped = matches!(status, Status::Stopped { .. } | Status::Missing);
    if !args.force && !stopped {
        bail!(
            "container `{}` is running; stop it first or use --force",
            args.name
        );
    }
    if let Some((_, state, mut host)) = containers::applied(global, root, &args.name)? {
        host.remove(&args.name).map_err(|e| {
            Error::msg(format!(
                "remove `{}`: {}",
                args.name,
                crate::host::chain(e.as_ref())
            ))
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
