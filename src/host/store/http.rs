//! A small HTTP/1.1 client for image and manifest downloads: GET only, with
//! redirects, Content-Length or chunked bodies, and TLS through rustls with the
//! CA bundle the caller gives. A general-purpose client would pull in URL and
//! IDNA tables and a compiled-in root store, which a router's flash pays for;
//! berth needs only this.
//!
//! Every request is bounded against a hostile or broken server (the limits
//! are `transfer::Limits`): one deadline from the first connect over every
//! redirect, TLS and the response head (and the body, for a manifest); a
//! minimum-throughput rule on an image's body; a longest wait per read; a
//! cap on the head's headers and bytes. Redirects never leave https for http.
//!
//! A conditional GET sends the validators of the last answer (`If-None-Match`,
//! `If-Modified-Since`); a 304 then ends the exchange before any body. The
//! validators go to every hop of a redirect chain and those of the final
//! answer are kept for the URL asked for: a chain that stays the same (a CDN's
//! usual case) revalidates, one that changes costs at most a full download.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Instant;

use super::timed::{is_timeout, Clock, Timed};
use super::transfer::{FetchError, Limits, Validators};
use super::url::Url;

/// A response whose status was 2xx.
pub(crate) struct Response {
    /// Content-Length, when the server sent one.
    pub length: Option<u64>,
    /// The response's ETag and Last-Modified, those that are well formed.
    pub validators: Validators,
    /// The body; it fails with UnexpectedEof if the connection drops early,
    /// and with a `FetchError` inside the `io::Error` when a limit is hit.
    pub body: Box<dyn Read + Send>,
}

/// Makes the rustls client configuration when an https URL needs it.
#[cfg(feature = "tls")]
pub(crate) type TlsConfig<'a> =
    &'a dyn Fn() -> Result<std::sync::Arc<rustls::ClientConfig>, FetchError>;
/// Without the `tls` feature there is nothing to configure.
#[cfg(not(feature = "tls"))]
pub(crate) type TlsConfig<'a> = &'a dyn Fn() -> Result<(), FetchError>;

/// Redirects followed before giving up (browsers follow 20; a download
/// server needs one or two).
pub(crate) const MAX_REDIRECTS: usize = 5;
/// Longest header line or chunk-size line.
const MAX_HEADER_LINE: usize = 8192;
/// Longest ETag or Last-Modified kept (an HTTP date is 29 bytes; CDN ETags
/// are a hash in quotes, well under this).
pub(crate) const MAX_VALIDATOR: usize = 256;

/// Whether a validator may be kept and sent back verbatim: short, and only
/// visible ASCII and spaces, so it can never end or add a header line.
pub(crate) fn validator_ok(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_VALIDATOR
        && v.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

/// The connection under TLS (or plain): reads and writes go through
/// [`Timed`], which enforces the time limits.
trait Stream: Read + Write + Send {
    fn timed(&mut self) -> &mut Timed;
}

impl Stream for Timed {
    fn timed(&mut self) -> &mut Timed {
        self
    }
}

#[cfg(feature = "tls")]
impl Stream for rustls::StreamOwned<rustls::ClientConnection, Timed> {
    fn timed(&mut self) -> &mut Timed {
        &mut self.sock
    }
}

fn unasked_304(url: &str) -> FetchError {
    FetchError::UnaskedNotModified {
        url: url.to_owned(),
    }
}

/// GET `url` within `limits`, following up to five redirects, unless it
/// is unchanged since `since` (empty: an unconditional GET): `None` for a
/// 304, which reads no body.
pub(crate) fn get_if(
    url: &str,
    limits: &Limits,
    tls: TlsConfig<'_>,
    since: &Validators,
) -> Result<Option<Response>, FetchError> {
    let Some(reply) = exchange(url, limits, tls, since, &Extra::default())? else {
        return Ok(None);
    };
    if !(200..300).contains(&reply.status) {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: reply.status,
        });
    }
    Ok(Some(Response {
        length: reply.length,
        validators: reply.validators,
        body: reply.body,
    }))
}

/// What a registry request adds to a plain GET (registry.rs).
#[derive(Debug, Default)]
pub(crate) struct Extra<'a> {
    /// `Accept`: the media types asked for.
    pub accept: Option<&'a str>,
    /// `Authorization`, sent only to the origin (scheme, host, port) asked
    /// for: a redirect to another host, a registry's blob CDN with a signed
    /// URL, never sees the registry's credentials.
    pub authorization: Option<&'a str>,
    /// `Range: bytes=N-`, to resume a blob.
    pub range_from: Option<u64>,
    /// A redirect to another origin must be https, whatever the first hop.
    pub https_elsewhere: bool,
}

