//! A registry image into the store: resolve the reference to a manifest
//! or index (its digest is the image's identity, as an OCI layout's is its
//! index.json), pick the device's platform, download config and layers
//! into `images/.blobs/` (resumable, registry.rs), then lay them out as a
//! one-image OCI layout inside the extraction's temp dir and apply it with
//! the layout code (oci.rs: layers in order, both whiteout kinds, the safe
//! extractor). A failure at any step publishes nothing; downloaded blobs
//! and `.partial` files stay in `.blobs/` for the next try, and `gc`
//! removes them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::ops::PRIVATE;
use super::platform::{self, Platform};
use super::regdoc::{Descriptor, Document};
use super::registry::{Client, Fetched};
use super::{oci, refs, FetchOptions, ImageInfo, ImageMeta, Pulled, RootfsStore, StoreError};
use crate::manifest::reference::Reference;
use crate::model::{ImageSource, ImageSpec, RegistrySource};

/// Indexes followed inside one another before giving up (OCI allows
/// nesting; real images use one level).
const MAX_DEPTH: usize = 3;
/// Where the device's CPU is described.
const CPUINFO: &str = "/proc/cpuinfo";

fn reg_err(image: &str, reference: &str, what: impl Into<String>) -> StoreError {
    StoreError::Registry {
        image: image.to_owned(),
        reference: reference.to_owned(),
        what: what.into(),
    }
}

/// The image manifest chosen for the platform.
struct Chosen {
    manifest: Fetched,
    platform: Option<Platform>,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

impl RootfsStore {
    /// `<root>/images/.blobs`: downloaded and partly downloaded blobs.
    pub(super) fn blobs_dir(&self) -> PathBuf {
        self.images_dir().join(".blobs")
    }

    /// Pull `src` as `image`: from the store when `pinned` (hex, the
    /// manifest's or index's digest) or the tag's digest is there, else
    /// from the registry for `platform` (default: the device's).
    pub fn pull(
        &self,
        image: &str,
        src: &RegistrySource,
        pinned: Option<&str>,
        platform: Option<&Platform>,
    ) -> Result<ImageInfo, StoreError> {
        let reference = Reference::parse(&src.reference).map_err(|e| {
            reg_err(
                image,
                &src.reference,
                format!("not an image reference: {e}"),
            )
        })?;
        let canonical = reference.to_string();
        let want = platform
            .cloned()
            .unwrap_or_else(|| platform::device(Path::new(CPUINFO)));
        let pinned = pinned
            .map(str::to_ascii_lowercase)
            .or_else(|| reference.digest.as_deref().map(|d| d[7..].to_owned()));
        if let Some(d) = &pinned {
            if let Some(info) = self.present(image, &canonical, d, &want)? {
                return Ok(info);
            }
        }
        let mut client = Client::new(
            image,
            reference.clone(),
            src.plain_http,
            src.auth.as_deref().map(Path::new),
            &self.opts.fetch,
        )?;
        let what = pinned.as_ref().map_or_else(
            || reference.manifest_ref().to_owned(),
            |d| format!("sha256:{d}"),
        );
        let top = client.manifest(&what)?;
        let identity = top.digest[7..].to_owned();
        if let Some(info) = self.present(image, &canonical, &identity, &want)? {
            return Ok(info);
        }
        let chosen = choose(&mut client, top, &want)?;
        let config = client.small_blob(&chosen.config)?;
        if chosen.platform.is_none() {
            // A single-platform image: its config says what it is built for.
            if let Some(p) = super::regdoc::config_platform(&config) {
                if !want.candidates().iter().any(|c| c.matches(&p)) {
                    return Err(reg_err(image, &canonical, format!(
                        "the image is for {p}, this device runs {want}; pull one built for it, or force with `berth image pull --platform {p}`"
                    )));
                }
            }
        }
        let total: u64 = chosen.layers.iter().map(|l| l.size).sum();
        if total > self.opts.max_image_size {
            return Err(StoreError::TooLarge {
                image: image.to_owned(),
                limit: self.opts.max_image_size,
            });
        }
        let blobs = self.blobs_dir();
        super::ops::private_dir(&blobs, PRIVATE)
            .map_err(|e| StoreError::io(image, "create", &blobs, e))?;
        let defaults = serde_json::from_slice(&config)
            .map(|v| oci::config_defaults(&v))
            .map_err(|e| reg_err(image, &canonical, format!("config blob: not JSON: {e}")))?;
        let tmp = self.tmp_dir(image, Some(&identity))?;
        let rootfs = tmp.path.join("rootfs");
        fs::create_dir(&rootfs).map_err(|e| StoreError::io(image, "create", &rootfs, e))?;
        let mut ex = oci::layer_extractor(image, &rootfs, &self.opts)?;
        let layers = &chosen.layers;
        // Layer N+1 downloads while layer N is applied: the downloader
        // thread hands over each verified blob file in order; a failed
        // extraction drops the channel, which stops it after its blob.
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel(layers.len());
            let (client, blobs) = (&mut client, &blobs);
            s.spawn(move || {
                for l in layers {
                    let got = client.blob(l, blobs);
                    let stop = got.is_err();
                    if tx.send(got).is_err() || stop {
                        return;
                    }
                }
            });
            for l in layers {
                let path = rx
                    .recv()
                    .map_err(|_| reg_err(image, &canonical, "the download stopped"))??;
                let f =
                    fs::File::open(&path).map_err(|e| StoreError::io(image, "open", &path, e))?;
                let res = oci::apply_layer(image, &mut ex, f, Some(l.hex()), &path, &self.opts);
                if res.is_err() {
                    // Verified, but not an applicable layer: not worth keeping.
                    let _ = fs::remove_file(&path);
                }
                res?;
            }
            Ok::<(), StoreError>(())
        })?;
        let meta = ImageMeta {
            digest: identity.clone(),
            names: vec![image.to_owned()],
            source: canonical.clone(),
            archive_size: total,
            format: "oci".into(),
            compression: "layers".into(),
            config: defaults,
            registry: Some(Pulled {
                reference: canonical.clone(),
                manifest: chosen.manifest.digest.clone(),
                platform: chosen.platform.unwrap_or(want).to_string(),
            }),
            ..ImageMeta::default()
        };
        let info = self.publish(image, tmp, ex, meta)?;
        refs::record(&self.root, image, &canonical, Some(&identity))?;
        // Applied and flushed: the compressed copies would only take flash.
        for l in layers {
            let _ = fs::remove_file(blobs.join(l.hex()));
        }
        Ok(info)
    }

    /// The image `digest` when the store has it for a platform `want` runs
    /// (recording `image` as one of its names and the reference's digest).
    fn present(
        &self,
        image: &str,
        canonical: &str,
        digest: &str,
        want: &Platform,
    ) -> Result<Option<ImageInfo>, StoreError> {
        let Some(mut info) = self.find(digest) else {
            return Ok(None);
        };
        if let Some(p) = info.meta.registry.as_ref().map(|r| r.platform.clone()) {
            let fits =
                Platform::parse(&p).is_ok_and(|p| want.candidates().iter().any(|c| c.matches(&p)));
            if !fits {
                return Err(reg_err(image, canonical, format!(
                    "the store holds this image for {p}, not {want}; remove it first (`berth image rm {}`)",
                    &digest[..12]
                )));
            }
        }
        if !info.read_only && !info.meta.names.iter().any(|n| n == image) {
            info.meta.names.push(image.to_owned());
            self.write_meta(image, &info.dir, &info.meta)?;
        }
        refs::record(&self.root, image, canonical, Some(digest))?;
        Ok(Some(info))
    }
}

