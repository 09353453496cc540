//! cgroups: the host side of a container's limits, accounting and control.
//!
//! `detect` reads /proc/self/mountinfo and /proc/self/cgroup once and finds
//! the layout: unified v2 (OpenWrt, modern systemd), hybrid (v1 controllers
//! plus an empty v2 at /sys/fs/cgroup/unified; controllers come from v1) or
//! legacy v1. [`CgroupBackend`] then dispatches every operation to the v1 or
//! v2 backend, as youki's `AnyCgroupManager` does. Limits are translated by the
//! pure tables in [`translate`]; devices by [`devices_v1`] and [`bpf`].
//! Every host path is a constructor argument so both backends are tested
//! against a fake tree in a temp dir.

pub mod bpf;
pub mod devices_v1;
mod fs;
pub mod stats;
pub mod translate;
pub mod v1;
pub mod v2;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::model::{DeviceKind, DeviceRule, ResourceSpec};

pub use stats::CgroupStats;

pub(crate) use fs::{
    kill_pids, mkdir_all, parse_pids, read, read_opt, remove_tree, write, FREEZE_WAIT, REMOVE_WAIT,
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

/// How the host mounts its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// cgroup2 only (OpenWrt, systemd with the unified hierarchy).
    Unified,
    /// v1 controllers plus a cgroup2 mount without controllers; v1 is used.
    Hybrid,
    /// v1 only.
    Legacy,
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub path: PathBuf,
    /// This process's own cgroup in it, relative to the mount (`/` at the top).
    pub own: String,
}

/// The cgroup layout found by [`Layout::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Which version the backends use.
    pub mode: Mode,
    /// The cgroup2 mount, if any.
    pub unified: Option<Mount>,
    /// v1 controllers by name (`memory`, `cpu`, ...); co-mounted ones share a path.
    pub v1: BTreeMap<String, Mount>,
}

/// v1 controllers berth uses.
pub const V1_CONTROLLERS: [&str; 8] = [
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
];

