//! The container fixture of the runtime's root tests (tests/root_runtime.rs,
//! tests/root_lifecycle.rs): a busybox-static rootfs in a temp dir, its
//! runtime and store dirs, and (when a test asks) its own cgroup, removed in
//! `Drop` even when the test fails.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth::host::runtime::oneshot::default_spec;
use berth::host::runtime::rundir;
use berth::host::runtime::{Options, Paths, Runtime, RuntimeError};
use berth::model::Spec;

/// Root and busybox present; `name` is the test file, for the skip message.
pub fn root_in(name: &str) -> bool {
    if !crate::common::root_or_skip(name) {
        return false;
    }
    if !Path::new("/bin/busybox").exists() {
        panic!("/bin/busybox is missing: apt-get install busybox-static");
    }
    true
}

/// The berth binary: cargo's, or `BERTH_BIN` where the tests run elsewhere
/// (the VM tier copies binaries to /tests).
pub fn berth_bin() -> String {
    std::env::var("BERTH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth").to_string())
}

/// A container's dirs: rootfs from busybox, runtime dir, store dir.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub paths: Paths,
    pub cgroup: Option<PathBuf>,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
            }
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .unwrap();
        fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        let paths = Paths {
            rootfs,
            run_dir: dir.path().join("run"),
            container_dir: dir.path().join("container"),
            volumes_dir: dir.path().join("volumes"),
        };
        Fixture {
            dir,
            paths,
            cgroup: None,
        }
    }

    /// Its own cgroup (v1 pids hierarchy on this hybrid machine).
    pub fn with_cgroup(mut self) -> Self {
        let name = format!(
            "berth-test-{}-{}",
            std::process::id(),
            self.dir.path().file_name().unwrap().to_string_lossy()
        );
        let cg = cgroup_parent().join(name);
        fs::create_dir(&cg).unwrap();
        self.cgroup = Some(cg);
        self
    }

    pub fn options(&self) -> Options {
        Options {
            cgroup_procs: self.cgroup.iter().map(|c| c.join("cgroup.procs")).collect(),
            ..Options::default()
        }
    }

    /// Run `spec` in the foreground through `berth __run`: (exit code, stdout+stderr).
    pub fn run(&self, spec: &Spec) -> (i32, String) {
        let file = self.dir.path().join("spec.json");
        fs::write(&file, serde_json::to_vec(spec).unwrap()).unwrap();
        let out = Command::new(berth_bin())
            .args(["__run", "--rootfs"])
            .arg(&self.paths.rootfs)
            .arg("--spec")
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    }

    pub fn runtime(&self) -> Runtime {
        Runtime::new(berth_bin().into())
    }

    pub fn start(&self, spec: &Spec) -> Result<i32, RuntimeError> {
        self.runtime().start(
            spec,
            &self.paths,
            &self.options(),
            &mut berth::host::runtime::spawn::NoHook,
        )
    }

    pub fn state(&self) -> rundir::ContainerState {
        rundir::load(&self.paths.run_dir)
            .unwrap()
            .expect("a state file")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.runtime().remove(&self.paths.run_dir);
        if let Some(cg) = &self.cgroup {
            berth::host::runtime::kill_all(&[cg.join("cgroup.procs")], None);
            for _ in 0..100 {
                if fs::remove_dir(cg).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Where test cgroups go: the v1 pids hierarchy on this hybrid machine, the
/// cgroup2 root on a pure v2 host.
pub fn cgroup_parent() -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/pids");
    if v1.join("cgroup.procs").exists() {
        v1.to_path_buf()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

pub fn sh(name: &str, script: &str) -> Spec {
    default_spec(name, vec!["/bin/sh".into(), "-c".into(), script.into()])
}

pub fn cap_line(out: &str, key: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in {out}"))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

pub fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
