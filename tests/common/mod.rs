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

/// A seccomp filter on the calling process: syscall `nr` fails with ENOSYS,
/// as on a kernel that predates it; everything else runs. Inherited by what
/// it starts (berth, its monitor, the container's setup child), so a test
/// forces berth's fallback for that call. Root may load it without
/// no_new_privs. For `pre_exec`.
pub fn deny_with_enosys(nr: libc::c_long) -> std::io::Result<()> {
    let stmt = |code: u16, jf: u8, k: u32| libc::sock_filter { code, jt: 0, jf, k };
    let nr = u32::try_from(nr).unwrap_or(u32::MAX);
    let enosys = u32::try_from(libc::ENOSYS).unwrap_or(38);
    let prog = [
        stmt(0x20, 0, 0),                    // ld [nr]
        stmt(0x15, 1, nr),                   // jeq #nr, 0, 1
        stmt(0x06, 0, 0x0005_0000 | enosys), // ret ERRNO(ENOSYS)
        stmt(0x06, 0, 0x7fff_0000),          // ret ALLOW
    ];
    let fprog = libc::sock_fprog {
        len: 4,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: fprog points to four valid instructions that outlive the call.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
