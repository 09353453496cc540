//! The image store: `exec` asks it for each image the plan needs (`ensure`),
//! and for a writable layer per container (`layer`). Images are extracted
//! read-only root filesystems cached by the sha256 of their tarball:
//!
//! ```text
//! <root>/images/<sha256>/rootfs/       the image's files
//! <root>/images/<sha256>/image.json    ImageMeta: source, names, size, OCI defaults
//! <root>/images/.tmp-<sha256>-<pid>-<n>/  an extraction in progress (never looks whole)
//! <root>/images/<sha256>/shifted-<key>/rootfs/  the rootfs with owners moved by one
//!                                       user namespace map (shift.rs)
//! <root>/containers/<name>/image       digest the container uses (for `ls` and `gc`)
//! ```
//!
//! The pipeline runs in one pass: fetch -> sha256 -> decompress (fetch.rs) ->
//! safe untar (extract.rs) -> OCI layers (oci.rs) -> syncfs -> rename.

/// Where a firmware image carries images unpacked at build time by
/// `berth install`; every `apply` searches it before fetching.
pub const FIRMWARE_IMAGE_DIR: &str = "/usr/share/berth/images";

pub mod digests;
mod extract;
pub mod fetch;
pub(crate) mod fsutil;
#[cfg(feature = "http")]
mod http;
pub mod layer;
#[cfg(feature = "xz")]
mod lzma;
mod oci;
#[cfg(feature = "registry")]
pub mod platform;
#[cfg(feature = "registry")]
mod pull;
#[cfg(feature = "registry")]
pub mod regdoc;
#[cfg(feature = "registry")]
pub mod registry;
pub mod shift;
#[cfg(feature = "http")]
mod timed;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub mod transfer;
#[cfg(feature = "http")]
mod url;
#[cfg(feature = "xz")]
mod xz;
/// The HTTP response reader, for the fuzz target (`crate::fuzz`).
#[cfg(feature = "http")]
#[doc(hidden)]
pub use http::parse_response as http_parse_response;
/// The .xz reader, for the fuzz target (`crate::fuzz`).
#[cfg(feature = "xz")]
#[doc(hidden)]
pub use xz::decompress as xz_decompress;

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use fetch::FetchOptions;
pub use transfer::{FetchError, Limits, MinRate};

use crate::model::ImageSource;

/// Default cap on an image's unpacked size: generous, but stops a tar bomb
/// before it fills the flash.
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = 4 << 30;

