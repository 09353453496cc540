//! The cgroup v2 backend (unified hosts such as OpenWrt): one tree, containers
//! under `<parent>/<name>`.
//!
//! v2's no-internal-processes rule: a non-root cgroup with processes cannot
//! hand controllers to its children. When berth runs in a delegated cgroup (a
//! procd instance `/services/berth/<inst>`, or a systemd service with
//! `Delegate=yes`) it first moves every process there into the leaf
//! `<own>/supervisor`, then enables the controllers in `cgroup.subtree_control`
//! on every level from the root down to the containers' parent.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::translate::{self, Value};
use super::{
    bpf, collect_pids, kill_pids, mkdir_all, parse_pids, read, read_opt, remove_tree, stats, write,
    CgroupError, Result,
};
use super::{InitTree, Placement, PAYLOAD_LEAF, SUPERVISOR_LEAF, V2_CONTROLLERS};
use crate::model::{DeviceRule, ResourceSpec};

/// The v2 backend.
#[derive(Debug)]
pub struct V2Cgroups {
    mount: PathBuf,
    /// Containers' parent, relative to the mount (`/berth`).
    parent_rel: String,
    /// The delegated own cgroup whose processes move into the supervisor leaf.
    delegated: Option<String>,
    /// Use cgroup.kill when the kernel has it (5.14+); off to test the fallback.
    cgroup_kill: bool,
}

fn components(rel: &str) -> impl Iterator<Item = &str> {
    rel.split('/').filter(|s| !s.is_empty())
}

impl V2Cgroups {
    /// `mount` is the cgroup2 mount point, `parent_rel` the containers' parent
    /// below it, `delegated` berth's own cgroup when it must move into a leaf.
    pub fn new(mount: &Path, parent_rel: &str, delegated: Option<&str>) -> Self {
        V2Cgroups {
            mount: mount.to_path_buf(),
            parent_rel: parent_rel.to_string(),
            delegated: delegated.map(String::from),
            cgroup_kill: true,
        }
    }

    /// Never use cgroup.kill, as on kernels before 5.14 (tests of the fallback).
    pub fn disable_cgroup_kill(&mut self) {
        self.cgroup_kill = false;
    }

    /// The containers' parent relative to the mount. The runtime records it so
    /// that later commands (run from any cgroup) reopen the same place with
    /// `ParentPolicy::Fixed`.
    pub fn parent_rel(&self) -> &str {
        &self.parent_rel
    }

    /// The containers' parent directory.
    pub fn parent(&self) -> PathBuf {
        components(&self.parent_rel).fold(self.mount.clone(), |p, c| p.join(c))
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.parent().join(name)
    }

    /// Move berth out of its delegated cgroup into the supervisor leaf, then
    /// enable controllers from the root down to the parent. Idempotent.
    fn prepare(&self) -> Result<()> {
        if let Some(own) = &self.delegated {
            let own_dir = components(own).fold(self.mount.clone(), |p, c| p.join(c));
            let leaf = own_dir.join(SUPERVISOR_LEAF);
            mkdir_all(&leaf)?;
            for pid in parse_pids(&read(&own_dir.join("cgroup.procs"))?) {
                match write(&leaf.join("cgroup.procs"), &pid.to_string()) {
                    // The process exited meanwhile.
                    Err(CgroupError::Write { source, .. })
                        if source.raw_os_error() == Some(libc::ESRCH) => {}
                    other => other?,
                }
            }
        }
        let mut level = self.mount.clone();
        enable_controllers(&level);
        for c in components(&self.parent_rel) {
            level = level.join(c);
            mkdir_all(&level)?;
            enable_controllers(&level);
        }
        Ok(())
    }

    /// Make the container's cgroup below a prepared parent.
    pub fn create(&self, name: &str) -> Result<()> {
        self.prepare()?;
        mkdir_all(&self.dir(name))
    }

