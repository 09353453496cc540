//! Root tests of `LocalHost`'s rollback: a create or a start that fails at any
//! step leaves nothing behind on the host (no mount, no process, no cgroup it
//! made, no container dir from a failed create). The network and the process
//! runtime are recording fakes around the real ones that fail a chosen step;
//! the store, the layer mounts and the cgroups are real.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use berth::host::cgroup::ParentPolicy;
use berth::host::net::{Interface, NetError, NetnsRef, Network, Who};
use berth::host::runtime::{
    ContainerState, Options, Paths, ProcessRuntime, Runtime, RuntimeError, SetupHook, Status,
};
use berth::host::{Host, HostErrorKind, LocalConfig, LocalHost};
use berth::manifest::{self, RenderInput};
use berth::model::{Cidr, Desired, NetworkSpec, SettingsSpec, Spec};

/// Which calls were made, and which one fails.
#[derive(Default)]
struct Script {
    calls: Vec<String>,
    fail: Option<&'static str>,
}

type Shared = Rc<RefCell<Script>>;

fn call(s: &Shared, op: &'static str) -> bool {
    let mut s = s.borrow_mut();
    s.calls.push(op.to_string());
    s.fail == Some(op)
}

fn net_error(op: &str) -> NetError {
    NetError::Netlink {
        who: Who {
            network: "lan".into(),
            container: Some("c".into()),
        },
        op: op.to_string(),
        source: io::Error::from_raw_os_error(libc::EIO),
    }
}

/// No netlink at all: the container has a network namespace of its own and
/// the fake only records what `LocalHost` asks of the network.
struct FakeNet(Shared);

impl Network for FakeNet {
    fn ensure_network(&self, _: &NetworkSpec, _: &[Cidr]) -> Result<(), NetError> {
        match call(&self.0, "ensure_network") {
            true => Err(net_error("ensure_network")),
            false => Ok(()),
        }
    }
    fn attach(
        &self,
        _: &Spec,
        _: &BTreeMap<String, NetworkSpec>,
        _: NetnsRef<'_>,
    ) -> Result<Vec<Interface>, NetError> {
        match call(&self.0, "attach") {
            true => Err(net_error("attach")),
            false => Ok(Vec::new()),
        }
    }
    fn detach(&self, _: &str) -> Result<Vec<String>, NetError> {
        call(&self.0, "detach");
        Ok(Vec::new())
    }
    fn cleanup_stale(&self, _: &str) -> Result<Vec<String>, NetError> {
        match call(&self.0, "cleanup_stale") {
            true => Err(net_error("cleanup_stale")),
            false => Ok(Vec::new()),
        }
    }
    fn remove_network(&self, _: &str) -> Result<Vec<String>, NetError> {
        call(&self.0, "remove_network");
        Ok(Vec::new())
    }
}

/// The real runtime (monitors run the berth binary), failing `start` on demand
/// before it runs anything.
struct FakeRuntime(Shared, Runtime);

impl ProcessRuntime for FakeRuntime {
    fn start(
        &self,
        spec: &Spec,
        paths: &Paths,
        opts: &Options,
        hook: &mut dyn SetupHook,
    ) -> Result<i32, RuntimeError> {
        if call(&self.0, "runtime_start") {
            return Err(RuntimeError::Sys {
                verb: "start the monitor",
                source: io::Error::from_raw_os_error(libc::EAGAIN),
            });
        }
        self.1.start(spec, paths, opts, hook)
    }
    fn stop(&self, run_dir: &Path, timeout: Option<u32>) -> Result<Status, RuntimeError> {
        call(&self.0, "runtime_stop");
        self.1.stop(run_dir, timeout)
    }
    fn kill(&self, run_dir: &Path, signal: i32) -> Result<(), RuntimeError> {
        self.1.kill(run_dir, signal)
    }
    fn remove(&self, run_dir: &Path) -> Result<(), RuntimeError> {
        self.1.remove(run_dir)
    }
    fn status(&self, run_dir: &Path) -> Result<(Status, Option<ContainerState>), RuntimeError> {
        self.1.status(run_dir)
    }
}

/// A store, a runtime dir and a cgroup parent of the test's own.
struct World {
    dir: tempfile::TempDir,
    parent: String,
    script: Shared,
}

