//! Paths inside a container's rootfs, for everything berth itself writes there
//! from the host side (hosts, resolv.conf, mount targets, /dev nodes). The
//! rootfs is the image's or the container's own, so any component may be a
//! symlink planted to lead out of it (runc CVE-2021-30465): each path is
//! resolved below a directory fd of the rootfs, with openat2
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` (Linux 5.6+; a symlink then
//! resolves as it would inside the container), else by the store's `O_NOFOLLOW`
//! walk (a symlink component is refused with ELOOP). The store opens the
//! paths an image archive names inside itself the same way.

use std::ffi::{CStr, CString, OsStr};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::host::store::fsutil;

/// How paths below the root are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// openat2 with `RESOLVE_IN_ROOT`, falling back to `Walk` on ENOSYS.
    Openat2,
    /// One `O_NOFOLLOW` openat per component (kernels before 5.6).
    Walk,
}

/// Set once openat2 answered ENOSYS: this kernel has none, ask no more.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

// linux/openat2.h
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// `struct open_how` (linux/openat2.h).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// A container's rootfs, opened once; every path below it is relative to it.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    resolve: Resolve,
}

/// The normal components of an in-root path (`/etc/hosts` or `etc/hosts`);
/// `..` is refused (EINVAL) rather than clamped, on either resolver.
pub fn components(path: &Path) -> io::Result<Vec<CString>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(fsutil::cstr(n)?),
            Component::RootDir | Component::CurDir => {}
            _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }
    Ok(out)
}

fn join(comps: &[CString]) -> io::Result<CString> {
    let mut v = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            v.push(b'/');
        }
        v.extend_from_slice(c.as_bytes());
    }
    if v.is_empty() {
        v.push(b'.');
    }
    CString::new(v).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn os(comps: &[CString]) -> Vec<&OsStr> {
    comps
        .iter()
        .map(|c| OsStr::from_bytes(c.as_bytes()))
        .collect()
}

fn own(fd: libc::c_long) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: `fd` was just returned by a successful open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn openat(dir: RawFd, name: &CStr, flags: libc::c_int, mode: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: `dir` is an open fd and `name` NUL-terminated.
    own(libc::c_long::from(unsafe {
        libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode)
    }))
}

fn enoent(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOENT)
}

impl RootDir {
    /// Open the rootfs at `path` (a host path berth made, so trusted).
    pub fn open(path: &Path, resolve: Resolve) -> io::Result<RootDir> {
        Ok(RootDir {
            fd: fsutil::open_dir_path(path)?,
            resolve,
        })
    }

    /// The resolver in use (`Walk` after openat2 turned out to be missing).
    pub fn resolve(&self) -> Resolve {
        if NO_OPENAT2.load(Ordering::Relaxed) {
            Resolve::Walk
        } else {
            self.resolve
        }
    }

    /// openat2 below the root, `None` when the kernel has no openat2.
    fn openat2(&self, comps: &[CString], flags: libc::c_int) -> Option<io::Result<OwnedFd>> {
        if self.resolve() == Resolve::Walk {
            return None;
        }
        let path = match join(comps) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let how = OpenHow {
            flags: u64::try_from(flags | libc::O_CLOEXEC).unwrap_or(0),
            mode: 0,
            resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        // SAFETY: a valid dirfd, NUL-terminated path and `open_how` of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.fd.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        let res = own(fd);
        match res {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                NO_OPENAT2.store(true, Ordering::Relaxed);
                None
            }
            r => Some(r),
        }
    }

    /// The directory `comps`, made (with `mode`) where missing.
    pub fn mkdir_all(&self, comps: &[CString], mode: u32) -> io::Result<OwnedFd> {
        let mut cur = fsutil::dup(self.fd.as_raw_fd())?;
        for i in 0..comps.len() {
            let flags = libc::O_PATH | libc::O_DIRECTORY;
            cur = match self.openat2(&comps[..=i], flags) {
                None => return fsutil::walk(self.fd.as_raw_fd(), &os(comps), Some(mode)),
                Some(Err(e)) if enoent(&e) => {
                    // mkdirat never follows a symlink at the name: a dangling
                    // one is EEXIST, and the open below then fails as it should.
                    match fsutil::mkdir_at(cur.as_raw_fd(), &comps[i], mode) {
                        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
                        _ => {}
                    }
                    self.openat2(&comps[..=i], flags)
                        .unwrap_or_else(|| Err(io::Error::from_raw_os_error(libc::ENOSYS)))?
                }
                Some(r) => r?,
            };
        }
        Ok(cur)
    }

    /// The parent directory of `comps` (made where missing) and the last name.
    fn parent<'a>(&self, comps: &'a [CString]) -> io::Result<(OwnedFd, &'a CStr)> {
        let (last, dirs) = comps
            .split_last()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        Ok((self.mkdir_all(dirs, 0o755)?, last))
    }

    /// An `O_PATH` fd of an existing entry, for a mount target: the mount goes
    /// on `/proc/self/fd/N` of it, so nothing can be swapped in between.
    pub fn open_path(&self, comps: &[CString]) -> io::Result<OwnedFd> {
        if let Some(r) = self.openat2(comps, libc::O_PATH) {
            return r;
        }
        let Some((last, dirs)) = comps.split_last() else {
            return fsutil::dup(self.fd.as_raw_fd());
        };
        let dir = fsutil::walk(self.fd.as_raw_fd(), &os(dirs), None)?;
        let fd = openat(dir.as_raw_fd(), last, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        // O_PATH|O_NOFOLLOW opens a symlink itself: refuse it as the walk does.
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: a valid fd and an out pointer the kernel fills on success.
        if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstat succeeded, so `st` is initialised.
        if unsafe { st.assume_init() }.st_mode & libc::S_IFMT == libc::S_IFLNK {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        Ok(fd)
    }

    /// Open the regular file `comps` for reading; anything else (a fifo, a
    /// device, a directory) is refused with EINVAL before a byte is read.
    pub fn open_read(&self, comps: &[CString]) -> io::Result<std::fs::File> {
        let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
        let fd = match self.openat2(comps, flags) {
            Some(r) => r?,
            None => {
                let (last, dirs) = comps
                    .split_last()
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
                let dir = fsutil::walk(self.fd.as_raw_fd(), &os(dirs), None)?;
                openat(dir.as_raw_fd(), last, flags | libc::O_NOFOLLOW, 0)?
            }
        };
        let f = std::fs::File::from(fd);
        if !f.metadata()?.is_file() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(f)
    }

    /// Make an empty file at `comps` unless something is there already.
    pub fn touch(&self, comps: &[CString], mode: u32) -> io::Result<()> {
        let (dir, name) = self.parent(comps)?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        match openat(dir.as_raw_fd(), name, flags, mode) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.map(drop),
        }
    }

    /// A symlink `comps` -> `to` (text, never resolved here); an existing entry is kept.
    pub fn symlink(&self, comps: &[CString], to: &CStr) -> io::Result<()> {
        let (dir, name) = self.parent(comps)?;
        match fsutil::symlink_at(to, dir.as_raw_fd(), name) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Replace the file at `comps` with `bytes` (temp file + rename in the
    /// same directory fd): a symlink at the name is replaced, never followed.
    /// Readers see the old or the new content, never a part. Not fsynced:
    /// its one use (the container's /etc/hosts and resolv.conf) is written
    /// afresh at every start, so a power cut loses nothing the next start
    /// does not write again, and two fsyncs per file cost 5-10 ms of every
    /// start on a disk (and flash wear) for nothing.
    pub fn write_file(&self, comps: &[CString], bytes: &[u8], mode: u32) -> io::Result<()> {
        let (dir, name) = self.parent(comps)?;
        // An O_PATH fd cannot be listed or written through: reopen it for real.
        let dot = CStr::from_bytes_with_nul(b".\0")
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let dir = openat(dir.as_raw_fd(), dot, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        let mut tmp_name = b".".to_vec();
        tmp_name.extend_from_slice(name.to_bytes());
        tmp_name.extend_from_slice(format!(".berth-tmp-{}", std::process::id()).as_bytes());
        let tmp = CString::new(tmp_name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // A leftover of a killed run (or a planted entry) goes first.
        fsutil::remove_at(dir.as_raw_fd(), &tmp)?;
        let res = (|| {
            let fd = fsutil::create_file(dir.as_raw_fd(), &tmp)?;
            let mut f = std::fs::File::from(fd);
            f.write_all(bytes)?;
            // The file belongs to its directory's owner: root of a user
            // namespace (a mapped host id) owns its /etc and may then edit
            // what berth put there. Owner first: chown clears setuid bits.
            let (d, made) = (
                fsutil::fstat(dir.as_raw_fd())?,
                fsutil::fstat(f.as_raw_fd())?,
            );
            if (d.st_uid, d.st_gid) != (made.st_uid, made.st_gid) {
                // SAFETY: a valid fd of a file this function created.
                if unsafe { libc::fchown(f.as_raw_fd(), d.st_uid, d.st_gid) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            // SAFETY: a valid fd of a file this function created.
            if unsafe { libc::fchmod(f.as_raw_fd(), mode as libc::mode_t) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: valid fds and NUL-terminated names.
            let rc = unsafe {
                libc::renameat(
                    dir.as_raw_fd(),
                    tmp.as_ptr(),
                    dir.as_raw_fd(),
                    name.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })();
        if res.is_err() {
            let _ = fsutil::remove_at(dir.as_raw_fd(), &tmp);
        }
        res
    }
}

/// Whether this kernel has openat2 (probed once; false after an ENOSYS).
pub fn openat2_available() -> bool {
    RootDir::open(Path::new("/"), Resolve::Openat2).is_ok_and(|r| {
        let _ = r.openat2(&[], libc::O_PATH);
        r.resolve() == Resolve::Openat2
    })
}

/// An in-root path given as text (`/etc/hosts`).
pub fn path_components(path: &str) -> io::Result<Vec<CString>> {
    components(Path::new(OsStr::new(path)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// What the walk answers for a symlink component.
    fn refused(e: &io::Error) -> bool {
        matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
    }

    fn roots(dir: &Path) -> [RootDir; 2] {
        [Resolve::Openat2, Resolve::Walk].map(|r| RootDir::open(dir, r).unwrap())
    }

    /// Hostile roots: `etc` is a symlink out (absolute, relative), or a file in
    /// it is. Nothing outside changes with either resolver.
    #[test]
    fn writes_never_leave_the_root() {
        for (i, link) in ["ABS", "../../outside"].iter().enumerate() {
            let tmp = tempfile::tempdir().unwrap();
            let outside = tmp.path().join("outside");
            fs::create_dir(&outside).unwrap();
            fs::write(outside.join("hosts"), "host file\n").unwrap();
            let root = tmp.path().join("a/root");
            fs::create_dir_all(&root).unwrap();
            let to = if i == 0 {
                outside.to_string_lossy().into_owned()
            } else {
                link.to_string()
            };
            symlink(&to, root.join("etc")).unwrap();
            for r in roots(&root) {
                let mode = r.resolve;
                let res = r.write_file(&path_components("/etc/hosts").unwrap(), b"x\n", 0o644);
                assert_eq!(
                    fs::read_to_string(outside.join("hosts")).unwrap(),
                    "host file\n",
                    "{mode:?} {to}"
                );
                assert_eq!(fs::read_dir(&outside).unwrap().count(), 1, "{mode:?}");
                match mode {
                    // In the root, `etc` leads to a missing directory.
                    Resolve::Openat2 => assert!(res.is_err()),
                    Resolve::Walk => assert!(refused(&res.unwrap_err())),
                }
                let t = r.touch(&path_components("/etc/x").unwrap(), 0o644);
                assert!(t.is_err() && !outside.join("x").exists(), "{mode:?}");
                assert!(r
                    .mkdir_all(&path_components("/etc/d").unwrap(), 0o755)
                    .is_err());
                assert!(!outside.join("d").exists());
                assert!(r
                    .open_path(&path_components("/etc/hosts").unwrap())
                    .is_err());
            }
        }
    }

    #[test]
    fn a_symlinked_file_is_replaced_and_paths_resolve_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().join("host-file");
        fs::write(&host, "keep\n").unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        for r in roots(&root) {
            let _ = fs::remove_file(root.join("etc/resolv.conf"));
            symlink(&host, root.join("etc/resolv.conf")).unwrap();
            let c = path_components("/etc/resolv.conf").unwrap();
            r.write_file(&c, b"nameserver 10.0.0.1\n", 0o644).unwrap();
            assert_eq!(fs::read_to_string(&host).unwrap(), "keep\n");
            assert_eq!(
                fs::read_to_string(root.join("etc/resolv.conf")).unwrap(),
                "nameserver 10.0.0.1\n"
            );
            assert_eq!(fs::read_dir(root.join("etc")).unwrap().count(), 1);
            r.mkdir_all(&path_components("/srv/a/b").unwrap(), 0o755)
                .unwrap();
            assert!(root.join("srv/a/b").is_dir());
            r.touch(&path_components("/dev/null").unwrap(), 0o644)
                .unwrap();
            assert!(root.join("dev/null").is_file());
            r.open_path(&path_components("/srv/a").unwrap()).unwrap();
        }
        // openat2 resolves an absolute link inside the root; the walk refuses it.
        symlink("/srv", root.join("lnk")).unwrap();
        let [a, w] = roots(&root);
        a.open_path(&path_components("/lnk/a").unwrap()).unwrap();
        let e = w
            .open_path(&path_components("/lnk/a").unwrap())
            .unwrap_err();
        assert!(refused(&e), "{e}");
        assert!(components(Path::new("/a/../b")).is_err());
    }
}
