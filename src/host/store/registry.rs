//! The OCI distribution API, pull side: manifests by tag or digest, and
//! blobs downloaded into the store's blob cache with `Range` resume. Auth
//! follows the registry's 401: anonymous or basic credentials, or a bearer
//! token from the challenge's realm, kept until its `expires_in`. Every
//! document is read with a size cap and checked against its sha256 as it
//! arrives (a `Docker-Content-Digest` header is never trusted); pull.rs
//! turns the result into a store image.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::http::{self, Extra, Reply};
use super::regdoc::{self, Challenge, Descriptor, Document};
use super::transfer::{FetchError, Limits};
use super::{FetchOptions, StoreError};
use crate::manifest::reference::Reference;

/// Failed attempts in a row (no byte gained) before a blob download gives up.
pub const MAX_RETRIES: u32 = 5;
/// First wait between attempts; it doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Bytes between two `fdatasync`s of a `.partial` file, so a power cut
/// loses at most this much of the download (the final sha256 catches the rest).
const SYNC_EVERY: u64 = 8 << 20;
/// Longest credentials file read.
const MAX_CREDENTIALS: u64 = 4096;

/// A client for one repository of one registry, for one image's pull.
pub struct Client<'a> {
    image: &'a str,
    reference: Reference,
    base: String,
    plain_http: bool,
    opts: &'a FetchOptions,
    /// base64 of `user:password`, when the image names a credentials file.
    basic: Option<String>,
    /// The Authorization header in use and when it stops being valid.
    auth: Option<(String, Option<Instant>)>,
    /// The last challenge, to fetch a fresh token when one expires.
    challenge: Option<Challenge>,
}

/// A manifest or index as fetched: its bytes, verified digest and parse.
#[derive(Debug)]
pub struct Fetched {
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
    /// The bytes, for the store to keep.
    pub bytes: Vec<u8>,
    /// The parsed document.
    pub document: Document,
}

impl<'a> Client<'a> {
    /// A client for `reference`; `plain_http` lets it speak http:// (a
    /// loopback or lab registry), `credentials` names a `USER:PASSWORD` file.
    pub fn new(
        image: &'a str,
        reference: Reference,
        plain_http: bool,
        credentials: Option<&Path>,
        opts: &'a FetchOptions,
    ) -> Result<Self, StoreError> {
        let basic = match credentials {
            Some(p) => Some(read_credentials(image, p)?),
            None => None,
        };
        let scheme = if plain_http { "http" } else { "https" };
        Ok(Client {
            base: format!("{scheme}://{}", reference.api_host()),
            image,
            reference,
            plain_http,
            opts,
            basic,
            auth: None,
            challenge: None,
        })
    }

    /// The image (manifest name) this client pulls for.
    pub fn image_name(&self) -> &str {
        self.image
    }

