//! `berth restart NAME [--timeout N]`: stop, then start from the saved config.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use std::path::Path;

use super::containers;
use crate::host::runtime::monitor::load_config;
use crate::host::runtime::spawn::NoHook;
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

/// Stop and start again.
pub fn run(root: &Path, args: &RestartArgs) -> anyhow::Result<ExitCode> {
    let dir = containers::dir(root, &args.name);
    let cfg = load_config(&dir)
        .with_context(|| format!("container `{}` was never created here", args.name))?;
    let rt = Runtime::current();
    rt.stop(&dir, args.timeout)?;
    let pid = rt.start(&cfg.spec, &cfg.paths, &cfg.options, &mut NoHook)?;
    println!("{} restarted (pid {pid})", args.name);
    Ok(ExitCode::SUCCESS)
}
