//! Root tests of the container lifecycle: the monitor (restart policy, stop
//! signal and timeout, a killed monitor), exec, logs, the CLI commands, the
//! setup hook. The fixture is tests/runtime_fixture; without root the tests
//! print a reason and return.

// Test setup: a failed step should panic with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runtime_fixture;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth::host::runtime::oneshot::default_spec;
use berth::host::runtime::rundir::{self, ProcId};
use berth::host::runtime::{join, Options, RuntimeError, Status};
use berth::model::RestartPolicy;

use runtime_fixture::*;

fn root() -> bool {
    root_in("root_lifecycle")
}

#[test]
fn command_not_found_is_127_and_recorded() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let (code, out) = fx.run(&default_spec("nf", vec!["no-such-command".into()]));
    assert_eq!(code, 127, "{out}");
    let err = fx
        .start(&default_spec("nf", vec!["no-such-command".into()]))
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::ExecFailed { code: 127, .. }),
        "{err}"
    );
    wait_until("the monitor to record the exit", 5, || {
        fx.state().last_exit.map(|e| e.code) == Some(127)
    });
    assert!(fx.state().error.unwrap_or_default().contains("not found"));
}

#[test]
fn restart_policy_restarts_a_crashing_command_with_backoff() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let mut spec = sh("crash", "cut -d' ' -f1 /proc/uptime >> /runs; exit 3");
    spec.restart = RestartPolicy::OnFailure;
    fx.start(&spec).unwrap();
    wait_until("four runs", 10, || {
        fs::read_to_string(fx.paths.rootfs.join("runs"))
            .map(|s| s.lines().count() >= 4)
            .unwrap_or(false)
    });
    let runs: Vec<f64> = fs::read_to_string(fx.paths.rootfs.join("runs"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let gaps: Vec<f64> = runs.windows(2).map(|w| w[1] - w[0]).collect();
    // Backoff 0.1 s, 0.2 s, 0.4 s: each pause at least the scheduled delay, and growing.
    assert!(gaps[0] >= 0.09 && gaps[2] >= 0.39, "{gaps:?}");
    assert!(gaps[2] > gaps[0], "{gaps:?}");
    let st = fx.state();
    assert!(st.restarts >= 3, "{st:?}");
    assert_eq!(st.last_exit.map(|e| e.code), Some(3));
}

#[test]
fn stop_of_an_init_that_cannot_see_the_signal_kills_at_once() {
    if !root() {
        return;
    }
    let fx = Fixture::new().with_cgroup();
    // PID 1 of a namespace with no handler for SIGTERM never receives it.
    let spec = sh("deaf", "sleep 300 & exec sleep 301");
    fx.start(&spec).unwrap();
    let t0 = Instant::now();
    let status = fx.runtime().stop(&fx.paths.run_dir, Some(20)).unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "waited for a signal that cannot arrive"
    );
    assert!(matches!(status, Status::Stopped { .. }), "{status:?}");
    let procs = fx.cgroup.as_ref().unwrap().join("cgroup.procs");
    assert_eq!(fs::read_to_string(&procs).unwrap(), "", "no process left");
}

#[test]
fn stop_kills_everything_after_the_timeout() {
    if !root() {
        return;
    }
    let fx = Fixture::new().with_cgroup();
    // PID 1 catches SIGTERM and carries on; its child ignores it.
    let spec = sh("stubborn", "trap 'echo not stopping' TERM; sh -c \"trap '' TERM; sleep 300\" & while true; do sleep 1; done");
    let pid = fx.start(&spec).unwrap();
    let procs = fx.cgroup.as_ref().unwrap().join("cgroup.procs");
    wait_until("two processes in the cgroup", 5, || {
        fs::read_to_string(&procs).unwrap().lines().count() >= 2
    });
    let t0 = Instant::now();
    let status = fx.runtime().stop(&fx.paths.run_dir, Some(1)).unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(1));
    assert!(matches!(status, Status::Stopped { .. }), "{status:?}");
    assert_eq!(fs::read_to_string(&procs).unwrap(), "");
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || !fx.state().init.unwrap().alive());
}

