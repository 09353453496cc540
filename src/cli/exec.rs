//! `berth exec NAME [-t] -- CMD...`: run a command in a running container and
//! pass on its exit code. berth's own failures end with 125, a command that
//! cannot be executed with 126 and one not found with 127, each with its message.

use std::process::ExitCode;

use super::args::{Cmd, Opt, Parsed, Pos};
use super::error::Result;
use super::UsageError;

use super::context::Ctx;
use crate::host::runtime::{join, RuntimeError};

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
    match join::exec(&ctx.dir(&args.name), &args.command, args.tty) {
        Ok(code) => Ok(ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1))),
        Err(source) => Err(ExecError { source }.into()),
    }
}

/// `berth exec` did not run the command; printed as its cause alone.
#[derive(Debug)]
pub struct ExecError {
    source: RuntimeError,
}

impl ExecError {
    /// 127 not found, 126 not executable, 125 anything else (as `env` and
    /// container runtimes do), so a caller tells them from the command's own codes.
    pub fn code(&self) -> u8 {
        match &self.source {
            RuntimeError::ExecFailed { code: 127, .. } => 127,
            RuntimeError::ExecFailed { .. } => 126,
            _ => 125,
        }
    }
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

/// Transparent: the chain goes on with the runtime error's own cause.
impl std::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}
