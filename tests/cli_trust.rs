//! Signed manifests and key rotation through the binary, from a hostile
//! origin's side, without containers (so without root): a loopback origin in
//! the test serves the manifest, its signature and a key list; each refusal
//! exits 2 with its rule and leaves the trust store as it was.
//! (tests/root_trust.rs runs a container through the same rules.)

// Test setup: a failed step panics with its location.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An origin on loopback serving the files of `dir` (404 for the others).
fn origin(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut request = String::new();
            let _ = r.read_line(&mut request);
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request
                .split(' ')
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/');
            let _ = match fs::read(dir.join(path)) {
                Ok(body) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    s.write_all(&body)
                }
                Err(_) => s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            };
        }
    });
    format!("http://{addr}")
}

struct Fleet {
    dir: tempfile::TempDir,
    url: String,
}

impl Fleet {
    fn new() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        for d in ["www", "keys", "store"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        let url = origin(dir.path().join("www"));
        Fleet { dir, url }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(o.status.success(), "berth {args:?}: {}", text(&o.stderr));
        text(&o.stdout) + &text(&o.stderr)
    }

    /// A key pair NAME.key / NAME.pub in the test dir.
    fn key(&self, name: &str) -> String {
        self.ok(&["key", "generate", name, "--no-passphrase"]);
        let pubkey = fs::read_to_string(self.path(&format!("{name}.pub"))).unwrap();
        pubkey.lines().nth(1).unwrap().to_owned()
    }

    /// A key pair NAME.key / NAME.pub whose public key the device trusts.
    fn trusted_key(&self, name: &str) {
        self.key(name);
        fs::copy(
            self.path(&format!("{name}.pub")),
            self.path(&format!("keys/{name}.pub")),
        )
        .unwrap();
    }

    /// Publish www/FILE with `text`, signed by `key` at `version`.
    fn publish(&self, file: &str, text: &str, key: &str, version: u64) {
        let p = self.path(&format!("www/{file}"));
        fs::write(&p, text).unwrap();
        let v = version.to_string();
        self.ok(&[
            "sign",
            "--key",
            &format!("{key}.key"),
            "--version",
            &v,
            p.to_str().unwrap(),
        ]);
    }

    /// `berth apply` of the origin's manifest, with the keys and store of the test.
    fn apply(&self, extra: &[&str]) -> Output {
        let url = format!("{}/m.yaml", self.url);
        let mut args = vec!["--root", "store", "--keys", "keys"];
        args.extend_from_slice(extra);
        args.extend(["apply", url.as_str()]);
        self.berth(&args)
    }

    fn refused(&self, extra: &[&str], rule: &str) {
        let before = self.trust_store();
        let o = self.apply(extra);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(rule),
            "wants `{rule}`: {}",
            text(&o.stderr)
        );
        assert_eq!(
            self.trust_store(),
            before,
            "a refusal changed the trust store"
        );
    }

    fn trust_store(&self) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = fs::read_dir(self.path("store/trust"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, fs::read_to_string(e.path()).unwrap_or_default())
            })
            .collect();
        files.sort();
        files
    }
}

