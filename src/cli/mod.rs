//! The command line. `main` parses arguments, runs one subcommand and maps the
//! outcome to an exit code: 0 ok, 1 an action failed, 2 bad usage or manifest.
//! Each error is printed once, by `main`, as `berth: <error>: <cause>...`.

pub(crate) mod apply;
mod check;
pub mod containers;
pub mod exec;
mod image;
pub mod install;
pub mod kill;
pub mod logs;
pub mod ls;
pub mod pause;
pub mod restart;
pub mod rm;
mod serve;
mod source;
pub mod start;
pub mod status;
pub mod stop;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::spec::SpecError;

pub use source::{load_manifest, ManifestArgs};

/// Declarative containers for routers: make the device run exactly what a
/// manifest declares.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Persistent store: images, containers, volumes [default: manifest
    /// `settings.root`, else /var/lib/berth]
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Runtime directory on tmpfs: pids, logs [default: manifest
    /// `settings.runtime_dir`, else /var/run/berth]
    #[arg(long, global = true, env = "BERTH_RUNTIME_DIR", value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// cgroup that holds the containers' cgroups, relative to each hierarchy's
    /// root [default: chosen for the host: a delegated service cgroup, else berth]
    #[arg(long, global = true, env = "BERTH_CGROUP_PARENT", value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// Size at which container logs rotate, e.g. 256K [default: manifest
    /// `settings.log_size`, else 1M]
    #[arg(long, global = true, env = "BERTH_LOG_SIZE", value_name = "SIZE")]
    pub log_size: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a manifest and report every error
    Validate(ManifestArgs),
    /// Print the manifest after templates, with profiles merged into containers
    Render {
        #[command(flatten)]
        manifest: ManifestArgs,
        /// Print the resolved desired state as JSON instead
        #[arg(long, conflicts_with = "raw")]
        json: bool,
        /// Print only the template's output, even when it is not a valid manifest
        #[arg(long)]
        raw: bool,
    },
    /// Show what `apply` would change
    Plan {
        #[command(flatten)]
        manifest: ManifestArgs,
        /// Print the plan as JSON
        #[arg(long)]
        json: bool,
        /// Keep containers the manifest no longer lists
        #[arg(long)]
        no_prune: bool,
    },
    /// Make the device match the manifest
    Apply {
        #[command(flatten)]
        manifest: ManifestArgs,
        /// Keep containers the manifest no longer lists
        #[arg(long)]
        no_prune: bool,
        /// Stay in the foreground as the service's main process: apply again on
        /// SIGHUP (and every --interval), stop every container on SIGTERM
        #[arg(long)]
        serve: bool,
        /// With --serve: apply again every SECS seconds (a fleet's URL manifest)
        #[arg(long, value_name = "SECS", requires = "serve")]
        interval: Option<u64>,
    },
    /// Compare what the manifest needs with what this kernel has
    Check(check::CheckArgs),
    /// Unpack a manifest's images into a firmware root at build time
    Install(install::InstallArgs),
    #[command(flatten)]
    Container(containers::ContainerCommand),
    /// Manage extracted images: ls, import, rm, gc
    Image(image::ImageArgs),
}

/// A failure that maps to exit code 2 (bad usage), beside manifest errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Some actions of an apply failed; each was already reported.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} action(s) failed, {skipped} skipped")]
pub struct ActionsFailed {
    pub failed: usize,
    pub skipped: usize,
    pub total: usize,
}

/// Parse the command line, run, and return the exit code.
pub fn main() -> ExitCode {
    // Hidden runtime modes go before clap: the monitor stays small and the
    // one-shot start path pays nothing for argument parsing.
    // (args_os: `std::env::args` would panic on a non-UTF-8 argument.)
    let mode = std::env::args_os().nth(1);
    if let Some(mode) = mode
        .as_ref()
        .and_then(|m| m.to_str())
        .filter(|m| m.starts_with("__"))
    {
        let args: Vec<String> = std::env::args_os()
            .skip(2)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        match mode {
            "__monitor" => return crate::host::runtime::monitor_main(&args),
            "__run" => return crate::host::runtime::run_main(&args),
            _ => {}
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too, with exit code 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    // Container commands return their own exit code (`exec` passes one on).
    if let Command::Container(c) = &cli.command {
        return match containers::run(&cli.global, c) {
            Ok(code) => code,
            Err(err) => {
                eprintln!("berth: {err:#}");
                ExitCode::from(exit_code(&err))
            }
        };
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("berth: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn exit_code(err: &anyhow::Error) -> u8 {
    let bad_input = err
        .chain()
        .any(|e| e.is::<SpecError>() || e.is::<UsageError>());
    if bad_input {
        2
    } else {
        1
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Validate(m) => {
            let loaded = load_manifest(&m)?;
            println!(
                "{}: ok ({} container(s))",
                m.display_name(),
                loaded.desired.containers.len()
            );
            Ok(())
        }
        Command::Render {
            manifest,
            raw: true,
            ..
        } => {
            print!("{}", source::render_manifest(&manifest)?);
            Ok(())
        }
        Command::Render { manifest, json, .. } => {
            let loaded = load_manifest(&manifest)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&loaded.desired)?);
            } else {
                print!(
                    "{}",
                    crate::spec::yaml::to_string(&merged_manifest(&loaded.manifest))?
                );
            }
            Ok(())
        }
        Command::Plan {
            manifest,
            json,
            no_prune,
        } => apply::plan(&cli.global, &manifest, json, !no_prune),
        Command::Apply {
            manifest,
            no_prune,
            serve: true,
            interval,
        } => serve::serve(&cli.global, &manifest, !no_prune, interval),
        Command::Apply {
            manifest, no_prune, ..
        } => apply::apply(&cli.global, &manifest, !no_prune),
        Command::Check(args) => check::run(&args),
        Command::Install(args) => install::run(&args),
        Command::Container(c) => containers::run(&cli.global, &c).map(drop),
        Command::Image(args) => image::run(&cli.global, args),
    }
}

/// The manifest with each container's profiles merged in and the profiles gone.
fn merged_manifest(m: &crate::spec::manifest::Manifest) -> crate::spec::manifest::Manifest {
    let mut out = m.clone();
    for c in out.containers.values_mut() {
        let mut merged = crate::spec::manifest::ContainerFields::default();
        for p in &c.profiles {
            if let Some(profile) = m.profiles.get(p) {
                merged = crate::spec::profile::merge(&merged, profile);
            }
        }
        *c = crate::spec::profile::merge(&merged, c);
        c.profiles.clear();
    }
    out.profiles.clear();
    out.vars.clear();
    out
}