    /// The container's cgroup.procs; for a full-OS container that of its
    /// payload leaf (made here), with the controllers passed down to it, so
    /// that the limits on the container's cgroup are out of its reach.
    pub fn placement(&self, name: &str, own_tree: bool) -> Result<Placement> {
        let dir = self.dir(name);
        if !own_tree {
            return Ok(Placement {
                procs: vec![dir.join("cgroup.procs")],
                tree: None,
            });
        }
        enable_controllers(&dir);
        super::bound_tree(&dir)?;
        let leaf = dir.join(PAYLOAD_LEAF);
        mkdir_all(&leaf)?;
        Ok(Placement {
            procs: vec![leaf.join("cgroup.procs")],
            tree: Some(InitTree::Unified),
        })
    }

    /// Write `pid` into the container's cgroup.procs.
    pub fn place(&self, name: &str, pid: i32) -> Result<()> {
        write(&self.dir(name).join("cgroup.procs"), &pid.to_string())
    }

    fn missing(&self, name: &str, field: &str, controller: &str) -> CgroupError {
        let in_kernel = read_opt(&self.mount.join("cgroup.controllers"))
            .is_some_and(|t| t.split_whitespace().any(|c| c == controller));
        let hint = if in_kernel {
            format!(
                "the kernel has it but it is not enabled in cgroup.subtree_control above `{}` \
                 (delegate it to berth's service)",
                self.dir(name).display()
            )
        } else {
            format!("enable {}", translate::kernel_option(controller))
        };
        CgroupError::MissingController {
            container: name.to_string(),
            field: field.to_string(),
            controller: controller.to_string(),
            hint,
        }
    }

    /// Write the limits live.
    pub fn apply(&self, name: &str, r: &ResourceSpec) -> Result<()> {
        let dir = self.dir(name);
        let available: BTreeSet<String> = read(&dir.join("cgroup.controllers"))?
            .split_whitespace()
            .map(String::from)
            .collect();
        for w in translate::v2_writes(r) {
            if !available.contains(w.controller) {
                match w.field {
                    Some(f) => return Err(self.missing(name, f, w.controller)),
                    None => continue,
                }
            }
            let path = dir.join(w.file);
            if !path.exists() {
                match w.field {
                    Some(f) => {
                        return Err(CgroupError::MissingFile {
                            container: name.to_string(),
                            field: f.to_string(),
                            path,
                            hint: hint_for(w.file).to_string(),
                        })
                    }
                    None => continue,
                }
            }
            // v2 files have an explicit "inherit" (empty), so FromParent never comes up.
            if let Value::Text(t) = &w.value {
                write(&path, t)?;
            }
        }
        Ok(())
    }

    /// Replace the container's eBPF device filter.
    pub fn set_devices(&self, name: &str, rules: &[DeviceRule]) -> Result<()> {
        bpf::install(&self.dir(name), rules)
    }

    fn freeze_file(&self, name: &str) -> Result<PathBuf> {
        let f = self.dir(name).join("cgroup.freeze");
        if f.exists() {
            Ok(f)
        } else {
            Err(CgroupError::Unsupported {
                what: "pause",
                path: f,
                hint: "use kernel 5.2 or newer",
            })
        }
    }

