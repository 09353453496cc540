//! Root tests of `berth apply` end to end, through the binary: images, layers,
//! cgroups, networking and the runtime together. Each test runs berth inside
//! its own network namespace (the router's host side), with its own store,
//! runtime dir and cgroup parent, all removed in `Drop` even on failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apply_world;
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use apply_world::World;

const WEB: &str = "
  web:
    image: bb
    command: [httpd, -f, -p, '80', -h, /www]
    resources: { memory: 16M, pids: 32 }
    network:
      - { network: lan, address: 10.77.0.10/24, gateway: 10.77.0.1 }";

#[test]
fn apply_converges_updates_in_place_recreates_and_removes() {
    if !common::root_or_skip("apply_converges_updates_in_place_recreates_and_removes") {
        return;
    }
    let w = World::new("conv");
    let out = w.apply(WEB);
    assert!(
        out.contains("+ create web") && out.contains("> start web"),
        "{out}"
    );
    assert!(
        w.fetch("10.77.0.10").contains("served by berth"),
        "the host fetches the page over the bridge"
    );
    let pid = w.pid("web").expect("running");

    // Accounting in status, and pause/resume through the cgroup.
    let out = w.berth(&["status", "web", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["containers"][0]["resources"]["pids_current"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{v}"
    );
    assert!(
        v["containers"][0]["resources"]["memory_current"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{v}"
    );
    assert!(w.berth(&["pause", "web"]).status.success());
    assert!(w.frozen("web"), "paused");
    assert!(w.berth(&["resume", "web"]).status.success());
    assert!(!w.frozen("web"), "resumed");
    assert!(
        w.fetch("10.77.0.10").contains("served by berth"),
        "serves again after resume"
    );

    // Unchanged manifest: nothing to do, same process.
    assert_eq!(
        w.apply(WEB),
        "no changes: the device matches the manifest\n"
    );
    assert_eq!(w.pid("web"), Some(pid));

    // A limit changes live, without a restart.
    let out = w.apply(&WEB.replace("memory: 16M", "memory: 24M"));
    assert!(
        out.contains("~ update web in place: memory 16777216 -> 25165824"),
        "{out}"
    );
    assert_eq!(w.pid("web"), Some(pid), "same process after a live update");
    assert_eq!(
        w.cgroup_value("web", &["memory.limit_in_bytes", "memory.max"]),
        "25165824"
    );

    // A changed command recreates.
    let changed = WEB
        .replace("memory: 16M", "memory: 24M")
        .replace("'80'", "'8080'");
    let out = w.apply(&changed);
    assert!(out.contains("-/+ recreate web"), "{out}");
    assert_ne!(w.pid("web"), Some(pid));

    // `berth rm` of a container apply made removes it whole; apply makes it again.
    let store = w.dir.path().join("store");
    let out = w.berth(&["--root", store.to_str().unwrap(), "rm", "--force", "web"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !store.join("containers/web").exists(),
        "layer and record gone"
    );
    let out = w.apply(&changed);
    assert!(
        out.contains("+ create web") && out.contains("> start web"),
        "{out}"
    );

    // Gone from the manifest: removed, nothing left behind.
    let out = w.apply(" {}");
    assert!(out.contains("- remove web"), "{out}");
    assert!(w.pid("web").is_none());
    let store = w.dir.path().join("store/containers/web");
    assert!(!store.exists(), "container dir removed");
    assert!(
        !fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(w.dir.path().to_str().unwrap()),
        "no mounts left"
    );
    assert!(
        w.cgroups().iter().all(|c| !c.join("web").exists()),
        "no container cgroup left"
    );
    let links = w.sh("ip -o link show");
    assert!(!links.contains("@"), "no veth left: {links}");

    // The bridge berth created goes with the last manifest that names it.
    assert!(links.contains("br-t"), "{links}");
    let m = w.dir.path().join("m.yaml");
    let store = w.dir.path().join("store");
    fs::write(
        &m,
        format!(
            "version: 1\nsettings: {{ root: {} }}\ncontainers: {{}}\n",
            store.display()
        ),
    )
    .unwrap();
    let out = w.berth(&["apply", m.to_str().unwrap()]);
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("- remove network lan"),
        "{out:?}"
    );
    assert!(
        !w.sh("ip -o link show").contains("br-t"),
        "created bridge removed"
    );
}

#[test]
fn apply_after_kill_9_of_monitor_and_init_converges() {
    if !common::root_or_skip("apply_after_kill_9_of_monitor_and_init_converges") {
        return;
    }
    let w = World::new("kill");
    w.apply(WEB);
    let pid = w.pid("web").expect("running");
    // Kill every berth process of this container and its init.
    let run = w.dir.path().join("run");
    let out = Command::new("pgrep")
        .args(["-f", &format!("__monitor.*{}", run.display())])
        .output()
        .unwrap();
    for m in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-9", m]).status();
    }
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = w.apply(WEB);
    assert!(out.contains("> start web"), "{out}");
    assert!(w.fetch("10.77.0.10").contains("served by berth"));
    assert_eq!(
        w.apply(WEB),
        "no changes: the device matches the manifest\n"
    );
}

/// Kill -9 of the container's monitor alone: the init runs on unsupervised
/// (no restart policy, no log capture). The next apply sees it, says so, and
/// starts it afresh under a new monitor; the one after has nothing to do.
#[test]
fn apply_repairs_a_container_whose_monitor_was_killed() {
    if !common::root_or_skip("apply_repairs_a_container_whose_monitor_was_killed") {
        return;
    }
    let w = World::new("mon");
    w.apply(WEB);
    let old = w.pid("web").expect("running");
    let run = w.dir.path().join("run");
    let out = Command::new("pgrep")
        .args(["-f", &format!("__monitor.*{}", run.display())])
        .output()
        .unwrap();
    let monitors: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(!monitors.is_empty(), "no monitor found");
    for m in &monitors {
        let _ = Command::new("kill").args(["-9", m]).status();
    }
    w.wait_for("the monitor to die", || {
        monitors
            .iter()
            .all(|m| !Path::new(&format!("/proc/{m}")).exists())
    });
    let status = String::from_utf8_lossy(&w.berth(&["status", "web"]).stdout).into_owned();
    assert!(status.contains("running (no monitor)"), "{status}");

    let out = w.berth(&["plan", w.manifest(WEB).to_str().unwrap()]);
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        plan.contains("> restart web (its monitor is gone)"),
        "{plan}"
    );
    let out = w.apply(WEB);
    assert!(out.contains("> restart web (its monitor is gone)"), "{out}");

    let out = w.berth(&["status", "web", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["containers"][0]["supervised"], true, "{v}");
    assert_ne!(w.pid("web"), Some(old), "the orphaned init was replaced");
    // Dead, or a zombie its new parent has not reaped yet.
    w.wait_for("the orphaned init to end", || {
        fs::read_to_string(format!("/proc/{old}/stat")).map_or(true, |s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    });
    assert!(w.fetch("10.77.0.10").contains("served by berth"));
    assert_eq!(
        w.apply(WEB),
        "no changes: the device matches the manifest\n"
    );
}

#[test]
fn failed_image_leaves_other_containers_running() {
    if !common::root_or_skip("failed_image_leaves_other_containers_running") {
        return;
    }
    let w = World::new("img");
    let broken = format!("{WEB}\n  other:\n    image: missing\n    command: [sleep, '100']\n");
    let m = w.manifest(&broken).to_str().unwrap().to_string();
    let text = fs::read_to_string(&m).unwrap().replace(
        "images:\n",
        "images:\n  missing: { path: /nonexistent/rootfs.tar.gz }\n",
    );
    fs::write(&m, text).unwrap();
    let out = w.berth(&["apply", &m]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fetch image `missing`") && err.contains("/nonexistent/rootfs.tar.gz"),
        "{err}"
    );
    assert!(w.pid("web").is_some(), "the independent container runs");
    assert!(
        !w.dir.path().join("store/containers/other").exists(),
        "nothing half-made"
    );
}

#[test]
fn serve_reapplies_on_sighup_and_stops_everything_on_sigterm() {
    if !common::root_or_skip("serve_reapplies_on_sighup_and_stops_everything_on_sigterm") {
        return;
    }
    let w = World::new("serve");
    let m = w.manifest(WEB);
    let mut child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", w.name))
        .arg(env!("CARGO_BIN_EXE_berth"))
        .args([
            "--cgroup-parent",
            &w.name,
            "apply",
            "--serve",
            m.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("the first apply", &|| w.pid("web").is_some());
    let pid = w.pid("web");
    let limit = || w.cgroup_value("web", &["memory.limit_in_bytes", "memory.max"]);
    w.manifest(&WEB.replace("memory: 16M", "memory: 20M"));
    // nsenter execs berth, so the child's pid is berth's.
    let berth_pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &berth_pid])
        .status()
        .unwrap()
        .success());
    wait_for("the re-apply", &|| limit() == "20971520");
    assert_eq!(w.pid("web"), pid, "updated in place");
    assert!(Command::new("kill")
        .args(["-TERM", &berth_pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        w.pid("web").is_none(),
        "containers stopped with the service"
    );
    assert!(
        w.dir
            .path()
            .join("store/containers/web/applied.json")
            .exists(),
        "but not removed"
    );
}

/// Every file and directory under `root` with what a write would change.
fn snapshot(root: &Path) -> Vec<(PathBuf, u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        out.push((p.clone(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()));
        if m.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_noop_apply_and_the_read_commands_write_nothing_to_the_store() {
    if !common::root_or_skip("a_noop_apply_and_the_read_commands_write_nothing_to_the_store") {
        return;
    }
    let w = World::new("ro");
    w.apply(WEB);
    let m = w.manifest(WEB);
    let m = m.to_str().unwrap();
    let store = w.dir.path().join("store");
    assert!(
        store.join("images/local.json").exists(),
        "the first apply caches the digest"
    );
    let before = snapshot(&store);
    assert!(w.apply(WEB).contains("no changes"));
    assert_eq!(
        snapshot(&store),
        before,
        "a no-op apply created, removed or rewrote a file"
    );

    // Under a read-only bind of the store, in a private mount namespace.
    let s = store.to_str().unwrap();
    let run = w.dir.path().join("run");
    for cmd in [
        vec!["validate", m],
        vec!["render", m],
        vec!["plan", m],
        vec!["status"],
        vec!["check", m],
    ] {
        let run = run.to_str().unwrap();
        let mut args = vec![
            "--cgroup-parent",
            &w.name,
            "--root",
            s,
            "--runtime-dir",
            run,
        ];
        args.extend(&cmd);
        let out = w.berth_read_only(&store, &args);
        assert!(
            out.status.success(),
            "berth {cmd:?} under a read-only store: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if cmd[0] == "plan" {
            assert!(String::from_utf8_lossy(&out.stdout).contains("no changes"));
        }
    }
    assert_eq!(snapshot(&store), before);
}

/// A user-namespaced container (root inside is host 100000) writes its own
/// root as root expects: new files, /etc edits, chown within the map. Its
/// writes land in its upper dir as mapped host ids; the shared image and a
/// plain container of the same image see nothing of them.
#[test]
fn a_user_namespaced_container_writes_its_own_root() {
    if !common::root_or_skip("a_user_namespaced_container_writes_its_own_root") {
        return;
    }
    let w = World::new("uns");
    let sleeper = |name: &str, extra: &str| {
        format!("\n  {name}:\n    image: bb\n    command: [sleep, '300']{extra}")
    };
    let userns = "\n    namespaces: { user: { map: '0 100000 65536' } }";
    let containers = [
        sleeper("uns", userns),
        sleeper("plain", ""),
        sleeper("vol", &format!("{userns}\n    volatile: true")),
    ]
    .concat();
    w.apply(&containers);
    let exec = |name: &str, script: &str| {
        let out = w.berth(&["exec", name, "--", "sh", "-c", script]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), text, err)
    };
    let writes = "touch /x && echo ok > /etc/motd && sed -i s/root/root/ /etc/passwd \
                  && mkdir /var/new && chown 1000:1000 /var/new \
                  && echo '10.0.0.9 extra' >> /etc/hosts && echo done";
    for name in ["uns", "vol"] {
        let (ok, out, err) = exec(name, writes);
        assert!(ok && out.contains("done"), "{name}: {out}{err}");
        let (_, out, err) = exec(
            name,
            "stat -c '%u:%g %n' / /x /etc/motd /etc/passwd /var/new /etc/hosts",
        );
        assert_eq!(
            out,
            "0:0 /\n0:0 /x\n0:0 /etc/motd\n0:0 /etc/passwd\n1000:1000 /var/new\n0:0 /etc/hosts\n",
            "{name}: {err}"
        );
    }

    // On the host, the upper dir holds the writes as mapped host ids.
    let store = w.dir.path().join("store");
    let upper = store.join("containers/uns/upper");
    let host_owner = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        let md = fs::symlink_metadata(p).unwrap();
        (md.uid(), md.gid())
    };
    assert_eq!(host_owner(&upper.join("x")), (100000, 100000));
    assert_eq!(host_owner(&upper.join("etc/passwd")), (100000, 100000));
    assert_eq!(host_owner(&upper.join("var/new")), (101000, 101000));

    // The plain container and the image itself are unchanged.
    let (ok, out, err) = exec(
        "plain",
        "stat -c '%u:%g %n' / /etc/passwd; ls /x /var/new; cat /etc/motd",
    );
    assert!(!ok, "plain sees no writes of uns: {out}");
    assert!(out.starts_with("0:0 /\n0:0 /etc/passwd\n"), "{out}{err}");
    assert!(!out.contains("ok"), "{out}");
    let images = store.join("images");
    let digest = fs::read_to_string(store.join("containers/uns/image")).unwrap();
    let rootfs = images.join(digest.trim()).join("rootfs");
    assert!(!rootfs.join("x").exists() && !rootfs.join("var/new").exists());
    assert_eq!(host_owner(&rootfs.join("etc/passwd")), (0, 0));
    assert_ne!(
        fs::read(rootfs.join("etc/motd")).ok().as_deref(),
        Some(&b"ok\n"[..])
    );
    // One shifted copy, shared by both user-namespaced containers.
    let shifted: Vec<_> = fs::read_dir(images.join(digest.trim()))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("shifted-"))
        .collect();
    assert_eq!(shifted.len(), 1, "{shifted:?}");
    assert_eq!(
        host_owner(&shifted[0].path().join("rootfs/etc/passwd")),
        (100000, 100000)
    );
}
