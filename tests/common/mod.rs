//! Shared by the root test files (tests/root_*.rs).

#![allow(dead_code)]

/// True when this process may run root tests. Without root a test prints why it
/// skips; under `make test` (BERTH_ROOT_TESTS=required) a skip is a failure.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var("BERTH_ROOT_TESTS").as_deref() != Ok("required"),
            "{test}: needs root, and `make test` requires root tests to run"
        );
        eprintln!("skip {test}: needs root");
    }
    root
}

/// The busybox rootfs tarball `make rootfs` builds.
pub fn rootfs_tarball() -> std::path::PathBuf {
    std::env::var_os("BERTH_TEST_ROOTFS")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("build/busybox-rootfs.tar.gz")
        })
}

/// The cgroup `name` (a test's `--cgroup-parent`) in every hierarchy that has it.
pub fn cgroup_dirs(name: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for ctrl in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = ctrl.path().join(name);
        if p.is_dir() {
            out.push(p);
        }
    }
    out
}

/// Remove a test's cgroup parent `name` and the (empty) container cgroups in it.
pub fn remove_cgroups(name: &str) {
    for cg in cgroup_dirs(name) {
        for child in std::fs::read_dir(&cg).into_iter().flatten().flatten() {
            if child.path().is_dir() {
                let _ = std::fs::remove_dir(child.path());
            }
        }
        let _ = std::fs::remove_dir(&cg);
    }
}

/// A named network namespace for one test (`ip netns add`); the test deletes it in `Drop`.
pub fn add_netns(name: &str) {
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", name])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip netns add {name}");
}
