//! cgroups: the host side of a container's limits, accounting and control.
//!
//! [`Layout::detect`] reads /proc/self/mountinfo and /proc/self/cgroup once
//! and [`layout`] finds the layout in their text (unified, hybrid or legacy).
//! [`CgroupBackend`] then dispatches every operation to the v1 or v2 backend,
//! as youki's `AnyCgroupManager` does. Limits are translated by the pure
//! tables in [`translate`]; the device rule list is made in [`devices`] and
//! enforced by [`devices_v1`] and [`bpf`]. Every host path is a constructor
//! argument so both backends are tested against a fake tree in a temp dir.

pub mod bpf;
pub mod devices;
pub mod devices_v1;
mod fs;
pub mod layout;
pub mod stats;
pub mod translate;
pub mod v1;
pub mod v2;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::model::{DeviceRule, ResourceSpec};

pub use devices::{effective_device_rules, standard_devices};
pub use layout::{Layout, Mode, Mount, V1_CONTROLLERS};
pub use stats::CgroupStats;

pub(crate) use fs::{
    collect_pids, kill_pids, mkdir_all, parse_pids, read, read_opt, remove_tree, reset_payload,
    write, FREEZE_WAIT, REMOVE_WAIT,
};

/// Errors of the cgroup backends.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup file could not be read.
    #[error("read `{path}`")]
    Read { path: PathBuf, source: io::Error },
    /// A cgroup file refused a value.
    #[error("write `{value}` to `{path}`")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    /// A cgroup directory could not be made.
    #[error("create cgroup `{path}`")]
    Create { path: PathBuf, source: io::Error },
    /// A cgroup directory could not be removed (tasks still running after the retries).
    #[error("remove cgroup `{path}`")]
    Remove { path: PathBuf, source: io::Error },
    /// A full-OS container's payload leaf could not be given to its root.
    #[error("delegate `{path}` to the container's root")]
    Delegate { path: PathBuf, source: io::Error },
    /// No cgroup filesystem is mounted.
    #[error("find a mounted cgroup filesystem in `{path}`: none is mounted")]
    NotMounted { path: PathBuf },
    /// The manifest asks for something whose controller this host lacks.
    #[error("containers.{container}.{field} needs the {controller} controller; {hint}")]
    MissingController {
        container: String,
        field: String,
        controller: String,
        hint: String,
    },
    /// The controller is there but the kernel lacks the file (an optional feature).
    #[error("containers.{container}.{field} needs `{path}`, which this kernel lacks; {hint}")]
    MissingFile {
        container: String,
        field: String,
        path: PathBuf,
        hint: String,
    },
    /// An operation this kernel cannot do (e.g. pause without cgroup.freeze, before 5.2).
    #[error("{what} needs `{path}`, which this kernel lacks; {hint}")]
    Unsupported {
        what: &'static str,
        path: PathBuf,
        hint: &'static str,
    },
    /// A container name that is not a single path component.
    #[error("use `{name}` as a cgroup name: it must be one path component")]
    BadName { name: String },
    /// Freezing did not finish in time (a task stuck in uninterruptible sleep).
    #[error("freeze `{path}`: not frozen after {secs} s")]
    FreezeTimeout { path: PathBuf, secs: u64 },
    /// A signal could not be sent.
    #[error("kill pid {pid} in `{path}`")]
    Kill {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },
    /// The eBPF device filter could not be loaded or attached.
    #[error("{op} the device filter of `{path}`{log}")]
    Bpf {
        op: &'static str,
        path: PathBuf,
        log: String,
        source: io::Error,
    },
}

/// Result of the cgroup backends.
pub type Result<T, E = CgroupError> = std::result::Result<T, E>;

/// v2 controllers berth enables for its containers.
pub const V2_CONTROLLERS: [&str; 5] = ["cpu", "cpuset", "io", "memory", "pids"];

impl Layout {
    /// Read `<proc_root>/self/mountinfo` and `<proc_root>/self/cgroup`.
    pub fn detect(proc_root: &Path) -> Result<Layout> {
        let mi_path = proc_root.join("self/mountinfo");
        let mountinfo = read(&mi_path)?;
        let cgroup = read(&proc_root.join("self/cgroup"))?;
        Layout::parse(&mountinfo, &cgroup).ok_or(CgroupError::NotMounted { path: mi_path })
    }
}

