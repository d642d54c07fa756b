//! [`KeyPart`]: how a value becomes key text, with impls for the std types.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::{self, Write as _};
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// A value that can be rendered into a cache key.
///
/// The attribute macros call it for every field of a key template (`{user_id}`); implement it
/// for your own types to decide how they appear in keys. The std impls follow the rendering
/// rules of the Python original:
///
/// | Value | Text |
/// | --- | --- |
/// | `str`, `String`, `Cow<str>`, `char` | itself |
/// | `bool` | `true` / `false` |
/// | integers, `f32`, `f64` | Rust's `Display` (`1234`, `1.5`) |
/// | `()`, `None` | empty |
/// | `Some(x)`, `&x`, `Box`, `Arc`, `Rc` | as `x` |
/// | slices, arrays, `Vec`, `VecDeque`, tuples (up to 8) | elements joined with `:`; nested sequences flatten |
/// | `BTreeSet`, `HashSet` | elements sorted by their text, joined with `:` |
/// | `BTreeMap`, `HashMap` | entries sorted by the key's text, each `k:v`, joined with `:` |
/// | `IpAddr`, `Ipv4Addr`, `Ipv6Addr`, `SocketAddr` | `Display` |
/// | `Path`, `PathBuf` | lossy display (invalid UTF-8 becomes `�`) |
/// | bytes | wrap them in [`KeyBytes`] |
/// | errors | wrap them in [`KeyError`] |
///
/// Sets and maps are written in the order of their rendered text, so a `HashMap` gives the same
/// key on every run, and a `HashMap` and a `BTreeMap` with the same entries give the same key.
///
/// Implementations append to `out` and never clear it; they should not allocate when they can
/// write directly.
///
/// ```
/// use cashews::key::{KeyPart, render};
///
/// struct UserId(u64);
///
/// impl KeyPart for UserId {
///     fn write_key(&self, out: &mut String) {
///         out.push_str("u");
///         self.0.write_key(out);
///     }
/// }
///
/// assert_eq!(render(&UserId(7)), "u7");
/// assert_eq!(render(&(1, (2, 3))), "1:2:3");
/// assert_eq!(render(&Some(vec![UserId(1), UserId(2)])), "u1:u2");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be rendered into a cache key",
    label = "this value is used in a key template",
    note = "implement `cashews::key::KeyPart` for it, or name one of its fields in the key template, e.g. key = \"user:{{user.id}}\""
)]
pub trait KeyPart {
    /// Appends the key text of `self` to `out`.
    ///
    /// ```
    /// use cashews::key::KeyPart;
    /// let mut out = String::from("user:");
    /// 42u32.write_key(&mut out);
    /// assert_eq!(out, "user:42");
    /// ```
    fn write_key(&self, out: &mut String);
}

/// Renders `value` into a new string: a shortcut for [`KeyPart::write_key`] on an empty string.
///
/// ```
/// use std::collections::BTreeMap;
/// use cashews::key::render;
///
/// assert_eq!(render("text"), "text");
/// assert_eq!(render(&None::<u8>), "");
/// assert_eq!(render(&false), "false");
/// assert_eq!(render(&1.5), "1.5");
/// let map = BTreeMap::from([("b", Some(1)), ("a", None)]);
/// assert_eq!(render(&map), "a::b:1");
/// ```
#[must_use]
pub fn render<T: KeyPart + ?Sized>(value: &T) -> String {
    let mut out = String::new();
    value.write_key(&mut out);
    out
}

/// Writes `Display` output into `out`. Writing into a `String` cannot fail, so the result is
/// ignored on purpose.
fn write_display(out: &mut String, value: impl fmt::Display) {
    let _ = write!(out, "{value}");
}

