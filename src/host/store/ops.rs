//! `RootfsStore` operations: open (and clean leftovers), ensure (lookup, then
//! fetch-extract-verify-rename), list, remove and gc.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::extract::{ExtractOptions, Extractor};
use super::fetch::{self, Fetched};
use super::{fsutil, hash_file, oci, pid_alive, source_text, try_lock, valid_digest, write_atomic};
use super::{ImageInfo, ImageMeta, RootfsStore, StoreError, StoreOptions};
use crate::model::{ImageSource, ImageSpec};

/// Distinguishes temp dirs of concurrent extractions inside one process.
static TMP_SEQ: AtomicUsize = AtomicUsize::new(0);

const META: &str = "image.json";
/// Mode of what only root may enter: images and their temp dirs.
pub(crate) const PRIVATE: u32 = 0o700;
/// Mode of a directory a user-namespaced container passes through.
pub(crate) const TRAVERSE: u32 = 0o711;
pub(super) const LOCK: &str = ".lock";

/// An image as `berth image ls` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEntry {
    /// The image.
    pub info: ImageInfo,
    /// Containers whose `containers/<name>/image` names this digest.
    pub used_by: Vec<String>,
}

/// A temp extraction dir, removed on drop unless committed.
pub(super) struct TmpDir {
    pub(super) path: PathBuf,
    _lock: fs::File,
    pub(super) keep: bool,
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: a leftover is removed at the next open anyway.
            let _ = fsutil::remove_tree(&self.path);
        }
    }
}

impl RootfsStore {
    /// Open the store at `root`, creating `images/` and `containers/`, and
    /// remove temp dirs left by runs that died (kill -9, power cut).
    pub fn open(root: &Path, opts: StoreOptions) -> Result<Self, StoreError> {
        let store = RootfsStore {
            root: root.to_owned(),
            opts,
        };
        // Image content (setuid binaries, device nodes) is for root only. The
        // root, containers/ and volumes/ can be passed through (not listed):
        // a container in a user namespace reaches its rootfs and volumes as
        // its own unprivileged host id.
        for (d, mode) in [
            (store.root.clone(), TRAVERSE),
            (store.images_dir(), PRIVATE),
            (store.containers_dir(), TRAVERSE),
            (store.root.join("volumes"), TRAVERSE),
        ] {
            private_dir(&d, mode).map_err(|e| StoreError::io("-", "create", &d, e))?;
        }
        store.clean_leftovers()?;
        Ok(store)
    }

    /// The store at `root` for lookups only: nothing is created or cleaned,
    /// so `berth plan` leaves no trace.
    pub fn read_only(root: &Path, opts: StoreOptions) -> Self {
        RootfsStore {
            root: root.to_owned(),
            opts,
        }
    }

