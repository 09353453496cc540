//! berth's keys and signatures against minisign 0.11 itself: each side
//! verifies what the other signed, loads the other's keys, and refuses a
//! tampered file or trusted comment. Skipped, with the reason printed, when
//! `minisign` is not on PATH (`make test-sign` installs it). The passphrase
//! cases run scrypt at minisign's 1 GiB default, so there are two of them.

// Test setup: a failed step panics with its location.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn have_minisign() -> bool {
    let found = Command::new("minisign")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: `minisign` is not on PATH (apt-get install minisign)");
    }
    found
}

/// Run `program` in `dir` with `stdin` fed to it.
fn run(dir: &Path, program: &str, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_remove("BERTH_PASSPHRASE")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("wait")
}

fn berth(dir: &Path, args: &[&str]) -> Output {
    run(dir, env!("CARGO_BIN_EXE_berth"), args, &[], "")
}

fn minisign(dir: &Path, args: &[&str], stdin: &str) -> Output {
    run(dir, "minisign", args, &[], stdin)
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn refused(o: &Output, code: i32, msg: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(err.contains(msg), "`{msg}` not in: {err}");
}

const MANIFEST: &str = "version: 1\ncontainers: {}\n";

/// A dir with `m.yaml`, or None (the test skips) without minisign.
fn setup() -> Option<tempfile::TempDir> {
    if !have_minisign() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("m.yaml"), MANIFEST).unwrap();
    Some(dir)
}

/// A passphrase-free minisign key pair `ms.pub`, `ms.key` in `d`.
fn minisign_key(d: &Path) {
    ok(&minisign(
        d,
        &["-G", "-W", "-p", "ms.pub", "-s", "ms.key"],
        "",
    ));
}

#[test]
fn berth_signs_with_a_minisign_key_and_minisign_verifies() {
    let Some(dir) = setup() else { return };
    let d = dir.path();
    minisign_key(d);
    ok(&berth(
        d,
        &[
            "sign",
            "--key",
            "ms.key",
            "--version",
            "7",
            "--expires",
            "2099-06-01T00:00:00Z",
            "m.yaml",
        ],
    ));
    let out = ok(&minisign(d, &["-V", "-p", "ms.pub", "-m", "m.yaml"], ""));
    assert!(
        out.contains("Signature and comment signature verified"),
        "{out}"
    );
    assert!(
        out.contains("\tfile:m.yaml\tversion:7\texpires:2099-06-01T00:00:00Z"),
        "{out}"
    );
    // Only prehashed: minisign -H insists on it.
    ok(&minisign(
        d,
        &["-V", "-H", "-p", "ms.pub", "-m", "m.yaml"],
        "",
    ));
    let out = ok(&berth(d, &["verify", "--key", "ms.pub", "m.yaml"]));
    assert!(
        out.contains("version 7, expires 2099-06-01T00:00:00Z"),
        "{out}"
    );
}

#[test]
fn minisign_signs_with_a_berth_key_and_berth_verifies() {
    let Some(dir) = setup() else { return };
    let d = dir.path();
    ok(&berth(d, &["key", "generate", "b", "--no-passphrase"]));
    // minisign 0.11 signs with a passphrase-free key without asking.
    ok(&minisign(
        d,
        &["-S", "-s", "b.key", "-m", "m.yaml", "-t", "version:3"],
        "",
    ));
    let out = ok(&berth(d, &["verify", "--key", "b.pub", "m.yaml"]));
    assert!(out.contains("version 3, no expiry"), "{out}");
    // minisign takes berth's public key file and its base64 line.
    fs::write(d.join("n.yaml"), "other\n").unwrap();
    ok(&berth(
        d,
        &["sign", "--key", "b.key", "--version", "1", "n.yaml"],
    ));
    let pubkey = fs::read_to_string(d.join("b.pub")).unwrap();
    let line = pubkey.lines().nth(1).unwrap();
    ok(&minisign(d, &["-V", "-P", line, "-m", "n.yaml"], ""));
}

