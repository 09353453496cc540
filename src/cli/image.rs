//! `berth image ls|import|rm|gc`: look after the image store by hand
//! (`apply` fetches what a manifest needs on its own).

use std::path::PathBuf;

use crate::cli::args::{Cmd, Opt, Parsed, Pos};
use crate::cli::error::Result;
use crate::cli::{Global, UsageError};
use crate::host::store::{RootfsStore, StoreOptions};

/// `berth image`'s table, with its subcommands.
pub const CMD: Cmd = Cmd {
    subcommands: &[
        Cmd {
            opts: &[Opt::flag("json", "Print JSON instead of a table")],
            ..Cmd::new(
                "ls",
                "List extracted images: digest, names, size, source, containers using it",
            )
        },
        Cmd {
            args: &[Pos::required("FILE", "The archive")],
            opts: &[
                Opt::value("name", "NAME", "Name to record [default: the file name]"),
                Opt::value("sha256", "SHA256", "Expected sha256 of the archive"),
            ],
            ..Cmd::new(
                "import",
                "Verify and extract a local archive (tar, gzip, zstd, xz; rootfs, OCI or docker save)",
            )
        },
        #[cfg(feature = "registry")]
        Cmd {
            args: &[Pos::required("REF", "Image reference, e.g. ghcr.io/org/web:1.4")],
            opts: &[
                Opt::value("name", "NAME", "Name to record [default: the reference]"),
                Opt::value(
                    "platform",
                    "OS/ARCH[/VARIANT]",
                    "Platform to pull [default: this device's]",
                ),
                Opt::value("auth", "FILE", "File holding USER:PASSWORD for the registry"),
                Opt::flag("plain-http", "Speak plain http to this registry (lab, loopback)"),
            ],
            ..Cmd::new(
                "pull",
                "Pull an image from an OCI registry for this device's platform",
            )
        },
        Cmd {
            args: &[Pos::required("IMAGE", "Digest, unique digest prefix, or name")],
            ..Cmd::new(
                "rm",
                "Remove an image (by digest, digest prefix or name) no container uses",
            )
        },
        Cmd::new("gc", "Remove every image no container uses"),
        Cmd {
            args: &[
                Pos::required("FILE", "The archive"),
                Pos::required("DIR", "Target directory (created; must not exist)"),
            ],
            hidden: true,
            ..Cmd::new(
                "extract",
                "Extract an archive into DIR with the store's pipeline (benchmarks, debugging)",
            )
        },
    ],
    ..Cmd::new("image", "Manage extracted images: ls, import, pull, rm, gc")
};

/// The image subcommands.
#[derive(Debug)]
pub enum ImageCommand {
    /// List extracted images: digest, names, size, source, containers using it
    Ls {
        /// Print JSON instead of a table
        json: bool,
    },
    /// Verify and extract a local archive (tar, gzip, zstd, xz; rootfs, OCI or docker save)
    Import {
        /// The archive
        file: PathBuf,
        /// Name to record [default: the file name]
        name: Option<String>,
        /// Expected sha256 of the archive
        sha256: Option<String>,
    },
    /// Pull an image from an OCI registry for this device's platform
    #[cfg(feature = "registry")]
    Pull {
        /// Image reference
        reference: String,
        /// Name to record
        name: Option<String>,
        /// Platform to pull
        platform: Option<String>,
        /// File holding USER:PASSWORD
        auth: Option<PathBuf>,
        /// Speak plain http
        plain_http: bool,
    },
    /// Remove an image (by digest, digest prefix or name) no container uses
    Rm {
        /// Digest, unique digest prefix, or name
        image: String,
    },
    /// Remove every image no container uses
    Gc,
    /// Extract an archive into DIR with the store's pipeline (benchmarks, debugging)
    Extract {
        /// The archive
        file: PathBuf,
        /// Target directory (created; must not exist)
        dir: PathBuf,
    },
}

/// Options of `berth image`.
#[derive(Debug)]
pub struct ImageArgs {
    /// The image subcommand.
    pub command: ImageCommand,
}

impl ImageArgs {
    /// Read from the parsed command line ([`CMD`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        let command = match p.commands.get(1).copied().unwrap_or_default() {
            "ls" => ImageCommand::Ls {
                json: p.has("json"),
            },
            "import" => ImageCommand::Import {
                file: p.required_path(0)?,
                name: p.string("name")?,
                sha256: p.string("sha256")?,
            },
            #[cfg(feature = "registry")]
            "pull" => ImageCommand::Pull {
                reference: p.required_arg(0)?,
                name: p.string("name")?,
                platform: p.string("platform")?,
                auth: p.string("auth")?.map(PathBuf::from),
                plain_http: p.has("plain-http"),
            },
            "rm" => ImageCommand::Rm {
                image: p.required_arg(0)?,
            },
            "gc" => ImageCommand::Gc,
            "extract" => ImageCommand::Extract {
                file: p.required_path(0)?,
                dir: p.required_path(1)?,
            },
            other => {
                return Err(UsageError(format!(
                    "unknown command `{other}` for `berth image`; see `berth image --help`"
                )))
            }
        };
        Ok(Self { command })
    }
}

/// `--root`, else the default.
fn store_root(global: &Global) -> PathBuf {
    global
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::cli::context::DEFAULT_ROOT))
}

fn open(global: &Global) -> Result<RootfsStore> {
    let root = store_root(global);
    // Only `pull` downloads: with the global --ca-bundle and --fetch-timeout.
    let opts = StoreOptions {
        fetch: global
            .fetch
            .image_options(&crate::model::SettingsSpec::default()),
        ..StoreOptions::default()
    };
    Ok(RootfsStore::open(&root, opts)?)
}

