//! `berth start NAME`: start a created container again from its saved
//! runtime config, under a new monitor.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::containers::RunRoot;
use crate::host::runtime::monitor::load_config;
use crate::host::runtime::spawn::NoHook;
use crate::host::runtime::Runtime;

/// Arguments of `berth start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Container name
    pub name: String,
    #[command(flatten)]
    pub root: RunRoot,
}

/// Start the container and print its init pid.
pub fn run(args: &StartArgs) -> anyhow::Result<ExitCode> {
    let dir = args.root.dir(&args.name);
    let cfg = load_config(&dir).with_context(|| format!("container `{}` was never created here", args.name))?;
    let pid = Runtime::current().start(&cfg.spec, &cfg.paths, &cfg.options, &mut NoHook)?;
    println!("{} started (pid {pid})", args.name);
    Ok(ExitCode::SUCCESS)
}
