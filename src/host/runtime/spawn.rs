//! Process creation: everything the child needs is computed first (module
//! `prepare`, no syscall that changes anything), then `spawn` clones into new namespaces,
//! runs the caller's `SetupHook` with the child's pid, writes the id maps and
//! releases the child, which sets itself up and execs. Setup and exec errors
//! come back over a close-on-exec pipe: EOF without data means the exec worked.
//!
//! Call `spawn` from a single-threaded process (the monitor, `__run`): the raw
//! clone skips libc's fork handlers, so another thread's lock would stay held.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::RawFd;
use std::path::Path;

use super::fds::{close_inherited, set_non_dumpable, Action, Method};
use super::seccomp;
use super::RuntimeError;
use super::{mount_calls, mounts};
use crate::host::inroot::RootDir;

pub use super::prepare::{argv_of, ns_supported, prepare, prepare_with_console, Prepared};

/// Runs in the parent with the child's pid while the child waits, before it
/// can run anything: place it in its cgroup, plug its network interfaces.
pub trait SetupHook {
    /// Prepare the host side for `pid`; an error aborts the start.
    fn setup(&mut self, pid: i32) -> Result<(), String>;
}

/// A hook that does nothing (no cgroup, no network).
pub struct NoHook;

impl SetupHook for NoHook {
    fn setup(&mut self, _pid: i32) -> Result<(), String> {
        Ok(())
    }
}

/// How a container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitInfo {
    /// Exit code, or 128 + signal when killed by one.
    pub code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
}

impl ExitInfo {
    /// Decode a waitpid status.
    pub fn from_wait(status: libc::c_int) -> Self {
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            ExitInfo {
                code: 128 + sig,
                signal: Some(sig),
            }
        } else {
            ExitInfo {
                code: libc::WEXITSTATUS(status),
                signal: None,
            }
        }
    }
}

/// File descriptors the child gets as 0, 1 and 2.
#[derive(Debug, Clone, Copy)]
pub struct Stdio {
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
}

pub(crate) fn pipe() -> Result<(RawFd, RawFd), RuntimeError> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(RuntimeError::sys("create a pipe"));
    }
    Ok((fds[0], fds[1]))
}

pub(crate) fn close(fd: RawFd) {
    // SAFETY: closing a descriptor this module opened.
    unsafe { libc::close(fd) };
}

/// Wait for `pid` and decode its status (EINTR retried).
pub fn wait(pid: i32) -> Result<ExitInfo, RuntimeError> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Ok(ExitInfo::from_wait(status));
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(RuntimeError::sys("wait for the container"));
        }
    }
}

/// Put the calling process's future children into a new time namespace (the
/// flag cannot go to clone(2): its bit is the exit-signal field there).
pub fn enter_time_ns_for_children() -> Result<(), RuntimeError> {
    let own = std::fs::read_link("/proc/self/ns/time").ok();
    let children = std::fs::read_link("/proc/self/ns/time_for_children").ok();
    if own.is_some() && own != children {
        return Ok(()); // already done (a restart)
    }
    // SAFETY: unshare with a flag only.
    if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
        return Err(RuntimeError::sys("create a time namespace"));
    }
    Ok(())
}

/// Clone the child, run the hook, write id maps, release it and wait for its
/// exec. Returns the child's pid (in our PID namespace).
pub fn spawn(p: &Prepared, stdio: Stdio, hook: &mut dyn SetupHook) -> Result<i32, RuntimeError> {
    if p.time_ns {
        enter_time_ns_for_children()?;
    }
    // Whatever our own caller left open dies at the container's execve; the
    // child's stdio are fresh copies (dup2 clears the flag on 0-2).
    close_inherited(3, &[], Action::CloseOnExec, Method::Auto)?;
    let (rel_r, rel_w) = pipe()?;
    let (err_r, err_w) = match pipe() {
        Ok(fds) => fds,
        Err(e) => {
            close(rel_r);
            close(rel_w);
            return Err(e);
        }
    };
    let flags = libc::c_ulong::try_from(p.clone_flags | libc::SIGCHLD).unwrap_or(0);
    // SAFETY: a raw clone without CLONE_VM behaves as fork: the child gets a
    // copy of the address space and continues here. Every architecture we
    // build for takes `flags` first; the zero stack means "same stack, copied".
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        let source = io::Error::last_os_error();
        for fd in [rel_r, rel_w, err_r, err_w] {
            close(fd);
        }
        return Err(RuntimeError::Sys {
            verb: "clone the container process",
            source,
        });
    }
    if pid == 0 {
        close(rel_w);
        close(err_r);
        child_main(p, stdio, rel_r, err_w);
    }
    let pid = i32::try_from(pid).unwrap_or(-1);
    close(rel_r);
    close(err_w);
    let setup = parent_setup(p, pid, hook);
    if let Err(e) = setup {
        close(rel_w);
        close(err_r);
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = wait(pid);
        return Err(e);
    }
    let go = [1u8];
    // SAFETY: writing one byte from a valid buffer.
    unsafe { libc::write(rel_w, go.as_ptr().cast(), 1) };
    close(rel_w);
    let report = read_all(err_r);
    close(err_r);
    if report.len() >= 5 {
        let mut errno_b = [0u8; 4];
        errno_b.copy_from_slice(&report[..4]);
        let errno = i32::from_ne_bytes(errno_b);
        let kind = report[4];
        let what = String::from_utf8_lossy(&report[5..]).into_owned();
        let _ = wait(pid);
        if kind == 1 {
            return Err(exec_failed(what, errno));
        }
        return Err(RuntimeError::ChildSetup {
            what,
            source: io::Error::from_raw_os_error(errno),
        });
    }
    Ok(pid)
}

