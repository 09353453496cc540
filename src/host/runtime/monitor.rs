//! The monitor: one small detached process per container (`berth __monitor
//! RUN_DIR FD`, setsid). It clones the container, asks the caller over a
//! socket to run its `SetupHook`, reaps the init, records every exit in the
//! state file, restarts per policy with exponential backoff, forwards stop
//! (the spec's stop signal, then SIGKILL to every process after the timeout)
//! and copies the container's output into the size-bounded log.
//!
//! `Runtime` is the caller's side: start, stop, kill, remove. All facts live
//! on disk (see `state`), so a SIGKILLed monitor or caller loses nothing: the
//! next `start` kills the orphaned container and starts it afresh.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio as StdStdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::logs::LogFile;
use super::spawn::{self, ExitInfo, SetupHook, Stdio};
use super::state::{self, ContainerState, Phase, ProcId, Status};
use super::{signal_number, Options, Paths, RuntimeError};
use crate::spec::types::{RestartPolicy, Spec};

/// What the monitor needs, written by `start` into the runtime dir.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub spec: Spec,
    pub paths: Paths,
    pub options: Options,
}

const CONFIG_FILE: &str = "config.json";
/// Written by `stop` before it signals the monitor: the timeout in seconds.
const STOP_FILE: &str = "stop";