    /// `<root>/images`.
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// `<root>/containers`.
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    fn clean_leftovers(&self) -> Result<(), StoreError> {
        let dir = self.images_dir();
        let rd = fs::read_dir(&dir).map_err(|e| StoreError::io("-", "list", &dir, e))?;
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(".tmp-") else {
                // An image of a store made before its modes were private.
                if ent.file_type().is_ok_and(|t| t.is_dir()) {
                    let path = ent.path();
                    set_mode(&path, PRIVATE).map_err(|e| StoreError::io("-", "chmod", &path, e))?;
                }
                continue;
            };
            let path = ent.path();
            // A live extraction holds the flock on its `.lock`; a dead one cannot.
            let dead = match fs::File::open(path.join(LOCK)) {
                Ok(f) => try_lock(&f),
                // No lock yet: the owner died right after mkdir, or is about to lock.
                Err(_) => rest
                    .split('-')
                    .nth(1)
                    .and_then(|p| p.parse().ok())
                    .map_or(true, |p| !pid_alive(p)),
            };
            if dead {
                fsutil::remove_tree(&path)
                    .map_err(|e| StoreError::io("-", "remove leftover", &path, e))?;
            }
        }
        Ok(())
    }

    /// Make `spec` available: from the store, else from a read-only image dir,
    /// else fetched, verified and extracted. Returns where its rootfs is.
    pub fn ensure(&self, spec: &ImageSpec) -> Result<ImageInfo, StoreError> {
        let image = spec.name.as_str();
        if let ImageSource::Registry(src) = &spec.source {
            return self.pull_spec(image, src, spec.sha256.as_deref());
        }
        if let ImageSource::Path(p) = &spec.source {
            if Path::new(p).is_dir() {
                return self.ensure_layout_dir(image, Path::new(p), spec.sha256.as_deref());
            }
        }
        let expected = match &spec.sha256 {
            Some(d) if valid_digest(d) => Some(d.to_ascii_lowercase()),
            Some(d) => {
                return Err(StoreError::BadDigest {
                    image: image.to_owned(),
                    value: d.clone(),
                })
            }
            None => match &spec.source {
                ImageSource::Path(p) => Some(hash_file(image, Path::new(p))?),
                ImageSource::Url(u) if u.starts_with("file://") => {
                    Some(hash_file(image, Path::new(&u[7..]))?)
                }
                ImageSource::Url(_) | ImageSource::Registry(_) => {
                    return Err(StoreError::MissingDigest {
                        image: image.to_owned(),
                    })
                }
            },
        };
        if let Some(d) = &expected {
            if let Some(mut info) = self.find(d) {
                if !info.read_only && !info.meta.names.iter().any(|n| n == image) {
                    info.meta.names.push(image.to_owned());
                    self.write_meta(image, &info.dir, &info.meta)?;
                }
                return Ok(info);
            }
        }
        let opened = fetch::open_source(image, &spec.source, &self.opts.fetch)?;
        self.install(
            image,
            &source_text(&spec.source),
            opened,
            expected.as_deref(),
        )
    }

    /// `berth image import FILE --name`: ensure a local archive.
    pub fn import(&self, name: &str, file: &Path) -> Result<ImageInfo, StoreError> {
        let spec = ImageSpec {
            name: name.to_owned(),
            source: ImageSource::Path(file.display().to_string()),
            sha256: None,
        };
        self.ensure(&spec)
    }

    /// Digests of every extracted image, in the store or a read-only dir.
    pub fn present_digests(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for dir in std::iter::once(self.images_dir()).chain(self.opts.image_dirs.iter().cloned()) {
            for ent in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let d = ent.file_name().to_string_lossy().into_owned();
                if valid_digest(&d) && self.find(&d).is_some() {
                    out.insert(d);
                }
            }
        }
        out
    }

    /// The image with `digest`, in the store or a read-only dir.
    pub fn find(&self, digest: &str) -> Option<ImageInfo> {
        let dir = self.images_dir().join(digest);
        if let Some(meta) = read_meta(&dir) {
            return Some(info(digest, dir, meta, false));
        }
        for ro in &self.opts.image_dirs {
            let dir = ro.join(digest);
            if dir.join("rootfs").is_dir() {
                let meta = read_meta(&dir).unwrap_or_else(|| ImageMeta {
                    digest: digest.to_owned(),
                    source: dir.display().to_string(),
                    format: "rootfs".into(),
                    ..ImageMeta::default()
                });
                return Some(info(digest, dir, meta, true));
            }
        }
        None
    }

    pub(super) fn write_meta(
        &self,
        image: &str,
        dir: &Path,
        meta: &ImageMeta,
    ) -> Result<(), StoreError> {
        let data = serde_json::to_vec_pretty(meta)
            .map_err(|e| StoreError::io(image, "encode", dir, e.into()))?;
        write_atomic(image, &dir.join(META), &data)
    }

    /// A locked temp dir `images/.tmp-<what>-<pid>-<n>` (`what` is a digest or another tag).
    pub(super) fn tmp_dir(&self, image: &str, digest: Option<&str>) -> Result<TmpDir, StoreError> {
        let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let path = self.images_dir().join(format!(
            ".tmp-{}-{}-{n}",
            digest.unwrap_or("pending"),
            std::process::id()
        ));
        fs::DirBuilder::new()
            .mode(PRIVATE)
            .create(&path)
            .map_err(|e| StoreError::io(image, "create", &path, e))?;
        let lock = fs::File::create(path.join(LOCK))
            .map_err(|e| StoreError::io(image, "create", &path, e))?;
        try_lock(&lock);
        Ok(TmpDir {
            path,
            _lock: lock,
            keep: false,
        })
    }

    /// Stream `opened` into a temp dir, verify, then rename it into place.
    fn install(
        &self,
        image: &str,
        source: &str,
        opened: fetch::Opened,
        expected: Option<&str>,
    ) -> Result<ImageInfo, StoreError> {
        let tmp = self.tmp_dir(image, expected)?;
        let rootfs = tmp.path.join("rootfs");
        fs::create_dir(&rootfs).map_err(|e| StoreError::io(image, "create", &rootfs, e))?;
        let (fetched, mut ex) = stream_into(image, &rootfs, opened, &self.opts, expected)?;
        let mut meta = ImageMeta {
            digest: fetched.digest.clone(),
            names: vec![image.to_owned()],
            source: source.to_owned(),
            archive_size: fetched.size,
            compression: format!("{:?}", fetched.compression).to_lowercase(),
            format: "rootfs".into(),
            ..ImageMeta::default()
        };
        // An OCI layout or `docker save` archive: what we unpacked are blobs; apply its layers.
        if let Some(kind) = oci::detect(&rootfs) {
            let blobs = tmp.path.join("archive");
            fs::rename(&rootfs, &blobs).map_err(|e| StoreError::io(image, "rename", &blobs, e))?;
            fs::create_dir(&rootfs).map_err(|e| StoreError::io(image, "create", &rootfs, e))?;
            drop(ex);
            let (config, layered) = oci::apply(image, &blobs, &rootfs, kind, &self.opts)?;
            ex = layered;
            meta.config = config;
            meta.format = kind.name().into();
            fsutil::remove_tree(&blobs).map_err(|e| StoreError::io(image, "remove", &blobs, e))?;
        }
        self.publish(image, tmp, ex, meta)
    }

    /// An unpacked OCI layout (or `docker save`) directory. Its identity is the
    /// sha256 of its `index.json` (`manifest.json` for docker), which names
    /// every blob by digest.
    fn ensure_layout_dir(
        &self,
        image: &str,
        dir: &Path,
        want: Option<&str>,
    ) -> Result<ImageInfo, StoreError> {
        let kind = oci::detect(dir).ok_or_else(|| StoreError::Oci {
            image: image.to_owned(),
            what: format!("`{}` is not an OCI layout directory", dir.display()),
        })?;
        let top = dir.join(if kind == oci::OciKind::Docker {
            "manifest.json"
        } else {
            "index.json"
        });
        let digest = hash_file(image, &top)?;
        if let Some(w) = want {
            if !w.eq_ignore_ascii_case(&digest) {
                return Err(StoreError::DigestMismatch {
                    image: image.to_owned(),
                    expected: w.to_owned(),
                    actual: digest,
                });
            }
        }
        if let Some(info) = self.find(&digest) {
            return Ok(info);
        }
        let tmp = self.tmp_dir(image, Some(&digest))?;
        let rootfs = tmp.path.join("rootfs");
        fs::create_dir(&rootfs).map_err(|e| StoreError::io(image, "create", &rootfs, e))?;
        let (config, ex) = oci::apply(image, dir, &rootfs, kind, &self.opts)?;
        let meta = ImageMeta {
            digest,
            names: vec![image.to_owned()],
            source: dir.display().to_string(),
            format: kind.name().into(),
            compression: "none".into(),
            config,
            ..ImageMeta::default()
        };
        self.publish(image, tmp, ex, meta)
    }

    /// Flush the extracted tree, write image.json and rename the temp dir into place.
    pub(super) fn publish(
        &self,
        image: &str,
        mut tmp: TmpDir,
        ex: Extractor<'_>,
        mut meta: ImageMeta,
    ) -> Result<ImageInfo, StoreError> {
        let rootfs = tmp.path.join("rootfs");
        let rootfd = ex.root_fd();
        // One syncfs instead of an fsync per file: the rename below must not
        // reach the disk before the files it publishes.
        fsutil::sync_fs(rootfd).map_err(|e| StoreError::io(image, "sync", &rootfs, e))?;
        let (size, skipped, warnings) = ex.finish()?;
        meta.size = size;
        meta.skipped_devices = skipped;
        self.write_meta(image, &tmp.path, &meta)?;
        let dest = self.images_dir().join(&meta.digest);
        let _ = fs::remove_file(tmp.path.join(LOCK));
        match fs::rename(&tmp.path, &dest) {
            Ok(()) => tmp.keep = true,
            // Another run installed the same digest meanwhile: use that one.
            Err(_) if dest.join(META).exists() => {}
            Err(e) => return Err(StoreError::io(image, "rename", &dest, e)),
        }
        fsutil::fsync_dir(&self.images_dir())
            .map_err(|e| StoreError::io(image, "sync", &dest, e))?;
        let mut out = info(&meta.digest.clone(), dest, meta, false);
        out.warnings = warnings;
        if !out.meta.skipped_devices.is_empty() {
            let n = out.meta.skipped_devices.len();
            out.warnings.push(format!(
                "{n} device node(s) skipped (no privilege to create them)"
            ));
        }
        Ok(out)
    }

    /// Every image in the store (not the read-only dirs), with its users.
    pub fn list(&self) -> Result<Vec<ImageEntry>, StoreError> {
        let dir = self.images_dir();
        let users = self.users()?;
        let mut out = Vec::new();
        let rd = fs::read_dir(&dir).map_err(|e| StoreError::io("-", "list", &dir, e))?;
        for ent in rd.flatten() {
            let d = ent.file_name().to_string_lossy().into_owned();
            if !valid_digest(&d) {
                continue;
            }
            if let Some(meta) = read_meta(&ent.path()) {
                let used_by = users
                    .iter()
                    .filter(|(_, dg)| *dg == d)
                    .map(|(c, _)| c.clone())
                    .collect();
                out.push(ImageEntry {
                    info: info(&d, ent.path(), meta, false),
                    used_by,
                });
            }
        }
        out.sort_by(|a, b| a.info.meta.names.cmp(&b.info.meta.names));
        Ok(out)
    }

    /// (container, digest) for every container that records its image.
    fn users(&self) -> Result<Vec<(String, String)>, StoreError> {
        let dir = self.containers_dir();
        let rd = fs::read_dir(&dir).map_err(|e| StoreError::io("-", "list", &dir, e))?;
        let mut out = Vec::new();
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            if let Ok(d) = fs::read_to_string(ent.path().join("image")) {
                out.push((name, d.trim().to_owned()));
            } else if let Some(d) = applied_image(&ent.path()) {
                // Recorded by the state store before any layer was made.
                out.push((name, d));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The digest for a digest, a unique digest prefix or an image name.
    pub fn resolve(&self, what: &str) -> Result<String, StoreError> {
        let all = self.list()?;
        let hits: Vec<&ImageEntry> = all
            .iter()
            .filter(|e| e.info.digest == what || e.info.meta.names.iter().any(|n| n == what))
            .collect();
        let hits = if hits.is_empty() && what.len() >= 6 {
            all.iter()
                .filter(|e| e.info.digest.starts_with(what))
                .collect()
        } else {
            hits
        };
        match hits.as_slice() {
            [one] => Ok(one.info.digest.clone()),
            _ => Err(StoreError::NotFound {
                image: what.to_owned(),
            }),
        }
    }

    /// Remove an image no container uses.
    pub fn remove(&self, what: &str) -> Result<String, StoreError> {
        let digest = self.resolve(what)?;
        let users: Vec<String> = self
            .users()?
            .into_iter()
            .filter(|(_, d)| *d == digest)
            .map(|(c, _)| c)
            .collect();
        if !users.is_empty() {
            return Err(StoreError::InUse {
                image: what.to_owned(),
                containers: users.join(", "),
            });
        }
        self.drop_image(what, &digest)?;
        Ok(digest)
    }

    /// Remove an image dir so that it never looks whole while half deleted:
    /// rename it to a temp name first (cleaned at the next open if we die).
    fn drop_image(&self, image: &str, digest: &str) -> Result<(), StoreError> {
        let dir = self.images_dir().join(digest);
        let doomed = self.images_dir().join(format!(
            ".tmp-rm{}-{}-{}",
            &digest[..12],
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        fs::rename(&dir, &doomed).map_err(|e| StoreError::io(image, "rename", &dir, e))?;
        fsutil::remove_tree(&doomed).map_err(|e| StoreError::io(image, "remove", &doomed, e))
    }

    /// Remove every image no container uses; see [`RootfsStore::gc_keep`].
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        self.gc_keep(&BTreeSet::new())
    }

    /// Remove every image that no container uses and `keep` (digests, e.g.
    /// those of the current and the last-good manifest) does not name, the
    /// blob cache of registry pulls (`.blobs/`, partial downloads too), and
    /// the tag records of removed images. Reports what went and the bytes
    /// freed (allocated blocks, each hard-linked inode once).
    pub fn gc_keep(&self, keep: &BTreeSet<String>) -> Result<GcReport, StoreError> {
        let mut report = GcReport::default();
        let users = self.users()?;
        let kept = |d: &str| keep.contains(d) || users.iter().any(|(_, u)| u == d);
        let dir = self.images_dir();
        let rd = fs::read_dir(&dir).map_err(|e| StoreError::io("-", "list", &dir, e))?;
        // Images, and a firmware image's store dir (only its shifted copies).
        let mut doomed: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|d| valid_digest(d) && !kept(d))
            .collect();
        doomed.sort();
        for d in doomed {
            let bytes = fsutil::tree_bytes(&dir.join(&d));
            self.drop_image(&d, &d)?;
            report.freed += bytes;
            report.removed.push(d);
        }
        let blobs = dir.join(".blobs");
        if cfg!(feature = "registry") && blobs.is_dir() {
            let bytes = fsutil::tree_bytes(&blobs);
            fsutil::remove_tree(&blobs).map_err(|e| StoreError::io("-", "remove", &blobs, e))?;
            report.freed += bytes;
            report.blob_bytes = bytes;
        }
        #[cfg(feature = "registry")]
        {
            let present = self.present_digests();
            super::refs::retain(&self.root, &|d| present.contains(d))?;
        }
        Ok(report)
    }
}

/// What `gc` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Digests of the images removed.
    pub removed: Vec<String>,
    /// Bytes freed in all, blob cache included.
    pub freed: u64,
    /// Of which the blob cache of registry pulls.
    pub blob_bytes: u64,
}

