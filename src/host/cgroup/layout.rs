//! The host's cgroup layout, parsed from the texts of /proc/self/mountinfo
//! and /proc/self/cgroup: unified v2 (OpenWrt, modern systemd), hybrid (v1
//! controllers plus an empty v2 at /sys/fs/cgroup/unified; controllers come
//! from v1) or legacy v1, and where this process sits in each hierarchy.
//! Pure text in, [`Layout`] out: the read is [`Layout::detect`] in the parent,
//! so every layout is tested here from a sample without a host.

use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// The controller-less `name=systemd` v1 hierarchy (legacy and hybrid
    /// systemd hosts), which a full-OS container's systemd may manage on a
    /// host without cgroup2.
    pub named_systemd: Option<Mount>,
}

/// v1 controllers berth uses.
pub const V1_CONTROLLERS: [&str; 8] = [
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
];

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
        let mut named_systemd = None;
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
                    if named_systemd.is_none() && r[2].split(',').any(|o| o == "name=systemd") {
                        let own =
                            relative(own_v1.get("name=systemd").copied().unwrap_or("/"), &root);
                        named_systemd = Some(Mount {
                            path: point.clone(),
                            own,
                        });
                    }
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
        Some(Layout {
            mode,
            unified,
            v1,
            named_systemd,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cgroup::{CgroupBackend, ParentPolicy};

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
        assert_eq!(
            l.named_systemd.as_ref().map(|m| m.path.clone()),
            Some(PathBuf::from("/sys/fs/cgroup/systemd"))
        );
        let b = CgroupBackend::from_layout(&l, &ParentPolicy::Auto).expect("backend");
        assert_eq!(b.version(), 1);
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
}
