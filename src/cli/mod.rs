//! The command line. `main` parses arguments, runs one subcommand and maps the
//! outcome to an exit code: 0 ok, 1 an action failed, 2 bad usage or manifest.
//! Each error is printed once, by `main`, as `berth: <error>: <cause>...`.

/// `print!` that returns the write's error instead of panicking: a closed
/// stdout (`berth plan | head -1`) then ends berth quietly (see [`main`]).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*).map_err($crate::cli::error::Error::from)
    }};
}

/// `println!` that returns the write's error, as [`out!`].
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err($crate::cli::error::Error::from)
    }};
}

pub(crate) mod apply;
pub mod args;
mod broker;
mod check;
pub mod containers;
pub mod context;
pub mod error;
pub mod exec;
mod fleet;
mod image;
pub mod install;
pub mod kill;
pub mod logs;
pub mod ls;
pub mod pause;
pub mod restart;
pub mod rm;
mod schedule;
mod serve;
pub mod sign;
mod source;
pub mod start;
pub mod status;
pub mod stop;
pub mod trust;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::manifest::ManifestError;
use args::{Cmd, Opt, Parsed, Stop};
use error::Result;

pub use source::{load_manifest, FetchArgs, ManifestArgs};

/// The parsed command line.
#[derive(Debug)]
pub struct Cli {
    /// Options every subcommand takes.
    pub global: Global,
    /// The subcommand and its arguments.
    pub command: Command,
}

/// The options every subcommand takes, before or after its name.
pub const GLOBAL: &[Opt] = &[
    Opt::path(
        "root",
        "DIR",
        "Persistent store: images, containers, volumes [default: manifest \
         `settings.root`, else /var/lib/berth]",
    )
    .env("BERTH_ROOT"),
    Opt::path(
        "runtime-dir",
        "DIR",
        "Runtime directory on tmpfs: pids, logs [default: manifest \
         `settings.runtime_dir`, else /var/run/berth]",
    )
    .env("BERTH_RUNTIME_DIR"),
    Opt::value(
        "cgroup-parent",
        "PATH",
        "cgroup that holds the containers' cgroups, relative to each hierarchy's \
         root [default: chosen for the host: a delegated service cgroup, else berth]",
    )
    .env("BERTH_CGROUP_PARENT"),
    Opt::value(
        "log-size",
        "SIZE",
        "Size at which container logs rotate, e.g. 256K [default: manifest \
         `settings.log_size`, else 1M]",
    )
    .env("BERTH_LOG_SIZE"),
    source::CA_BUNDLE,
    source::FETCH_TIMEOUT,
    source::DEVICE_ID,
    source::GROUP,
    trust::KEYS,
    trust::REQUIRE_SIGNED,
    trust::SIGNATURE_URL,
    trust::KEYS_URL,
];

