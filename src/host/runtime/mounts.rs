//! The container's filesystem view, as a plan: a list of `MountOp` built in the
//! parent (pure, table-tested), which `mount_calls` replays in the child's new
//! mount namespace:
//! rootfs bind, /proc, /sys, a minimal /dev, the manifest's mounts, pivot_root,
//! then masked and read-only /proc paths.
//!
//! Before pivot_root, a path without a leading `/` is inside the rootfs: the
//! child resolves it when it runs the op, below a fd of the rootfs
//! (`inroot`), and mounts on `/proc/self/fd/N` of what it opened, so a symlink
//! the image or the container planted never leads a mount or a mkdir out of
//! the rootfs, and nothing can be swapped in between the check and the use.
//! An absolute path is a host path berth chose (a volume's directory).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::model::{MountKind, MountSpec};

/// One step of the mount plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// mount(2). `source`/`fstype`/`data` may be empty.
    Mount {
        source: CString,
        target: CString,
        fstype: CString,
        flags: libc::c_ulong,
        data: CString,
        optional: bool,
    },
    /// Remount a bind read-only, keeping the flags the kernel locks in a user
    /// namespace. `may_be_absent`: a /proc path some kernels lack; only its
    /// absence (ENOENT) is skipped, any other failure is an error.
    RemountRo {
        target: CString,
        flags: libc::c_ulong,
        may_be_absent: bool,
    },
    /// Create a directory and its parents.
    Mkdir { path: CString },
    /// Create an empty file (a bind target for a device node).
    Touch { path: CString },
    /// Create a symlink `link` -> `to`; an existing one is fine.
    Symlink { to: CString, link: CString },
    /// Hide a path: /dev/null over a file, an empty read-only tmpfs over a directory.
    Mask { path: CString },
}

/// Inputs of the plan besides the mounts from the manifest.
#[derive(Debug, Clone)]
pub struct Layout<'a> {
    pub volumes_dir: &'a Path,
    pub user_ns: bool,
    pub new_net: bool,
    /// What /sys/fs/cgroup shows.
    pub cgroup: CgroupView,
    /// The console (a pty the monitor logs, by its host path) to bind on
    /// /dev/console: full-OS inits write their boot messages there.
    pub console: Option<&'a Path>,
}

/// The container's /sys/fs/cgroup. Every view is a mount made in the
/// container's cgroup namespace, so it shows only its own subtree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupView {
    /// The empty directory sysfs has (no cgroup namespace, or no cgroup2).
    Empty,
    /// cgroup2; `writable` for a full-OS init, rooted at its payload leaf.
    Unified { writable: bool },
    /// A tmpfs with the `name=systemd` hierarchy at `systemd/`, read-write,
    /// for a full-OS systemd on a host without cgroup2.
    NamedSystemd,
}

/// Paths Docker hides (bind of /dev/null or an empty tmpfs).
pub const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only, and whether a kernel may lack them
/// (`/proc/sysrq-trigger` needs CONFIG_MAGIC_SYSRQ, `/proc/irq` generic IRQ
/// code); `/proc/sys` is always there and must end up read-only.
pub const READONLY: &[(&str, bool)] = &[
    ("/proc/bus", true),
    ("/proc/fs", true),
    ("/proc/irq", true),
    ("/proc/sys", false),
    ("/proc/sysrq-trigger", true),
];

const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Errors of planning mounts (before any syscall).
#[derive(Debug, thiserror::Error)]
pub enum MountPlanError {
    /// A relative target or one with `..`.
    #[error("mount target `{target}` must be an absolute path without `..`")]
    BadTarget { target: String },
    /// A path that cannot be passed to the kernel.
    #[error("mount path `{}` contains a NUL byte", path.display())]
    Nul { path: PathBuf },
    /// A volume name with a slash, or `.`/`..`.
    #[error("volume name `{name}` is not a plain name")]
    BadVolume { name: String },
}

