//! Id-shifted copies of an image, for containers in a user namespace. Root
//! inside such a container is an unprivileged host id (e.g. 100000), and the
//! image's files belong to host ids its namespace does not map, so it could
//! not write its own root. Kernels 5.4-5.15 cannot idmap an overlay lower
//! (5.19+) or a tmpfs (6.3+), so `plan_layer` uses a copy of the image whose
//! owners are moved by the map, made once per (image, map) under
//! `images/<digest>/shifted-<key>/rootfs` and shared by every container with
//! that map. The copy fallback (`LayerPlan::Copy`) shifts while it copies.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ops::PRIVATE;
use super::{fsutil, ImageInfo, RootfsStore, StoreError};
use crate::model::{IdMap, IdMaps};

/// The container id that stands for an image id outside the map: `nobody`,
/// the id the kernel shows for unmapped ids (overflowuid).
pub const OVERFLOW_ID: u32 = 65534;

/// Where one id of the image lands on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shifted {
    /// Inside the map: this host id.
    Mapped(u32),
    /// Outside the map: the host id of the container's `nobody`.
    Overflow(u32),
    /// Outside the map, and the map has no `nobody` either.
    Unmapped,
}

/// The host id that container id `id` is under `maps`, if it is mapped.
pub fn map_id(maps: &[IdMap], id: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        let off = id.checked_sub(m.inside)?;
        if off < m.count {
            m.outside.checked_add(off)
        } else {
            None
        }
    })
}

/// Where image id `id` goes in a copy shifted by `maps`.
pub fn shift_id(maps: &[IdMap], id: u32) -> Shifted {
    match (map_id(maps, id), map_id(maps, OVERFLOW_ID)) {
        (Some(h), _) => Shifted::Mapped(h),
        (None, Some(h)) => Shifted::Overflow(h),
        (None, None) => Shifted::Unmapped,
    }
}

/// A user namespace's uid and gid maps, as applied to an image's owners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdShift {
    uid: Vec<IdMap>,
    gid: Vec<IdMap>,
}

impl IdShift {
    /// The shift of a container's `namespaces.user`.
    pub fn new(maps: &IdMaps) -> IdShift {
        IdShift {
            uid: maps.uid.clone(),
            gid: maps.gid.clone(),
        }
    }

    /// A short name for the maps: 12 hex digits of the sha256 of their text,
    /// so equal maps share one copy.
    pub fn key(&self) -> String {
        let text = |maps: &[IdMap]| {
            maps.iter()
                .map(|m| format!("{} {} {}", m.inside, m.outside, m.count))
                .collect::<Vec<_>>()
                .join(",")
        };
        let line = format!("uid {};gid {}", text(&self.uid), text(&self.gid));
        let mut hex = crate::model::hex(&Sha256::digest(line.as_bytes()));
        hex.truncate(12);
        hex
    }
}

/// Why a tree could not be copied.
#[derive(Debug)]
pub(crate) enum CopyError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    Unmapped {
        path: PathBuf,
        kind: &'static str,
        id: u32,
    },
}

impl CopyError {
    /// The store error of `container`'s layer.
    pub(crate) fn into_store(self, container: &str, op: &'static str, root: &Path) -> StoreError {
        match self {
            CopyError::Io { path, source } => StoreError::Layer {
                container: container.to_owned(),
                op,
                path: root.join(path),
                source,
            },
            CopyError::Unmapped { path, kind, id } => StoreError::Unmapped {
                container: container.to_owned(),
                path: Path::new("/").join(path),
                kind,
                id,
            },
        }
    }
}

impl RootfsStore {
    /// `image`'s rootfs shifted for `shift`: made on first use under a temp
    /// name (removed by `open` if berth dies), then renamed into place.
    /// `image rm` and `gc` remove it with the image.
    pub(crate) fn shifted_rootfs(
        &self,
        container: &str,
        image: &ImageInfo,
        shift: &IdShift,
    ) -> Result<PathBuf, StoreError> {
        let dir = self.images_dir().join(&image.digest);
        let dest = dir.join(format!("shifted-{}", shift.key()));
        let rootfs = dest.join("rootfs");
        if rootfs.is_dir() {
            return Ok(rootfs);
        }
        let err = |op, path: &Path, source| StoreError::Layer {
            container: container.to_owned(),
            op,
            path: path.to_owned(),
            source,
        };
        // A firmware image has no store dir yet: it gets one for its copies.
        fs::DirBuilder::new()
            .mode(PRIVATE)
            .recursive(true)
            .create(&dir)
            .map_err(|e| err("create", &dir, e))?;
        let mut tmp = self.tmp_dir(&image.digest, Some(&format!("shift{}", shift.key())))?;
        let made = tmp.path.join("rootfs");
        copy_tree(&image.rootfs, &made, Some(shift))
            .map_err(|e| e.into_store(container, "shift", &image.rootfs))?;
        let fd = fsutil::open_dir_path(&made).map_err(|e| err("open", &made, e))?;
        // The rename must not reach the disk before the files it publishes.
        fsutil::sync_fs(fd.as_raw_fd()).map_err(|e| err("sync", &made, e))?;
        let _ = fs::remove_file(tmp.path.join(super::ops::LOCK));
        match fs::rename(&tmp.path, &dest) {
            Ok(()) => tmp.keep = true,
            // Another start made the same copy meanwhile: use that one.
            Err(_) if rootfs.is_dir() => {}
            Err(e) => return Err(err("rename", &dest, e)),
        }
        fsutil::fsync_dir(&dir).map_err(|e| err("sync", &dir, e))?;
        Ok(rootfs)
    }
}