/// A final answer of any status (redirects followed), for callers that act
/// on 401 or 206 themselves.
#[cfg_attr(not(feature = "registry"), allow(dead_code))]
pub(crate) struct Reply {
    /// The status code.
    pub status: u16,
    /// Content-Length, when the server sent one and the body is not chunked.
    pub length: Option<u64>,
    /// `Content-Type`, parameters included.
    #[cfg(feature = "registry")]
    pub content_type: Option<String>,
    /// `WWW-Authenticate` (the first one), for a 401.
    #[cfg(feature = "registry")]
    pub www_authenticate: Option<String>,
    /// `Content-Range`, for a 206.
    #[cfg(feature = "registry")]
    pub content_range: Option<String>,
    /// ETag and Last-Modified.
    pub validators: Validators,
    /// The body, framed as the head says (see [`Response::body`]).
    pub body: Box<dyn Read + Send>,
}

/// GET `url` with `extra`'s headers: the final answer, whatever its status.
#[cfg(feature = "registry")]
pub(crate) fn send(
    url: &str,
    limits: &Limits,
    tls: TlsConfig<'_>,
    extra: &Extra<'_>,
) -> Result<Reply, FetchError> {
    exchange(url, limits, tls, &Validators::default(), extra)?.ok_or_else(|| unasked_304(url))
}

/// The request loop both entry points share: connect, send, read the head,
/// follow redirects; `None` for an asked-for 304.
fn exchange(
    url: &str,
    limits: &Limits,
    tls: TlsConfig<'_>,
    since: &Validators,
    extra: &Extra<'_>,
) -> Result<Option<Reply>, FetchError> {
    let deadline = Instant::now() + limits.deadline;
    let mut target = Url::parse(url).ok_or_else(|| FetchError::BadUrl {
        url: url.to_owned(),
    })?;
    let origin = target.origin();
    let mut visited = vec![target.to_string()];
    loop {
        let clock = Clock {
            url: url.to_owned(),
            limits: limits.clone(),
            deadline,
            body: None,
        };
        let stream = connect(&target, clock, tls)?;
        let mut reader = BufReader::new(stream);
        let same_origin = target.origin() == origin;
        let auth = extra.authorization.filter(|_| same_origin);
        let (head, asked) = request(&mut reader, &target, url, limits, since, extra, auth)?;
        // Before redirects: a 304 may carry a Location that means nothing here.
        if head.status == 304 {
            return if asked {
                Ok(None)
            } else {
                Err(unasked_304(url))
            };
        }
        if let Some(location) = head
            .location
            .clone()
            .filter(|_| (300..400).contains(&head.status))
        {
            target = redirect(url, &target, &location, &mut visited)?;
            if extra.https_elsewhere && !target.https && target.origin() != origin {
                return Err(FetchError::Downgrade {
                    url: url.to_owned(),
                    location: target.to_string(),
                });
            }
            continue;
        }
        let ok = (200..300).contains(&head.status);
        if ok && limits.require_framing && !head.chunked && head.length.is_none() {
            return Err(FetchError::Protocol {
                url: url.to_owned(),
                what: "neither Content-Length nor chunked framing, so a cut connection \
                       could not be told from the end of the document"
                    .into(),
            });
        }
        reader.get_mut().timed().start_body(Instant::now());
        let body: Box<dyn Read + Send> = match (head.chunked, head.length) {
            (true, _) => Box::new(Chunked {
                inner: reader,
                left: 0,
                done: false,
            }),
            (false, Some(n)) => Box::new(Sized {
                inner: reader,
                left: n,
            }),
            (false, None) => Box::new(reader),
        };
        return Ok(Some(Reply {
            status: head.status,
            length: if head.chunked { None } else { head.length },
            #[cfg(feature = "registry")]
            content_type: head.content_type,
            #[cfg(feature = "registry")]
            www_authenticate: head.www_authenticate,
            #[cfg(feature = "registry")]
            content_range: head.content_range,
            validators: Validators {
                etag: head.etag,
                last_modified: head.last_modified,
            },
            body,
        }));
    }
}