    /// The reference this client pulls.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    fn err(&self, what: impl Into<String>) -> StoreError {
        StoreError::Registry {
            image: self.image.to_owned(),
            reference: self.reference.to_string(),
            what: what.into(),
        }
    }

    fn fetch_err(&self, source: FetchError) -> StoreError {
        StoreError::Fetch {
            image: self.image.to_owned(),
            source,
        }
    }

    /// GET `path` of the registry, answering one 401 with the challenge's
    /// auth; an expired token is renewed first.
    fn get(
        &mut self,
        path: &str,
        limits: &Limits,
        accept: Option<&str>,
        range_from: Option<u64>,
    ) -> Result<Reply, StoreError> {
        let url = format!("{}{path}", self.base);
        if self
            .auth
            .as_ref()
            .is_some_and(|(_, until)| until.is_some_and(|t| Instant::now() >= t))
        {
            self.auth = None;
            if let Some(c) = self.challenge.clone() {
                self.authenticate(&c)?;
            }
        }
        for round in 0..2 {
            let extra = Extra {
                accept,
                authorization: self.auth.as_ref().map(|(h, _)| h.as_str()),
                range_from,
                https_elsewhere: true,
            };
            let reply = send(&url, limits, self.opts, &extra).map_err(|e| self.fetch_err(e))?;
            if reply.status != 401 || round == 1 {
                if reply.status == 401 {
                    return Err(self.err(
                        "access denied (401) with the credentials given; check the credentials file (images.NAME.auth, or --auth) and that the account may pull this repository",
                    ));
                }
                return Ok(reply);
            }
            let header = reply.www_authenticate.clone().ok_or_else(|| {
                self.err(
                    "401 without a WWW-Authenticate challenge; the registry gives no way to log in",
                )
            })?;
            let challenge = regdoc::parse_challenge(&header)
                .map_err(|e| self.err(format!("WWW-Authenticate: {e}")))?;
            self.authenticate(&challenge)?;
            self.challenge = Some(challenge);
        }
        Err(self.err("authentication did not settle"))
    }

    /// Set `auth` for `challenge`: basic credentials, or a bearer token
    /// from the realm (with the credentials, when there are any).
    fn authenticate(&mut self, challenge: &Challenge) -> Result<(), StoreError> {
        match challenge {
            Challenge::Basic => {
                let b = self.basic.clone().ok_or_else(|| {
                    self.err("the registry asks for a user name and password; name a file holding `USER:PASSWORD` in images.NAME.auth (or `berth image pull --auth FILE`)")
                })?;
                self.auth = Some((format!("Basic {b}"), None));
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let https = realm.starts_with("https://");
                // The realm gets the credentials: it must be https, or plain
                // http only when this registry itself was allowed to be.
                let http_ok = self.plain_http && realm.starts_with("http://");
                if !(https || http_ok) {
                    return Err(self.err(format!(
                        "refused token realm `{}`: a registry reached over {} may only send berth to an https realm",
                        realm.escape_debug(),
                        if self.plain_http { "http" } else { "https" }
                    )));
                }
                let scope = scope
                    .clone()
                    .unwrap_or_else(|| format!("repository:{}:pull", self.reference.repository));
                let mut url = realm.clone();
                let mut sep = if url.contains('?') { '&' } else { '?' };
                for (k, v) in [
                    ("service", service.as_deref()),
                    ("scope", Some(scope.as_str())),
                ] {
                    if let Some(v) = v {
                        url.push(sep);
                        url.push_str(k);
                        url.push('=');
                        url.push_str(&query_escape(v));
                        sep = '&';
                    }
                }
                let basic = self.basic.as_ref().map(|b| format!("Basic {b}"));
                let extra = Extra {
                    authorization: basic.as_deref(),
                    https_elsewhere: true,
                    ..Extra::default()
                };
                let limits = document_limits(&self.opts.limits);
                let reply =
                    send(&url, &limits, self.opts, &extra).map_err(|e| self.fetch_err(e))?;
                if reply.status != 200 {
                    return Err(self.err(format!(
                        "token realm `{}` answered {}; check the credentials file (images.NAME.auth)",
                        realm.escape_debug(),
                        reply.status
                    )));
                }
                let bytes = read_capped(reply, regdoc::MAX_TOKEN_ANSWER, &url)
                    .map_err(|e| self.fetch_err(e))?;
                let token = regdoc::parse_token(&bytes)
                    .map_err(|e| self.err(format!("token from `{}`: {e}", realm.escape_debug())))?;
                let until = Instant::now() + Duration::from_secs(token.expires_in);
                self.auth = Some((format!("Bearer {}", token.token), Some(until)));
            }
        }
        Ok(())
    }

    /// The manifest or index `what` (a tag or `sha256:` digest), read up to
    /// `MAX_MANIFEST` bytes; a digest asked for must be the one received.
    pub fn manifest(&mut self, what: &str) -> Result<Fetched, StoreError> {
        let path = format!("/v2/{}/manifests/{what}", self.reference.repository);
        let limits = document_limits(&self.opts.limits);
        let reply = self.get(&path, &limits, Some(regdoc::ACCEPT), None)?;
        match reply.status {
            200 => {}
            404 => {
                return Err(self.err(format!(
                    "manifest `{what}` not found; check the repository and tag (`ref:`)"
                )))
            }
            s => {
                return Err(self.fetch_err(FetchError::Status {
                    url: format!("{}{path}", self.base),
                    status: s,
                }))
            }
        }
        if reply.length.is_some_and(|n| n > regdoc::MAX_MANIFEST) {
            return Err(self.err(format!(
                "manifest `{what}` is larger than {} bytes",
                regdoc::MAX_MANIFEST
            )));
        }
        let content_type = reply.content_type.clone();
        let url = format!("{}{path}", self.base);
        let bytes = read_capped(reply, regdoc::MAX_MANIFEST, &url).map_err(|e| match e {
            FetchError::TooLarge { limit, .. } => {
                self.err(format!("manifest `{what}` is larger than {limit} bytes"))
            }
            e => self.fetch_err(e),
        })?;
        let digest = format!("sha256:{}", crate::model::hex(&Sha256::digest(&bytes)));
        if what.starts_with("sha256:") && digest != what {
            return Err(StoreError::DigestMismatch {
                image: self.image.to_owned(),
                expected: format!("{what} (manifest of `{}`)", self.reference),
                actual: digest,
            });
        }
        let document = regdoc::parse_document(&bytes, content_type.as_deref())
            .map_err(|e| self.err(format!("manifest `{what}`: {e}")))?;
        Ok(Fetched {
            digest,
            bytes,
            document,
        })
    }

    /// A small blob (the image config) into memory, checked against `d`.
    pub fn small_blob(&mut self, d: &Descriptor) -> Result<Vec<u8>, StoreError> {
        if d.size > regdoc::MAX_MANIFEST {
            return Err(self.err(format!(
                "config blob {} is {} bytes, above the cap of {}",
                d.digest,
                d.size,
                regdoc::MAX_MANIFEST
            )));
        }
        let path = format!("/v2/{}/blobs/{}", self.reference.repository, d.digest);
        let reply = self.get(&path, &document_limits(&self.opts.limits), None, None)?;
        if reply.status != 200 {
            return Err(self.blob_status(&path, reply.status));
        }
        let bytes = read_capped(reply, d.size, &path).map_err(|e| self.fetch_err(e))?;
        let actual = crate::model::hex(&Sha256::digest(&bytes));
        if actual != d.hex() {
            return Err(StoreError::DigestMismatch {
                image: self.image.to_owned(),
                expected: format!("{} (config blob)", d.digest),
                actual,
            });
        }
        Ok(bytes)
    }

    fn blob_status(&self, path: &str, status: u16) -> StoreError {
        if status == 404 {
            return self.err(format!("blob `{path}` not found in the registry"));
        }
        self.fetch_err(FetchError::Status {
            url: format!("{}{path}", self.base),
            status,
        })
    }

    /// Download the blob `d` into `dir/<hex>`, resuming `dir/<hex>.partial`
    /// with `Range`; the whole file must hash to the digest. Returns its path.
    /// A cut connection, a 5xx or a stall is retried (backoff, at most
    /// `MAX_RETRIES` attempts in a row without progress).
    pub fn blob(&mut self, d: &Descriptor, dir: &Path) -> Result<PathBuf, StoreError> {
        let done = dir.join(d.hex());
        if done.is_file() && file_digest(&done).ok().as_deref() == Some(d.hex()) {
            return Ok(done);
        }
        let partial = dir.join(format!("{}.partial", d.hex()));
        let io = |op, e| StoreError::io(self.image, op, &partial, e);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&partial)
            .map_err(|e| io("open", e))?;
        if !super::try_lock(&file) {
            return Err(self.err(format!(
                "another berth is downloading `{}`; wait for it, or remove it if none runs",
                partial.display()
            )));
        }
        // The bytes already there from an earlier run (killed, power cut)
        // are hashed first; the rest is hashed as it arrives.
        let mut have = file.metadata().map_err(|e| io("stat", e))?.len();
        if have > d.size {
            file.set_len(0).map_err(|e| io("truncate", e))?;
            have = 0;
        }
        let mut hash = Sha256::new();
        io::copy(&mut (&file).take(have), &mut HashWriter(&mut hash)).map_err(|e| io("read", e))?;
        let mut resumed = have > 0;
        let mut failures = 0;
        loop {
            let before = have;
            let res = if have == d.size {
                Ok(())
            } else {
                self.blob_attempt(d, &mut file, &mut hash, &mut have)
            };
            match res {
                Ok(()) => {
                    let actual = crate::model::hex(&hash.clone().finalize());
                    if actual == d.hex() {
                        break;
                    }
                    file.set_len(0).map_err(|e| io("truncate", e))?;
                    (have, hash) = (0, Sha256::new());
                    // Bytes kept from before a cut or a crash can be bad
                    // (a power cut leaves zeros): start over once.
                    if !resumed {
                        let _ = fs::remove_file(&partial);
                        return Err(StoreError::DigestMismatch {
                            image: self.image.to_owned(),
                            expected: format!("{} (layer blob)", d.digest),
                            actual,
                        });
                    }
                    resumed = false;
                }
                Err(Attempt::Fatal(e)) => {
                    return Err(e);
                }
                Err(Attempt::Retry(e)) => {
                    resumed |= have > 0;
                    failures = if have > before { 0 } else { failures + 1 };
                    if failures >= MAX_RETRIES {
                        return Err(e);
                    }
                    std::thread::sleep(backoff(failures));
                }
            }
        }
        file.sync_data().map_err(|e| io("sync", e))?;
        fs::rename(&partial, &done).map_err(|e| io("rename", e))?;
        Ok(done)
    }

    /// One GET of the rest of a blob, appended to `file`.
    fn blob_attempt(
        &mut self,
        d: &Descriptor,
        file: &mut File,
        hash: &mut Sha256,
        have: &mut u64,
    ) -> Result<(), Attempt> {
        let path = format!("/v2/{}/blobs/{}", self.reference.repository, d.digest);
        let from = (*have > 0).then_some(*have);
        let limits = self.opts.limits.clone();
        let reply = self
            .get(&path, &limits, None, from)
            .map_err(retry_if_network)?;
        let restart = |file: &mut File, hash: &mut Sha256, have: &mut u64| {
            *have = 0;
            *hash = Sha256::new();
            file.set_len(0)
        };
        let io = |e| Attempt::Fatal(StoreError::io(self.image, "write", Path::new(&path), e));
        match reply.status {
            206 if from.is_some() && content_range_starts(&reply, *have, d.size) => {}
            // A registry that ignores Range sends it all: start over cleanly.
            200 => restart(file, hash, have).map_err(io)?,
            206 | 416 => {
                restart(file, hash, have).map_err(io)?;
                return Err(Attempt::Retry(self.err(
                    "the registry answered a range request with another range; starting over",
                )));
            }
            429 | 500..=599 => return Err(Attempt::Retry(self.blob_status(&path, reply.status))),
            s => return Err(Attempt::Fatal(self.blob_status(&path, s))),
        }
        let mut body = reply.body;
        let mut buf = vec![0u8; 128 * 1024];
        let mut since_sync = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let source = FetchError::from_io(e).unwrap_or_else(|source| FetchError::Body {
                        url: format!("{}{path}", self.base),
                        source,
                    });
                    return Err(Attempt::Retry(self.fetch_err(source)));
                }
            };
            let n64 = u64::try_from(n).unwrap_or(u64::MAX);
            if *have + n64 > d.size {
                let _ = file.set_len(0);
                return Err(Attempt::Fatal(self.err(format!(
                    "blob {} is larger than the {} bytes its manifest says",
                    d.digest, d.size
                ))));
            }
            file.write_all(&buf[..n]).map_err(io)?;
            hash.update(&buf[..n]);
            *have += n64;
            since_sync += n64;
            if since_sync >= SYNC_EVERY {
                file.sync_data().map_err(io)?;
                since_sync = 0;
            }
        }
        if *have < d.size {
            return Err(Attempt::Retry(self.err(format!(
                "blob {} ended after {} of {} bytes",
                d.digest, have, d.size
            ))));
        }
        Ok(())
    }
}