/// Follow indexes from `top` to the image manifest for `want` (or a lower
/// ARM variant); an index naming itself, or nesting deeper than
/// `MAX_DEPTH`, is refused.
fn choose(client: &mut Client<'_>, top: Fetched, want: &Platform) -> Result<Chosen, StoreError> {
    // Owned: the client is borrowed mutably below.
    let image = client.image_name().to_owned();
    let mut seen = vec![top.digest.clone()];
    let mut doc = top;
    let mut platform = None;
    for _ in 0..=MAX_DEPTH {
        match doc.document {
            Document::Image { config, layers } => {
                return Ok(Chosen {
                    manifest: Fetched {
                        document: Document::Image {
                            config: config.clone(),
                            layers: layers.clone(),
                        },
                        ..doc
                    },
                    platform,
                    config,
                    layers,
                })
            }
            Document::Index(ref entries) => {
                let pick = want.candidates().iter().find_map(|c| {
                    entries
                        .iter()
                        .find(|e| e.platform.as_ref().is_some_and(|p| c.matches(p)))
                        .cloned()
                });
                let Some(entry) = pick else {
                    let list: Vec<String> = entries
                        .iter()
                        .filter_map(|e| e.platform.as_ref().map(Platform::to_string))
                        .collect();
                    return Err(reg_err(&image, &client.reference().to_string(), format!(
                        "no manifest for {want} (or a platform it runs); the index has: {}; pick one with `berth image pull --platform`",
                        if list.is_empty() { "none named".to_owned() } else { list.join(", ") }
                    )));
                };
                if seen.contains(&entry.manifest.digest) {
                    return Err(reg_err(
                        &image,
                        &client.reference().to_string(),
                        format!(
                            "index {} points to itself (through {}); refused",
                            doc.digest, entry.manifest.digest
                        ),
                    ));
                }
                seen.push(entry.manifest.digest.clone());
                platform = entry.platform.clone();
                doc = client.manifest(&entry.manifest.digest)?;
            }
        }
    }
    Err(reg_err(
        &image,
        &client.reference().to_string(),
        format!("indexes nested more than {MAX_DEPTH} deep"),
    ))
}

/// Before planning (`apply`): give every registry image without a digest
/// the one its tag was recorded as, or else the one the registry resolves
/// it to now. A tag that cannot be resolved is left without; the fetch
/// step then reports why.
pub fn resolve_tags(
    store_root: &Path,
    images: &mut BTreeMap<String, ImageSpec>,
    opts: &FetchOptions,
) {
    for img in images.values_mut() {
        let (ImageSource::Registry(src), None) = (&img.source, &img.sha256) else {
            continue;
        };
        if let Some(d) = refs::recorded_ref(store_root, &src.reference) {
            img.sha256 = Some(d);
            continue;
        }
        let Ok(reference) = Reference::parse(&src.reference) else {
            continue;
        };
        let what = reference.manifest_ref().to_owned();
        let auth = src.auth.as_deref().map(Path::new);
        let got = Client::new(&img.name, reference, src.plain_http, auth, opts)
            .and_then(|mut c| c.manifest(&what));
        if let Ok(top) = got {
            img.sha256 = Some(top.digest[7..].to_owned());
        }
    }
}

#[cfg(test)]
#[path = "pull_tests.rs"]
mod tests;
