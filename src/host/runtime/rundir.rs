//! The container's run dir (the runtime dir, tmpfs): the on-disk contract
//! between `control` (start, stop) and the `monitor`. `start` writes the
//! monitor's config (`config.json`), `stop` writes its timeout (`stop`), and
//! the monitor keeps the state file (`state.json`): the monitor's
//! and the init's pid, each with its start time from /proc/PID/stat so a
//! reused pid is never taken for the container, plus the last exit and the
//! restart count. Written atomically (tmp, fsync, rename, fsync dir), so a
//! SIGKILL at any point leaves the old or the new file, never half of one.
//! `status` combines the file with /proc and is truthful when the monitor died.

use std::fs::{self};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::health::HealthState;
use super::spawn::ExitInfo;
use super::{Options, Paths, RuntimeError};
use crate::model::Spec;

/// What the monitor needs, written by `start` into the runtime dir.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub spec: Spec,
    pub paths: Paths,
    pub options: Options,
    /// The process that runs this start and answers the setup hook.
    #[serde(default)]
    pub starter: Option<ProcId>,
}

pub(crate) const CONFIG_FILE: &str = "config.json";
/// Written by `stop` before it signals the monitor: the timeout in seconds.
pub(crate) const STOP_FILE: &str = "stop";

/// Read the monitor config of a container.
pub fn load_config(run_dir: &Path) -> Result<MonitorConfig, RuntimeError> {
    let path = run_dir.join(CONFIG_FILE);
    let bytes = fs::read(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| RuntimeError::BadState {
        path,
        message: e.to_string(),
    })
}

/// State file name inside the runtime dir.
pub const STATE_FILE: &str = "state.json";

/// A process identified by pid and kernel start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcId {
    pub pid: i32,
    pub start: u64,
}

impl ProcId {
    /// Identify a live pid now; `None` when it does not exist.
    pub fn of(pid: i32) -> Option<Self> {
        start_time(Path::new("/proc"), pid).map(|start| ProcId { pid, start })
    }

    /// True when this very process still exists and is not a zombie.
    pub fn alive(&self) -> bool {
        alive_in(Path::new("/proc"), self)
    }
}

/// Parse (state letter, start time) from /proc/PID/stat. The comm field may
/// contain spaces and parentheses, so split after the last `)`.
pub fn parse_stat(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After comm: field 3 (state) is index 0, field 22 (starttime) is index 19.
    let state = fields.first()?.chars().next()?;
    Some((state, fields.get(19)?.parse().ok()?))
}

fn start_time(proc_root: &Path, pid: i32) -> Option<u64> {
    let text = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    parse_stat(&text).map(|(_, s)| s)
}

/// Whether `id` is alive under a /proc tree (a parameter for tests).
pub fn alive_in(proc_root: &Path, id: &ProcId) -> bool {
    let Ok(text) = fs::read_to_string(proc_root.join(id.pid.to_string()).join("stat")) else {
        return false;
    };
    matches!(parse_stat(&text), Some((state, start)) if start == id.start && state != 'Z' && state != 'X')
}

/// Where the container is in its life, as the monitor last wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The monitor is setting the container up.
    Starting,
    /// The init runs.
    Running,
    /// The init exited; the monitor waits out the backoff before a restart.
    Restarting,
    /// A stop was requested and is in progress.
    Stopping,
    /// Stopped on request.
    Stopped,
    /// Exited on its own and not restarted.
    Exited,
}

/// The on-disk record of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    pub name: String,
    pub phase: Phase,
    pub monitor: Option<ProcId>,
    pub init: Option<ProcId>,
    /// Seconds since the epoch when the current init started.
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
    pub last_exit: Option<ExitInfo>,
    pub restarts: u32,
    /// The last start error (such as "exec `x`: not found").
    pub error: Option<String>,
    /// cgroup.procs files of the container, for exec and kill-all.
    pub cgroup_procs: Vec<PathBuf>,
    /// During a first start: the process that asked for it (`berth apply` or
    /// `berth start`), which must answer the setup hook. When it is dead the
    /// start cannot finish, and the container counts as stopped.
    #[serde(default)]
    pub starter: Option<ProcId>,
    /// The health check's verdict (only with a `health:` check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthState>,
}