/// Read the monitor config of a container.
pub fn load_config(run_dir: &Path) -> Result<MonitorConfig, RuntimeError> {
    let path = run_dir.join(CONFIG_FILE);
    let bytes = fs::read(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| RuntimeError::BadState { path, message: e.to_string() })
}

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
        Runtime { exe: PathBuf::from("/proc/self/exe") }
    }

    /// Start a container under a new monitor and return its init pid. `hook`
    /// runs here with the pid before the container runs anything. A container
    /// that already runs supervised is left alone (its pid is returned); one
    /// whose monitor died is killed and started afresh.
    pub fn start(&self, spec: &Spec, paths: &Paths, opts: &Options, hook: &mut dyn SetupHook) -> Result<i32, RuntimeError> {
        let run_dir = &paths.run_dir;
        fs::create_dir_all(run_dir).map_err(|e| RuntimeError::io("create", run_dir, e))?;
        if let Some(st) = state::load(run_dir)? {
            match state::status_of(Path::new("/proc"), &st) {
                Status::Running { pid, supervised: true } | Status::Stopping { pid } => return Ok(pid),
                Status::Restarting => return Ok(0),
                Status::Running { supervised: false, .. } => kill_orphan(run_dir, st, 0)?,
                Status::Missing | Status::Stopped { .. } => {}
            }
        }
        let _ = fs::remove_file(run_dir.join(STOP_FILE));
        let cfg = MonitorConfig { spec: spec.clone(), paths: paths.clone(), options: opts.clone() };
        let json = serde_json::to_vec(&cfg).map_err(|e| RuntimeError::BadState { path: run_dir.join(CONFIG_FILE), message: e.to_string() })?;
        state::write_atomic(&run_dir.join(CONFIG_FILE), &json)?;
        let (mine, theirs) = UnixStream::pair().map_err(|e| RuntimeError::Sys { verb: "create a socket pair", source: e })?;
        let fd = theirs.as_raw_fd();
        let mut cmd = Command::new(&self.exe);
        cmd.arg("__monitor").arg(run_dir).arg(fd.to_string());
        cmd.stdin(StdStdio::null()).stdout(StdStdio::null()).stderr(StdStdio::null());
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
        let status = cmd.status().map_err(|e| RuntimeError::io("run the monitor", &self.exe, e))?;
        drop(theirs);
        if !status.success() {
            return Err(RuntimeError::MonitorLost { name: spec.name.clone(), detail: format!("launcher {status}") });
        }
        let mut reader = BufReader::new(mine.try_clone().map_err(|e| RuntimeError::Sys { verb: "clone a socket", source: e })?);
        let mut writer = mine;
        let lost = |detail: &str| RuntimeError::MonitorLost { name: spec.name.clone(), detail: detail.into() };
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).map_err(|e| RuntimeError::Sys { verb: "read from the monitor", source: e })?;
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
                    writer.write_all(reply.as_bytes()).map_err(|e| RuntimeError::Sys { verb: "answer the monitor", source: e })?;
                }
                "started" => return rest.parse().map_err(|_| lost(line)),
                "exec" => {
                    let (code, program) = rest.split_once(' ').unwrap_or((rest, ""));
                    return Err(RuntimeError::ExecFailed { program: program.into(), code: code.parse().unwrap_or(127) });
                }
                "failed" => return Err(RuntimeError::Start { name: spec.name.clone(), message: rest.into() }),
                _ => return Err(lost(line)),
            }
        }
    }

    /// Stop a container: its stop signal, then SIGKILL to every process after
    /// `timeout` seconds (the spec's when None). Waits until it is down.
    pub fn stop(&self, run_dir: &Path, timeout: Option<u32>) -> Result<Status, RuntimeError> {
        let Some(st) = state::load(run_dir)? else { return Ok(Status::Missing) };
        let cfg_timeout = load_config(run_dir).map(|c| c.spec.stop_timeout_secs).unwrap_or(10);
        let secs = timeout.unwrap_or(cfg_timeout);
        let monitor = st.monitor.filter(ProcId::alive);
        match monitor {
            Some(m) => {
                state::write_atomic(&run_dir.join(STOP_FILE), secs.to_string().as_bytes())?;
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
                    if let Some(st) = state::load(run_dir)? {
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
        Ok(state::status(run_dir)?.0)
    }

    /// Send `signal` to the container's init.
    pub fn kill(&self, run_dir: &Path, signal: i32) -> Result<(), RuntimeError> {
        let st = state::load(run_dir)?;
        let name = st.as_ref().map(|s| s.name.clone()).unwrap_or_default();
        let Some(init) = st.and_then(|s| s.init).filter(ProcId::alive) else { return Err(RuntimeError::NotRunning { name }) };
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
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(RuntimeError::io("remove", run_dir, e)),
            _ => Ok(()),
        }
    }
}

/// Stop a container whose monitor is gone: stop signal, `secs` of grace, then
/// kill everything; record it as stopped.
fn kill_orphan(run_dir: &Path, mut st: ContainerState, secs: u32) -> Result<(), RuntimeError> {
    let sig = load_config(run_dir).ok().and_then(|c| signal_number(&c.spec.stop_signal)).unwrap_or(libc::SIGTERM);
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
    st.finished_at = Some(state::now());
    state::save(run_dir, &st)
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
            let pids: Vec<i32> = fs::read_to_string(procs).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect();
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

/// Entry of `berth __monitor RUN_DIR FD`: detach, then supervise until the
/// container is stopped or exits for good.
pub fn monitor_main(args: &[String]) -> ExitCode {
    let (Some(run_dir), Some(fd)) = (args.first(), args.get(1).and_then(|s| s.parse::<RawFd>().ok())) else {
        eprintln!("berth: usage: berth __monitor RUN_DIR FD");
        return ExitCode::from(2);
    };
    // SAFETY: fork in a single-threaded process; the parent only returns.
    match unsafe { libc::fork() } {
        -1 => return ExitCode::from(1),
        0 => {}
        _ => return ExitCode::SUCCESS,
    }
    // SAFETY: setsid has no arguments; we are not a group leader after fork.
    unsafe { libc::setsid() };
    // SAFETY: fd was handed to us open by `start`; we own it from here.
    let sync = unsafe { UnixStream::from_raw_fd(fd) };
    let _ = fcntl_cloexec(fd);
    let run_dir = PathBuf::from(run_dir);
    match supervise(&run_dir, Some(sync)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Ok(Some(mut st)) = state::load(&run_dir) {
                st.error = Some(e.to_string());
                let _ = state::save(&run_dir, &st);
            }
            ExitCode::from(1)
        }
    }
}

fn fcntl_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: setting a flag on a descriptor we own.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The hook as the monitor runs it: write the pid into the container's
/// cgroups, then (first start only) let the caller run its own hook.
struct MonitorHook<'a> {
    procs: &'a [PathBuf],
    sync: Option<&'a mut UnixStream>,
}

