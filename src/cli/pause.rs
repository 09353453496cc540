//! `berth pause NAME` and `berth resume NAME`: freeze and thaw every process of
//! a container through its cgroup (v1 freezer, v2 cgroup.freeze).

use std::process::ExitCode;

use super::args::{Cmd, Parsed, Pos};
use super::error::Result;
use super::UsageError;

use super::context::Ctx;

/// `berth pause`'s table.
pub const PAUSE: Cmd = Cmd {
    args: &[Pos::required("NAME", "Container name")],
    ..Cmd::new("pause", "Freeze every process of a container")
};

/// `berth resume`'s table.
pub const RESUME: Cmd = Cmd {
    args: &[Pos::required("NAME", "Container name")],
    ..Cmd::new("resume", "Thaw a paused container")
};

/// Arguments of `berth pause` and `berth resume`.
#[derive(Debug)]
pub struct PauseArgs {
    /// Container name
    pub name: String,
}

impl PauseArgs {
    /// Read from the parsed command line ([`PAUSE`], [`RESUME`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            name: p.required_arg(0)?,
        })
    }
}

/// Freeze (`pause: true`) or thaw the container's cgroup.
pub fn run(ctx: &Ctx, args: &PauseArgs, pause: bool) -> Result<ExitCode> {
    let cg = ctx.cgroups()?;
    if pause {
        cg.freeze(&args.name)?;
    } else {
        cg.thaw(&args.name)?;
    }
    Ok(ExitCode::SUCCESS)
}
