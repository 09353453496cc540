//! A small HTTP/1.1 client for image and manifest downloads: GET only, with
//! redirects, Content-Length or chunked bodies, and TLS through rustls with the
//! CA bundle the caller gives. A general-purpose client would pull in URL and
//! IDNA tables and a compiled-in root store, which a router's flash pays for;
//! berth needs only this.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a GET failed.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// Not an http:// or https:// URL this client can parse.
    BadUrl,
    /// No connection: name resolution, refused, timeout.
    Unreachable(io::Error),
    /// The TLS handshake or certificate check failed.
    Tls(io::Error),
    /// The server answered with a status other than 2xx (after redirects).
    Status(u16),
    /// The server's answer is not HTTP this client understands.
    Protocol(String),
    /// The https setup itself failed (CA bundle).
    Setup(super::StoreError),
}

/// A response whose status was 2xx.
pub(crate) struct Response {
    /// Content-Length, when the server sent one.
    pub length: Option<u64>,
    /// The body; it fails with UnexpectedEof if the connection drops early.
    pub body: Box<dyn Read + Send>,
}

/// Makes the rustls client configuration when an https URL needs it.
#[cfg(feature = "tls")]
pub(crate) type TlsConfig<'a> =
    &'a dyn Fn() -> Result<std::sync::Arc<rustls::ClientConfig>, super::StoreError>;
/// Without the `tls` feature there is nothing to configure.
#[cfg(not(feature = "tls"))]
pub(crate) type TlsConfig<'a> = &'a dyn Fn() -> Result<(), super::StoreError>;

const MAX_REDIRECTS: usize = 5;
const MAX_HEADER_LINE: usize = 8192;

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// GET `url`, following up to five redirects.
pub(crate) fn get(url: &str, timeout: Duration, tls: TlsConfig<'_>) -> Result<Response, HttpError> {
    let mut url = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let target = Url::parse(&url).ok_or(HttpError::BadUrl)?;
        let stream = connect(&target, timeout, tls)?;
        let mut reader = BufReader::new(stream);
        let head = request(&mut reader, &target)?;
        if (300..400).contains(&head.status) {
            if let Some(location) = head.location {
                url = target.join(&location);
                continue;
            }
        }
        if !(200..300).contains(&head.status) {
            return Err(HttpError::Status(head.status));
        }
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
        return Ok(Response {
            length: if head.chunked { None } else { head.length },
            body,
        });
    }
    Err(HttpError::Protocol(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// The parts of an http(s) URL a GET needs.
#[derive(Debug, PartialEq)]
struct Url {
    https: bool,
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    path: String,
}

impl Url {
    fn parse(url: &str) -> Option<Url> {
        let (https, rest) = match url.split_once("://")? {
            ("http", r) => (false, r),
            ("https", r) => (true, r),
            _ => return None,
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        // Credentials in URLs are not supported: refuse rather than leak them.
        if authority.contains('@') || authority.is_empty() {
            return None;
        }
        let default = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None if after.is_empty() => default,
                None => return None,
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().ok()?),
                None => (authority.to_owned(), default),
            }
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c))
        {
            return None;
        }
        Some(Url {
            https,
            host,
            port,
            path,
        })
    }

    /// The Host header's value.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// A redirect target: absolute, or a path on the same server.
    fn join(&self, location: &str) -> String {
        if location.contains("://") {
            return location.to_owned();
        }
        let scheme = if self.https { "https" } else { "http" };
        let path = if location.starts_with('/') {
            location.to_owned()
        } else {
            let dir = self.path.rsplit_once('/').map_or("", |(d, _)| d);
            format!("{dir}/{location}")
        };
        format!("{scheme}://{}{path}", self.host_header())
    }
}

fn connect(url: &Url, timeout: Duration, tls: TlsConfig<'_>) -> Result<Box<dyn Stream>, HttpError> {
    // The https setup (CA bundle) is checked before any connection is made.
    let config = if url.https {
        Some(tls().map_err(HttpError::Setup)?)
    } else {
        None
    };
    let addrs = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(HttpError::Unreachable)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => {
                tcp.set_read_timeout(Some(timeout))
                    .map_err(HttpError::Unreachable)?;
                tcp.set_write_timeout(Some(timeout))
                    .map_err(HttpError::Unreachable)?;
                return wrap(tcp, url, config);
            }
            Err(e) => last = e,
        }
    }
    Err(HttpError::Unreachable(last))
}

