//! Where a manifest comes from (a path, `-` for stdin, or a URL) and the
//! template inputs given on the command line.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::args::{Opt, Parsed, Pos};
use crate::cli::error::{Context, Result};
use crate::cli::trust::{Trust, TrustArgs, TrustError, DEFAULT_KEYS};
use crate::cli::UsageError;
use crate::host::facts;
use crate::host::store::fetch::{self, FetchOptions, DEFAULT_CA_BUNDLE};
use crate::host::store::{FetchError, Limits, MinRate};
use crate::manifest::{self, Loaded, RenderInput};
use crate::model::SettingsSpec;

/// The default manifest on a device.
pub const DEFAULT_MANIFEST: &str = "/etc/berth/manifest.yaml";

/// The manifest argument of validate, render, plan, apply and install.
pub const MANIFEST_ARG: &[Pos] = &[Pos::default(
    "MANIFEST",
    "Manifest: a path, `-` for stdin, or an http(s) URL",
    DEFAULT_MANIFEST,
)];

/// `--var KEY=VALUE`.
pub const VAR: Opt = Opt::value(
    "var",
    "KEY=VALUE",
    "Set a template variable (repeatable); wins over `vars:` and --vars-file",
)
.repeat();

/// `--vars-file FILE`.
pub const VARS_FILE: Opt = Opt::value(
    "vars-file",
    "FILE",
    "YAML file of template variables; wins over the manifest's `vars:`",
);

/// `--ca-bundle FILE`, a global option.
pub const CA_BUNDLE: Opt = Opt::path(
    "ca-bundle",
    "FILE",
    "PEM bundle of CA certificates trusted for https: the manifest's URL and images \
     [default: manifest `settings.ca_bundle` for images, else /etc/ssl/certs/ca-certificates.crt]",
)
.env("BERTH_CA_BUNDLE");

/// `--fetch-timeout DURATION`, a global option.
pub const FETCH_TIMEOUT: Opt = Opt::value(
    "fetch-timeout",
    "DURATION",
    "Deadline of each download's connect and response head, and of the whole manifest \
     download, e.g. 90s or 2m [default: manifest `settings.fetch_timeout` for images, else 60s]",
)
.env("BERTH_FETCH_TIMEOUT");

/// `--device-id ID`, a global option.
pub const DEVICE_ID: Opt = Opt::value(
    "device-id",
    "ID",
    "This device's fleet id: template fact `device.id`, its MQTT topics \
     [default: the first physical MAC without colons, else /etc/machine-id, else the hostname]",
)
.env("BERTH_DEVICE_ID");

/// `--group NAME[,NAME...]`, a global option.
pub const GROUP: Opt = Opt::value(
    "group",
    "NAME",
    "A fleet group this device is in (repeatable, or comma-separated): template fact \
     `device.groups`, and the MQTT doorbell topic PREFIX<group>/cmd",
)
.repeat()
.env("BERTH_GROUPS");

/// `--max-manifest-size SIZE`.
pub const MAX_MANIFEST_SIZE: Opt = Opt::value(
    "max-manifest-size",
    "SIZE",
    "Refuse a manifest or vars file larger than SIZE, before or after templates [default: 1M]",
)
.env("BERTH_MAX_MANIFEST_SIZE");

/// The download options of the command line (`--ca-bundle`, `--fetch-timeout`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchArgs {
    /// PEM bundle of CA certificates trusted for https
    pub ca_bundle: Option<PathBuf>,
    /// Deadline of a download's connect and head (a manifest's body too), seconds
    pub timeout: Option<u32>,
}