#[test]
fn killing_the_monitor_then_start_converges() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let spec = default_spec("orphan", vec!["sleep".into(), "300".into()]);
    let pid = fx.start(&spec).unwrap();
    let st = fx.state();
    let monitor = st.monitor.unwrap();
    // SAFETY: killing the monitor this test started.
    unsafe { libc::kill(monitor.pid, libc::SIGKILL) };
    wait_until("the monitor to die", 5, || !monitor.alive());
    let (status, _) = rundir::status(&fx.paths.run_dir).unwrap();
    assert_eq!(
        status,
        Status::Running {
            pid,
            supervised: false
        }
    );
    let old = ProcId::of(pid).unwrap();
    let new_pid = fx.start(&spec).unwrap();
    assert!(!old.alive(), "the orphan still runs");
    let (status, _) = rundir::status(&fx.paths.run_dir).unwrap();
    assert_eq!(
        status,
        Status::Running {
            pid: new_pid,
            supervised: true
        }
    );
    // A second start of a healthy container changes nothing.
    assert_eq!(fx.start(&spec).unwrap(), new_pid);
}

#[test]
fn exec_returns_the_command_exit_code() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let mut spec = default_spec("ex", vec!["sleep".into(), "300".into()]);
    spec.process.hostname = "exec-box".into();
    fx.start(&spec).unwrap();
    let cmd: Vec<String> = [
        "/bin/sh",
        "-c",
        "test \"$(hostname)\" = exec-box && test $(cat /proc/1/comm) = sleep && exit 7",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(join::exec(&fx.paths.run_dir, &cmd, false).unwrap(), 7);
    let missing: Vec<String> = vec!["no-such-tool".into()];
    assert!(matches!(
        join::exec(&fx.paths.run_dir, &missing, false),
        Err(RuntimeError::ExecFailed { code: 127, .. })
    ));
    fx.runtime().stop(&fx.paths.run_dir, Some(0)).unwrap();
    assert!(matches!(
        join::exec(&fx.paths.run_dir, &cmd, false),
        Err(RuntimeError::NotRunning { .. })
    ));
}

#[test]
fn logs_capture_output() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    fx.start(&sh("logs", "echo out; echo err >&2")).unwrap();
    wait_until("the exit", 5, || fx.state().last_exit.is_some());
    let text = berth::host::runtime::logs::tail(&fx.paths.run_dir, None).unwrap();
    assert_eq!(String::from_utf8(text).unwrap(), "out\nerr\n");
}

