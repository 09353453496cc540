//! Downloads: HTTP on loopback (verified, cached, dropped halfway, error
//! statuses) and https (a plain server, a private CA).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use super::*;

/// A one-shot-per-connection HTTP server on 127.0.0.1. `cut` sends only that
/// many body bytes, then closes (a server dying mid-download).
struct Server {
    url: String,
    hits: Arc<Mutex<usize>>,
}

fn serve(body: Vec<u8>, status: u16, cut: Option<usize>) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/img.tar.gz", l.local_addr().unwrap());
    let hits = Arc::new(Mutex::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { return };
            *h.lock().unwrap() += 1;
            let mut req = [0u8; 4096];
            let _ = c.read(&mut req);
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(head.as_bytes());
            let n = cut.unwrap_or(body.len()).min(body.len());
            let _ = c.write_all(&body[..n]);
        }
    });
    Server { url, hits }
}

#[test]
fn http_download_is_verified_and_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let data = gzip(&rootfs_tar());
    let srv = serve(data.clone(), 200, None);
    let sp = spec("web", ImageSource::Url(srv.url.clone()), Some(sha(&data)));
    let info = s.ensure(&sp).unwrap();
    assert_eq!(
        std::fs::read(info.rootfs.join("etc/motd")).unwrap(),
        b"hello"
    );
    assert_eq!(info.meta.source, srv.url);
    // Cached by digest: no second request.
    let again = s.ensure(&sp).unwrap();
    assert_eq!(again.dir, info.dir);
    assert_eq!(*srv.hits.lock().unwrap(), 1);
}

#[test]
fn http_connection_dropped_halfway() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let data = gzip(&tarball(&[
        file("big", &vec![42u8; 300_000]),
        file("after", b"x"),
    ]));
    let srv = serve(data.clone(), 200, Some(data.len() / 2));
    let err = s
        .ensure(&spec("web", ImageSource::Url(srv.url), Some(sha(&data))))
        .unwrap_err();
    assert!(matches!(err, StoreError::Read { .. }), "{err:?}");
    assert!(s.list().unwrap().is_empty());
    no_leftovers(&s);
}

#[test]
fn http_status_unreachable_and_missing_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let srv = serve(b"not here".to_vec(), 404, None);
    let err = s
        .ensure(&spec(
            "web",
            ImageSource::Url(srv.url.clone()),
            Some("a".repeat(64)),
        ))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Fetch {
                source: FetchError::Status { status: 404, .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(crate::host::chain(&err).contains(&srv.url));
    // A port nothing listens on (bound, then closed).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/x.tar");
    let err = s
        .ensure(&spec("web", ImageSource::Url(url), Some("a".repeat(64))))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Fetch {
                source: FetchError::Unreachable { .. },
                ..
            }
        ),
        "{err:?}"
    );
    let err = s
        .ensure(&spec("web", ImageSource::Url(srv.url), None))
        .unwrap_err();
    assert!(matches!(err, StoreError::MissingDigest { .. }), "{err:?}");
    let err = s
        .ensure(&spec(
            "web",
            ImageSource::Url("ftp://x/y".into()),
            Some("a".repeat(64)),
        ))
        .unwrap_err();
    assert!(matches!(err, StoreError::BadUrl { .. }), "{err:?}");
}

#[cfg(feature = "tls")]
#[test]
fn https_against_a_plain_server_is_a_tls_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let srv = serve(b"plain http".to_vec(), 200, None);
    let url = srv.url.replace("http://", "https://");
    let err = s
        .ensure(&spec("web", ImageSource::Url(url), Some("a".repeat(64))))
        .unwrap_err();
    assert!(is_tls(&err), "{err:?}");
    // A CA bundle that does not exist is named in the error.
    let mut o = StoreOptions::default();
    o.fetch.ca_bundle = tmp.path().join("none.pem");
    let s2 = RootfsStore::open(&tmp.path().join("s2"), o).unwrap();
    let err = s2
        .ensure(&spec(
            "web",
            ImageSource::Url("https://127.0.0.1:1/x".into()),
            Some("a".repeat(64)),
        ))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Fetch {
                source: FetchError::CaBundle { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(crate::host::chain(&err).contains("none.pem"), "{err}");
}

#[cfg(feature = "tls")]
fn is_tls(err: &StoreError) -> bool {
    matches!(
        err,
        StoreError::Fetch {
            source: FetchError::Tls { .. },
            ..
        }
    )
}

/// A CA and a server certificate for 127.0.0.1 made by `openssl` in `d`
/// (the CA is `d/ca.pem`), as a rustls server config.
#[cfg(feature = "tls")]
pub(super) fn private_ca(d: &Path) -> Arc<rustls::ServerConfig> {
    let sh = |cmd: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(d)
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh(&format!(
        "openssl req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca 2>/dev/null"
    ));
    sh(&format!(
        "openssl req {ec} -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null"
    ));
    std::fs::write(
        d.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext 2>/dev/null");
    let certs: Vec<_> = rustls_pemfile::certs(&mut &std::fs::read(d.join("srv.pem")).unwrap()[..])
        .collect::<Result<_, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut &std::fs::read(d.join("srv.key")).unwrap()[..])
        .unwrap()
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(cfg)
}

/// An https server on 127.0.0.1 answering each request with `answer`;
/// returns `https://127.0.0.1:PORT`.
#[cfg(feature = "tls")]
pub(super) fn serve_tls(cfg: Arc<rustls::ServerConfig>, answer: Vec<u8>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("https://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(tcp) = conn else { return };
            let Ok(sc) = rustls::ServerConnection::new(cfg.clone()) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(sc, tcp);
            let mut req = [0u8; 4096];
            if tls.read(&mut req).is_err() {
                continue; // a client that refused our certificate
            }
            let _ = tls.write_all(&answer);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    base
}

/// An https server on loopback with a private CA; the store trusts it
/// through `ca_bundle`, as a fleet CA would be configured.
#[cfg(feature = "tls")]
#[test]
fn https_with_a_private_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data = gzip(&rootfs_tar());
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        data.len()
    )
    .into_bytes();
    answer.extend_from_slice(&data);
    let url = format!("{}/img.tar.gz", serve_tls(private_ca(d), answer));
    // The system bundle does not know this CA: a TLS failure, nothing installed.
    let sys = store(tmp.path());
    let sp = spec("web", ImageSource::Url(url.clone()), Some(sha(&data)));
    if std::path::Path::new(fetch::DEFAULT_CA_BUNDLE).exists() {
        let err = sys.ensure(&sp).unwrap_err();
        assert!(is_tls(&err), "{err:?}");
    }
    let s = RootfsStore::open(&d.join("s2"), ca_options(d)).unwrap();
    let info = s.ensure(&sp).unwrap();
    assert_eq!(
        std::fs::read(info.rootfs.join("etc/motd")).unwrap(),
        b"hello"
    );
}

