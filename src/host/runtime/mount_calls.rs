//! The mount system calls that carry out a `mounts` plan in the container's
//! new mount namespace: the rootfs bind, each `MountOp` (resolved below a fd
//! of the rootfs, see `inroot`), pivot_root and the private propagation.
//! Kept apart from the plan, which is pure and table-tested; this part only
//! runs in the child.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::mounts::{cs, remount_skippable, MountOp};
use crate::host::inroot::{self, RootDir};

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn mount_raw(
    source: &CString,
    target: &CString,
    fstype: &CString,
    flags: libc::c_ulong,
    data: &CString,
) -> io::Result<()> {
    let opt = |s: &CString| {
        if s.as_bytes().is_empty() {
            std::ptr::null()
        } else {
            s.as_ptr()
        }
    };
    // SAFETY: every pointer is a NUL-terminated string or null, valid for the call.
    check(unsafe {
        libc::mount(
            opt(source),
            target.as_ptr(),
            opt(fstype),
            flags,
            opt(data).cast(),
        )
    })
}

/// `mkdir -p` of an absolute path; the last directory gets `mode`.
pub fn mkdir_p(path: &CString, mode: libc::mode_t) -> io::Result<()> {
    let bytes = path.as_bytes();
    for (i, b) in bytes.iter().enumerate().skip(1) {
        if *b == b'/' {
            mkdir_one(&bytes[..i], 0o755)?;
        }
    }
    mkdir_one(bytes, mode)
}

fn mkdir_one(bytes: &[u8], mode: libc::mode_t) -> io::Result<()> {
    let p = CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: p is a valid NUL-terminated path.
    if unsafe { libc::mkdir(p.as_ptr(), mode) } != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EEXIST) {
            return Err(err);
        }
    }
    Ok(())
}

/// A path of an op below the rootfs: its components, or `None` for an
/// absolute (host or, after pivot_root, container) path used as it is.
fn in_rootfs<'r>(
    path: &CString,
    root: Option<&'r RootDir>,
) -> io::Result<Option<(&'r RootDir, Vec<CString>)>> {
    if path.as_bytes().starts_with(b"/") {
        return Ok(None);
    }
    let root = root.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let comps = inroot::components(Path::new(OsStr::from_bytes(path.as_bytes())))?;
    Ok(Some((root, comps)))
}

/// The path mount(2) gets for `target`: an absolute one as it is, one below
/// the rootfs as `/proc/self/fd/N` of an `O_PATH` fd opened inside it (kept
/// open in the second field until the mount is done).
fn target_of(target: &CString, root: Option<&RootDir>) -> io::Result<(CString, Option<OwnedFd>)> {
    let Some((root, comps)) = in_rootfs(target, root)? else {
        return Ok((target.clone(), None));
    };
    let fd = root.open_path(&comps)?;
    let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok((path, Some(fd)))
}

/// Bind the rootfs onto itself: pivot_root needs the new root to be a mount point.
pub fn bind_root(rootfs: &CString) -> io::Result<()> {
    let none = CString::default();
    mount_raw(rootfs, rootfs, &none, libc::MS_BIND | libc::MS_REC, &none)
}

