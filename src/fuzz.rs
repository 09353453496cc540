//! Entry points for the fuzz targets in fuzz/ (`make fuzz`): each feeds
//! untrusted bytes to one of berth's own parsers, as the device would meet
//! them. Hidden from the docs; nothing of berth calls it, so the binary does
//! not carry it.

use std::io;
#[cfg(feature = "xz")]
use std::io::Write;
use std::path::Path;

use crate::host::net::reply;
#[cfg(any(feature = "http", feature = "xz"))]
use crate::host::store;
use crate::host::store::{RootfsStore, StoreOptions};
use crate::manifest::{self, RenderInput};

/// The manifest front end: render, parse, validate.
pub fn manifest(text: &str) {
    let _ = manifest::load("fuzz.yaml", text, "/", &RenderInput::default());
}

/// The YAML front end alone.
pub fn yaml(text: &str) {
    let _ = manifest::yaml::load(text);
}

/// One rtnetlink datagram as the kernel (or a hostile netns) could answer,
/// with every message's body parsed as a link and as an address.
pub fn netlink_reply(bytes: &[u8]) {
    let seq = bytes.first().copied().map_or(0, u32::from);
    let _ = reply::parse_datagram(bytes, seq, &mut |r| {
        let _ = reply::parse_ifinfomsg(r.body);
        let _ = reply::parse_ifaddrmsg(r.body);
        r.kind & 1 == 0
    });
    let _ = reply::attrs(bytes);
}

/// An HTTP/1.1 response (head, chunked or sized body, a redirect's
/// Location) as a hostile server could send it, with the manifest limits.
#[cfg(feature = "http")]
pub fn http_response(bytes: &[u8]) {
    let limits = store::Limits::manifest();
    let _ = store::http_parse_response(bytes, "https://fleet.example/a/b?c", &limits);
}

#[cfg(feature = "registry")]
/// Registry JSON and headers: the first byte picks the Content-Type of a
/// manifest; the rest is read as a manifest or index, a token answer, a
/// `WWW-Authenticate` value and an image reference.
pub fn registry(bytes: &[u8]) {
    use crate::host::store::regdoc;
    let Some((first, rest)) = bytes.split_first() else {
        return;
    };
    let types = [
        regdoc::OCI_INDEX,
        regdoc::OCI_MANIFEST,
        regdoc::DOCKER_LIST,
        regdoc::DOCKER_MANIFEST,
    ];
    let content_type = types.get(usize::from(*first % 5)).copied();
    let _ = regdoc::parse_document(rest, content_type);
    let _ = regdoc::parse_token(rest);
    let _ = regdoc::config_platform(rest);
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = regdoc::parse_challenge(text);
        let _ = crate::manifest::reference::Reference::parse(text);
        let _ = crate::host::store::platform::Platform::parse(text);
    }
}

/// The .xz reader, its output capped so a small bomb ends quickly.
#[cfg(feature = "xz")]
pub fn xz(bytes: &[u8]) {
    let mut out = Capped(16 << 20);
    let _ = store::xz_decompress(&mut &bytes[..], &mut out);
}

/// An image archive (tar, compressed tar, OCI layout, docker save) imported
/// into a store under `dir`, which the caller makes and removes.
pub fn image(bytes: &[u8], dir: &Path) -> io::Result<()> {
    let file = dir.join("image");
    std::fs::write(&file, bytes)?;
    let opts = StoreOptions {
        max_image_size: 64 << 20,
        ..StoreOptions::default()
    };
    if let Ok(store) = RootfsStore::open(&dir.join("store"), opts) {
        let _ = store.import("fuzz", &file);
    }
    Ok(())
}

/// Signature, public and secret key files and the signed facts, as a fleet
/// server or a hostile mirror could serve them: the public key is the
/// input's first line, the signature the rest. Whatever parses writes
/// back to itself; a signature is verified against the key (and refused).
pub fn signature(data: &[u8]) {
    use crate::fleet::{minisign, signed, time};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let key = minisign::PublicKey::parse(first)
        .or_else(|_| minisign::PublicKey::parse(text))
        .ok();
    if let Some(k) = &key {
        assert_eq!(minisign::PublicKey::parse(&k.to_file()).as_ref(), Ok(k));
    }
    // No passphrase: a hostile key's scrypt limits are bounded but large.
    let _ = minisign::SecretKey::parse(text, None);
    let _ = time::parse_rfc3339(first);
    let _ = signed::SignedFacts::parse(text);
    for sig_text in [text, rest] {
        let Ok(sig) = minisign::Signature::parse(sig_text) else {
            continue;
        };
        assert_eq!(
            minisign::Signature::parse(&sig.to_file()).as_ref(),
            Ok(&sig)
        );
        if let Ok(facts) = signed::SignedFacts::parse(&sig.trusted_comment) {
            assert_eq!(signed::SignedFacts::parse(&facts.to_comment()), Ok(facts));
        }
        if let Some(k) = &key {
            let _ = minisign::verify(k, &sig, rest.as_bytes());
        }
    }
}

/// A writer that fails once it has taken `.0` bytes.
#[cfg(feature = "xz")]
struct Capped(usize);

#[cfg(feature = "xz")]
impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.0 {
            return Err(io::Error::other("output cap"));
        }
        self.0 -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a hostile MQTT broker could send a device: packets back to back,
/// each decoded under the device's size limit; a message's payload is read
/// as a doorbell, and a decoded message encodes back to itself.
pub fn mqtt(bytes: &[u8]) {
    use crate::fleet::mqtt::{self, Incoming};
    let mut rest = bytes;
    while let Ok(Some((packet, used))) = mqtt::decode(rest, 4096) {
        assert!(used > 0 && used <= rest.len());
        rest = &rest[used..];
        if let Incoming::Publish(p) = packet {
            let _ = mqtt::parse_doorbell(&p.payload);
            for level in p.topic.split('/') {
                let _ = mqtt::check_name("fuzz", level);
            }
            let again = mqtt::encode_publish(&p);
            let decoded = mqtt::decode(&again, usize::MAX).ok().flatten();
            assert_eq!(decoded, Some((Incoming::Publish(p), again.len())));
        }
    }
}
