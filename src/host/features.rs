//! Kernel features, detected once per run into [`HostFeatures`]: the cgroup
//! layout and controllers, namespaces, network link types, overlayfs, seccomp
//! and bpf. `berth check` compares a manifest against it; backends use it to
//! pick fallbacks. Every path is a constructor argument, so any kernel can be
//! described by a fake tree in a test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::host::cgroup::{Layout, Mode};

/// Where to look.
#[derive(Debug, Clone)]
pub struct HostPaths {
    /// procfs (`/proc`).
    pub proc: PathBuf,
    /// sysfs (`/sys`).
    pub sys: PathBuf,
    /// The modules tree (`/lib/modules`); the running release is appended.
    pub modules: PathBuf,
}

impl HostPaths {
    /// The paths below `root`: `/` for this host, a fake tree in tests.
    pub fn under(root: &Path) -> Self {
        HostPaths {
            proc: root.join("proc"),
            sys: root.join("sys"),
            modules: root.join("lib/modules"),
        }
    }
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths::under(Path::new("/"))
    }
}

/// Whether a kernel feature is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Avail {
    /// Built in or loaded.
    Yes,
    /// A module that is installed but not loaded (berth or the init loads it).
    Module,
    /// Neither.
    No,
}

/// Kernel module names of the optional features berth uses.
pub const FEATURE_MODULES: [&str; 6] = ["veth", "bridge", "macvlan", "ipvlan", "8021q", "overlay"];

/// A function each feature's code defines, looked up in /proc/kallsyms.
const KALLSYMS: &[(&str, &str)] = &[
    ("veth", "veth_newlink"),
    ("macvlan", "macvlan_common_newlink"),
    ("ipvlan", "ipvlan_link_new"),
    ("bridge", "br_dev_xmit"),
    ("8021q", "register_vlan_dev"),
    ("overlay", "ovl_fill_super"),
];

/// Lines are `addr type name [module]`.
fn kallsyms_has(text: &str, sym: &str) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().nth(2) == Some(sym))
}

/// What this kernel offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFeatures {
    /// `uname -r`.
    pub kernel: String,
    /// cgroup layout; `None` when no cgroup filesystem is mounted.
    pub cgroup_mode: Option<Mode>,
    /// Controllers berth can use (v2: the root's cgroup.controllers; v1: mounted hierarchies).
    pub controllers: BTreeSet<String>,
    /// Namespace kinds in /proc/self/ns (`user`, `net`, `time`, ...).
    pub namespaces: BTreeSet<String>,
    /// veth, bridge, macvlan, ipvlan, 8021q, overlay.
    pub features: BTreeMap<String, Avail>,
    /// seccomp filters (CONFIG_SECCOMP_FILTER).
    pub seccomp: bool,
    /// The bpf(2) syscall (CONFIG_BPF_SYSCALL), needed for v2 device rules.
    pub bpf: bool,
    /// v2 cgroup.freeze (5.2+).
    pub cgroup_freeze: bool,
    /// v2 cgroup.kill (5.14+).
    pub cgroup_kill: bool,
    /// A hierarchy a full-OS container's systemd can manage: a cgroup2 mount
    /// or the `name=systemd` one.
    pub init_tree: bool,
}

/// `(major, minor)` of a release such as `6.1.0-56-amd64` or `5.4.238`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// A module by name: loaded (or built in with parameters) shows in
/// /sys/module; built in shows in modules.builtin; installed shows in
/// modules.dep or, on OpenWrt (no modules.dep), as a flat `<name>.ko`.
fn module_avail(paths: &HostPaths, release: &str, name: &str, builtin: &str, dep: &str) -> Avail {
    if paths.sys.join("module").join(name).exists() {
        return Avail::Yes;
    }
    // modules.builtin and modules.dep spell `-` as `_` or not; match both.
    let variants = [name.to_string(), name.replace('_', "-")];
    let listed = |text: &str| {
        text.lines().any(|l| {
            let file = l
                .split(':')
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("");
            let stem = file.split(".ko").next().unwrap_or("");
            variants.iter().any(|v| v == stem)
        })
    };
    if listed(builtin) {
        return Avail::Yes;
    }
    let dir = paths.modules.join(release);
    if listed(dep) || dir.join(format!("{name}.ko")).exists() {
        return Avail::Module;
    }
    Avail::No
}