/// An origin that speaks only TLS 1.2 (openssl s_server): refused with
/// what to do, since the firmware build speaks only TLS 1.3.
#[cfg(all(feature = "tls", not(feature = "tls12")))]
#[test]
fn a_tls_1_2_only_server_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    private_ca(d);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("openssl")
        .args([
            "s_server", "-tls1_2", "-www", "-cert", "srv.pem", "-key", "srv.key",
        ])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .current_dir(d)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let s = RootfsStore::open(&d.join("s"), ca_options(d)).unwrap();
    let url = format!("https://{addr}/img.tar.gz");
    let err = s
        .ensure(&spec("web", ImageSource::Url(url), Some("a".repeat(64))))
        .unwrap_err();
    let _ = server.kill();
    let _ = server.wait();
    assert!(is_tls(&err), "{err:?}");
    let text = crate::host::chain(&err);
    assert!(
        text.contains("does not speak TLS 1.3") && text.contains("`tls12` feature"),
        "{text}"
    );
}

#[cfg(feature = "tls")]
fn ca_options(d: &Path) -> StoreOptions {
    let mut o = StoreOptions::default();
    o.fetch.progress = false;
    o.fetch.ca_bundle = d.join("ca.pem");
    o
}

/// A trusted https server redirecting to plain http: refused before any
/// request goes out in the clear, and nothing is installed.
#[cfg(feature = "tls")]
#[test]
fn an_https_redirect_to_http_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data = gzip(&rootfs_tar());
    let plain = serve(data.clone(), 200, None);
    let answer = format!(
        "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\n\r\n",
        plain.url
    );
    let url = format!(
        "{}/img.tar.gz",
        serve_tls(private_ca(d), answer.into_bytes())
    );
    let s = RootfsStore::open(&d.join("s"), ca_options(d)).unwrap();
    let err = s
        .ensure(&spec("web", ImageSource::Url(url), Some(sha(&data))))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Fetch {
                source: FetchError::Downgrade { location, .. },
                ..
            } if *location == plain.url
        ),
        "{err:?}"
    );
    assert!(crate::host::chain(&err).contains("refused redirect from https to plain http"));
    assert_eq!(*plain.hits.lock().unwrap(), 0, "no request in the clear");
    assert!(s.list().unwrap().is_empty());
}

/// An image server dripping its body: the download fails on the
/// throughput rule (a fetch error, not a corrupt archive), nothing stays.
#[test]
fn a_dripping_image_server_fails_too_slow_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = gzip(&rootfs_tar());
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/img.tar.gz", l.local_addr().unwrap());
    let body = data.clone();
    std::thread::spawn(move || {
        let Ok((mut c, _)) = l.accept() else { return };
        let mut req = [0u8; 4096];
        let _ = c.read(&mut req);
        let _ = write!(
            c,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        for b in body.iter().take(20) {
            if c.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    });
    let mut o = StoreOptions::default();
    o.fetch.progress = false;
    o.fetch.limits.min_rate = Some(MinRate {
        bytes_per_sec: 100,
        window: std::time::Duration::from_millis(500),
        grace: std::time::Duration::from_millis(500),
    });
    let s = RootfsStore::open(&tmp.path().join("store"), o).unwrap();
    let start = std::time::Instant::now();
    let err = s
        .ensure(&spec("web", ImageSource::Url(url), Some(sha(&data))))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Fetch {
                source: FetchError::TooSlow { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    assert!(s.list().unwrap().is_empty());
    no_leftovers(&s);
}
