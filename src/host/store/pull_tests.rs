//! Pulls against a small registry in the test (loopback): bearer tokens
//! renewed when they expire, a tag resolved once and then taken from the
//! record, a pinned image found in the store without the network.
//! tests/registry/run.py runs the real docker-registry.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use sha2::{Digest, Sha256};

use super::*;
use crate::host::store::{FetchOptions, StoreOptions};
use crate::model::{ImageSource, ImageSpec, RegistrySource};

fn hex(b: &[u8]) -> String {
    crate::model::hex(&Sha256::digest(b))
}

/// A registry for repository `a`, tag `1`, that wants `Bearer tokN` (N the
/// number of tokens issued so far) and issues tokens valid for 1 s.
struct Fake {
    base: String,
    tokens: Arc<AtomicUsize>,
    manifest_digest: String,
}

fn layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "hello", &b"hi\n"[..]).unwrap();
    b.into_inner().unwrap()
}

fn fake() -> Fake {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let cfg = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["/hello"]}}"#.to_vec();
    let layer = layer();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{}","size":{}}}]}}"#,
        hex(&cfg),
        cfg.len(),
        hex(&layer),
        layer.len()
    )
    .into_bytes();
    let manifest_digest = hex(&manifest);
    let mut routes: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    routes.insert("/v2/a/manifests/1".into(), manifest.clone());
    routes.insert(
        format!("/v2/a/manifests/sha256:{manifest_digest}"),
        manifest,
    );
    routes.insert(format!("/v2/a/blobs/sha256:{}", hex(&cfg)), cfg);
    routes.insert(format!("/v2/a/blobs/sha256:{}", hex(&layer)), layer);
    let tokens = Arc::new(AtomicUsize::new(0));
    let issued = tokens.clone();
    let realm = format!("http://{base}/token");
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let (mut first, mut line, mut auth) = (String::new(), String::new(), String::new());
            r.read_line(&mut first).unwrap();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                if let Some(v) = line.strip_prefix("Authorization: ") {
                    auth = v.trim().to_owned();
                }
                line.clear();
            }
            let path = first.split(' ').nth(1).unwrap_or_default().to_owned();
            let want = format!("Bearer tok{}", issued.load(Ordering::SeqCst));
            let (head, body) = if path.starts_with("/token") {
                let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                (
                    "200 OK".to_owned(),
                    format!(r#"{{"token":"tok{n}","expires_in":1}}"#).into_bytes(),
                )
            } else if auth != want {
                (
                    format!("401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"t\""),
                    Vec::new(),
                )
            } else if let Some(b) = routes.get(&path) {
                ("200 OK".to_owned(), b.clone())
            } else {
                ("404 Not Found".to_owned(), Vec::new())
            };
            let _ = write!(
                s,
                "HTTP/1.1 {head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    Fake {
        base,
        tokens,
        manifest_digest,
    }
}

fn opts() -> FetchOptions {
    FetchOptions {
        progress: false,
        ..FetchOptions::default()
    }
}

fn src(base: &str) -> RegistrySource {
    RegistrySource {
        reference: format!("{base}/a:1"),
        plain_http: true,
        auth: None,
    }
}

#[test]
fn an_expired_token_is_renewed_before_the_next_request() {
    let f = fake();
    let o = opts();
    let reference =
        crate::manifest::reference::Reference::parse(&format!("{}/a:1", f.base)).unwrap();
    let mut c = Client::new("t", reference, true, None, &o).unwrap();
    c.manifest("1").unwrap();
    c.manifest("1").unwrap();
    assert_eq!(f.tokens.load(Ordering::SeqCst), 1, "cached while valid");
    thread::sleep(std::time::Duration::from_millis(1100));
    c.manifest("1").unwrap();
    assert_eq!(f.tokens.load(Ordering::SeqCst), 2, "renewed once expired");
}

#[test]
fn a_tag_is_resolved_once_then_taken_from_the_record() {
    let f = fake();
    let tmp = tempfile::tempdir().unwrap();
    let store = RootfsStore::open(tmp.path(), StoreOptions::default()).unwrap();
    let mut images = BTreeMap::new();
    let spec = ImageSpec {
        name: "web".into(),
        source: ImageSource::Registry(src(&f.base)),
        sha256: None,
    };
    images.insert("web".to_owned(), spec.clone());
    resolve_tags(tmp.path(), &mut images, &opts());
    assert_eq!(
        images["web"].sha256.as_deref(),
        Some(f.manifest_digest.as_str())
    );
    let info = store.ensure(&images["web"]).unwrap();
    assert_eq!(info.digest, f.manifest_digest);
    assert_eq!(
        std::fs::read_to_string(info.rootfs.join("hello")).unwrap(),
        "hi\n"
    );
    assert_eq!(info.meta.config.cmd, Some(vec!["/hello".to_owned()]));
    // From now on the record answers, even with the registry gone.
    let gone = RegistrySource {
        reference: format!("{}/a:1", f.base),
        ..src("127.0.0.1:1")
    };
    let mut again = BTreeMap::new();
    again.insert("web".to_owned(), spec);
    resolve_tags(tmp.path(), &mut again, &opts());
    assert_eq!(again["web"].sha256, images["web"].sha256);
    // A pinned image in the store needs no registry.
    let pinned = ImageSpec {
        name: "other".into(),
        source: ImageSource::Registry(RegistrySource {
            reference: "127.0.0.1:1/a:1".into(),
            ..gone
        }),
        sha256: Some(f.manifest_digest.clone()),
    };
    assert_eq!(store.ensure(&pinned).unwrap().meta.names, ["web", "other"]);
    // gc removes the image, its tag record and the blob cache, and says so.
    let report = store.gc().unwrap();
    assert_eq!(report.removed, vec![f.manifest_digest.clone()]);
    assert!(report.freed > 0);
    assert_eq!(
        refs::recorded_ref(tmp.path(), &format!("{}/a:1", f.base)),
        None
    );
}
