//! Key filters: the built-ins (`lower`, `upper`, `len`, `hash`, `jwt`) and a process-wide
//! registry of custom ones.
//!
//! A filter takes a value already rendered to text (by [`KeyPart`](super::KeyPart)) and the
//! text arguments written in parentheses, and returns new text. In a template they chain left
//! to right: `{email:lower:hash}`.
//!
//! `get` is built in too but reads the key context rather than text: it only works as
//! `{@:get(name)}` (see [`context`](super::context)).
//!
//! ```
//! use cashews::key::filter;
//!
//! assert_eq!(filter::hash(&filter::lower("Ab"), "").unwrap(), "187ef4436122d1cc2f40dc2b92f0eba0");
//! assert_eq!(filter::apply("upper", "ab", &[]).unwrap(), "AB");
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use md5::Digest as _;

use crate::{Error, Result};

type CustomFilter = Arc<dyn Fn(&str, &[&str]) -> String + Send + Sync>;

/// Registered custom filters by name. Reads (every key rendered with a custom filter) are one
/// atomic load; registration copies the map, which happens a few times at start-up.
static REGISTRY: LazyLock<ArcSwap<BTreeMap<String, CustomFilter>>> =
    LazyLock::new(|| ArcSwap::from_pointee(BTreeMap::new()));

/// The hash algorithms `hash` accepts.
const ALGORITHMS: &str = "`md5`, `sha1`, `sha256`";

/// Lower-cases the text (Unicode rules): the `lower` filter.
///
/// ```
/// assert_eq!(cashews::key::filter::lower("Ada@Example.COM"), "ada@example.com");
/// ```
#[must_use]
pub fn lower(text: &str) -> String {
    text.to_lowercase()
}

/// Upper-cases the text (Unicode rules): the `upper` filter.
///
/// ```
/// assert_eq!(cashews::key::filter::upper("straße"), "STRASSE");
/// ```
#[must_use]
pub fn upper(text: &str) -> String {
    text.to_uppercase()
}

/// The number of characters (not bytes) as text: the `len` filter.
///
/// ```
/// assert_eq!(cashews::key::filter::len("1234"), "4");
/// assert_eq!(cashews::key::filter::len("né"), "2");
/// ```
#[must_use]
pub fn len(text: &str) -> String {
    text.chars().count().to_string()
}

/// The lowercase hex digest of the text's UTF-8 bytes: the `hash` filter.
///
/// `algorithm` is `md5` (also when empty, as in `{x:hash}`), `sha1` or `sha256`. A template can
/// pass the algorithm from an argument (`{x:hash({alg})}`), so it is checked here, at run time.
///
/// # Errors
///
/// [`Error::InvalidKeyTemplate`] for any other algorithm, naming the accepted ones.
///
/// ```
/// use cashews::key::filter::hash;
///
/// assert_eq!(hash("test", "").unwrap(), "098f6bcd4621d373cade4e832627b4f6");
/// assert_eq!(hash("test", "md5").unwrap(), "098f6bcd4621d373cade4e832627b4f6");
/// assert_eq!(hash("1", "sha1").unwrap(), "356a192b7913b04c54574d18c28d46e6395428ab");
/// let err = hash("test", "sha512").unwrap_err();
/// assert!(err.to_string().contains("use one of `md5`, `sha1`, `sha256`"));
/// ```
pub fn hash(text: &str, algorithm: &str) -> Result<String> {
    let bytes = text.as_bytes();
    match algorithm {
        "" | "md5" => Ok(hex::encode(md5::Md5::digest(bytes))),
        "sha1" => Ok(hex::encode(sha1::Sha1::digest(bytes))),
        "sha256" => Ok(hex::encode(sha2::Sha256::digest(bytes))),
        other => Err(filter_error(
            "hash",
            &[other],
            format!("unknown hash algorithm `{other}`: use one of {ALGORITHMS}"),
        )),
    }
}

/// The value of `claim` in a JWT's payload: the `jwt(claim)` filter.
///
/// The middle segment of the token is decoded as base64 (standard or URL-safe alphabet, padded
/// or not) and parsed as a JSON object. A string claim is returned as is; numbers, booleans and
/// other JSON values as their JSON text. The signature is not verified: the claim only names a
/// cache entry, it grants nothing.
///
/// A token that cannot be read or a missing claim gives an empty string (and a
/// `tracing::debug!` event naming the claim, never the token), like any missing field.
///
/// ```
/// use cashews::key::filter::jwt;
///
/// let token = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoidGVzdCJ9.n75bSCIEuSemX5iop0sCF3HmXwMQWF1zI6TzckzHUKY";
/// assert_eq!(jwt(token, "user"), "test");
/// assert_eq!(jwt(token, "missing"), "");
/// assert_eq!(jwt("not a token", "user"), "");
/// ```
#[must_use]
pub fn jwt(token: &str, claim: &str) -> String {
    super::jwt::claim(token, claim).unwrap_or_else(|| {
        tracing::debug!(
            claim,
            "jwt key filter: the token has no readable payload or no such claim; rendering it empty"
        );
        String::new()
    })
}

