//! Directory-fd helpers for the store: every path inside an image is reached
//! by `openat` walking with `O_NOFOLLOW`, so no symlink planted by an archive
//! (or swapped in for a directory) is ever followed.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A C string from a path component (components never hold NUL: tar names are C strings).
pub(crate) fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Turn a `-1` return into the thread's errno.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn own(fd: libc::c_int) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A close-on-exec duplicate of `fd`.
pub(crate) fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `fd` is a valid fd; F_DUPFD_CLOEXEC returns a new fd or -1.
    Ok(own(check(unsafe {
        libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0)
    })?))
}

/// Open a directory by absolute or relative host path (may follow symlinks: host paths are trusted).
pub(crate) fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    let c = cstr(path.as_os_str())?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let fd = check(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    Ok(own(fd))
}

/// Open the directory `name` below `dir` without following a symlink.
/// ELOOP or ENOTDIR mean the name is a symlink or not a directory.
pub(crate) fn open_subdir(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; `dir` is an open directory fd.
    let fd = check(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    Ok(own(fd))
}

/// Open the directory `name` below `dir` without following a symlink; with
/// `create`, a missing one is made first with that mode (as GNU tar makes an
/// implicit parent).
pub(crate) fn subdir(dir: RawFd, name: &CStr, create: Option<u32>) -> io::Result<OwnedFd> {
    match (open_subdir(dir, name), create) {
        (Err(e), Some(mode)) if e.raw_os_error() == Some(libc::ENOENT) => {
            match mkdir_at(dir, name, mode) {
                Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
                _ => {}
            }
            open_subdir(dir, name)
        }
        (r, _) => r,
    }
}

/// Walk `comps` below `dir` one `O_NOFOLLOW` step at a time (creating missing
/// directories with `create`): ELOOP or ENOTDIR when a component is a symlink
/// or not a directory, so the walk never leaves the tree under `dir`.
pub(crate) fn walk<S: AsRef<OsStr>>(
    dir: RawFd,
    comps: &[S],
    create: Option<u32>,
) -> io::Result<OwnedFd> {
    let mut cur = dup(dir)?;
    for comp in comps {
        cur = subdir(cur.as_raw_fd(), &cstr(comp.as_ref())?, create)?;
    }
    Ok(cur)
}

/// Create a new regular file `name` below `dir`; fails with EEXIST if anything is there.
pub(crate) fn create_file(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: as above; O_EXCL|O_NOFOLLOW makes the call refuse an existing symlink.
    let fd = check(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    })?;
    Ok(own(fd))
}

/// Open the regular file `name` below `dir` for reading, never through a symlink.
pub(crate) fn open_read(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: valid fd and NUL-terminated name; O_NOFOLLOW refuses a final symlink.
    let fd = check(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    Ok(own(fd))
}

/// `readlinkat`: the symlink's target as text, never resolved.
pub(crate) fn readlink_at(dir: RawFd, name: &CStr) -> io::Result<CString> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid fd, NUL-terminated name, writable buffer of the given length.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    if n >= buf.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buf.truncate(n);
    CString::new(buf).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `fchownat` with `AT_SYMLINK_NOFOLLOW`: a symlink's own owner changes, never its target's.
pub(crate) fn lchown_at(dir: RawFd, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated name.
    check(unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })
        .map(|_| ())
}

/// `fstat` of an open fd.
pub(crate) fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed `stat` is a valid value for a plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and writable struct.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

/// `mkdirat`.
pub(crate) fn mkdir_at(dir: RawFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated name.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode as libc::mode_t) }).map(|_| ())
}

/// `symlinkat`: the target is stored as text and never resolved by us.
pub(crate) fn symlink_at(target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }).map(|_| ())
}

/// `linkat` without AT_SYMLINK_FOLLOW: links a symlink itself, never its target.
pub(crate) fn link_at(odir: RawFd, oname: &CStr, ndir: RawFd, nname: &CStr) -> io::Result<()> {
    // SAFETY: valid fds and NUL-terminated names.
    check(unsafe { libc::linkat(odir, oname.as_ptr(), ndir, nname.as_ptr(), 0) }).map(|_| ())
}

