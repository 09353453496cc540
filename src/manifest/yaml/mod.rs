//! berth's YAML front end: the manifest, vars files and `render` output all go
//! through here, on top of yaml-rust2's event parser.
//!
//! One parser serves both needs of the spec: typed values (a serde
//! `Deserializer` over a tree of positioned nodes, in `de`) and positions for
//! validation (`pos`). Errors carry the field path and the line and column of
//! the value they are about.

mod de;
pub mod events;
mod ser;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;
use yaml_rust2::parser::Event;
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::pos::Pos;

/// A YAML value with the position it starts at.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

/// What a node holds. Scalars keep their text; their type (null, bool,
/// number, string) is resolved when a value is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `plain` is false for quoted and block scalars and for scalars tagged
    /// `!!str`: those are always strings.
    Scalar {
        text: Box<str>,
        plain: bool,
    },
    // Boxed slices and strings: exactly as long as their content, a word
    // shorter each than a Vec or String (a long list is many nodes).
    Seq(Box<[Node]>),
    /// Entries in document order.
    Map(Box<[(Node, Node)]>),
}

/// A scalar resolved by the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(&'a str),
}

impl Node {
    /// The scalar's value, or `None` for a sequence or map.
    pub fn scalar(&self) -> Option<Scalar<'_>> {
        match &self.kind {
            Kind::Scalar { text, plain: true } => Some(resolve(text)),
            Kind::Scalar { text, .. } => Some(Scalar::Str(text)),
            _ => None,
        }
    }
}

/// Resolve a plain scalar: `~`/`null`, `true`/`false`, integers (decimal,
/// `0x`, `0o`), floats (`.inf`, `.nan` too); anything else is a string.
fn resolve(text: &str) -> Scalar<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    let (digits, radix) = if let Some(hex) = text.strip_prefix("0x") {
        (hex, 16)
    } else if let Some(oct) = text.strip_prefix("0o") {
        (oct, 8)
    } else {
        (text, 10)
    };
    let int_like = !digits.is_empty()
        && digits
            .strip_prefix(['-', '+'])
            .filter(|_| radix == 10)
            .unwrap_or(digits)
            .chars()
            .all(|c| c.is_digit(radix));
    if int_like {
        if let Ok(u) = u64::from_str_radix(digits.trim_start_matches('+'), radix) {
            return match i64::try_from(u) {
                Ok(i) => Scalar::Int(i),
                Err(_) => Scalar::Uint(u),
            };
        }
        if let Ok(i) = i64::from_str_radix(digits, radix) {
            return Scalar::Int(i);
        }
    }
    if is_float(text) {
        if let Ok(f) = text.parse::<f64>() {
            return Scalar::Float(f);
        }
    }
    Scalar::Str(text)
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_float(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exp) = match t.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (t, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (digits(int) || int.is_empty())
                && (digits(frac) || frac.is_empty())
                && !(int.is_empty() && frac.is_empty())
        }
        None => digits(mantissa),
    };
    let exp_ok = exp.map_or(true, |e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exp_ok
}

/// A YAML syntax error or a value of the wrong shape, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    /// Where the offending value starts; `None` until a node claims the error.
    pub pos: Option<Pos>,
    /// Field path of the value, e.g. `containers.web.mounts[0]`; empty for the
    /// document itself.
    pub path: String,
    pub message: String,
    /// A syntax error rather than a wrong value.
    pub syntax: bool,
    /// A bound on untrusted text was reached (aliases, nesting, tags).
    pub limit: bool,
    /// An unknown field: its name, the key at `pos`. The caller can report it,
    /// drop the key and look for more.
    pub unknown_field: Option<String>,
}

impl YamlError {
    fn syntax(marker: &Marker, info: &str) -> YamlError {
        YamlError {
            pos: Some(pos(marker)),
            path: String::new(),
            message: info.to_string(),
            syntax: true,
            limit: false,
            unknown_field: None,
        }
    }