/// `berth image pull`: resolve the tag now (not from the record), pull,
/// and print digest and rootfs as `import` does.
#[cfg(feature = "registry")]
fn pull(
    store: &RootfsStore,
    reference: String,
    name: Option<String>,
    platform: Option<String>,
    auth: Option<PathBuf>,
    plain_http: bool,
) -> Result<()> {
    let platform = platform
        .map(|p| crate::host::store::platform::Platform::parse(&p))
        .transpose()
        .map_err(|e| UsageError(format!("--platform: {e}")))?;
    crate::manifest::reference::Reference::parse(&reference)
        .map_err(|e| UsageError(format!("`{reference}` is not an image reference: {e}")))?;
    let src = crate::model::RegistrySource {
        reference: reference.clone(),
        plain_http,
        auth: auth.map(|a| a.display().to_string()),
    };
    let name = name.unwrap_or(reference);
    let info = store.pull(&name, &src, None, platform.as_ref())?;
    for w in &info.warnings {
        eprintln!("berth: warning: {w}");
    }
    outln!("{} {}", info.digest, info.rootfs.display())?;
    Ok(())
}

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Run one image subcommand.
pub fn run(global: &Global, args: ImageArgs) -> Result<()> {
    if let ImageCommand::Extract { file, dir } = &args.command {
        let info = crate::host::store::extract_archive(file, dir, &StoreOptions::default())?;
        outln!("{}", info.digest)?;
        return Ok(());
    }
    let store = open(global)?;
    match args.command {
        ImageCommand::Ls { json } => {
            let list = store.list()?;
            if json {
                let v: Vec<serde_json::Value> = list
                    .iter()
                    .map(|e| serde_json::json!({ "meta": e.info.meta, "used_by": e.used_by }))
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v)?)?;
                return Ok(());
            }
            outln!(
                "{:<14} {:<20} {:>10} {:<30} USED BY",
                "DIGEST",
                "NAMES",
                "SIZE",
                "SOURCE"
            )?;
            for e in list {
                let m = &e.info.meta;
                outln!(
                    "{:<14} {:<20} {:>10} {:<30} {}",
                    &m.digest[..12.min(m.digest.len())],
                    m.names.join(","),
                    human(m.size),
                    m.source,
                    if e.used_by.is_empty() {
                        "-".to_owned()
                    } else {
                        e.used_by.join(",")
                    }
                )?;
            }
        }
        ImageCommand::Import { file, name, sha256 } => {
            let name = name.unwrap_or_else(|| {
                file.file_name()
                    .map_or_else(|| "image".into(), |n| n.to_string_lossy().into_owned())
            });
            let spec = crate::model::ImageSpec {
                name,
                source: crate::model::ImageSource::Path(file.display().to_string()),
                sha256,
            };
            let info = store.ensure(&spec)?;
            for w in &info.warnings {
                eprintln!("berth: warning: {w}");
            }
            outln!("{} {}", info.digest, info.rootfs.display())?;
        }
        ImageCommand::Rm { image } => outln!("removed {}", store.remove(&image)?)?,
        ImageCommand::Gc => {
            // What a rollback would need stays (docs/fleet.md).
            let report = store.gc_keep(&last_good_images(&store_root(global)))?;
            for d in &report.removed {
                outln!("removed {d}")?;
            }
            outln!(
                "freed {} ({} image(s), {} of downloaded blobs)",
                human(report.freed),
                report.removed.len(),
                human(report.blob_bytes)
            )?;
        }
        #[cfg(feature = "registry")]
        ImageCommand::Pull {
            reference,
            name,
            platform,
            auth,
            plain_http,
        } => pull(&store, reference, name, platform, auth, plain_http)?,
        ImageCommand::Extract { .. } => {}
    }
    Ok(())
}

/// Before `apply` plans: registry tags without a digest get the recorded
/// one, else the registry's answer now (see `store::resolve_tags`).
pub fn resolve_tags(global: &Global, root: &std::path::Path, desired: &mut crate::model::Desired) {
    #[cfg(feature = "registry")]
    {
        let opts = global.fetch.image_options(&desired.settings);
        crate::host::store::resolve_tags(root, &mut desired.images, &opts);
    }
    #[cfg(not(feature = "registry"))]
    let _ = (global, root, desired);
}

/// The images of the last good state (`host::history`), which a rollback
/// needs: `gc` keeps them. A history that cannot be read keeps nothing
/// extra, and says so.
fn last_good_images(root: &std::path::Path) -> std::collections::BTreeSet<String> {
    match crate::host::history::History::new(root).last_good() {
        Ok(good) => good
            .map(|g| g.images.into_values().collect())
            .unwrap_or_default(),
        Err(e) => {
            eprintln!("berth: warning: {}", crate::host::chain(&e));
            Default::default()
        }
    }
}

/// After an apply without failures, with `settings.gc_after_apply`: remove
/// what neither a container, the manifest nor the last good state (what a
/// rollback goes back to) uses, and say what was freed.
pub fn gc_after_apply(root: &std::path::Path, desired: &crate::model::Desired) -> Result<()> {
    if !desired.settings.gc_after_apply {
        return Ok(());
    }
    let store = RootfsStore::open(root, StoreOptions::default())?;
    let mut keep = last_good_images(root);
    keep.extend(desired.images.values().filter_map(|i| i.sha256.clone()));
    let report = store.gc_keep(&keep)?;
    if report.freed > 0 {
        outln!(
            "gc: freed {} ({} image(s))",
            human(report.freed),
            report.removed.len()
        )?;
    }
    Ok(())
}
