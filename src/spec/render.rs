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

use crate::spec::SpecError;

/// Facts about the device the manifest is rendered for (`device.*` in templates).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facts {
    pub hostname: String,
    /// Kernel release, e.g. `6.1.0-21-amd64`.
    pub kernel: String,
    /// Machine architecture as uname reports it, e.g. `armv7l`, `mips`, `x86_64`.
    pub arch: String,
    /// OpenWrt board name (/tmp/sysinfo/board_name) or device-tree model.
    pub board_name: Option<String>,
    /// Device-tree model, e.g. `Linksys E8450`.
    pub model: Option<String>,
    /// Interface name -> MAC address.
    pub macs: BTreeMap<String, String>,
    /// OpenWrt logical network -> Linux device (`wan` -> `eth1`), from /etc/config/network.
    pub interfaces: BTreeMap<String, String>,
    /// /etc/machine-id when present.
    pub machine_id: Option<String>,
}

/// Everything rendering needs besides the template text.
#[derive(Debug, Clone, Default)]
pub struct RenderInput {
    pub facts: Facts,
    /// From `--vars-file`, over the manifest's `vars:`.
    pub vars_file: BTreeMap<String, serde_yaml::Value>,
    /// From `--var key=value`, over everything else.
    pub vars: BTreeMap<String, String>,
}

/// Render manifest `text` (named `file` in errors) to YAML.
pub fn render(file: &str, text: &str, input: &RenderInput) -> Result<String, SpecError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);

    let mut ctx: BTreeMap<String, minijinja::Value> = BTreeMap::new();
    ctx.insert("device".into(), minijinja::Value::from_serialize(&input.facts));
    // Overrides first so that manifest vars may use them and device facts.
    for (k, v) in &input.vars_file {
        ctx.insert(k.clone(), minijinja::Value::from_serialize(v));
    }
    for (k, v) in &input.vars {
        ctx.insert(k.clone(), minijinja::Value::from(v.as_str()));
    }
    for (k, v) in manifest_vars(file, text)? {
        if input.vars.contains_key(&k) || input.vars_file.contains_key(&k) {
            continue;
        }
        // A var's own value may be a template over the facts and the overrides.
        let value = match v {
            serde_yaml::Value::String(s) => {
                let rendered = env.render_str(&s, &ctx).map_err(|e| render_error(file, &e, 1))?;
                minijinja::Value::from(rendered)
            }
            other => minijinja::Value::from_serialize(&other),
        };
        ctx.insert(k, value);
    }
    env.render_str(text, &ctx).map_err(|e| render_error(file, &e, 0))
}

fn render_error(file: &str, e: &minijinja::Error, fallback_line: usize) -> SpecError {
    let mut message = e.detail().map_or_else(|| e.kind().to_string(), ToString::to_string);
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        message = format!("{message}; define it under `vars:`, pass --var NAME=VALUE, or use `| default(...)`");
    }
    SpecError::Render { file: file.to_string(), line: e.line().unwrap_or(fallback_line), message }
}

/// The top-level `vars:` block, read before rendering since the rest of the
/// text may not be YAML until rendered. Only the block itself must be plain YAML.
fn manifest_vars(file: &str, text: &str) -> Result<BTreeMap<String, serde_yaml::Value>, SpecError> {
    let mut lines = text.lines().enumerate();
    let Some((start, first)) = lines.find(|(_, l)| l.starts_with("vars:")) else {
        return Ok(BTreeMap::new());
    };
    let mut block = vec![first];
    for (_, line) in lines {
        let top_level = line.chars().next().map_or(false, |c| !c.is_whitespace() && c != '#');
        if top_level {
            break;
        }
        block.push(line);
    }
    #[derive(serde::Deserialize)]
    struct Vars {
        #[serde(default)]
        vars: Option<BTreeMap<String, serde_yaml::Value>>,
    }
    let parsed: Vars = serde_yaml::from_str(&block.join("\n")).map_err(|e| SpecError::Render {
        file: file.to_string(),
        line: start + e.location().map_or(1, |l| l.line()),
        message: format!("`vars:` must be a plain YAML map (no templates inside its keys): {e}"),
    })?;
    Ok(parsed.vars.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> RenderInput {
        let mut facts = Facts { hostname: "rtr".into(), arch: "mips".into(), ..Facts::default() };
        facts.macs.insert("eth0".into(), "02:00:00:00:00:01".into());
        RenderInput { facts, ..RenderInput::default() }
    }

    #[test]
    fn vars_facts_and_overrides() {
        let text = "vars:\n  prefix: 192.168.1\n  name: \"{{ device.hostname }}-web\"\nx: \"{{ prefix }}.5 {{ name }} {{ device.macs.eth0 }}\"\n";
        let out = render("m.yaml", text, &input()).expect("renders");
        assert!(out.ends_with("x: \"192.168.1.5 rtr-web 02:00:00:00:00:01\"\n"), "{out}");

        let mut inp = input();
        inp.vars.insert("prefix".into(), "10.0.0".into());
        let out = render("m.yaml", text, &inp).expect("renders");
        assert!(out.contains("10.0.0.5"), "{out}");
    }

    #[test]
    fn undefined_variable_is_an_error_with_line() {
        let err = render("m.yaml", "version: 1\nx: \"{{ nope }}\"\n", &input()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("m.yaml:2: template:"), "{msg}");
        assert!(msg.contains("--var"), "{msg}");
    }

    #[test]
    fn default_filter_covers_missing_facts() {
        let out = render("m.yaml", "p: \"{{ device.interfaces.wan | default('eth1') }}\"\n", &input()).expect("renders");
        assert_eq!(out, "p: \"eth1\"\n");
    }

    #[test]
    fn rendering_is_deterministic() {
        let text = "{% for k, v in device.macs|items %}{{ k }}={{ v }} {% endfor %}\n";
        let mut inp = input();
        inp.facts.macs.insert("br-lan".into(), "02:00:00:00:00:02".into());
        let a = render("m.yaml", text, &inp).expect("renders");
        assert_eq!(a, render("m.yaml", text, &inp).expect("renders"));
        assert!(a.starts_with("br-lan="), "{a}");
    }
}