#[test]
fn cli_status_exec_logs_stop_rm() {
    if !root() {
        return;
    }
    let mut fx = Fixture::new();
    let rr = fx.dir.path().join("rr");
    fx.paths.run_dir = rr.join("cli");
    let spec = sh("cli", "echo hello; exec sleep 300");
    let pid = fx.start(&spec).unwrap();
    let berth = |args: &[&str]| {
        // The option goes right after the subcommand: exec's command ends the line.
        let out = Command::new(berth_bin())
            .arg(args[0])
            .arg("--runtime-dir")
            .arg(&rr)
            .args(&args[1..])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = berth(&["status", "cli", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["containers"][0]["state"], "running");
    assert_eq!(v["containers"][0]["pid"], pid);
    // Addresses come live from the container's own network namespace.
    let ip = Command::new("nsenter")
        .arg("-t")
        .arg(pid.to_string())
        .args(["-n", "sh", "-c"])
        .arg("ip link add a0 type veth peer name a1 && ip addr add 10.99.0.2/24 dev a0")
        .status()
        .unwrap();
    assert!(ip.success());
    let (_, out) = berth(&["status", "cli", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["containers"][0]["addresses"],
        serde_json::json!(["a0=10.99.0.2/24"])
    );
    let (code, out) = berth(&["exec", "cli", "--", "sh", "-c", "exit 5"]);
    assert_eq!(code, 5, "{out}");
    // A command that cannot run says why: 127 not found, 126 not executable.
    let (code, out) = berth(&["exec", "cli", "--", "/no/such/cmd"]);
    assert_eq!(code, 127, "{out}");
    assert_eq!(
        out,
        "berth: exec `/no/such/cmd` in the container: not found\n"
    );
    let (code, out) = berth(&["exec", "cli", "--", "/bin"]);
    assert_eq!(code, 126, "{out}");
    assert_eq!(out, "berth: exec `/bin` in the container: not executable\n");
    wait_until("the log line", 5, || {
        berth(&["logs", "cli", "-n", "1"]).1 == "hello\n"
    });
    let (code, out) = berth(&["ls"]);
    assert_eq!(code, 0);
    assert!(out.lines().nth(1).unwrap().starts_with("cli "), "{out}");
    let (code, out) = berth(&["rm", "cli"]);
    assert_eq!(code, 1);
    assert!(out.contains("is running"), "{out}");
    assert_eq!(berth(&["stop", "cli", "--timeout", "1"]).0, 0);
    assert!(berth(&["status", "cli"]).1.contains("stopped"));
    let (code, out) = berth(&["exec", "cli", "--", "true"]);
    assert_eq!(code, 125, "berth's own failure: {out}");
    assert!(out.contains("is not running"), "{out}");
    assert_eq!(berth(&["start", "cli"]).0, 0);
    assert!(berth(&["status", "cli"]).1.contains("running"));
    assert_eq!(berth(&["rm", "--force", "cli"]).0, 0);
    assert!(!fx.paths.run_dir.exists());
}

#[test]
fn stop_forwards_the_spec_signal() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let mut spec = sh(
        "pwr",
        "trap 'echo got-pwr; exit 0' PWR; echo ready; while true; do sleep 0.1; done",
    );
    spec.stop_signal = "SIGPWR".into();
    fx.start(&spec).unwrap();
    wait_until("the trap", 5, || {
        berth::host::runtime::logs::tail(&fx.paths.run_dir, None).unwrap() == b"ready\n"
    });
    let t0 = Instant::now();
    let status = fx.runtime().stop(&fx.paths.run_dir, Some(20)).unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the signal was not forwarded"
    );
    assert!(
        matches!(status, Status::Stopped { exit: Some(e) } if e.code == 0),
        "{status:?}"
    );
    let log = berth::host::runtime::logs::tail(&fx.paths.run_dir, None).unwrap();
    assert_eq!(String::from_utf8(log).unwrap(), "ready\ngot-pwr\n");
}

struct Probe {
    seen: Vec<(i32, String)>,
    fail: bool,
}

impl berth::host::runtime::SetupHook for Probe {
    fn setup(&mut self, pid: i32) -> Result<(), String> {
        let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        self.seen.push((pid, exe.to_string_lossy().into_owned()));
        if self.fail {
            return Err("no bridge `br-test`".into());
        }
        Ok(())
    }
}

#[test]
fn setup_hook_runs_before_the_command_and_its_failure_leaves_nothing() {
    if !root() {
        return;
    }
    let fx = Fixture::new().with_cgroup();
    let spec = default_spec("hook", vec!["sleep".into(), "300".into()]);
    let mut probe = Probe {
        seen: Vec::new(),
        fail: false,
    };
    let pid = fx
        .runtime()
        .start(&spec, &fx.paths, &fx.options(), &mut probe)
        .unwrap();
    assert_eq!(probe.seen.len(), 1);
    assert_eq!(probe.seen[0].0, pid);
    // Still the runtime's own process: the command had not run yet.
    assert!(!probe.seen[0].1.ends_with("busybox"), "{:?}", probe.seen);
    let procs = fs::read_to_string(fx.cgroup.as_ref().unwrap().join("cgroup.procs")).unwrap();
    assert_eq!(
        procs.trim(),
        pid.to_string(),
        "placed in its cgroup before it ran"
    );
    fx.runtime().stop(&fx.paths.run_dir, Some(0)).unwrap();

    let fx = Fixture::new().with_cgroup();
    let mut failing = Probe {
        seen: Vec::new(),
        fail: true,
    };
    let err = fx
        .runtime()
        .start(&spec, &fx.paths, &fx.options(), &mut failing)
        .unwrap_err();
    assert!(err.to_string().contains("no bridge `br-test`"), "{err}");
    let child = failing.seen[0].0;
    wait_until("the child to be gone", 5, || {
        !Path::new(&format!("/proc/{child}")).exists()
    });
    assert_eq!(
        fs::read_to_string(fx.cgroup.as_ref().unwrap().join("cgroup.procs")).unwrap(),
        ""
    );
    assert!(matches!(
        rundir::status(&fx.paths.run_dir).unwrap().0,
        Status::Stopped { .. }
    ));
}

#[test]
fn restarts_keep_the_network_namespace() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let mut spec = sh(
        "netns",
        "readlink /proc/self/ns/net >> /nets; sleep 0.2; exit 1",
    );
    spec.restart = RestartPolicy::Always;
    fx.start(&spec).unwrap();
    let nets = fx.paths.rootfs.join("nets");
    wait_until("three runs", 10, || {
        fs::read_to_string(&nets)
            .map(|s| s.lines().count() >= 3)
            .unwrap_or(false)
    });
    let text = fs::read_to_string(&nets).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().all(|l| *l == lines[0]), "{lines:?}");
    assert_ne!(
        fs::read_link("/proc/self/ns/net")
            .unwrap()
            .to_string_lossy(),
        lines[0]
    );
}

