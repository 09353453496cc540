//! Root tests of the cgroup backends against the real kernel: v1 on a legacy
//! or hybrid host, v2 in the VM (`make vmtest`). Each test makes its own
//! uniquely named cgroups and removes them in `Drop`, even when it fails.
//! Without root they print why and return; with BERTH_ROOT_TESTS=required (as
//! `make test` sets) that skip is a failure.

// Test and bench setup: a failed step panics with its location.
#![allow(clippy::expect_used)]

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth::host::cgroup::{bpf, v2::V2Cgroups, CgroupBackend, Layout, Mode, ParentPolicy};
use berth::model::{CpuMax, ResourceSpec};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `None` (after printing why) when the test cannot run here.
fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("needs root".into());
    }
    if Layout::detect(Path::new("/proc")).is_err() {
        return Some("no cgroup filesystem mounted".into());
    }
    None
}

macro_rules! need_root {
    () => {
        if let Some(why) = skip_reason() {
            if std::env::var("BERTH_ROOT_TESTS").as_deref() == Ok("required") {
                panic!("cannot run: {why}");
            }
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// A container cgroup of its own plus the processes the test started.
struct Fixture {
    backend: CgroupBackend,
    name: &'static str,
    kids: Vec<Child>,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let layout = Layout::detect(Path::new("/proc")).expect("detect");
        let parent = format!("berth-test-{}-{tag}", std::process::id());
        // v1: stay inside the cgroups this test runs in. v2: a child of the
        // root, where the no-internal-processes rule does not apply.
        let policy = match layout.mode {
            Mode::Unified => ParentPolicy::Fixed(parent),
            _ => ParentPolicy::UnderOwn(parent),
        };
        let backend = CgroupBackend::from_layout(&layout, &policy).expect("backend");
        let name = "c";
        backend.create(name).expect("create");
        Fixture {
            backend,
            name,
            kids: Vec::new(),
        }
    }

    /// Start `busybox sh -c SCRIPT` stopped at a `read`, place it, then let it run.
    fn spawn(&mut self, script: &str, args: &[&str]) -> usize {
        let mut child = Command::new("busybox")
            .args(["sh", "-c", &format!("read go; {script}"), "sh"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn busybox sh");
        let pid = i32::try_from(child.id()).expect("pid");
        self.backend.place(self.name, pid).expect("place");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("release");
        self.kids.push(child);
        self.kids.len() - 1
    }

    fn pid(&self, i: usize) -> i32 {
        i32::try_from(self.kids[i].id()).expect("pid")
    }

    fn file(&self, controller: &str, file: &str) -> PathBuf {
        self.backend
            .path(controller, self.name)
            .expect("controller mounted")
            .join(file)
    }

    fn read(&self, controller: &str, file: &str) -> String {
        std::fs::read_to_string(self.file(controller, file))
            .expect("read cgroup file")
            .trim()
            .to_string()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.backend.kill_all(self.name);
        for k in &mut self.kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        let _ = self.backend.remove(self.name);
        let _ = self.backend.remove_parent();
    }
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn memory_hog_is_oom_killed_and_counted() {
    need_root!();
    let mut f = Fixture::new("oom");
    let limit = 16u64 << 20;
    f.backend
        .apply(
            f.name,
            &ResourceSpec {
                memory: Some(limit),
                swap: Some(0),
                ..Default::default()
            },
        )
        .expect("apply");
    // busybox tail keeps everything after the last newline: /dev/zero has none.
    let i = f.spawn("exec busybox tail /dev/zero", &[]);
    let status = f.kids[i].wait().expect("wait");
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "killed by the OOM killer: {status:?}"
    );
    let stats = f.backend.stats(f.name).expect("stats");
    assert!(
        stats.oom_kills.unwrap_or(0) >= 1,
        "oom kill counted: {stats:?}"
    );
    let peak = stats.memory_peak.or(stats.memory_current).unwrap_or(0);
    // memory.peak is 5.19+; on older v2 kernels only memory.current exists.
    if stats.memory_peak.is_some() {
        assert!(
            peak >= limit / 2 && peak <= limit + (1 << 20),
            "peak near the limit: {stats:?}"
        );
    }
}

#[test]
fn fork_loop_stops_at_pids_max() {
    need_root!();
    let mut f = Fixture::new("pids");
    f.backend
        .apply(
            f.name,
            &ResourceSpec {
                pids: Some(8),
                ..Default::default()
            },
        )
        .expect("apply");
    // Fork 20 sleepers. ash gives up at the first failed fork ("can't fork"),
    // leaving the shell's exit status and the sleepers that fit.
    let i = f.spawn("n=0; while [ $n -lt 20 ]; do busybox sleep 30 </dev/null >/dev/null 2>&1 & n=$((n+1)); done; echo all forked", &[]);
    let out = f.kids.remove(i).wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("all forked"),
        "20 forks must not fit under pids.max 8"
    );
    assert!(
        stderr.contains("fork"),
        "the shell saw a fork fail: {stderr}"
    );
    // The shell (now reaped) took one of the 8; its 7 sleepers remain.
    let procs = f.backend.pids(f.name).expect("pids");
    assert_eq!(procs.len(), 7, "{procs:?}");
    let stats = f.backend.stats(f.name).expect("stats");
    assert_eq!(stats.pids_current, Some(7), "{stats:?}");
    // kill_all takes every task, including the orphaned forks.
    f.backend.kill_all(f.name).expect("kill_all");
    wait_until("empty cgroup", Duration::from_secs(5), || {
        f.backend
            .pids(f.name)
            .map(|p| p.is_empty())
            .unwrap_or(false)
    });
}

/// The kill fallback of kernels without cgroup.kill (v1, and v2 before 5.14):
/// freeze, SIGKILL every pid, thaw. Forked children that left the main
/// process die too.
#[test]
fn kill_all_fallback_takes_forks() {
    need_root!();
    let mut f = Fixture::new("kill");
    if let CgroupBackend::V2(b) = &mut f.backend {
        b.disable_cgroup_kill();
    }
    let i = f.spawn(
        "for n in 1 2 3 4; do busybox sleep 60 </dev/null >/dev/null 2>&1 & done; exec busybox sleep 60",
        &[],
    );
    wait_until("5 tasks", Duration::from_secs(10), || {
        f.backend
            .pids(f.name)
            .map(|p| p.len() == 5)
            .unwrap_or(false)
    });
    f.backend.kill_all(f.name).expect("kill_all");
    let status = f.kids[i].wait().expect("wait");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    wait_until("empty cgroup", Duration::from_secs(5), || {
        f.backend
            .pids(f.name)
            .map(|p| p.is_empty())
            .unwrap_or(false)
    });
    // Not left frozen: a new task placed there runs.
    let j = f.spawn("echo alive", &[]);
    let out = f.kids.remove(j).wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "alive");
}

#[test]
fn live_change_keeps_the_pid() {
    need_root!();
    let mut f = Fixture::new("live");
    let first = ResourceSpec {
        memory: Some(64 << 20),
        cpu_weight: Some(100),
        ..Default::default()
    };
    f.backend.apply(f.name, &first).expect("apply");
    let i = f.spawn("exec busybox sleep 60", &[]);
    let pid = f.pid(i);
    let second = ResourceSpec {
        memory: Some(128 << 20),
        cpu_weight: Some(200),
        cpu_max: Some(CpuMax {
            quota_us: 50_000,
            period_us: 100_000,
        }),
        ..Default::default()
    };
    f.backend.apply(f.name, &second).expect("apply live");
    if f.backend.version() == 1 {
        assert_eq!(
            f.read("memory", "memory.limit_in_bytes"),
            (128u64 << 20).to_string()
        );
        assert_eq!(f.read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(
            f.read("cpu", "cpu.shares"),
            berth::host::cgroup::translate::weight_to_shares(200).to_string()
        );
    } else {
        assert_eq!(f.read("memory", "memory.max"), (128u64 << 20).to_string());
        assert_eq!(f.read("cpu", "cpu.max"), "50000 100000");
        assert_eq!(f.read("cpu", "cpu.weight"), "200");
    }
    // Lowering and removing limits works live too (v1 needs the EINVAL retry order).
    f.backend
        .apply(
            f.name,
            &ResourceSpec {
                memory: Some(48 << 20),
                swap: Some(0),
                ..Default::default()
            },
        )
        .expect("lower");
    // Raising memory above the old memory+swap: v1 refuses the memory limit
    // (EINVAL) until memsw is raised, so the backend retries it after.
    let raise = ResourceSpec {
        memory: Some(96 << 20),
        swap: Some(0),
        ..Default::default()
    };
    f.backend.apply(f.name, &raise).expect("raise");
    if f.backend.version() == 1 {
        assert_eq!(
            f.read("memory", "memory.limit_in_bytes"),
            (96u64 << 20).to_string()
        );
        if f.file("memory", "memory.memsw.limit_in_bytes").exists() {
            assert_eq!(
                f.read("memory", "memory.memsw.limit_in_bytes"),
                (96u64 << 20).to_string()
            );
        }
    } else {
        assert_eq!(f.read("memory", "memory.swap.max"), "0");
        let io = ResourceSpec {
            io_weight: Some(300),
            ..Default::default()
        };
        f.backend.apply(f.name, &io).expect("io weight");
        assert_eq!(f.read("io", "io.weight"), "default 300");
    }
    f.backend
        .apply(f.name, &ResourceSpec::default())
        .expect("reset");
    assert!(
        f.kids[i].try_wait().expect("try_wait").is_none(),
        "still running"
    );
    assert_eq!(f.backend.pids(f.name).expect("pids"), vec![pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("proc cgroup");
    assert!(own.contains("/c\n"), "still in its cgroup: {own}");
}

#[test]
fn freeze_stops_a_counter_and_thaw_resumes_it() {
    need_root!();
    let tmp = tempfile::tempdir().expect("tempdir");
    let counter = tmp.path().join("n");
    let mut f = Fixture::new("freeze");
    f.spawn(
        "i=0; while :; do i=$((i+1)); echo $i > \"$1\"; busybox sleep 0.01; done",
        &[counter.to_str().expect("utf8")],
    );
    let read = || {
        std::fs::read_to_string(&counter)
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    wait_until("counter running", Duration::from_secs(5), || read() > 2);
    f.backend.freeze(f.name).expect("freeze");
    // Let a half-written value settle, then it must not move.
    std::thread::sleep(Duration::from_millis(50));
    let a = read();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(read(), a, "frozen counter moved");
    f.backend.thaw(f.name).expect("thaw");
    wait_until("counter moving again", Duration::from_secs(5), || {
        read() > a
    });
    let stats = f.backend.stats(f.name).expect("stats");
    assert!(
        stats.cpu_usage_usec.unwrap_or(0) > 0,
        "cpu time accounted: {stats:?}"
    );
}

/// mknod a char device in `dir`.
fn mknod(dir: &Path, name: &str, major: u32, minor: u32) -> PathBuf {
    let p = dir.join(name);
    let c = std::ffi::CString::new(p.to_str().expect("utf8")).expect("cstring");
    // SAFETY: c is a valid NUL-terminated path; mknod reads it only.
    let rc = unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | 0o600,
            libc::makedev(major, minor),
        )
    };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
    p
}

/// Open `ok` and `denied` from inside the cgroup; the second must fail with EPERM.
fn check_device_filter(f: &mut Fixture) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let null = mknod(tmp.path(), "null", 1, 3);
    let mem = mknod(tmp.path(), "mem", 1, 1);
    let script = "(exec 3<\"$1\") && echo null-ok; (exec 3<\"$2\") && echo mem-ok; echo done";
    let i = f.spawn(
        script,
        &[null.to_str().expect("utf8"), mem.to_str().expect("utf8")],
    );
    let out = f.kids.remove(i).wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("null-ok"),
        "the standard /dev/null node opens: {stdout} {stderr}"
    );
    assert!(!stdout.contains("mem-ok"), "a mem node is denied: {stdout}");
    assert!(
        stderr.contains("Operation not permitted"),
        "denied by the device cgroup: {stderr}"
    );
}

#[test]
fn denied_device_cannot_be_opened() {
    need_root!();
    let mut f = Fixture::new("dev");
    f.backend.set_devices(f.name, &[]).expect("set_devices");
    check_device_filter(&mut f);
    // A second update replaces the rules (v2: the old program is detached).
    f.backend
        .set_devices(f.name, &[])
        .expect("set_devices again");
    if f.backend.version() == 2 {
        let dir = f.backend.path("devices", f.name).expect("dir");
        assert_eq!(
            bpf::attached(&dir).expect("query"),
            1,
            "one filter after an update"
        );
    }
    check_device_filter(&mut f);
}

/// On a hybrid host the empty v2 hierarchy still runs device programs: test
/// the eBPF filter there (on a unified host the test above already does).
#[test]
fn ebpf_filter_on_hybrid_unified_mount() {
    need_root!();
    let layout = Layout::detect(Path::new("/proc")).expect("detect");
    let Some(unified) = layout.unified.filter(|_| layout.mode == Mode::Hybrid) else {
        eprintln!("not hybrid: covered by denied_device_cannot_be_opened");
        return;
    };
    let parent = format!("/berth-test-{}-bpf", std::process::id());
    let mut f = Fixture {
        backend: CgroupBackend::V2(V2Cgroups::new(&unified.path, &parent, None)),
        name: "c",
        kids: Vec::new(),
    };
    f.backend.create(f.name).expect("create");
    f.backend.set_devices(f.name, &[]).expect("set_devices");
    check_device_filter(&mut f);
    f.backend.set_devices(f.name, &[]).expect("replace");
    let dir = f.backend.path("devices", f.name).expect("dir");
    assert_eq!(bpf::attached(&dir).expect("query"), 1);
}

/// procd-style placement: berth runs in /services/berth/instance1 (as procd
/// makes it) and must move into a leaf before containers get controllers.
/// Moves this whole test process, so only the VM harness runs it.
#[test]
#[ignore = "moves the test process between cgroups; run by the VM harness"]
fn vm_delegated_placement() {
    need_root!();
    let layout = Layout::detect(Path::new("/proc")).expect("detect");
    let own = layout
        .unified
        .as_ref()
        .map(|m| m.own.clone())
        .unwrap_or_default();
    assert_eq!(layout.mode, Mode::Unified, "needs a cgroup2-only host");
    assert!(
        own.starts_with("/services/berth/"),
        "start me in a procd instance cgroup, not {own}"
    );
    let backend = CgroupBackend::from_layout(&layout, &ParentPolicy::Auto).expect("backend");
    let mut f = Fixture {
        backend,
        name: "web",
        kids: Vec::new(),
    };
    f.backend.create(f.name).expect("create");
    let me = std::fs::read_to_string("/proc/self/cgroup").expect("self cgroup");
    assert_eq!(
        me.trim(),
        format!("0::{own}/supervisor"),
        "berth moved itself into the leaf"
    );
    f.backend
        .apply(
            f.name,
            &ResourceSpec {
                memory: Some(32 << 20),
                pids: Some(20),
                ..Default::default()
            },
        )
        .expect("apply");
    let i = f.spawn("exec busybox sleep 60", &[]);
    let pid = f.pid(i);
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert_eq!(theirs.trim(), format!("0::{own}/containers/web"));
    assert_eq!(f.read("memory", "memory.max"), (32u64 << 20).to_string());
    assert_eq!(f.read("pids", "pids.max"), "20");
}