    fn limit(at: Pos, message: String) -> YamlError {
        YamlError {
            pos: Some(at),
            path: String::new(),
            message,
            syntax: false,
            limit: true,
            unknown_field: None,
        }
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.pos {
            write!(f, "line {} column {}: ", p.line, p.col)?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for YamlError {}

impl serde::de::Error for YamlError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        YamlError {
            pos: None,
            path: String::new(),
            message: msg.to_string(),
            syntax: false,
            limit: false,
            unknown_field: None,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = <Self as serde::de::Error>::custom(format_args!(
            "unknown field `{field}`{}",
            suggest(field, expected)
        ));
        e.unknown_field = Some(field.to_string());
        e
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        <Self as serde::de::Error>::custom(format_args!(
            "unknown variant `{variant}`{}",
            suggest(variant, expected)
        ))
    }
}

/// `, did you mean `x`?` for the closest expected name within a couple of
/// edits, else the list of expected names (as serde words it).
fn suggest(got: &str, expected: &[&str]) -> String {
    let near = expected
        .iter()
        .map(|e| (edit_distance(got, e), *e))
        .min()
        .filter(|(d, e)| *d <= (e.len().max(got.len()) / 3).clamp(1, 3));
    match near {
        Some((_, e)) => format!(", did you mean `{e}`?"),
        None if expected.is_empty() => ", there are none".to_string(),
        None => format!(
            ", expected one of {}",
            expected
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Levenshtein distance over chars; names are short, so two rows suffice.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let swap = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + swap).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Drop the map entry whose key is `field` at `at` (an unknown field already
/// reported), so the next pass can find the errors after it.
pub fn remove_key(node: &mut Node, at: Pos, field: &str) -> bool {
    match &mut node.kind {
        Kind::Scalar { .. } => false,
        Kind::Seq(items) => items.iter_mut().any(|n| remove_key(n, at, field)),
        Kind::Map(entries) => {
            let hit = entries.iter().position(|(k, _)| {
                k.pos == at && matches!(&k.kind, Kind::Scalar { text, .. } if &**text == field)
            });
            match hit {
                Some(i) => {
                    let mut v = std::mem::take(entries).into_vec();
                    v.remove(i);
                    *entries = v.into_boxed_slice();
                    true
                }
                None => entries
                    .iter_mut()
                    .any(|(_, value)| remove_key(value, at, field)),
            }
        }
    }
}

impl serde::ser::Error for YamlError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        <YamlError as serde::de::Error>::custom(msg)
    }
}

/// Parse the first document of `text` into a node tree. An empty document is
/// a null scalar.
pub fn load(text: &str) -> Result<Node, YamlError> {
    let mut builder = Builder::default();
    events::walk(text, |ev, at| builder.on_event(ev, at))?;
    Ok(builder.root.unwrap_or(Node {
        pos: Pos { line: 1, col: 1 },
        kind: Kind::Scalar {
            text: Box::from(""),
            plain: true,
        },
    }))
}

/// Deserialize a `T` from YAML `text`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    from_node(&load(text)?)
}

/// Deserialize a `T` from a node tree.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, YamlError> {
    T::deserialize(de::NodeDe::root(node))
}

/// Serialize `value` as a block-style YAML document (no `---` line).
pub fn to_string<T: Serialize>(value: &T) -> Result<String, YamlError> {
    let yaml = value.serialize(ser::ToYaml)?;
    let mut out = String::new();
    yaml_rust2::YamlEmitter::new(&mut out)
        .dump(&yaml)
        .map_err(|e| <YamlError as serde::ser::Error>::custom(format!("emit YAML: {e:?}")))?;
    let body = out.strip_prefix("---\n").unwrap_or(&out);
    // A top-level scalar follows `---` on the same line.
    let body = body.strip_prefix("--- ").unwrap_or(body);
    Ok(format!("{body}\n"))
}

fn pos(marker: &Marker) -> Pos {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Pos {
        line: marker.line(),
        col: marker.col() + 1,
    }
}

/// A container being filled: its start, anchor and the nodes so far.
struct Open {
    pos: Pos,
    anchor: usize,
    map: bool,
    items: Vec<Node>,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
}

impl Builder {
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            Some(open) => open.items.push(node),
            None => self.root = self.root.take().or(Some(node)),
        }
    }

    fn close(&mut self) {
        let Some(open) = self.stack.pop() else {
            return;
        };
        // yaml-rust2 marks a block map at its first `:`; its first key is
        // where a reader looks.
        let start = match open.items.first() {
            Some(first) if open.map => first.pos.min(open.pos),
            _ => open.pos,
        };
        let kind = if open.map {
            let mut entries = Vec::with_capacity(open.items.len() / 2);
            let mut items = open.items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                entries.push((k, v));
            }
            Kind::Map(entries.into_boxed_slice())
        } else {
            Kind::Seq(open.items.into_boxed_slice())
        };
        self.push(Node { pos: start, kind }, open.anchor);
    }
}

impl Builder {
    fn on_event(&mut self, ev: Event, at: Pos) -> Result<(), YamlError> {
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == TScalarStyle::Plain && !events::is_str_tag(tag.as_ref());
                self.push(
                    Node {
                        pos: at,
                        kind: Kind::Scalar {
                            text: text.into_boxed_str(),
                            plain,
                        },
                    },
                    anchor,
                );
            }
            Event::Alias(id) => {
                // `events::walk` refused unknown anchors and counted the copy.
                if let Some(mut node) = self.anchors.get(&id).cloned() {
                    node.pos = at;
                    self.push(node, 0);
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let map = matches!(ev, Event::MappingStart(..));
                self.stack.push(Open {
                    pos: at,
                    anchor,
                    map,
                    items: Vec::new(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            _ => {}
        }
        Ok(())
    }
}
