//! The keys a strategy uses when the caller names none: its default prefix, the default key of
//! a function (module path, function name, every argument) and how they are joined.
//!
//! These rules are the runtime's: the attribute macros expand to the calls below (and, where a
//! key template must be a `&'static str`, to the hidden `macro_rules!` of this module, which
//! hold the same text), so a strategy called by hand with a key built here stores exactly the
//! keys its attribute stores.
//!
//! ```
//! use cashews::key::{KeyBuf, Strategy};
//!
//! // `#[cashews::early(ttl = "1h")] async fn report(city: &str)` in module `app`:
//! let city = "berlin";
//! let mut key = Strategy::Early.key_buf();
//! key.function("app", "report");
//! key.arg("city", city);
//! assert_eq!(key.finish(), "early:v2:app:report:city:berlin");
//!
//! // `#[cashews::early(ttl = "1h", key = "report:{city}")]`:
//! assert_eq!(Strategy::Early.key(&format!("report:{city}")), "early:v2:report:berlin");
//!
//! // `prefix = "v3"` instead of the default:
//! let mut key = KeyBuf::with_prefix("v3");
//! key.literal("report:");
//! key.part(city);
//! assert_eq!(key.finish(), "v3:report:berlin");
//! ```

use std::borrow::Cow;

use super::KeyBuf;

/// What separates a prefix from the key after it.
pub const SEPARATOR: &str = ":";

/// The text a strategy's keys start with (its default prefix and [`SEPARATOR`]; nothing for the
/// strategies without a prefix), or that of a `prefix = "..."` given to an attribute. A literal,
/// so that the key templates the attribute macros build at compile time can use it.
#[doc(hidden)]
#[macro_export]
macro_rules! __cashews_key_head {
    () => {
        ""
    };
    (cache) => {
        ""
    };
    (failover) => {
        "fail:"
    };
    (soft) => {
        "soft:"
    };
    (early) => {
        "early:v2:"
    };
    (hit) => {
        "hit:"
    };
    (dynamic) => {
        "dynamic:"
    };
    (iterator) => {
        ""
    };
    (rate_limit) => {
        "rate_limit:"
    };
    (slice_rate_limit) => {
        "srl:"
    };
    (circuit_breaker) => {
        "circuit_breaker:"
    };
    (bloom) => {
        "bloom:"
    };
    (dual_bloom) => {
        "dual_bloom:"
    };
    (perf) => {
        "perf:"
    };
    (locked) => {
        "locked:"
    };
    (thunder_protection) => {
        ""
    };
    (prefix "") => {
        ""
    };
    (prefix $prefix:literal) => {
        ::core::concat!($prefix, ":")
    };
}

/// The default key of a function, written into the [`KeyBuf`] `$buf` after its head: what
/// [`KeyBuf::function`] (or [`KeyBuf::method`]) and one [`KeyBuf::arg`] per argument write.
/// Each argument comes as `name = &name`, the reference spanned by the caller (so that a
/// value that cannot be a key part is reported at the argument). The last list holds what to
/// emit when the key must name an argument the function wrote as a pattern (the caller's
/// spanned `compile_error!`): a circuit breaker's default key names no argument
/// ([`Strategy::keys_arguments`]), so it drops both lists.
#[doc(hidden)]
#[macro_export]
macro_rules! __cashews_default_key {
    (circuit_breaker, $buf:ident, $form:ident $name:literal,
     [$($arg:ident = $value:expr),*], [$($unnamed:tt)*]) => {
        $crate::__cashews_default_key!(@head $buf, $form $name);
    };
    ($kind:ident, $buf:ident, $form:ident $name:literal,
     [$($arg:ident = $value:expr),*], [$($unnamed:tt)*]) => {
        $($unnamed)*
        $crate::__cashews_default_key!(@head $buf, $form $name);
        $($buf.arg(::core::stringify!($arg), $value);)*
    };
    (@head $buf:ident, fn $name:literal) => {
        $buf.function(::core::module_path!(), $name);
    };
    (@head $buf:ident, method $name:literal) => {
        $buf.method(::core::module_path!(), ::core::any::type_name::<Self>(), $name);
    };
}