impl SetupHook for MonitorHook<'_> {
    fn setup(&mut self, pid: i32) -> Result<(), String> {
        for p in self.procs {
            fs::write(p, pid.to_string()).map_err(|e| format!("write pid to `{}`: {e}", p.display()))?;
        }
        if let Some(sync) = self.sync.as_mut() {
            sync.write_all(format!("pid {pid}\n").as_bytes()).map_err(|e| format!("report to the caller: {e}"))?;
            let mut line = String::new();
            BufReader::new(&mut **sync).read_line(&mut line).map_err(|e| format!("read the caller's answer: {e}"))?;
            let line = line.trim_end();
            if line != "ok" {
                return Err(line.strip_prefix("err ").unwrap_or("the caller went away").to_string());
            }
        }
        Ok(())
    }
}

struct Fds {
    signal: RawFd,
    log_r: RawFd,
    log_w: RawFd,
    null: RawFd,
}

fn setup_fds() -> Result<Fds, RuntimeError> {
    // SAFETY: building a signal set and a signalfd/pipe with valid pointers.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(RuntimeError::sys("block signals"));
        }
        let signal = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if signal < 0 {
            return Err(RuntimeError::sys("create a signalfd"));
        }
        let mut p = [0; 2];
        if libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(RuntimeError::sys("create the log pipe"));
        }
        libc::fcntl(p[0], libc::F_SETFL, libc::O_NONBLOCK);
        let null = libc::open(b"/dev/null\0".as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC);
        if null < 0 {
            return Err(RuntimeError::sys("open /dev/null"));
        }
        Ok(Fds { signal, log_r: p[0], log_w: p[1], null })
    }
}

/// Delay before restart number `n` (counted since the last long run).
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1u64 << n.min(9))).min(Duration::from_secs(30))
}

fn should_restart(policy: RestartPolicy, exit: &ExitInfo) -> bool {
    match policy {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure => exit.code != 0,
        RestartPolicy::Always => true,
    }
}

