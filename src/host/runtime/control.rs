//! The caller's side of the runtime (`berth apply`, `start`, `stop`...):
//! `Runtime` launches a monitor per container and talks to it over a socket
//! during the start; stop, kill and remove act through the state on disk.
//! All facts live there (see `state`), so a SIGKILLed monitor or caller loses
//! nothing: the next `start` kills the orphaned container and starts it afresh.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as StdStdio};
use std::time::{Duration, Instant};

use super::rundir::{
    self, load_config, ContainerState, MonitorConfig, Phase, ProcId, Status, CONFIG_FILE, STOP_FILE,
};
use super::spawn::SetupHook;
use super::{kill_all, signal_number, Options, Paths, RuntimeError};
use crate::model::Spec;

/// The caller's handle on containers: starts monitors from the `berth` binary.
#[derive(Debug, Clone)]
pub struct Runtime {
    exe: PathBuf,
}

impl Runtime {
    /// Monitors run `exe __monitor ...` (the berth binary itself).
    pub fn new(exe: PathBuf) -> Self {
        Runtime { exe }
    }

    /// Monitors re-execute the running binary.
    pub fn current() -> Self {
        Runtime {
            exe: PathBuf::from("/proc/self/exe"),
        }
    }

    /// Start a container under a new monitor and return its init pid. `hook`
    /// runs here with the pid before the container runs anything. A container
    /// that already runs supervised is left alone (its pid is returned); one
    /// whose monitor died is killed and started afresh.
    pub fn start(
        &self,
        spec: &Spec,
        paths: &Paths,
        opts: &Options,
        hook: &mut dyn SetupHook,
    ) -> Result<i32, RuntimeError> {
        let run_dir = &paths.run_dir;
        // Everything the spec can get wrong (rootfs, user, mounts, a namespace
        // this kernel lacks) fails here, before any file or process exists.
        super::prepare::prepare(spec, paths, opts, false)?;
        fs::create_dir_all(run_dir).map_err(|e| RuntimeError::io("create", run_dir, e))?;
        if let Some(st) = rundir::load(run_dir)? {
            if st.name != spec.name {
                return Err(RuntimeError::Invalid {
                    name: spec.name.clone(),
                    message: format!("`{}` belongs to container `{}`", run_dir.display(), st.name),
                });
            }
            if rundir::doomed_start(Path::new("/proc"), &st) {
                kill_doomed(&st);
            }
            match rundir::status_of(Path::new("/proc"), &st) {
                Status::Running {
                    pid,
                    supervised: true,
                }
                | Status::Stopping { pid } => return Ok(pid),
                Status::Restarting => return Ok(0),
                Status::Running {
                    supervised: false, ..
                } => kill_orphan(run_dir, st, 0)?,
                Status::Missing | Status::Stopped { .. } => {}
            }
        }
        let _ = fs::remove_file(run_dir.join(STOP_FILE));
        let cfg = MonitorConfig {
            spec: spec.clone(),
            paths: paths.clone(),
            options: opts.clone(),
            // SAFETY: getpid cannot fail.
            starter: ProcId::of(unsafe { libc::getpid() }),
        };
        let json = serde_json::to_vec(&cfg).map_err(|e| RuntimeError::BadState {
            path: run_dir.join(CONFIG_FILE),
            message: e.to_string(),
        })?;
        rundir::write_atomic(&run_dir.join(CONFIG_FILE), &json)?;
        let (mine, theirs) = UnixStream::pair().map_err(|e| RuntimeError::Sys {
            verb: "create a socket pair",
            source: e,
        })?;
        let fd = theirs.as_raw_fd();
        let mut cmd = Command::new(&self.exe);
        cmd.arg("__monitor").arg(run_dir).arg(fd.to_string());
        // The monitor reads no variable; a container sharing the host's PID
        // namespace must not find the caller's in its /proc/PID/environ.
        cmd.env_clear();
        cmd.stdin(StdStdio::null())
            .stdout(StdStdio::null())
            .stderr(StdStdio::null());
        // SAFETY: the closure only calls fcntl, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // The monitor forks and its first process exits at once: reap it here.
        let status = cmd
            .status()
            .map_err(|e| RuntimeError::io("run the monitor", &self.exe, e))?;
        drop(theirs);
        if !status.success() {
            return Err(RuntimeError::MonitorLost {
                name: spec.name.clone(),
                detail: format!("launcher {status}"),
            });
        }
        let mut reader = BufReader::new(mine.try_clone().map_err(|e| RuntimeError::Sys {
            verb: "clone a socket",
            source: e,
        })?);
        let mut writer = mine;
        let lost = |detail: &str| RuntimeError::MonitorLost {
            name: spec.name.clone(),
            detail: detail.into(),
        };
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).map_err(|e| RuntimeError::Sys {
                verb: "read from the monitor",
                source: e,
            })?;
            if n == 0 {
                return Err(lost("no report"));
            }
            let line = line.trim_end();
            let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
            match word {
                "pid" => {
                    let pid: i32 = rest.parse().map_err(|_| lost(line))?;
                    let reply = match hook.setup(pid) {
                        Ok(()) => "ok\n".to_string(),
                        Err(e) => format!("err {}\n", e.replace('\n', " ")),
                    };
                    writer
                        .write_all(reply.as_bytes())
                        .map_err(|e| RuntimeError::Sys {
                            verb: "answer the monitor",
                            source: e,
                        })?;
                }
                "started" => return rest.parse().map_err(|_| lost(line)),
                "exec" => {
                    let (code, program) = rest.split_once(' ').unwrap_or((rest, ""));
                    return Err(RuntimeError::ExecFailed {
                        program: program.into(),
                        code: code.parse().unwrap_or(127),
                    });
                }
                "failed" => {
                    return Err(RuntimeError::Start {
                        name: spec.name.clone(),
                        message: rest.into(),
                    })
                }
                _ => return Err(lost(line)),
            }
        }
    }

    /// Stop a container: its stop signal, then SIGKILL to every process after
    /// `timeout` seconds (the spec's when None). Waits until it is down.
    pub fn stop(&self, run_dir: &Path, timeout: Option<u32>) -> Result<Status, RuntimeError> {
        let Some(st) = rundir::load(run_dir)? else {
            return Ok(Status::Missing);
        };
        let cfg_timeout = load_config(run_dir)
            .map(|c| c.spec.stop_timeout_secs)
            .unwrap_or(10);
        let secs = timeout.unwrap_or(cfg_timeout);
        let monitor = st.monitor.filter(ProcId::alive);
        match monitor {
            Some(m) => {
                rundir::write_atomic(&run_dir.join(STOP_FILE), secs.to_string().as_bytes())?;
                // SAFETY: signalling a process we identified by pid and start time.
                unsafe { libc::kill(m.pid, libc::SIGTERM) };
                let until = Instant::now() + Duration::from_secs(u64::from(secs) + 5);
                while m.alive() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if m.alive() {
                    // A wedged monitor: take over.
                    // SAFETY: as above.
                    unsafe { libc::kill(m.pid, libc::SIGKILL) };
                    if let Some(st) = rundir::load(run_dir)? {
                        kill_orphan(run_dir, st, 0)?;
                    }
                }
            }
            None => {
                if st.init.map(|i| i.alive()).unwrap_or(false) {
                    kill_orphan(run_dir, st, secs)?;
                }
            }
        }
        Ok(rundir::status(run_dir)?.0)
    }

    /// Send `signal` to the container's init.
    pub fn kill(&self, run_dir: &Path, signal: i32) -> Result<(), RuntimeError> {
        let st = rundir::load(run_dir)?;
        let name = st.as_ref().map(|s| s.name.clone()).unwrap_or_default();
        let Some(init) = st.and_then(|s| s.init).filter(ProcId::alive) else {
            return Err(RuntimeError::NotRunning { name });
        };
        // SAFETY: signalling a process identified by pid and start time.
        if unsafe { libc::kill(init.pid, signal) } != 0 {
            return Err(RuntimeError::sys("signal the container"));
        }
        Ok(())
    }

    /// Stop the container (at once) and delete its runtime dir.
    pub fn remove(&self, run_dir: &Path) -> Result<(), RuntimeError> {
        self.stop(run_dir, Some(0))?;
        match fs::remove_dir_all(run_dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(RuntimeError::io("remove", run_dir, e))
            }
            _ => Ok(()),
        }
    }
}

