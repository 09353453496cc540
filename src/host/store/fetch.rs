//! The first half of the one-pass pipeline: open a source (path, `file://`,
//! `http(s)://`), hash its bytes with sha256 as they stream by, sniff the
//! compression from magic bytes and decompress. This runs on a producer thread
//! that hands decompressed chunks to the extracting thread through a bounded
//! channel, so download, hashing, inflate and disk writes overlap while memory
//! stays bounded (a few chunks), and no copy of the tarball is ever stored.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use super::transfer::Validators;
use super::transfer::{FetchError, Limits};
use super::StoreError;
use crate::model::ImageSource;

/// Size of one chunk handed from the producer to the extractor.
const CHUNK: usize = 128 * 1024;
/// Chunks in flight: bounds the pipeline's memory to about 0.5 MiB.
const IN_FLIGHT: usize = 4;

/// Where TLS trust anchors come from (the bundle OpenWrt and Yocto ship by default).
pub const DEFAULT_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Fetch settings.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// PEM file with the CA certificates trusted for https.
    pub ca_bundle: PathBuf,
    /// Show bytes, total and rate on stderr (only when it is a terminal).
    pub progress: bool,
    /// Deadline, throughput rule and head limits of each request.
    pub limits: Limits,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            ca_bundle: PathBuf::from(DEFAULT_CA_BUNDLE),
            progress: true,
            limits: Limits::image(),
        }
    }
}

/// The compression found by magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip (also concatenated members, as pigz writes).
    Gzip,
    /// zstd.
    Zstd,
    /// xz.
    Xz,
    /// bzip2 (Yocto's `container` image type writes .tar.bz2).
    Bzip2,
}

/// What the producer learned once the whole source was read.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    /// sha256 of every byte of the source, lowercase hex.
    pub digest: String,
    /// Bytes read from the source.
    pub size: u64,
    /// The compression that was sniffed.
    pub compression: Compression,
}

/// Identify the compression from the first bytes; `Err` carries the magic as hex.
pub(crate) fn sniff(head: &[u8]) -> Result<Compression, String> {
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Compression::Gzip);
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(Compression::Zstd);
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Ok(Compression::Xz);
    }
    if head.len() >= 512 && tar_checksum_ok(&head[..512]) {
        return Ok(Compression::None);
    }
    let magic: String = head.iter().take(6).map(|b| format!("{b:02x}")).collect();
    if head.starts_with(b"BZh") && head.get(3).is_some_and(|b| (b'1'..=b'9').contains(b)) {
        return Ok(Compression::Bzip2);
    }
    Err(magic)
}

/// A tar header's checksum: the byte sum with the checksum field read as spaces.
fn tar_checksum_ok(h: &[u8]) -> bool {
    let field = &h[148..156];
    let text: String = field
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| char::from(*b))
        .collect();
    let Ok(want) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == want && h.iter().any(|b| *b != 0)
}

/// A reader that hashes everything read through it and reports progress.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    size: u64,
    progress: Option<Progress>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        if let Some(p) = &mut self.progress {
            p.update(self.size, n == 0);
        }
        Ok(n)
    }
}

/// Bytes, total and rate on one terminal line, redrawn at most 4 times a second.
struct Progress {
    image: String,
    total: Option<u64>,
    start: Instant,
    last: Instant,
}

impl Progress {
    fn update(&mut self, done: u64, end: bool) {
        let now = Instant::now();
        if !end && now.duration_since(self.last) < Duration::from_millis(250) {
            return;
        }
        self.last = now;
        let secs = now.duration_since(self.start).as_secs_f64().max(0.001);
        let mib = |b: u64| b as f64 / 1_048_576.0;
        let total = self
            .total
            .map(|t| format!(" / {:.1} MiB", mib(t)))
            .unwrap_or_default();
        let mut err = io::stderr().lock();
        // Progress is best effort: a closed stderr must not fail the fetch.
        let _ = write!(
            err,
            "\r{}: {:.1} MiB{} {:.1} MiB/s",
            self.image,
            mib(done),
            total,
            mib(done) / secs
        );
        if end {
            let _ = writeln!(err);
        }
    }
}

