//! serde `Deserializer` over a node tree. Each error is claimed by the
//! innermost node it arose in, which gives it that node's path and position.

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::{Kind, Node, Scalar, YamlError};

/// Deserializes one node; `path` names it in errors.
pub(super) struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl<'a> NodeDe<'a> {
    pub(super) fn root(node: &'a Node) -> Self {
        NodeDe {
            node,
            path: String::new(),
        }
    }

    /// Give an error that has no position yet this node's position and path.
    fn claim(&self, mut e: YamlError) -> YamlError {
        if e.pos.is_none() {
            e.pos = Some(self.node.pos);
            e.path.clone_from(&self.path);
        }
        e
    }

    fn unexpected(&self) -> de::Unexpected<'a> {
        match &self.node.kind {
            Kind::Seq(_) => de::Unexpected::Seq,
            Kind::Map(_) => de::Unexpected::Map,
            Kind::Scalar { text, .. } => de::Unexpected::Str(text),
        }
    }
}

/// The text of a scalar key; other keys have no name in a path.
fn text_of(node: &Node) -> &str {
    match &node.kind {
        Kind::Scalar { text, .. } => text,
        _ => "",
    }
}

/// YAML forbids a key twice in one map; taking the last would hide a typo.
/// A set, not a scan of the keys before each: a map of many keys stays linear.
fn repeated_key(entries: &[(Node, Node)]) -> Option<&Node> {
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    entries.iter().find_map(|(key, _)| {
        let scalar = matches!(key.kind, Kind::Scalar { .. });
        (scalar && !seen.insert(text_of(key))).then_some(key)
    })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'de, 'a> de::Deserializer<'de> for NodeDe<'a> {
    type Error = YamlError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, YamlError> {
        let result = match &self.node.kind {
            Kind::Scalar { .. } => match self.node.scalar() {
                Some(Scalar::Null) | None => visitor.visit_unit(),
                Some(Scalar::Bool(b)) => visitor.visit_bool(b),
                Some(Scalar::Int(i)) => visitor.visit_i64(i),
                Some(Scalar::Uint(u)) => visitor.visit_u64(u),
                Some(Scalar::Float(f)) => visitor.visit_f64(f),
                Some(Scalar::Str(s)) => visitor.visit_str(s),
            },
            Kind::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter(),
                path: &self.path,
                index: 0,
            }),
            Kind::Map(entries) => match repeated_key(entries) {
                Some(key) => Err(YamlError {
                    pos: Some(key.pos),
                    path: self.path.clone(),
                    message: format!("key `{}` appears twice; keep one", text_of(key)),
                    syntax: false,
                    limit: false,
                    unknown_field: None,
                }),
                None => visitor.visit_map(MapDe {
                    entries: entries.iter(),
                    value: None,
                    path: &self.path,
                }),
            },
        };
        result.map_err(|e| self.claim(e))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, YamlError> {
        if matches!(self.node.scalar(), Some(Scalar::Null)) {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    /// Any scalar reads as its text: `hostname: 123` is the string "123".
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, YamlError> {
        let result = match &self.node.kind {
            Kind::Scalar { text, .. } => visitor.visit_str(text),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        result.map_err(|e| self.claim(e))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, YamlError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, YamlError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, YamlError> {
        visitor.visit_newtype_struct(self)
    }

    /// `variant` (a string) or `{ variant: value }` (a map of one entry).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, YamlError> {
        let result = match &self.node.kind {
            Kind::Scalar { text, .. } => visitor.visit_enum((&**text).into_deserializer()),
            Kind::Map(entries) if entries.len() == 1 => visitor.visit_enum(EnumDe {
                key: &entries[0].0,
                value: &entries[0].1,
                path: &self.path,
            }),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        result.map_err(|e| self.claim(e))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes
        byte_buf unit unit_struct seq tuple tuple_struct map struct ignored_any
    }
}

struct SeqDe<'a, 'p> {
    items: std::slice::Iter<'a, Node>,
    path: &'p str,
    index: usize,
}

impl<'de, 'a, 'p> de::SeqAccess<'de> for SeqDe<'a, 'p> {
    type Error = YamlError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, YamlError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        seed.deserialize(NodeDe { node, path }).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'a, 'p> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a (Node, Node)>,
    path: &'p str,
}

impl<'de, 'a, 'p> de::MapAccess<'de> for MapDe<'a, 'p> {
    type Error = YamlError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, YamlError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(entry);
        // A key is named by its map: `containers.web: unknown field ...`.
        let key = NodeDe {
            node: &entry.0,
            path: self.path.to_string(),
        };
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, YamlError> {
        let Some((key, node)) = self.value.take() else {
            return Err(de::Error::custom("map value without its key"));
        };
        seed.deserialize(NodeDe {
            node,
            path: join(self.path, text_of(key)),
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumDe<'a, 'p> {
    key: &'a Node,
    value: &'a Node,
    path: &'p str,
}

impl<'de, 'a, 'p> de::EnumAccess<'de> for EnumDe<'a, 'p> {
    type Error = YamlError;
    type Variant = NodeDe<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, NodeDe<'a>), YamlError> {
        let key = NodeDe {
            node: self.key,
            path: self.path.to_string(),
        };
        let variant = seed.deserialize(key)?;
        let value = NodeDe {
            node: self.value,
            path: join(self.path, text_of(self.key)),
        };
        Ok((variant, value))
    }
}

impl<'de, 'a> de::VariantAccess<'de> for NodeDe<'a> {
    type Error = YamlError;

    fn unit_variant(self) -> Result<(), YamlError> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, YamlError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, YamlError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, YamlError> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}
