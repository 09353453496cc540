//! What one download may cost and why it failed: the time limits and head
//! limits http.rs enforces (kept here, outside the `http` feature, because
//! `FetchOptions` carries them in every build) and [`FetchError`], the
//! error of fetching one URL, which the image store wraps with the image's
//! name and `berth apply` prints for a fleet manifest as it is.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Default deadline: connect, TLS and the response head (and, for a
/// manifest, the whole body). A fleet server that has not answered in a
/// minute is down; `apply` must not hold its lock forever for it.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
/// Default longest wait for any single read.
pub const DEFAULT_STALL: Duration = Duration::from_secs(30);
/// Default minimum body throughput of an image download: 1 KiB/s. A 2G or
/// 3G modem link does 10 KiB/s and more; a server below this for the whole
/// window is dripping, not slow.
pub const DEFAULT_MIN_RATE: u64 = 1024;
/// The default rate window and grace period.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(30);
/// Headers a response head may have (RFC 9110 sets no limit; real servers
/// send a dozen or two).
pub const MAX_HEADERS: usize = 100;
/// Bytes a response head may have, status line and final empty line included.
pub const MAX_HEAD: usize = 64 * 1024;

/// The minimum-throughput rule of a body: after `grace` from the end of the
/// head, the average over the last `window` must stay at or above
/// `bytes_per_sec` (judged only once a whole window has passed, so the
/// first judgement comes after the longer of the two). A slow link that
/// keeps moving finishes, however long the image; a server sending a byte a
/// second fails once the grace is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    /// The lowest average accepted, in bytes per second.
    pub bytes_per_sec: u64,
    /// The sliding window the average is taken over.
    pub window: Duration,
    /// Time after the head during which the rule does not apply yet (TCP
    /// slow start, a server still opening the file).
    pub grace: Duration,
}

/// The limits of one GET, redirects included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// From the first connect: connect, TLS handshake and the response head
    /// must be done by then, over every redirect.
    pub deadline: Duration,
    /// The deadline covers the body too (manifests). Images leave it to
    /// `min_rate`, since a large image on a slow link takes longer.
    pub deadline_covers_body: bool,
    /// The body's throughput rule; `None`: no rule (only `stall` and, when it
    /// covers the body, the deadline).
    pub min_rate: Option<MinRate>,
    /// Longest wait for any single read or write.
    pub stall: Duration,
    /// Headers the response head may have.
    pub max_headers: usize,
    /// Bytes the response head may have.
    pub max_head: usize,
    /// Refuse a body that ends at connection close (no Content-Length, not
    /// chunked): a cut connection would look like a whole document. Images
    /// do not need it: their sha256 catches a cut.
    pub require_framing: bool,
}

impl Limits {
    /// The default throughput rule of an image's body.
    pub fn image_rate() -> MinRate {
        MinRate {
            bytes_per_sec: DEFAULT_MIN_RATE,
            window: DEFAULT_RATE_WINDOW,
            grace: DEFAULT_RATE_WINDOW,
        }
    }

    /// For an image: deadline on the head, throughput rule on the body.
    pub fn image() -> Self {
        Limits {
            deadline: DEFAULT_DEADLINE,
            deadline_covers_body: false,
            min_rate: Some(Limits::image_rate()),
            stall: DEFAULT_STALL,
            max_headers: MAX_HEADERS,
            max_head: MAX_HEAD,
            require_framing: false,
        }
    }

    /// For a manifest: one deadline over the whole request, framed bodies only.
    pub fn manifest() -> Self {
        Limits {
            deadline_covers_body: true,
            min_rate: None,
            require_framing: true,
            ..Limits::image()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::image()
    }
}

/// What identifies the version of a document a server sent: its `ETag` and
/// `Last-Modified`, kept verbatim to ask "changed since?" next time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` header, quotes and `W/` included.
    pub etag: Option<String>,
    /// The `Last-Modified` header, an HTTP date as the server wrote it.
    pub last_modified: Option<String>,
}

