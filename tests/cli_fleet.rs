//! The fleet's identity and its MQTT side, through the binary and without
//! root: device ids and groups are checked at startup, the facts reach the
//! templates, and `apply --serve --mqtt` survives a hostile broker on
//! loopback (an oversized packet, garbage, silence) and reconnects. The
//! real mosquitto runs in the fleet simulation (tests/fleet/sim.py).

// Test setup: a failed step panics with its location.
#![allow(clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env_remove("BERTH_DEVICE_ID")
        .env_remove("BERTH_GROUPS")
        .output()
        .expect("run berth")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_device_id_or_group_that_is_not_one_topic_level_is_refused() {
    for (opt, bad) in [
        ("--device-id", "a/b"),
        ("--device-id", "+"),
        ("--device-id", "#"),
        ("--group", "lab,x/y"),
        ("--group", "all"),
    ] {
        let o = berth(&[opt, bad, "validate", "-"]);
        assert_eq!(o.status.code(), Some(2), "{opt} {bad}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(opt), "{e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    let o = berth(&["--device-id", "a/b", "validate", "-"]);
    assert!(
        stderr(&o).contains("one MQTT topic level"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_fleet_facts_reach_the_templates() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = tmp.path().join("m.yaml");
    std::fs::write(
        &m,
        "version: 1\n# {{ device.id }} {{ device.bucket }} {{ device.groups | join(',') }} \
         {% if device.bucket < 50 %}canary{% else %}stable{% endif %}\ncontainers: {}\n",
    )
    .expect("write");
    let o = berth(&[
        "--device-id",
        "dev01",
        "--group",
        "lab,odd",
        "--group",
        "lab",
        "render",
        "--raw",
        m.to_str().expect("path"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // bucket("dev01") is 47 (fleet::mqtt::bucket).
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("dev01 47 lab,odd canary"), "{out}");
}

/// Read one MQTT packet from the client: its type and body.
fn packet(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut first = [0u8; 1];
    s.read_exact(&mut first).ok()?;
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).ok()?;
        len |= usize::from(b[0] & 0x7f) << shift;
        shift += 7;
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((first[0] >> 4, body))
}

/// A broker that plays its part until the device has subscribed and
/// published its status, then does `then` to it. Each connection's
/// packets (type, body) are sent on `seen`.
fn hostile_broker(then: fn(&mut TcpStream)) -> (u16, mpsc::Receiver<(usize, u8, Vec<u8>)>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, conn) in l.incoming().enumerate() {
            let Ok(mut s) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut status = false;
                while let Some((kind, body)) = packet(&mut s) {
                    let _ = tx.send((n, kind, body.clone()));
                    let id = |at: usize| body.get(at..at + 2).map(<[u8]>::to_vec);
                    match kind {
                        1 => s.write_all(&[0x20, 2, 0, 0]).expect("connack"),
                        3 => {
                            let tlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
                            let topic = String::from_utf8_lossy(&body[2..2 + tlen]).into_owned();
                            let pid = id(2 + tlen).expect("QoS 1 id");
                            s.write_all(&[0x40, 2, pid[0], pid[1]]).expect("puback");
                            status |= topic.ends_with("/status");
                        }
                        8 => {
                            let pid = id(0).expect("id");
                            s.write_all(&[0x90, 5, pid[0], pid[1], 1, 1, 1])
                                .expect("suback");
                        }
                        12 => s.write_all(&[0xd0, 0]).expect("pingresp"),
                        _ => {}
                    }
                    if status {
                        then(&mut s);
                        status = false;
                    }
                }
            });
        }
    });
    (port, rx)
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, port: u16) -> Serve {
    let m = dir.join("m.yaml");
    std::fs::write(&m, "version: 1\ncontainers: {}\n").expect("write");
    let child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["--root", &dir.join("store").to_string_lossy()])
        .args(["--runtime-dir", &dir.join("run").to_string_lossy()])
        .args(["--device-id", "d1", "--group", "lab"])
        .args([
            "apply",
            "--serve",
            "--mqtt",
            &format!("mqtt://127.0.0.1:{port}"),
        ])
        .arg(&m)
        .env_remove("BERTH_ROOT")
        .env_remove("BERTH_RUNTIME_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("err")).expect("err"))
        .spawn()
        .expect("run berth");
    Serve(child)
}

/// The packets of connection `conn`, waiting until `done` says so.
fn wait_for(
    rx: &mpsc::Receiver<(usize, u8, Vec<u8>)>,
    secs: u64,
    what: &str,
    mut done: impl FnMut(usize, u8, &[u8]) -> bool,
) {
    let end = Instant::now() + Duration::from_secs(secs);
    while let Ok(left) = end.checked_duration_since(Instant::now()).ok_or(()) {
        match rx.recv_timeout(left) {
            Ok((n, kind, body)) if done(n, kind, &body) => return,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn an_oversized_packet_ends_the_session_and_the_device_reconnects() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // After the status: a PUBLISH that says it is 64 MiB long.
    let (port, rx) = hostile_broker(|s| {
        let _ = s.write_all(&[0x30, 0x80, 0x80, 0x80, 0x20]);
    });
    let _serve = serve(tmp.path(), port);
    let mut topics = Vec::new();
    wait_for(
        &rx,
        10,
        "the first session's subscription",
        |n, kind, body| {
            if n == 0 && kind == 8 {
                topics.push(String::from_utf8_lossy(body).into_owned());
            }
            n == 0 && kind == 8
        },
    );
    let subscribed = &topics[0];
    for t in ["berth/d1/cmd", "berth/lab/cmd", "berth/all/cmd"] {
        assert!(subscribed.contains(t), "{subscribed:?}");
    }
    wait_for(&rx, 10, "a second connection", |n, kind, _| {
        n == 1 && kind == 1
    });
    let err = std::fs::read_to_string(tmp.path().join("err")).expect("err");
    assert!(err.contains("over the limit of 4096"), "{err}");
    assert!(err.contains("polling goes on"), "{err}");
}

#[test]
fn garbage_doorbells_are_logged_once_and_ignored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // After the status: a flood of junk on a cmd topic, as QoS 0 publishes.
    let (port, rx) = hostile_broker(|s| {
        let mut junk = Vec::new();
        for _ in 0..50 {
            let payload = b"\x1b[2Jrm -rf / ; reboot";
            let topic = b"berth/all/cmd";
            junk.push(0x30);
            junk.push(u8::try_from(2 + topic.len() + payload.len()).expect("small"));
            junk.extend_from_slice(&[0, u8::try_from(topic.len()).expect("small")]);
            junk.extend_from_slice(topic);
            junk.extend_from_slice(payload);
        }
        let _ = s.write_all(&junk);
    });
    let serve = serve(tmp.path(), port);
    wait_for(&rx, 10, "the status", |n, kind, body| {
        n == 0 && kind == 3 && String::from_utf8_lossy(body).contains("/status")
    });
    std::thread::sleep(Duration::from_secs(2));
    let err = std::fs::read_to_string(tmp.path().join("err")).expect("err");
    let ignored = err.matches("ignored on").count();
    assert_eq!(ignored, 1, "{err}");
    assert!(err.contains("\\x1b[2Jrm -rf"), "escaped: {err}");
    assert!(!err.contains("doorbell: applying"), "{err}");
    assert!(!err.contains("polling goes on"), "the session stays: {err}");
    drop(serve);
}

#[test]
fn sigusr1_rings_the_doorbell_without_a_broker_too() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = tmp.path().join("m.yaml");
    std::fs::write(&m, "version: 1\ncontainers: {}\n").expect("write");
    let err = tmp.path().join("err");
    let child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["--root", &tmp.path().join("store").to_string_lossy()])
        .args(["--runtime-dir", &tmp.path().join("run").to_string_lossy()])
        .args(["apply", "--serve"])
        .arg(&m)
        .env_remove("BERTH_MQTT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).expect("err"))
        .spawn()
        .expect("run berth");
    let serve = Serve(child);
    let pid = i32::try_from(serve.0.id()).expect("pid");
    // The first pass has run once stdout's "no changes" is out; give it time.
    std::thread::sleep(Duration::from_millis(800));
    // SAFETY: our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    let end = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&err)
        .expect("err")
        .contains("doorbell: applying")
    {
        assert!(
            Instant::now() < end,
            "no doorbell pass: {}",
            std::fs::read_to_string(&err).expect("err")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}