/// `berth` itself: the list of commands.
pub static ROOT: Cmd = Cmd {
    subcommands: &[
        Cmd {
            args: source::MANIFEST_ARG,
            opts: &[source::VAR, source::VARS_FILE, source::MAX_MANIFEST_SIZE],
            ..Cmd::new("validate", "Check a manifest and report every error")
        },
        Cmd {
            args: source::MANIFEST_ARG,
            opts: &[
                source::VAR,
                source::VARS_FILE,
                source::MAX_MANIFEST_SIZE,
                Opt::flag("json", "Print the resolved desired state as JSON instead"),
                Opt::flag(
                    "raw",
                    "Print only the template's output, even when it is not a valid manifest",
                ),
            ],
            conflicts: &[("json", "raw")],
            ..Cmd::new(
                "render",
                "Print the manifest after templates, with profiles merged into containers",
            )
        },
        Cmd {
            args: source::MANIFEST_ARG,
            opts: &[
                source::VAR,
                source::VARS_FILE,
                source::MAX_MANIFEST_SIZE,
                Opt::flag("json", "Print the plan as JSON"),
                Opt::flag("no-prune", "Keep containers the manifest no longer lists"),
            ],
            ..Cmd::new("plan", "Show what `apply` would change")
        },
        Cmd {
            args: source::MANIFEST_ARG,
            opts: &[
                source::VAR,
                source::VARS_FILE,
                source::MAX_MANIFEST_SIZE,
                Opt::flag("no-prune", "Keep containers the manifest no longer lists"),
                Opt::flag(
                    "serve",
                    "Stay in the foreground as the service's main process: apply again on \
                     SIGHUP (and every --interval), stop every container on SIGTERM",
                ),
                Opt::value(
                    "interval",
                    "SECS",
                    "With --serve: apply again every SECS seconds (a fleet's URL manifest)",
                ),
                Opt::value(
                    "jitter",
                    "DURATION|PERCENT",
                    "With --interval: poll up to this much later than the interval, e.g. 30s \
                     or 10%; 0 turns it off [default: 10%]",
                ),
                Opt::value(
                    "backoff-max",
                    "DURATION",
                    "With --interval: while the manifest URL fails, wait twice as long after \
                     each failed try, up to this and to 8 x the interval [default: 1h]",
                ),
                Opt::flag(
                    "wait",
                    "Wait until what the apply started is healthy; if it is not, roll back to \
                     the last healthy manifest (always on with --serve)",
                ),
                Opt::value(
                    "wait-timeout",
                    "DURATION",
                    "How long --wait waits [default: from the health checks]",
                ),
                Opt::flag(
                    "retry",
                    "Apply the manifest even though it was rolled back before",
                ),
                broker::MQTT,
                broker::MQTT_USER,
                broker::MQTT_PASSWORD_FILE,
                broker::MQTT_KEEPALIVE,
                broker::TOPIC_PREFIX,
            ],
            requires: &[
                ("interval", "serve"),
                ("jitter", "interval"),
                ("backoff-max", "interval"),
            ],
            ..Cmd::new("apply", "Make the device match the manifest")
        },
        check::CMD,
        install::CMD,
        start::CMD,
        stop::CMD,
        restart::CMD,
        kill::CMD,
        rm::CMD,
        ls::CMD,
        status::CMD,
        exec::CMD,
        logs::CMD,
        pause::PAUSE,
        pause::RESUME,
        image::CMD,
        sign::KEY,
        sign::SIGN,
        sign::VERIFY,
        fleet::CMD,
    ],
    ..Cmd::new("berth", env!("CARGO_PKG_DESCRIPTION"))
};

/// The values of the [`GLOBAL`] options; each field is the option of the same
/// name, whose help there says what it means.
#[derive(Debug, Default)]
pub struct Global {
    /// `--root`.
    pub root: Option<PathBuf>,
    /// `--runtime-dir`.
    pub runtime_dir: Option<PathBuf>,
    /// `--cgroup-parent`.
    pub cgroup_parent: Option<String>,
    /// `--log-size`.
    pub log_size: Option<String>,
    /// `--ca-bundle` and `--fetch-timeout`: how images are downloaded.
    pub fetch: FetchArgs,
}

/// The subcommands, one variant per entry of [`ROOT`]; what each does and
/// what its options mean is that table's help text, not repeated here.
#[derive(Debug)]
pub enum Command {
    /// `berth validate`.
    Validate(ManifestArgs),
    /// `berth render`.
    Render {
        /// The manifest and template inputs.
        manifest: ManifestArgs,
        /// `--json`.
        json: bool,
        /// `--raw`.
        raw: bool,
    },
    /// `berth plan`.
    Plan {
        /// The manifest and template inputs.
        manifest: ManifestArgs,
        /// `--json`.
        json: bool,
        /// `--no-prune`.
        no_prune: bool,
    },
    /// `berth apply`.
    Apply {
        /// The manifest and template inputs.
        manifest: ManifestArgs,
        /// `--no-prune`.
        no_prune: bool,
        /// `--serve`.
        serve: bool,
        /// `--interval`, `--jitter` and `--backoff-max`.
        polling: serve::Polling,
        /// `--wait`, `--wait-timeout` and `--retry`.
        waiting: apply::Waiting,
        /// `--mqtt` and its options (used with `--serve`).
        broker: broker::BrokerArgs,
    },
    /// `berth check`: `check::CMD`.
    Check(check::CheckArgs),
    /// `berth install`: [`install::CMD`].
    Install(install::InstallArgs),
    /// The container commands (`start`, `stop`, `exec`...): [`containers`].
    Container(containers::ContainerCommand),
    /// `berth image` and its subcommands: `image::CMD`.
    Image(image::ImageArgs),
    /// `berth key generate`, `berth sign`, `berth verify`: `sign::KEY` and
    /// the others.
    Sign(sign::SignCommand),
    /// `berth fleet status`: `fleet::CMD`.
    Fleet(fleet::FleetArgs),
}

