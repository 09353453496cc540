//! `berth exec NAME [-t] -- CMD`: run a command inside a running container as
//! `lxc-attach` does. A forked helper joins the container's cgroups, then its
//! namespaces (user first, mount last), and forks again so the command is in
//! the PID namespace; the command gets the container's env, user,
//! capabilities, no_new_privs and seccomp filter from the same plan a start
//! uses. With `-t` it runs on a new pseudo-terminal that this side relays.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use super::fds::{self, Action, Method};
use super::rundir::load_config;
use super::rundir::{self, ProcId};
use super::spawn::{self, finish_and_exec, Prepared};
use super::RuntimeError;

/// Namespaces in join order: the user namespace first (it grants the
/// capabilities for the others), the mount namespace last (it changes root).
const NAMESPACES: &[(&str, libc::c_int)] = &[
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("pid", libc::CLONE_NEWPID),
    ("time", libc::CLONE_NEWTIME),
    ("mnt", libc::CLONE_NEWNS),
];

/// Run `argv` in the container of `run_dir` and return its exit code
/// (126/127 when it cannot be executed or found). Not inlined: `berth exec`
/// and the monitor's health probes share one copy.
#[inline(never)]
pub fn exec(run_dir: &Path, argv: &[String], tty: bool) -> Result<i32, RuntimeError> {
    let st = rundir::load(run_dir)?;
    let name = st
        .as_ref()
        .map(|s| s.name.clone())
        .unwrap_or_else(|| run_dir.display().to_string());
    let Some(st) = st else {
        return Err(RuntimeError::NotRunning { name });
    };
    let Some(init) = st.init.filter(ProcId::alive) else {
        return Err(RuntimeError::NotRunning { name });
    };
    // Nothing the caller holds reaches the command, and no /proc file of
    // ours (environ, mem, exe, fd) opens for a container that can see us.
    fds::non_dumpable()?;
    fds::close_inherited(3, &[], Action::CloseOnExec, Method::Auto)?;
    let cfg = load_config(run_dir)?;
    let mut plan = spawn::prepare(&cfg.spec, &cfg.paths, &cfg.options, true)?;
    plan.set_command(argv)?;
    if tty {
        // The terminal is ours: tell the command what it is, as lxc-attach does.
        if let Ok(term) = std::env::var("TERM") {
            plan.add_env("TERM", &term)?;
        }
    }
    // Open every namespace that differs from ours before forking.
    let mut ns_fds: Vec<(fs::File, libc::c_int)> = Vec::new();
    for (kind, flag) in NAMESPACES {
        let theirs = PathBuf::from(format!("/proc/{}/ns/{kind}", init.pid));
        let ours = fs::read_link(format!("/proc/self/ns/{kind}"));
        if must_join(kind, &theirs, fs::read_link(&theirs), ours)? {
            let f = fs::File::open(&theirs).map_err(|source| RuntimeError::Namespace {
                kind,
                path: theirs.clone(),
                source,
            })?;
            ns_fds.push((f, *flag));
        }
    }
    if !init.alive() {
        return Err(RuntimeError::NotRunning { name });
    }
    let procs: Vec<PathBuf> = st
        .cgroup_procs
        .iter()
        .map(|p| joinable(p, init.pid))
        .collect();
    let pty = if tty { Some(open_pty()?) } else { None };
    let pty = pty.map(|(master, slave, _)| (master, slave));
    let (err_r, err_w) = spawn::pipe()?;
    // SAFETY: fork; the child only runs `helper`, which never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        spawn::close(err_r);
        spawn::close(err_w);
        return Err(RuntimeError::sys("fork the exec helper"));
    }
    if pid == 0 {
        spawn::close(err_r);
        helper(&plan, &procs, &ns_fds, pty.as_ref().map(|p| p.1), err_w);
    }
    spawn::close(err_w);
    drop(ns_fds);
    let relay = pty.map(|(master, slave)| {
        spawn::close(slave);
        master
    });
    let report = spawn::read_all(err_r);
    spawn::close(err_r);
    if let Some(master) = relay {
        if report.is_empty() {
            relay_pty(master);
        }
        spawn::close(master);
    }
    let exit = spawn::wait(pid)?;
    if report.len() >= 5 {
        let mut errno = [0u8; 4];
        errno.copy_from_slice(&report[..4]);
        let errno = i32::from_ne_bytes(errno);
        let what = String::from_utf8_lossy(&report[5..]).into_owned();
        if report[4] == 1 {
            // The command itself did not start: say why, with a shell's code.
            return Err(spawn::exec_failed(what, errno));
        }
        return Err(RuntimeError::ChildSetup {
            what,
            source: io::Error::from_raw_os_error(errno),
        });
    }
    Ok(exit.code)
}

/// The cgroup.procs an exec'd command joins for the container's `procs`. A
/// full-OS init on v2 hands controllers down from its root (systemd does),
/// after which no process may join the root: the command then joins the
/// cgroup the init itself is in now, as runc does.
fn joinable(procs: &Path, init: i32) -> PathBuf {
    let Some(dir) = procs.parent() else {
        return procs.to_path_buf();
    };
    let handed_down =
        fs::read_to_string(dir.join("cgroup.subtree_control")).is_ok_and(|t| !t.trim().is_empty());
    if !handed_down {
        return procs.to_path_buf();
    }
    holding(dir, init, 0).unwrap_or_else(|| procs.to_path_buf())
}