impl World {
    fn new(tag: &str) -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
            parent: format!("berth-rollback-{}-{tag}", std::process::id()),
            script: Shared::default(),
        }
    }

    fn host(&self) -> LocalHost {
        let cfg = LocalConfig {
            store_root: self.dir.path().join("store"),
            runtime_root: self.dir.path().join("run"),
            cgroup_parent: ParentPolicy::Fixed(self.parent.clone()),
            settings: SettingsSpec::default(),
            fetch: berth::host::store::FetchOptions::default(),
        };
        let berth = Runtime::new(env!("CARGO_BIN_EXE_berth").into());
        LocalHost::with_backends(
            cfg,
            Box::new(FakeNet(self.script.clone())),
            Box::new(FakeRuntime(self.script.clone(), berth)),
        )
    }

    /// One container `c` on a bridge network (faked), with `extra` fields.
    fn desired(&self, extra: &str) -> Desired {
        let yaml = format!(
            "version: 1\nimages:\n  bb: {{ path: {} }}\nnetworks:\n  lan: {{ type: bridge, bridge: br-rb }}\ncontainers:\n  c: {{ image: bb, command: [sleep, '600'], network: [{{ network: lan }}]{extra} }}\n",
            common::rootfs_tarball().display()
        );
        let mut d = manifest::load("m.yaml", &yaml, "/", &RenderInput::default())
            .unwrap()
            .desired;
        let digest = berth::host::store::digests::LocalDigests::open(self.dir.path())
            .digest(&common::rootfs_tarball())
            .unwrap();
        for i in d.images.values_mut() {
            i.sha256 = Some(digest.clone());
        }
        for c in d.containers.values_mut() {
            c.image_sha256 = Some(digest.clone());
        }
        d
    }

    fn merged(&self) -> PathBuf {
        self.dir.path().join("store/containers/c/merged")
    }

    fn container_dir(&self) -> PathBuf {
        self.dir.path().join("store/containers/c")
    }

    /// Every cgroup directory of container `c`: under each v1 hierarchy
    /// (/sys/fs/cgroup/CONTROLLER) or the unified root.
    fn cgroups(&self) -> Vec<PathBuf> {
        let root = Path::new("/sys/fs/cgroup");
        let hierarchies = fs::read_dir(root).unwrap().flatten().map(|e| e.path());
        std::iter::once(root.to_path_buf())
            .chain(hierarchies)
            .map(|h| h.join(&self.parent).join("c"))
            .filter(|c| c.is_dir())
            .collect()
    }

    fn processes(&self) -> usize {
        self.cgroups()
            .iter()
            .map(|c| {
                fs::read_to_string(c.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .count()
            })
            .sum()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let mut host = self.host();
        let _ = host.remove("c");
        for entry in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let p = entry.path().join(&self.parent);
            let _ = fs::remove_dir(p.join("c"));
            let _ = fs::remove_dir(&p);
        }
        let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(&self.parent));
    }
}

fn is_mountpoint(dir: &Path) -> bool {
    let want = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// Create, then a start that fails at `step`: the container is left as create
/// left it, and a start after that works.
fn failed_start_leaves_nothing(step: &'static str) {
    if !common::root_or_skip(step) {
        return;
    }
    let w = World::new(step);
    let d = w.desired("");
    let spec = &d.containers["c"];
    let mut host = w.host();
    host.ensure_image(&d.images["bb"]).unwrap();
    host.create(spec, &d).unwrap();
    w.script.borrow_mut().fail = Some(step);

    let err = host.start(spec, &d).expect_err(step);

    let calls = w.script.borrow().calls.clone();
    assert!(
        calls.iter().any(|c| c == step),
        "{step} was never reached: {calls:?}"
    );
    let typed = match err.kind() {
        HostErrorKind::Net(_) => step != "runtime_start",
        HostErrorKind::Runtime(_) => step == "runtime_start",
        _ => false,
    };
    assert!(typed, "{step}: the backend's own error type: {err:?}");
    assert!(
        !is_mountpoint(&w.merged()),
        "{step}: the root is still mounted"
    );
    assert_eq!(w.processes(), 0, "{step}: processes left in the cgroup");
    assert!(!host.is_running("c").unwrap(), "{step}: the container runs");
    assert!(
        calls.iter().any(|c| c == "detach"),
        "{step}: no detach: {calls:?}"
    );

    // The rollback left a container that starts.
    w.script.borrow_mut().fail = None;
    host.start(spec, &d).unwrap();
    assert!(host.is_running("c").unwrap());
}

#[test]
fn start_rolls_back_a_failed_network() {
    failed_start_leaves_nothing("ensure_network");
}

#[test]
fn start_rolls_back_a_failed_stale_cleanup() {
    failed_start_leaves_nothing("cleanup_stale");
}

#[test]
fn start_rolls_back_a_failed_runtime() {
    failed_start_leaves_nothing("runtime_start");
}

#[test]
fn start_rolls_back_a_failed_attach_inside_the_setup_hook() {
    failed_start_leaves_nothing("attach");
}

#[test]
fn a_failed_start_of_a_running_container_leaves_it_running() {
    if !common::root_or_skip("running") {
        return;
    }
    let w = World::new("running");
    let d = w.desired("");
    let spec = &d.containers["c"];
    let mut host = w.host();
    host.ensure_image(&d.images["bb"]).unwrap();
    host.create(spec, &d).unwrap();
    host.start(spec, &d).unwrap();
    w.script.borrow_mut().fail = Some("cleanup_stale");
    host.start(spec, &d).expect_err("cleanup_stale fails");
    assert!(
        host.is_running("c").unwrap(),
        "a rollback stopped a running container"
    );
    assert!(is_mountpoint(&w.merged()));
}

#[test]
fn create_rolls_back_a_cgroup_the_kernel_refuses() {
    if !common::root_or_skip("create") {
        return;
    }
    let w = World::new("create");
    // No machine here has CPU 4000: the kernel refuses the cpuset write.
    let d = w.desired(", resources: { cpuset: { cpus: '4000' } }");
    let spec = &d.containers["c"];
    let mut host = w.host();
    host.ensure_image(&d.images["bb"]).unwrap();

    let err = host.create(spec, &d).expect_err("cpuset 4000");

    assert!(matches!(err.kind(), HostErrorKind::Cgroup(_)), "{err:?}");
    assert!(w.cgroups().is_empty(), "cgroup left: {:?}", w.cgroups());
    assert!(!w.container_dir().exists(), "container dir left");
}

#[test]
fn create_of_a_missing_image_makes_nothing() {
    if !common::root_or_skip("missing") {
        return;
    }
    let w = World::new("missing");
    let d = w.desired("");
    let mut spec = d.containers["c"].clone();
    spec.image_sha256 = Some("0".repeat(64));
    let mut host = w.host();

    let err = host.create(&spec, &d).expect_err("no such image");

    assert!(matches!(err.kind(), HostErrorKind::Local(_)), "{err:?}");
    assert!(w.cgroups().is_empty());
    assert!(!w.container_dir().exists());
}