    /// Freeze and wait for `frozen 1` in cgroup.events.
    pub fn freeze(&self, name: &str) -> Result<()> {
        let f = self.freeze_file(name)?;
        write(&f, "1")?;
        let events = self.dir(name).join("cgroup.events");
        let start = Instant::now();
        loop {
            if stats::parse_keyed(&read(&events)?, "frozen") == Some(1) {
                return Ok(());
            }
            if start.elapsed() > super::FREEZE_WAIT {
                let _ = write(&f, "0");
                return Err(CgroupError::FreezeTimeout {
                    path: f,
                    secs: super::FREEZE_WAIT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Thaw.
    pub fn thaw(&self, name: &str) -> Result<()> {
        write(&self.freeze_file(name)?, "0")
    }

    /// Every pid in the container's cgroup and its child cgroups.
    pub fn pids(&self, name: &str) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        collect_pids(&self.dir(name), &mut out)?;
        Ok(out)
    }

    /// cgroup.kill (5.14+) kills the whole subtree atomically; older kernels:
    /// freeze so nothing forks, SIGKILL each pid, thaw so the kill lands.
    pub fn kill_all(&self, name: &str) -> Result<()> {
        let dir = self.dir(name);
        let kill = dir.join("cgroup.kill");
        if self.cgroup_kill && kill.exists() {
            return write(&kill, "1");
        }
        let frozen = self.freeze(name).is_ok();
        let killed = self.pids(name).and_then(|p| kill_pids(&p, &dir));
        if frozen {
            self.thaw(name)?;
        }
        killed
    }

    /// Accounting.
    pub fn stats(&self, name: &str) -> stats::CgroupStats {
        stats::read_v2(&self.dir(name))
    }

    /// Remove the container's cgroup and any it made below.
    pub fn remove(&self, name: &str) -> Result<()> {
        remove_tree(&self.dir(name), super::REMOVE_WAIT)
    }

    /// Remove the containers' parent if it is empty.
    pub fn remove_parent(&self) -> Result<()> {
        let p = self.parent();
        match std::fs::remove_dir(&p) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::EBUSY | libc::ENOTEMPTY)
                ) =>
            {
                Ok(())
            }
            Err(source) => Err(CgroupError::Remove { path: p, source }),
        }
    }
}

/// Enable every wanted controller the level has but does not yet pass down.
/// A refusal is not fatal here: `apply` reports a missing controller with the
/// manifest field that needs it, which says more than EBUSY would.
fn enable_controllers(level: &Path) {
    let Some(avail) = read_opt(&level.join("cgroup.controllers")) else {
        return;
    };
    let enabled = read_opt(&level.join("cgroup.subtree_control")).unwrap_or_default();
    let enabled: BTreeSet<&str> = enabled.split_whitespace().collect();
    for c in avail.split_whitespace() {
        if V2_CONTROLLERS.contains(&c) && !enabled.contains(c) {
            let _ = write(&level.join("cgroup.subtree_control"), &format!("+{c}"));
        }
    }
}

fn hint_for(file: &str) -> &'static str {
    match file {
        "memory.swap.max" => "enable CONFIG_MEMCG_SWAP (and swapaccount=1 on kernels before 6.1)",
        "cpu.max" => "enable CONFIG_CFS_BANDWIDTH",
        _ => "use a kernel that has it",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cgroup::{CgroupBackend, Layout, ParentPolicy};
    use crate::model::CpuMax;

    fn touch(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).expect("mkdir");
        for (f, v) in files {
            std::fs::write(dir.join(f), v).expect("write");
        }
    }

    fn get(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// A fake cgroup2 mount in a temp dir: root with all controllers, a procd
    /// instance cgroup holding two processes.
    fn fake(own: &str) -> (tempfile::TempDir, CgroupBackend) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let m = tmp.path();
        let all = "cpuset cpu io memory hugetlb pids rdma misc";
        touch(
            m,
            &[
                ("cgroup.controllers", all),
                ("cgroup.subtree_control", ""),
                ("cgroup.procs", "1\n"),
            ],
        );
        let mi = format!(
            "25 20 0:22 / {} rw - cgroup2 cgroup2 rw,nsdelegate\n",
            m.display()
        );
        let layout = Layout::parse(&mi, &format!("0::{own}\n")).expect("layout");
        let b = CgroupBackend::from_layout(&layout, &ParentPolicy::Auto).expect("backend");
        (tmp, b)
    }

