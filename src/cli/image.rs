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
    ..Cmd::new("image", "Manage extracted images: ls, import, rm, gc")
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

fn open(global: &Global) -> Result<RootfsStore> {
    let root = global
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::cli::context::DEFAULT_ROOT));
    // The image commands read local archives only: nothing is downloaded.
    Ok(RootfsStore::open(&root, StoreOptions::default())?)
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
            for d in store.gc()? {
                outln!("removed {d}")?;
            }
        }
        ImageCommand::Extract { .. } => {}
    }
    Ok(())
}
