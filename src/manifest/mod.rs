//! The pure front of the flow: text -> render -> parse -> validate -> `Desired`.
//!
//! No syscalls and no file writes here: the manifest text, template variables and
//! device facts come in as data from `cli` and `host::facts`.

pub mod filters;
pub mod pos;
pub mod profile;
#[cfg(feature = "registry")]
pub mod reference;
pub mod render;
pub mod schema;
pub mod units;
pub mod validate;
pub mod yaml;

use sha2::Digest;
use std::fmt;

use crate::manifest::schema::Manifest;
use crate::model::Desired;

pub use render::{Facts, RenderInput};

/// The largest manifest (and vars file, and template output) read unless
/// `--max-manifest-size` raises it.
pub const DEFAULT_MAX_MANIFEST: usize = 1 << 20;

/// The message for text over the size limit `max`.
pub fn too_large(max: usize) -> String {
    format!(
        "larger than {max} bytes; raise the limit with --max-manifest-size SIZE \
         (or BERTH_MAX_MANIFEST_SIZE)"
    )
}

/// A manifest error with its position: `file:line:col: field.path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// Field path such as `containers.web.resources.memory`; empty for syntax errors.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a manifest was refused. Every variant is a bad manifest (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The template did not render.
    #[error("{0}")]
    Render(Diagnostic),
    /// The rendered text is not a valid YAML manifest (syntax, types, unknown
    /// fields): every unknown field, then the first other error, if any.
    #[error("{}", list(.0))]
    Parse(Vec<Diagnostic>),
    /// The manifest parsed but some values are wrong; all of them are listed.
    #[error("{}", list(.0))]
    Invalid(Vec<Diagnostic>),
}

fn list(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A manifest taken through the whole front of the flow.
#[derive(Debug)]
pub struct Loaded {
    /// sha256 (hex) of the manifest as read, before rendering: what a
    /// signature covers and what a rollback remembers it by.
    pub sha256: String,
    /// The YAML after template rendering.
    pub rendered: String,
    /// What relative image paths were resolved against.
    pub base_dir: String,
    pub manifest: Manifest,
    pub desired: Desired,
}

/// Render, parse and validate manifest `text`, named `file` in messages.
/// `base_dir` resolves relative image paths.
pub fn load(
    file: &str,
    text: &str,
    base_dir: &str,
    input: &RenderInput,
) -> Result<Loaded, ManifestError> {
    let rendered = render::render(file, text, input)?;
    let manifest = parse(file, &rendered)?;
    let desired = validate::validate(file, &rendered, &manifest, base_dir)?;
    Ok(Loaded {
        sha256: crate::model::hex(&sha2::Sha256::digest(text.as_bytes())),
        rendered,
        base_dir: base_dir.to_string(),
        manifest,
        desired,
    })
}

/// Parse rendered YAML into the manifest model. Unknown fields and wrong types
/// are refused with their position.
pub fn parse(file: &str, text: &str) -> Result<Manifest, ManifestError> {
    let mut node =
        yaml::load(text).map_err(|e| ManifestError::Parse(vec![diagnostic(file, text, e)]))?;
    // An unknown field is reported, dropped, and the document read again, so
    // every misspelt field shows at once; any other error ends the search.
    let mut found = Vec::new();
    loop {
        let e = match yaml::from_node::<Manifest>(&node) {
            Ok(m) if found.is_empty() => return Ok(m),
            Ok(_) => return Err(ManifestError::Parse(found)),
            Err(e) => e,
        };
        let retry = match (&e.unknown_field, e.pos) {
            (Some(field), Some(at)) if found.len() + 1 < MAX_PARSE_ERRORS => {
                yaml::remove_key(&mut node, at, field)
            }
            _ => false,
        };
        found.push(diagnostic(file, text, e));
        if !retry {
            return Err(ManifestError::Parse(found));
        }
    }
}

/// Parse errors reported at most for one manifest (each costs a pass).
const MAX_PARSE_ERRORS: usize = 20;

fn diagnostic(file: &str, text: &str, e: yaml::YamlError) -> Diagnostic {
    let at = e.pos.unwrap_or(pos::Pos { line: 1, col: 1 });
    let (path, message) = if e.syntax {
        match pos::PosIndex::build(text).before(at) {
            // Name the last field that still parsed.
            Some(p) => (
                p.to_string(),
                format!("YAML syntax error after this field: {}", e.message),
            ),
            None => (String::new(), format!("YAML syntax error: {}", e.message)),
        }
    } else {
        (e.path, e.message)
    };
    Diagnostic {
        file: file.to_string(),
        line: at.line,
        col: at.col,
        path,
        message: hint(&message),
    }
}

/// Add the fix to serde's wording where it only says what was wrong.
fn hint(message: &str) -> String {
    if message.starts_with("unknown field") && message.ends_with('?') {
        // "did you mean `x`?" is the fix.
        message.to_string()
    } else if message.starts_with("unknown field") {
        format!("{message}; remove it or correct its spelling (docs/manifest.md lists every field)")
    } else if message.starts_with("missing field") {
        format!("{message}; add it (docs/manifest.md)")
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_names_line_column_and_path() {
        let text = "version: 1\ncontainers:\n  web:\n    image: busybox\n    memroy: 16M\n";
        let ManifestError::Parse(d) = parse("m.yaml", text).unwrap_err() else {
            panic!("not a parse error")
        };
        let d = &d[0];
        assert_eq!((d.line, d.col), (5, 5));
        assert_eq!(d.path, "containers.web");
        assert!(
            d.message.starts_with("unknown field `memroy`"),
            "{}",
            d.message
        );
        assert!(d
            .to_string()
            .starts_with("m.yaml:5:5: containers.web: unknown field `memroy`"));
    }

    #[test]
    fn every_unknown_field_is_reported_with_the_nearest_name() {
        let text = "version: 1\ncontainers:\n  web:\n    image: bb\n    hostnme: w\n    resources: { memroy: 16M }\n  db:\n    image: bb\n    comand: [x]\n    zzz: 1\n";
        let ManifestError::Parse(d) = parse("m.yaml", text).unwrap_err() else {
            panic!("not a parse error")
        };
        let got: Vec<String> = d.iter().map(ToString::to_string).collect();
        let want = [
            "m.yaml:5:5: containers.web: unknown field `hostnme`, did you mean `hostname`?",
            "m.yaml:6:18: containers.web.resources: unknown field `memroy`, did you mean `memory`?",
            "m.yaml:9:5: containers.db: unknown field `comand`, did you mean `command`?",
        ];
        assert_eq!(got[..3], want, "{got:#?}");
        assert!(
            got[3].starts_with(
                "m.yaml:10:5: containers.db: unknown field `zzz`, expected one of `profiles`"
            ) && got[3].ends_with(
                "; remove it or correct its spelling (docs/manifest.md lists every field)"
            ),
            "{got:#?}"
        );
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn the_number_of_parse_errors_is_bounded() {
        let fields: String = (0..40).map(|i| format!("  junk{i}: 1\n")).collect();
        let text = format!("version: 1\nsettings:\n{fields}");
        let ManifestError::Parse(d) = parse("m.yaml", &text).unwrap_err() else {
            panic!("not a parse error")
        };
        assert_eq!(d.len(), MAX_PARSE_ERRORS);
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("m.yaml", "version: 1\ncontainers: [\n").unwrap_err();
        assert!(err.to_string().starts_with("m.yaml:"), "{err}");
    }
}