#[test]
fn exec_with_a_tty() {
    if !root() {
        return;
    }
    let mut fx = Fixture::new();
    let rr = fx.dir.path().join("rr");
    fx.paths.run_dir = rr.join("tty");
    fx.start(&default_spec("tty", vec!["sleep".into(), "300".into()]))
        .unwrap();
    let out = Command::new(berth_bin())
        .args(["exec", "--runtime-dir"])
        .arg(&rr)
        .args([
            "-t",
            "tty",
            "--",
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo on-a-tty; exit 3",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).replace('\r', ""),
        "on-a-tty\n"
    );

    // The end of our stdin reaches the command as the terminal's EOF, also
    // after a last line without its newline.
    for input in ["one\ntwo\n", "one\ntwo"] {
        let mut child = Command::new(berth_bin())
            .args(["exec", "--runtime-dir"])
            .arg(&rr)
            .args(["-t", "tty", "--", "sh", "-c", "wc -l; echo done"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::{Read as _, Write as _};
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{input:?}: exec -t did not end after its stdin closed");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = std::process::Output {
            status,
            stdout: reader.join().unwrap().into_bytes(),
            stderr: Vec::new(),
        };
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        assert!(out.status.success(), "{input:?}: {:?} {text}", out.status);
        assert!(text.ends_with("done\n"), "{input:?}: {text}");
    }
}

#[test]
fn full_os_busybox_init_boots_and_powers_off_on_sigpwr() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let r = &fx.paths.rootfs;
    fs::create_dir_all(r.join("sbin")).unwrap();
    std::os::unix::fs::symlink("/bin/busybox", r.join("sbin/init")).unwrap();
    fs::write(
        r.join("etc/inittab"),
        "::sysinit:/bin/sh -c 'echo booted as $container'\n::respawn:/bin/sleep 1000\n::shutdown:/bin/echo shutting-down\n",
    )
    .unwrap();
    let mut spec = default_spec("os", Vec::new());
    spec.process.command = None;
    spec.process.boot = true;
    spec.stop_signal = berth::host::runtime::init_stop_signal(r, "/sbin/init").into();
    assert_eq!(spec.stop_signal, "SIGPWR");
    let pid = fx.start(&spec).unwrap();
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/comm")).unwrap(),
        "init\n"
    );
    let log = || {
        String::from_utf8(berth::host::runtime::logs::tail(&fx.paths.run_dir, None).unwrap())
            .unwrap()
    };
    wait_until("the boot", 5, || log().contains("booted as berth"));
    let t0 = Instant::now();
    fx.runtime().stop(&fx.paths.run_dir, Some(30)).unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "init ignored SIGPWR"
    );
    assert!(log().contains("shutting-down"), "{}", log());
}