fn stderr_is_tty() -> bool {
    // SAFETY: isatty only inspects the fd.
    unsafe { libc::isatty(2) == 1 }
}

/// The answer to a conditional fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conditional {
    /// 304: the document is the one the validators name.
    NotModified,
    /// A (new) document and its validators, empty when the server sent none.
    Changed {
        /// The document.
        text: String,
        /// Its `ETag`/`Last-Modified`, for the next fetch.
        validators: Validators,
    },
}

/// Read a small text document (a manifest) from an http(s) URL, at most
/// `max` bytes, within `opts.limits` (`Limits::manifest()` for a manifest).
pub fn fetch_text(url: &str, opts: &FetchOptions, max: u64) -> Result<String, FetchError> {
    match fetch_text_if_changed(url, opts, max, &Validators::default())? {
        Conditional::Changed { text, .. } => Ok(text),
        // Without validators the client refuses a 304 itself.
        Conditional::NotModified => Err(FetchError::UnaskedNotModified {
            url: url.to_owned(),
        }),
    }
}

/// As [`fetch_text`], but sending `since` as `If-None-Match` and
/// `If-Modified-Since`: a 304 is `NotModified` and reads no body. The same
/// limits apply; a 304 when `since` is empty is a protocol error.
pub fn fetch_text_if_changed(
    url: &str,
    opts: &FetchOptions,
    max: u64,
    since: &Validators,
) -> Result<Conditional, FetchError> {
    let Some(got) = http_get(url, opts, since)? else {
        return Ok(Conditional::NotModified);
    };
    let mut text = String::new();
    let read = got
        .body
        .take(max + 1)
        .read_to_string(&mut text)
        .map_err(|e| {
            FetchError::from_io(e).unwrap_or_else(|source| FetchError::Body {
                url: url.to_owned(),
                source,
            })
        })?;
    if u64::try_from(read).unwrap_or(u64::MAX) > max {
        return Err(FetchError::TooLarge {
            url: url.to_owned(),
            limit: max,
        });
    }
    Ok(Conditional::Changed {
        text,
        validators: got.validators,
    })
}

/// An opened source: its byte stream and, when known, its length.
pub(crate) struct Opened {
    pub reader: Box<dyn Read + Send>,
    pub total: Option<u64>,
}

/// Open a source for reading. Network failures are reported here, before any
/// byte is extracted: unreachable host, HTTP status, TLS failure.
pub(crate) fn open_source(
    image: &str,
    source: &ImageSource,
    opts: &FetchOptions,
) -> Result<Opened, StoreError> {
    let path = match source {
        ImageSource::Path(p) => PathBuf::from(p),
        ImageSource::Url(u) if u.starts_with("file://") => PathBuf::from(&u["file://".len()..]),
        ImageSource::Url(u) if u.starts_with("http://") || u.starts_with("https://") => {
            return open_http(image, u, opts)
        }
        // The store pulls these itself (pull.rs), never as one archive.
        ImageSource::Registry(r) => {
            return Err(StoreError::BadUrl {
                image: image.to_owned(),
                url: r.reference.clone(),
            });
        }
        ImageSource::Url(u) => {
            return Err(StoreError::BadUrl {
                image: image.to_owned(),
                url: u.clone(),
            });
        }
    };
    open_file(image, &path)
}

/// Open a local archive.
pub(crate) fn open_file(image: &str, path: &Path) -> Result<Opened, StoreError> {
    let f = File::open(path).map_err(|e| StoreError::io(image, "open", path, e))?;
    let total = f.metadata().ok().map(|m| m.len());
    Ok(Opened {
        reader: Box::new(f),
        total,
    })
}

