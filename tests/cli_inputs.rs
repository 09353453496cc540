//! The binary against hostile or oversized input and a closed stdout, without
//! root: every bound ends berth with its message, never a hang or a panic.

// Test setup: a failed step panics with its location.
#![allow(clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn berth(args: &[&str], dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("BERTH_ROOT")
        .env_remove("BERTH_RUNTIME_DIR")
        .env_remove("BERTH_MAX_MANIFEST_SIZE");
    cmd
}

fn run(args: &[&str], dir: &Path) -> Output {
    berth(args, dir).output().expect("run berth")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const HEAD: &str = "version: 1
images:
  img:
    url: https://downloads.example.net/r.tar.gz
    sha256: 9a41d3c0a8f33b4e2de1fd84dc9bfa0e1f1c9f59e7bb26a5d3ac1fd2c7e64107
containers:
";

/// A valid manifest of `n` containers.
fn containers(n: usize) -> String {
    let mut m = HEAD.to_string();
    for i in 0..n {
        m.push_str(&format!(
            "  c{i}:\n    image: img\n    command: [/bin/sh]\n"
        ));
    }
    m
}

/// `m` padded with a comment to exactly `len` bytes.
fn padded(m: &str, len: usize) -> String {
    let mut out = m.to_string();
    out.push('#');
    while out.len() < len - 1 {
        out.push('x');
    }
    out.push('\n');
    assert_eq!(out.len(), len);
    out
}

#[test]
fn a_closed_stdout_ends_plan_quietly_with_0() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Far more than a pipe holds, so berth is still writing when it closes.
    std::fs::write(tmp.path().join("big.yaml"), containers(3000)).expect("write");
    let store = tmp.path().join("store");
    let mut child = berth(
        &["plan", "--root", &store.to_string_lossy(), "big.yaml"],
        tmp.path(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    // The reader is dropped here: the pipe is closed after one line.
    assert!(first.starts_with("fetch image img"), "{first}");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(text(&out.stderr), "", "stderr");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_manifest_size_limit_is_1m_unless_raised() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = containers(2);
    std::fs::write(tmp.path().join("at.yaml"), padded(&m, 1 << 20)).expect("write");
    std::fs::write(tmp.path().join("over.yaml"), padded(&m, (1 << 20) + 1)).expect("write");
    let out = run(&["validate", "at.yaml"], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["validate", "over.yaml"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "berth: read manifest `over.yaml`: larger than 1048576 bytes; raise the limit with \
         --max-manifest-size SIZE (or BERTH_MAX_MANIFEST_SIZE)\n"
    );
    let out = run(
        &["validate", "--max-manifest-size", "2M", "over.yaml"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = berth(&["validate", "over.yaml"], tmp.path())
        .env("BERTH_MAX_MANIFEST_SIZE", "2M")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A smaller limit, on stdin too.
    let stdin = |limit: &str, len: usize| {
        let mut child = berth(&["validate", "--max-manifest-size", limit, "-"], tmp.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut input = child.stdin.take().expect("stdin");
        // berth stops reading past the limit: a refused write is fine here.
        let _ = input.write_all(padded(&m, len).as_bytes());
        drop(input);
        child.wait_with_output().expect("wait")
    };
    assert!(stdin("2K", 2048).status.success());
    let out = stdin("2K", 2049);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("larger than 2048 bytes"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &["validate", "--max-manifest-size", "lots", "at.yaml"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--max-manifest-size"));
}

#[test]
fn template_output_is_bounded_by_the_same_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let loop_of = |n: usize| {
        format!(
            "{}# {{% for i in range({n}) %}}x{{% endfor %}}\n",
            containers(1)
        )
    };
    // The text around the loop: the manifest and `# ` and the newline.
    let fixed = containers(1).len() + 3;
    std::fs::write(tmp.path().join("at.yaml"), loop_of(4096 - fixed)).expect("write");
    std::fs::write(tmp.path().join("over.yaml"), loop_of(4097 - fixed)).expect("write");
    let out = run(
        &["validate", "--max-manifest-size", "4K", "at.yaml"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        &["validate", "--max-manifest-size", "4K", "over.yaml"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "berth: over.yaml:1:1: template output: larger than 4096 bytes; raise the limit with \
         --max-manifest-size SIZE (or BERTH_MAX_MANIFEST_SIZE)\n"
    );
}

/// Nine levels of ten aliases each: 10^9 nodes from a few hundred bytes.
fn bomb(indent: &str) -> String {
    let mut b = format!("{indent}a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        let refs = vec![format!("*a{p}"); 10].join(", ");
        b.push_str(&format!("{indent}a{i}: &a{i} [{refs}]\n"));
    }
    b
}

#[test]
fn an_alias_bomb_is_refused_at_its_alias_wherever_it_is() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "vars.yaml",
            format!("vars:\n{}{}", bomb("  "), containers(1)),
        ),
        (
            "unknown.yaml",
            format!("{}junk:\n{}", containers(1), bomb("  ")),
        ),
        ("top.yaml", bomb("")),
    ];
    for (name, m) in cases {
        std::fs::write(tmp.path().join(name), &m).expect("write");
        let started = Instant::now();
        let out = run(&["validate", name], tmp.path());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name}: too slow"
        );
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with(&format!("berth: {name}:")) && err.contains(": alias `*a"),
            "{name}: {err}"
        );
        assert!(
            err.contains("write the values out or use fewer aliases"),
            "{err}"
        );
    }
}

#[test]
fn a_yaml_tag_berth_does_not_define_is_refused_with_its_position() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = containers(1).replace("command: [/bin/sh]", "command: !!python/object [/bin/sh]");
    std::fs::write(tmp.path().join("tag.yaml"), m).expect("write");
    let out = run(&["validate", "tag.yaml"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "berth: tag.yaml:9:30: YAML tag `!!python/object` is not supported; remove it \
         (berth knows only `!!str`)\n"
    );
}

#[test]
fn a_vars_file_has_the_same_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("m.yaml"), containers(1)).expect("write");
    std::fs::write(tmp.path().join("at.yaml"), padded("a: 1\n", 2048)).expect("write");
    std::fs::write(tmp.path().join("over.yaml"), padded("a: 1\n", 2049)).expect("write");
    let with = |vars: &str| {
        run(
            &[
                "validate",
                "--max-manifest-size",
                "2K",
                "--vars-file",
                vars,
                "m.yaml",
            ],
            tmp.path(),
        )
    };
    let out = with("at.yaml");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = with("over.yaml");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "berth: read vars file `over.yaml`: larger than 2048 bytes; raise the limit with \
         --max-manifest-size SIZE (or BERTH_MAX_MANIFEST_SIZE)\n"
    );
}

#[test]
fn a_damaged_record_is_planned_as_a_recreate_and_the_rest_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("m.yaml"), containers(2)).expect("write");
    let store = tmp.path().join("store");
    std::fs::create_dir_all(store.join("containers/c0")).expect("mkdir");
    std::fs::write(store.join("containers/c0/applied.json"), b"{half").expect("write");
    let out = run(
        &["plan", "--root", &store.to_string_lossy(), "m.yaml"],
        tmp.path(),
    );
    assert_eq!(text(&out.stderr), "");
    assert!(out.status.success());
    let plan = text(&out.stdout);
    assert!(
        plan.contains("-/+ recreate c0 (record damaged)\n"),
        "{plan}"
    );
    assert!(plan.contains("+ create c1\n"), "{plan}");
}
