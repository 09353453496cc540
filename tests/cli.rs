//! The binary as users run it, without root: stdout, stderr and exit codes.

// Test and bench setup: a failed step panics with its location.
#![allow(clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn berth(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .current_dir(dir)
        .env_remove("BERTH_ROOT")
        .env_remove("BERTH_RUNTIME_DIR")
        .env_remove("BERTH_CA_BUNDLE")
        .env_remove("BERTH_FETCH_TIMEOUT")
        .output()
        .expect("run berth")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every manifest in tests/bad fails with exit 2 and exactly the message in its
/// .stderr file; every message names file:line:col and a field.
#[test]
fn bad_manifests_fail_with_their_expected_messages() {
    let dir = root().join("tests/bad");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/bad") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        let out = berth(&["validate", &name], &dir);
        let want =
            std::fs::read_to_string(path.with_extension("stderr")).expect("expected .stderr file");
        assert_eq!(out.status.code(), Some(2), "{name}: exit code");
        assert_eq!(text(&out.stderr), want, "{name}: message");
        for line in want.lines() {
            let line = line.strip_prefix("berth: ").unwrap_or(line);
            let mut parts = line.splitn(5, ':');
            let (file, l, c, field) = (parts.next(), parts.next(), parts.next(), parts.next());
            assert_eq!(file, Some(name.as_str()), "{name}: {line}");
            assert!(
                l.and_then(|l| l.parse::<usize>().ok()).is_some(),
                "{name}: no line in {line}"
            );
            assert!(
                c.and_then(|c| c.parse::<usize>().ok()).is_some(),
                "{name}: no column in {line}"
            );
            assert!(
                field.is_some_and(|f| !f.trim().is_empty() && !f.trim().contains(' ')),
                "{name}: no field in {line}"
            );
        }
        count += 1;
    }
    assert!(count >= 10, "only {count} bad manifests found");
}

