//! Template rendering: the manifest is a minijinja template, rendered before it
//! is parsed.
//!
//! The context has the manifest's own `vars:`, overridden by `--vars-file` and
//! then by `--var key=value`, and the device facts under `device`. Undefined
//! variables are errors. Rendering is deterministic: no clock, no randomness,
//! maps in sorted order.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::manifest::pos::{Pos, PosIndex};
use crate::manifest::yaml::{Kind, Node};
use crate::manifest::{Diagnostic, ManifestError};

/// Facts about the device the manifest is rendered for (`device.*` in templates).
/// A fact the device lacks is left out, so `| default(...)` applies to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facts {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Kernel release, e.g. `6.1.0-21-amd64`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kernel: String,
    /// Machine architecture as uname reports it, e.g. `armv7l`, `mips`, `x86_64`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// OpenWrt board name (/tmp/sysinfo/board_name) or device-tree model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board_name: Option<String>,
    /// Device-tree model, e.g. `Linksys E8450`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Interface name -> MAC address.
    pub macs: BTreeMap<String, String>,
    /// OpenWrt logical network -> Linux device (`wan` -> `eth1`), from /etc/config/network.
    pub interfaces: BTreeMap<String, String>,
    /// /etc/machine-id when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// The device's fleet id (`--device-id`, else from its first physical MAC).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Its rollout bucket, 0 to 99, from the id (`fleet::mqtt::bucket`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<u8>,
    /// The fleet groups it is in (`--group`).
    pub groups: Vec<String>,
}

/// Everything rendering needs besides the template text.
#[derive(Debug, Clone)]
pub struct RenderInput {
    pub facts: Facts,
    /// From `--vars-file`, over the manifest's `vars:`.
    pub vars_file: BTreeMap<String, serde_json::Value>,
    /// From `--var key=value`, over everything else.
    pub vars: BTreeMap<String, String>,
    /// Largest text rendered, in bytes: the manifest, its output and each var.
    pub max_size: usize,
}

impl Default for RenderInput {
    fn default() -> Self {
        Self {
            facts: Facts::default(),
            vars_file: BTreeMap::new(),
            vars: BTreeMap::new(),
            max_size: super::DEFAULT_MAX_MANIFEST,
        }
    }
}

/// Template steps allowed per byte of `--max-manifest-size`: 16M for 1 MiB,
/// well over a second of looping, far more than any manifest needs.
const FUEL_PER_BYTE: u64 = 16;