/// What `extract_archive` did.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// sha256 of the archive.
    pub digest: String,
    /// Unpacked bytes.
    pub size: u64,
}

/// Extract a local archive into a new directory `dir` with the store's
/// pipeline, outside any store (the hidden `berth image extract`, used by the
/// benchmark). No syncfs: it measures the pipeline, as `tar -x` does.
pub fn extract_archive(
    file: &Path,
    dir: &Path,
    opts: &StoreOptions,
) -> Result<Extracted, StoreError> {
    let image = "-";
    fs::create_dir(dir).map_err(|e| StoreError::io(image, "create", dir, e))?;
    let opened = fetch::open_file(image, file)?;
    let (fetched, ex) = stream_into(image, dir, opened, opts, None)?;
    let (size, _, _) = ex.finish()?;
    Ok(Extracted {
        digest: fetched.digest,
        size,
    })
}

/// Run the one-pass pipeline into `rootfs`; the producer's digest is checked
/// against `expected` before anything is published.
pub(crate) fn stream_into<'a>(
    image: &'a str,
    rootfs: &Path,
    opened: fetch::Opened,
    opts: &StoreOptions,
    expected: Option<&str>,
) -> Result<(Fetched, Extractor<'a>), StoreError> {
    let mut ex = Extractor::new(image, rootfs, ExtractOptions::for_host(opts.max_image_size))?;
    let fetched = fetch::unpack_stream(image, &mut ex, opened, &opts.fetch)?;
    if let Some(want) = expected {
        if fetched.digest != want {
            return Err(StoreError::DigestMismatch {
                image: image.to_owned(),
                expected: want.to_owned(),
                actual: fetched.digest,
            });
        }
    }
    Ok((fetched, ex))
}

/// Create `dir` (and parents) with `mode`, and correct the mode of an existing one.
pub(crate) fn private_dir(dir: &Path, mode: u32) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)?;
    set_mode(dir, mode)
}

/// chmod unless the mode is right already (no needless metadata write on flash).
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    if fs::metadata(path)?.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// `spec.image_sha256` of a container's applied.json (the state store's record).
fn applied_image(cdir: &Path) -> Option<String> {
    let text = fs::read(cdir.join("applied.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    v.pointer("/spec/image_sha256")?.as_str().map(str::to_owned)
}

fn read_meta(dir: &Path) -> Option<ImageMeta> {
    let text = fs::read(dir.join(META)).ok()?;
    serde_json::from_slice(&text).ok()
}

fn info(digest: &str, dir: PathBuf, meta: ImageMeta, read_only: bool) -> ImageInfo {
    ImageInfo {
        digest: digest.to_owned(),
        rootfs: dir.join("rootfs"),
        dir,
        meta,
        read_only,
        warnings: Vec::new(),
    }
}
