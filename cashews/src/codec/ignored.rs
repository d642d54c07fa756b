//! Whether deserializing a `T` ignored part of the stored value: the schema-change check.
//!
//! A field that `T` does not have reaches its deserializer as a call of
//! `deserialize_ignored_any` (serde's derive asks for every unknown field that way, at any
//! depth). [`deserialize`] wraps the format's deserializer so that this call raises a flag, and
//! wraps every visitor, seed and access so the nested values are seen through the wrapper too.
//!
//! Hand-written rather than serde_ignored: that crate records the path of what was ignored,
//! which costs a `String` per map entry read (three allocations for a three-field struct, about
//! half of a small decode), and cannot follow a map whose keys are not strings or numbers.
//! The cache only wants to know *whether* something was ignored (the path may hold map keys,
//! which are data, and is never logged), so this tracker keeps no path, allocates nothing, and
//! follows every map. The wrappers forward every call unchanged; only `deserialize_ignored_any`
//! raises the flag.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Visitor};

/// Deserializes a `T` from `de`, raising `ignored` when any part of the input was skipped
/// because `T` has no place for it.
pub(super) fn deserialize<'de, D, T>(de: D, ignored: &Cell<bool>) -> Result<T, D::Error>
where
    D: de::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(Tracked { inner: de, ignored })
}

/// A deserializer, a visitor, a seed or an access, seen through the tracker.
struct Tracked<'f, X> {
    inner: X,
    ignored: &'f Cell<bool>,
}

impl<'f, X> Tracked<'f, X> {
    #[inline]
    fn wrap<Y>(&self, inner: Y) -> Tracked<'f, Y> {
        Tracked {
            inner,
            ignored: self.ignored,
        }
    }
}

/// `fn $method(self, [args,] visitor)`: the inner deserializer's method, with the visitor
/// tracked.
macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let visitor = self.wrap(visitor);
            self.inner.$method($($arg,)* visitor)
        }
    )*};
}

