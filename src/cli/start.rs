//! `berth start NAME`: start a created container again from its saved
//! runtime config, under a new monitor.

use std::process::ExitCode;

use super::args::{Cmd, Parsed, Pos};
use super::error::{Context, Error, Result};
use super::UsageError;

use super::context::Ctx;
use crate::host::runtime::rundir::load_config;
use crate::host::runtime::spawn::NoHook;
use crate::host::runtime::Runtime;
use crate::host::Host;
use crate::model::Desired;

/// `berth start`'s table.
pub const CMD: Cmd = Cmd {
    args: &[Pos::required("NAME", "Container name")],
    ..Cmd::new("start", "Start a created container")
};

/// Arguments of `berth start`.
#[derive(Debug)]
pub struct StartArgs {
    /// Container name
    pub name: String,
}

impl StartArgs {
    /// Read from the parsed command line ([`CMD`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            name: p.required_arg(0)?,
        })
    }
}

/// Start the container and print its init pid. A container `apply` created is
/// started the way apply starts it (layer, cgroup, network plugged in); one
/// made by other means from its saved runtime config alone.
pub fn run(ctx: &Ctx, args: &StartArgs) -> Result<ExitCode> {
    if let Some((rec, _, mut host)) = ctx.applied(&args.name)? {
        let desired = Desired {
            networks: rec
                .networks
                .iter()
                .map(|n| (n.name.clone(), n.clone()))
                .collect(),
            ..Desired::default()
        };
        host.start(&rec.spec, &desired).map_err(|e| {
            Error::msg(format!("start `{}`: {}", args.name, crate::host::chain(&e)))
        })?;
        outln!("{} started", args.name)?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = ctx.dir(&args.name);
    let cfg = load_config(&dir)
        .with_context(|| format!("container `{}` was never created here", args.name))?;
    let pid = Runtime::current().start(&cfg.spec, &cfg.paths, &cfg.options, &mut NoHook)?;
    outln!("{} started (pid {pid})", args.name)?;
    Ok(ExitCode::SUCCESS)
}
