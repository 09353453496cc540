//! Descriptors a container must never inherit. Whoever runs `berth apply`,
//! `start` or `exec` may hold descriptors without close-on-exec (a shell's
//! `3<`, a service manager's sockets); a directory among them would give the
//! container the host's filesystem (`/proc/self/fd/N/..`). Before anything of
//! the container runs, every descriptor from 3 up but the ones berth hands
//! over on purpose is closed (the monitor) or marked close-on-exec (the start
//! and the `exec` join). close_range(2) does it in one call (5.9; the
//! close-on-exec flag 5.11); older kernels fail it with ENOSYS or EINVAL and
//! get a walk of `/proc/self/fd`, always done in the host's mount namespace
//! where the container cannot fake that directory.

use std::io;
use std::os::unix::io::RawFd;
use std::path::Path;

use super::RuntimeError;

/// What happens to each inherited descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Close it now.
    Close,
    /// Keep it until the next execve (the process's own use), then close it.
    CloseOnExec,
}

/// How the descriptors are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// close_range(2), and the walk where the kernel lacks it.
    Auto,
    /// The walk of `/proc/self/fd` only, as on a 5.4 kernel (tests force it).
    Walk,
}

/// The ranges `[first, ~0]` minus `keep`, as close_range takes them.
fn ranges(first: RawFd, keep: &[RawFd]) -> Vec<(libc::c_uint, libc::c_uint)> {
    let mut keep: Vec<libc::c_uint> = keep
        .iter()
        .filter_map(|k| libc::c_uint::try_from(*k).ok())
        .collect();
    keep.sort_unstable();
    let mut out = Vec::new();
    let mut lo = libc::c_uint::try_from(first).unwrap_or(0);
    for k in keep {
        if k < lo {
            continue;
        }
        if k > lo {
            out.push((lo, k - 1));
        }
        lo = k.saturating_add(1);
    }
    out.push((lo, libc::c_uint::MAX));
    out
}

/// Close, or mark close-on-exec, every descriptor from `first` up but those
/// in `keep`. Call it in the host's mount namespace (the walk reads /proc).
pub fn close_inherited(
    first: RawFd,
    keep: &[RawFd],
    action: Action,
    method: Method,
) -> Result<(), RuntimeError> {
    if method == Method::Auto {
        let flags = match action {
            Action::Close => 0,
            Action::CloseOnExec => libc::CLOSE_RANGE_CLOEXEC,
        };
        let mut done = true;
        for (lo, hi) in ranges(first, keep) {
            // SAFETY: close_range acts on this process's descriptors only.
            // Closing: callers name every descriptor a live object owns in
            // `keep`; flagging close-on-exec harms no owner.
            let rc = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, flags) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                // ENOSYS: before 5.9; EINVAL: the flag is unknown before 5.11.
                if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EINVAL)) {
                    done = false;
                    break;
                }
                return Err(RuntimeError::Sys {
                    verb: "close inherited descriptors (close_range)",
                    source: e,
                });
            }
        }
        if done {
            return Ok(());
        }
    }
    walk(first, keep, action)
}

/// The fallback: list `/proc/self/fd`, then close or flag each entry.
fn walk(first: RawFd, keep: &[RawFd], action: Action) -> Result<(), RuntimeError> {
    let dir = Path::new("/proc/self/fd");
    let list = || -> io::Result<Vec<RawFd>> {
        let mut fds = Vec::new();
        // read_dir opens its descriptor close-on-exec; it is in the list too
        // and already closed when the loop below reaches it (EBADF).
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            if let Some(fd) = name.to_str().and_then(|n| n.parse::<RawFd>().ok()) {
                if fd >= first && !keep.contains(&fd) {
                    fds.push(fd);
                }
            }
        }
        Ok(fds)
    };
    let fds = list().map_err(|e| RuntimeError::io("list open descriptors in", dir, e))?;
    for fd in fds {
        // SAFETY: as in close_inherited: descriptors outside `keep` are not
        // owned by anything that will use them again.
        let rc = unsafe {
            match action {
                Action::Close => libc::close(fd),
                Action::CloseOnExec => libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC),
            }
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBADF) {
                return Err(RuntimeError::Sys {
                    verb: "close an inherited descriptor",
                    source: e,
                });
            }
        }
    }
    Ok(())
}

/// Make this process non-dumpable: its /proc files (mem, environ, exe, fd)
/// and ptrace need CAP_SYS_PTRACE in the host's user namespace from now on,
/// so a container it is visible to cannot take it over. Inherited by fork;
/// execve of the container's program resets it.
pub fn set_non_dumpable() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// [`set_non_dumpable`] as a runtime error.
pub(crate) fn non_dumpable() -> Result<(), RuntimeError> {
    set_non_dumpable().map_err(|source| RuntimeError::Sys {
        verb: "make the process non-dumpable",
        source,
    })
}

