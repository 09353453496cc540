//! The container runtime: the last host step of `apply`. It turns one resolved
//! `Spec` plus a ready rootfs into a running, supervised process tree.
//!
//! - `prepare`: the child's whole setup computed from the `Spec` (pure-ish);
//! - `spawn`: clone into new namespaces, parent/child handshake, exec;
//! - `mounts` (the pure plan) and `mount_calls` (its syscalls), `caps`, `seccomp`:
//!   what the child sets up before exec;
//! - `monitor`: the detached supervisor (`berth __monitor`), restarts and stop;
//! - `control`: the caller's side (`Runtime`: start, stop, kill, remove);
//! - `oneshot`: `berth __run`, a foreground start for benchmarks and tests;
//! - `rundir`: the run dir's files, the contract between `control` and the
//!   monitor: its config, the stop request, crash-only state (pid + start time);
//! - `logs`: size-bounded, rotated stdout/stderr files;
//! - `join`: `berth exec`, enter a running container like `lxc-attach`.
//! - `health` (the verdict of the probes) and `probe` (one probe, forked by the
//!   monitor);
//! - `fds`: no inherited descriptor and no dumpable berth process reaches a container.

pub mod caps;
pub mod console;
pub mod control;
pub mod fds;
pub mod health;
pub mod join;
pub mod logs;
pub mod monitor;
pub mod mount_calls;
pub mod mounts;
pub mod oneshot;
pub mod prepare;
pub mod probe;
pub mod rundir;
pub mod seccomp;
pub mod sigwait;
pub mod spawn;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use control::{ProcessRuntime, Runtime};
pub use monitor::monitor_main;
pub use oneshot::run_main;
pub use rundir::{ContainerState, ProcId, Status};
pub use spawn::{ExitInfo, SetupHook};

/// Everything that can go wrong while starting, supervising or entering a container.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A host-side system call on a path failed.
    #[error("{verb} `{}`", path.display())]
    Io {
        verb: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A system call without a path failed.
    #[error("{verb}")]
    Sys {
        verb: &'static str,
        source: io::Error,
    },
    /// The child failed during setup, before its command ran.
    #[error("set up the container: {what}")]
    ChildSetup { what: String, source: io::Error },
    /// The command could not be executed (126) or was not found (127).
    #[error("exec `{program}` in the container: {}", if *code == 127 { "not found" } else { "not executable" })]
    ExecFailed { program: String, code: i32 },
    /// The caller's setup hook (cgroup placement, network plug) failed.
    #[error("run the setup hook for pid {pid}: {message}")]
    Hook { pid: i32, message: String },
    /// The spec asks for something this runtime cannot do as asked.
    #[error("container `{name}`: {message}")]
    Invalid { name: String, message: String },
    /// `exec` cannot read a namespace of the container it is to join.
    #[error("read the container's {kind} namespace `{}`", path.display())]
    Namespace {
        kind: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The kernel lacks a namespace the spec needs.
    #[error("the kernel has no {kind} namespace (`/proc/self/ns/{kind}` is missing)")]
    Unsupported { kind: &'static str },
    /// The container is not running.
    #[error("container `{name}` is not running")]
    NotRunning { name: String },
    /// A state file could not be parsed.
    #[error("parse `{}`: {message}", path.display())]
    BadState { path: PathBuf, message: String },
    /// The monitor reported a failed start.
    #[error("start container `{name}`: {message}")]
    Start { name: String, message: String },
    /// The monitor did not report the start.
    #[error("start container `{name}`: the monitor exited before reporting ({detail})")]
    MonitorLost { name: String, detail: String },
}

impl RuntimeError {
    pub(crate) fn io(verb: &'static str, path: &Path, source: io::Error) -> Self {
        RuntimeError::Io {
            verb,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn sys(verb: &'static str) -> Self {
        RuntimeError::Sys {
            verb,
            source: io::Error::last_os_error(),
        }
    }
}

/// Host locations of one container, all given by the caller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Paths {
    /// The ready root filesystem (overlay merged dir or copy) from the store.
    pub rootfs: PathBuf,
    /// This container's runtime directory (tmpfs): state, logs, stop requests.
    pub run_dir: PathBuf,
    /// This container's store directory (applied spec, writable layer).
    pub container_dir: PathBuf,
    /// Where named volumes live (`volumes/NAME`).
    pub volumes_dir: PathBuf,
}

/// Run-time knobs that do not come from the `Spec` itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Options {
    /// Share the host network namespace (a `type: host` network).
    pub host_network: bool,
    /// `cgroup.procs` files the container's init is written into before it runs
    /// (one per v1 hierarchy, or one on v2). Also used to kill every process.
    pub cgroup_procs: Vec<PathBuf>,
    /// Upper bound of one log file in bytes (0: the 1 MiB default).
    pub log_size: u64,
    /// `cgroup.procs` files the monitor moves itself into, so that it leaves
    /// the caller's cgroup (a procd or systemd service that may be killed as
    /// a whole). Empty: it stays where it was started.
    #[serde(default)]
    pub monitor_cgroup_procs: Vec<PathBuf>,
    /// A full-OS container's own cgroup tree, mounted read-write at
    /// /sys/fs/cgroup; its payload leaf is the last of `cgroup_procs`.
    #[serde(default)]
    pub init_tree: Option<crate::host::cgroup::InitTree>,
}

/// The runtime dir of container `name` under the runtime root.
pub fn container_run_dir(runtime_root: &Path, name: &str) -> PathBuf {
    runtime_root.join(name)
}

/// The stop signal a full-OS container's init expects, guessed from the image:
/// systemd wants SIGRTMIN+3; OpenWrt's procd and busybox init (LXC's default
/// halt signal) take SIGPWR; anything else gets SIGTERM.
pub fn init_stop_signal(rootfs: &Path, init: &str) -> &'static str {
    let in_root = |p: &str| rootfs.join(p.trim_start_matches('/'));
    let target = std::fs::read_link(in_root(init))
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_default();
    if target.contains("systemd")
        || in_root("lib/systemd/systemd").exists()
            && target.is_empty()
            && !in_root("sbin/procd").exists()
    {
        "SIGRTMIN+3"
    } else if target.contains("busybox") || in_root("sbin/procd").exists() {
        "SIGPWR"
    } else {
        "SIGTERM"
    }
}

/// Map a signal name (`SIGTERM`, `TERM`, `SIGRTMIN+3`, `15`) to this
/// architecture's number; MIPS numbers differ from x86 and ARM.
pub fn signal_number(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = bare.strip_prefix("RTMIN") {
        // glibc reserves the kernel's first two real-time signals (32, 33), so
        // `SIGRTMIN+3` as systemd (a glibc program) reads it is 34 + 3.
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')?.parse().ok()?
        };
        let n = 34 + off;
        return (n <= 64).then_some(n);
    }
    let n = match bare {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "PWR" => libc::SIGPWR,
        "WINCH" => libc::SIGWINCH,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "ALRM" => libc::SIGALRM,
        _ => return None,
    };
    Some(n)
}

