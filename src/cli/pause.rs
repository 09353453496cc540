//! `berth pause NAME` and `berth resume NAME`: freeze and thaw every process of
//! a container through its cgroup (v1 freezer, v2 cgroup.freeze).

use std::process::ExitCode;

use clap::Args;

use super::containers::cgroups;
use super::Global;

/// Arguments of `berth pause` and `berth resume`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Container name
    pub name: String,
}

/// Freeze (`pause: true`) or thaw the container's cgroup.
pub fn run(global: &Global, args: &PauseArgs, pause: bool) -> anyhow::Result<ExitCode> {
    let cg = cgroups(global)?;
    if pause {
        cg.freeze(&args.name)?;
    } else {
        cg.thaw(&args.name)?;
    }
    Ok(ExitCode::SUCCESS)
}
