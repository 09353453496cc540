//! The one loop over yaml-rust2's events. Both readers of YAML text (the node
//! tree in `super` and the position index in `spec::pos`) walk a document
//! through here, so the bounds on untrusted text hold for both:
//!
//! - aliases: what they expand to is counted; a document whose aliases would
//!   add more than [`ALIAS_RATIO`] times its own nodes, or more than
//!   [`MAX_ALIAS_NODES`] in all, is refused at the alias that crosses the line
//!   (a "billion laughs" of a few hundred bytes would otherwise fill memory);
//! - nesting is at most [`MAX_DEPTH`] levels and a field path at most
//!   [`MAX_PATH`] bytes (paths are built per value, so a long key times many
//!   values under it would cost quadratic time and memory);
//! - tags: only `!!str` means something to berth; any other tag is refused
//!   rather than silently read as plain YAML.
//!
//! The size of the text itself is bounded by the caller (`--max-manifest-size`).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::Marker;

use super::{pos, Pos, YamlError};

/// Aliases may add at most this many times the nodes written out in the text.
pub const ALIAS_RATIO: usize = 10;
/// Aliases may add at most this many nodes, whatever the size of the text.
pub const MAX_ALIAS_NODES: usize = 100_000;
/// Sequences and maps nest at most this deep.
pub const MAX_DEPTH: usize = 64;
/// A field path (`containers.web.mounts[0].target`) is at most this long.
pub const MAX_PATH: usize = 1024;

/// A sequence or map being walked.
struct Frame {
    map: bool,
    anchor: usize,
    /// Nodes in it so far, itself included, aliases expanded.
    size: usize,
    /// Length of its field path.
    path: usize,
    /// In a map: the length of the key whose value comes next.
    key: Option<usize>,
    /// In a sequence: the index of the next item.
    next: usize,
}

/// The counts the limits are checked against.
#[derive(Default)]
struct Walk {
    stack: Vec<Frame>,
    /// Anchor id -> nodes of the anchored value, aliases in it expanded.
    anchors: HashMap<usize, usize>,
    /// Nodes written out in the text (an alias counts as one).
    own: usize,
    /// Nodes added by expanding aliases.
    expanded: usize,
}

/// Walk the first document of `text`, handing each event and where it starts
/// to `on`. Stops at the first error, of the parser, of a limit or of `on`.
pub fn walk(
    text: &str,
    mut on: impl FnMut(Event, Pos) -> Result<(), YamlError>,
) -> Result<(), YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut w = Walk::default();
    loop {
        let (ev, mark) = parser
            .next_token()
            .map_err(|e| YamlError::syntax(e.marker(), e.info()))?;
        let at = pos(&mark);
        match &ev {
            Event::StreamEnd | Event::DocumentEnd => return Ok(()),
            Event::Scalar(text, _, anchor, tag) => {
                check_tag(tag.as_ref(), at)?;
                w.node(Some(text.len()), at)?;
                w.leaf(1, *anchor);
            }
            Event::Alias(id) => {
                w.node(None, at)?;
                let Some(&size) = w.anchors.get(id) else {
                    return Err(YamlError::syntax(&mark, "alias to an unknown anchor"));
                };
                w.expanded = w.expanded.saturating_add(size.saturating_sub(1));
                if let Some(why) = w.too_much() {
                    return Err(YamlError::limit(
                        at,
                        format!("alias `*{}`: {why}", alias_name(text, &mark)),
                    ));
                }
                w.leaf(size, 0);
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                check_tag(tag.as_ref(), at)?;
                let path = w.node(None, at)?;
                if w.stack.len() >= MAX_DEPTH {
                    return Err(YamlError::limit(
                        at,
                        format!("nested deeper than {MAX_DEPTH} levels"),
                    ));
                }
                w.stack.push(Frame {
                    map: matches!(ev, Event::MappingStart(..)),
                    anchor: *anchor,
                    size: 1,
                    path,
                    key: None,
                    next: 0,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(done) = w.stack.pop() {
                    w.leaf(done.size, done.anchor);
                }
            }
            _ => {}
        }
        on(ev, at)?;
    }
}

impl Walk {
    /// Account for a node that starts here and return the length of its field
    /// path. `key` is the length of a scalar's text, which names the value
    /// after it when the scalar is a map key.
    fn node(&mut self, key: Option<usize>, at: Pos) -> Result<usize, YamlError> {
        self.own += 1;
        let path = match self.stack.last_mut() {
            None => 0,
            Some(f) if !f.map => {
                let digits = f.next.checked_ilog10().unwrap_or(0) as usize + 1;
                f.next += 1;
                f.path + digits + 2
            }
            Some(f) => match f.key.take() {
                Some(k) if f.path == 0 => k,
                Some(k) => f.path + 1 + k,
                None => {
                    // A key: it names the value that follows. A map or sequence as
                    // a key has no name.
                    f.key = Some(key.unwrap_or(0));
                    f.path
                }
            },
        };
        if path > MAX_PATH {
            return Err(YamlError::limit(
                at,
                format!(
                    "the field path here is {path} bytes, longer than {MAX_PATH}; use shorter keys"
                ),
            ));
        }
        Ok(path)
    }

    /// A finished node of `size` nodes: count it in its parent, remember it
    /// under its anchor.
    fn leaf(&mut self, size: usize, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, size);
        }
        if let Some(f) = self.stack.last_mut() {
            f.size = f.size.saturating_add(size);
        }
    }

    fn too_much(&self) -> Option<String> {
        if self.expanded > MAX_ALIAS_NODES {
            return Some(format!(
                "aliases expand to more than {MAX_ALIAS_NODES} nodes; write the values out or use fewer aliases"
            ));
        }
        if self.expanded > ALIAS_RATIO.saturating_mul(self.own) {
            return Some(format!(
                "aliases expand to {} nodes, more than {ALIAS_RATIO} times the {} written out; write the values out or use fewer aliases",
                self.expanded, self.own
            ));
        }
        None
    }
}

/// Whether `tag` is one berth gives a meaning to: none, or `!!str`.
pub fn is_str_tag(tag: Option<&Tag>) -> bool {
    tag.is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "str")
}

fn check_tag(tag: Option<&Tag>, at: Pos) -> Result<(), YamlError> {
    let Some(t) = tag else {
        return Ok(());
    };
    if is_str_tag(tag) {
        return Ok(());
    }
    let shown = match t.handle.as_str() {
        "tag:yaml.org,2002:" => format!("!!{}", t.suffix),
        "" if t.suffix == "!" => "!".to_string(),
        h => format!("{h}{}", t.suffix),
    };
    Err(YamlError::limit(
        at,
        format!("YAML tag `{shown}` is not supported; remove it (berth knows only `!!str`)"),
    ))
}

/// The anchor name an alias at `mark` refers to, read back from the text.
fn alias_name(text: &str, mark: &Marker) -> String {
    text.chars()
        .skip(mark.index())
        .skip_while(|c| *c == '*')
        .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}'))
        .take(64)
        .collect()
}
