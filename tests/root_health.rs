//! Root tests of health checks and rollback, through the binary: probes run
//! from inside the container (exec) or its network namespace (tcp, http);
//! `apply --wait` keeps a healthy update, rolls back an unhealthy one to
//! the last good state (untouched containers keep their pids, the old image
//! comes back), refuses it after, and finishes a rollback cut short by kill -9.
//! Each test has its own netns, store, runtime dir and cgroup parent, removed
//! even on failure (`World`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apply_world;
mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use apply_world::World;

/// The status document (`status --json`), with the store's history.
fn status(w: &World) -> serde_json::Value {
    let root = w.dir.path().join("store");
    let out = w.berth(&["--root", root.to_str().unwrap(), "status", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn row(v: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
    v["containers"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Poll `status` until `done` holds for it (at most `secs`).
fn wait_status(w: &World, secs: u64, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = status(w);
        if done(&v) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A manifest with two images: `bb` (busybox) and `bb2` (busybox with a
/// /marker file), and `containers`.
fn manifest(w: &World, file: &str, containers: &str) -> PathBuf {
    let bb2 = w.dir.path().join("bb2.tar");
    if !bb2.exists() {
        let dir = w.dir.path();
        let script = format!(
            "zcat {} > {tar}.tmp && echo v2 > {d}/marker && tar --append -f {tar}.tmp -C {d} marker && mv {tar}.tmp {tar}",
            common::rootfs_tarball().display(),
            tar = bb2.display(),
            d = dir.display()
        );
        assert!(Command::new("sh")
            .args(["-c", &script])
            .status()
            .unwrap()
            .success());
    }
    // Only the images the containers name.
    let mut images = String::new();
    if containers.lines().any(|l| l.trim() == "image: bb") {
        images += &format!("  bb: {{ path: {} }}\n", common::rootfs_tarball().display());
    }
    if containers.contains("image: bb2") {
        images += &format!("  bb2: {{ path: {} }}\n", bb2.display());
    }
    let text = format!(
        "version: 1\nsettings: {{ root: {}, runtime_dir: {} }}\nimages:\n{images}containers:{containers}\n",
        w.dir.path().join("store").display(),
        w.dir.path().join("run").display(),
    );
    let p = w.dir.path().join(file);
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn probes_judge_from_inside_and_a_hung_probe_is_killed() {
    if !common::root_or_skip("probes_judge_from_inside_and_a_hung_probe_is_killed") {
        return;
    }
    let w = World::new("probes");
    let m = manifest(
        &w,
        "m.yaml",
        r#"
  web:
    image: bb
    command: [httpd, -f, -p, "8080", -h, /etc]
    health: { http: { port: 8080, path: /passwd, status: 200 }, interval: 1s }
  port:
    image: bb
    command: [httpd, -f, -p, "8081", -h, /etc]
    health: { tcp: 8081, interval: 1s }
  inside:
    image: bb
    command: [sleep, "1000"]
    # Only true inside: the container's own hostname.
    health: { exec: [sh, -c, "test $(hostname) = inside"], interval: 1s }
  hang:
    image: bb
    command: [sleep, "1000"]
    health: { exec: [sleep, "317"], interval: 60s, timeout: 1s, retries: 1 }
  missing:
    image: bb
    command: [sleep, "1000"]
    health: { exec: [no-such-command], interval: 1s, retries: 1 }
  noisy:
    image: bb
    command: [sleep, "1000"]
    health: { exec: [sh, -c, "head -c 200000 /dev/zero | tr '\\0' x; exit 4"], interval: 1s, retries: 1 }
  closed:
    image: bb
    command: [sleep, "1000"]
    health: { http: { port: 8082 }, interval: 1s, retries: 2 }
  flaky:
    image: bb
    command: [sleep, "1000"]
    restart: on-unhealthy
    health: { exec: ["false"], interval: 1s, retries: 2 }
  plain:
    image: bb
    command: [sleep, "1000"]"#,
    );
    let out = w.berth(&["apply", m.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let health = |v: &serde_json::Value, name: &str| {
        row(v, name).map_or(serde_json::Value::Null, |r| r["health"].clone())
    };
    wait_status(&w, 30, "every verdict", |v| {
        ["web", "port", "inside"]
            .iter()
            .all(|n| health(v, n)["status"] == "healthy")
            && ["hang", "missing", "noisy", "closed"]
                .iter()
                .all(|n| health(v, n)["status"] == "unhealthy")
            && row(v, "flaky").is_some_and(|r| r["restarts"].as_u64() >= Some(1))
    });
    let v = status(&w);
    let why = |n: &str| {
        health(&v, n)["last_failure"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(why("hang"), "timed out after 1 s");
    assert!(
        why("missing").contains("`no-such-command` in the container: not found"),
        "{}",
        why("missing")
    );
    assert!(
        why("closed").contains("connect to port 8082") && why("closed").contains("refused"),
        "{}",
        why("closed")
    );
    let noisy = why("noisy");
    assert!(
        noisy.starts_with("exit code 4: xxx") && noisy.len() <= 1024,
        "{} bytes",
        noisy.len()
    );
    assert!(why("flaky").starts_with("exit code 1"), "{}", why("flaky"));
    assert_eq!(
        health(&v, "plain"),
        serde_json::Value::Null,
        "no check, no verdict"
    );
    // The hung probe was killed with everything it started, in the
    // container too: no `sleep 317` is left (the next one is 60 s away;
    // 317, not a round number another process on the machine may sleep).
    let left = Command::new("pgrep")
        .args(["-f", "^sleep 317$"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "a hung probe survived: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    // The table shows the verdict and the reason.
    let root = w.dir.path().join("store");
    let out = w.berth(&["--root", root.to_str().unwrap(), "status", "missing"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("running (unhealthy)") && table.contains("last failed check: exit code 127"),
        "{table}"
    );
}

/// v1 (healthy), signed version 11: `keep` and `web` on image bb.
const V1: &str = r#"
  keep:
    image: bb
    command: [sleep, "1000"]
  web:
    image: bb
    command: [httpd, -f, -p, "8080", -h, /etc]
    health: { http: { port: 8080, path: /passwd }, interval: 1s, retries: 2 }"#;

/// v2 (unhealthy), version 12: `web` on image bb2 asks for a page that is
/// not there, and a new container `extra`.
const V2: &str = r#"
  keep:
    image: bb
    command: [sleep, "1000"]
  web:
    image: bb2
    command: [httpd, -f, -p, "8080", -h, /etc]
    health: { http: { port: 8080, path: /missing }, interval: 1s, retries: 2 }
  extra:
    image: bb
    command: [sleep, "1000"]"#;

/// A signed world: a key the device trusts, and a way to publish a signed
/// manifest of a version.
struct Signed<'a> {
    w: &'a World,
}

impl Signed<'_> {
    fn new(w: &World) -> Signed<'_> {
        let d = w.dir.path();
        let key = d.join("k");
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["key", "generate", key.to_str().unwrap(), "--no-passphrase"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        Signed { w }
    }

    fn publish(&self, file: &str, containers: &str, version: u32) -> PathBuf {
        let m = manifest(self.w, file, containers);
        let key = self.w.dir.path().join("k.key");
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args([
                "sign",
                "--key",
                key.to_str().unwrap(),
                "--version",
                &version.to_string(),
            ])
            .arg(&m)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        m
    }

    fn apply(&self, m: &std::path::Path, extra: &[&str]) -> Output {
        let keys = self.w.dir.path().join("k.pub");
        // The trust store is under --root, never where the manifest says.
        let root = self.w.dir.path().join("store");
        let mut args = vec![
            "--root",
            root.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
            "--require-signed",
            "apply",
            "--wait",
        ];
        args.extend_from_slice(extra);
        args.push(m.to_str().unwrap());
        self.w.berth(&args)
    }
}

/// Whether the running `web` has image bb2's /marker.
fn web_has_marker(w: &World) -> bool {
    w.berth(&["exec", "web", "--", "test", "-e", "/marker"])
        .status
        .success()
}

#[test]
fn an_unhealthy_update_is_rolled_back_and_then_refused() {
    if !common::root_or_skip("an_unhealthy_update_is_rolled_back_and_then_refused") {
        return;
    }
    let w = World::new("rollback");
    let s = Signed::new(&w);
    let v1 = s.publish("v1.yaml", V1, 11);
    let out = s.apply(&v1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let v = status(&w);
    assert_eq!(v["last_apply"]["outcome"], "applied", "{v:#}");
    assert_eq!(v["last_apply"]["revision"]["version"], 11);
    assert_eq!(v["last_good"]["revision"]["version"], 11);
    let keep = w.pid("keep").unwrap();
    assert!(!web_has_marker(&w));

    // A healthy update stays, and becomes the last good state.
    let v1b = s.publish("v1b.yaml", &V1.replace("retries: 2", "retries: 3"), 12);
    let out = s.apply(&v1b, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status(&w)["last_good"]["revision"]["version"], 12);
    let web = w.pid("web").unwrap();

    let v2 = s.publish("v2.yaml", V2, 13);
    let out = s.apply(&v2, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rolled back from version 13 to version 12: container `web` unhealthy: exit code 1: GET /missing: HTTP/1.")
            && err.contains("404"),
        "{}",
        text(&out)
    );
    // The device is as before: `keep` untouched, `web` on its old image,
    // `extra` gone; the reason is in status.
    assert_eq!(
        w.pid("keep"),
        Some(keep),
        "an untouched container was restarted"
    );
    assert!(!web_has_marker(&w), "web is not back on its old image");
    assert_ne!(
        w.pid("web"),
        Some(web),
        "web was recreated twice, so a new pid"
    );
    let v = status(&w);
    assert!(row(&v, "extra").is_none(), "{v:#}");
    assert_eq!(
        row(&v, "web").unwrap()["health"]["status"],
        "healthy",
        "{v:#}"
    );
    assert_eq!(v["last_apply"]["outcome"], "rolled-back", "{v:#}");
    assert_eq!(v["last_apply"]["revision"]["version"], 13);
    assert_eq!(v["last_apply"]["rolled_back_to"]["version"], 12);
    assert!(
        v["last_apply"]["reason"].as_str().unwrap().contains("404"),
        "{v:#}"
    );

    // The same manifest again: refused with the reason, nothing touched.
    let web = w.pid("web").unwrap();
    let out = s.apply(&v2, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("version 13 was rolled back at ")
            && err.contains("404")
            && err.contains("until a newer one comes"),
        "{}",
        text(&out)
    );
    assert!(
        out.stdout.is_empty(),
        "the refusal changed something: {}",
        text(&out)
    );
    let v = status(&w);
    assert_eq!(v["last_apply"]["outcome"], "refused", "{v:#}");
    assert_eq!(v["last_apply"]["rolled_back_to"]["version"], 12);
    let root = w.dir.path().join("store");
    let out = w.berth(&["--root", root.to_str().unwrap(), "status"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("last apply: refused version 13 (rolled back to version 12 at ")
            && table.contains("  reason: container `web` unhealthy: "),
        "{table}"
    );
    assert_eq!((w.pid("keep"), w.pid("web")), (Some(keep), Some(web)));

    // A newer manifest that works is applied.
    let v3 = s.publish("v3.yaml", &V2.replace("/missing", "/passwd"), 14);
    let out = s.apply(&v3, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(web_has_marker(&w));
    let v = status(&w);
    assert_eq!(v["last_apply"]["outcome"], "applied");
    assert_eq!(v["last_good"]["revision"]["version"], 14);
    assert_eq!(w.pid("keep"), Some(keep));

    // An apply that does not wait moves every container to bb2; `image gc`
    // still keeps bb, which the last good state (version 14) needs.
    let v4 = s.publish(
        "v4.yaml",
        &V2.replace("/missing", "/passwd")
            .replace("image: bb\n", "image: bb2\n"),
        15,
    );
    let root = w.dir.path().join("store");
    let keys = w.dir.path().join("k.pub");
    let (root, keys) = (root.to_str().unwrap(), keys.to_str().unwrap());
    let out = w.berth(&[
        "--root",
        root,
        "--keys",
        keys,
        "apply",
        v4.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let bb = String::from_utf8(
        Command::new("sha256sum")
            .arg(common::rootfs_tarball())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let bb = bb.split_whitespace().next().unwrap().to_string();
    let out = w.berth(&["--root", root, "image", "gc"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&bb),
        "gc removed the last good image: {}",
        text(&out)
    );
    assert!(w.dir.path().join("store/images").join(&bb).is_dir());
}

#[test]
fn a_rollback_cut_short_by_kill_9_converges_on_the_next_apply() {
    if !common::root_or_skip("a_rollback_cut_short_by_kill_9_converges_on_the_next_apply") {
        return;
    }
    let w = World::new("cutshort");
    let v1 = manifest(&w, "v1.yaml", V1);
    let out = w.berth(&["apply", "--wait", v1.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let keep = w.pid("keep").unwrap();
    let v2 = manifest(&w, "v2.yaml", V2);

    // Kill the apply the moment it starts rolling back.
    let mut child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", w.name))
        .arg(env!("CARGO_BIN_EXE_berth"))
        .args(["--cgroup-parent", &w.name, "--runtime-dir"])
        .arg(w.dir.path().join("run"))
        .args(["apply", "--wait", v2.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "apply ended without rolling back"
        );
        if line.contains("rolling back") {
            break;
        }
    }
    // SAFETY: SIGKILL to our own child.
    unsafe { libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGKILL) };
    let _ = child.wait();
    let v = status(&w);
    assert_eq!(v["last_apply"]["outcome"], "rolling-back", "{v:#}");
    assert!(
        row(&v, "extra").is_some(),
        "the failed state is still there: {v:#}"
    );

    // The next apply of the same manifest (a fleet poll, the boot) finishes
    // the rollback and refuses it.
    let out = w.berth(&["apply", "--wait", v2.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was rolled back"),
        "{}",
        text(&out)
    );
    let v = status(&w);
    assert_eq!(v["last_apply"]["outcome"], "refused", "{v:#}");
    assert_eq!(
        v["last_apply"]["rolled_back_to"], v["last_good"]["revision"],
        "{v:#}"
    );
    assert!(row(&v, "extra").is_none(), "{v:#}");
    assert_eq!(
        row(&v, "web").unwrap()["health"]["status"],
        "healthy",
        "{v:#}"
    );
    assert!(!web_has_marker(&w));
    assert_eq!(w.pid("keep"), Some(keep));
    // Nothing of `extra` is left on the host: its cgroup is gone.
    assert!(
        w.cgroups().iter().all(|c| !c.join("extra").exists()),
        "extra's cgroup was left behind"
    );
    // And once converged, a third try changes nothing and writes nothing.
    let history = w.dir.path().join("store/history/last-apply.json");
    let before = fs::metadata(&history).unwrap().modified().unwrap();
    let out = w.berth(&["apply", "--wait", v2.to_str().unwrap()]);
    assert!(
        !out.status.success() && out.stdout.is_empty(),
        "{}",
        text(&out)
    );
    assert_eq!(fs::metadata(&history).unwrap().modified().unwrap(), before);
}

/// `apply --serve` waits on every pass: an unhealthy manifest that appears
/// under a running service is rolled back once, and the ticks after it
/// change nothing and write nothing (a fleet poll does not loop).
#[test]
fn the_service_rolls_back_once_and_then_leaves_the_device_alone() {
    if !common::root_or_skip("the_service_rolls_back_once_and_then_leaves_the_device_alone") {
        return;
    }
    let w = World::new("serve");
    let m = manifest(&w, "m.yaml", V1);
    let log = fs::File::create(w.dir.path().join("serve.log")).unwrap();
    let mut serve = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", w.name))
        .arg(env!("CARGO_BIN_EXE_berth"))
        .args(["--cgroup-parent", &w.name, "--runtime-dir"])
        .arg(w.dir.path().join("run"))
        .args(["apply", "--serve", "--interval", "1", "--jitter", "0"])
        .arg(&m)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let outcome = |v: &serde_json::Value| {
        v["last_apply"]["outcome"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    wait_status(&w, 30, "v1 applied", |v| outcome(v) == "applied");
    let keep = w.pid("keep").unwrap();

    // The origin (here the file) now serves an unhealthy manifest.
    let v2 = manifest(&w, "v2.yaml", V2);
    fs::rename(&v2, &m).unwrap();
    wait_status(&w, 60, "the rollback", |v| outcome(v) == "refused");
    let history = w.dir.path().join("store/history/last-apply.json");
    let written = fs::metadata(&history).unwrap().modified().unwrap();
    let web = w.pid("web").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        (w.pid("keep"), w.pid("web")),
        (Some(keep), Some(web)),
        "a tick touched a container"
    );
    assert_eq!(
        fs::metadata(&history).unwrap().modified().unwrap(),
        written,
        "a tick wrote the history"
    );
    let v = status(&w);
    assert!(row(&v, "extra").is_none(), "{v:#}");
    assert!(!web_has_marker(&w));

    // SIGTERM stops the service and its containers.
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(i32::try_from(serve.id()).unwrap(), libc::SIGTERM) };
    assert!(serve.wait().unwrap().success());
    let said = fs::read_to_string(w.dir.path().join("serve.log")).unwrap();
    assert_eq!(said.matches("rolling back from").count(), 1, "{said}");
    assert_eq!(
        said.matches("until a newer one comes").count(),
        1,
        "said once: {said}"
    );
    assert!(said.contains("container `web` unhealthy"), "{said}");
}