/// Every way getting or keeping an image can fail. Each names the image.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The archive's sha256 is not the one the manifest gave.
    #[error("image `{image}`: sha256 mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        image: String,
        expected: String,
        actual: String,
    },
    /// The archive stream failed: truncated, corrupt, or the connection dropped.
    #[error("image `{image}`: read archive: truncated or corrupt")]
    Read { image: String, source: io::Error },
    /// No known magic bytes at the start of the archive.
    #[error(
        "image `{image}`: unknown compression (magic {magic}); expected gzip, zstd, xz, bzip2 or tar"
    )]
    UnknownCompression { image: String, magic: String },
    /// Fetching the image's URL failed (unreachable, status, TLS, a limit).
    #[error("image `{image}`")]
    Fetch { image: String, source: FetchError },
    /// A URL scheme other than http, https or file.
    #[error("image `{image}`: unsupported url `{url}`; use http://, https:// or file://")]
    BadUrl { image: String, url: String },
    /// ENOSPC or EDQUOT: nothing was installed.
    #[error("image `{image}`: disk full while writing `{path}`")]
    DiskFull {
        image: String,
        path: PathBuf,
        source: io::Error,
    },
    /// An entry tried to leave the target directory.
    #[error("image `{image}`: refused entry `{entry}`: {reason} (path traversal attempt)")]
    Traversal {
        image: String,
        entry: PathBuf,
        reason: &'static str,
    },
    /// The unpacked size passed `settings.max_image_size`.
    #[error("image `{image}`: unpacked size exceeds the limit of {limit} bytes (settings.max_image_size)")]
    TooLarge { image: String, limit: u64 },
    /// A tar entry type berth does not unpack (e.g. GNU sparse).
    #[error("image `{image}`: unsupported tar entry `{entry}` of type {kind}")]
    Unsupported {
        image: String,
        entry: PathBuf,
        kind: String,
    },
    /// Any other file system operation.
    #[error("image `{image}`: {op} `{path}`")]
    Io {
        image: String,
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A URL source without its sha256.
    #[error("image `{image}`: a url source needs a sha256")]
    MissingDigest { image: String },
    /// A sha256 that is not 64 hex digits.
    #[error("image `{image}`: bad sha256 `{value}`: expected 64 hex digits")]
    BadDigest { image: String, value: String },
    /// The build left out a cargo feature this image needs.
    #[error("image `{image}`: this berth is built without `{feature}`; use a berth built with it (OpenWrt: menuconfig Utilities -> berth; Yocto: PACKAGECONFIG)")]
    NotEnabled {
        image: String,
        feature: &'static str,
    },
    /// An archive compressed with a format whose decompressor the build left
    /// out (bzip2 is opt-in: its decoder needs about 35 MiB of memory).
    #[error("image `{image}`: {compression} archive, but this berth is built without `{compression}`; recompress the image with gzip, zstd or xz, or use a berth built with it (cargo --features {compression}; OpenWrt: BERTH_{upper} in menuconfig; Yocto: PACKAGECONFIG {compression})", upper = .compression.to_uppercase())]
    CompressionNotBuilt {
        image: String,
        compression: &'static str,
    },
    /// An OCI layout or `docker save` archive that cannot be applied.
    #[error("image `{image}`: bad OCI archive: {what}")]
    Oci { image: String, what: String },
    /// A registry pull that cannot go on: refused media type, platform,
    /// auth, a document over its cap. `reference` is the image's `ref`.
    #[cfg(feature = "registry")]
    #[error("image `{image}`: registry image `{reference}`: {what}")]
    Registry {
        image: String,
        reference: String,
        what: String,
    },
    /// No image with this digest or name in the store.
    #[error("image `{image}`: not in the store")]
    NotFound { image: String },
    /// `rm` of an image that containers still use.
    #[error("image `{image}`: in use by {containers}")]
    InUse { image: String, containers: String },
    /// An image file's owner is outside the container's user namespace map,
    /// which maps no `nobody` (65534) to stand for it either.
    #[error("container `{container}`: image file `{path}` has {kind} {id}, outside namespaces.user's map; map container id 65534 (nobody) or every id the image uses")]
    Unmapped {
        container: String,
        path: PathBuf,
        kind: &'static str,
        id: u32,
    },
    /// Preparing or mounting a container's writable layer failed.
    #[error("container `{container}`: {op} `{path}`")]
    Layer {
        container: String,
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl StoreError {
    /// An I/O failure on `path`; a full disk gets its own variant.
    pub(crate) fn io(image: &str, op: &'static str, path: &Path, source: io::Error) -> Self {
        let (image, path) = (image.to_owned(), path.to_owned());
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => StoreError::DiskFull {
                image,
                path,
                source,
            },
            _ => StoreError::Io {
                image,
                op,
                path,
                source,
            },
        }
    }
}

/// The defaults an OCI image config gives; the manifest's own fields win.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `Entrypoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `Env` as `KEY=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `WorkingDir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// `User`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// What the store records about an image (images/<digest>/image.json).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageMeta {
    /// sha256 of the archive.
    pub digest: String,
    /// Names the image was ensured or imported under.
    pub names: Vec<String>,
    /// Path or URL it came from.
    pub source: String,
    /// Unpacked bytes (entry sizes plus headers).
    pub size: u64,
    /// Bytes of the archive.
    pub archive_size: u64,
    /// `rootfs`, `oci` or `docker`.
    pub format: String,
    /// `none`, `gzip`, `zstd` or `xz` (sniffed from magic bytes).
    #[serde(default)]
    pub compression: String,
    /// Defaults from an OCI config.
    #[serde(default)]
    pub config: ImageConfig,
    /// Device nodes that were recorded but not created (no privilege).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_devices: Vec<String>,
    /// For an image pulled from a registry: what was pulled.
    #[cfg(feature = "registry")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<Pulled>,
}

