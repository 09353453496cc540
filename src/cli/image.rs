//! `berth image ls|import|rm|gc`: look after the image store by hand
//! (`apply` fetches what a manifest needs on its own).

use std::path::PathBuf;

use clap::Subcommand;

use crate::cli::Global;
use crate::host::store::{FetchOptions, RootfsStore, StoreOptions};

/// The image subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List extracted images: digest, names, size, source, containers using it
    Ls {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Verify and extract a local archive (tar, gzip, zstd, xz; rootfs, OCI or docker save)
    Import {
        /// The archive
        file: PathBuf,
        /// Name to record [default: the file name]
        #[arg(long)]
        name: Option<String>,
        /// Expected sha256 of the archive
        #[arg(long)]
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
    #[command(hide = true)]
    Extract {
        /// The archive
        file: PathBuf,
        /// Target directory (created; must not exist)
        dir: PathBuf,
    },
}

/// Options of `berth image`.
#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    /// PEM bundle of CA certificates for https sources
    #[arg(long, value_name = "FILE", default_value = crate::host::store::fetch::DEFAULT_CA_BUNDLE)]
    pub ca_bundle: PathBuf,
    #[command(subcommand)]
    pub command: ImageCommand,
}

fn open(global: &Global, args: &ImageArgs) -> anyhow::Result<RootfsStore> {
    let root = global
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/lib/berth"));
    let opts = StoreOptions {
        fetch: FetchOptions {
            ca_bundle: args.ca_bundle.clone(),
            ..FetchOptions::default()
        },
        ..StoreOptions::default()
    };
    Ok(RootfsStore::open(&root, opts)?)
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
pub fn run(global: &Global, args: ImageArgs) -> anyhow::Result<()> {
    if let ImageCommand::Extract { file, dir } = &args.command {
        let info = crate::host::store::extract_archive(file, dir, &StoreOptions::default())?;
        println!("{}", info.digest);
        return Ok(());
    }
    let store = open(global, &args)?;
    match args.command {
        ImageCommand::Ls { json } => {
            let list = store.list()?;
            if json {
                let v: Vec<serde_json::Value> = list
                    .iter()
                    .map(|e| serde_json::json!({ "meta": e.info.meta, "used_by": e.used_by }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!(
                "{:<14} {:<20} {:>10} {:<30} USED BY",
                "DIGEST", "NAMES", "SIZE", "SOURCE"
            );
            for e in list {
                let m = &e.info.meta;
                println!(
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
                );
            }
        }
        ImageCommand::Import { file, name, sha256 } => {
            let name = name.unwrap_or_else(|| {
                file.file_name()
                    .map_or_else(|| "image".into(), |n| n.to_string_lossy().into_owned())
            });
            let spec = crate::spec::types::ImageSpec {
                name,
                source: crate::spec::types::ImageSource::Path(file.display().to_string()),
                sha256,
            };
            let info = store.ensure(&spec)?;
            for w in &info.warnings {
                eprintln!("berth: warning: {w}");
            }
            println!("{} {}", info.digest, info.rootfs.display());
        }
        ImageCommand::Rm { image } => println!("removed {}", store.remove(&image)?),
        ImageCommand::Gc => {
            for d in store.gc()? {
                println!("removed {d}");
            }
        }
        ImageCommand::Extract { .. } => {}
    }
    Ok(())
}
