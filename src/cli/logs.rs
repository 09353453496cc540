//! `berth logs NAME [-f] [-n N]`: print the container's output from its
//! size-bounded log files; `-f` keeps following while the container runs.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

use std::path::Path;

use super::containers;
use crate::host::runtime::{logs, state, Status};

/// Arguments of `berth logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Container name
    pub name: String,
    /// Keep printing new output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(short = 'n', long = "lines")]
    pub lines: Option<usize>,
}

/// Print the log.
pub fn run(root: &Path, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let dir = containers::dir(root, &args.name);
    if let (Status::Missing, _) = state::status(&dir)? {
        bail!("no container `{}` in `{}`", args.name, dir.display());
    }
    let (text, pos) = logs::tail_at(&dir, args.lines)
        .with_context(|| format!("read the log of `{}`", args.name))?;
    let mut out = std::io::stdout().lock();
    out.write_all(&text)?;
    out.flush()?;
    if args.follow {
        // Follow while the container runs or restarts; stop after it ends.
        let mut alive = || {
            matches!(
                state::status(&dir).map(|s| s.0),
                Ok(Status::Running { .. } | Status::Restarting | Status::Stopping { .. })
            )
        };
        logs::follow(&dir, &mut out, pos, &mut alive)?;
    }
    Ok(ExitCode::SUCCESS)
}