/// A writer that takes at most `left` bytes: a template loop cannot fill
/// memory before its output is measured.
struct Bounded {
    out: Vec<u8>,
    left: usize,
    over: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.left {
            self.over = true;
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        self.left -= buf.len();
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why a bounded render failed.
enum RenderFail {
    Template(minijinja::Error),
    /// The output would pass `max` bytes.
    TooLarge,
}

/// Render `source` in `ctx`, refusing output past `max` bytes.
fn render_bounded(
    env: &Environment<'_>,
    source: &str,
    ctx: &BTreeMap<String, minijinja::Value>,
    max: usize,
) -> Result<String, RenderFail> {
    let mut w = Bounded {
        out: Vec::new(),
        left: max,
        over: false,
    };
    let result = env
        .template_from_str(source)
        .and_then(|t| t.render_captured_to(ctx, &mut w).map(|_| ()));
    match result {
        _ if w.over => Err(RenderFail::TooLarge),
        Err(e) => Err(RenderFail::Template(e)),
        // The template and every value put in it are UTF-8.
        Ok(()) => Ok(String::from_utf8_lossy(&w.out).into_owned()),
    }
}

/// Render manifest `text` (named `file` in errors) to YAML.
pub fn render(file: &str, text: &str, input: &RenderInput) -> Result<String, ManifestError> {
    let too_large = |line, col, path: &str| {
        ManifestError::Render(Diagnostic {
            file: file.to_string(),
            line,
            col,
            path: path.to_string(),
            message: format!("template output: {}", super::too_large(input.max_size)),
        })
    };
    if text.len() > input.max_size {
        return Err(too_large(1, 1, ""));
    }
    let mut env = Environment::new();
    super::filters::register(&mut env);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    // A loop that prints little can still spin for ever: each render gets
    // FUEL_PER_BYTE steps per byte of the size limit.
    env.set_fuel(Some(
        u64::try_from(input.max_size)
            .unwrap_or(u64::MAX)
            .saturating_mul(FUEL_PER_BYTE),
    ));

    let mut ctx: BTreeMap<String, minijinja::Value> = BTreeMap::new();
    ctx.insert(
        "device".into(),
        minijinja::Value::from_serialize(&input.facts),
    );
    // Overrides first so that manifest vars may use them and device facts.
    for (k, v) in &input.vars_file {
        ctx.insert(k.clone(), minijinja::Value::from_serialize(v));
    }
    for (k, v) in &input.vars {
        ctx.insert(k.clone(), minijinja::Value::from(v.as_str()));
    }
    // Vars may use each other in any order: render those whose inputs are
    // ready, pass after pass, until none is left or no pass makes progress.
    let (vars, lines) = manifest_vars(file, text)?;
    let mut pending: Vec<(String, serde_json::Value)> = vars
        .into_iter()
        .filter(|(k, _)| !input.vars.contains_key(k) && !input.vars_file.contains_key(k))
        .collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut left = Vec::new();
        let mut last_error = None;
        for (k, v) in std::mem::take(&mut pending) {
            let serde_json::Value::String(t) = &v else {
                ctx.insert(k, minijinja::Value::from_serialize(&v));
                continue;
            };
            match render_bounded(&env, t, &ctx, input.max_size) {
                Ok(rendered) => {
                    ctx.insert(k, minijinja::Value::from(rendered));
                }
                Err(RenderFail::TooLarge) => {
                    let (line, col) = lines.get(&k).copied().unwrap_or((1, 1));
                    return Err(too_large(line, col, &format!("vars.{k}")));
                }
                Err(RenderFail::Template(e)) => {
                    last_error = Some((k.clone(), e));
                    left.push((k, v));
                }
            }
        }
        if left.len() == before {
            if let Some((k, e)) = last_error {
                let mut d = render_error(file, &e, 1);
                let (line, col) = lines.get(&k).copied().unwrap_or((1, 1));
                (d.line, d.col, d.path) = (line, col, format!("vars.{k}"));
                if e.kind() == minijinja::ErrorKind::UndefinedError {
                    d.message = format!("template: `{k}` uses an undefined variable; define it under `vars:` or pass --var NAME=VALUE");
                }
                return Err(ManifestError::Render(d));
            }
        }
        pending = left;
    }
    render_bounded(&env, text, &ctx, input.max_size).map_err(|fail| match fail {
        RenderFail::TooLarge => too_large(1, 1, ""),
        RenderFail::Template(e) => {
            let mut d = render_error(file, &e, 0);
            locate_in_template(&mut d, &e, text, &ctx, &env, input.max_size);
            ManifestError::Render(d)
        }
    })
}

fn render_error(file: &str, e: &minijinja::Error, fallback_line: usize) -> Diagnostic {
    let mut message = e
        .detail()
        .map_or_else(|| e.kind().to_string(), ToString::to_string);
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        message = "undefined variable".to_string();
    }
    if e.kind() == minijinja::ErrorKind::OutOfFuel {
        message = format!(
            "runs more than {FUEL_PER_BYTE} steps per byte of --max-manifest-size; \
             loop over less"
        );
    }
    let line = e.line().unwrap_or(fallback_line);
    Diagnostic {
        file: file.to_string(),
        line,
        col: 1,
        path: String::new(),
        message: format!("template: {message}"),
    }
}

/// Name the undefined variable, its column and the field it is in. minijinja
/// reports only the line; the field comes from rendering once more with
/// undefined values left empty and indexing that text.
fn locate_in_template(
    d: &mut Diagnostic,
    e: &minijinja::Error,
    text: &str,
    ctx: &BTreeMap<String, minijinja::Value>,
    env: &Environment,
    max_size: usize,
) {
    let Some(line) = text.lines().nth(d.line.wrapping_sub(1)) else {
        return;
    };
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        if let Some((col, name)) = undefined_name(line, ctx) {
            d.col = col;
            d.message = if let Some(fact) = name.strip_prefix("device.") {
                format!("template: this device has no fact `{fact}`; write `{{{{ {name} | default(...) }}}}` for devices without it")
            } else {
                format!(
                "template: undefined variable `{name}`; define it under `vars:`, pass --var {name}=VALUE, or write `{{{{ {name} | default(...) }}}}`"
                )
            };
        }
    }
    if e.kind() == minijinja::ErrorKind::OutOfFuel {
        // Rendering again would only run out again.
        return;
    }
    let mut lenient = env.clone();
    lenient.set_undefined_behavior(UndefinedBehavior::Lenient);
    // Bounded as the first render was: the same limits hold for this pass.
    if let Ok(rendered) = render_bounded(&lenient, text, ctx, max_size) {
        let col = if d.col > 1 { d.col } else { line.len() + 1 };
        if let Some(path) = PosIndex::build(&rendered).at(d.line, col) {
            d.path = path.to_string();
        }
    }
}

