//! The integer bypass: a value that serializes as one integer is stored as its decimal text.
//!
//! [`probe`] runs the value through a serializer that accepts exactly one integer and fails on
//! the first call of any other kind, so a struct or a string costs one failed method call.

use std::fmt;

use serde::Serialize;
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use serde::ser::{self, Impossible};

/// The decimal text of `value` if it serializes as a single integer (`i8`..`i64`, `u8`..`u64`;
/// not `bool`, floats, `i128`/`u128`, options or newtype structs).
pub(super) fn probe<T: Serialize + ?Sized>(value: &T) -> Option<String> {
    value.serialize(IntProbe).ok()
}

/// Whether `bytes` is integer text: an optional `-` followed by at least one ASCII digit.
#[inline]
pub(super) fn looks_like_integer(bytes: &[u8]) -> bool {
    // Every other stored value starts with a byte that is neither (an envelope's magic, a
    // signature's digest name): decided by the first byte, without a call.
    if !matches!(bytes.first(), Some(b'0'..=b'9' | b'-')) {
        return false;
    }
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// Why integer text did not give a `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IntMiss {
    /// The number does not fit `i64` (negative) or `u64` (non-negative).
    OutOfRange,
    /// `T` does not deserialize from an integer (a `String`, a struct, a too-small integer type).
    WrongType,
}

/// Deserializes `T` from integer text (checked by [`looks_like_integer`]).
///
/// `strict` is for signed caches, where integer text is the one thing read without a
/// signature (counters written by `incr` are never signed): it then gives only the integer
/// types `i8`..`i64` and `u8`..`u64` (and types that deserialize as one of them, such as
/// `#[serde(transparent)]` wrappers). Without `strict`, any `T` that accepts an integer reads it
/// (`f64`, `u128`, `serde_json::Value`), as Python cashews does.
pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8], strict: bool) -> Result<T, IntMiss> {
    // The bytes are ASCII, so this never fails; a failure would still only be a miss.
    let text = std::str::from_utf8(bytes).map_err(|_| IntMiss::OutOfRange)?;
    let n = if text.starts_with('-') {
        Int::Negative(text.parse().map_err(|_| IntMiss::OutOfRange)?)
    } else {
        Int::NonNegative(text.parse().map_err(|_| IntMiss::OutOfRange)?)
    };
    let result = match (strict, n) {
        (true, n) => T::deserialize(StrictInt(n)),
        (false, Int::Negative(n)) => {
            T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(n))
        }
        (false, Int::NonNegative(n)) => {
            T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(n))
        }
    };
    result.map_err(|_| IntMiss::WrongType)
}

/// Parsed integer text.
#[derive(Debug, Clone, Copy)]
enum Int {
    Negative(i64),
    NonNegative(u64),
}

/// A deserializer that answers only the integer types' requests (`deserialize_i8` ..
/// `deserialize_u64`); every other request, `deserialize_any` included (which `f64`'s,
/// `u128`'s and `serde_json::Value`'s visitors would otherwise accept an integer through),
/// fails.
///
/// serde's own primitive deserializers cannot do this: they forward every request to
/// `deserialize_any`, so the reader's type cannot be told from the request.
struct StrictInt(Int);

impl StrictInt {
    fn visit<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde::de::value::Error> {
        match self.0 {
            Int::Negative(n) => visitor.visit_i64(n),
            Int::NonNegative(n) => visitor.visit_u64(n),
        }
    }
}

impl<'de> Deserializer<'de> for StrictInt {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom(
            "integer text reads only as an integer type on a signed cache",
        ))
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.visit(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.visit(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.visit(visitor)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.visit(visitor)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.visit(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.visit(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.visit(visitor)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.visit(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i128 u128 f32 f64 char str string bytes byte_buf option unit unit_struct
        newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// The probe's only error: "this is not a lone integer".
#[derive(Debug)]
struct NotAnInteger;

impl fmt::Display for NotAnInteger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an integer")
    }
}

impl std::error::Error for NotAnInteger {}

impl ser::Error for NotAnInteger {
    fn custom<M: fmt::Display>(_msg: M) -> Self {
        Self
    }
}

struct IntProbe;

type Fail = Result<Impossible<String, NotAnInteger>, NotAnInteger>;

impl ser::Serializer for IntProbe {
    type Ok = String;
    type Error = NotAnInteger;
    type SerializeSeq = Impossible<String, NotAnInteger>;
    type SerializeTuple = Impossible<String, NotAnInteger>;
    type SerializeTupleStruct = Impossible<String, NotAnInteger>;
    type SerializeTupleVariant = Impossible<String, NotAnInteger>;
    type SerializeMap = Impossible<String, NotAnInteger>;
    type SerializeStruct = Impossible<String, NotAnInteger>;
    type SerializeStructVariant = Impossible<String, NotAnInteger>;

    fn serialize_i8(self, v: i8) -> Result<String, NotAnInteger> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String, NotAnInteger> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String, NotAnInteger> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String, NotAnInteger> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String, NotAnInteger> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String, NotAnInteger> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String, NotAnInteger> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String, NotAnInteger> {
        Ok(v.to_string())
    }

    fn serialize_bool(self, _: bool) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_i128(self, _: i128) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_u128(self, _: u128) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_f32(self, _: f32) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_f64(self, _: f64) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_char(self, _: char) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_str(self, _: &str) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_none(self) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    // `Some(5)` is not bypassed: integer text does not deserialize back into an `Option`.
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_unit(self) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    // Nor is `struct Id(u64)`: a derived newtype does not deserialize from a bare integer.
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, NotAnInteger> {
        Err(NotAnInteger)
    }
    fn serialize_seq(self, _: Option<usize>) -> Fail {
        Err(NotAnInteger)
    }
    fn serialize_tuple(self, _: usize) -> Fail {
        Err(NotAnInteger)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Fail {
        Err(NotAnInteger)
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Fail {
        Err(NotAnInteger)
    }
    fn serialize_map(self, _: Option<usize>) -> Fail {
        Err(NotAnInteger)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Fail {
        Err(NotAnInteger)
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Fail {
        Err(NotAnInteger)
    }
    // Strings, seqs and maps built with `collect_str` and friends fail too (they default to
    // `serialize_str`, `serialize_seq`, `serialize_map`).
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lone_integers_pass_the_probe() {
        assert_eq!(probe(&-5i8).as_deref(), Some("-5"));
        assert_eq!(probe(&u64::MAX).as_deref(), Some("18446744073709551615"));
        assert_eq!(probe(&i64::MIN).as_deref(), Some("-9223372036854775808"));
        assert_eq!(probe(&true), None);
        assert_eq!(probe(&1.0f64), None);
        assert_eq!(probe("1"), None);
        assert_eq!(probe(&Some(1)), None);
        assert_eq!(probe(&1u128), None);
        assert_eq!(probe(&vec![1]), None);
    }

    #[test]
    fn integer_text_shape() {
        for yes in [&b"0"[..], b"-0", b"42", b"-5", b"007"] {
            assert!(looks_like_integer(yes), "{yes:?}");
        }
        for no in [&b""[..], b"-", b"+1", b"1.0", b" 1", b"1 ", b"--1", b"1-"] {
            assert!(!looks_like_integer(no), "{no:?}");
        }
    }
}