/// Where a registry image came from (image.json's `registry`).
#[cfg(feature = "registry")]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pulled {
    /// The reference, canonical (`registry/repository:tag`).
    pub reference: String,
    /// `sha256:` of the image manifest used (the identity may be an index's).
    pub manifest: String,
    /// The platform chosen, `os/arch[/variant]`.
    pub platform: String,
}

/// An image ready to use.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// sha256 of the archive.
    pub digest: String,
    /// The image directory (holds `rootfs` and `image.json`).
    pub dir: PathBuf,
    /// The extracted root filesystem, read-only by convention.
    pub rootfs: PathBuf,
    /// Recorded metadata.
    pub meta: ImageMeta,
    /// Found in a read-only image directory (firmware), not in the store.
    pub read_only: bool,
    /// Non-fatal problems from extraction, to show the user once.
    pub warnings: Vec<String>,
}

/// Store settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Read-only directories holding `<digest>/rootfs`, searched before fetching.
    pub image_dirs: Vec<PathBuf>,
    /// Unpacked size cap.
    pub max_image_size: u64,
    /// Download settings.
    pub fetch: FetchOptions,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            image_dirs: Vec::new(),
            max_image_size: DEFAULT_MAX_IMAGE_SIZE,
            fetch: FetchOptions::default(),
        }
    }
}

/// The image store over one root directory.
#[derive(Debug)]
pub struct RootfsStore {
    root: PathBuf,
    opts: StoreOptions,
}

mod ops;
#[cfg(test)]
mod tests;
pub use ops::{extract_archive, Extracted, GcReport, ImageEntry};
#[cfg(feature = "registry")]
pub use pull::resolve_tags;
#[cfg(feature = "registry")]
pub use refs::recorded_ref;
#[cfg(feature = "registry")]
mod refs;

impl RootfsStore {
    /// `ensure` of a registry image, in builds that can reach one.
    fn pull_spec(
        &self,
        image: &str,
        src: &crate::model::RegistrySource,
        pinned: Option<&str>,
    ) -> Result<ImageInfo, StoreError> {
        #[cfg(feature = "registry")]
        return self.pull(image, src, pinned, None);
        #[cfg(not(feature = "registry"))]
        {
            let _ = (src, pinned);
            Err(StoreError::NotEnabled {
                image: image.to_owned(),
                feature: "registry",
            })
        }
    }
}

fn valid_digest(d: &str) -> bool {
    d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit())
}

/// sha256 of a local file, to find it in the cache before extracting.
fn hash_file(image: &str, path: &Path) -> Result<String, StoreError> {
    digests::sha256_file(path).map_err(|e| StoreError::io(image, "read", path, e))
}

/// Write `data` to `path` atomically (see `host::records::write_atomic`).
fn write_atomic(image: &str, path: &Path, data: &[u8]) -> Result<(), StoreError> {
    crate::host::records::write_atomic(path, data)
        .map_err(|e| StoreError::io(image, "write", path, e))
}

fn source_text(s: &ImageSource) -> String {
    match s {
        ImageSource::Path(p) => p.clone(),
        ImageSource::Url(u) => u.clone(),
        ImageSource::Registry(r) => r.reference.clone(),
    }
}

/// Try to take the extraction lock of a temp dir without waiting.
fn try_lock(f: &fs::File) -> bool {
    // SAFETY: flock on a valid fd.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