impl KeyPart for str {
    #[inline]
    fn write_key(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl KeyPart for String {
    #[inline]
    fn write_key(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl KeyPart for Cow<'_, str> {
    fn write_key(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl KeyPart for char {
    fn write_key(&self, out: &mut String) {
        out.push(*self);
    }
}

impl KeyPart for bool {
    fn write_key(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

impl KeyPart for () {
    fn write_key(&self, _out: &mut String) {}
}

macro_rules! display_parts {
    ($($ty:ty),* $(,)?) => {
        $(
            impl KeyPart for $ty {
                fn write_key(&self, out: &mut String) {
                    write_display(out, self);
                }
            }
        )*
    };
}

display_parts!(f32, f64, IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr);

// Integers are the most common key part: `itoa` (already in the tree through serde_json)
// formats them without the `fmt` machinery. Inlined (as the plain `KeyBuf` calls and the
// string parts), so a decorated function renders its key without calls into this crate.
macro_rules! integer_parts {
    ($($ty:ty),* $(,)?) => {
        $(
            impl KeyPart for $ty {
                #[inline]
                fn write_key(&self, out: &mut String) {
                    out.push_str(itoa::Buffer::new().format(*self));
                }
            }
        )*
    };
}

integer_parts!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

impl KeyPart for Path {
    fn write_key(&self, out: &mut String) {
        out.push_str(&self.to_string_lossy());
    }
}

impl KeyPart for PathBuf {
    fn write_key(&self, out: &mut String) {
        self.as_path().write_key(out);
    }
}

impl<T: KeyPart> KeyPart for Option<T> {
    fn write_key(&self, out: &mut String) {
        if let Some(value) = self {
            value.write_key(out);
        }
    }
}

macro_rules! pointer_parts {
    ($($ty:ty),* $(,)?) => {
        $(
            impl<T: KeyPart + ?Sized> KeyPart for $ty {
                fn write_key(&self, out: &mut String) {
                    (**self).write_key(out);
                }
            }
        )*
    };
}

pointer_parts!(&T, &mut T, Box<T>, Arc<T>, Rc<T>);

/// Writes the items joined with `:`.
fn write_joined<'a, T: KeyPart + 'a>(out: &mut String, items: impl IntoIterator<Item = &'a T>) {
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        item.write_key(out);
    }
}

impl<T: KeyPart> KeyPart for [T] {
    fn write_key(&self, out: &mut String) {
        write_joined(out, self);
    }
}

impl<T: KeyPart, const N: usize> KeyPart for [T; N] {
    fn write_key(&self, out: &mut String) {
        write_joined(out, self);
    }
}

impl<T: KeyPart> KeyPart for Vec<T> {
    fn write_key(&self, out: &mut String) {
        write_joined(out, self);
    }
}

impl<T: KeyPart> KeyPart for VecDeque<T> {
    fn write_key(&self, out: &mut String) {
        write_joined(out, self);
    }
}

macro_rules! tuple_parts {
    ($(($first:ident $(, $rest:ident)*)),* $(,)?) => {
        $(
            impl<$first: KeyPart, $($rest: KeyPart),*> KeyPart for ($first, $($rest,)*) {
                #[allow(non_snake_case)]
                fn write_key(&self, out: &mut String) {
                    let ($first, $($rest,)*) = self;
                    $first.write_key(out);
                    $(
                        out.push(':');
                        $rest.write_key(out);
                    )*
                }
            }
        )*
    };
}

tuple_parts!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
    (A, B, C, D, E, F, G, H),
);

/// Renders entries into one scratch buffer, sorts them by their text and writes them joined
/// with `:`: one buffer and one vector however many entries, instead of a string each.
///
/// Each entry is a key and, for maps, a value; entries sort by the key's text, then the
/// value's, so the output never depends on iteration order.
struct SortedEntries {
    text: String,
    entries: Vec<(Range<usize>, Option<Range<usize>>)>,
}

impl SortedEntries {
    fn with_capacity(len: usize) -> Self {
        Self {
            text: String::new(),
            entries: Vec::with_capacity(len),
        }
    }

    fn render(&mut self, part: &(impl KeyPart + ?Sized)) -> Range<usize> {
        let start = self.text.len();
        part.write_key(&mut self.text);
        start..self.text.len()
    }

    fn push(&mut self, key: &(impl KeyPart + ?Sized), value: Option<&(impl KeyPart + ?Sized)>) {
        let key = self.render(key);
        let value = value.map(|value| self.render(value));
        self.entries.push((key, value));
    }

    fn slice(&self, range: &Range<usize>) -> &str {
        self.text.get(range.clone()).unwrap_or_default()
    }

    fn write(mut self, out: &mut String) {
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_by(|(ka, va), (kb, vb)| {
            let value = |v: &Option<Range<usize>>| v.as_ref().map(|r| self.slice(r));
            self.slice(ka)
                .cmp(self.slice(kb))
                .then_with(|| value(va).cmp(&value(vb)))
        });
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            out.push_str(self.slice(key));
            if let Some(value) = value {
                out.push(':');
                out.push_str(self.slice(value));
            }
        }
    }
}

fn write_set<'a, T: KeyPart + 'a>(
    out: &mut String,
    len: usize,
    items: impl IntoIterator<Item = &'a T>,
) {
    let mut sorted = SortedEntries::with_capacity(len);
    for item in items {
        sorted.push(item, None::<&()>);
    }
    sorted.write(out);
}

fn write_map<'a, K: KeyPart + 'a, V: KeyPart + 'a>(
    out: &mut String,
    len: usize,
    entries: impl IntoIterator<Item = (&'a K, &'a V)>,
) {
    let mut sorted = SortedEntries::with_capacity(len);
    for (key, value) in entries {
        sorted.push(key, Some(value));
    }
    sorted.write(out);
}

impl<T: KeyPart> KeyPart for BTreeSet<T> {
    fn write_key(&self, out: &mut String) {
        write_set(out, self.len(), self);
    }
}

impl<T: KeyPart, S: BuildHasher> KeyPart for HashSet<T, S> {
    fn write_key(&self, out: &mut String) {
        write_set(out, self.len(), self);
    }
}

impl<K: KeyPart, V: KeyPart> KeyPart for BTreeMap<K, V> {
    fn write_key(&self, out: &mut String) {
        write_map(out, self.len(), self);
    }
}

impl<K: KeyPart, V: KeyPart, S: BuildHasher> KeyPart for HashMap<K, V, S> {
    fn write_key(&self, out: &mut String) {
        write_map(out, self.len(), self);
    }
}

/// Bytes as key text: UTF-8 text as is, anything else as lowercase hex.
///
/// `u8` is an integer, so `Vec<u8>` renders as numbers joined with `:`; wrap bytes in
/// `KeyBytes` to get the Python rendering of `bytes`.
///
/// ```
/// use cashews::key::{KeyBytes, render};
/// assert_eq!(render(&KeyBytes(b"a1")), "a1");
/// assert_eq!(render(&KeyBytes(b"\xff\x00")), "ff00");
/// assert_eq!(render(&vec![1u8, 2]), "1:2");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyBytes<'a>(pub &'a [u8]);

impl KeyPart for KeyBytes<'_> {
    fn write_key(&self, out: &mut String) {
        if let Ok(text) = std::str::from_utf8(self.0) {
            out.push_str(text);
            return;
        }
        out.reserve(self.0.len() * 2);
        for &byte in self.0 {
            for nibble in [byte >> 4, byte & 0x0f] {
                out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
            }
        }
    }
}

/// An error as key text: `TypeName:message`, as the Python original renders exceptions
/// (`ValueError:boom`).
///
/// The type name is the last path segment of [`std::any::type_name`] without generic
/// arguments; for a trait object (`dyn Error`) it is `Error`, since the concrete type is not
/// known.
///
/// ```
/// use cashews::key::{KeyError, render};
///
/// let err = "x".parse::<u8>().unwrap_err();
/// assert_eq!(render(&KeyError(&err)), "ParseIntError:invalid digit found in string");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct KeyError<'a, E: ?Sized>(pub &'a E);

impl<E: std::error::Error + ?Sized> KeyPart for KeyError<'_, E> {
    fn write_key(&self, out: &mut String) {
        out.push_str(short_type_name(std::any::type_name::<E>()));
        out.push(':');
        write_display(out, self.0);
    }
}

/// `core::num::error::ParseIntError` → `ParseIntError`, `app::Wrapper<alloc::string::String>`
/// → `Wrapper`, `dyn core::error::Error + Send + Sync` → `Error`.
fn short_type_name(full: &str) -> &str {
    let name = full.split('<').next().unwrap_or(full);
    let name = name.split(" + ").next().unwrap_or(name);
    let name = name.rsplit("::").next().unwrap_or(name);
    name.strip_prefix("dyn ").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::short_type_name;

    #[test]
    fn short_type_names() {
        assert_eq!(
            short_type_name("core::num::error::ParseIntError"),
            "ParseIntError"
        );
        assert_eq!(
            short_type_name("app::Wrapper<alloc::string::String>"),
            "Wrapper"
        );
        assert_eq!(
            short_type_name("dyn core::error::Error + core::marker::Send"),
            "Error"
        );
        assert_eq!(short_type_name("Plain"), "Plain");
    }
}
