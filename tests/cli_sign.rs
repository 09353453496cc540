//! `berth key generate`, `berth sign` and `berth verify` without root and
//! without minisign: every refusal exits 2 with its reason and changes no
//! file; keys are never overwritten. (tests/minisign_interop.rs checks the
//! files against minisign itself.)

// Test setup: a failed step panics with its location.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn berth(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("BERTH_PASSPHRASE")
        .stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe; the child has no controlling
    // terminal, as under CI, so berth cannot ask for a passphrase.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.output().expect("run berth")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A key pair `k` and a signed manifest `m.yaml` (version 5) in a new dir.
fn signed_dir(extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let o = berth(dir.path(), &["key", "generate", "k", "--no-passphrase"]);
    assert!(o.status.success(), "{}", stderr(&o));
    fs::write(dir.path().join("m.yaml"), "version: 1\ncontainers: {}\n").unwrap();
    let mut args = vec!["sign", "--key", "k.key", "--version", "5", "m.yaml"];
    args.extend_from_slice(extra);
    let o = berth(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    dir
}

#[test]
fn sign_then_verify_prints_the_signed_facts() {
    let dir = signed_dir(&["--expires", "2099-01-01T00:00:00+01:00"]);
    let pubkey = fs::read_to_string(dir.path().join("k.pub")).unwrap();
    let id = pubkey
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let o = berth(dir.path(), &["verify", "--key", "k.pub", "m.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("m.yaml: signed by key {id}, version 5, expires 2098-12-31T23:00:00Z\n")
    );
    let sig = fs::read_to_string(dir.path().join("m.yaml.minisig")).unwrap();
    assert!(sig.starts_with(&format!(
        "untrusted comment: signature from berth secret key {id}\n"
    )));
    assert!(
        sig.contains("\tfile:m.yaml\tversion:5\texpires:2098-12-31T23:00:00Z\n"),
        "{sig}"
    );
    // Only the signature is left: no temporary file.
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["k.key", "k.pub", "m.yaml", "m.yaml.minisig"]);
}

#[test]
fn generated_key_is_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let o = berth(dir.path(), &["key", "generate", "k", "--no-passphrase"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let key = dir.path().join("k.key");
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = fs::read(&key).unwrap();
    let o = berth(dir.path(), &["key", "generate", "k", "--no-passphrase"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`k.key` already exists"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read(&key).unwrap(), before);
    // A public key alone in the way also stops it, before any key is made.
    let o = berth(dir.path(), &["key", "generate", "k2", "--no-passphrase"]);
    assert!(o.status.success());
    fs::remove_file(dir.path().join("k2.key")).unwrap();
    let o = berth(dir.path(), &["key", "generate", "k2", "--no-passphrase"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`k2.pub` already exists"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("k2.key").exists());
    // A symlink planted at the key's name is not written through.
    std::os::unix::fs::symlink("target", dir.path().join("k3.key")).unwrap();
    let o = berth(dir.path(), &["key", "generate", "k3", "--no-passphrase"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.path().join("target").exists());
}

#[test]
fn no_terminal_and_no_passphrase_says_what_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let o = berth(dir.path(), &["key", "generate", "k"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("--passphrase-file") && e.contains("--no-passphrase"),
        "{e}"
    );
    assert!(!dir.path().join("k.key").exists());
    let o = berth(
        dir.path(),
        &["key", "generate", "k", "--passphrase-file", "missing"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("read `missing`"), "{}", stderr(&o));
    assert!(!dir.path().join("k.key").exists());
}

#[test]
fn sign_needs_a_positive_version_and_a_valid_expiry() {
    let dir = signed_dir(&[]);
    for (args, msg) in [
        (&["sign", "--key", "k.key", "m.yaml"][..], "--version"),
        (
            &["sign", "--key", "k.key", "--version", "0", "m.yaml"],
            "positive integer",
        ),
        (
            &["sign", "--key", "k.key", "--version", "-3", "m.yaml"],
            "-3",
        ),
        (
            &[
                "sign",
                "--key",
                "k.key",
                "--version",
                "2",
                "--expires",
                "next week",
                "m.yaml",
            ],
            "is not an RFC 3339 time",
        ),
        (
            &["sign", "--key", "k.pub", "--version", "2", "m.yaml"],
            "`k.pub`: line 2: the secret key is 42 bytes, not 158",
        ),
    ] {
        let o = berth(dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    }
    // The signature of version 5 is still there, unchanged.
    let sig = fs::read_to_string(dir.path().join("m.yaml.minisig")).unwrap();
    assert!(sig.contains("version:5"));
}

#[test]
fn verify_refusals_exit_2_with_the_reason() {
    let dir = signed_dir(&[]);
    let d = dir.path();
    let o = berth(d, &["key", "generate", "other", "--no-passphrase"]);
    assert!(o.status.success());
    let sig = fs::read_to_string(d.join("m.yaml.minisig")).unwrap();
    let put = |name: &str, text: &str| fs::write(d.join(name), text).unwrap();
    // A later version written into the trusted comment.
    put("edited.minisig", &sig.replace("version:5", "version:6"));
    put(
        "noprefix.minisig",
        &sig.replace("\ntrusted comment: ", "\ntrusted: "),
    );
    put("big.minisig", &format!("{sig}{}", " ".repeat(5000)));
    put("tampered.yaml", "version: 1\ncontainers: {} \n");
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "verify",
                "--key",
                "k.pub",
                "tampered.yaml",
                "--signature",
                "m.yaml.minisig",
            ],
            "`tampered.yaml`: bad signature",
        ),
        (
            &["verify", "--key", "other.pub", "m.yaml"],
            "signed by key ",
        ),
        (
            &[
                "verify",
                "--key",
                "k.pub",
                "m.yaml",
                "--signature",
                "edited.minisig",
            ],
            "trusted comment was altered",
        ),
        (
            &[
                "verify",
                "--key",
                "k.pub",
                "m.yaml",
                "--signature",
                "noprefix.minisig",
            ],
            "`noprefix.minisig`: line 3: missing `trusted comment: ` prefix",
        ),
        (
            &[
                "verify",
                "--key",
                "k.pub",
                "m.yaml",
                "--signature",
                "big.minisig",
            ],
            "too large",
        ),
        (
            &["verify", "--key", "m.yaml", "m.yaml"],
            "`m.yaml`: line 1: not base64",
        ),
    ];
    for (args, msg) in cases {
        let o = berth(d, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), "");
    }
    let o = berth(d, &["verify", "--key", "other.pub", "m.yaml"]);
    let other = fs::read_to_string(d.join("other.pub")).unwrap();
    assert!(
        stderr(&o).contains(&format!(", not {}", &other[39..55])),
        "{}",
        stderr(&o)
    );
}

#[test]
fn verify_refuses_an_expired_signature() {
    let dir = signed_dir(&["--expires", "2001-01-01T00:00:00Z"]);
    let o = berth(dir.path(), &["verify", "--key", "k.pub", "m.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`m.yaml`: the signature expired at 2001-01-01T00:00:00Z"),
        "{}",
        stderr(&o)
    );
}