impl<'de, D: de::Deserializer<'de>> de::Deserializer<'de> for Tracked<'_, D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
    }

    /// What the derived impls call for a field (or a map entry, an element) they have no
    /// place for.
    #[inline]
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.ignored.set(true);
        self.inner.deserialize_ignored_any(visitor)
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// `fn $method(self, v: $ty)`: the inner visitor's method, unchanged.
macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {$(
        #[inline]
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, X: Visitor<'de>> Visitor<'de> for Tracked<'_, X> {
    type Value = X::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(formatter)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    #[inline]
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    #[inline]
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    #[inline]
    fn visit_some<D: de::Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        let de = self.wrap(de);
        self.inner.visit_some(de)
    }

    #[inline]
    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        de: D,
    ) -> Result<Self::Value, D::Error> {
        let de = self.wrap(de);
        self.inner.visit_newtype_struct(de)
    }

    #[inline]
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let seq = self.wrap(seq);
        self.inner.visit_seq(seq)
    }

    #[inline]
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let map = self.wrap(map);
        self.inner.visit_map(map)
    }

    #[inline]
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let data = self.wrap(data);
        self.inner.visit_enum(data)
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Tracked<'_, S> {
    type Value = S::Value;

    #[inline]
    fn deserialize<D: de::Deserializer<'de>>(self, de: D) -> Result<S::Value, D::Error> {
        let de = self.wrap(de);
        self.inner.deserialize(de)
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Tracked<'_, A> {
    type Error = A::Error;

    #[inline]
    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_element_seed(seed)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Tracked<'_, A> {
    type Error = A::Error;

    /// Keys are tracked too: a map keyed by structs drops what their type ignores as well.
    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_key_seed(seed)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_value_seed(seed)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'f, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Tracked<'f, A> {
    type Error = A::Error;
    type Variant = Tracked<'f, A::Variant>;

    /// The variant's name or index is read as is (an identifier ignores nothing); its content
    /// is tracked.
    #[inline]
    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let ignored = self.ignored;
        let (value, inner) = self.inner.variant_seed(seed)?;
        Ok((value, Tracked { inner, ignored }))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Tracked<'_, A> {
    type Error = A::Error;

    #[inline]
    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    #[inline]
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.newtype_variant_seed(seed)
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Old {
        a: u8,
        b: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct New {
        a: u8,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape<T> {
        Unit,
        Newtype(T),
        Tuple(u8, T),
        Struct { inner: T },
    }

    /// `T` read through the tracker from `value` in both formats: the value (when both agree)
    /// and whether anything was ignored.
    fn read<S: Serialize, T: for<'de> Deserialize<'de> + PartialEq + fmt::Debug>(
        value: &S,
        json: bool,
    ) -> (T, bool) {
        let mut results = Vec::new();
        let msgpack = rmp_serde::to_vec_named(value).unwrap();
        let ignored = Cell::new(false);
        let mut de = rmp_serde::Deserializer::from_read_ref(&msgpack);
        results.push((
            deserialize::<_, T>(&mut de, &ignored).unwrap(),
            ignored.get(),
        ));
        if json {
            let text = serde_json::to_vec(value).unwrap();
            let ignored = Cell::new(false);
            let mut de = serde_json::Deserializer::from_slice(&text);
            results.push((
                deserialize::<_, T>(&mut de, &ignored).unwrap(),
                ignored.get(),
            ));
            assert_eq!(results[0], results[1]);
        }
        results.swap_remove(0)
    }

    #[test]
    fn a_field_the_type_lacks_is_seen_at_any_depth() {
        let old = || Old {
            a: 1,
            b: "x".into(),
        };
        let new = || New { a: 1 };
        assert_eq!(read::<_, New>(&old(), true), (new(), true));
        assert_eq!(read::<_, Old>(&old(), true), (old(), false));
        assert_eq!(read(&Some(old()), true), (Some(new()), true));
        assert_eq!(read(&vec![old()], true), (vec![new()], true));
        assert_eq!(read(&(0u8, old()), true), ((0u8, new()), true));
        let by_name = BTreeMap::from([("k".to_owned(), old())]);
        let read_by_name = BTreeMap::from([("k".to_owned(), new())]);
        assert_eq!(read(&by_name, true), (read_by_name, true));
        for (old, new) in [
            (Shape::Newtype(old()), Shape::Newtype(new())),
            (Shape::Tuple(2, old()), Shape::Tuple(2, new())),
            (
                Shape::Struct { inner: old() },
                Shape::Struct { inner: new() },
            ),
        ] {
            assert_eq!(read(&old, true), (new, true));
        }
        assert_eq!(
            read::<_, Shape<New>>(&Shape::<Old>::Unit, true),
            (Shape::Unit, false)
        );
    }

    #[test]
    fn maps_keyed_by_tuples_and_structs_are_followed() {
        // serde_ignored could not follow these keys, so such maps went unchecked.
        let by_tuple = BTreeMap::from([(
            (1u8, 2u8),
            Old {
                a: 1,
                b: "x".into(),
            },
        )]);
        let read_by_tuple = BTreeMap::from([((1u8, 2u8), New { a: 1 })]);
        assert_eq!(read(&by_tuple, false), (read_by_tuple, true));
        let same = BTreeMap::from([((1u8, 2u8), New { a: 1 })]);
        assert_eq!(
            read(&same, false),
            (BTreeMap::from([((1u8, 2u8), New { a: 1 })]), false)
        );
        #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
        struct OldKey {
            id: u8,
            gone: u8,
        }
        #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
        struct NewKey {
            id: u8,
        }
        let by_struct = BTreeMap::from([(OldKey { id: 1, gone: 2 }, 7u8)]);
        let read_by_struct = BTreeMap::from([(NewKey { id: 1 }, 7u8)]);
        assert_eq!(read(&by_struct, false), (read_by_struct, true));
    }
}