/// The first dotted name inside `{{ }}` or `{% %}` on `line` whose root is not
/// defined, or else the first `device.*` name (a missing fact), with its column.
fn undefined_name(line: &str, ctx: &BTreeMap<String, minijinja::Value>) -> Option<(usize, String)> {
    let mut names = Vec::new();
    let mut rest = line;
    let mut offset = 0;
    while let Some(open) = rest.find("{{").or_else(|| rest.find("{%")) {
        let body_start = open + 2;
        let close = rest[body_start..]
            .find("}}")
            .or_else(|| rest[body_start..].find("%}"))
            .map_or(rest.len(), |c| body_start + c);
        let body = &rest[body_start..close];
        let mut i = 0;
        let bytes = body.as_bytes();
        while i < bytes.len() {
            let c = bytes[i];
            let prev_dot = i > 0 && bytes[i - 1] == b'.';
            // Bytes, not str: `i` may be inside a multi-byte character.
            let in_string = bytes[..i]
                .iter()
                .filter(|b| matches!(b, b'\'' | b'"'))
                .count()
                % 2
                == 1;
            if (c.is_ascii_alphabetic() || c == b'_') && !prev_dot && !in_string {
                let end = body[i..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '.'))
                    .map_or(body.len(), |e| i + e);
                names.push((
                    offset + body_start + i + 1,
                    body[i..end].trim_end_matches('.').to_string(),
                ));
                i = end;
            } else {
                i += 1;
            }
        }
        offset += close;
        rest = &rest[close..];
        if rest.len() >= 2 {
            rest = &rest[2..];
            offset += 2;
        } else {
            break;
        }
    }
    const KEYWORDS: &[&str] = &[
        "for", "in", "if", "else", "endif", "endfor", "not", "and", "or", "is", "defined", "none",
        "true", "false", "range", "default", "set", "loop",
    ];
    let root = |n: &str| n.split('.').next().unwrap_or_default().to_string();
    let candidates: Vec<&(usize, String)> = names
        .iter()
        .filter(|(_, n)| !KEYWORDS.contains(&root(n).as_str()))
        .collect();
    candidates
        .iter()
        .find(|(_, n)| !ctx.contains_key(&root(n)))
        .or_else(|| candidates.iter().find(|(_, n)| n.starts_with("device.")))
        .map(|(c, n)| (*c, n.clone()))
}

/// The top-level `vars:` block and the line and column of each var, read before
/// rendering since the rest of the text may not be YAML until rendered. Only the
/// block itself must be plain YAML.
#[allow(clippy::type_complexity)]
fn manifest_vars(
    file: &str,
    text: &str,
) -> Result<
    (
        BTreeMap<String, serde_json::Value>,
        BTreeMap<String, (usize, usize)>,
    ),
    ManifestError,
> {
    let mut lines = text.lines().enumerate();
    let Some((start, first)) = lines.find(|(_, l)| l.starts_with("vars:")) else {
        return Ok(Default::default());
    };
    let mut block = vec![first];
    for (_, line) in lines {
        let top_level = line
            .chars()
            .next()
            .is_some_and(|c| !c.is_whitespace() && c != '#');
        if top_level {
            break;
        }
        block.push(line);
    }
    let block = block.join("\n");
    #[derive(serde::Deserialize)]
    struct Vars {
        #[serde(default)]
        vars: Option<BTreeMap<String, serde_json::Value>>,
    }
    let refused = |e: super::yaml::YamlError| {
        let at = e.pos.unwrap_or(Pos { line: 1, col: 1 });
        ManifestError::Render(Diagnostic {
            file: file.to_string(),
            line: start + at.line,
            col: at.col,
            path: "vars".into(),
            message: if e.limit {
                e.message
            } else {
                format!(
                    "`vars:` must be a plain YAML map, without template tags around it: {}",
                    e.message
                )
            },
        })
    };
    // One walk of the block: the tree gives both the values and where each starts.
    let tree = super::yaml::load(&block).map_err(refused)?;
    let parsed: Vars = super::yaml::from_node(&tree).map_err(refused)?;
    let vars = parsed.vars.unwrap_or_default();
    let at = var_positions(&tree)
        .filter(|(k, _)| vars.contains_key(*k))
        .map(|(k, p)| (k.to_string(), (start + p.line, p.col)))
        .collect();
    Ok((vars, at))
}

/// Each `vars.NAME` of a parsed block with where its value starts.
fn var_positions(tree: &Node) -> impl Iterator<Item = (&str, Pos)> {
    map_entries(tree)
        .iter()
        .filter(|(k, _)| scalar_text(k) == Some("vars"))
        .flat_map(|(_, v)| map_entries(v).iter())
        .filter_map(|(k, v)| Some((scalar_text(k)?, v.pos)))
}