fn supervise(run_dir: &Path, mut sync: Option<UnixStream>) -> Result<(), RuntimeError> {
    let cfg = load_config(run_dir)?;
    let fds = setup_fds()?;
    let mut log = LogFile::new(run_dir, cfg.options.log_size);
    let mut st = state::load(run_dir).ok().flatten().unwrap_or_else(|| ContainerState::new(&cfg.spec.name));
    st.name = cfg.spec.name.clone();
    // SAFETY: getpid cannot fail.
    st.monitor = ProcId::of(unsafe { libc::getpid() });
    st.phase = Phase::Starting;
    st.error = None;
    st.cgroup_procs = cfg.options.cgroup_procs.clone();
    state::save(run_dir, &st)?;
    let stop_sig = signal_number(&cfg.spec.stop_signal).unwrap_or(libc::SIGTERM);
    let mut netns: Option<fs::File> = None;
    let mut fast_failures = 0u32;
    let mut stopping = false;
    loop {
        let prepared = spawn::prepare(&cfg.spec, &cfg.paths, &cfg.options, netns.is_some());
        let started = Instant::now();
        let stdio = Stdio { stdin: fds.null, stdout: fds.log_w, stderr: fds.log_w };
        let result = prepared.and_then(|p| {
            let mut hook = MonitorHook { procs: &cfg.options.cgroup_procs, sync: sync.as_mut() };
            spawn::spawn(&p, stdio, &mut hook)
        });
        let exit = match result {
            Ok(pid) => {
                st.init = ProcId::of(pid);
                st.phase = Phase::Running;
                st.started_at = Some(state::now());
                st.error = None;
                state::save(run_dir, &st)?;
                if let Some(mut s) = sync.take() {
                    let _ = s.write_all(format!("started {pid}\n").as_bytes());
                }
                // Restarts rejoin this network namespace so the plugged
                // interfaces survive (not with a user namespace: the new one
                // could not mount sysfs in a netns it does not own).
                if netns.is_none() && !cfg.options.host_network && cfg.spec.namespaces.user.is_none() {
                    netns = fs::File::open(format!("/proc/{pid}/ns/net")).ok();
                }
                trim_rss();
                let (exit, stop) = wait_init(&fds, &mut log, run_dir, &mut st, stop_sig, &cfg, stopping)?;
                stopping = stop;
                exit
            }
            Err(RuntimeError::ExecFailed { program, code }) => {
                let msg = RuntimeError::ExecFailed { program: program.clone(), code }.to_string();
                st.error = Some(msg);
                if let Some(mut s) = sync.take() {
                    let _ = s.write_all(format!("exec {code} {program}\n").as_bytes());
                }
                ExitInfo { code, signal: None }
            }
            Err(e) => {
                st.phase = Phase::Exited;
                st.error = Some(e.to_string());
                st.finished_at = Some(state::now());
                state::save(run_dir, &st)?;
                if let Some(mut s) = sync.take() {
                    let _ = s.write_all(format!("failed {}\n", e.to_string().replace('\n', " ")).as_bytes());
                }
                return Ok(());
            }
        };
        st.last_exit = Some(exit);
        st.finished_at = Some(state::now());
        if stopping || !should_restart(cfg.spec.restart, &exit) {
            kill_all(&cfg.options.cgroup_procs, None);
            st.phase = if stopping { Phase::Stopped } else { Phase::Exited };
            drain_logs(fds.log_r, &mut log);
            state::save(run_dir, &st)?;
            return Ok(());
        }
        // Back off from a crash loop; a run of 10 s or more resets the count.
        if started.elapsed() >= Duration::from_secs(10) {
            fast_failures = 0;
        }
        let delay = backoff(fast_failures);
        fast_failures = fast_failures.saturating_add(1);
        st.phase = Phase::Restarting;
        st.init = None;
        state::save(run_dir, &st)?;
        if sleep_or_stop(&fds, &mut log, delay)? {
            st.phase = Phase::Stopped;
            state::save(run_dir, &st)?;
            return Ok(());
        }
        st.restarts = st.restarts.saturating_add(1);
        if let Some(ns) = &netns {
            // SAFETY: joining a namespace through an fd we hold; it affects
            // only this monitor and the children it clones next.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                netns = None;
            }
        }
    }
}

/// Drop our resident pages of read-only file mappings (text, rodata) once the
/// start is done: the idle loop touches few of them and a restart faults the
/// rest back in from the page cache. Mappings with anonymous (copied) pages,
/// such as RELRO after relocation, are kept: dropping those would lose data.
fn trim_rss() {
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else { return };
    let mut current: Option<(usize, usize)> = None;
    let drop_it = |range: Option<(usize, usize)>| {
        if let Some((a, b)) = range {
            // SAFETY: the range is one of our own read-only, unmodified file
            // mappings; after MADV_DONTNEED its pages are re-read from the file.
            unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
        }
    };
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            // A mapping header: `start-end perms offset dev inode path`.
            let perms = f.next().unwrap_or("");
            let inode = f.nth(2).unwrap_or("0");
            current = match (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                (Ok(a), Ok(b)) if !perms.contains('w') && inode != "0" => Some((a, b)),
                _ => None,
            };
        } else if first == "Anonymous:" {
            if f.next() == Some("0") {
                drop_it(current.take());
            }
            current = None;
        }
    }
}

fn drain_logs(fd: RawFd, log: &mut LogFile) {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a valid buffer from our nonblocking pipe.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        let Ok(n) = usize::try_from(n) else { return };
        if n == 0 {
            return;
        }
        let _ = log.write(&buf[..n]);
    }
}

/// Read pending signals; returns (child exited, stop requested).
fn read_signals(fd: RawFd) -> (bool, bool) {
    let (mut chld, mut term) = (false, false);
    let mut info = [0u8; 128];
    // SAFETY: reading whole signalfd_siginfo records into a valid buffer.
    while unsafe { libc::read(fd, info.as_mut_ptr().cast(), info.len()) } == 128 {
        let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
        match i32::try_from(signo).unwrap_or(0) {
            libc::SIGCHLD => chld = true,
            libc::SIGTERM | libc::SIGINT => term = true,
            _ => {}
        }
    }
    (chld, term)
}