    #[test]
    fn delegated_instance_moves_into_leaf_and_enables_down() {
        let (tmp, b) = fake("/services/berth/instance1");
        let m = tmp.path();
        let sub = [
            ("cgroup.controllers", "cpu memory pids"),
            ("cgroup.subtree_control", ""),
        ];
        touch(&m.join("services"), &sub);
        touch(&m.join("services/berth"), &sub);
        let inst = m.join("services/berth/instance1");
        touch(
            &inst,
            &[
                ("cgroup.controllers", "cpu memory pids"),
                ("cgroup.subtree_control", ""),
                ("cgroup.procs", "77\n78\n"),
            ],
        );
        // What the kernel would create with the directories.
        touch(&inst.join("supervisor"), &[("cgroup.procs", "")]);
        touch(
            &inst.join("containers"),
            &[
                ("cgroup.controllers", "cpu memory pids"),
                ("cgroup.subtree_control", ""),
            ],
        );
        b.create("web").expect("create");
        // Both processes were moved (the fake keeps the last write).
        assert_eq!(get(&inst.join("supervisor/cgroup.procs")), "78");
        // Each level passes its controllers on; the last write per file is the last one enabled.
        assert_eq!(get(&m.join("cgroup.subtree_control")), "+pids");
        assert_eq!(get(&inst.join("cgroup.subtree_control")), "+pids");
        assert_eq!(
            get(&inst.join("containers/cgroup.subtree_control")),
            "+pids"
        );
        assert!(inst.join("containers/web").is_dir());
        // hugetlb, rdma and misc are never enabled: only what berth uses.
        assert!(!get(&m.join("cgroup.subtree_control")).contains("hugetlb"));
    }

    #[test]
    fn already_enabled_controllers_are_not_rewritten() {
        let (tmp, b) = fake("/");
        let m = tmp.path();
        std::fs::write(
            m.join("cgroup.subtree_control"),
            "cpuset cpu io memory pids",
        )
        .expect("w");
        touch(
            &m.join("berth"),
            &[
                ("cgroup.controllers", ""),
                ("cgroup.subtree_control", "untouched"),
            ],
        );
        b.create("web").expect("create");
        assert_eq!(
            get(&m.join("cgroup.subtree_control")),
            "cpuset cpu io memory pids"
        );
        assert_eq!(get(&m.join("berth/cgroup.subtree_control")), "untouched");
    }

    fn container(m: &Path, controllers: &str) -> PathBuf {
        let d = m.join("berth/web");
        let files: Vec<(&str, &str)> = [
            "memory.max",
            "memory.low",
            "memory.swap.max",
            "cpu.weight",
            "cpu.max",
            "pids.max",
            "cpuset.cpus",
            "cpuset.mems",
            "io.weight",
            "cgroup.procs",
            "cgroup.freeze",
            "cgroup.kill",
        ]
        .iter()
        .map(|f| (*f, ""))
        .collect();
        touch(&d, &files);
        std::fs::write(d.join("cgroup.controllers"), controllers).expect("w");
        d
    }

    #[test]
    fn apply_writes_v2_files() {
        let (tmp, b) = fake("/");
        let d = container(tmp.path(), "cpuset cpu io memory pids");
        let r = ResourceSpec {
            memory: Some(32 << 20),
            swap: Some(0),
            cpu_weight: Some(50),
            cpu_max: Some(CpuMax {
                quota_us: 50_000,
                period_us: 100_000,
            }),
            pids: Some(16),
            io_weight: Some(300),
            ..Default::default()
        };
        b.apply("web", &r).expect("apply");
        for (f, v) in [
            ("memory.max", "33554432"),
            ("memory.low", "0"),
            ("memory.swap.max", "0"),
            ("cpu.weight", "50"),
            ("cpu.max", "50000 100000"),
            ("pids.max", "16"),
            ("cpuset.cpus", "\n"),
            ("io.weight", "default 300"),
        ] {
            assert_eq!(get(&d.join(f)), v, "{f}");
        }
        b.place("web", 99).expect("place");
        assert_eq!(get(&d.join("cgroup.procs")), "99");
    }

