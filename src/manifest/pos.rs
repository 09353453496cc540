//! Source positions of manifest values, so that every validation error can name
//! the line and column it is about.
//!
//! serde gives typed values without positions; this index is built from a second,
//! event-level pass over the same rendered text and maps a field path such as
//! `containers.web.mounts[0].target` to where its value starts.

use std::collections::HashMap;

use yaml_rust2::parser::Event;

use crate::manifest::yaml::events;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// Field path -> position of its value.
#[derive(Debug, Default)]
pub struct PosIndex {
    values: HashMap<String, Pos>,
}

impl PosIndex {
    /// Index `text`. A text that does not parse gives the values before the error.
    /// The walk has the bounds of every YAML read (`yaml::events`), and the
    /// paths kept are at most a few times the text: past that, values are found
    /// by their nearest indexed ancestor.
    pub fn build(text: &str) -> PosIndex {
        let mut builder = Builder {
            budget: text.len().saturating_mul(PATH_BUDGET).saturating_add(4096),
            ..Builder::default()
        };
        // On a syntax error the values before it are kept: they tell where it is.
        let _ = events::walk(text, |ev, pos| {
            builder.on_event(ev, pos);
            Ok(())
        });
        PosIndex {
            values: builder.values,
        }
    }

    /// The field whose value starts last before `pos`.
    pub fn before(&self, pos: Pos) -> Option<&str> {
        self.values
            .iter()
            .filter(|(p, at)| **at < pos && !p.is_empty())
            .max_by_key(|(_, at)| **at)
            .map(|(p, _)| p.as_str())
    }

    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn find<'p>(&self, path: &'p str) -> Option<(Pos, &'p str)> {
        let mut p = path;
        loop {
            if let Some(pos) = self.values.get(p) {
                return Some((*pos, p));
            }
            p = parent(p)?;
        }
    }

    /// The field whose value starts last on `line` at or before `col`: the field a
    /// template error on that line is in.
    pub fn at(&self, line: usize, col: usize) -> Option<&str> {
        self.values
            .iter()
            .filter(|(_, p)| p.line == line && p.col <= col)
            .max_by_key(|(path, p)| (p.col, path.len()))
            .map(|(path, _)| path.as_str())
    }

    /// The position of exactly `path`.
    pub fn exact(&self, path: &str) -> Option<Pos> {
        self.values.get(path).copied()
    }
}

/// `a.b[2].c` -> `a.b[2]` -> `a.b` -> `a` -> None.
pub fn parent(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

/// Bytes of field paths kept per byte of text.
const PATH_BUDGET: usize = 8;

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    values: HashMap<String, Pos>,
    /// Bytes of paths that may still be kept.
    budget: usize,
}

impl Builder {
    /// The path of the value that starts now, advancing the enclosing frame.
    /// `None` for a mapping key.
    fn value_path(&mut self, scalar: Option<&str>) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) if path.is_empty() => Some(k),
                Some(k) => Some(format!("{path}.{k}")),
                None => {
                    // A key: complex keys (maps as keys) get an empty name.
                    *key = Some(scalar.unwrap_or_default().to_string());
                    None
                }
            },
        }
    }
}

impl Builder {
    fn record(&mut self, path: String, pos: Pos) {
        if path.len() <= self.budget {
            self.budget -= path.len();
            self.values.entry(path).or_insert(pos);
        }
    }

    fn on_event(&mut self, ev: Event, pos: Pos) {
        match ev {
            Event::Scalar(text, ..) => {
                if let Some(p) = self.value_path(Some(&text)) {
                    self.record(p, pos);
                }
            }
            Event::Alias(_) => {
                if let Some(p) = self.value_path(None) {
                    self.record(p, pos);
                }
            }
            Event::MappingStart(..) => {
                let path = self.value_path(None).unwrap_or_default();
                self.record(path.clone(), pos);
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.value_path(None).unwrap_or_default();
                self.record(path.clone(), pos);
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
version: 1
containers:
  web:
    resources: { memory: 12QB }
    mounts:
      - type: bind
        target: /www
      - { type: tmpfs, target: /tmp }
";

    #[test]
    fn block_and_flow_values_have_positions() {
        let idx = PosIndex::build(TEXT);
        assert_eq!(idx.exact("version"), Some(Pos { line: 1, col: 10 }));
        assert_eq!(
            idx.exact("containers.web.resources.memory"),
            Some(Pos { line: 4, col: 26 })
        );
        assert_eq!(
            idx.exact("containers.web.mounts[0].target"),
            Some(Pos { line: 7, col: 17 })
        );
        assert_eq!(
            idx.exact("containers.web.mounts[1].target"),
            Some(Pos { line: 8, col: 32 })
        );
    }

    #[test]
    fn missing_path_falls_back_to_ancestor() {
        let idx = PosIndex::build(TEXT);
        let (pos, found) = idx
            .find("containers.web.resources.cpu.max")
            .expect("ancestor");
        assert_eq!(found, "containers.web.resources");
        assert_eq!(pos.line, 4);
    }

    #[test]
    fn field_at_a_position() {
        let idx = PosIndex::build(TEXT);
        assert_eq!(idx.at(4, 30), Some("containers.web.resources.memory"));
        assert_eq!(idx.at(8, 33), Some("containers.web.mounts[1].target"));
        assert_eq!(idx.at(99, 1), None);
    }

    #[test]
    fn parent_walks_up() {
        assert_eq!(parent("a.b[2].c"), Some("a.b[2]"));
        assert_eq!(parent("a.b[2]"), Some("a.b"));
        assert_eq!(parent("a"), None);
    }
}