/// `o`'s stderr says `what`.
fn assert_said(o: &Output, what: &str) {
    let err = text(&o.stderr);
    assert!(err.contains(what), "wants `{what}` in: {err}");
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const EMPTY: &str = "version: 1\ncontainers: {}\n";

fn manifest(n: u64) -> String {
    format!("{EMPTY}# release {n}\n")
}

/// A stolen online key is revoked by a key list the offline root key signs;
/// the stolen key can neither sign manifests afterwards nor sign a list.
#[test]
fn a_root_signed_key_list_revokes_a_stolen_manifest_key() {
    let f = Fleet::new();
    let root = f.key("root");
    let _old = f.key("m1");
    let new = f.key("m2");
    fs::copy(f.path("root.pub"), f.path("keys/fleet.root.pub")).unwrap();
    fs::copy(f.path("m1.pub"), f.path("keys/m1.pub")).unwrap();
    let keys_url = format!("{}/keys.list", f.url);
    let with_list = ["--keys-url", keys_url.as_str()];

    f.publish("m.yaml", &manifest(1), "m1", 1);
    f.ok(&[
        "--root",
        "store",
        "--keys",
        "keys",
        "apply",
        &format!("{}/m.yaml", f.url),
    ]);

    // The root key is not a manifest key.
    f.publish("m.yaml", &manifest(2), "root", 2);
    f.refused(&[], "signed by unknown key");

    // m1 is stolen: the list trusts m2 only; m1's manifests are refused.
    let list = format!("# rotated\nroot {root}\nmanifest {new}\n");
    f.publish("keys.list", &list, "root", 2);
    f.publish("m.yaml", &manifest(3), "m1", 3);
    let o = f.apply(&with_list);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_said(&o, "key list `");
    assert_said(&o, "signed by unknown key");
    assert!(
        f.path("store/trust/keys.json").exists(),
        "the list was accepted"
    );
    // Kept on flash: m1 stays revoked without the list's URL.
    f.refused(&[], "signed by unknown key");
    f.publish("m.yaml", &manifest(3), "m2", 3);
    let out = f.ok(&with_list
        .iter()
        .copied()
        .chain([
            "--root",
            "store",
            "--keys",
            "keys",
            "apply",
            &format!("{}/m.yaml", f.url),
        ])
        .collect::<Vec<_>>());
    assert!(out.contains("no changes"), "{out}");

    // The thief signs a list trusting m1 again: not a root key, refused.
    let evil = format!("root {root}\nmanifest {}\n", f.key("evil"));
    f.publish("keys.list", &evil, "m1", 3);
    f.publish("m.yaml", &manifest(4), "evil", 4);
    f.refused(&with_list, "signed by unknown key");
    let o = f.apply(&with_list);
    assert!(
        text(&o.stderr).contains("keeping the trusted keys"),
        "the refused list is named: {}",
        text(&o.stderr)
    );
    // An older list, validly signed by root, is a rollback.
    f.publish(
        "keys.list",
        &format!("root {root}\nmanifest {}\n", f.key("m1b")),
        "root",
        1,
    );
    let o = f.apply(&with_list);
    assert_said(&o, "version 1 < accepted 2");
}

/// `--require-signed` asks a local file for FILE.minisig; `plan` checks it
/// and writes nothing, `apply` keeps it.
#[test]
fn local_files_can_be_required_to_be_signed() {
    let f = Fleet::new();
    f.trusted_key("k");
    let m = f.path("m.yaml");
    fs::write(&m, EMPTY).unwrap();
    let strict = ["--root", "store", "--keys", "keys", "--require-signed"];
    let run = |cmd: &str, file: &str| {
        f.berth(
            &strict
                .iter()
                .copied()
                .chain([cmd, file])
                .collect::<Vec<_>>(),
        )
    };
    let o = run("plan", "m.yaml");
    assert_eq!(o.status.code(), Some(2));
    assert_said(&o, "is unsigned: no signature at `m.yaml.minisig`");
    let o = run("plan", "-");
    assert_said(&o, "a manifest from stdin carries no signature");

    f.ok(&["sign", "--key", "k.key", "--version", "7", "m.yaml"]);
    assert!(run("plan", "m.yaml").status.success());
    assert!(
        !f.path("store/trust").exists(),
        "plan wrote the trust store"
    );
    assert!(run("apply", "m.yaml").status.success());
    assert!(f.path("store/trust/manifest.json").exists());
    // Unsigned local files still pass without --require-signed.
    fs::write(f.path("other.yaml"), EMPTY).unwrap();
    f.ok(&["--root", "store", "--keys", "keys", "plan", "other.yaml"]);
    // No key at all: --require-signed cannot be met.
    let o = f.berth(&["--keys", "store", "--require-signed", "plan", "m.yaml"]);
    assert_said(&o, "--require-signed: no trusted key in `store`");
}

/// A malformed or oversized signature is refused early, with its line.
#[test]
fn malformed_signatures_are_refused_with_their_line() {
    let f = Fleet::new();
    f.trusted_key("k");
    f.publish("m.yaml", EMPTY, "k", 1);
    let sig = f.path("www/m.yaml.minisig");
    let good = fs::read_to_string(&sig).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines[3] = "not base64 @@@";
    fs::write(&sig, lines.join("\n")).unwrap();
    f.refused(&[], "line 4");
    fs::write(&sig, "x".repeat(64 * 1024)).unwrap();
    f.refused(&[], "is larger than");
    fs::write(&sig, good).unwrap();
    assert!(f.apply(&[]).status.success());
    assert!(Path::new(&f.path("store/trust/manifest.json")).exists());
}

/// `apply --serve`: a replay offered while serving is refused and the
/// accepted manifest stays; a restart with the origin gone converges from
/// the stored manifest.
#[test]
fn serve_keeps_the_accepted_manifest_through_a_replay_and_an_outage() {
    let f = Fleet::new();
    f.trusted_key("k");
    f.publish("m.yaml", &manifest(2), "k", 2);
    let url = format!("{}/m.yaml", f.url);
    let serve = |log: &str| {
        let err = fs::File::create(f.path(log)).unwrap();
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["--root", "store", "--keys", "keys", "apply", "--serve"])
            .args(["--interval", "1", "--jitter", "0", &url])
            .current_dir(f.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap()
    };
    let wait_for = |log: &str, what: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let text = fs::read_to_string(f.path(log)).unwrap_or_default();
            if text.contains(what) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no `{what}` in: {text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let stop = |mut child: std::process::Child| {
        // SAFETY: kill has no memory preconditions; the pid is our child's.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert!(child.wait().unwrap().success());
    };

    let child = serve("serve1.log");
    let accepted = f.path("store/trust/manifest.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !fs::read_to_string(&accepted).is_ok_and(|t| t.contains("\"version\":2")) {
        assert!(
            std::time::Instant::now() < deadline,
            "version 2 was not accepted"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let before = fs::read_to_string(&accepted).unwrap();
    f.publish("m.yaml", &manifest(1), "k", 1);
    wait_for("serve1.log", "version 1 < accepted 2");
    stop(child);
    assert_eq!(fs::read_to_string(&accepted).unwrap(), before);

    fs::remove_file(f.path("www/m.yaml")).unwrap();
    let child = serve("serve2.log");
    wait_for("serve2.log", "applying the stored manifest, version 2");
    stop(child);
}