fn open_http(image: &str, url: &str, opts: &FetchOptions) -> Result<Opened, StoreError> {
    let fetch_err = |source| StoreError::Fetch {
        image: image.to_owned(),
        source,
    };
    let got = http_get(url, opts, &Validators::default())
        .map_err(fetch_err)?
        .ok_or_else(|| {
            fetch_err(FetchError::UnaskedNotModified {
                url: url.to_owned(),
            })
        })?;
    Ok(Opened {
        reader: got.body,
        total: got.length,
    })
}

/// A 2xx answer: the body, its length when the server sent one, and the
/// validators of this version.
struct Got {
    body: Box<dyn Read + Send>,
    length: Option<u64>,
    validators: Validators,
}

/// GET `url`, conditional on `since`: `None` for a 304.
#[cfg(feature = "http")]
fn http_get(url: &str, opts: &FetchOptions, since: &Validators) -> Result<Option<Got>, FetchError> {
    #[cfg(feature = "tls")]
    let tls = || super::tls::client_config(&opts.ca_bundle);
    #[cfg(not(feature = "tls"))]
    let tls = || -> Result<(), FetchError> {
        Err(FetchError::NotEnabled {
            url: url.to_owned(),
            feature: "tls",
        })
    };
    let resp = super::http::get_if(url, &opts.limits, &tls, since)?;
    Ok(resp.map(|r| Got {
        body: r.body,
        length: r.length,
        validators: r.validators,
    }))
}

#[cfg(not(feature = "http"))]
fn http_get(
    url: &str,
    _opts: &FetchOptions,
    _since: &Validators,
) -> Result<Option<Got>, FetchError> {
    Err(FetchError::NotEnabled {
        url: url.to_owned(),
        feature: "http",
    })
}

/// The extracting thread's end of the pipeline.
pub(crate) struct ChunkReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // Sender gone without an error: end of stream.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The producer side: a `Write` that sends full chunks.
struct ChunkWriter {
    tx: SyncSender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        // The extractor hung up (it failed or finished): stop producing.
        self.tx
            .send(Ok(chunk))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Stream `opened` through the producer (hash, decompress) into `ex`: the
/// archive's digest and size once both ends are done.
pub(crate) fn unpack_stream(
    image: &str,
    ex: &mut super::extract::Extractor<'_>,
    opened: Opened,
    fetch_opts: &FetchOptions,
) -> Result<Fetched, StoreError> {
    let (reader, producer) = spawn_producer(image, opened, fetch_opts);
    let unpacked = ex.unpack(reader).and_then(|mut rest| {
        // Drain the tar padding after the end marker so the producer sees (and hashes) it all.
        std::io::copy(&mut rest, &mut std::io::sink())
            .map(|_| ())
            .map_err(|source| StoreError::Read {
                image: image.to_owned(),
                source,
            })
    });
    // Joining also happens on error: the reader is dropped, so the producer stops.
    match (unpacked, producer.join().unwrap_or(Err(None))) {
        (_, Err(Some(e))) | (Err(e), _) => Err(e),
        (Ok(()), Err(None)) => Err(StoreError::Read {
            image: image.to_owned(),
            source: std::io::Error::other("decompressor stopped early"),
        }),
        (Ok(()), Ok(f)) => Ok(f),
    }
}

/// The producer thread's result. `Err(None)`: the extractor hung up first.
pub(crate) type ProducerResult = Result<Fetched, Option<StoreError>>;

/// Start the producer: hash, sniff and decompress `opened` on a thread.
pub(crate) fn spawn_producer(
    image: &str,
    opened: Opened,
    opts: &FetchOptions,
) -> (ChunkReader, JoinHandle<ProducerResult>) {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let progress = (opts.progress && stderr_is_tty()).then(|| Progress {
        image: image.to_owned(),
        total: opened.total,
        start: Instant::now(),
        last: Instant::now(),
    });
    let image = image.to_owned();
    let handle = std::thread::spawn(move || {
        let src = Hashing {
            inner: opened.reader,
            hash: Sha256::new(),
            size: 0,
            progress,
        };
        let mut w = ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let res = produce(&image, src, &mut w);
        if let Err(Some(e)) = &res {
            // Make the extractor stop at once; the precise error comes from the join.
            let _ = w.tx.send(Err(io::Error::other(e.to_string())));
        }
        res
    });
    (
        ChunkReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        },
        handle,
    )
}