impl FetchArgs {
    /// Read the global download options.
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        let timeout = p
            .string("fetch-timeout")?
            .map(|t| {
                crate::manifest::units::deadline_secs(&t)
                    .map_err(|e| UsageError(format!("--fetch-timeout: {e}")))
            })
            .transpose()?;
        Ok(Self {
            ca_bundle: p.path("ca-bundle"),
            timeout,
        })
    }

    /// How the manifest itself is fetched: the command line only, since the
    /// manifest's settings are not known before it is read.
    pub fn manifest_options(&self) -> FetchOptions {
        let mut limits = Limits::manifest();
        if let Some(secs) = self.timeout {
            limits.deadline = Duration::from_secs(u64::from(secs));
        }
        FetchOptions {
            ca_bundle: self
                .ca_bundle
                .clone()
                .unwrap_or_else(|| DEFAULT_CA_BUNDLE.into()),
            progress: false,
            limits,
        }
    }

    /// How images are fetched: the command line, else the manifest's
    /// settings, else the defaults.
    pub fn image_options(&self, settings: &SettingsSpec) -> FetchOptions {
        let mut limits = Limits::image();
        if let Some(secs) = self.timeout.or(settings.fetch_timeout) {
            limits.deadline = Duration::from_secs(u64::from(secs));
        }
        if let Some(rate) = settings.fetch_min_rate {
            // 0 turns the rule off: only the stall time bounds the body.
            limits.min_rate = (rate > 0).then(|| MinRate {
                bytes_per_sec: rate,
                ..Limits::image_rate()
            });
        }
        let ca_bundle = self
            .ca_bundle
            .clone()
            .or_else(|| settings.ca_bundle.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| DEFAULT_CA_BUNDLE.into());
        FetchOptions {
            ca_bundle,
            limits,
            ..FetchOptions::default()
        }
    }
}

/// Manifest source and template variables.
#[derive(Debug, Clone)]
pub struct ManifestArgs {
    /// Manifest: a path, `-` for stdin, or an http(s) URL
    pub source: String,
    /// Set a template variable (repeatable); wins over `vars:` and --vars-file
    pub vars: Vec<String>,
    /// YAML file of template variables; wins over the manifest's `vars:`
    pub vars_file: Option<String>,
    /// How an http(s) manifest is fetched.
    pub fetch: FetchArgs,
    /// Largest manifest or vars file read, in bytes (`--max-manifest-size`).
    pub max_size: usize,
    /// Which signatures the manifest needs.
    pub trust: TrustArgs,
    /// `--device-id` and `--group`.
    pub identity: Identity,
}

/// Who the device is in its fleet: `--device-id` and `--group`.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// `--device-id`; `None`: derived from the device (`facts::default_device_id`).
    pub device_id: Option<String>,
    pub groups: Vec<String>,
}

impl Identity {
    /// Read and check `--device-id` and `--group`: each must be one MQTT
    /// topic level, so a device cannot subscribe to others' topics.
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        let device_id = p.string("device-id")?;
        if let Some(id) = &device_id {
            check_name("--device-id", id).map_err(UsageError)?;
        }
        let mut groups: Vec<String> = Vec::new();
        for g in p.strings("group")?.iter().flat_map(|g| g.split(',')) {
            let g = g.trim();
            check_name("--group", g).map_err(UsageError)?;
            if g == "all" {
                return Err(UsageError(
                    "--group `all` is every device's topic already; name a smaller group".into(),
                ));
            }
            if !groups.iter().any(|x| x == g) {
                groups.push(g.to_string());
            }
        }
        Ok(Identity { device_id, groups })
    }

    /// The device id: the one given, else the device's own.
    pub fn device_id(&self) -> String {
        self.device_id
            .clone()
            .unwrap_or_else(|| facts::default_device_id(Path::new("/")))
    }
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    crate::fleet::mqtt::check_name(what, name)
        .map_err(|e| format!("{e}; set it with {what} or its variable"))
}

impl ManifestArgs {
    /// The manifest (first argument, `MANIFEST_ARG`) and the template options.
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            source: p.arg(0)?.unwrap_or_else(|| DEFAULT_MANIFEST.to_owned()),
            vars: p.strings("var")?,
            vars_file: p.string("vars-file")?,
            fetch: FetchArgs::from_parsed(p)?,
            max_size: max_size(p)?,
            // Only `apply` keeps what it accepted; the rest check and write nothing.
            trust: TrustArgs::from_parsed(p, p.commands.first() == Some(&"apply"))?,
            identity: Identity::from_parsed(p)?,
        })
    }

    /// The name errors use for the manifest.
    pub fn display_name(&self) -> &str {
        if self.source == "-" {
            "<stdin>"
        } else {
            &self.source
        }
    }
}

/// Read, render, parse and validate the manifest the arguments name.
pub fn load_manifest(args: &ManifestArgs) -> Result<Loaded> {
    let (text, base_dir) = read_source(args)?;
    load_read(args, text, base_dir)
}

/// Only render the manifest's template: the YAML that validation reads, shown
/// even when it is not a valid manifest.
pub fn render_manifest(args: &ManifestArgs) -> Result<String> {
    let (text, _, input) = read_with_input(args)?;
    Ok(manifest::render::render(
        args.display_name(),
        &text,
        &input,
    )?)
}