/// The next URL of a redirect chain: resolved, never from https to http,
/// never one already visited, at most `MAX_REDIRECTS` of them.
fn redirect(
    url: &str,
    from: &Url,
    location: &str,
    visited: &mut Vec<String>,
) -> Result<Url, FetchError> {
    let next = from.join(location).ok_or_else(|| FetchError::BadRedirect {
        url: url.to_owned(),
        // Server text: escaped, so it cannot drive the terminal.
        location: location.escape_debug().to_string(),
    })?;
    if from.https && !next.https {
        return Err(FetchError::Downgrade {
            url: url.to_owned(),
            location: next.to_string(),
        });
    }
    let text = next.to_string();
    if visited.contains(&text) {
        visited.push(text);
        return Err(FetchError::RedirectLoop {
            url: url.to_owned(),
            chain: visited.join(" -> "),
        });
    }
    if visited.len() > MAX_REDIRECTS {
        return Err(FetchError::TooManyRedirects {
            url: url.to_owned(),
            max: MAX_REDIRECTS,
        });
    }
    visited.push(text);
    Ok(next)
}

/// The `FetchError` an I/O error carries (a limit), else `Unreachable`.
fn io_error(url: &str, e: io::Error) -> FetchError {
    FetchError::from_io(e).unwrap_or_else(|source| FetchError::Unreachable {
        url: url.to_owned(),
        source,
    })
}

fn connect(target: &Url, clock: Clock, tls: TlsConfig<'_>) -> Result<Box<dyn Stream>, FetchError> {
    let url = clock.url.clone();
    // The https setup (CA bundle) is checked before any connection is made.
    let config = if target.https { Some(tls()?) } else { None };
    let addrs = resolve(target, &clock)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for addr in addrs {
        let wait = clock.wait(Instant::now())?;
        match TcpStream::connect_timeout(&addr, wait) {
            Ok(tcp) => return wrap(Timed::new(tcp, clock), target, config),
            Err(e) if is_timeout(&e) && clock.wait(Instant::now()).is_err() => {
                return Err(clock.deadline_error())
            }
            Err(e) => last = e,
        }
    }
    Err(FetchError::Unreachable { url, source: last })
}

/// The addresses of `target`'s host, within the deadline. getaddrinfo has
/// no timeout of its own (a dead DNS server costs resolv.conf's tries times
/// its timeout), so it runs on a helper thread; one that outlives the
/// deadline ends on its own when the resolver gives up.
fn resolve(target: &Url, clock: &Clock) -> Result<Vec<std::net::SocketAddr>, FetchError> {
    let (host, port) = (target.host.clone(), target.port);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let found = (host.as_str(), port)
            .to_socket_addrs()
            .map(Iterator::collect::<Vec<_>>);
        // The caller may have stopped waiting: nothing to do then.
        let _ = tx.send(found);
    });
    match rx.recv_timeout(clock.wait(Instant::now())?) {
        Ok(found) => found.map_err(|e| io_error(&clock.url, e)),
        Err(_) => Err(clock.timed_out(Instant::now())),
    }
}