fn poll_fds(fds: &Fds, timeout: Option<Duration>) -> bool {
    let mut p = [
        libc::pollfd { fd: fds.signal, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: fds.log_r, events: libc::POLLIN, revents: 0 },
    ];
    let ms = timeout.map(|d| libc::c_int::try_from(d.as_millis()).unwrap_or(libc::c_int::MAX)).unwrap_or(-1);
    // SAFETY: p is a valid array of two pollfd.
    let n = unsafe { libc::poll(p.as_mut_ptr(), 2, ms) };
    n > 0 && p[1].revents != 0
}

/// Sleep for the backoff while serving logs; true when a stop came in.
fn sleep_or_stop(fds: &Fds, log: &mut LogFile, delay: Duration) -> Result<bool, RuntimeError> {
    let until = Instant::now() + delay;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        if poll_fds(fds, Some(left)) {
            drain_logs(fds.log_r, log);
        }
        let (_, term) = read_signals(fds.signal);
        reap_all();
        if term {
            return Ok(true);
        }
    }
}

/// Reap every exited child that is not the init (there are none normally).
fn reap_all() -> Vec<(i32, libc::c_int)> {
    let mut out = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return out;
        }
        out.push((pid, status));
    }
}

/// Serve signals and logs until the init exits; returns its exit and whether
/// a stop was requested.
fn wait_init(
    fds: &Fds,
    log: &mut LogFile,
    run_dir: &Path,
    st: &mut ContainerState,
    stop_sig: i32,
    cfg: &MonitorConfig,
    mut stopping: bool,
) -> Result<(ExitInfo, bool), RuntimeError> {
    let Some(init) = st.init else { return Ok((ExitInfo { code: 255, signal: None }, stopping)) };
    let mut deadline: Option<Instant> = None;
    loop {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if poll_fds(fds, timeout) {
            drain_logs(fds.log_r, log);
        }
        let (_, term) = read_signals(fds.signal);
        for (pid, status) in reap_all() {
            if pid == init.pid {
                drain_logs(fds.log_r, log);
                return Ok((ExitInfo::from_wait(status), stopping));
            }
        }
        if term && !stopping {
            stopping = true;
            let secs = fs::read_to_string(run_dir.join(STOP_FILE)).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(u64::from(cfg.spec.stop_timeout_secs));
            st.phase = Phase::Stopping;
            state::save(run_dir, st)?;
            // SAFETY: signalling our own child.
            unsafe { libc::kill(init.pid, stop_sig) };
            deadline = Some(Instant::now() + Duration::from_secs(secs));
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                kill_all(&cfg.options.cgroup_procs, Some(init));
                deadline = None;
            }
        }
    }
}

/// Entry of `berth __run`: start one container in the foreground without a
/// monitor and return its exit code. Used by the start benchmark and tests.
/// `berth __run --rootfs DIR [--spec FILE.json] [--hostname H] [--name N]
/// [--detach RUNTIME_ROOT] [-- CMD ARGS...]`; `--detach` starts it under a
/// monitor in `RUNTIME_ROOT/N` instead and prints the pid.
pub fn run_main(args: &[String]) -> ExitCode {
    match run_inner(args) {
        Ok(code) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        Err(RuntimeError::ExecFailed { program, code }) => {
            eprintln!("berth: {}", RuntimeError::ExecFailed { program, code });
            ExitCode::from(u8::try_from(code).unwrap_or(127))
        }
        Err(e) => {
            eprintln!("berth: {}", chain(&e));
            ExitCode::from(125)
        }
    }
}

