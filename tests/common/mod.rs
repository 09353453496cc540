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
