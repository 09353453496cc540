//! The cgroup v1 backend (legacy and hybrid hosts): one directory per
//! controller hierarchy, each holding `<parent>/<container>`. Co-mounted
//! controllers (`cpu,cpuacct`) share a directory and are written once.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::translate::{self, Value};
use super::{
    devices_v1, kill_pids, mkdir_all, parse_pids, read, remove_tree, stats, write, CgroupError,
    InitTree, Placement, Result, PAYLOAD_LEAF,
};
use crate::model::{DeviceRule, ResourceSpec};

/// The v1 backend.
#[derive(Debug)]
pub struct V1Cgroups {
    /// controller -> (mount point, berth parent relative to it).
    dirs: BTreeMap<String, (PathBuf, String)>,
    /// The hierarchy a full-OS container manages itself (cgroup2 on hybrid,
    /// else name=systemd): its kind, mount point and berth parent.
    tree: Option<(InitTree, PathBuf, String)>,
}

impl V1Cgroups {
    /// `dirs` maps each mounted controller to its mount point and the berth
    /// parent cgroup below it (e.g. `/berth`).
    pub fn new(dirs: BTreeMap<String, (PathBuf, String)>) -> Self {
        V1Cgroups { dirs, tree: None }
    }

    /// With the hierarchy full-OS containers manage themselves.
    pub fn with_tree(mut self, tree: Option<(InitTree, PathBuf, String)>) -> Self {
        self.tree = tree;
        self
    }

    /// The berth parent in the full-OS tree's hierarchy.
    fn tree_parent(&self) -> Option<(InitTree, PathBuf)> {
        self.tree
            .as_ref()
            .map(|(kind, m, rel)| (*kind, m.join(rel.trim_start_matches('/'))))
    }

    /// The container's directory in the full-OS tree's hierarchy.
    fn tree_dir(&self, name: &str) -> Option<(InitTree, PathBuf)> {
        self.tree_parent().map(|(kind, p)| (kind, p.join(name)))
    }

    /// The v1 controllers' cgroup.procs; for a full-OS container also the
    /// payload leaf of its own tree (made here), which it cannot see above.
    pub fn placement(&self, name: &str, own_tree: bool) -> Result<Placement> {
        let mut procs = self.procs_files(name);
        let mut tree = None;
        if let Some((kind, dir)) = self.tree_dir(name).filter(|_| own_tree) {
            let leaf = dir.join(PAYLOAD_LEAF);
            mkdir_all(&leaf)?;
            // v1 has no such bounds (name=systemd): the memory limit is the only one.
            if kind == InitTree::Unified {
                super::bound_tree(&dir)?;
            }
            procs.push(leaf.join("cgroup.procs"));
            tree = Some(kind);
        }
        Ok(Placement { procs, tree })
    }

    /// The berth parent directory of a controller, if mounted.
    pub fn parent(&self, controller: &str) -> Option<PathBuf> {
        self.dirs
            .get(controller)
            .map(|(m, rel)| m.join(rel.trim_start_matches('/')))
    }

