//! `berth kill NAME [--signal SIG]`: send a signal to the container's init.

use std::process::ExitCode;

use super::args::{Cmd, Opt, Parsed, Pos};
use super::error::{Error, Result};
use super::UsageError;

use super::context::Ctx;
use crate::host::runtime::{signal_number, Runtime};

/// `berth kill`'s table.
pub const CMD: Cmd = Cmd {
    args: &[Pos::required("NAME", "Container name")],
    opts: &[Opt::value("signal", "SIGNAL", "Signal name or number")
        .short('s')
        .default("SIGKILL")],
    ..Cmd::new("kill", "Send a signal to a container's init")
};

/// Arguments of `berth kill`.
#[derive(Debug)]
pub struct KillArgs {
    /// Container name
    pub name: String,
    /// Signal name or number
    pub signal: String,
}

impl KillArgs {
    /// Read from the parsed command line ([`CMD`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            name: p.required_arg(0)?,
            signal: p.string("signal")?.unwrap_or_else(|| "SIGKILL".into()),
        })
    }
}

/// Signal the init. The monitor then applies the restart policy.
pub fn run(ctx: &Ctx, args: &KillArgs) -> Result<ExitCode> {
    let sig = signal_number(&args.signal).ok_or_else(|| {
        Error::msg(format!(
            "`{}` is not a signal; use e.g. SIGTERM or 15",
            args.signal
        ))
    })?;
    Runtime::current().kill(&ctx.dir(&args.name), sig)?;
    Ok(ExitCode::SUCCESS)
}