/// Stop a container whose monitor is gone: stop signal, `secs` of grace, then
/// kill everything; record it as stopped.
/// End a first start whose starter died: its monitor and whatever it spawned.
fn kill_doomed(st: &ContainerState) {
    if let Some(m) = st.monitor.filter(ProcId::alive) {
        // SAFETY: signalling a process identified by pid and start time.
        unsafe { libc::kill(m.pid, libc::SIGKILL) };
    }
    kill_all(&st.cgroup_procs, st.init);
    let until = Instant::now() + Duration::from_secs(5);
    while (st.monitor.is_some_and(|m| m.alive()) || st.init.is_some_and(|i| i.alive()))
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kill_orphan(run_dir: &Path, mut st: ContainerState, secs: u32) -> Result<(), RuntimeError> {
    let sig = load_config(run_dir)
        .ok()
        .and_then(|c| signal_number(&c.spec.stop_signal))
        .unwrap_or(libc::SIGTERM);
    if let Some(init) = st.init.filter(ProcId::alive) {
        if secs > 0 {
            // SAFETY: signalling a process identified by pid and start time.
            unsafe { libc::kill(init.pid, sig) };
            let until = Instant::now() + Duration::from_secs(u64::from(secs));
            while init.alive() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        kill_all(&st.cgroup_procs, Some(init));
        let until = Instant::now() + Duration::from_secs(5);
        while init.alive() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    st.phase = Phase::Stopped;
    st.finished_at = Some(rundir::now());
    rundir::save(run_dir, &st)
}

/// The runtime as the executor sees it: plain data in and out, so a plan's
/// execution can be tested against a fake.
pub trait ProcessRuntime {
    /// Start (or find running) the container; returns its init pid.
    fn start(
        &self,
        spec: &Spec,
        paths: &Paths,
        opts: &Options,
        hook: &mut dyn SetupHook,
    ) -> Result<i32, RuntimeError>;
    /// Stop it: stop signal, then kill everything after `timeout` seconds.
    fn stop(&self, run_dir: &Path, timeout: Option<u32>) -> Result<Status, RuntimeError>;
    /// Signal its init.
    fn kill(&self, run_dir: &Path, signal: i32) -> Result<(), RuntimeError>;
    /// Stop it at once and delete its runtime dir.
    fn remove(&self, run_dir: &Path) -> Result<(), RuntimeError>;
    /// What runs, from the state file and /proc.
    fn status(&self, run_dir: &Path) -> Result<(Status, Option<ContainerState>), RuntimeError>;
}

impl ProcessRuntime for Runtime {
    fn start(
        &self,
        spec: &Spec,
        paths: &Paths,
        opts: &Options,
        hook: &mut dyn SetupHook,
    ) -> Result<i32, RuntimeError> {
        Runtime::start(self, spec, paths, opts, hook)
    }

    fn stop(&self, run_dir: &Path, timeout: Option<u32>) -> Result<Status, RuntimeError> {
        Runtime::stop(self, run_dir, timeout)
    }

    fn kill(&self, run_dir: &Path, signal: i32) -> Result<(), RuntimeError> {
        Runtime::kill(self, run_dir, signal)
    }

    fn remove(&self, run_dir: &Path) -> Result<(), RuntimeError> {
        Runtime::remove(self, run_dir)
    }

    fn status(&self, run_dir: &Path) -> Result<(Status, Option<ContainerState>), RuntimeError> {
        rundir::status(run_dir)
    }
}
