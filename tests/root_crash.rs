//! Crash convergence, from the outside: `berth apply` is killed with SIGKILL
//! at evenly spread points of an apply (from nothing, and a recreate of every
//! container), and one further apply must converge: every container running
//! under a monitor, a second apply with nothing to do, and no leftover link,
//! mount, cgroup, monitor or temp dir. Each trial has its own world.
//!
//! `BERTH_CRASH_POINTS` sets the number of kill points per kind of apply
//! (default 6; `make test-crash` runs more).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apply_world;
mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use apply_world::World;

const N: usize = 5;

fn containers(cmd: &str) -> String {
    (0..N)
        .map(|i| {
            format!(
                "\n  c{i}:\n    image: bb\n    command: [sleep, '{cmd}']\n    network:\n      - {{ network: lan, address: 10.77.0.{}/24 }}",
                10 + i
            )
        })
        .collect()
}

fn points() -> usize {
    std::env::var("BERTH_CRASH_POINTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
}

/// Start `apply` of `manifest` and SIGKILL it after `after` (or let it end).
/// Returns how long it ran.
fn apply_killed(w: &World, containers: &str, after: Option<Duration>) -> Duration {
    let m = w.manifest(containers);
    let started = Instant::now();
    let mut child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", w.name))
        .arg(env!("CARGO_BIN_EXE_berth"))
        .args(["--cgroup-parent", &w.name, "--runtime-dir"])
        .arg(w.dir.path().join("run"))
        .arg("apply")
        .arg(&m)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    match after {
        Some(t) => {
            std::thread::sleep(t);
            let _ = child.kill();
            let _ = child.wait();
        }
        None => assert!(child.wait().unwrap().success(), "the timed apply failed"),
    }
    started.elapsed()
}

/// Everything that shows the device converged on `containers`, and nothing more.
fn assert_converged(w: &World, containers: &str, what: &str) {
    let out = w.berth(&["status", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows["containers"].as_array().unwrap();
    assert_eq!(rows.len(), N, "{what}: status lists {rows:?}");
    for r in rows {
        assert_eq!(r["state"], "running", "{what}: {r}");
        assert_eq!(r["supervised"], true, "{what}: {r}");
    }
    let m = w.manifest(containers);
    let out = w.berth(&["apply", m.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "no changes: the device matches the manifest\n",
        "{what}: a second apply still had work: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Links: loopback, the bridge, one host end per container.
    let links = w.sh("ip -o link show");
    assert_eq!(links.lines().count(), 2 + N, "{what}: links:\n{links}");
    // Mounts: one root per container, nothing else under the store.
    let store = w.dir.path().join("store");
    let mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| Path::new(m).starts_with(&store))
        .collect();
    assert_eq!(mounts.len(), N, "{what}: mounts: {mounts:?}");
    // cgroups: exactly the containers under the world's parent.
    for cg in w.cgroups() {
        let mut kids: Vec<String> = fs::read_dir(&cg)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        kids.sort();
        let want: Vec<String> = (0..N).map(|i| format!("c{i}")).collect();
        assert_eq!(kids, want, "{what}: cgroups under {}", cg.display());
    }
    // Monitors: one per container.
    let run = w.dir.path().join("run");
    let out = Command::new("pgrep")
        .args(["-f", &format!("__monitor {}", run.display())])
        .output()
        .unwrap();
    let monitors = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(monitors, N, "{what}: monitors");
    // No temp dir or file left from an interrupted write or extraction.
    for dir in [
        store.clone(),
        store.join("images"),
        store.join("containers"),
        run.clone(),
    ] {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".tmp") && !name.ends_with(".tmp"),
                "{what}: temp entry {}",
                e.path().display()
            );
        }
    }
}

/// Kill `apply` at `points()` evenly spread moments of a run as long as the
/// calibration run `full`; `prepare` brings each fresh world to its start state.
fn sweep(kind: &str, prepare: &dyn Fn(&World), target: &str) {
    let calibrate = World::new(&format!("{kind}-cal"));
    prepare(&calibrate);
    let full = apply_killed(&calibrate, target, None);
    drop(calibrate);
    let n = points();
    for i in 1..=n {
        let at = full * u32::try_from(i).unwrap() / u32::try_from(n + 1).unwrap();
        let what = format!("{kind}: apply killed after {at:?} of {full:?}");
        let w = World::new(&format!("{kind}{i}"));
        prepare(&w);
        apply_killed(&w, target, Some(at));
        w.apply(target);
        assert_converged(&w, target, &what);
    }
}

#[test]
fn one_apply_converges_after_a_killed_apply_from_nothing() {
    if !common::root_or_skip("one_apply_converges_after_a_killed_apply_from_nothing") {
        return;
    }
    sweep("new", &|_| {}, &containers("600"));
}

#[test]
fn one_apply_converges_after_a_killed_recreate() {
    if !common::root_or_skip("one_apply_converges_after_a_killed_recreate") {
        return;
    }
    let before = containers("600");
    sweep(
        "re",
        &|w| {
            w.apply(&before);
        },
        &containers("700"),
    );
}