#[cfg(feature = "tls")]
fn wrap(
    mut timed: Timed,
    target: &Url,
    config: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Result<Box<dyn Stream>, FetchError> {
    let Some(config) = config else {
        return Ok(Box::new(timed));
    };
    let url = timed.clock.url.clone();
    let bad_url = || FetchError::BadUrl { url: url.clone() };
    let name =
        rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|_| bad_url())?;
    let tls_err = |e: io::Error| {
        FetchError::from_io(e).unwrap_or_else(|source| FetchError::Tls {
            url: url.clone(),
            source: super::tls::explain(source),
        })
    };
    let mut conn = rustls::ClientConnection::new(config, name)
        .map_err(|e| tls_err(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    // Finish the handshake here, so a certificate problem is a TLS error and
    // not a read error later in the body.
    while conn.is_handshaking() {
        conn.complete_io(&mut timed).map_err(tls_err)?;
    }
    Ok(Box::new(rustls::StreamOwned::new(conn, timed)))
}

#[cfg(not(feature = "tls"))]
fn wrap(timed: Timed, target: &Url, _config: Option<()>) -> Result<Box<dyn Stream>, FetchError> {
    if target.https {
        return Err(FetchError::NotEnabled {
            url: timed.clock.url.clone(),
            feature: "tls",
        });
    }
    Ok(Box::new(timed))
}

/// Status and the headers that matter.
#[derive(Debug)]
struct Head {
    status: u16,
    length: Option<u64>,
    chunked: bool,
    location: Option<String>,
    etag: Option<String>,
    last_modified: Option<String>,
    #[cfg(feature = "registry")]
    content_type: Option<String>,
    #[cfg(feature = "registry")]
    www_authenticate: Option<String>,
    #[cfg(feature = "registry")]
    content_range: Option<String>,
}

/// Send the request and read the head; `true` beside it when a validator
/// was sent (a malformed one is left out, as if unknown).
fn request(
    reader: &mut BufReader<Box<dyn Stream>>,
    target: &Url,
    url: &str,
    limits: &Limits,
    since: &Validators,
    extra: &Extra<'_>,
    auth: Option<&str>,
) -> Result<(Head, bool), FetchError> {
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: berth/{}\r\nAccept-Encoding: identity\r\nConnection: close\r\n",
        target.path,
        target.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    // The validators are the server's text, sent back only when harmless;
    // the registry headers are berth's own, checked anyway so none can end
    // the header line.
    let mut asked = false;
    let range = extra.range_from.map(|n| format!("bytes={n}-"));
    for (i, (name, value)) in [
        ("If-None-Match", since.etag.as_deref()),
        ("If-Modified-Since", since.last_modified.as_deref()),
        ("Accept", extra.accept),
        ("Authorization", auth),
        ("Range", range.as_deref()),
    ]
    .into_iter()
    .enumerate()
    {
        let Some(v) = value else { continue };
        let ok = if i < 2 {
            validator_ok(v)
        } else {
            v.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        };
        if ok {
            req += &format!("{name}: {v}\r\n");
            asked |= i < 2;
        }
    }
    req += "\r\n";
    let stream = reader.get_mut();
    stream
        .write_all(req.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| io_error(url, e))?;
    let head = read_head(reader, limits).map_err(|e| match e {
        HeadError::Io(e) => io_error(url, e),
        HeadError::Bad(what) => FetchError::Protocol {
            url: url.to_owned(),
            what,
        },
    })?;
    Ok((head, asked))
}

/// A whole response in `bytes` read as `get` reads one (status line,
/// headers, framing, body), with `limits` but no socket or clock; a
/// redirect's `Location` is resolved against `base`. The fuzz target's entry.
#[doc(hidden)]
pub fn parse_response(bytes: &[u8], base: &str, limits: &Limits) -> io::Result<u64> {
    let mut r = bytes;
    let head = read_head(&mut r, limits).map_err(|e| match e {
        HeadError::Io(e) => e,
        HeadError::Bad(what) => io::Error::new(io::ErrorKind::InvalidData, what),
    })?;
    if let (Some(location), Some(base)) = (&head.location, Url::parse(base)) {
        let _ = base.join(location);
    }
    let mut body: Box<dyn Read + '_> = match (head.chunked, head.length) {
        (true, _) => Box::new(Chunked {
            inner: r,
            left: 0,
            done: false,
        }),
        (false, Some(n)) => Box::new(Sized { inner: r, left: n }),
        (false, None) => Box::new(r),
    };
    io::copy(&mut body, &mut io::sink())
}

/// Why a response head was not read.
#[derive(Debug)]
enum HeadError {
    Io(io::Error),
    Bad(String),
}

/// Status line and headers, within `limits.max_headers` and `limits.max_head`.
fn read_head<R: BufRead>(r: &mut R, limits: &Limits) -> Result<Head, HeadError> {
    let mut left = limits.max_head;
    let mut next_line = |r: &mut R| -> Result<String, HeadError> {
        let max = left.min(MAX_HEADER_LINE);
        match line(r, max).map_err(HeadError::Io)? {
            Line::Text(text, n) => {
                left -= n;
                Ok(text)
            }
            Line::TooLong if max == left => Err(HeadError::Bad(format!(
                "a response head larger than {} bytes",
                limits.max_head
            ))),
            Line::TooLong => Err(HeadError::Bad(format!(
                "a header line longer than {MAX_HEADER_LINE} bytes"
            ))),
        }
    };
    let bad = |what: &str| HeadError::Bad(what.to_owned());
    let status_line = next_line(r)?;
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if !version.starts_with("HTTP/1.") {
        return Err(bad("no HTTP/1.x status line"));
    }
    let status: u16 = code.parse().map_err(|_| bad("no status code"))?;
    let mut head = Head {
        status,
        length: None,
        chunked: false,
        location: None,
        etag: None,
        last_modified: None,
        #[cfg(feature = "registry")]
        content_type: None,
        #[cfg(feature = "registry")]
        www_authenticate: None,
        #[cfg(feature = "registry")]
        content_range: None,
    };
    let mut count = 0;
    loop {
        let l = next_line(r)?;
        if l.is_empty() {
            return Ok(head);
        }
        count += 1;
        if count > limits.max_headers {
            return Err(HeadError::Bad(format!(
                "more than {} headers",
                limits.max_headers
            )));
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(bad("a header without `:`"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                // RFC 9110 section 8.6: a list of equal values (or the
                // same header twice) is one length; different ones are an
                // attack on framing and refused.
                for v in value.split(',') {
                    let n: u64 = v.trim().parse().map_err(|_| bad("a bad Content-Length"))?;
                    match head.length {
                        Some(old) if old != n => {
                            return Err(HeadError::Bad(format!(
                                "conflicting Content-Length headers ({old} and {n})"
                            )))
                        }
                        _ => head.length = Some(n),
                    }
                }
            }
            "transfer-encoding" => {
                if !value.eq_ignore_ascii_case("chunked") {
                    return Err(HeadError::Bad(format!(
                        "Transfer-Encoding `{}`; only chunked is supported",
                        value.escape_debug()
                    )));
                }
                head.chunked = true;
            }
            "location" => head.location = Some(value.to_owned()),
            // A validator too long or odd to send back is just not kept.
            "etag" => head.etag = validator_ok(value).then(|| value.to_owned()),
            "last-modified" => head.last_modified = validator_ok(value).then(|| value.to_owned()),
            #[cfg(feature = "registry")]
            "content-type" => head.content_type = Some(value.to_owned()),
            #[cfg(feature = "registry")]
            "content-range" => head.content_range = Some(value.to_owned()),
            #[cfg(feature = "registry")]
            "www-authenticate" if head.www_authenticate.is_none() => {
                head.www_authenticate = Some(value.to_owned())
            }
            _ => {}
        }
    }
}

/// A line read by [`line`].
enum Line {
    /// The text without its end, and the bytes it took.
    Text(String, usize),
    /// No line end within the limit.
    TooLong,
}

/// One CRLF- (or LF-) terminated line of at most `max` bytes, end included.
fn line<R: BufRead>(r: &mut R, max: usize) -> io::Result<Line> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(u64::try_from(max).unwrap_or(u64::MAX))
        .read_until(b'\n', &mut buf)?;
    if buf.last() != Some(&b'\n') {
        if n == max {
            return Ok(Line::TooLong);
        }
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed inside the response head",
        ));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(|text| Line::Text(text, n))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a header that is not UTF-8"))
}