/// A strategy's full key template as a `&'static str` (what `detect` records and the tag
/// registry match keys against): the head, then the `key` template or the default key's
/// template (module path, function name, `{arg}` fields; a method's type is the field
/// `{__type}`, known only at run time).
#[doc(hidden)]
#[macro_export]
macro_rules! __cashews_key_template {
    (($($head:tt)*), key $template:literal) => {
        ::core::concat!($crate::__cashews_key_head!($($head)*), $template)
    };
    (($($head:tt)*), fn $name:literal, [$($arg:ident),*]) => {
        ::core::concat!(
            $crate::__cashews_key_head!($($head)*), ::core::module_path!(), ":", $name,
            $(":", ::core::stringify!($arg), ":{", ::core::stringify!($arg), "}",)*
        )
    };
    (($($head:tt)*), method $name:literal, [$($arg:ident),*]) => {
        ::core::concat!(
            $crate::__cashews_key_head!($($head)*), ::core::module_path!(), ":{__type}.", $name,
            $(":", ::core::stringify!($arg), ":{", ::core::stringify!($arg), "}",)*
        )
    };
}

/// A per-function key with no argument (a Bloom filter's): the head, the module path and the
/// function name, as a `&'static str` ([`Strategy::function_key`] at run time).
#[doc(hidden)]
#[macro_export]
macro_rules! __cashews_function_key {
    (($($head:tt)*), $name:literal) => {
        ::core::concat!($crate::__cashews_key_head!($($head)*), ::core::module_path!(), ":", $name)
    };
}

/// A strategy, for the keys it uses by default: [`prefix`](Self::prefix) is what its attribute
/// puts before every key (unless given `prefix = "..."`), and
/// [`keys_arguments`](Self::keys_arguments) whether its default key names the arguments.
///
/// ```
/// use cashews::key::Strategy;
///
/// assert_eq!(Strategy::Failover.prefix(), "fail");
/// assert_eq!(Strategy::Cache.prefix(), "");
/// assert_eq!(Strategy::Failover.key("status:db"), "fail:status:db");
/// assert_eq!(Strategy::Cache.key("status:db"), "status:db");
/// assert!(!Strategy::CircuitBreaker.keys_arguments());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// `#[cashews::cache]`, [`crate::strategy::cache()`]: no prefix.
    Cache,
    /// `#[cashews::failover]`, [`crate::strategy::failover()`]: `fail`.
    Failover,
    /// `#[cashews::soft]`, [`crate::strategy::soft()`]: `soft`.
    Soft,
    /// `#[cashews::early]`, [`crate::strategy::early()`]: `early:v2`.
    Early,
    /// `#[cashews::hit]`, [`crate::strategy::hit()`]: `hit`.
    Hit,
    /// `#[cashews::dynamic]`, [`crate::strategy::dynamic()`]: `dynamic`.
    Dynamic,
    /// `#[cashews::iterator]`, [`crate::strategy::iterator()`]: no prefix.
    Iterator,
    /// `#[cashews::rate_limit]`, [`crate::strategy::rate_limited()`]: `rate_limit`.
    RateLimit,
    /// `#[cashews::slice_rate_limit]`, [`crate::strategy::slice_rate_limited()`]: `srl`.
    SliceRateLimit,
    /// `#[cashews::circuit_breaker]`, [`crate::strategy::circuit_breaker()`]: `circuit_breaker`;
    /// a circuit is per function, so its default key names no argument.
    CircuitBreaker,
    /// `#[cashews::bloom]`, [`crate::strategy::bloom()`]: `bloom` (the filter's key).
    Bloom,
    /// `#[cashews::dual_bloom]`, [`crate::strategy::dual_bloom()`]: `dual_bloom`.
    DualBloom,
    /// `#[cashews::perf]`, [`crate::strategy::perf()`]: `perf`.
    Perf,
    /// `#[cashews::locked]`, [`crate::strategy::locked()`]: `locked`.
    Locked,
    /// `#[cashews::thunder_protection]`, [`crate::strategy::thunder_protection()`]: no prefix.
    ThunderProtection,
}