fn parent_setup(p: &Prepared, pid: i32, hook: &mut dyn SetupHook) -> Result<(), RuntimeError> {
    hook.setup(pid)
        .map_err(|message| RuntimeError::Hook { pid, message })?;
    for (file, map) in [("uid_map", &p.uid_map), ("gid_map", &p.gid_map)] {
        if let Some(text) = map {
            let path = Path::new("/proc").join(pid.to_string()).join(file);
            std::fs::write(&path, text).map_err(|e| RuntimeError::io("write id map", &path, e))?;
        }
    }
    Ok(())
}

pub(crate) fn read_all(fd: RawFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            out.extend_from_slice(&buf[..usize::try_from(n).unwrap_or(0)]);
        } else if n == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return out;
        }
    }
}

/// Report a failure to the parent and end the child (125: runtime's own failure).
/// The error of a command whose execve failed with `errno`: 127 (not found)
/// or 126 (not executable), as a shell says.
pub(crate) fn exec_failed(program: String, errno: i32) -> RuntimeError {
    let code = if errno == libc::ENOENT || errno == libc::ENOTDIR {
        127
    } else {
        126
    };
    RuntimeError::ExecFailed { program, code }
}

pub(crate) fn fail(err_fd: RawFd, kind: u8, errno: i32, what: &[u8]) -> ! {
    let mut msg = Vec::with_capacity(5 + what.len());
    msg.extend_from_slice(&errno.to_ne_bytes());
    msg.push(kind);
    msg.extend_from_slice(what);
    // SAFETY: writing a valid buffer, then ending the process without unwinding.
    unsafe {
        libc::write(err_fd, msg.as_ptr().cast(), msg.len());
        libc::_exit(if kind == 1 {
            if errno == libc::ENOENT {
                127
            } else {
                126
            }
        } else {
            125
        });
    }
}

fn os_err() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn try_or_fail(err_fd: RawFd, res: io::Result<()>, what: &str) {
    if let Err(e) = res {
        fail(
            err_fd,
            0,
            e.raw_os_error().unwrap_or(libc::EIO),
            what.as_bytes(),
        );
    }
}