fn produce<R: Read>(image: &str, src: Hashing<R>, w: &mut ChunkWriter) -> ProducerResult {
    let read_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::BrokenPipe {
            return None;
        }
        // A download limit (too slow, deadline) is a fetch error, not a
        // corrupt archive.
        Some(match FetchError::from_io(source) {
            Ok(source) => StoreError::Fetch {
                image: image.to_owned(),
                source,
            },
            Err(source) => StoreError::Read {
                image: image.to_owned(),
                source,
            },
        })
    };
    let mut hashing = src;
    // Read up to 512 bytes first: enough for every magic and a whole tar header.
    let mut head = vec![0u8; 512];
    let mut got = 0;
    while got < head.len() {
        match hashing.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_err(e)),
        }
    }
    head.truncate(got);
    let compression = sniff(&head).map_err(|magic| {
        Some(StoreError::UnknownCompression {
            image: image.to_owned(),
            magic,
        })
    })?;
    if let Some(feature) = left_out(compression) {
        return Err(Some(StoreError::CompressionNotBuilt {
            image: image.to_owned(),
            compression: feature,
        }));
    }
    let mut src = BufReader::with_capacity(CHUNK, io::Cursor::new(head).chain(hashing));
    decompress(compression, &mut src, w).map_err(read_err)?;
    w.flush().map_err(read_err)?;
    // Hash whatever follows the compressed stream too: the digest is of the whole file.
    io::copy(&mut src, &mut io::sink()).map_err(read_err)?;
    let (_, hashing) = src.into_inner().into_inner();
    let digest = hashing
        .hash
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Fetched {
        digest,
        size: hashing.size,
        compression,
    })
}

/// The cargo feature (named as the format) that `c` needs, if this build left
/// it out: refused before any byte is decompressed, naming the fix.
fn left_out(c: Compression) -> Option<&'static str> {
    let (feature, built) = match c {
        Compression::None => return None,
        Compression::Gzip => ("gzip", cfg!(feature = "gzip")),
        Compression::Zstd => ("zstd", cfg!(feature = "zstd")),
        Compression::Xz => ("xz", cfg!(feature = "xz")),
        Compression::Bzip2 => ("bzip2", cfg!(feature = "bzip2")),
    };
    (!built).then_some(feature)
}

fn decompress<R: BufRead>(c: Compression, src: &mut R, w: &mut ChunkWriter) -> io::Result<()> {
    match c {
        Compression::None => copy(src, w),
        #[cfg(feature = "gzip")]
        Compression::Gzip => copy(&mut flate2::bufread::MultiGzDecoder::new(src), w),
        #[cfg(feature = "zstd")]
        Compression::Zstd => loop {
            let mut dec = ruzstd::StreamingDecoder::new(&mut *src)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            copy(&mut dec, w)?;
            // pzstd and `zstd -T` may write several frames.
            if src.fill_buf()?.is_empty() {
                return Ok(());
            }
        },
        #[cfg(feature = "xz")]
        Compression::Xz => super::xz::decompress(src, w),
        #[cfg(feature = "bzip2")]
        Compression::Bzip2 => {
            copy(&mut bzip2_rs::DecoderReader::new(&mut *src), w)?;
            // The decoder reads ahead, so a second stream (pbzip2, lbzip2
            // output) cannot be resumed: refuse it rather than truncate.
            if src.fill_buf()?.is_empty() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bzip2: more than one stream (pbzip2 output) is not supported; recompress with bzip2, gzip or zstd",
                ))
            }
        }
        // left_out() refused it before
        #[allow(unreachable_patterns)]
        _ => Err(io::ErrorKind::Unsupported.into()),
    }
}

fn copy<R: Read + ?Sized>(r: &mut R, w: &mut ChunkWriter) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
    }
}