/// How one attempt at a blob failed.
enum Attempt {
    /// Worth another try: the network, a 5xx.
    Retry(StoreError),
    /// Not: a 404, a blob larger than it should be, the disk.
    Fatal(StoreError),
}

fn retry_if_network(e: StoreError) -> Attempt {
    match &e {
        StoreError::Fetch {
            source:
                FetchError::Unreachable { .. }
                | FetchError::Body { .. }
                | FetchError::Stalled { .. }
                | FetchError::Deadline { .. }
                | FetchError::TooSlow { .. }
                | FetchError::Tls { .. }
                | FetchError::Protocol { .. },
            ..
        } => Attempt::Retry(e),
        _ => Attempt::Fatal(e),
    }
}

/// The wait before attempt `failures` + 1.
fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << failures.min(6))
        .min(MAX_BACKOFF)
}

/// Whether a 206's `Content-Range: bytes START-END/TOTAL` starts where the
/// partial file ends and has the blob's size.
fn content_range_starts(reply: &Reply, have: u64, size: u64) -> bool {
    let Some(v) = reply.content_range.as_deref() else {
        return false;
    };
    let Some(spec) = v.trim().strip_prefix("bytes ") else {
        return false;
    };
    let Some((range, total)) = spec.split_once('/') else {
        return false;
    };
    let start = range
        .split('-')
        .next()
        .and_then(|s| s.trim().parse::<u64>().ok());
    start == Some(have) && (total.trim() == "*" || total.trim().parse::<u64>().ok() == Some(size))
}

