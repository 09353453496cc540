//! The monitor: one small detached process per container (`berth __monitor
//! RUN_DIR FD`, setsid). It clones the container, asks the caller over a
//! socket to run its `SetupHook`, reaps the init, records every exit in the
//! state file, restarts per policy with exponential backoff, forwards stop
//! (the spec's stop signal, then SIGKILL to every process after the timeout)
//! and copies the container's output into the size-bounded log. With a
//! `health:` check it also runs the probes (`probe`), keeps their verdict in
//! the state file (`health`), and restarts an unhealthy container under
//! `restart: on-unhealthy`. The caller's side (start, stop, kill) is
//! `control::Runtime`.

use std::cell::Cell;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::console::{strip_cr, Console};
use super::fds::{close_inherited, non_dumpable, Action, Method};
use super::health::{HealthState, HealthStatus};
use super::logs::LogFile;
use super::probe::{self, InFlight};
use super::rundir::{self, load_config, ContainerState, MonitorConfig, Phase, ProcId, STOP_FILE};
use super::sigwait::catches;
use super::spawn::{self, ExitInfo, SetupHook, Stdio};
use super::{kill_all, signal_number, RuntimeError};
use crate::model::{HostNamespace, RestartPolicy};

/// Entry of `berth __monitor RUN_DIR FD`: detach, then supervise until the
/// container is stopped or exits for good.
pub fn monitor_main(args: &[String]) -> ExitCode {
    let (Some(run_dir), Some(fd)) = (
        args.first(),
        args.get(1).and_then(|s| s.parse::<RawFd>().ok()),
    ) else {
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
    // chdir: do not keep the caller's working directory (a mount) busy.
    unsafe {
        libc::setsid();
        libc::chdir(b"/\0".as_ptr().cast());
    }
    // SAFETY: fd was handed to us open by `start`; we own it from here.
    let mut sync = unsafe { UnixStream::from_raw_fd(fd) };
    let _ = fcntl_cloexec(fd);
    // Nothing of the caller's stays with us (and so with any container) but
    // stdio (/dev/null) and the socket; and a container that can see this
    // process (a shared PID namespace) cannot open its /proc files.
    let own = non_dumpable().and_then(|()| close_inherited(3, &[fd], Action::Close, Method::Auto));
    if let Err(e) = own {
        let _ = sync.write_all(format!("failed {}\n", crate::host::chain(&e)).as_bytes());
        return ExitCode::from(1);
    }
    let run_dir = PathBuf::from(run_dir);
    match supervise(&run_dir, Some(sync)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Ok(Some(mut st)) = rundir::load(&run_dir) {
                st.error = Some(e.to_string());
                let _ = rundir::save(&run_dir, &st);
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
    /// The last of `procs` is the payload leaf of a tree the init manages.
    own_tree: bool,
    /// The host ids of the container's root (a user namespace), to whom the
    /// leaf is delegated.
    owner: Option<(u32, u32)>,
    sync: Option<&'a mut UnixStream>,
    run_dir: &'a Path,
    st: &'a mut ContainerState,
}

impl SetupHook for MonitorHook<'_> {
    fn setup(&mut self, pid: i32) -> Result<(), String> {
        // On disk before the child may run: if this monitor is killed from
        // here on, `status` and the next start still find the container.
        self.st.init = ProcId::of(pid);
        self.st.phase = Phase::Starting;
        rundir::save(self.run_dir, self.st).map_err(|e| e.to_string())?;
        if self.own_tree {
            if let Some(leaf) = self.procs.last().and_then(|p| p.parent()) {
                crate::host::cgroup::reset_payload(leaf, self.owner)
                    .map_err(|e| crate::host::chain(&e))?;
            }
        }
        for p in self.procs {
            fs::write(p, pid.to_string())
                .map_err(|e| format!("write pid to `{}`: {e}", p.display()))?;
        }
        if let Some(sync) = self.sync.as_mut() {
            sync.write_all(format!("pid {pid}\n").as_bytes())
                .map_err(|e| format!("report to the caller: {e}"))?;
            let mut line = String::new();
            BufReader::new(&mut **sync)
                .read_line(&mut line)
                .map_err(|e| format!("read the caller's answer: {e}"))?;
            let line = line.trim_end();
            if line != "ok" {
                return Err(line
                    .strip_prefix("err ")
                    .unwrap_or("the caller went away")
                    .to_string());
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
    /// A full-OS container's console, in place of the log pipe.
    console: Option<Console>,
    /// The console was hung up (vhangup inside): no longer polled.
    console_gone: Cell<bool>,
}

impl Fds {
    /// Where the container's output is read: its console or the log pipe;
    /// -1 (skipped by poll) for a console hung up from inside, which would
    /// otherwise wake every poll at once.
    fn output(&self) -> RawFd {
        match &self.console {
            Some(_) if self.console_gone.get() => -1,
            Some(c) => c.master,
            None => self.log_r,
        }
    }

    /// The container's stdio: the console for a full-OS container, else
    /// /dev/null in and the log pipe out.
    fn stdio(&self) -> Stdio {
        match &self.console {
            Some(c) => Stdio {
                stdin: c.slave,
                stdout: c.slave,
                stderr: c.slave,
            },
            None => Stdio {
                stdin: self.null,
                stdout: self.log_w,
                stderr: self.log_w,
            },
        }
    }
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
        let null = libc::open(
            b"/dev/null\0".as_ptr().cast(),
            libc::O_RDWR | libc::O_CLOEXEC,
        );
        if null < 0 {
            return Err(RuntimeError::sys("open /dev/null"));
        }
        Ok(Fds {
            signal,
            log_r: p[0],
            log_w: p[1],
            null,
            console: None,
            console_gone: Cell::new(false),
        })
    }
}

/// Delay before restart number `n` (counted since the last long run).
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1u64 << n.min(9))).min(Duration::from_secs(30))
}

fn should_restart(policy: RestartPolicy, exit: &ExitInfo) -> bool {
    match policy {
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure | RestartPolicy::OnUnhealthy => exit.code != 0,
        RestartPolicy::Always => true,
    }
}

fn supervise(run_dir: &Path, mut sync: Option<UnixStream>) -> Result<(), RuntimeError> {
    let cfg = load_config(run_dir)?;
    for procs in &cfg.options.monitor_cgroup_procs {
        // "0" is the writing process itself.
        fs::write(procs, "0").map_err(|e| RuntimeError::io("move the monitor into", procs, e))?;
    }
    let mut fds = setup_fds()?;
    // The container's root outside (a user namespace): owns its console and
    // its cgroup tree.
    let root_ids = super::console::root_ids(&cfg.spec);
    let mut log = LogFile::new(run_dir, cfg.options.log_size);
    let mut st = rundir::load(run_dir)
        .ok()
        .flatten()
        .unwrap_or_else(|| ContainerState::new(&cfg.spec.name));
    st.name = cfg.spec.name.clone();
    // SAFETY: getpid cannot fail.
    st.monitor = ProcId::of(unsafe { libc::getpid() });
    st.phase = Phase::Starting;
    st.error = None;
    st.cgroup_procs = cfg.options.cgroup_procs.clone();
    st.starter = cfg.starter;
    rundir::save(run_dir, &st)?;
    let stop_sig = signal_number(&cfg.spec.stop_signal).unwrap_or(libc::SIGTERM);
    let mut netns: Option<fs::File> = None;
    let mut fast_failures = 0u32;
    let mut stopping = false;
    let mut unhealthy = false;
    loop {
        if cfg.spec.process.boot {
            drain_logs(&fds, &mut log);
            fds.console = None;
            fds.console_gone.set(false);
        }
        let console = match cfg.spec.process.boot {
            true => Console::open(root_ids).map(Some),
            false => Ok(None),
        };
        let prepared = console.and_then(|c| {
            fds.console = c;
            let path = fds.console.as_ref().map(|c| c.path.as_path());
            spawn::prepare_with_console(&cfg.spec, &cfg.paths, &cfg.options, netns.is_some(), path)
        });
        let started = Instant::now();
        let stdio = fds.stdio();
        let result = prepared.and_then(|p| {
            let mut hook = MonitorHook {
                procs: &cfg.options.cgroup_procs,
                own_tree: cfg.options.init_tree.is_some(),
                owner: root_ids,
                sync: sync.as_mut(),
                run_dir,
                st: &mut st,
            };
            spawn::spawn(&p, stdio, &mut hook)
        });
        let exit = match result {
            Ok(pid) => {
                st.init = ProcId::of(pid);
                st.phase = Phase::Running;
                // Restarts are the monitor's own: no starter to wait for.
                st.starter = None;
                st.started_at = Some(rundir::now());
                st.error = None;
                st.health = cfg.spec.health.as_ref().map(|_| match &st.health {
                    Some(h) => h.restarted(rundir::now()),
                    None => HealthState::new(rundir::now()),
                });
                rundir::save(run_dir, &st)?;
                if let Some(mut s) = sync.take() {
                    let _ = s.write_all(format!("started {pid}\n").as_bytes());
                }
                // Restarts rejoin this network namespace so the plugged
                // interfaces survive (not with a user namespace: the new one
                // could not mount sysfs in a netns it does not own).
                if netns.is_none()
                    && !cfg.options.host_network
                    && cfg.spec.namespaces.user.is_none()
                {
                    netns = fs::File::open(format!("/proc/{pid}/ns/net")).ok();
                }
                trim_rss();
                let ended = wait_init(&fds, &mut log, run_dir, &mut st, stop_sig, &cfg, stopping)?;
                stopping = ended.stopping;
                unhealthy = ended.unhealthy;
                ended.exit
            }
            Err(RuntimeError::ExecFailed { program, code }) => {
                let msg = RuntimeError::ExecFailed {
                    program: program.clone(),
                    code,
                }
                .to_string();
                st.error = Some(msg);
                st.starter = None;
                if let Some(mut s) = sync.take() {
                    let _ = s.write_all(format!("exec {code} {program}\n").as_bytes());
                }
                ExitInfo { code, signal: None }
            }
            Err(e) => {
                // With its causes: "create directory `/x`: Not a directory".
                let msg = crate::host::chain(&e);
                st.phase = Phase::Exited;
                st.error = Some(msg.clone());
                st.finished_at = Some(rundir::now());
                rundir::save(run_dir, &st)?;
                if let Some(mut s) = sync.take() {
                    let _ = s.write_all(format!("failed {}\n", msg.replace('\n', " ")).as_bytes());
                }
                return Ok(());
            }
        };
        st.last_exit = Some(exit);
        st.finished_at = Some(rundir::now());
        // Killed for failing its health check: a failure, whatever the exit code.
        let restart = unhealthy || should_restart(cfg.spec.restart, &exit);
        unhealthy = false;
        if stopping || !restart {
            kill_all(&cfg.options.cgroup_procs, None);
            st.phase = if stopping {
                Phase::Stopped
            } else {
                Phase::Exited
            };
            drain_logs(&fds, &mut log);
            rundir::save(run_dir, &st)?;
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
        rundir::save(run_dir, &st)?;
        if sleep_or_stop(&fds, &mut log, delay)? {
            st.phase = Phase::Stopped;
            rundir::save(run_dir, &st)?;
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
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else {
        return;
    };
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

/// Copy what the container wrote into the log.
fn drain_logs(fds: &Fds, log: &mut LogFile) {
    let fd = fds.output();
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a valid buffer from our nonblocking pipe or pty.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        let Ok(n) = usize::try_from(n) else {
            // EAGAIN: all read. EIO on a console: hung up from inside.
            if fds.console.is_some() && io::Error::last_os_error().raw_os_error() == Some(libc::EIO)
            {
                fds.console_gone.set(true);
            }
            return;
        };
        if n == 0 {
            fds.console_gone.set(fds.console.is_some());
            return;
        }
        let data = &buf[..n];
        let _ = match fds.console {
            Some(_) => log.write(&strip_cr(data)),
            None => log.write(data),
        };
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

/// Wait for the signalfd, the log pipe or `extra` (a probe's output);
/// returns (log readable, extra readable).
fn poll_fds(fds: &Fds, extra: Option<RawFd>, timeout: Option<Duration>) -> (bool, bool) {
    let mut p = [
        libc::pollfd {
            fd: fds.signal,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: fds.output(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: extra.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = timeout
        .map(|d| libc::c_int::try_from(d.as_millis()).unwrap_or(libc::c_int::MAX))
        .unwrap_or(-1);
    // SAFETY: p is a valid array of three pollfd (a negative fd is skipped).
    let n = unsafe { libc::poll(p.as_mut_ptr(), 3, ms) };
    (n > 0 && p[1].revents != 0, n > 0 && p[2].revents != 0)
}

/// Sleep for the backoff while serving logs; true when a stop came in.
fn sleep_or_stop(fds: &Fds, log: &mut LogFile, delay: Duration) -> Result<bool, RuntimeError> {
    let until = Instant::now() + delay;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        if poll_fds(fds, None, Some(left)).0 {
            drain_logs(fds, log);
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

/// How the init's run ended.
struct Ended {
    exit: ExitInfo,
    /// A stop was requested.
    stopping: bool,
    /// Killed for turning unhealthy (`restart: on-unhealthy`).
    unhealthy: bool,
}

/// Serve signals, logs and health probes until the init exits.
fn wait_init(
    fds: &Fds,
    log: &mut LogFile,
    run_dir: &Path,
    st: &mut ContainerState,
    stop_sig: i32,
    cfg: &MonitorConfig,
    mut stopping: bool,
) -> Result<Ended, RuntimeError> {
    let Some(init) = st.init else {
        return Ok(Ended {
            exit: ExitInfo {
                code: 255,
                signal: None,
            },
            stopping,
            unhealthy: false,
        });
    };
    let started = Instant::now();
    let health = cfg.spec.health.as_ref();
    let mut next_probe = health
        .zip(st.health.as_ref())
        .map(|(spec, h)| started + h.next_delay(spec, Duration::ZERO));
    let mut probe: Option<InFlight> = None;
    let mut unhealthy = false;
    let mut deadline: Option<Instant> = None;
    loop {
        let wake = match (&probe, next_probe) {
            _ if stopping || unhealthy => None,
            (Some(p), _) => Some(p.deadline()),
            (None, n) => n,
        };
        let wake = [deadline, wake].into_iter().flatten().min();
        let timeout = wake.map(|d| d.saturating_duration_since(Instant::now()));
        let (log_ready, probe_ready) = poll_fds(fds, probe.as_ref().map(InFlight::fd), timeout);
        if log_ready {
            drain_logs(fds, log);
        }
        if probe_ready {
            if let Some(p) = probe.as_mut() {
                p.read();
            }
        }
        let (_, term) = read_signals(fds.signal);
        for (pid, status) in reap_all() {
            if pid == init.pid {
                drain_logs(fds, log);
                if let Some(mut p) = probe.take() {
                    p.kill();
                }
                return Ok(Ended {
                    exit: ExitInfo::from_wait(status),
                    stopping,
                    unhealthy,
                });
            }
            if probe.as_ref().is_some_and(|p| p.pid == pid) {
                let failure = probe.take().and_then(|p| p.finish(status));
                let turned = record_probe(run_dir, st, cfg, started, failure)?;
                if let (Some(spec), Some(h)) = (health, &st.health) {
                    next_probe = Some(Instant::now() + h.next_delay(spec, started.elapsed()));
                }
                if turned == Some(HealthStatus::Unhealthy)
                    && cfg.spec.restart == RestartPolicy::OnUnhealthy
                    && !stopping
                    && !unhealthy
                {
                    unhealthy = true;
                    let secs = u64::from(cfg.spec.stop_timeout_secs);
                    deadline = Some(begin_stop(run_dir, st, cfg, init, stop_sig, secs, false)?);
                }
            }
        }
        if let Some(p) = probe.as_mut() {
            if Instant::now() >= p.deadline() {
                p.kill();
            }
        }
        let due = next_probe.is_some_and(|n| Instant::now() >= n);
        if due && probe.is_none() && !stopping && !unhealthy {
            if let Some(spec) = health {
                let timeout = Duration::from_secs(spec.timeout_secs.into());
                match probe::start(&spec.probe, run_dir, init.pid, timeout) {
                    Ok(p) => probe = Some(p),
                    Err(e) => {
                        let why = Some(crate::host::chain(&e));
                        record_probe(run_dir, st, cfg, started, why)?;
                        next_probe =
                            Some(Instant::now() + Duration::from_secs(spec.interval_secs.into()));
                    }
                }
            }
        }
        if term && !stopping {
            stopping = true;
            if let Some(mut p) = probe.take() {
                p.kill();
            }
            let secs = fs::read_to_string(run_dir.join(STOP_FILE))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(u64::from(cfg.spec.stop_timeout_secs));
            deadline = Some(begin_stop(run_dir, st, cfg, init, stop_sig, secs, true)?);
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                kill_all(&cfg.options.cgroup_procs, Some(init));
                deadline = None;
            }
        }
    }
}

/// Record a probe's result in the state file; returns the new status when
/// it changed.
fn record_probe(
    run_dir: &Path,
    st: &mut ContainerState,
    cfg: &MonitorConfig,
    started: Instant,
    failure: Option<String>,
) -> Result<Option<HealthStatus>, RuntimeError> {
    let (Some(spec), Some(h)) = (cfg.spec.health.as_ref(), st.health.as_mut()) else {
        return Ok(None);
    };
    let changed = h.record(spec, started.elapsed(), rundir::now(), failure);
    let status = h.status;
    rundir::save(run_dir, st)?;
    Ok(changed.then_some(status))
}

/// Send the stop signal to the init; returns when to kill everything.
/// `requested`: a stop asked for by `berth stop` (phase `stopping`), else a
/// restart for failing the health check.
fn begin_stop(
    run_dir: &Path,
    st: &mut ContainerState,
    cfg: &MonitorConfig,
    init: ProcId,
    stop_sig: i32,
    secs: u64,
    requested: bool,
) -> Result<Instant, RuntimeError> {
    if requested {
        st.phase = Phase::Stopping;
        rundir::save(run_dir, st)?;
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(init.pid, stop_sig) };
    // PID 1 of a namespace never gets a signal it has no handler for
    // (busybox httpd, sleep): waiting out the timeout would change nothing.
    // Full-OS inits always get the whole timeout: they are built to
    // handle their stop signal, if only through sigtimedwait.
    let own_pid_ns = !cfg.spec.namespaces.host.contains(&HostNamespace::Pid);
    let ignored = own_pid_ns
        && !cfg.spec.process.boot
        && stop_sig != libc::SIGKILL
        && !catches(init.pid, stop_sig);
    let wait = if ignored {
        Duration::ZERO
    } else {
        Duration::from_secs(secs)
    };
    Ok(Instant::now() + wait)
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
        let ok = ExitInfo {
            code: 0,
            signal: None,
        };
        let bad = ExitInfo {
            code: 1,
            signal: None,
        };
        assert!(!should_restart(RestartPolicy::Never, &bad));
        assert!(should_restart(RestartPolicy::OnFailure, &bad));
        assert!(!should_restart(RestartPolicy::OnFailure, &ok));
        assert!(should_restart(RestartPolicy::Always, &ok));
    }
}