impl Strategy {
    /// Every strategy, in declaration order.
    ///
    /// ```
    /// assert!(cashews::key::Strategy::ALL.contains(&cashews::key::Strategy::Perf));
    /// ```
    pub const ALL: [Self; 15] = [
        Self::Cache,
        Self::Failover,
        Self::Soft,
        Self::Early,
        Self::Hit,
        Self::Dynamic,
        Self::Iterator,
        Self::RateLimit,
        Self::SliceRateLimit,
        Self::CircuitBreaker,
        Self::Bloom,
        Self::DualBloom,
        Self::Perf,
        Self::Locked,
        Self::ThunderProtection,
    ];

    /// What the strategy's keys start with: the prefix and [`SEPARATOR`], or nothing.
    const fn head(self) -> &'static str {
        match self {
            Self::Cache => crate::__cashews_key_head!(cache),
            Self::Failover => crate::__cashews_key_head!(failover),
            Self::Soft => crate::__cashews_key_head!(soft),
            Self::Early => crate::__cashews_key_head!(early),
            Self::Hit => crate::__cashews_key_head!(hit),
            Self::Dynamic => crate::__cashews_key_head!(dynamic),
            Self::Iterator => crate::__cashews_key_head!(iterator),
            Self::RateLimit => crate::__cashews_key_head!(rate_limit),
            Self::SliceRateLimit => crate::__cashews_key_head!(slice_rate_limit),
            Self::CircuitBreaker => crate::__cashews_key_head!(circuit_breaker),
            Self::Bloom => crate::__cashews_key_head!(bloom),
            Self::DualBloom => crate::__cashews_key_head!(dual_bloom),
            Self::Perf => crate::__cashews_key_head!(perf),
            Self::Locked => crate::__cashews_key_head!(locked),
            Self::ThunderProtection => crate::__cashews_key_head!(thunder_protection),
        }
    }

    /// The prefix the strategy's attribute puts before every key (with [`SEPARATOR`]) when no
    /// `prefix = "..."` is given; empty for the strategies without one.
    ///
    /// ```
    /// use cashews::key::Strategy;
    /// assert_eq!(Strategy::Early.prefix(), "early:v2");
    /// assert_eq!(Strategy::SliceRateLimit.prefix(), "srl");
    /// assert_eq!(Strategy::ThunderProtection.prefix(), "");
    /// ```
    #[must_use]
    pub const fn prefix(self) -> &'static str {
        let head = self.head();
        match head.as_bytes().split_last() {
            Some((b':', rest)) => match std::str::from_utf8(rest) {
                Ok(prefix) => prefix,
                Err(_) => head,
            },
            _ => head,
        }
    }

    /// Whether the strategy's default key (no `key = "..."`) names the function's arguments:
    /// every strategy's does but the circuit breaker's, which counts a function's calls
    /// together.
    ///
    /// ```
    /// use cashews::key::Strategy;
    /// assert!(Strategy::RateLimit.keys_arguments());
    /// assert!(!Strategy::CircuitBreaker.keys_arguments());
    /// ```
    #[must_use]
    pub const fn keys_arguments(self) -> bool {
        !matches!(self, Self::CircuitBreaker)
    }

    /// An empty [`KeyBuf`] with the strategy's prefix written: continue it with a key template's
    /// text and values, or with [`KeyBuf::function`] and [`KeyBuf::arg`] for the default key.
    ///
    /// ```
    /// use cashews::key::Strategy;
    /// let mut key = Strategy::Hit.key_buf();
    /// key.literal("user:");
    /// key.part(&7);
    /// assert_eq!(key.finish(), "hit:user:7");
    /// ```
    #[must_use]
    #[inline]
    pub fn key_buf(self) -> KeyBuf {
        let mut buf = KeyBuf::with_capacity(64);
        buf.literal(self.head());
        buf
    }

    /// `key` (rendered already, e.g. a `key = "..."` template's text) with the strategy's prefix
    /// before it: the key its attribute stores.
    ///
    /// ```
    /// use cashews::key::Strategy;
    /// assert_eq!(Strategy::Soft.key("user:7"), "soft:user:7");
    /// ```
    #[must_use]
    pub fn key(self, key: &str) -> String {
        let mut out = String::with_capacity(self.head().len() + key.len());
        out.push_str(self.head());
        out.push_str(key);
        out
    }

    /// A per-function key: the prefix, the module path and the function name, as
    /// `#[cashews::bloom]` and `#[cashews::dual_bloom]` name their filter.
    ///
    /// ```
    /// use cashews::key::Strategy;
    /// assert_eq!(Strategy::Bloom.function_key("app::users", "exists"), "bloom:app::users:exists");
    /// ```
    #[must_use]
    pub fn function_key(self, module: &str, function: &str) -> String {
        let mut buf = self.key_buf();
        buf.function(module, function);
        buf.finish()
    }
}

