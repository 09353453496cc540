//! The container subcommands (start, stop, restart, kill, rm, ls, status,
//! exec, logs): each body is in its own file; this one dispatches and says
//! where a container's runtime dir is.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::apply::absolute;
use super::args::Parsed;
use super::error::Result;
use super::{exec, kill, logs, ls, pause, restart, rm, start, status, stop, Global, UsageError};
use crate::host::cgroup::{CgroupBackend, ParentPolicy};
use crate::host::records::{Record, RecordStore};
use crate::host::{LocalConfig, LocalHost};
use crate::model::SettingsSpec;

/// Subcommands that act on containers through the runtime.
#[derive(Debug)]
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

/// The cgroup backend, opened as `apply` opens it (`--cgroup-parent` or the
/// host's default), for accounting, pause and resume.
pub fn cgroups(global: &Global) -> Result<CgroupBackend> {
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

/// A container `apply` created, with the host as apply sees it: its record,
/// the state store and a `LocalHost` on the given runtime root. `None` when
/// the store (`--root`, else /var/lib/berth) has no record of `name`.
pub fn applied(
    global: &Global,
    run_root: &Path,
    name: &str,
) -> Result<Option<(Record, RecordStore, LocalHost)>> {
    let store_root = absolute(
        global
            .root
            .clone()
            .unwrap_or_else(|| "/var/lib/berth".into()),
    );
    let state = RecordStore::new(&store_root);
    let Some(rec) = state.get(name)? else {
        return Ok(None);
    };
    let cgroup_parent = match &global.cgroup_parent {
        Some(p) => ParentPolicy::Fixed(p.clone()),
        None => ParentPolicy::Auto,
    };
    let host = LocalHost::new(LocalConfig {
        store_root,
        runtime_root: run_root.to_path_buf(),
        cgroup_parent,
        settings: SettingsSpec::default(),
        fetch: crate::host::store::FetchOptions::default(),
    });
    Ok(Some((rec, state, host)))
}

/// The runtime dir of container `name`.
pub fn dir(root: &Path, name: &str) -> PathBuf {
    crate::host::runtime::container_run_dir(root, name)
}

/// Run one container subcommand.
pub fn run(global: &Global, cmd: &ContainerCommand) -> Result<ExitCode> {
    let root = run_root(global);
    match cmd {
        ContainerCommand::Start(a) => start::run(global, &root, a),
        ContainerCommand::Stop(a) => stop::run(&root, a),
        ContainerCommand::Restart(a) => restart::run(global, &root, a),
        ContainerCommand::Kill(a) => kill::run(&root, a),
        ContainerCommand::Rm(a) => rm::run(global, &root, a),
        ContainerCommand::Ls => ls::run(&root),
        ContainerCommand::Status(a) => status::run(&root, a, cgroups(global).ok().as_ref()),
        ContainerCommand::Pause(a) => pause::run(global, a, true),
        ContainerCommand::Resume(a) => pause::run(global, a, false),
        ContainerCommand::Exec(a) => exec::run(&root, a),
        ContainerCommand::Logs(a) => logs::run(&root, a),
    }
}