fn c(path: &Path) -> Result<CString, MountPlanError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| MountPlanError::Nul {
        path: path.to_path_buf(),
    })
}

pub(super) fn cs(s: &str) -> CString {
    // Literals below have no NUL byte; an empty string is the fallback.
    CString::new(s).unwrap_or_default()
}

/// An absolute in-container path as a rootfs-relative one (no leading `/`),
/// refusing `..`. Symlinks are left to the child's in-root resolution.
pub fn in_root(target: &str) -> Result<PathBuf, MountPlanError> {
    let rel = Path::new(target);
    if !rel.is_absolute() {
        return Err(MountPlanError::BadTarget {
            target: target.into(),
        });
    }
    let mut out = PathBuf::new();
    for comp in rel.components() {
        match comp {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            _ => {
                return Err(MountPlanError::BadTarget {
                    target: target.into(),
                })
            }
        }
    }
    Ok(out)
}

/// Everything mounted before pivot_root (after [`bind_root`]), with paths
/// relative to the rootfs.
pub fn plan_before_pivot(
    layout: &Layout<'_>,
    mounts: &[MountSpec],
) -> Result<Vec<MountOp>, MountPlanError> {
    let root = Path::new("");
    let nsd = libc::MS_NOSUID | libc::MS_NODEV;
    let mut ops = Vec::new();
    let proc_dir = root.join("proc");
    ops.push(MountOp::Mkdir {
        path: c(&proc_dir)?,
    });
    ops.push(fs_mount(
        "proc",
        &proc_dir,
        nsd | libc::MS_NOEXEC,
        "",
        false,
    )?);
    let sys_dir = root.join("sys");
    ops.push(MountOp::Mkdir { path: c(&sys_dir)? });
    if layout.new_net || !layout.user_ns {
        ops.push(fs_mount(
            "sysfs",
            &sys_dir,
            nsd | libc::MS_NOEXEC | libc::MS_RDONLY,
            "",
            false,
        )?);
    } else {
        // sysfs needs a network namespace owned by our user namespace; with the
        // host network a read-only bind of the host's /sys is what is possible.
        ops.push(MountOp::Mount {
            source: cs("/sys"),
            target: c(&sys_dir)?,
            fstype: CString::default(),
            flags: libc::MS_BIND | libc::MS_REC,
            data: CString::default(),
            optional: false,
        });
        ops.push(MountOp::RemountRo {
            target: c(&sys_dir)?,
            flags: nsd | libc::MS_NOEXEC,
            may_be_absent: false,
        });
    }
    // sysfs provides the empty /sys/fs/cgroup directory to mount on.
    let cgroup_dir = sys_dir.join("fs/cgroup");
    match layout.cgroup {
        CgroupView::Empty => {}
        CgroupView::Unified { writable } => {
            let ro = if writable { 0 } else { libc::MS_RDONLY };
            ops.push(fs_mount(
                "cgroup2",
                &cgroup_dir,
                nsd | libc::MS_NOEXEC | ro,
                "",
                !writable,
            )?);
        }
        CgroupView::NamedSystemd => {
            // systemd's legacy layout: a tmpfs, read-only once the one
            // hierarchy it manages is mounted in it.
            ops.push(fs_mount(
                "tmpfs",
                &cgroup_dir,
                nsd | libc::MS_NOEXEC,
                "mode=755,size=64k",
                false,
            )?);
            let named = cgroup_dir.join("systemd");
            ops.push(MountOp::Mkdir { path: c(&named)? });
            ops.push(fs_mount(
                "cgroup",
                &named,
                nsd | libc::MS_NOEXEC,
                "none,name=systemd",
                false,
            )?);
            ops.push(MountOp::RemountRo {
                target: c(&cgroup_dir)?,
                flags: nsd | libc::MS_NOEXEC,
                may_be_absent: false,
            });
        }
    }
    let dev = root.join("dev");
    ops.push(MountOp::Mkdir { path: c(&dev)? });
    ops.push(fs_mount(
        "tmpfs",
        &dev,
        libc::MS_NOSUID | libc::MS_STRICTATIME,
        "mode=755,size=65536k",
        false,
    )?);
    // Bind the host's nodes: mknod is not allowed in a user namespace, a bind is.
    for name in DEVICES {
        ops.extend(bind_node(&Path::new("/dev").join(name), &dev.join(name))?);
    }
    let pts = dev.join("pts");
    ops.push(MountOp::Mkdir { path: c(&pts)? });
    // gid=5 (tty) only exists for sure outside a user namespace.
    let pts_data = if layout.user_ns {
        "newinstance,ptmxmode=0666,mode=0620"
    } else {
        "newinstance,ptmxmode=0666,mode=0620,gid=5"
    };
    ops.push(fs_mount(
        "devpts",
        &pts,
        libc::MS_NOSUID | libc::MS_NOEXEC,
        pts_data,
        false,
    )?);
    ops.push(MountOp::Symlink {
        to: cs("pts/ptmx"),
        link: c(&dev.join("ptmx"))?,
    });
    let shm = dev.join("shm");
    ops.push(MountOp::Mkdir { path: c(&shm)? });
    ops.push(MountOp::Mount {
        source: cs("shm"),
        target: c(&shm)?,
        fstype: cs("tmpfs"),
        flags: nsd | libc::MS_NOEXEC,
        data: cs("mode=1777,size=65536k"),
        optional: false,
    });
    let mq = dev.join("mqueue");
    ops.push(MountOp::Mkdir { path: c(&mq)? });
    // mqueue may be compiled out of a router kernel.
    ops.push(fs_mount("mqueue", &mq, nsd | libc::MS_NOEXEC, "", true)?);
    if let Some(pty) = layout.console {
        // A host path (the child's copy of the host's /dev/pts): a bind of
        // the fd itself would name a mount of the host's namespace (EINVAL).
        ops.extend(bind_node(pty, &dev.join("console"))?);
        // procd and busybox init log to /dev/kmsg: into the console with the
        // rest, as LXC's kmsg link did, not into the host's kernel log.
        ops.push(MountOp::Symlink {
            to: cs("console"),
            link: c(&dev.join("kmsg"))?,
        });
    }
    for (to, link) in [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ] {
        ops.push(MountOp::Symlink {
            to: cs(to),
            link: c(&dev.join(link))?,
        });
    }
    for m in mounts {
        let target = in_root(&m.target)?;
        match &m.kind {
            MountKind::Bind { source } => {
                let src = Path::new(source);
                if src.is_dir() {
                    ops.push(MountOp::Mkdir { path: c(&target)? });
                } else {
                    ops.push(MountOp::Touch { path: c(&target)? });
                }
                ops.push(bind(src, &target)?);
            }
            MountKind::Volume { name } => {
                if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                    return Err(MountPlanError::BadVolume { name: name.clone() });
                }
                // A host path: created by the child, 0700 so that no host user
                // reaches what a container keeps there.
                ops.push(MountOp::Mkdir {
                    path: c(&layout.volumes_dir.join(name))?,
                });
                ops.push(MountOp::Mkdir { path: c(&target)? });
                ops.push(bind(&layout.volumes_dir.join(name), &target)?);
            }
            MountKind::Tmpfs { size, mode } => {
                let mut data = format!("mode={:o}", mode.unwrap_or(0o1777));
                if let Some(size) = size {
                    data.push_str(&format!(",size={size}"));
                }
                ops.push(MountOp::Mkdir { path: c(&target)? });
                let flags = nsd | if m.readonly { libc::MS_RDONLY } else { 0 };
                ops.push(MountOp::Mount {
                    source: cs("tmpfs"),
                    target: c(&target)?,
                    fstype: cs("tmpfs"),
                    flags,
                    data: cs(&data),
                    optional: false,
                });
                continue;
            }
        }
        if m.readonly {
            ops.push(MountOp::RemountRo {
                target: c(&target)?,
                flags: 0,
                may_be_absent: false,
            });
        }
    }
    Ok(ops)
}

