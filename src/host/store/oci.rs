//! OCI image layouts and `docker save` archives. The outer archive is first
//! unpacked safely like any tarball (its blobs land in a temp dir inside the
//! extraction dir); this module then reads the manifest, applies the layers in
//! order with whiteouts into the rootfs, and returns the config's defaults.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::host::inroot::{self, Resolve, RootDir};

use super::extract::{ExtractOptions, Extractor};
use super::fetch;
use super::{ImageConfig, StoreError, StoreOptions};

/// Which manifest format an archive carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OciKind {
    /// `oci-layout` + `index.json`.
    Oci,
    /// `manifest.json` as `docker save` writes it (also beside an OCI layout).
    Docker,
}

impl OciKind {
    /// The name recorded in image.json.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OciKind::Oci => "oci",
            OciKind::Docker => "docker",
        }
    }
}

/// Recognise an unpacked archive as an image layout rather than a rootfs.
pub(crate) fn detect(dir: &Path) -> Option<OciKind> {
    // A root filesystem never has these at its top level together.
    let looks_rootfs = dir.join("etc").is_dir() || dir.join("bin").exists();
    if looks_rootfs {
        return None;
    }
    if dir.join("manifest.json").is_file() {
        return Some(OciKind::Docker);
    }
    if dir.join("oci-layout").is_file() && dir.join("index.json").is_file() {
        return Some(OciKind::Oci);
    }
    None
}

fn bad(image: &str, what: impl Into<String>) -> StoreError {
    StoreError::Oci {
        image: image.to_owned(),
        what: what.into(),
    }
}

/// Largest manifest, index or config blob read (they are a few KiB).
const MAX_JSON: u64 = 4 << 20;

/// An unpacked archive or layout directory. Every path it names itself
/// (manifest layers, config, blobs) is opened inside it (`inroot`), so a
/// symlink in the archive never makes berth read a host file as a layer.
struct Archive<'a> {
    image: &'a str,
    dir: &'a Path,
    root: RootDir,
}

impl<'a> Archive<'a> {
    fn open(image: &'a str, dir: &'a Path) -> Result<Self, StoreError> {
        let root = RootDir::open(dir, Resolve::Openat2)
            .map_err(|e| StoreError::io(image, "open", dir, e))?;
        Ok(Archive { image, dir, root })
    }

    /// The regular file `rel` of the archive.
    fn file(&self, rel: &Path) -> Result<File, StoreError> {
        let path = self.dir.join(rel);
        let comps =
            inroot::components(rel).map_err(|e| StoreError::io(self.image, "open", &path, e))?;
        self.root.open_read(&comps).map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP | libc::ENOTDIR | libc::EXDEV | libc::EINVAL) => {
                StoreError::Traversal {
                    image: self.image.to_owned(),
                    entry: path,
                    reason: "an archive path must be a regular file inside the archive, not reached through a symlink",
                }
            }
            _ => StoreError::io(self.image, "open", &path, e),
        })
    }

    fn read_json(&self, rel: &Path) -> Result<Value, StoreError> {
        let image = self.image;
        let path = self.dir.join(rel);
        let mut text = Vec::new();
        self.file(rel)?
            .take(MAX_JSON + 1)
            .read_to_end(&mut text)
            .map_err(|e| StoreError::io(image, "read", &path, e))?;
        if u64::try_from(text.len()).unwrap_or(u64::MAX) > MAX_JSON {
            return Err(bad(
                image,
                format!("`{}` is larger than {MAX_JSON} bytes", path.display()),
            ));
        }
        // A manifest or config blob named by its digest must have it: in a layout
        // directory nothing else vouches for it (layers are checked as they unpack).
        if let Some(want) = blob_digest(rel) {
            use sha2::Digest as _;
            let actual = crate::model::hex(&sha2::Sha256::digest(&text));
            if actual != want {
                return Err(StoreError::DigestMismatch {
                    image: image.to_owned(),
                    expected: format!("{want} (blob `{}`)", path.display()),
                    actual,
                });
            }
        }
        serde_json::from_slice(&text)
            .map_err(|e| bad(image, format!("parse `{}`: {e}", path.display())))
    }
}

/// A relative path from a manifest, kept inside the archive (no `..`, not absolute).
fn inside(image: &str, rel: &str) -> Result<PathBuf, StoreError> {
    let p = Path::new(rel);
    if p.components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(StoreError::Traversal {
            image: image.to_owned(),
            entry: p.to_owned(),
            reason: "manifest path leaves the archive",
        });
    }
    Ok(p.to_path_buf())
}

/// `sha256:<hex>` to `blobs/sha256/<hex>`.
fn blob(image: &str, digest: &str) -> Result<PathBuf, StoreError> {
    let (algo, hex) = digest
        .split_once(':')
        .ok_or_else(|| bad(image, format!("bad digest `{digest}`")))?;
    if !algo.bytes().all(|b| b.is_ascii_alphanumeric())
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
        || hex.is_empty()
    {
        return Err(bad(image, format!("bad digest `{digest}`")));
    }
    Ok(Path::new("blobs").join(algo).join(hex))
}

/// The OCI `GOARCH` name of the architecture berth runs on.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "mips64" => "mips64",
        other => other,
    }
}

