//! Root tests of what a container must not get from the host through berth's
//! own processes: descriptors its caller left open (with close_range and with
//! the /proc/self/fd walk of older kernels), and the /proc files (environ,
//! mem, exe) of the `exec` join and of the monitor while they are still berth.
//! Every test runs the berth binary and looks from inside the container.

// Test setup: a failed step should panic with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runtime_fixture;

use std::fs;
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth::host::runtime::rundir;
use berth::model::{HostNamespace, Spec};

use runtime_fixture::*;

/// Its bit number (linux/capability.h).
const CAP_SYS_PTRACE: libc::c_ulong = 19;

fn root() -> bool {
    root_in("root_isolation")
}

/// In `cmd`'s child only: clear close-on-exec on `fds`, as a careless caller
/// of berth leaves them; with `old_kernel`, close_range(2) fails with ENOSYS
/// for berth and everything it starts, as on a 5.4 kernel.
fn hostile_caller(cmd: &mut Command, fds: Vec<RawFd>, old_kernel: bool) {
    // SAFETY: fcntl and prctl are async-signal-safe; the filter lives on the
    // child's stack for the call (the kernel copies it).
    unsafe {
        cmd.pre_exec(move || {
            for fd in &fds {
                if libc::fcntl(*fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if old_kernel {
                deny_close_range()?;
            }
            Ok(())
        });
    }
}

/// close_range(2) answers ENOSYS, as on kernels before 5.9.
fn deny_close_range() -> io::Result<()> {
    common::deny_with_enosys(libc::SYS_close_range)
}

/// `berth ARGS` with `--runtime-dir` after the subcommand: (code, stdout, stderr).
fn berth(rr: &Path, args: &[&str], setup: impl FnOnce(&mut Command)) -> (i32, String, String) {
    let mut cmd = Command::new(berth_bin());
    cmd.arg(args[0])
        .arg("--runtime-dir")
        .arg(rr)
        .args(&args[1..]);
    setup(&mut cmd);
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Start `spec` under a monitor from the berth binary (`__run --detach`, the
/// path of `apply` and `start`), with `setup` applied to that command.
fn start_detached(fx: &Fixture, rr: &Path, spec: &Spec, setup: impl FnOnce(&mut Command)) -> i32 {
    let file = fx.dir.path().join(format!("{}.json", spec.name));
    fs::write(&file, serde_json::to_vec(spec).unwrap()).unwrap();
    let mut cmd = Command::new(berth_bin());
    cmd.args(["__run", "--detach"])
        .arg(rr)
        .arg("--rootfs")
        .arg(&fx.paths.rootfs)
        .arg("--spec")
        .arg(&file);
    setup(&mut cmd);
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.trim().parse().unwrap()
}

/// A fixture whose runtime dir is `RR/NAME`, as the CLI finds it.
fn fixture(name: &str) -> (Fixture, PathBuf) {
    let mut fx = Fixture::new();
    let rr = fx.dir.path().join("rr");
    fx.paths.run_dir = rr.join(name);
    (fx, rr)
}

fn leaked_descriptors_never_reach_the_container(old_kernel: bool) {
    let name = if old_kernel { "fds-walk" } else { "fds" };
    let (fx, rr) = fixture(name);
    // A host directory and a file in it, open without close-on-exec in
    // whoever runs berth: the container must reach neither.
    let host = tempfile::tempdir().unwrap();
    let secret = format!("host-secret-{}", std::process::id());
    fs::write(host.path().join("secret"), &secret).unwrap();
    let dir = fs::File::open(host.path()).unwrap();
    let file = fs::File::open(host.path().join("secret")).unwrap();
    let leaked = vec![dir.as_raw_fd(), file.as_raw_fd()];
    // Lists the fds of init (pid 1) and of itself, then tries each fd of
    // both as the way out to the host directory.
    // (No pipe: the shell would hold its ends while `ls` runs.)
    let probe = "ls /proc/1/fd; echo --; ls /proc/$$/fd; echo --; \
                 cat /proc/1/fd/*/secret /proc/$$/fd/*/secret 2>/dev/null; true";

    // The foreground start (`__run`, no monitor): init lists its own fds.
    let spec = sh(
        name,
        "ls /proc/1/fd; echo --; cat /proc/1/fd/*/secret 2>&1; true",
    );
    let file_spec = fx.dir.path().join("fg.json");
    fs::write(&file_spec, serde_json::to_vec(&spec).unwrap()).unwrap();
    let mut cmd = Command::new(berth_bin());
    cmd.args(["__run", "--rootfs"])
        .arg(&fx.paths.rootfs)
        .arg("--spec")
        .arg(&file_spec);
    hostile_caller(&mut cmd, leaked.clone(), old_kernel);
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("0\n1\n2\n--\n"), "{text}");
    assert!(!text.contains(&secret), "{text}");

    // Under a monitor, then `berth exec`, each run with the leaked fds.
    let spec = sh(name, "exec sleep 300");
    start_detached(&fx, &rr, &spec, |c| {
        hostile_caller(c, leaked.clone(), old_kernel)
    });
    let (code, out, err) = berth(&rr, &["exec", name, "--", "sh", "-c", probe], |c| {
        hostile_caller(c, leaked.clone(), old_kernel)
    });
    assert_eq!(code, 0, "{out}{err}");
    let lists: Vec<&str> = out.split("--\n").collect();
    assert_eq!(lists[0], "0\n1\n2\n", "init's fds: {out}");
    assert_eq!(lists[1], "0\n1\n2\n", "exec's fds: {out}");
    assert!(!out.contains(&secret), "{out}");
    // The monitor keeps nothing of its caller either (the handed-over
    // socket was closed by the start).
    let monitor = fx.state().monitor.unwrap().pid;
    let fds: Vec<String> = fs::read_dir(format!("/proc/{monitor}/fd"))
        .unwrap()
        .map(|e| {
            fs::read_link(e.unwrap().path())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert!(
        !fds.iter()
            .any(|t| t.starts_with(&*host.path().to_string_lossy())),
        "{fds:?}"
    );
}

#[test]
fn leaked_descriptors_never_reach_the_container_close_range() {
    if root() {
        leaked_descriptors_never_reach_the_container(false);
    }
}

#[test]
fn leaked_descriptors_never_reach_the_container_proc_walk() {
    if root() {
        leaked_descriptors_never_reach_the_container(true);
    }
}

/// The racer: root in the container, looping over every process it sees.
/// A process whose exe is not the container's busybox is berth on its way
/// in; opening its exe, environ (with the caller's marker in it) or mem is a
/// win, written to /won.
fn racer(marker: &str) -> String {
    format!(
        r#"PATH=/bin
: > /won
probe() {{
  {{ [ /proc/self/fd/5 -ef /bin/busybox ] && return 0; }} 5<"$1/exe" 2>/dev/null
  {{ [ /proc/self/fd/5 -ef /bin/busybox ] || echo "exe $1 $(readlink /proc/self/fd/5)" >> /won; }} 5<"$1/exe" 2>/dev/null
  {{ tr '\0' '\n' <&6 | grep -q '{marker}' && echo "environ $1" >> /won; }} 6<"$1/environ" 2>/dev/null
  {{ {{ [ /proc/self/fd/5 -ef /bin/busybox ] || echo "mem $1" >> /won; }} 5<"$1/exe"; }} 7<>"$1/mem" 2>/dev/null
}}
echo ready > /ready
while :; do for d in /proc/[0-9]*; do probe "$d"; done; done"#
    )
}

#[test]
fn a_racer_in_the_container_cannot_take_over_the_exec_join() {
    if !root() {
        return;
    }
    let (fx, rr) = fixture("race");
    let marker = format!("caller-secret-{}", std::process::id());
    let mut spec = sh("race", &racer(&marker));
    // Ten thousand PATH entries that do not exist: the join tries each
    // (execve, ENOENT) after dropping its capabilities, which holds it
    // open for the racer long enough to be hit every time.
    let path: Vec<String> = (0..10_000).map(|i| format!("/n/{i}")).collect();
    spec.process
        .env
        .insert("PATH".into(), format!("{}:/bin", path.join(":")));
    fx.start(&spec).unwrap();
    wait_until("the racer", 10, || fx.paths.rootfs.join("ready").exists());
    for _ in 0..10 {
        let (code, out, err) = berth(&rr, &["exec", "race", "--", "env"], |c| {
            c.env("BERTH_TEST_MARKER", &marker);
        });
        assert_eq!(code, 0, "{err}");
        // The container's environment, never the caller's.
        assert!(!out.contains(&marker), "{out}");
        assert!(out.contains("HOSTNAME=race"), "{out}");
    }
    let won = fs::read_to_string(fx.paths.rootfs.join("won")).unwrap();
    let first: Vec<&str> = won.lines().take(6).collect();
    assert!(won.is_empty(), "the racer got into berth: {first:?}");
}

#[test]
fn a_container_sharing_the_host_pid_namespace_cannot_open_its_monitor() {
    if !root() {
        return;
    }
    let (fx, rr) = fixture("peek");
    let marker = format!("caller-secret-{}", std::process::id());
    // berth run under a service manager that took CAP_SYS_PTRACE away; the
    // container keeps everything else. Its root then has all the monitor's
    // capabilities and the same uid: only non-dumpability keeps it out.
    // Everything this test runs with (its bounding set) but CAP_SYS_PTRACE.
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let bnd = u64::from_str_radix(&cap_line(&status, "CapBnd:"), 16).unwrap();
    let mut spec = sh(
        "peek",
        &format!(
            r#"m=$PPID; echo "monitor $m" > /out
for f in exe mem; do
  {{ echo "opened $f" >> /out; }} 5<"/proc/$m/$f" 2>/dev/null
done
{{ echo "opened mem rw" >> /out; }} 5<>"/proc/$m/mem" 2>/dev/null
tr '\0' '\n' < /proc/$m/environ 2>/dev/null | grep -q '{marker}' && echo "read the caller's environment" >> /out
echo done >> /out; exec sleep 300"#
        ),
    );
    spec.namespaces.host.insert(HostNamespace::Pid);
    spec.capabilities = berth::manifest::units::CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, c)| bnd & (1u64 << bit) != 0 && **c != "CAP_SYS_PTRACE")
        .map(|(_, c)| c.to_string())
        .collect();
    start_detached(&fx, &rr, &spec, |c| {
        c.env("BERTH_TEST_MARKER", &marker);
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let out_file = fx.paths.rootfs.join("out");
    wait_until("the probe", 10, || {
        fs::read_to_string(&out_file).is_ok_and(|s| s.ends_with("done\n"))
    });
    let out = fs::read_to_string(&out_file).unwrap();
    let st = rundir::load(&fx.paths.run_dir).unwrap().unwrap();
    let monitor = st.monitor.unwrap().pid;
    assert_eq!(out, format!("monitor {monitor}\ndone\n"));
}

#[test]
fn exec_fails_when_a_namespace_of_the_container_cannot_be_read() {
    if !root() {
        return;
    }
    let (fx, rr) = fixture("nsgone");
    let mut spec = sh("nsgone", "exec sleep 300");
    spec.process.hostname = "inside".into();
    let pid = fx.start(&spec).unwrap();
    // `exec` runs where the init's /proc/PID/ns is hidden under a tmpfs:
    // every namespace file of the container is unreadable. Skipping them
    // would run the command on the host (its hostname, its mounts).
    let script = format!(
        "mount -t tmpfs none /proc/{pid}/ns && exec \"$0\" exec --runtime-dir \"$1\" nsgone -- hostname"
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(berth_bin())
        .arg(&rr)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 125: exec itself failed (docs/cli.md), not the command.
    assert_eq!(out.status.code(), Some(125), "{stdout}{stderr}");
    assert_eq!(stdout, "", "ran outside the container");
    assert!(
        stderr.contains(&format!(
            "read the container's user namespace `/proc/{pid}/ns/user`"
        )),
        "{stderr}"
    );
}