/// The largest `--max-manifest-size`: the text is held in memory a few times.
const MAX_MANIFEST_CEILING: usize = 1 << 30;

/// `--max-manifest-size` (or `BERTH_MAX_MANIFEST_SIZE`) in bytes, else 1 MiB.
pub fn max_size(p: &Parsed) -> Result<usize, UsageError> {
    let Some(text) = p.string("max-manifest-size")? else {
        return Ok(manifest::DEFAULT_MAX_MANIFEST);
    };
    manifest::units::size(&text)
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=MAX_MANIFEST_CEILING).contains(n))
        .ok_or_else(|| {
            UsageError(format!(
                "--max-manifest-size: \"{text}\" is not a size from 1 to 1G; use e.g. 4M"
            ))
        })
}

fn read_with_input(args: &ManifestArgs) -> Result<(String, String, RenderInput)> {
    let (text, base_dir) = read_source(args)?;
    with_input(args, text, base_dir)
}

/// Render and validate a manifest text that the caller fetched from
/// `args.source` itself (the serve loop's conditional GET of a URL):
/// what [`load_manifest`] does after its read.
pub fn load_manifest_text(args: &ManifestArgs, text: String) -> Result<Loaded> {
    let cwd = std::env::current_dir().context("get current directory")?;
    load_read(args, text, cwd.to_string_lossy().into_owned())
}

/// Render, parse and validate a manifest read from `base_dir`.
fn load_read(args: &ManifestArgs, text: String, base_dir: String) -> Result<Loaded> {
    let (text, base_dir, input) = with_input(args, text, base_dir)?;
    Ok(manifest::load(
        args.display_name(),
        &text,
        &base_dir,
        &input,
    )?)
}

/// The template inputs of the command line, beside a manifest already read.
fn with_input(
    args: &ManifestArgs,
    text: String,
    base_dir: String,
) -> Result<(String, String, RenderInput)> {
    let mut facts = facts::read(Path::new("/"));
    facts.id = args.identity.device_id();
    facts.bucket = Some(crate::fleet::mqtt::bucket(&facts.id));
    facts.groups = args.identity.groups.clone();
    let mut input = RenderInput {
        facts,
        max_size: args.max_size,
        ..RenderInput::default()
    };
    for kv in &args.vars {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            UsageError(format!(
                "--var `{kv}` is not KEY=VALUE; write e.g. --var lan_prefix=192.168.1"
            ))
        })?;
        input.vars.insert(k.trim().to_string(), v.to_string());
    }
    if let Some(file) = &args.vars_file {
        let text = std::fs::File::open(file)
            .and_then(|f| read_limited(f, args.max_size))
            .map_err(|e| UsageError(format!("read vars file `{file}`: {e}")))?;
        input.vars_file =
            crate::manifest::yaml::from_str::<Option<BTreeMap<String, serde_json::Value>>>(&text)
                .map_err(|e| {
                    let at = e
                        .pos
                        .map_or(String::new(), |p| format!("{}:{}:", p.line, p.col));
                    UsageError(format!(
                        "{file}:{at} {}; a vars file is a YAML map of names to values",
                        e.message
                    ))
                })?
                .unwrap_or_default();
    }
    Ok((text, base_dir, input))
}

