//! Where a manifest comes from (a path, `-` for stdin, or a URL) and the
//! template inputs given on the command line.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::cli::args::{Opt, Parsed, Pos};
use crate::cli::error::{Context, Error, Result};
use crate::cli::UsageError;
use crate::host::facts;
use crate::host::store::fetch::{self, FetchOptions};
use crate::manifest::{self, Loaded, RenderInput};

/// A manifest larger than this is refused (a wrong URL serving a big file).
const MAX_MANIFEST: u64 = 4 << 20;

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

/// Manifest source and template variables.
#[derive(Debug, Clone)]
pub struct ManifestArgs {
    /// Manifest: a path, `-` for stdin, or an http(s) URL
    pub source: String,
    /// Set a template variable (repeatable); wins over `vars:` and --vars-file
    pub vars: Vec<String>,
    /// YAML file of template variables; wins over the manifest's `vars:`
    pub vars_file: Option<String>,
}

impl ManifestArgs {
    /// The manifest (first argument, `MANIFEST_ARG`) and the template options.
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            source: p.arg(0)?.unwrap_or_else(|| DEFAULT_MANIFEST.to_owned()),
            vars: p.strings("var")?,
            vars_file: p.string("vars-file")?,
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
    let (text, base_dir, input) = read_with_input(args)?;
    Ok(manifest::load(
        args.display_name(),
        &text,
        &base_dir,
        &input,
    )?)
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

fn read_with_input(args: &ManifestArgs) -> Result<(String, String, RenderInput)> {
    let (text, base_dir) = read_source(&args.source)?;
    let mut input = RenderInput {
        facts: facts::read(Path::new("/")),
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
        let text = std::fs::read_to_string(file)
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

/// The manifest text and the directory relative image paths are taken from.
fn read_source(source: &str) -> Result<(String, String)> {
    if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("read manifest from stdin")?;
        let cwd = std::env::current_dir().context("get current directory")?;
        return Ok((text, cwd.to_string_lossy().into_owned()));
    }
    if source.starts_with("http://") || source.starts_with("https://") {
        // A fleet server's manifest: fetched into memory, never written to flash.
        let opts = FetchOptions {
            progress: false,
            ..FetchOptions::default()
        };
        let text = fetch::fetch_text("manifest", source, &opts, MAX_MANIFEST).map_err(|e| {
            let cause = crate::host::chain(&e);
            let cause = cause.strip_prefix("image `manifest`: ").unwrap_or(&cause);
            Error::msg(format!("manifest: {cause}"))
        })?;
        let cwd = std::env::current_dir().context("get current directory")?;
        return Ok((text, cwd.to_string_lossy().into_owned()));
    }
    let path = Path::new(source);
    let text = std::fs::read_to_string(path).map_err(|e| {
        let fix = if e.kind() == std::io::ErrorKind::NotFound {
            "; give the manifest's path"
        } else {
            ""
        };
        UsageError(format!("read manifest `{source}`: {e}{fix}"))
    })?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Ok((text, dir.to_string_lossy().into_owned()))
}
