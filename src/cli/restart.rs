//! `berth restart NAME [--timeout N]`: stop, then start as `berth start` does.

use std::process::ExitCode;

use super::args::{Cmd, Parsed, Pos};
use super::error::{Context, Result};
use super::UsageError;

use super::context::Ctx;
use super::start;
use crate::host::runtime::rundir::load_config;
use crate::host::runtime::Runtime;

/// `berth restart`'s table.
pub const CMD: Cmd = Cmd {
    args: &[Pos::required("NAME", "Container name")],
    opts: &[super::stop::TIMEOUT],
    ..Cmd::new("restart", "Stop and start a container")
};

/// Arguments of `berth restart`.
#[derive(Debug)]
pub struct RestartArgs {
    /// Container name
    pub name: String,
    /// Seconds to wait before killing (default: the manifest's stop_timeout)
    pub timeout: Option<u32>,
}

impl RestartArgs {
    /// Read from the parsed command line ([`CMD`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            name: p.required_arg(0)?,
            timeout: p.num("timeout")?,
        })
    }
}

/// Stop and start again; the network is plugged in anew, as at every start.
pub fn run(ctx: &Ctx, args: &RestartArgs) -> Result<ExitCode> {
    let dir = ctx.dir(&args.name);
    load_config(&dir)
        .with_context(|| format!("container `{}` was never created here", args.name))?;
    Runtime::current().stop(&dir, args.timeout)?;
    start::run(
        ctx,
        &start::StartArgs {
            name: args.name.clone(),
        },
    )
}
