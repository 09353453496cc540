//! Safe tar extraction: the last step of `fetch -> hash -> decompress -> untar`.
//! The `tar` crate only parses headers (incl. GNU long names and PAX); every file
//! is created here through directory fds walked with `O_NOFOLLOW`, so nothing an
//! archive holds (`..`, absolute names, symlinks, hard links, a symlink swapped
//! in for a directory) can make a write land outside the target.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::fsutil::{self, cstr};
use super::StoreError;

/// How to extract.
#[derive(Debug, Clone)]
pub(crate) struct ExtractOptions {
    /// Largest total of entry sizes (plus 512 bytes per header) accepted.
    pub max_size: u64,
    /// Keep the archive's numeric owners (needs root).
    pub same_owner: bool,
    /// Create device nodes (root in the initial user namespace).
    pub allow_devices: bool,
    /// Apply OCI whiteouts (`.wh.<name>`, `.wh..wh..opq`) instead of creating them.
    pub whiteouts: bool,
}

impl ExtractOptions {
    /// Defaults for this process: owners and devices when privileges allow.
    pub(crate) fn for_host(max_size: u64) -> Self {
        ExtractOptions {
            max_size,
            same_owner: fsutil::is_root(),
            allow_devices: fsutil::can_mknod(),
            whiteouts: false,
        }
    }
}

/// Deferred directory metadata: applied last, so a read-only directory mode
/// does not stop its own children from being written.
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

/// Unpacks one or more tar streams (OCI layers) into one target directory.
pub(crate) struct Extractor<'a> {
    image: &'a str,
    root: OwnedFd,
    opts: ExtractOptions,
    /// Open directory fds for the last entry's parent chain (name, fd), reused
    /// while entries stay in the same directories; cleared on every removal.
    stack: Vec<(OsString, OwnedFd)>,
    dirs: BTreeMap<PathBuf, DirMeta>,
    /// Paths written by the current layer (opaque whiteouts keep them).
    layer_paths: HashSet<PathBuf>,
    /// Bytes counted against the size cap.
    pub(crate) total: u64,
    /// Device nodes recorded and skipped.
    pub(crate) skipped: Vec<String>,
    /// Non-fatal problems (chown or xattr refused).
    pub(crate) warnings: Vec<String>,
    buf: Vec<u8>,
}

/// Split an archive name into safe components, or say why it is refused.
fn clean(raw: &Path) -> Result<Vec<OsString>, &'static str> {
    let mut out = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n.to_owned()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
            Component::ParentDir => return Err("`..` component"),
        }
    }
    Ok(out)
}

fn join(comps: &[OsString]) -> PathBuf {
    comps.iter().collect()
}

impl<'a> Extractor<'a> {
    /// Extract into `target`, an existing (normally empty) directory.
    pub(crate) fn new(
        image: &'a str,
        target: &Path,
        opts: ExtractOptions,
    ) -> Result<Self, StoreError> {
        let root =
            fsutil::open_dir_path(target).map_err(|e| StoreError::io(image, "open", target, e))?;
        Ok(Extractor {
            image,
            root,
            opts,
            stack: Vec::new(),
            dirs: BTreeMap::new(),
            layer_paths: HashSet::new(),
            total: 0,
            skipped: Vec::new(),
            warnings: Vec::new(),
            buf: vec![0; 128 * 1024],
        })
    }

    /// The target directory fd (for `syncfs`).
    pub(crate) fn root_fd(&self) -> RawFd {
        self.root.as_raw_fd()
    }

    fn traversal(&self, entry: &Path, reason: &'static str) -> StoreError {
        StoreError::Traversal {
            image: self.image.to_owned(),
            entry: entry.to_owned(),
            reason,
        }
    }

    fn fail(&self, op: &'static str, entry: &Path, e: io::Error) -> StoreError {
        StoreError::io(self.image, op, entry, e)
    }

    /// Unpack one tar stream; returns the reader positioned after the archive's
    /// end marker so the caller can drain (and hash) what follows.
    pub(crate) fn unpack<R: Read>(&mut self, reader: R) -> Result<R, StoreError> {
        self.layer_paths.clear();
        let mut ar = tar::Archive::new(reader);
        {
            let entries = ar.entries().map_err(|e| self.read_err(e))?;
            for entry in entries {
                let mut entry = entry.map_err(|e| self.read_err(e))?;
                self.entry(&mut entry)?;
            }
        }
        Ok(ar.into_inner())
    }