/// Copy the tree `src` to the new directory `dst`, keeping modes, symlinks
/// (as text, never followed), hard links and device nodes. Owners are kept,
/// or moved by `shift`; every name is reached with `O_NOFOLLOW` from a
/// directory fd, so no symlink leads the copy out of either tree.
///
/// Unshifted, the copy keeps file capabilities; shifted, it drops them, so a
/// shifted copy never grants more than the image. An id outside
/// the map becomes the container's `nobody`, and its file loses setuid/setgid.
pub(crate) fn copy_tree(src: &Path, dst: &Path, shift: Option<&IdShift>) -> Result<(), CopyError> {
    let top = |source| CopyError::Io {
        path: PathBuf::new(),
        source,
    };
    let sfd = fsutil::open_dir_path(src).map_err(top)?;
    let st = fsutil::fstat(sfd.as_raw_fd()).map_err(top)?;
    fs::DirBuilder::new()
        .mode(PRIVATE)
        .create(dst)
        .map_err(top)?;
    let dfd = fsutil::open_dir_path(dst).map_err(top)?;
    let mut c = Copier {
        shift,
        chown: shift.is_some() || fsutil::is_root(),
        links: HashMap::new(),
        dst_root: fsutil::dup(dfd.as_raw_fd()).map_err(top)?,
    };
    let mut rel = PathBuf::new();
    c.dir(sfd.as_raw_fd(), dfd.as_raw_fd(), &mut rel)?;
    let (uid, gid, mode) = c.attrs(&st, &rel)?;
    c.set_fd(dfd.as_raw_fd(), uid, gid, mode).map_err(top)
}

struct Copier<'a> {
    shift: Option<&'a IdShift>,
    /// Owners can be set (root); else the copy belongs to the caller.
    chown: bool,
    /// First copy of each multiply-linked file, by source (dev, ino).
    links: HashMap<(u64, u64), PathBuf>,
    dst_root: OwnedFd,
}

