//! `berth restart NAME [--timeout N]`: stop, then start as `berth start` does.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use std::path::Path;

use super::{containers, start, Global};
use crate::host::runtime::monitor::load_config;
use crate::host::runtime::Runtime;

/// Arguments of `berth restart`.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Container name
    pub name: String,
    /// Seconds to wait before killing (default: the manifest's stop_timeout)
    #[arg(long, short = 't')]
    pub timeout: Option<u32>,
}

/// Stop and start again; the network is plugged in anew, as at every start.
pub fn run(global: &Global, root: &Path, args: &RestartArgs) -> anyhow::Result<ExitCode> {
    let dir = containers::dir(root, &args.name);
    load_config(&dir)
        .with_context(|| format!("container `{}` was never created here", args.name))?;
    Runtime::current().stop(&dir, args.timeout)?;
    start::run(
        global,
        root,
        &start::StartArgs {
            name: args.name.clone(),
        },
    )
}