/// Run one op in the child; `root` resolves the paths below the rootfs
/// (before pivot_root). Returns the error with the op for reporting.
pub fn apply(op: &MountOp, root: Option<&RootDir>) -> io::Result<()> {
    match op {
        MountOp::Mount {
            source,
            target,
            fstype,
            flags,
            data,
            optional,
        } => {
            let res = target_of(target, root)
                .and_then(|(t, _fd)| mount_raw(source, &t, fstype, *flags, data));
            // A bind does not take MS_RDONLY on the first call: remount it,
            // resolved again so that the fd is the new mount's root.
            if res.is_ok() && *flags & libc::MS_BIND != 0 && *flags & libc::MS_RDONLY != 0 {
                let (t, _fd) = target_of(target, root)?;
                let none = CString::default();
                return mount_raw(&none, &t, &none, *flags | libc::MS_REMOUNT, &none);
            }
            match res {
                Err(e)
                    if *optional
                        && matches!(
                            e.raw_os_error(),
                            Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::EPERM)
                        ) =>
                {
                    Ok(())
                }
                other => other,
            }
        }
        MountOp::RemountRo {
            target,
            flags,
            may_be_absent,
        } => {
            let empty = CString::default();
            // The target is opened anew inside the root, so the remount acts
            // on the mount just made there.
            let res = target_of(target, root).and_then(|(t, _fd)| {
                mount_raw(
                    &empty,
                    &t,
                    &empty,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | flags,
                    &empty,
                )
            });
            match res {
                Err(e) if remount_skippable(&e, *may_be_absent) => Ok(()),
                other => other,
            }
        }
        MountOp::Mkdir { path } => match in_rootfs(path, root)? {
            Some((root, comps)) => root.mkdir_all(&comps, 0o755).map(drop),
            // A volume's directory: only its owner (the container's root) needs it.
            None => mkdir_p(path, 0o700),
        },
        MountOp::Touch { path } => match in_rootfs(path, root)? {
            Some((root, comps)) => root.touch(&comps, 0o644),
            None => touch(path),
        },
        MountOp::Symlink { to, link } => match in_rootfs(link, root)? {
            Some((root, comps)) => root.symlink(&comps, to),
            // SAFETY: both are valid NUL-terminated strings.
            None => match check(unsafe { libc::symlink(to.as_ptr(), link.as_ptr()) }) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
                other => other,
            },
        },
        MountOp::Mask { path } => {
            let Ok((path, _fd)) = target_of(path, root) else {
                return Ok(()); // absent on this kernel: nothing to hide
            };
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: path is valid; st is written by the kernel on success.
            if unsafe { libc::stat(path.as_ptr(), st.as_mut_ptr()) } != 0 {
                let err = io::Error::last_os_error();
                // Absent on this kernel: nothing to hide.
                return match err.raw_os_error() {
                    Some(libc::ENOENT) => Ok(()),
                    _ => Err(err),
                };
            }
            // SAFETY: stat succeeded, so st is initialised.
            let st = unsafe { st.assume_init() };
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                mount_raw(
                    &cs("tmpfs"),
                    &path,
                    &cs("tmpfs"),
                    libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    &cs("size=0"),
                )
            } else {
                mount_raw(
                    &cs("/dev/null"),
                    &path,
                    &CString::default(),
                    libc::MS_BIND,
                    &CString::default(),
                )
            }
        }
    }
}

/// Create an empty file at an absolute path unless something is there.
fn touch(path: &CString) -> io::Result<()> {
    // SAFETY: path is a valid NUL-terminated string; the fd is closed at once.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        // EISDIR and friends: something is already there; the bind decides.
        return if err.raw_os_error() == Some(libc::EISDIR) {
            Ok(())
        } else {
            Err(err)
        };
    }
    // SAFETY: fd was just opened by us.
    unsafe { libc::close(fd) };
    Ok(())
}

/// Make every mount private (no propagation back to the host), then switch
/// the root to `rootfs`. pivot_root fails with EINVAL when the current root is
/// the initramfs rootfs; then fall back to MS_MOVE + chroot as runc does.
pub fn pivot(rootfs: &CString) -> io::Result<()> {
    // SAFETY: all strings are valid; the syscalls only change this process.
    unsafe {
        check(libc::chdir(rootfs.as_ptr()))?;
        let dot = cs(".");
        let rc = libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr());
        if rc == 0 {
            check(libc::umount2(dot.as_ptr(), libc::MNT_DETACH))?;
        } else {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINVAL) {
                return Err(err);
            }
            let slash = cs("/");
            check(libc::mount(
                dot.as_ptr(),
                slash.as_ptr(),
                std::ptr::null(),
                libc::MS_MOVE,
                std::ptr::null(),
            ))?;
            check(libc::chroot(dot.as_ptr()))?;
        }
        check(libc::chdir(cs("/").as_ptr()))
    }
}

/// Stop mount events from propagating between the host and the container.
pub fn make_private() -> io::Result<()> {
    let slash = cs("/");
    // SAFETY: valid strings; affects only this (new) mount namespace.
    check(unsafe {
        libc::mount(
            std::ptr::null(),
            slash.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })
}