/// A filesystem mount (not a bind) whose source is its type: proc, sysfs,
/// tmpfs, devpts, mqueue, cgroup2, cgroup.
fn fs_mount(
    fstype: &str,
    target: &Path,
    flags: libc::c_ulong,
    data: &str,
    optional: bool,
) -> Result<MountOp, MountPlanError> {
    Ok(MountOp::Mount {
        source: cs(fstype),
        target: c(target)?,
        fstype: cs(fstype),
        flags,
        data: cs(data),
        optional,
    })
}

/// A host device node bound on a file made for it below /dev.
fn bind_node(src: &Path, target: &Path) -> Result<[MountOp; 2], MountPlanError> {
    Ok([
        MountOp::Touch { path: c(target)? },
        MountOp::Mount {
            source: c(src)?,
            target: c(target)?,
            fstype: CString::default(),
            flags: libc::MS_BIND,
            data: CString::default(),
            optional: false,
        },
    ])
}

fn bind(src: &Path, target: &Path) -> Result<MountOp, MountPlanError> {
    Ok(MountOp::Mount {
        source: c(src)?,
        target: c(target)?,
        fstype: CString::default(),
        flags: libc::MS_BIND | libc::MS_REC,
        data: CString::default(),
        optional: false,
    })
}

/// Masks and read-only paths, applied after pivot_root (container paths).
pub fn plan_after_pivot(readonly_root: bool) -> Vec<MountOp> {
    let mut ops = Vec::new();
    for p in MASKED {
        ops.push(MountOp::Mask { path: cs(p) });
    }
    for (p, may_be_absent) in READONLY {
        let target = cs(p);
        ops.push(MountOp::Mount {
            source: target.clone(),
            target: target.clone(),
            fstype: CString::default(),
            flags: libc::MS_BIND | libc::MS_REC,
            data: CString::default(),
            optional: true,
        });
        ops.push(MountOp::RemountRo {
            target,
            flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            may_be_absent: *may_be_absent,
        });
    }
    if readonly_root {
        ops.push(MountOp::RemountRo {
            target: cs("/"),
            flags: 0,
            may_be_absent: false,
        });
    }
    ops
}