/// Where containers' cgroups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParentPolicy {
    /// Pick for this host: delegated when berth runs in a procd instance
    /// (`/services/...`) or a systemd service (`*.service`) on v2, else `berth`
    /// at the top of each hierarchy.
    Auto,
    /// This path (relative to each hierarchy's root, e.g. `berth`).
    Fixed(String),
    /// This path below berth's own cgroup in each hierarchy (tests use this to
    /// stay inside the cgroup they were started in). Not for v2 when the own
    /// cgroup holds processes, which the no-internal-processes rule forbids.
    UnderOwn(String),
    /// v2 delegation: berth moves every process of its own cgroup into
    /// `<own>/supervisor` and puts containers under `<own>/containers`.
    Delegated,
}

/// The name of the leaf berth moves itself into on a delegated v2 cgroup.
pub const SUPERVISOR_LEAF: &str = "supervisor";
/// The containers' parent below a delegated v2 cgroup.
pub const CONTAINERS_DIR: &str = "containers";

/// The leaf below a full-OS container's cgroup that its init gets as the root
/// of its own tree: the limits berth writes on the container's cgroup stay
/// outside the container's view, so it cannot raise them.
pub const PAYLOAD_LEAF: &str = "payload";

/// Bounds of the cgroups a full-OS container may make in its tree, written on
/// the container's cgroup, above its view: without them root inside could
/// make cgroups without end, each costing kernel memory and a walk of
/// berth's at every stop. systemd makes a few dozen, up to 7 deep.
const TREE_BOUNDS: [(&str, &str); 2] = [
    ("cgroup.max.descendants", "1024"),
    ("cgroup.max.depth", "32"),
];

