//! The default seccomp filter on the kernel it runs on, for this target's own
//! ABI: the foreign-kernel VM tier (mk/foreign.mk) runs these on arm64, armhf
//! (EABI) and mipsel (o32) kernels, `make test` on x86_64. Each check runs in a
//! thread of its own: a filter (and no_new_privs) binds only the thread that
//! installs it, so the test process is left as it was. Root: without the
//! filter the calls must fail for their bad arguments, not for want of a
//! capability.
//!
//! The filter takes its numbers from the Rust libc crate; the calls below go
//! through the C library (musl), which has its own syscall tables. A call the
//! C library makes under another number than the filter denies would pass.

// Test setup: a failed step should panic with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::CString;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;

use berth::host::runtime::seccomp;

/// Run `f` in a new thread under the default filter with no capability kept.
fn confined<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: prctl with integer arguments only changes this thread.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        assert_eq!(rc, 0, "PR_SET_NO_NEW_PRIVS: {}", io::Error::last_os_error());
        seccomp::install(&seccomp::default_filter(0)).expect("install the default filter");
        f()
    })
    .join()
    .expect("confined thread")
}

fn errno_of(rc: libc::c_int) -> Option<i32> {
    (rc == -1).then(|| io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// Bad pointers and values: without the filter each call fails harmlessly
/// (EFAULT, EINVAL, EBADF), so an errno other than EPERM means the call got
/// past the filter to the kernel.
const BAD_PTR: *const libc::c_char = 8 as *const libc::c_char;

type Call = (&'static str, fn() -> libc::c_int);

fn denied_calls() -> Vec<Call> {
    vec![
        // SAFETY (all): the kernel checks every pointer; none is dereferenced here.
        ("mount", || unsafe {
            libc::mount(BAD_PTR, BAD_PTR, BAD_PTR, 0, std::ptr::null())
        }),
        ("umount2", || unsafe { libc::umount2(BAD_PTR, 0) }),
        // All flag bits: EINVAL, and never a namespace of this test's thread.
        ("unshare", || unsafe { libc::unshare(-1) }),
        ("setns", || unsafe { libc::setns(-1, 0) }),
        ("chroot", || unsafe { libc::chroot(BAD_PTR) }),
        ("sethostname", || unsafe {
            libc::sethostname(BAD_PTR, 10_000)
        }),
        ("setdomainname", || unsafe {
            libc::setdomainname(BAD_PTR, 10_000)
        }),
        ("swapon", || unsafe { libc::swapon(BAD_PTR, 0) }),
        ("swapoff", || unsafe { libc::swapoff(BAD_PTR) }),
        ("acct", || unsafe { libc::acct(BAD_PTR) }),
        // clock_settime and clock_adjtime go through the 64-bit time calls
        // (404/405 on arm, 4404/4405 on mips o32) on 32-bit targets.
        ("clock_settime", || {
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            unsafe { libc::clock_settime(-1, &ts) }
        }),
        ("clock_adjtime", || {
            // SAFETY: an all-zero timex is a valid value of the C struct.
            let mut tx: libc::timex = unsafe { std::mem::zeroed() };
            unsafe { libc::clock_adjtime(-1, &mut tx) }
        }),
    ]
}

#[test]
fn denied_calls_fail_with_eperm_and_reach_the_kernel_without_the_filter() {
    if !common::root_or_skip("root_seccomp") {
        return;
    }
    let calls = denied_calls();
    let names: Vec<&str> = calls.iter().map(|(n, _)| *n).collect();
    let fns: Vec<fn() -> libc::c_int> = calls.iter().map(|(_, f)| *f).collect();
    let open: Vec<Option<i32>> = fns.iter().map(|f| errno_of(f())).collect();
    let confined_fns = fns.clone();
    let shut: Vec<Option<i32>> =
        confined(move || confined_fns.iter().map(|f| errno_of(f())).collect());
    for ((name, open), shut) in names.iter().zip(&open).zip(&shut) {
        assert_eq!(*shut, Some(libc::EPERM), "{name} under the filter");
        // Not ENOSYS without the filter: the number the C library uses is a
        // syscall of this kernel, so the filter denied the real call.
        assert!(
            matches!(open, Some(e) if *e != libc::ENOSYS && *e != libc::EPERM),
            "{name} without the filter: {open:?}"
        );
    }
}

#[test]
fn allowed_calls_work_under_the_filter() {
    if !common::root_or_skip("root_seccomp") {
        return;
    }
    let out = confined(|| {
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: uts is a valid, writable utsname.
        let uname = unsafe { libc::uname(&mut uts) };
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid, writable timespec.
        let clock = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"ok").unwrap();
        let read = std::fs::read(&file).unwrap();
        // fork + exec (clone without namespace flags) and wait.
        let child = Command::new("/bin/busybox").arg("true").status();
        // clone with a namespace flag is denied: unshare -U in a child.
        let ns = Command::new("/bin/busybox")
            .args(["unshare", "-U", "true"])
            .status();
        (
            uname,
            clock,
            read,
            child.map(|s| s.code()),
            ns.map(|s| s.success()),
        )
    });
    assert_eq!(out.0, 0, "uname");
    assert_eq!(out.1, 0, "clock_gettime");
    assert_eq!(out.2, b"ok");
    assert_eq!(out.3.unwrap(), Some(0), "busybox true under the filter");
    assert!(!out.4.unwrap(), "unshare -U got through the filter");
}

/// A binary of another ABI of this kernel (an armhf busybox on an arm64
/// kernel), given by the VM tier. Its calls carry another AUDIT_ARCH and
/// other numbers: the filter must kill it, not let it through.
#[test]
fn another_abi_is_killed() {
    // The arm64 VM scenario (tests/vm/scenarios/seccomp-abi) sets it.
    let Some(bin) = std::env::var_os("BERTH_FOREIGN_ABI_BUSYBOX") else {
        eprintln!("skip another_abi_is_killed: no BERTH_FOREIGN_ABI_BUSYBOX on this machine");
        return;
    };
    // argv[0] `busybox`: the applet is then the first argument.
    let busybox = |bin: &std::ffi::OsStr| {
        let mut c = Command::new(bin);
        c.arg0("busybox");
        c
    };
    let ok = busybox(&bin).arg("true").status().unwrap();
    assert!(ok.success(), "{bin:?} does not run on this kernel: {ok:?}");
    let bin2 = bin.clone();
    let status = confined(move || busybox(&bin2).arg("true").status().unwrap());
    assert_eq!(
        status.signal(),
        Some(libc::SIGSYS),
        "{bin:?} under the filter: {status:?}"
    );
    // Nothing it tried happened: it was killed at its first call.
    let marker = tempfile::tempdir().unwrap();
    let path = marker.path().join("touched");
    let p = CString::new(path.to_str().unwrap()).unwrap();
    let bin3 = bin.clone();
    let status = confined(move || {
        busybox(&bin3)
            .args(["touch", p.to_str().unwrap()])
            .status()
            .unwrap()
    });
    assert_eq!(status.signal(), Some(libc::SIGSYS));
    assert!(!path.exists(), "the other ABI's touch ran");
}
