//! serde `Serializer` into yaml-rust2's document tree, which its emitter
//! writes out with the quoting YAML needs. Maps and structs keep their order.

use serde::ser::{self, Serialize};
use yaml_rust2::yaml::Hash;
use yaml_rust2::Yaml;

use super::YamlError;

/// Serializes any value into a [`Yaml`] tree.
pub(super) struct ToYaml;

type Result<T> = std::result::Result<T, YamlError>;

fn to_yaml<T: Serialize + ?Sized>(value: &T) -> Result<Yaml> {
    value.serialize(ToYaml)
}

fn int<T: TryInto<i64> + ToString + Copy>(v: T) -> Yaml {
    match v.try_into() {
        Ok(i) => Yaml::Integer(i),
        // Beyond i64 (a u64 only): keep the digits as a plain scalar.
        Err(_) => Yaml::Real(v.to_string()),
    }
}

/// `{ variant: value }`, serde's external tagging.
fn tagged(variant: &str, value: Yaml) -> Yaml {
    let mut map = Hash::new();
    map.insert(Yaml::String(variant.to_string()), value);
    Yaml::Hash(map)
}

impl ser::Serializer for ToYaml {
    type Ok = Yaml;
    type Error = YamlError;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Seq;
    type SerializeMap = Map;
    type SerializeStruct = Map;
    type SerializeStructVariant = Map;

    fn serialize_bool(self, v: bool) -> Result<Yaml> {
        Ok(Yaml::Boolean(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Yaml> {
        Ok(int(v))
    }
    fn serialize_i16(self, v: i16) -> Result<Yaml> {
        Ok(int(v))
    }
    fn serialize_i32(self, v: i32) -> Result<Yaml> {
        Ok(int(v))
    }
    fn serialize_i64(self, v: i64) -> Result<Yaml> {
        Ok(int(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Yaml> {
        Ok(int(v))
    }
    fn serialize_u16(self, v: u16) -> Result<Yaml> {
        Ok(int(v))
    }
    fn serialize_u32(self, v: u32) -> Result<Yaml> {
        Ok(int(v))
    }
    fn serialize_u64(self, v: u64) -> Result<Yaml> {
        Ok(int(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Yaml> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Yaml> {
        Ok(Yaml::Real(if v.is_nan() {
            ".nan".to_string()
        } else if v.is_infinite() {
            if v > 0.0 { ".inf" } else { "-.inf" }.to_string()
        } else {
            format!("{v:?}")
        }))
    }
    fn serialize_char(self, v: char) -> Result<Yaml> {
        Ok(Yaml::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Yaml> {
        Ok(Yaml::String(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Yaml> {
        Ok(Yaml::Array(v.iter().map(|b| int(*b)).collect()))
    }
    fn serialize_none(self) -> Result<Yaml> {
        Ok(Yaml::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Yaml> {
        to_yaml(value)
    }
    fn serialize_unit(self) -> Result<Yaml> {
        Ok(Yaml::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Yaml> {
        Ok(Yaml::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Yaml> {
        Ok(Yaml::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Yaml> {
        to_yaml(value)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Yaml> {
        Ok(tagged(variant, to_yaml(value)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq> {
        Ok(Seq {
            items: Vec::with_capacity(len.unwrap_or(0)),
            variant: None,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Seq> {
        Ok(Seq {
            items: Vec::with_capacity(len),
            variant: Some(variant),
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Map> {
        Ok(Map {
            map: Hash::new(),
            key: None,
            variant: None,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Map> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Map> {
        Ok(Map {
            map: Hash::new(),
            key: None,
            variant: Some(variant),
        })
    }
}

/// A sequence being built; `variant` wraps it as `{ variant: [...] }`.
pub(super) struct Seq {
    items: Vec<Yaml>,
    variant: Option<&'static str>,
}

impl Seq {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.items.push(to_yaml(value)?);
        Ok(())
    }

    fn done(self) -> Result<Yaml> {
        let seq = Yaml::Array(self.items);
        Ok(match self.variant {
            Some(v) => tagged(v, seq),
            None => seq,
        })
    }
}

/// The four sequence traits differ only in their method's name.
macro_rules! seq_trait {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for Seq {
            type Ok = Yaml;
            type Error = YamlError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                self.push(value)
            }
            fn end(self) -> Result<Yaml> {
                self.done()
            }
        }
    };
}

seq_trait!(SerializeSeq, serialize_element);
seq_trait!(SerializeTuple, serialize_element);
seq_trait!(SerializeTupleStruct, serialize_field);
seq_trait!(SerializeTupleVariant, serialize_field);

/// A map or struct being built; `variant` wraps it as `{ variant: {...} }`.
pub(super) struct Map {
    map: Hash,
    key: Option<Yaml>,
    variant: Option<&'static str>,
}

impl Map {
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        self.map
            .insert(Yaml::String(key.to_string()), to_yaml(value)?);
        Ok(())
    }

    fn done(self) -> Result<Yaml> {
        let map = Yaml::Hash(self.map);
        Ok(match self.variant {
            Some(v) => tagged(v, map),
            None => map,
        })
    }
}

impl ser::SerializeMap for Map {
    type Ok = Yaml;
    type Error = YamlError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(to_yaml(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self
            .key
            .take()
            .ok_or_else(|| <YamlError as ser::Error>::custom("map value without its key"))?;
        self.map.insert(key, to_yaml(value)?);
        Ok(())
    }
    fn end(self) -> Result<Yaml> {
        self.done()
    }
}

/// Structs and struct variants differ only in their trait's name.
macro_rules! struct_trait {
    ($trait:ident) => {
        impl ser::$trait for Map {
            type Ok = Yaml;
            type Error = YamlError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<()> {
                self.field(key, value)
            }
            fn end(self) -> Result<Yaml> {
                self.done()
            }
        }
    };
}

struct_trait!(SerializeStruct);
struct_trait!(SerializeStructVariant);
