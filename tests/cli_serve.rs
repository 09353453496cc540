//! `berth apply --serve --interval` against a fleet origin on loopback,
//! without root (an empty manifest starts nothing): conditional polls, quiet
//! 304 passes, backoff while the origin answers 500, and recovery.

// Test setup: a failed step panics with its location.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The requests the origin saw: when, the head, and whether it answered 500.
type Seen = Arc<Mutex<Vec<(Instant, String, bool)>>>;

/// An origin serving `body` with ETag "v1" (304 to If-None-Match "v1"),
/// or 500 to everything while `failing` is set.
fn origin(failing: Arc<AtomicBool>, body: &'static str) -> (String, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/m.yaml", l.local_addr().expect("addr"));
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { return };
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            let mut head = String::new();
            while r.read_line(&mut head).is_ok_and(|n| n > 2) {}
            let fail = failing.load(Ordering::SeqCst);
            log.lock()
                .expect("lock")
                .push((Instant::now(), head.clone(), fail));
            let answer = if fail {
                "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n".to_owned()
            } else if head.contains("\r\nIf-None-Match: \"v1\"\r\n") {
                "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n".to_owned()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = s.write_all(answer.as_bytes());
        }
    });
    (url, seen)
}

/// Every file and directory under `dir` with its size and mtime.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let m = e.metadata().expect("stat");
            out.insert(e.path(), (m.len(), m.modified().expect("mtime")));
            if m.is_dir() {
                todo.push(e.path());
            }
        }
    }
    out
}

/// The service process; killed in Drop if a check failed first.
struct Serve(Child);

impl Serve {
    /// `berth apply --serve --interval 1 --jitter 0 ARGS...` with its store,
    /// runtime dir, stdout and stderr in `dir`.
    fn start(dir: &Path, args: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["--root", &dir.join("store").to_string_lossy()])
            .args(["--runtime-dir", &dir.join("run").to_string_lossy()])
            .args(["apply", "--serve", "--interval", "1", "--jitter", "0"])
            .args(args)
            .env_remove("BERTH_ROOT")
            .env_remove("BERTH_RUNTIME_DIR")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("out")).expect("out"))
            .stderr(std::fs::File::create(dir.join("err")).expect("err"))
            .spawn()
            .expect("run berth");
        Serve(child)
    }

    fn signal(&self, sig: i32) {
        // SAFETY: the pid is our own child's, which has not been reaped.
        let rc = unsafe { libc::kill(i32::try_from(self.0.id()).expect("pid"), sig) };
        assert_eq!(rc, 0);
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait until the origin saw `n` requests (at most `limit`).
fn until(seen: &Seen, n: usize, limit: Duration) -> Vec<(Instant, String, bool)> {
    let end = Instant::now() + limit;
    loop {
        let got = seen.lock().expect("lock").clone();
        if got.len() >= n || Instant::now() > end {
            assert!(got.len() >= n, "only {} requests", got.len());
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn serve_polls_conditionally_stays_quiet_on_304_and_backs_off_while_the_origin_fails() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let failing = Arc::new(AtomicBool::new(false));
    let (url, seen) = origin(failing.clone(), "version: 1\n");
    let (store, run) = (tmp.path().join("store"), tmp.path().join("run"));
    let (out, err) = (tmp.path().join("out"), tmp.path().join("err"));
    let mut serve = Serve::start(tmp.path(), &["--backoff-max", "2s", &url]);

    // The pass at start fetches unconditionally and applies.
    until(&seen, 2, Duration::from_secs(5));
    let before = (listing(&store), listing(&run), read(&out), read(&err));
    assert_eq!(before.2, "no changes: the device matches the manifest\n");
    assert_eq!(before.3, "", "nothing on stderr");
    // Two more polls, both 304: nothing printed, nothing written.
    let got = until(&seen, 4, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        (listing(&store), listing(&run), read(&out), read(&err)),
        before
    );
    assert!(!got[0].1.contains("If-None-Match"), "{}", got[0].1);
    for (_, head, _) in &got[1..] {
        assert!(head.contains("\r\nIf-None-Match: \"v1\"\r\n"), "{head}");
    }

    // The origin fails: the waits double (1 s -> 2 s, capped at 2 s) and
    // the error is printed once.
    failing.store(true, Ordering::SeqCst);
    let start = seen.lock().expect("lock").len();
    let got = until(&seen, start + 3, Duration::from_secs(10));
    let gaps: Vec<Duration> = got[start..].windows(2).map(|w| w[1].0 - w[0].0).collect();
    for gap in &gaps {
        assert!(
            *gap >= Duration::from_millis(1900) && *gap < Duration::from_millis(3800),
            "{gaps:?}"
        );
    }
    let stderr = read(&err);
    assert_eq!(
        stderr,
        format!("berth: manifest: fetch `{url}`: http status 500\n"),
        "once, however many tries"
    );

    // Back again: one line, no apply (the text is the one applied), and
    // the normal interval.
    failing.store(false, Ordering::SeqCst);
    let start = seen.lock().expect("lock").len();
    let got = until(&seen, start + 2, Duration::from_secs(5));
    let gap = got[start + 1].0 - got[start].0;
    assert!(gap < Duration::from_millis(1800), "{gap:?}");
    let tries = got.iter().filter(|r| r.2).count();
    assert!(tries >= 3, "{tries}");
    assert_eq!(
        read(&err),
        format!("{stderr}berth: origin reachable again after {tries} failed tries\n")
    );
    assert_eq!(
        read(&out),
        before.2,
        "a 304 after a good pass applies nothing"
    );

    // SIGTERM stops the service cleanly.
    serve.signal(libc::SIGTERM);
    let status = serve.0.wait().expect("wait");
    assert!(status.success(), "{status:?}: {}", read(&err));
}

/// A manifest whose apply fails (its image is missing): a 304 then applies
/// the kept text again, at the normal interval, since the origin is fine.
/// SIGHUP fetches unconditionally, and applies the kept text when the
/// origin fails.
#[test]
fn serve_applies_again_after_a_failed_pass_and_on_sighup() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let failing = Arc::new(AtomicBool::new(false));
    let manifest = "version: 1\nimages: { bb: { path: /nonexistent/bb.tar } }\n\
                    containers:\n  c: { image: bb, command: [/bin/true] }\n";
    let (url, seen) = origin(failing.clone(), manifest);
    let err = tmp.path().join("err");
    let serve = Serve::start(tmp.path(), &[&url]);
    let tries = || read(&err).matches("read `/nonexistent/bb.tar`").count();

    let got = until(&seen, 4, Duration::from_secs(6));
    std::thread::sleep(Duration::from_millis(300));
    assert!(got[1..].iter().all(|r| r.1.contains("If-None-Match")));
    assert!(tries() >= 4, "each 304 applies again: {}", read(&err));
    for w in got.windows(2) {
        assert!(w[1].0 - w[0].0 < Duration::from_millis(1800), "no backoff");
    }

    failing.store(true, Ordering::SeqCst);
    let n = seen.lock().expect("lock").len();
    until(&seen, n + 1, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    let before = tries();
    serve.signal(libc::SIGHUP);
    let got = until(&seen, n + 2, Duration::from_millis(900));
    assert!(!got[n + 1].1.contains("If-None-Match"), "{}", got[n + 1].1);
    std::thread::sleep(Duration::from_millis(300));
    let stderr = read(&err);
    assert!(
        stderr.contains("berth: applying the manifest fetched last\n"),
        "{stderr}"
    );
    assert_eq!(tries(), before + 1, "{stderr}");
}