/// SIGKILL every process of the container: `cgroup.kill` where the kernel has
/// it (5.14+), else each pid listed in the cgroup.procs files until they are
/// empty; and the init, whose death ends its whole PID namespace.
pub fn kill_all(cgroup_procs: &[PathBuf], init: Option<ProcId>) {
    if let Some(i) = init.filter(ProcId::alive) {
        // SAFETY: signalling a process identified by pid and start time.
        unsafe { libc::kill(i.pid, libc::SIGKILL) };
    }
    for procs in cgroup_procs {
        let kill_file = procs.with_file_name("cgroup.kill");
        if kill_file.exists() && fs::write(&kill_file, "1").is_ok() {
            continue;
        }
        for _ in 0..50 {
            let mut pids = Vec::new();
            if let Some(dir) = procs.parent() {
                // A pid listed before a read error is still killed.
                let _ = crate::host::cgroup::collect_pids(dir, &mut pids);
            }
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: the pid was just listed in the container's cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_kind_picks_the_stop_signal() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("sbin")).unwrap();
        assert_eq!(init_stop_signal(r, "/sbin/init"), "SIGTERM");
        std::os::unix::fs::symlink("/bin/busybox", r.join("sbin/init")).unwrap();
        assert_eq!(init_stop_signal(r, "/sbin/init"), "SIGPWR");
        std::fs::remove_file(r.join("sbin/init")).unwrap();
        std::os::unix::fs::symlink("../lib/systemd/systemd", r.join("sbin/init")).unwrap();
        assert_eq!(init_stop_signal(r, "/sbin/init"), "SIGRTMIN+3");
        std::fs::remove_file(r.join("sbin/init")).unwrap();
        std::fs::write(r.join("sbin/init"), "").unwrap();
        std::fs::write(r.join("sbin/procd"), "").unwrap();
        assert_eq!(init_stop_signal(r, "/sbin/init"), "SIGPWR");
    }

    #[test]
    fn signal_names_map_to_this_arch() {
        assert_eq!(signal_number("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(signal_number("term"), Some(libc::SIGTERM));
        assert_eq!(signal_number("SIGPWR"), Some(libc::SIGPWR));
        assert_eq!(signal_number("SIGRTMIN+3"), Some(37));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("SIGRTMIN+40"), None);
        assert_eq!(signal_number("SIGBOGUS"), None);
        assert_eq!(signal_number("0"), None);
    }
}