    fn read_err(&self, source: io::Error) -> StoreError {
        StoreError::Read {
            image: self.image.to_owned(),
            source,
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), StoreError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw = entry.path().map_err(|e| self.read_err(e))?.into_owned();
        self.total = self.total.saturating_add(entry.size()).saturating_add(512);
        if self.total > self.opts.max_size {
            return Err(StoreError::TooLarge {
                image: self.image.to_owned(),
                limit: self.opts.max_size,
            });
        }
        let comps = clean(&raw).map_err(|r| self.traversal(&raw, r))?;
        let mut caps = None;
        let (mut pax_uid, mut pax_gid) = (None, None);
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for ext in pax.flatten() {
                let num = || ext.value().ok().and_then(|v| v.parse::<u64>().ok());
                match ext.key_bytes() {
                    b"SCHILY.xattr.security.capability" => caps = Some(ext.value_bytes().to_vec()),
                    b"uid" => pax_uid = num(),
                    b"gid" => pax_gid = num(),
                    _ => {}
                }
            }
        }
        let hdr = entry.header();
        let mode = hdr.mode().map_err(|e| self.read_err(e))? & 0o7777;
        let uid = u32::try_from(pax_uid.unwrap_or(hdr.uid().unwrap_or(0))).unwrap_or(0);
        let gid = u32::try_from(pax_gid.unwrap_or(hdr.gid().unwrap_or(0))).unwrap_or(0);
        let mtime = i64::try_from(hdr.mtime().unwrap_or(0)).unwrap_or(0);
        let major = hdr.device_major().ok().flatten().unwrap_or(0);
        let minor = hdr.device_minor().ok().flatten().unwrap_or(0);
        let Some((name, parents)) = comps.split_last() else {
            // `./` itself: the target root's own metadata.
            if kind == EntryType::Directory {
                self.dirs.insert(
                    PathBuf::new(),
                    DirMeta {
                        mode,
                        uid,
                        gid,
                        mtime,
                    },
                );
            }
            return Ok(());
        };
        if self.opts.whiteouts {
            if let Some(hidden) = name.as_bytes().strip_prefix(b".wh.") {
                return self.whiteout(&raw, parents, hidden);
            }
            self.layer_paths.insert(join(&comps));
        }
        let parent = self.open_parent(&raw, parents)?;
        let cname = cstr(name).map_err(|e| self.fail("name", &raw, e))?;
        match kind {
            EntryType::Directory => {
                match fsutil::lstat_at(parent, &cname).map_err(|e| self.fail("stat", &raw, e))? {
                    Some(st) if fsutil::is_dir(&st) => {}
                    Some(_) => {
                        self.remove(parent, &cname, &raw)?;
                        self.mkdir(parent, &cname, &raw)?;
                    }
                    None => self.mkdir(parent, &cname, &raw)?,
                }
                self.dirs.insert(
                    join(&comps),
                    DirMeta {
                        mode,
                        uid,
                        gid,
                        mtime,
                    },
                );
            }
            EntryType::Regular | EntryType::Continuous => {
                let fd = self.retry_exists(parent, &cname, &raw, fsutil::create_file)?;
                let mut f = File::from(fd);
                loop {
                    let n = entry.read(&mut self.buf).map_err(|e| self.read_err(e))?;
                    if n == 0 {
                        break;
                    }
                    f.write_all(&self.buf[..n])
                        .map_err(|e| self.fail("write", &raw, e))?;
                }
                self.set_owner_fd(&f, uid, gid, &raw);
                // chown clears setuid/setgid and file capabilities: mode and xattr come after it.
                // SAFETY: valid fd.
                if unsafe { libc::fchmod(f.as_raw_fd(), mode as libc::mode_t) } < 0 {
                    return Err(self.fail("chmod", &raw, io::Error::last_os_error()));
                }
                if let Some(c) = caps {
                    self.set_caps(&f, &c, &raw);
                }
                let ts = times(mtime);
                // SAFETY: valid fd and a two-element timespec array.
                unsafe { libc::futimens(f.as_raw_fd(), ts.as_ptr()) };
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.traversal(&raw, "symlink without a target"))?;
                let target = CString::new(target.into_owned())
                    .map_err(|_| self.traversal(&raw, "NUL in link target"))?;
                self.retry_exists(parent, &cname, &raw, |p, n| {
                    fsutil::symlink_at(&target, p, n)
                })?;
                self.set_owner_at(parent, &cname, uid, gid, &raw);
                let ts = times(mtime);
                // SAFETY: valid fd, name and timespec array; AT_SYMLINK_NOFOLLOW touches the link itself.
                unsafe {
                    libc::utimensat(
                        parent,
                        cname.as_ptr(),
                        ts.as_ptr(),
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                };
            }
            EntryType::Link => {
                let target = entry.link_name().map_err(|e| self.read_err(e))?;
                let target = target
                    .ok_or_else(|| self.traversal(&raw, "hard link without a target"))?
                    .into_owned();
                let tcomps = clean(&target).map_err(|r| self.traversal(&raw, r))?;
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(self.traversal(&raw, "hard link to the root"));
                };
                if tcomps == comps {
                    return Ok(());
                }
                let tparent = self.walk_existing(&raw, tparents)?;
                let tname = cstr(tname).map_err(|e| self.fail("name", &raw, e))?;
                // The parent chain may have been rebuilt by the walk: reopen ours.
                let parent = self.open_parent(&raw, parents)?;
                self.retry_exists(parent, &cname, &raw, |p, n| {
                    fsutil::link_at(tparent.as_raw_fd(), &tname, p, n)
                })?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (ftype, dev) = match kind {
                    EntryType::Fifo => (libc::S_IFIFO, 0),
                    _ => {
                        let t = if kind == EntryType::Char {
                            libc::S_IFCHR
                        } else {
                            libc::S_IFBLK
                        };
                        (t, libc::makedev(major, minor))
                    }
                };
                if ftype != libc::S_IFIFO && !self.opts.allow_devices {
                    self.skipped.push(raw.display().to_string());
                    return Ok(());
                }
                self.retry_exists(parent, &cname, &raw, |p, n| {
                    fsutil::mknod_at(p, n, ftype | mode, dev)
                })?;
                self.set_owner_at(parent, &cname, uid, gid, &raw);
                // SAFETY: valid fd and name; the node was just created (no symlink).
                unsafe { libc::fchmodat(parent, cname.as_ptr(), mode as libc::mode_t, 0) };
            }
            other => {
                return Err(StoreError::Unsupported {
                    image: self.image.to_owned(),
                    entry: raw.clone(),
                    // the header's type byte: Debug of tar's EntryType is a
                    // variant name only in the firmware build (fmt-debug=shallow)
                    kind: format!("`{}`", char::from(other.as_byte()).escape_default()),
                });
            }
        }
        Ok(())
    }

    /// Apply an OCI whiteout found in `parents`: `.wh..wh..opq` empties the
    /// directory of what lower layers put there, `.wh.<name>` deletes `<name>`.
    fn whiteout(
        &mut self,
        raw: &Path,
        parents: &[OsString],
        hidden: &[u8],
    ) -> Result<(), StoreError> {
        let parent = self.open_parent(raw, parents)?;
        if hidden == b".wh..opq" {
            let base = join(parents);
            let layer = &self.layer_paths;
            fsutil::clear_dir(parent, &|n| layer.contains(&base.join(n)))
                .map_err(|e| self.fail("apply opaque whiteout", raw, e))?;
            return Ok(());
        }
        let name = cstr(OsStr::from_bytes(hidden)).map_err(|e| self.fail("name", raw, e))?;
        self.remove(parent, &name, raw)?;
        let gone = join(parents).join(OsStr::from_bytes(hidden));
        self.dirs.retain(|p, _| !p.starts_with(&gone));
        Ok(())
    }

    fn mkdir(&mut self, parent: RawFd, name: &CStr, raw: &Path) -> Result<(), StoreError> {
        // Owner-only until the deferred metadata pass sets the real mode.
        fsutil::mkdir_at(parent, name, 0o700).map_err(|e| self.fail("mkdir", raw, e))
    }

    /// Remove a child of `parent`. The fd stack only holds `parent` and its
    /// ancestors, so removing a child never leaves a stale fd in it.
    fn remove(&mut self, parent: RawFd, name: &CStr, raw: &Path) -> Result<(), StoreError> {
        fsutil::remove_at(parent, name).map_err(|e| self.fail("remove", raw, e))
    }

    /// Run `op`; when something already has the name, remove it and run it once more.
    fn retry_exists<T>(
        &mut self,
        parent: RawFd,
        name: &CStr,
        raw: &Path,
        op: impl Fn(RawFd, &CStr) -> io::Result<T>,
    ) -> Result<T, StoreError> {
        match op(parent, name) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                // A later entry wins, as with GNU tar: replace what is there.
                self.remove(parent, name, raw)?;
                op(parent, name).map_err(|e| self.fail("create", raw, e))
            }
            r => r.map_err(|e| self.fail("create", raw, e)),
        }
    }

    /// The fd of the directory `parents` below the root, creating missing
    /// directories and refusing any component that is a symlink or a file.
    fn open_parent(&mut self, raw: &Path, parents: &[OsString]) -> Result<RawFd, StoreError> {
        let same = self
            .stack
            .iter()
            .zip(parents)
            .take_while(|((a, _), b)| a == *b)
            .count();
        self.stack.truncate(same);
        for comp in &parents[same..] {
            let cur = self
                .stack
                .last()
                .map_or(self.root.as_raw_fd(), |(_, fd)| fd.as_raw_fd());
            let c = cstr(comp).map_err(|e| self.fail("name", raw, e))?;
            // An implicit parent (not listed in the archive) is made as GNU tar makes it.
            let fd = fsutil::subdir(cur, &c, Some(0o755)).map_err(|e| self.classify(raw, e))?;
            self.stack.push((comp.clone(), fd));
        }
        Ok(self
            .stack
            .last()
            .map_or(self.root.as_raw_fd(), |(_, fd)| fd.as_raw_fd()))
    }

    /// Walk to an existing directory (a hard link's target parent) without creating anything.
    fn walk_existing(&self, raw: &Path, parents: &[OsString]) -> Result<OwnedFd, StoreError> {
        fsutil::walk(self.root.as_raw_fd(), parents, None).map_err(|e| self.classify(raw, e))
    }

    fn classify(&self, raw: &Path, e: io::Error) -> StoreError {
        match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                self.traversal(raw, "a parent is a symlink or not a directory")
            }
            _ => self.fail("open", raw, e),
        }
    }

    fn set_owner_fd(&mut self, f: &File, uid: u32, gid: u32, raw: &Path) {
        if !self.opts.same_owner {
            return;
        }
        // SAFETY: valid fd.
        if unsafe { libc::fchown(f.as_raw_fd(), uid, gid) } < 0 {
            self.warn_owner(raw);
        }
    }

    fn set_owner_at(&mut self, parent: RawFd, name: &CStr, uid: u32, gid: u32, raw: &Path) {
        if !self.opts.same_owner {
            return;
        }
        // SAFETY: valid fd and name; AT_SYMLINK_NOFOLLOW never follows a link.
        if unsafe { libc::fchownat(parent, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) } < 0
        {
            self.warn_owner(raw);
        }
    }

    fn warn_owner(&mut self, raw: &Path) {
        // An unmapped id in a user namespace: say it once, not per file.
        if self.warnings.len() < 4 {
            self.warnings.push(format!(
                "cannot keep the owner of `{}`: {}",
                raw.display(),
                io::Error::last_os_error()
            ));
        }
    }

    fn set_caps(&mut self, f: &File, caps: &[u8], raw: &Path) {
        let key = b"security.capability\0";
        // SAFETY: valid fd, NUL-terminated key, and a buffer of the given length.
        let r = unsafe {
            libc::fsetxattr(
                f.as_raw_fd(),
                key.as_ptr().cast(),
                caps.as_ptr().cast(),
                caps.len(),
                0,
            )
        };
        if r < 0 {
            self.warnings.push(format!(
                "cannot set file capabilities on `{}`: {}",
                raw.display(),
                io::Error::last_os_error()
            ));
        }
    }

    /// Apply deferred directory metadata, deepest first, and return the stats.
    pub(crate) fn finish(mut self) -> Result<(u64, Vec<String>, Vec<String>), StoreError> {
        self.stack.clear();
        let dirs = std::mem::take(&mut self.dirs);
        for (path, m) in dirs.iter().rev() {
            let comps: Vec<OsString> = path.iter().map(OsStr::to_owned).collect();
            let fd = match self.walk_existing(path, &comps) {
                Ok(fd) => fd,
                // Replaced later by a non-directory (or whited out): nothing to apply.
                Err(_) => continue,
            };
            if self.opts.same_owner {
                // SAFETY: valid fd.
                unsafe { libc::fchown(fd.as_raw_fd(), m.uid, m.gid) };
            }
            // SAFETY: valid fd.
            unsafe { libc::fchmod(fd.as_raw_fd(), m.mode as libc::mode_t) };
            let ts = times(m.mtime);
            // SAFETY: valid fd and timespec array.
            unsafe { libc::futimens(fd.as_raw_fd(), ts.as_ptr()) };
        }
        Ok((self.total, self.skipped, self.warnings))
    }
}

/// atime = mtime = the archive's mtime.
fn times(mtime: i64) -> [libc::timespec; 2] {
    // 32-bit time_t (old glibc ABIs): clamp out-of-range times to the epoch.
    #[allow(clippy::useless_conversion)]
    let t = libc::timespec {
        tv_sec: mtime.try_into().unwrap_or_default(),
        tv_nsec: 0,
    };
    [t, t]
}

// Tests (crafted malicious tarballs) live beside this file to keep it under 800 lines.
#[cfg(test)]
#[path = "extract_tests.rs"]
pub(crate) mod tests;
