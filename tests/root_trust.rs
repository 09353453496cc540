//! Root test of signed fleet manifests, from the hostile origin's side: the
//! device applies a signed manifest from an HTTP origin (python's http.server
//! in the test's network namespace), then the origin offers a replayed older
//! manifest, a forged one, an expired one and an unsigned one. Each is
//! refused with its rule and the running container is untouched. Then the
//! device "reboots" with the origin down and converges from the manifest it
//! kept on flash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apply_world;
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use apply_world::World;

const WEB: &str = "
  web:
    image: bb
    command: [sleep, '3600']";

/// An HTTP origin serving `dir` on 127.0.0.1:8080 inside the world's netns.
struct Origin {
    child: Child,
}

impl Origin {
    fn start(w: &World, dir: &Path) -> Origin {
        let child = Command::new("ip")
            .args(["netns", "exec", &w.name, "python3", "-m", "http.server"])
            .args(["8080", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let deadline = Instant::now() + Duration::from_secs(10);
        let probe = "printf 'HEAD / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 1 127.0.0.1 8080";
        while !w.sh(probe).starts_with("HTTP/") {
            assert!(Instant::now() < deadline, "the origin did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Origin { child }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Publish `text` at www/m.yaml signed with `version` (and `expires`).
fn publish(www: &Path, key: &Path, text: &str, version: u64, expires: Option<&str>) {
    let m = www.join("m.yaml");
    fs::write(&m, text).unwrap();
    let v = version.to_string();
    let mut args = vec!["sign", "--key", key.to_str().unwrap(), "--version", &v];
    if let Some(e) = expires {
        args.extend(["--expires", e]);
    }
    args.push(m.to_str().unwrap());
    ok(&berth(&args), "berth sign");
}

#[test]
fn a_hostile_origin_cannot_roll_back_forge_or_freeze_the_device() {
    if !common::root_or_skip("a_hostile_origin_cannot_roll_back_forge_or_freeze_the_device") {
        return;
    }
    let w = World::new("trust");
    let dir = w.dir.path().to_path_buf();
    let (www, keys) = (dir.join("www"), dir.join("keys"));
    fs::create_dir_all(&www).unwrap();
    fs::create_dir_all(&keys).unwrap();
    let key_base = dir.join("fleet");
    ok(
        &berth(&[
            "key",
            "generate",
            key_base.to_str().unwrap(),
            "--no-passphrase",
        ]),
        "berth key generate",
    );
    fs::copy(dir.join("fleet.pub"), keys.join("fleet.pub")).unwrap();
    let secret = dir.join("fleet.key");
    let store: PathBuf = dir.join("store");
    let url = "http://127.0.0.1:8080/m.yaml";
    let apply = || {
        w.berth(&[
            "--root",
            store.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
            "apply",
            url,
        ])
    };
    let refused = |what: &str, rule: &str, pid: i32| {
        let out = apply();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(rule), "{what}: wants `{rule}` in: {err}");
        assert_eq!(w.pid("web"), Some(pid), "{what}: the container was touched");
        assert!(
            w.pid("evil").is_none(),
            "{what}: a forged container started"
        );
    };

    // Version 2 is accepted and applied.
    let good = fs::read_to_string(w.manifest(WEB)).unwrap();
    let origin = Origin::start(&w, &www);
    publish(&www, &secret, &good, 2, None);
    let out = apply();
    assert!(ok(&out, "signed apply").contains("> start web"));
    let pid = w.pid("web").expect("web runs");
    let accepted = fs::read_to_string(store.join("trust/manifest.json")).unwrap();
    assert!(accepted.contains("\"version\":2"), "{accepted}");

    // The same manifest again: nothing to do, nothing written.
    let before = fs::metadata(store.join("trust/manifest.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert!(ok(&apply(), "same again").contains("no changes"));
    let after = fs::metadata(store.join("trust/manifest.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        before, after,
        "an unchanged manifest rewrote the trust store"
    );
    // The read commands check a newer signed manifest the same way and keep
    // nothing: under a read-only bind of the store, a write would fail them.
    publish(&www, &secret, &good, 3, None);
    let s = store.to_str().unwrap();
    for cmd in ["validate", "render", "plan", "check"] {
        let keys = keys.to_str().unwrap();
        let out = w.berth_read_only(&store, &["--root", s, "--keys", keys, cmd, url]);
        assert!(
            out.status.success(),
            "berth {cmd} of the signed URL under a read-only store: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let evil = format!("{good}  evil: {{ image: bb, command: [sleep, '3600'] }}\n");
    // Replay: an older, validly signed manifest.
    publish(&www, &secret, &evil, 1, None);
    refused("replayed v1", "version 1 < accepted 2", pid);
    // The accepted version with other content.
    publish(&www, &secret, &evil, 2, None);
    refused(
        "reused v2",
        "version 2 was accepted with other content",
        pid,
    );
    // Forged: new content under the old signature.
    publish(&www, &secret, &good, 3, None);
    fs::write(www.join("m.yaml"), &evil).unwrap();
    refused("forged", "bad signature", pid);
    // Signed by a key the device does not trust.
    let stranger = dir.join("stranger");
    ok(
        &berth(&[
            "key",
            "generate",
            stranger.to_str().unwrap(),
            "--no-passphrase",
        ]),
        "berth key generate",
    );
    publish(&www, &dir.join("stranger.key"), &evil, 9, None);
    refused("stranger", "signed by unknown key", pid);
    // Expired (a frozen origin serving a stale manifest).
    publish(&www, &secret, &evil, 4, Some("2026-12-01T00:00:01Z"));
    refused("expired", "expired at 2026-12-01T00:00:01Z", pid);
    // Unsigned.
    fs::remove_file(www.join("m.yaml.minisig")).unwrap();
    refused("unsigned", "is unsigned", pid);

    // Reboot with the origin down: the runtime dir (tmpfs) is gone, the
    // container with it; the stored manifest brings it back.
    drop(origin);
    ok(
        &w.berth(&["--root", store.to_str().unwrap(), "stop", "web"]),
        "stop web",
    );
    let out = apply();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(ok(&out, "offline apply").contains("> start web"), "{err}");
    assert!(
        err.contains("applying the stored manifest, version 2"),
        "{err}"
    );
    assert!(
        w.pid("web").is_some(),
        "web runs again from the stored manifest"
    );
    assert!(w.pid("evil").is_none());
}
