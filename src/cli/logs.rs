//! `berth logs NAME [-f] [-n N]`: print the container's output from its
//! size-bounded log files; `-f` keeps following while the container runs.

use std::io::Write;
use std::process::ExitCode;

use super::args::{Cmd, Opt, Parsed, Pos};
use super::error::{bail, Context, Result};
use super::UsageError;

use super::context::Ctx;
use crate::host::runtime::{logs, rundir, Status};

/// `berth logs`'s table.
pub const CMD: Cmd = Cmd {
    args: &[Pos::required("NAME", "Container name")],
    opts: &[
        Opt::flag("follow", "Keep printing new output").short('f'),
        Opt::value("lines", "LINES", "Only the last N lines").short('n'),
    ],
    ..Cmd::new("logs", "Print a container's output")
};

/// Arguments of `berth logs`.
#[derive(Debug)]
pub struct LogsArgs {
    /// Container name
    pub name: String,
    /// Keep printing new output
    pub follow: bool,
    /// Only the last N lines
    pub lines: Option<usize>,
}

impl LogsArgs {
    /// Read from the parsed command line ([`CMD`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            name: p.required_arg(0)?,
            follow: p.has("follow"),
            lines: p.num("lines")?,
        })
    }
}

/// Print the log.
pub fn run(ctx: &Ctx, args: &LogsArgs) -> Result<ExitCode> {
    let dir = ctx.dir(&args.name);
    if let (Status::Missing, _) = rundir::status(&dir)? {
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
                rundir::status(&dir).map(|s| s.0),
                Ok(Status::Running { .. } | Status::Restarting | Status::Stopping { .. })
            )
        };
        logs::follow(&dir, &mut out, pos, &mut alive)?;
    }
    Ok(ExitCode::SUCCESS)
}