/// A method's type in its default key: `type_name` with every path shortened to its last
/// segment, generic arguments kept (`app::Page<alloc::string::String>` → `Page<String>`), so
/// methods of `Page<A>` and `Page<B>` do not share keys. No allocation for a type without
/// generics.
pub(super) fn type_label(full: &'static str) -> Cow<'static, str> {
    if !full.contains(['<', '(', '[', ' ', '&']) {
        return Cow::Borrowed(full.rsplit("::").next().unwrap_or(full));
    }
    let mut out = String::with_capacity(full.len());
    let mut rest = full;
    while !rest.is_empty() {
        let path_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        if path_len == 0 {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        } else {
            let path = &rest[..path_len];
            out.push_str(path.rsplit("::").next().unwrap_or(path));
            rest = &rest[path_len..];
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_the_heads_without_separator() {
        for strategy in Strategy::ALL {
            let (head, prefix) = (strategy.head(), strategy.prefix());
            if prefix.is_empty() {
                assert_eq!(head, "", "{strategy:?}");
            } else {
                assert_eq!(head, format!("{prefix}{SEPARATOR}"), "{strategy:?}");
            }
            assert_eq!(strategy.key("k"), format!("{head}k"));
        }
        assert_eq!(crate::__cashews_key_head!(prefix "x"), "x:");
        assert_eq!(crate::__cashews_key_head!(prefix ""), "");
    }

    #[test]
    fn default_key_macro_writes_what_the_methods_write() {
        let (id, name) = (7, "ada");
        let mut by_macro = Strategy::Hit.key_buf();
        crate::__cashews_default_key!(hit, by_macro, fn "f", [id = &id, name = name], []);
        let mut by_hand = Strategy::Hit.key_buf();
        by_hand.function(module_path!(), "f");
        by_hand.arg("id", &id);
        by_hand.arg("name", name);
        let key = by_hand.finish();
        assert_eq!(by_macro.finish(), key);
        assert_eq!(key, format!("hit:{}:f:id:7:name:ada", module_path!()));

        let mut circuit = Strategy::CircuitBreaker.key_buf();
        crate::__cashews_default_key!(circuit_breaker, circuit, fn "f", [id = &id, name = name], [::core::compile_error!("a pattern")]);
        assert_eq!(
            circuit.finish(),
            Strategy::CircuitBreaker.function_key(module_path!(), "f")
        );
    }

    #[test]
    fn templates_render_to_the_default_keys() {
        const TEMPLATE: &str = crate::__cashews_key_template!((early), fn "f", [id, name]);
        let rest = TEMPLATE.strip_prefix("early:v2:").unwrap_or_default();
        let rendered = crate::key::KeyTemplate::parse(rest)
            .and_then(|t| t.render(&[("id", &7), ("name", &"ada")]));
        let mut key = KeyBuf::new();
        key.function(module_path!(), "f");
        key.arg("id", &7);
        key.arg("name", "ada");
        assert_eq!(rendered.ok(), Some(key.finish()));
        assert_eq!(
            crate::__cashews_key_template!((prefix "p"), key "user:{id}"),
            "p:user:{id}"
        );
        assert_eq!(
            crate::__cashews_function_key!((bloom), "f"),
            Strategy::Bloom.function_key(module_path!(), "f")
        );
    }

    #[test]
    fn type_labels_shorten_paths() {
        assert_eq!(type_label("app::Page"), "Page");
        assert_eq!(
            type_label("app::Page<alloc::string::String, (u8, &str)>"),
            "Page<String, (u8, &str)>"
        );
    }
}
