//! The registry side of the client (`send` with `Extra`): which headers go
//! to which hop of a redirect chain, and the statuses handed back whole.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use super::*;

/// A one-purpose server on 127.0.0.1 answering each connection with
/// `answer(base)` and keeping each request head in `heads`.
fn server(answer: String, heads: Arc<Mutex<Vec<String>>>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    thread::spawn(move || {
        for s in l.incoming().take(4) {
            let Ok(mut s) = s else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                head.push_str(&line);
                line.clear();
            }
            heads.lock().unwrap().push(head);
            let _ = s.write_all(answer.as_bytes());
        }
    });
    base
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

#[test]
fn credentials_stay_with_the_registry_through_a_redirect() {
    let cdn_heads = Arc::new(Mutex::new(Vec::new()));
    let cdn = server(
        "HTTP/1.1 206 Partial\r\nContent-Range: bytes 5-9/10\r\nContent-Length: 5\r\n\r\nhello"
            .into(),
        cdn_heads.clone(),
    );
    let reg_heads = Arc::new(Mutex::new(Vec::new()));
    let reg = server(
        format!(
            "HTTP/1.1 307 Temporary\r\nLocation: {cdn}/blob?sig=1\r\nContent-Length: 0\r\n\r\n"
        ),
        reg_heads.clone(),
    );
    let extra = Extra {
        accept: Some("application/x-a"),
        authorization: Some("Bearer secret"),
        range_from: Some(5),
        https_elsewhere: false,
    };
    let mut reply = send(
        &format!("{reg}/v2/a/blobs/x"),
        &Limits::image(),
        no_tls(),
        &extra,
    )
    .unwrap();
    assert_eq!(
        (reply.status, reply.content_range.as_deref()),
        (206, Some("bytes 5-9/10"))
    );
    let mut body = String::new();
    reply.body.read_to_string(&mut body).unwrap();
    assert_eq!(body, "hello");
    let reg_head = reg_heads.lock().unwrap()[0].clone();
    let cdn_head = cdn_heads.lock().unwrap()[0].clone();
    assert!(
        reg_head.contains("Authorization: Bearer secret\r\n"),
        "{reg_head}"
    );
    assert!(
        !cdn_head.contains("Authorization"),
        "the CDN got the token: {cdn_head}"
    );
    for h in [&reg_head, &cdn_head] {
        assert!(
            h.contains("Range: bytes=5-\r\n") && h.contains("Accept: application/x-a\r\n"),
            "{h}"
        );
    }
}

#[test]
fn a_redirect_elsewhere_must_be_https_and_a_401_comes_back_whole() {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let other = server(
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".into(),
        heads.clone(),
    );
    let reg = server(
        format!("HTTP/1.1 307 Temporary\r\nLocation: {other}/x\r\nContent-Length: 0\r\n\r\n"),
        heads.clone(),
    );
    let extra = Extra {
        https_elsewhere: true,
        ..Extra::default()
    };
    let e = send(&format!("{reg}/v2/"), &Limits::image(), no_tls(), &extra)
        .err()
        .unwrap();
    assert!(matches!(e, FetchError::Downgrade { .. }), "{e:?}");
    let auth = server(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"https://a/t\"\r\nContent-Length: 0\r\n\r\n".into(),
        heads,
    );
    let reply = send(
        &format!("{auth}/v2/"),
        &Limits::image(),
        no_tls(),
        &Extra::default(),
    )
    .unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.www_authenticate.as_deref(),
        Some("Bearer realm=\"https://a/t\"")
    );
}
