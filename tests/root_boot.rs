//! Root test of the parallel converge (`settings.parallel`): ten containers
//! with a veth each on one bridge and a few dependencies, applied all at once
//! inside the test's own network namespace, then removed the same way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apply_world;
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use apply_world::World;

/// What each container depends on.
const DEPS: [&[usize]; 10] = [&[], &[], &[], &[], &[1, 2], &[], &[], &[4], &[], &[7, 0]];

/// The manifest of the ten containers, all at once (`parallel: 10`); `broken`
/// names one whose command does not exist.
fn manifest(w: &World, broken: Option<usize>) -> PathBuf {
    let mut text = format!(
        "version: 1\nsettings: {{ root: {}, runtime_dir: {}, parallel: 10 }}\nimages:\n  bb: {{ path: {} }}\nnetworks:\n  lan: {{ type: bridge, bridge: br-t, create: true, address: 10.77.0.1/24 }}\ncontainers:\n",
        w.dir.path().join("store").display(),
        w.dir.path().join("run").display(),
        common::rootfs_tarball().display()
    );
    for (i, deps) in DEPS.iter().enumerate() {
        let cmd = if broken == Some(i) {
            "[/no/such/program]"
        } else {
            "[sleep, '1000']"
        };
        let depends: Vec<String> = deps.iter().map(|d| format!("c{d}")).collect();
        text.push_str(&format!(
            "  c{i}:\n    image: bb\n    command: {cmd}\n    depends_on: [{}]\n    network: [{{ network: lan, address: 10.77.0.{}/24 }}]\n",
            depends.join(", "),
            20 + i
        ));
    }
    let p = w.dir.path().join("boot.yaml");
    fs::write(&p, text).unwrap();
    p
}

/// When a file of container `name`'s run dir was last written.
fn written(w: &World, name: &str, file: &str) -> SystemTime {
    let path = w.dir.path().join("run").join(name).join(file);
    fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every dependency had its init running (the monitor writes `state.json`
/// before it tells apply the start is done) before its dependant's start
/// began (`config.json`, written first thing).
fn assert_started_in_order(w: &World) {
    for (i, deps) in DEPS.iter().enumerate() {
        for d in deps.iter() {
            let up = written(w, &format!("c{d}"), "state.json");
            let begun = written(w, &format!("c{i}"), "config.json");
            assert!(up < begun, "c{i} began to start before c{d} ran");
        }
    }
}

fn apply(w: &World, m: &Path) -> (bool, String) {
    let out = w.berth(&["apply", m.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn veths(w: &World) -> usize {
    w.sh("ip -o link show master br-t").lines().count()
}

#[test]
fn parallel_apply_starts_dependencies_first_and_removes_everything() {
    if !common::root_or_skip("parallel_apply_starts_dependencies_first_and_removes_everything") {
        return;
    }
    let w = World::new("boot");
    let m = manifest(&w, None);
    let (ok, out) = apply(&w, &m);
    assert!(ok, "{out}");
    // The report lists the steps in plan order: c0 .. c9 with c4 after c1, c2.
    let starts: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("> start "))
        .collect();
    assert_eq!(
        starts,
        ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"],
        "{out}"
    );
    assert_started_in_order(&w);
    for i in 0..10 {
        assert!(w.pid(&format!("c{i}")).is_some(), "c{i} runs");
    }
    assert_eq!(veths(&w), 10, "one veth each on the bridge");
    let (ok, out) = apply(&w, &m);
    assert!(
        ok && out == "no changes: the device matches the manifest\n",
        "{out}"
    );

    // Everything removed, dependants first, nothing left behind.
    let (ok, out) = apply(&w, &w.manifest(" {}"));
    assert!(ok, "{out}");
    assert_eq!(out.matches("- remove c").count(), 10, "{out}");
    // A veth whose namespace is being torn down goes with it, a moment later.
    w.wait_for("the veths to go", || veths(&w) == 0);
    let store = w.dir.path().join("store/containers");
    let left: Vec<_> = fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        left.is_empty(),
        "container dirs left: {left:?} {:?}",
        left.iter()
            .map(|p| fs::read_dir(p).map(|d| d.map(|e| e.unwrap().file_name()).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
    );
    assert!(
        w.cgroups()
            .iter()
            .all(|c| (0..10).all(|i| !c.join(format!("c{i}")).exists())),
        "no container cgroup left"
    );
}

#[test]
fn parallel_apply_failure_skips_dependants_and_leaves_nothing_half_made() {
    if !common::root_or_skip("parallel_apply_failure_skips_dependants_and_leaves_nothing_half_made")
    {
        return;
    }
    let w = World::new("bootf");
    let m = manifest(&w, Some(4));
    let (ok, out) = apply(&w, &m);
    assert!(!ok, "a failed start fails the apply: {out}");
    assert!(out.contains("start `c4`"), "{out}");
    // c7 depends on c4 and c9 on c7: neither was made.
    let store = w.dir.path().join("store/containers");
    for i in [7, 9] {
        assert!(w.pid(&format!("c{i}")).is_none(), "c{i} must not run");
        assert!(!store.join(format!("c{i}")).exists(), "c{i} not created");
    }
    // c4 stays as its create left it: recorded, no process, no veth.
    assert!(w.pid("c4").is_none());
    assert!(store.join("c4/applied.json").exists(), "c4 stays created");
    for i in [0, 1, 2, 3, 5, 6, 8] {
        assert!(w.pid(&format!("c{i}")).is_some(), "c{i} runs");
    }
    // c4's veth goes with its dying namespace, a moment later.
    w.wait_for("a veth for each running container only", || veths(&w) == 7);
    for c in w.cgroups() {
        let procs = fs::read_to_string(c.join("c4/cgroup.procs")).unwrap_or_default();
        assert!(procs.trim().is_empty(), "left in c4's cgroup: {procs}");
    }
}
