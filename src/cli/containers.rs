//! The container subcommands (start, stop, restart, kill, rm, ls, status,
//! exec, logs): each body is in its own file; this one dispatches and says
//! where a container's runtime dir is.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::{exec, kill, logs, ls, pause, restart, rm, start, status, stop, Global};
use crate::host::cgroup::{CgroupBackend, ParentPolicy};

/// Subcommands that act on containers through the runtime.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Start a created container
    Start(start::StartArgs),
    /// Stop a container (stop signal, then kill after the timeout)
    Stop(stop::StopArgs),
    /// Stop and start a container
    Restart(restart::RestartArgs),
    /// Send a signal to a container's init
    Kill(kill::KillArgs),
    /// Remove a stopped container's runtime state
    Rm(rm::RmArgs),
    /// List containers
    Ls,
    /// Show container status: state, pid, uptime, restarts, last exit
    Status(status::StatusArgs),
    /// Run a command in a running container, passing on its exit code
    Exec(exec::ExecArgs),
    /// Print a container's output
    Logs(logs::LogsArgs),
    /// Freeze every process of a container
    Pause(pause::PauseArgs),
    /// Thaw a paused container
    Resume(pause::PauseArgs),
}

/// The cgroup backend, opened as `apply` opens it (`--cgroup-parent` or the
/// host's default), for accounting, pause and resume.
pub fn cgroups(global: &Global) -> anyhow::Result<CgroupBackend> {
    let policy = match &global.cgroup_parent {
        Some(p) => ParentPolicy::Fixed(p.clone()),
        None => ParentPolicy::Auto,
    };
    Ok(CgroupBackend::detect(Path::new("/proc"), &policy)?)
}

/// The runtime root: `--runtime-dir`, else `$BERTH_RUNTIME_DIR`, else /var/run/berth.
pub fn run_root(global: &Global) -> PathBuf {
    crate::cli::apply::absolute(
        global
            .runtime_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/run/berth")),
    )
}

/// The runtime dir of container `name`.
pub fn dir(root: &Path, name: &str) -> PathBuf {
    crate::host::runtime::container_run_dir(root, name)
}

/// Run one container subcommand.
pub fn run(global: &Global, cmd: &ContainerCommand) -> anyhow::Result<ExitCode> {
    let root = run_root(global);
    match cmd {
        ContainerCommand::Start(a) => start::run(global, &root, a),
        ContainerCommand::Stop(a) => stop::run(&root, a),
        ContainerCommand::Restart(a) => restart::run(global, &root, a),
        ContainerCommand::Kill(a) => kill::run(&root, a),
        ContainerCommand::Rm(a) => rm::run(&root, a),
        ContainerCommand::Ls => ls::run(&root),
        ContainerCommand::Status(a) => status::run(&root, a, cgroups(global).ok().as_ref()),
        ContainerCommand::Pause(a) => pause::run(global, a, true),
        ContainerCommand::Resume(a) => pause::run(global, a, false),
        ContainerCommand::Exec(a) => exec::run(&root, a),
        ContainerCommand::Logs(a) => logs::run(&root, a),
    }
}
