//! `berth start NAME`: start a created container again from its saved
//! runtime config, under a new monitor.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use std::path::Path;

use super::containers;
use crate::host::runtime::monitor::load_config;
use crate::host::runtime::spawn::NoHook;
use crate::host::runtime::Runtime;

/// Arguments of `berth start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Container name
    pub name: String,
}

/// Start the container and print its init pid.
pub fn run(root: &Path, args: &StartArgs) -> anyhow::Result<ExitCode> {
    let dir = containers::dir(root, &args.name);
    let cfg = load_config(&dir)
        .with_context(|| format!("container `{}` was never created here", args.name))?;
    let pid = Runtime::current().start(&cfg.spec, &cfg.paths, &cfg.options, &mut NoHook)?;
    println!("{} started (pid {pid})", args.name);
    Ok(ExitCode::SUCCESS)
}
