//! `berth install --target-root DIR MANIFEST`: stage a manifest's images into a
//! firmware root filesystem at build time (Yocto's do_rootfs under pseudo,
//! OpenWrt's image build under fakeroot).
//!
//! Every image is verified and unpacked into the read-only image directory
//! inside DIR (`/usr/share/berth/images/<sha256>/rootfs` by default), so it
//! lands in the squashfs already unpacked and the device's first `apply`
//! fetches and extracts nothing. A lock file beside the manifest records each
//! image's digest. Nothing here creates namespaces, cgroups or interfaces, so
//! it runs without privileges; under a fake root, files keep the owners the
//! image gives them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::args::{Cmd, Opt, Parsed};
use super::error::{Context, Error, Result};
use super::source::{MANIFEST_ARG, MAX_MANIFEST_SIZE, VAR, VARS_FILE};
use super::{load_manifest, ManifestArgs, UsageError};
use crate::host::records::write_atomic;
use crate::host::store::{RootfsStore, StoreOptions};
use crate::model::{ImageSource, ImageSpec};

pub use crate::host::store::FIRMWARE_IMAGE_DIR;

/// The lock file written beside the manifest: image name -> sha256.
pub const LOCK_FILE: &str = "images.lock";

/// `berth install`'s table.
pub const CMD: Cmd = Cmd {
    args: MANIFEST_ARG,
    opts: &[
        Opt::path(
            "target-root",
            "DIR",
            "The firmware's root filesystem being built",
        )
        .required(),
        Opt::value(
            "image-dir",
            "PATH",
            "Read-only image directory, as the device sees it",
        )
        .default(FIRMWARE_IMAGE_DIR),
        VAR,
        VARS_FILE,
        MAX_MANIFEST_SIZE,
    ],
    ..Cmd::new(
        "install",
        "Unpack a manifest's images into a firmware root at build time",
    )
};

/// Arguments of `berth install`.
#[derive(Debug)]
pub struct InstallArgs {
    /// The firmware's root filesystem being built
    pub target_root: PathBuf,
    /// Read-only image directory, as the device sees it
    pub image_dir: String,
    /// The manifest and template inputs.
    pub manifest: ManifestArgs,
}

impl InstallArgs {
    /// Read from the parsed command line ([`CMD`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            target_root: p.path("target-root").unwrap_or_default(),
            image_dir: p
                .string("image-dir")?
                .unwrap_or_else(|| FIRMWARE_IMAGE_DIR.into()),
            manifest: ManifestArgs::from_parsed(p)?,
        })
    }
}

/// Unpack every image of the manifest into the target root.
pub fn run(args: &InstallArgs) -> Result<()> {
    let target = &args.target_root;
    if !target.is_dir() {
        return Err(UsageError(format!(
            "--target-root `{}` is not a directory",
            target.display()
        ))
        .into());
    }
    let Some(store_root) = Path::new(&args.image_dir)
        .parent()
        .filter(|_| args.image_dir.ends_with("/images"))
    else {
        return Err(UsageError(format!(
            "--image-dir `{}` must end in /images",
            args.image_dir
        ))
        .into());
    };
    let desired = load_manifest(&args.manifest)?.desired;
    let store_root = under(target, &store_root.to_string_lossy());
    let images_dir = store_root.join("images");
    std::fs::create_dir_all(&images_dir)
        .with_context(|| format!("create `{}`", images_dir.display()))?;
    // `settings.ca_bundle` names the device's file: read the firmware
    // root's copy when the build staged one there.
    let mut settings = desired.settings.clone();
    if let Some(ca) = &settings.ca_bundle {
        let staged = under(target, ca);
        if staged.exists() {
            settings.ca_bundle = Some(staged.to_string_lossy().into_owned());
        }
    }
    let mut opts = StoreOptions {
        fetch: crate::host::store::FetchOptions {
            progress: false,
            ..args.manifest.fetch.image_options(&settings)
        },
        ..StoreOptions::default()
    };
    if let Some(max) = desired.settings.max_image_size {
        opts.max_image_size = max;
    }
    let store = RootfsStore::read_only(&store_root, opts);

    let mut lock = BTreeMap::new();
    for img in desired.images.values() {
        let staged = in_target(target, img);
        let info = store
            .ensure(&staged)
            .map_err(|e| Error::msg(crate::host::chain(&e)))?;
        for w in &info.warnings {
            eprintln!("berth: image `{}`: {w}", img.name);
        }
        outln!(
            "{}: {} -> {}",
            img.name,
            info.digest,
            Path::new(&args.image_dir).join(&info.digest).display()
        )?;
        lock.insert(img.name.clone(), info.digest);
    }
    if args.manifest.source != "-" && !args.manifest.source.contains("://") {
        let dir = Path::new(&args.manifest.source)
            .parent()
            .unwrap_or(Path::new("."));
        let path = dir.join(LOCK_FILE);
        let text = serde_json::to_vec_pretty(&lock)?;
        write_atomic(&path, &text).with_context(|| format!("write `{}`", path.display()))?;
    }
    Ok(())
}

/// `path` as seen from the build host: inside the target root.
fn under(target: &Path, path: &str) -> PathBuf {
    target.join(path.trim_start_matches('/'))
}

/// An image source as the build host reaches it: device paths that exist in
/// the target root are read from there (the build system staged them), other
/// paths and URLs are taken as they are.
fn in_target(target: &Path, img: &ImageSpec) -> ImageSpec {
    let mut out = img.clone();
    if let ImageSource::Path(p) = &img.source {
        let inside = under(target, p);
        if inside.exists() {
            out.source = ImageSource::Path(inside.to_string_lossy().into_owned());
        }
    }
    out
}

/// The digests a lock file beside `manifest` records, if there is one.
pub fn read_lock(manifest_dir: &Path) -> BTreeMap<String, String> {
    std::fs::read(manifest_dir.join(LOCK_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}