/// Registers a custom filter under `name`, for templates (`{value:name(arg, …)}`) rendered by
/// [`KeyTemplate`](super::KeyTemplate) and by [`apply`].
///
/// The filter receives the value rendered to text and the text of its arguments (a field
/// argument such as `{x:prefix({n})}` is rendered first). Registering a name again replaces
/// the earlier filter. Register filters at start-up, before the templates that use them are
/// parsed: parsing checks filter names.
///
/// # Errors
///
/// [`Error::InvalidOption`] when `name` is not an identifier (`[A-Za-z_][A-Za-z0-9_]*`) or is
/// a built-in filter (`lower`, `upper`, `len`, `hash`, `jwt`, `get`).
///
/// ```
/// use cashews::key::filter::{apply, register_filter};
///
/// register_filter("prefix", |text, args| {
///     let n = args.first().and_then(|n| n.parse().ok()).unwrap_or(1);
///     text.chars().take(n).collect::<String>().to_uppercase()
/// })?;
/// assert_eq!(apply("prefix", "abcdef", &["4"])?, "ABCD");
/// assert!(register_filter("lower", |text, _| text.to_owned()).is_err());
/// # Ok::<(), cashews::Error>(())
/// ```
pub fn register_filter(
    name: &str,
    filter: impl Fn(&str, &[&str]) -> String + Send + Sync + 'static,
) -> Result<()> {
    let invalid = |expected: String| Error::InvalidOption {
        option: "filter name".to_owned(),
        value: name.to_owned(),
        expected,
    };
    if !is_identifier(name) {
        return Err(invalid(
            "an identifier: an ASCII letter or `_`, then letters, digits or `_`".to_owned(),
        ));
    }
    if cashews_syntax::builtin_filter(name).is_some() {
        return Err(invalid(format!(
            "a name that is not a built-in filter ({})",
            builtin_names().join(", ")
        )));
    }
    let filter: CustomFilter = Arc::new(filter);
    REGISTRY.rcu(|filters| {
        let mut filters = BTreeMap::clone(filters);
        filters.insert(name.to_owned(), Arc::clone(&filter));
        filters
    });
    Ok(())
}

/// The names of the registered custom filters, sorted.
///
/// ```
/// use cashews::key::filter::{register_filter, registered_filters};
///
/// register_filter("reverse", |text, _| text.chars().rev().collect())?;
/// assert!(registered_filters().contains(&"reverse".to_owned()));
/// # Ok::<(), cashews::Error>(())
/// ```
#[must_use]
pub fn registered_filters() -> Vec<String> {
    REGISTRY.load().keys().cloned().collect()
}

/// Applies the filter called `name` to `input`: a built-in or a registered custom filter.
///
/// `args` are the texts in parentheses (`hash(sha256)` → `["sha256"]`).
///
/// # Errors
///
/// [`Error::InvalidKeyTemplate`] when no filter has that name (the message lists the known
/// ones), when a built-in gets the wrong number of arguments, when `hash` gets an unknown
/// algorithm, and for `get`, which reads the key context and only works as `{@:get(name)}`.
///
/// ```
/// use cashews::key::filter::apply;
///
/// assert_eq!(apply("len", "test", &[])?, "4");
/// assert_eq!(apply("hash", "test", &["md5"])?, "098f6bcd4621d373cade4e832627b4f6");
/// let err = apply("lowr", "test", &[]).unwrap_err();
/// assert!(err.to_string().contains("unknown filter `lowr`"));
/// # Ok::<(), cashews::Error>(())
/// ```
pub fn apply(name: &str, input: &str, args: &[&str]) -> Result<String> {
    if let Some(spec) = cashews_syntax::builtin_filter(name) {
        if args.len() < spec.min_args || args.len() > spec.max_args {
            return Err(filter_error(
                name,
                args,
                format!(
                    "`{name}` takes {} but got {}: write {}",
                    count_args(spec.min_args, spec.max_args),
                    args.len(),
                    spec.usage
                ),
            ));
        }
        let first = args.first().copied().unwrap_or_default();
        return match name {
            "lower" => Ok(lower(input)),
            "upper" => Ok(upper(input)),
            "len" => Ok(len(input)),
            "hash" => hash(input, first),
            "jwt" => Ok(jwt(input, first)),
            _ => Err(filter_error(
                name,
                args,
                format!(
                    "`{name}` does not take text: it reads the key context, write `{{@:get(name)}}`"
                ),
            )),
        };
    }
    let registry = REGISTRY.load();
    match registry.get(name) {
        Some(filter) => Ok(filter(input, args)),
        None => Err(filter_error(name, args, unknown_filter(name, &registry))),
    }
}

/// The "unknown filter" reason, listing the built-ins and the registered filters.
fn unknown_filter(name: &str, registry: &BTreeMap<String, CustomFilter>) -> String {
    let mut known = builtin_names();
    known.extend(registry.keys().map(String::as_str));
    let known: Vec<String> = known.iter().map(|name| format!("`{name}`")).collect();
    format!(
        "unknown filter `{name}`: the known filters are {}; register custom ones with `cashews::key::filter::register_filter`",
        known.join(", ")
    )
}

fn builtin_names() -> Vec<&'static str> {
    cashews_syntax::builtin_filters()
        .iter()
        .map(|spec| spec.name)
        .collect()
}

fn count_args(min: usize, max: usize) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if min == max {
        format!("{min} argument{}", plural(min))
    } else {
        format!("{min} to {max} arguments")
    }
}

/// An error about a filter applied on its own: the "template" is the filter call.
fn filter_error(name: &str, args: &[&str], reason: String) -> Error {
    let template = if args.is_empty() {
        format!(":{name}")
    } else {
        format!(":{name}({})", args.join(","))
    };
    Error::InvalidKeyTemplate { template, reason }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