    /// The parent relative to each mount point, by controller.
    pub fn parent_rels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.dirs
            .iter()
            .map(|(c, (_, rel))| (c.as_str(), rel.as_str()))
    }

    fn dir(&self, controller: &str, name: &str) -> Option<PathBuf> {
        self.parent(controller).map(|p| p.join(name))
    }

    /// Each distinct parent directory once.
    fn parents(&self) -> BTreeSet<PathBuf> {
        self.dirs.keys().filter_map(|c| self.parent(c)).collect()
    }

    /// Make the container's cgroup in every hierarchy. cpuset starts with empty
    /// cpus and mems, where no task may join, so each new level copies its parent's.
    pub fn create(&self, name: &str) -> Result<()> {
        for p in self.parents() {
            mkdir_all(&p.join(name))?;
        }
        if let Some((mount, rel)) = self.dirs.get("cpuset") {
            let mut cur = mount.clone();
            let levels = rel
                .split('/')
                .filter(|s| !s.is_empty())
                .chain(std::iter::once(name));
            for part in levels {
                let child = cur.join(part);
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    if read(&child.join(file))?.trim().is_empty() {
                        write(&child.join(file), read(&cur.join(file))?.trim())?;
                    }
                }
                cur = child;
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` file of the container in every hierarchy.
    pub fn procs_files(&self, name: &str) -> Vec<PathBuf> {
        self.parents()
            .into_iter()
            .map(|p| p.join(name).join("cgroup.procs"))
            .collect()
    }

    /// Write `pid` into cgroup.procs of every hierarchy.
    pub fn place(&self, name: &str, pid: i32) -> Result<()> {
        for p in self.parents() {
            write(&p.join(name).join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn missing(&self, name: &str, field: &str, controller: &str) -> CgroupError {
        CgroupError::MissingController {
            container: name.to_string(),
            field: field.to_string(),
            controller: controller.to_string(),
            hint: format!(
                "enable {} and mount its v1 hierarchy",
                translate::kernel_option(controller)
            ),
        }
    }

    /// Write the limits live. A write refused with EINVAL is retried once after
    /// the others (memsw must stay >= the memory limit, so order depends on
    /// whether limits go up or down).
    pub fn apply(&self, name: &str, r: &ResourceSpec) -> Result<()> {
        let mut retry = Vec::new();
        for w in translate::v1_writes(r) {
            let Some(dir) = self.dir(w.controller, name) else {
                match w.field {
                    Some(f) => return Err(self.missing(name, f, w.controller)),
                    None => continue,
                }
            };
            let mut path = dir.join(w.file);
            if !path.exists() {
                if let Some(alt) = w.alt.map(|a| dir.join(a)).filter(|p| p.exists()) {
                    path = alt;
                } else if let Some(f) = w.field {
                    return Err(CgroupError::MissingFile {
                        container: name.to_string(),
                        field: f.to_string(),
                        path,
                        hint: hint_for(w.file),
                    });
                } else {
                    continue;
                }
            }
            let value = match &w.value {
                Value::Text(t) => t.clone(),
                Value::FromParent => {
                    let parent = dir.parent().unwrap_or(&dir).join(w.file);
                    read(&parent)?.trim().to_string()
                }
            };
            match write(&path, &value) {
                Err(CgroupError::Write { source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) =>
                {
                    retry.push((path, value));
                }
                other => other?,
            }
        }
        for (path, value) in retry {
            write(&path, &value)?;
        }
        Ok(())
    }

    /// Rewrite the device list: deny all, then the rules in order.
    pub fn set_devices(&self, name: &str, rules: &[DeviceRule]) -> Result<()> {
        let Some(dir) = self.dir("devices", name) else {
            return Err(self.missing(name, translate::F_DEVICES, "devices"));
        };
        for (file, line) in devices_v1::writes(rules) {
            write(&dir.join(file), &line)?;
        }
        Ok(())
    }

    fn freezer(&self, name: &str) -> Result<PathBuf> {
        self.dir("freezer", name)
            .ok_or_else(|| self.missing(name, "pause", "freezer"))
    }

    /// Freeze and wait until the kernel reports FROZEN (FREEZING is transient;
    /// writing FROZEN again nudges tasks that were forking).
    pub fn freeze(&self, name: &str) -> Result<()> {
        let state = self.freezer(name)?.join("freezer.state");
        let start = Instant::now();
        loop {
            write(&state, "FROZEN")?;
            if read(&state)?.trim() == "FROZEN" {
                return Ok(());
            }
            if start.elapsed() > super::FREEZE_WAIT {
                let _ = write(&state, "THAWED");
                return Err(CgroupError::FreezeTimeout {
                    path: state,
                    secs: super::FREEZE_WAIT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Thaw.
    pub fn thaw(&self, name: &str) -> Result<()> {
        write(&self.freezer(name)?.join("freezer.state"), "THAWED")
    }

    /// The tasks of the container, from the first hierarchy that has it.
    pub fn pids(&self, name: &str) -> Result<Vec<i32>> {
        let ctrl = ["pids", "freezer", "memory", "cpu"]
            .into_iter()
            .find(|c| self.dirs.contains_key(*c));
        let dir = match ctrl.and_then(|c| self.dir(c, name)) {
            Some(d) => d,
            None => match self.parents().into_iter().next() {
                Some(p) => p.join(name),
                None => return Ok(Vec::new()),
            },
        };
        match std::fs::read_to_string(dir.join("cgroup.procs")) {
            Ok(t) => Ok(parse_pids(&t)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(CgroupError::Read {
                path: dir.join("cgroup.procs"),
                source,
            }),
        }
    }

    /// v1 has no cgroup.kill: freeze so nothing forks while we signal, kill
    /// every task, thaw so the kill is delivered. Without a freezer, kill until empty.
    pub fn kill_all(&self, name: &str) -> Result<()> {
        let dir = self
            .parents()
            .into_iter()
            .next()
            .map(|p| p.join(name))
            .unwrap_or_default();
        if self.dirs.contains_key("freezer") {
            // A freeze that times out (a task in D state) must not stop the kill.
            let frozen = self.freeze(name).is_ok();
            let killed = self.pids(name).and_then(|p| kill_pids(&p, &dir));
            if frozen {
                self.thaw(name)?;
            }
            return killed;
        }
        for _ in 0..50 {
            let pids = self.pids(name)?;
            if pids.is_empty() {
                break;
            }
            kill_pids(&pids, &dir)?;
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Accounting from the memory, cpuacct and pids hierarchies.
    pub fn stats(&self, name: &str) -> stats::CgroupStats {
        let m = self.dir("memory", name);
        let c = self.dir("cpuacct", name);
        let p = self.dir("pids", name);
        stats::read_v1(m.as_deref(), c.as_deref(), p.as_deref())
    }

    /// Remove the container from every hierarchy.
    pub fn remove(&self, name: &str) -> Result<()> {
        for p in self.parents() {
            remove_tree(&p.join(name), super::REMOVE_WAIT)?;
        }
        if let Some((_, dir)) = self.tree_dir(name) {
            remove_tree(&dir, super::REMOVE_WAIT)?;
        }
        Ok(())
    }

    /// Remove the berth parent in every hierarchy; a parent that still has
    /// containers is left alone.
    pub fn remove_parent(&self) -> Result<()> {
        let tree_parent = self.tree_parent().map(|(_, d)| d);
        for p in self.parents().into_iter().chain(tree_parent) {
            match std::fs::remove_dir(&p) {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT | libc::EBUSY | libc::ENOTEMPTY)
                    ) => {}
                Err(source) => return Err(CgroupError::Remove { path: p, source }),
            }
        }
        Ok(())
    }
}

/// What to enable when an optional v1 file is missing.
fn hint_for(file: &str) -> String {
    match file {
        "memory.memsw.limit_in_bytes" => {
            "enable CONFIG_MEMCG_SWAP and boot with swapaccount=1".into()
        }
        "cpu.cfs_quota_us" | "cpu.cfs_period_us" => "enable CONFIG_CFS_BANDWIDTH".into(),
        "blkio.weight" => "enable CONFIG_BFQ_GROUP_IOSCHED and use the bfq scheduler".into(),
        _ => "use a kernel that has it".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cgroup::{effective_device_rules, CgroupBackend, Layout, ParentPolicy};
    use std::path::Path;

    /// A fake v1 tree: memory, cpu+cpuacct (co-mounted), pids, cpuset, devices,
    /// freezer; each parent cgroup with the files the backend writes.
    fn fake() -> (tempfile::TempDir, CgroupBackend) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let r = tmp.path();
        let mounts = [
            ("memory", "memory"),
            ("cpu,cpuacct", "cpu,cpuacct"),
            ("pids", "pids"),
            ("cpuset", "cpuset"),
        ];
        let mut mi = String::new();
        for (i, (dir, opts)) in mounts
            .iter()
            .chain([("devices", "devices"), ("freezer", "freezer")].iter())
            .enumerate()
        {
            mi.push_str(&format!(
                "{} 1 0:{i} / {}/{dir} rw - cgroup cgroup rw,{opts}\n",
                30 + i,
                r.display()
            ));
        }
        let c = r.join("memory/berth/web");
        std::fs::create_dir_all(&c).expect("mkdir");
        for f in [
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "cgroup.procs",
        ] {
            std::fs::write(c.join(f), "").expect("w");
        }
        let c = r.join("cpu,cpuacct/berth/web");
        std::fs::create_dir_all(&c).expect("mkdir");
        for f in [
            "cpu.shares",
            "cpu.cfs_quota_us",
            "cpu.cfs_period_us",
            "cgroup.procs",
        ] {
            std::fs::write(c.join(f), "").expect("w");
        }
        let c = r.join("pids/berth/web");
        std::fs::create_dir_all(&c).expect("mkdir");
        std::fs::write(c.join("pids.max"), "").expect("w");
        std::fs::write(c.join("cgroup.procs"), "").expect("w");
        let c = r.join("cpuset/berth/web");
        std::fs::create_dir_all(&c).expect("mkdir");
        std::fs::write(r.join("cpuset/cpuset.cpus"), "0-3\n").expect("w");
        std::fs::write(r.join("cpuset/cpuset.mems"), "0\n").expect("w");
        for f in ["cpuset.cpus", "cpuset.mems", "cgroup.procs"] {
            std::fs::write(r.join("cpuset/berth").join(f), "").expect("w");
            std::fs::write(c.join(f), "").expect("w");
        }
        let c = r.join("devices/berth/web");
        std::fs::create_dir_all(&c).expect("mkdir");
        std::fs::write(c.join("devices.allow"), "").expect("w");
        std::fs::write(c.join("devices.deny"), "").expect("w");
        std::fs::write(c.join("cgroup.procs"), "").expect("w");
        let c = r.join("freezer/berth/web");
        std::fs::create_dir_all(&c).expect("mkdir");
        std::fs::write(c.join("cgroup.procs"), "").expect("w");
        let layout = Layout::parse(&mi, "").expect("layout");
        let b = CgroupBackend::from_layout(&layout, &ParentPolicy::Auto).expect("backend");
        (tmp, b)
    }

    fn get(root: &Path, rel: &str) -> String {
        std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    #[test]
    fn create_copies_cpuset_and_places_once_per_hierarchy() {
        let (tmp, b) = fake();
        b.create("web").expect("create");
        let r = tmp.path();
        assert_eq!(get(r, "cpuset/berth/cpuset.cpus"), "0-3");
        assert_eq!(get(r, "cpuset/berth/web/cpuset.mems"), "0");
        b.place("web", 4242).expect("place");
        for h in [
            "memory",
            "cpu,cpuacct",
            "pids",
            "cpuset",
            "devices",
            "freezer",
        ] {
            assert_eq!(
                get(r, &format!("{h}/berth/web/cgroup.procs")),
                "4242",
                "{h}"
            );
        }
    }

    #[test]
    fn apply_writes_translated_values() {
        let (tmp, b) = fake();
        let spec = ResourceSpec {
            memory: Some(1 << 20),
            swap: Some(0),
            cpu_weight: Some(100),
            cpu_max: Some(crate::model::CpuMax {
                quota_us: 20_000,
                period_us: 50_000,
            }),
            pids: Some(10),
            cpuset_cpus: Some("1".into()),
            ..Default::default()
        };
        b.apply("web", &spec).expect("apply");
        let r = tmp.path();
        assert_eq!(get(r, "memory/berth/web/memory.limit_in_bytes"), "1048576");
        assert_eq!(
            get(r, "memory/berth/web/memory.memsw.limit_in_bytes"),
            "1048576"
        );
        assert_eq!(get(r, "memory/berth/web/memory.soft_limit_in_bytes"), "-1");
        assert_eq!(get(r, "cpu,cpuacct/berth/web/cpu.shares"), "2598");
        assert_eq!(get(r, "cpu,cpuacct/berth/web/cpu.cfs_period_us"), "50000");
        assert_eq!(get(r, "cpu,cpuacct/berth/web/cpu.cfs_quota_us"), "20000");
        assert_eq!(get(r, "pids/berth/web/pids.max"), "10");
        assert_eq!(get(r, "cpuset/berth/web/cpuset.cpus"), "1");
        // No blkio hierarchy and no io weight asked: skipped without error.
    }

    #[test]
    fn missing_controller_names_the_field() {
        let (_tmp, b) = fake();
        let spec = ResourceSpec {
            io_weight: Some(300),
            ..Default::default()
        };
        let err = b.apply("web", &spec).expect_err("no blkio");
        assert_eq!(
            err.to_string(),
            "containers.web.resources.io.weight needs the blkio controller; \
             enable CONFIG_BLK_CGROUP and mount its v1 hierarchy"
        );
    }

    #[test]
    fn missing_memsw_names_swap_accounting() {
        let (tmp, b) = fake();
        std::fs::remove_file(
            tmp.path()
                .join("memory/berth/web/memory.memsw.limit_in_bytes"),
        )
        .expect("rm");
        // Without a swap field the missing file is fine.
        b.apply(
            "web",
            &ResourceSpec {
                memory: Some(4096),
                ..Default::default()
            },
        )
        .expect("apply");
        let err = b.apply(
            "web",
            &ResourceSpec {
                memory: Some(4096),
                swap: Some(1),
                ..Default::default()
            },
        );
        let msg = err.expect_err("no memsw").to_string();
        assert!(
            msg.starts_with("containers.web.resources.swap needs `"),
            "{msg}"
        );
        assert!(msg.ends_with("swapaccount=1"), "{msg}");
    }

    #[test]
    fn devices_and_freezer_files() {
        let (tmp, b) = fake();
        let r = tmp.path();
        // The fake files keep only the last write; check the allow list by
        // writing to a fresh tree per rule would be overkill: the order is
        // covered in devices_v1, here we check where the lines go.
        b.set_devices("web", &[]).expect("devices");
        assert_eq!(get(r, "devices/berth/web/devices.deny"), "a");
        assert_eq!(get(r, "devices/berth/web/devices.allow"), "c 136:* rwm");
        std::fs::write(r.join("freezer/berth/web/freezer.state"), "THAWED\n").expect("w");
        b.freeze("web").expect("freeze");
        assert_eq!(get(r, "freezer/berth/web/freezer.state"), "FROZEN");
        b.thaw("web").expect("thaw");
        assert_eq!(get(r, "freezer/berth/web/freezer.state"), "THAWED");
        assert_eq!(effective_device_rules(&[]).len(), 10);
    }

    #[test]
    fn stats_and_pids() {
        let (tmp, b) = fake();
        let r = tmp.path();
        std::fs::write(r.join("pids/berth/web/cgroup.procs"), "10\n11\n").expect("w");
        std::fs::write(r.join("pids/berth/web/pids.current"), "2\n").expect("w");
        std::fs::write(r.join("memory/berth/web/memory.usage_in_bytes"), "77\n").expect("w");
        std::fs::write(r.join("cpu,cpuacct/berth/web/cpuacct.usage"), "5000\n").expect("w");
        assert_eq!(b.pids("web").expect("pids"), vec![10, 11]);
        let s = b.stats("web").expect("stats");
        assert_eq!(
            (s.pids_current, s.memory_current, s.cpu_usage_usec),
            (Some(2), Some(77), Some(5))
        );
    }

    #[test]
    fn remove_takes_every_hierarchy() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut dirs = BTreeMap::new();
        for c in ["memory", "pids"] {
            std::fs::create_dir_all(tmp.path().join(c).join("berth/web/child")).expect("mkdir");
            dirs.insert(c.to_string(), (tmp.path().join(c), "/berth".to_string()));
        }
        let b = V1Cgroups::new(dirs);
        b.remove("web").expect("remove");
        b.remove_parent().expect("remove parent");
        assert!(!tmp.path().join("memory/berth").exists());
        assert!(!tmp.path().join("pids/berth").exists());
    }

    /// A full-OS container's own tree: on hybrid the controller-less cgroup2,
    /// on legacy the name=systemd hierarchy; its payload leaf is placed last,
    /// after the controllers' cgroups; removal takes it too.
    #[test]
    fn full_os_tree_is_cgroup2_on_hybrid_and_named_systemd_on_legacy() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let r = tmp.path();
        let v1 = format!(
            "30 1 0:1 / {}/memory rw - cgroup cgroup rw,memory\n",
            r.display()
        );
        let named = format!(
            "31 1 0:2 / {}/systemd rw - cgroup cgroup rw,xattr,name=systemd\n",
            r.display()
        );
        let unified = format!(
            "32 1 0:3 / {}/unified rw - cgroup2 cgroup2 rw\n",
            r.display()
        );
        for (mi, kind, tree) in [
            (
                format!("{v1}{named}{unified}"),
                InitTree::Unified,
                "unified",
            ),
            (format!("{v1}{named}"), InitTree::NamedSystemd, "systemd"),
        ] {
            let layout = Layout::parse(&mi, "").expect("layout");
            let b = CgroupBackend::from_layout(&layout, &ParentPolicy::Auto).expect("backend");
            b.create("os").expect("create");
            let p = b.placement("os", true).expect("placement");
            assert_eq!(p.tree, Some(kind), "{tree}");
            assert_eq!(
                p.procs,
                [
                    r.join("memory/berth/os/cgroup.procs"),
                    r.join(tree).join("berth/os/payload/cgroup.procs")
                ],
                "{tree}"
            );
            assert!(r.join(tree).join("berth/os/payload").is_dir());
            // Not a full-OS container (or in the host's cgroup namespace):
            // the controllers' cgroups only.
            let plain = b.placement("os", false).expect("placement");
            assert_eq!(plain.procs, [r.join("memory/berth/os/cgroup.procs")]);
            assert_eq!(plain.tree, None);
            b.remove("os").expect("remove");
            assert!(!r.join(tree).join("berth/os").exists(), "{tree}");
            b.remove_parent().expect("remove parent");
            assert!(!r.join(tree).join("berth").exists(), "{tree}");
        }
        // Neither: a full-OS container runs without a tree of its own.
        let layout = Layout::parse(&v1, "").expect("layout");
        let b = CgroupBackend::from_layout(&layout, &ParentPolicy::Auto).expect("backend");
        assert_eq!(b.placement("os", true).expect("placement").tree, None);
    }
}