/// An error with its sources, `a: b: c`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn run_inner(args: &[String]) -> Result<i32, RuntimeError> {
    let mut rootfs = None;
    let mut spec_file = None;
    let mut hostname = None;
    let mut name = None;
    let mut detach = None;
    let mut cmd = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rootfs" => rootfs = it.next().cloned(),
            "--spec" => spec_file = it.next().cloned(),
            "--hostname" => hostname = it.next().cloned(),
            "--name" => name = it.next().cloned(),
            "--detach" => detach = it.next().map(PathBuf::from),
            "--" => {
                cmd = it.by_ref().cloned().collect();
            }
            other => return Err(RuntimeError::Invalid { name: "__run".into(), message: format!("unknown argument `{other}`") }),
        }
    }
    let rootfs = PathBuf::from(rootfs.ok_or_else(|| RuntimeError::Invalid { name: "__run".into(), message: "--rootfs is required".into() })?);
    let mut spec = match spec_file {
        Some(f) => {
            let path = PathBuf::from(f);
            let bytes = fs::read(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
            serde_json::from_slice(&bytes).map_err(|e| RuntimeError::BadState { path, message: e.to_string() })?
        }
        None => default_spec("run", Vec::new()),
    };
    if !cmd.is_empty() {
        spec.process.command = Some(cmd);
        spec.process.args = None;
    }
    if let Some(h) = hostname {
        spec.process.hostname = h;
    }
    if let Some(n) = name {
        spec.name = n;
    }
    let parent = rootfs.parent().unwrap_or(Path::new("/")).to_path_buf();
    let run_dir = match &detach {
        Some(root) => super::container_run_dir(root, &spec.name),
        None => parent.clone(),
    };
    let paths = Paths { rootfs, run_dir, container_dir: parent.clone(), volumes_dir: parent.join("volumes") };
    if detach.is_some() {
        let pid = Runtime::current().start(&spec, &paths, &Options::default(), &mut spawn::NoHook)?;
        println!("{pid}");
        return Ok(0);
    }
    let p = spawn::prepare(&spec, &paths, &Options::default(), false)?;
    let stdio = Stdio { stdin: 0, stdout: 1, stderr: 2 };
    let pid = spawn::spawn(&p, stdio, &mut spawn::NoHook)?;
    Ok(spawn::wait(pid)?.code)
}

/// A spec with berth's defaults (Docker's capabilities, seccomp on, restart
/// never) running `command`: for `__run` and tests.
pub fn default_spec(name: &str, command: Vec<String>) -> Spec {
    use crate::spec::types::{NamespaceSpec, ProcessSpec, ResourceSpec};
    Spec {
        name: name.into(),
        image: "none".into(),
        image_sha256: None,
        process: ProcessSpec {
            command: Some(command),
            args: None,
            boot: false,
            init: "/sbin/init".into(),
            env: Default::default(),
            workdir: None,
            user: None,
            hostname: name.into(),
            rlimits: Vec::new(),
        },
        capabilities: super::caps::DEFAULT_CAPS.iter().map(|s| s.to_string()).collect(),
        namespaces: NamespaceSpec::default(),
        devices: Vec::new(),
        mounts: Vec::new(),
        network: Vec::new(),
        dns: Vec::new(),
        dns_search: Vec::new(),
        volatile: false,
        readonly: false,
        seccomp: true,
        resources: ResourceSpec::default(),
        restart: RestartPolicy::Never,
        autostart: true,
        stop_signal: "SIGTERM".into(),
        stop_timeout_secs: 10,
        depends_on: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(1600));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }

    #[test]
    fn restart_policy() {
        let ok = ExitInfo { code: 0, signal: None };
        let bad = ExitInfo { code: 1, signal: None };
        assert!(!should_restart(RestartPolicy::Never, &bad));
        assert!(should_restart(RestartPolicy::OnFailure, &bad));
        assert!(!should_restart(RestartPolicy::OnFailure, &ok));
        assert!(should_restart(RestartPolicy::Always, &ok));
    }

    #[test]
    fn config_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let spec = default_spec("x", vec!["true".into()]);
        let paths = Paths { rootfs: "/r".into(), run_dir: dir.path().into(), container_dir: "/c".into(), volumes_dir: "/v".into() };
        let cfg = MonitorConfig { spec: spec.clone(), paths, options: Options::default() };
        fs::write(dir.path().join(CONFIG_FILE), serde_json::to_vec(&cfg).unwrap()).unwrap();
        assert_eq!(load_config(dir.path()).unwrap().spec, spec);
    }
}