/// The cgroup at or below `dir` whose cgroup.procs lists `pid`.
fn holding(dir: &Path, pid: i32, depth: u32) -> Option<PathBuf> {
    let procs = dir.join("cgroup.procs");
    let listed = fs::read_to_string(&procs)
        .ok()?
        .lines()
        .any(|l| l.trim().parse() == Ok(pid));
    if listed {
        return Some(procs);
    }
    // A container's tree is shallow; the bound keeps a hostile one cheap.
    if depth >= 16 {
        return None;
    }
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .find_map(|e| holding(&e.path(), pid, depth + 1))
}

/// Whether `exec` joins the container's namespace `kind`: when it differs
/// from ours. A kind this kernel lacks (no `/proc/self/ns/KIND`, such as
/// `time` before 5.6) is skipped; a container's namespace that cannot be read
/// is an error, never a skip: the command would run outside it.
fn must_join(
    kind: &'static str,
    theirs: &Path,
    their_link: io::Result<PathBuf>,
    our_link: io::Result<PathBuf>,
) -> Result<bool, RuntimeError> {
    let ours = match our_link {
        Ok(l) => l,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(false),
        Err(source) => {
            return Err(RuntimeError::Namespace {
                kind,
                path: PathBuf::from(format!("/proc/self/ns/{kind}")),
                source,
            })
        }
    };
    let theirs_link = their_link.map_err(|source| RuntimeError::Namespace {
        kind,
        path: theirs.to_path_buf(),
        source,
    })?;
    Ok(theirs_link != ours)
}

/// The forked helper: join, fork the command, pass on its exit code.
fn helper(
    plan: &Prepared,
    procs: &[std::path::PathBuf],
    ns_fds: &[(fs::File, libc::c_int)],
    tty: Option<RawFd>,
    err_w: RawFd,
) -> ! {
    // Inherited from the caller already; again here, so that the join can
    // never run dumpable whatever the caller did.
    if let Err(e) = fds::set_non_dumpable() {
        let errno = e.raw_os_error().unwrap_or(libc::EIO);
        spawn::fail(err_w, 0, errno, b"make the process non-dumpable");
    }
    if fds::scrub_environ().is_err() {
        spawn::fail(err_w, 0, libc::EIO, b"clear the caller's environment");
    }
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    for p in procs {
        if fs::write(p, me.to_string()).is_err() {
            spawn::fail(
                err_w,
                0,
                libc::EIO,
                format!("join cgroup `{}`", p.display()).as_bytes(),
            );
        }
    }
    for (f, flag) in ns_fds {
        // SAFETY: joining a namespace through an fd we opened.
        if unsafe { libc::setns(f.as_raw_fd(), *flag) } != 0 {
            let errno = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            spawn::fail(err_w, 0, errno, b"join a namespace of the container");
        }
    }
    // SAFETY: fork in the single-threaded helper.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        if let Some(t) = tty {
            // SAFETY: making the pty slave our controlling terminal and stdio.
            unsafe {
                libc::setsid();
                libc::ioctl(t, libc::TIOCSCTTY, 0);
                // The copies on 0-2 have no close-on-exec; `t` keeps its own.
                for fd in 0..3 {
                    if t == fd {
                        libc::fcntl(fd, libc::F_SETFD, 0);
                    } else {
                        libc::dup2(t, fd);
                    }
                }
            }
        }
        finish_and_exec(plan, err_w);
    }
    spawn::close(err_w);
    let code = if pid < 0 {
        125
    } else {
        spawn::wait(pid).map(|e| e.code).unwrap_or(125)
    };
    // SAFETY: ending the helper without running the parent's destructors.
    unsafe { libc::_exit(code) }
}

/// A new pty pair from the host's /dev/ptmx: (master, slave, the slave's
/// path). Nothing is left open when a step fails.
pub(super) fn open_pty() -> Result<(RawFd, RawFd, PathBuf), RuntimeError> {
    // SAFETY: standard posix_openpt/grantpt/unlockpt/ptsname sequence on fds we own.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if master < 0 {
            return Err(RuntimeError::sys(
                "open a pseudo-terminal (/dev/ptmx; is devpts mounted on /dev/pts?)",
            ));
        }
        let fail = |what: &'static str| {
            let e = RuntimeError::sys(what);
            spawn::close(master);
            e
        };
        if libc::grantpt(master) != 0 || libc::unlockpt(master) != 0 {
            return Err(fail("unlock the pseudo-terminal"));
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(master, name.as_mut_ptr(), name.len()) != 0 {
            return Err(fail("name the pseudo-terminal"));
        }
        let slave = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if slave < 0 {
            return Err(fail("open the pseudo-terminal"));
        }
        // Same window size as ours.
        let mut ws = std::mem::zeroed::<libc::winsize>();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, &ws);
        }
        let path = std::ffi::CStr::from_ptr(name.as_ptr()).to_bytes();
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(path));
        Ok((master, slave, path))
    }
}

