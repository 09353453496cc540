//! `berth exec NAME [-t] -- CMD...`: run a command in a running container and
//! pass on its exit code (126/127 when it cannot run or is not found).

use std::process::ExitCode;

use super::args::{Cmd, Opt, Parsed, Pos};
use super::error::Result;
use super::UsageError;

use super::context::Ctx;
use crate::host::runtime::join;

/// `berth exec`'s table.
pub const CMD: Cmd = Cmd {
    args: &[Pos::required("NAME", "Container name")],
    opts: &[Opt::flag("tty", "Allocate a pseudo-terminal").short('t')],
    last: Some(("COMMAND", "The command and its arguments")),
    ..Cmd::new(
        "exec",
        "Run a command in a running container, passing on its exit code",
    )
};

/// Arguments of `berth exec`.
#[derive(Debug)]
pub struct ExecArgs {
    /// Container name
    pub name: String,
    /// Allocate a pseudo-terminal
    pub tty: bool,
    /// The command and its arguments
    pub command: Vec<String>,
}

impl ExecArgs {
    /// Read from the parsed command line ([`CMD`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            name: p.required_arg(0)?,
            tty: p.has("tty"),
            command: p.last.clone(),
        })
    }
}

/// Run the command; its exit code becomes ours.
pub fn run(ctx: &Ctx, args: &ExecArgs) -> Result<ExitCode> {
    let code = join::exec(&ctx.dir(&args.name), &args.command, args.tty)?;
    Ok(ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)))
}