fn map_entries(n: &Node) -> &[(Node, Node)] {
    match &n.kind {
        Kind::Map(entries) => entries,
        _ => &[],
    }
}

fn scalar_text(n: &Node) -> Option<&str> {
    match &n.kind {
        Kind::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> RenderInput {
        let mut facts = Facts {
            hostname: "rtr".into(),
            arch: "mips".into(),
            ..Facts::default()
        };
        facts.macs.insert("eth0".into(), "02:00:00:00:00:01".into());
        RenderInput {
            facts,
            ..RenderInput::default()
        }
    }

    #[test]
    fn vars_facts_and_overrides() {
        let text = "vars:\n  prefix: 192.168.1\n  name: \"{{ device.hostname }}-web\"\nx: \"{{ prefix }}.5 {{ name }} {{ device.macs.eth0 }}\"\n";
        let out = render("m.yaml", text, &input()).expect("renders");
        assert!(
            out.ends_with("x: \"192.168.1.5 rtr-web 02:00:00:00:00:01\"\n"),
            "{out}"
        );

        let mut inp = input();
        inp.vars.insert("prefix".into(), "10.0.0".into());
        let out = render("m.yaml", text, &inp).expect("renders");
        assert!(out.contains("10.0.0.5"), "{out}");
    }

    #[test]
    fn undefined_variable_is_an_error_with_line() {
        let err = render("m.yaml", "version: 1\nx: \"{{ nope }}\"\n", &input()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("m.yaml:2:8: x: template: undefined variable `nope`"),
            "{msg}"
        );
        assert!(msg.contains("--var nope=VALUE"), "{msg}");
    }

    /// Found by the manifest fuzz target: a multi-byte character inside a
    /// template expression of an erring line.
    #[test]
    fn an_undefined_name_after_a_multibyte_character_is_found() {
        let err = render("m.yaml", "x: \"{{ \u{6c8}\u{6c8} nope }}\"\n", &input()).unwrap_err();
        assert!(err.to_string().starts_with("m.yaml:1:"), "{err}");
        let ctx = BTreeMap::new();
        assert_eq!(
            undefined_name("{{ 'a\u{6c8}' + nope }}", &ctx).map(|(_, n)| n),
            Some("nope".into())
        );
    }

    #[test]
    fn vars_may_use_each_other_in_any_order() {
        let text = "vars:\n  a: \"{{ z }}-a\"\n  z: zed\nx: \"{{ a }}\"\n";
        let out = render("m.yaml", text, &input()).expect("renders");
        assert!(out.ends_with("x: \"zed-a\"\n"), "{out}");
    }

    #[test]
    fn bad_var_is_reported_at_its_line() {
        let text = "version: 1\nvars:\n  a: ok\n  b: \"{{ nope }}\"\n";
        let err = render("m.yaml", text, &input()).unwrap_err().to_string();
        assert!(
            err.starts_with("m.yaml:4:6: vars.b: template: `b` uses an undefined variable"),
            "{err}"
        );
    }

    #[test]
    fn default_filter_covers_missing_facts() {
        let text = "p: \"{{ device.interfaces.wan | default('eth1') }} {{ device.board_name | default('generic') }}\"\n";
        let out = render("m.yaml", text, &input()).expect("renders");
        assert_eq!(out, "p: \"eth1 generic\"\n");
    }

    #[test]
    fn rendering_is_deterministic() {
        let text = "{% for k, v in device.macs|items %}{{ k }}={{ v }} {% endfor %}\n";
        let mut inp = input();
        inp.facts
            .macs
            .insert("br-lan".into(), "02:00:00:00:00:02".into());
        let a = render("m.yaml", text, &inp).expect("renders");
        assert_eq!(a, render("m.yaml", text, &inp).expect("renders"));
        assert!(a.starts_with("br-lan="), "{a}");
    }

    #[test]
    fn a_long_loop_runs_out_of_steps() {
        let inp = RenderInput {
            max_size: 4096,
            ..input()
        };
        // 4096 bytes allow 65536 steps: 100 empty turns fit, 300 x 300 do not.
        let short = "version: 1\n# {% for i in range(100) %}{% endfor %}\n";
        assert!(render("m.yaml", short, &inp).is_ok());
        let long = "version: 1\n# {% for i in range(300) %}{% for j in range(300) %}{% endfor %}{% endfor %}\n";
        let err = render("m.yaml", long, &inp).unwrap_err().to_string();
        assert_eq!(
            err,
            "m.yaml:2:1: template: runs more than 16 steps per byte of --max-manifest-size; loop over less"
        );
    }
}