/// `mknodat` for devices and fifos.
pub(crate) fn mknod_at(dir: RawFd, name: &CStr, mode: u32, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated name.
    check(unsafe { libc::mknodat(dir, name.as_ptr(), mode as libc::mode_t, dev) }).map(|_| ())
}

/// `fstatat` without following a final symlink; `Ok(None)` when absent.
pub(crate) fn lstat_at(dir: RawFd, name: &CStr) -> io::Result<Option<libc::stat>> {
    // SAFETY: zeroed `stat` is a valid value for a plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, NUL-terminated name, `st` is writable.
    let r = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOENT) {
            return Ok(None);
        }
        return Err(e);
    }
    Ok(Some(st))
}

/// True when a `stat` mode is a directory.
pub(crate) fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Remove `name` below `dir`, whatever it is; a directory is removed with its
/// whole tree, walked with `O_NOFOLLOW` so a symlink inside never leads out.
pub(crate) fn remove_at(dir: RawFd, name: &CStr) -> io::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if is_dir(&st) {
        let sub = open_subdir(dir, name)?;
        clear_dir(sub.as_raw_fd(), &|_| false)?;
        // SAFETY: valid fd and name.
        check(unsafe { libc::unlinkat(dir, name.as_ptr(), libc::AT_REMOVEDIR) })?;
    } else {
        // SAFETY: valid fd and name.
        check(unsafe { libc::unlinkat(dir, name.as_ptr(), 0) })?;
    }
    Ok(())
}

/// Remove every entry of `dir` for which `keep` is false.
pub(crate) fn clear_dir(dir: RawFd, keep: &dyn Fn(&OsStr) -> bool) -> io::Result<()> {
    for name in list_dir(dir)? {
        if keep(&name) {
            continue;
        }
        remove_at(dir, &cstr(&name)?)?;
    }
    Ok(())
}

/// Names in a directory, without `.` and `..`.
pub(crate) fn list_dir(dir: RawFd) -> io::Result<Vec<std::ffi::OsString>> {
    // fdopendir takes ownership of its fd: give it a duplicate.
    // SAFETY: `dir` is a valid fd; F_DUPFD_CLOEXEC returns a new fd or -1.
    let dup = check(unsafe { libc::fcntl(dir, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: `dup` is a valid directory fd; on success the DIR owns it.
    let d = unsafe { libc::fdopendir(dup) };
    if d.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `dup` is still ours to close.
        unsafe { libc::close(dup) };
        return Err(e);
    }
    // SAFETY: `d` is valid. A dup shares the file offset with `dir`: rewind to list from the start.
    unsafe { libc::rewinddir(d) };
    let mut out = Vec::new();
    loop {
        // SAFETY: `d` is a valid DIR*; readdir returns NULL at the end or on error.
        let ent = unsafe { libc::readdir(d) };
        if ent.is_null() {
            break;
        }
        // SAFETY: d_name is a NUL-terminated array inside the returned dirent.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let b = name.to_bytes();
        if b != b"." && b != b".." {
            out.push(OsStr::from_bytes(b).to_owned());
        }
    }
    // SAFETY: `d` is valid and closed exactly once.
    unsafe { libc::closedir(d) };
    Ok(out)
}

/// Remove a host directory tree (store-internal paths; trusted parent).
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    let pfd = open_dir_path(parent)?;
    remove_at(pfd.as_raw_fd(), &cstr(name)?)
}

/// Flush the whole filesystem holding `fd` (one call instead of an fsync per file).
pub(crate) fn sync_fs(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    check(unsafe { libc::syncfs(fd) }).map(|_| ())
}

/// fsync a directory by path, so a rename inside it is durable.
pub(crate) fn fsync_dir(path: &Path) -> io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// True when running as root in the initial user namespace (device nodes allowed).
pub(crate) fn can_mknod() -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return false;
    }
    // In a child user namespace the map is not the identity of the full range.
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => {
            let f: Vec<&str> = m.split_whitespace().collect();
            f == ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}

/// True when the process may chown (effective uid 0).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Bytes a store-internal tree takes on disk (allocated blocks), each
/// hard-linked inode counted once; unreadable entries count as nothing.
pub(crate) fn tree_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![path.to_path_buf()];
    let mut total = 0u64;
    while let Some(p) = todo.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        total += m.blocks() * 512;
        if m.is_dir() {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                todo.push(e.path());
            }
        }
    }
    total
}