/// `(env_start, env_end)` from the text of `/proc/self/stat` (fields 50
/// and 51, after the parenthesised command name).
fn env_block(stat: &str) -> Option<(usize, usize)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(47);
    let start = f.next()?.parse().ok()?;
    let end = f.next()?.parse().ok()?;
    // Empty for a process started with no environment (the monitor).
    (start <= end).then_some((start, end))
}

/// Overwrite the environment block the kernel placed at the top of our stack
/// at execve, the bytes `/proc/PID/environ` shows. Some kernels show it to a
/// same-uid process even when we are non-dumpable, and the `exec` join is
/// visible in the container's PID namespace: it must not carry the caller's
/// variables there. Only for a forked child that reads no variable again.
pub(crate) fn scrub_environ() -> Result<(), RuntimeError> {
    let path = Path::new("/proc/self/stat");
    let stat = std::fs::read_to_string(path).map_err(|e| RuntimeError::io("read", path, e))?;
    let Some((start, end)) = env_block(&stat) else {
        return Err(RuntimeError::BadState {
            path: path.to_path_buf(),
            message: "no environment block in it".into(),
        });
    };
    // SAFETY: [start, end) is this process's own environment block, mapped
    // writable on its stack since execve; only libc's `environ` array points
    // into it, and the caller reads no variable after this.
    unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::io::AsRawFd;

    fn flags(fd: RawFd) -> libc::c_int {
        // SAFETY: F_GETFD on any number is harmless.
        unsafe { libc::fcntl(fd, libc::F_GETFD) }
    }

    /// A descriptor without close-on-exec, as a careless caller leaves it.
    fn leaked(path: &str) -> RawFd {
        let f = std::fs::File::open(path).unwrap();
        // SAFETY: dup of a descriptor we own; the copy has no CLOEXEC.
        let fd = unsafe { libc::dup(f.as_raw_fd()) };
        assert!(fd >= 3 && flags(fd) & libc::FD_CLOEXEC == 0);
        fd
    }

    #[test]
    fn the_environment_block_is_found_in_stat() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let (start, end) = env_block(&stat).unwrap();
        // SAFETY: reading our own environment block, which is mapped.
        let bytes = unsafe { std::slice::from_raw_parts(start as *const u8, end - start) };
        let path = std::env::var("PATH").unwrap();
        let want = format!("PATH={path}");
        assert!(bytes.split(|b| *b == 0).any(|kv| kv == want.as_bytes()));
        let odd = "1 (a) b) R 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 \
                   0 0 0 0 0 0 0 0 0 0 0 0 10 20 30 40 0\n";
        assert_eq!(env_block(odd), Some((30, 40)));
        assert_eq!(env_block("1 (x) R"), None);
    }

    /// Every descriptor berth's own code creates is close-on-exec: a raw
    /// call that makes one names a CLOEXEC flag within its arguments.
    #[test]
    fn every_raw_descriptor_berth_creates_is_close_on_exec() {
        const CALLS: &[&str] = &[
            "libc::open(",
            "libc::openat(",
            "libc::socket(",
            "libc::socketpair(",
            "libc::pipe2(",
            "libc::signalfd(",
            "libc::posix_openpt(",
            "libc::memfd_create(",
            "libc::epoll_create1(",
            "libc::eventfd(",
            "libc::accept4(",
        ];
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        let mut bad = Vec::new();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for call in CALLS {
                    for (at, _) in text.match_indices(call) {
                        let args: String = text[at..].chars().take(200).collect();
                        let args = args.split(';').next().unwrap_or("");
                        // This very list names the calls without making one.
                        if !args.contains("CLOEXEC") && !args.contains("\",") {
                            bad.push(format!("{}: {}", path.display(), call));
                        }
                    }
                }
            }
        }
        assert!(bad.is_empty(), "{bad:#?}");
    }

    #[test]
    fn ranges_skip_kept_descriptors() {
        let max = libc::c_uint::MAX;
        assert_eq!(ranges(3, &[]), vec![(3, max)]);
        assert_eq!(ranges(3, &[3]), vec![(4, max)]);
        assert_eq!(ranges(3, &[9, 5, 1]), vec![(3, 4), (6, 8), (10, max)]);
    }

    // Both paths on the same kernel: close_range here, the walk forced.
    #[test]
    fn both_methods_flag_every_leaked_descriptor_but_the_kept_one() {
        for method in [Method::Auto, Method::Walk] {
            let a = leaked("/");
            let b = leaked("/dev/null");
            close_inherited(3, &[b], Action::CloseOnExec, method).unwrap();
            assert_ne!(flags(a) & libc::FD_CLOEXEC, 0, "{method:?}");
            assert_eq!(flags(b) & libc::FD_CLOEXEC, 0, "{method:?}: kept");
            // SAFETY: closing the two copies made above.
            unsafe {
                libc::close(a);
                libc::close(b);
            }
        }
    }
}