impl Copier<'_> {
    /// The copy's uid, gid and mode for a source entry.
    fn attrs(&self, st: &libc::stat, rel: &Path) -> Result<(u32, u32, u32), CopyError> {
        let mut mode = st.st_mode & 0o7777;
        let Some(shift) = self.shift else {
            return Ok((st.st_uid, st.st_gid, mode));
        };
        let one = |maps: &[IdMap], id, kind, bit| match shift_id(maps, id) {
            Shifted::Mapped(h) => Ok((h, 0)),
            Shifted::Overflow(h) => Ok((h, bit)),
            Shifted::Unmapped => Err(CopyError::Unmapped {
                path: rel.to_owned(),
                kind,
                id,
            }),
        };
        let (uid, clear_u) = one(&shift.uid, st.st_uid, "uid", libc::S_ISUID)?;
        let (gid, clear_g) = one(&shift.gid, st.st_gid, "gid", libc::S_ISGID)?;
        // Setuid to someone else's id must not become setuid to `nobody`.
        mode &= !(clear_u | clear_g);
        Ok((uid, gid, mode))
    }

    /// Owner first, then mode: chown clears setuid/setgid, so the mode is
    /// applied after it.
    fn set_fd(&self, fd: RawFd, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
        if self.chown {
            // SAFETY: plain syscall on a valid fd.
            if unsafe { libc::fchown(fd, uid, gid) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: plain syscall on a valid fd.
        if unsafe { libc::fchmod(fd, mode as libc::mode_t) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn dir(&mut self, s: RawFd, d: RawFd, rel: &mut PathBuf) -> Result<(), CopyError> {
        let names = fsutil::list_dir(s).map_err(|source| CopyError::Io {
            path: rel.clone(),
            source,
        })?;
        for name in names {
            rel.push(&name);
            let r = fsutil::cstr(&name)
                .map_err(|source| CopyError::Io {
                    path: rel.clone(),
                    source,
                })
                .and_then(|c| self.entry(s, d, &c, rel));
            rel.pop();
            r?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        s: RawFd,
        d: RawFd,
        name: &CStr,
        rel: &mut PathBuf,
    ) -> Result<(), CopyError> {
        let io = |rel: &Path| {
            let path = rel.to_owned();
            move |source| CopyError::Io { path, source }
        };
        let Some(st) = fsutil::lstat_at(s, name).map_err(io(rel))? else {
            return Ok(());
        };
        let (uid, gid, mode) = self.attrs(&st, rel)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                fsutil::mkdir_at(d, name, PRIVATE).map_err(io(rel))?;
                let sub_s = fsutil::open_subdir(s, name).map_err(io(rel))?;
                let sub_d = fsutil::open_subdir(d, name).map_err(io(rel))?;
                self.dir(sub_s.as_raw_fd(), sub_d.as_raw_fd(), rel)?;
                // Modes last: a read-only directory must still take its children.
                self.set_fd(sub_d.as_raw_fd(), uid, gid, mode)
                    .map_err(io(rel))
            }
            libc::S_IFLNK => {
                let target = fsutil::readlink_at(s, name).map_err(io(rel))?;
                fsutil::symlink_at(&target, d, name).map_err(io(rel))?;
                if self.chown {
                    fsutil::lchown_at(d, name, uid, gid).map_err(io(rel))?;
                }
                Ok(())
            }
            libc::S_IFREG => {
                // dev_t and ino_t are u32 on some 32-bit targets.
                #[allow(clippy::useless_conversion)]
                let key = (u64::from(st.st_dev), u64::from(st.st_ino));
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        return self.link(first, d, name).map_err(io(rel));
                    }
                }
                let from = fsutil::open_read(s, name).map_err(io(rel))?;
                let to = fsutil::create_file(d, name).map_err(io(rel))?;
                let (mut from, mut to) = (fs::File::from(from), fs::File::from(to));
                io::copy(&mut from, &mut to).map_err(io(rel))?;
                self.set_fd(to.as_raw_fd(), uid, gid, mode)
                    .map_err(io(rel))?;
                if self.shift.is_none() {
                    copy_caps(from.as_raw_fd(), to.as_raw_fd());
                }
                if st.st_nlink > 1 {
                    self.links.insert(key, rel.clone());
                }
                Ok(())
            }
            _ => {
                // Device nodes, fifos, sockets: made anew, with the shifted owner.
                match fsutil::mknod_at(d, name, st.st_mode, st.st_rdev) {
                    // Without the privilege to make devices, the copy has none
                    // (as the extraction skips them).
                    Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Ok(()),
                    r => r.map_err(io(rel))?,
                }
                if self.chown {
                    fsutil::lchown_at(d, name, uid, gid).map_err(io(rel))?;
                }
                // SAFETY: valid fd and NUL-terminated name of the node just made.
                if unsafe { libc::fchmodat(d, name.as_ptr(), mode as libc::mode_t, 0) } < 0 {
                    return Err(io(rel)(io::Error::last_os_error()));
                }
                Ok(())
            }
        }
    }

    /// Link `name` in `d` to the earlier copy at `first` (relative to the root).
    fn link(&self, first: &Path, d: RawFd, name: &CStr) -> io::Result<()> {
        let parent: Vec<_> = first
            .parent()
            .map(|p| p.iter().collect())
            .unwrap_or_default();
        let pfd = fsutil::walk(self.dst_root.as_raw_fd(), &parent, None)?;
        let fname = first
            .file_name()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        fsutil::link_at(pfd.as_raw_fd(), &fsutil::cstr(fname)?, d, name)
    }
}

/// Copy the `security.capability` xattr (file capabilities), if any. Best
/// effort: without CAP_SETFCAP the copy simply has none, as `cp -a` does.
fn copy_caps(src: RawFd, dst: RawFd) {
    let key = b"security.capability\0";
    let mut buf = [0u8; 64];
    // SAFETY: valid fd, NUL-terminated key, writable buffer of the given length.
    let n =
        unsafe { libc::fgetxattr(src, key.as_ptr().cast(), buf.as_mut_ptr().cast(), buf.len()) };
    let Ok(n) = usize::try_from(n) else { return };
    // SAFETY: as above; `n` bytes of `buf` were filled.
    unsafe { libc::fsetxattr(dst, key.as_ptr().cast(), buf.as_ptr().cast(), n, 0) };
}

/// Give `upper` (the root of an overlay's upper layer) the owner and mode of
/// `lower`'s root: the merged root takes its attributes from the upper dir,
/// and in a user namespace it must belong to the mapped root. Writes only
/// what differs (flash).
pub(crate) fn match_root(lower: &Path, upper: &Path) -> io::Result<()> {
    use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
    let (l, u) = (fs::metadata(lower)?, fs::metadata(upper)?);
    if (l.uid(), l.gid()) != (u.uid(), u.gid()) {
        chown(upper, Some(l.uid()), Some(l.gid()))?;
    }
    if l.mode() & 0o7777 != u.mode() & 0o7777 {
        fs::set_permissions(upper, fs::Permissions::from_mode(l.mode() & 0o7777))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "shift_tests.rs"]
mod tests;
