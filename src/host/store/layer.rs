//! A container's writable layer over its shared read-only image. `plan_layer`
//! (host side, before the container starts) decides how the root filesystem is
//! built and prepares the directories; `mount_layer` (runtime, inside the
//! container's private mount namespace) performs the mounts it describes.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::ops::{private_dir, PRIVATE, TRAVERSE};
use super::shift::{copy_tree, match_root, IdShift};
use super::{fsutil, ImageInfo, RootfsStore, StoreError};
use crate::model::IdMaps;

/// statfs magic of overlayfs: an overlay upper dir cannot live on it
/// (OpenWrt's / is overlayfs; the kernel refuses the mount with EINVAL).
const OVERLAYFS_MAGIC: i64 = 0x794c_7630;
/// vfat/msdos: no xattrs, no d_type guarantees, unusable as an upper dir.
const MSDOS_MAGIC: i64 = 0x4d44;

/// How a container's root filesystem is assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerPlan {
    /// overlayfs: the image rootfs below, upper/work in the container dir.
    Overlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
    },
    /// `volatile`: a tmpfs of `size` bytes at `tmpfs`, holding upper/work,
    /// over the image: what the container writes counts against `size`.
    TmpfsOverlay {
        lower: PathBuf,
        tmpfs: PathBuf,
        size: u64,
    },
    /// No overlayfs possible: a private copy, bind-mounted as the root.
    Copy { rootfs: PathBuf },
}

/// Whether overlayfs can be used for a container dir on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlaySupport {
    /// The kernel lists overlay in /proc/filesystems.
    pub kernel: bool,
    /// The store's filesystem can hold an upper dir.
    pub upper_ok: bool,
}

/// Detect overlay support for upper dirs under `dir`.
pub fn detect_overlay(proc_filesystems: &Path, dir: &Path) -> OverlaySupport {
    let kernel = fs::read_to_string(proc_filesystems).is_ok_and(|t| {
        t.lines()
            .any(|l| l.split_whitespace().last() == Some("overlay"))
    });
    let upper_ok = match statfs_magic(dir) {
        Ok(m) => m != OVERLAYFS_MAGIC && m != MSDOS_MAGIC,
        Err(_) => false,
    };
    OverlaySupport { kernel, upper_ok }
}

fn statfs_magic(dir: &Path) -> io::Result<i64> {
    let c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a zeroed statfs is a valid value for this plain C struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: NUL-terminated path and a writable struct.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // f_type is i64 (glibc) or u64 (musl) on 64-bit targets, i32/u32 on 32-bit
    // ones (ARM, MIPS); every filesystem magic fits an i64.
    #[allow(clippy::useless_conversion)]
    Ok(i64::try_from(st.f_type).unwrap_or(-1))
}

/// Choose the layer kind (pure: testable for every host).
pub fn choose(support: OverlaySupport, volatile: bool) -> &'static str {
    match (support.kernel, support.upper_ok, volatile) {
        (true, _, true) => "tmpfs-overlay",
        (true, true, false) => "overlay",
        _ => "copy",
    }
}

