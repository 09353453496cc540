//! `berth stop NAME [--timeout N]`: the stop signal, then SIGKILL to every
//! process of the container after the timeout.

use std::process::ExitCode;

use super::args::{Cmd, Opt, Parsed, Pos};
use super::error::Result;
use super::UsageError;

use super::context::Ctx;
use crate::host::runtime::Runtime;

/// `berth stop`'s table.
pub const CMD: Cmd = Cmd {
    args: &[Pos::required("NAME", "Container name")],
    opts: &[TIMEOUT],
    ..Cmd::new(
        "stop",
        "Stop a container (stop signal, then kill after the timeout)",
    )
};

/// `--timeout`, shared with `restart`.
pub const TIMEOUT: Opt = Opt::value(
    "timeout",
    "TIMEOUT",
    "Seconds to wait before killing (default: the manifest's stop_timeout)",
)
.short('t');

/// Arguments of `berth stop`.
#[derive(Debug)]
pub struct StopArgs {
    /// Container name
    pub name: String,
    /// Seconds to wait before killing (default: the manifest's stop_timeout)
    pub timeout: Option<u32>,
}

impl StopArgs {
    /// Read from the parsed command line ([`CMD`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            name: p.required_arg(0)?,
            timeout: p.num("timeout")?,
        })
    }
}

/// Stop the container and wait until it is down.
pub fn run(ctx: &Ctx, args: &StopArgs) -> Result<ExitCode> {
    Runtime::current().stop(&ctx.dir(&args.name), args.timeout)?;
    Ok(ExitCode::SUCCESS)
}