fn rc(r: libc::c_int) -> io::Result<()> {
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The child after clone: wait for release, set everything up, exec. Never returns.
fn child_main(p: &Prepared, stdio: Stdio, rel_r: RawFd, err_w: RawFd) -> ! {
    // Until execve this is a copy of berth: with a shared PID namespace
    // another container could see it, so its /proc files stay closed.
    try_or_fail(err_w, set_non_dumpable(), "make the process non-dumpable");
    let mut b = [0u8; 1];
    // SAFETY: reading one byte into a valid buffer.
    let n = unsafe { libc::read(rel_r, b.as_mut_ptr().cast(), 1) };
    if n != 1 {
        // The parent gave up (hook failed) or died: leave quietly.
        // SAFETY: ending the child without unwinding.
        unsafe { libc::_exit(125) };
    }
    close(rel_r);
    // SAFETY: plain syscalls on this process; arguments are valid.
    unsafe {
        // The monitor blocks signals for its signalfd and Rust ignores SIGPIPE:
        // both would be inherited through exec.
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        for (from, to) in [(stdio.stdin, 0), (stdio.stdout, 1), (stdio.stderr, 2)] {
            if from == to {
                libc::fcntl(to, libc::F_SETFD, 0);
            } else if libc::dup2(from, to) < 0 {
                fail(err_w, 0, os_err(), b"set up stdio");
            }
        }
        libc::setsid();
        if p.uid_map.is_some() {
            // Become root of the new user namespace now that the maps exist.
            try_or_fail(
                err_w,
                rc(libc::setresgid(0, 0, 0)),
                "become root in the user namespace (setresgid)",
            );
            try_or_fail(
                err_w,
                rc(libc::setresuid(0, 0, 0)),
                "become root in the user namespace (setresuid)",
            );
        }
        // After the hook placed us in our cgroup, so that it becomes our cgroup root.
        if p.unshare_cgroup {
            try_or_fail(
                err_w,
                rc(libc::unshare(libc::CLONE_NEWCGROUP)),
                "create the cgroup namespace",
            );
        }
        if let Some(h) = &p.hostname {
            try_or_fail(
                err_w,
                rc(libc::sethostname(h.as_ptr(), h.as_bytes().len())),
                "set the hostname",
            );
        }
    }
    try_or_fail(err_w, mount_calls::make_private(), "make mounts private");
    try_or_fail(err_w, mount_calls::bind_root(&p.rootfs), "bind the rootfs");
    let root = match RootDir::open(Path::new(OsStr::from_bytes(p.rootfs.as_bytes())), p.resolve) {
        Ok(r) => r,
        Err(e) => fail(
            err_w,
            0,
            e.raw_os_error().unwrap_or(libc::EIO),
            b"open the rootfs",
        ),
    };
    for op in &p.before {
        try_or_fail(
            err_w,
            mount_calls::apply(op, Some(&root)),
            &mounts::describe(op),
        );
    }
    // No fd of the host side may reach the container.
    drop(root);
    try_or_fail(
        err_w,
        mount_calls::pivot(&p.rootfs),
        "pivot_root into the rootfs",
    );
    for op in &p.after {
        try_or_fail(err_w, mount_calls::apply(op, None), &mounts::describe(op));
    }
    try_or_fail(
        err_w,
        mount_calls::mkdir_p(&p.workdir, 0o755),
        "create the workdir",
    );
    finish_and_exec(p, err_w)
}

/// The common end of a container start and of `exec`: workdir, rlimits,
/// capabilities, uid/gid, no_new_privs, seccomp, then execve along PATH.
pub(crate) fn finish_and_exec(p: &Prepared, err_w: RawFd) -> ! {
    // SAFETY: workdir is a valid string.
    try_or_fail(
        err_w,
        rc(unsafe { libc::chdir(p.workdir.as_ptr()) }),
        "enter the workdir",
    );
    for (res, lim) in &p.rlimits {
        // SAFETY: lim is a valid rlimit.
        try_or_fail(
            err_w,
            rc(unsafe { libc::setrlimit(*res, lim) }),
            "set an rlimit",
        );
    }
    try_or_fail(
        err_w,
        p.caps.drop_bounding(),
        "drop the capability bounding set",
    );
    // SAFETY: plain syscalls; groups points to groups.len() valid gids.
    unsafe {
        try_or_fail(
            err_w,
            rc(libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0)),
            "keep capabilities across setuid",
        );
        try_or_fail(
            err_w,
            rc(libc::setgroups(p.groups.len(), p.groups.as_ptr())),
            "set supplementary groups",
        );
        try_or_fail(
            err_w,
            rc(libc::setresgid(p.gid, p.gid, p.gid)),
            "set the gid",
        );
        try_or_fail(
            err_w,
            rc(libc::setresuid(p.uid, p.uid, p.uid)),
            "set the uid",
        );
    }
    try_or_fail(err_w, p.caps.apply(), "set the capabilities");
    // SAFETY: prctl with integer arguments only.
    try_or_fail(
        err_w,
        rc(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }),
        "set no_new_privs",
    );
    if let Some(filter) = &p.filter {
        try_or_fail(
            err_w,
            seccomp::install(filter),
            "install the seccomp filter",
        );
    }
    let mut argv: Vec<*const libc::c_char> = p.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = p.envp.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let mut errno = libc::ENOENT;
    for prog in &p.programs {
        // SAFETY: argv and envp are NULL-terminated arrays of valid strings.
        unsafe { libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let e = os_err();
        // Keep searching PATH after "not here"; remember "here but not runnable".
        if e != libc::ENOENT && e != libc::ENOTDIR {
            errno = e;
        }
    }
    fail(
        err_w,
        1,
        errno,
        p.argv.first().map(|a| a.as_bytes()).unwrap_or(b"?"),
    );
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_decodes() {
        assert_eq!(
            ExitInfo::from_wait(3 << 8),
            ExitInfo {
                code: 3,
                signal: None
            }
        );
        assert_eq!(
            ExitInfo::from_wait(libc::SIGKILL),
            ExitInfo {
                code: 137,
                signal: Some(libc::SIGKILL)
            }
        );
    }
}