impl HostFeatures {
    /// Detect everything once.
    pub fn detect(paths: &HostPaths) -> HostFeatures {
        let kernel = read(&paths.proc.join("sys/kernel/osrelease"))
            .trim()
            .to_string();
        let layout = Layout::detect(&paths.proc).ok();
        let mut controllers = BTreeSet::new();
        if let Some(l) = &layout {
            match (l.mode, &l.unified) {
                (Mode::Unified, Some(m)) => {
                    controllers.extend(
                        read(&m.path.join("cgroup.controllers"))
                            .split_whitespace()
                            .map(String::from),
                    );
                }
                _ => controllers.extend(l.v1.keys().cloned()),
            }
        }
        let namespaces = std::fs::read_dir(paths.proc.join("self/ns"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str().map(String::from))
                    .filter(|n| !n.ends_with("_for_children"))
                    .collect()
            })
            .unwrap_or_default();
        let dir = paths.modules.join(&kernel);
        let builtin = read(&dir.join("modules.builtin"));
        let dep = read(&dir.join("modules.dep"));
        let filesystems = read(&paths.proc.join("filesystems"));
        let mut features = BTreeMap::new();
        for m in FEATURE_MODULES {
            let mut a = module_avail(paths, &kernel, m, &builtin, &dep);
            if m == "overlay"
                && filesystems
                    .lines()
                    .any(|l| l.split_whitespace().last() == Some("overlay"))
            {
                a = Avail::Yes;
            }
            features.insert(m.to_string(), a);
        }
        // A built-in driver without parameters is not in /sys/module, and
        // /lib/modules may be absent: its symbols in kallsyms still tell.
        if features.values().any(|a| *a == Avail::No) {
            let syms = read(&paths.proc.join("kallsyms"));
            for (m, sym) in KALLSYMS {
                if features.get(*m) == Some(&Avail::No) && kallsyms_has(&syms, sym) {
                    features.insert(m.to_string(), Avail::Yes);
                }
            }
        }
        let seccomp = paths.proc.join("sys/kernel/seccomp/actions_avail").exists()
            || read(&paths.proc.join("self/status"))
                .lines()
                .any(|l| l.starts_with("Seccomp_filters:"));
        // The sysctl exists exactly when the kernel has the bpf syscall.
        let bpf = paths
            .proc
            .join("sys/kernel/unprivileged_bpf_disabled")
            .exists();
        let v = kernel_version(&kernel).unwrap_or((0, 0));
        let init_tree = layout
            .as_ref()
            .is_some_and(|l| l.unified.is_some() || l.named_systemd.is_some());
        HostFeatures {
            kernel,
            init_tree,
            cgroup_mode: layout.map(|l| l.mode),
            controllers,
            namespaces,
            features,
            seccomp,
            bpf,
            cgroup_freeze: v >= (5, 2),
            cgroup_kill: v >= (5, 14),
        }
    }

    /// Whether a feature module is usable (built in, loaded, or loadable).
    pub fn has(&self, feature: &str) -> bool {
        matches!(self.features.get(feature), Some(Avail::Yes | Avail::Module))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    /// An OpenWrt-like 5.15 router: cgroup2 only, no user namespaces, macvlan
    /// as a flat .ko, veth loaded, overlay built in, no ipvlan.
    #[test]
    fn detects_an_openwrt_like_kernel() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let r = tmp.path();
        let cg = r.join("cgroup");
        put(r, "proc/sys/kernel/osrelease", "5.15.150\n");
        put(
            r,
            "proc/self/mountinfo",
            &format!(
                "25 20 0:22 / {} rw - cgroup2 cgroup2 rw,nsdelegate\n",
                cg.display()
            ),
        );
        put(r, "proc/self/cgroup", "0::/services/berth/instance1\n");
        put(r, "cgroup/cgroup.controllers", "cpu io memory pids\n");
        for ns in [
            "mnt",
            "net",
            "pid",
            "pid_for_children",
            "uts",
            "ipc",
            "cgroup",
        ] {
            put(r, &format!("proc/self/ns/{ns}"), "");
        }
        put(r, "proc/filesystems", "nodev\tsysfs\nnodev\tcgroup2\n");
        put(
            r,
            "proc/sys/kernel/seccomp/actions_avail",
            "kill_process allow\n",
        );
        put(r, "sys/module/veth/refcnt", "0\n");
        put(r, "lib/modules/5.15.150/macvlan.ko", "");
        put(
            r,
            "lib/modules/5.15.150/modules.builtin",
            "kernel/fs/overlayfs/overlay.ko\nkernel/net/bridge/bridge.ko\n",
        );
        let caps = HostFeatures::detect(&HostPaths::under(r));
        assert_eq!(caps.kernel, "5.15.150");
        assert_eq!(caps.cgroup_mode, Some(Mode::Unified));
        assert_eq!(
            caps.controllers
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["cpu", "io", "memory", "pids"]
        );
        assert!(caps.namespaces.contains("net") && !caps.namespaces.contains("user"));
        assert!(!caps.namespaces.contains("pid_for_children"));
        assert_eq!(caps.features["veth"], Avail::Yes);
        assert_eq!(caps.features["macvlan"], Avail::Module);
        assert_eq!(caps.features["overlay"], Avail::Yes);
        assert_eq!(caps.features["bridge"], Avail::Yes);
        assert_eq!(caps.features["ipvlan"], Avail::No);
        assert!(caps.seccomp);
        assert!(!caps.bpf);
        assert!(caps.cgroup_freeze && caps.cgroup_kill);
    }

    #[test]
    fn old_kernel_and_modules_dep() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let r = tmp.path();
        put(r, "proc/sys/kernel/osrelease", "5.4.238-yocto-standard\n");
        put(r, "proc/sys/kernel/unprivileged_bpf_disabled", "2\n");
        put(
            r,
            "proc/kallsyms",
            "ffffffff81e090a0 t veth_newlink\nffffffffc0a01000 t br_dev_xmit\t[bridge]\n",
        );
        put(
            r,
            "lib/modules/5.4.238-yocto-standard/modules.dep",
            "kernel/drivers/net/ipvlan/ipvlan.ko.xz:\nkernel/net/8021q/8021q.ko: kernel/net/802/garp.ko\n",
        );
        let caps = HostFeatures::detect(&HostPaths::under(r));
        assert_eq!(caps.cgroup_mode, None);
        assert!(caps.controllers.is_empty());
        assert_eq!(caps.features["ipvlan"], Avail::Module);
        assert_eq!(caps.features["8021q"], Avail::Module);
        assert_eq!(caps.features["overlay"], Avail::No);
        // Built in without /sys/module or modules.builtin, found by symbol.
        assert_eq!(caps.features["veth"], Avail::Yes);
        assert_eq!(caps.features["bridge"], Avail::Yes);
        assert_eq!(caps.features["macvlan"], Avail::No);
        assert!(caps.bpf && !caps.seccomp);
        assert!(caps.cgroup_freeze && !caps.cgroup_kill);
    }

    #[test]
    fn versions() {
        assert_eq!(kernel_version("6.1.0-56-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("5.4.238"), Some((5, 4)));
        assert_eq!(kernel_version("junk"), None);
    }
}