/// A chunk-size or trailer line: too long is bad data.
fn chunk_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let got = line(r, MAX_HEADER_LINE).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => early_eof(),
        _ => e,
    })?;
    match got {
        Line::Text(text, _) => Ok(text),
        Line::TooLong => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a chunk line longer than 8 KiB",
        )),
    }
}

fn early_eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection closed before the whole body arrived",
    )
}

/// A body of known length: ending early is an error, not a short file.
struct Sized<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Sized<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        read_bounded(&mut self.inner, &mut self.left, buf)
    }
}

/// Read at most `left` bytes into `buf`, counting them off; the stream ending
/// first is an error.
fn read_bounded<R: Read>(inner: &mut R, left: &mut u64, buf: &mut [u8]) -> io::Result<usize> {
    let want = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
    let n = inner.read(&mut buf[..want])?;
    if n == 0 {
        return Err(early_eof());
    }
    *left -= u64::try_from(n).unwrap_or(*left);
    Ok(n)
}

/// A `Transfer-Encoding: chunked` body.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let size_line = chunk_line(&mut self.inner)?;
            let hex = size_line.split(';').next().unwrap_or_default().trim();
            self.left = u64::from_str_radix(hex, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a bad chunk size"))?;
            if self.left == 0 {
                // Trailers, up to the empty line; as many as headers may be.
                for _ in 0..=super::transfer::MAX_HEADERS {
                    if chunk_line(&mut self.inner)?.is_empty() {
                        self.done = true;
                        return Ok(0);
                    }
                }
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "too many trailers",
                ));
            }
        }
        let n = read_bounded(&mut self.inner, &mut self.left, buf)?;
        if self.left == 0 && !chunk_line(&mut self.inner)?.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a chunk without its CRLF",
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
#[cfg(feature = "registry")]
#[path = "http_extra_tests.rs"]
mod extra_tests;
#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