#[test]
fn a_runtime_dir_of_another_container_is_refused() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    fx.start(&default_spec("first", vec!["sleep".into(), "300".into()]))
        .unwrap();
    let err = fx
        .start(&default_spec("second", vec!["true".into()]))
        .unwrap_err();
    assert!(
        err.to_string().contains("belongs to container `first`"),
        "{err}"
    );
    assert!(matches!(
        rundir::status(&fx.paths.run_dir).unwrap().0,
        Status::Running { .. }
    ));
}

/// A test cgroup of its own, killed empty and removed on drop.
struct CgroupGuard(PathBuf);

impl CgroupGuard {
    fn new(tag: &str) -> Self {
        let cg = cgroup_parent().join(format!("berth-test-{}-{tag}", std::process::id()));
        fs::create_dir(&cg).unwrap();
        CgroupGuard(cg)
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        berth::host::runtime::kill_all(&[self.0.join("cgroup.procs")], None);
        for _ in 0..100 {
            if fs::remove_dir(&self.0).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn the_monitor_moves_into_its_own_cgroup() {
    if !root() {
        return;
    }
    let fx = Fixture::new().with_cgroup();
    let mon = CgroupGuard::new("monitor");
    let opts = Options {
        monitor_cgroup_procs: vec![mon.0.join("cgroup.procs")],
        ..fx.options()
    };
    let spec = default_spec("moved", vec!["sleep".into(), "300".into()]);
    fx.runtime()
        .start(
            &spec,
            &fx.paths,
            &opts,
            &mut berth::host::runtime::spawn::NoHook,
        )
        .unwrap();
    let monitor = fx.state().monitor.unwrap();
    let procs = fs::read_to_string(mon.0.join("cgroup.procs")).unwrap();
    assert_eq!(
        procs.trim(),
        monitor.pid.to_string(),
        "only the monitor, not its container"
    );
    fx.runtime().stop(&fx.paths.run_dir, Some(0)).unwrap();
}

#[test]
fn logs_follow_ends_with_the_container() {
    if !root() {
        return;
    }
    let mut fx = Fixture::new();
    let rr = fx.dir.path().join("rr");
    fx.paths.run_dir = rr.join("chatty");
    fx.start(&sh(
        "chatty",
        "for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done",
    ))
    .unwrap();
    let out = Command::new(berth_bin())
        .args(["logs", "--runtime-dir"])
        .arg(&rr)
        .args(["-f", "chatty"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line 1\nline 2\nline 3\nline 4\nline 5\n"
    );
}

#[test]
fn kill_makes_an_always_container_restart() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let mut spec = default_spec("phoenix", vec!["sleep".into(), "300".into()]);
    spec.restart = RestartPolicy::Always;
    let first = fx.start(&spec).unwrap();
    fx.runtime().kill(&fx.paths.run_dir, libc::SIGKILL).unwrap();
    wait_until(
        "a new init",
        5,
        || matches!(rundir::status(&fx.paths.run_dir).unwrap().0, Status::Running { pid, .. } if pid != first),
    );
    let st = fx.state();
    assert_eq!(st.restarts, 1);
    assert_eq!(st.last_exit.and_then(|e| e.signal), Some(libc::SIGKILL));
}