/// Why fetching one URL failed. `url` is the URL asked for; redirects are
/// named where they matter.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not an http:// or https:// URL this client can read.
    #[error("fetch `{url}`: not a URL berth can read; write http(s)://HOST[:PORT]/PATH")]
    BadUrl { url: String },
    /// No connection: name resolution, refused, reset.
    #[error("fetch `{url}`: unreachable")]
    Unreachable { url: String, source: io::Error },
    /// The TLS handshake or certificate check failed.
    #[error("fetch `{url}`: tls failure")]
    Tls { url: String, source: io::Error },
    /// The server answered with a status other than 2xx (after redirects).
    #[error("fetch `{url}`: http status {status}")]
    Status { url: String, status: u16 },
    /// A redirect from https to plain http: refused, as it would drop the
    /// server's authentication and let anyone on the path answer.
    #[error("fetch `{url}`: refused redirect from https to plain http `{location}`")]
    Downgrade { url: String, location: String },
    /// A redirect back to a URL already visited.
    #[error("fetch `{url}`: redirect loop: {chain}")]
    RedirectLoop { url: String, chain: String },
    /// More redirects than the client follows.
    #[error("fetch `{url}`: too many redirects (more than {max})")]
    TooManyRedirects { url: String, max: usize },
    /// A `Location` that is not an http(s) URL.
    #[error("fetch `{url}`: redirect to `{location}`, which is not an http(s) URL")]
    BadRedirect { url: String, location: String },
    /// The answer is not HTTP/1.x this client accepts.
    #[error("fetch `{url}`: bad response: {what}")]
    Protocol { url: String, what: String },
    /// A 304 Not Modified although the request named no version to compare
    /// with: a broken (or hostile) server, since there is no body to use.
    #[error("fetch `{url}`: bad response: 304 Not Modified to a request that sent no validator")]
    UnaskedNotModified { url: String },
    /// The deadline passed.
    #[error("fetch `{url}`: no answer within the deadline of {secs} s; raise it with --fetch-timeout (for images also settings.fetch_timeout)")]
    Deadline { url: String, secs: u64 },
    /// The body fell below the minimum throughput.
    #[error("fetch `{url}`: too slow: {rate} B/s over the last {secs} s, below the minimum of {min} B/s (settings.fetch_min_rate)")]
    TooSlow {
        url: String,
        rate: u64,
        secs: u64,
        min: u64,
    },
    /// Not one byte for the whole stall time.
    #[error("fetch `{url}`: no data for {secs} s")]
    Stalled { url: String, secs: u64 },
    /// A document (manifest) larger than its limit.
    #[error("fetch `{url}`: the document is larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    /// Reading a document's body failed (cut short, not UTF-8).
    #[error("fetch `{url}`: read the body")]
    Body { url: String, source: io::Error },
    /// The CA bundle for https could not be read or holds no certificate.
    #[error("read CA bundle `{path}`")]
    CaBundle { path: PathBuf, source: io::Error },
    /// The build left out a cargo feature this URL needs.
    #[error("fetch `{url}`: this berth is built without `{feature}`")]
    NotEnabled { url: String, feature: &'static str },
}

impl FetchError {
    /// This error as the `io::Error` a body's `Read` returns, so a reader
    /// further up can take it back out (see [`FetchError::from_io`]).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match self {
            FetchError::Deadline { .. }
            | FetchError::TooSlow { .. }
            | FetchError::Stalled { .. } => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }

    /// The `FetchError` inside an `io::Error` made by `into_io`, or the
    /// `io::Error` itself when it holds none.
    pub(crate) fn from_io(e: io::Error) -> Result<FetchError, io::Error> {
        if !e.get_ref().is_some_and(|inner| inner.is::<FetchError>()) {
            return Err(e);
        }
        let kind = e.kind();
        match e.into_inner().map(|inner| inner.downcast::<FetchError>()) {
            Some(Ok(fetch)) => Ok(*fetch),
            _ => Err(io::Error::from(kind)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_error_goes_through_io_and_back() {
        let e = FetchError::Stalled {
            url: "http://x/".into(),
            secs: 3,
        }
        .into_io();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let back = FetchError::from_io(e).unwrap();
        assert!(matches!(back, FetchError::Stalled { secs: 3, .. }));
        let plain = FetchError::from_io(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert_eq!(plain.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