impl Cli {
    /// Parse `args` (without the program name).
    pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Self, Stop> {
        let p = args::parse(&ROOT, GLOBAL, env!("CARGO_PKG_VERSION"), args)?;
        let global = Global {
            root: p.path("root"),
            runtime_dir: p.path("runtime-dir"),
            cgroup_parent: p.string("cgroup-parent")?,
            log_size: p.string("log-size")?,
            fetch: FetchArgs::from_parsed(&p)?,
        };
        Ok(Self {
            global,
            command: Command::from_parsed(&p)?,
        })
    }
}

impl Command {
    fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        let manifest = || ManifestArgs::from_parsed(p);
        Ok(match p.commands.first().copied().unwrap_or_default() {
            "validate" => Command::Validate(manifest()?),
            "render" => Command::Render {
                manifest: manifest()?,
                json: p.has("json"),
                raw: p.has("raw"),
            },
            "plan" => Command::Plan {
                manifest: manifest()?,
                json: p.has("json"),
                no_prune: p.has("no-prune"),
            },
            "apply" => Command::Apply {
                manifest: manifest()?,
                no_prune: p.has("no-prune"),
                serve: p.has("serve"),
                polling: polling(p)?,
                waiting: waiting(p)?,
                broker: broker::BrokerArgs::from_parsed(p)?,
            },
            "check" => Command::Check(check::CheckArgs::from_parsed(p)?),
            "install" => Command::Install(install::InstallArgs::from_parsed(p)?),
            "image" => Command::Image(image::ImageArgs::from_parsed(p)?),
            "key" | "sign" | "verify" => Command::Sign(sign::SignCommand::from_parsed(p)?),
            "fleet" => Command::Fleet(fleet::FleetArgs::from_parsed(p)?),
            name => Command::Container(containers::ContainerCommand::from_parsed(name, p)?),
        })
    }
}

/// `apply`'s `--wait`, `--wait-timeout` and `--retry`.
fn waiting(p: &Parsed) -> Result<apply::Waiting, UsageError> {
    let timeout = p
        .string("wait-timeout")?
        .map(|t| match crate::manifest::units::duration_secs(&t) {
            Ok(0) | Err(_) => Err(UsageError(format!(
                "--wait-timeout: \"{t}\" is not a duration above zero; use e.g. 90s or 5m"
            ))),
            Ok(s) => Ok(std::time::Duration::from_secs(u64::from(s))),
        })
        .transpose()?;
    Ok(apply::Waiting {
        wait: p.has("wait") || timeout.is_some(),
        timeout,
        retry: p.has("retry"),
    })
}

