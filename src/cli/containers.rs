//! The container subcommands (start, stop, restart, kill, rm, ls, status,
//! exec, logs): each body is in its own file, and gets what they share (the
//! runtime root, the store, the cgroups) from `context::Ctx`; this one parses
//! and dispatches.

use std::process::ExitCode;

use super::args::Parsed;
use super::context::Ctx;
use super::error::Result;
use super::{exec, kill, logs, ls, pause, restart, rm, start, status, stop, Global, UsageError};

/// Subcommands that act on containers through the runtime, one variant per
/// command; what each does is the help text of the table beside its code,
/// which each variant names, not repeated here.
#[derive(Debug)]
pub enum ContainerCommand {
    /// `berth start`: [`start::CMD`].
    Start(start::StartArgs),
    /// `berth stop`: [`stop::CMD`].
    Stop(stop::StopArgs),
    /// `berth restart`: [`restart::CMD`].
    Restart(restart::RestartArgs),
    /// `berth kill`: [`kill::CMD`].
    Kill(kill::KillArgs),
    /// `berth rm`: [`rm::CMD`].
    Rm(rm::RmArgs),
    /// `berth ls`: [`ls::CMD`].
    Ls,
    /// `berth status`: [`status::CMD`].
    Status(status::StatusArgs),
    /// `berth exec`: [`exec::CMD`].
    Exec(exec::ExecArgs),
    /// `berth logs`: [`logs::CMD`].
    Logs(logs::LogsArgs),
    /// `berth pause`: [`pause::PAUSE`].
    Pause(pause::PauseArgs),
    /// `berth resume`: [`pause::RESUME`].
    Resume(pause::PauseArgs),
}

impl ContainerCommand {
    /// The container command `name` with its arguments from `p`.
    pub fn from_parsed(name: &str, p: &Parsed) -> Result<Self, UsageError> {
        Ok(match name {
            "start" => Self::Start(start::StartArgs::from_parsed(p)?),
            "stop" => Self::Stop(stop::StopArgs::from_parsed(p)?),
            "restart" => Self::Restart(restart::RestartArgs::from_parsed(p)?),
            "kill" => Self::Kill(kill::KillArgs::from_parsed(p)?),
            "rm" => Self::Rm(rm::RmArgs::from_parsed(p)?),
            "ls" => Self::Ls,
            "status" => Self::Status(status::StatusArgs::from_parsed(p)?),
            "exec" => Self::Exec(exec::ExecArgs::from_parsed(p)?),
            "logs" => Self::Logs(logs::LogsArgs::from_parsed(p)?),
            "pause" => Self::Pause(pause::PauseArgs::from_parsed(p)?),
            "resume" => Self::Resume(pause::PauseArgs::from_parsed(p)?),
            _ => {
                return Err(UsageError(format!(
                    "unknown command `{name}`; see `berth --help`"
                )))
            }
        })
    }
}

/// Run one container subcommand.
pub fn run(global: &Global, cmd: &ContainerCommand) -> Result<ExitCode> {
    let ctx = Ctx::new(global);
    match cmd {
        ContainerCommand::Start(a) => start::run(&ctx, a),
        ContainerCommand::Stop(a) => stop::run(&ctx, a),
        ContainerCommand::Restart(a) => restart::run(&ctx, a),
        ContainerCommand::Kill(a) => kill::run(&ctx, a),
        ContainerCommand::Rm(a) => rm::run(&ctx, a),
        ContainerCommand::Ls => ls::run(&ctx),
        ContainerCommand::Status(a) => status::run(&ctx, a),
        ContainerCommand::Pause(a) => pause::run(&ctx, a, true),
        ContainerCommand::Resume(a) => pause::run(&ctx, a, false),
        ContainerCommand::Exec(a) => exec::run(&ctx, a),
        ContainerCommand::Logs(a) => logs::run(&ctx, a),
    }
}
