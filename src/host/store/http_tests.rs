//! The client against hostile servers on loopback: dripping heads and
//! bodies, silent servers, endless headers, conflicting lengths, bodies
//! cut without framing, redirect loops and relative redirects. Each limit
//! is a parameter here, so a test takes about a second, not a minute.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::*;
use crate::host::store::fetch::{fetch_text_if_changed, Conditional, FetchOptions};
use crate::host::store::timed::Meter;
use crate::host::store::transfer::MinRate;
use crate::host::store::transfer::{MAX_HEAD, MAX_HEADERS};

/// How long a test server lives at most, whatever the client does.
const SERVER_LIFE: Duration = Duration::from_secs(20);

/// A server on 127.0.0.1: each connection gets `answer(stream, path)` on
/// its own thread. Returns `http://127.0.0.1:PORT`.
fn server(answer: impl Fn(TcpStream, String) + Send + Sync + 'static) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    l.set_nonblocking(true).unwrap();
    let answer = Arc::new(answer);
    thread::spawn(move || {
        let end = Instant::now() + SERVER_LIFE;
        while Instant::now() < end {
            let Ok((s, _)) = l.accept() else {
                thread::sleep(Duration::from_millis(5));
                continue;
            };
            let answer = answer.clone();
            thread::spawn(move || {
                s.set_nonblocking(false).unwrap();
                let path = read_request(&s);
                answer(s, path);
            });
        }
    });
    base
}

/// The request's path; the rest of its head is read and dropped.
fn read_request(s: &TcpStream) -> String {
    let mut r = BufReader::new(s);
    let mut first = String::new();
    let _ = r.read_line(&mut first);
    let mut l = String::new();
    while r.read_line(&mut l).is_ok_and(|n| n > 2) {
        l.clear();
    }
    first.split(' ').nth(1).unwrap_or_default().to_owned()
}

/// A server answering every request with `text`, all at once.
fn answering(text: String) -> String {
    server(move |mut s, _| {
        let _ = s.write_all(text.as_bytes());
    })
}

/// Write `bytes` one at a time, `every` apart, until the client hangs up.
fn drip(s: &mut TcpStream, bytes: &[u8], every: Duration) {
    for b in bytes.iter().take(20) {
        if s.write_all(&[*b]).is_err() {
            return;
        }
        thread::sleep(every);
    }
}

fn ok_head(length: usize) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n")
}

/// Small limits: a one-second deadline over the whole request, no stall
/// shorter than it, so only the deadline can end a dripping exchange.
fn manifest_limits() -> Limits {
    Limits {
        deadline: Duration::from_millis(1500),
        stall: Duration::from_secs(10),
        ..Limits::manifest()
    }
}

fn image_limits(bytes_per_sec: u64) -> Limits {
    Limits {
        deadline: Duration::from_millis(500),
        stall: Duration::from_secs(10),
        min_rate: Some(MinRate {
            bytes_per_sec,
            window: Duration::from_millis(500),
            grace: Duration::from_millis(250),
        }),
        ..Limits::image()
    }
}

fn no_tls() -> TlsConfig<'static> {
    #[cfg(feature = "tls")]
    {
        &|| Err(FetchError::BadUrl { url: "tls".into() })
    }
    #[cfg(not(feature = "tls"))]
    {
        &|| Ok(())
    }
}

fn fetch(url: &str, limits: &Limits) -> Result<Vec<u8>, FetchError> {
    let resp = get_if(url, limits, no_tls(), &Validators::default())?.expect("not a 304");
    let mut out = Vec::new();
    let mut body = resp.body;
    body.read_to_end(&mut out)
        .map_err(|e| FetchError::from_io(e).unwrap_or_else(|e| panic!("body: {e}")))?;
    Ok(out)
}