    #[test]
    fn missing_controller_error_names_field_and_config() {
        let (tmp, b) = fake("/");
        std::fs::write(tmp.path().join("cgroup.controllers"), "cpu pids").expect("w");
        container(tmp.path(), "cpu pids");
        // Resets for missing controllers are skipped.
        b.apply(
            "web",
            &ResourceSpec {
                pids: Some(3),
                ..Default::default()
            },
        )
        .expect("apply");
        let err = b
            .apply(
                "web",
                &ResourceSpec {
                    memory: Some(1),
                    ..Default::default()
                },
            )
            .expect_err("no memory");
        assert_eq!(
            err.to_string(),
            "containers.web.resources.memory needs the memory controller; enable CONFIG_MEMCG"
        );
        // The kernel has io but the parent did not pass it down: a delegation hint.
        std::fs::write(tmp.path().join("cgroup.controllers"), "cpu pids io").expect("w");
        let err = b
            .apply(
                "web",
                &ResourceSpec {
                    io_weight: Some(5),
                    ..Default::default()
                },
            )
            .expect_err("no io");
        assert!(
            err.to_string()
                .contains("not enabled in cgroup.subtree_control"),
            "{err}"
        );
    }

    #[test]
    fn kill_prefers_cgroup_kill_and_freeze_needs_events() {
        let (tmp, b) = fake("/");
        let d = container(tmp.path(), "pids");
        b.kill_all("web").expect("kill");
        assert_eq!(get(&d.join("cgroup.kill")), "1");
        std::fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").expect("w");
        b.freeze("web").expect("freeze");
        assert_eq!(get(&d.join("cgroup.freeze")), "1");
        b.thaw("web").expect("thaw");
        assert_eq!(get(&d.join("cgroup.freeze")), "0");
        std::fs::remove_file(d.join("cgroup.freeze")).expect("rm");
        let err = b.freeze("web").expect_err("no freeze");
        assert!(err.to_string().starts_with("pause needs `"), "{err}");
    }

    #[test]
    fn pids_include_child_cgroups() {
        let (tmp, b) = fake("/");
        let d = container(tmp.path(), "pids");
        std::fs::write(d.join("cgroup.procs"), "5\n").expect("w");
        touch(&d.join("inner"), &[("cgroup.procs", "6\n7\n")]);
        let mut p = b.pids("web").expect("pids");
        p.sort_unstable();
        assert_eq!(p, vec![5, 6, 7]);
    }

    /// A full-OS container's init goes into `<name>/payload` with the
    /// controllers handed down to it; the limits stay on `<name>`, above the
    /// root of its cgroup namespace.
    #[test]
    fn full_os_init_goes_into_the_payload_leaf() {
        let (tmp, b) = fake("/user.slice/session-1.scope");
        b.create("os").expect("create");
        let dir = tmp.path().join("berth/os");
        std::fs::write(dir.join("cgroup.controllers"), "cpu memory pids").expect("w");
        std::fs::write(dir.join("cgroup.subtree_control"), "").expect("w");
        std::fs::write(dir.join("cgroup.max.descendants"), "max").expect("w");
        std::fs::write(dir.join("cgroup.max.depth"), "max").expect("w");
        let p = b.placement("os", true).expect("placement");
        // The bounds of its tree, on the cgroup above its view.
        assert_eq!(get(&dir.join("cgroup.max.descendants")), "1024");
        assert_eq!(get(&dir.join("cgroup.max.depth")), "32");
        assert_eq!(p.tree, Some(InitTree::Unified));
        assert_eq!(p.procs, [dir.join("payload/cgroup.procs")]);
        assert!(dir.join("payload").is_dir());
        // The fake file keeps the last write: each controller is enabled.
        assert_eq!(get(&dir.join("cgroup.subtree_control")), "+pids");
        let plain = b.placement("os", false).expect("placement");
        assert_eq!(plain.procs, [dir.join("cgroup.procs")]);
        assert_eq!(plain.tree, None);
    }
}