/// `apply`'s `--interval`, `--jitter` and `--backoff-max`.
fn polling(p: &Parsed) -> Result<serve::Polling, UsageError> {
    let jitter = p
        .string("jitter")?
        .map(|t| schedule::Jitter::parse(&t).map_err(|e| UsageError(format!("--jitter: {e}"))))
        .transpose()?
        .unwrap_or(schedule::DEFAULT_JITTER);
    let backoff_max = p
        .string("backoff-max")?
        .map(|t| {
            crate::manifest::units::duration_secs(&t)
                .map(|s| std::time::Duration::from_secs(u64::from(s)))
                .map_err(|e| UsageError(format!("--backoff-max: {e}")))
        })
        .transpose()?;
    let interval: Option<u64> = p.num("interval")?;
    if interval == Some(0) {
        // It would poll the origin in a loop as fast as it answers.
        return Err(UsageError(
            "--interval: 0 would poll without a pause; give at least 1 (seconds)".into(),
        ));
    }
    Ok(serve::Polling {
        interval,
        jitter,
        backoff_max,
    })
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
    // No berth process is dumpable: a container that sees it (a shared PID
    // namespace, the `exec` join) gets neither its /proc/PID/exe (the host's
    // berth binary, to overwrite once we exit), mem nor fds without
    // CAP_SYS_PTRACE. (prctl cannot fail with these arguments.)
    let _ = crate::host::runtime::fds::set_non_dumpable();
    // Hidden runtime modes go before the parser: the one-shot start path
    // pays nothing for argument parsing.
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
    let cli = match Cli::parse(std::env::args_os().skip(1)) {
        Ok(cli) => cli,
        Err(Stop::Print(text)) => {
            // Help into a closed pipe is not an error.
            let _ = out!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(Stop::Usage(e)) => {
            eprintln!("berth: {e}");
            return ExitCode::from(2);
        }
    };
    // Container commands return their own exit code (`exec` passes one on).
    if let Command::Container(c) = &cli.command {
        return match containers::run(&cli.global, c) {
            Ok(code) => code,
            Err(err) => report(&err),
        };
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

/// Print `err` once and pick the exit code. A closed stdout is how a reader
/// (`| head`) says it has seen enough: berth ends quietly with 0, as ripgrep does.
fn report(err: &error::Error) -> ExitCode {
    if err.is_broken_pipe() {
        return ExitCode::SUCCESS;
    }
    eprintln!("berth: {err}");
    ExitCode::from(exit_code(err))
}

fn exit_code(err: &error::Error) -> u8 {
    if let Some(e) = err
        .chain()
        .find_map(|e| e.downcast_ref::<exec::ExecError>())
    {
        return e.code();
    }
    let refused = err
        .chain()
        .find_map(|e| e.downcast_ref::<trust::TrustError>())
        .is_some_and(trust::TrustError::is_bad_input);
    if refused || err.is::<ManifestError>() || err.is::<UsageError>() || refused_signature(err) {
        2
    } else {
        1
    }
}

/// A signature or key file berth refuses: exit code 2, as a bad manifest.
fn refused_signature(err: &error::Error) -> bool {
    err.is::<sign::SignError>()
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Validate(m) => {
            let loaded = load_manifest(&m)?;
            outln!(
                "{}: ok ({} container(s))",
                m.display_name(),
                loaded.desired.containers.len()
            )?;
            Ok(())
        }
        Command::Render {
            manifest,
            raw: true,
            ..
        } => {
            out!("{}", source::render_manifest(&manifest)?)?;
            Ok(())
        }
        Command::Render { manifest, json, .. } => {
            let loaded = load_manifest(&manifest)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&loaded.desired)?)?;
            } else {
                out!(
                    "{}",
                    crate::manifest::yaml::to_string(&merged_manifest(&loaded.manifest))?
                )?;
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
            polling,
            waiting,
            broker,
        } => serve::serve(
            &cli.global,
            &manifest,
            !no_prune,
            &polling,
            waiting,
            &broker,
        ),
        Command::Apply {
            manifest,
            no_prune,
            waiting,
            ..
        } => apply::apply(&cli.global, &manifest, !no_prune, waiting),
        Command::Check(args) => check::run(&args),
        Command::Install(args) => install::run(&args),
        Command::Container(c) => containers::run(&cli.global, &c).map(drop),
        Command::Image(args) => image::run(&cli.global, args),
        Command::Sign(cmd) => sign::run(&cmd),
        Command::Fleet(args) => fleet::run(&cli.global, &args).map(drop),
    }
}

/// The manifest with each container's profiles merged in and the profiles gone.
fn merged_manifest(m: &crate::manifest::schema::Manifest) -> crate::manifest::schema::Manifest {
    let mut out = m.clone();
    for c in out.containers.values_mut() {
        let mut merged = crate::manifest::schema::ContainerFields::default();
        for p in &c.profiles {
            if let Some(profile) = m.profiles.get(p) {
                merged = crate::manifest::profile::merge(&merged, profile);
            }
        }
        *c = crate::manifest::profile::merge(&merged, c);
        c.profiles.clear();
    }
    out.profiles.clear();
    out.vars.clear();
    out
}