/// Copy our stdin to the pty and the pty to our stdout until it closes, with
/// our terminal in raw mode; window size changes (SIGWINCH) follow along.
fn relay_pty(master: RawFd) {
    // SAFETY: termios, signal mask and signalfd calls on our own fds;
    // poll/read/write on valid buffers and fds.
    unsafe {
        let mut saved = std::mem::zeroed::<libc::termios>();
        let is_tty = libc::tcgetattr(0, &mut saved) == 0;
        if is_tty {
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(0, libc::TCSANOW, &raw);
        }
        let mut winch = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut winch);
        libc::sigaddset(&mut winch, libc::SIGWINCH);
        libc::sigprocmask(libc::SIG_BLOCK, &winch, std::ptr::null_mut());
        let sfd = libc::signalfd(-1, &winch, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        let mut buf = [0u8; 4096];
        let mut stdin_open = true;
        // The last byte sent was not a newline: EOF must end that line first.
        let mut line_open = false;
        loop {
            let mut p = [
                libc::pollfd {
                    fd: master,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let n = libc::poll(p.as_mut_ptr(), if stdin_open { 3 } else { 2 }, -1);
            if n < 0 {
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                break;
            }
            if p[0].revents != 0 {
                let r = libc::read(master, buf.as_mut_ptr().cast(), buf.len());
                if r <= 0 {
                    break; // EIO: the command and its children closed the pty
                }
                libc::write(1, buf.as_ptr().cast(), usize::try_from(r).unwrap_or(0));
            }
            if p[1].revents != 0 {
                libc::read(sfd, buf.as_mut_ptr().cast(), buf.len());
                let mut ws = std::mem::zeroed::<libc::winsize>();
                if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
                    libc::ioctl(master, libc::TIOCSWINSZ, &ws);
                }
            }
            if stdin_open && p[2].revents != 0 {
                let r = libc::read(0, buf.as_mut_ptr().cast(), buf.len());
                match usize::try_from(r) {
                    Ok(n) if n > 0 => {
                        write_all(master, &buf[..n]);
                        line_open = buf[n - 1] != b'\n';
                    }
                    _ => {
                        stdin_open = false;
                        send_eof(master, line_open);
                    }
                }
            }
        }
        if sfd >= 0 {
            libc::close(sfd);
        }
        libc::sigprocmask(libc::SIG_UNBLOCK, &winch, std::ptr::null_mut());
        if is_tty {
            libc::tcsetattr(0, libc::TCSANOW, &saved);
        }
    }
}

/// Write all of `data` to `fd`, retrying short writes and EINTR.
fn write_all(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: `data` is a live buffer of `data.len()` bytes.
        let w = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        match usize::try_from(w) {
            Ok(n) if n > 0 => data = &data[n..],
            _ if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            _ => return,
        }
    }
}

/// Our stdin ended: pass that on as the pty's EOF character, as a terminal
/// user's Ctrl-D would. In canonical mode it ends the command's read with 0
/// bytes; a pending unterminated line needs one more to be flushed first. A
/// command that switched the pty to raw mode gets nothing: it reads bytes,
/// not lines, and has no EOF to see.
fn send_eof(master: RawFd, line_open: bool) {
    // SAFETY: tcgetattr on our pty master reads the slave's settings.
    let mut t = unsafe { std::mem::zeroed::<libc::termios>() };
    if unsafe { libc::tcgetattr(master, &mut t) } != 0 || t.c_lflag & libc::ICANON == 0 {
        return;
    }
    let eof = t.c_cc[libc::VEOF];
    if line_open {
        write_all(master, &[eof]);
    }
    write_all(master, &[eof]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(s: &str) -> io::Result<PathBuf> {
        Ok(PathBuf::from(s))
    }

    fn gone(errno: i32) -> io::Result<PathBuf> {
        Err(io::Error::from_raw_os_error(errno))
    }

    #[test]
    fn an_unreadable_container_namespace_is_an_error_naming_it() {
        let theirs = Path::new("/proc/42/ns/net");
        assert!(must_join("net", theirs, link("net:[2]"), link("net:[1]")).unwrap());
        assert!(!must_join("net", theirs, link("net:[1]"), link("net:[1]")).unwrap());
        // This kernel has no such kind (time before 5.6): nothing to join.
        assert!(!must_join("time", theirs, gone(libc::ENOENT), gone(libc::ENOENT)).unwrap());
        for errno in [libc::ENOENT, libc::EACCES, libc::ESRCH] {
            let e = must_join("net", theirs, gone(errno), link("net:[1]")).unwrap_err();
            assert_eq!(
                e.to_string(),
                "read the container's net namespace `/proc/42/ns/net`"
            );
        }
        // Ours unreadable for another reason than absence: fail, do not guess.
        assert!(must_join("uts", theirs, link("uts:[2]"), gone(libc::EACCES)).is_err());
    }
}