/// One request through the shared client, with TLS from the CA bundle.
fn send(
    url: &str,
    limits: &Limits,
    opts: &FetchOptions,
    extra: &Extra<'_>,
) -> Result<Reply, FetchError> {
    #[cfg(feature = "tls")]
    let tls = || super::tls::client_config(&opts.ca_bundle);
    #[cfg(not(feature = "tls"))]
    let tls = || -> Result<(), FetchError> {
        let _ = opts;
        Err(FetchError::NotEnabled {
            url: url.to_owned(),
            feature: "tls",
        })
    };
    http::send(url, limits, &tls, extra)
}

/// A small document's limits: one deadline over all of it, framed bodies.
fn document_limits(l: &Limits) -> Limits {
    Limits {
        deadline_covers_body: true,
        min_rate: None,
        require_framing: true,
        ..l.clone()
    }
}

/// The body of `reply`, at most `max` bytes.
fn read_capped(reply: Reply, max: u64, url: &str) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::new();
    reply
        .body
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            FetchError::from_io(e).unwrap_or_else(|source| FetchError::Body {
                url: url.to_owned(),
                source,
            })
        })?;
    if u64::try_from(out.len()).unwrap_or(u64::MAX) > max {
        return Err(FetchError::TooLarge {
            url: url.to_owned(),
            limit: max,
        });
    }
    Ok(out)
}

/// Percent-encode a query value (RFC 3986 unreserved characters stay).
fn query_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// base64 of the first line of a `USER:PASSWORD` file.
fn read_credentials(image: &str, path: &Path) -> Result<String, StoreError> {
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(MAX_CREDENTIALS).read_to_string(&mut text))
        .map_err(|e| StoreError::io(image, "read credentials", path, e))?;
    let line = text.lines().next().unwrap_or_default().trim_end();
    if !line.contains(':') {
        return Err(StoreError::Registry {
            image: image.to_owned(),
            reference: "-".into(),
            what: format!(
                "credentials file `{}` must hold one line `USER:PASSWORD`",
                path.display()
            ),
        });
    }
    Ok(crate::fleet::minisign::base64_encode(line.as_bytes()))
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn file_digest(p: &Path) -> io::Result<String> {
    super::digests::sha256_file(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_and_backoff() {
        assert_eq!(
            query_escape("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
        assert_eq!(backoff(0), FIRST_BACKOFF);
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