#[test]
fn every_example_validates_and_plans() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().to_string_lossy().into_owned();
    for entry in std::fs::read_dir(root().join("examples")).expect("examples") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let p = path.to_string_lossy().into_owned();
        let out = berth(&["validate", &p], &root());
        assert!(out.status.success(), "{p}: {}", text(&out.stderr));
        let out = berth(&["plan", "--root", &store, &p], &root());
        assert!(out.status.success(), "{p}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("+ create"),
            "{p}: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn version_and_usage() {
    let out = berth(&["--version"], &root());
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("berth {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = berth(&["frobnicate"], &root());
    assert_eq!(out.status.code(), Some(2));
    let out = berth(
        &["validate", "--var", "novalue", "examples/web-bridge.yaml"],
        &root(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--var `novalue` is not KEY=VALUE"),
        "{}",
        text(&out.stderr)
    );
    let out = berth(&["validate", "does-not-exist.yaml"], &root());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("berth: read manifest `does-not-exist.yaml`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn manifest_from_stdin_and_var_override() {
    let yaml = "version: 1\nvars: { n: '1' }\nimages: { bb: { path: /bb.tar } }\ncontainers:\n  c{{ n }}: { image: bb }\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["render", "-", "--var", "n=7"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("  c7:\n"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn vars_file_overrides_manifest_vars() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = tmp.path().join("m.yaml");
    std::fs::write(&m, "version: 1\nvars: { h: a }\nimages: { bb: { path: /bb.tar } }\ncontainers:\n  c: { image: bb, hostname: '{{ h }}' }\n").expect("write");
    let v = tmp.path().join("v.yaml");
    std::fs::write(&v, "h: from-file\n").expect("write");
    let out = berth(
        &[
            "render",
            "--json",
            "--vars-file",
            &v.to_string_lossy(),
            &m.to_string_lossy(),
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\"hostname\": \"from-file\""),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn plan_json_lists_actions() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = berth(
        &[
            "plan",
            "--json",
            "--root",
            &tmp.path().to_string_lossy(),
            "examples/full-os.yaml",
        ],
        &root(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let actions: Vec<&str> = plan["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(actions, ["fetch_image", "create", "start"]);
}

#[test]
fn render_raw_shows_an_invalid_manifest() {
    let out = berth(&["render", "--raw", "tests/bad/size.yaml"], &root());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("memory: 12QB"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn missing_vars_file_is_a_usage_error() {
    let out = berth(
        &[
            "validate",
            "--vars-file",
            "/nonexistent/v.yaml",
            "examples/web-bridge.yaml",
        ],
        &root(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("berth: read vars file `/nonexistent/v.yaml`"),
        "{}",
        text(&out.stderr)
    );
}

/// A one-request HTTP server on loopback answering `status` with `body`.
fn serve_once(status: &'static str, body: &'static str) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = write!(
                s,
                "HTTP/1.0 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/manifest.yaml")
}

#[test]
fn manifest_from_a_url() {
    let url = serve_once(
        "200 OK",
        "version: 1\nimages: { bb: { path: /bb.tar } }\ncontainers:\n  fromurl: { image: bb }\n",
    );
    let out = berth(&["render", &url], &root());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("fromurl:"),
        "{}",
        text(&out.stdout)
    );

    let url = serve_once("404 Not Found", "no");
    let out = berth(&["validate", &url], &root());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("berth: manifest: fetch `{url}`: http status 404\n")
    );
}

/// An https server on loopback with a CA made by `openssl` in `dir`
/// (`dir/ca.pem`), answering every request with `answer`.
#[cfg(feature = "tls")]
fn serve_tls(dir: &Path, answer: String) -> String {
    use std::io::Read;
    use std::sync::Arc;
    let sh = |cmd: &str| {
        let ok = Command::new("sh")
            .args(["-c", cmd])
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .expect("sh");
        assert!(ok.success(), "{cmd}");
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh(&format!(
        "openssl req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=ca"
    ));
    sh(&format!(
        "openssl req {ec} -keyout k.pem -out r.csr -subj /CN=127.0.0.1"
    ));
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    sh("openssl x509 -req -in r.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out c.pem -days 2 -extfile ext");
    let read = |f: &str| std::fs::read(dir.join(f)).expect("pem");
    let certs = rustls_pemfile::certs(&mut &read("c.pem")[..])
        .collect::<Result<Vec<_>, _>>()
        .expect("certs");
    let key = rustls_pemfile::private_key(&mut &read("k.pem")[..])
        .expect("key")
        .expect("a key");
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("cert");
    let cfg = Arc::new(cfg);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for tcp in listener.incoming().take(8).flatten() {
            let Ok(conn) = rustls::ServerConnection::new(cfg.clone()) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            if tls.read(&mut [0u8; 4096]).is_ok() {
                let _ = tls.write_all(answer.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
    });
    format!("https://{addr}/manifest.yaml")
}

/// `--ca-bundle` makes a fleet manifest on a private CA readable; without
/// it the system bundle refuses it, and a missing bundle is named.
#[cfg(feature = "tls")]
#[test]
fn ca_bundle_trusts_a_private_ca_for_the_manifest_url() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let body =
        "version: 1\nimages: { bb: { path: /bb.tar } }\ncontainers:\n  overtls: { image: bb }\n";
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let url = serve_tls(tmp.path(), answer);
    let ca = tmp.path().join("ca.pem");
    let out = berth(
        &["render", "--ca-bundle", ca.to_str().expect("utf8"), &url],
        &root(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("overtls:"),
        "{}",
        text(&out.stdout)
    );
    let out = berth(
        &["render", "--ca-bundle", "/nonexistent/ca.pem", &url],
        &root(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("berth: manifest: read CA bundle `/nonexistent/ca.pem`: "),
        "{}",
        text(&out.stderr)
    );
    if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        let out = berth(&["render", &url], &root());
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr)
                .starts_with(&format!("berth: manifest: fetch `{url}`: tls failure: ")),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_manifest_url_has_the_size_limit() {
    const BODY: &str = "version: 1\nimages: { bb: { path: /bb.tar } }\ncontainers: {}\n#pad\n";
    let limit = BODY.len().to_string();
    let url = serve_once("200 OK", BODY);
    let out = berth(&["validate", "--max-manifest-size", &limit, &url], &root());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let smaller = (BODY.len() - 1).to_string();
    let url = serve_once("200 OK", BODY);
    let out = berth(
        &["validate", "--max-manifest-size", &smaller, &url],
        &root(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "berth: manifest `{url}`: larger than {smaller} bytes; raise the limit with \
             --max-manifest-size SIZE (or BERTH_MAX_MANIFEST_SIZE)\n"
        )
    );
}

/// A tiny rootfs tarball made in the test.
fn tiny_rootfs(path: &Path) {
    let src = path.with_extension("src");
    std::fs::create_dir_all(src.join("bin")).expect("mkdir");
    std::fs::write(src.join("bin/hello"), "#!/bin/sh\necho hello\n").expect("write");
    let ok = Command::new("tar")
        .args([
            "-czf",
            path.to_str().expect("utf8"),
            "-C",
            src.to_str().expect("utf8"),
            ".",
        ])
        .status()
        .expect("tar")
        .success();
    assert!(ok);
}

#[test]
fn install_unpacks_images_into_a_firmware_root_and_apply_then_fetches_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fw = tmp.path().join("rootfs");
    std::fs::create_dir_all(fw.join("etc/berth")).expect("mkdir");
    std::fs::create_dir_all(fw.join("usr/share/berth/images")).expect("mkdir");
    tiny_rootfs(&fw.join("usr/share/berth/images/tiny.tar.gz"));
    // Paths as the device sees them; the image dir is the test's stand-in for
    // the device's /usr/share/berth/images.
    let device_dir = tmp.path().join("device-images");
    let manifest = fw.join("etc/berth/manifest.yaml");
    std::fs::write(
        &manifest,
        format!(
            "version: 1\nsettings: {{ image_dirs: [{}] }}\nimages:\n  tiny: {{ path: /usr/share/berth/images/tiny.tar.gz }}\ncontainers:\n  c: {{ image: tiny, command: [/bin/hello] }}\n",
            device_dir.display()
        ),
    )
    .expect("write");
    let m = manifest.to_string_lossy().into_owned();
    let fw_s = fw.to_string_lossy().into_owned();
    let dev_ro = tmp.path().join("dev-ro");
    let image_dir = format!("{}/images", dev_ro.display());
    let in_fw = |p: &Path| fw.join(p.strip_prefix("/").expect("absolute"));
    let install = || {
        berth(
            &[
                "install",
                "--target-root",
                &fw_s,
                "--image-dir",
                &image_dir,
                &m,
            ],
            tmp.path(),
        )
    };
    let out = install();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lock: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(fw.join("etc/berth/images.lock")).expect("lock"))
            .expect("json");
    let digest = &lock["tiny"];
    let unpacked = in_fw(&dev_ro.join("images")).join(digest);
    assert!(
        unpacked.join("rootfs/bin/hello").is_file(),
        "unpacked into the firmware root"
    );
    assert!(!in_fw(&dev_ro.join("containers")).exists());

    // Installing again changes nothing: the unpacked image is the same one.
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).expect("stat"));
    let before = ino(&unpacked);
    let again = install();
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(ino(&unpacked), before, "not unpacked a second time");

    // On the device the image sits in the read-only dir and the tarball path
    // does not exist: the lock gives the digest and nothing is fetched.
    std::fs::rename(&unpacked, device_dir.join(digest))
        .or_else(|_| {
            std::fs::create_dir_all(&device_dir)?;
            std::fs::rename(&unpacked, device_dir.join(digest))
        })
        .expect("move to device dir");
    let store = tmp.path().join("store");
    let out = berth(
        &["plan", "--root", &store.to_string_lossy(), &m],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "+ create c\n> start c\n2 action(s)\n");
}

#[test]
fn install_refuses_a_missing_target_root() {
    let out = berth(
        &[
            "install",
            "--target-root",
            "/nonexistent/root",
            "examples/web-bridge.yaml",
        ],
        &root(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--target-root `/nonexistent/root` is not a directory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_name_the_option_and_the_help_to_read() {
    let out = berth(&["plan", "--foo"], &root());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "berth: unknown option `--foo` for `berth plan`; see `berth plan --help`\n"
    );
    assert!(out.stdout.is_empty());
    let out = berth(&["apply", "--interval", "5"], &root());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "berth: `--interval` needs `--serve`; see `berth apply --help`\n"
    );
    let out = berth(&[], &root());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "berth: no command given; see `berth --help`\n"
    );
}

#[test]
fn help_goes_to_stdout_with_exit_0() {
    let out = berth(&["--help"], &root());
    assert!(out.status.success());
    let help = text(&out.stdout);
    for cmd in ["validate", "plan", "apply", "exec", "image"] {
        assert!(help.contains(&format!("\n  {cmd} ")), "{cmd}: {help}");
    }
    let out = berth(&["plan", "--root", "/tmp", "-h"], &root());
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(
        help.starts_with(
            "Show what `apply` would change\n\nUsage: berth plan [OPTIONS] [MANIFEST]\n"
        ),
        "{help}"
    );
    assert!(help.contains("--no-prune"), "{help}");
    assert!(help.contains("[env: BERTH_ROOT]"), "{help}");
}
