//! The world of the `berth apply` root tests (tests/root_apply.rs,
//! tests/root_crash.rs): a named network namespace that plays the router's
//! host side, with a store, a runtime dir and a cgroup parent of its own, all
//! removed in `Drop` even when the test fails.

#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// One test's world: a named netns, a store, a runtime dir, a cgroup parent.
pub struct World {
    pub name: String,
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new(test: &str) -> World {
        let name = format!("bt-{}-{test}", std::process::id());
        crate::common::add_netns(&name);
        let w = World {
            name,
            dir: tempfile::tempdir().unwrap(),
        };
        w.sh("ip link set lo up");
        w
    }

    pub fn manifest(&self, containers: &str) -> PathBuf {
        let store = self.dir.path().join("store");
        let run = self.dir.path().join("run");
        let text = format!(
            "version: 1\nsettings: {{ root: {}, runtime_dir: {} }}\nimages:\n  bb: {{ path: {} }}\nnetworks:\n  lan: {{ type: bridge, bridge: br-t, create: true, address: 10.77.0.1/24 }}\ncontainers:{containers}\n",
            store.display(),
            run.display(),
            crate::common::rootfs_tarball().display()
        );
        let p = self.dir.path().join("m.yaml");
        fs::write(&p, text).unwrap();
        p
    }

    /// Run berth with `args` inside the test's network namespace.
    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.name))
            .arg(env!("CARGO_BIN_EXE_berth"))
            .args(["--cgroup-parent", &self.name, "--runtime-dir"])
            .arg(self.dir.path().join("run"))
            .args(args)
            .output()
            .unwrap()
    }

    /// Run berth with `args` in the world's netns, with `dir` bound
    /// read-only in a private mount namespace: a write there fails the run.
    pub fn berth_read_only(&self, dir: &std::path::Path, args: &[&str]) -> Output {
        let d = dir.to_str().unwrap();
        let script = format!(
            "mount --make-rprivate / && mount --bind {d} {d} && mount -o remount,bind,ro {d} && \
             exec nsenter --net=/run/netns/{} \"$@\"",
            self.name
        );
        Command::new("unshare")
            .args(["-m", "sh", "-c", &script, "sh"])
            .arg(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .output()
            .unwrap()
    }

    pub fn apply(&self, containers: &str) -> String {
        let m = self.manifest(containers);
        let out = self.berth(&["apply", m.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "apply failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    pub fn sh(&self, cmd: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", cmd])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn pid(&self, container: &str) -> Option<i32> {
        let out = self.berth(&["status", container, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.get("containers")?
            .get(0)?
            .get("pid")?
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
    }

    pub fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn fetch(&self, addr: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let page = self.sh(&format!(
                "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 {addr} 80"
            ));
            if page.contains("served by berth") || Instant::now() > deadline {
                return page;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first of `files` (v1 name, v2 name) in the container's cgroup, in
    /// any hierarchy; it must exist.
    pub fn cgroup_value(&self, container: &str, files: &[&str]) -> String {
        let found = self
            .cgroups()
            .iter()
            .flat_map(|c| files.iter().map(move |f| c.join(container).join(f)))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("none of {files:?} in the cgroup of `{container}`"));
        fs::read_to_string(found).unwrap().trim().to_string()
    }

    /// Whether the container's cgroup is frozen (v1 freezer or v2 cgroup.freeze).
    pub fn frozen(&self, container: &str) -> bool {
        matches!(
            self.cgroup_value(container, &["freezer.state", "cgroup.freeze"])
                .as_str(),
            "FROZEN" | "1"
        )
    }

    pub fn cgroups(&self) -> Vec<PathBuf> {
        crate::common::cgroup_dirs(&self.name)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Stop whatever a failed test left running, then remove the pieces.
        let m = self.manifest(" {}");
        let _ = self.berth(&["apply", m.to_str().unwrap()]);
        crate::common::remove_cgroups(&self.name);
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