/// The manifest text, checked against its signature where the trust options
/// ask for one, and the directory relative image paths are taken from.
fn read_source(args: &ManifestArgs) -> Result<(String, String)> {
    let (source, max) = (args.source.as_str(), args.max_size);
    let trust = Trust::load(&args.trust)?;
    let required = |trust: Option<Trust>| {
        trust.ok_or_else(|| TrustError::NoKey {
            path: args
                .trust
                .keys
                .clone()
                .unwrap_or_else(|| DEFAULT_KEYS.into()),
        })
    };
    if source == "-" {
        if args.trust.require_signed {
            required(trust)?;
            return Err(TrustError::Stdin.into());
        }
        let text = read_limited(std::io::stdin(), max)
            .map_err(|e| UsageError(format!("read manifest from stdin: {e}")))?;
        let cwd = std::env::current_dir().context("get current directory")?;
        return Ok((text, cwd.to_string_lossy().into_owned()));
    }
    if source.starts_with("http://") || source.starts_with("https://") {
        // A fleet server's manifest: fetched into memory; with a trusted key,
        // the accepted one is kept on flash (cli::trust).
        let opts = args.fetch.manifest_options();
        let limit = u64::try_from(max).unwrap_or(u64::MAX);
        let fetched = match &trust {
            Some(t) => t.fetch_manifest(source, &opts, limit),
            None => fetch::fetch_text(source, &opts, limit).map_err(Into::into),
        };
        let text = fetched.map_err(|e| {
            let too_large = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<FetchError>(),
                    Some(FetchError::TooLarge { .. })
                )
            });
            if too_large {
                // Too large is bad input (exit 2), as for a file.
                UsageError(format!("manifest `{source}`: {}", manifest::too_large(max))).into()
            } else {
                e.context("manifest")
            }
        })?;
        let cwd = std::env::current_dir().context("get current directory")?;
        return Ok((text, cwd.to_string_lossy().into_owned()));
    }
    let path = Path::new(source);
    let text = std::fs::File::open(path)
        .and_then(|f| read_limited(f, max))
        .map_err(|e| {
            let fix = if e.kind() == std::io::ErrorKind::NotFound {
                "; give the manifest's path"
            } else {
                ""
            };
            UsageError(format!("read manifest `{source}`: {e}{fix}"))
        })?;
    let text = if args.trust.require_signed {
        required(trust)?.check_file(path, text)?
    } else {
        text
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Ok((text, dir.to_string_lossy().into_owned()))
}

/// Read all of `r` as UTF-8, refusing more than `max` bytes (reading stops
/// there: a large file or an endless pipe costs no more memory than that).
fn read_limited(r: impl Read, max: usize) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    r.take(limit).read_to_end(&mut bytes)?;
    if bytes.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            manifest::too_large(max),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            not_text(e.as_bytes(), e.utf8_error().valid_up_to()),
        )
    })
}

/// Where binary garbage starts, as line and column of the text before it.
fn not_text(bytes: &[u8], at: usize) -> String {
    let before = &bytes[..at];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    format!(
        "line {line} column {col}: byte 0x{:02x} is not UTF-8 text; a manifest is YAML text (is this an image or an archive?)",
        bytes[at]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_garbage_is_refused_with_its_position() {
        let e = read_limited(&b"version: 1\nvars:\n  a: x\xff\x00y\n"[..], 100).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3 column 7: byte 0xff is not UTF-8 text; a manifest is YAML text (is this an image or an archive?)"
        );
        assert_eq!(
            read_limited(&b"caf\xc3\xa9\n"[..], 100).unwrap(),
            "caf\u{e9}\n"
        );
    }

    /// The command line wins over the manifest's settings, which win over
    /// the defaults; the manifest itself only follows the command line.
    #[test]
    fn fetch_options_come_from_the_command_line_then_the_settings() {
        let settings = SettingsSpec {
            ca_bundle: Some("/etc/berth/fleet.pem".into()),
            fetch_timeout: Some(90),
            fetch_min_rate: Some(0),
            ..SettingsSpec::default()
        };
        let none = FetchArgs::default();
        let o = none.image_options(&settings);
        assert_eq!(o.ca_bundle, PathBuf::from("/etc/berth/fleet.pem"));
        assert_eq!(o.limits.deadline, Duration::from_secs(90));
        assert_eq!(o.limits.min_rate, None, "0 turns the rule off");
        let defaults = none.image_options(&SettingsSpec::default());
        assert_eq!(defaults.ca_bundle, PathBuf::from(DEFAULT_CA_BUNDLE));
        assert_eq!(defaults.limits, Limits::image());
        let cli = FetchArgs {
            ca_bundle: Some("/ca.pem".into()),
            timeout: Some(5),
        };
        let o = cli.image_options(&SettingsSpec {
            fetch_min_rate: Some(4096),
            ..settings
        });
        assert_eq!(o.ca_bundle, PathBuf::from("/ca.pem"));
        assert_eq!(o.limits.deadline, Duration::from_secs(5));
        assert_eq!(o.limits.min_rate.map(|r| r.bytes_per_sec), Some(4096));
        let m = cli.manifest_options();
        assert_eq!(m.ca_bundle, PathBuf::from("/ca.pem"));
        assert!(m.limits.deadline_covers_body && m.limits.require_framing);
        assert_eq!(m.limits.deadline, Duration::from_secs(5));
        assert_eq!(none.manifest_options().limits, Limits::manifest());
    }
}