/// Write [`TREE_BOUNDS`] on cgroup `dir`; a kernel before 4.14 lacks the files.
fn bound_tree(dir: &Path) -> Result<()> {
    for (file, value) in TREE_BOUNDS {
        match write(&dir.join(file), value) {
            Err(CgroupError::Write { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// The cgroup tree a full-OS container's init (systemd) manages itself,
/// mounted read-write at /sys/fs/cgroup in its cgroup namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitTree {
    /// cgroup2: the host's own on v2; on hybrid, its controller-less cgroup2.
    Unified,
    /// The `name=systemd` v1 hierarchy under a tmpfs (legacy hosts).
    NamedSystemd,
}

/// Where a container's init goes: the `cgroup.procs` files the runtime writes
/// its pid into, and the tree it manages itself, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub procs: Vec<PathBuf>,
    pub tree: Option<InitTree>,
}

/// The cgroup backend, dispatching on the version the host uses.
#[derive(Debug)]
pub enum CgroupBackend {
    /// Legacy and hybrid hosts.
    V1(v1::V1Cgroups),
    /// Unified hosts.
    V2(v2::V2Cgroups),
}

fn join_rel(base: &str, rel: &str) -> String {
    let b = base.trim_end_matches('/');
    format!("{b}/{}", rel.trim_start_matches('/'))
}

impl CgroupBackend {
    /// Detect the layout from `<proc_root>/self/...` and open the backend.
    pub fn detect(proc_root: &Path, policy: &ParentPolicy) -> Result<Self> {
        Self::from_layout(&Layout::detect(proc_root)?, policy)
    }

    /// Open the backend for a detected layout.
    pub fn from_layout(layout: &Layout, policy: &ParentPolicy) -> Result<Self> {
        match (layout.mode, &layout.unified) {
            (Mode::Unified, Some(m)) => {
                let own = m.own.as_str();
                // A berth started from its own supervisor leaf (a monitor) keeps
                // using the delegated cgroup above that leaf.
                let own_base = own
                    .strip_suffix(&format!("/{SUPERVISOR_LEAF}"))
                    .unwrap_or(own);
                let delegated =
                    own_base.starts_with("/services/") || own_base.ends_with(".service");
                let (parent, supervisor) = match policy {
                    ParentPolicy::Auto if delegated => (
                        join_rel(own_base, CONTAINERS_DIR),
                        Some(own_base.to_string()),
                    ),
                    ParentPolicy::Delegated => (
                        join_rel(own_base, CONTAINERS_DIR),
                        Some(own_base.to_string()),
                    ),
                    ParentPolicy::Auto => ("/berth".to_string(), None),
                    ParentPolicy::Fixed(p) => (join_rel("/", p), None),
                    ParentPolicy::UnderOwn(p) => (join_rel(own, p), None),
                };
                Ok(CgroupBackend::V2(v2::V2Cgroups::new(
                    &m.path,
                    &parent,
                    supervisor.as_deref(),
                )))
            }
            _ => {
                // The containers' parent below one v1 hierarchy.
                let rel = |m: &Mount| match policy {
                    ParentPolicy::UnderOwn(p) => join_rel(&m.own, p),
                    ParentPolicy::Fixed(p) => join_rel("/", p),
                    ParentPolicy::Auto | ParentPolicy::Delegated => "/berth".to_string(),
                };
                let mut dirs = BTreeMap::new();
                for (ctrl, m) in &layout.v1 {
                    dirs.insert(ctrl.clone(), (m.path.clone(), rel(m)));
                }
                if dirs.is_empty() {
                    return Err(CgroupError::NotMounted {
                        path: PathBuf::from("/proc/self/mountinfo"),
                    });
                }
                // A full-OS container's own tree: cgroup2 where the host
                // mounts it (systemd's unified mode, without controllers on
                // hybrid), else the name=systemd hierarchy.
                let tree = match (&layout.unified, &layout.named_systemd) {
                    (Some(m), _) => Some((InitTree::Unified, m)),
                    (None, Some(m)) => Some((InitTree::NamedSystemd, m)),
                    (None, None) => None,
                };
                let tree = tree.map(|(kind, m)| (kind, m.path.clone(), rel(m)));
                Ok(CgroupBackend::V1(v1::V1Cgroups::new(dirs).with_tree(tree)))
            }
        }
    }

    /// Make the container's cgroup (and the berth parent) in every hierarchy.
    pub fn create(&self, name: &str) -> Result<()> {
        check_name(name)?;
        match self {
            Self::V1(b) => b.create(name),
            Self::V2(b) => b.create(name),
        }
    }

    /// Where the container's init goes. With `own_tree` (a full-OS container
    /// in its own cgroup namespace) this makes the payload leaf of the tree
    /// its init manages, when the host has one, and places the init there.
    pub fn placement(&self, name: &str, own_tree: bool) -> Result<Placement> {
        check_name(name)?;
        match self {
            Self::V1(b) => b.placement(name, own_tree),
            Self::V2(b) => b.placement(name, own_tree),
        }
    }

    /// Move `pid` (and its threads) into the container's cgroup.
    pub fn place(&self, name: &str, pid: i32) -> Result<()> {
        check_name(name)?;
        match self {
            Self::V1(b) => b.place(name, pid),
            Self::V2(b) => b.place(name, pid),
        }
    }

    /// Write the limits; live, the processes stay where they are.
    pub fn apply(&self, name: &str, r: &ResourceSpec) -> Result<()> {
        check_name(name)?;
        match self {
            Self::V1(b) => b.apply(name, r),
            Self::V2(b) => b.apply(name, r),
        }
    }

    /// Default deny plus the standard nodes plus `rules` (later rules win).
    pub fn set_devices(&self, name: &str, rules: &[DeviceRule]) -> Result<()> {
        check_name(name)?;
        let all = effective_device_rules(rules);
        match self {
            Self::V1(b) => b.set_devices(name, &all),
            Self::V2(b) => b.set_devices(name, &all),
        }
    }

    /// Stop every task of the container (`berth pause`).
    pub fn freeze(&self, name: &str) -> Result<()> {
        check_name(name)?;
        match self {
            Self::V1(b) => b.freeze(name),
            Self::V2(b) => b.freeze(name),
        }
    }

    /// Let the tasks run again (`berth resume`).
    pub fn thaw(&self, name: &str) -> Result<()> {
        check_name(name)?;
        match self {
            Self::V1(b) => b.thaw(name),
            Self::V2(b) => b.thaw(name),
        }
    }

    /// SIGKILL every process in the container's cgroup, forks included.
    pub fn kill_all(&self, name: &str) -> Result<()> {
        check_name(name)?;
        match self {
            Self::V1(b) => b.kill_all(name),
            Self::V2(b) => b.kill_all(name),
        }
    }

    /// The pids in the container's cgroup.
    pub fn pids(&self, name: &str) -> Result<Vec<i32>> {
        check_name(name)?;
        match self {
            Self::V1(b) => b.pids(name),
            Self::V2(b) => b.pids(name),
        }
    }

    /// Accounting: memory, CPU time, tasks, OOM kills.
    pub fn stats(&self, name: &str) -> Result<CgroupStats> {
        check_name(name)?;
        match self {
            Self::V1(b) => Ok(b.stats(name)),
            Self::V2(b) => Ok(b.stats(name)),
        }
    }

    /// Remove the container's cgroup, retrying while its tasks exit.
    pub fn remove(&self, name: &str) -> Result<()> {
        check_name(name)?;
        match self {
            Self::V1(b) => b.remove(name),
            Self::V2(b) => b.remove(name),
        }
    }

    /// Remove the berth parent cgroup if it is empty (tests, uninstall).
    pub fn remove_parent(&self) -> Result<()> {
        match self {
            Self::V1(b) => b.remove_parent(),
            Self::V2(b) => b.remove_parent(),
        }
    }

    /// The container's `cgroup.procs` files: one per v1 hierarchy, one on v2.
    /// The runtime writes the init's pid there before it runs.
    pub fn procs_files(&self, name: &str) -> Vec<PathBuf> {
        match self {
            Self::V1(b) => b.procs_files(name),
            Self::V2(b) => vec![b.parent().join(name).join("cgroup.procs")],
        }
    }

    /// The container's directory in `controller`'s hierarchy (v1), or its one
    /// directory (v2, where `controller` is ignored). `None` when not mounted.
    pub fn path(&self, controller: &str, name: &str) -> Option<PathBuf> {
        match self {
            Self::V1(b) => b.parent(controller).map(|p| p.join(name)),
            Self::V2(b) => Some(b.parent().join(name)),
        }
    }

    /// The containers' parent relative to the hierarchy root (v1: of the first
    /// mounted controller). The runtime records it at create time so that later
    /// commands, run from any cgroup, reopen it with `ParentPolicy::Fixed`.
    pub fn parent_rel(&self) -> String {
        match self {
            Self::V1(b) => b
                .parent_rels()
                .next()
                .map(|(_, r)| r.to_string())
                .unwrap_or_default(),
            Self::V2(b) => b.parent_rel().to_string(),
        }
    }

    /// The version in use: 1 or 2.
    pub fn version(&self) -> u8 {
        match self {
            Self::V1(_) => 1,
            Self::V2(_) => 2,
        }
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(CgroupError::BadName {
            name: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_unified_and_procd_delegation() {
        let mi = "25 20 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = Layout::parse(mi, "0::/services/berth/instance1\n").expect("layout");
        assert_eq!(l.mode, Mode::Unified);
        assert_eq!(
            l.unified.as_ref().map(|m| m.own.as_str()),
            Some("/services/berth/instance1")
        );
        // Where berth runs -> where the containers go.
        let table = [
            // a procd instance
            (
                "/services/berth/instance1",
                "/sys/fs/cgroup/services/berth/instance1/containers",
            ),
            // a monitor in the supervisor leaf finds the same parent
            (
                "/services/berth/instance1/supervisor",
                "/sys/fs/cgroup/services/berth/instance1/containers",
            ),
            // a login session: /berth at the top
            ("/user.slice/session-1.scope", "/sys/fs/cgroup/berth"),
            // a systemd Delegate=yes service
            (
                "/system.slice/berth.service",
                "/sys/fs/cgroup/system.slice/berth.service/containers",
            ),
        ];
        for (own, parent) in table {
            let l = Layout::parse(mi, &format!("0::{own}\n")).expect("layout");
            let CgroupBackend::V2(b) =
                CgroupBackend::from_layout(&l, &ParentPolicy::Auto).expect("backend")
            else {
                panic!("v2 expected for {own}")
            };
            assert_eq!(b.parent(), Path::new(parent), "{own}");
        }
    }

    #[test]
    fn names_are_one_component() {
        for bad in ["", ".", "..", "a/b"] {
            assert!(
                matches!(check_name(bad), Err(CgroupError::BadName { .. })),
                "{bad:?}"
            );
        }
        assert!(check_name("web-1").is_ok());
    }
}