/// Whether a failed read-only remount may be passed over: only the absence
/// (ENOENT) of a path this kernel may lack. Anything else leaves writable what
/// the manifest or the defaults make read-only: EINVAL (not a mount point,
/// its bind was skipped), EPERM (a flag locked in a user namespace), ENOENT
/// of a path that must exist.
pub fn remount_skippable(err: &io::Error, may_be_absent: bool) -> bool {
    may_be_absent && err.raw_os_error() == Some(libc::ENOENT)
}

/// A path of an op as the container sees it.
fn shown(path: &CString) -> String {
    let text = path.to_string_lossy();
    if text.starts_with('/') {
        text.into_owned()
    } else {
        format!("/{text}")
    }
}

/// Short text of an op for error messages.
pub fn describe(op: &MountOp) -> String {
    match op {
        MountOp::Mount { target, fstype, .. } => format!(
            "mount `{}` on `{}`",
            fstype.to_string_lossy(),
            shown(target)
        ),
        MountOp::RemountRo { target, .. } => {
            format!("remount `{}` read-only", shown(target))
        }
        MountOp::Mkdir { path } => format!("create directory `{}`", shown(path)),
        MountOp::Touch { path } => format!("create file `{}`", shown(path)),
        MountOp::Symlink { link, .. } => format!("create symlink `{}`", shown(link)),
        MountOp::Mask { path } => format!("mask `{}`", shown(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout<'static> {
        Layout {
            volumes_dir: Path::new("/vol"),
            user_ns: false,
            new_net: true,
            cgroup: CgroupView::Empty,
            console: None,
        }
    }

    #[test]
    fn targets_are_relative_to_the_root_without_dotdot() {
        assert_eq!(in_root("/etc/x").unwrap(), Path::new("etc/x"));
        assert!(matches!(
            in_root("/../x"),
            Err(MountPlanError::BadTarget { .. })
        ));
        assert!(matches!(
            in_root("rel"),
            Err(MountPlanError::BadTarget { .. })
        ));
    }

    /// Every path below the rootfs is relative (resolved in the root by the
    /// child); the only absolute ones are host paths berth chose.
    #[test]
    fn plan_paths_below_the_root_are_relative() {
        let mounts = vec![MountSpec {
            kind: MountKind::Volume {
                name: "data".into(),
            },
            target: "/data".into(),
            readonly: false,
        }];
        for op in plan_before_pivot(&layout(), &mounts).unwrap() {
            let target = match &op {
                MountOp::Mount { target, .. } | MountOp::RemountRo { target, .. } => target,
                MountOp::Mkdir { path } | MountOp::Touch { path } | MountOp::Mask { path } => path,
                MountOp::Symlink { link, .. } => link,
            };
            let t = target.to_str().unwrap();
            assert!(!t.starts_with('/') || t == "/vol/data", "{op:?}");
        }
    }

    #[test]
    fn plan_has_proc_dev_and_manifest_mounts() {
        let mounts = vec![
            MountSpec {
                kind: MountKind::Tmpfs {
                    size: Some(4096),
                    mode: None,
                },
                target: "/tmp".into(),
                readonly: false,
            },
            MountSpec {
                kind: MountKind::Volume {
                    name: "data".into(),
                },
                target: "/data".into(),
                readonly: true,
            },
        ];
        let ops = plan_before_pivot(&layout(), &mounts).unwrap();
        let text: Vec<String> = ops.iter().map(describe).collect();
        assert!(
            text.iter().any(|t| t.starts_with("mount `proc`")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("mount `devpts`")));
        assert!(ops.iter().any(|o| matches!(o, MountOp::Mount { data, .. } if data.to_str().unwrap() == "mode=1777,size=4096")));
        let last = ops.last().unwrap();
        assert!(
            matches!(last, MountOp::RemountRo { target, .. } if target.to_str().unwrap() == "data")
        );
        let bad = vec![MountSpec {
            kind: MountKind::Volume {
                name: "../x".into(),
            },
            target: "/d".into(),
            readonly: false,
        }];
        assert!(matches!(
            plan_before_pivot(&layout(), &bad),
            Err(MountPlanError::BadVolume { .. })
        ));
    }

    #[test]
    fn only_an_absent_optional_proc_path_skips_its_read_only_remount() {
        let err = |n| io::Error::from_raw_os_error(n);
        assert!(remount_skippable(&err(libc::ENOENT), true));
        for n in [libc::EINVAL, libc::EPERM, libc::EACCES, libc::EBUSY] {
            assert!(!remount_skippable(&err(n), true), "errno {n}");
        }
        for n in [libc::ENOENT, libc::EINVAL, libc::EPERM] {
            assert!(!remount_skippable(&err(n), false), "errno {n}");
        }
        // Which remounts of a plan may be skipped at all: the optional /proc
        // paths, never /proc/sys, /sys, the rootfs or a manifest mount.
        let mut l = layout();
        l.user_ns = true;
        l.new_net = false;
        let ro_bind = MountSpec {
            kind: MountKind::Bind {
                source: "/etc".into(),
            },
            target: "/host-etc".into(),
            readonly: true,
        };
        let mut ops = plan_before_pivot(&l, &[ro_bind]).unwrap();
        ops.extend(plan_after_pivot(true));
        let mut optional = Vec::new();
        let mut required = Vec::new();
        for op in &ops {
            if let MountOp::RemountRo {
                target,
                may_be_absent,
                ..
            } = op
            {
                let t = target.to_str().unwrap().to_string();
                if *may_be_absent {
                    optional.push(t);
                } else {
                    required.push(t);
                }
            }
        }
        assert_eq!(
            optional,
            ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger"]
        );
        // Before pivot_root the targets are relative to the rootfs.
        assert_eq!(required, ["sys", "host-etc", "/proc/sys", "/"]);
    }

    #[test]
    fn userns_with_host_net_binds_sys() {
        let mut l = layout();
        l.user_ns = true;
        l.new_net = false;
        let ops = plan_before_pivot(&l, &[]).unwrap();
        assert!(!ops.iter().any(
            |o| matches!(o, MountOp::Mount { fstype, .. } if fstype.to_str().unwrap() == "sysfs")
        ));
        l.cgroup = CgroupView::Unified { writable: false };
        let ops = plan_before_pivot(&l, &[]).unwrap();
        assert!(ops
            .iter()
            .any(|o| matches!(o, MountOp::Mount { fstype, flags, .. }
            if fstype.to_str().unwrap() == "cgroup2" && flags & libc::MS_RDONLY != 0)));
        assert!(plan_after_pivot(true).iter().any(
            |o| matches!(o, MountOp::RemountRo { target, .. } if target.to_str().unwrap() == "/")
        ));
    }

    /// A full-OS container: its console on /dev/console, and the cgroup tree
    /// its init manages, read-write; the tmpfs of the legacy layout ends
    /// read-only with the one hierarchy in it.
    #[test]
    fn full_os_gets_console_and_its_cgroup_tree() {
        let target_of = |o: &MountOp| match o {
            MountOp::Mount { target, .. } | MountOp::RemountRo { target, .. } => {
                Some(target.to_str().unwrap().to_string())
            }
            _ => None,
        };
        let mut l = layout();
        l.console = Some(Path::new("/dev/pts/7"));
        l.cgroup = CgroupView::Unified { writable: true };
        let ops = plan_before_pivot(&l, &[]).unwrap();
        assert!(ops
            .iter()
            .any(|o| matches!(o, MountOp::Mount { source, target, flags, .. }
            if source.to_str().unwrap() == "/dev/pts/7"
                && target.to_str().unwrap() == "dev/console"
                && *flags == libc::MS_BIND)));
        assert!(ops.iter().any(
            |o| matches!(o, MountOp::Mount { fstype, flags, optional, .. }
            if fstype.to_str().unwrap() == "cgroup2" && flags & libc::MS_RDONLY == 0 && !optional)
        ));
        l.cgroup = CgroupView::NamedSystemd;
        let ops = plan_before_pivot(&l, &[]).unwrap();
        let cg: Vec<(String, &MountOp)> = ops
            .iter()
            .filter_map(|o| target_of(o).map(|t| (t, o)))
            .filter(|(t, _)| t.starts_with("sys/fs/cgroup"))
            .collect();
        assert_eq!(cg.len(), 3, "{cg:?}");
        assert!(
            matches!(cg[0].1, MountOp::Mount { fstype, .. } if fstype.to_str().unwrap() == "tmpfs")
        );
        assert!(matches!(cg[1].1, MountOp::Mount { data, target, .. }
            if data.to_str().unwrap() == "none,name=systemd"
                && target.to_str().unwrap() == "sys/fs/cgroup/systemd"));
        assert!(matches!(cg[2].1, MountOp::RemountRo { target, .. }
            if target.to_str().unwrap() == "sys/fs/cgroup"));
        assert!(ops.iter().any(|o| matches!(o, MountOp::Symlink { to, link }
            if to.to_str().unwrap() == "console" && link.to_str().unwrap() == "dev/kmsg")));
        // Not full-OS: no console bind.
        let ops = plan_before_pivot(&layout(), &[]).unwrap();
        assert!(!ops
            .iter()
            .any(|o| target_of(o).as_deref() == Some("dev/console")));
    }
}