impl ContainerState {
    /// A fresh record for `name`.
    pub fn new(name: &str) -> Self {
        ContainerState {
            name: name.into(),
            phase: Phase::Starting,
            monitor: None,
            init: None,
            started_at: None,
            finished_at: None,
            last_exit: None,
            restarts: 0,
            error: None,
            cgroup_procs: Vec::new(),
            starter: None,
            health: None,
        }
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Write `bytes` to `path` atomically (see `host::records::write_atomic`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    crate::host::records::write_atomic(path, bytes).map_err(|e| RuntimeError::io("write", path, e))
}

/// Save the record into `run_dir`.
pub fn save(run_dir: &Path, st: &ContainerState) -> Result<(), RuntimeError> {
    let path = run_dir.join(STATE_FILE);
    let json = serde_json::to_vec_pretty(st).map_err(|e| RuntimeError::BadState {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&path, &json)
}

/// Load the record; `Ok(None)` when there is none.
pub fn load(run_dir: &Path) -> Result<Option<ContainerState>, RuntimeError> {
    let path = run_dir.join(STATE_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RuntimeError::BadState {
                path,
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RuntimeError::io("read", &path, e)),
    }
}

/// What is true now, from the record and /proc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "state")]
pub enum Status {
    /// Never started here (no record).
    Missing,
    /// The init runs; `supervised` is false when its monitor died.
    Running { pid: i32, supervised: bool },
    /// Between an exit and the restart the monitor has scheduled.
    Restarting,
    /// The monitor is stopping it.
    Stopping { pid: i32 },
    /// Not running: stopped on request, exited, or lost with its monitor.
    Stopped { exit: Option<ExitInfo> },
}

/// A first start whose starter died: its monitor waits for an answer that
/// will never come and then gives up, so the container is as good as stopped.
/// (A killed `apply` left it; the next start replaces it.)
pub fn doomed_start(proc_root: &Path, st: &ContainerState) -> bool {
    st.phase == Phase::Starting && st.starter.is_some_and(|s| !alive_in(proc_root, &s))
}

/// Decide the status from a record, with liveness checks under `proc_root`.
pub fn status_of(proc_root: &Path, st: &ContainerState) -> Status {
    let monitor = st.monitor.map(|m| alive_in(proc_root, &m)).unwrap_or(false);
    let init = st.init.filter(|i| alive_in(proc_root, i));
    if doomed_start(proc_root, st) {
        return Status::Stopped { exit: st.last_exit };
    }
    match (st.phase, init) {
        (Phase::Stopping, Some(i)) if monitor => Status::Stopping { pid: i.pid },
        (_, Some(i)) => Status::Running {
            pid: i.pid,
            supervised: monitor,
        },
        (Phase::Restarting | Phase::Starting, None) if monitor => Status::Restarting,
        _ => Status::Stopped { exit: st.last_exit },
    }
}

/// Status of the container whose runtime dir is `run_dir`.
pub fn status(run_dir: &Path) -> Result<(Status, Option<ContainerState>), RuntimeError> {
    let st = load(run_dir)?;
    Ok(match st {
        None => (Status::Missing, None),
        Some(st) => (status_of(Path::new("/proc"), &st), Some(st)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc(root: &Path, pid: i32, state: char, start: u64) {
        let dir = root.join(pid.to_string());
        fs::create_dir_all(&dir).unwrap();
        let mut rest: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        rest[0] = state.to_string();
        rest[19] = start.to_string();
        fs::write(
            dir.join("stat"),
            format!("{pid} (a (weird) name) {}", rest.join(" ")),
        )
        .unwrap();
    }

    #[test]
    fn stat_parsing_survives_odd_comm() {
        assert_eq!(
            parse_stat("7 (x) y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 20"),
            Some(('S', 4242))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reused_pid_and_zombie_are_not_alive() {
        let dir = tempfile::tempdir().unwrap();
        fake_proc(dir.path(), 10, 'S', 500);
        fake_proc(dir.path(), 11, 'Z', 600);
        assert!(alive_in(
            dir.path(),
            &ProcId {
                pid: 10,
                start: 500
            }
        ));
        assert!(!alive_in(
            dir.path(),
            &ProcId {
                pid: 10,
                start: 499
            }
        ));
        assert!(!alive_in(
            dir.path(),
            &ProcId {
                pid: 11,
                start: 600
            }
        ));
        assert!(!alive_in(dir.path(), &ProcId { pid: 12, start: 1 }));
    }

    #[test]
    fn status_tells_the_truth_after_monitor_death() {
        let dir = tempfile::tempdir().unwrap();
        fake_proc(dir.path(), 20, 'S', 7);
        let mut st = ContainerState::new("web");
        st.phase = Phase::Running;
        st.monitor = Some(ProcId { pid: 19, start: 6 });
        st.init = Some(ProcId { pid: 20, start: 7 });
        assert_eq!(
            status_of(dir.path(), &st),
            Status::Running {
                pid: 20,
                supervised: false
            }
        );
        st.init = Some(ProcId { pid: 20, start: 8 });
        st.last_exit = Some(ExitInfo {
            code: 1,
            signal: None,
        });
        assert_eq!(
            status_of(dir.path(), &st),
            Status::Stopped { exit: st.last_exit }
        );
        fake_proc(dir.path(), 19, 'S', 6);
        st.phase = Phase::Restarting;
        assert_eq!(status_of(dir.path(), &st), Status::Restarting);
    }

    #[test]
    fn a_first_start_whose_starter_died_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        fake_proc(dir.path(), 19, 'S', 6); // the monitor
        fake_proc(dir.path(), 20, 'S', 7); // the init, waiting for the hook
        let mut st = ContainerState::new("web");
        st.phase = Phase::Starting;
        st.monitor = Some(ProcId { pid: 19, start: 6 });
        st.init = Some(ProcId { pid: 20, start: 7 });
        st.starter = Some(ProcId { pid: 30, start: 5 });
        // The starter (a killed `apply`) is gone: the hook is never answered.
        assert!(doomed_start(dir.path(), &st));
        assert_eq!(status_of(dir.path(), &st), Status::Stopped { exit: None });
        // While it lives, the start is in progress.
        fake_proc(dir.path(), 30, 'S', 5);
        assert!(!doomed_start(dir.path(), &st));
        assert!(matches!(status_of(dir.path(), &st), Status::Running { .. }));
        // Restarts have no starter: never doomed.
        st.starter = None;
        assert!(!doomed_start(dir.path(), &st));
    }

    #[test]
    fn atomic_save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let mut st = ContainerState::new("db");
        st.restarts = 3;
        save(dir.path(), &st).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(st));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
        fs::write(dir.path().join(STATE_FILE), "{").unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(RuntimeError::BadState { .. })
        ));
    }

    #[test]
    fn config_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let spec = super::super::oneshot::default_spec("x", vec!["true".into()]);
        let paths = Paths {
            rootfs: "/r".into(),
            run_dir: dir.path().into(),
            container_dir: "/c".into(),
            volumes_dir: "/v".into(),
        };
        let cfg = MonitorConfig {
            spec: spec.clone(),
            paths,
            options: Options::default(),
            starter: None,
        };
        fs::write(
            dir.path().join(CONFIG_FILE),
            serde_json::to_vec(&cfg).unwrap(),
        )
        .unwrap();
        assert_eq!(load_config(dir.path()).unwrap().spec, spec);
    }
}