fn protocol(r: Result<Vec<u8>, FetchError>) -> String {
    match r {
        Err(FetchError::Protocol { what, .. }) => what,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_head_dripping_a_byte_a_second_fails_at_the_deadline() {
    let url = server(|mut s, _| {
        drip(
            &mut s,
            b"HTTP/1.1 200 OK\r\nX: y\r\n",
            Duration::from_secs(1),
        )
    });
    let start = Instant::now();
    let err = fetch(&url, &manifest_limits()).unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(err, FetchError::Deadline { secs: 1, .. }),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[test]
fn a_manifest_body_dripping_a_byte_a_second_fails_at_the_deadline() {
    let url = server(|mut s, _| {
        let _ = s.write_all(ok_head(20).as_bytes());
        drip(&mut s, &[b'x'; 20], Duration::from_secs(1));
    });
    let start = Instant::now();
    let err = fetch(&url, &manifest_limits()).unwrap_err();
    assert!(matches!(err, FetchError::Deadline { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[test]
fn an_image_body_dripping_a_byte_a_second_is_too_slow() {
    let url = server(|mut s, _| {
        let _ = s.write_all(ok_head(20).as_bytes());
        drip(&mut s, &[b'x'; 20], Duration::from_secs(1));
    });
    let start = Instant::now();
    let err = fetch(&url, &image_limits(100)).unwrap_err();
    assert!(
        matches!(err, FetchError::TooSlow { min: 100, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("too slow: ") && text.contains(" B/s over the last "),
        "{text}"
    );
    assert!(start.elapsed() < Duration::from_secs(4));
}

/// 3000 bytes at about 2000 B/s: longer than the head's deadline, faster
/// than the rule's minimum. A lower minimum passes, a higher one fails.
#[test]
fn a_slow_but_moving_image_body_finishes() {
    let url = server(|mut s, _| {
        let _ = s.write_all(ok_head(3000).as_bytes());
        for _ in 0..30 {
            if s.write_all(&[b'x'; 100]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let start = Instant::now();
    assert_eq!(fetch(&url, &image_limits(500)).unwrap().len(), 3000);
    assert!(start.elapsed() > Duration::from_millis(1000));
    let err = fetch(&url, &image_limits(8000)).unwrap_err();
    assert!(matches!(err, FetchError::TooSlow { .. }), "{err:?}");
}

#[test]
fn a_silent_server_fails_at_the_deadline_or_the_stall_time() {
    let silent = || {
        server(|s, _| {
            thread::sleep(Duration::from_secs(4));
            drop(s);
        })
    };
    let start = Instant::now();
    let err = fetch(&silent(), &manifest_limits()).unwrap_err();
    assert!(matches!(err, FetchError::Deadline { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    let stall = Limits {
        deadline: Duration::from_secs(10),
        stall: Duration::from_secs(1),
        ..Limits::manifest()
    };
    let err = fetch(&silent(), &stall).unwrap_err();
    assert!(
        matches!(err, FetchError::Stalled { secs: 1, .. }),
        "{err:?}"
    );
}

/// A head of exactly `total` bytes: status line, Content-Length: 2,
/// fillers, the empty line.
fn head_of_size(total: usize) -> String {
    let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
    let mut left = total - head.len() - 2;
    let filler = |n: usize| format!("X-Fill: {}\r\n", "a".repeat(n - 10));
    while left >= 16_000 {
        head += &filler(8000);
        left -= 8000;
    }
    head += &filler(left / 2);
    head += &filler(left - left / 2);
    head += "\r\n";
    assert_eq!(head.len(), total);
    head
}

#[test]
fn a_head_of_64_kib_passes_and_one_byte_more_fails() {
    let url = answering(format!("{}ok", head_of_size(MAX_HEAD)));
    assert_eq!(fetch(&url, &manifest_limits()).unwrap(), b"ok");
    let url = answering(format!("{}ok", head_of_size(MAX_HEAD + 1)));
    let what = protocol(fetch(&url, &manifest_limits()));
    assert_eq!(what, "a response head larger than 65536 bytes");
    // Endless headers end at the size limit, not at the server's whim.
    let endless = server(|mut s, _| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
        while s.write_all(b"X: y\r\n").is_ok() {}
    });
    let unlimited = Limits {
        max_headers: usize::MAX,
        ..manifest_limits()
    };
    assert!(protocol(fetch(&endless, &unlimited)).contains("larger than"));
}

#[test]
fn a_hundred_headers_pass_and_one_more_fails() {
    let with = |n: usize| {
        let extra: String = (1..n).map(|i| format!("X-{i}: v\r\n")).collect();
        answering(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{extra}\r\nok"
        ))
    };
    assert_eq!(
        fetch(&with(MAX_HEADERS), &manifest_limits()).unwrap(),
        b"ok"
    );
    let what = protocol(fetch(&with(MAX_HEADERS + 1), &manifest_limits()));
    assert_eq!(what, "more than 100 headers");
}

#[test]
fn conflicting_content_lengths_are_refused_and_equal_ones_pass() {
    let with = |lengths: &str| answering(format!("HTTP/1.1 200 OK\r\n{lengths}\r\nokxxxx"));
    let ok = with("Content-Length: 2\r\nContent-Length: 2\r\n");
    assert_eq!(fetch(&ok, &manifest_limits()).unwrap(), b"ok");
    let ok = with("Content-Length: 2, 2\r\n");
    assert_eq!(fetch(&ok, &manifest_limits()).unwrap(), b"ok");
    for bad in [
        "Content-Length: 2\r\nContent-Length: 6\r\n",
        "Content-Length: 2, 6\r\n",
    ] {
        let what = protocol(fetch(&with(bad), &manifest_limits()));
        assert_eq!(
            what, "conflicting Content-Length headers (2 and 6)",
            "{bad:?}"
        );
    }
    let gz = with("Transfer-Encoding: gzip, chunked\r\n");
    assert!(protocol(fetch(&gz, &manifest_limits())).contains("only chunked"));
}

#[test]
fn a_manifest_body_without_framing_is_refused_an_image_body_is_not() {
    let url = answering("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nversion: 1\n".into());
    let what = protocol(fetch(&url, &manifest_limits()));
    assert!(
        what.contains("neither Content-Length nor chunked"),
        "{what}"
    );
    // An image's sha256 catches a cut, so a close-delimited body is taken.
    assert_eq!(fetch(&url, &image_limits(1)).unwrap(), b"version: 1\n");
    // Chunked framing is enough for a manifest.
    let url = answering(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".into(),
    );
    assert_eq!(fetch(&url, &manifest_limits()).unwrap(), b"ok");
}

/// A server that redirects `/N` to `Location: N+1` (relative), up to `/last`.
fn redirecting(last: usize) -> String {
    server(move |mut s, path| {
        let n: usize = path.trim_start_matches('/').parse().unwrap_or(0);
        let answer = if n < last {
            format!(
                "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\n\r\n",
                n + 1
            )
        } else {
            format!("{}ok", ok_head(2))
        };
        let _ = s.write_all(answer.as_bytes());
    })
}

#[test]
fn five_redirects_are_followed_and_a_sixth_is_too_many() {
    let base = redirecting(MAX_REDIRECTS);
    assert_eq!(
        fetch(&format!("{base}/0"), &manifest_limits()).unwrap(),
        b"ok"
    );
    let base = redirecting(MAX_REDIRECTS + 1);
    let err = fetch(&format!("{base}/0"), &manifest_limits()).unwrap_err();
    assert!(
        matches!(err, FetchError::TooManyRedirects { max: 5, .. }),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .ends_with("too many redirects (more than 5)"));
}

#[test]
fn a_redirect_loop_is_named() {
    let base = server(|mut s, path| {
        let to = if path == "/a" { "/b" } else { "a" };
        let _ = write!(
            s,
            "HTTP/1.1 301 Moved\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n"
        );
    });
    let err = fetch(&format!("{base}/a"), &manifest_limits()).unwrap_err();
    let want = format!("redirect loop: {base}/a -> {base}/b -> {base}/a");
    assert!(err.to_string().ends_with(&want), "{err}");
}

#[test]
fn relative_redirects_resolve_as_rfc_3986_says() {
    let authority = Arc::new(std::sync::Mutex::new(String::new()));
    let me = authority.clone();
    let base = server(move |mut s, path| {
        let answer = match path.as_str() {
            "/dir/sub/file" => {
                "HTTP/1.1 302 Found\r\nLocation: ../other/./x?v=1#frag\r\n\r\n".into()
            }
            "/dir/other/x?v=1" => "HTTP/1.1 307 Temporary\r\nLocation: ?v=2\r\n\r\n".into(),
            "/dir/other/x?v=2" => format!(
                "HTTP/1.1 308 Permanent\r\nLocation: //{}/end\r\n\r\n",
                me.lock().unwrap()
            ),
            "/end" => format!("{}ok", ok_head(2)),
            _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into(),
        };
        let _ = s.write_all(answer.as_bytes());
    });
    *authority.lock().unwrap() = base.trim_start_matches("http://").to_owned();
    let got = fetch(&format!("{base}/dir/sub/file"), &manifest_limits()).unwrap();
    assert_eq!(got, b"ok");
    let bad = server(|mut s, _| {
        let _ = s.write_all(b"HTTP/1.1 302 Found\r\nLocation: ftp://x/y\r\n\r\n");
    });
    let err = fetch(&bad, &manifest_limits()).unwrap_err();
    assert!(matches!(err, FetchError::BadRedirect { .. }), "{err:?}");
}

/// The throughput rule at its edge: exactly the minimum passes, one byte
/// less over the window fails; nothing is judged during the grace.
#[test]
fn the_rate_rule_at_its_edge() {
    let rule = MinRate {
        bytes_per_sec: 100,
        window: Duration::from_secs(1),
        grace: Duration::from_secs(1),
    };
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut m = Meter::new(Some(rule), t0);
    assert!(m.add(1, at(900)).is_ok(), "grace");
    assert!(m.add(99, at(1000)).is_ok(), "100 B in 1 s");
    let mut m = Meter::new(Some(rule), t0);
    assert_eq!(m.add(99, at(1000)), Err((99, Duration::from_secs(1))));
    // The window slides: old bytes stop counting.
    let mut m = Meter::new(Some(rule), t0);
    assert!(m.add(10_000, at(100)).is_ok());
    assert!(
        m.add(1, at(1100)).is_ok(),
        "the burst is still in the window"
    );
    let err = m.add(1, at(2300)).unwrap_err();
    assert!(err.0 < 100, "{err:?}");
}

#[test]
fn chunked_and_sized_bodies() {
    let text = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n";
    let mut out = String::new();
    Chunked {
        inner: &text[..],
        left: 0,
        done: false,
    }
    .read_to_string(&mut out)
    .unwrap();
    assert_eq!(out, "Wikipedia");
    let mut short = Vec::new();
    let err = Chunked {
        inner: &b"a\r\nonly5"[..],
        left: 0,
        done: false,
    }
    .read_to_end(&mut short)
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    let err = Sized {
        inner: &b"abc"[..],
        left: 10,
    }
    .read_to_end(&mut Vec::new())
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    let mut whole = Vec::new();
    Sized {
        inner: &b"abcdef"[..],
        left: 3,
    }
    .read_to_end(&mut whole)
    .unwrap();
    assert_eq!(whole, b"abc");
}

/// A server that records each request's head and answers it with
/// `answer(head)`: the conditional GET seen from the server's side.
fn recording(
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/m.yaml", l.local_addr().unwrap());
    thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            while r.read_line(&mut head).is_ok_and(|n| n > 2) {}
            // Recorded before answering: the client may look once it has the answer.
            let reply = answer(&head);
            seen.lock().unwrap().push(head);
            let _ = s.write_all(reply.as_bytes());
        }
    });
    (url, heads)
}

fn changed(url: &str, since: &Validators) -> Result<Conditional, FetchError> {
    let opts = FetchOptions {
        limits: manifest_limits(),
        ..FetchOptions::default()
    };
    fetch_text_if_changed(url, &opts, 1000, since)
}

/// The header `name` of a request head, if sent.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

#[test]
fn an_etag_round_trip_ends_in_not_modified_without_a_body() {
    let (url, heads) = recording(|head| match header(head, "If-None-Match") {
        Some("\"v1\"") => "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n".into(),
        _ => "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 2\r\n\r\nok".into(),
    });
    let Conditional::Changed { text, validators } = changed(&url, &Validators::default()).unwrap()
    else {
        panic!("first fetch is a 200")
    };
    assert_eq!(text, "ok");
    assert_eq!(validators.etag.as_deref(), Some("\"v1\""));
    assert_eq!(validators.last_modified, None);
    assert_eq!(
        changed(&url, &validators).unwrap(),
        Conditional::NotModified
    );
    let heads = heads.lock().unwrap();
    assert_eq!(header(&heads[0], "If-None-Match"), None);
    assert_eq!(header(&heads[1], "If-None-Match"), Some("\"v1\""));
    assert_eq!(header(&heads[1], "If-Modified-Since"), None);
}

#[test]
fn last_modified_alone_is_sent_back_verbatim() {
    const DATE: &str = "Tue, 01 Dec 2026 10:00:00 GMT";
    let (url, heads) = recording(|head| match header(head, "If-Modified-Since") {
        Some(DATE) => "HTTP/1.1 304 Not Modified\r\n\r\n".into(),
        _ => format!("HTTP/1.1 200 OK\r\nLast-Modified: {DATE}\r\nContent-Length: 2\r\n\r\nok"),
    });
    let Conditional::Changed { validators, .. } = changed(&url, &Validators::default()).unwrap()
    else {
        panic!("first fetch is a 200")
    };
    assert_eq!(validators.last_modified.as_deref(), Some(DATE));
    assert_eq!(
        changed(&url, &validators).unwrap(),
        Conditional::NotModified
    );
    let heads = heads.lock().unwrap();
    assert_eq!(header(&heads[1], "If-Modified-Since"), Some(DATE));
    assert_eq!(header(&heads[1], "If-None-Match"), None);
}

#[test]
fn a_server_that_ignores_validators_sends_the_document_again() {
    let (url, heads) =
        recording(|_| "HTTP/1.1 200 OK\r\nETag: \"v2\"\r\nContent-Length: 3\r\n\r\nnew".into());
    let old = Validators {
        etag: Some("\"v1\"".into()),
        last_modified: Some("Mon, 30 Nov 2026 10:00:00 GMT".into()),
    };
    let got = changed(&url, &old).unwrap();
    assert_eq!(
        got,
        Conditional::Changed {
            text: "new".into(),
            validators: Validators {
                etag: Some("\"v2\"".into()),
                last_modified: None
            }
        }
    );
    let heads = heads.lock().unwrap();
    assert_eq!(header(&heads[0], "If-None-Match"), Some("\"v1\""));
    assert_eq!(
        header(&heads[0], "If-Modified-Since"),
        Some("Mon, 30 Nov 2026 10:00:00 GMT")
    );
}

/// A 304 that answers no question has no document to use: an error, for a
/// manifest and for an image alike, even with a Location to follow.
#[test]
fn a_304_to_a_request_without_validators_is_a_protocol_error() {
    let (url, _) = recording(|_| "HTTP/1.1 304 Not Modified\r\nLocation: /x\r\n\r\n".into());
    let err = changed(&url, &Validators::default()).unwrap_err();
    assert!(
        matches!(err, FetchError::UnaskedNotModified { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("bad response: 304 Not Modified to a request that sent no validator"),
        "{err}"
    );
    let err = fetch(&url, &image_limits(1)).unwrap_err();
    assert!(
        matches!(err, FetchError::UnaskedNotModified { .. }),
        "{err:?}"
    );
}

/// Validators a server could use to add headers to the next request, or
/// that are too long, are not kept; nor sent when a caller made them up.
#[test]
fn odd_or_long_validators_are_neither_kept_nor_sent() {
    let long = format!("\"{}\"", "a".repeat(MAX_VALIDATOR));
    let reply = format!(
        "HTTP/1.1 200 OK\r\nETag: {long}\r\nLast-Modified: a\x01b\r\nContent-Length: 2\r\n\r\nok"
    );
    let (url, heads) = recording(move |_| reply.clone());
    let Conditional::Changed { validators, .. } = changed(&url, &Validators::default()).unwrap()
    else {
        panic!("a 200")
    };
    assert_eq!(validators, Validators::default());
    let forged = Validators {
        etag: Some("\"x\"\r\nX-Injected: 1".into()),
        last_modified: Some(long),
    };
    // Nothing valid was sent, so the server's 200 is what the client gets.
    assert!(matches!(
        changed(&url, &forged),
        Ok(Conditional::Changed { .. })
    ));
    let heads = heads.lock().unwrap();
    assert!(
        !heads[1].contains("X-Injected") && !heads[1].contains("If-"),
        "{}",
        heads[1]
    );
    assert!(validator_ok("W/\"5f-1a\"") && validator_ok("Tue, 01 Dec 2026 10:00:00 GMT"));
}

/// Through a redirect the validators go to every hop, and the final
/// answer's are the ones kept for the URL asked for.
#[test]
fn validators_follow_a_redirect_to_the_final_answer() {
    let (target, heads) = recording(|head| match header(head, "If-None-Match") {
        Some("\"cdn-1\"") => "HTTP/1.1 304 Not Modified\r\n\r\n".into(),
        _ => "HTTP/1.1 200 OK\r\nETag: \"cdn-1\"\r\nContent-Length: 2\r\n\r\nok".into(),
    });
    let (url, first_hop) = recording(move |_| {
        format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n")
    });
    let Conditional::Changed { validators, .. } = changed(&url, &Validators::default()).unwrap()
    else {
        panic!("a 200 at the end of the chain")
    };
    assert_eq!(validators.etag.as_deref(), Some("\"cdn-1\""));
    assert_eq!(
        changed(&url, &validators).unwrap(),
        Conditional::NotModified
    );
    assert_eq!(
        header(&first_hop.lock().unwrap()[1], "If-None-Match"),
        Some("\"cdn-1\"")
    );
    assert_eq!(
        header(&heads.lock().unwrap()[1], "If-None-Match"),
        Some("\"cdn-1\"")
    );
}