/// v2 controllers berth enables for its containers.
pub const V2_CONTROLLERS: [&str; 5] = ["cpu", "cpuset", "io", "memory", "pids"];

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path of `own` relative to a mount whose root is `root` (a mount of a
/// sub-cgroup, as in a container, shows only its subtree).
fn relative(own: &str, root: &str) -> String {
    if root == "/" {
        return own.to_string();
    }
    match own.strip_prefix(root) {
        Some("") => "/".to_string(),
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        _ => own.to_string(),
    }
}

impl Layout {
    /// Read `<proc_root>/self/mountinfo` and `<proc_root>/self/cgroup`.
    pub fn detect(proc_root: &Path) -> Result<Layout> {
        let mi_path = proc_root.join("self/mountinfo");
        let mountinfo = read(&mi_path)?;
        let cgroup = read(&proc_root.join("self/cgroup"))?;
        Layout::parse(&mountinfo, &cgroup).ok_or(CgroupError::NotMounted { path: mi_path })
    }

    /// Find the layout in the texts of /proc/self/mountinfo and /proc/self/cgroup.
    /// `None` when no cgroup filesystem is mounted.
    pub fn parse(mountinfo: &str, self_cgroup: &str) -> Option<Layout> {
        // /proc/self/cgroup: "hier:ctrl,ctrl:path"; v2 is "0::path".
        let mut own_v2 = None;
        let mut own_v1: BTreeMap<&str, &str> = BTreeMap::new();
        for line in self_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(hier), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if hier == "0" && ctrls.is_empty() {
                own_v2 = Some(path);
            } else {
                for c in ctrls.split(',') {
                    own_v1.insert(c, path);
                }
            }
        }
        let mut unified = None;
        let mut v1 = BTreeMap::new();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 5 || r.len() < 3 {
                continue;
            }
            let (root, point) = (unescape(l[3]), PathBuf::from(unescape(l[4])));
            match r[0] {
                "cgroup2" if unified.is_none() => {
                    let own = relative(own_v2.unwrap_or("/"), &root);
                    unified = Some(Mount { path: point, own });
                }
                "cgroup" => {
                    for opt in r[2].split(',') {
                        if V1_CONTROLLERS.contains(&opt) && !v1.contains_key(opt) {
                            let own = relative(own_v1.get(opt).copied().unwrap_or("/"), &root);
                            v1.insert(
                                opt.to_string(),
                                Mount {
                                    path: point.clone(),
                                    own,
                                },
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        let mode = match (v1.is_empty(), unified.is_some()) {
            (false, true) => Mode::Hybrid,
            (false, false) => Mode::Legacy,
            (true, true) => Mode::Unified,
            (true, false) => return None,
        };
        Some(Layout { mode, unified, v1 })
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
                let mut dirs = BTreeMap::new();
                for (ctrl, m) in &layout.v1 {
                    let rel = match policy {
                        ParentPolicy::UnderOwn(p) => join_rel(&m.own, p),
                        ParentPolicy::Fixed(p) => join_rel("/", p),
                        ParentPolicy::Auto | ParentPolicy::Delegated => "/berth".to_string(),
                    };
                    dirs.insert(ctrl.clone(), (m.path.clone(), rel));
                }
                if dirs.is_empty() {
                    return Err(CgroupError::NotMounted {
                        path: PathBuf::from("/proc/self/mountinfo"),
                    });
                }
                Ok(CgroupBackend::V1(v1::V1Cgroups::new(dirs)))
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

/// The device nodes every container gets: null, zero, full, random, urandom,
/// tty, console, ptmx and the pts slaves.
pub fn standard_devices() -> Vec<DeviceRule> {
    let c = |major: u32, minor: Option<u32>| DeviceRule {
        allow: true,
        kind: DeviceKind::Char,
        major: Some(major),
        minor,
        read: true,
        write: true,
        mknod: true,
    };
    vec![
        c(1, Some(3)),
        c(1, Some(5)),
        c(1, Some(7)),
        c(1, Some(8)),
        c(1, Some(9)),
        c(5, Some(0)),
        c(5, Some(1)),
        c(5, Some(2)),
        c(136, None),
    ]
}

/// Deny everything, allow the standard nodes, then the manifest's rules in order.
pub fn effective_device_rules(rules: &[DeviceRule]) -> Vec<DeviceRule> {
    let deny_all = DeviceRule {
        allow: false,
        kind: DeviceKind::All,
        major: None,
        minor: None,
        read: true,
        write: true,
        mknod: true,
    };
    let mut out = vec![deny_all];
    out.extend(standard_devices());
    out.extend_from_slice(rules);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MI: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";
    const HYBRID_CG: &str =
        "9:name=systemd:/\n4:memory:/process_api/3ad\n2:cpu,cpuacct:/\n5:devices:/\n0::/\n";

    #[test]
    fn detects_hybrid() {
        let l = Layout::parse(HYBRID_MI, HYBRID_CG).expect("layout");
        assert_eq!(l.mode, Mode::Hybrid);
        assert_eq!(
            l.unified.as_ref().map(|m| m.path.clone()),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            l.v1.keys().cloned().collect::<Vec<_>>(),
            ["cpu", "cpuacct", "devices", "memory"]
        );
        assert_eq!(
            l.v1["cpu"].path,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(l.v1["cpuacct"].path, l.v1["cpu"].path);
        assert_eq!(l.v1["memory"].own, "/process_api/3ad");
        assert!(!l.v1.contains_key("name=systemd"));
        let b = CgroupBackend::from_layout(&l, &ParentPolicy::Auto).expect("backend");
        assert_eq!(b.version(), 1);
    }

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
    fn detects_legacy_and_nothing() {
        let mi = "32 31 0:29 / /cg/mem\\040ory rw - cgroup cgroup rw,memory\n33 31 0:30 / /cg/pids rw - cgroup cgroup rw,pids\n";
        let l = Layout::parse(mi, "3:memory:/a\n4:pids:/\n").expect("layout");
        assert_eq!(l.mode, Mode::Legacy);
        assert_eq!(l.v1["memory"].path, PathBuf::from("/cg/mem ory"));
        assert!(l.unified.is_none());
        assert_eq!(
            Layout::parse("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n", "0::/\n"),
            None
        );
    }

    #[test]
    fn mount_root_is_stripped() {
        // A container sees its own subtree as the mount root.
        let mi = "25 20 0:22 /lxc/c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let l = Layout::parse(mi, "0::/lxc/c1/init\n").expect("layout");
        assert_eq!(l.unified.map(|m| m.own), Some("/init".to_string()));
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

    #[test]
    fn device_rules_start_with_deny() {
        let user = DeviceRule {
            allow: true,
            kind: DeviceKind::Block,
            major: Some(8),
            minor: Some(0),
            read: true,
            write: false,
            mknod: false,
        };
        let all = effective_device_rules(&[user]);
        assert!(!all[0].allow && all[0].kind == DeviceKind::All);
        assert_eq!(all.len(), 11);
        assert_eq!(all.last(), Some(&user));
    }
}