/// Layer files (in order) and the config file for the archive in `dir`.
fn layers(a: &Archive<'_>, kind: OciKind) -> Result<(Vec<PathBuf>, Option<PathBuf>), StoreError> {
    let image = a.image;
    match kind {
        OciKind::Docker => {
            let m = a.read_json(Path::new("manifest.json"))?;
            let first = m
                .get(0)
                .ok_or_else(|| bad(image, "manifest.json lists no image"))?;
            let config = match first.get("Config").and_then(Value::as_str) {
                Some(c) => Some(inside(image, c)?),
                None => None,
            };
            let list = first
                .get("Layers")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(image, "manifest.json has no Layers"))?;
            let mut out = Vec::new();
            for l in list {
                let l = l
                    .as_str()
                    .ok_or_else(|| bad(image, "a layer is not a string"))?;
                out.push(inside(image, l)?);
            }
            Ok((out, config))
        }
        OciKind::Oci => {
            let mut m = a.read_json(Path::new("index.json"))?;
            // Follow (nested) indexes to one image manifest, preferring our architecture.
            for _ in 0..4 {
                let Some(list) = m.get("manifests").and_then(Value::as_array) else {
                    break;
                };
                let pick = list
                    .iter()
                    .find(|d| {
                        d.pointer("/platform/architecture").and_then(Value::as_str)
                            == Some(oci_arch())
                    })
                    .or_else(|| list.first())
                    .ok_or_else(|| bad(image, "index lists no manifest"))?;
                let d = pick
                    .get("digest")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(image, "manifest without digest"))?;
                m = a.read_json(&blob(image, d)?)?;
            }
            let config = match m.pointer("/config/digest").and_then(Value::as_str) {
                Some(d) => Some(blob(image, d)?),
                None => None,
            };
            let list = m
                .get("layers")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(image, "manifest has no layers"))?;
            let mut out = Vec::new();
            for l in list {
                let d = l
                    .get("digest")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(image, "layer without digest"))?;
                out.push(blob(image, d)?);
            }
            Ok((out, config))
        }
    }
}

/// The defaults in an image config (`config` object of the config blob).
fn config(a: &Archive<'_>, rel: &Path) -> Result<ImageConfig, StoreError> {
    Ok(config_defaults(&a.read_json(rel)?))
}

/// The defaults of a parsed image config blob: its `config` object's
/// `Entrypoint`, `Cmd`, `Env`, `WorkingDir` and `User`.
pub(crate) fn config_defaults(v: &Value) -> ImageConfig {
    let Some(c) = v.get("config").or_else(|| v.get("Config")) else {
        return ImageConfig::default();
    };
    let strings = |k: &str| {
        c.get(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
    };
    let text = |k: &str| {
        c.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    ImageConfig {
        entrypoint: strings("Entrypoint"),
        cmd: strings("Cmd"),
        env: strings("Env").unwrap_or_default(),
        workdir: text("WorkingDir"),
        user: text("User"),
    }
}

/// An extractor for image layers into `rootfs`: whiteouts applied.
pub(crate) fn layer_extractor<'a>(
    image: &'a str,
    rootfs: &Path,
    opts: &StoreOptions,
) -> Result<Extractor<'a>, StoreError> {
    let mut eo = ExtractOptions::for_host(opts.max_image_size);
    eo.whiteouts = true;
    Extractor::new(image, rootfs, eo)
}

/// Apply the layer `f` (any compression) onto `ex`; `want` is the sha256
/// it must have, `name` what errors call it.
pub(crate) fn apply_layer(
    image: &str,
    ex: &mut Extractor<'_>,
    f: File,
    want: Option<&str>,
    name: &Path,
    opts: &StoreOptions,
) -> Result<(), StoreError> {
    let opened = fetch::Opened {
        total: f.metadata().ok().map(|m| m.len()),
        reader: Box::new(f),
    };
    let mut fo = opts.fetch.clone();
    fo.progress = false;
    let fetched = fetch::unpack_stream(image, ex, opened, &fo)?;
    // A blob named by its digest must have it (matters for layout directories,
    // whose own identity is only the index's digest).
    if let Some(want) = want {
        if want != fetched.digest {
            return Err(StoreError::DigestMismatch {
                image: image.to_owned(),
                expected: format!("{want} (layer `{}`)", name.display()),
                actual: fetched.digest,
            });
        }
    }
    Ok(())
}

/// Apply the layers of the archive unpacked in `dir` onto `rootfs`.
pub(crate) fn apply<'a>(
    image: &'a str,
    dir: &Path,
    rootfs: &Path,
    kind: OciKind,
    opts: &StoreOptions,
) -> Result<(ImageConfig, Extractor<'a>), StoreError> {
    let archive = Archive::open(image, dir)?;
    let (layer_files, config_file) = layers(&archive, kind)?;
    let cfg = match config_file {
        Some(p) => config(&archive, &p)?,
        None => ImageConfig::default(),
    };
    let mut ex = layer_extractor(image, rootfs, opts)?;
    for layer in layer_files {
        let f = archive.file(&layer)?;
        let want = blob_digest(&layer);
        apply_layer(image, &mut ex, f, want.as_deref(), &layer, opts)?;
    }
    Ok((cfg, ex))
}

/// The sha256 a blob file is named after (`blobs/sha256/<hex>`), if any.
fn blob_digest(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let algo = path.parent()?.file_name()?.to_str()?;
    (algo == "sha256" && name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| name.to_ascii_lowercase())
}