#[cfg(feature = "tls")]
fn wrap(
    mut tcp: TcpStream,
    url: &Url,
    config: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Result<Box<dyn Stream>, HttpError> {
    let Some(config) = config else {
        return Ok(Box::new(tcp));
    };
    let name =
        rustls::pki_types::ServerName::try_from(url.host.clone()).map_err(|_| HttpError::BadUrl)?;
    let mut conn = rustls::ClientConnection::new(config, name)
        .map_err(|e| HttpError::Tls(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    // Finish the handshake here, so a certificate problem is a TLS error and
    // not a read error later in the body.
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(HttpError::Tls)?;
    }
    Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
}

#[cfg(not(feature = "tls"))]
fn wrap(tcp: TcpStream, url: &Url, _config: Option<()>) -> Result<Box<dyn Stream>, HttpError> {
    if url.https {
        return Err(HttpError::Tls(io::Error::new(
            io::ErrorKind::Unsupported,
            "https needs the `tls` feature",
        )));
    }
    Ok(Box::new(tcp))
}

/// Status and the headers that matter.
struct Head {
    status: u16,
    length: Option<u64>,
    chunked: bool,
    location: Option<String>,
}

fn request(reader: &mut BufReader<Box<dyn Stream>>, url: &Url) -> Result<Head, HttpError> {
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: berth/{}\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    let stream = reader.get_mut();
    stream
        .write_all(req.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(HttpError::Unreachable)?;
    let bad = |what: &str| HttpError::Protocol(format!("bad response from the server: {what}"));
    let status_line = line(reader).map_err(HttpError::Unreachable)?;
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
    };
    loop {
        let l = line(reader).map_err(HttpError::Unreachable)?;
        if l.is_empty() {
            return Ok(head);
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(bad("a header without `:`"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                head.length = Some(value.parse().map_err(|_| bad("Content-Length"))?)
            }
            "transfer-encoding" => head.chunked = value.to_ascii_lowercase().contains("chunked"),
            "location" => head.location = Some(value.to_owned()),
            _ => {}
        }
    }
}

/// One CRLF- (or LF-) terminated line, without its end; bounded in length.
fn line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(u64::try_from(MAX_HEADER_LINE).unwrap_or(u64::MAX))
        .read_until(b'\n', &mut buf)?;
    if n == 0 || buf.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed inside the response head",
        ));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a header that is not UTF-8"))
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
            let size_line = line(&mut self.inner)?;
            let hex = size_line.split(';').next().unwrap_or_default().trim();
            self.left = u64::from_str_radix(hex, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a bad chunk size"))?;
            if self.left == 0 {
                // Trailers, up to the empty line.
                while !line(&mut self.inner)?.is_empty() {}
                self.done = true;
                return Ok(0);
            }
        }
        let n = read_bounded(&mut self.inner, &mut self.left, buf)?;
        if self.left == 0 && !line(&mut self.inner)?.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a chunk without its CRLF",
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:8080/a/b.tar.gz?x=1").expect("url");
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.path.as_str()),
            (false, "127.0.0.1", 8080, "/a/b.tar.gz?x=1")
        );
        let u = Url::parse("https://example.net").expect("url");
        assert_eq!(
            (u.port, u.path.as_str(), u.host_header()),
            (443, "/", "example.net".to_string())
        );
        let u = Url::parse("http://[::1]:81/x").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.host_header()),
            ("::1", 81, "[::1]:81".to_string())
        );
        for bad in [
            "ftp://x/y",
            "http://user:pw@x/y",
            "http://",
            "http://x:port/",
            "http://a b/",
        ] {
            assert!(Url::parse(bad).is_none(), "{bad}");
        }
        let u = Url::parse("http://h:8/dir/file").expect("url");
        assert_eq!(u.join("/other"), "http://h:8/other");
        assert_eq!(u.join("next"), "http://h:8/dir/next");
        assert_eq!(u.join("https://x/y"), "https://x/y");
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
        .expect("chunked");
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
        .expect("sized");
        assert_eq!(whole, b"abc");
    }
}