#[test]
fn a_minisign_signed_file_changed_by_one_byte_fails_in_berth() {
    let Some(dir) = setup() else { return };
    let d = dir.path();
    minisign_key(d);
    ok(&minisign(d, &["-S", "-s", "ms.key", "-m", "m.yaml"], ""));
    ok(&minisign(
        d,
        &[
            "-S",
            "-l",
            "-s",
            "ms.key",
            "-m",
            "m.yaml",
            "-x",
            "legacy.minisig",
        ],
        "",
    ));
    ok(&berth(d, &["verify", "--key", "ms.pub", "m.yaml"]));
    ok(&berth(
        d,
        &[
            "verify",
            "--key",
            "ms.pub",
            "m.yaml",
            "--signature",
            "legacy.minisig",
        ],
    ));
    let mut bytes = MANIFEST.as_bytes().to_vec();
    bytes[9] ^= 0x01;
    fs::write(d.join("m.yaml"), &bytes).unwrap();
    refused(
        &berth(d, &["verify", "--key", "ms.pub", "m.yaml"]),
        2,
        "`m.yaml`: bad signature",
    );
    refused(
        &berth(
            d,
            &[
                "verify",
                "--key",
                "ms.pub",
                "m.yaml",
                "--signature",
                "legacy.minisig",
            ],
        ),
        2,
        "bad signature",
    );
}

#[test]
fn an_edited_trusted_comment_fails_in_minisign_and_in_berth() {
    let Some(dir) = setup() else { return };
    let d = dir.path();
    ok(&berth(d, &["key", "generate", "b", "--no-passphrase"]));
    ok(&berth(
        d,
        &[
            "sign",
            "--key",
            "b.key",
            "--version",
            "4",
            "--expires",
            "2099-01-01T00:00:00Z",
            "m.yaml",
        ],
    ));
    let sig = d.join("m.yaml.minisig");
    let text = fs::read_to_string(&sig).unwrap();
    // A replayed old manifest passed off as new, with no expiry.
    let edited = text.replace("version:4\texpires:2099-01-01T00:00:00Z", "version:40");
    assert_ne!(edited, text);
    fs::write(&sig, edited).unwrap();
    let o = minisign(d, &["-V", "-p", "b.pub", "-m", "m.yaml"], "");
    assert!(!o.status.success());
    refused(
        &berth(d, &["verify", "--key", "b.pub", "m.yaml"]),
        2,
        "trusted comment was altered",
    );
}

#[test]
fn encrypted_berth_key_signs_in_minisign() {
    let Some(dir) = setup() else { return };
    let d = dir.path();
    let env = [("BERTH_PASSPHRASE", "a long passphrase")];
    ok(&run(
        d,
        env!("CARGO_BIN_EXE_berth"),
        &["key", "generate", "b"],
        &env,
        "",
    ));
    let key = fs::read_to_string(d.join("b.key")).unwrap();
    assert!(
        key.starts_with("untrusted comment: berth encrypted secret key "),
        "{key}"
    );
    ok(&minisign(
        d,
        &["-S", "-s", "b.key", "-m", "m.yaml"],
        "a long passphrase\n",
    ));
    ok(&berth(d, &["verify", "--key", "b.pub", "m.yaml"]));
}

#[test]
fn encrypted_minisign_key_signs_in_berth() {
    let Some(dir) = setup() else { return };
    let d = dir.path();
    ok(&minisign(
        d,
        &["-G", "-p", "ms.pub", "-s", "ms.key"],
        "pass word\npass word\n",
    ));
    fs::write(d.join("pass"), "pass word\n").unwrap();
    ok(&berth(
        d,
        &[
            "sign",
            "--key",
            "ms.key",
            "--version",
            "2",
            "--passphrase-file",
            "pass",
            "m.yaml",
        ],
    ));
    let out = ok(&minisign(d, &["-V", "-p", "ms.pub", "-m", "m.yaml"], ""));
    assert!(out.contains("version:2"), "{out}");
}