impl RootfsStore {
    /// Prepare `containers/<name>/` for `image` and say how to mount its root.
    /// Records the image digest for `image ls` and `gc`. A copy is made here
    /// (persistent); overlay dirs are created empty if missing. `volatile` is
    /// the tmpfs size of a volatile layer. The container dir is root's only
    /// (its merged root holds the image's setuid files), passable by others
    /// with `user_ns`: the container reaches its root as its own host id.
    /// With `user_ns`, the lower layer is the image shifted by that map
    /// (made here on first use, shared by every container with the map), and
    /// a copy is shifted as it is made: root inside owns its root.
    pub fn plan_layer(
        &self,
        name: &str,
        image: &ImageInfo,
        volatile: Option<u64>,
        user_ns: Option<&IdMaps>,
        support: OverlaySupport,
    ) -> Result<LayerPlan, StoreError> {
        // The name becomes a path component: refuse anything that is not one.
        let single = Path::new(name).components().count() == 1
            && matches!(
                Path::new(name).components().next(),
                Some(std::path::Component::Normal(_))
            );
        if !single {
            return Err(StoreError::Layer {
                container: name.to_owned(),
                op: "use container name as a directory",
                path: PathBuf::from(name),
                source: io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let cdir = self.containers_dir().join(name);
        let err = |op, path: &Path, source| StoreError::Layer {
            container: name.to_owned(),
            op,
            path: path.to_owned(),
            source,
        };
        let shift = user_ns.map(IdShift::new);
        let mode = if shift.is_some() { TRAVERSE } else { PRIVATE };
        private_dir(&cdir, mode).map_err(|e| err("create", &cdir, e))?;
        let rec = cdir.join("image");
        // Every start plans the layer again: write only what changed (flash).
        if fs::read(&rec).ok().as_deref() != Some(image.digest.as_bytes()) {
            fs::write(&rec, &image.digest).map_err(|e| err("write", &rec, e))?;
        }
        let kind = choose(support, volatile.is_some());
        let lower = match &shift {
            Some(s) if kind != "copy" => self.shifted_rootfs(name, image, s)?,
            _ => image.rootfs.clone(),
        };
        let plan = match (kind, volatile) {
            ("tmpfs-overlay", Some(size)) => LayerPlan::TmpfsOverlay {
                lower,
                tmpfs: cdir.join("volatile"),
                size,
            },
            ("overlay", _) => LayerPlan::Overlay {
                lower,
                upper: cdir.join("upper"),
                work: cdir.join("work"),
            },
            _ => LayerPlan::Copy {
                rootfs: cdir.join("rootfs"),
            },
        };
        match &plan {
            LayerPlan::Overlay { lower, upper, work } => {
                for d in [upper, work] {
                    fs::create_dir_all(d).map_err(|e| err("create", d, e))?;
                }
                match_root(lower, upper).map_err(|e| err("chown", upper, e))?;
            }
            LayerPlan::TmpfsOverlay { tmpfs, .. } => {
                fs::create_dir_all(tmpfs).map_err(|e| err("create", tmpfs, e))?
            }
            LayerPlan::Copy { rootfs } if !rootfs.exists() => {
                let tmp = cdir.join("rootfs.tmp");
                let _ = fsutil::remove_tree(&tmp);
                copy_tree(&image.rootfs, &tmp, shift.as_ref())
                    .map_err(|e| e.into_store(name, "copy", &image.rootfs))?;
                fs::rename(&tmp, rootfs).map_err(|e| err("rename", rootfs, e))?;
            }
            LayerPlan::Copy { .. } => {}
        }
        Ok(plan)
    }
}

/// Mount the container root described by `plan` at `target` (an existing
/// directory). berth mounts it on the host, under the container's directory,
/// and hands the result to the runtime as the root. A failure leaves nothing
/// mounted.
pub fn mount_layer(container: &str, plan: &LayerPlan, target: &Path) -> Result<(), StoreError> {
    let err = |op, path: &Path, source| StoreError::Layer {
        container: container.to_owned(),
        op,
        path: path.to_owned(),
        source,
    };
    let overlay = |lower: &Path, upper: &Path, work: &Path| {
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        mount(Some("overlay"), target, Some("overlay"), 0, Some(&data))
            .map_err(|e| err("mount overlay", target, e))
    };
    match plan {
        LayerPlan::Overlay { lower, upper, work } => overlay(lower, upper, work),
        LayerPlan::TmpfsOverlay { lower, tmpfs, size } => {
            // Owned by the lower root's owner: the mapped root of a
            // user-namespaced container, whose lower is shifted.
            let owner = fs::metadata(lower).map_err(|e| err("stat", lower, e))?;
            let data = format!(
                "mode=0700,uid={},gid={},size={size}",
                owner.uid(),
                owner.gid()
            );
            mount(Some("tmpfs"), tmpfs, Some("tmpfs"), 0, Some(&data))
                .map_err(|e| err("mount tmpfs", tmpfs, e))?;
            let (upper, work) = (tmpfs.join("upper"), tmpfs.join("work"));
            let made = [&upper, &work]
                .into_iter()
                .try_for_each(|d| fs::create_dir_all(d).map_err(|e| err("create", d, e)))
                .and_then(|()| match_root(lower, &upper).map_err(|e| err("chown", &upper, e)))
                .and_then(|()| overlay(lower, &upper, &work));
            if made.is_err() {
                // Nothing of the container may stay mounted.
                let _ = umount(tmpfs);
            }
            made
        }
        LayerPlan::Copy { rootfs } => mount(
            Some(&rootfs.display().to_string()),
            target,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(|e| err("bind mount", target, e)),
    }
}

fn mount(
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let c = |s: &str| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
    let src = src.map(c).transpose()?;
    let fstype = fstype.map(c).transpose()?;
    let data = data.map(c).transpose()?;
    let target = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let p = |o: &Option<CString>| o.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is NUL-terminated or null, valid during the call.
    let r = unsafe { libc::mount(p(&src), target.as_ptr(), p(&fstype), flags, p(&data).cast()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Unmount `dir`. No lazy detach: a root still in use must not be deleted
/// from under it, so EBUSY comes back to the caller.
pub fn umount(dir: &Path) -> io::Result<()> {
    let c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a NUL-terminated path; no other memory is passed.
    if unsafe { libc::umount2(c.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
